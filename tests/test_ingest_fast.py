"""The fast ingest paths give the same answers as reading every row: typed Parquet streamed with its
time order taken from row-group statistics, coarse-cadence rows found by a pushed-down id filter
(with blank-padded ids still loaded), and the 64-area bit-block duplicate screen."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from citykpi.catalogue.model import Catalogue
from citykpi.warehouse import IngestOptions, Warehouse, ingest
from tests._warehouse_support import indicator, open_with_areas, write

NOW = datetime(2025, 1, 1)
ingest_mod = importlib.import_module("citykpi.warehouse.ingest")


def _catalogue() -> Catalogue:
    daily = indicator("t.daily")
    monthly = dataclasses.replace(indicator("t.monthly"), frequency="monthly")
    return Catalogue(indicators=(daily, monthly))


def _areas(tmp_path: Path, n: int) -> Path:
    lines = ["id,name,name_en,level,parent,population,groups", "c,C,C,city,,,"]
    lines += [f"d{i:03d},D{i},D{i},district,c,,," for i in range(n)]
    return write(tmp_path / "areas.csv", "\n".join(lines) + "\n")


Row = tuple[str, str, date, float | None]


def _parquet(path: Path, rows: list[Row], group: int = 100_000) -> Path:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (indicator_id VARCHAR, area_id VARCHAR, period DATE, value DOUBLE)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    con.execute(f"COPY (SELECT * FROM t) TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE {group})")
    con.close()
    return path


def _stored(wh: Warehouse) -> list[tuple[str, str, date, float, int]]:
    rows = wh.con.execute(
        """SELECT i.indicator_id, a.area_id, o.period::DATE, o.value, o.freq_class
        FROM observations o JOIN indicator_keys i USING (indicator_key) JOIN areas a USING (area_key)
        ORDER BY ALL"""
    ).fetchall()
    return [(str(r[0]), str(r[1]), r[2], float(r[3]), int(r[4])) for r in rows]


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[Warehouse]:
    w = open_with_areas(tmp_path, _areas(tmp_path, 140))
    yield w
    w.close()


def test_padded_coarse_id_in_parquet_is_loaded_in_its_class(wh: Warehouse, tmp_path: Path) -> None:
    rows: list[Row] = [
        ("t.daily", "d001", date(2024, 1, 1), 1.0),
        ("t.monthly", "d001", date(2024, 1, 1), 2.0),
        (" t.monthly ", "d002", date(2024, 1, 1), 3.0),
    ]
    f = ingest(wh, _catalogue(), [_parquet(tmp_path / "a.parquet", rows)], IngestOptions(now=NOW)).files[0]
    assert (f.status, f.rows_read, f.rows_loaded, f.rows_rejected) == ("loaded", 3, 3, 0)
    assert _stored(wh) == [
        ("t.daily", "d001", date(2024, 1, 1), 1.0, 0),
        ("t.monthly", "d001", date(2024, 1, 1), 2.0, 1),
        ("t.monthly", "d002", date(2024, 1, 1), 3.0, 1),
    ]


def test_padded_coarse_id_beside_bad_rows(wh: Warehouse, tmp_path: Path) -> None:
    rows: list[Row] = [
        (" t.monthly", "d001", date(2024, 1, 1), 2.0),
        ("t.nope", "d001", date(2024, 1, 1), 2.0),
        ("t.daily", "d001", date(2030, 1, 1), 2.0),
        ("t.daily", "d001", date(2024, 1, 2), None),
        ("t.monthly", "d003", date(2024, 2, 1), 5.0),
    ]
    f = ingest(wh, _catalogue(), [_parquet(tmp_path / "a.parquet", rows)], IngestOptions(now=NOW)).files[0]
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (5, 2, 3)
    assert f.rejects == {
        "unknown indicator id (not in the catalogue)": 1,
        "period in the future": 1,
        "missing value": 1,
    }
    rejected = wh.con.execute("SELECT row_number FROM rejects ORDER BY 1").fetchall()
    assert rejected == [(2,), (3,), (4,)]
    assert [r[4] for r in _stored(wh)] == [1, 1]


def test_duplicates_found_across_area_blocks(wh: Warehouse, tmp_path: Path) -> None:
    """Area keys beyond 64 fall in other bit blocks; same bits in other blocks are not duplicates."""
    day = date(2024, 1, 1)
    rows: list[Row] = [("t.daily", f"d{i:03d}", day, float(i)) for i in range(140)]
    rows += [("t.daily", "d130", day, 99.0), ("t.daily", "d005", day, 98.0)]
    f = ingest(wh, _catalogue(), [_parquet(tmp_path / "a.parquet", rows)], IngestOptions(now=NOW)).files[0]
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (142, 138, 4)
    rejected = wh.con.execute("SELECT row_number, value FROM rejects ORDER BY 1").fetchall()
    assert rejected == [
        (6, "rows 6, 142"),
        (131, "rows 131, 141"),
        (141, "rows 131, 141"),
        (142, "rows 6, 142"),
    ]


@pytest.mark.parametrize("ordered", [True, False])
def test_parquet_time_order_from_row_group_statistics(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ordered: bool
) -> None:
    """Row groups one after the other in time are taken as clustered; overlapping ones get sorted."""
    monkeypatch.setattr(ingest_mod.plan, "ROW_GROUP", 100)  # where the plans read it
    seen: list[bool | None] = []
    real = ingest_mod._ObservationPlan.clustered_by_metadata

    def spy(self: object, con: duckdb.DuckDBPyConnection) -> bool | None:
        seen.append(real(self, con))
        return seen[-1]

    monkeypatch.setattr(ingest_mod._ObservationPlan, "clustered_by_metadata", spy)
    days = [date(2024, 1, d) for d in range(1, 29)]
    rows: list[Row] = [("t.daily", f"d{a:03d}", d, 1.0) for d in days for a in range(140)]
    if not ordered:
        rows = rows[2100:] + rows[:2100]
    f = ingest(wh, _catalogue(), [_parquet(tmp_path / "a.parquet", rows, group=2048)], IngestOptions(now=NOW))
    assert f.files[0].rows_loaded == len(rows)
    assert seen == [ordered]
    stored = [r[0] for r in wh.con.execute("SELECT period::DATE FROM observations ORDER BY rowid").fetchall()]
    if not ordered:
        assert stored == sorted(stored)


def _statements(wh: Warehouse, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL the warehouse's connection runs from now on (whitespace folded), as it runs it."""
    seen: list[str] = []
    real = type(wh.con).execute

    def spy(self: object, sql: str, params: object = None) -> object:
        seen.append(" ".join(str(sql).split()))
        return real(self, sql, params)  # type: ignore[arg-type]

    monkeypatch.setattr(type(wh.con), "execute", spy)
    return seen


