"""The data tables of a Spark warehouse: Parquet files published batch by batch, never rewritten.

A Spark warehouse is a folder (docs/spark.md, "Table layout")::

    citykpi.duckdb                      control tables: meta, areas, indicator_keys, batches, rejects, runs…
    tables/observations/batch_id=N/day=YYYY-MM-DD/*.parquet
    tables/observations_superseded/superseded_by=N/day=YYYY-MM-DD/*.parquet
    tables/src_<id>/batch_id=N/day=YYYY-MM-DD/*.parquet
    tables/<table>__removed/removed_by=N/*.parquet      keys of stored rows batch N took out
    _staging/N/…                        a batch being written (never read)

The data tables of ``citykpi.duckdb`` itself stay empty: ingest uses them as its staging tables,
inside the file's transaction, exactly as on the embedded backend. Before that transaction commits,
:meth:`PublishedTables.publish` writes the batch's rows (and the keys of the stored rows it
replaced) under ``_staging/N`` and moves each folder into ``tables/`` with one rename. A batch is
*committed* when its row in ``batches`` says ``loaded``; readers see the rows of committed batches
only, less the rows a committed batch removed (merge on read). A crash before the commit leaves
folders of an uncommitted batch that no reader sees and the next writer deletes.

Readers are views with the tables' own names: temporary views on the control connection (DuckDB
reads the files for ``db info``, ``query`` and ingest's checks) and on the Spark session.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from citykpi.backend.base import Connection
from citykpi.errors import WarehouseError
from citykpi.sqlutil import ident, literal

__all__ = [
    "CONTROL_FILE",
    "PublishedTables",
    "TableFiles",
    "data_tables",
    "refresh_control_views",
    "table_files",
]

#: The control database inside a warehouse folder.
CONTROL_FILE = "citykpi.duckdb"
TABLES = "tables"
STAGING = "_staging"
#: Suffix of the folder of tombstones of a table (keys of rows a later batch removed).
REMOVED = "__removed"


def is_data_table(name: str) -> bool:
    """Tables whose rows are published as files: observations, superseded rows, raw source tables."""
    return name in ("observations", "observations_superseded") or name.startswith("src_")


def publish_key(table: str) -> str:
    """The column whose batch makes a row visible: the batch that wrote it (or that superseded it)."""
    return "superseded_by" if table == "observations_superseded" else "batch_id"


@dataclass(frozen=True)
class TableFiles:
    """One published table: its columns (control table order, SQL types) and its folders."""

    name: str
    columns: tuple[tuple[str, str], ...]
    folder: Path
    removed: Path

    @property
    def key(self) -> str:
        """The partition column naming the batch a row became visible with."""
        return publish_key(self.name)

    def has_files(self) -> bool:
        """True when a batch folder holds at least one Parquet file."""
        return self.folder.is_dir() and any(self.folder.glob("*=*/**/*.parquet"))

    def has_removals(self) -> bool:
        """True when some batch removed stored rows of this table."""
        return self.removed.is_dir() and any(self.removed.glob("*=*/*.parquet"))


def data_tables(con: Connection, catalog: str) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """(name, columns) of every data table of the control database ``catalog``, in a stable order."""
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        f"WHERE table_catalog = {literal(catalog)} AND table_schema = 'main' ORDER BY table_name, ordinal_position"
    ).fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        if is_data_table(str(table)):
            out.setdefault(str(table), []).append((str(column), str(kind)))
    return [(name, tuple(cols)) for name, cols in sorted(out.items())]


def table_files(root: Path, name: str, columns: tuple[tuple[str, str], ...]) -> TableFiles:
    """Where table ``name`` of the warehouse at ``root`` keeps its files."""
    return TableFiles(name, columns, root / TABLES / name, root / TABLES / f"{name}{REMOVED}")


def _empty(name: str) -> str:
    """The view of an empty table shaped like data table ``name`` (while no batch has files)."""
    return ident(f"{name}_ck_empty")


def _catalog(con: Connection) -> str:
    row = con.execute("SELECT current_database()").fetchall()
    return str(row[0][0])


def _files_sql(t: TableFiles, committed: str) -> str:
    """DuckDB: the visible rows of ``t`` (columns in table order), reading its published files."""
    cols = ", ".join(f"p.{ident(c)}" for c, _ in t.columns)
    if not t.has_files():
        return f"SELECT {cols} FROM {_empty(t.name)} p"
    glob = literal(str(t.folder / "*=*" / "day=*" / "*.parquet"))
    sql = (
        f"SELECT {cols} FROM read_parquet({glob}, hive_partitioning = true, "
        f"hive_types = {{'{t.key}': INTEGER, 'day': DATE}}) p WHERE p.{ident(t.key)} IN ({committed})"
    )
    if t.has_removals():
        rglob = literal(str(t.removed / "removed_by=*" / "*.parquet"))
        keys = [c for c, _ in t.columns if c in _removal_keys(t)]
        match = " AND ".join(f"r.{ident(k)} = p.{ident(k)}" for k in keys)
        sql += (
            f" AND NOT EXISTS (SELECT 1 FROM read_parquet({rglob}, hive_partitioning = true, "
            f"hive_types = {{'removed_by': INTEGER}}) r WHERE r.removed_by IN ({committed}) AND {match})"
        )
    return sql


def _removal_keys(t: TableFiles) -> set[str]:
    """Columns a tombstone of ``t`` carries: the row's key columns and the batch that wrote it."""
    import pyarrow.parquet as pq

    first = next(t.removed.glob("removed_by=*/*.parquet"))
    return {str(n) for n in pq.read_schema(first).names}


