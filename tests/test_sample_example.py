"""examples/chongqing_air: the engine's good-air days equal the README's independent DuckDB figures."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from citykpi.catalogue import check_catalogue, load_catalogue
from citykpi.engine.evaluate import evaluate
from citykpi.warehouse.areas import load_areas
from citykpi.warehouse.connection import Warehouse
from citykpi.warehouse.ingest import IngestOptions, ingest
from tests.real_data import REAL

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "chongqing_air"
DATA = REAL / "china-aqi-10cities-daily" / "chongqing_daily.csv"


def _readme_figures() -> dict[int, int]:
    """Year -> good-air days, read from the README's reference table."""
    text = (EXAMPLE / "README.md").read_text(encoding="utf-8")
    return {int(y): int(n) for y, n in re.findall(r"^\| (\d{4})[^|]*\| \*\*(\d+)\*\* \|", text, flags=re.M)}


def test_example_catalogue_is_sound() -> None:
    assert check_catalogue(str(EXAMPLE / "indicators")).diagnostics == ()


@pytest.mark.skipif(not DATA.exists(), reason="shared/real-data is not beside the checkout")
def test_engine_matches_the_readme(tmp_path: Path) -> None:
    figures = _readme_figures()
    assert set(figures) == {2022, 2023, 2024, 2025}
    catalogue = load_catalogue(EXAMPLE / "indicators")
    wh = Warehouse.open(tmp_path / "cq.duckdb")
    try:
        load_areas(wh, EXAMPLE / "areas.csv")
        report = ingest(
            wh,
            catalogue,
            [DATA],
            IngestOptions(
                fmt="wide",
                mapping={"area_id": "city", "period": "date"},
                wide={"AQI": "env.air.aqi", "PM2.5": "env.air.pm25"},
            ),
        )
        assert report.files[0].rows_rejected == 0
        for year, expected in figures.items():
            as_of = date(2025, 9, 20) if year == 2025 else date(year, 12, 31)
            card = evaluate(wh, catalogue, as_of=as_of, persist=False)
            cell = card.cells.filter(card.cells["indicator_id"] == "env.air.good_days")
            assert cell["value"].to_list() == [expected], year
    finally:
        wh.close()
