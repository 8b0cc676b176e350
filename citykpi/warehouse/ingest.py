"""`citykpi ingest`: validate rows set-based in DuckDB, record rejects, load atomically per file.

One file = one transaction (batch row + observations + rejects together), so a crash or
``kill -9`` leaves no partial batch. A file whose sha256 already has a loaded batch for the same
target is a no-op (``unchanged``) unless ``force``. Every check is one SQL pass over the file
joined to small key tables; no row is looked at in Python.
"""

from __future__ import annotations

import contextlib
import glob
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import duckdb
import polars as pl

from citykpi import __version__
from citykpi.catalogue.model import Catalogue, SourceTable
from citykpi.errors import DataError, UsageError, WarehouseError
from citykpi.sqlutil import ident, literal
from citykpi.warehouse import readers, schema
from citykpi.warehouse.connection import Warehouse

Format = Literal["long", "wide", "source"]
DuplicatePolicy = Literal["reject", "replace", "keep"]
Progress = Callable[[str, int, int], None]

FORMATS: tuple[str, ...] = ("long", "wide", "source")
DUPLICATE_POLICIES: tuple[str, ...] = ("reject", "replace", "keep")
LONG_FIELDS: tuple[str, ...] = ("indicator_id", "area_id", "period", "value", "numerator", "denominator")
#: Other header names accepted for the long-format fields (matched loosely, see readers.normalise_name).
ALIASES: Mapping[str, tuple[str, ...]] = {
    "indicator_id": ("indicator", "indicator_code"),
    "area_id": ("area", "area_code"),
    "period": ("date", "time", "timestamp"),
    "value": ("val",),
}
#: Date/time formats tried (after ISO) for text periods and source timestamps without a declared format.
DEFAULT_DATE_FORMATS: tuple[str, ...] = (
    "%Y/%m/%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%d %H:%M",
    "%Y年%m月%d日",
    "%Y-%m",
    "%Y%m%d",
    "%Y",
)
DATA_SUFFIXES = readers.CSV_SUFFIXES + readers.PARQUET_SUFFIXES
_TMP = ("_ck_stage", "_ck_dupkeys", "_ck_dup", "_ck_clash", "_ck_ind", "_ck_area")


@dataclass(frozen=True)
class IngestOptions:
    """How to read and load the files of one ``ingest`` call.

    ``mapping``: for long format, field → file column (fields: indicator_id, area_id, period, value,
    numerator, denominator); for wide, area_id / period → file column; for sources, declared
    column → file column. ``wide``: file column → indicator id (wide format only; default: every
    column named like a catalogue indicator). ``date_formats``: column → strptime format, for the
    period (key ``period``) or a source's date/timestamp columns. ``now``: the cut-off for
    "period in the future" (default: the clock).
    """

    fmt: Format = "long"
    source: str | None = None
    mapping: Mapping[str, str] = field(default_factory=dict)
    wide: Mapping[str, str] = field(default_factory=dict)
    on_duplicate: DuplicatePolicy = "reject"
    strict: bool = False
    dry_run: bool = False
    force: bool = False
    date_formats: Mapping[str, str] = field(default_factory=dict)
    now: datetime | None = None


@dataclass(frozen=True)
class FileResult:
    """What happened to one file. Counts are records: rows (long, source) or non-empty cells (wide)."""

    path: str
    sha256: str
    status: str  # loaded | unchanged | rejected | dry_run
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_skipped: int = 0  # duplicates of stored data skipped (--on-duplicate keep)
    rows_replaced: int = 0  # stored rows superseded (--on-duplicate replace)
    batch_id: int | None = None
    target: str = ""
    rejects: Mapping[str, int] = field(default_factory=dict)  # reason -> count
    message: str = ""  # why a whole file was rejected, or which batch it matches when unchanged


@dataclass(frozen=True)
class IngestReport:
    """Per-file results of one ``ingest`` call."""

    files: tuple[FileResult, ...]
    dry_run: bool = False

    @property
    def rows_loaded(self) -> int:
        """Records loaded over all files."""
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_rejected(self) -> int:
        """Records rejected over all files."""
        return sum(f.rows_rejected for f in self.files)

    @property
    def has_rejects(self) -> bool:
        """True when any record or whole file was rejected (the CLI exits 1)."""
        return any(f.status == "rejected" or f.rows_rejected > 0 for f in self.files)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {"dry_run": self.dry_run, "files": [asdict(f) for f in self.files]}


# --- options helpers ---------------------------------------------------------------------------------


