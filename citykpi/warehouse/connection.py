"""Open the warehouse: create, migrate, lock (busy / --wait), read-only, memory limit."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

import duckdb
import polars as pl

from citykpi import __version__
from citykpi.errors import DatabaseBusyError, WarehouseError
from citykpi.warehouse import schema

#: Share of the machine's RAM DuckDB may use when CITYKPI_MEMORY_LIMIT is not set.
MEMORY_SHARE = 0.6
_POLL_SECONDS = 0.2


def default_memory_limit() -> str:
    """``CITYKPI_MEMORY_LIMIT`` (a DuckDB size such as '8GB') or 60% of physical RAM."""
    env = os.environ.get("CITYKPI_MEMORY_LIMIT", "").strip()
    if env:
        return env
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return "4GB"
    return f"{max(256, int(total * MEMORY_SHARE / 2**20))}MB"


def default_threads() -> int:
    """``CITYKPI_THREADS`` or the number of CPUs."""
    env = os.environ.get("CITYKPI_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return os.cpu_count() or 1


def query_frame(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> pl.DataFrame:
    """Run ``sql`` and return a Polars frame (finishing any pending ``execute()`` result first)."""
    con.complete()  # DuckDB 2 refuses con.sql() while an execute() result is unread
    return con.sql(sql, params=params).pl()


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


class Warehouse:
    """An open citykpi DuckDB database. Use :meth:`open`; close it or use it as a context manager."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, *, read_only: bool, version: int) -> None:
        """Wrap an already opened and migrated connection (use :meth:`Warehouse.open`)."""
        self.con = con
        self.path = path
        self.read_only = read_only
        self._version = version

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: str | Path, *, read_only: bool = False, create: bool = True, wait: float = 0.0
    ) -> Warehouse:
        """Open (and when allowed create and migrate) the database at ``path``.

        Args:
            path: the DuckDB file.
            read_only: open for reading only (the file must exist and be current).
            create: create a new database when the file does not exist.
            wait: seconds to keep retrying while another process holds the database.

        Raises:
            DatabaseBusyError: another process holds the file lock beyond ``wait`` seconds.
            WarehouseError: missing, corrupt, foreign or too-new database.
        """
        path = Path(path)
        exists = path.exists()
        if not exists and (read_only or not create):
            raise WarehouseError(
                f"no database at {path}",
                hint="load areas first (`citykpi areas load FILE`) or pass --db with an existing database",
            )
        if exists and path.is_dir():
            raise WarehouseError(f"{path} is a directory, not a database file", hint="pass --db FILE")
        if not exists and not path.parent.exists():
            raise WarehouseError(f"cannot create {path}: folder {path.parent} does not exist")
        con = cls._connect(path, read_only=read_only, wait=wait)
        try:
            version = cls._prepare(con, path, read_only=read_only)
            con.complete()  # hand over a connection with no unread result (DuckDB 2 refuses con.sql() then)
        except BaseException:
            con.close()
            raise
        return cls(con, path, read_only=read_only, version=version)

    @staticmethod
    def _connect(path: Path, *, read_only: bool, wait: float) -> duckdb.DuckDBPyConnection:
        config = {"memory_limit": default_memory_limit(), "threads": default_threads()}
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            try:
                return duckdb.connect(str(path), read_only=read_only, config=config)  # type: ignore[arg-type]
            except duckdb.Error as exc:
                if _is_lock_error(exc):
                    if time.monotonic() < deadline:
                        time.sleep(_POLL_SECONDS)
                        continue
                    raise DatabaseBusyError(
                        f"database {path} is busy (another citykpi process is writing); "
                        "retry, or pass --wait SECONDS"
                    ) from None
                if (
                    "not a valid DuckDB database" in str(exc)
                    or "Corrupt" in str(exc)
                    or "corrupt" in str(exc)
                    or "Could not read enough bytes" in str(exc)  # truncated file
                ):
                    raise WarehouseError(
                        f"{path} is not a valid DuckDB database (corrupt or another kind of file); it was left untouched",
                        hint="restore it from a backup or pass --db with another file",
                    ) from None
                raise WarehouseError(f"cannot open database {path}: {exc}") from None

    @staticmethod
    def _prepare(con: duckdb.DuckDBPyConnection, path: Path, *, read_only: bool) -> int:
        try:
            current = schema.stored_version(con)
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot read database {path}: {exc}") from None
        if current is not None and current > schema.SCHEMA_VERSION:
            raise WarehouseError(
                f"database {path} has schema version {current}: made by a newer citykpi; upgrade",
                hint=f"this citykpi {__version__} knows schema version {schema.SCHEMA_VERSION}",
            )
        if current == schema.SCHEMA_VERSION:
            return current
        if read_only:
            what = "is empty" if current is None else f"has the older schema version {current}"
            raise WarehouseError(
                f"database {path} {what}",
                hint="open it once for writing (e.g. `citykpi areas load`) to migrate",
            )
        return schema.migrate(con, current, tool_version=__version__)

    # --- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self.con.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The schema version of the open database."""
        return self._version

    # --- registries the engine needs ---------------------------------------------------------

    def frame(self, sql: str, params: list[object] | None = None) -> pl.DataFrame:
        """Run a query on this warehouse and return a Polars frame."""
        return query_frame(self.con, sql, params)

    def register_indicators(self, ids: Iterable[str]) -> None:
        """Give every new indicator id a stable integer key in ``indicator_keys`` (existing keys never change)."""
        new = sorted(set(ids))
        if not new:
            return
        frame = pl.DataFrame({"indicator_id": new}, schema={"indicator_id": pl.String})
        with registered_frame(self.con, "_new_indicator_ids", frame):
            self.con.execute(
                """
                INSERT INTO indicator_keys
                SELECT (SELECT coalesce(max(indicator_key), 0) FROM indicator_keys)
                       + row_number() OVER (ORDER BY n.indicator_id), n.indicator_id
                FROM _new_indicator_ids n
                WHERE n.indicator_id NOT IN (SELECT indicator_id FROM indicator_keys)
                """
            )

    def indicator_keys(self) -> dict[str, int]:
        """indicator id → indicator_key for every registered indicator."""
        return {
            str(i): int(k)
            for i, k in self.con.execute("SELECT indicator_id, indicator_key FROM indicator_keys").fetchall()
        }

    def areas(self) -> pl.DataFrame:
        """The area registry: area_key, area_id, name, name_en, level, parent_key, parent_id, population, groups."""
        return query_frame(
            self.con,
            """
            SELECT a.area_key, a.area_id, a.name, a.name_en, a.level, a.parent_key, p.area_id AS parent_id,
                   a.population, a.groups
            FROM areas a LEFT JOIN areas p ON p.area_key = a.parent_key
            ORDER BY a.area_key
            """,
        )


