"""Names, values and messages from data or the catalogue print as text, never as terminal commands.

An area called ``[bold red]X[/] [link=http://evil.example]click[/link]`` must show those characters,
not turn red or become an OSC 8 hyperlink; a cell holding ``ESC[2J`` (clear screen) or BEL must show
them as ``\\x1b`` and ``\\x07``. Colour is forced (``FORCE_COLOR``, ``color=True``) so that Rich emits
escape sequences at all: then the only ones in the output are the SGR colours of citykpi's own styles.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from citykpi.cli import app
from citykpi.render.format import safe_text
from citykpi.render.terminal import print_alerts, print_league, print_scorecard
from citykpi.render.views import alerts, league_table
from tests.scorecard_city import CATALOGUE
from tests.scorecard_fixtures import make_scorecard

MARKUP = "[bold red]X[/] [link=http://evil.example]click[/link]"
ESCAPES = "clear\x1b[2Jbell\x07"
#: How ESCAPES is shown: the control characters as visible text.
ESCAPES_SHOWN = "clear\\x1b[2Jbell\\x07"
#: Colour forced on, whatever the shell that runs pytest has.
COLOUR = {"FORCE_COLOR": "1", "TERM": "xterm-256color", "NO_COLOR": None, "COLUMNS": "250"}
#: SGR (colour and style) sequences: the escape sequences citykpi's own styles may emit.
SGR = re.compile(r"\x1b\[[0-9;]*m")
AS_OF = "2026-11-01"

AREAS = (
    "id,name,name_en,level,parent,population\n"
    "500000,重庆市,Chongqing,city,,100\n"
    f'500103,"{MARKUP}","{ESCAPES}",district,500000,60\n'
    f'500112,"{ESCAPES}","{MARKUP}",district,500000,40\n'
)
OBSERVATIONS = (
    "indicator_id,area_id,period,value\n"
    f"env.air.aqi,500103,{AS_OF},250\n"
    f"env.air.aqi,500112,{AS_OF},40\n"
    f"water.supply.pressure_ok,500103,{AS_OF},99\n"
    f"water.supply.pressure_ok,500112,{AS_OF},80\n"
    f"water.supply.pressure_ok,500112,2026-10-31,{ESCAPES}\n"
    # the day before: green, so that `diff` of the two runs lists cells that turned red
    "env.air.aqi,500103,2026-10-31,40\n"
    "water.supply.pressure_ok,500103,2026-10-30,99\n"
)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """A database whose area names, one indicator's names and one rejected cell are hostile.

    (Units come from a fixed vocabulary: `check` refuses any other, so they cannot be hostile.)
    """
    root = tmp_path_factory.mktemp("injection")
    (root / "catalogue").mkdir()
    # YAML double-quoted escapes: \e is ESC, \a is BEL
    yaml_escapes = "clear\\e[2Jbell\\a"
    text = CATALOGUE.replace(
        "{zh: 空气质量指数, en: Air quality index}", f'{{zh: "{MARKUP}", en: "{yaml_escapes}"}}'
    )
    assert yaml_escapes in text
    (root / "catalogue" / "c.yaml").write_text(text, encoding="utf-8")
    (root / "areas.csv").write_text(AREAS, encoding="utf-8")
    (root / "obs.csv").write_text(OBSERVATIONS, encoding="utf-8")
    base = ["--db", str(root / "w.duckdb"), "--catalogue", str(root / "catalogue")]
    assert CliRunner().invoke(app, [*base, "areas", "load", str(root / "areas.csv")]).exit_code == 0
    assert CliRunner().invoke(app, [*base, "ingest", str(root / "obs.csv")]).exit_code == 1  # one reject
    for day in ("2026-10-31", AS_OF):  # two runs, so that `diff` has something to compare
        assert CliRunner().invoke(app, [*base, "evaluate", "--date", day, "--scheduled"]).exit_code == 0
    return base


def _run(args: list[str]) -> Result:
    result = CliRunner().invoke(app, args, env=COLOUR, color=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def _assert_harmless(output: str) -> str:
    """No escape sequence but citykpi's colours, no BEL, no hyperlink; returns the text without colours."""
    assert "\x1b]8;" not in output  # an OSC 8 hyperlink
    assert "\x07" not in output
    plain = SGR.sub("", output)
    assert "\x1b" not in plain, plain  # ESC[2J and friends: every ESC left was a colour
    return plain


