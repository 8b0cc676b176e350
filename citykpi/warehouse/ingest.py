"""`citykpi ingest`: validate rows set-based in DuckDB, record rejects, load atomically per file.

One file = one transaction (batch row + observations + rejects together), so a crash or
``kill -9`` leaves no partial batch. A file whose sha256 already has a loaded batch for the same
target is a no-op (``unchanged``) unless ``force``. Every check is one SQL pass over the file
joined to small key tables; no row is looked at in Python.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl

from citykpi import __version__
from citykpi.backend import Connection, EngineError
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
#: Observations before this are refused: '0000-01-01', '0201-05-01' or '-infinity' are typos, not history.
EARLIEST_PERIOD = datetime(1900, 1, 1)
_TMP = ("_ck_bad", "_ck_dupkeys", "_ck_clash", "_ck_ind", "_ck_area", "_ck_stage", "_ck_raw")


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
    #: Try DuckDB's typed CSV reader first (falls back to the text read whenever it cannot be used);
    #: off only to compare the two paths in tests.
    typed_csv: bool = True


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

    @property
    def has_rejects(self) -> bool:
        """True when the file was refused or some of its records were rejected."""
        return self.status == "rejected" or self.rows_rejected > 0


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
        return any(f.has_rejects for f in self.files)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {"dry_run": self.dry_run, "files": [asdict(f) for f in self.files]}


# --- options helpers ---------------------------------------------------------------------------------


def parse_map(
    pairs: Iterable[str], fmt: str, *, option: str = "--map", example: str = "area_id=district_code"
) -> tuple[dict[str, str], dict[str, str]]:
    """Split ``--map KEY=VALUE`` pairs into (mapping, wide mapping) for ``fmt``.

    long/source: FIELD=COLUMN. wide: area_id=COLUMN and period=COLUMN, every other pair is
    COLUMN=INDICATOR_ID. ``option`` and ``example`` name the option in errors (e.g. --date-format).
    """
    mapping: dict[str, str] = {}
    wide: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise UsageError(f"{option} {pair!r}: expected NAME=VALUE, e.g. {option} {example}")
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
        wh: an open, writable warehouse (a dry run also needs it writable: it rolls its work back).
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
    check_options(catalogue, options)
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
    wh.con.complete()  # leave no unread result behind for the caller's next con.sql()
    return IngestReport(tuple(results), dry_run=options.dry_run)


def check_options(catalogue: Catalogue, options: IngestOptions) -> None:
    """Refuse options that cannot work with this catalogue (before anything is opened or read).

    Raises:
        UsageError: unknown format or duplicate policy, a missing or unknown --source.
    """
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


def _refusal(exc: DataError) -> str:
    """Why a whole file was refused, with what to do about it when the reader said."""
    return f"{exc.message}; {exc.hint}" if exc.hint else exc.message


def _source(catalogue: Catalogue, source_id: str) -> SourceTable:
    return next(s for s in catalogue.sources if s.id == source_id)


# --- one file ------------------------------------------------------------------------------------------


#: DuckDB messages that mean the database (or its temp space) could not be written: not the file's fault.
_WRITE_FAILURES = (
    "Could not write file",
    "No space left on device",
    "File too large",
    "Read-only file system",
)


class _FileRejected(Exception):
    """A whole file cannot be read or mapped (bad header, malformed CSV)."""


class _StageFromText(Exception):
    """The typed read of a CSV holds a bad record: stage the file again from its text read."""


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
    target = "observations" if options.fmt != "source" else schema.source_table_name(str(options.source))
    try:
        kind = readers.file_kind(path)
        scan = readers.scan_file(path, text=kind == "csv")
    except DataError as exc:  # undecodable text
        sha = readers.scan_file(path, text=False).sha256
        return FileResult(str(path), sha, "rejected", target=target, message=_refusal(exc), rejects={})
    except OSError as exc:  # vanished or unreadable since it was listed
        return FileResult(
            str(path), "", "rejected", target=target, message=f"cannot read {path}: {exc.strerror}"
        )
    if not options.force:
        row = con.execute(
            "SELECT batch_id FROM batches WHERE sha256 = ? AND target = ? AND status = 'loaded' "
            "ORDER BY batch_id DESC LIMIT 1",
            [scan.sha256, target],
        ).fetchall()
        if row:
            return FileResult(
                str(path),
                scan.sha256,
                "unchanged",
                batch_id=int(row[0][0]),
                target=target,
                message=f"already loaded as batch {row[0][0]}; pass --force to load it again",
            )
    try:
        table = readers.open_table(con, path, scan)
    except DataError as exc:
        return FileResult(str(path), scan.sha256, "rejected", target=target, message=_refusal(exc))
    plan: _Plan
    try:
        if options.fmt == "source":
            plan = _SourcePlan(catalogue, _source(catalogue, str(options.source)), table, options)
        else:
            plan = _ObservationPlan(catalogue, table, options)
    except _FileRejected as exc:
        table.cleanup()
        return FileResult(str(path), scan.sha256, "rejected", target=target, message=str(exc))
    plan.prepare_typed_read(con)
    # One transaction per file: keys, rows, batch and rejects commit together or not at all. A dry
    # run does all the work and rolls it back, so it validates exactly like a real load.
    in_transaction = False
    try:
        while True:
            con.execute("BEGIN TRANSACTION")
            in_transaction = True
            wh.register_indicators(i.id for i in catalogue.indicators)
            _prepare_keys(wh, catalogue)
            if progress:
                progress(f"{path}: validating", n, total)
            try:
                result = plan.load(
                    con, str(path), lambda: progress and progress(f"{path}: writing", n, total)
                )
            except _StageFromText:
                # The typed read holds a bad record: drop it and its stage for good (a rollback
                # frees their memory now), then stage the file from its text in a new transaction.
                con.execute("ROLLBACK")
                in_transaction = False
                con.execute("DROP TABLE IF EXISTS _ck_raw")
                continue
            except EngineError as exc:
                detail = "; ".join(line.strip() for line in str(exc).strip().splitlines()[:3])
                if any(m in str(exc) for m in _WRITE_FAILURES):  # the database's disk, not the file, failed
                    raise WarehouseError(
                        f"cannot write database {wh.path}: {detail}; nothing of {path.name} was stored",
                        hint="free disk space (or make the folder writable) and ingest the file again",
                    ) from None
                raise _FileRejected(f"cannot read the file: {detail}") from None
            break
        status = result.status if not options.dry_run else "dry_run"
        message = ""
        if options.strict and result.rejected:
            message = f"--strict: {result.rejected} bad record(s), so the whole file was rejected"
        batch_id: int | None = None
        if not options.dry_run:
            batch_id = result.batch_id
            _record_batch(con, result, path, scan.sha256, target, options, started)
            con.execute("COMMIT")
            in_transaction = False
        return FileResult(
            str(path),
            scan.sha256,
            status,
            result.read,
            result.loaded,
            result.rejected,
            result.skipped,
            result.replaced,
            batch_id,
            target,
            result.summary,
            message,
        )
    except _FileRejected as exc:
        return FileResult(str(path), scan.sha256, "rejected", target=target, message=str(exc))
    finally:
        if in_transaction:
            with contextlib.suppress(EngineError):  # never mask the error that got us here
                con.execute("ROLLBACK")
        table.cleanup()
        for name in _TMP:
            con.execute(f"DROP TABLE IF EXISTS {name}")


def _prepare_keys(wh: Warehouse, catalogue: Catalogue) -> None:
    """Small key tables the staging query joins: indicators (with valid ranges) and areas."""
    con = wh.con
    keys = wh.indicator_keys()
    provisional = -1
    ids, ks, los, his, fcs = [], [], [], [], []
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
        fcs.append(schema.frequency_class(ind.frequency))
    frame = pl.DataFrame(
        {"indicator_id": ids, "indicator_key": ks, "lo": los, "hi": his, "fc": fcs},
        schema={
            "indicator_id": pl.String,
            "indicator_key": pl.Int32,
            "lo": pl.Float64,
            "hi": pl.Float64,
            "fc": pl.Int8,
        },
    )
    with con.registered("_ck_ind_frame", frame):
        con.execute("CREATE OR REPLACE TEMP TABLE _ck_ind AS SELECT * FROM _ck_ind_frame")
    con.execute("CREATE OR REPLACE TEMP TABLE _ck_area AS SELECT area_id, area_key FROM areas")


def _record_batch(
    con: Connection,
    result: _Loaded,
    path: Path,
    sha256: str,
    target: str,
    options: IngestOptions,
    started: datetime,
) -> None:
    """Write the rejects and the batch row (inside the file's transaction)."""
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
    con.execute(
        "INSERT INTO rejects SELECT ?, ?, _row, bad_col, bad_val, reason FROM _ck_bad ORDER BY _row",
        [result.batch_id, str(path)],
    )
    con.execute(
        "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            result.batch_id,
            options.fmt,
            str(path),
            sha256,
            target,
            result.read,
            result.loaded,
            result.rejected,
            started,
            datetime.now(),
            result.status,
            __version__,
            opts,
        ],
    )