def sandbox_connection(con: duckdb.DuckDBPyConnection) -> None:
    """Forbid file access (read_csv, COPY, ATTACH, INSTALL…) and further SETs on this DuckDB database.

    A second guard behind the expression whitelist: even SQL that slipped through could not read a
    file. DuckDB cannot switch access back on while the database is open, so a warehouse that has
    evaluated with the sandbox cannot ingest files afterwards; open it again for that. Registered
    Polars frames, temporary tables and the warehouse's own tables keep working.
    """
    con.complete()
    settings = dict(
        con.execute(
            "SELECT name, value FROM duckdb_settings() "
            "WHERE name IN ('enable_external_access', 'lock_configuration')"
        ).fetchall()
    )
    if str(settings.get("enable_external_access", "true")).lower() == "true":
        con.execute("SET enable_external_access = false")
    if str(settings.get("lock_configuration", "false")).lower() != "true":
        con.execute("SET lock_configuration = true")


@contextlib.contextmanager
def registered_frame(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> Iterator[str]:
    """``frame`` visible to SQL as view ``name`` for the block, unregistered afterwards even on error.

    DuckDB 2 refuses register()/unregister() while an execute() result is unread, so any is
    finished first.
    """
    con.complete()
    con.register(name, frame)
    try:
        yield name
    finally:
        con.complete()
        con.unregister(name)
