"""`citykpi run`: the unattended daily job — inbox → ingest → evaluate → persist → export → alerts.

A run is safe to repeat: files already loaded are recognised by their sha256, exports are
deterministic and replaced atomically, so re-running a day gives byte-identical files. A lock on
``<database>.lock`` (``fcntl.flock``) stops two runs from overlapping.

The configuration is a TOML file (paths are relative to the file's folder)::

    database  = "citykpi.duckdb"
    catalogue = "indicators"
    areas     = "areas.csv"          # optional: (re)loaded before ingesting
    inbox     = ["inbox"]            # folders whose top-level data files are ingested (symbolic
                                     # links in them are skipped with a warning, never followed)
    archive   = "move"               # move: loaded files go to <inbox>/done/, rejected to <inbox>/rejected/
                                     # keep: leave them; the sha256 check makes re-ingesting a no-op
    grain     = "day"
    fail_on   = "red"                # never | yellow | orange | red: exit 1 at or above this colour
    lang      = "zh"
    wait      = 0                    # seconds to wait for a busy database/lock (0: fail at once)
    keep_runs = 90                   # optional: after the run, remove all but the 90 latest runs

    [outputs]
    folder  = "out"
    formats = ["html", "xlsx", "json"]
    name    = "scorecard-{date}-{grain}"   # + the format's extension

    # An inbox may be a table to set how its files are read (as `citykpi ingest` options):
    # [[inboxes]]
    # path = "inbox/hotline"
    # format = "source"
    # source = "hotline_cases"
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from citykpi import citytime
from citykpi.catalogue.model import GRAINS, SEVERITY, SUBDAILY_GRAINS
from citykpi.engine.scorecard import FAIL_ON, Scorecard
from citykpi.errors import ConfigError, DatabaseBusyError, ExitCode
from citykpi.render.exporters import EXTENSIONS, FORMATS, write_scorecard
from citykpi.render.exports import junit_fail_on
from citykpi.render.format import counts_line, pick, safe_text, status_label
from citykpi.render.views import alerts

if TYPE_CHECKING:
    pass

Log = Callable[[str], None]

#: Keys accepted at the top level of the config file.
_TOP_KEYS = {
    "database",
    "catalogue",
    "areas",
    "inbox",
    "inboxes",
    "archive",
    "grain",
    "fail_on",
    "lang",
    "wait",
    "alerts_min",
    "keep_runs",
    "outputs",
}
_OUTPUT_KEYS = {"folder", "formats", "name"}
_INBOX_KEYS = {"path", "format", "source", "on_duplicate", "strict"}


@dataclass(frozen=True)
class Inbox:
    """A folder of data files and how to read them."""

    path: Path
    format: str = "long"
    source: str | None = None
    on_duplicate: str = "reject"
    strict: bool = False


@dataclass(frozen=True)
class Outputs:
    """Where and how the dated scorecard files are written."""

    folder: Path
    formats: tuple[str, ...] = ("html", "json")
    name: str = "scorecard-{date}-{grain}"

    def path_for(self, fmt: str, as_of: date, grain: str, at: datetime | None = None) -> Path:
        """The output file of ``fmt`` for a date (or an instant: ``{date}`` is then ``2025-12-31T1400``)."""
        stamp = at.strftime("%Y-%m-%dT%H%M") if at is not None else as_of.isoformat()
        stem = self.name.format(date=stamp, grain=grain)
        return self.folder / f"{stem}{EXTENSIONS[fmt]}"


@dataclass(frozen=True)
class RunConfig:
    """The daily job's configuration (see the module docstring for the TOML)."""

    database: Path
    catalogue: Path
    outputs: Outputs
    inboxes: tuple[Inbox, ...] = ()
    areas: Path | None = None
    archive: str = "move"
    grain: str = "day"
    fail_on: str = "red"
    lang: str = "zh"
    wait: float = 0.0
    alerts_min: str = "orange"
    keep_runs: int | None = None

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Read and validate a TOML config file; relative paths are resolved against its folder."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"no config file {path}", hint="write one (see `citykpi run --help`) or pass --config FILE"
            ) from None
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        return cls.from_mapping(data, base=path.parent, origin=str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, base: Path, origin: str = "config") -> RunConfig:
        """Build a config from parsed TOML (a mapping)."""

        from citykpi.warehouse.ingest import DUPLICATE_POLICIES
        from citykpi.warehouse.ingest import FORMATS as INGEST_FORMATS

        def fail(message: str) -> ConfigError:
            return ConfigError(f"{origin}: {message}")

        unknown = sorted(set(data) - _TOP_KEYS)
        if unknown:
            raise fail(f"unknown key {unknown[0]!r}; known keys: {', '.join(sorted(_TOP_KEYS))}")

        def text(key: str, default: str | None = None, table: Mapping[str, Any] = data) -> str | None:
            value = table.get(key, default)
            if value is not None and not isinstance(value, str):
                raise fail(f"{key} must be a string, not {type(value).__name__}")
            return value

        def rel(value: str) -> Path:
            p = Path(value).expanduser()
            return p if p.is_absolute() else base / p

        database = text("database")
        catalogue = text("catalogue")
        if not database:
            raise fail("missing key 'database' (the DuckDB file)")
        if not catalogue:
            raise fail("missing key 'catalogue' (the indicators folder)")
        inboxes: list[Inbox] = []
        raw_inbox = data.get("inbox", [])
        if isinstance(raw_inbox, str):
            raw_inbox = [raw_inbox]
        if not isinstance(raw_inbox, list) or not all(isinstance(x, str) for x in raw_inbox):
            raise fail("inbox must be a folder or a list of folders")
        inboxes += [Inbox(rel(x)) for x in raw_inbox]
        raw_tables = data.get("inboxes", [])
        if not isinstance(raw_tables, list) or not all(isinstance(x, dict) for x in raw_tables):
            raise fail("inboxes must be an array of tables ([[inboxes]])")
        for t in raw_tables:
            bad = sorted(set(t) - _INBOX_KEYS)
            if bad:
                raise fail(f"unknown key {bad[0]!r} in [[inboxes]]; known: {', '.join(sorted(_INBOX_KEYS))}")
            if not isinstance(t.get("path"), str):
                raise fail('every [[inboxes]] needs path = "folder"')
            fmt = text("format", "long", t) or "long"
            source = text("source", None, t)
            on_duplicate = text("on_duplicate", "reject", t) or "reject"
            strict = t.get("strict", False)
            where = f"[[inboxes]] {t['path']!r}"
            if fmt not in INGEST_FORMATS:
                raise fail(f"{where}: format must be one of {', '.join(INGEST_FORMATS)}, not {fmt!r}")
            if (fmt == "source") != bool(source):
                raise fail(f'{where}: source = "ID" goes with format = "source", and only with it')
            if on_duplicate not in DUPLICATE_POLICIES:
                raise fail(
                    f"{where}: on_duplicate must be one of {', '.join(DUPLICATE_POLICIES)}, not {on_duplicate!r}"
                )
            if not isinstance(strict, bool):
                raise fail(f"{where}: strict must be true or false, not {strict!r}")
            inboxes.append(Inbox(rel(t["path"]), fmt, source, on_duplicate, strict))
        archive = text("archive", "move") or "move"
        if archive not in ("move", "keep"):
            raise fail(f"archive must be 'move' or 'keep', not {archive!r}")
        grain = text("grain", "day") or "day"
        if grain not in GRAINS:
            raise fail(f"grain must be one of {', '.join(GRAINS)}, not {grain!r}")
        fail_on = text("fail_on", "red") or "red"
        if fail_on not in FAIL_ON:
            raise fail(f"fail_on must be one of {', '.join(FAIL_ON)}, not {fail_on!r}")
        alerts_min = text("alerts_min", "orange") or "orange"
        if alerts_min not in SEVERITY:
            raise fail(f"alerts_min must be a colour, not {alerts_min!r}")
        lang = text("lang", "zh") or "zh"
        if lang not in ("zh", "en"):
            raise fail(f"lang must be zh or en, not {lang!r}")
        wait = data.get("wait", 0)
        if not isinstance(wait, int | float) or isinstance(wait, bool) or wait < 0:
            raise fail("wait must be a number of seconds (>= 0)")
        keep_runs = data.get("keep_runs")
        if keep_runs is not None and (
            not isinstance(keep_runs, int) or isinstance(keep_runs, bool) or keep_runs < 2
        ):
            raise fail(
                "keep_runs must be a whole number of runs, at least 2 (alerts compare with the previous run)"
            )
        out = data.get("outputs", {})
        if not isinstance(out, dict):
            raise fail("[outputs] must be a table")
        bad = sorted(set(out) - _OUTPUT_KEYS)
        if bad:
            raise fail(f"unknown key {bad[0]!r} in [outputs]; known: {', '.join(sorted(_OUTPUT_KEYS))}")
        formats = out.get("formats", ["html", "json"])
        if isinstance(formats, str):
            formats = [formats]
        if not isinstance(formats, list) or not all(isinstance(f, str) for f in formats):
            raise fail("outputs.formats must be a list of formats")
        for f in formats:
            if f not in FORMATS:
                raise fail(f"unknown output format {f!r}; use {', '.join(FORMATS)}")
        name = text("name", "scorecard-{date}-{grain}", out) or "scorecard-{date}-{grain}"
        try:
            stem = name.format(date="2000-01-01", grain="day")
        except (KeyError, IndexError, ValueError):
            raise fail(f"outputs.name {name!r} may only use {{date}} and {{grain}}") from None
        if "/" in stem or "\\" in stem or stem in ("", ".", ".."):
            raise fail(f"outputs.name {name!r} must be a plain file name (use outputs.folder for the folder)")
        if "{date}" not in name:
            raise fail(
                f"outputs.name {name!r} must contain {{date}} so that days do not overwrite each other"
            )
        areas = text("areas")
        return cls(
            database=rel(database),
            catalogue=rel(catalogue),
            outputs=Outputs(
                folder=rel(text("folder", "out", out) or "out"),
                formats=tuple(dict.fromkeys(formats)),
                name=name,
            ),
            inboxes=tuple(inboxes),
            areas=rel(areas) if areas else None,
            archive=archive,
            grain=grain,
            fail_on=fail_on,
            lang=lang,
            wait=float(wait),
            alerts_min=alerts_min,
            keep_runs=keep_runs,
        )