# --- plans: how a file becomes staged records ------------------------------------------------------------


@dataclass(frozen=True)
class _Check:
    """One validation rule: rows where ``condition`` holds are rejected with ``reason``."""

    condition: str
    reason: str
    column: str  # SQL expression giving the file column name
    value: str  # SQL expression giving the offending text


def _number_checks(v: str, column: str, *, typed: bool) -> list[_Check]:
    """The rules of number cell ``c.<v>`` (text ``c.<v>_txt``): unparseable (text cells only: a typed
    cell parsed or the read failed) and not finite. ``column``: SQL giving the file column's name."""
    checks = (
        []
        if typed
        else [_Check(f"c.{v}_txt IS NOT NULL AND c.{v} IS NULL", "unparseable number", column, f"c.{v}_txt")]
    )
    checks.append(
        _Check(f"NOT isfinite(c.{v})", "not a finite number (NaN or infinity)", column, f"c.{v}_txt")
    )
    return checks


def _case(checks: Sequence[_Check], pick: str) -> str:
    if not checks:
        return "NULL::VARCHAR"
    whens = " ".join(
        f"WHEN {c.condition} THEN {getattr(c, pick) if pick != 'reason' else literal(c.reason)}"
        for c in checks
    )
    return f"CASE {whens} END"


