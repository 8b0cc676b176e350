"""citykpi's SQL in another dialect: every compiled statement translates, and the rewrites mean the same.

The rewrites are checked for meaning by running them on DuckDB itself (dialect ``duckdb-rewritten``):
a whole evaluation through the rewritten SQL gives the scorecard of the canonical SQL.
"""

from __future__ import annotations

import math
from datetime import date

import duckdb
import polars as pl
import pytest

from citykpi.backend.dialect import DIALECTS, Translator, frame_types, translate
from citykpi.backend.duckdb import DuckDBBackend
from citykpi.catalogue import load_catalogue
from citykpi.engine.evaluate import evaluate
from citykpi.engine.plan import compile_evaluation
from citykpi.errors import UsageError
from citykpi.warehouse import Warehouse
from tests.golden_support import SampleCity
from tests.plan_support import gathered


def _statements() -> tuple[list[tuple[str, str]], dict[str, pl.DataFrame]]:
    """The compiled sample plan, in order (a translator needs the CREATEs before the UPDATEs), and its frames."""
    plan = compile_evaluation(gathered())
    return [*plan.statements, *plan.outputs.items()], plan.frames


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_every_compiled_statement_translates(dialect: str) -> None:
    statements, frames = _statements()
    translator = Translator(dialect, frame_types(frames))
    for name, sql in statements:
        out = " ".join(translator.translate(sql)).upper()
        assert "FSUM(" not in out and "FAVG(" not in out, name
        if dialect == "spark":
            assert "TEMP TABLE" not in out and "TEMPORARY TABLE" not in out and "UPDATE " not in out, name
            # every list is ordered: sorted structs, or the sorted values a median is taken of
            unordered = out.count("COLLECT_LIST(") - out.count("ARRAY_SORT(COLLECT_LIST(")
            assert unordered == out.count("CITYKPI_MEDIAN(COLLECT_LIST(") + out.count(
                "CITYKPI_MAD(COLLECT_LIST("
            ), name


def test_canonical_sql_is_run_as_written() -> None:
    sql = "SELECT list(x ORDER BY k) FROM t"
    assert translate(sql, "duckdb") == [sql]


def test_spark_session_tables_are_scratch_tables_that_take_inserts() -> None:
    out = translate("CREATE OR REPLACE TEMP TABLE t_x AS SELECT 1 AS a", "spark")
    # Spark's file-based tables have no CREATE OR REPLACE (that needs a v2 catalogue such as Delta)
    assert out == ["DROP TABLE IF EXISTS t_x", "CREATE TABLE t_x USING PARQUET AS SELECT 1 AS a"]


def test_a_session_table_sorts_only_where_the_engine_keeps_the_order() -> None:
    """Spark reads a scratch table's files in no set order: the ORDER BY filling one is dropped
    (the read sorts), unless a LIMIT makes it choose rows; an engine that keeps order keeps it."""
    sql = "CREATE OR REPLACE TEMP TABLE t AS SELECT a, b FROM x ORDER BY b, a"
    unordered = " ".join(Translator("spark", ordered_tables=False).translate(sql))
    assert "ORDER BY" not in unordered.upper() and "SELECT a, b FROM x" in unordered
    top = "CREATE OR REPLACE TEMP TABLE t AS SELECT a FROM x ORDER BY b LIMIT 3"
    kept = " ".join(Translator("spark", ordered_tables=False).translate(top))
    assert "ORDER BY b" in kept and "LIMIT 3" in kept
    assert "ORDER BY b" in " ".join(Translator("spark").translate(sql))


def test_update_is_a_rebuilt_table_and_means_the_same() -> None:
    t = Translator("duckdb-rewritten")
    con = duckdb.connect()
    ddl = "CREATE OR REPLACE TEMP TABLE t_i (id INTEGER, bs INTEGER, score DOUBLE, sev TINYINT)"
    fill = "INSERT INTO t_i VALUES (1, 10, 50, NULL), (2, 20, 90, NULL), (3, 99, 70, NULL), (4, 10, NULL, 2)"
    update = "UPDATE t_i SET sev = CASE WHEN t_i.score > b.cut THEN 0 ELSE 3 END FROM b WHERE b.id = t_i.bs AND t_i.sev IS NULL"
    con.execute("CREATE TABLE b AS SELECT * FROM (VALUES (10, 60.0), (20, 80.0)) v(id, cut)")
    expected = con.execute(f"{ddl}; {fill}; {update}; SELECT * FROM t_i ORDER BY id").fetchall()
    for sql in (ddl, fill, update):
        for stmt in t.translate(sql):
            con.execute(stmt)
    assert con.execute("SELECT * FROM t_i ORDER BY id").fetchall() == expected
    assert expected == [(1, 10, 50.0, 3), (2, 20, 90.0, 0), (3, 99, 70.0, None), (4, 10, None, 2)]


def test_unknown_dialect_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no SQL dialect"):
        translate("SELECT 1", "cobol")


def test_ordered_list_rewrite_keeps_order_and_nulls() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT * FROM (VALUES (1, 3, 'c'), (1, 1, NULL), (1, 2, 'b'), (2, 5, 'z'), (2, 4, NULL))"
        " v(g, k, x)"
    )
    sql = "SELECT g, list(x ORDER BY k) AS xs FROM t GROUP BY g ORDER BY g"
    (rewritten,) = translate(sql, "duckdb-rewritten")
    assert "ORDER BY k)" not in rewritten
    assert (
        con.execute(rewritten).fetchall()
        == con.execute(sql).fetchall()
        == [(1, [None, "b", "c"]), (2, [None, "z"])]
    )


class _RewrittenDuckDB(DuckDBBackend):
    dialect = "duckdb-rewritten"


def test_an_evaluation_through_the_rewrites_gives_the_same_scorecard(sample_city: SampleCity) -> None:
    catalogue = load_catalogue(sample_city.catalogue)
    day = date(2025, 12, 31)
    with Warehouse.open(sample_city.db, read_only=True) as wh:
        canonical = evaluate(wh, catalogue, as_of=day, levels=["city", "district"], persist=False)
    with Warehouse.open(sample_city.db, read_only=True, backend=_RewrittenDuckDB()) as wh:
        rewritten = evaluate(wh, catalogue, as_of=day, levels=["city", "district"], persist=False)
    a, b = canonical.cells, rewritten.cells
    assert a.height == b.height > 0
    keys = ["status", "severity", "indicator_id", "area_id", "streak", "target_status"]
    assert a.select(keys).equals(b.select(keys))
    for col in (
        "value",
        "basis_value",
        "attainment",
    ):  # SUM instead of compensated fsum: last-digit noise only
        for x, y in zip(a[col].to_list(), b[col].to_list(), strict=True):
            assert (x is None) == (y is None) and (
                x is None or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)
            ), col
    assert canonical.indices.select("index_id", "area_id", "status").equals(
        rewritten.indices.select("index_id", "area_id", "status")
    )
    assert pl.Series(rewritten.cells["status"]).n_unique() > 1