COMMANDS = {
    "evaluate": ["evaluate", "--date", AS_OF, "--lang", "zh", "--why"],
    "evaluate-en": ["evaluate", "--date", AS_OF, "--lang", "en", "--why"],
    "evaluate-by-area": ["evaluate", "--date", AS_OF, "--lang", "en", "--group-by", "area"],
    "show": ["show", "env.air.aqi", "--to", AS_OF, "--lang", "zh"],
    "show-en": ["show", "env.air.aqi", "--to", AS_OF, "--lang", "en"],
    "alerts": ["alerts", "--date", AS_OF, "--lang", "zh"],
    "rank": ["rank", "env.air.aqi", "--date", AS_OF, "--lang", "en"],
    "diff": ["diff", "--from", "2026-10-31", "--to", AS_OF, "--lang", "en"],
    "catalogue-list": ["catalogue", "list", "--lang", "en"],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_hostile_names_print_as_text_with_colour_forced(city: list[str], name: str) -> None:
    result = _run([*city, *COMMANDS[name]])
    assert result.exit_code in (0, 1), result.output
    assert SGR.search(result.output), "colour was not forced: the test would prove nothing"
    plain = _assert_harmless(result.output)
    assert MARKUP in plain or ESCAPES_SHOWN in plain, plain


def test_both_names_are_shown_literally_in_the_scorecard(city: list[str]) -> None:
    plain = _assert_harmless(_run([*city, *COMMANDS["evaluate-en"]]).output)
    assert MARKUP in plain  # the area 500112's English name, brackets and all
    assert ESCAPES_SHOWN in plain  # the indicator's English name and the areas' names


def test_status_colours_still_work(city: list[str]) -> None:
    """Escaping data does not switch citykpi's own styles off: RED is still bold red."""
    output = _run([*city, *COMMANDS["evaluate-en"]]).output
    assert re.search(r"\x1b\[1;31m■ RED", output), output


def test_rejected_raw_cell_prints_as_text(city: list[str]) -> None:
    summary = _run([*city, "db", "rejects"])
    assert summary.exit_code == 0, summary.output
    _assert_harmless(summary.output)
    rows = _run([*city, "db", "rejects", "--batch", "latest"])
    assert rows.exit_code == 0, rows.output
    assert ESCAPES_SHOWN in _assert_harmless(rows.output)


def test_check_shows_a_hostile_file_name_as_text(tmp_path: Path) -> None:
    """`check` prints file:line:col of each problem; the file's name is data too."""
    folder = tmp_path / "catalogue"
    folder.mkdir()
    markup = "[bold red]X[link=https:evil.example]k"  # a file name cannot hold the '/' of MARKUP
    (folder / f"{markup}{ESCAPES}.yaml").write_text(
        "schema_version: 1\nindicators:\n  - id: x\n", encoding="utf-8"
    )
    result = _run(["check", str(folder)])
    assert result.exit_code == 1, result.output
    plain = _assert_harmless(result.output)
    assert f"{markup}{ESCAPES_SHOWN}.yaml:3" in plain


def test_error_messages_quoting_input_print_as_text(tmp_path: Path) -> None:
    """The error boundary prints messages that quote a path or a value: their controls are shown."""
    missing = tmp_path / f"no{ESCAPES}.csv"
    result = _run(["--db", str(tmp_path / "w.duckdb"), "ingest", str(missing)])
    assert result.exit_code == 2, result.output
    plain = _assert_harmless(result.output)
    assert f"no{ESCAPES_SHOWN}.csv" in plain and plain.startswith("Error: ")


def test_ingest_report_shows_a_hostile_file_name_as_text(city: list[str], tmp_path: Path) -> None:
    data = tmp_path / f"{ESCAPES}.csv"
    data.write_text(OBSERVATIONS, encoding="utf-8")
    result = _run([*city, "ingest", "--dry-run", str(data)])
    assert result.exit_code == 0, result.output  # the same bytes as obs.csv: unchanged
    assert f"{ESCAPES_SHOWN}.csv" in _assert_harmless(result.output)


def test_renderers_are_safe_on_any_console() -> None:
    """Library use: a caller's Console with markup and emoji on still prints names as text."""
    base = make_scorecard()
    cells = base.cells.with_columns(
        pl.lit(MARKUP).alias("area_name_en"),
        pl.lit(f":thumbs_up: {ESCAPES}").alias("name_en"),
        pl.lit(ESCAPES).alias("explanation"),
    )
    scorecard = replace(base, cells=cells)
    console = Console(force_terminal=True, color_system="truecolor", width=250, markup=True, emoji=True)
    with console.capture() as captured:
        print_scorecard(console, scorecard, lang="en", explain=True)
        print_alerts(console, alerts(scorecard), lang="en")
        print_league(console, league_table(scorecard, "env.air.aqi"), title=MARKUP, lang="en")
    plain = _assert_harmless(captured.get())
    assert MARKUP in plain and f":thumbs_up: {ESCAPES_SHOWN}" in plain and "👍" not in plain


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\x1b[2Jb", "a\\x1b[2Jb"),
        ("bell\x07", "bell\\x07"),
        ("csi\x9b2J", "csi\\x9b2J"),
        ("del\x7f", "del\\x7f"),
        ("cr\roverwrite", "cr\\x0doverwrite"),
        ("nul\x00", "nul\\x00"),
        ("rtl\u202eevil", "rtl\\u202eevil"),
        ("two\nlines\tand tab", "two\nlines\tand tab"),
        ("区域 café ✓", "区域 café ✓"),
    ],
)
def test_safe_text_makes_controls_visible(raw: str, shown: str) -> None:
    assert safe_text(raw) == shown
    assert "\n" not in safe_text(raw, one_line=True) and "\t" not in safe_text(raw, one_line=True)


def test_run_log_shows_a_hostile_inbox_file_name_as_text(tmp_path: Path) -> None:
    """`citykpi run` logs each inbox file by name, and alerts by area name: both are data."""
    from tests.scorecard_city import write_city

    paths = write_city(tmp_path)
    (tmp_path / "areas.csv").write_text(AREAS, encoding="utf-8")
    (tmp_path / "citykpi.toml").write_text(
        'database = "city.duckdb"\ncatalogue = "catalogue"\nareas = "areas.csv"\ninbox = ["inbox"]\n'
        'archive = "keep"\nlang = "zh"\n[outputs]\nfolder = "out"\nformats = ["json"]\n',
        encoding="utf-8",
    )
    (paths["inbox"] / f"obs-{ESCAPES}.csv").write_text(OBSERVATIONS, encoding="utf-8")
    result = _run(["run", "--config", str(tmp_path / "citykpi.toml"), "--date", AS_OF, "--fail-on", "red"])
    assert result.exit_code == 4, result.output  # a rejected row: partial (before the red verdict)
    plain = _assert_harmless(result.output)
    assert f"ingest obs-{ESCAPES_SHOWN}.csv: " in plain
    assert f"@ 500112 {ESCAPES_SHOWN}: 80.0%" in plain  # the alert line with the area's name
