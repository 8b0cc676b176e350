"""`citykpi run`: the unattended daily job — inbox → ingest → evaluate → persist → notify → export.

A run is safe to repeat: files already loaded are recognised by their sha256, exports are
deterministic and replaced atomically, so re-running a day gives byte-identical files, and a
notifier is never told the same thing twice (:mod:`citykpi.notify`). A lock on
``<database>.lock`` (``fcntl.flock``) stops two runs from overlapping.

The run ends in a *health* state (ok, partial, no_data, failed, busy, config) apart from the
city's *verdict* (a cell at or above ``fail_on``); :mod:`citykpi.daily.health` maps both to the
exit code, and a JSON run report (:mod:`citykpi.daily.report`) carries both.

The configuration is a TOML file (paths are relative to the file's folder; docs/daily-run.md
explains every key)::

    database  = "citykpi.duckdb"
    catalogue = "indicators"
    areas     = "areas.csv"          # optional: (re)loaded before ingesting
    inbox     = ["inbox"]            # folders whose data files are ingested (long format)
    archive   = "move"               # move: loaded → <inbox>/done/, rejected → <inbox>/rejected/; keep
    settle    = 1.0                  # seconds between two looks at a file's size (still being written?)
    grain     = "day"
    timezone  = "Asia/Shanghai"      # the city's zone: "yesterday", log times, silences (default: the machine's)
    fail_on   = "never"              # never | green … red: the verdict fails the process only when asked
    partial_on = ["rejected", "stale", "undelivered"]
    alerts_min = "orange"
    remind_after = 3                 # days between "still firing" reminders (0: none)
    lang      = "zh"
    wait      = 0
    keep_runs = 90
    report    = "out/runs/run-{date}-{grain}.json"
    log_format = "text"              # text | json
    log_alert_lines = 20             # above this many alerts the log gives totals per domain

    [outputs]
    folder  = "out"
    formats = ["html", "xlsx", "json"]
    name    = "scorecard-{date}-{grain}"

    [[inboxes]]                      # an inbox read with ingest's options
    path = "inbox/gb"
    map = {indicator_id = "指标编码", area_id = "区划代码", period = "统计日期", value = "数值"}
    date_format = {period = "%Y年%m月%d日"}
    encoding = "gb18030"
    pattern = ["*.csv"]

    [[notifiers]]                    # see citykpi.notify.notifiers
    name = "duty"
    type = "webhook"
    url = "https://alerts.example.gov.cn/hooks/citykpi"
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import polars as pl

from citykpi.backend import EngineError
from citykpi.catalogue.model import GRAINS, SEVERITY, Catalogue
from citykpi.daily import clock
from citykpi.daily.health import PARTIAL_CAUSES, Health, data_in_period, worst
from citykpi.daily.health import exit_code as health_exit_code
from citykpi.daily.inbox import DONE, REJECTED, Inbox, InboxScan, archive, scan_inbox
from citykpi.daily.log import LOG_FORMATS, RunLog
from citykpi.engine.scorecard import FAIL_ON, Scorecard
from citykpi.errors import (
    CitykpiError,
    ConfigError,
    DatabaseBusyError,
    ExitCode,
    RunBusyError,
    RunFailedError,
    UsageError,
    WarehouseError,
)
from citykpi.notify.changes import AlertChanges
from citykpi.notify.notifiers import NotifierConfig, parse_notifiers
from citykpi.render.exporters import EXTENSIONS, FORMATS, write_scorecard
from citykpi.render.exports import junit_fail_on
from citykpi.render.format import Digits, counts_line, fmt_value, pick, status_label

__all__ = [
    "Inbox",
    "IngestedFile",
    "NotificationResult",
    "Outputs",
    "RunConfig",
    "RunResult",
    "check_outputs",
    "run_job",
    "run_lock",
]

Log = Callable[[str], None]

#: Keys accepted at the top level of the config file.
_TOP_KEYS = {
    "database",
    "catalogue",
    "areas",
    "inbox",
    "inboxes",
    "archive",
    "settle",
    "grain",
    "timezone",
    "fail_on",
    "partial_on",
    "lang",
    "wait",
    "alerts_min",
    "remind_after",
    "keep_runs",
    "report",
    "log_format",
    "log_alert_lines",
    "outputs",
    "notifiers",
}
_OUTPUT_KEYS = {"folder", "formats", "name"}
_INBOX_KEYS = {
    "path",
    "format",
    "source",
    "on_duplicate",
    "strict",
    "map",
    "date_format",
    "encoding",
    "pattern",
}
_ENCODING_NAMES = {"auto": "auto", "utf-8": "utf-8", "utf8": "utf-8", "gb18030": "gb18030", "gbk": "gb18030"}


@dataclass(frozen=True)
class Outputs:
    """Where and how the dated scorecard files are written."""

    folder: Path
    formats: tuple[str, ...] = ("html", "json")
    name: str = "scorecard-{date}-{grain}"

    def path_for(self, fmt: str, as_of: date, grain: str) -> Path:
        """The output file of ``fmt`` for a date."""
        stem = self.name.format(date=as_of.isoformat(), grain=grain)
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
    settle: float = 1.0
    grain: str = "day"
    timezone: str | None = None
    fail_on: str = "never"
    partial_on: tuple[str, ...] = tuple(PARTIAL_CAUSES)
    lang: str = "zh"
    wait: float = 0.0
    alerts_min: str = "orange"
    remind_after: int = 3
    keep_runs: int | None = None
    report: str | None = None  # a path template with {date} and {grain}; None: beside the outputs
    log_format: str = "text"
    log_alert_lines: int = 20
    notifiers: tuple[NotifierConfig, ...] = ()
    base: Path = Path(".")

    @property
    def tz(self) -> tzinfo:
        """The city's time zone (the machine's when the config names none)."""
        return clock.zone(self.timezone)

    def report_path(self, as_of: date) -> Path:
        """Where the run report of a date is written."""
        template = self.report or str(self.outputs.folder / "runs" / "run-{date}-{grain}.json")
        path = Path(template.format(date=as_of.isoformat(), grain=self.grain)).expanduser()
        return path if path.is_absolute() else self.base / path

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Read and validate a TOML config file; relative paths are resolved against its folder."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"no config file {path}", hint="write one (see docs/daily-run.md) or pass --config FILE"
            ) from None
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        return cls.from_mapping(data, base=path.parent, origin=str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, base: Path, origin: str = "config") -> RunConfig:
        """Build a config from parsed TOML (a mapping)."""
        return _parse(data, base=base, origin=origin)


def _parse(data: Mapping[str, Any], *, base: Path, origin: str) -> RunConfig:
    def fail(message: str) -> ConfigError:
        return ConfigError(f"{origin}: {message}", hint="the keys are described in docs/daily-run.md")

    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise fail(f"unknown key {unknown[0]!r}; known keys: {', '.join(sorted(_TOP_KEYS))}")

    def text(key: str, default: str | None = None, table: Mapping[str, Any] = data) -> str | None:
        value = table.get(key, default)
        if value is not None and not isinstance(value, str):
            raise fail(f"{key} must be a string, not {type(value).__name__}")
        return value

    def choice(key: str, default: str, choices: tuple[str, ...] | Mapping[str, int]) -> str:
        value = text(key, default) or default
        if value not in choices:
            raise fail(f"{key} must be one of {', '.join(choices)}, not {value!r}")
        return value

    def number(key: str, default: float, *, low: float = 0.0) -> float:
        value = data.get(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool) or value < low:
            raise fail(f"{key} must be a number (>= {low:g})")
        return float(value)

    def whole(key: str, default: int, *, low: int) -> int:
        value = data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise fail(f"{key} must be a whole number, at least {low}")
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
    inboxes += [_inbox(t, rel, fail) for t in raw_tables]
    timezone = text("timezone")
    if timezone is not None:
        try:
            clock.zone(timezone)
        except ConfigError as exc:
            raise fail(f"timezone: {exc.message}") from None
    partial_on = data.get("partial_on", list(PARTIAL_CAUSES))
    if not isinstance(partial_on, list) or not all(p in PARTIAL_CAUSES for p in partial_on):
        raise fail(f"partial_on must be a list of {', '.join(PARTIAL_CAUSES)} (or [])")
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
    _check_name(name, "outputs.name", fail, plain=True)
    report = text("report")
    if report is not None:
        _check_name(report, "report", fail, plain=False)
        if not report.endswith(".json"):
            raise fail(f"report {report!r} must name a .json file")
    areas = text("areas")
    return RunConfig(
        database=rel(database),
        catalogue=rel(catalogue),
        outputs=Outputs(
            folder=rel(text("folder", "out", out) or "out"),
            formats=tuple(dict.fromkeys(formats)),
            name=name,
        ),
        inboxes=tuple(inboxes),
        areas=rel(areas) if areas else None,
        archive=choice("archive", "move", ("move", "keep")),
        settle=number("settle", 1.0),
        grain=choice("grain", "day", GRAINS),
        timezone=timezone,
        fail_on=choice("fail_on", "never", FAIL_ON),
        partial_on=tuple(dict.fromkeys(partial_on)),
        lang=choice("lang", "zh", ("zh", "en")),
        wait=number("wait", 0.0),
        alerts_min=choice("alerts_min", "orange", SEVERITY),
        remind_after=whole("remind_after", 3, low=0),
        keep_runs=_keep_runs(data.get("keep_runs"), fail),
        report=report,
        log_format=choice("log_format", "text", LOG_FORMATS),
        log_alert_lines=whole("log_alert_lines", 20, low=0),
        notifiers=parse_notifiers(data.get("notifiers"), base=base, origin=origin),
        base=base,
    )


def _keep_runs(value: object, fail: Callable[[str], ConfigError]) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 2):
        raise fail(
            "keep_runs must be a whole number of runs, at least 2 (alerts compare with the previous run)"
        )
    return value


def _check_name(name: str, key: str, fail: Callable[[str], ConfigError], *, plain: bool) -> None:
    try:
        stem = name.format(date="2000-01-01", grain="day")
    except (KeyError, IndexError, ValueError):
        raise fail(f"{key} {name!r} may only use {{date}} and {{grain}}") from None
    if plain and ("/" in stem or "\\" in stem or stem in ("", ".", "..")):
        raise fail(f"{key} {name!r} must be a plain file name (use outputs.folder for the folder)")
    if "{date}" not in name:
        raise fail(f"{key} {name!r} must contain {{date}} so that days do not overwrite each other")


def _pairs(value: object, key: str, fail: Callable[[str], ConfigError]) -> list[str]:
    """A ``map``/``date_format`` value (a table, or a list of "NAME=VALUE") as NAME=VALUE strings."""
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return [f"{k}={v}" for k, v in value.items()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise fail(f'{key} must be a table ({{area_id = "区划代码"}}) or a list of "NAME=VALUE"')


def _inbox(t: Mapping[str, Any], rel: Callable[[str], Path], fail: Callable[[str], ConfigError]) -> Inbox:
    from citykpi.warehouse.ingest import DUPLICATE_POLICIES, parse_map
    from citykpi.warehouse.ingest import FORMATS as INGEST_FORMATS

    bad = sorted(set(t) - _INBOX_KEYS)
    if bad:
        raise fail(f"unknown key {bad[0]!r} in [[inboxes]]; known: {', '.join(sorted(_INBOX_KEYS))}")
    if not isinstance(t.get("path"), str):
        raise fail('every [[inboxes]] needs path = "folder"')
    where = f"[[inboxes]] {t['path']!r}"

    def get(key: str, default: str | None) -> str | None:
        value = t.get(key, default)
        if value is not None and not isinstance(value, str):
            raise fail(f"{where}: {key} must be a string, not {type(value).__name__}")
        return value

    fmt = get("format", "long") or "long"
    source = get("source", None)
    on_duplicate = get("on_duplicate", "reject") or "reject"
    strict = t.get("strict", False)
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
    encoding = (get("encoding", "auto") or "auto").lower()
    if encoding not in _ENCODING_NAMES:
        raise fail(f"{where}: encoding must be auto, utf-8 or gb18030 (gbk), not {encoding!r}")
    patterns = t.get("pattern", None)
    if isinstance(patterns, str):
        patterns = [patterns]
    if patterns is not None and (
        not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) and p for p in patterns)
    ):
        raise fail(f'{where}: pattern must be a file name glob or a list of them, e.g. pattern = "aqi-*.csv"')
    if patterns and any("/" in p for p in patterns):
        raise fail(f"{where}: pattern matches file names in the inbox, without a folder")
    try:
        mapping, wide = parse_map(_pairs(t.get("map", []), f"{where}: map", fail), fmt)
        dates, _ = parse_map(
            _pairs(t.get("date_format", []), f"{where}: date_format", fail),
            "source",
            option="date_format",
            example="period=%d.%m.%Y",
        )
    except UsageError as exc:
        raise fail(f"{where}: {exc.message.replace('--map', 'map')}") from None
    extra: dict[str, Any] = {"patterns": tuple(patterns)} if patterns else {}
    return Inbox(
        rel(t["path"]),
        fmt,
        source,
        on_duplicate,
        strict,
        mapping=mapping,
        wide=wide,
        date_formats=dates,
        encoding=_ENCODING_NAMES[encoding],
        **extra,
    )


# --- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestedFile:
    """One inbox file and what the run did with it."""

    path: Path
    status: str  # loaded | unchanged | rejected (dry run: would_load | unchanged)
    rows_loaded: int = 0
    rows_rejected: int = 0
    moved_to: Path | None = None
    message: str = ""
    batch_id: int | None = None


@dataclass(frozen=True)
class NotificationResult:
    """One digest this run queued, delivered, failed to deliver or (dry run) would send."""

    notifier: str
    digest_key: str
    status: str  # delivered | undelivered | would_send | would_retry
    items: int
    attempts: int = 0
    error: str = ""
    run_id: int | None = None


@dataclass(frozen=True)
class RunResult:
    """What one run did: files, the scorecard, alerts, notifications, outputs, health and verdict."""

    as_of: date
    grain: str
    scorecard: Scorecard | None
    files: tuple[IngestedFile, ...]
    outputs: tuple[Path, ...]
    alerts: pl.DataFrame
    fail_on: str
    health: Health
    previous_run_id: int | None = None
    changes: AlertChanges | None = None
    notifications: tuple[NotificationResult, ...] = ()
    waiting: tuple[tuple[Path, str], ...] = ()
    ignored: tuple[tuple[Path, str], ...] = ()
    error: CitykpiError | None = None
    dry_run: bool = False
    timezone: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    report_path: Path | None = None
    log: tuple[str, ...] = field(default=())

    @property
    def run_id(self) -> int | None:
        """The persisted run's id (None when nothing was recorded)."""
        return self.scorecard.run_id if self.scorecard is not None else None

    @property
    def breached(self) -> bool:
        """True when some cell is at or above ``fail_on``."""
        return self.scorecard is not None and self.scorecard.breaches(self.fail_on)

    @property
    def exit_code(self) -> int:
        """The exit code of the contract (:mod:`citykpi.daily.health`): health first, then the verdict."""
        if self.dry_run:
            return int(ExitCode.ERROR) if self.health.status == "failed" else int(ExitCode.OK)
        return health_exit_code(self.health.status, self.breached)

    def report(self) -> dict[str, Any]:
        """The machine-readable run report (docs/daily-run.md, "The run report")."""
        from citykpi.daily.report import run_report

        return run_report(self)