def committed_sql(catalog: str) -> str:
    """DuckDB: the ids of the committed batches (control table ``batches``)."""
    return f"SELECT batch_id FROM {ident(catalog)}.main.batches WHERE status = 'loaded'"


def refresh_control_views(con: Connection, root: Path) -> None:
    """Show every data table of the control connection as its published rows (temporary views).

    The views shadow the (empty) staging tables of the same name for unqualified reads; ingest drops
    them while it stages a file (:meth:`PublishedTables.begin_ingest`).
    """
    catalog = _catalog(con)
    committed = committed_sql(catalog)
    for name, columns in data_tables(con, catalog):
        t = table_files(root, name, columns)
        empty = f"{_empty(name)}"
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {empty} AS SELECT * FROM {ident(catalog)}.main.{ident(name)} WHERE false"
        )
        con.execute(f"CREATE OR REPLACE TEMP VIEW {ident(name)} AS {_files_sql(t, committed)}")


def drop_control_views(con: Connection) -> None:
    """Drop the views of :func:`refresh_control_views` (the staging tables show through again)."""
    rows = con.execute("SELECT view_name FROM duckdb_views() WHERE temporary AND NOT internal").fetchall()
    for (name,) in rows:
        if is_data_table(str(name)) or str(name).endswith("_ck_empty") or str(name).startswith("_ck_pub_"):
            con.execute(f"DROP VIEW IF EXISTS temp.main.{ident(str(name))}")


