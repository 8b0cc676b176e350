"""The engine on real public data, checked against independent plain-SQL computations.

Chongqing's good-air days per year (daily AQI <= 100) from china-aqi-10cities-daily, and the share
of NYC 311 requests closed (a 12345-hotline stand-in), per borough and citywide.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from citykpi.catalogue import load_catalogue
from citykpi.engine.evaluate import evaluate
from citykpi.warehouse.areas import load_areas
from citykpi.warehouse.connection import Warehouse
from citykpi.warehouse.ingest import IngestOptions, ingest
from tests.real_data import REAL, needs_real_data

HERE = Path(__file__).parent
AQI_CSV = REAL / "china-aqi-10cities-daily" / "master_daily.csv"
NYC_CSV = REAL / "nyc311-feb2023" / "test_sample3.csv"

pytestmark = needs_real_data


@pytest.fixture(scope="module")
def air(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    wh = Warehouse.open(tmp_path_factory.mktemp("air") / "air.duckdb")
    catalogue = load_catalogue(HERE / "data" / "engine_real" / "air.yaml")
    load_areas(wh, HERE / "data" / "areas_cn10.csv")
    report = ingest(
        wh,
        catalogue,
        [AQI_CSV],
        IngestOptions(fmt="wide", mapping={"area_id": "city", "period": "date"}, wide={"AQI": "env.air.aqi"}),
    )
    assert report.rows_rejected == 0 and report.rows_loaded == 13_590
    return wh


def _plain_good_days() -> dict[int, int]:
    rows = duckdb.sql(
        f"""SELECT year(CAST(date AS DATE)) AS y, count(*) FILTER (WHERE AQI <= 100) AS good
            FROM read_csv('{AQI_CSV}') WHERE city = '重庆' GROUP BY y ORDER BY y"""
    ).fetchall()
    return {int(y): int(g) for y, g in rows}


@pytest.mark.parametrize("year", [2022, 2023, 2024])
def test_chongqing_good_air_days_match_plain_sql(air: Warehouse, year: int) -> None:
    catalogue = load_catalogue(HERE / "data" / "engine_real" / "air.yaml")
    sc = evaluate(air, catalogue, as_of=date(year, 12, 31), grain="year", areas=["重庆"], persist=False)
    row = sc.cells.filter(pl.col("indicator_id") == "env.air.good_days").to_dicts()[0]
    assert row["value"] == _plain_good_days()[year]
    assert row["period_start"] == date(year, 1, 1)


def test_chongqing_year_to_date_2025_and_daily_aqi(air: Warehouse) -> None:
    catalogue = load_catalogue(HERE / "data" / "engine_real" / "air.yaml")
    sc = evaluate(air, catalogue, as_of=date(2025, 9, 20), areas=["重庆"], persist=False)
    cells = {r["indicator_id"]: r for r in sc.cells.to_dicts()}
    assert cells["env.air.good_days"]["value"] == _plain_good_days()[2025]
    plain_aqi = duckdb.sql(
        f"SELECT AQI FROM read_csv('{AQI_CSV}') WHERE city = '重庆' AND CAST(date AS DATE) = DATE '2025-09-20'"
    ).fetchall()[0][0]
    assert cells["env.air.aqi"]["value"] == pytest.approx(plain_aqi)


@pytest.fixture(scope="module")
def nyc(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    wh = Warehouse.open(tmp_path_factory.mktemp("nyc") / "nyc.duckdb")
    catalogue = load_catalogue(HERE / "data" / "engine_real" / "nyc.yaml")
    load_areas(wh, HERE / "data" / "areas_nyc.yaml")
    report = ingest(
        wh,
        catalogue,
        [NYC_CSV],
        IngestOptions(
            fmt="source",
            source="nyc311",
            mapping={
                "unique_key": "Unique Key",
                "created_date": "Created Date",
                "closed_date": "Closed Date",
                "status": "Status",
                "borough": "Borough",
            },
        ),
    )
    assert report.rows_loaded == 4_999, report.to_dict()
    return wh


def test_nyc311_closure_share_matches_plain_sql(nyc: Warehouse) -> None:
    catalogue = load_catalogue(HERE / "data" / "engine_real" / "nyc.yaml")
    sc = evaluate(nyc, catalogue, as_of=date(2023, 2, 28), persist=False)
    got = {r["area_id"]: r["value"] for r in sc.cells.to_dicts()}
    plain = duckdb.sql(
        f"""SELECT coalesce(Borough, 'ALL') AS b, 100.0 * count("Closed Date") / count(*) AS share
            FROM read_csv('{NYC_CSV}', all_varchar = true) GROUP BY ROLLUP (Borough)"""
    ).fetchall()
    expected = {("NYC" if b == "ALL" else b): s for b, s in plain}
    for area, share in expected.items():
        assert got[area] == pytest.approx(share), area
    assert got["NYC"] == pytest.approx(100.0 * (4_999 - 545) / 4_999)
