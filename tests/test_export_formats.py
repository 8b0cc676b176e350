"""Every export format written and read back; escaping; determinism; atomic writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
from openpyxl.utils import get_column_letter

from citykpi.engine.scorecard import CELL_SCHEMA, Scorecard
from citykpi.errors import ExportError, UsageError
from citykpi.render import exporters, exports
from citykpi.render.format import STATUS_HEX, sort_cells
from citykpi.render.xlsx import CELL_COLUMNS
from tests.scorecard_fixtures import AS_OF, make_scorecard

HOSTILE = {
    "env.air.aqi": '=HYPERLINK("http://x")',
    "service.hotline.ontime": "@SUM(1+1)",
    "water.supply.pressure_ok": "-2+3",
    "env.air.good_days": "<script>alert(1)</script>",
}


@pytest.fixture
def scorecard() -> Scorecard:
    """The synthetic scorecard."""
    return make_scorecard()


def test_csv_round_trip(tmp_path: Path, scorecard: Scorecard) -> None:
    path = exporters.write_scorecard(scorecard, "csv", tmp_path / "s.csv")
    back = pl.read_csv(path, infer_schema=False)
    assert back.columns == list(CELL_SCHEMA)
    assert back.height == scorecard.cells.height
    assert back.get_column("period_start").drop_nulls().unique().to_list() == [AS_OF.isoformat()]
    assert (
        back.get_column("indicator_id").to_list()
        == sort_cells(scorecard.cells).get_column("indicator_id").to_list()
    )


def test_csv_neutralises_formulas(tmp_path: Path) -> None:
    sc = make_scorecard(rename=HOSTILE)
    text = exporters.render_text(sc, "csv")
    back = pl.read_csv(text.encode(), infer_schema=False)
    names = set(back.get_column("name_zh").to_list())
    assert '\'=HYPERLINK("http://x")' in names
    assert "'@SUM(1+1)" in names and "'-2+3" in names
    assert "<script>alert(1)</script>" in names  # not a formula: unchanged in csv
    # negative numbers are numbers, not text: untouched
    assert any(v.startswith("-") for v in back.get_column("change_previous").drop_nulls().to_list())


def test_neutralise() -> None:
    for bad in ("=1+1", "+1", "-1", "@A1", "\tx", "\rx"):
        assert exports.neutralise(bad) == "'" + bad
    assert exports.neutralise("渝中区") == "渝中区"
    assert exports.neutralise("a=b") == "a=b"


def test_parquet_round_trip(tmp_path: Path, scorecard: Scorecard) -> None:
    path = exporters.write_scorecard(scorecard, "parquet", tmp_path / "s.parquet")
    back = pl.read_parquet(path)
    assert back.schema == pl.Schema(CELL_SCHEMA)
    assert back.equals(sort_cells(scorecard.cells))


def test_json_schema(tmp_path: Path, scorecard: Scorecard) -> None:
    path = exporters.write_scorecard(scorecard, "json", tmp_path / "s.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert list(doc) == [
        "schema",
        "schema_version",
        "as_of",
        "grain",
        "catalogue_hash",
        "counts",
        "worst_status",
        "cells",
        "indices",
    ]
    assert doc["schema"] == "citykpi.scorecard" and doc["schema_version"] == 1
    assert doc["as_of"] == "2026-11-24" and doc["grain"] == "day" and doc["worst_status"] == "red"
    assert doc["counts"] == scorecard.counts()
    assert len(doc["cells"]) == 12 and list(doc["cells"][0]) == list(CELL_SCHEMA)
    assert len(doc["indices"]) == 6
    assert "generated_at" not in doc and "run_id" not in doc  # re-runs must be byte-identical
    no_data = next(c for c in doc["cells"] if c["status"] == "no_data")
    assert no_data["value"] is None and no_data["period_start"] is None
    assert "空气质量指数" in path.read_text(encoding="utf-8")  # UTF-8, not \\u escapes


def test_json_schema_is_documented() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "scorecard-json.md").read_text(encoding="utf-8")
    for key in (
        "schema_version",
        "as_of",
        "grain",
        "counts",
        "worst_status",
        "cells",
        "indices",
        *CELL_SCHEMA,
    ):
        assert f"`{key}`" in doc, key


def test_jsonl(tmp_path: Path, scorecard: Scorecard) -> None:
    path = exporters.write_scorecard(scorecard, "jsonl", tmp_path / "s.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 12
    first = json.loads(lines[0])
    assert first["as_of"] == "2026-11-24" and first["grain"] == "day"
    assert set(CELL_SCHEMA) <= set(first)


def test_markdown(tmp_path: Path) -> None:
    sc = make_scorecard(rename={"env.air.aqi": "A | B <b>"})
    text = exporters.render_text(sc, "markdown", lang="en")
    assert text.startswith("# Scorecard as of 2026-11-24 (day)")
    for heading in ("## Environment", "## service", "## utilities", "## Indices"):
        assert heading in text
    assert "A \\| B &lt;b&gt;" in text and "<b>" not in text
    assert "■ RED" in text and "58.0 (capped)" in text


def test_xlsx_read_back(tmp_path: Path) -> None:
    sc = make_scorecard(rename=HOSTILE)
    path = exporters.write_scorecard(sc, "xlsx", tmp_path / "s.xlsx", lang="en")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["summary", "city", "district", "indices"]
    city, district, indices = wb["city"], wb["district"], wb["indices"]
    # header row and the id and name columns stay in view; a filter over every data row
    assert city.freeze_panes == "C2" and district.freeze_panes == "C2" and indices.freeze_panes == "C2"
    last = get_column_letter(len(CELL_COLUMNS))  # every column of the level sheets, forecasts included
    assert city.auto_filter.ref == f"A1:{last}5" and district.auto_filter.ref == f"A1:{last}9"
    assert indices.auto_filter.ref == "A1:L7"
    header = [c.value for c in city[1]]
    assert header[:4] == ["indicator_id", "indicator", "area_id", "area"]
    assert city.max_row == 1 + 4 and district.max_row == 1 + 8 and indices.max_row == 1 + 6
    status_col = header.index("status") + 1
    fills = {}
    for ws in (city, district):
        for row in range(2, ws.max_row + 1):
            cell = ws.cell(row=row, column=status_col)
            fills[cell.value] = cell.fill.fgColor.rgb
    assert fills["RED"] == "FF" + STATUS_HEX["red"][1:].upper()
    assert fills["GREEN"] == "FF" + STATUS_HEX["green"][1:].upper()
    assert fills["NO DATA"] == "FF" + STATUS_HEX["no_data"][1:].upper()
    # formula-like names are text, neutralised, and the workbook holds no formula at all
    names = [city.cell(row=r, column=2).value for r in range(2, city.max_row + 1)]
    assert '\'=HYPERLINK("http://x")' in names and "'@SUM(1+1)" in names and "'-2+3" in names
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
    value_col = header.index("value") + 1
    assert city.cell(row=2, column=value_col).value == 128.0


def _column(ws: Any, name: str) -> int:
    return [c.value for c in ws[1]].index(name) + 1


def test_xlsx_number_formats_follow_unit_and_decimals(tmp_path: Path) -> None:
    """Values stay numbers, shown with the indicator's unit and declared decimals; changes signed."""
    sc = make_scorecard()
    sc = replace(sc, meta={"decimals": {"env.air.aqi": 0, "water.supply.pressure_ok": 2}})
    wb = openpyxl.load_workbook(exporters.write_scorecard(sc, "xlsx", tmp_path / "s.xlsx", lang="en"))
    ws = wb["district"]
    rows = {
        (ws.cell(row=r, column=1).value, ws.cell(row=r, column=3).value): r for r in range(2, ws.max_row + 1)
    }
    value, change, attain = _column(ws, "value"), _column(ws, "change_previous"), _column(ws, "attainment")
    aqi = ws.cell(row=rows["env.air.aqi", "500103"], column=value)
    assert (aqi.value, aqi.number_format) == (212.0, '#,##0" index"')  # decimals: 0
    water = ws.cell(row=rows["water.supply.pressure_ok", "500103"], column=value)
    assert (water.value, water.number_format) == (97.5, '#,##0.00"%"')  # a literal %, not ×100
    days = ws.cell(row=rows["env.air.good_days", "500103"], column=value)
    assert days.number_format == '#,##0.0" days"'  # not declared: one decimal
    # a percentage's change is in points, an index's in percent, each signed
    assert ws.cell(row=rows["water.supply.pressure_ok", "500103"], column=change).number_format == (
        '+#,##0.0" pp";-#,##0.0" pp";#,##0.0" pp"'
    )
    assert ws.cell(row=rows["env.air.aqi", "500103"], column=change).number_format == (
        '+#,##0.0"%";-#,##0.0"%";#,##0.0"%"'
    )
    assert ws.cell(row=rows["env.air.good_days", "500103"], column=attain).number_format == "0.0%"
    # the value cell of a colour that calls for attention is filled too; a green one is not
    assert aqi.fill.fgColor.rgb == "FF" + STATUS_HEX["red"][1:].upper()
    green = ws.cell(row=rows["env.air.aqi", "500112"], column=value)
    assert green.fill.fgColor.rgb in (None, "00000000")
    # column widths fit the content: the explanation column is wider than the kind column
    width = {k: ws.column_dimensions[k].width for k in ("F", "W")}
    assert width["W"] > width["F"] > 0


