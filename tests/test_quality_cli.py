"""``citykpi quality`` through the CLI: the table, every export format, exit codes, a read-only
database, and an interrupted export that leaves nothing half-written."""

from __future__ import annotations

import io
import json
import os
import signal
import xml.etree.ElementTree as ET
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from citykpi.cli import app
from citykpi.warehouse import Warehouse
from tests._warehouse_support import checksum, write

CATALOGUE = """\
indicators:
  - id: pop.total
    name: {zh: 人口, en: Population}
    kind: kpi
    domain: population
    unit: persons
    description: Population on 1 January.
    owner: 统计局
    levels: [city, district]
    frequency: yearly
    direction: higher_is_better
    thresholds: {basis: change_base_period, yellow: -1, red: -5}
    base_period: 2018
    valid_range: [0, null]
    rollup: {time: last, area: sum}
  - id: pop.urban
    name: {zh: 城镇人口, en: Urban population}
    kind: kpi
    domain: population
    unit: persons
    description: Urban part.
    owner: 住建局
    levels: [city, district]
    frequency: yearly
    direction: higher_is_better
    rollup: {time: last, area: sum}
feeds:
  - id: census
    provider: 统计局
    indicators: [pop.total]
    columns: {area_id: area, period: year, value: v}
    set: {indicator_id: pop.total}
    date_formats: {period: "%Y"}
    missing: [":"]
    dimensions: {sex: sex}
    files: ["census*.csv"]
consistency:
  - {id: by_sex, kind: disaggregation, indicator: pop.total, dimension: sex, values: [male, female]}
  - {id: city_sum, kind: area_rollup, indicator: pop.total}
"""
AREAS = "id,name,name_en,level,parent\nC,市,City,city,\nD1,一区,D1,district,C\nD2,二区,D2,district,C\n"
CENSUS = (
    "area,year,sex,v\n"
    "C,2018,,20\nD1,2018,,10\nD2,2018,,10\n"
    "C,2019,,25\nD1,2019,,12\nD2,2019,,:\n"
    "D1,2019,male,6\nD1,2019,female,5\n"
    "C,2020,,24\nD1,2020,,12\nD2,2020,,12\n"
)


@pytest.fixture
def city(tmp_path: Path) -> tuple[list[str], Path]:
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "c.yaml").write_text(CATALOGUE, encoding="utf-8")
    base = ["--db", str(tmp_path / "q.duckdb"), "--catalogue", str(tmp_path / "cat")]
    runner = CliRunner()
    assert (
        runner.invoke(app, [*base, "areas", "load", str(write(tmp_path / "areas.csv", AREAS))]).exit_code == 0
    )
    done = runner.invoke(
        app, [*base, "ingest", "--feed", "auto", str(write(tmp_path / "census-2020.csv", CENSUS))]
    )
    assert done.exit_code == 0, done.output
    return base, tmp_path