def parse_map(pairs: Iterable[str], fmt: str) -> tuple[dict[str, str], dict[str, str]]:
    """Split ``--map KEY=VALUE`` pairs into (mapping, wide mapping) for ``fmt``.

    long/source: FIELD=COLUMN. wide: area_id=COLUMN and period=COLUMN, every other pair is
    COLUMN=INDICATOR_ID.
    """
    mapping: dict[str, str] = {}
    wide: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise UsageError(f"--map {pair!r}: expected NAME=VALUE, e.g. --map area_id=district_code")
        if fmt == "wide" and key not in ("area_id", "period"):
            wide[key] = value
        else:
            if fmt == "long" and key not in LONG_FIELDS:
                raise UsageError(
                    f"--map {pair!r}: unknown field {key!r}; use one of {', '.join(LONG_FIELDS)}"
                )
            mapping[key] = value
    return mapping, wide


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files, directories (recursively: .csv .tsv .txt .parquet .pq) and globs, in a stable order."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in DATA_SUFFIXES))
        elif p.is_file():
            out.append(p)
        elif glob.has_magic(str(raw)):
            matched = sorted(Path(m) for m in glob.glob(str(raw), recursive=True) if Path(m).is_file())
            if not matched:
                raise UsageError(f"no files match {raw}")
            out.extend(matched)
        else:
            raise UsageError(f"{raw}: no such file or directory")
    seen: set[Path] = set()
    unique = []
    for f in out:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


# --- entry point ---------------------------------------------------------------------------------------


