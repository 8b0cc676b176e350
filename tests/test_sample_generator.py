"""The sample generator: deterministic, complete (every observed indicator has rows), files ingestible."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from citykpi.catalogue import load_catalogue
from citykpi.catalogue.model import Observed
from citykpi.sample import build_areas, generate
from citykpi.sample.generate import GB_HEADERS, WIDE_WATER
from citykpi.sample.profiles import INCIDENTS, PROFILES

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "indicators"
END = date(2025, 12, 31)
DAYS = 20


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample_a")
    generate(out, end=END, days=DAYS, catalogue_path=CATALOGUE)
    return out


def _observed_ids() -> set[str]:
    catalogue = load_catalogue(CATALOGUE)
    return {i.id for i in catalogue.indicators if isinstance(i.value, Observed)}


def test_generation_is_byte_identical(generated: Path, tmp_path: Path) -> None:
    generate(tmp_path, end=END, days=DAYS, catalogue_path=CATALOGUE)
    names = sorted(p.name for p in generated.iterdir())
    assert names == sorted(p.name for p in tmp_path.iterdir())
    for name in names:
        assert (generated / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_profiles_cover_exactly_the_observed_indicators() -> None:
    assert set(PROFILES) == _observed_ids()


def test_every_observed_indicator_has_rows(generated: Path) -> None:
    con = duckdb.connect()
    seen: set[str] = set()
    for name in ("observations_hourly.parquet", "observations_daily.parquet"):
        rows = con.execute(f"SELECT DISTINCT indicator_id FROM read_parquet('{generated / name}')").fetchall()
        seen |= {r[0] for r in rows}
    seen |= set(pl.read_csv(generated / "kpi_periodic.csv")["indicator_id"].unique())
    text = (generated / "city_management_daily_gb18030.csv").read_bytes().decode("gb18030")
    gb = pl.read_csv(text.encode("utf-8"))
    assert list(gb.columns) == list(GB_HEADERS.values())
    seen |= set(gb[GB_HEADERS["indicator_id"]].unique())
    wide = pl.read_csv(generated / "water_supply_daily_wide.csv")
    assert list(wide.columns) == ["area_id", "date", *WIDE_WATER]
    seen |= set(WIDE_WATER)
    assert seen == _observed_ids()


def test_manifest_describes_every_file(generated: Path) -> None:
    manifest = json.loads((generated / "manifest.json").read_text(encoding="utf-8"))
    files = {f["path"]: f for f in manifest["files"]}
    on_disk = {p.name for p in generated.iterdir()} - {"manifest.json"}
    assert set(files) == on_disk
    for entry in files.values():
        assert entry["rows"] > 0
        assert entry["command"].startswith("citykpi ")
        assert len(entry["sha256"]) == 64
    assert files["city_management_daily_gb18030.csv"]["encoding"] == "gb18030"
    assert files["water_supply_daily_wide.csv"]["layout"] == "wide"
    assert files["hotline_cases.parquet"]["source"] == "hotline_cases"


def test_committed_areas_file_is_the_generators(generated: Path) -> None:
    committed = (ROOT / "sample_data" / "areas.csv").read_bytes()
    assert committed == (generated / "areas.csv").read_bytes()
    assert build_areas().height == committed.decode("utf-8").count("\n") - 1


def test_hotline_cases_are_consistent(generated: Path) -> None:
    con = duckdb.connect()
    path = generated / "hotline_cases.parquet"
    row = con.execute(
        f"""SELECT count(*), count(DISTINCT case_id),
                   count(*) FILTER (WHERE due_at <= created_at),
                   count(*) FILTER (WHERE closed_at < created_at),
                   count(*) FILTER (WHERE closed_at > TIMESTAMP '{END} 23:59:59'),
                   count(*) FILTER (WHERE closed_at IS NULL),
                   count(*) FILTER (WHERE closed_at > due_at),
                   count(*) FILTER (WHERE substr(street_id, 1, 6) <> district_id)
            FROM read_parquet('{path}')"""
    ).fetchone()
    assert row is not None
    total, distinct, due_before, closed_before, closed_future, still_open, late, wrong_district = row
    assert total == distinct > 1_000 * DAYS
    assert due_before == closed_before == closed_future == wrong_district == 0
    assert 0 < still_open < total * 0.2
    assert 0 < late < total * 0.15
    streets = set(build_areas().filter(pl.col("level") == "street")["id"])
    used = {r[0] for r in con.execute(f"SELECT DISTINCT street_id FROM read_parquet('{path}')").fetchall()}
    assert used <= streets


def test_scripted_incidents_are_in_the_data(generated: Path) -> None:
    con = duckdb.connect()
    daily = generated / "observations_daily.parquet"
    hourly = generated / "observations_hourly.parquet"
    ponding = next(i for i in INCIDENTS if i.indicator == "drain.ponding.depth" and i.first == 0)
    row = con.execute(
        f"SELECT value FROM read_parquet('{daily}') WHERE indicator_id = 'drain.ponding.depth' "
        f"AND area_id = '{ponding.area}' AND period = DATE '{END}'"
    ).fetchone()
    assert row is not None and row[0] == ponding.value > 25
    lel = con.execute(
        f"SELECT max(value) FROM read_parquet('{hourly}') WHERE indicator_id = 'gas.leak.lel' "
        f"AND period >= TIMESTAMP '{END}'"
    ).fetchone()
    assert lel is not None and lel[0] >= 35
    # the silent feed: no river dissolved-oxygen readings in the last four days
    last = con.execute(
        f"SELECT max(period) FROM read_parquet('{daily}') WHERE indicator_id = 'env.water.river_do'"
    ).fetchone()
    assert last is not None and (END - last[0]).days == 4


def test_sample_loads_without_rejects_and_the_last_day_has_red_and_stale(
    generated: Path, tmp_path: Path
) -> None:
    from citykpi.engine.evaluate import evaluate
    from citykpi.sample import load_sample
    from citykpi.warehouse.connection import Warehouse

    catalogue = load_catalogue(CATALOGUE)
    wh = Warehouse.open(tmp_path / "sample.duckdb")
    try:
        loaded = load_sample(wh, catalogue, generated)
        assert loaded.rows_rejected == 0
        assert loaded.rows_loaded > 100_000
        card = evaluate(wh, catalogue, as_of=END, persist=False, levels=["city"])
    finally:
        wh.close()
    cells = card.cells
    status = dict(zip(cells["indicator_id"], cells["status"], strict=True))
    assert status["gas.leak.lel"] == "red"
    assert status["drain.ponding.depth"] == "red"
    assert status["env.air.aqi"] == "red"
    assert status["env.water.river_do"] == "stale"
    assert status["drain.river_level_margin"] == "stale"
