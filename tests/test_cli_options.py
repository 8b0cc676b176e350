"""The shared CLI options agree with the vocabularies they mirror, and every table command takes them.

The Enums in ``citykpi.cli.options`` are what Click checks and what shell completion offers; the
model, the engine and the exporter registry are what the library accepts. A value added to one and
not the other is caught here, not by a user.
"""

from __future__ import annotations

from enum import StrEnum

import pytest
from typer.testing import CliRunner

from citykpi.catalogue.model import COLOURS, GRAINS, KINDS, LEVELS, STATUSES
from citykpi.cli import app
from citykpi.cli import options as o
from citykpi.engine.scorecard import FAIL_ON
from citykpi.render.exporters import FORMATS, TABLE_FORMATS


def members(enum: type[StrEnum]) -> list[str]:
    return [m.value for m in enum]


@pytest.mark.parametrize(
    ("enum", "vocabulary"),
    [
        (o.Grain, GRAINS),
        (o.Level, LEVELS),
        (o.Kind, KINDS),
        (o.Colour, COLOURS),
        (o.Status, STATUSES),
        (o.FailOn, FAIL_ON),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_enums_mirror_the_library(enum: type[StrEnum], vocabulary: tuple[str, ...]) -> None:
    assert sorted(members(enum)) == sorted(vocabulary)


def test_formats_mirror_the_exporter_registry() -> None:
    assert members(o.ScorecardFormat) == ["table", *FORMATS]
    assert members(o.TableFormat) == ["table", *TABLE_FORMATS]


def complete(words: str) -> list[str]:
    """What shell completion offers after ``words``, through bash's completion protocol."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    env = {"_CITYKPI_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    r = CliRunner(env=env).invoke(app, [], prog_name="citykpi")
    assert r.exit_code == 0, r.output
    return r.stdout.split()


TABLE_COMMANDS = [
    "evaluate",
    "show",
    "alerts",
    "rank",
    "diff",
    "runs list",
    "db rejects",
    "alerts silences",
    "alerts outbox",
]


@pytest.mark.parametrize("command", TABLE_COMMANDS)
def test_every_table_command_offers_the_same_formats(command: str) -> None:
    offered = complete(f"citykpi {command} --format ")
    assert set(members(o.TableFormat)) <= set(offered)
    assert set(offered) <= set(members(o.ScorecardFormat))


@pytest.mark.parametrize("command", ["evaluate", "show ind", "alerts", "rank ind"])
def test_value_tables_check_decimals(command: str) -> None:
    r = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"}).invoke(app, [*command.split(), "--decimals", "-1"])
    assert r.exit_code == 2
    assert "--decimals" in r.stderr


@pytest.mark.parametrize(
    ("words", "offered"),
    [
        ("citykpi evaluate --period q", ["quarter"]),
        ("citykpi evaluate --format j", ["json", "jsonl", "junit"]),
        ("citykpi runs list --format j", ["json", "jsonl"]),
        ("citykpi alerts --min o", ["orange"]),
        ("citykpi evaluate --lang ", ["zh", "en"]),
    ],
)
def test_shell_completion_offers_the_values(words: str, offered: list[str]) -> None:
    assert complete(words) == offered


def test_a_wrong_value_is_a_usage_error_naming_the_choices() -> None:
    r = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"}).invoke(app, ["evaluate", "--period", "fortnight"])
    assert r.exit_code == 2
    assert "fortnight" in r.stderr and "quarter" in r.stderr