def ingest(
    wh: Warehouse,
    catalogue: Catalogue,
    paths: Iterable[str | Path],
    options: IngestOptions | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Validate and load data files into the warehouse, one transaction per file.

    Args:
        wh: an open, writable warehouse (read-only is fine with ``dry_run``).
        catalogue: the loaded catalogue (indicator ids, valid ranges, sources).
        paths: files, directories or globs.
        options: format, column mapping, duplicate policy, strict / dry-run / force.
        progress: optional callback ``(message, done, total)`` called as files are processed.

    Returns:
        IngestReport with one FileResult per file.

    Raises:
        UsageError: bad options (unknown source, format, policy) or no files.
        WarehouseError: the database cannot be written.
    """
    options = options or IngestOptions()
    _check_options(catalogue, options)
    files = expand_paths(paths)
    if not files:
        raise UsageError("no data files to ingest", hint="pass files, folders or globs")
    results: list[FileResult] = []
    for n, path in enumerate(files):
        if progress:
            progress(f"{path}: reading", n, len(files))
        results.append(_ingest_file(wh, catalogue, path, options, progress, n, len(files)))
        if progress:
            r = results[-1]
            progress(
                f"{path}: {r.status}, {r.rows_loaded} loaded, {r.rows_rejected} rejected", n + 1, len(files)
            )
    return IngestReport(tuple(results), dry_run=options.dry_run)


def _check_options(catalogue: Catalogue, options: IngestOptions) -> None:
    if options.fmt not in FORMATS:
        raise UsageError(f"unknown format {options.fmt!r}; use one of {', '.join(FORMATS)}")
    if options.on_duplicate not in DUPLICATE_POLICIES:
        raise UsageError(
            f"unknown --on-duplicate {options.on_duplicate!r}; use one of {', '.join(DUPLICATE_POLICIES)}"
        )
    if options.fmt == "source":
        if not options.source:
            raise UsageError("--format source needs --source ID (a source declared in the catalogue)")
        if not any(s.id == options.source for s in catalogue.sources):
            known = ", ".join(s.id for s in catalogue.sources) or "none declared"
            raise UsageError(f"unknown source {options.source!r}; the catalogue declares: {known}")
    elif options.source:
        raise UsageError("--source only goes with --format source")


def _source(catalogue: Catalogue, source_id: str) -> SourceTable:
    return next(s for s in catalogue.sources if s.id == source_id)


# --- one file ------------------------------------------------------------------------------------------


class _FileRejected(Exception):
    """A whole file cannot be read or mapped (bad header, malformed CSV)."""


def _ingest_file(
    wh: Warehouse,
    catalogue: Catalogue,
    path: Path,
    options: IngestOptions,
    progress: Progress | None,
    n: int,
    total: int,
) -> FileResult:
    con = wh.con
    started = datetime.now()
    kind = readers.file_kind(path)
    target = "observations" if options.fmt != "source" else schema.source_table_name(str(options.source))
    try:
        scan = readers.scan_file(path, text=kind == "csv")
    except DataError as exc:  # undecodable text
        sha = readers.scan_file(path, text=False).sha256
        return FileResult(str(path), sha, "rejected", target=target, message=exc.message, rejects={})
    if not options.force:
        row = con.execute(
            "SELECT batch_id FROM batches WHERE sha256 = ? AND target = ? AND status = 'loaded' "
            "ORDER BY batch_id DESC LIMIT 1",
            [scan.sha256, target],
        ).fetchone()
        if row is not None:
            return FileResult(
                str(path),
                scan.sha256,
                "unchanged",
                batch_id=int(row[0]),
                target=target,
                message=f"already loaded as batch {row[0]}; pass --force to load it again",
            )
    try:
        table = readers.open_table(con, path, scan)
    except DataError as exc:
        return FileResult(str(path), scan.sha256, "rejected", target=target, message=exc.message)
    # One transaction per file: keys, staging, batch, rows and rejects commit together or not at all.
    # A dry run or a file rejected before staging rolls it back, so the database is untouched.
    con.execute("BEGIN TRANSACTION")
    committed = False
    try:
        plan: _Plan
        if options.fmt == "source":
            plan = _SourcePlan(catalogue, _source(catalogue, str(options.source)), table, options)
        else:
            plan = _ObservationPlan(catalogue, table, options)
        if not options.dry_run:
            wh.register_indicators(i.id for i in catalogue.indicators)
        _prepare_keys(wh, catalogue)
        if progress:
            progress(f"{path}: validating", n, total)
        try:
            plan.stage(con)
        except duckdb.Error as exc:
            detail = "; ".join(line.strip() for line in str(exc).strip().splitlines()[:3])
            raise _FileRejected(f"cannot read the file: {detail}") from None
        counts = plan.counts(con)
        bad, read = counts["rejected"], counts["read"]
        rejected_file = bad > 0 and (options.strict or bad >= read)
        status = "dry_run" if options.dry_run else ("rejected" if rejected_file else "loaded")
        summary = plan.reject_summary(con)
        ok = status != "rejected"
        skipped = counts["skipped"] if ok else 0
        replaced = counts["replaced"] if ok else 0
        loaded = read - bad - skipped if ok else 0
        message = (
            f"--strict: {bad} bad record(s), so the whole file was rejected" if options.strict and bad else ""
        )
        batch_id: int | None = None
        if not options.dry_run:
            if progress:
                progress(f"{path}: writing", n, total)
            batch_id, loaded = _write(
                con, plan, path, scan.sha256, target, options, started, status, read, bad
            )
            con.execute("COMMIT")
            committed = True
        return FileResult(
            str(path),
            scan.sha256,
            status,
            read,
            loaded,
            bad,
            skipped,
            replaced,
            batch_id,
            target,
            summary,
            message,
        )
    except _FileRejected as exc:
        return FileResult(str(path), scan.sha256, "rejected", target=target, message=str(exc))
    finally:
        if not committed:
            with contextlib.suppress(duckdb.Error):  # never mask the error that got us here
                con.execute("ROLLBACK")
        table.cleanup()
        for name in _TMP:
            con.execute(f"DROP TABLE IF EXISTS {name}")
        con.execute("DROP VIEW IF EXISTS _ck_bad")


def _prepare_keys(wh: Warehouse, catalogue: Catalogue) -> None:
    """Small key tables the staging query joins: indicators (with valid ranges) and areas."""
    con = wh.con
    keys = wh.indicator_keys()
    provisional = -1
    ids, ks, los, his = [], [], [], []
    for ind in catalogue.indicators:
        key = keys.get(ind.id)
        if key is None:  # dry run on a fresh database: a key that can match nothing stored
            key = provisional
            provisional -= 1
        lo, hi = ind.valid_range if ind.valid_range else (None, None)
        ids.append(ind.id)
        ks.append(key)
        los.append(lo)
        his.append(hi)
    frame = pl.DataFrame(
        {"indicator_id": ids, "indicator_key": ks, "lo": los, "hi": his},
        schema={"indicator_id": pl.String, "indicator_key": pl.Int32, "lo": pl.Float64, "hi": pl.Float64},
    )
    con.complete()  # DuckDB 2: finish any unread execute() result first
    con.register("_ck_ind_frame", frame)
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE _ck_ind AS SELECT * FROM _ck_ind_frame")
    finally:
        con.complete()
        con.unregister("_ck_ind_frame")
    con.execute("CREATE OR REPLACE TEMP TABLE _ck_area AS SELECT area_id, area_key FROM areas")


def _write(
    con: duckdb.DuckDBPyConnection,
    plan: _Plan,
    path: Path,
    sha256: str,
    target: str,
    options: IngestOptions,
    started: datetime,
    status: str,
    read: int,
    bad: int,
) -> tuple[int, int]:
    """Write the batch row, the good records and the rejects (inside the caller's transaction)."""
    opts = json.dumps(
        {
            "format": options.fmt,
            "source": options.source,
            "mapping": dict(options.mapping),
            "wide": dict(options.wide),
            "on_duplicate": options.on_duplicate,
            "strict": options.strict,
            "force": options.force,
            "date_formats": dict(options.date_formats),
        },
        ensure_ascii=False,
    )
    row = con.execute("SELECT coalesce(max(batch_id), 0) + 1 FROM batches").fetchall()
    batch_id = int(row[0][0])
    loaded = plan.write(con, batch_id) if status == "loaded" else 0
    con.execute(
        "INSERT INTO rejects SELECT ?, ?, row_number, column_name, value, reason FROM _ck_bad ORDER BY row_number",
        [batch_id, str(path)],
    )
    con.execute(
        "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            batch_id,
            options.fmt,
            str(path),
            sha256,
            target,
            read,
            loaded,
            bad,
            started,
            datetime.now(),
            status,
            __version__,
            opts,
        ],
    )
    return batch_id, loaded


# --- plans: how a file becomes staged records ------------------------------------------------------------


@dataclass(frozen=True)
class _Check:
    """One validation rule: rows where ``condition`` holds are rejected with ``reason``."""

    condition: str
    reason: str
    column: str  # SQL expression giving the file column name
    value: str  # SQL expression giving the offending text


def _case(checks: Sequence[_Check], pick: str) -> str:
    if not checks:
        return "NULL::VARCHAR"
    whens = " ".join(
        f"WHEN {c.condition} THEN {getattr(c, pick) if pick != 'reason' else literal(c.reason)}"
        for c in checks
    )
    return f"CASE {whens} END"


def _date_expr(col: str, duck_type: str, fmt: str | None, *, as_date: bool = False) -> str:
    """SQL turning a file column into a TIMESTAMP (or DATE), NULL when unparseable."""
    if readers.is_temporal_type(duck_type):
        expr = f"{col}::TIMESTAMP"
    else:
        text = f"trim({col}::VARCHAR)"
        if fmt:
            expr = f"try_strptime({text}, {literal(fmt)})"
        else:
            fmts = "[" + ", ".join(literal(f) for f in DEFAULT_DATE_FORMATS) + "]"
            expr = f"coalesce(TRY_CAST({text} AS TIMESTAMP), try_strptime({text}, {fmts}))"
    return f"({expr})::DATE" if as_date else expr


def _number_expr(col: str, duck_type: str) -> str:
    if readers.is_numeric_type(duck_type):
        return f"{col}::DOUBLE"
    return f"TRY_CAST(trim({col}::VARCHAR) AS DOUBLE)"


def _text_expr(col: str, duck_type: str) -> str:
    inner = col if readers.is_text_type(duck_type) else f"{col}::VARCHAR"
    return f"nullif(trim({inner}), '')"


class _Plan:
    """Stages a file into ``_ck_stage`` with a reason per bad record, then writes the good ones."""

    dup_keys: tuple[str, ...] = ()
    order_by: str = ""

    def __init__(self, options: IngestOptions) -> None:
        """Remember the options."""
        self.options = options
        self.now = options.now or datetime.now()

    def stage(self, con: duckdb.DuckDBPyConnection) -> None:
        """Create ``_ck_stage``, ``_ck_dup``, ``_ck_clash`` and the ``_ck_bad`` view."""
        con.execute(f"CREATE OR REPLACE TEMP TABLE _ck_stage AS {self.stage_sql()}")
        keys = ", ".join(self.dup_keys)
        if self.dup_keys:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE _ck_dupkeys AS SELECT {keys} FROM _ck_stage "
                f"WHERE reason IS NULL GROUP BY {keys} HAVING count(*) > 1"
            )
            sel = ", ".join("s." + k for k in self.dup_keys)
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _ck_dup AS
                WITH g AS (SELECT s._rec, s._row, {sel} FROM _ck_stage s SEMI JOIN _ck_dupkeys d USING ({keys})
                           WHERE s.reason IS NULL),
                t AS (SELECT {keys}, 'rows ' || array_to_string(list(_row ORDER BY _row)[1:5], ', ') AS rows_txt
                      FROM g GROUP BY {keys})
                SELECT g._rec, g._row, t.rows_txt FROM g JOIN t USING ({keys})"""
            )
        else:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _ck_dup AS SELECT 0::BIGINT AS _rec, 0::BIGINT AS _row, ''::VARCHAR AS rows_txt LIMIT 0"
            )
        self.stage_clash(con)
        clash_bad = ""
        if self.options.on_duplicate == "reject":
            clash_bad = (
                f" UNION ALL SELECT _row AS row_number, NULL::VARCHAR, 'batch ' || old_batch, "
                f"{literal(self.clash_reason)} FROM _ck_clash"
            )
        con.execute(
            f"""CREATE OR REPLACE TEMP VIEW _ck_bad AS
            SELECT _row AS row_number, bad_col AS column_name, bad_val AS value, reason FROM _ck_stage WHERE reason IS NOT NULL
            UNION ALL SELECT _row, NULL::VARCHAR, rows_txt, {literal(self.dup_reason)} FROM _ck_dup{clash_bad}"""
        )

    dup_reason = "duplicate within the file"
    clash_reason = "duplicate of a stored record"

    def stage_sql(self) -> str:
        """The SELECT producing the staged records."""
        raise NotImplementedError

    def stage_clash(self, con: duckdb.DuckDBPyConnection) -> None:
        """Create ``_ck_clash``: good records that match stored records (``_rec, _row, old_batch, keys``)."""
        raise NotImplementedError

    def counts(self, con: duckdb.DuckDBPyConnection) -> dict[str, int]:
        """read / rejected / skipped / replaced counts of the staged file."""
        row = con.execute(
            "SELECT (SELECT count(*) FROM _ck_stage), (SELECT count(*) FROM _ck_bad), (SELECT count(*) FROM _ck_clash)"
        ).fetchone()
        assert row is not None
        read, bad, clash = (int(x) for x in row)
        policy = self.options.on_duplicate
        return {
            "read": read,
            "rejected": bad,
            "skipped": clash if policy == "keep" else 0,
            "replaced": clash if policy == "replace" else 0,
        }

    def reject_summary(self, con: duckdb.DuckDBPyConnection) -> dict[str, int]:
        """reason -> number of rejected records."""
        rows = con.execute(
            "SELECT reason, count(*) FROM _ck_bad GROUP BY reason ORDER BY count(*) DESC, reason"
        ).fetchall()
        return {str(r): int(c) for r, c in rows}

    def good_filter(self) -> str:
        """WHERE clause selecting the staged records to insert."""
        where = "s.reason IS NULL AND NOT EXISTS (SELECT 1 FROM _ck_dup d WHERE d._rec = s._rec)"
        if self.options.on_duplicate in ("reject", "keep"):
            where += " AND NOT EXISTS (SELECT 1 FROM _ck_clash c WHERE c._rec = s._rec)"
        return where

    def write(self, con: duckdb.DuckDBPyConnection, batch_id: int) -> int:
        """Insert the good records (inside the caller's transaction); return how many."""
        raise NotImplementedError


class _ObservationPlan(_Plan):
    """Long or wide observations → ``observations``."""

    dup_keys = ("ik", "ak", "period")
    dup_reason = "duplicate within the file (same indicator, area and period)"
    clash_reason = "duplicate of a stored observation (use --on-duplicate replace or keep)"

    def __init__(self, catalogue: Catalogue, table: readers.TableFile, options: IngestOptions) -> None:
        """Resolve the file's columns against the long or wide layout."""
        super().__init__(options)
        self.table = table
        self.catalogue = catalogue
        cols = table.columns
        if options.fmt == "wide":
            self._resolve_wide(cols)
        else:
            self._resolve_long(cols)

    # column resolution ------------------------------------------------------------------------

    def _find(self, cols: dict[str, str], name: str, *, required: bool) -> str | None:
        explicit = self.options.mapping.get(name)
        if explicit is not None:
            found = readers.find_column(cols, explicit)
            if found is None:
                raise _FileRejected(
                    f"--map {name}={explicit}: no column {explicit!r}; the file has {', '.join(cols)}"
                )
            return found
        for candidate in (name, *ALIASES.get(name, ())):
            found = readers.find_column(cols, candidate)
            if found is not None:
                return found
        if required:
            raise _FileRejected(
                f"no {name!r} column; the file has {', '.join(cols)}; pass --map {name}=COLUMN"
            )
        return None

    def _resolve_long(self, cols: dict[str, str]) -> None:
        positional = (
            all(re.fullmatch(r"column\d+", c) for c in cols) and len(cols) >= 4 and not self.options.mapping
        )
        if positional:  # a header-less file: indicator_id, area_id, period, value[, numerator, denominator]
            names = list(cols)
            self.col = {f: (names[i] if i < len(names) else None) for i, f in enumerate(LONG_FIELDS)}
        else:
            self.col = {
                "indicator_id": self._find(cols, "indicator_id", required=True),
                "area_id": self._find(cols, "area_id", required=True),
                "period": self._find(cols, "period", required=True),
                "numerator": self._find(cols, "numerator", required=False),
                "denominator": self._find(cols, "denominator", required=False),
            }
            has_parts = self.col["numerator"] is not None and self.col["denominator"] is not None
            self.col["value"] = self._find(cols, "value", required=not has_parts)

    def _resolve_wide(self, cols: dict[str, str]) -> None:
        self.col = {
            "area_id": self._find(cols, "area_id", required=True),
            "period": self._find(cols, "period", required=True),
        }
        wide: dict[str, str] = {}
        if self.options.wide:
            for column, indicator in self.options.wide.items():
                found = readers.find_column(cols, column)
                if found is None:
                    raise _FileRejected(
                        f"--map {column}={indicator}: no column {column!r}; the file has {', '.join(cols)}"
                    )
                wide[found] = indicator
        else:
            known = set(self.catalogue.by_id)
            wide = {c: c for c in cols if c in known}
        if not wide:
            raise _FileRejected(
                "no indicator columns found in this wide file; pass --map COLUMN=INDICATOR_ID for each value column"
            )
        self.wide = wide

    # SQL --------------------------------------------------------------------------------------

    def stage_sql(self) -> str:
        """One pass: parse, join the key tables, give each record its first failing rule."""
        types = self.table.columns
        c = {k: (ident(v) if v else None) for k, v in self.col.items()}
        period_fmt = self.options.date_formats.get("period")
        if self.options.fmt == "wide":
            wcols = list(self.wide)
            all_numeric = all(readers.is_numeric_type(types[w]) for w in wcols)
            cast = "DOUBLE" if all_numeric else "VARCHAR"
            inner = ", ".join(f"{ident(w)}::{cast} AS {ident(w)}" for w in wcols)
            area_c, period_c = c["area_id"], c["period"]
            assert area_c is not None and period_c is not None
            src = (
                f"SELECT * FROM (UNPIVOT (SELECT {readers.ROW}, {area_c} AS _area, {period_c} AS _period, {inner} "
                f"FROM ({self.table.sql})) ON {', '.join(ident(w) for w in wcols)} INTO NAME _col VALUE _val)"
            )
            idx = " ".join(f"WHEN {literal(w)} THEN {i}" for i, w in enumerate(wcols))
            ind = " ".join(f"WHEN {literal(w)} THEN {literal(i)}" for w, i in self.wide.items())
            rec = f"{readers.ROW} * {len(wcols)} + CASE _col {idx} END"
            ind_raw, ind_col = f"CASE _col {ind} END", "_col"
            area = _text_expr("_area", types[self.col["area_id"] or ""])
            ptype = types[self.col["period"] or ""]
            period_txt = _text_expr("_period", ptype)
            period = _date_expr("_period", ptype, period_fmt)
            vtype = "DOUBLE" if all_numeric else "VARCHAR"
            value_txt, value, value_col = _text_expr("_val", vtype), _number_expr("_val", vtype), "_col"
            num = den = None
            area_col_name, period_col_name = self.col["area_id"] or "", self.col["period"] or ""
        else:
            src = self.table.sql
            rec = readers.ROW
            ic, ac, pc = c["indicator_id"], c["area_id"], c["period"]
            assert ic is not None and ac is not None and pc is not None
            ind_raw = _text_expr(ic, types[self.col["indicator_id"] or ""])
            ind_col = literal(self.col["indicator_id"])
            area = _text_expr(ac, types[self.col["area_id"] or ""])
            ptype = types[self.col["period"] or ""]
            period_txt = _text_expr(pc, ptype)
            period = _date_expr(pc, ptype, period_fmt)
            if c["value"] is not None:
                vt = types[self.col["value"] or ""]
                value_txt, value = _text_expr(c["value"], vt), _number_expr(c["value"], vt)
            else:
                value_txt, value = "NULL::VARCHAR", "NULL::DOUBLE"
            value_col = literal(self.col.get("value") or "value")
            num = (c["numerator"], types[self.col["numerator"] or ""]) if c["numerator"] else None
            den = (c["denominator"], types[self.col["denominator"] or ""]) if c["denominator"] else None
            area_col_name, period_col_name = self.col["area_id"] or "", self.col["period"] or ""
        num_txt, num_v = (_text_expr(*num), _number_expr(*num)) if num else ("NULL::VARCHAR", "NULL::DOUBLE")
        den_txt, den_v = (_text_expr(*den), _number_expr(*den)) if den else ("NULL::VARCHAR", "NULL::DOUBLE")
        now = literal(self.now.replace(microsecond=0))
        checks = [
            _Check("c.ind_raw IS NULL", "missing indicator id", "c.ind_col", "NULL"),
            _Check(
                "i.indicator_id IS NULL",
                "unknown indicator id (not in the catalogue)",
                "c.ind_col",
                "c.ind_raw",
            ),
            _Check("c.area_raw IS NULL", "missing area id", literal(area_col_name), "NULL"),
            _Check(
                "a.area_key IS NULL",
                "unknown area id (load it with `citykpi areas load`)",
                literal(area_col_name),
                "c.area_raw",
            ),
            _Check("c.period_txt IS NULL", "missing period", literal(period_col_name), "NULL"),
            _Check("c.period IS NULL", "unparseable date", literal(period_col_name), "c.period_txt"),
            _Check(f"c.period > {now}", "period in the future", literal(period_col_name), "c.period_txt"),
            _Check(
                "c.value_txt IS NOT NULL AND c.value IS NULL",
                "unparseable number",
                "c.value_col",
                "c.value_txt",
            ),
            _Check(
                "NOT isfinite(c.value)", "not a finite number (NaN or infinity)", "c.value_col", "c.value_txt"
            ),
        ]
        if num:
            checks += [
                _Check(
                    "c.num_txt IS NOT NULL AND c.num IS NULL",
                    "unparseable number",
                    literal(self.col["numerator"]),
                    "c.num_txt",
                ),
                _Check(
                    "NOT isfinite(c.num)",
                    "not a finite number (NaN or infinity)",
                    literal(self.col["numerator"]),
                    "c.num_txt",
                ),
            ]
        if den:
            checks += [
                _Check(
                    "c.den_txt IS NOT NULL AND c.den IS NULL",
                    "unparseable number",
                    literal(self.col["denominator"]),
                    "c.den_txt",
                ),
                _Check(
                    "NOT isfinite(c.den)",
                    "not a finite number (NaN or infinity)",
                    literal(self.col["denominator"]),
                    "c.den_txt",
                ),
            ]
        checks += [
            _Check(
                "c.value IS NULL AND (c.num IS NULL OR c.den IS NULL)", "missing value", "c.value_col", "NULL"
            ),
            _Check(
                "c.value < i.lo OR c.value > i.hi",
                "value outside the indicator's valid_range",
                "c.value_col",
                "c.value_txt",
            ),
        ]
        return f"""
        WITH u AS ({src}),
        c AS (
            SELECT {rec} AS _rec, {readers.ROW} AS _row,
                   {ind_raw} AS ind_raw, {ind_col} AS ind_col, {area} AS area_raw,
                   {period_txt} AS period_txt, {period} AS period,
                   {value_txt} AS value_txt, {value} AS value, {value_col} AS value_col,
                   {num_txt} AS num_txt, {num_v} AS num, {den_txt} AS den_txt, {den_v} AS den
            FROM u)
        SELECT c._rec, c._row, i.indicator_key AS ik, a.area_key AS ak, c.period, c.value,
               c.num AS numerator, c.den AS denominator,
               {_case(checks, "reason")} AS reason,
               {_case(checks, "column")}::VARCHAR AS bad_col,
               {_case(checks, "value")}::VARCHAR AS bad_val
        FROM c
        LEFT JOIN _ck_ind i ON i.indicator_id = c.ind_raw
        LEFT JOIN _ck_area a ON a.area_id = c.area_raw
        """

    def stage_clash(self, con: duckdb.DuckDBPyConnection) -> None:
        """Good records whose (indicator, area, period) is already stored."""
        con.execute(
            """CREATE OR REPLACE TEMP TABLE _ck_clash AS
            SELECT 0::BIGINT AS _rec, 0::BIGINT AS _row, 0 AS old_batch, 0 AS ik, 0 AS ak,
                   NULL::TIMESTAMP AS period LIMIT 0"""
        )
        rng = con.execute("SELECT min(period), max(period) FROM _ck_stage WHERE reason IS NULL").fetchone()
        if rng is None or rng[0] is None:
            return
        con.execute(
            """INSERT INTO _ck_clash
            SELECT s._rec, s._row, min(o.batch_id), s.ik, s.ak, s.period
            FROM _ck_stage s
            JOIN observations o ON o.indicator_key = s.ik AND o.area_key = s.ak AND o.period = s.period
            WHERE s.reason IS NULL AND o.period BETWEEN ? AND ?
              AND NOT EXISTS (SELECT 1 FROM _ck_dup d WHERE d._rec = s._rec)
            GROUP BY ALL""",
            [rng[0], rng[1]],
        )

    def write(self, con: duckdb.DuckDBPyConnection, batch_id: int) -> int:
        """Supersede replaced rows, then append the good records in period order."""
        if self.options.on_duplicate == "replace":
            con.execute(
                """INSERT INTO observations_superseded
                SELECT o.*, ? FROM observations o
                SEMI JOIN _ck_clash c ON o.indicator_key = c.ik AND o.area_key = c.ak AND o.period = c.period""",
                [batch_id],
            )
            con.execute(
                """DELETE FROM observations o USING _ck_clash c
                WHERE o.indicator_key = c.ik AND o.area_key = c.ak AND o.period = c.period"""
            )
        row = con.execute(
            f"""INSERT INTO observations
            SELECT s.ik, s.ak, s.period, s.value, s.numerator, s.denominator, ?
            FROM _ck_stage s WHERE {self.good_filter()}
            ORDER BY s.period""",
            [batch_id],
        ).fetchone()
        return int(row[0]) if row else 0


class _SourcePlan(_Plan):
    """A raw source table file → ``src_<id>`` with the declared column types."""

    dup_reason = "duplicate key within the file"
    clash_reason = "duplicate of a stored record with the same key (use --on-duplicate replace or keep)"

    def __init__(
        self, catalogue: Catalogue, source: SourceTable, table: readers.TableFile, options: IngestOptions
    ) -> None:
        """Match every declared column to a file column."""
        super().__init__(options)
        self.source = source
        self.table = table
        self.target = schema.source_table_name(source.id)
        declared_formats: Mapping[str, str] = getattr(source, "formats", None) or {}
        self.formats = {**declared_formats, **options.date_formats}
        cols = table.columns
        self.col: dict[str, str] = {}
        missing = []
        for name in source.columns:
            wanted = options.mapping.get(name, name)
            found = readers.find_column(cols, wanted)
            if found is None:
                missing.append(name if wanted == name else f"{name} (mapped to {wanted!r})")
            else:
                self.col[name] = found
        if missing:
            raise _FileRejected(
                f"source {source.id!r} columns not found in the file: {', '.join(missing)}; "
                f"the file has {', '.join(cols)}; pass --map COLUMN=FILE_COLUMN"
            )
        if source.key:
            self.dup_keys = (ident(source.key),)
        self.order_by = ident(source.time_column)

    def stage_sql(self) -> str:
        """One pass: cast each declared column, map the area, give each record its first failing rule."""
        types = self.table.columns
        src = self.source
        typed: list[str] = []
        raw: list[str] = []
        checks: list[_Check] = []
        for name, kind in src.columns.items():
            fcol = self.col[name]
            ref = ident(fcol)
            ftype = types[fcol]
            text = _text_expr(ref, ftype)
            raw.append(f"{text} AS {ident('raw_' + name)}")
            fmt = self.formats.get(name)
            if kind == "text":
                expr = f"{ref}::VARCHAR" if not readers.is_text_type(ftype) else ref
            elif kind in ("date", "timestamp"):
                expr = _date_expr(ref, ftype, fmt, as_date=kind == "date")
            elif kind == "integer":
                expr = (
                    f"TRY_CAST({text} AS BIGINT)"
                    if not readers.is_numeric_type(ftype)
                    else f"TRY_CAST({ref} AS BIGINT)"
                )
            elif kind == "double":
                expr = _number_expr(ref, ftype)
            else:  # boolean
                expr = f"TRY_CAST({text} AS BOOLEAN)"
            typed.append(f"{expr} AS {ident(name)}")
            rawc = f"c.{ident('raw_' + name)}"
            if kind != "text":
                hint = f" (expected format {fmt})" if fmt else ""
                checks.append(
                    _Check(
                        f"{rawc} IS NOT NULL AND c.{ident(name)} IS NULL",
                        f"unparseable {kind}{hint}",
                        literal(fcol),
                        rawc,
                    )
                )
            if kind == "double":
                checks.append(
                    _Check(
                        f"NOT isfinite(c.{ident(name)})",
                        "not a finite number (NaN or infinity)",
                        literal(fcol),
                        rawc,
                    )
                )
        area_raw = f"c.{ident('raw_' + src.area_column)}"
        time_raw = f"c.{ident('raw_' + src.time_column)}"
        now = literal(self.now.replace(microsecond=0))
        head = [
            _Check(f"{area_raw} IS NULL", "missing area id", literal(self.col[src.area_column]), "NULL"),
            _Check(
                "a.area_key IS NULL",
                "unknown area id (load it with `citykpi areas load`)",
                literal(self.col[src.area_column]),
                area_raw,
            ),
            _Check(
                f"{time_raw} IS NULL",
                f"missing {src.time_column}",
                literal(self.col[src.time_column]),
                "NULL",
            ),
        ]
        if src.key:
            head.append(
                _Check(
                    f"c.{ident('raw_' + src.key)} IS NULL", "missing key", literal(self.col[src.key]), "NULL"
                )
            )
        checks = head + checks
        checks.append(
            _Check(
                f"c.{ident(src.time_column)} > {now}",
                f"{src.time_column} in the future",
                literal(self.col[src.time_column]),
                time_raw,
            )
        )
        out_cols = ", ".join(f"c.{ident(n)}" for n in src.columns)
        return f"""
        WITH c AS (SELECT {readers.ROW} AS _rec, {readers.ROW} AS _row, {", ".join(typed)}, {", ".join(raw)}
                   FROM ({self.table.sql}))
        SELECT c._rec, c._row, {out_cols}, a.area_key AS ak,
               {_case(checks, "reason")} AS reason,
               {_case(checks, "column")}::VARCHAR AS bad_col,
               {_case(checks, "value")}::VARCHAR AS bad_val
        FROM c LEFT JOIN _ck_area a ON a.area_id = {area_raw}
        """

    def _ensure_table(self, con: duckdb.DuckDBPyConnection) -> bool:
        """True when the source table exists with the declared columns; error when it differs."""
        if self.target not in schema.table_names(con):
            return False
        rows = con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema='main' "
            "AND table_catalog = current_database() AND table_name = ? ORDER BY ordinal_position",
            [self.target],
        ).fetchall()
        have = [str(r[0]) for r in rows]
        want = [*self.source.columns, "area_key", "batch_id"]
        if have != want:
            raise WarehouseError(
                f"table {self.target} has columns {', '.join(have)} but the catalogue declares {', '.join(want)}",
                hint=f"rename the old table (ALTER TABLE {self.target} RENAME TO …) or keep the source's columns",
            )
        return True

    def stage_clash(self, con: duckdb.DuckDBPyConnection) -> None:
        """Good records whose key is already stored in the source table."""
        key = self.source.key
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _ck_clash AS SELECT 0::BIGINT AS _rec, 0::BIGINT AS _row, 0 AS old_batch LIMIT 0"
        )
        if not key or not self._ensure_table(con):
            return
        k = ident(key)
        con.execute(
            f"""INSERT INTO _ck_clash
            SELECT s._rec, s._row, min(t.batch_id) FROM _ck_stage s JOIN {ident(self.target)} t ON t.{k} = s.{k}
            WHERE s.reason IS NULL AND NOT EXISTS (SELECT 1 FROM _ck_dup d WHERE d._rec = s._rec)
            GROUP BY ALL"""
        )

    def write(self, con: duckdb.DuckDBPyConnection, batch_id: int) -> int:
        """Create the table if needed, drop replaced keys, append in time order."""
        con.execute(schema.source_table_ddl(self.source))
        cols = ", ".join(f"s.{ident(n)}" for n in self.source.columns)
        if self.options.on_duplicate == "replace" and self.source.key:
            k = ident(self.source.key)
            con.execute(
                f"DELETE FROM {ident(self.target)} t WHERE t.{k} IN "
                f"(SELECT s.{k} FROM _ck_stage s JOIN _ck_clash c ON c._rec = s._rec)"
            )
        row = con.execute(
            f"""INSERT INTO {ident(self.target)}
            SELECT {cols}, s.ak, ? FROM _ck_stage s WHERE {self.good_filter()}
            ORDER BY s.{self.order_by}""",
            [batch_id],
        ).fetchone()
        return int(row[0]) if row else 0
