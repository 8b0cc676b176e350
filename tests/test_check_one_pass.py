"""`citykpi check` reports every error of every indicator in one pass, each once, at its own place.

``tests/corpus/one_pass/`` holds two files with many independent problems, structural (unknown unit,
key, level, direction, a bad number) and semantic (bands out of order or overlapping, a target's
dates, roll-up without weight, unknown reference, duplicate id). Before, an indicator with one parse
error had none of its semantic rules checked, and a duplicate definition none at all, so fixing a
file took several rounds; a broken field must still not cause follow-on errors.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from typer.testing import CliRunner

from citykpi.cli import app

CASE = Path(__file__).parent / "corpus" / "one_pass"

#: (file, line, column, rule) of every diagnostic, and nothing else.
EXPECTED = {
    ("a.yaml", 5, 5, "CK100"),  # no description — beside the unknown unit of the same indicator
    ("a.yaml", 9, 11, "CK080"),  # unknown unit
    ("a.yaml", 13, 17, "CK030"),  # red below orange for lower_is_better — beside the unknown unit
    ("a.yaml", 22, 20, "CK105"),  # max_staleness 1h of a daily indicator — beside a bad `decimals`
    ("a.yaml", 23, 15, "CK013"),  # decimals out of range
    ("a.yaml", 25, 5, "CK010"),  # unknown key 'thresold' (and so no "has no thresholds" warning)
    ("a.yaml", 26, 51, "CK040"),  # formula input names an unknown indicator
    ("a.yaml", 35, 16, "CK083"),  # unknown direction (its ascending cuts are not judged against a guess)
    ("a.yaml", 37, 13, "CK061"),  # baseline_date after due — beside the unknown direction
    ("b.yaml", 4, 5, "CK020"),  # duplicate id
    ("b.yaml", 13, 17, "CK031"),  # band ranges not nested — of the duplicate definition
    ("b.yaml", 14, 31, "CK064"),  # weighted_mean without weight — of the duplicate definition
    ("b.yaml", 21, 20, "CK081"),  # unknown level (the district override is not blamed for it)
    ("b.yaml", 25, 7, "CK030"),  # red below yellow — beside the unknown level
}


def test_every_error_of_every_indicator_in_one_run() -> None:
    with contextlib.chdir(CASE):
        result = CliRunner().invoke(app, ["check", ".", "--format", "json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.output)
    found = [(d["file"], d["line"], d["column"], d["rule"]) for d in doc["diagnostics"]]
    assert len(found) == len(set(found)), found  # one root cause, one message
    assert set(found) == EXPECTED, sorted(set(found) ^ EXPECTED)
    assert doc["counts"]["errors"] == 12 and doc["counts"]["warnings"] == 2


def test_the_text_report_names_each_place_once() -> None:
    with contextlib.chdir(CASE):
        result = CliRunner().invoke(app, ["check", "."], env={"COLUMNS": "60"})
    assert result.exit_code == 1
    for file, line, column, rule in EXPECTED:
        hits = [x for x in result.output.splitlines() if x.startswith(f"{file}:{line}:{column} ")]
        assert len(hits) == 1 and rule in hits[0], (file, line, rule, result.output)
    assert "12 errors, 2 warnings" in result.output
