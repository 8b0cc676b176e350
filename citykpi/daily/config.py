"""The daily job's configuration: ``citykpi.toml`` read and checked (see :mod:`citykpi.cron` for
the file, docs/daily-run.md for every key), and the output paths a run may write."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from citykpi.catalogue.model import GRAINS, SEVERITY
from citykpi.daily import clock
from citykpi.daily.health import PARTIAL_CAUSES
from citykpi.daily.inbox import Inbox
from citykpi.daily.log import LOG_FORMATS
from citykpi.engine.scorecard import FAIL_ON
from citykpi.errors import ConfigError, UsageError
from citykpi.notify.notifiers import NotifierConfig, parse_notifiers
from citykpi.render.exporters import EXTENSIONS, FORMATS

if TYPE_CHECKING:
    from citykpi.render.targets import Protected

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
_OUTPUT_KEYS = {"folder", "formats", "name", "quality"}
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
    #: formats of the data-quality report written beside the scorecard (none by default)
    quality: tuple[str, ...] = ()

    def path_for(self, fmt: str, as_of: date, grain: str) -> Path:
        """The output file of ``fmt`` for a date."""
        stem = self.name.format(date=as_of.isoformat(), grain=grain)
        return self.folder / f"{stem}{EXTENSIONS[fmt]}"

    def quality_path_for(self, fmt: str, as_of: date, grain: str) -> Path:
        """The data-quality report file of ``fmt`` for a date."""
        return self.folder / f"quality-{as_of.isoformat()}-{grain}{EXTENSIONS[fmt]}"


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
    #: the config file itself, when read from one (no report may replace it)
    source: Path | None = None

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
        return replace(cls.from_mapping(data, base=path.parent, origin=str(path)), source=path)

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
        except UsageError as exc:
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
    quality = out.get("quality", [])
    if isinstance(quality, str):
        quality = [quality]
    if not isinstance(quality, list) or not all(isinstance(f, str) and f in FORMATS for f in quality):
        raise fail(f"outputs.quality must be a list of formats ({', '.join(FORMATS)})")
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
            quality=tuple(dict.fromkeys(quality)),
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


def _protected(config: RunConfig) -> tuple[Protected, ...]:
    """What no report of a run may replace: the database (with its WAL and lock), the catalogue, the
    areas file, the data files an inbox would read, and the config file itself."""
    from citykpi.render.targets import Protected, protected_files

    protected = protected_files(
        database=config.database,
        catalogues=[config.catalogue],
        inputs=[config.areas] if config.areas is not None else [],
        input_folders=[(inbox.path, _inbox_suffixes(inbox)) for inbox in config.inboxes],
    )
    if config.source is not None:
        protected += (Protected(config.source, "the run's config file"),)
    return protected


def check_outputs(config: RunConfig, day: date) -> None:
    """Refuse, before the job starts, a report path that may not be written (the rules of
    :mod:`citykpi.render.targets`, without --force): the database, its WAL or lock, the catalogue,
    the areas file, a data file an inbox would read, the config file; a link, folder or device; an
    existing file that is not a previous report of its format. The run report and JSONL notifiers
    are checked too.

    Raises:
        ConfigError: naming the path and the reason (exit 78: the config is wrong, not the command).
    """
    from citykpi.render.targets import OutputTargetError, check_output_target

    protected = _protected(config)
    targets = [
        (config.outputs.path_for(fmt, day, config.grain), fmt, "[outputs]") for fmt in config.outputs.formats
    ]
    targets += [
        (config.outputs.quality_path_for(fmt, day, config.grain), fmt, "[outputs] quality")
        for fmt in config.outputs.quality
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


def check_report_target(config: RunConfig, path: Path, *, force: bool = False) -> None:
    """Refuse a run report path given on the command line (``run --report FILE``) that may not be
    written: one of the run's protected files (:func:`check_outputs`), a name that is not ``.json``,
    a link, folder or device, or an existing file that is not a previous run report (its start
    names ``"schema": "citykpi.run_report"``), unless ``force``. ``-`` (print it) never reaches here.

    Raises:
        OutputTargetError: a usage error (exit 2), naming the path and the reason.
    """
    from citykpi.render.targets import OutputTargetError, check_output_target, refuse_protected

    protected = _protected(config)
    refuse_protected(path, protected)
    if path.suffix.lower() != ".json":
        raise OutputTargetError(
            f"--report {path} must name a .json file (the run report is JSON)",
            hint="e.g. --report out/runs/today.json, or --report - to print it",
        )
    check_output_target(path, protected=protected, force=force, kind="json")
    if not force and _foreign_json(path):
        raise OutputTargetError(
            f"will not replace {path}: it exists and is not a previous run report "
            '(a JSON file without "schema": "citykpi.run_report"); pass --force to replace it'
        )


def _foreign_json(path: Path) -> bool:
    """True for an existing, non-empty file whose start is not a run report's."""
    from citykpi.daily.report import REPORT_SCHEMA

    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return bool(head) and f'"schema": "{REPORT_SCHEMA}"'.encode() not in head
