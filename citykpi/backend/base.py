"""What every SQL engine behind citykpi provides: the :class:`Backend` protocol.

The engine, the warehouse and ingest speak to the database only through a :class:`Connection`
(statements, results, registered Polars frames) obtained from a :class:`Backend` (opening,
locking, the read-only sandbox, statement classification, memory limits and the SQL dialect).
Engine exceptions never leave a backend raw: they become :class:`citykpi.errors.EngineError`,
with the engine's own exception kept as ``__cause__``.

DuckDB (:mod:`citykpi.backend.duckdb`) is the embedded default. Apache Spark
(:mod:`citykpi.backend.spark`) is the second implementation: a warehouse folder whose small control
tables stay in DuckDB while the data tables are published Parquet (:mod:`citykpi.backend.published`)
and compiled plans run on Spark SQL. A backend therefore names three connections' worth of things:
the *control* connection (:meth:`Backend.connect`: registries, batches, runs), the *engine*
connection compiled plans run on (:meth:`Backend.engine`) and the *table store* that ingest hands
its batches to (:meth:`Backend.tables`). For DuckDB all three are the one database file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import polars as pl

from citykpi.errors import EngineError

__all__ = ["Backend", "Connection", "TableStore"]


@runtime_checkable
class Connection(Protocol):
    """An open session on one database. ``execute`` returns the connection, so results chain."""

    def execute(self, sql: str, params: Sequence[object] | None = None) -> Connection:
        """Run one statement; its result (if any) is read with :meth:`fetchall`/:meth:`fetchone`."""
        ...

    def executemany(self, sql: str, params: Sequence[Sequence[object]]) -> Connection:
        """Run one statement once per parameter row."""
        ...

    def fetchall(self) -> list[tuple[Any, ...]]:
        """All rows of the last result."""
        ...

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row of the last result, or None."""
        ...

    def frame(self, sql: str, params: Sequence[object] | None = None) -> pl.DataFrame:
        """Run a query and return its result as a Polars frame."""
        ...

    def batches(self, sql: str, rows: int) -> Iterator[pl.DataFrame]:
        """Run a query and yield its result as Polars frames of at most ``rows`` rows each, so that
        a big result never has to be held whole in the engine and in Polars at once."""
        ...

    def register(self, name: str, frame: pl.DataFrame) -> None:
        """Make ``frame`` visible to SQL as the view ``name``."""
        ...

    def unregister(self, name: str) -> None:
        """Remove a view made by :meth:`register`."""
        ...

    def registered(self, name: str, frame: pl.DataFrame) -> AbstractContextManager[str]:
        """``frame`` as view ``name`` for a ``with`` block, removed afterwards even on error."""
        ...

    def complete(self) -> None:
        """Finish any unread result."""
        ...

    def cursor(self) -> Connection:
        """A second session on the same database (for another thread)."""
        ...

    def close(self) -> None:
        """Close the session (idempotent)."""
        ...


class Registering:
    """``registered``, shared by the connections: :meth:`register` for the block, then :meth:`unregister`."""

    __slots__ = ()

    def register(self, name: str, frame: pl.DataFrame) -> None:  # pragma: no cover - the subclass's
        raise NotImplementedError

    def unregister(self, name: str) -> None:  # pragma: no cover - the subclass's
        raise NotImplementedError

    @contextlib.contextmanager
    def registered(self, name: str, frame: pl.DataFrame) -> Iterator[str]:
        """``frame`` as view ``name`` for the block, unregistered afterwards even on error."""
        self.register(name, frame)
        try:
            yield name
        finally:
            self.unregister(name)


@runtime_checkable
class TableStore(Protocol):
    """Where a warehouse keeps its data tables (observations, superseded rows, raw source tables).

    Ingest stages every file in the control database inside one transaction, as it always does; a
    store whose tables live elsewhere brings in the stored rows a batch may clash with and publishes
    the batch before the transaction commits. The embedded store does nothing: its tables are the
    staging tables.
    """

    #: True when the staging tables hold every stored row (the embedded store), so that ingest may ask
    #: about stored rows before a batch's own are staged; False when they are brought in per batch.
    holds_stored: bool
    #: A predicate selecting the rows the open transaction appended to a staging table, cheaper for
    #: the engine than a filter on a column; None when the store knows none. Ingest checks what it
    #: selected (every row of the batch, no other) before it relies on it.
    appended_rows: str | None

    def begin_ingest(self, con: Connection) -> None:
        """Make the data tables writable staging tables on ``con`` (before the file's transaction)."""
        ...

    def bring_stored(self, con: Connection, target: str, keys: Sequence[str], batch_id: int) -> None:
        """Copy into ``target`` the stored rows whose ``keys`` equal those of batch ``batch_id``'s rows."""
        ...

    def publish(self, con: Connection, target: str, batch_id: int, day: str = "period") -> None:
        """Publish batch ``batch_id`` of ``target`` (inside the transaction, before the batch row commits);
        ``day`` is the SQL of the rows' time column."""
        ...

    def end_ingest(self, con: Connection) -> None:
        """Undo :meth:`begin_ingest` (after commit or rollback; must not raise on a broken transaction)."""
        ...