def _ok(checks: Sequence[_Check]) -> str:
    """TRUE when no rule fires (``reason IS NULL``), as a conjunction: a cheap filter, no strings built."""
    if not checks:
        return "TRUE"
    return "(" + " AND ".join(f"({c.condition}) IS NOT TRUE" for c in checks) + ")"


def _date_expr(col: str, duck_type: str, fmt: str | None, *, as_date: bool = False) -> str:
    """SQL turning a file column into a TIMESTAMP (or DATE), NULL when unparseable.

    The cheap ISO cast runs first; trimming and the other formats only for cells it cannot read
    (``coalesce`` is lazy), because string copies dominate the cost of reading a CSV.
    """
    if readers.is_temporal_type(duck_type):
        expr = f"{col}::TIMESTAMP"
    else:
        text = col if readers.is_text_type(duck_type) else f"{col}::VARCHAR"
        if fmt:
            expr = (
                f"coalesce(try_strptime({text}, {literal(fmt)}), try_strptime(trim({text}), {literal(fmt)}))"
            )
        else:
            fmts = "[" + ", ".join(literal(f) for f in DEFAULT_DATE_FORMATS) + "]"
            expr = (
                f"coalesce(TRY_CAST({text} AS TIMESTAMP), TRY_CAST(trim({text}) AS TIMESTAMP), "
                f"try_strptime(trim({text}), {fmts}))"
            )
    return f"({expr})::DATE" if as_date else expr


def _number_expr(col: str, duck_type: str) -> str:
    """SQL turning a file column into a DOUBLE, NULL when unparseable (surrounding blanks are fine)."""
    if readers.is_numeric_type(duck_type):
        return f"{col}::DOUBLE"
    return f"TRY_CAST({col}::VARCHAR AS DOUBLE)"


def _raw_expr(col: str, duck_type: str) -> str:
    """The cell as text, NULL when empty: what a reject shows and what "missing" tests."""
    inner = col if readers.is_text_type(duck_type) else f"{col}::VARCHAR"
    return f"nullif({inner}, '')"


