"""DuckDB, the embedded default backend: the only module (with the sample generator) that imports duckdb."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from citykpi.backend.base import Registering
from citykpi.errors import DatabaseBusyError, EngineError, QueryError, WarehouseError

__all__ = [
    "BACKEND",
    "NATIVE_TABLES",
    "DuckDBBackend",
    "DuckDBConnection",
    "check_database_file",
    "default_memory_limit",
    "default_threads",
]

#: Share of the machine's RAM DuckDB may use when CITYKPI_MEMORY_LIMIT is not set.
MEMORY_SHARE = 0.6
_POLL_SECONDS = 0.2


def default_memory_limit() -> str:
    """``CITYKPI_MEMORY_LIMIT`` (a DuckDB size such as '8GB') or 60% of physical RAM."""
    return _user_memory_limit() or f"{_share_of_ram()}MB"


def _user_memory_limit() -> str:
    """The limit the user set with ``CITYKPI_MEMORY_LIMIT``, or '' when none."""
    return os.environ.get("CITYKPI_MEMORY_LIMIT", "").strip()


def _share_of_ram() -> int:
    """:data:`MEMORY_SHARE` of physical RAM in MB (4 GB when the machine does not say)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 4096
    return max(256, int(total * MEMORY_SHARE / 2**20))


#: Results handed to Polars carry strings as Arrow string views, Polars' own layout, so a result's
#: strings are taken over as they are instead of being copied into a second buffer.
_ARROW_OUTPUT = {"arrow_output_version": "1.4", "produce_arrow_string_view": True}