def test_xlsx_summary_counts_every_status_per_level(tmp_path: Path) -> None:
    sc = make_scorecard()
    wb = openpyxl.load_workbook(exporters.write_scorecard(sc, "xlsx", tmp_path / "s.xlsx", lang="en"))
    ws = wb["summary"]
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    assert rows[0][0] == "Scorecard as of 2026-11-24"
    head = next(i for i, r in enumerate(rows) if r[0] == "Status")
    assert rows[head][:5] == ["Status", "city", "district", "Total", None]
    table = {r[0]: r[1:4] for r in rows[head + 1 : head + 10] if r[0]}
    # by hand from the fixture, 4 indicators × (city + 2 districts): the city is yellow, blue, orange,
    # green; the districts red, green | orange, green | stale, no data | yellow, not applicable
    assert table["RED"] == [0, 1, 1] and table["GREEN"] == [1, 2, 3] and table["YELLOW"] == [1, 1, 2]
    assert table["ORANGE"] == [1, 1, 2] and table["BLUE"] == [1, 0, 1] and table["NO DATA"] == [0, 1, 1]
    assert sum(v[2] for v in table.values()) == sc.cells.height
    red = next(c for row in ws.iter_rows(min_row=head + 2) for c in row if c.value == "RED")
    assert red.fill.fgColor.rgb == "FF" + STATUS_HEX["red"][1:].upper()
    assert next(r for r in rows if r[0] == "Worst status")[1] == "RED"


