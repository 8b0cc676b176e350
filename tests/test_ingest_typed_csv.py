"""A CSV is first read by DuckDB's typed reader, and that never changes what ingest does.

Whatever the file holds (blank-padded ids, odd date and number spellings, NaN, future periods,
duplicates, clashes with stored rows, GB18030), loading it with the typed read on and off gives
the same rows, the same rejects (row, column, text, reason) and the same counts. The spy tests
show the typed read really is what a clean file goes through, and that it hands over to the text
read whenever a record is bad.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import io
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citykpi.warehouse import IngestOptions, Warehouse, ingest
from tests._warehouse_support import catalogue, open_with_areas, write

NOW = datetime(2025, 6, 1)
ingest_mod = importlib.import_module("citykpi.warehouse.ingest")

IDS = ["env.air.aqi", "env.air.pm25", "test.count"]
ODD_IDS = [" env.air.pm25", "env.air.aqi ", "env.air.nope", ""]
AREAS = ["上海", "北京", "南京", "广州"]
ODD_AREAS = [" 北京", "火星", ""]
PERIODS = ["2024-01-02", "2024-01-03 08:00:00", "2024-1-4"]
ODD_PERIODS = [
    " 2024-01-05",
    "2024/01/06",
    "20240107",
    "2024-01-08T09:30:00+08:00",
    "2024年1月9日",
    "2024-02-30",
    "2099-01-01",
    "0000-01-01",
    "yesterday",
    "",
]
VALUES = ["1", "42.5", "0", "499.9"]
ODD_VALUES = [" 7", "8 ", "1e3", "nan", "-inf", "abc", "1,5", "600", "-1", "+3", ".5", ""]


def cell(common: list[str], odd: list[str]) -> st.SearchStrategy[str]:
    """Mostly ordinary cells, sometimes an odd one."""
    return st.one_of(st.sampled_from(common), st.sampled_from(common), st.sampled_from(odd))


rows_strategy = st.lists(
    st.tuples(
        cell(IDS, ODD_IDS), cell(AREAS, ODD_AREAS), cell(PERIODS, ODD_PERIODS), cell(VALUES, ODD_VALUES)
    ),
    min_size=1,
    max_size=40,
)


def csv_text(rows: list[tuple[str, ...]], header: tuple[str, ...], delimiter: str = ",") -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def outcome(wh: Warehouse, result: Any) -> dict[str, Any]:
    """Everything an ingest leaves behind, comparable between two databases."""
    fields = dataclasses.asdict(result)
    fields.pop("path")
    return {
        "result": fields,
        "observations": wh.con.execute(
            """SELECT k.indicator_id, a.area_id, o.period, o.value, o.numerator, o.denominator,
                      o.batch_id, o.freq_class
               FROM observations o JOIN indicator_keys k USING (indicator_key) JOIN areas a USING (area_key)
               ORDER BY ALL"""
        ).fetchall(),
        "superseded": wh.con.execute("SELECT count(*) FROM observations_superseded").fetchall(),
        "rejects": wh.con.execute(
            "SELECT batch_id, row_number, column_name, value, reason FROM rejects ORDER BY ALL"
        ).fetchall(),
    }


def load_both(
    tmp: Path, files: list[Path], options: IngestOptions
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Ingest ``files`` in order into two new databases, typed read on and off."""
    runs = []
    for typed in (True, False):
        folder = tmp / ("typed" if typed else "text")
        folder.mkdir()
        with open_with_areas(folder) as wh:
            opts = dataclasses.replace(options, typed_csv=typed)
            runs.append([outcome(wh, ingest(wh, catalogue(), [f], opts).files[0]) for f in files])
    return runs[0], runs[1]


