"""How a file becomes staged, validated records and is appended: the plan shared by every format."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from citykpi import citytime
from citykpi.backend import Connection, TableStore
from citykpi.sqlutil import ident, literal
from citykpi.warehouse import readers
from citykpi.warehouse.ingest.options import IngestOptions


class _FileRejected(Exception):
    """A whole file cannot be read or mapped (bad header, malformed CSV)."""


class _StageFromText(Exception):
    """The typed read of a CSV holds a bad record: stage the file again from its text read."""


@dataclass
class _Side:
    """Records a plan keeps beside its target (disaggregated values, missing-value tokens)."""

    inserted: int = 0  # records appended to the side tables
    loaded: int = 0  # of those, kept
    skipped: int = 0  # duplicates of stored records skipped (--on-duplicate keep)
    replaced: int = 0  # stored records this batch replaces (--on-duplicate replace)
    #: target records of this batch the side checks rejected and took out again (a key written both
    #: as a value and as a missing-value token is a duplicate within the file)
    removed_target: int = 0


@dataclass
class _Loaded:
    """Outcome of loading one staged file (inside its transaction)."""

    batch_id: int
    status: str  # loaded | rejected
    read: int
    loaded: int
    rejected: int
    skipped: int
    replaced: int
    summary: dict[str, int]


#: Rows per DuckDB row group: the unit zone maps skip by.
ROW_GROUP = 122_880
#: Largest file whose records are staged in memory once to be both appended and screened for
#: duplicates in one statement (:meth:`_Plan.screened_insert`); a larger one is screened afterwards.
SCREEN_ON_INSERT = 2_000_000


@dataclass
class _Screen:
    """The duplicate screen of a batch taken as its INSERTs appended it: blocks of keys holding a
    duplicate, first and last time."""

    candidates: int = 0
    lo: Any = None
    hi: Any = None

    def add(self, candidates: int, lo: Any, hi: Any) -> None:
        """Fold in one INSERT's screen."""
        self.candidates += int(candidates)
        if lo is not None:
            self.lo = lo if self.lo is None else min(self.lo, lo)
            self.hi = hi if self.hi is None else max(self.hi, hi)


def temp_tables(con: Connection) -> set[str]:
    """Names of the session's temporary tables."""
    rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    return {str(r[0]) for r in rows}


