"""Data-quality declarations: feeds (``feeds:``), consistency rules (``consistency:``), and the keys
that say when data is due (an indicator's ``due``, a source's ``timeliness``), which rows of a source
count (``filter``) and the fixed base period of a ``change_base_period`` basis."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from citykpi.catalogue import model
from citykpi.catalogue.diagnostics import did_you_mean
from citykpi.catalogue.parser.reader import (
    FEED_KEYS,
    FEED_REQUIRED,
    RULE_KEYS,
    RULE_REQUIRED,
    SOURCE_ID_RE,
    TIMELINESS_KEYS,
    _entity_id,
    _Reader,
    describe,
    parse_due,
    parse_duration,
)
from citykpi.catalogue.yamlsafe import YMap, YSeq

#: Feeds and rules have their own id namespaces: their locations are remembered under these prefixes.
FEED_PREFIX = "feed:"
RULE_PREFIX = "rule:"
#: ``tolerance: "1%"``: relative to the total.
_PERCENT_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*%\s*$")
_MONTH_RE = re.compile(r"^\s*(\d{4})-(\d{2})\s*$")
_YEAR_RE = re.compile(r"^\s*(\d{4})\s*$")


def due_of(r: _Reader, m: YMap, what: str) -> timedelta | None:
    """``due``: a duration after the period's end, or ``"HH:MM next day"``."""
    if "due" not in m:
        return None
    raw = m["due"]
    due = parse_due(raw) if isinstance(raw, str) else None
    if due is None or due < timedelta(0):
        r.report(
            "CK013" if isinstance(raw, str) else "CK012",
            f"due of {what} must be a duration after the period's end like 36h or 2d, or a time like "
            f"'09:00 next day', not {raw!r}",
            m.value_loc("due"),
        )
        return None
    return due


def base_period_of(r: _Reader, m: YMap, what: str) -> date | None:
    """``base_period``: a year (2010), a month ('2010-06') or a date → its first day."""
    if "base_period" not in m:
        return None
    raw = m["base_period"]
    found: date | None = None
    if isinstance(raw, datetime):
        found = raw.date()
    elif isinstance(raw, date):
        found = raw
    elif isinstance(raw, int) and not isinstance(raw, bool) and 1900 <= raw <= 2199:
        found = date(raw, 1, 1)
    elif isinstance(raw, str):
        text = raw.strip()
        try:
            if y := _YEAR_RE.match(text):
                found = date(int(y.group(1)), 1, 1)
            elif mo := _MONTH_RE.match(text):
                found = date(int(mo.group(1)), int(mo.group(2)), 1)
            else:
                found = date.fromisoformat(text)
        except ValueError:
            found = None
    if found is None or not date(1900, 1, 1) <= found <= date(2199, 12, 31):
        r.report(
            "CK013" if isinstance(raw, str | int) else "CK012",
            f"base_period of {what} must be a year (2010), a month ('2010-06') or a date between 1900 and "
            f"2199, not {raw!r}",
            m.value_loc("base_period"),
        )
        return None
    return found


def timeliness_of(r: _Reader, m: YMap, what: str) -> model.Timeliness | None:
    """A source's ``timeliness: {done, due | within}`` (columns checked by the validator)."""
    tm = r.section(m, "timeliness", f"timeliness of {what}")
    if tm is None:
        return None
    t_what = f"timeliness of {what}"
    r.keys(tm, TIMELINESS_KEYS, (), t_what)
    within: timedelta | None = None
    if "within" in tm:
        raw = tm["within"]
        within = parse_duration(raw) if isinstance(raw, str) else None
        if within is None:
            r.report(
                "CK013",
                f"within of {t_what} must be a duration like 24h or 3d, not {raw!r}",
                tm.value_loc("within"),
            )
    due = r.text(tm, "due", t_what) or None
    if due is None and within is None and "within" not in tm:
        r.report(
            "CK011",
            f"{t_what} needs due (a column with each record's due time) or within (a duration after its time)",
            tm.loc,
        )
    if due is not None and "within" in tm:
        r.report("CK013", f"{t_what} gives both due and within: keep one", tm.key_loc("within"))
    return model.Timeliness(done=r.text(tm, "done", t_what) or None, due=due, within=within)


def _text_map(r: _Reader, m: YMap, key: str, what: str) -> dict[str, str]:
    """A mapping of text to text (``columns``, ``set``, ``date_formats``…); scalars become text."""
    if key not in m or m[key] is None:
        return {}
    tm = r.mapping(m[key], m.value_loc(key), f"'{key}' of {what}")
    out: dict[str, str] = {}
    for k, v in (tm or {}).items():
        assert tm is not None
        if v is None and key == "dimensions":
            out[str(k)] = ""  # a dimension only a recode sets
        elif isinstance(v, bool) or not isinstance(v, str | int | float):
            r.report("CK012", f"'{key}.{k}' of {what} must be text, not {describe(v)}", tm.value_loc(k))
        else:
            out[str(k)] = str(v)
    return out