# --- the lock ------------------------------------------------------------------------------------


@contextlib.contextmanager
def run_lock(database: Path, *, wait: float = 0.0) -> Iterator[Path]:
    """Hold an exclusive ``fcntl.flock`` on ``<database>.lock`` for the duration of a run.

    Raises:
        RunBusyError: another run holds the lock beyond ``wait`` seconds (exit 75).
        WarehouseError: the lock file cannot be created (exit 3).
    """
    lock_path = database.with_name(database.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise WarehouseError(f"cannot create lock file {lock_path}: {exc.strerror or exc}") from None
    try:
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RunBusyError(
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


def _inbox_suffixes(inbox: Inbox) -> tuple[str, ...]:
    """Suffixes of the files an inbox may read (for the output-path check): its patterns' and the data files'."""
    from citykpi.warehouse.ingest import DATA_SUFFIXES

    extra = []
    for p in inbox.patterns:
        suffix = Path(p).suffix.lower()
        if not suffix or any(c in suffix for c in "*?["):
            return ("*",)
        extra.append(suffix)
    return tuple(dict.fromkeys([*DATA_SUFFIXES, *extra]))


def check_outputs(config: RunConfig, day: date) -> None:
    """Refuse, before the job starts, a report path that may not be written (the rules of
    :mod:`citykpi.render.targets`, without --force): the database, its WAL or lock, the catalogue,
    the areas file, a data file an inbox would read; a link, folder or device; an existing file
    that is not a previous report of its format. The run report and JSONL notifiers are checked too.

    Raises:
        ConfigError: naming the path and the reason (exit 78: the config is wrong, not the command).
    """
    from citykpi.render.targets import OutputTargetError, check_output_target, protected_files

    protected = protected_files(
        database=config.database,
        catalogues=[config.catalogue],
        inputs=[config.areas] if config.areas is not None else [],
        input_folders=[(inbox.path, _inbox_suffixes(inbox)) for inbox in config.inboxes],
    )
    targets = [
        (config.outputs.path_for(fmt, day, config.grain), fmt, "[outputs]") for fmt in config.outputs.formats
    ]
    targets.append((config.report_path(day), "json", "report"))
    targets += [
        (n.path, "jsonl", f"[[notifiers]] {n.name!r}") for n in config.notifiers if n.path is not None
    ]
    for path, kind, where in targets:
        try:
            check_output_target(path, protected=protected, kind=kind)
        except OutputTargetError as exc:
            raise ConfigError(
                f"{where} {exc.message}".replace("; pass --force to replace it", "; move it away"),
                hint="fix the path in the config",
            ) from None


def _period(grain: str, day: date) -> tuple[date, date]:
    from citykpi.engine.calendar import shift, trunc

    start = trunc(grain, day)
    return start, shift(grain, start, 1)


@dataclass
class _Job:
    """What a run has gathered so far (turned into a RunResult at the end)."""

    config: RunConfig
    day: date
    log: RunLog
    dry_run: bool
    started_at: datetime
    files: list[IngestedFile] = field(default_factory=list)
    waiting: list[tuple[Path, str]] = field(default_factory=list)
    ignored: list[tuple[Path, str]] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    notifications: list[NotificationResult] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    scorecard: Scorecard | None = None
    alerts: pl.DataFrame = field(default_factory=pl.DataFrame)
    changes: AlertChanges | None = None
    previous_run_id: int | None = None
    error: CitykpiError | None = None

    def problem(self, state: str, reason: str, *, cause: str | None = None) -> None:
        """Note a health problem; a partial cause the config leaves out only shows in the log."""
        if state == "partial" and cause is not None and cause not in self.config.partial_on:
            return
        self.states.append(state)
        self.reasons.append(reason)

    def result(self, report_path: Path | None) -> RunResult:
        status = worst(self.states)
        return RunResult(
            as_of=self.day,
            grain=self.config.grain,
            scorecard=self.scorecard,
            files=tuple(self.files),
            outputs=tuple(self.outputs),
            alerts=self.alerts,
            fail_on=self.config.fail_on,
            health=Health(status, tuple(self.reasons)),
            previous_run_id=self.previous_run_id,
            changes=self.changes,
            notifications=tuple(self.notifications),
            waiting=tuple(self.waiting),
            ignored=tuple(self.ignored),
            error=self.error,
            dry_run=self.dry_run,
            timezone=clock.zone_name(self.config.tz),
            started_at=self.started_at,
            finished_at=clock.now(self.config.tz),
            report_path=report_path,
            log=self.log.messages,
        )


def run_job(
    config: RunConfig,
    *,
    as_of: date | None = None,
    log: Log | None = None,
    log_format: str | None = None,
    dry_run: bool = False,
    report_path: Path | None = None,
    write_report: bool = True,
    sleep: Callable[[float], None] | None = None,
) -> RunResult:
    """Run the daily job once (or, with ``dry_run``, say what it would do and write nothing).

    Args:
        config: the loaded configuration.
        as_of: the date to evaluate; default yesterday in the config's time zone.
        log: called with each log line (text or JSON, ``log_format`` or the config's).
        dry_run: read only: list what would be ingested, evaluated, written and notified.
        report_path: write the run report here instead of the configured path.
        write_report: write the run report at all (the CLI prints it instead with ``--report -``).
        sleep: how to wait (settling inbox files, backing off between delivery attempts).

    Returns:
        RunResult: ``exit_code`` and ``report()`` follow the exit contract. A failure after the job
        started is in ``error`` (and in the report), not raised.

    Raises:
        ConfigError: the configuration or an output path is wrong (exit 78).
        RunBusyError: another run holds the lock, or a process the database (exit 75).
    """
    tz = config.tz
    started = clock.now(tz)
    day = as_of or (started.date() - timedelta(days=1))
    runlog = RunLog(log, fmt=log_format or config.log_format, tz=tz, clock=clock.now)
    job = _Job(config, day, runlog, dry_run, started)
    check_outputs(config, day)
    target = report_path or config.report_path(day)
    what = "dry run" if dry_run else "run"
    runlog.info(
        "start",
        f"{what} {day.isoformat()} ({config.grain}, {clock.zone_name(tz)}) with {config.database}",
        date=day.isoformat(),
        grain=config.grain,
        database=str(config.database),
    )
    if dry_run:  # the report only where --report says, never the configured path
        _dry_run(job)
        result = job.result(report_path if write_report else None)
        _finish(job, result, report_path if write_report else None)
        result = replace(result, log=runlog.messages)
    else:
        config.database.parent.mkdir(parents=True, exist_ok=True)
        # the lock covers the whole job, reports included, so two runs never overlap
        with run_lock(config.database, wait=config.wait):
            try:
                _run(job, sleep or time.sleep)
            except DatabaseBusyError as exc:
                raise RunBusyError(exc.message, hint=exc.hint) from None
            except ConfigError:
                raise
            except (CitykpiError, EngineError) as exc:
                job.error = exc if isinstance(exc, CitykpiError) else RunFailedError(str(exc))
                job.problem("failed", _one_line(job.error))
                runlog.error("failed", f"failed: {_one_line(job.error)}")
            result = job.result(target if write_report else None)
            _finish(job, result, target if write_report else None)
            result = replace(result, log=runlog.messages)
    return result


def _one_line(exc: CitykpiError) -> str:
    return str(exc.message).splitlines()[0] if exc.message else type(exc).__name__


def _finish(job: _Job, result: RunResult, target: Path | None) -> None:
    """Write the run report (atomically) and say how the run ended."""
    log = job.log
    code = result.exit_code
    worst = result.report()["verdict"]["worst"] or "none"
    verdict = f"worst {worst}, fail_on {job.config.fail_on}" + (" (breached)" if result.breached else "")
    log.info(
        "done",
        f"done: {result.health.status} (exit {code}); verdict: {verdict}"
        + (f"; {'; '.join(result.health.reasons)}" if result.health.reasons else ""),
        health=result.health.status,
        exit_code=code,
        breached=result.breached,
    )
    if target is None:
        return
    from citykpi.render.exports import atomic_write

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        document = json.dumps(result.report(), ensure_ascii=False, indent=2, default=str) + "\n"

        def write(tmp: Path) -> None:
            tmp.write_text(document, encoding="utf-8")

        atomic_write(target, write)
    except (OSError, CitykpiError) as exc:
        log.error("report", f"cannot write the run report {target}: {exc}")
        return
    log.info("report", f"wrote the run report {target}", path=str(target))


def _run(job: _Job, sleep: Callable[[float], None]) -> None:
    """The job under the lock: every step, each failure noted (a CitykpiError stops it)."""
    from citykpi.catalogue import load_catalogue
    from citykpi.engine.evaluate import evaluate
    from citykpi.engine.runs import next_run_id, previous_run, prune_runs
    from citykpi.render.views import alerts
    from citykpi.warehouse import Warehouse, load_areas

    config, log = job.config, job.log
    catalogue = load_catalogue(config.catalogue)
    log.info(
        "catalogue",
        f"catalogue {config.catalogue}: {len(catalogue.indicators)} indicators, {len(catalogue.indices)} indices",
    )
    _check_inbox_options(config, catalogue)
    for inbox in config.inboxes:
        if not inbox.path.is_dir():
            raise ConfigError(
                f"inbox {inbox.path} is not a folder", hint="create it or fix `inbox` in the config"
            )
    with Warehouse.open(config.database, wait=config.wait) as wh:
        log.run = next_run_id(wh)
        if config.areas is not None:
            report = load_areas(wh, config.areas)
            log.info(
                "areas",
                f"areas {config.areas}: {report.total} areas ({len(report.added)} added, {len(report.removed)} removed)",
            )
        for inbox in config.inboxes:
            _ingest_inbox(job, wh, catalogue, inbox, sleep)
        scorecard = evaluate(wh, catalogue, as_of=job.day, grain=config.grain, persist=True, scheduled=True)
        job.scorecard = scorecard
        log.run = scorecard.run_id
        counts = scorecard.counts()
        log.info("evaluate", f"evaluated run {scorecard.run_id}: {counts_line(counts, 'en')}", counts=counts)
        _assess_data(job, wh, catalogue, scorecard)
        previous = previous_run(wh, job.day, catalogue, grain=config.grain)
        job.previous_run_id = previous.run_id if previous is not None else None
        job.alerts = alerts(scorecard, previous, min_colour=config.alerts_min)
        _log_alerts(job, catalogue)
        _notify(job, wh, catalogue, scorecard, sleep)
        if config.keep_runs is not None:
            pruned = prune_runs(wh, keep=config.keep_runs)
            if pruned.runs:
                log.info(
                    "prune",
                    f"pruned {len(pruned.runs)} old run(s) ({pruned.cells} cells); "
                    f"kept the latest {pruned.kept} (keep_runs = {config.keep_runs})",
                )
    _write_outputs(job, scorecard)


def _check_inbox_options(config: RunConfig, catalogue: Catalogue) -> None:
    """Ingest's own checks of each inbox's options against the catalogue (an unknown source…)."""
    from citykpi.warehouse.ingest import check_options

    for inbox in config.inboxes:
        try:
            check_options(catalogue, inbox.options())
        except UsageError as exc:
            raise ConfigError(f"[[inboxes]] {str(inbox.path)!r}: {exc.message}", hint=exc.hint) from None


def _scan(job: _Job, inbox: Inbox, sleep: Callable[[float], None]) -> InboxScan:
    log = job.log
    try:
        scan = scan_inbox(inbox, settle=job.config.settle, sleep=sleep)
    except OSError:
        raise ConfigError(
            f"inbox {inbox.path} is not a folder", hint="create it or fix `inbox` in the config"
        ) from None
    for link in scan.links:
        log.warning(
            "inbox",
            f"inbox {inbox.path}: skipped {link.name}, a symbolic link (inboxes never follow links; copy or "
            "move the file itself into the inbox)",
            file=link.name,
        )
    for path, why in scan.waiting:
        job.waiting.append((path, why))
        log.info("inbox", f"inbox {inbox.path}: left {path.name} for the next run: {why}", file=path.name)
    for path, why in scan.ignored:
        job.ignored.append((path, why))
        log.info("inbox", f"inbox {inbox.path}: ignored {path.name}: {why}", file=path.name)
    if not scan.ready:
        log.info("inbox", f"inbox {inbox.path}: no new files")
    return scan


def _ingest_inbox(
    job: _Job, wh: Any, catalogue: Catalogue, inbox: Inbox, sleep: Callable[[float], None]
) -> None:
    """Ingest an inbox's ready files and move each to done/ or rejected/."""
    from citykpi.warehouse import ingest

    config, log = job.config, job.log
    scan = _scan(job, inbox, sleep)
    if not scan.ready:
        return
    ingested = ingest(wh, catalogue, list(scan.ready), inbox.options())
    for f in ingested.files:
        path = Path(f.path)
        moved: Path | None = None
        if config.archive == "move" and path.exists():
            try:
                moved = archive(path, inbox.path / (REJECTED if f.status == "rejected" else DONE))
            except OSError as exc:
                why = (
                    f"cannot move {path.name} to {inbox.path}/{DONE}/: {exc.strerror or exc}; its data is stored "
                    '(the next run sees it as unchanged); make the inbox writable, or set archive = "keep"'
                )
                log.error("archive", why, file=path.name)
                job.problem("partial", why)
        job.files.append(
            IngestedFile(path, f.status, f.rows_loaded, f.rows_rejected, moved, f.message, f.batch_id)
        )
        line = f"ingest {path.name}: {f.status}, {f.rows_loaded} loaded, {f.rows_rejected} rejected"
        if f.message:
            line += f" ({f.message})"
        if moved is not None:
            line += f" → {moved.parent.name}/"
        fields = {
            "file": path.name,
            "status": f.status,
            "rows_loaded": f.rows_loaded,
            "rows_rejected": f.rows_rejected,
        }
        if f.has_rejects:
            log.warning("ingest", line, **fields)
            what = "was rejected" if f.status == "rejected" else f"had {f.rows_rejected} rejected row(s)"
            job.problem("partial", f"{path.name} {what}", cause="rejected")
        else:
            log.info("ingest", line, **fields)


def _assess_data(job: _Job, wh: Any, catalogue: Catalogue, scorecard: Scorecard) -> None:
    """A date without data is its own state; stale cells make a run partial (when configured)."""
    start, end = _period(job.config.grain, job.day)
    if data_in_period(wh, catalogue, start, end) == 0:
        last = end - timedelta(days=1)
        span = start.isoformat() if start == last else f"{start.isoformat()} … {last.isoformat()}"
        newest = scorecard.meta.get("newest_data")
        why = f"no data for {span}: nothing was observed in the date's period" + (
            f" (the newest data is from {newest})" if newest else ""
        )
        job.log.warning("no_data", why)
        job.problem("no_data", why)
    stale = scorecard.counts().get("stale", 0)
    if stale:
        job.problem("partial", f"{stale} stale cell(s): a feed stopped delivering", cause="stale")


def _log_alerts(job: _Job, catalogue: Catalogue) -> None:
    """The alerts: one line each up to ``log_alert_lines``, totals per domain above (values to the
    indicator's decimals)."""
    config, log, found = job.config, job.log, job.alerts
    new = int(found.get_column("is_new").sum()) if found.height else 0
    log.info(
        "alerts",
        f"alerts: {found.height} at or above {config.alerts_min}, {new} new since the previous run",
        alerts=found.height,
        new=new,
    )
    if not found.height:
        return
    if found.height > config.log_alert_lines:
        totals = (
            found.group_by("domain")
            .agg(
                pl.len().alias("n"),
                (pl.col("status") == "red").sum().alias("red"),
                (pl.col("status") == "orange").sum().alias("orange"),
                pl.col("is_new").sum().alias("new"),
            )
            .sort(["n", "domain"], descending=[True, False])
        )
        for row in totals.iter_rows(named=True):
            log.info(
                "alerts",
                f"  {row['domain']}: {row['n']} ({row['red']} red, {row['orange']} orange; {row['new']} new)",
                domain=row["domain"],
                alerts=row["n"],
            )
        log.info(
            "alerts",
            f"  (more than {config.log_alert_lines} alerts: totals per domain; the outputs list each)",
        )
        return
    digits = Digits.of_catalogue(catalogue.indicators)
    for row in found.iter_rows(named=True):
        streak = f", {row['streak']} {config.grain}(s)" if row["streak"] else ""
        flag = "NEW " if row["is_new"] else ""
        value = fmt_value(row["value"], row["unit"], digits.of(row["indicator_id"]))
        log.info(
            "alert",
            f"  {flag}{status_label(row['status'], 'en')} {row['indicator_id']} @ {row['area_id']} "
            f"{pick(row, 'area_name', config.lang)}: {value}{streak}",
            indicator_id=row["indicator_id"],
            area_id=row["area_id"],
            status=row["status"],
            value=row["value"],
            new=bool(row["is_new"]),
        )


def _notify(
    job: _Job, wh: Any, catalogue: Catalogue, scorecard: Scorecard, sleep: Callable[[float], None]
) -> None:
    """Queue this run's digests with the notifiers' new state (one transaction), then deliver every
    pending digest."""
    from citykpi.notify import outbox, plan_digests

    config, log = job.config, job.log
    now = clock.now(config.tz)
    plans, changes = plan_digests(
        wh, scorecard, catalogue, config.notifiers, now=now, lang=config.lang,
        min_colour=config.alerts_min, remind_after=config.remind_after,
    )  # fmt: skip
    job.changes = changes
    if not config.notifiers:
        return
    outbox.queue(wh, plans, now=now)
    for plan in plans:
        held = f"; held back: {plan.silenced} silenced, {plan.inhibited} by a red parent area"
        if plan.digest is None:
            log.info("notify", f"notify {plan.notifier}: nothing new{held}", notifier=plan.notifier)
            continue
        told = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in plan.counts.items() if n)
        log.info(
            "notify",
            f"notify {plan.notifier}: queued digest {plan.digest.key} ({told}){held}",
            notifier=plan.notifier,
            digest=plan.digest.key,
        )
    for name, n in outbox.orphaned(wh, config.notifiers).items():
        log.warning(
            "notify",
            f"outbox: {n} undelivered digest(s) for notifier {name!r}, which the config no longer declares",
        )
    for report in outbox.deliver_pending(wh, config.notifiers, now=lambda: clock.now(config.tz), sleep=sleep):
        d = report.delivery
        status = "delivered" if d.delivered else "undelivered"
        job.notifications.append(
            NotificationResult(
                report.notifier, report.digest_key, status, report.items, d.attempts, d.error, report.run_id
            )
        )
        where = next(n.target() for n in config.notifiers if n.name == report.notifier)
        if d.delivered:
            log.info(
                "deliver",
                f"delivered {report.digest_key} to {report.notifier} ({where}) after {d.attempts} attempt(s)",
                notifier=report.notifier,
                digest=report.digest_key,
                attempts=d.attempts,
            )
        else:
            log.warning(
                "deliver",
                f"could not deliver {report.digest_key} to {report.notifier} after {d.attempts} attempt(s): "
                f"{d.error}; it stays in the outbox and is retried next run",
                notifier=report.notifier,
                digest=report.digest_key,
                attempts=d.attempts,
            )
    waiting = outbox.pending(wh)
    declared = {n.name for n in config.notifiers}
    stuck = [r for r in waiting.iter_rows(named=True) if r["notifier"] in declared]
    if stuck:
        job.problem(
            "partial", f"{len(stuck)} digest(s) not delivered yet (retried next run)", cause="undelivered"
        )


def _write_outputs(job: _Job, scorecard: Scorecard) -> None:
    """The dated scorecard files (atomically); a failure is a failed run."""
    config, log = job.config, job.log
    config.outputs.folder.mkdir(parents=True, exist_ok=True)
    junit = junit_fail_on(config.fail_on)
    for fmt in config.outputs.formats:
        target = config.outputs.path_for(fmt, job.day, config.grain)
        job.outputs.append(write_scorecard(scorecard, fmt, target, lang=config.lang, fail_on=junit))
        log.info("output", f"wrote {target}", path=str(target), format=fmt)


# --- the dry run ---------------------------------------------------------------------------------


def _dry_run(job: _Job) -> None:
    """What a run would do, from what is stored now; nothing is written, moved, recorded or sent."""
    from citykpi.catalogue import load_catalogue
    from citykpi.engine.evaluate import evaluate
    from citykpi.engine.runs import previous_run
    from citykpi.render.views import alerts
    from citykpi.warehouse import Warehouse, readers

    config, log = job.config, job.log
    try:
        catalogue = load_catalogue(config.catalogue)
        _check_inbox_options(config, catalogue)
        log.info("catalogue", f"catalogue {config.catalogue}: {len(catalogue.indicators)} indicators")
        exists = config.database.exists()
        wh = (
            Warehouse.open(config.database, read_only=True, create=False, wait=config.wait)
            if exists
            else None
        )
    except DatabaseBusyError as exc:
        raise RunBusyError(exc.message, hint=exc.hint) from None
    except CitykpiError as exc:
        job.error = exc
        job.problem("failed", _one_line(exc))
        log.error("failed", f"failed: {_one_line(exc)}")
        return
    try:
        for inbox in config.inboxes:
            scan = _scan(job, inbox, time.sleep)
            target = "observations" if inbox.format != "source" else f"src_{inbox.source}"
            for path in scan.ready:
                sha = readers.scan_file(path, text=False).sha256
                rows = (
                    wh.con.execute(
                        "SELECT batch_id FROM batches WHERE sha256 = ? AND target = ? AND status = 'loaded' "
                        "ORDER BY batch_id DESC LIMIT 1",
                        [sha, target],
                    ).fetchall()
                    if wh is not None
                    else []
                )
                status = "unchanged" if rows else "would_load"
                note = f"already loaded as batch {rows[0][0]}" if rows else "new: would be ingested"
                job.files.append(
                    IngestedFile(path, status, message=note, batch_id=int(rows[0][0]) if rows else None)
                )
                log.info("ingest", f"would ingest {path.name}: {note}", file=path.name, status=status)
        if wh is None:
            log.info("evaluate", f"no database yet at {config.database}: the run would create it")
        else:
            scorecard = evaluate(
                wh, catalogue, as_of=job.day, grain=config.grain, persist=False, history_levels=()
            )
            job.scorecard = scorecard
            log.info(
                "evaluate",
                f"would evaluate {job.day} from the data stored now (the inbox files above not included): "
                f"{counts_line(scorecard.counts(), 'en')}",
            )
            _assess_data(job, wh, catalogue, scorecard)
            previous = previous_run(wh, job.day, catalogue, grain=config.grain)
            job.previous_run_id = previous.run_id if previous is not None else None
            job.alerts = alerts(scorecard, previous, min_colour=config.alerts_min)
            _log_alerts(job, catalogue)
            _dry_notify(job, wh, catalogue, scorecard)
        for fmt in config.outputs.formats:
            path = config.outputs.path_for(fmt, job.day, config.grain)
            log.info("output", f"would write {path}", path=str(path), format=fmt)
    finally:
        if wh is not None:
            wh.close()


def _dry_notify(job: _Job, wh: Any, catalogue: Catalogue, scorecard: Scorecard) -> None:
    from citykpi.notify import outbox, plan_digests

    config, log = job.config, job.log
    declared = {n.name for n in config.notifiers}
    for row in outbox.pending(wh).iter_rows(named=True):
        if row["notifier"] in declared:
            job.notifications.append(
                NotificationResult(
                    row["notifier"], row["digest_key"], "would_retry", int(row["items"]), run_id=row["run_id"]
                )
            )
            log.info(
                "notify", f"would retry {row['digest_key']} to {row['notifier']} ({row['items']} item(s))"
            )
    plans, changes = plan_digests(
        wh, scorecard, catalogue, config.notifiers, now=clock.now(config.tz), lang=config.lang,
        min_colour=config.alerts_min, remind_after=config.remind_after,
    )  # fmt: skip
    job.changes = changes
    for plan in plans:
        if plan.digest is None:
            log.info("notify", f"would tell {plan.notifier} nothing new")
            continue
        job.notifications.append(
            NotificationResult(plan.notifier, plan.digest.key, "would_send", plan.digest.items)
        )
        told = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in plan.counts.items() if n)
        log.info("notify", f"would send {plan.notifier} a digest: {told}", notifier=plan.notifier)
