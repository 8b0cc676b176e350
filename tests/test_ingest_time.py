"""Time stamps at ingest: one city time zone, offsets converted, DST edges, the future, re-sent readings.

Readings are stored as the city's local wall-clock time. A time stamp with a UTC offset (Z, +08:00, a
zoned Parquet column) is converted; one without is local already. In a zone with daylight saving
time, a realtime or hourly reading in the hour the clocks repeat (ambiguous) or skip (non-existent)
is a coded reject, as is an offset with no zone declared, a missing offset where one is required, a
reading beyond the future tolerance, and a re-sent reading whose value changed.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from citykpi import citytime
from citykpi.catalogue.model import Catalogue
from citykpi.warehouse import IngestOptions, ingest
from citykpi.warehouse.connection import Warehouse
from tests._warehouse_support import checksum, indicator, open_with_areas, write

HEADER = "indicator_id,area_id,period,value\n"
NOW = datetime(2025, 12, 31, 14, 0)


def city(zone: str | None) -> Catalogue:
    """A realtime gas reading and a daily AQI, in a city of the given zone."""
    gas = replace(indicator("gas.lel"), frequency="realtime")
    return Catalogue(indicators=(gas, indicator("env.air.aqi")), timezone=zone)


def periods(wh: Warehouse) -> list[tuple[str, datetime, float]]:
    rows = wh.con.execute(
        """SELECT k.indicator_id, o.period, o.value FROM observations o
           JOIN indicator_keys k USING (indicator_key) ORDER BY o.period, k.indicator_id"""
    ).fetchall()
    return [(str(i), p, float(v)) for i, p, v in rows]


def rejects(wh: Warehouse) -> list[tuple[int, str, str]]:
    rows = wh.con.execute("SELECT row_number, value, reason FROM rejects ORDER BY row_number").fetchall()
    return [(int(r), str(v), str(why)) for r, v, why in rows]


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return open_with_areas(tmp_path)


def test_offsets_are_converted_to_the_city_clock(wh: Warehouse, tmp_path: Path) -> None:
    text = HEADER + (
        "gas.lel,北京,2025-12-31T06:00Z,1\n"  # UTC
        "gas.lel,北京,2025-12-31T14:05:00+08:00,2\n"  # city offset
        "gas.lel,北京,2025-12-31 01:10-05:00,3\n"  # another offset
        "gas.lel,北京,2025-12-31 14:15,4\n"  # no offset: city time already
        "gas.lel,北京,2025-12-31t06:20:00z,5\n"  # lower-case separators
    )
    later = IngestOptions(now=NOW + timedelta(hours=1))
    f = ingest(wh, city("Asia/Shanghai"), [write(tmp_path / "a.csv", text)], later).files[0]
    assert (f.status, f.rows_loaded) == ("loaded", 5)
    assert [(p, v) for _, p, v in periods(wh)] == [
        (datetime(2025, 12, 31, 14, 0), 1.0),
        (datetime(2025, 12, 31, 14, 5), 2.0),
        (datetime(2025, 12, 31, 14, 10), 3.0),
        (datetime(2025, 12, 31, 14, 15), 4.0),
        (datetime(2025, 12, 31, 14, 20), 5.0),
    ]


def test_a_zoned_parquet_column_is_an_instant(wh: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "zoned.parquet"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'America/New_York'")  # the writer's zone must not matter
    con.execute(
        f"""COPY (SELECT 'gas.lel' AS indicator_id, '北京' AS area_id,
              TIMESTAMPTZ '2025-12-31 06:00:00+00' AS period, 7.0 AS value) TO '{path}' (FORMAT parquet)"""
    )
    con.close()
    ingest(wh, city("Asia/Shanghai"), [path], IngestOptions(now=NOW))
    assert periods(wh) == [("gas.lel", datetime(2025, 12, 31, 14, 0), 7.0)]


def test_an_offset_without_a_city_zone_is_refused(wh: Warehouse, tmp_path: Path) -> None:
    text = HEADER + "gas.lel,北京,2025-12-31T06:00Z,1\ngas.lel,北京,2025-12-31 14:05,2\n"
    f = ingest(wh, city(None), [write(tmp_path / "a.csv", text)], IngestOptions(now=NOW)).files[0]
    assert (f.rows_loaded, f.rows_rejected) == (1, 1)
    assert rejects(wh) == [
        (1, "2025-12-31T06:00Z", "time stamp with a UTC offset, but the catalogue declares no time zone")
    ]


def test_the_hours_a_dst_zone_skips_and_repeats(wh: Warehouse, tmp_path: Path) -> None:
    berlin = city("Europe/Berlin")
    text = HEADER + (
        "gas.lel,北京,2025-03-30 02:30,1\n"  # the clocks jump from 02:00 to 03:00: never happened
        "gas.lel,北京,2025-03-30 03:30,2\n"
        "gas.lel,北京,2025-10-26 02:30,3\n"  # the clocks go back from 03:00 to 02:00: happened twice
        "gas.lel,北京,2025-10-26T00:30:00Z,4\n"  # an instant, but stored as 02:30 it would mean two
        "gas.lel,北京,2025-10-26T01:30:00Z,5\n"  # 02:30 CET, the second time: same wall clock
        "gas.lel,北京,2025-10-26T02:30:00Z,6\n"  # 03:30 CET: fine
        "env.air.aqi,北京,2025-03-30,7\n"  # a day is not an instant: never checked
    )
    f = ingest(wh, berlin, [write(tmp_path / "a.csv", text)], IngestOptions(now=NOW)).files[0]
    assert f.rows_loaded == 3
    assert rejects(wh) == [
        (1, "2025-03-30 02:30", "non-existent local time (the clocks skip it in Europe/Berlin)"),
        (3, "2025-10-26 02:30", "ambiguous local time (the clocks go back in Europe/Berlin and repeat it)"),
        (
            4,
            "2025-10-26T00:30:00Z",
            "ambiguous local time (the clocks go back in Europe/Berlin and repeat it)",
        ),
        (
            5,
            "2025-10-26T01:30:00Z",
            "ambiguous local time (the clocks go back in Europe/Berlin and repeat it)",
        ),
    ]
    assert [(p, v) for _, p, v in periods(wh)] == [
        (datetime(2025, 3, 30), 7.0),
        (datetime(2025, 3, 30, 3, 30), 2.0),
        (datetime(2025, 10, 26, 3, 30), 6.0),
    ]


def test_a_typed_parquet_file_is_checked_against_the_dst_edges_of_the_years_it_spans(
    wh: Warehouse, tmp_path: Path
) -> None:
    """A Parquet file's period statistics narrow the DST windows ingest builds to its own years; the
    edges inside those years are still found (and a file spanning years finds each year's)."""
    path = tmp_path / "typed.parquet"
    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT * FROM (VALUES
              ('gas.lel', '北京', TIMESTAMP '2024-03-31 02:30', 1.0),
              ('gas.lel', '北京', TIMESTAMP '2024-12-31 23:00', 2.0),
              ('gas.lel', '北京', TIMESTAMP '2025-03-30 02:30', 3.0),
              ('gas.lel', '北京', TIMESTAMP '2025-10-26 02:30', 4.0),
              ('gas.lel', '北京', TIMESTAMP '2025-10-26 03:30', 5.0))
              t(indicator_id, area_id, period, value)) TO '{path}' (FORMAT parquet)"""
    )
    con.close()
    f = ingest(wh, city("Europe/Berlin"), [path], IngestOptions(now=NOW)).files[0]
    assert (f.rows_loaded, f.rows_rejected) == (2, 3)
    assert [(r, why.split(" (")[0]) for r, _, why in rejects(wh)] == [
        (1, "non-existent local time"),
        (3, "non-existent local time"),
        (4, "ambiguous local time"),
    ]


def test_a_feed_may_be_required_to_give_offsets(wh: Warehouse, tmp_path: Path) -> None:
    text = (
        HEADER
        + "gas.lel,北京,2025-12-31 13:05,1\ngas.lel,北京,2025-12-31T05:10Z,2\nenv.air.aqi,北京,2025-12-31,3\n"
    )
    options = IngestOptions(now=NOW, require_offset=True)
    f = ingest(wh, city("Asia/Shanghai"), [write(tmp_path / "a.csv", text)], options).files[0]
    assert f.rows_loaded == 2
    assert rejects(wh) == [
        (1, "2025-12-31 13:05", "time stamp without a UTC offset (this feed must give one)")
    ]


def test_the_future_is_the_city_clock_plus_a_tolerance(wh: Warehouse, tmp_path: Path) -> None:
    text = HEADER + "gas.lel,北京,2025-12-31 14:03,1\ngas.lel,北京,2025-12-31 14:06,2\n"
    path = write(tmp_path / "a.csv", text)
    f = ingest(wh, city("Asia/Shanghai"), [path], IngestOptions(now=NOW)).files[0]
    assert (f.rows_loaded, [r[2] for r in rejects(wh)]) == (1, ["period in the future"])
    strict = ingest(
        wh, city("Asia/Shanghai"), [path], IngestOptions(now=NOW, force=True, future_tolerance=timedelta(0))
    ).files[0]
    assert (strict.rows_loaded, strict.rows_rejected) == (0, 2)  # 14:03 is a duplicate now, 14:06 the future


def test_readings_out_of_order_are_stored_in_time_order(wh: Warehouse, tmp_path: Path) -> None:
    text = HEADER + "".join(f"gas.lel,北京,2025-12-31 13:{m:02d},{m}\n" for m in (50, 10, 30, 0, 40, 20))
    ingest(wh, city("Asia/Shanghai"), [write(tmp_path / "a.csv", text)], IngestOptions(now=NOW))
    stored = wh.con.execute("SELECT period FROM observations ORDER BY rowid").fetchall()
    assert [p.minute for (p,) in stored] == [0, 10, 20, 30, 40, 50]


def test_a_feed_re_sending_its_latest_readings(wh: Warehouse, tmp_path: Path) -> None:
    cat = city("Asia/Shanghai")
    first = HEADER + "gas.lel,北京,2025-12-31 13:55,1\ngas.lel,上海,2025-12-31 13:55,2\n"
    ingest(wh, cat, [write(tmp_path / "a.csv", first)], IngestOptions(now=NOW))
    # five minutes later: 北京 sent nothing new (its reading again), 上海's stored reading changed, a new one
    second = HEADER + (
        "gas.lel,北京,2025-12-31 13:55,1\ngas.lel,上海,2025-12-31 13:55,9\ngas.lel,上海,2025-12-31 14:00,3\n"
    )
    before = checksum(wh)
    f = ingest(
        wh, cat, [write(tmp_path / "b.csv", second)], IngestOptions(now=NOW, on_duplicate="resend")
    ).files[0]
    assert (f.rows_loaded, f.rows_skipped, f.rows_rejected) == (1, 1, 1)
    assert rejects(wh) == [
        (2, "batch 1", "changed reading: a stored observation has the same time and another value")
    ]
    assert [v for _, _, v in periods(wh)] == [1.0, 2.0, 3.0]  # the stored reading kept
    # the same batch again is recognised and changes nothing
    again = ingest(wh, cat, [tmp_path / "b.csv"], IngestOptions(now=NOW, on_duplicate="resend")).files[0]
    assert again.status == "unchanged"
    assert checksum(wh) != before


def test_resend_with_nothing_stored_loads_every_reading(wh: Warehouse, tmp_path: Path) -> None:
    text = HEADER + "gas.lel,北京,2025-12-31 13:55,1\ngas.lel,上海,2025-12-31 13:55,2\n"
    path = write(tmp_path / "a.csv", text)
    f = ingest(wh, city("Asia/Shanghai"), [path], IngestOptions(now=NOW, on_duplicate="resend")).files[0]
    assert (f.status, f.rows_loaded, f.rows_skipped, f.rows_rejected) == ("loaded", 2, 0, 0)


def test_resend_is_for_readings_only(wh: Warehouse, tmp_path: Path) -> None:
    from citykpi.errors import UsageError
    from tests._warehouse_support import catalogue

    with pytest.raises(UsageError, match="resend"):
        ingest(
            wh, catalogue(), [tmp_path], IngestOptions(fmt="source", source="nyc311", on_duplicate="resend")
        )


@pytest.mark.parametrize("server_zone", ["Asia/Shanghai", "America/New_York", "UTC"])
def test_a_batch_arrives_by_the_city_clock_whatever_the_server_s_zone(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server_zone: str
) -> None:
    import time
    from datetime import UTC

    if not hasattr(time, "tzset"):
        pytest.skip("the process time zone can only be switched where time.tzset exists")
    monkeypatch.setenv("TZ", server_zone)
    time.tzset()
    try:
        before = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=8)  # Asia/Shanghai: UTC+8, no DST
        ingest(
            wh,
            city("Asia/Shanghai"),
            [write(tmp_path / "a.csv", HEADER + "env.air.aqi,北京,2025-12-31,80\n")],
        )
        after = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=8)
    finally:
        monkeypatch.undo()
        time.tzset()
    started, finished = wh.con.execute("SELECT started_at, finished_at FROM batches").fetchall()[0]
    assert before - timedelta(seconds=1) <= started <= finished <= after + timedelta(seconds=1)


@pytest.mark.parametrize(
    "zone", ["Europe/Berlin", "America/New_York", "Asia/Shanghai", "Australia/Lord_Howe"]
)
def test_dst_windows_of_some_years_are_those_years_of_every_window(zone: str) -> None:
    tz = citytime.zone(zone)
    every = citytime.dst_windows(tz)
    some = citytime.dst_windows(tz, (1985, 1992))
    # a window belongs to the year of its transition, whose local start is at most a day off it
    assert some == tuple(w for w in every if 1985 <= w.start.year <= 1992)
    assert citytime.dst_windows(tz, (2025, 2025)) == tuple(w for w in every if w.start.year == 2025)


def test_berlin_2025_has_its_two_known_edges() -> None:
    edges = citytime.dst_windows(citytime.zone("Europe/Berlin"), (2025, 2025))
    assert edges == (
        citytime.DstWindow(datetime(2025, 3, 30, 2), datetime(2025, 3, 30, 3), "gap"),
        citytime.DstWindow(datetime(2025, 10, 26, 2), datetime(2025, 10, 26, 3), "fold"),
    )
