"""`citykpi test`: catalogue unit tests pass, fail with a diff, and list uncovered indicators."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
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


def _failing(tmp_path: Path, name: str = "") -> Path:
    """The sample test file with one wrong expectation (line 18), optionally renamed case 1."""
    src = (HERE / "catalogue_tests" / "environment_test.yaml").read_text(encoding="utf-8")
    bad = src.replace("status: yellow, value: 140", "status: orange, value: 150").replace(
        "catalogue: ../../indicators", f"catalogue: {HERE.parent / 'indicators'}"
    )
    if name:
        bad = bad.replace("name: AQI on its own six-band scale, district mean at city level", f"name: {name}")
    f = tmp_path / "air_test.yaml"
    f.write_text(bad, encoding="utf-8")
    return f


def test_github_annotations_point_at_the_failing_expectation(tmp_path: Path) -> None:
    f = _failing(tmp_path)
    result = runner.invoke(app, ["test", str(f), "--format", "github"])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("::error ")]
    assert len(errors) == 2  # status and value of the same expectation, both on its line
    head = f"::error file={str(f).replace(':', '%3A').replace(',', '%2C')},line=18,title=citykpi test%3A AQI"
    assert all(line.startswith(head) for line in errors), errors
    assert errors[0].endswith(
        "::env.air.aqi × 500000: expected status 'orange', got 'yellow' "
        "(yellow: 140 index > 100 (yellow above 100))"
    )
    assert "2 passed, 1 failed" in result.output.splitlines()


def test_junit_report_is_valid_xml_with_expected_vs_actual(tmp_path: Path) -> None:
    hostile = '"bad <&> \\x1b[2J \\x07 名"'  # YAML escapes: ESC and BEL in the case name
    f = _failing(tmp_path, hostile)
    out = tmp_path / "results.xml"
    result = runner.invoke(app, ["test", str(f), "--format", "junit", "--output", str(out)])
    assert result.exit_code == 1, result.output
    assert "2 passed, 1 failed (report written to" in result.output
    root = ET.fromstring(out.read_bytes())
    assert (root.tag, root.get("tests"), root.get("failures")) == ("testsuites", "3", "1")
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == str(f) and suite.get("tests") == "3" and suite.get("failures") == "1"
    cases = suite.findall("testcase")
    assert len(cases) == 3 and all(c.get("classname") == str(f) for c in cases)
    assert cases[0].get("name") == "bad <&> \\x1b[2J \\x07 名"  # controls shown, not carried
    failure = cases[0].find("failure")
    assert failure is not None and failure.get("message", "").startswith(
        "env.air.aqi × 500000: expected status 'orange', got 'yellow'"
    )
    assert "(and 1 more)" in failure.get("message", "")
    assert "line 18: env.air.aqi × 500000: expected value 150, got 140.0" in (failure.text or "")
    assert [c.find("failure") for c in cases[1:]] == [None, None]
    assert "\x1b" not in out.read_text(encoding="utf-8") and "\x07" not in out.read_text(encoding="utf-8")


def test_json_report_gives_each_failure_its_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["test", str(_failing(tmp_path)), "-f", "json"])
    assert result.exit_code == 1
    (case,) = [c for c in json.loads(result.output)["cases"] if not c["passed"]]
    assert case["line"] == 10
    assert [(d["line"], d["field"], d["expected"], d["actual"]) for d in case["details"]] == [
        (18, "status", "orange", "yellow"),
        (18, "value", 150, 140.0),
    ]


def test_output_may_not_replace_the_test_file(tmp_path: Path) -> None:
    f = _failing(tmp_path)
    before = f.read_bytes()
    result = runner.invoke(app, ["test", str(f), "--format", "junit", "--output", str(f), "--force"])
    assert result.exit_code == 2, result.output
    assert "will not write" in result.output and f.read_bytes() == before


def test_unknown_format_is_a_usage_error() -> None:
    result = runner.invoke(app, ["test", str(HERE / "catalogue_tests"), "--format", "xml"])
    assert result.exit_code == 2