def _feed(r: _Reader, m: YMap) -> None:
    fid = _entity_id(r, m, SOURCE_ID_RE, "feed", "air_quality_daily")
    what = f"feed {fid}"
    r.keys(m, FEED_KEYS, FEED_REQUIRED, what)
    r.remember(FEED_PREFIX + fid, m)
    fmt = r.choice(m, "format", model.FEED_FORMATS, what, "long")
    dims: dict[str, str] = {}
    if isinstance(m.get("dimensions"), YSeq):  # dimensions: [sex, age]: every one set by a recode
        dims = {name: "" for name, _ in r.text_list(m, "dimensions", what)}
    else:
        dims = _text_map(r, m, "dimensions", what)
    recode: dict[str, dict[str, dict[str, str]]] = {}
    if "recode" in m and m["recode"] is not None:
        rm = r.mapping(m["recode"], m.value_loc("recode"), f"recode of {what}")
        for column, table in (rm or {}).items():
            assert rm is not None
            tm = r.mapping(table, rm.value_loc(column), f"recode.{column} of {what}")
            if tm is None:
                continue
            values: dict[str, dict[str, str]] = {}
            for value, target in tm.items():
                if isinstance(target, str):  # value: id — sets the field the column is mapped to
                    values[str(value)] = {"": target}
                    continue
                if r.mapping(target, tm.value_loc(value), f"recode.{column}.{value!r} of {what}") is not None:
                    values[str(value)] = _text_map(r, tm, value, f"recode.{column} of {what}")
            recode[str(column)] = values
    missing = tuple(t for t, _ in r.text_list(m, "missing", what))  # '' is a token too: an empty cell
    r.out.feeds.append(
        model.Feed(
            id=fid,
            description=r.text(m, "description", what).strip(),
            provider=r.text(m, "provider", what).strip(),
            format=fmt,
            source=r.text(m, "source", what) or None,
            indicators=tuple(i for i, _ in r.text_list(m, "indicators", what)),
            files=tuple(f for f, _ in r.text_list(m, "files", what)),
            columns=_text_map(r, m, "columns", what),
            wide=_text_map(r, m, "wide", what),
            constants=_text_map(r, m, "set", what),
            missing=missing,
            dimensions=dims,
            recode=recode,
            date_formats=_text_map(r, m, "date_formats", what),
            due=due_of(r, m, what),
            loc=m.loc,
        )
    )


def _tolerance(r: _Reader, m: YMap, what: str) -> tuple[float, bool]:
    if "tolerance" not in m:
        return 0.0, False
    raw = m["tolerance"]
    if isinstance(raw, str) and (pm := _PERCENT_RE.match(raw)):
        return float(pm.group(1)), True
    if isinstance(raw, int | float) and not isinstance(raw, bool) and raw >= 0:
        return float(raw), False
    r.report(
        "CK013" if isinstance(raw, str | int | float) else "CK012",
        f"tolerance of {what} must be a number >= 0 or a percentage like '1%', not {raw!r}",
        m.value_loc("tolerance"),
    )
    return 0.0, False


def _rule(r: _Reader, m: YMap) -> None:
    rid = _entity_id(r, m, SOURCE_ID_RE, "consistency rule", "population_by_sex")
    what = f"consistency rule {rid}"
    r.keys(m, RULE_KEYS, RULE_REQUIRED, what)
    r.remember(RULE_PREFIX + rid, m)
    kind = r.choice(m, "kind", model.RULE_KINDS, what, "sum")
    method = r.choice(m, "method", model.RULE_METHODS, what, "") or None
    tolerance, relative = _tolerance(r, m, what)
    level = r.text(m, "level", what) or None
    if level is not None and level not in model.LEVELS:
        hint = did_you_mean(level, model.LEVELS) or f"levels are {', '.join(model.LEVELS)}"
        r.report("CK081", f"unknown level '{level}' in {what}", m.value_loc("level"), hint)
        level = None
    rule = model.ConsistencyRule(
        id=rid,
        kind=kind,
        description=r.text(m, "description", what).strip(),
        total=r.text(m, "total", what) or None,
        parts=tuple(p for p, _ in r.text_list(m, "parts", what)),
        indicator=r.text(m, "indicator", what) or None,
        dimension=r.text(m, "dimension", what) or None,
        values=tuple(v for v, _ in r.text_list(m, "values", what)),
        level=level,
        method=method,
        tolerance=tolerance,
        relative=relative,
        loc=m.loc,
    )
    _rule_shape(r, m, rule, what)
    r.out.consistency.append(rule)


#: What each rule kind needs and may not have, as YAML keys.
_NEEDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sum": (("total", "parts"), ("indicator", "dimension", "values", "level", "method")),
    "disaggregation": (("indicator", "dimension"), ("total", "parts", "level", "method")),
    "area_rollup": (("indicator",), ("total", "parts", "dimension", "values")),
}


def _rule_shape(r: _Reader, m: YMap, rule: model.ConsistencyRule, what: str) -> None:
    """CK092: the keys a rule's kind needs are there, and none it cannot use."""
    if rule.kind not in _NEEDS or "kind" not in m:
        return
    needs, refuses = _NEEDS[rule.kind]
    for key in needs:
        if key not in m:
            r.report("CK092", f"{what} of kind {rule.kind} needs '{key}'", m.loc, _HINTS[rule.kind])
    for key in refuses:
        if key in m:
            r.report(
                "CK092", f"{what} of kind {rule.kind} does not use '{key}'", m.key_loc(key), _HINTS[rule.kind]
            )
    if rule.kind == "sum" and "parts" in m and len(rule.parts) < 2:
        r.report("CK092", f"{what} needs at least two parts to add up", m.value_loc("parts"), _HINTS["sum"])


_HINTS = {
    "sum": "write total: <indicator> and parts: [<indicator>, <indicator>, …]",
    "disaggregation": "write indicator: <indicator>, dimension: <name> and optionally values: [...]",
    "area_rollup": "write indicator: <indicator> and optionally level: district, method: sum",
}