@pytest.fixture
def staged(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Records, for each CSV staging, whether it read the typed table (True) or the text (False)."""
    seen: list[bool] = []
    original = ingest_mod._Plan._stage_csv

    def spy(self: Any, con: duckdb.DuckDBPyConnection, table: Any) -> Any:
        seen.append((table or self.table).typed)
        return original(self, con, table)

    monkeypatch.setattr(ingest_mod._Plan, "_stage_csv", spy)
    yield seen


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=rows_strategy,
    stored=rows_strategy,
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]),
    delimiter=st.sampled_from([",", ";", "\t"]),
    policy=st.sampled_from(["reject", "replace", "keep"]),
    strict=st.booleans(),
)
def test_typed_and_text_reads_agree(
    rows: list[tuple[str, ...]],
    stored: list[tuple[str, ...]],
    encoding: str,
    delimiter: str,
    policy: str,
    strict: bool,
) -> None:
    header = ("indicator_id", "area_id", "period", "value")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        first = write(tmp / "stored.csv", csv_text(stored, header))
        second = write(tmp / "obs.csv", csv_text(rows, header, delimiter), encoding)
        options = IngestOptions(now=NOW, on_duplicate=policy, strict=strict)  # type: ignore[arg-type]
        typed, text = load_both(tmp, [first, second], options)
    assert typed == text


def test_clean_file_is_staged_once_from_the_typed_read(tmp_path: Path, staged: list[bool]) -> None:
    dates = [p for p in PERIODS if ":" not in p]
    rows = [(i, a, p, "1.5") for i in IDS for a in AREAS for p in dates]
    path = write(tmp_path / "obs.csv", csv_text(rows, ("indicator_id", "area_id", "period", "value")))
    with open_with_areas(tmp_path) as wh:
        f = ingest(wh, catalogue(), [path], IngestOptions(now=NOW)).files[0]
    assert (f.status, f.rows_loaded, f.rows_rejected) == ("loaded", len(rows), 0)
    assert staged == [True]


def test_time_stamps_are_staged_from_the_text_where_an_offset_shows(
    tmp_path: Path, staged: list[bool]
) -> None:
    """DuckDB's typed TIMESTAMP read drops a UTC offset without a word; a file of time stamps is read
    as text, where an offset is seen (and converted, or refused without a city time zone)."""
    rows = [("env.air.aqi", "北京", "2024-01-03 08:00:00", "1"), ("env.air.aqi", "上海", "2024-01-03", "2")]
    path = write(tmp_path / "obs.csv", csv_text(rows, ("indicator_id", "area_id", "period", "value")))
    with open_with_areas(tmp_path) as wh:
        f = ingest(wh, catalogue(), [path], IngestOptions(now=NOW)).files[0]
    assert (f.status, f.rows_loaded, staged) == ("loaded", 2, [False])


@pytest.mark.parametrize(
    ("bad_row", "reason", "via_typed"),
    [
        # the typed read takes the file, the record fails validation: staged again from the text
        (("env.air.nope", "北京", "2024-01-02", "1"), "unknown indicator id (not in the catalogue)", True),
        ((" env.air.aqi", "北京", "2024-01-02", "1"), None, True),  # padded id: loaded, via the text
        (("env.air.aqi", "北京", "2024-01-02", "nan"), "not a finite number (NaN or infinity)", True),
        # the typed read refuses the file: only the text read stages it
        (("env.air.aqi", "北京", "2024-01-02", "abc"), "unparseable number", False),
        (("env.air.aqi", "北京", "2024/13/45", "1"), "unparseable date", False),
    ],
)
def test_a_bad_record_hands_over_to_the_text_read(
    tmp_path: Path, staged: list[bool], bad_row: tuple[str, ...], reason: str | None, via_typed: bool
) -> None:
    rows = [("env.air.pm25", "上海", "2024-01-02", "3"), bad_row]
    path = write(tmp_path / "obs.csv", csv_text(rows, ("indicator_id", "area_id", "period", "value")))
    with open_with_areas(tmp_path) as wh:
        f = ingest(wh, catalogue(), [path], IngestOptions(now=NOW)).files[0]
        rejects = wh.con.execute("SELECT row_number, reason FROM rejects").fetchall()
    assert staged == ([True, False] if via_typed else [False])
    if reason is None:
        assert (f.rows_loaded, rejects) == (2, [])
    else:
        assert (f.rows_loaded, rejects) == (1, [(2, reason)])


def test_a_date_format_is_read_typed_too(tmp_path: Path, staged: list[bool]) -> None:
    rows = [("env.air.aqi", "北京", "02/01/2024", "1")]
    path = write(tmp_path / "obs.csv", csv_text(rows, ("indicator_id", "area_id", "period", "value")))
    with open_with_areas(tmp_path) as wh:
        options = IngestOptions(now=NOW, date_formats={"period": "%d/%m/%Y"})
        f = ingest(wh, catalogue(), [path], options).files[0]
        period = wh.con.execute("SELECT period FROM observations").fetchall()
    assert (f.rows_loaded, staged, period) == (1, [True], [(datetime(2024, 1, 2),)])


#: Files with a --date-format for the period, and how the typed-read run stages each.
FORMATTED = {
    "cn_clean": (
        "%Y年%m月%d日",
        "env.air.aqi,北京,2024年1月2日,5\nenv.air.pm25,上海,2024年12月31日,6\n",
        [True],
    ),
    "cn_padded": ("%Y年%m月%d日", "env.air.aqi,北京, 2024年1月2日 ,5\n", [True]),
    "cn_bad_month": (
        "%Y年%m月%d日",
        "env.air.aqi,北京,2024年1月2日,5\nenv.air.aqi,上海,2024年13月2日,6\n",
        [False],
    ),
    "cn_iso_mixed": ("%Y年%m月%d日", "env.air.aqi,北京,2024-01-02,5\n", [False]),
    "day_first_future": (
        "%d.%m.%Y",
        "env.air.aqi,北京,02.01.2024,5\nenv.air.aqi,上海,02.01.2099,6\n",
        [True, False],
    ),
    "zoned": ("%Y-%m-%d %H:%M %z", "env.air.aqi,北京,2024-01-02 08:00 +0800,5\n", [False]),
}


@pytest.mark.parametrize("name", sorted(FORMATTED))
def test_formatted_periods_agree(tmp_path: Path, name: str, staged: list[bool]) -> None:
    fmt, body, expected = FORMATTED[name]
    path = write(tmp_path / f"{name}.csv", "indicator_id,area_id,period,value\n" + body)
    typed, text = load_both(tmp_path, [path], IngestOptions(now=NOW, date_formats={"period": fmt}))
    assert typed == text
    assert staged[:-1] == expected  # the last staging is the text-only run's


def test_wide_file_through_the_typed_read(tmp_path: Path, staged: list[bool]) -> None:
    text = "area_id,period,env.air.aqi,env.air.pm25\n北京,2024-01-02,50,\n上海,2024-01-02,61,20.5\n"
    path = write(tmp_path / "wide.csv", text)
    with open_with_areas(tmp_path) as wh:
        f = ingest(wh, catalogue(), [path], IngestOptions(fmt="wide", now=NOW)).files[0]
    assert (f.status, f.rows_loaded, staged) == ("loaded", 3, [True])


def test_row_numbers_hold_across_the_parallel_reader(tmp_path: Path, staged: list[bool]) -> None:
    """A file of several of the 8 MB ranges DuckDB's CSV reader hands each thread is read by both
    threads; a duplicate near each end must still be reported at its own row, as the text read
    numbers it."""
    n = 1_200_000
    path = tmp_path / "big.csv"
    con = duckdb.connect()
    con.execute(
        f"""COPY (
            SELECT indicator_id, area_id, period, value FROM (
                SELECT i, ['env.air.aqi', 'env.air.pm25', 'env.air.pm10', 'test.count'][i % 4 + 1] AS indicator_id,
                       ['上海', '北京', '南京', '广州', '成都'][(i // 4) % 5 + 1] AS area_id,
                       (TIMESTAMP '1990-01-01' + to_hours(i // 20))::VARCHAR AS period, (i % 97)::VARCHAR AS value
                FROM range({n}) t(i)
                UNION ALL SELECT {n}, 'env.air.pm25', '上海', '1990-01-01 00:00:00', '5'
            ) ORDER BY i
        ) TO '{path}' (HEADER, DELIMITER ',')"""
    )
    con.close()
    assert path.stat().st_size > 4 * 8_000_000
    # time stamps are read typed only with a declared format (the plain typed read would hide offsets)
    options = IngestOptions(now=NOW, date_formats={"period": "%Y-%m-%d %H:%M:%S"})
    typed, text = load_both(tmp_path, [path], options)
    assert staged == [True, False]
    assert typed == text
    assert typed[0]["rejects"] == [
        (1, 2, None, f"rows 2, {n + 1}", "duplicate within the file (same indicator, area and period)"),
        (1, n + 1, None, f"rows 2, {n + 1}", "duplicate within the file (same indicator, area and period)"),
    ]
    assert typed[0]["result"]["rows_loaded"] == n - 1


#: Files beside the Hypothesis corpus, and how the typed-read run stages each: [True] the typed read
#: is kept, [True, False] a bad record sends it to the text read, [False] DuckDB refused the typed read.
CORPUS = {
    "headerless": "env.air.aqi,北京,2024-01-02,5\nenv.air.pm25,上海,2024-01-02,6\n",
    "headerless_bad": "env.air.aqi,北京,2024-01-02,5\nenv.air.pm25,上海,2024-01-02,6\nenv.air.pm25,广州,2024-01-02,nan\n",
    "extra_columns": "note,indicator_id,area_id,period,value,unit\n见附件,env.air.aqi,北京,2024-01-02,5,μg\n"
    "a,env.air.pm25,上海,2024-01-03,7,\n",
    "quoted_newline": 'indicator_id,area_id,period,value,comment\nenv.air.aqi,北京,2024-01-02,5,"two\nlines"\n'
    'env.air.aqi,上海,2024-01-02,"6",x\n',
    "crlf_bom": "\ufeffindicator_id,area_id,period,value\r\nenv.air.aqi,北京,2024-01-02,5\r\n",
    "semicolon_decimal_comma": "indicator_id;area_id;period;value\nenv.air.aqi;北京;2024-01-02;5,5\n"
    "env.air.aqi;上海;2024-01-02;6\n",
    "parts": "indicator_id,area_id,period,numerator,denominator\nenv.air.aqi,北京,2024-01-02,3,4\n"
    "env.air.aqi,上海,2024-01-02,nan,4\nenv.air.aqi,广州,2024-01-02,,4\n",
    "wide": "area_id,period,env.air.aqi,env.air.pm25\n北京,2024-01-02,50,\n上海,2024-01-02,61,20.5\n",
    "wide_odd": "area_id,period,env.air.aqi,env.air.pm25\n北京,2024-01-02,50,n/a\n上海, 2024-01-02,1e9,-3\n",
    "only_header": "indicator_id,area_id,period,value\n",
}


STAGED = {
    "headerless": [True],
    "headerless_bad": [True, False],
    "extra_columns": [True],
    "quoted_newline": [True],
    "crlf_bom": [True],
    "semicolon_decimal_comma": [False],
    "parts": [True, False],
    "wide": [True],
    "wide_odd": [False],
    "only_header": [True],
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_reads_agree(tmp_path: Path, name: str, staged: list[bool]) -> None:
    path = write(tmp_path / f"{name}.csv", CORPUS[name])
    options = IngestOptions(now=NOW, fmt="wide" if name.startswith("wide") else "long")
    typed, text = load_both(tmp_path, [path], options)
    assert typed == text
    assert staged[:-1] == STAGED[name]  # the last staging is the text-only run's