def default_threads() -> int:
    """``CITYKPI_THREADS`` or the number of CPUs."""
    env = os.environ.get("CITYKPI_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return os.cpu_count() or 1


class _ArrowStream:
    """A Polars frame seen only through its Arrow C stream: DuckDB reads it without pyarrow.

    Handing DuckDB the frame itself makes it convert the frame to a pyarrow Table first, and the
    first such hand-over in a process imports pyarrow (about 20 ms, a tenth of a 5-minute batch's
    ingest). A fresh stream is exported for every scan, so the view can be read more than once.
    """

    __slots__ = ("_frame",)

    def __init__(self, frame: pl.DataFrame) -> None:
        self._frame = frame

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        return self._frame.__arrow_c_stream__(requested_schema)


def _streamable(frame: pl.DataFrame) -> bool:
    """Whether DuckDB reads ``frame``'s Arrow stream as it reads its pyarrow Table.

    A column of dtype Null is exported without a validity bitmap, which the stream reader refuses;
    frames with one, with nested columns (which may hold a Null inside) or with Object columns
    (refused either way) take the pyarrow path.
    """
    return not any(d.is_nested() or d in (pl.Null, pl.Object) for d in frame.schema.values())


#: Errors about the SQL itself: never explained by the disk, whatever data their message quotes.
_STATEMENT_ERRORS: tuple[type[duckdb.Error], ...] = (
    duckdb.BinderException,
    duckdb.CatalogException,
    duckdb.ConversionException,
    duckdb.ConstraintException,
    duckdb.InvalidInputException,
    duckdb.InvalidTypeException,
    duckdb.NotImplementedException,
    duckdb.OutOfRangeException,
    duckdb.ParserException,
    duckdb.SyntaxException,
    duckdb.TypeMismatchException,
)
#: Errors of the file or the disk under the database.
_STORAGE_ERRORS: tuple[type[duckdb.Error], ...] = (
    duckdb.IOException,
    duckdb.SerializationException,
    duckdb.FatalException,
)
_RESOURCE_ERRORS: tuple[type[duckdb.Error], ...] = (duckdb.OutOfMemoryException, duckdb.InterruptException)
#: Words of a storage failure in the message of an error of another class (e.g. a failed commit).
_STORAGE_WORDS: tuple[str, ...] = (
    "no space left",
    "disk",
    "read-only",
    "read only",
    "corrupt",
    "could not read enough bytes",
    "file too large",
    "checksum",
    "i/o error",
    "io error",
    "could not write",
    "could not open",
)


def engine_error_kind(exc: BaseException) -> str:
    """``storage``, ``resources``, ``forbidden`` or ``statement`` (see :class:`EngineError`) for a DuckDB exception."""
    if isinstance(exc, duckdb.PermissionException):
        return "forbidden"
    if isinstance(exc, _STATEMENT_ERRORS):
        return "statement"
    if isinstance(exc, _STORAGE_ERRORS):
        return "storage"
    if isinstance(exc, _RESOURCE_ERRORS):
        return "resources"
    text = str(exc).lower()
    return "storage" if any(word in text for word in _STORAGE_WORDS) else "statement"


def _engine_error(exc: duckdb.Error) -> EngineError:
    return EngineError(str(exc), cause=exc, kind=engine_error_kind(exc))


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """DuckDB's exceptions raised inside the block arrive as :class:`EngineError` (cause kept)."""
    try:
        yield
    except duckdb.Error as exc:
        raise _engine_error(exc) from exc


class DuckDBConnection(Registering):
    """A DuckDB connection whose errors arrive as :class:`EngineError` (see :class:`Connection`)."""

    __slots__ = ("_con",)

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def execute(self, sql: str, params: Sequence[object] | None = None) -> DuckDBConnection:
        """Run one statement."""
        with _translated():
            if params is None:
                self._con.execute(sql)
            else:
                self._con.execute(sql, params)
        return self

    def executemany(self, sql: str, params: Sequence[Sequence[object]]) -> DuckDBConnection:
        """Run one statement once per parameter row."""
        with _translated():
            self._con.executemany(sql, params)
        return self

    def fetchall(self) -> list[tuple[Any, ...]]:
        """All rows of the last result."""
        with _translated():
            return self._con.fetchall()

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row of the last result."""
        with _translated():
            return self._con.fetchone()

    def frame(self, sql: str, params: Sequence[object] | None = None) -> pl.DataFrame:
        """Run ``sql`` and return a Polars frame (finishing any pending result first)."""
        with _translated():
            self._con.complete()  # DuckDB 2 refuses con.sql() while an execute() result is unread
            return self._con.sql(sql, params=params).pl()

    def batches(self, sql: str, rows: int) -> Iterator[pl.DataFrame]:
        """Stream ``sql``'s result in Arrow record batches of ``rows`` rows, each as a Polars frame.

        Unlike :meth:`frame`, DuckDB does not materialise the result first (unless the query itself
        must, as an ORDER BY does).
        """
        with _translated():
            self._con.complete()
            reader = self._con.sql(sql).to_arrow_reader(rows)
            for batch in reader:
                yield pl.DataFrame(pl.from_arrow(batch, rechunk=False))

    def register(self, name: str, frame: pl.DataFrame) -> None:
        """``frame`` visible to SQL as view ``name``."""
        with _translated():
            self._con.complete()
            self._con.register(name, _ArrowStream(frame) if _streamable(frame) else frame)

    def unregister(self, name: str) -> None:
        """Remove a registered view."""
        with _translated():
            self._con.complete()
            self._con.unregister(name)

    def complete(self) -> None:
        """Finish any unread result (DuckDB 2 refuses register()/sql() while one is pending)."""
        with _translated():
            self._con.complete()

    def cursor(self) -> DuckDBConnection:
        """A second session on the same database."""
        with _translated():
            return DuckDBConnection(self._con.cursor())

    def close(self) -> None:
        """Close (idempotent)."""
        with _translated():
            self._con.close()


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def _is_not_a_database(exc: BaseException) -> bool:
    text = str(exc)
    return (
        "not a valid DuckDB database" in text
        or "Corrupt" in text
        or "corrupt" in text
        or "Could not read enough bytes" in text  # truncated file
    )


_READ_KINDS: tuple[str, ...] = ("SELECT", "EXPLAIN")


class NativeTables:
    """The embedded table store: the data tables are tables of the database itself (no-op hooks)."""

    holds_stored = True
    #: DuckDB numbers the rows a transaction appends from MAX_ROW_ID (2^55, rounded down) until it
    #: commits, so this reads them without a zone-map check of every committed row group, whose
    #: metadata a fresh process would load first: a cost that grows with the stored history.
    appended_rows: str | None = "rowid >= 36028797018960000"

    def begin_ingest(self, con: Any) -> None:
        """Nothing to do: ingest writes the tables directly."""

    def bring_stored(self, con: Any, target: str, keys: Sequence[str], batch_id: int) -> None:
        """Nothing to do: the stored rows are in ``target`` already."""

    def publish(self, con: Any, target: str, batch_id: int, day: str = "period") -> None:
        """Nothing to do: the transaction's commit publishes the batch."""

    def end_ingest(self, con: Any) -> None:
        """Nothing to do."""


#: The store of every DuckDB warehouse (it holds no state).
NATIVE_TABLES = NativeTables()


def check_database_file(path: Path, *, read_only: bool, create: bool) -> None:
    """Refuse a missing file (unless it may be created), a folder, or a file in a missing folder."""
    if not path.exists() and (read_only or not create):
        raise WarehouseError(
            f"no database at {path}",
            hint="load areas first (`citykpi areas load FILE`) or pass --db with an existing database",
        )
    if path.exists() and path.is_dir():
        raise WarehouseError(f"{path} is a directory, not a database file", hint="pass --db FILE")
    if not path.exists() and not path.parent.exists():
        raise WarehouseError(f"cannot create {path}: folder {path.parent} does not exist")


class DuckDBBackend:
    """The embedded engine: one DuckDB file, a process-wide write lock, spilling under a memory limit."""

    dialect = "duckdb"
    sub_daily = True
    #: Statement kinds :func:`citykpi.warehouse.info.run_query` lets through.
    read_kinds: tuple[str, ...] = _READ_KINDS
    frames_as_views = False
    #: DuckDB keeps insertion order (``preserve_insertion_order``, on by default and never turned off)
    scans_in_order = True

    def check_location(self, path: Path, *, read_only: bool, create: bool) -> None:
        """A database file: it must exist unless it may be created, and not be a folder."""
        check_database_file(path, read_only=read_only, create=create)

    def prepared(self, con: Any) -> None:
        """Nothing to prepare."""

    def engine(self, con: Any, path: Path) -> Any:
        """The database itself runs the compiled plans."""
        return con

    def share(self, con: Any, names: Sequence[str]) -> None:
        """Nothing to do: the session tables are on ``con`` already."""

    def lend(self, con: Any, path: Path, names: Sequence[str]) -> None:
        """Nothing to do: the plans run on ``con``."""

    def tables(self, path: Path) -> NativeTables:
        """The data tables are the database's own."""
        return NATIVE_TABLES

    def connect(self, path: Path, *, read_only: bool, wait: float) -> DuckDBConnection:
        """Open ``path`` with citykpi's memory limit and thread count, retrying while it is locked."""
        config = {"memory_limit": default_memory_limit(), "threads": default_threads(), **_ARROW_OUTPUT}
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            try:
                return DuckDBConnection(duckdb.connect(str(path), read_only=read_only, config=config))  # type: ignore[arg-type]
            except duckdb.Error as exc:
                if _is_lock_error(exc):
                    if time.monotonic() < deadline:
                        time.sleep(_POLL_SECONDS)
                        continue
                    raise DatabaseBusyError(
                        f"database {path} is busy (another citykpi process is writing); "
                        "retry, or pass --wait SECONDS"
                    ) from None
                if _is_not_a_database(exc):
                    raise WarehouseError(
                        f"{path} is not a valid DuckDB database (corrupt or another kind of file); it was left untouched",
                        hint="restore it from a backup or pass --db with another file",
                    ) from None
                raise WarehouseError(f"cannot open database {path}: {exc}") from None

    def sandbox(self, con: Any, *, lock: bool = True) -> None:
        """Forbid file access (read_csv, COPY, ATTACH, INSTALL…) and (``lock``) further SETs on this
        database.

        DuckDB cannot switch access back on while the database is open, so a connection that has
        evaluated with the sandbox cannot ingest files afterwards; open it again for that.
        Registered Polars frames, temporary tables and the warehouse's own tables keep working.
        """
        settings = _settings(con, "enable_external_access", "lock_configuration")
        if settings.get("enable_external_access", "true") == "true":
            con.execute("SET enable_external_access = false")
        if lock and settings.get("lock_configuration", "false") != "true":
            con.execute("SET lock_configuration = true")

    def bound_memory(self, con: Any, megabytes: int) -> None:
        """``SET memory_limit`` to ``megabytes`` when that is below the default the connection was
        opened with; a limit the user set (``CITYKPI_MEMORY_LIMIT``) or a locked configuration (an
        earlier sandboxed evaluation on this connection) is left as it is."""
        if _user_memory_limit() or megabytes >= _share_of_ram():
            return
        if _settings(con, "lock_configuration").get("lock_configuration") == "true":
            return
        try:
            con.execute(f"SET memory_limit = '{int(megabytes)}MB'")
        except EngineError:  # what it holds cannot be moved out under the new bound: keep the old one
            return

    def statement_kinds(self, sql: str) -> list[str]:
        """Kinds (``SELECT``, ``INSERT``, ``COPY``…) of the statements in ``sql``, parsed by DuckDB itself."""
        try:
            statements = duckdb.extract_statements(sql)
        except duckdb.Error as exc:
            raise QueryError(f"cannot parse the query: {str(exc).strip().splitlines()[0]}") from None
        kinds: list[str] = []
        for statement in statements:
            try:
                kinds.append(str(statement.type).rsplit(".", 1)[-1])
            except ValueError:  # a type the Python client cannot name (e.g. UPDATE EXTENSIONS)
                kinds.append("UNKNOWN")
        return kinds

    def temp_table_sql(self, name: str, select: str) -> str:
        """``CREATE OR REPLACE TEMP TABLE name AS select`` (``name`` must already be quoted)."""
        return f"CREATE OR REPLACE TEMP TABLE {name} AS {select}"

    def is_engine_error(self, exc: BaseException) -> bool:
        """True for a raw DuckDB exception."""
        return isinstance(exc, duckdb.Error)

    def translate(self, exc: BaseException) -> EngineError:
        """The :class:`EngineError` for a raw DuckDB exception (see :meth:`is_engine_error`)."""
        return EngineError(str(exc), cause=exc, kind=engine_error_kind(exc))


def _settings(con: Any, *names: str) -> dict[str, str]:
    """The current values of DuckDB settings ``names`` (lower-cased text), finishing any pending result."""
    con.complete()
    rows = con.execute(
        "SELECT name, value FROM duckdb_settings() WHERE name IN (SELECT unnest(?))", [list(names)]
    ).fetchall()
    return {str(n): str(v).lower() for n, v in rows}


#: The process-wide DuckDB backend (it holds no state).
BACKEND = DuckDBBackend()
