"""`citykpi test`: catalogue unit tests pass, fail with a diff, and list uncovered indicators."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from citykpi.cli import app

HERE = Path(__file__).parent
runner = CliRunner()


def test_sample_catalogue_tests_pass() -> None:
    result = runner.invoke(app, ["test", str(HERE / "catalogue_tests")])
    assert result.exit_code == 0, result.output
    assert "3 passed, 0 failed" in result.output
    assert "not covered by any test" in result.output


def test_failing_expectation_shows_expected_and_actual(tmp_path: Path) -> None:
    src = (HERE / "catalogue_tests" / "environment_test.yaml").read_text(encoding="utf-8")
    bad = src.replace("status: yellow, value: 140", "status: orange, value: 140").replace(
        "catalogue: ../../indicators", f"catalogue: {HERE.parent / 'indicators'}"
    )
    f = tmp_path / "air_test.yaml"
    f.write_text(bad, encoding="utf-8")
    result = runner.invoke(app, ["test", str(f)])
    assert result.exit_code == 1
    assert "env.air.aqi × 500000: expected status 'orange', got 'yellow'" in result.output
    assert "2 passed, 1 failed" in result.output


def test_json_report(tmp_path: Path) -> None:
    result = runner.invoke(app, ["test", str(HERE / "catalogue_tests"), "--format", "json"])
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert doc["schema_version"] == 1 and doc["failed"] == 0 and doc["passed"] == 3
    assert "env.air.pm25" in doc["uncovered"]


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["test", str(tmp_path / "nope")])
    assert result.exit_code == 3
    assert "no test file or folder" in result.output


def test_a_series_without_area_says_what_is_missing(tmp_path: Path) -> None:
    src = (HERE / "catalogue_tests" / "environment_test.yaml").read_text(encoding="utf-8")
    broken = src.replace("catalogue: ../../indicators", f"catalogue: {HERE.parent / 'indicators'}")
    broken = broken.replace("area: ", "place: ", 1)
    f = tmp_path / "air_test.yaml"
    f.write_text(broken, encoding="utf-8")
    result = runner.invoke(app, ["test", str(f)])
    assert result.exit_code == 3, result.output  # was a KeyError traceback
    assert "entry needs `area:`" in result.output and "hint:" in result.output
