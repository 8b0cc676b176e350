"""Frames handed to DuckDB through their Arrow stream read exactly as through pyarrow."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import duckdb
import polars as pl
import pytest

from citykpi.backend.duckdb import DuckDBConnection, _streamable


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "i8": pl.Series([1, None], dtype=pl.Int8),
            "u32": pl.Series([1, 2], dtype=pl.UInt32),
            "f": [1.5, float("nan")],
            "s": ["城市", None],
            "b": [True, None],
            "d": [dt.date(2025, 1, 1), None],
            "ts": [dt.datetime(2025, 1, 1, 3), None],
            "tsz": pl.Series([dt.datetime(2025, 1, 1, 3), None], dtype=pl.Datetime("us", "Asia/Shanghai")),
            "dur": [dt.timedelta(minutes=5), None],
            "e": pl.Series(["x", "y"], dtype=pl.Enum(["x", "y"])),
            "dec": pl.Series(["1.25", None]).cast(pl.Decimal(10, 2)),
        }
    )


def test_a_flat_frame_reads_the_same_through_its_stream() -> None:
    frame = _frame()
    assert _streamable(frame)
    ours = DuckDBConnection(duckdb.connect())
    theirs = duckdb.connect()
    ours.register("x", frame)
    theirs.register("x", frame)
    for sql in ("DESCRIBE x", "SELECT * FROM x", "SELECT count(*) FROM x WHERE i8 = 1"):
        assert repr(ours.execute(sql).fetchall()) == repr(theirs.execute(sql).fetchall())  # NaN is not NaN
    # a view over the stream can be read again: every scan exports a fresh stream
    assert ours.execute("SELECT count(*) FROM x").fetchall() == [(2,)]


@pytest.mark.parametrize(
    "column",
    [
        pl.Series("n", [None, None], dtype=pl.Null),
        pl.Series("l", [[1], None]),
        pl.Series("st", [{"a": 1}, None]),
    ],
    ids=["null", "list", "struct"],
)
def test_frames_the_stream_reader_refuses_take_the_pyarrow_path(column: pl.Series) -> None:
    frame = pl.DataFrame([pl.Series("k", [1, 2]), column])
    assert not _streamable(frame)
    con = DuckDBConnection(duckdb.connect())
    con.register("x", frame)
    assert con.execute("SELECT count(*), count(k) FROM x").fetchall() == [(2, 2)]


def test_registering_a_flat_frame_does_not_import_pyarrow() -> None:
    code = (
        "import sys, duckdb, polars as pl\n"
        "from citykpi.backend.duckdb import DuckDBConnection\n"
        "con = DuckDBConnection(duckdb.connect())\n"
        "con.register('x', pl.DataFrame({'a': [1, 2], 's': ['p', 'q']}))\n"
        "assert con.execute('SELECT sum(a) FROM x').fetchall() == [(3,)]\n"
        "print('pyarrow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
