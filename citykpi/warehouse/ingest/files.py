"""`citykpi ingest`: one transaction per file (batch row + rows + rejects together), so a crash or
``kill -9`` leaves no partial batch. A file whose sha256 already has a loaded batch for the same
target is a no-op (``unchanged``) unless ``force``."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from citykpi import __version__, citytime
from citykpi.backend import Connection, EngineError
from citykpi.catalogue.model import Catalogue, SourceTable
from citykpi.errors import DataError, UsageError, WarehouseError
from citykpi.warehouse import readers, schema
from citykpi.warehouse.connection import Warehouse
from citykpi.warehouse.ingest import keys
from citykpi.warehouse.ingest.observations import _ObservationPlan
from citykpi.warehouse.ingest.options import (
    DIMENSION_RE,
    DUPLICATE_POLICIES,
    ENCODINGS,
    FORMATS,
    LONG_FIELDS,
    FileResult,
    IngestOptions,
    IngestReport,
    Progress,
    expand_paths,
)
from citykpi.warehouse.ingest.plan import _FileRejected, _Loaded, _Plan, _StageFromText
from citykpi.warehouse.ingest.sources import _SourcePlan

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
    if options.encoding not in ENCODINGS:
        raise UsageError(f"unknown --encoding {options.encoding!r}; use one of {', '.join(ENCODINGS)}")
    if options.on_duplicate not in DUPLICATE_POLICIES:
        raise UsageError(
            f"unknown --on-duplicate {options.on_duplicate!r}; use one of {', '.join(DUPLICATE_POLICIES)}"
        )
    if options.fmt == "source" and options.on_duplicate == "resend":
        raise UsageError(
            "--on-duplicate resend compares readings (observations); for raw source records use keep or replace"
        )
    if options.fmt == "source":
        if not options.source:
            raise UsageError("--format source needs --source ID (a source declared in the catalogue)")
        if not any(s.id == options.source for s in catalogue.sources):
            known = ", ".join(s.id for s in catalogue.sources) or "none declared"
            raise UsageError(f"unknown source {options.source!r}; the catalogue declares: {known}")
    elif options.source:
        raise UsageError("--source only goes with --format source")
    if options.fmt == "source":
        declared = _source(catalogue, str(options.source)).columns
        unknown = sorted(set(options.constants) - set(declared))
        if unknown:
            raise UsageError(
                f"--set {unknown[0]}=…: source {options.source!r} declares no column {unknown[0]!r}; "
                f"declared: {', '.join(declared)}"
            )
        if options.dimensions:
            raise UsageError(
                "--dim goes with --format long or wide (a raw source table keeps its own columns)"
            )
    for dim in options.dimensions:
        if not DIMENSION_RE.match(dim) or dim in LONG_FIELDS:
            raise UsageError(
                f"--dim {dim}=…: a dimension is a lower-case word (letters, digits, _) other than "
                f"{', '.join(LONG_FIELDS)}, e.g. --dim sex=Gender"
            )


def _refusal(exc: DataError) -> str:
    """Why a whole file was refused, with what to do about it when the reader said."""
    return f"{exc.message}; {exc.hint}" if exc.hint else exc.message


def _source(catalogue: Catalogue, source_id: str) -> SourceTable:
    return next(s for s in catalogue.sources if s.id == source_id)


# --- one file ------------------------------------------------------------------------------------------


class _Scratch:
    """The warehouse connection while a file is ingested, noting the temporary tables and views
    ingest creates on it (``_ck_…``): the end of the file drops those and asks after no others (a DROP
    is a statement: a dozen for tables a file never made were ~3 ms of a 5-minute batch)."""

    _CREATE = re.compile(r"\s*CREATE\s+(?:OR\s+REPLACE\s+)?TEMP(?:ORARY)?\s+(TABLE|VIEW)\s+(_ck_\w+)", re.I)

    def __init__(self, con: Connection) -> None:
        self._con = con
        #: name → TABLE or VIEW, in the order first created
        self.created: dict[str, str] = {}

    def execute(self, sql: str, params: Sequence[object] | None = None) -> _Scratch:
        """Run ``sql`` (its result is read from this object, as from the connection)."""
        made = self._CREATE.match(sql)
        if made:
            self.created.setdefault(made.group(2), made.group(1).upper())
        self._con.execute(sql, params)
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


#: DuckDB messages that mean the database (or its temp space) could not be written: not the file's fault.
_WRITE_FAILURES = (
    "Could not write file",
    "No space left on device",
    "File too large",
    "Read-only file system",
)


def _ingest_file(
    wh: Warehouse,
    catalogue: Catalogue,
    path: Path,
    options: IngestOptions,
    progress: Progress | None,
    n: int,
    total: int,
) -> FileResult:
    scratch = _Scratch(wh.con)
    con = cast(Connection, scratch)
    started = citytime.city_now(catalogue.timezone)  # the city's clock, like the periods it delivers
    target = target_of(options)
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
    if kind == "csv" and options.encoding != "auto":
        try:
            scan = readers.declared_encoding(path, scan, options.encoding)
        except DataError as exc:
            return FileResult(str(path), scan.sha256, "rejected", target=target, message=_refusal(exc))
    if not options.force:
        loaded = already_loaded(con, scan.sha256, options)
        if loaded is not None:
            return FileResult(
                str(path),
                scan.sha256,
                "unchanged",
                batch_id=loaded,
                target=target,
                message=f"already loaded as batch {loaded}; pass --force to load it again",
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
    plan.store = wh.tables
    wh.tables.begin_ingest(con)
    # One transaction per file: keys, rows, batch and rejects commit together or not at all. A dry
    # run does all the work and rolls it back, so it validates exactly like a real load.
    in_transaction = False
    try:
        while True:
            con.execute("BEGIN TRANSACTION")
            in_transaction = True
            found = keys.prepare(wh, con, catalogue, plan.dst_windows(con))
            plan.classes_recorded, plan.catalogue_classes = found.classes_recorded, found.classes
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
            wh.tables.publish(con, plan.target, result.batch_id, day=plan.time_stage)
            _record_batch(con, result, path, scan.sha256, target, options, started, catalogue.timezone)
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
        # views first: a view may read a table dropped after it
        for name, kind in sorted(scratch.created.items(), key=lambda item: item[1] != "VIEW"):
            con.execute(f"DROP {kind} IF EXISTS {name}")
        wh.tables.end_ingest(con)


def target_of(options: IngestOptions) -> str:
    """The table a file read with ``options`` loads into: ``observations`` or its source's raw table."""
    return "observations" if options.fmt != "source" else schema.source_table_name(str(options.source))


