"""How the execute phase keeps a big evaluation's memory down: an hour or 15-minute evaluation is
held to a bounded engine budget, the statements' scratch tables are dropped before the outputs are
read, the cells are sorted by a statement and read as they lie, outputs are streamed in batches and
columns with no value are kept as one typed null.

Whether the bounds do their job at city scale is measured in the benchmark (bench/run.py --cases
hourly), not here; these tests hold what the results must not change and that the bounds apply.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from citykpi.backend.duckdb import BACKEND, DuckDBConnection, _share_of_ram
from citykpi.catalogue.model import Rollup
from citykpi.engine import execute as ex
from citykpi.engine.plan import SUBDAILY_MEMORY_MB, SUBDAILY_READ_MEMORY_MB, Plan, compile_evaluation
from citykpi.errors import EngineError
from citykpi.render.format import level_order
from tests.engine_helpers import City, indicator
from tests.plan_support import gathered

AT = datetime(2025, 12, 31, 14, 0)


def _limit_mib(con: DuckDBConnection) -> float:
    value = str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
    number, unit = value.split()
    return float(number) * {"MiB": 1, "GiB": 1024, "KiB": 1 / 1024}[unit]


def _scratch(plan: Plan) -> set[str]:
    """Every table the plan drops before its outputs are read."""
    return {t for tables in plan.releases().values() for t in tables}


def test_scratch_tables_are_those_no_output_reads() -> None:
    plan = compile_evaluation(gathered(history_levels=()))
    scratch = _scratch(plan)
    # the classified cells and their forecasts are folded into t_cells by the last statement
    assert {"t_bucket", "t_k", "t_classified", "t_forecast"} <= scratch
    # what the outputs read, and what recording a run reads afterwards (t_cells, t_index), stays
    assert not scratch & {"t_cells", "t_index", "t_area"}
    for table in scratch:
        assert all(not re.search(rf"\b{table}\b", sql) for sql in plan.outputs.values())
    # drawing sparklines reads the periods back: then t_k is read, not scratch
    assert "t_k" not in _scratch(compile_evaluation(gathered(history_levels=("city",))))


def test_only_sub_daily_plans_ask_for_a_memory_bound() -> None:
    assert compile_evaluation(gathered()).memory_mb is None
    hourly = gathered(grain="hour", at=AT)
    assert compile_evaluation(hourly).memory_mb == SUBDAILY_MEMORY_MB


def test_the_bound_lowers_the_limit_unless_the_user_set_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CITYKPI_MEMORY_LIMIT", raising=False)
    con = DuckDBConnection(duckdb.connect(config={"memory_limit": f"{_share_of_ram()}MB"}))
    BACKEND.bound_memory(con, 64)
    assert _limit_mib(con) == pytest.approx(64 * 1000**2 / 2**20, abs=1)  # DuckDB's MB are 10^6 bytes
    BACKEND.bound_memory(con, _share_of_ram() + 1)  # never raised above the default
    assert _limit_mib(con) == pytest.approx(64 * 1000**2 / 2**20, abs=1)

    monkeypatch.setenv("CITYKPI_MEMORY_LIMIT", "300MB")
    mine = DuckDBConnection(duckdb.connect(config={"memory_limit": "300MB"}))
    BACKEND.bound_memory(mine, 64)
    assert _limit_mib(mine) == pytest.approx(300 * 1000**2 / 2**20, abs=1)


def test_a_locked_configuration_keeps_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CITYKPI_MEMORY_LIMIT", raising=False)
    con = DuckDBConnection(duckdb.connect(config={"memory_limit": "500MB"}))
    BACKEND.sandbox(con)
    BACKEND.bound_memory(con, 64)  # no error: an earlier sandboxed evaluation's limit holds
    assert _limit_mib(con) == pytest.approx(500 * 1000**2 / 2**20, abs=1)


def test_an_hourly_evaluation_runs_within_the_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CITYKPI_MEMORY_LIMIT", raising=False)
    city = City(tmp_path)
    start = datetime(2025, 12, 31)
    city.observe(
        "gas.lel", [("D1", start + timedelta(minutes=5 * n), float(n)) for n in range(12 * 15)], freq_class=2
    )
    gas = indicator("gas.lel", frequency="realtime", rollup=Rollup(time="max", area="max"))
    calls: list[tuple[str, object]] = []
    backend = type(BACKEND)
    bound, sandbox, run = backend.bound_memory, backend.sandbox, DuckDBConnection.execute

    def spy_bound(self: object, con: DuckDBConnection, megabytes: int) -> None:
        bound(self, con, megabytes)  # type: ignore[arg-type]
        calls.append(("bound", _limit_mib(con)))

    def spy_sandbox(self: object, con: DuckDBConnection, *, lock: bool = True) -> None:
        sandbox(self, con, lock=lock)  # type: ignore[arg-type]
        calls.append(("sandbox", lock))

    def spy_run(self: DuckDBConnection, sql: str, params: object = None) -> DuckDBConnection:
        if "t_bucket" in sql and not sql.startswith("DROP"):
            calls.append(("statement", _limit_mib(self)))
        return run(self, sql, params)  # type: ignore[arg-type]

    monkeypatch.setattr(backend, "bound_memory", spy_bound)
    monkeypatch.setattr(backend, "sandbox", spy_sandbox)
    monkeypatch.setattr(DuckDBConnection, "execute", spy_run)
    sc = city.evaluate(gas, grain="hour", at=AT, history_levels=())
    assert sc.cells.height > 0
    mib = 1000**2 / 2**20  # DuckDB's MB are 10^6 bytes
    statements = min(SUBDAILY_MEMORY_MB, _share_of_ram()) * mib
    read = min(SUBDAILY_READ_MEMORY_MB, _share_of_ram()) * mib
    # the statements run under the bound with file access off; the configuration is locked only
    # once the read's lower bound is set
    assert [c[0] for c in calls[:2]] == ["bound", "sandbox"] and calls[1][1] is False
    assert calls[0][1] == pytest.approx(statements, rel=0.01)
    during = [c[1] for c in calls if c[0] == "statement"]
    assert during and during == [pytest.approx(statements, rel=0.01)] * len(during)
    assert calls[-2:] == [("bound", pytest.approx(read, rel=0.01)), ("sandbox", True)]
    assert _limit_mib(city.wh.engine()) == pytest.approx(read, rel=0.01)
    locked = city.wh.con.execute("SELECT current_setting('lock_configuration')").fetchall()[0][0]
    assert str(locked).lower() == "true"
    # the scratch tables are gone, what recording a run needs is there
    temps = {
        r[0] for r in city.wh.con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    }
    assert {"t_cells", "t_index"} <= temps
    assert not temps & {"t_bucket", "t_k"}


def test_batches_read_back_the_whole_result_in_order() -> None:
    con = DuckDBConnection(duckdb.connect())
    sql = "SELECT i, i % 7 AS m, 'row ' || i AS s FROM range(2500) t(i) ORDER BY i DESC"
    parts = list(con.batches(sql, 1000))
    assert [p.height for p in parts] == [1000, 1000, 500]
    assert pl.concat(parts).equals(con.frame(sql))


def test_a_column_with_no_value_reads_as_a_typed_null() -> None:
    schema = {"a": pl.Int32(), "b": pl.Float64(), "c": pl.String(), "d": pl.Date()}
    raw = pl.DataFrame(
        {"a": [1, 2, 3], "b": [None, None, None], "c": ["x", None, "z"], "d": [None, None, None]},
        schema={"a": pl.Int64, "b": pl.Float64, "c": pl.String, "d": pl.Date},
    )
    typed = ex._typed(raw, schema)
    assert typed.schema == pl.Schema(schema)
    assert typed.to_dict(as_series=False) == {
        "a": [1, 2, 3],
        "b": [None, None, None],
        "c": ["x", None, "z"],
        "d": [None, None, None],
    }
    # parts with and without values in a column concatenate to the same frame as one read
    more = ex._typed(raw.with_columns(pl.lit(2.5).alias("b")), schema)
    both = pl.concat([typed, more], rechunk=False)
    assert both["b"].to_list() == [None, None, None, 2.5, 2.5, 2.5]


def test_scratch_is_dropped_after_the_last_statement_that_reads_it() -> None:
    plan = compile_evaluation(gathered(grain="hour", at=AT, history_levels=()))
    releases = plan.releases()
    for i, tables in releases.items():
        for table in tables:
            readers = [j for j, (_, sql) in enumerate(plan.statements) if re.search(rf"\b{table}\b", sql)]
            assert max(readers) == i
    # the buckets go before the cells are classified, not only before the read
    classify = next(i for i, (name, _) in enumerate(plan.statements) if name.startswith("classify"))
    assert any("t_bucket" in tables for i, tables in releases.items() if i < classify)


def test_the_freed_c_heap_can_be_given_back() -> None:
    import platform
    import sys

    from citykpi import heap

    heap.release_freed()  # never raises, whatever the C library
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert heap._trim() is not None


def test_cells_are_read_in_the_scorecard_order_as_written_or_sorted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last statement writes the cells in the scorecard's order; DuckDB reads them as they lie
    (the output query has no ORDER BY), a backend that does not scan in order sorts: same frame."""
    city = City(tmp_path)
    inds = [
        indicator(i, domain=d, levels=("city", "district", "street"))
        for i, d in (("z.last", "a"), ("b.first", "b"), ("m.mid", "a"))
    ]
    for n, ind in enumerate(inds):
        for area in ("S2", "S1", "D2"):
            city.daily(ind.id, area, [float(n * 10 + len(area)), float(n * 10 + 3)])
    plan = compile_evaluation(gathered(history_levels=()))
    assert "ORDER BY" not in plan.outputs["cells"].upper()
    written = city.evaluate(*inds, history_levels=()).cells
    assert written.height == 3 * 5
    keys = [pl.col("domain"), pl.col("indicator_id"), level_order(), pl.col("area_id")]
    assert written.equals(written.sort(keys, maintain_order=True))
    assert written.select("domain", "indicator_id").unique(maintain_order=True).rows() == [
        ("a", "m.mid"),
        ("a", "z.last"),
        ("b", "b.first"),
    ]
    monkeypatch.setattr(type(city.wh.backend), "scans_in_order", False)
    assert city.evaluate(*inds, history_levels=()).cells.equals(written)


def test_a_failing_statement_still_leaves_the_configuration_locked(tmp_path: Path) -> None:
    city = City(tmp_path)
    plan = Plan(
        statements=[("a broken step", "SELECT * FROM no_such_table")], memory_mb=4096, read_memory_mb=1024
    )
    with pytest.raises(EngineError) as failed:
        ex.execute(city.wh, plan)
    assert failed.value.step == "a broken step"
    locked = city.wh.con.execute("SELECT current_setting('lock_configuration')").fetchall()[0][0]
    assert str(locked).lower() == "true"