def test_xlsx_chinese_labels(tmp_path: Path, scorecard: Scorecard) -> None:
    path = exporters.write_scorecard(scorecard, "xlsx", tmp_path / "s.xlsx", lang="zh")
    ws = openpyxl.load_workbook(path)["district"]
    values = {c.value for row in ws.iter_rows(min_row=2) for c in row}
    assert "红" in values and "渝中区" in values


def test_junit(scorecard: Scorecard) -> None:
    for fail_on, failures in (("red", 1), ("orange", 3), ("yellow", 5), ("never", 0)):
        root = ET.fromstring(exporters.render_text(scorecard, "junit", fail_on=fail_on))
        cases = root.findall(".//testcase")
        assert len(cases) == 12
        assert len(root.findall(".//failure")) == failures == int(root.get("failures", "-1"))
        assert len(root.findall(".//skipped")) == 3  # stale, no_data, not_applicable
    names = {c.get("name") for c in cases}
    assert "env.air.aqi@500103" in names


def test_junit_rejects_unknown_colour(scorecard: Scorecard) -> None:
    with pytest.raises(UsageError):
        exporters.render_text(scorecard, "junit", fail_on="purple")


def test_unknown_and_binary_formats(scorecard: Scorecard) -> None:
    with pytest.raises(UsageError, match="unknown format"):
        exporters.render_text(scorecard, "pdf")
    with pytest.raises(UsageError, match="--output"):
        exporters.render_text(scorecard, "xlsx")