@runtime_checkable
class Backend(Protocol):
    """One SQL engine: how to open a database on it and what its SQL looks like."""

    #: The sqlglot dialect name of the SQL this backend runs (``duckdb``, ``spark``…).
    dialect: str
    #: Statement kinds (as :meth:`statement_kinds` names them) that only read.
    read_kinds: tuple[str, ...]
    #: It evaluates hour and 15-minute grains and instants (``--at``), not only days and coarser.
    sub_daily: bool
    #: A plan's catalogue tables are registered frames as they are (True), or copied into session
    #: tables first (False: DuckDB reads its own tables faster than a registered Arrow frame).
    frames_as_views: bool
    #: A session table written by a statement with an ORDER BY is scanned back, without one, in
    #: that order (so a plan's ordered outputs are not sorted twice; see ``Plan.orders``).
    scans_in_order: bool

    def check_location(self, path: Path, *, read_only: bool, create: bool) -> None:
        """Refuse a ``path`` that cannot be opened as asked (missing, a folder for a file…).

        Raises:
            WarehouseError: with a hint on what to pass instead.
        """
        ...

    def connect(self, path: Path, *, read_only: bool, wait: float) -> Connection:
        """Open (creating when allowed) the control database at ``path``.

        Raises:
            DatabaseBusyError: another process holds it beyond ``wait`` seconds.
            WarehouseError: the file is not a database of this engine (left untouched).
        """
        ...

    def prepared(self, con: Connection) -> None:
        """Called once the control database is open at the current schema version."""
        ...

    def engine(self, con: Connection, path: Path) -> Connection:
        """The connection compiled plans run on, showing the warehouse's current data (``con`` itself
        for an engine that holds its data tables)."""
        ...

    def share(self, con: Connection, names: Sequence[str]) -> None:
        """Make the engine's session tables ``names`` readable on the control connection ``con``
        (nothing to do when the engine is the control database)."""
        ...

    def lend(self, con: Connection, path: Path, names: Sequence[str]) -> None:
        """Make the control connection's session tables ``names`` readable by the engine of the
        warehouse at ``path`` (the reverse of :meth:`share`; nothing to do when they are one database)."""
        ...

    def tables(self, path: Path) -> TableStore:
        """The table store of the warehouse at ``path`` (see :class:`TableStore`)."""
        ...

    def sandbox(self, con: Connection, *, lock: bool = True) -> None:
        """Forbid file and network access and (``lock``) further configuration changes on ``con``."""
        ...

    def bound_memory(self, con: Connection, megabytes: int) -> None:
        """Hold the engine behind ``con`` to ``megabytes`` for what follows, unless the user set a
        limit (``CITYKPI_MEMORY_LIMIT``), a lower one holds already or the configuration is locked."""
        ...

    def statement_kinds(self, sql: str) -> list[str]:
        """The statement kinds (``SELECT``, ``INSERT``…) of each statement in ``sql``.

        Raises:
            QueryError: the text does not parse.
        """
        ...

    def temp_table_sql(self, name: str, select: str) -> str:
        """A statement that (re)creates the session-local table ``name`` from ``select``."""
        ...

    def is_engine_error(self, exc: BaseException) -> bool:
        """True for an exception raised by this engine (not yet translated)."""
        ...

    def translate(self, exc: BaseException) -> EngineError:
        """The citykpi error for an exception :meth:`is_engine_error` accepts."""
        ...


def iter_backends() -> Iterator[Backend]:
    """Every backend citykpi knows (for error translation at the CLI boundary); Spark only once loaded."""
    import sys

    from citykpi.backend.duckdb import BACKEND

    yield BACKEND
    spark = sys.modules.get("citykpi.backend.spark")
    if spark is not None:
        yield spark.ERRORS
