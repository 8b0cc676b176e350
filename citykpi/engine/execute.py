"""Phase 3 of an evaluation, *execute*: run a :class:`Plan` on the warehouse's backend.

Loads the catalogue tables as session-local tables, switches on the backend's sandbox (no file
access, locked configuration) unless asked not to, runs the statements in order, timing each, and
reads the outputs back as Polars frames with the scorecard's column types.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from citykpi import heap
from citykpi.backend import Backend, Connection
from citykpi.engine.plan import Plan
from citykpi.engine.scorecard import CELL_SCHEMA, HISTORY_SCHEMA, INDEX_SCHEMA, PARTS_SCHEMA, empty_frame
from citykpi.errors import EngineError
from citykpi.sqlutil import ident
from citykpi.warehouse.connection import Warehouse

_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "cells": dict(CELL_SCHEMA),
    "indices": dict(INDEX_SCHEMA),
    "history": dict(HISTORY_SCHEMA),
    "parts": dict(PARTS_SCHEMA),
}


@dataclass
class Executed:
    """The frames an executed plan produced, with statement count and per-statement timings."""

    frames: dict[str, pl.DataFrame]
    statements: int
    timings: list[tuple[str, float]] = field(default_factory=list)


#: Rows per batch an output is read in: the names join and the casts never hold a whole copy.
READ_BATCH_ROWS = 200_000


def _read(
    con: Connection, query: str, lookups: dict[str, pl.DataFrame], schema: dict[str, pl.DataType]
) -> pl.DataFrame:
    """An output's rows with names joined, in the scorecard's types, read batch by batch: the
    engine streams the result and each batch is joined and cast alone, so neither the engine's
    whole result nor a second copy of the frame is ever held."""
    parts = [_typed(_with_names(b, lookups), schema) for b in con.batches(query, READ_BATCH_ROWS)]
    return pl.concat(parts, rechunk=False) if parts else empty_frame(schema)


def _typed(df: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """``df``'s columns ``schema`` in its types. A column with no value in ``df`` becomes a typed
    null literal: Polars keeps it as one scalar instead of a buffer per row (an hourly city's cells
    have a dozen such columns, targets and forecasts, at 37 MB each)."""
    if df.is_empty():
        return empty_frame(schema)
    nulls = df.select(list(schema)).null_count().row(0)
    return df.select(
        [
            pl.lit(None, dtype=t).alias(n) if missing == df.height else pl.col(n).cast(t)
            for (n, t), missing in zip(schema.items(), nulls, strict=True)
        ]
    )


def _with_names(df: pl.DataFrame, lookups: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Join the names of the keys an output row carries (see :attr:`Plan.lookups`), keeping row order."""
    for key, names in lookups.items():
        if key in df.columns:
            df = df.join(
                names.with_columns(pl.col(key).cast(df.schema[key])),
                on=key,
                how="left",
                maintain_order="left",
            )
    return df


def _translator(backend: Backend, con: object) -> Callable[[str], list[str]]:
    """How the backend's dialect runs a statement (canonical DuckDB SQL is run as written); a few
    rewrites depend on the types of session-table columns, which the connection can tell."""
    if backend.dialect == "duckdb":
        return lambda sql: [sql]
    from citykpi.backend.dialect import Translator  # sqlglot: only for other engines

    return Translator(
        backend.dialect, getattr(con, "column_types", None), ordered_tables=backend.scans_in_order
    ).translate


def _run_statements(
    con: Connection, plan: Plan, in_dialect: Callable[[str], list[str]], timings: list[tuple[str, float]]
) -> None:
    """Run the plan's statements in order, each scratch table dropped after its last reader (a
    failing one is named on its error)."""
    releases = plan.releases()
    for i, (name, sql) in enumerate(plan.statements):
        t = time.perf_counter()
        try:
            for stmt in in_dialect(sql):
                con.execute(stmt)
            for table in releases.get(i, ()):  # scratch no later statement or output reads
                for stmt in in_dialect(f"DROP TABLE IF EXISTS {ident(table)}"):
                    con.execute(stmt)
        except EngineError as exc:
            exc.step = name  # so that the message can say which step failed
            raise
        timings.append((name, round(time.perf_counter() - t, 4)))


def execute(wh: Warehouse, plan: Plan, *, sandbox: bool = True) -> Executed:
    """Run ``plan`` on ``wh`` and return its output frames (cells, indices, history, parts)."""
    con, backend = wh.engine(), wh.backend
    in_dialect = _translator(backend, con)
    if plan.memory_mb:
        backend.bound_memory(con, plan.memory_mb)
    if sandbox:
        # a plan that reads its outputs under a bound of their own locks the configuration once that is set
        backend.sandbox(con, lock=not plan.read_memory_mb)
    count = len(plan.frames) + len(plan.statements)
    timings: list[tuple[str, float]] = []
    try:
        for name, frame in plan.frames.items():
            t = time.perf_counter()
            if backend.frames_as_views:
                con.register(name, frame)
            else:
                with con.registered("_ck_frame", frame):
                    for stmt in in_dialect(backend.temp_table_sql(ident(name), "SELECT * FROM _ck_frame")):
                        con.execute(stmt)
            timings.append((f"load {name}", round(time.perf_counter() - t, 4)))
        _run_statements(con, plan, in_dialect, timings)
    finally:
        if plan.read_memory_mb:
            # the engine gives back what the statements held (the cells go to its temp file and are
            # read back as they stream) before the outputs are built in Polars beside it; locked
            # even when a statement failed
            backend.bound_memory(con, plan.read_memory_mb)
            if sandbox:
                backend.sandbox(con)
    heap.release_freed()  # what the statements freed, before the outputs are built in Polars
    schemas = {**_SCHEMAS, **plan.schemas}
    frames = {name: empty_frame(schema) for name, schema in schemas.items()}
    for name, sql in plan.outputs.items():
        t = time.perf_counter()
        if name in plan.orders and not backend.scans_in_order:
            sql = f"{sql}\nORDER BY {plan.orders[name]}"
        *before, query = in_dialect(sql)
        try:
            for stmt in before:
                con.execute(stmt)
            frames[name] = _read(con, query, plan.lookups, schemas[name])
        except EngineError as exc:
            exc.step = f"read {name}"
            raise
        timings.append((f"read {name}", round(time.perf_counter() - t, 4)))
    indices = frames["indices"]
    if plan.index_areas:
        indices = indices.filter(pl.col("area_id").is_in(list(plan.index_areas)))
    if plan.index_levels:
        indices = indices.filter(pl.col("level").is_in(list(plan.index_levels)))
    frames["indices"] = indices
    return Executed(frames=frames, statements=count + len(plan.outputs), timings=timings)