def _text_expr(col: str, duck_type: str, *, verbatim: bool = False) -> str:
    """An id cell as text: blanks around it removed (only computed when there are any), '' as NULL.

    ``verbatim``: the cell as it is, for a staging that is kept only when every id matched (an id
    with blanks around it then fails to match, and the file is staged again from its text).
    """
    x = col if readers.is_text_type(duck_type) else f"{col}::VARCHAR"
    if verbatim:
        return x
    return f"nullif(CASE WHEN starts_with({x}, ' ') OR ends_with({x}, ' ') THEN trim({x}) ELSE {x} END, '')"


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
    the file are then found among the appended rows (an exact bit-block screen for observations,
    a hash aggregate for source keys), clashes with stored rows by a join restricted to the
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

    def fast_partition(self, part: str) -> tuple[str, str] | None:
        """For a partition of few records: (good records the file scan can find by a pushed-down
        filter, good records that filter misses) as subqueries; None to read the whole file."""
        return None

    def insert_values(self, batch_id: int) -> str:
        """The SELECT list (over stage alias ``s``) of the target table's columns."""
        raise NotImplementedError

    def ensure_target(self, con: Connection) -> None:
        """Create the target table if needed."""

    def insert_columns(self) -> str:
        """The target's column list for INSERT (empty: all columns in table order)."""
        return ""

    def partitions(self) -> tuple[str, ...]:
        """Conditions splitting the insert into clustered passes (default: one pass)."""
        return ("TRUE",)

    def after_insert(self, con: Connection, batch_id: int) -> None:
        """Bookkeeping after the rows of a batch are appended."""

    def supersede(self, con: Connection, batch_id: int) -> None:
        """--on-duplicate replace: retire the stored rows listed in ``_ck_clash``."""
        raise NotImplementedError

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
        # 2. append the good records, in time order
        writing()
        self.ensure_target(con)
        batch_id = int(con.execute("SELECT coalesce(max(batch_id), 0) + 1 FROM batches").fetchall()[0][0])
        # Zone maps need time-clustered row groups, not sorted rows: a big file that is clustered
        # already is appended as it is; anything else is sorted (cheap for small files).
        order = "" if clustered and many else f" ORDER BY s.{self.time_stage}"

        def insert(source: str, part: str) -> int:
            return int(
                con.execute(
                    f"INSERT INTO {target} {self.insert_columns()} SELECT {self.insert_values(batch_id)} "
                    f"FROM {source} s WHERE {part}{order}"
                ).fetchall()[0][0]
            )

        inserted = 0
        missed: list[tuple[str, str]] = []
        for part in self.partitions():
            fast = self.fast_partition(part) if n_bad is None else None
            if fast is not None:
                missed.append((fast[1], part))
            inserted += insert(fast[0] if fast else good, part)
        if n_bad is None:
            n_bad = (total or 0) - inserted
        if n_bad:
            con.execute(
                f"INSERT INTO _ck_bad SELECT _row, bad_col, bad_val, reason FROM ({stage}) WHERE reason IS NOT NULL"
            )
            if missed and int(con.execute("SELECT count(*) FROM _ck_bad").fetchall()[0][0]) < n_bad:
                # good records the pushed-down filter could not see (ids with blanks around them)
                for source, part in missed:
                    inserted += insert(source, part)
                n_bad = (total or 0) - inserted
        self.after_insert(con, batch_id)
        this = f"batch_id = {batch_id}"
        dups = self._duplicates_within(con, good, target, this) if self.keys and inserted > 1 else 0
        clash = self._clashes(con, good, target, batch_id) if self.keys and inserted > dups else 0
        policy = self.options.on_duplicate
        rejected = int(con.execute("SELECT count(*) FROM _ck_bad").fetchall()[0][0])
        read = inserted + n_bad
        skipped = clash if policy == "keep" else 0
        replaced = clash if policy == "replace" else 0
        loaded = inserted - dups - (clash if policy in ("reject", "keep") else 0)
        status = "loaded"
        if rejected and (self.options.strict or rejected >= read):
            status, loaded, skipped, replaced = "rejected", 0, 0, 0
            con.execute(f"DELETE FROM {target} WHERE {this}")
        elif replaced:
            self.supersede(con, batch_id)
        rows = con.execute(
            "SELECT reason, count(*) FROM _ck_bad GROUP BY reason ORDER BY count(*) DESC, reason"
        ).fetchall()
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

    def duplicate_blocks(self, this: str) -> str | None:
        """A cheap exact screen for keys appended twice: a SELECT of small blocks of keys that hold
        a duplicate (columns named like the stage keys they group by), or None to hash every key."""
        return None

    def _duplicates_within(self, con: Connection, good: str, target: str, this: str) -> int:
        """Find keys appended twice by this batch; reject every such record and take it out again."""
        tcols = ", ".join(t for _, t in self.keys)
        as_stage = ", ".join(f"{t} AS {s_}" for s_, t in self.keys)
        scols = ", ".join(s_ for s_, _ in self.keys)
        blocks = self.duplicate_blocks(this)
        if blocks is not None:
            # a few fixed-size states per block of keys instead of a hash table over every key
            candidates = con.execute(f"SELECT count(*) FROM ({blocks})").fetchall()[0][0]
            if not candidates:
                return 0
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _ck_dupkeys AS
                WITH b AS ({blocks})
                SELECT {as_stage} FROM {target} o SEMI JOIN b ON {self.block_match("o", "b")}
                WHERE o.{this} GROUP BY ALL HAVING count(*) > 1"""
            )
        else:
            candidates = con.execute(
                f"SELECT count(*) FROM (SELECT hash({tcols}) AS h FROM {target} WHERE {this} "
                "GROUP BY h HAVING count(*) > 1)"
            ).fetchall()[0][0]
            if not candidates:
                return 0
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _ck_dupkeys AS
                WITH h AS (SELECT hash({tcols}) AS h FROM {target} WHERE {this} GROUP BY h HAVING count(*) > 1)
                SELECT {as_stage} FROM {target} WHERE {this} AND hash({tcols}) IN (SELECT h FROM h)
                GROUP BY ALL HAVING count(*) > 1"""
            )
        if not con.execute("SELECT count(*) FROM _ck_dupkeys").fetchall()[0][0]:
            return 0
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
        return int(deleted[0][0])

    def block_match(self, rows: str, blocks: str) -> str:
        """Join condition of target rows to the blocks of :meth:`duplicate_blocks`."""
        raise NotImplementedError

    def _clashes(self, con: Connection, good: str, target: str, batch_id: int) -> int:
        """Records of this batch whose key is already stored; apply the duplicate policy's first half."""
        this = f"batch_id = {batch_id}"
        prefilter = ""
        if self.time_target:
            lo, hi = con.execute(
                f"SELECT min({self.time_target}), max({self.time_target}) FROM {target} WHERE {this}"
            ).fetchall()[0]
            prefilter = f" AND o.{self.time_target} BETWEEN {literal(lo)} AND {literal(hi)}"
        other = con.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {target} o WHERE o.batch_id <> {batch_id}{prefilter} LIMIT 1)"
        ).fetchall()[0][0]
        if not other:
            return 0
        as_stage = ", ".join(f"n.{t} AS {s_}" for s_, t in self.keys)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _ck_clash AS
            SELECT {as_stage}, min(o.batch_id) AS old_batch
            FROM {target} n JOIN {target} o ON {self._match("n", "o", left_stage=False, right_stage=False)}
            WHERE n.{this} AND o.batch_id <> {batch_id}{prefilter}
            GROUP BY ALL"""
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
        con.execute(
            f"""DELETE FROM {target} o USING _ck_clash c
            WHERE o.{this} AND {self._match("o", "c", left_stage=False, right_stage=True)}"""
        )
        return clash


class _ObservationPlan(_Plan):
    """Long or wide observations → ``observations``."""

    target = "observations"
    keys = (("ik", "indicator_key"), ("ak", "area_key"), ("period", "period"))
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

    def typed_columns(self) -> dict[str, str] | None:
        """Ids as VARCHAR, the period as TIMESTAMP (read with the --date-format of ``period`` when
        given, unless it has a time zone) and the numbers as DOUBLE."""
        if any(z in self.options.date_formats.get("period", "") for z in ("%z", "%Z")):
            return None  # a zoned period converts through TIMESTAMPTZ as text: keep to that path
        wanted = {"indicator_id": "VARCHAR", "area_id": "VARCHAR", "period": "TIMESTAMP"}
        types = {column: wanted[f] for f, column in self.col.items() if column and f in wanted}
        if self.options.fmt == "wide":
            types.update(dict.fromkeys(self.wide, "DOUBLE"))
        else:
            types.update({column: "DOUBLE" for f, column in self.col.items() if column and f not in wanted})
        return types

    def fast_partition(self, part: str) -> tuple[str, str] | None:
        """Coarse-cadence records of a long file: the scan keeps only rows whose indicator id is
        one of the weekly-or-coarser ids, which Parquet filters on its dictionaries (skipping most
        of the file); ids the filter cannot match verbatim (blanks around them) are the rest."""
        column = self.col.get("indicator_id")
        if part != "s.fc = 1" or self.options.fmt != "long" or column is None:
            return None
        if not readers.is_text_type(self.table.columns.get(column, "")):
            return None
        ids = [i.id for i in self.catalogue.indicators if schema.frequency_class(i.frequency) == 1]
        hit = f"{ident(column)} IN ({', '.join(literal(i) for i in ids)})" if ids else "FALSE"
        rest = f"NOT coalesce({hit}, FALSE)"
        return (
            f"(SELECT * FROM ({self.stage_sql(hit)}) WHERE reason IS NULL)",
            f"(SELECT * FROM ({self.stage_sql(rest)}) WHERE reason IS NULL)",
        )

    def stage_sql(self, file_filter: str | None = None, table: readers.TableFile | None = None) -> str:
        """One pass: parse, join the key tables, give each record its first failing rule."""
        table = table or self.table
        types = table.columns
        verbatim = table.typed  # kept only if every record is good: see _Plan.load
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
                f"FROM ({table.sql})) ON {', '.join(ident(w) for w in wcols)} INTO NAME _col VALUE _val)"
            )
            ind = " ".join(f"WHEN {literal(w)} THEN {literal(i)}" for w, i in self.wide.items())
            ind_raw, ind_col = f"CASE _col {ind} END", "_col"
            area = _text_expr("_area", types[self.col["area_id"] or ""], verbatim=verbatim)
            ptype = types[self.col["period"] or ""]
            period_txt = _raw_expr("_period", ptype)
            period = _date_expr("_period", ptype, period_fmt)
            vtype = "DOUBLE" if all_numeric else "VARCHAR"
            value_txt, value, value_col = _raw_expr("_val", vtype), _number_expr("_val", vtype), "_col"
            value_type = vtype
            num = den = None
            area_col_name, period_col_name = self.col["area_id"] or "", self.col["period"] or ""
        else:
            src = table.sql
            if file_filter is not None:
                src = f"SELECT * FROM ({src}) WHERE {file_filter}"
            ic, ac, pc = c["indicator_id"], c["area_id"], c["period"]
            assert ic is not None and ac is not None and pc is not None
            ind_raw = _text_expr(ic, types[self.col["indicator_id"] or ""], verbatim=verbatim)
            ind_col = literal(self.col["indicator_id"])
            area = _text_expr(ac, types[self.col["area_id"] or ""], verbatim=verbatim)
            ptype = types[self.col["period"] or ""]
            period_txt = _raw_expr(pc, ptype)
            period = _date_expr(pc, ptype, period_fmt)
            if c["value"] is not None:
                value_type = types[self.col["value"] or ""]
                value_txt, value = _raw_expr(c["value"], value_type), _number_expr(c["value"], value_type)
            else:
                value_type = "DOUBLE"  # no value column: nothing to parse
                value_txt, value = "NULL::VARCHAR", "NULL::DOUBLE"
            value_col = literal(self.col.get("value") or "value")
            num = (c["numerator"], types[self.col["numerator"] or ""]) if c["numerator"] else None
            den = (c["denominator"], types[self.col["denominator"] or ""]) if c["denominator"] else None
            area_col_name, period_col_name = self.col["area_id"] or "", self.col["period"] or ""
        num_txt, num_v = (_raw_expr(*num), _number_expr(*num)) if num else ("NULL::VARCHAR", "NULL::DOUBLE")
        den_txt, den_v = (_raw_expr(*den), _number_expr(*den)) if den else ("NULL::VARCHAR", "NULL::DOUBLE")
        now = literal(self.now.replace(microsecond=0))
        # A typed cell is missing exactly when it is NULL and can never be unparseable: testing its
        # value instead of its text spares turning every number and date back into a string.
        period_typed = readers.is_temporal_type(ptype)
        value_typed = readers.is_numeric_type(value_type)
        num_typed = num is None or readers.is_numeric_type(num[1])
        den_typed = den is None or readers.is_numeric_type(den[1])
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
            _Check(
                "c.period IS NULL" if period_typed else "c.period_txt IS NULL",
                "missing period",
                literal(period_col_name),
                "NULL",
            ),
        ]
        if not period_typed:
            checks.append(
                _Check("c.period IS NULL", "unparseable date", literal(period_col_name), "c.period_txt")
            )
        checks += [
            _Check(f"c.period > {now}", "period in the future", literal(period_col_name), "c.period_txt"),
            _Check(
                f"c.period < {literal(EARLIEST_PERIOD)}",
                f"period before {EARLIEST_PERIOD.year} (a mistyped year?)",
                literal(period_col_name),
                "c.period_txt",
            ),
        ]
        checks += _number_checks("value", "c.value_col", typed=value_typed)
        if num:
            checks += _number_checks("num", literal(self.col["numerator"]), typed=num_typed)
        if den:
            checks += _number_checks("den", literal(self.col["denominator"]), typed=den_typed)
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
            SELECT {readers.ROW} AS _row,
                   {ind_raw} AS ind_raw, {ind_col} AS ind_col, {area} AS area_raw,
                   {period_txt} AS period_txt, {period} AS period,
                   {value_txt} AS value_txt, {value} AS value, {value_col} AS value_col,
                   {num_txt} AS num_txt, {num_v} AS num, {den_txt} AS den_txt, {den_v} AS den
            FROM u)
        SELECT c._row, i.indicator_key AS ik, a.area_key AS ak, c.period, c.value,
               c.num AS numerator, c.den AS denominator, coalesce(i.fc, 0)::TINYINT AS fc,
               {_ok(checks)} AS ok,
               {_case(checks, "reason")} AS reason,
               {_case(checks, "column")}::VARCHAR AS bad_col,
               {_case(checks, "value")}::VARCHAR AS bad_val
        FROM c
        LEFT JOIN _ck_ind i ON i.indicator_id = c.ind_raw
        LEFT JOIN _ck_area a ON a.area_id = c.area_raw
        """

    def file_rows(self, con: Connection) -> int | None:
        """Rows of a long-format Parquet file, from its footer."""
        if self.table.kind != "parquet" or self.options.fmt != "long":
            return None
        rows = con.execute(
            f"SELECT sum(num_rows) FROM parquet_file_metadata({literal(str(self.table.path))})"
        ).fetchall()
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def clustered_by_metadata(self, con: Connection) -> bool | None:
        """A typed period column is clustered when its row groups' min/max ranges follow each other.

        Statistics cover bad records too, so "clustered" here implies the good records are; a file
        without usable statistics is checked by reading it instead (None).
        """
        column = self.col["period"] or ""
        if not readers.is_temporal_type(self.table.columns.get(column, "")):
            return None
        rows = con.execute(
            f"""SELECT TRY_CAST(stats_min_value AS TIMESTAMP), TRY_CAST(stats_max_value AS TIMESTAMP)
            FROM parquet_metadata({literal(str(self.table.path))})
            WHERE path_in_schema = {literal(column)} ORDER BY row_group_id"""
        ).fetchall()
        if not rows or any(lo is None or hi is None for lo, hi in rows):
            return None
        return all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(rows))

    def duplicate_blocks(self, this: str) -> str | None:
        """Blocks of 64 area keys per indicator and period: a duplicate sets a bit already set, so
        the block's row count exceeds the bits set. Exact, and the aggregate holds one small
        fixed-size state per block instead of one hash-table entry per observation."""
        return f"""SELECT indicator_key AS ik, period, area_key >> 6 AS blk FROM observations
            WHERE {this} GROUP BY ALL
            HAVING count(*) > bit_count(bit_or(1::UBIGINT << (area_key & 63)))"""

    def block_match(self, rows: str, blocks: str) -> str:
        """Rows of a block: same indicator and period, area key in the block."""
        return (
            f"{rows}.indicator_key = {blocks}.ik AND {rows}.period = {blocks}.period "
            f"AND {rows}.area_key >> 6 = {blocks}.blk"
        )

    def insert_values(self, batch_id: int) -> str:
        """indicator_key, area_key, period, value, numerator, denominator, batch_id, freq_class."""
        return f"s.ik, s.ak, s.period, s.value, s.numerator, s.denominator, {batch_id}, s.fc"

    def insert_columns(self) -> str:
        """The target's column list, named (schema v2 appended freq_class)."""
        return "(" + ", ".join(schema.OBSERVATION_COLUMNS) + ")"

    def partitions(self) -> tuple[str, ...]:
        """One insert per storage class, so each class fills its own row groups (zone maps)."""
        return ("s.fc = 0", "s.fc = 1")

    def after_insert(self, con: Connection, batch_id: int) -> None:
        """Record which storage classes each series of this batch has rows in."""
        con.execute(
            f"""INSERT INTO series_classes
            SELECT DISTINCT indicator_key, freq_class FROM observations WHERE batch_id = {batch_id}
            EXCEPT SELECT indicator_key, freq_class FROM series_classes"""
        )

    def supersede(self, con: Connection, batch_id: int) -> None:
        """Move the stored rows this batch replaces to observations_superseded."""
        match = "o.indicator_key = c.ik AND o.area_key = c.ak AND o.period = c.period"
        con.execute(
            f"""INSERT INTO observations_superseded (indicator_key, area_key, period, value, numerator,
                denominator, batch_id, freq_class, superseded_by)
            SELECT o.indicator_key, o.area_key, o.period, o.value, o.numerator, o.denominator, o.batch_id,
                o.freq_class, {batch_id}
            FROM observations o SEMI JOIN _ck_clash c ON {match}
            WHERE o.batch_id <> {batch_id}"""
        )
        con.execute(
            f"DELETE FROM observations o USING _ck_clash c WHERE o.batch_id <> {batch_id} AND {match}"
        )


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
            self.keys = ((ident(source.key), ident(source.key)),)
        self.time_stage = ident(source.time_column)
        self.time_target = None  # records clash by key, whatever their time

    def stage_sql(self, file_filter: str | None = None, table: readers.TableFile | None = None) -> str:
        """One pass: cast each declared column, map the area, give each record its first failing rule."""
        table = table or self.table
        types = table.columns
        src = self.source
        typed: list[str] = []
        raw: list[str] = []
        checks: list[_Check] = []
        for name, kind in src.columns.items():
            fcol = self.col[name]
            ref = ident(fcol)
            ftype = types[fcol]
            is_id = name in (src.area_column, src.key)
            text = _text_expr(ref, ftype) if is_id else _raw_expr(ref, ftype)
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
        WITH c AS (SELECT {readers.ROW} AS _row, {", ".join(typed)}, {", ".join(raw)}
                   FROM ({table.sql}))
        SELECT c._row, {out_cols}, a.area_key AS ak,
               {_ok(checks)} AS ok,
               {_case(checks, "reason")} AS reason,
               {_case(checks, "column")}::VARCHAR AS bad_col,
               {_case(checks, "value")}::VARCHAR AS bad_val
        FROM c LEFT JOIN _ck_area a ON a.area_id = {area_raw}
        """

    def _ensure_table(self, con: Connection) -> bool:
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

    def ensure_target(self, con: Connection) -> None:
        """Create ``src_<id>`` from the declared columns, or check the existing one matches."""
        if not self._ensure_table(con):
            con.execute(schema.source_table_ddl(self.source))

    def insert_values(self, batch_id: int) -> str:
        """The declared columns, area_key, batch_id."""
        cols = ", ".join(f"s.{ident(n)}" for n in self.source.columns)
        return f"{cols}, s.ak, {batch_id}"

    def supersede(self, con: Connection, batch_id: int) -> None:
        """Delete the stored rows whose key this batch brings again."""
        assert self.source.key is not None
        k = ident(self.source.key)
        con.execute(
            f"DELETE FROM {ident(self.target)} o USING _ck_clash c WHERE o.batch_id <> {batch_id} AND o.{k} = c.{k}"
        )