def _run(base: list[str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, [*base, "quality", "--date", "2020-12-31", "--from", "2018-01-01", *args]
    )
    return result.exit_code, result.stdout, result.stderr


def test_table(city: tuple[list[str], Path]) -> None:
    base, _ = city
    code, out, _ = _run(base, "--lang", "en", "--limit", "5")
    assert code == 0, out
    assert "Data quality as of 2020-12-31 (2018-01-01 …)" in out
    assert "统计局" in out and "by_sex" in out and "city_sum" in out
    # 2019: 12 + : ≠ 25 is not checked (D2 missing); 2019 D1 = 6 + 5 ≠ 12 is a violation
    assert "by_sex D1 2019-01-01: 12 ≠ 11 (Δ 1) ← female=5.0; male=6.0" in out


def test_csv_json_and_the_tables(city: tuple[list[str], Path]) -> None:
    base, _ = city
    code, out, _ = _run(base, "--format", "csv")
    assert code == 0
    groups = pl.read_csv(io.StringIO(out))
    assert groups.columns[:4] == ["by", "group", "name_zh", "name_en"]
    assert sorted(groups["group"].to_list()) == ["住建局", "统计局"]
    stats = groups.filter(pl.col("group") == "统计局").row(0, named=True)
    # pop.total at D1, D2 for 2018–2020: 5 of 6 present, one written ':'
    assert (stats["expected"], stats["present"], stats["missing_tokens"]) == (6, 5, 1)
    code, out, _ = _run(base, "--format", "csv", "--table", "violations")
    violations = pl.read_csv(io.StringIO(out))
    # the city sums hold in 2018 and 2020 and cannot be checked in 2019 (D2 wrote ':')
    assert violations.select("rule_id", "area_id", "period", "total", "expected").rows() == [
        ("by_sex", "D1", "2019-01-01", 12.0, 11.0)
    ]
    code, out, _ = _run(base, "--format", "json", "--by", "indicator")
    doc = json.loads(out)
    assert (doc["schema"], doc["schema_version"], doc["by"], doc["as_of"]) == (
        "citykpi.quality",
        1,
        "indicator",
        "2020-12-31",
    )
    assert set(doc) >= {
        "summary",
        "groups",
        "series",
        "rules",
        "violations",
        "rejects",
        "records",
        "outliers",
        "bands",
    }
    assert {g["group"] for g in doc["groups"]} == {"pop.total", "pop.urban"}
    code, out, _ = _run(base, "--format", "jsonl", "--table", "series")
    assert all(json.loads(line)["indicator_id"] for line in out.splitlines())
    code, out, _ = _run(base, "--format", "markdown", "--lang", "en")
    assert (
        out.startswith("# Data quality as of 2020-12-31")
        and "## League table" in out
        and "## Violations" in out
    )


def test_files_html_xlsx_junit_parquet(city: tuple[list[str], Path]) -> None:
    base, tmp = city
    for fmt, name in (("html", "q.html"), ("xlsx", "q.xlsx"), ("junit", "q.xml"), ("parquet", "q.parquet")):
        code, _, err = _run(base, "--format", fmt, "--output", str(tmp / name))
        assert code == 0, err
        assert f"wrote {tmp / name}" in err
    html = (tmp / "q.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and 'class="chip"' in html and "</html>" in html
    import openpyxl

    wb = openpyxl.load_workbook(tmp / "q.xlsx", read_only=True)
    assert wb.sheetnames[:4] == ["排行榜", "数据序列", "一致性规则", "不一致之处"]
    wb.close()
    root = ET.parse(tmp / "q.xml").getroot()
    rules = next(s for s in root if s.get("name") == "consistency rules")
    failing = [c.get("name") for c in rules if c.find("failure") is not None]
    assert "by_sex" in failing
    assert pl.read_parquet(tmp / "q.parquet").columns[:2] == ["by", "group"]


def test_fail_on_and_usage_errors(city: tuple[list[str], Path]) -> None:
    base, tmp = city
    code, _, _ = _run(base, "--fail-on", "green")
    assert code == 1  # some group is below green
    code, _, err = _run(base, "--by", "colour")
    assert code == 2 and "colour" in err
    code, _, err = _run(base, "--format", "xlsx")
    assert code == 2 and "binary" in err
    other = write(tmp / "notes.csv", "a,b\n1,2\n")
    code, _, err = _run(base, "--format", "csv", "--output", str(other))
    assert code == 2 and "--force" in err
    code, out, _ = _run(base, "--explain")
    assert code == 0 and "CREATE OR REPLACE TEMP TABLE q_cell" in out


def test_a_date_after_the_newest_data_is_warned_about(city: tuple[list[str], Path]) -> None:
    base, _ = city
    runner = CliRunner()
    late = runner.invoke(app, [*base, "quality", "--date", "2030-01-01", "--lang", "en"])
    assert late.exit_code == 0, late.output
    # the newest values are for 2020: they cover the year, up to 2020-12-31
    assert late.stderr.splitlines() == [
        "warning: 2030-01-01 is after the newest data (2020-12-31); the periods after it have no data: "
        "pending until due, missing after (try --date 2020-12-31)"
    ]
    assert "Data quality as of 2030-01-01" in late.stdout
    for day in ("2020-12-31", "2020-06-30"):  # inside the newest period: no warning
        ok = runner.invoke(app, [*base, "quality", "--date", day, "--format", "csv"])
        assert ok.exit_code == 0 and "warning" not in ok.stderr, ok.stderr


def test_the_database_is_opened_read_only_and_left_as_it_was(city: tuple[list[str], Path]) -> None:
    base, tmp = city
    with Warehouse.open(tmp / "q.duckdb", read_only=True) as wh:
        before = checksum(wh)
    assert _run(base, "--format", "json")[0] == 0
    with Warehouse.open(tmp / "q.duckdb", read_only=True) as wh:
        assert checksum(wh) == before


def test_a_killed_export_leaves_no_half_written_report(city: tuple[list[str], Path]) -> None:
    from tests.reliability_support import start_paused, wait_for

    base, tmp = city
    out = tmp / "out"
    out.mkdir()
    with Warehouse.open(tmp / "q.duckdb", read_only=True) as wh:
        before = checksum(wh)
    args = [*base, "quality", "--date", "2020-12-31", "--format", "json", "--output", str(out / "q.json")]
    proc = start_paused("export", 120, *args)
    seen = wait_for(proc, "written")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL, seen[-2000:]
    assert [p for p in out.iterdir() if not p.name.startswith(".")] == []
    with Warehouse.open(tmp / "q.duckdb", read_only=True) as wh:
        assert checksum(wh) == before
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0
    json.loads((out / "q.json").read_text(encoding="utf-8"))
    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == ["q.json"]
