"""Shared parser machinery: the keys each entity may have, ``ParsedFile`` and the ``_Reader``
that reads typed YAML values and reports problems instead of raising."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from citykpi.catalogue import model
from citykpi.catalogue.diagnostics import Diagnostic, diagnostic, did_you_mean
from citykpi.catalogue.yamlsafe import YMap, YSeq
from citykpi.errors import Location

#: The schema versions this parser reads.
SCHEMA_VERSIONS: tuple[int, ...] = (1,)

ID_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
GROUP_ID_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
SOURCE_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
COLUMN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DOMAIN_RE = re.compile(r"^[a-z][a-z0-9_]*$")
DURATION_RE = re.compile(r"^\s*(\d+)\s*(m|min|h|d|w)\s*$")
_DURATION_UNIT = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}
#: Columns every raw source table gets from ingest; a source cannot declare them.
RESERVED_COLUMNS: frozenset[str] = frozenset({"area_key", "batch_id"})

FILE_KEYS = (
    "schema_version",
    "timezone",
    "indicators",
    "indices",
    "groups",
    "sources",
    "feeds",
    "consistency",
    "domains",
    "incidents",
)
INDICATOR_KEYS = (
    "id",
    "name",
    "kind",
    "domain",
    "unit",
    "description",
    "owner",
    "tier",
    "tags",
    "levels",
    "frequency",
    "max_staleness",
    "valid_range",
    "direction",
    "scale",
    "thresholds",
    "rollup",
    "change",
    "target",
    "value",
    "decimals",
    "due",
    "base_period",
    "forecast",
    "alert",
)
INDICATOR_REQUIRED = ("id", "name", "kind", "domain", "unit", "levels", "frequency", "direction")
CUT_COLOURS = model.COLOURS[1:]
THRESHOLD_KEYS = ("basis", *model.COLOURS, "inclusive", "for_periods", "limit", "overrides", "baseline")
OVERRIDE_KEYS = ("level", "area", *model.COLOURS, "inclusive")
SCALE_STEP_KEYS = ("label", "upto", "colour")
ROLLUP_KEYS = ("time", "where", "area", "weight")
ALERT_KEYS = ("colour", "clear", "for", "clear_for")
TARGET_KEYS = ("value", "due", "baseline", "baseline_date", "method")
VALUE_KINDS = model.VALUE_KINDS
OBSERVED_KEYS = ("with_parts", "factor")
RATIO_KEYS = ("numerator", "denominator", "factor")
FORMULA_KEYS = ("expression", "inputs")
MEASURE_KEYS = ("source", "numerator", "denominator", "filter", "factor")
#: Keys renamed because they meant two things, old -> new, for the mappings inside ``value:``.
#: The old spelling is still read, with a CK108 warning. ``scale`` there is a multiplication factor
#: (× 100, per 100,000), not an own scale (the indicator's ``scale:`` steps), so it is now ``factor``.
RENAMED_VALUE_KEYS: Mapping[str, str] = {"scale": "factor"}
INDEX_KEYS = (
    "id",
    "name",
    "description",
    "components",
    "normalise",
    "aggregation",
    "cap_on_red",
    "min_coverage",
    "bands",
    "levels",
    "colour_by",
)
INDEX_REQUIRED = ("id", "name", "components")
NORMALISE_KEYS = ("method", "low", "high")
COMPONENT_KEYS = ("ref", "weight", "normalise")
INDEX_BAND_KEYS = (*CUT_COLOURS, "inclusive")
GROUP_KEYS = ("id", "name", "description", "areas")
GROUP_REQUIRED = ("id", "name", "areas")
SOURCE_KEYS = (
    "id",
    "description",
    "columns",
    "time_column",
    "area_column",
    "key",
    "formats",
    "filter",
    "owner",
    "provider_column",
    "timeliness",
)
SOURCE_REQUIRED = ("id", "columns", "time_column", "area_column")
TIMELINESS_KEYS = ("done", "due", "within")
FEED_KEYS = (
    "id",
    "description",
    "provider",
    "format",
    "source",
    "indicators",
    "files",
    "columns",
    "wide",
    "set",
    "missing",
    "dimensions",
    "recode",
    "date_formats",
    "due",
)
FEED_REQUIRED = ("id",)
RULE_KEYS = (
    "id",
    "description",
    "kind",
    "total",
    "parts",
    "indicator",
    "dimension",
    "values",
    "level",
    "method",
    "tolerance",
)
RULE_REQUIRED = ("id", "kind")
#: ``due: "09:00 next day"``: a time of day on the day after the period ends.
NEXT_DAY_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s+next\s+day\s*$")
FORECAST_KEYS = ("enabled", "window", "horizon", "min_r2", "baseline")
DOMAIN_KEYS = ("id", "description", "forecast")
DOMAIN_REQUIRED = ("id",)
INCIDENT_KEYS = ("id", "description", "start", "end", "indicators", "domains", "areas")
INCIDENT_REQUIRED = ("id", "start", "end")

T = TypeVar("T")


@dataclass
class ParsedFile:
    """What one catalogue file defines, with locations for the validator."""

    file: str
    schema_version: int = 1
    #: The city's time zone this file declares (``timezone:``), if any.
    timezone: str | None = None
    indicators: list[model.Indicator] = field(default_factory=list)
    indices: list[model.CompositeIndex] = field(default_factory=list)
    groups: list[model.AreaGroup] = field(default_factory=list)
    sources: list[model.SourceTable] = field(default_factory=list)
    feeds: list[model.Feed] = field(default_factory=list)
    consistency: list[model.ConsistencyRule] = field(default_factory=list)
    domains: list[model.DomainSettings] = field(default_factory=list)
    incidents: list[model.Incident] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: (entity id, dotted path) -> (mapping, key) holding that value, e.g. ("a.b", "value.numerator");
    #: resolved to a Location only when a rule reports on it (see :meth:`loc`).
    locs: dict[tuple[str, str], tuple[YMap, str]] = field(default_factory=dict)
    #: Entity id -> the fields of it that had errors here (top-level keys such as "thresholds" or
    #: "direction"; "keys" for an unknown key, "*" for the whole entity). The validator skips only the
    #: rules that read a broken field, so that every independent problem is still reported in one
    #: pass while a broken field causes no follow-on errors.
    broken: dict[str, set[str]] = field(default_factory=dict)


def describe(value: Any) -> str:
    """A short type name for messages ('text', 'number', 'list', …)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, datetime | date):
        return "a date"
    return type(value).__name__