def already_loaded(con: Connection, sha256: str, options: IngestOptions) -> int | None:
    """The batch that already loaded these bytes read this way (the newest), or None.

    The same bytes count as loaded only into the same target table, and read as the same feed with
    the same constant fields (``--set``): read otherwise, they are other data. ``ingest`` skips such a
    file as ``unchanged``; ``run --dry-run`` asks the same question.
    """
    rows = con.execute(
        "SELECT batch_id, options FROM batches WHERE sha256 = ? AND target = ? AND status = 'loaded' "
        "ORDER BY batch_id DESC",
        [sha256, target_of(options)],
    ).fetchall()
    reading = _reading_of(options)
    return next((int(r[0]) for r in rows if _reading(r[1]) == reading), None)


def _reading_of(options: IngestOptions) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """What, besides its bytes, makes a file's data: the feed it is read as and its constant fields."""
    return options.feed, tuple(sorted(options.constants.items()))


def _reading(stored: str | None) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """:func:`_reading_of` of a recorded batch (from its options JSON; older batches have neither)."""
    try:
        opts = json.loads(stored or "{}")
    except ValueError:
        opts = {}
    feed = opts.get("feed") if isinstance(opts.get("feed"), str) else None
    consts = opts.get("constants") if isinstance(opts.get("constants"), dict) else {}
    return feed, tuple(sorted((str(k), str(v)) for k, v in consts.items()))


def _record_batch(
    con: Connection,
    result: _Loaded,
    path: Path,
    sha256: str,
    target: str,
    options: IngestOptions,
    started: datetime,
    timezone: str | None,
) -> None:
    """Write the rejects and the batch row (inside the file's transaction); its times are the
    city's wall clock (``timezone``, the catalogue's), like the periods."""
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
            **({"constants": dict(options.constants)} if options.constants else {}),
            **({"missing": list(options.missing)} if options.missing else {}),
            **({"dimensions": dict(options.dimensions)} if options.dimensions else {}),
            **({"feed": options.feed} if options.feed else {}),
        },
        ensure_ascii=False,
    )
    if result.rejected:  # the count of _ck_bad's rows
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
            citytime.city_now(timezone),
            result.status,
            __version__,
            opts,
        ],
    )
