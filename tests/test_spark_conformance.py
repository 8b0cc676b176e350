"""Conformance: the same catalogues over the same data give the same scorecards on DuckDB and on Spark.

Two catalogues, each loaded by the same ingest calls into an embedded warehouse and into a Spark
warehouse folder (one Spark session, ``local[2]``, for the whole module):

* the **rule kinds**: docs/catalogue.md's examples, which use every threshold basis, value kind,
  time and area roll-up, target method, normalisation and aggregation, over generated data
  (``tests/spark_support.py``), evaluated at every grain, then after a replacing ingest, replayed
  as ingested and drilled back far enough for the long-history streak path;
* the **sample city** (``indicators/`` over ``citykpi.sample`` data with a short history).

Cells, indices and history must agree: identical statuses, colours, explanations, labels, ranks and
index statuses, numbers within 1e-9 relative. A failure lists the differing cells and columns and
names the first plan statement after which a session table differs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from citykpi.catalogue import load_catalogue
from citykpi.catalogue.model import Catalogue
from citykpi.engine.evaluate import evaluate
from citykpi.engine.runs import diff_runs, list_runs
from citykpi.engine.scorecard import Scorecard
from citykpi.sample import load_sample
from citykpi.warehouse import IngestOptions, Warehouse, ingest, load_areas
from tests.golden_support import SampleCity
from tests.spark_support import (
    END,
    MASTER,
    first_divergence,
    frame_differences,
    replacement_file,
    report,
    require_spark,
    scorecard_differences,
    write_rule_catalogue,
    write_rule_data,
)

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """The Spark backend on local[2]; its session is stopped when the module is done."""
    require_spark()
    from citykpi.backend.spark import SparkBackend, stop_session

    yield SparkBackend(MASTER)
    stop_session()


@dataclass
class Pair:
    """The same data in a DuckDB warehouse and in a Spark warehouse."""

    duck: Warehouse
    spark: Warehouse
    catalogue: Catalogue
    root: Path
    ingests: list[tuple[str, Any, Any]]


def _file_facts(report_: Any) -> list[tuple[object, ...]]:
    return [
        (r.status, r.rows_read, r.rows_loaded, r.rows_rejected, r.rows_skipped, r.rows_replaced, r.batch_id)
        for r in report_.files
    ]


@pytest.fixture(scope="module")
def rule_kinds(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("rule-kinds")
    catalogue = load_catalogue(write_rule_catalogue(root / "catalogue"))
    areas, files = write_rule_data(catalogue, root / "data")
    duck = Warehouse.open(root / "rules.duckdb")
    remote = Warehouse.open(root / "rules-warehouse", backend=spark)
    ingests = []
    for wh in (duck, remote):
        load_areas(wh, areas)
    for f in files:
        a = ingest(duck, catalogue, [f.path], f.options)
        b = ingest(remote, catalogue, [f.path], f.options)
        ingests.append((f.path.name, a, b))
    yield Pair(duck, remote, catalogue, root, ingests)
    duck.close()
    remote.close()


def _assert_same(pair: Pair, a: Scorecard, b: Scorecard, **request: Any) -> None:
    diffs = scorecard_differences(a, b)
    if diffs:
        where = first_divergence(pair.duck, pair.spark, pair.catalogue, **request)
        pytest.fail(f"{report(diffs)}\n{where}", pytrace=False)
    assert a.cells.height > 0


def _both(pair: Pair, **request: Any) -> tuple[Scorecard, Scorecard]:
    return evaluate(pair.duck, pair.catalogue, **request), evaluate(pair.spark, pair.catalogue, **request)


# --- the rule kinds -------------------------------------------------------------------------------------


def test_sub_daily_evaluation_is_refused_on_spark(rule_kinds: Pair) -> None:
    """Hour and 15-minute grains and --at are DuckDB's alone for now (docs/spark.md, Limits): a usage
    error that says so, never a scorecard that differs."""
    from datetime import datetime

    from citykpi.errors import UsageError

    for request in (
        {"grain": "hour", "at": datetime(2025, 12, 31, 14)},
        {"grain": "day", "at": datetime(2025, 12, 31, 14)},
    ):
        with pytest.raises(UsageError, match="spark backend evaluates days and coarser periods only"):
            evaluate(rule_kinds.spark, rule_kinds.catalogue, persist=False, **request)


def test_ingest_gives_the_same_batches(rule_kinds: Pair) -> None:
    for name, a, b in rule_kinds.ingests:
        assert _file_facts(a) == _file_facts(b), name
        assert a.rows_loaded > 0, name
    rejects = "SELECT batch_id, row_number, column_name, value, reason FROM rejects ORDER BY ALL"
    assert rule_kinds.duck.con.execute(rejects).fetchall() == rule_kinds.spark.con.execute(rejects).fetchall()


def test_rule_kinds_at_day_grain_all_levels(rule_kinds: Pair) -> None:
    request = {"as_of": END, "grain": "day"}
    a, b = _both(rule_kinds, **request)
    _assert_same(rule_kinds, a, b, **request)
    # the scorecard is not trivially equal: it has every status and several colours
    statuses = set(a.cells["status"].to_list())
    assert {"no_data", "not_applicable", "stale"} <= statuses, statuses
    assert len(statuses & {"green", "blue", "yellow", "orange", "red"}) >= 4, statuses
    assert a.indices["score"].drop_nulls().len() > 0


@pytest.mark.slow  # a few minutes of Spark: with `make test-all`; CI keeps the day grain
@pytest.mark.parametrize("grain", ["week", "month", "quarter", "year"])
def test_rule_kinds_at_coarser_grains(rule_kinds: Pair, grain: str) -> None:
    request = {"as_of": END, "grain": grain, "levels": ["city", "district"], "persist": False}
    a, b = _both(rule_kinds, **request)
    request.pop("persist")
    _assert_same(rule_kinds, a, b, **request)


def test_replacement_replay_and_long_history(rule_kinds: Pair) -> None:
    """A replacing ingest supersedes on both (on Spark: removal and superseded files beside the new
    batch); the replay before it and a drill-down 90 days back agree."""
    path = replacement_file(rule_kinds.catalogue, rule_kinds.root / "data")
    options = IngestOptions(fmt="long", on_duplicate="replace")
    # a DuckDB connection that evaluated is sandboxed for good (no file reads): open it again to ingest
    rule_kinds.duck.close()
    rule_kinds.duck = Warehouse.open(rule_kinds.root / "rules.duckdb")
    a_rep = ingest(rule_kinds.duck, rule_kinds.catalogue, [path], options)
    b_rep = ingest(rule_kinds.spark, rule_kinds.catalogue, [path], options)
    assert _file_facts(a_rep) == _file_facts(b_rep)
    assert a_rep.files[0].rows_replaced > 0
    tables = rule_kinds.spark.path / "tables"
    assert list((tables / "observations__removed").glob("removed_by=*/*.parquet"))
    assert list((tables / "observations_superseded").glob("superseded_by=*/day=*/*.parquet"))
    before = int(a_rep.files[0].batch_id) - 1

    request = {"as_of": END, "grain": "day"}
    a, b = _both(rule_kinds, **request)  # recorded: the second day run, for runs and diff below
    _assert_same(rule_kinds, a, b, **request)

    replay = {
        "as_of": END,
        "grain": "day",
        "as_ingested": before,
        "history_from": END - timedelta(days=90),
        "persist": False,
    }
    a, b = _both(rule_kinds, **replay)
    replay.pop("persist")
    _assert_same(rule_kinds, a, b, **replay)
    assert a.history["period_start"].min() <= END - timedelta(days=62)  # the ordered-list streak path

    keep = ["run_id", "as_of", "grain", "catalogue_hash", "max_batch_id", "cells", "counts"]
    assert list_runs(rule_kinds.duck).select(keep).equals(list_runs(rule_kinds.spark).select(keep))
    runs = list_runs(rule_kinds.duck)["run_id"].to_list()
    da = diff_runs(rule_kinds.duck, runs[1], runs[0])
    db = diff_runs(rule_kinds.spark, runs[1], runs[0])
    assert da.height > 0
    assert frame_differences(da, db, ["indicator_id", "area_id"], "diff") == []


def test_spark_warehouse_publishes_batches_as_partitioned_parquet(rule_kinds: Pair) -> None:
    root = rule_kinds.spark.path
    obs = root / "tables" / "observations"
    batches = sorted(p.name for p in obs.iterdir())
    assert batches and all(b.startswith("batch_id=") for b in batches)
    days = list(obs.glob("batch_id=*/day=*/*.parquet"))
    assert len({p.parent.name for p in days}) > 30  # one folder per day of data
    assert not any((root / "_staging").glob("*")) if (root / "_staging").exists() else True
    local = rule_kinds.spark.con.execute(
        "SELECT count(*) FROM citykpi.main.observations"  # the control file's own table: staging only
    ).fetchall()
    assert local == [(0,)]


# --- the sample city --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_pair(
    spark: Any, sample_city: SampleCity, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    catalogue = load_catalogue(sample_city.catalogue)
    root = tmp_path_factory.mktemp("sample-spark")
    remote = Warehouse.open(root / "sample-warehouse", backend=spark)
    load_sample(remote, catalogue, sample_city.data)
    duck = Warehouse.open(sample_city.db, read_only=True)
    yield Pair(duck, remote, catalogue, root, [])
    duck.close()
    remote.close()


@pytest.mark.parametrize(
    ("grain", "levels"),
    [("day", None), pytest.param("month", ["city", "district"], marks=pytest.mark.slow)],
)
def test_sample_city(sample_pair: Pair, grain: str, levels: list[str] | None) -> None:
    request = {"as_of": date(2025, 12, 31), "grain": grain, "levels": levels, "persist": False}
    a, b = _both(sample_pair, **request)
    request.pop("persist")
    _assert_same(sample_pair, a, b, **request)
    assert pl.Series(a.cells["status"]).n_unique() > 3


# --- every rewrite, on its own ----------------------------------------------------------------------------

#: Rows the rewrite examples read (table ``ex``): ties for rounding, NULLs, a group of NULLs only,
#: negative and fractional values, tiny and huge ones, timestamps and dates.
EXAMPLE_ROWS = pl.DataFrame(
    {
        "g": [1, 1, 1, 2, 2, 3, 3, 4],
        "k": [0, 1, 2, 3, 1, 2, 0, 5],
        "x": [17.95, 2.675, -2.5, 3.5, 1.005, 0.125, 1e-7, 123456789.123],
        "y": [None, 4.0, 1.5, None, None, 2.25, 0.0, -8.0],
        "s": ["c", None, "a", "z", "y", "b", "d", "e"],
        "ts": [date(2025, 12, 31 - n) for n in range(8)],
        "d": [date(2024, 11 - n, 15) for n in range(8)],
    },
    schema_overrides={"k": pl.Int32, "g": pl.Int32},
).with_columns(
    pl.col("ts").cast(pl.Datetime("us")) + pl.duration(hours=pl.col("k") * 5, seconds=pl.col("k") * 7)
)

#: One or more canonical (DuckDB) queries over ``ex`` per rewrite of ``SPARK_REWRITES``, run on DuckDB as
#: written and on Spark as translated: adding a rewrite means adding its examples here.
REWRITE_EXAMPLES: dict[str, tuple[str, ...]] = {
    "list_indexing": ("SELECT g, ['a', 'b', 'c'][g] AS x, ['a', 'b'][k + 5] AS y FROM ex",),
    "ieee_division": ("SELECT x / y AS q, y / 0 AS r, (y - y) / 0 AS n FROM ex",),
    "integer_division": ("SELECT k // 2 AS i, -k // 2 AS j, x // 4 AS f FROM ex",),
    "counts_if": (
        "SELECT g, count_if(y > 1) AS n, count_if(x > 1) FILTER (WHERE y IS NOT NULL) AS m FROM ex GROUP BY g",
    ),
    "any_values": ("SELECT g, any_value(y) AS a, any_value(s) FILTER (WHERE k > 0) AS b FROM ex GROUP BY g",),
    "finite_checks": ("SELECT x, isfinite(x / y) AS f, isfinite(y) AS g FROM ex",),
    "medians": (
        "SELECT g, median(x) AS m, mad(x) AS d, median(y) AS n, mad(y) FILTER (WHERE k > 0) AS e FROM ex GROUP BY g",
    ),
    "list_means": (
        "SELECT g, list_avg(list(y)) AS a, list_avg(list_transform(list(x), lambda v: abs(v - 1))) AS b "
        "FROM ex GROUP BY g",
    ),
    "interval_functions": (
        "SELECT CAST(d + to_days(k) AS DATE) AS a, CAST(d + to_weeks(k) AS DATE) AS b, "
        "CAST(d + to_months(3 * k) AS DATE) AS c, CAST(d + to_years(k) AS DATE) AS e FROM ex",
    ),
    "qualify_filters": (
        "SELECT g, k, x FROM ex QUALIFY row_number() OVER (PARTITION BY g ORDER BY k) <= g - 1",
        "WITH r AS (SELECT e.* FROM ex e QUALIFY rank() OVER (PARTITION BY e.g ORDER BY e.x DESC) = 1) "
        "SELECT g, x FROM r",
    ),
    "list_functions": (
        "SELECT g, len(list(x)) AS n, list_position(list(k), 1) AS p, "
        "coalesce(list_position(list_transform(range(len(list(x))), lambda i: i > 0), true) - 1, 0) AS q "
        "FROM ex GROUP BY g",
    ),
    "materialized_ctes": (
        "WITH r AS MATERIALIZED (SELECT g, x FROM ex) SELECT count(*) AS n, max(x) AS m FROM r",
    ),
    "named_windows": (
        "SELECT g, x, count(*) OVER p AS n, percent_rank() OVER (p ORDER BY x DESC) AS r FROM ex "
        "WINDOW p AS (PARTITION BY g)",
    ),
    "ordered_lists": (
        "SELECT g, list(s ORDER BY x) AS xs, list(k ORDER BY ts, s) AS ks, "
        "list(k ORDER BY x) FILTER (WHERE k > 0) AS fs FROM ex GROUP BY g",
    ),
    "compensated_sums": (
        "SELECT g, fsum(x) AS s, favg(x) AS m, fsum(y) FILTER (WHERE x > 0) AS p, fsum(y) AS n FROM ex GROUP BY g",
        "SELECT g, x, favg(x) OVER (PARTITION BY g ORDER BY k ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS m FROM ex",
    ),
    "epoch_seconds": ("SELECT epoch(ts) AS e, epoch(ts) - epoch(CAST(d AS TIMESTAMP)) AS span FROM ex",),
    "date_differences": (
        "SELECT date_diff('day', d, CAST(ts AS DATE)) AS dd, date_diff('month', d, CAST(ts AS DATE)) AS mm, "
        "date_diff('quarter', d, DATE '2026-02-01') AS qq, date_diff('year', d, DATE '2026-01-01') AS yy FROM ex",
    ),
    "integer_casts": (
        "SELECT CAST(x AS BIGINT) AS a, CAST(x * 10 AS INTEGER) AS b, CAST(k / 2 AS SMALLINT) AS c FROM ex",
    ),
    "double_text": (
        "SELECT CAST(x AS VARCHAR) AS a, CAST(x * 1e-6 AS VARCHAR) AS b, CAST(x * 1e9 AS VARCHAR) AS c, "
        "CAST(y AS VARCHAR) AS d, CAST(-0.0 * x AS VARCHAR) AS e FROM ex",
    ),
    "rounding": (
        "SELECT round(x, 1) AS a, round(x, 2) AS b, round(x, k) AS c, round(x * 1000, -2) AS d FROM ex",
    ),
}


@pytest.fixture(scope="module")
def example_engines(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    import duckdb

    from citykpi.backend.spark import SparkConnection, session

    con = SparkConnection(session(MASTER), tmp_path_factory.mktemp("examples") / "scratch")
    con.register("ex", EXAMPLE_ROWS)
    duck = duckdb.connect()
    duck.register("ex", EXAMPLE_ROWS)
    yield duck, con
    con.close()
    duck.close()


def test_every_rewrite_has_an_example() -> None:
    from citykpi.backend.dialect import SPARK_REWRITES

    assert {r.name for r in SPARK_REWRITES} == set(REWRITE_EXAMPLES)


@pytest.mark.parametrize(
    ("rewrite", "sql"), [(name, sql) for name, queries in REWRITE_EXAMPLES.items() for sql in queries]
)
def test_rewrite_example_gives_the_same_rows(
    example_engines: tuple[Any, Any], rewrite: str, sql: str
) -> None:
    from citykpi.backend.dialect import Translator

    duck, con = example_engines
    expected = duck.sql(sql).pl()
    statements = Translator("spark", con.column_types).translate(sql)
    # session tables of shared CTEs come before the query, their DROPs after it
    at = max(n for n, st in enumerate(statements) if not st.upper().startswith(("DROP ", "CREATE ")))
    query = statements[at]
    for statement in statements[:at]:
        con.execute(statement)
    got = con.frame(query)
    for statement in statements[at + 1 :]:
        con.execute(statement)
    keys = list(expected.columns)
    got = got.select(keys)
    # lists compare as text; everything else value by value (1e-9 for numbers, exact text)
    norm = [
        pl.col(c).cast(pl.List(pl.String)).list.join("|")
        for c, t in expected.schema.items()
        if isinstance(t, pl.List)
    ]
    if norm:
        expected, got = expected.with_columns(norm), got.with_columns(norm)
    diffs = frame_differences(expected, got.cast(dict(expected.schema), strict=False), keys, rewrite)
    assert not diffs, f"{sql}\n→ {query}\n" + report(diffs)


def test_the_docs_list_every_rewrite() -> None:
    import re

    from citykpi.backend.dialect import rewrites_markdown

    text = (Path(__file__).resolve().parents[1] / "docs" / "spark.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- spark:rewrites -->\n(.*?)<!-- /spark -->", text, re.DOTALL)
    assert block is not None and block.group(1) == rewrites_markdown()


def test_the_evaluation_session_cannot_read_files(example_engines: tuple[Any, Any]) -> None:
    """Spark's sandbox: SQL on raw files is off for the session (the expression whitelist is the first guard)."""
    from citykpi.errors import EngineError

    _duck, con = example_engines
    for sql in ("SELECT * FROM text.`/etc/passwd`", "SELECT * FROM parquet.`/etc`"):
        with pytest.raises(EngineError):
            con.execute(sql).fetchall()
