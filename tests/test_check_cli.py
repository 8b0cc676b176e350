"""`citykpi check`, `schema`, `catalogue list` and `catalogue docs` through CliRunner: output and exit codes."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from citykpi.cli import app
from citykpi.render.html import static_text

runner = CliRunner()

GOOD = """\
schema_version: 1
indicators:
  - id: env.air.aqi
    name: {zh: 空气质量指数, en: Air quality index}
    kind: vital_sign
    domain: environment
    unit: index
    description: Daily AQI.
    levels: [city, district]
    frequency: daily
    direction: lower_is_better
    scale:
      - {label: {zh: 优, en: Excellent}, upto: 50, colour: green}
      - {label: {zh: 良, en: Good}, upto: 100, colour: blue}
      - {label: {zh: 污染, en: Polluted}, colour: red}
  - id: water.supply.pressure_ok
    name: {zh: 供水压力合格率, en: Supply pressure compliance}
    kind: kpi
    domain: water
    unit: "%"
    description: Share of pressure readings in range.
    tags: [supply]
    levels: [city]
    frequency: monthly
    direction: higher_is_better
    thresholds: {yellow: 95, red: 90}
    target: {value: 99, due: 2025-12-31}
"""
BROKEN = GOOD.replace("thresholds: {yellow: 95, red: 90}", "thresholds: {yellow: 90, red: 95}")
WARN = GOOD.replace("    description: Daily AQI.\n", "")


@pytest.fixture
def cat(tmp_path: Path) -> Path:
    folder = tmp_path / "indicators"
    folder.mkdir()
    (folder / "a.yaml").write_text(GOOD, encoding="utf-8")
    return folder


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_check_sound_catalogue_exits_0(cat: Path) -> None:
    result = runner.invoke(app, ["check", str(cat)])
    assert result.exit_code == 0, result.output
    assert "catalogue is sound" in result.output
    assert "2 indicators" in result.output


def test_check_uses_global_catalogue_option(cat: Path) -> None:
    result = runner.invoke(app, ["--catalogue", str(cat), "check"])
    assert result.exit_code == 0, result.output


def test_check_uses_environment_variable(cat: Path) -> None:
    result = runner.invoke(app, ["check"], env={"CITYKPI_CATALOGUE": str(cat)})
    assert result.exit_code == 0, result.output


def test_check_errors_exit_1_with_location_and_rule(tmp_path: Path) -> None:
    path = _write(tmp_path, BROKEN)
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:26:" in result.output.replace("\n", "")
    assert "CK030" in result.output
    assert "1 error" in result.output


def test_text_off_a_terminal_is_one_line_per_diagnostic_whatever_columns(tmp_path: Path) -> None:
    """Piped (CliRunner is not a TTY) at COLUMNS=40 under a long path: no diagnostic, hint or summary
    is hard-wrapped, so `grep path:line:col` finds each one whole."""
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 4)
    deep.mkdir(parents=True)
    text = BROKEN.replace("unit: index", "unit: indexx")
    path = _write(deep, text)
    result = runner.invoke(app, ["check", str(path)], env={"COLUMNS": "40"})
    assert result.exit_code == 1
    lines = result.output.splitlines()
    for where, rule in ((f"{path}:7:11", "CK080"), (f"{path}:26:17", "CK030")):
        found = [line for line in lines if line.startswith(where)]
        assert len(found) == 1 and rule in found[0], result.output
    unit = next(line for line in lines if "CK080" in line)
    assert unit.endswith("unknown unit 'indexx' in indicator env.air.aqi"), result.output
    assert any(line.startswith("    hint: did you mean") for line in lines), result.output
    assert lines[-1].startswith("✗ 2 errors — 1 file (2 indicators, 0 indices, 0 groups, 0 sources)")


def test_warnings_pass_unless_strict(tmp_path: Path) -> None:
    path = _write(tmp_path, WARN)
    assert runner.invoke(app, ["check", str(path)]).exit_code == 0
    result = runner.invoke(app, ["check", str(path), "--strict"])
    assert result.exit_code == 1
    assert "CK100" in result.output


def test_missing_path_exits_3(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(tmp_path / "nope")])
    assert result.exit_code == 3
    assert "does not exist" in result.output


@pytest.mark.parametrize("args", [["check", "--format", "xml"], ["check", "--bogus"]])
def test_usage_errors_exit_2(cat: Path, args: list[str]) -> None:
    assert runner.invoke(app, [*args, str(cat)]).exit_code == 2


def test_json_format(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(_write(tmp_path, BROKEN)), "--format", "json"])
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["schema_version"] == 1
    assert doc["ok"] is False
    assert doc["counts"]["errors"] == 1
    (d,) = doc["diagnostics"]
    assert d["rule"] == "CK030" and d["name"] == "thresholds-out-of-order" and d["line"] == 26
    assert d["severity"] == "error" and d["file"].endswith("c.yaml")
    assert doc["rules"]["CK030"]["description"]


def test_json_format_sound(cat: Path) -> None:
    result = runner.invoke(app, ["check", str(cat), "-f", "json"])
    doc = json.loads(result.output)
    assert result.exit_code == 0 and doc["ok"] is True and doc["diagnostics"] == []
    assert len(doc["content_hash"]) == 64


def test_github_format(tmp_path: Path) -> None:
    path = _write(tmp_path, BROKEN.replace("    description: Daily AQI.\n", ""))
    result = runner.invoke(app, ["check", str(path), "--format", "github"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert any(
        line.startswith(f"::error file={path},line=25,col=")
        and "title=CK030 thresholds-out-of-order::" in line
        for line in lines
    )
    assert any(line.startswith("::warning ") and "CK100" in line for line in lines)


def test_junit_format(tmp_path: Path, cat: Path) -> None:
    (cat / "b.yaml").write_text(
        BROKEN.replace("env.air.aqi", "env.air.aqi2").replace("water.supply.pressure_ok", "w.x"),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["check", str(cat), "--format", "junit"])
    assert result.exit_code == 1
    root = ET.fromstring(result.output)
    cases = root.findall(".//testcase")
    assert len(cases) == 2
    failures = [c for c in cases if c.find("failure") is not None]
    assert len(failures) == 1 and failures[0].get("name", "").endswith("b.yaml")
    assert root.get("failures") == "1"


def test_output_file(tmp_path: Path, cat: Path) -> None:
    out = tmp_path / "reports" / "check.json"
    result = runner.invoke(app, ["check", str(cat), "-f", "json", "--output", str(out)])
    assert result.exit_code == 0
    assert json.loads(out.read_text())["ok"] is True
    assert "report written to" in result.output


def test_text_output_file_is_plain(tmp_path: Path) -> None:
    out = tmp_path / "check.txt"
    result = runner.invoke(app, ["check", str(_write(tmp_path, BROKEN)), "-o", str(out)])
    assert result.exit_code == 1
    text = out.read_text()
    assert "error CK030" in text and "\x1b[" not in text


def test_schema_prints_json_schema() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "indicator" in schema["$defs"]


def test_catalogue_list_text(cat: Path) -> None:
    result = runner.invoke(app, ["--catalogue", str(cat), "catalogue", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "env.air.aqi" in result.output and "空气质量指数" in result.output
    assert "2 indicators" in result.output


@pytest.mark.parametrize(
    ("filters", "ids"),
    [
        (["--domain", "water"], ["water.supply.pressure_ok"]),
        (["--kind", "vital_sign"], ["env.air.aqi"]),
        (["--tag", "supply"], ["water.supply.pressure_ok"]),
        (["--level", "district"], ["env.air.aqi"]),
        (["--level", "street"], []),
    ],
)
def test_catalogue_list_filters_json(cat: Path, filters: list[str], ids: list[str]) -> None:
    result = runner.invoke(app, ["--catalogue", str(cat), "catalogue", "list", *filters, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert [row["id"] for row in json.loads(result.output)] == ids


def test_catalogue_list_csv(cat: Path) -> None:
    result = runner.invoke(app, ["--catalogue", str(cat), "catalogue", "list", "--format", "csv"])
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["id"] for r in rows] == ["env.air.aqi", "water.supply.pressure_ok"]
    assert rows[0]["levels"] == "city;district"
    assert rows[1]["target"] == "99 % by 2025-12-31 (end_value)"


@pytest.mark.parametrize("args", [["--kind", "metric"], ["--level", "county"], ["--format", "xml"]])
def test_catalogue_list_bad_options_exit_2(cat: Path, args: list[str]) -> None:
    result = runner.invoke(app, ["--catalogue", str(cat), "catalogue", "list", *args])
    assert result.exit_code == 2


def test_catalogue_list_on_broken_catalogue_exits_3(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--catalogue", str(_write(tmp_path, BROKEN)), "catalogue", "list"])
    assert result.exit_code == 3
    assert "CK030" in result.output and "citykpi check" not in result.output  # one error: no "and N more"


def test_catalogue_docs_markdown(cat: Path) -> None:
    result = runner.invoke(app, ["--catalogue", str(cat), "catalogue", "docs"])
    assert result.exit_code == 0
    assert "## environment" in result.output and "| env.air.aqi | 空气质量指数 |" in result.output


def test_catalogue_docs_html_to_file(tmp_path: Path, cat: Path) -> None:
    out = tmp_path / "dict.html"
    result = runner.invoke(
        app, ["--catalogue", str(cat), "catalogue", "docs", "--format", "html", "-o", str(out)]
    )
    assert result.exit_code == 0
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and '<h2 id="water">water</h2>' in page
    # one script, the report's own (sorting, search), allowed by its hash; nothing is fetched
    assert page.count("<script") == 1 and f"<script>{static_text('report.js')}</script>" in page
    assert not re.search(r"https?://|src=|href=", page) and "script-src 'sha256-" in page


def test_catalogue_docs_bad_format_exits_2(cat: Path) -> None:
    assert runner.invoke(app, ["--catalogue", str(cat), "catalogue", "docs", "-f", "pdf"]).exit_code == 2


@pytest.mark.parametrize(
    "command", [["check"], ["schema"], ["catalogue"], ["catalogue", "list"], ["catalogue", "docs"]]
)
def test_help_has_an_example(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    if command != ["catalogue"]:
        assert "Example: citykpi" in result.output


def test_sample_catalogue_is_sound() -> None:
    """The shipped indicators/ folder passes `check` (the sample city must stay sound)."""
    folder = Path(__file__).resolve().parent.parent / "indicators"
    if not any(folder.glob("**/*.yaml")):
        pytest.skip("no sample catalogue yet")
    result = runner.invoke(app, ["check", str(folder), "--format", "json"])
    doc = json.loads(result.output)
    assert result.exit_code == 0, [d for d in doc["diagnostics"] if d["severity"] == "error"][:5]
    assert doc["counts"]["indicators"] >= 150
