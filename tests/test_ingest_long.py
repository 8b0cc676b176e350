"""`ingest` of long-format files: every bad input, duplicates, strict, dry-run, idempotence, encodings."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from citykpi.catalogue.model import Catalogue
from citykpi.errors import UsageError
from citykpi.warehouse import IngestOptions, Warehouse, ingest
from citykpi.warehouse.ingest import expand_paths, parse_map
from tests._warehouse_support import catalogue, checksum, count, open_with_areas, write

NOW = datetime(2025, 1, 1, 12, 0)
HEADER = "indicator_id,area_id,period,value\n"
GOOD = (
    HEADER
    + "env.air.aqi,重庆,2024-01-01,55\nenv.air.aqi,成都,2024-01-01,60\nenv.air.pm25,重庆,2024-01-02,35.5\n"
)


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    w = open_with_areas(tmp_path)
    yield w  # type: ignore[misc]
    w.close()


@pytest.fixture
def cat() -> Catalogue:
    return catalogue()


def opts(**kw: object) -> IngestOptions:
    return IngestOptions(now=NOW, **kw)  # type: ignore[arg-type]


def observations(wh: Warehouse) -> pl.DataFrame:
    return wh.frame(
        "SELECT k.indicator_id, a.area_id, o.period, o.value, o.numerator, o.denominator FROM observations o "
        "JOIN indicator_keys k USING (indicator_key) JOIN areas a USING (area_key) ORDER BY ALL"
    )


def test_good_file_loads(wh: Warehouse, cat: Catalogue, tmp_path: Path) -> None:
    report = ingest(wh, cat, [write(tmp_path / "a.csv", GOOD)], opts())
    f = report.files[0]
    assert (f.status, f.rows_read, f.rows_loaded, f.rows_rejected, f.batch_id) == ("loaded", 3, 3, 0, 1)
    assert len(f.sha256) == 64
    obs = observations(wh)
    assert obs.row(0) == ("env.air.aqi", "成都", datetime(2024, 1, 1), 60.0, None, None)
    batch = wh.con.execute(
        "SELECT kind, target, status, rows_read, rows_loaded, sha256 FROM batches"
    ).fetchall()
    assert batch == [("long", "observations", "loaded", 3, 3, f.sha256)]
    assert not report.has_rejects


BAD_ROWS = [
    ("nope.x,重庆,2024-01-01,1", "unknown indicator id (not in the catalogue)", "indicator_id", "nope.x"),
    (
        "env.air.aqi,火星,2024-01-01,1",
        "unknown area id (load it with `citykpi areas load`)",
        "area_id",
        "火星",
    ),
    ("env.air.aqi,重庆,2024-01-01,abc", "unparseable number", "value", "abc"),
    ("env.air.aqi,重庆,2024-13-45,1", "unparseable date", "period", "2024-13-45"),
    ("env.air.aqi,重庆,2024-01-01,NaN", "not a finite number (NaN or infinity)", "value", "NaN"),
    ("env.air.aqi,重庆,2024-01-01,inf", "not a finite number (NaN or infinity)", "value", "inf"),
    ("env.air.aqi,重庆,2024-01-01,501", "value outside the indicator's valid_range", "value", "501"),
    ("env.air.pm25,重庆,2024-01-01,-1", "value outside the indicator's valid_range", "value", "-1"),
    ("env.air.aqi,重庆,2030-01-01,1", "period in the future", "period", "2030-01-01"),
    ("env.air.aqi,重庆,0000-01-01,1", "period before 1900 (a mistyped year?)", "period", "0000-01-01"),
    ("env.air.aqi,重庆,0202-04-01,1", "period before 1900 (a mistyped year?)", "period", "0202-04-01"),
    ("env.air.aqi,重庆,2024-01-01,", "missing value", "value", None),
    (",重庆,2024-01-01,1", "missing indicator id", "indicator_id", None),
    ("env.air.aqi,,2024-01-01,1", "missing area id", "area_id", None),
    ("env.air.aqi,重庆,,1", "missing period", "period", None),
]


@pytest.mark.parametrize(("line", "reason", "column", "value"), BAD_ROWS)
def test_each_bad_row_is_rejected_with_row_column_value(
    wh: Warehouse, cat: Catalogue, tmp_path: Path, line: str, reason: str, column: str, value: str | None
) -> None:
    text = GOOD + line + "\n"
    report = ingest(wh, cat, [write(tmp_path / "a.csv", text)], opts())
    f = report.files[0]
    assert (f.status, f.rows_read, f.rows_loaded, f.rows_rejected) == ("loaded", 4, 3, 1)
    assert f.rejects == {reason: 1}
    assert report.has_rejects
    rejects = wh.con.execute(
        "SELECT batch_id, path, row_number, column_name, value, reason FROM rejects"
    ).fetchall()
    assert rejects == [(1, str(tmp_path / "a.csv"), 4, column, value, reason)]
    assert count(wh, "observations") == 3


@pytest.mark.parametrize(("line", "reason", "column", "value"), BAD_ROWS)
def test_each_bad_row_under_strict_leaves_observations_unchanged(
    wh: Warehouse, cat: Catalogue, tmp_path: Path, line: str, reason: str, column: str, value: str | None
) -> None:
    ingest(wh, cat, [write(tmp_path / "first.csv", GOOD)], opts())
    before = observations(wh)
    text = HEADER + "env.air.aqi,杭州,2024-01-01,70\n" + line + "\n"
    f = ingest(wh, cat, [write(tmp_path / "a.csv", text)], opts(strict=True)).files[0]
    assert f.status == "rejected"
    assert f.rows_loaded == 0 and f.rows_rejected == 1
    assert "--strict" in f.message
    assert observations(wh).equals(before)
    # the rejected file is on record, with its reject
    assert wh.con.execute("SELECT status, rows_loaded FROM batches WHERE batch_id = 2").fetchall() == [
        ("rejected", 0)
    ]
    assert wh.con.execute("SELECT reason FROM rejects WHERE batch_id = 2").fetchall() == [(reason,)]


@pytest.mark.parametrize(("line", "reason", "column", "value"), BAD_ROWS)
def test_dry_run_writes_nothing(
    wh: Warehouse, cat: Catalogue, tmp_path: Path, line: str, reason: str, column: str, value: str | None
) -> None:
    before = checksum(wh)
    f = ingest(wh, cat, [write(tmp_path / "a.csv", GOOD + line + "\n")], opts(dry_run=True)).files[0]
    assert (f.status, f.rows_loaded, f.rows_rejected, f.batch_id) == ("dry_run", 3, 1, None)
    assert f.rejects == {reason: 1}
    assert checksum(wh) == before


def test_duplicates_within_file_are_all_rejected(wh: Warehouse, cat: Catalogue, tmp_path: Path) -> None:
    text = GOOD + "env.air.aqi,重庆,2024-01-01,56\n"
    f = ingest(wh, cat, [write(tmp_path / "a.csv", text)], opts()).files[0]
    assert f.rows_loaded == 2 and f.rows_rejected == 2
    rows = wh.con.execute("SELECT row_number, value, reason FROM rejects ORDER BY row_number").fetchall()
    reason = "duplicate within the file (same indicator, area and period)"
    assert rows == [(1, "rows 1, 4", reason), (4, "rows 1, 4", reason)]


def test_duplicate_of_stored_observation_reject_replace_keep(
    wh: Warehouse, cat: Catalogue, tmp_path: Path
) -> None:
    ingest(wh, cat, [write(tmp_path / "a.csv", GOOD)], opts())
    before = checksum(wh)
    changed = HEADER + "env.air.aqi,重庆,2024-01-01,99\nenv.air.aqi,重庆,2024-01-03,1\n"
    path = write(tmp_path / "b.csv", changed)

    f = ingest(wh, cat, [path], opts(dry_run=True)).files[0]
    assert f.rejects == {"duplicate of a stored observation (use --on-duplicate replace or keep)": 1}
    assert checksum(wh) == before

    f = ingest(wh, cat, [path], opts(on_duplicate="keep")).files[0]
    assert (f.rows_loaded, f.rows_skipped, f.rows_rejected) == (1, 1, 0)
    assert observations(wh).filter(pl.col("area_id") == "重庆", pl.col("indicator_id") == "env.air.aqi")[
        "value"
    ].to_list() == [55.0, 1.0]

    path2 = write(tmp_path / "c.csv", HEADER + "env.air.aqi,重庆,2024-01-01,77\n")
    f = ingest(wh, cat, [path2], opts()).files[0]
    assert f.status == "rejected" and f.rows_rejected == 1
    value = wh.con.execute("SELECT value FROM rejects WHERE batch_id = ?", [f.batch_id]).fetchall()
    assert value == [("batch 1",)]

    f = ingest(wh, cat, [path2], opts(on_duplicate="replace")).files[0]
    assert (f.status, f.rows_loaded, f.rows_replaced) == ("loaded", 1, 1)
    cq = observations(wh).filter(pl.col("area_id") == "重庆", pl.col("period") == datetime(2024, 1, 1))
    assert cq["value"].to_list() == [77.0]
    old = wh.con.execute("SELECT value, batch_id, superseded_by FROM observations_superseded").fetchall()
    assert old == [(55.0, 1, f.batch_id)]


def test_same_file_twice_is_unchanged_unless_force(wh: Warehouse, cat: Catalogue, tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", GOOD)
    ingest(wh, cat, [path], opts())
    before = checksum(wh)
    f = ingest(wh, cat, [path], opts()).files[0]
    assert f.status == "unchanged" and f.batch_id == 1 and "--force" in f.message
    assert checksum(wh) == before
    # same bytes under another name: still unchanged
    assert ingest(wh, cat, [write(tmp_path / "copy.csv", GOOD)], opts()).files[0].status == "unchanged"
    f = ingest(wh, cat, [path], opts(force=True, on_duplicate="replace")).files[0]
    assert (f.status, f.rows_loaded, f.rows_replaced) == ("loaded", 3, 3)
    assert count(wh, "observations") == 3


def test_mapping_delimiter_and_parts(wh: Warehouse, cat: Catalogue, tmp_path: Path) -> None:
    text = "指标;地区;日期;分子;分母\nenv.air.aqi;重庆;2024/01/05;3;4\nenv.air.aqi;成都;2024/01/05;1;2\n"
    mapping, _ = parse_map(
        ["indicator_id=指标", "area_id=地区", "period=日期", "numerator=分子", "denominator=分母"], "long"
    )
    f = ingest(wh, cat, [write(tmp_path / "a.csv", text)], opts(mapping=mapping)).files[0]
    assert f.rows_loaded == 2, f
    assert observations(wh).row(1) == ("env.air.aqi", "重庆", datetime(2024, 1, 5), None, 3.0, 4.0)


def test_date_format_option(wh: Warehouse, cat: Catalogue, tmp_path: Path) -> None:
    text = HEADER + "env.air.aqi,重庆,05.01.2024,3\n"
    f = ingest(wh, cat, [write(tmp_path / "a.csv", text)], opts(date_formats={"period": "%d.%m.%Y"})).files[0]
    assert f.rows_loaded == 1
    assert observations(wh)["period"].to_list() == [datetime(2024, 1, 5)]


def test_headerless_file_is_read_positionally(wh: Warehouse, cat: Catalogue, tmp_path: Path) -> None:
    f = ingest(wh, cat, [write(tmp_path / "a.csv", GOOD[len(HEADER) :])], opts()).files[0]
    assert f.rows_loaded == 3


@pytest.mark.parametrize(
    ("encoding", "prefix"), [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("gb18030", b""), ("gbk", b"")]
)
def test_encodings(wh: Warehouse, cat: Catalogue, tmp_path: Path, encoding: str, prefix: bytes) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(prefix + GOOD.encode(encoding))
    f = ingest(wh, cat, [path], opts()).files[0]
    assert f.rows_loaded == 3, f
    assert set(observations(wh)["area_id"]) == {"重庆", "成都"}


def test_undecodable_file_is_rejected(wh: Warehouse, cat: Catalogue, tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(HEADER.encode() + b"env.air.aqi,\xff\xff\xff,2024-01-01,1\n")
    before = checksum(wh)
    f = ingest(wh, cat, [path], opts()).files[0]
    assert f.status == "rejected"
    assert "neither UTF-8 nor GB18030" in f.message
    assert checksum(wh) == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        (
            "area_id,period,value\n重庆,2024-01-01,1\n",
            "no 'indicator_id' column; the file has area_id, period, value",
        ),
        (
            HEADER + "env.air.aqi,重庆,2024-01-01,1\n" * 30000 + "env.air.aqi,重庆,2024-01-01,1,extra\n",
            "cannot read the file: Invalid Input Error: CSV Error on Line: 30002",
        ),
    ],
)
def test_unreadable_files_are_rejected_whole(
    wh: Warehouse, cat: Catalogue, tmp_path: Path, text: str, message: str
) -> None:
    before = checksum(wh)
    f = ingest(wh, cat, [write(tmp_path / "a.csv", text)], opts()).files[0]
    assert f.status == "rejected"
    assert message in f.message
    assert checksum(wh) == before


def test_parquet_with_proper_types(wh: Warehouse, cat: Catalogue, tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "indicator_id": ["env.air.aqi", "env.air.aqi", "env.air.aqi"],
            "area_id": ["重庆", "成都", "重庆"],
            "period": [datetime(2024, 1, 1), datetime(2024, 1, 1), datetime(2024, 1, 2)],
            "value": [1.0, float("nan"), 600.0],
        }
    )
    path = tmp_path / "a.parquet"
    frame.write_parquet(path)
    f = ingest(wh, cat, [path], opts()).files[0]
    assert (f.rows_loaded, f.rows_rejected) == (1, 2)
    rows = wh.con.execute("SELECT row_number, reason FROM rejects ORDER BY row_number").fetchall()
    assert rows == [
        (2, "not a finite number (NaN or infinity)"),
        (3, "value outside the indicator's valid_range"),
    ]


def test_paths_dirs_and_globs(tmp_path: Path, wh: Warehouse, cat: Catalogue) -> None:
    write(tmp_path / "in" / "a.csv", GOOD)
    write(tmp_path / "in" / "sub" / "b.csv", HEADER + "env.air.aqi,上海,2024-01-01,5\n")
    write(tmp_path / "in" / "notes.md", "ignore me")
    assert [p.name for p in expand_paths([tmp_path / "in"])] == ["a.csv", "b.csv"]
    assert [p.name for p in expand_paths([str(tmp_path / "in" / "*.csv")])] == ["a.csv"]
    with pytest.raises(UsageError, match="no files match"):
        expand_paths([str(tmp_path / "none" / "*.csv")])
    with pytest.raises(UsageError, match="no such file or directory"):
        expand_paths([tmp_path / "missing.csv"])
    report = ingest(wh, cat, [tmp_path / "in"], opts(), progress=lambda *_: None)
    assert [f.rows_loaded for f in report.files] == [3, 1]
    assert report.rows_loaded == 4


def test_bad_options(wh: Warehouse, cat: Catalogue, tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", GOOD)
    with pytest.raises(UsageError, match="unknown source 'nope'"):
        ingest(wh, cat, [path], opts(fmt="source", source="nope"))
    with pytest.raises(UsageError, match="needs --source"):
        ingest(wh, cat, [path], opts(fmt="source"))
    with pytest.raises(UsageError, match="unknown --on-duplicate"):
        ingest(wh, cat, [path], opts(on_duplicate="merge"))
    with pytest.raises(UsageError, match="expected NAME=VALUE"):
        parse_map(["oops"], "long")
    with pytest.raises(UsageError, match="unknown field 'zone'"):
        parse_map(["zone=x"], "long")


def test_progress_callback(wh: Warehouse, cat: Catalogue, tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    ingest(
        wh, cat, [write(tmp_path / "a.csv", GOOD)], opts(), progress=lambda m, d, t: seen.append((m, d, t))
    )
    assert seen[0][1:] == (0, 1) and seen[-1][1:] == (1, 1)
    assert "loaded" in seen[-1][0]


def test_observations_are_appended_in_period_order(wh: Warehouse, cat: Catalogue, tmp_path: Path) -> None:
    text = HEADER + "".join(f"env.air.aqi,重庆,2024-01-{d:02d},{d}\n" for d in (5, 3, 9, 1, 7))
    ingest(wh, cat, [write(tmp_path / "a.csv", text)], opts())
    periods = [r[0].day for r in wh.con.execute("SELECT period FROM observations").fetchall()]
    assert periods == [1, 3, 5, 7, 9]


def test_blanks_around_cells_are_tolerated(wh: Warehouse, cat: Catalogue, tmp_path: Path) -> None:
    text = HEADER + 'env.air.aqi , 重庆 , 2024-01-01 , 55 \n"env.air.aqi","成都","",""\n'
    f = ingest(wh, cat, [write(tmp_path / "a.csv", text)], opts()).files[0]
    assert (f.rows_loaded, f.rows_rejected) == (1, 1)
    assert observations(wh).row(0)[:4] == ("env.air.aqi", "重庆", datetime(2024, 1, 1), 55.0)
    assert f.rejects == {"missing period": 1}
