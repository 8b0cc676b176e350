"""End to end: hostile names from the areas file and the catalogue come out of every export harmless.

The unit tests in test_export_formats.py and test_render_html.py cover the renderers with synthetic
scorecards; this goes through `areas load`, `ingest` and `evaluate --format … --output` as a user would.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from citykpi.cli import app
from citykpi.render.html import static_text
from tests.scorecard_city import CATALOGUE

SCRIPT = "<script>alert('x')</script>"
FORMULA = "=cmd|' /C calc'!A0"
AREAS = f'id,name,name_en,level,parent,population\n500000,重庆市,Chongqing,city,,100\n500103,"{SCRIPT}","{FORMULA}",district,500000,60\n500112,"@SUM(1+1)",-2+3,district,500000,40\n'


@pytest.fixture(scope="module")
def hostile_city(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A database whose area names and one indicator name are hostile; returns (db, catalogue, folder)."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "catalogue").mkdir()
    text = CATALOGUE.replace(
        "{zh: 空气质量指数, en: Air quality index}", f'{{zh: "{FORMULA}", en: "{SCRIPT}"}}'
    )
    assert text != CATALOGUE
    (root / "catalogue" / "c.yaml").write_text(text, encoding="utf-8")
    (root / "areas.csv").write_text(AREAS, encoding="utf-8")
    (root / "obs.csv").write_text(
        "indicator_id,area_id,period,value\n"
        "env.air.aqi,500103,2026-11-01,250\nenv.air.aqi,500112,2026-11-01,40\n"
        "water.supply.pressure_ok,500103,2026-11-01,99\nwater.supply.pressure_ok,500112,2026-11-01,99\n",
        encoding="utf-8",
    )
    db = root / "w.duckdb"
    base = ["--db", str(db), "--catalogue", str(root / "catalogue")]
    assert CliRunner().invoke(app, [*base, "areas", "load", str(root / "areas.csv")]).exit_code == 0
    assert CliRunner().invoke(app, [*base, "ingest", str(root / "obs.csv")]).exit_code == 0
    return db, root / "catalogue", root


def _export(city: tuple[Path, Path, Path], fmt: str, lang: str) -> Path:
    db, cat, root = city
    out = root / f"s-{lang}.{fmt}"
    result = CliRunner().invoke(
        app,
        ["--db", str(db), "--catalogue", str(cat), "evaluate", "--date", "2026-11-01", "--format", fmt,
         "--output", str(out), "--lang", lang],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_html_shows_hostile_names_as_text(hostile_city: tuple[Path, Path, Path], lang: str) -> None:
    doc = _export(hostile_city, "html", lang).read_text(encoding="utf-8")
    # the one script is the report's own (sorting and filtering), byte for byte
    assert doc.lower().count("<script") == 1
    assert f"<script>{static_text('report.js')}</script>" in doc
    assert "&lt;script&gt;" in doc


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_csv_and_xlsx_cells_are_never_formulas(hostile_city: tuple[Path, Path, Path], lang: str) -> None:
    starts = ("=", "+", "-", "@", "\t", "\r")
    cells = list(csv.reader(io.StringIO(_export(hostile_city, "csv", lang).read_text(encoding="utf-8"))))
    texts = [c for row in cells[1:] for c in row]
    assert any(FORMULA in c for c in texts)
    for c in texts:  # a number may be negative; any text that looks like a formula is quoted with '
        assert not c.startswith(starts) or _is_number(c), c
    book = openpyxl.load_workbook(_export(hostile_city, "xlsx", lang))
    seen = []
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    seen.append(cell.value)
                    assert not cell.value.startswith(starts), (ws.title, cell.coordinate, cell.value)
    assert "'" + FORMULA in seen


def test_json_keeps_names_verbatim(hostile_city: tuple[Path, Path, Path]) -> None:
    """JSON is data, not a spreadsheet: names are exact (escaping is the reader's JSON parser's job)."""
    doc = json.loads(_export(hostile_city, "json", "en").read_text(encoding="utf-8"))
    names = {c["area_name_zh"] for c in doc["cells"]} | {c["name_en"] for c in doc["cells"]}
    assert SCRIPT in names


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_query_csv_neutralises_formula_cells(tmp_path: Path) -> None:
    """`citykpi query --format csv` of the rejects (which keep hostile cells verbatim) is spreadsheet-safe."""
    from citykpi.warehouse import Warehouse, load_areas
    from tests.scorecard_city import write_city

    paths = write_city(tmp_path)
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        load_areas(wh, paths["areas"])
    data = Path(__file__).parent / "corpus" / "data" / "formula_injection.csv"
    base = ["--db", str(tmp_path / "w.duckdb"), "--catalogue", str(paths["catalogue"])]
    assert CliRunner().invoke(app, [*base, "ingest", str(data)]).exit_code == 1
    result = CliRunner().invoke(
        app, [*base, "query", "SELECT value, row_number FROM rejects", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    values = [row[0] for row in csv.reader(io.StringIO(result.stdout))][1:]
    assert "'" + FORMULA in values and "'@SUM(A1)" in values
    assert not any(v.startswith(("=", "+", "-", "@")) for v in values)
    raw = CliRunner().invoke(app, [*base, "query", "SELECT value FROM rejects", "--format", "json"])
    assert FORMULA in json.loads(raw.stdout)[0].values() or FORMULA in raw.stdout  # JSON stays exact