@pytest.mark.parametrize("fmt", exporters.FORMATS)
def test_every_format_is_deterministic(tmp_path: Path, fmt: str) -> None:
    a = exporters.write_scorecard(make_scorecard(run_id=1), fmt, tmp_path / f"a{exporters.EXTENSIONS[fmt]}")
    b = exporters.write_scorecard(make_scorecard(run_id=2), fmt, tmp_path / f"b{exporters.EXTENSIONS[fmt]}")
    assert a.read_bytes() == b.read_bytes()
    assert a.stat().st_size > 100


def test_empty_scorecard_exports(tmp_path: Path) -> None:
    sc = make_scorecard()
    empty = Scorecard(as_of=sc.as_of, grain="day", cells=sc.cells.head(0))
    for fmt in exporters.FORMATS:
        exporters.write_scorecard(empty, fmt, tmp_path / f"e{exporters.EXTENSIONS[fmt]}")
    assert json.loads((tmp_path / "e.json").read_text())["cells"] == []


def test_atomic_write_failure_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    target.write_text("old contents\n")

    def failing(tmp: Path) -> None:
        tmp.write_text("half a scorec")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        exports.atomic_write(target, failing)
    assert target.read_text() == "old contents\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.csv"]


def test_atomic_write_oserror_becomes_export_error(tmp_path: Path) -> None:
    target = tmp_path / "report.csv"

    def failing(tmp: Path) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(ExportError, match="No space left"):
        exports.atomic_write(target, failing)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_sweeps_what_killed_writers_left(tmp_path: Path) -> None:
    """A writer killed mid-write leaves .NAME.PID.XXXXXXXX.tmp; the next write of NAME removes it when
    PID is gone, and leaves a live writer's file, other names' files and look-alikes alone."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    target = tmp_path / "report.csv"
    stale = tmp_path / f".report.csv.{gone.pid}.ab12cd34.tmp"
    alive = tmp_path / f".report.csv.{os.getpid()}.ef56gh78.tmp"
    other = tmp_path / f".other.csv.{gone.pid}.ab12cd34.tmp"
    lookalike = tmp_path / f".report.csv.{gone.pid}.notmine.tmp"
    for p in (stale, alive, other, lookalike):
        p.write_text("half a scorec")
    exports.atomic_write(target, lambda tmp: tmp.write_text("new\n"))
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [target.name, alive.name, other.name, lookalike.name]
    )


def test_failing_exporter_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sc = make_scorecard()
    target = tmp_path / "s.parquet"
    exporters.write_scorecard(sc, "parquet", target)
    before = target.read_bytes()

    def boom(self: pl.DataFrame, *args: object, **kwargs: object) -> None:
        target = args[0]
        if hasattr(target, "write"):  # the exporter encodes into a buffer, then writes the file itself
            target.write(b"PAR1 partial")
        else:
            Path(str(target)).write_bytes(b"PAR1 partial")
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", boom)
    with pytest.raises(ExportError):
        exporters.write_scorecard(sc, "parquet", target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.parquet"]


def test_missing_folder_is_a_clear_error(tmp_path: Path, scorecard: Scorecard) -> None:
    with pytest.raises(ExportError, match="does not exist"):
        exporters.write_scorecard(scorecard, "csv", tmp_path / "nope" / "s.csv")


def test_written_file_has_normal_permissions(tmp_path: Path, scorecard: Scorecard) -> None:
    path = exporters.write_scorecard(scorecard, "json", tmp_path / "s.json")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