class _Reader:
    """Typed access to YAML values that reports problems instead of raising."""

    def __init__(self, out: ParsedFile) -> None:
        self.out = out
        self.file = out.file
        self.errors = 0

    def report(self, rule: str, message: str, loc: Location, hint: str | None = None) -> None:
        d = diagnostic(rule, message, loc, hint)
        if d.severity == "error":
            self.errors += 1
        self.out.diagnostics.append(d)

    def mark_broken(self, eid: str, *fields: str) -> None:
        """Record that ``fields`` of entity ``eid`` had errors (see :attr:`ParsedFile.broken`)."""
        self.out.broken.setdefault(eid, set()).update(fields)

    @contextmanager
    def field(self, eid: str, *fields: str) -> Iterator[None]:
        """Mark ``fields`` of ``eid`` broken when the block inside reports an error."""
        before = self.errors
        yield
        if self.errors != before:
            self.mark_broken(eid, *fields)

    def mapping(self, value: Any, loc: Location, what: str) -> YMap | None:
        if isinstance(value, YMap):
            return value
        self.report("CK012", f"{what} must be a mapping (key: value), not {describe(value)}", loc)
        return None

    def section(self, m: YMap, key: str, what: str) -> YMap | None:
        """The mapping under ``key`` of ``m``: None when the key is absent or (reported) not a mapping."""
        if key not in m:
            return None
        return self.mapping(m[key], m.value_loc(key), what)

    def sequence(self, value: Any, loc: Location, what: str) -> YSeq | None:
        if isinstance(value, YSeq):
            return value
        self.report("CK012", f"{what} must be a list, not {describe(value)}", loc)
        return None

    def remember(self, eid: str, m: YMap, prefix: str = "") -> None:
        """Record where each key of ``m`` stands, as field ``prefix + key`` of entity ``eid``."""
        for key in m:
            self.out.locs[(eid, prefix + key)] = (m, key)

    def renamed(self, m: YMap, renames: Mapping[str, str], what: str) -> None:
        """Read deprecated spellings (old -> new) as the new key, with a CK108 warning each."""
        for old, new in renames.items():
            if old not in m:
                continue
            if new in m:
                self.report(
                    "CK013",
                    f"{what} has both '{old}' and '{new}'",
                    m.key_loc(old),
                    f"'{old}' is the deprecated spelling of '{new}': remove it",
                )
                del m[old]
                continue
            self.report(
                "CK108",
                f"'{old}' in {what} is deprecated: write '{new}'",
                m.key_loc(old),
                f"it is read as '{new}'; see the glossary in docs/design.md",
            )
            m[new] = m.pop(old)
            for marks in (m.key_marks, m.value_marks):
                if old in marks:
                    marks[new] = marks.pop(old)

    def keys(self, m: YMap, allowed: Collection[str], required: Collection[str], what: str) -> None:
        for key in m:
            if key not in allowed:
                hint = did_you_mean(key, allowed) or f"allowed keys: {', '.join(allowed)}"
                if m[key] is None and (" " in key or key[:1].isdigit() or key.endswith(")")):
                    hint = 'a comma inside {…} separates entries: quote the previous value, e.g. en: "a, b"'
                self.report("CK010", f"unknown key '{key}' in {what}", m.key_loc(key), hint)
        for key in required:
            if key not in m:
                self.report("CK011", f"{what} is missing the required key '{key}'", m.loc)

    def get(
        self,
        m: YMap,
        key: str,
        convert: Callable[[Any], T | None],
        type_name: str,
        what: str,
        default: T,
    ) -> T:
        if key not in m:
            return default
        raw = m[key]
        value = convert(raw)
        if value is None:
            self.report(
                "CK012", f"'{key}' of {what} must be {type_name}, not {describe(raw)}", m.value_loc(key)
            )
            return default
        return value

    def text(self, m: YMap, key: str, what: str, default: str = "") -> str:
        return self.get(m, key, _as_str, "text", what, default)

    def number(self, m: YMap, key: str, what: str, default: Any = None) -> Any:
        value = self.get(m, key, _as_number, "a number", what, default)
        if value is not None and value is not default and not math.isfinite(value):
            self.report("CK013", f"'{key}' of {what} must be a finite number", m.value_loc(key))
            return default
        return value

    def integer(self, m: YMap, key: str, what: str, default: Any = None) -> Any:
        return self.get(m, key, _as_int, "a whole number", what, default)

    def boolean(self, m: YMap, key: str, what: str, default: bool) -> bool:
        return self.get(m, key, _as_bool, "true or false", what, default)

    def choice(
        self, m: YMap, key: str, vocab: Collection[str], what: str, default: str, rule: str = "CK083"
    ) -> str:
        if key not in m:
            return default
        raw = m[key]
        if not isinstance(raw, str):
            self.report("CK012", f"'{key}' of {what} must be text, not {describe(raw)}", m.value_loc(key))
            return default
        if raw not in vocab:
            hint = did_you_mean(raw, vocab) or f"one of: {', '.join(vocab)}"
            self.report(rule, f"unknown {key} '{raw}' in {what}", m.value_loc(key), hint)
            return default
        return raw

    def text_list(self, m: YMap, key: str, what: str) -> tuple[tuple[str, Location], ...]:
        if key not in m:
            return ()
        raw = m[key]
        if isinstance(raw, str):  # a single item is a one-item list
            return ((raw, m.value_loc(key)),)
        seq = self.sequence(raw, m.value_loc(key), f"'{key}' of {what}")
        if seq is None:
            return ()
        items: list[tuple[str, Location]] = []
        for i, item in enumerate(seq):
            if isinstance(item, str):
                items.append((item, seq.item_loc(i)))
            else:
                hint = (
                    f'quote it: "{item}"'
                    if isinstance(item, int | float) and not isinstance(item, bool)
                    else None
                )
                self.report(
                    "CK012",
                    f"items of '{key}' in {what} must be text, not {describe(item)}",
                    seq.item_loc(i),
                    hint,
                )
        return tuple(items)

    def name(self, m: YMap, key: str, what: str) -> model.Text:
        if key not in m:
            return model.Text("", "")
        raw, loc = m[key], m.value_loc(key)
        if isinstance(raw, str):
            text = raw.strip()
            is_zh = any("\u3400" <= ch <= "\u9fff" for ch in text)
            result = model.Text(text if is_zh else "", "" if is_zh else text)
        else:
            nm = self.mapping(raw, loc, f"'{key}' of {what}")
            if nm is None:
                return model.Text("", "")
            self.keys(nm, ("zh", "en"), (), f"'{key}' of {what}")
            result = model.Text(
                self.text(nm, "zh", f"'{key}'").strip(), self.text(nm, "en", f"'{key}'").strip()
            )
        if not result.zh and not result.en:
            self.report("CK013", f"'{key}' of {what} is empty", loc)
        elif not result.zh or not result.en:
            missing = "Chinese (zh)" if not result.zh else "English (en)"
            self.report(
                "CK104", f"'{key}' of {what} has no {missing} form", loc, "write name: {zh: …, en: …}"
            )
        return result


