"""Real files load: ten-city AQI (wide) and NYC 311 cases (raw source table); wide and source edge cases."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from citykpi.catalogue.model import SourceTable
from citykpi.errors import WarehouseError
from citykpi.warehouse import IngestOptions, Warehouse, ingest, load_areas
from tests._warehouse_support import AIR, DATA, REAL, catalogue, checksum, count, open_with_areas, write

AQI = REAL / "china-aqi-10cities-daily" / "master_daily.csv"
NYC = REAL / "nyc311-feb2023" / "test_sample3.csv"
WIDE = IngestOptions(fmt="wide", mapping={"area_id": "city", "period": "date"}, wide=AIR)

needs_real = pytest.mark.skipif(
    not AQI.exists() or not NYC.exists(), reason="shared/real-data is not beside the checkout"
)


@needs_real
def test_ten_city_aqi_loads_as_wide_observations(tmp_path: Path) -> None:
    with open_with_areas(tmp_path) as wh:
        f = ingest(wh, catalogue(), [AQI], WIDE).files[0]
        assert f.status == "loaded", f
        assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (13590 * 7, 13590 * 7, 0)
        stats = wh.frame(
            """SELECT k.indicator_id, count(*) AS n, count(DISTINCT o.area_key) AS areas, min(period) AS first,
                      max(period) AS last
               FROM observations o JOIN indicator_keys k USING (indicator_key) GROUP BY ALL ORDER BY 1"""
        )
        assert stats["n"].to_list() == [13590] * 7
        assert stats["areas"].to_list() == [10] * 7
        assert stats["first"].to_list() == [datetime(2022, 1, 1)] * 7
        assert stats["last"].to_list() == [datetime(2025, 9, 20)] * 7
        # chongqing_daily.csv holds the same rows as the 重庆 rows of the master file: all duplicates
        f2 = ingest(wh, catalogue(), [AQI.parent / "chongqing_daily.csv"], WIDE).files[0]
        assert f2.status == "rejected" and f2.rows_rejected == 1359 * 7
        keep = IngestOptions(
            fmt="wide", mapping={"area_id": "city", "period": "date"}, wide=AIR, on_duplicate="keep"
        )
        f3 = ingest(wh, catalogue(), [AQI.parent / "chongqing_daily.csv"], keep).files[0]
        assert (f3.status, f3.rows_skipped, f3.rows_loaded, f3.rows_rejected) == ("loaded", 1359 * 7, 0, 0)


@needs_real
def test_aqi_gb18030_copy_loads_the_same(tmp_path: Path) -> None:
    gbk = tmp_path / "aqi_gbk.csv"
    gbk.write_bytes((AQI.parent / "chongqing_daily.csv").read_text("utf-8").encode("gb18030"))
    with open_with_areas(tmp_path) as wh:
        f = ingest(wh, catalogue(), [gbk], WIDE).files[0]
        assert (f.status, f.rows_loaded) == ("loaded", 1359 * 7)
        assert wh.frame("SELECT DISTINCT a.area_id FROM observations JOIN areas a USING (area_key)")[
            "area_id"
        ].to_list() == ["重庆"]


@needs_real
def test_nyc311_loads_as_raw_source_table(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "n.duckdb") as wh:
        load_areas(wh, DATA / "areas_nyc.yaml")
        f = ingest(wh, catalogue(), [NYC], IngestOptions(fmt="source", source="nyc311")).files[0]
        assert (f.status, f.rows_read, f.rows_loaded, f.rows_rejected, f.target) == (
            "loaded",
            4999,
            4999,
            0,
            "src_nyc311",
        )
        stats = wh.con.execute(
            """SELECT count(*), count(closed_date), min(created_date), max(created_date),
                      count(*) FILTER (WHERE closed_date < created_date), count(DISTINCT area_key)
               FROM src_nyc311"""
        ).fetchall()[0]
        assert stats == (4999, 4454, datetime(2023, 2, 28, 11, 31), datetime(2023, 2, 28, 23, 45), 2, 5)
        cols = dict(
            wh.con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'src_nyc311'"
            ).fetchall()
        )
        assert (
            cols["created_date"] == "TIMESTAMP"
            and cols["latitude"] == "DOUBLE"
            and cols["area_key"] == "INTEGER"
        )
        # the key deduplicates against stored rows
        again = ingest(
            wh, catalogue(), [NYC], IngestOptions(fmt="source", source="nyc311", force=True)
        ).files[0]
        assert again.status == "rejected" and again.rows_rejected == 4999
        kept = ingest(
            wh,
            catalogue(),
            [NYC],
            IngestOptions(fmt="source", source="nyc311", force=True, on_duplicate="replace"),
        ).files[0]
        assert (kept.rows_loaded, kept.rows_replaced) == (4999, 4999)
        assert count(wh, "src_nyc311") == 4999


def _cases(tmp_path: Path, rows: str) -> Path:
    header = "Unique Key,Created Date,Closed Date,Agency,Complaint Type,Borough,Latitude\n"
    return write(tmp_path / "cases.csv", header + rows)


def test_source_rejects(tmp_path: Path) -> None:
    rows = (
        "1,02/28/2023 11:31:00 AM,02/28/2023 12:00:00 PM,DOT,Noise,BROOKLYN,40.1\n"
        "2,2023-02-28 11:31,,DOT,Noise,BROOKLYN,40.1\n"  # ISO: wrong for the declared format
        "3,02/28/2023 11:31:00 AM,,DOT,Noise,ATLANTIS,40.1\n"
        "4,02/28/2023 11:31:00 AM,,DOT,Noise,QUEENS,north\n"
        "1,02/28/2023 11:35:00 AM,,DOT,Noise,QUEENS,40.2\n"
        "5,,,DOT,Noise,QUEENS,40.2\n"
        "6,02/28/2033 11:31:00 AM,,DOT,Noise,QUEENS,40.2\n"
        "7,02/28/2023 11:31:00 AM,,DOT,Noise,BRONX,40.2\n"
    )
    with Warehouse.open(tmp_path / "n.duckdb") as wh:
        load_areas(wh, DATA / "areas_nyc.yaml")
        before = checksum(wh)
        opts = IngestOptions(fmt="source", source="nyc311", now=datetime(2024, 1, 1))
        dry = ingest(
            wh, catalogue(), [_cases(tmp_path, rows)], IngestOptions(**{**opts.__dict__, "dry_run": True})
        ).files[0]
        assert checksum(wh) == before
        f = ingest(wh, catalogue(), [_cases(tmp_path, rows)], opts).files[0]
        assert (f.rows_loaded, f.rows_rejected) == (dry.rows_loaded, dry.rows_rejected) == (1, 7)
        got = wh.con.execute(
            "SELECT row_number, column_name, value, reason FROM rejects ORDER BY row_number"
        ).fetchall()
        assert got == [
            (1, None, "rows 1, 5", "duplicate key within the file"),
            (
                2,
                "Created Date",
                "2023-02-28 11:31",
                "unparseable timestamp (expected format %m/%d/%Y %I:%M:%S %p)",
            ),
            (3, "Borough", "ATLANTIS", "unknown area id (load it with `citykpi areas load`)"),
            (4, "Latitude", "north", "unparseable double"),
            (5, None, "rows 1, 5", "duplicate key within the file"),
            (6, "Created Date", None, "missing created_date"),
            (7, "Created Date", "02/28/2033 11:31:00 AM", "created_date in the future"),
        ]
        assert wh.con.execute("SELECT unique_key FROM src_nyc311").fetchall() == [("7",)]


def test_source_columns_changed_in_catalogue(tmp_path: Path) -> None:
    rows = "7,02/28/2023 11:31:00 AM,,DOT,Noise,BRONX,40.2\n"
    with Warehouse.open(tmp_path / "n.duckdb") as wh:
        load_areas(wh, DATA / "areas_nyc.yaml")
        ingest(wh, catalogue(), [_cases(tmp_path, rows)], IngestOptions(fmt="source", source="nyc311"))
        base = catalogue()
        src = base.sources[0]
        changed = SourceTable(
            id=src.id,
            columns={**src.columns, "status": "text"},
            time_column=src.time_column,
            area_column=src.area_column,
            key=src.key,
            formats=src.formats,
        )
        cat = type(base)(indicators=base.indicators, sources=(changed,))
        path = write(
            tmp_path / "more.csv",
            "Unique Key,Created Date,Closed Date,Agency,Complaint Type,Borough,Latitude,Status\n"
            "8,02/28/2023 11:31:00 AM,,DOT,Noise,BRONX,40.2,Open\n",
        )
        with pytest.raises(WarehouseError, match="table src_nyc311 has columns"):
            ingest(wh, cat, [path], IngestOptions(fmt="source", source="nyc311"))
        assert count(wh, "src_nyc311") == 1


def test_source_missing_column_rejects_file(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "n.duckdb") as wh:
        load_areas(wh, DATA / "areas_nyc.yaml")
        path = write(tmp_path / "c.csv", "Unique Key,Borough\n1,BRONX\n")
        f = ingest(wh, catalogue(), [path], IngestOptions(fmt="source", source="nyc311")).files[0]
        assert f.status == "rejected"
        assert "source 'nyc311' columns not found in the file: created_date" in f.message
        assert "pass --map COLUMN=FILE_COLUMN" in f.message


def test_wide_csv_auto_columns_and_blanks(tmp_path: Path) -> None:
    text = (
        "area_id,period,env.air.aqi,env.air.pm25,comment\n"
        "重庆,2024-01-01,55,,fine\n"
        "成都,2024-01-01,abc,30,x\n"
        "成都,2024-01-02,700,31,x\n"
    )
    with open_with_areas(tmp_path) as wh:
        f = ingest(
            wh,
            catalogue(),
            [write(tmp_path / "w.csv", text)],
            IngestOptions(fmt="wide", now=datetime(2025, 1, 1)),
        ).files[0]
        # blank cells are no observation; 'comment' is not an indicator and is ignored
        assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (5, 3, 2)
        got = wh.con.execute(
            "SELECT row_number, column_name, value, reason FROM rejects ORDER BY row_number"
        ).fetchall()
        assert got == [
            (2, "env.air.aqi", "abc", "unparseable number"),
            (3, "env.air.aqi", "700", "value outside the indicator's valid_range"),
        ]


def test_wide_parquet(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {"city": ["重庆", "成都"], "date": [datetime(2024, 1, 1)] * 2, "AQI": [50, 60], "PM2.5": [10.5, None]}
    )
    path = tmp_path / "w.parquet"
    frame.write_parquet(path)
    with open_with_areas(tmp_path) as wh:
        opts = IngestOptions(
            fmt="wide",
            mapping={"area_id": "city", "period": "date"},
            wide={"AQI": "env.air.aqi", "PM2.5": "env.air.pm25"},
        )
        f = ingest(wh, catalogue(), [path], opts).files[0]
        assert (f.rows_loaded, f.rows_rejected) == (3, 0), f
        vals = wh.con.execute("SELECT value FROM observations ORDER BY value").fetchall()
        assert vals == [(10.5,), (50.0,), (60.0,)]


def test_wide_without_indicator_columns(tmp_path: Path) -> None:
    with open_with_areas(tmp_path) as wh:
        f = ingest(
            wh,
            catalogue(),
            [write(tmp_path / "w.csv", "area_id,period,x\n重庆,2024-01-01,1\n")],
            IngestOptions(fmt="wide"),
        ).files[0]
        assert f.status == "rejected" and "no indicator columns" in f.message
