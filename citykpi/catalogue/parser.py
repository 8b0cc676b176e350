"""YAML documents → catalogue model objects, collecting every problem in one pass.

The parser checks structure, types, closed vocabularies and expression syntax of each file on its
own; rules that need the whole catalogue (ids across files, references, cycles, thresholds vs
direction…) live in ``validate.py``. A broken field is reported and replaced by a harmless
default so that parsing goes on; entities with errors are remembered in ``ParsedFile.broken`` so
the validator does not pile follow-on errors on them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from citykpi import vocab
from citykpi.catalogue import model
from citykpi.catalogue.bands import scale_problems, scale_to_bands
from citykpi.catalogue.diagnostics import Diagnostic, diagnostic, did_you_mean
from citykpi.catalogue.expressions import parse_condition, parse_expression
from citykpi.catalogue.yamlsafe import YMap, YSeq
from citykpi.errors import ExpressionError, Location

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

FILE_KEYS = ("schema_version", "indicators", "indices", "groups", "sources")
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
)
INDICATOR_REQUIRED = ("id", "name", "kind", "domain", "unit", "levels", "frequency", "direction")
CUT_COLOURS = model.COLOURS[1:]
THRESHOLD_KEYS = ("basis", *model.COLOURS, "inclusive", "for_periods", "limit", "overrides")
OVERRIDE_KEYS = ("level", "area", *model.COLOURS, "inclusive")
SCALE_STEP_KEYS = ("label", "upto", "colour")
ROLLUP_KEYS = ("time", "where", "area", "weight")
TARGET_KEYS = ("value", "due", "baseline", "baseline_date", "method")
VALUE_KINDS = model.VALUE_KINDS
OBSERVED_KEYS = ("with_parts", "scale")
RATIO_KEYS = ("numerator", "denominator", "scale")
FORMULA_KEYS = ("expression", "inputs")
MEASURE_KEYS = ("source", "numerator", "denominator", "filter", "scale")
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
)
INDEX_REQUIRED = ("id", "name", "components")
NORMALISE_KEYS = ("method", "low", "high")
COMPONENT_KEYS = ("ref", "weight", "normalise")
INDEX_BAND_KEYS = (*CUT_COLOURS, "inclusive")
GROUP_KEYS = ("id", "name", "description", "areas")
GROUP_REQUIRED = ("id", "name", "areas")
SOURCE_KEYS = ("id", "description", "columns", "time_column", "area_column", "key", "formats")
SOURCE_REQUIRED = ("id", "columns", "time_column", "area_column")

T = TypeVar("T")


@dataclass
class ParsedFile:
    """What one catalogue file defines, with locations for the validator."""

    file: str
    schema_version: int = 1
    indicators: list[model.Indicator] = field(default_factory=list)
    indices: list[model.CompositeIndex] = field(default_factory=list)
    groups: list[model.AreaGroup] = field(default_factory=list)
    sources: list[model.SourceTable] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: (entity id, dotted path) -> (mapping, key) holding that value, e.g. ("a.b", "value.numerator");
    #: resolved to a Location only when a rule reports on it (see :meth:`loc`).
    locs: dict[tuple[str, str], tuple[YMap, str]] = field(default_factory=dict)
    #: Ids of entities that had errors here (the validator skips their local rules).
    broken: set[str] = field(default_factory=set)


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

    def mapping(self, value: Any, loc: Location, what: str) -> YMap | None:
        if isinstance(value, YMap):
            return value
        self.report("CK012", f"{what} must be a mapping (key: value), not {describe(value)}", loc)
        return None

    def sequence(self, value: Any, loc: Location, what: str) -> YSeq | None:
        if isinstance(value, YSeq):
            return value
        self.report("CK012", f"{what} must be a list, not {describe(value)}", loc)
        return None

    def remember(self, eid: str, m: YMap, prefix: str = "") -> None:
        """Record where each key of ``m`` stands, as field ``prefix + key`` of entity ``eid``."""
        for key in m:
            self.out.locs[(eid, prefix + key)] = (m, key)

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
    return timedelta(**{_DURATION_UNIT[m.group(2)]: int(m.group(1))})


def parse_document(data: Any, file: str) -> ParsedFile:
    """Turn one loaded YAML document into model objects and diagnostics.

    Args:
        data: the document from :mod:`citykpi.catalogue.yamlsafe` (``None`` for an empty file).
        file: the file name used in locations.

    Returns:
        A :class:`ParsedFile`; it never raises for a bad document.
    """
    out = ParsedFile(file)
    r = _Reader(out)
    where = Location(file, 1, 1)
    if data is None:
        r.report("CK102", "the file is empty", where)
        return out
    doc = r.mapping(data, where, "a catalogue file")
    if doc is None:
        return out
    r.keys(doc, FILE_KEYS, (), "a catalogue file")
    if "schema_version" in doc:
        version = r.integer(doc, "schema_version", "the file", 1)
        if version not in SCHEMA_VERSIONS:
            r.report(
                "CK014",
                f"schema_version {version} is not supported (this citykpi reads {', '.join(map(str, SCHEMA_VERSIONS))})",
                doc.value_loc("schema_version"),
                "upgrade citykpi or write the file for schema_version 1",
            )
        else:
            out.schema_version = version
    sections: tuple[tuple[str, Callable[[_Reader, YMap], None]], ...] = (
        ("indicators", _indicator),
        ("indices", _index),
        ("groups", _group),
        ("sources", _source),
    )
    found = False
    for key, parse_one in sections:
        if key not in doc or doc[key] is None:
            continue
        seq = r.sequence(doc[key], doc.value_loc(key), f"'{key}'")
        if seq is None:
            continue
        for i, item in enumerate(seq):
            found = True
            m = r.mapping(item, seq.item_loc(i), f"each entry of '{key}'")
            if m is not None:
                parse_one(r, m)
    if not found and not r.errors:
        r.report("CK102", "the file defines no indicators, indices, groups or sources", where)
    return out


# --- indicators ----------------------------------------------------------------------------


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


def _indicator(r: _Reader, m: YMap) -> None:
    before = r.errors
    iid = _entity_id(r, m, ID_RE, "indicator", "env.air.aqi")
    what = f"indicator {iid}"
    r.keys(m, INDICATOR_KEYS, INDICATOR_REQUIRED, what)
    r.remember(iid, m)
    name = r.name(m, "name", what)
    kind = r.choice(m, "kind", model.KINDS, what, "kpi")
    domain = r.text(m, "domain", what)
    if domain and not DOMAIN_RE.match(domain):
        r.report(
            "CK013",
            f"domain '{domain}' of {what} must be a lower-case word like 'environment'",
            m.value_loc("domain"),
        )
    unit = r.text(m, "unit", what)
    if "unit" in m and isinstance(m["unit"], str) and unit not in vocab.UNITS:
        hint = did_you_mean(unit, vocab.UNITS.names()) or "see the unit list in docs/catalogue.md"
        r.report("CK080", f"unknown unit '{unit}' in {what}", m.value_loc("unit"), hint)
    levels = _levels(r, m, what)
    frequency = r.choice(m, "frequency", model.FREQUENCIES, what, "daily", rule="CK082")
    direction = r.choice(m, "direction", model.DIRECTIONS, what, "lower_is_better")
    tier = r.choice(m, "tier", model.TIERS, what, "guidance")
    change = r.choice(m, "change", model.CHANGE_UNITS, what, "") or None
    tags = tuple(t for t, _ in r.text_list(m, "tags", what))
    staleness: timedelta | None = None
    if "max_staleness" in m:
        raw = m["max_staleness"]
        staleness = parse_duration(raw) if isinstance(raw, str) else None
        if staleness is None or staleness <= timedelta(0):
            r.report(
                "CK013" if isinstance(raw, str) else "CK012",
                f"max_staleness of {what} must be a duration like 30m, 6h, 2d or 1w, not {raw!r}",
                m.value_loc("max_staleness"),
            )
            staleness = None
    valid_range = _valid_range(r, m, what)
    decimals = r.integer(m, "decimals", what, 1)
    if not 0 <= decimals <= 6:
        r.report("CK013", f"decimals of {what} must be between 0 and 6", m.value_loc("decimals"))
        decimals = 1
    scale = _scale(r, m, what)
    thresholds = _thresholds(r, m, what, direction, iid)
    if scale:
        thresholds = _apply_scale(r, m, what, direction, scale, thresholds)
    rollup = _rollup(r, m, what, iid)
    target = _target(r, m, what)
    value = _value(r, m, what, iid)
    if before != r.errors:
        r.out.broken.add(iid)
    r.out.indicators.append(
        model.Indicator(
            id=iid,
            name=name,
            kind=kind,
            domain=domain,
            unit=unit,
            levels=levels,
            frequency=frequency,
            direction=direction,
            thresholds=thresholds,
            value=value,
            rollup=rollup,
            description=r.text(m, "description", what).strip(),
            owner=r.text(m, "owner", what).strip(),
            tier=tier,
            tags=tags,
            max_staleness=staleness,
            valid_range=valid_range,
            change=change,
            scale=scale,
            target=target,
            decimals=decimals,
            loc=m.loc,
        )
    )


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


def _pair(r: _Reader, raw: Any, loc: Location, what: str, allow_null: bool) -> tuple[Any, Any] | None:
    if not isinstance(raw, YSeq) or len(raw) != 2:
        r.report("CK012", f"{what} must be a list of two numbers [low, high], not {describe(raw)}", loc)
        return None
    out: list[float | None] = []
    for i, item in enumerate(raw):
        if item is None and allow_null:
            out.append(None)
            continue
        num = _as_number(item)
        if num is None or not math.isfinite(num):
            r.report("CK012", f"{what} must hold numbers, not {describe(item)}", raw.item_loc(i))
            return None
        out.append(num)
    low, high = out
    if low is not None and high is not None and low > high:
        r.report("CK035", f"{what} [{low:g}, {high:g}] has its low end above its high end", loc)
        return None
    return (low, high)


def _valid_range(r: _Reader, m: YMap, what: str) -> tuple[float | None, float | None] | None:
    if "valid_range" not in m:
        return None
    pair = _pair(r, m["valid_range"], m.value_loc("valid_range"), f"valid_range of {what}", allow_null=True)
    return pair


def _scale(r: _Reader, m: YMap, what: str) -> tuple[model.ScaleStep, ...]:
    if "scale" not in m:
        return ()
    seq = r.sequence(m["scale"], m.value_loc("scale"), f"the scale of {what}")
    if seq is None:
        return ()
    steps: list[model.ScaleStep] = []
    for i, item in enumerate(seq):
        sm = r.mapping(item, seq.item_loc(i), f"a scale step of {what}")
        if sm is None:
            continue
        step_what = f"scale step {i + 1} of {what}"
        r.keys(sm, SCALE_STEP_KEYS, ("label", "colour"), step_what)
        label = r.name(sm, "label", step_what) if "label" in sm else model.Text("", "")
        colour = r.choice(sm, "colour", model.COLOURS, step_what, "green")
        upto = r.number(sm, "upto", step_what)
        steps.append(model.ScaleStep(label, colour, upto))
    return tuple(steps)


def _apply_scale(
    r: _Reader,
    m: YMap,
    what: str,
    direction: str,
    scale: tuple[model.ScaleStep, ...],
    thresholds: model.Thresholds,
) -> model.Thresholds:
    """Turn an own scale into the thresholds' cut points (overrides keep their own changes)."""
    if thresholds.bands.cuts or thresholds.bands.ranges:
        r.report(
            "CK034",
            f"{what} has both a scale and threshold cut points",
            m.value_loc("thresholds"),
            "keep one: the scale implies the cut points",
        )
        return thresholds
    tm = m.get("thresholds")
    if isinstance(tm, YMap) and "inclusive" in tm:
        r.report(
            "CK034",
            f"{what} has a scale, which fixes the edges itself: each 'upto' belongs to its step",
            tm.key_loc("inclusive"),
            "remove inclusive",
        )
    problems = scale_problems(scale, direction)
    for rule, message in problems:
        r.report(rule, f"{message} ({what})", m.value_loc("scale"))
    if problems:
        return thresholds
    bands = scale_to_bands(scale, direction)
    overrides = tuple(
        replace(o, bands=model.BandSet(cuts={**bands.cuts, **o.bands.cuts}, inclusive=bands.inclusive))
        for o in thresholds.overrides
    )
    return replace(thresholds, bands=bands, overrides=overrides)