@dataclass(frozen=True)
class IngestedFile:
    """One inbox file and what the run did with it."""

    path: Path
    status: str  # loaded | unchanged | rejected
    rows_loaded: int = 0
    rows_rejected: int = 0
    moved_to: Path | None = None
    message: str = ""


@dataclass(frozen=True)
class RunResult:
    """What one run did: files ingested, the scorecard, outputs, alerts, and the exit code."""

    as_of: date
    scorecard: Scorecard
    files: tuple[IngestedFile, ...]
    outputs: tuple[Path, ...]
    alerts: pl.DataFrame
    fail_on: str
    previous_run_id: int | None = None
    log: tuple[str, ...] = field(default=())

    @property
    def run_id(self) -> int | None:
        """The persisted run's id."""
        return self.scorecard.run_id

    @property
    def breached(self) -> bool:
        """True when some cell is at or above ``fail_on``."""
        return self.scorecard.breaches(self.fail_on)

    @property
    def exit_code(self) -> ExitCode:
        """0 when the scorecard is below ``fail_on``, 1 when it breached it."""
        return ExitCode.FAILED if self.breached else ExitCode.OK


# --- the lock ------------------------------------------------------------------------------------


@contextlib.contextmanager
def run_lock(database: Path, *, wait: float = 0.0) -> Iterator[Path]:
    """Hold an exclusive ``fcntl.flock`` on ``<database>.lock`` for the duration of a run.

    Raises:
        DatabaseBusyError: another run holds the lock beyond ``wait`` seconds.
    """
    lock_path = database.with_name(database.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigError(f"cannot create lock file {lock_path}: {exc.strerror or exc}") from None
    try:
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise DatabaseBusyError(
                        f"another citykpi run holds {lock_path}",
                        hint="wait for it to finish, or set `wait = SECONDS` in the config / pass --wait",
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield lock_path
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# --- the job -------------------------------------------------------------------------------------


def inbox_files(inbox: Inbox) -> list[Path]:
    """The regular data files directly in an inbox folder (not in done/ or rejected/), sorted by name.

    A symbolic link is never followed (see :func:`inbox_links`), nor is a FIFO or device opened:
    whoever may drop files into the inbox must not be able to make the job read any other file.
    """
    return sorted(p for p in _inbox_entries(inbox) if _is_regular(p))


def inbox_links(inbox: Inbox) -> list[Path]:
    """The symbolic links with a data suffix directly in an inbox folder, which the job skips."""
    return sorted(p for p in _inbox_entries(inbox) if p.is_symlink())


def _inbox_entries(inbox: Inbox) -> list[Path]:
    from citykpi.warehouse.ingest import DATA_SUFFIXES

    if not inbox.path.is_dir():
        raise ConfigError(
            f"inbox {inbox.path} is not a folder", hint="create it or fix `inbox` in the config"
        )
    return [
        p for p in inbox.path.iterdir() if not p.name.startswith(".") and p.suffix.lower() in DATA_SUFFIXES
    ]


def _is_regular(path: Path) -> bool:
    """A regular file itself, not through a symbolic link (lstat)."""
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def _archive(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder`` (created), never overwriting a different earlier file."""
    try:
        folder.mkdir(exist_ok=True)
        target = folder / path.name
        n = 1
        while target.exists():
            target = folder / f"{path.stem}.{n}{path.suffix}"
            n += 1
        shutil.move(str(path), str(target))
    except OSError as exc:  # a read-only or full inbox: the file is stored, only the move failed
        raise ConfigError(
            f"cannot move {path} to {folder}/: {exc.strerror or exc}; its data is stored (the next run sees "
            "it as unchanged)",
            hint='make the inbox writable, or set archive = "keep" in the config',
        ) from None
    return target


def check_outputs(config: RunConfig, day: date, at: datetime | None = None) -> None:
    """Refuse, before the job starts, a report path that may not be written (the rules of
    :mod:`citykpi.render.targets`, without --force): the database, its WAL or lock, the catalogue,
    the areas file, a data file an inbox would read; a link, folder or device; an existing file
    that is not a previous report of its format.

    Raises:
        ConfigError: naming the path and the reason (exit 3: the config is wrong, not the command).
    """
    from citykpi.render.targets import OutputTargetError, check_output_target, protected_files
    from citykpi.warehouse.ingest import DATA_SUFFIXES

    protected = protected_files(
        database=config.database,
        catalogues=[config.catalogue],
        inputs=[config.areas] if config.areas is not None else [],
        input_folders=[(inbox.path, DATA_SUFFIXES) for inbox in config.inboxes],
    )
    for fmt in config.outputs.formats:
        try:
            check_output_target(
                config.outputs.path_for(fmt, day, config.grain, at), protected=protected, kind=fmt
            )
        except OutputTargetError as exc:
            raise ConfigError(
                f"[outputs] {exc.message}".replace("; pass --force to replace it", "; move it away"),
                hint="fix outputs.folder / outputs.name in the config",
            ) from None


def run_job(
    config: RunConfig, *, as_of: date | None = None, log: Log | None = None, at: datetime | None = None
) -> RunResult:
    """Run the daily job once.

    Args:
        config: the loaded configuration.
        as_of: the date to evaluate; default yesterday.
        at: an instant to evaluate instead (naive city time; a sub-daily job, e.g. every 15 minutes).
        log: called with one plain line per step (e.g. ``typer.echo`` to stderr).

    Returns:
        RunResult (its ``exit_code`` is 1 when the scorecard breached ``config.fail_on``).

    Raises:
        DatabaseBusyError: another run holds the lock.
        CitykpiError: catalogue, data, warehouse or export errors (nothing half-written).
    """
    from citykpi.catalogue import load_catalogue
    from citykpi.engine.evaluate import evaluate
    from citykpi.engine.runs import previous_run, prune_runs
    from citykpi.warehouse import IngestOptions, Warehouse, ingest, load_areas

    lines: list[str] = []

    def say(message: str) -> None:
        message = safe_text(message, one_line=True)  # names of areas and files are data
        lines.append(message)
        if log is not None:
            log(message)

    if at is None and as_of is None and config.grain in SUBDAILY_GRAINS:  # an hourly job: now, city time
        zone = citytime.zone(load_catalogue(config.catalogue).timezone)
        at = citytime.now_local(zone).replace(second=0, microsecond=0)
    day = at.date() if at is not None else as_of or (date.today() - timedelta(days=1))
    check_outputs(config, day, at)
    say(
        f"run {at.isoformat(sep=' ') if at is not None else day.isoformat()} ({config.grain}) with {config.database}"
    )
    catalogue = load_catalogue(config.catalogue)
    say(
        f"catalogue {config.catalogue}: {len(catalogue.indicators)} indicators, {len(catalogue.indices)} indices"
    )
    config.database.parent.mkdir(parents=True, exist_ok=True)
    files: list[IngestedFile] = []
    # The lock covers the whole job, exports included, so two runs never overlap.
    with run_lock(config.database, wait=config.wait):
        with Warehouse.open(config.database, wait=config.wait) as wh:
            if config.areas is not None:
                report = load_areas(wh, config.areas)
                say(
                    f"areas {config.areas}: {report.total} areas ({len(report.added)} added, {len(report.removed)} removed)"
                )
            for inbox in config.inboxes:
                for link in inbox_links(inbox):
                    say(
                        f"WARNING inbox {inbox.path}: skipped {link.name}, a symbolic link (inboxes never "
                        "follow links; copy or move the file itself into the inbox)"
                    )
                pending = inbox_files(inbox)
                if not pending:
                    say(f"inbox {inbox.path}: no new files")
                    continue
                options = IngestOptions(
                    fmt=inbox.format,  # type: ignore[arg-type]  # checked by ingest()
                    source=inbox.source,
                    on_duplicate=inbox.on_duplicate,  # type: ignore[arg-type]
                    strict=inbox.strict,
                )
                ingested = ingest(wh, catalogue, pending, options)
                for f in ingested.files:
                    path = Path(f.path)
                    moved: Path | None = None
                    if config.archive == "move" and path.exists():
                        sub = "rejected" if f.status == "rejected" else "done"
                        moved = _archive(path, inbox.path / sub)
                    files.append(
                        IngestedFile(path, f.status, f.rows_loaded, f.rows_rejected, moved, f.message)
                    )
                    line = (
                        f"ingest {path.name}: {f.status}, {f.rows_loaded} loaded, {f.rows_rejected} rejected"
                    )
                    if f.message:
                        line += f" ({f.message})"
                    if moved is not None:
                        line += f" → {moved.parent.name}/"
                    say("WARNING " + line if f.has_rejects else line)
            scorecard = evaluate(
                wh, catalogue, as_of=None if at is not None else day, at=at, grain=config.grain, persist=True
            )
            say(f"evaluated run {scorecard.run_id}: {counts_line(scorecard.counts(), 'en')}")
            previous = previous_run(wh, day, catalogue, at=at)
            if config.keep_runs is not None:
                pruned = prune_runs(wh, keep=config.keep_runs)
                if pruned.runs:
                    say(
                        f"pruned {len(pruned.runs)} old run(s) ({pruned.cells} cells); "
                        f"kept the latest {pruned.kept} (keep_runs = {config.keep_runs})"
                    )
        config.outputs.folder.mkdir(parents=True, exist_ok=True)
        outputs = []
        junit = junit_fail_on(config.fail_on)
        for fmt in config.outputs.formats:
            target = config.outputs.path_for(fmt, day, config.grain, at)
            outputs.append(write_scorecard(scorecard, fmt, target, lang=config.lang, fail_on=junit))
            say(f"wrote {target}")
        found = alerts(scorecard, previous, min_colour=config.alerts_min)
        new = int(found.get_column("is_new").sum()) if found.height else 0
        say(f"alerts: {found.height} at or above {config.alerts_min}, {new} new since the previous run")
        for row in found.iter_rows(named=True):
            streak = f", {row['streak']} {config.grain}(s)" if row["streak"] else ""
            flag = "NEW " if row["is_new"] else ""
            say(
                f"  {flag}{status_label(row['status'], 'en')} {row['indicator_id']} @ {row['area_id']} "
                f"{pick(row, 'area_name', config.lang)}: {row['value']}{streak}"
            )
        result = RunResult(
            as_of=day,
            scorecard=scorecard,
            files=tuple(files),
            outputs=tuple(outputs),
            alerts=found,
            fail_on=config.fail_on,
            previous_run_id=previous.run_id if previous is not None else None,
            log=tuple(lines),
        )
        verdict = "FAILED" if result.breached else "ok"
        say(f"done: {verdict} (fail_on {config.fail_on}, exit {int(result.exit_code)})")
    return replace(result, log=tuple(lines))