def _as_str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _as_number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def _as_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


def _as_bool(v: Any) -> bool | None:
    return v if isinstance(v, bool) else None


def parse_duration(text: str) -> timedelta | None:
    """``<n>m|h|d|w`` (minutes, hours, days, weeks) → timedelta, or None when malformed."""
    m = DURATION_RE.match(text)
    if not m:
        return None
    try:
        return timedelta(**{_DURATION_UNIT[m.group(2)]: int(m.group(1))})
    except OverflowError:  # more days than a timedelta holds: not a duration anyone means
        return None


def parse_due(text: str) -> timedelta | None:
    """A ``due`` declaration → how long after a period's end its data must have arrived.

    ``36h``, ``2d``, ``1w`` (as ``max_staleness``), or ``"09:00 next day"`` (the end of a daily
    period is the next midnight, so that is 9 hours after it). None when malformed.
    """
    m = NEXT_DAY_RE.match(text)
    if m:
        hours, minutes = int(m.group(1)), int(m.group(2))
        if hours > 23 or minutes > 59:
            return None
        return timedelta(hours=hours, minutes=minutes)
    return parse_duration(text)


def _entity_id(r: _Reader, m: YMap, pattern: re.Pattern[str], what: str, example: str) -> str:
    if "id" not in m:
        return f"<unnamed {what} at {m.loc}>"
    raw = m["id"]
    if not isinstance(raw, str):
        r.report("CK012", f"the id of {what} must be text, not {describe(raw)}", m.value_loc("id"))
        return f"<{raw}>"
    if not pattern.match(raw):
        r.report(
            "CK021",
            f"'{raw}' is not a valid {what} id",
            m.value_loc("id"),
            f"use lower-case dotted ids like {example}",
        )
    return raw


def _levels(r: _Reader, m: YMap, what: str, default: tuple[str, ...] = ("city",)) -> tuple[str, ...]:
    if "levels" not in m:
        return default
    items = r.text_list(m, "levels", what)
    levels: list[str] = []
    for level, loc in items:
        if level not in model.LEVELS:
            hint = did_you_mean(level, model.LEVELS) or f"levels are {', '.join(model.LEVELS)}"
            r.report("CK081", f"unknown level '{level}' in {what}", loc, hint)
        elif level in levels:
            r.report("CK013", f"level '{level}' is listed twice in {what}", loc)
        else:
            levels.append(level)
    if not items and isinstance(m["levels"], YSeq):
        r.report("CK013", f"levels of {what} must name at least one level", m.value_loc("levels"))
    return tuple(sorted(levels, key=model.LEVELS.index)) or default