@pytest.mark.parametrize("policy", ["reject", "resend"])
def test_a_clash_on_the_last_day_of_a_batch_is_found(wh: Warehouse, tmp_path: Path, policy: str) -> None:
    """The clash check looks at the stored rows in the batch's time span, which the duplicate screen
    reads on its way: a stored reading on the span's last day is still a clash, one after it is not."""
    cat = _catalogue()
    first: list[Row] = [
        ("t.daily", "d001", date(2024, 1, 3), 5.0),
        ("t.daily", "d001", date(2024, 1, 4), 6.0),
    ]
    ingest(wh, cat, [_parquet(tmp_path / "a.parquet", first)], IngestOptions(now=NOW))
    days = [date(2024, 1, d) for d in (1, 2, 3)]
    second: list[Row] = [("t.daily", a, d, 7.0) for d in days for a in ("d001", "d002")]
    opts = IngestOptions(now=NOW, on_duplicate="reject" if policy == "reject" else "resend")
    f = ingest(wh, cat, [_parquet(tmp_path / "b.parquet", second)], opts).files[0]
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (6, 5, 1)  # d001 on the 3rd: 7 against 5
    assert wh.con.execute("SELECT row_number, value FROM rejects").fetchall() == [(5, "batch 1")]
    assert ("t.daily", "d001", date(2024, 1, 3), 5.0, 0) in _stored(wh)
    assert ("t.daily", "d001", date(2024, 1, 4), 6.0, 0) in _stored(wh)