def _cuts(
    r: _Reader, m: YMap, what: str, direction: str, colours: Collection[str]
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    cuts: dict[str, float] = {}
    ranges: dict[str, tuple[float, float]] = {}
    for colour in model.COLOURS:
        if colour not in m or colour not in colours:
            continue
        raw, loc = m[colour], m.value_loc(colour)
        if direction == "band":
            if colour == "red":
                r.report("CK033", f"red needs no range in {what}: a value outside every range is red", loc)
                continue
            if not isinstance(raw, YSeq):
                r.report(
                    "CK033",
                    f"{colour} of {what} must be a range [low, high] for direction band, not {describe(raw)}",
                    loc,
                    f"write {colour}: [low, high]",
                )
                continue
            pair = _pair(r, raw, loc, f"the {colour} range of {what}", allow_null=False)
            if pair is not None:
                ranges[colour] = (float(pair[0]), float(pair[1]))
        else:
            if colour == "green":
                r.report(
                    "CK033",
                    f"green needs no cut point in {what}: green is everything better than the first cut",
                    loc,
                    "remove green",
                )
                continue
            if isinstance(raw, YSeq):
                r.report(
                    "CK033",
                    f"{colour} of {what} is a range, but ranges are only for direction band",
                    loc,
                    f"write {colour}: <number> (where {colour} starts)",
                )
                continue
            num = _as_number(raw)
            if num is None or not math.isfinite(num):
                r.report("CK012", f"{colour} of {what} must be a number, not {describe(raw)}", loc)
                continue
            cuts[colour] = num
    return cuts, ranges


def _thresholds(r: _Reader, m: YMap, what: str, direction: str, iid: str) -> model.Thresholds:
    if "thresholds" not in m:
        return model.Thresholds()
    tm = r.mapping(m["thresholds"], m.value_loc("thresholds"), f"thresholds of {what}")
    if tm is None:
        return model.Thresholds()
    t_what = f"thresholds of {what}"
    r.keys(tm, THRESHOLD_KEYS, (), t_what)
    r.remember(iid, tm, "thresholds.")
    basis = r.choice(tm, "basis", vocab.BASES.names(), t_what, "absolute")
    inclusive = r.boolean(tm, "inclusive", t_what, False)
    for_periods = r.integer(tm, "for_periods", t_what, 1)
    if for_periods < 1 or for_periods > 366:
        r.report("CK013", f"for_periods of {what} must be between 1 and 366", tm.value_loc("for_periods"))
        for_periods = 1
    limit = r.number(tm, "limit", t_what)
    if limit is not None and limit <= 0:
        r.report("CK013", f"limit of {what} must be positive", tm.value_loc("limit"))
        limit = None
    cuts, ranges = _cuts(r, tm, t_what, direction, model.COLOURS)
    bands = model.BandSet(cuts=cuts, ranges=ranges, inclusive=inclusive)
    overrides: list[model.Override] = []
    if "overrides" in tm:
        seq = r.sequence(tm["overrides"], tm.value_loc("overrides"), f"overrides of {what}")
        for i, item in enumerate(seq or ()):
            assert seq is not None
            om = r.mapping(item, seq.item_loc(i), f"an override of {what}")
            if om is None:
                continue
            o_what = f"override {i + 1} of {what}"
            r.keys(om, OVERRIDE_KEYS, (), o_what)
            level = area = None
            if "level" in om:
                level = r.choice(om, "level", model.LEVELS, o_what, "", rule="CK081") or None
            if "area" in om:
                raw = om["area"]
                if isinstance(raw, str):
                    area = raw
                else:
                    hint = (
                        f'quote it: "{raw}"' if isinstance(raw, int) and not isinstance(raw, bool) else None
                    )
                    r.report(
                        "CK012",
                        f"area of {o_what} must be text (an area id), not {describe(raw)}",
                        om.value_loc("area"),
                        hint,
                    )
            if ("level" in om) == ("area" in om):
                r.report(
                    "CK011" if "level" not in om else "CK013",
                    f"{o_what} needs exactly one of 'level' or 'area'",
                    om.loc,
                )
            o_cuts, o_ranges = _cuts(r, om, o_what, direction, model.COLOURS)
            if not o_cuts and not o_ranges:
                r.report("CK011", f"{o_what} changes no colour", om.loc, "add e.g. red: <number>")
            merged = model.BandSet(
                cuts={**cuts, **o_cuts},
                ranges={**ranges, **o_ranges},
                inclusive=r.boolean(om, "inclusive", o_what, inclusive),
            )
            overrides.append(model.Override(merged, level=level, area=area, loc=om.loc))
    return model.Thresholds(
        basis=basis,
        bands=bands,
        for_periods=for_periods,
        limit=limit,
        overrides=tuple(overrides),
        loc=tm.loc,
    )


def _rollup(r: _Reader, m: YMap, what: str, iid: str) -> model.Rollup:
    if "rollup" not in m:
        return model.Rollup()
    rm = r.mapping(m["rollup"], m.value_loc("rollup"), f"rollup of {what}")
    if rm is None:
        return model.Rollup()
    r_what = f"rollup of {what}"
    r.keys(rm, ROLLUP_KEYS, (), r_what)
    r.remember(iid, rm, "rollup.")
    time = r.choice(rm, "time", vocab.TIME_ROLLUPS.names(), r_what, "last")
    area = r.choice(rm, "area", vocab.AREA_ROLLUPS.names(), r_what, "none")
    weight = r.text(rm, "weight", r_what) or None
    where: model.Condition | None = None
    if "where" in rm:
        raw = rm["where"]
        try:
            where = parse_condition(raw)
        except ExpressionError as exc:
            r.report(
                "CK070",
                f"where of {what}: {exc.message}",
                rm.value_loc("where"),
                'write e.g. where: "value <= 100"',
            )
    return model.Rollup(time=time, where=where, area=area, weight=weight)


def _date(r: _Reader, m: YMap, key: str, what: str) -> date | None:
    if key not in m:
        return None
    raw = m[key]
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            pass
    r.report("CK012", f"'{key}' of {what} must be a date like 2025-12-31, not {raw!r}", m.value_loc(key))
    return None


def _target(r: _Reader, m: YMap, what: str) -> model.Target | None:
    if "target" not in m or m["target"] is None:
        return None
    tm = r.mapping(m["target"], m.value_loc("target"), f"target of {what}")
    if tm is None:
        return None
    t_what = f"the target of {what}"
    r.keys(tm, TARGET_KEYS, ("value",), t_what)
    value = r.number(tm, "value", t_what)
    due = _date(r, tm, "due", t_what)
    if "due" not in tm:
        r.report("CK060", f"{t_what} has no due date", tm.loc, "add due: YYYY-MM-DD")
    baseline = r.number(tm, "baseline", t_what)
    baseline_date = _date(r, tm, "baseline_date", t_what)
    method = r.choice(tm, "method", model.TARGET_METHODS, t_what, "end_value")
    if value is None:
        return None
    return model.Target(
        value=value,
        due=due or date.max,
        baseline=baseline,
        baseline_date=baseline_date,
        method=method,
        loc=tm.loc,
    )


def _expression(
    r: _Reader,
    m: YMap,
    key: str,
    what: str,
    *,
    names: Collection[str] | None,
    aggregates: bool = False,
    boolean: bool | None = None,
) -> str:
    if key not in m:
        return ""
    raw = m[key]
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        r.report(
            "CK012", f"'{key}' of {what} must be an expression (text), not {describe(raw)}", m.value_loc(key)
        )
        return ""
    text = str(raw)
    try:
        parse_expression(text, names=names, aggregates=aggregates, boolean=boolean)
    except ExpressionError as exc:
        r.report("CK070", f"{key} of {what}: {exc.message}", m.value_loc(key))
    return text


def _id_ref(r: _Reader, m: YMap, key: str, what: str) -> str:
    raw = m.get(key)
    if not isinstance(raw, str):
        if key in m:
            r.report(
                "CK012",
                f"'{key}' of {what} must be an indicator id (text), not {describe(raw)}",
                m.value_loc(key),
            )
        return ""
    return raw


def _value(r: _Reader, m: YMap, what: str, iid: str) -> model.ValueSource:
    if "value" not in m:
        return model.Observed()
    raw, loc = m["value"], m.value_loc("value")
    locs = r.out.locs
    if raw == "observed" or raw is None:
        return model.Observed()
    if isinstance(raw, str):
        hint = (
            did_you_mean(raw, VALUE_KINDS)
            or "write value: observed, or a mapping such as value: {from: <id>}"
        )
        r.report("CK083", f"unknown value kind '{raw}' in {what}", loc, hint)
        return model.Observed()
    vm = r.mapping(raw, loc, f"value of {what}")
    if vm is None:
        return model.Observed()
    kinds = [k for k in vm if k in VALUE_KINDS]
    allowed = (*VALUE_KINDS, "inputs") if "formula" in vm else VALUE_KINDS
    r.keys(vm, allowed, (), f"value of {what}")
    if len(kinds) != 1:
        r.report(
            "CK011" if not kinds else "CK013",
            f"value of {what} needs exactly one of {', '.join(VALUE_KINDS)}"
            + (f" (found {', '.join(kinds)})" if kinds else ""),
            vm.loc,
        )
        return model.Observed()
    kind = kinds[0]
    body, body_loc = vm[kind], vm.value_loc(kind)
    v_what = f"the {kind} value of {what}"
    locs[(iid, f"value.{kind}")] = (vm, kind)
    if kind == "observed":
        if body is None or body is True:
            return model.Observed()
        om = r.mapping(body, body_loc, v_what)
        if om is None:
            return model.Observed()
        r.keys(om, OBSERVED_KEYS, (), v_what)
        return model.Observed(
            with_parts=r.boolean(om, "with_parts", v_what, False), scale=_scale_factor(r, om, v_what)
        )
    if kind == "from":
        if not isinstance(body, str):
            r.report("CK012", f"'from' of {what} must be an indicator id, not {describe(body)}", body_loc)
            return model.Observed()
        return model.FromSeries(body)
    if kind == "ratio":
        rm = r.mapping(body, body_loc, v_what)
        if rm is None:
            return model.Observed()
        r.keys(rm, RATIO_KEYS, ("numerator", "denominator"), v_what)
        r.remember(iid, rm, "value.")
        return model.Ratio(
            numerator=_id_ref(r, rm, "numerator", v_what),
            denominator=_id_ref(r, rm, "denominator", v_what),
            scale=_scale_factor(r, rm, v_what),
        )
    if kind == "formula":
        fm: YMap = vm
        if isinstance(body, YMap):  # value: {formula: {expression: …, inputs: …}}
            fm = body
            r.keys(fm, FORMULA_KEYS, ("expression", "inputs"), v_what)
            expr_key = "expression"
            if "inputs" in vm:
                r.report(
                    "CK010",
                    f"unknown key 'inputs' in value of {what}",
                    vm.key_loc("inputs"),
                    "move it inside formula",
                )
        else:
            expr_key = "formula"
            if "inputs" not in vm:
                r.report("CK011", f"{v_what} is missing the required key 'inputs'", vm.loc)
        inputs: dict[str, str] = {}
        if "inputs" in fm:
            locs[(iid, "value.inputs")] = (fm, "inputs")
            im = r.mapping(fm["inputs"], fm.value_loc("inputs"), f"inputs of {what}")
            for name, ref in (im or {}).items():
                assert im is not None
                if not COLUMN_RE.match(name):
                    r.report(
                        "CK013", f"input name '{name}' of {what} must be a plain identifier", im.key_loc(name)
                    )
                elif not isinstance(ref, str):
                    r.report(
                        "CK012",
                        f"input '{name}' of {what} must be an indicator id, not {describe(ref)}",
                        im.value_loc(name),
                    )
                else:
                    inputs[name] = ref
                    locs[(iid, f"value.inputs.{name}")] = (im, name)
        names = list(inputs) if "inputs" in fm else None
        text = _expression(r, fm, expr_key, what, names=names, boolean=False)
        locs[(iid, "value.formula")] = (fm, expr_key)
        return model.Formula(expression=text, inputs=inputs)
    # measure
    mm = r.mapping(body, body_loc, v_what)
    if mm is None:
        return model.Observed()
    r.keys(mm, MEASURE_KEYS, ("source", "numerator"), v_what)
    r.remember(iid, mm, "value.")
    source = mm.get("source")
    if "source" in mm and not isinstance(source, str):
        r.report(
            "CK012",
            f"source of {what} must be a source id (text), not {describe(source)}",
            mm.value_loc("source"),
        )
    # Column names are checked by the validator, which knows the source's declared columns.
    numerator = _expression(r, mm, "numerator", what, names=None, aggregates=True, boolean=False)
    denominator = _expression(r, mm, "denominator", what, names=None, aggregates=True, boolean=False) or None
    filt = _expression(r, mm, "filter", what, names=None, boolean=True) or None
    return model.Measure(
        source=source if isinstance(source, str) else "",
        numerator=numerator,
        denominator=denominator,
        filter=filt,
        scale=_scale_factor(r, mm, v_what),
    )


def _scale_factor(r: _Reader, m: YMap, what: str) -> float:
    value = r.number(m, "scale", what, 1.0)
    if value == 0:
        r.report("CK013", f"scale of {what} must not be 0", m.value_loc("scale"))
        return 1.0
    return float(value)


# --- indices, groups, sources --------------------------------------------------------------


def _normalisation(r: _Reader, raw: Any, loc: Location, what: str) -> model.Normalisation | None:
    if isinstance(raw, str):  # normalise: colour_score
        if raw not in model.NORMALISATIONS:
            hint = did_you_mean(raw, model.NORMALISATIONS) or f"one of: {', '.join(model.NORMALISATIONS)}"
            r.report("CK083", f"unknown normalisation '{raw}' in {what}", loc, hint)
            return None
        return model.Normalisation(method=raw)
    nm = r.mapping(raw, loc, f"normalise of {what}")
    if nm is None:
        return None
    n_what = f"normalise of {what}"
    r.keys(nm, NORMALISE_KEYS, ("method",), n_what)
    method = r.choice(nm, "method", model.NORMALISATIONS, n_what, "colour_score")
    low = r.number(nm, "low", n_what)
    high = r.number(nm, "high", n_what)
    if method == "goalposts" and (low is None or high is None):
        r.report(
            "CK051",
            f"goalposts normalisation in {what} needs both low (score 0) and high (score 100)",
            nm.loc,
        )
    elif method == "goalposts" and low == high:
        r.report("CK051", f"goalposts low and high of {what} must differ", nm.loc)
    elif method != "goalposts" and (low is not None or high is not None):
        r.report("CK013", f"low/high only apply to goalposts normalisation ({what})", nm.loc)
    return model.Normalisation(method=method, low=low, high=high)


def _index(r: _Reader, m: YMap) -> None:
    before = r.errors
    xid = _entity_id(r, m, ID_RE, "index", "index.operation")
    what = f"index {xid}"
    r.keys(m, INDEX_KEYS, INDEX_REQUIRED, what)
    r.remember(xid, m)
    name = r.name(m, "name", what)
    normalise = model.Normalisation()
    if "normalise" in m:
        normalise = _normalisation(r, m["normalise"], m.value_loc("normalise"), what) or normalise
    aggregation = r.choice(m, "aggregation", model.AGGREGATIONS, what, "linear")
    cap = r.number(m, "cap_on_red", what)
    if cap is not None and not 0 <= cap <= 100:
        r.report(
            "CK013", f"cap_on_red of {what} must be a score between 0 and 100", m.value_loc("cap_on_red")
        )
        cap = None
    coverage = r.number(m, "min_coverage", what, 0.5)
    if not 0 < coverage <= 1:
        r.report(
            "CK013", f"min_coverage of {what} must be above 0 and at most 1", m.value_loc("min_coverage")
        )
        coverage = 0.5
    levels = _levels(r, m, what, default=("city", "district"))
    components: list[model.Component] = []
    if "components" in m:
        seq = r.sequence(m["components"], m.value_loc("components"), f"components of {what}")
        if seq is not None and not seq:
            r.report("CK011", f"{what} has no components", m.value_loc("components"))
        for i, item in enumerate(seq or ()):
            assert seq is not None
            c_loc = seq.item_loc(i)
            if isinstance(item, str):  # components: [a.b, c.d]
                components.append(model.Component(ref=item, loc=c_loc))
                continue
            cm = r.mapping(item, c_loc, f"a component of {what}")
            if cm is None:
                continue
            c_what = f"component {i + 1} of {what}"
            r.keys(cm, COMPONENT_KEYS, ("ref",), c_what)
            ref = _id_ref(r, cm, "ref", c_what)
            weight = r.number(cm, "weight", c_what, 1.0)
            c_norm = (
                _normalisation(r, cm["normalise"], cm.value_loc("normalise"), c_what)
                if "normalise" in cm
                else None
            )
            components.append(model.Component(ref=ref, weight=weight, normalise=c_norm, loc=cm.loc))
            r.out.locs[(xid, f"components.{i}.weight")] = (cm, "weight")
    bands: model.BandSet | None = None
    if "bands" in m:
        bm = r.mapping(m["bands"], m.value_loc("bands"), f"bands of {what}")
        if bm is not None:
            r.keys(bm, INDEX_BAND_KEYS, (), f"bands of {what}")
            cuts, _ = _cuts(r, bm, f"bands of {what}", "higher_is_better", CUT_COLOURS)
            bands = model.BandSet(cuts=cuts, inclusive=r.boolean(bm, "inclusive", f"bands of {what}", False))
    if before != r.errors:
        r.out.broken.add(xid)
    extra: dict[str, Any] = {} if bands is None else {"bands": bands}
    r.out.indices.append(
        model.CompositeIndex(
            id=xid,
            name=name,
            components=tuple(components),
            description=r.text(m, "description", what).strip(),
            normalise=normalise,
            aggregation=aggregation,
            cap_on_red=cap,
            min_coverage=coverage,
            levels=levels,
            loc=m.loc,
            **extra,
        )
    )


def _group(r: _Reader, m: YMap) -> None:
    gid = _entity_id(r, m, GROUP_ID_RE, "group", "central_urban")
    what = f"group {gid}"
    r.keys(m, GROUP_KEYS, GROUP_REQUIRED, what)
    name = r.name(m, "name", what)
    areas = r.text_list(m, "areas", what)
    seen: set[str] = set()
    for area, loc in areas:
        if area in seen:
            r.report("CK013", f"area '{area}' is listed twice in {what}", loc)
        seen.add(area)
    if "areas" in m and not areas and isinstance(m["areas"], YSeq):
        r.report("CK013", f"{what} lists no areas", m.value_loc("areas"))
    r.out.groups.append(
        model.AreaGroup(id=gid, name=name, areas=tuple(dict.fromkeys(a for a, _ in areas)), loc=m.loc)
    )


def _source(r: _Reader, m: YMap) -> None:
    sid = _entity_id(r, m, SOURCE_ID_RE, "source", "hotline_cases")
    what = f"source {sid}"
    r.keys(m, SOURCE_KEYS, SOURCE_REQUIRED, what)
    r.remember(sid, m)
    columns: dict[str, str] = {}
    if "columns" in m:
        cm = r.mapping(m["columns"], m.value_loc("columns"), f"columns of {what}")
        for col, typ in (cm or {}).items():
            assert cm is not None
            if not COLUMN_RE.match(col):
                r.report(
                    "CK013",
                    f"column name '{col}' of {what} must be a plain identifier (letters, digits, _)",
                    cm.key_loc(col),
                )
                continue
            if col in RESERVED_COLUMNS:
                r.report("CK013", f"column name '{col}' of {what} is reserved by citykpi", cm.key_loc(col))
                continue
            if not isinstance(typ, str) or typ not in model.SOURCE_COLUMN_TYPES:
                hint = (did_you_mean(typ, model.SOURCE_COLUMN_TYPES) if isinstance(typ, str) else None) or (
                    f"one of: {', '.join(model.SOURCE_COLUMN_TYPES)}"
                )
                r.report(
                    "CK083", f"unknown column type {typ!r} for '{col}' in {what}", cm.value_loc(col), hint
                )
                continue
            columns[col] = typ
        if cm is not None and not cm:
            r.report("CK011", f"{what} declares no columns", m.value_loc("columns"))
    # each read once: a wrong type is reported once
    key_col = r.text(m, "key", what) or None
    tcol, acol = r.text(m, "time_column", what), r.text(m, "area_column", what)
    for role, ref in (("time_column", tcol), ("area_column", acol), ("key", key_col)):
        if ref and columns and ref not in columns:
            hint = did_you_mean(ref, columns) or f"declared columns: {', '.join(columns)}"
            r.report("CK040", f"{role} '{ref}' of {what} is not a declared column", m.value_loc(role), hint)
    formats: dict[str, str] = {}
    if "formats" in m:
        fm = r.mapping(m["formats"], m.value_loc("formats"), f"formats of {what}")
        for col, fmt in (fm or {}).items():
            assert fm is not None
            if col not in columns or columns[col] not in ("date", "timestamp"):
                r.report(
                    "CK040",
                    f"formats: '{col}' of {what} is not a declared date or timestamp column",
                    fm.key_loc(col),
                )
            elif not isinstance(fmt, str) or "%" not in fmt:
                r.report(
                    "CK012",
                    f"format of '{col}' in {what} must be a strptime pattern such as '%m/%d/%Y %I:%M:%S %p'",
                    fm.value_loc(col),
                )
            else:
                formats[col] = fmt
    if tcol in columns and columns[tcol] not in ("date", "timestamp"):
        r.report(
            "CK012",
            f"time_column '{tcol}' of {what} must be a date or timestamp column",
            m.value_loc("time_column"),
        )
    r.out.sources.append(
        model.SourceTable(
            id=sid,
            columns=columns,
            time_column=tcol,
            area_column=acol,
            key=key_col,
            description=r.text(m, "description", what).strip(),
            formats=formats,
            loc=m.loc,
        )
    )
