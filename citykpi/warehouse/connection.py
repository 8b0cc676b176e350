"""Open the warehouse: create, migrate, lock (busy / --wait), read-only, memory limit."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import polars as pl

from citykpi import __version__
from citykpi.backend import Backend, Connection, EngineError, TableStore, default_backend
from citykpi.backend.duckdb import default_memory_limit, default_threads
from citykpi.errors import WarehouseError
from citykpi.warehouse import schema

__all__ = ["Warehouse", "default_memory_limit", "default_threads"]


class Warehouse:
    """An open citykpi DuckDB database. Use :meth:`open`; close it or use it as a context manager."""

    def __init__(
        self,
        con: Connection,
        path: Path,
        *,
        read_only: bool,
        version: int,
        backend: Backend | None = None,
    ) -> None:
        """Wrap an already opened and migrated connection (use :meth:`Warehouse.open`)."""
        self.con = con
        self.backend = backend or default_backend()
        self.path = path
        self.read_only = read_only
        self._version = version
        #: where ingest hands its batches (the database itself for DuckDB; published files for Spark)
        self.tables: TableStore = self.backend.tables(path)

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        read_only: bool = False,
        create: bool = True,
        wait: float = 0.0,
        backend: Backend | None = None,
    ) -> Warehouse:
        """Open (and when allowed create and migrate) the database at ``path``.

        Args:
            path: the DuckDB file.
            read_only: open for reading only (the file must exist and be current).
            create: create a new database when the file does not exist.
            wait: seconds to keep retrying while another process holds the database.
            backend: the SQL engine (default: embedded DuckDB).

        Raises:
            DatabaseBusyError: another process holds the file lock beyond ``wait`` seconds.
            WarehouseError: missing, corrupt, foreign or too-new database.
        """
        path = Path(path)
        backend = backend or default_backend()
        backend.check_location(path, read_only=read_only, create=create)
        con = backend.connect(path, read_only=read_only, wait=wait)
        try:
            version = cls._prepare(con, path, read_only=read_only)
            backend.prepared(con)
            con.complete()  # hand over a connection with no unread result (DuckDB 2 refuses con.sql() then)
        except BaseException:
            con.close()
            raise
        return cls(con, path, read_only=read_only, version=version, backend=backend)

    @staticmethod
    def _prepare(con: Connection, path: Path, *, read_only: bool) -> int:
        try:
            current = schema.stored_version(con)
        except EngineError as exc:
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
        return self.con.frame(sql, params)

    def register_indicators(self, ids: Iterable[str]) -> dict[str, int]:
        """Give every new indicator id a stable integer key in ``indicator_keys`` (existing keys never
        change); return :meth:`indicator_keys` as it stands after that."""
        keys = self.indicator_keys()
        new = sorted(set(ids) - keys.keys())  # usually none: every ingest and evaluation asks
        if not new:
            return keys
        frame = pl.DataFrame({"indicator_id": new}, schema={"indicator_id": pl.String})
        with self.con.registered("_new_indicator_ids", frame):
            self.register_indicators_of("_new_indicator_ids")
        return self.indicator_keys()

    def register_indicators_of(self, relation: str) -> None:
        """:meth:`register_indicators` for the ids in column ``indicator_id`` of a relation, all in SQL:
        ingest's way, which then joins the keys in SQL and never needs them in Python."""
        self.con.execute(
            f"""
            INSERT INTO indicator_keys
            SELECT (SELECT coalesce(max(indicator_key), 0) FROM indicator_keys)
                   + row_number() OVER (ORDER BY n.indicator_id), n.indicator_id
            FROM (SELECT DISTINCT indicator_id FROM {relation}) n
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
        return self.con.frame(
            """
            SELECT a.area_key, a.area_id, a.name, a.name_en, a.level, a.parent_key, p.area_id AS parent_id,
                   a.population, a.groups
            FROM areas a LEFT JOIN areas p ON p.area_key = a.parent_key
            ORDER BY a.area_key
            """,
        )

    def engine(self) -> Connection:
        """The connection compiled plans run on, showing the data as committed now (:meth:`Backend.engine`).

        For DuckDB it is :attr:`con`; for Spark a session whose views show the published tables.
        """
        return self.backend.engine(self.con, self.path)

    def sandbox(self) -> None:
        """Switch off file access and lock the configuration of the engine (see :meth:`Backend.sandbox`)."""
        self.backend.sandbox(self.engine())