def test_a_clean_feed_batch_counts_no_rejects_without_reading_them(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch no step rejected anything of reports 0 rejects without counting the empty reject table;
    one with a duplicate counts it."""
    seen = _statements(wh, monkeypatch)
    day = date(2024, 1, 1)
    clean: list[Row] = [("t.daily", f"d{i:03d}", day, float(i)) for i in range(10)]
    f = ingest(wh, _catalogue(), [_parquet(tmp_path / "a.parquet", clean)], IngestOptions(now=NOW)).files[0]
    assert (f.rows_loaded, f.rows_rejected) == (10, 0)
    assert not any(s == "SELECT count(*) FROM _ck_bad" for s in seen)
    seen.clear()
    twice: list[Row] = [*[("t.daily", f"d{i:03d}", date(2024, 1, 2), 1.0) for i in range(3)]]
    twice.append(("t.daily", "d001", date(2024, 1, 2), 2.0))
    f = ingest(wh, _catalogue(), [_parquet(tmp_path / "b.parquet", twice)], IngestOptions(now=NOW)).files[0]
    assert (f.rows_loaded, f.rows_rejected) == (2, 2)
    assert any(s == "SELECT count(*) FROM _ck_bad" for s in seen)


def test_a_batch_after_the_stored_span_is_cleared_of_clashes_before_it_is_staged(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file's footer gives its period span; with nothing stored in it, no clash is possible and the
    batch's own rows are never read around for one. A batch whose span holds a stored day is checked."""
    seen = _statements(wh, monkeypatch)
    first: list[Row] = [("t.daily", f"d{i:03d}", date(2024, 1, 1), 1.0) for i in range(5)]
    ingest(wh, _catalogue(), [_parquet(tmp_path / "a.parquet", first)], IngestOptions(now=NOW))
    seen.clear()
    later: list[Row] = [("t.daily", f"d{i:03d}", date(2024, 1, d), 2.0) for i in range(5) for d in (2, 3)]
    f = ingest(wh, _catalogue(), [_parquet(tmp_path / "b.parquet", later)], IngestOptions(now=NOW)).files[0]
    assert (f.rows_loaded, f.rows_rejected) == (10, 0)
    probes = [s for s in seen if "FROM observations o WHERE o.period BETWEEN" in s]
    assert probes and "TIMESTAMP '2024-01-02 00:00:00' AND TIMESTAMP '2024-01-03 00:00:00'" in probes[0]
    assert not any("o.batch_id <>" in s for s in seen)
    seen.clear()
    again: list[Row] = [
        ("t.daily", "d001", date(2024, 1, 3), 3.0),
        ("t.daily", "d001", date(2024, 1, 4), 3.0),
    ]
    f = ingest(wh, _catalogue(), [_parquet(tmp_path / "c.parquet", again)], IngestOptions(now=NOW)).files[0]
    assert (f.rows_loaded, f.rows_rejected) == (1, 1)  # the 3rd is stored (batch 2): a clash
    assert any("o.batch_id <>" in s for s in seen)


def test_the_duplicate_screen_reads_the_transactions_appended_rows(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch too big to be screened as it is appended is screened afterwards, selected by the store's
    predicate for appended rows (no zone-map check of the stored row groups); a duplicate is found there
    as it is by batch."""
    monkeypatch.setattr(ingest_mod.plan, "SCREEN_ON_INSERT", 0)
    seen = _statements(wh, monkeypatch)
    day = date(2024, 1, 1)
    ingest(
        wh,
        _catalogue(),
        [_parquet(tmp_path / "a.parquet", [("t.daily", "d001", day, 1.0)])],
        IngestOptions(now=NOW),
    )
    seen.clear()
    rows: list[Row] = [("t.daily", f"d{i:03d}", date(2024, 1, 2), 1.0) for i in range(3)]
    rows.append(("t.daily", "d002", date(2024, 1, 2), 2.0))
    f = ingest(wh, _catalogue(), [_parquet(tmp_path / "b.parquet", rows)], IngestOptions(now=NOW)).files[0]
    assert (f.rows_loaded, f.rows_rejected) == (2, 2)
    screens = [s for s in seen if "count(*) FILTER (WHERE dup)" in s]
    assert len(screens) == 1 and f"WHERE {wh.tables.appended_rows})" in screens[0]


@pytest.mark.parametrize("selects", ["TRUE", "FALSE", "rowid % 2 = 0"])
def test_an_appended_rows_predicate_that_selects_other_rows_is_not_relied_on(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, selects: str
) -> None:
    """Ingest checks what the predicate selected: stored rows with it (TRUE), none of the batch (FALSE)
    or a part of it each send the screen back to the batch's rows, with the same result."""
    monkeypatch.setattr(ingest_mod.plan, "SCREEN_ON_INSERT", 0)
    monkeypatch.setattr(type(wh.tables), "appended_rows", selects)
    first: list[Row] = [("t.daily", f"d{i:03d}", date(2024, 1, 1), 1.0) for i in range(4)]
    first.append(("t.daily", "d070", date(2024, 1, 1), 1.0))  # another block of areas
    ingest(wh, _catalogue(), [_parquet(tmp_path / "a.parquet", first)], IngestOptions(now=NOW))
    rows: list[Row] = [("t.daily", f"d{i:03d}", date(2024, 1, 3), 1.0) for i in range(1, 5)]
    rows.append(("t.daily", "d003", date(2024, 1, 3), 2.0))
    seen = _statements(wh, monkeypatch)
    f = ingest(wh, _catalogue(), [_parquet(tmp_path / "b.parquet", rows)], IngestOptions(now=NOW)).files[0]
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (5, 3, 2)
    assert wh.con.execute("SELECT row_number, value FROM rejects ORDER BY 1").fetchall() == [
        (3, "rows 3, 5"),
        (5, "rows 3, 5"),
    ]
    assert len([s for s in seen if "count(*) FILTER (WHERE dup)" in s]) == 2  # the predicate's, then by batch


def test_a_catalogue_of_one_storage_class_appends_in_one_pass_without_a_class_filter(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every good record of a one-class catalogue is in that class: no semi join of the ids, and a
    padded id, an unknown id and a bad value are still told apart as before."""
    seen = _statements(wh, monkeypatch)
    cat = Catalogue(indicators=(indicator("t.daily"),))
    day = date(2024, 1, 1)
    rows: list[Row] = [("t.daily", "d001", day, 1.0), (" t.daily", "d002", day, 2.0)]
    rows += [("t.nope", "d003", day, 3.0), ("t.daily", "d004", day, None)]
    f = ingest(wh, cat, [_parquet(tmp_path / "a.parquet", rows)], IngestOptions(now=NOW)).files[0]
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (4, 2, 2)
    assert [r[:2] for r in _stored(wh)] == [("t.daily", "d001"), ("t.daily", "d002")]
    inserts = [s for s in seen if "INSERT INTO observations" in s]
    assert not any("IN (SELECT indicator_id FROM _ck_ind" in s for s in inserts)
    # one pass with the ids as they are, then one of the records whose ids have blanks around them
    assert len(inserts) == 2 and "starts_with" not in inserts[0] and "starts_with" in inserts[1]


def test_a_batch_without_padded_ids_is_appended_by_one_verbatim_pass(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids are matched as they are (no per-record test for blanks), and an empty id is still told
    apart from an unknown one: the rejects come from the full staging."""
    seen = _statements(wh, monkeypatch)
    cat = Catalogue(indicators=(indicator("t.daily"),))
    day = date(2024, 1, 1)
    rows: list[Row] = [("t.daily", "d001", day, 1.0), ("", "d002", day, 2.0), ("t.nope", "d003", day, 3.0)]
    rows += [("t.daily", "", day, 4.0), ("t.daily", "d005", day, 5.0)]
    f = ingest(wh, cat, [_parquet(tmp_path / "a.parquet", rows)], IngestOptions(now=NOW)).files[0]
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (5, 2, 3)
    assert f.rejects == {
        "missing indicator id": 1,
        "unknown indicator id (not in the catalogue)": 1,
        "missing area id": 1,
    }
    inserts = [s for s in seen if "INSERT INTO observations" in s]
    assert len(inserts) == 1 and "starts_with" not in inserts[0]


def test_padded_area_ids_of_a_coarse_class_are_read_again(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record whose indicator id passes a class's pushed-down filter but whose area id has blanks
    around it is missed by the verbatim pass and appended by the pass over padded ids, once."""
    day = date(2024, 1, 1)
    rows: list[Row] = [("t.monthly", "d001", day, 1.0), ("t.monthly", " d002 ", day, 2.0)]
    rows += [("t.daily", "d003 ", day, 3.0), ("t.daily", "d004", day, 4.0), ("t.monthly", " ", day, 5.0)]
    f = ingest(wh, _catalogue(), [_parquet(tmp_path / "a.parquet", rows)], IngestOptions(now=NOW)).files[0]
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (5, 4, 1)
    assert f.rejects == {"missing area id": 1}
    assert [r[:2] for r in _stored(wh)] == [
        ("t.daily", "d003"),
        ("t.daily", "d004"),
        ("t.monthly", "d001"),
        ("t.monthly", "d002"),
    ]


@pytest.mark.parametrize("limit", [0, 2_000_000])
def test_a_small_batch_is_screened_by_the_statement_that_appends_it(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    """Up to SCREEN_ON_INSERT records, each class's INSERT stages its records once and groups their keys
    in the same statement; above it the appended rows are read back. Both find the same duplicates, in
    both classes, across area blocks, with a padded id among them."""
    monkeypatch.setattr(ingest_mod.plan, "SCREEN_ON_INSERT", limit)
    seen = _statements(wh, monkeypatch)
    day, month = date(2024, 1, 2), date(2024, 1, 1)
    rows: list[Row] = [("t.daily", f"d{i:03d}", day, float(i)) for i in range(140)]
    rows += [("t.monthly", f"d{i:03d}", month, 1.0) for i in range(0, 140, 7)]
    rows += [
        ("t.daily", "d130", day, 99.0),
        (" t.monthly", "d007", month, 2.0),
        ("t.daily", "d064", day, 3.0),
    ]
    f = ingest(wh, _catalogue(), [_parquet(tmp_path / "a.parquet", rows)], IngestOptions(now=NOW)).files[0]
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (163, 157, 6)
    assert wh.con.execute("SELECT row_number, value FROM rejects ORDER BY 1").fetchall() == [
        (65, "rows 65, 163"),
        (131, "rows 131, 161"),
        (142, "rows 142, 162"),
        (161, "rows 131, 161"),
        (162, "rows 142, 162"),
        (163, "rows 65, 163"),
    ]
    assert sorted(r[4] for r in _stored(wh)).count(1) == 19  # the monthly class, d007 rejected
    together = [s for s in seen if s.startswith("WITH m AS MATERIALIZED") and "INSERT INTO observations" in s]
    afterwards = [s for s in seen if "count(*) FILTER (WHERE dup)" in s and "FROM observations WHERE" in s]
    # the padded id is appended by a second INSERT into its class: the batch is screened afterwards
    assert (len(together), len(afterwards)) == ((0, 1) if limit == 0 else (2, 1))


@pytest.mark.parametrize("padded", [False, True])
def test_a_key_appended_by_two_inserts_into_one_class_is_a_duplicate(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, padded: bool
) -> None:
    """A padded coarse id misses the class's id filter and is appended by a second INSERT into the same
    class: each INSERT's own screen is clean, so the batch is screened once it is appended."""
    seen = _statements(wh, monkeypatch)
    month = date(2024, 1, 1)
    rows: list[Row] = [("t.monthly", f"d{i:03d}", month, 1.0) for i in range(5)]
    rows.append(((" t.monthly" if padded else "t.monthly"), "d003", month, 2.0))
    rows.append(("t.daily", "d001", date(2024, 1, 2), 1.0))
    f = ingest(wh, _catalogue(), [_parquet(tmp_path / "a.parquet", rows)], IngestOptions(now=NOW)).files[0]
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (7, 5, 2)
    assert wh.con.execute("SELECT row_number, value FROM rejects ORDER BY 1").fetchall() == [
        (4, "rows 4, 6"),
        (6, "rows 4, 6"),
    ]
    afterwards = [s for s in seen if "count(*) FILTER (WHERE dup)" in s and "FROM observations WHERE" in s]
    assert len(afterwards) == (1 if padded else 0)


@pytest.mark.parametrize(
    ("ids", "passes"),
    [
        (["t.monthly"], 1),  # one class in the file: one pass, no class filter
        (["t.daily", "t.monthly"], 2),  # both: a pass each
        (["t.monthly", "t.nope"], 2),  # an unknown id could be of any class: the catalogue's passes
    ],
)
def test_a_streamed_file_appends_only_the_classes_it_holds(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ids: list[str], passes: int
) -> None:
    """A mixed catalogue's file is appended in one pass per storage class its ids are in, not one per
    class of the catalogue; each record lands in its class either way."""
    seen = _statements(wh, monkeypatch)
    rows: list[Row] = [(i, f"d{a:03d}", date(2024, 1, 1), 1.0) for i in ids for a in range(3)]
    f = ingest(wh, _catalogue(), [_parquet(tmp_path / "a.parquet", rows)], IngestOptions(now=NOW)).files[0]
    unknown = 3 if "t.nope" in ids else 0
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (len(rows), len(rows) - unknown, unknown)
    classes = {"t.daily": 0, "t.monthly": 1}
    assert sorted({(r[0], r[4]) for r in _stored(wh)}) == sorted((i, classes[i]) for i in ids if i in classes)
    inserts = [s for s in seen if "INSERT INTO observations" in s]
    assert len(inserts) == passes
    assert ("IN (SELECT indicator_id FROM _ck_ind" in " ".join(inserts)) == (passes > 1)


def test_the_statement_that_appends_a_small_batch_records_its_storage_classes(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """series_classes gains the (indicator, class) pairs a batch brings, recorded by the appending
    statement itself: a catalogue indicator with no rows yet does not send every batch to read its
    rows back for them."""
    seen = _statements(wh, monkeypatch)
    daily: list[Row] = [("t.daily", f"d{a:03d}", date(2024, 1, 1), 1.0) for a in range(3)]
    ingest(wh, _catalogue(), [_parquet(tmp_path / "a.parquet", daily)], IngestOptions(now=NOW))
    monthly: list[Row] = [
        ("t.monthly", "d001", date(2024, 1, 1), 1.0),
        ("t.daily", "d001", date(2024, 1, 2), 2.0),
    ]
    ingest(wh, _catalogue(), [_parquet(tmp_path / "b.parquet", monthly)], IngestOptions(now=NOW))
    recorded = wh.con.execute(
        "SELECT i.indicator_id, s.freq_class FROM series_classes s JOIN indicator_keys i USING (indicator_key) ORDER BY 1"
    ).fetchall()
    assert recorded == [("t.daily", 0), ("t.monthly", 1)]
    assert not any("FROM observations WHERE batch_id" in s and "series_classes" in s for s in seen)