class _Plan:
    """Turns a file into target rows: one validation SQL (``stage_sql``), generic loading steps.

    Loading is optimistic and set-based, and reads the file as few times as it can:

    * long-format Parquet with a typed period: row count and time order come from the footer,
      so the good records stream straight into the target, one INSERT per storage class (the
      coarse class through a pushed-down id filter that skips most of the file); bad records
      are counted as rows minus appended and read again only when there are any;
    * CSV: parsed and validated once into a typed temp table, which every later step reads;
      staged from DuckDB's typed read when the file has one (:func:`readers.typed_csv`) and
      every record is good, else (again) from the text read, whose rejects quote the cells;
    * anything else: one aggregate pass over the file, then the INSERTs.

    Appends are sorted only when the file is not already clustered by time. Duplicates within
    the file are found by an exact bit-block screen for observations (a small batch's in the
    statement that appends it, :meth:`screened_insert`; else among the appended rows) or a hash
    aggregate for source keys, clashes with stored rows by a join restricted to the
    batch's time range, and taken out again. Row numbers for duplicate rejects come from
    re-reading the stage, which happens only when there are any.
    """

    target: str = ""
    table: readers.TableFile
    #: The same CSV read by DuckDB's typed reader (see :meth:`typed_columns`), when it could be.
    fast: readers.TableFile | None = None
    #: (stage column, target column) pairs that identify a record.
    keys: tuple[tuple[str, str], ...] = ()
    #: Stage column with the record's time (clustering) and its target column (clash pre-filter).
    time_stage: str = "period"
    time_target: str | None = "period"
    dup_reason = "duplicate within the file"
    clash_reason = "duplicate of a stored record"
    #: The warehouse's table store, when its stored rows live outside the staging table (Spark).
    store: TableStore | None = None
    #: Whether ``series_classes`` holds every class pair of the catalogue's indicators, when known.
    classes_recorded: bool | None = None
    #: The storage classes of the catalogue's indicators, when ingest's key check has read them.
    catalogue_classes: frozenset[int] | None = None

    def __init__(self, options: IngestOptions) -> None:
        """Remember the options."""
        self.options = options
        self.now = options.now or datetime.now()

    def stage_sql(self, file_filter: str | None = None, table: readers.TableFile | None = None) -> str:
        """SELECT of every record: _row, target values, ok, reason, bad_col, bad_val.

        ``file_filter``: a condition on the file's own columns, pushed into the file scan.
        ``table``: another read of the same file (the typed CSV read); default ``self.table``.
        """
        raise NotImplementedError

    def prepare_typed_read(self, con: Connection) -> None:
        """Read a CSV with DuckDB's typed reader into ``fast``, when it has typed columns.

        Run it before the file's transaction: a read DuckDB refuses would abort the transaction.
        """
        if self.options.typed_csv and self.table.kind == "csv" and (types := self.typed_columns()):
            period_format = self.options.date_formats.get("period")
            self.fast = readers.typed_csv(con, self.table, types, "_ck_raw", period_format)

    def typed_columns(self) -> dict[str, str] | None:
        """File column → DuckDB type for a typed read of a CSV, or None to always read it as text.

        Only types whose CSV conversion equals ``TRY_CAST`` of the text qualify (DOUBLE, ISO
        TIMESTAMP, VARCHAR), so a clean file stages the same records either way."""
        return None

    def streamed_passes(self, part: str, good: str) -> tuple[str, tuple[str, ...]]:
        """A streamed file's pass over partition ``part``: the good records it appends (a subquery;
        by default ``good``, every good record) and the good records that subquery cannot see, read
        only when some records were neither appended nor rejected (by default none)."""
        return good, ()

    def insert_values(self, batch_id: int) -> str:
        """The SELECT list (over stage alias ``s``) of the target table's columns."""
        raise NotImplementedError

    def ensure_target(self, con: Connection) -> None:
        """Create the target table if needed."""

    def screened_insert(
        self, con: Connection, source: str, batch_id: int, *, where: str, order: str
    ) -> str | None:
        """:meth:`insert_sql` and the duplicate screen of what it appends, as one statement whose one
        row is (records appended, blocks holding a duplicate, first time, last time); None when the
        plan screens the appended records afterwards (:meth:`duplicate_blocks`)."""
        return None

    def insert_sql(self, source: str, batch_id: int, *, where: str, order: str) -> str:
        """The INSERT of the staged records of ``source`` (alias ``s``) that satisfy ``where``."""
        return (
            f"INSERT INTO {ident(self.target)} SELECT {self.insert_values(batch_id)} "
            f"FROM {source} s WHERE {where}{order}"
        )

    def partitions(self, con: Connection | None = None) -> tuple[str, ...]:
        """Conditions splitting the insert into clustered passes (default: one pass)."""
        return ("TRUE",)

    def after_insert(self, con: Connection, batch_id: int, *, screened: bool = False) -> None:
        """Bookkeeping after the rows of a batch are appended (``screened``: every row was appended by
        :meth:`screened_insert`, which does its own)."""

    def supersede(self, con: Connection, batch_id: int) -> None:
        """--on-duplicate replace: retire the stored rows listed in ``_ck_clash``."""
        raise NotImplementedError

    def side_load(self, con: Connection, good: str, batch_id: int) -> _Side:
        """Append the good records that belong beside the target (none by default), with their own
        duplicate checks; their rejects go to ``_ck_bad``."""
        return _Side()

    def target_rows(self, good: str) -> str:
        """The good staged records that went to the target (all of them, unless some go beside it)."""
        return good

    def side_supersede(self, con: Connection, batch_id: int) -> None:
        """--on-duplicate replace for the side records: retire the stored ones this batch brings again."""

    def discard(self, con: Connection, batch_id: int) -> None:
        """Take every record of a rejected batch out again (the target and the side tables)."""
        con.execute(f"DELETE FROM {ident(self.target)} WHERE batch_id = {int(batch_id)}")

    # generic steps --------------------------------------------------------------------------

    def _match(self, left: str, right: str, *, left_stage: bool, right_stage: bool) -> str:
        cols = []
        for stage_col, target_col in self.keys:
            lcol = stage_col if left_stage else target_col
            rcol = stage_col if right_stage else target_col
            cols.append(f"{left}.{lcol} = {right}.{rcol}")
        return " AND ".join(cols)

    def file_rows(self, con: Connection) -> int | None:
        """Records in the file known without reading it (Parquet metadata); None when unknown."""
        return None

    def clustered_by_metadata(self, con: Connection) -> bool | None:
        """Whether the file is time-clustered, from its metadata alone; None when unknown."""
        return None

    def dst_windows(self, con: Connection) -> tuple[citytime.DstWindow, ...]:
        """The city's DST windows the staging query checks readings against (none by default)."""
        return ()

    def load(self, con: Connection, path: str, writing: Callable[[], object]) -> _Loaded:
        """Validate and append the file's records; the caller's transaction makes it atomic."""
        stage = self.stage_sql()
        target = ident(self.target)
        total = self.file_rows(con)
        clustered = self.clustered_by_metadata(con) if total is not None else None
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _ck_bad (_row BIGINT, bad_col VARCHAR, bad_val VARCHAR, reason VARCHAR)"
        )
        n_bad: int | None = None
        if total is not None and clustered is not None:
            # Typed Parquet, time order known from row-group statistics: stream the file straight
            # into the target (read once per storage class); bad records are counted afterwards.
            good = f"(SELECT * FROM ({stage}) WHERE reason IS NULL)"
            many = total > ROW_GROUP
            bound = total
        else:
            if self.table.kind == "csv":
                # Parsing text dominates: parse and validate once into a typed temp table (no
                # reject strings), then every later step reads that instead of the file.
                scan, good = "_ck_stage", "(SELECT * FROM _ck_stage WHERE ok)"
                typed, self.fast = self.fast, None  # the typed read is tried once
                groups = self._stage_csv(con, typed)
                if typed is not None and any(g[1] for g in groups):
                    raise _StageFromText  # rejects quote the file's own text: see _ingest_file
            else:
                scan, good = f"({stage})", f"(SELECT * FROM ({stage}) WHERE ok)"
                groups = self._row_groups(con, scan)
            n_bad = sum(int(g[1]) for g in groups)
            ranges = [(g[2], g[3]) for g in groups if g[2] is not None]
            clustered = all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(ranges))
            many = len(groups) > 1
            bound = len(groups) * ROW_GROUP
        # whether stored rows lie in the file's time span, asked before the batch's own rows are
        # staged (when the footer says; reading around them afterwards is the slower way)
        near = (
            self.stored_near(con) if self.keys and (self.store is None or self.store.holds_stored) else None
        )
        # 2. append the good records, in time order
        writing()
        self.ensure_target(con)
        batch_id = int(con.execute("SELECT coalesce(max(batch_id), 0) + 1 FROM batches").fetchall()[0][0])
        # Zone maps need time-clustered row groups, not sorted rows: a big file that is clustered
        # already is appended as it is; anything else is sorted (cheap for small files).
        order = "" if clustered and many else f" ORDER BY s.{self.time_stage}"

        # A small batch is screened for duplicates as it is appended (read back from the target, a
        # fresh process's first read of it costs more than the screen itself)
        screen: _Screen | None = _Screen() if self.keys and bound <= SCREEN_ON_INSERT else None
        parts: set[str] = set()

        def insert(source: str, part: str) -> int:
            nonlocal screen
            if part in parts:  # a second INSERT into a class: a key may be in both, no screen sees it
                screen = None
            parts.add(part)
            both = self.screened_insert(con, source, batch_id, where=part, order=order) if screen else None
            if screen is None or both is None:
                screen = None  # some records unscreened: screen the batch once it is appended
                return int(
                    con.execute(self.insert_sql(source, batch_id, where=part, order=order)).fetchall()[0][0]
                )
            n, candidates, lo, hi = con.execute(both).fetchall()[0]
            screen.add(candidates, lo, hi)
            return int(n)

        inserted = 0
        missed: list[tuple[str, str]] = []
        for part in self.partitions(con if n_bad is None else None):  # a streamed file: its classes
            source, unseen = self.streamed_passes(part, good) if n_bad is None else (good, ())
            missed += [(u, part) for u in unseen]
            inserted += insert(source, part)
        if n_bad is None:
            n_bad = (total or 0) - inserted
        if n_bad:
            con.execute(
                f"INSERT INTO _ck_bad SELECT _row, bad_col, bad_val, reason FROM ({stage}) WHERE reason IS NOT NULL"
            )
            if missed and int(con.execute("SELECT count(*) FROM _ck_bad").fetchall()[0][0]) < n_bad:
                # good records the streamed passes could not see (ids with blanks around them)
                for source, part in missed:
                    inserted += insert(source, part)
                n_bad = (total or 0) - inserted
        self.after_insert(con, batch_id, screened=screen is not None)
        side = self.side_load(con, good, batch_id)
        this = f"batch_id = {batch_id}"
        kept = inserted - side.removed_target
        main = self.target_rows(good)
        if side.removed_target:
            screen = None  # records were taken out again since they were screened
        dups, span = (
            self._duplicates_within(con, main, target, this, kept, screen)
            if self.keys and kept > 1
            else (0, None)
        )
        clash = self._clashes(con, main, target, batch_id, span, near) if self.keys and kept > dups else 0
        policy = self.options.on_duplicate
        # every step that rejects a record says so (a count): when none did, _ck_bad is empty
        quiet = not n_bad and not dups and not clash and side == _Side()
        rejected = 0 if quiet else int(con.execute("SELECT count(*) FROM _ck_bad").fetchall()[0][0])
        read = inserted + n_bad + side.inserted
        skipped = clash if policy == "keep" else 0
        if policy == "resend" and clash:  # identical re-sends skipped; changed ones rejected (IN503)
            skipped = clash - int(
                con.execute("SELECT count(*) FROM _ck_clash WHERE NOT same").fetchall()[0][0]
            )
        skipped += side.skipped
        replaced = (clash if policy == "replace" else 0) + side.replaced
        loaded = kept - dups - (clash if policy in ("reject", "keep", "resend") else 0) + side.loaded
        status = "loaded"
        if rejected and (self.options.strict or rejected >= read):
            status, loaded, skipped, replaced = "rejected", 0, 0, 0
            self.discard(con, batch_id)
        else:
            if policy == "replace" and clash:
                self.supersede(con, batch_id)
            if side.replaced:
                self.side_supersede(con, batch_id)
        rows = (
            con.execute(
                "SELECT reason, count(*) FROM _ck_bad GROUP BY reason ORDER BY count(*) DESC, reason"
            ).fetchall()
            if rejected
            else []
        )
        summary = {str(r): int(c) for r, c in rows}
        return _Loaded(batch_id, status, read, loaded, rejected, skipped, replaced, summary)

    def _stage_csv(self, con: Connection, table: readers.TableFile | None) -> list[tuple[Any, ...]]:
        """Stage ``table`` (default the text read) into ``_ck_stage``; return its row groups."""
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _ck_stage AS "
            f"SELECT * EXCLUDE (reason, bad_col, bad_val) FROM ({self.stage_sql(table=table)})"
        )
        return self._row_groups(con, "_ck_stage")

    def _row_groups(self, con: Connection, scan: str) -> list[tuple[Any, ...]]:
        """One pass: (group, bad records, first and last good time) per row group of the file."""
        return con.execute(
            f"""SELECT _row // {ROW_GROUP} AS g, count(*) FILTER (WHERE NOT ok) AS bad,
                       min({self.time_stage}) FILTER (WHERE ok) AS lo,
                       max({self.time_stage}) FILTER (WHERE ok) AS hi
                FROM {scan} GROUP BY g ORDER BY g"""
        ).fetchall()

    def stored_near(self, con: Connection) -> bool | None:
        """Whether any stored record lies in the file's time span, known from the file's metadata
        before its records are staged; None when the metadata cannot tell (then the clash check
        reads the batch's own span after staging it)."""
        return None

    def duplicate_blocks(self, this: str, rows: str | None = None) -> str | None:
        """A cheap exact screen for keys appended twice: a SELECT of the small blocks of keys the
        batch appended, each with ``dup`` (the block holds a duplicate), ``n`` (its rows) and
        ``other`` (its rows not of this batch), in columns named like the stage keys they group by
        (the time column among them, when the plan has one); or None to hash every key.

        ``rows``: a cheaper predicate that selects the batch's rows (and perhaps others), else ``this``."""
        return None

    def _duplicates_within(
        self, con: Connection, good: str, target: str, this: str, kept: int, screen: _Screen | None = None
    ) -> tuple[int, tuple[Any, Any] | None]:
        """Find keys appended twice by this batch; reject every such record and take it out again.

        ``screen``: the screen its INSERTs took of every record they appended, when they did.
        Returns the records taken out and, when the screen saw it on the way, the batch's time
        span (first, last), which the clash check then need not read again."""
        tcols = ", ".join(t for _, t in self.keys)
        as_stage = ", ".join(f"{t} AS {s_}" for s_, t in self.keys)
        scols = ", ".join(s_ for s_, _ in self.keys)
        blocks = self.duplicate_blocks(this)
        span: tuple[Any, Any] | None = None
        if blocks is not None:
            # a few fixed-size states per block of keys instead of a hash table over every key
            timed = self.time_target is not None
            times = f"min({self.time_stage}), max({self.time_stage})" if timed else "NULL, NULL"
            if screen is not None:
                candidates, lo, hi = screen.candidates, screen.lo, screen.hi
            else:
                query = f"SELECT count(*) FILTER (WHERE dup), {times}, coalesce(sum(n), 0), coalesce(sum(other), 0)"
                appended = self.store.appended_rows if self.store is not None else None
                found = con.execute(f"{query} FROM ({self.duplicate_blocks(this, appended)})").fetchall()[0]
                if appended and (found[3] != kept or found[4]):  # not the batch alone: screen by batch
                    found = con.execute(f"{query} FROM ({blocks})").fetchall()[0]
                candidates, lo, hi = found[:3]
            span = (lo, hi) if timed else None
            if not candidates:
                return 0, span
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _ck_dupkeys AS
                WITH b AS (SELECT * FROM ({blocks}) WHERE dup)
                SELECT {as_stage} FROM {target} o SEMI JOIN b ON {self.block_match("o", "b")}
                WHERE o.{this} GROUP BY ALL HAVING count(*) > 1"""
            )
        else:
            candidates = con.execute(
                f"SELECT count(*) FROM (SELECT hash({tcols}) AS h FROM {target} WHERE {this} "
                "GROUP BY h HAVING count(*) > 1)"
            ).fetchall()[0][0]
            if not candidates:
                return 0, None
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _ck_dupkeys AS
                WITH h AS (SELECT hash({tcols}) AS h FROM {target} WHERE {this} GROUP BY h HAVING count(*) > 1)
                SELECT {as_stage} FROM {target} WHERE {this} AND hash({tcols}) IN (SELECT h FROM h)
                GROUP BY ALL HAVING count(*) > 1"""
            )
        if not con.execute("SELECT count(*) FROM _ck_dupkeys").fetchall()[0][0]:
            return 0, span
        con.execute(
            f"""INSERT INTO _ck_bad
            WITH m AS (SELECT s._row, {", ".join("s." + c for c, _ in self.keys)}
                       FROM {good} s JOIN _ck_dupkeys d ON {self._match("s", "d", left_stage=True, right_stage=True)}),
                 t AS (SELECT {scols}, 'rows ' || array_to_string(list(_row ORDER BY _row)[1:5], ', ') AS txt
                       FROM m GROUP BY ALL)
            SELECT m._row, NULL, t.txt, {literal(self.dup_reason)} FROM m JOIN t USING ({scols})"""
        )
        deleted = con.execute(
            f"""DELETE FROM {target} o USING _ck_dupkeys d
            WHERE o.{this} AND {self._match("o", "d", left_stage=False, right_stage=True)}"""
        ).fetchall()
        return int(deleted[0][0]), span  # the span still covers what is left

    def block_match(self, rows: str, blocks: str) -> str:
        """Join condition of target rows to the blocks of :meth:`duplicate_blocks`."""
        raise NotImplementedError

    def same_record(self, new: str, old: str) -> str:
        """SQL: the stored record ``old`` says the same as the new one ``new`` (``--on-duplicate resend``)."""
        return "TRUE"

    #: Why a record that differs from the stored one is rejected under ``--on-duplicate resend``.
    changed_reason = "changed record"

    def _clashes(
        self,
        con: Connection,
        good: str,
        target: str,
        batch_id: int,
        span: tuple[Any, Any] | None = None,
        near: bool | None = None,
    ) -> int:
        """Records of this batch whose key is already stored; apply the duplicate policy's first half.

        ``span``: the batch's first and last time, when known (else read here). ``near``: whether any
        stored row lies in the file's time span (:meth:`stored_near`); False settles it at once."""
        if near is False:
            return 0
        this = f"batch_id = {batch_id}"
        if self.store is not None:  # stored rows published elsewhere: stage the ones this batch repeats
            self.store.bring_stored(con, self.target, [t for _, t in self.keys], batch_id)
        prefilter = ""
        if self.time_target:
            lo, hi = (
                span
                or con.execute(
                    f"SELECT min({self.time_target}), max({self.time_target}) FROM {target} WHERE {this}"
                ).fetchall()[0]
            )
            prefilter = f" AND o.{self.time_target} BETWEEN {literal(lo)} AND {literal(hi)}"
        other = con.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {target} o WHERE o.batch_id <> {batch_id}{prefilter} LIMIT 1)"
        ).fetchall()[0][0]
        if not other:
            return 0
        as_stage = ", ".join(f"n.{t} AS {s_}" for s_, t in self.keys)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _ck_clash AS
            SELECT {as_stage}, min(o.batch_id) AS old_batch, bool_and({self.same_record("n", "o")}) AS same
            FROM {target} n JOIN {target} o ON {self._match("n", "o", left_stage=False, right_stage=False)}
            WHERE n.{this} AND o.batch_id <> {batch_id}{prefilter}
            GROUP BY {", ".join(f"n.{t}" for _, t in self.keys)}"""
        )
        clash = int(con.execute("SELECT count(*) FROM _ck_clash").fetchall()[0][0])
        if not clash or self.options.on_duplicate == "replace":
            return clash
        if self.options.on_duplicate == "reject":
            con.execute(
                f"""INSERT INTO _ck_bad
                SELECT s._row, NULL, 'batch ' || c.old_batch, {literal(self.clash_reason)}
                FROM {good} s JOIN _ck_clash c ON {self._match("s", "c", left_stage=True, right_stage=True)}"""
            )
        elif self.options.on_duplicate == "resend":
            con.execute(
                f"""INSERT INTO _ck_bad
                SELECT s._row, NULL, 'batch ' || c.old_batch, {literal(self.changed_reason)}
                FROM {good} s JOIN _ck_clash c ON {self._match("s", "c", left_stage=True, right_stage=True)}
                WHERE NOT c.same"""
            )
        con.execute(
            f"""DELETE FROM {target} o USING _ck_clash c
            WHERE o.{this} AND {self._match("o", "c", left_stage=False, right_stage=True)}"""
        )
        return clash
