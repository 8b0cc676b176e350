"""`citykpi db info` and the read-only `citykpi query`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from citykpi.backend import EngineError, default_backend
from citykpi.errors import QueryError, UsageError
from citykpi.sqlutil import ident
from citykpi.warehouse import schema
from citykpi.warehouse.connection import Warehouse


@dataclass(frozen=True)
class DbInfo:
    """A summary of the warehouse: tables, date range, registries, recent batches."""

    path: str
    schema_version: int
    tables: dict[str, int]  # table -> row count
    observations_from: datetime | None
    observations_to: datetime | None
    indicators: int
    areas: int
    batches: pl.DataFrame  # the last 10 batches, newest first

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "path": self.path,
            "schema_version": self.schema_version,
            "tables": self.tables,
            "observations_from": self.observations_from.isoformat() if self.observations_from else None,
            "observations_to": self.observations_to.isoformat() if self.observations_to else None,
            "indicators": self.indicators,
            "areas": self.areas,
            "batches": [
                {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
                for row in self.batches.iter_rows(named=True)
            ],
        }


def db_info(wh: Warehouse) -> DbInfo:
    """Row counts of every table, the observation date range, registry sizes and the last 10 batches."""
    con = wh.con
    tables: dict[str, int] = {}
    for name in sorted(schema.table_names(con)):
        tables[name] = int(con.execute(f"SELECT count(*) FROM {ident(name)}").fetchall()[0][0])
    rng = con.execute("SELECT min(period), max(period) FROM observations").fetchall()[0]
    batches = con.frame(
        "SELECT batch_id, kind, path, target, status, rows_read, rows_loaded, rows_rejected, started_at, finished_at "
        "FROM batches ORDER BY batch_id DESC LIMIT 10",
    )
    return DbInfo(
        path=str(wh.path),
        schema_version=wh.schema_version,
        tables=tables,
        observations_from=rng[0] if rng else None,
        observations_to=rng[1] if rng else None,
        indicators=tables.get("indicator_keys", 0),
        areas=tables.get("areas", 0),
        batches=batches,
    )


#: Leading whitespace and comments of a statement, then its first two words.
_LEADING = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*([A-Za-z_]+)(?:\s+([A-Za-z_]+))?", re.DOTALL)


def _statement_word(sql: str, kind: str) -> str:
    """What the user wrote to start the statement (INSTALL, LOAD, FORCE INSTALL, USE…), else its kind.

    DuckDB files INSTALL under the LOAD kind and USE under SET; a refusal names what was written.
    """
    m = _LEADING.match(sql)
    if not m:
        return kind
    first = m.group(1).upper()
    if first == "FORCE" and m.group(2):
        return f"FORCE {m.group(2).upper()}"
    return first


def check_read_only_sql(sql: str) -> str:
    """Return the single statement in ``sql`` if it only reads (SELECT/WITH/SHOW/DESCRIBE/EXPLAIN).

    Raises:
        UsageError: empty, several statements, or a statement that is not a read (exit 2).
        QueryError: the text does not parse (exit 3).
    """
    backend = default_backend()
    kinds = backend.statement_kinds(sql)
    if len(kinds) != 1:
        raise UsageError(
            f"expected exactly one SQL statement, got {len(kinds)}", hint="run one SELECT at a time"
        )
    kind = kinds[0]
    if kind not in backend.read_kinds:  # SHOW, DESCRIBE, SUMMARIZE, FROM-first parse as SELECT
        raise UsageError(
            f"only SELECT, WITH, SHOW, DESCRIBE and EXPLAIN are allowed here, not {_statement_word(sql, kind)}",
            hint="`citykpi query` is read-only; change data with `citykpi ingest` / `citykpi areas load`",
        )
    return sql


def run_query(path: str | Path, sql: str, *, wait: float = 0.0) -> pl.DataFrame:
    """Run one read-only statement against the database at ``path`` and return the result.

    The database is opened read-only and file system access is switched off (then the
    configuration is locked), so COPY, ATTACH, INSTALL and reading files fail even inside a SELECT.

    Raises:
        UsageError: the statement is not a single read, or it tries to read files or change
            settings (refused by the sandbox) — exit 2.
        QueryError: it does not parse or fails (unknown table or column, a type error) — exit 3.
        EngineError: the database file or its disk failed while reading (exit 3).
        WarehouseError: the database cannot be opened.
    """
    check_read_only_sql(sql)
    with Warehouse.open(path, read_only=True, create=False, wait=wait) as wh:
        con = wh.con
        wh.backend.sandbox(con)  # the query runs on the control connection (see docs/spark.md)
        try:
            return con.frame(sql)
        except EngineError as exc:
            if exc.kind == "storage":
                raise
            lines = [line.strip() for line in str(exc.cause or exc.message).strip().splitlines()]
            first = lines[0] if lines else type(exc.cause or exc).__name__
            if exc.kind == "forbidden":
                raise UsageError(
                    f"not allowed in a query: {first}",
                    hint="`citykpi query` reads the warehouse's tables only: no files, no settings",
                ) from None
            # one line; the engine's suggestion (if any) becomes the hint, its caret picture is dropped
            close = next((line for line in lines[1:] if line.lower().startswith("did you mean")), None)
            raise QueryError(f"query failed: {first}", hint=close) from None