def remove_tree(path: Path) -> None:
    """Delete ``path`` (a folder or file) if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


class PublishedTables:
    """The table store of a Spark warehouse folder (see the module docstring and docs/spark.md)."""

    #: the stored rows are published files: a batch's clashes are brought in once its rows are staged
    holds_stored = False
    appended_rows: str | None = None  # stored rows are brought into the staging table per batch

    def __init__(self, root: Path) -> None:
        """The store of the warehouse folder ``root``."""
        self.root = root
        #: target → key columns (SQL) of the stored rows fetched for the batch being ingested
        self._fetched: dict[str, tuple[str, ...]] = {}

    # --- ingest hooks (citykpi.backend.base.TableStore) ---------------------------------------------

    def begin_ingest(self, con: Connection) -> None:
        """Expose the staging tables, keeping the published rows readable as ``_ck_pub_<table>``."""
        catalog = _catalog(con)
        committed = committed_sql(catalog)
        drop_control_views(con)
        for name, columns in data_tables(con, catalog):
            t = table_files(self.root, name, columns)
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW {_empty(name)} AS "
                f"SELECT * FROM {ident(catalog)}.main.{ident(name)} WHERE false"
            )
            con.execute(f"CREATE OR REPLACE TEMP VIEW _ck_pub_{name} AS {_files_sql(t, committed)}")
        self._fetched.clear()

    def bring_stored(self, con: Connection, target: str, keys: Sequence[str], batch_id: int) -> None:
        """Copy the published rows whose key a row of batch ``batch_id`` repeats into the staging table.

        ``keys`` are the target's key columns as SQL. The rows keep their own batch ids; ingest's
        duplicate policy then treats them as stored rows (reports them, skips the new ones, or
        supersedes them). What it takes out is published as tombstones by :meth:`publish`.
        """
        pub = f"_ck_pub_{target}"
        if not self._has_view(con, pub):
            return
        self._fetched[target] = tuple(keys)
        b = int(batch_id)
        match = " AND ".join(f"p.{k} = n.{k}" for k in keys)
        window = ""
        if target == "observations":  # a batch's rows only clash with stored rows of its own time range
            lo, hi = con.execute(
                f"SELECT min(period), max(period) FROM {ident(target)} WHERE batch_id = {b}"
            ).fetchall()[0]
            if lo is None:
                return
            window = f" AND p.period BETWEEN {literal(lo)} AND {literal(hi)}"
        con.execute(
            f"""INSERT INTO {ident(target)}
            SELECT p.* FROM {pub} p
            WHERE EXISTS (SELECT 1 FROM {ident(target)} n WHERE n.batch_id = {b} AND {match}){window}"""
        )

    @staticmethod
    def _has_view(con: Connection, name: str) -> bool:
        rows = con.execute(
            f"SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = {literal(name)}"
        ).fetchall()
        return bool(rows[0][0])

    def publish(self, con: Connection, target: str, batch_id: int, day: str = "period") -> None:
        """Write batch ``batch_id``'s rows of ``target`` (and its tombstones) and move them into place.

        Runs inside the file's transaction, before the batch row is committed: until then no reader
        sees the moved folders, and a failed commit leaves folders the next writer removes.
        ``day`` is the SQL of the time column the files are partitioned by (its date).
        """
        catalog = _catalog(con)
        tables = dict(data_tables(con, catalog))
        staging = self.root / STAGING / str(int(batch_id))
        try:
            remove_tree(staging)
            staging.mkdir(parents=True)
        except OSError as exc:
            raise WarehouseError(f"cannot write {staging}: {exc.strerror or exc}") from None
        moves: list[tuple[Path, Path]] = []
        b = int(batch_id)
        t = table_files(self.root, target, tables[target])
        local = f"{ident(catalog)}.main.{ident(target)}"
        cols = [c for c, _ in t.columns]
        # rows of this batch, partitioned by batch and day
        if con.execute(f"SELECT count(*) FROM {local} WHERE batch_id = {b}").fetchall()[0][0]:
            out = staging / target
            self._copy(
                con,
                f"SELECT {', '.join(ident(c) for c in cols)}, CAST({day} AS DATE) AS day FROM {local} "
                f"WHERE batch_id = {b} ORDER BY {day}",
                out,
                ("batch_id", "day"),
            )
            moves.append((out / f"batch_id={b}", t.folder / f"batch_id={b}"))
        # stored rows this batch took out (fetched by bring_stored, no longer staged)
        removed = self._removed_rows(con, local, target, b)
        if removed:
            out = staging / f"{target}{REMOVED}"
            self._copy(con, removed, out, ("removed_by",))
            moves.append((out / f"removed_by={b}", t.removed / f"removed_by={b}"))
        if target == "observations":
            sup = table_files(self.root, "observations_superseded", tables["observations_superseded"])
            slocal = f"{ident(catalog)}.main.observations_superseded"
            if con.execute(f"SELECT count(*) FROM {slocal} WHERE superseded_by = {b}").fetchall()[0][0]:
                out = staging / sup.name
                scols = ", ".join(ident(c) for c, _ in sup.columns)
                self._copy(
                    con,
                    f"SELECT {scols}, CAST(period AS DATE) AS day FROM {slocal} WHERE superseded_by = {b}",
                    out,
                    ("superseded_by", "day"),
                )
                moves.append((out / f"superseded_by={b}", sup.folder / f"superseded_by={b}"))
        try:
            for src, dst in moves:
                dst.parent.mkdir(parents=True, exist_ok=True)
                remove_tree(dst)  # a folder of this id can only be left by a batch that never committed
                src.rename(dst)
            remove_tree(staging)
        except OSError as exc:
            raise WarehouseError(
                f"cannot publish batch {b} in {self.root}: {exc.strerror or exc}; nothing of it is visible",
                hint="free disk space (or make the folder writable) and ingest the file again",
            ) from None
        # the staging tables are empty again once the batch row commits
        con.execute(f"DELETE FROM {local}")
        if target == "observations":
            con.execute(f"DELETE FROM {ident(catalog)}.main.observations_superseded")

    def end_ingest(self, con: Connection) -> None:
        """Show the published rows again under the tables' names (whatever state the transaction is in)."""
        self._fetched.clear()
        refresh_control_views(con, self.root)

    # --- helpers -------------------------------------------------------------------------------------

    def _removed_rows(self, con: Connection, local: str, target: str, batch_id: int) -> str | None:
        """SELECT of the tombstones of the rows ``bring_stored`` fetched and ingest then took out."""
        keys = self._fetched.pop(target, None)
        if not keys:
            return None
        b = int(batch_id)
        kcols = ", ".join(f"p.{k}" for k in keys)
        match = " AND ".join(f"s.{k} = p.{k}" for k in (*keys, "batch_id"))
        newer = " AND ".join(f"n.{k} = p.{k}" for k in keys)
        sql = f"""SELECT {kcols}, p.batch_id, {b} AS removed_by FROM _ck_pub_{target} p
            WHERE EXISTS (SELECT 1 FROM {local} n WHERE n.batch_id = {b} AND {newer})
              AND NOT EXISTS (SELECT 1 FROM {local} s WHERE {match})"""
        count = con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0]
        return sql if count else None

    @staticmethod
    def _copy(con: Connection, select: str, out: Path, partition: tuple[str, ...]) -> None:
        """Write ``select`` as Parquet under ``out``, hive-partitioned by ``partition``."""
        by = ", ".join(partition)
        try:
            con.execute(
                f"COPY ({select}) TO {literal(str(out))} "
                f"(FORMAT parquet, COMPRESSION zstd, PARTITION_BY ({by}), OVERWRITE_OR_IGNORE)"
            )
        except OSError as exc:  # pragma: no cover - the engine reports its own I/O errors
            raise WarehouseError(f"cannot write {out}: {exc.strerror}") from None
