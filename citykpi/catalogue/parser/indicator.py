"""Indicators: identity, where and how often, and the parts parsed by the sibling modules."""

from __future__ import annotations

from datetime import timedelta

from citykpi import vocab
from citykpi.catalogue import model
from citykpi.catalogue.diagnostics import did_you_mean
from citykpi.catalogue.parser.early import _forecast
from citykpi.catalogue.parser.quality import base_period_of, due_of
from citykpi.catalogue.parser.reader import (
    DOMAIN_RE,
    ID_RE,
    INDICATOR_KEYS,
    INDICATOR_REQUIRED,
    _entity_id,
    _levels,
    _Reader,
    parse_duration,
)
from citykpi.catalogue.parser.thresholds import _apply_scale, _scale, _thresholds, _valid_range
from citykpi.catalogue.parser.values import _rollup, _target, _value
from citykpi.catalogue.yamlsafe import YMap

#: Longest max_staleness accepted: an evaluation looks back twice as far, which must stay well
#: inside the calendar (see ``citykpi.engine.calendar.MIN_DATE``).
MAX_STALENESS = timedelta(days=3660)


def _indicator(r: _Reader, m: YMap) -> None:
    before = r.errors
    iid = _entity_id(r, m, ID_RE, "indicator", "env.air.aqi")
    if r.errors != before:
        r.mark_broken(iid, "id")
    what = f"indicator {iid}"
    r.keys(m, INDICATOR_KEYS, INDICATOR_REQUIRED, what)
    if any(key not in INDICATOR_KEYS for key in m):
        r.mark_broken(iid, "keys")  # a misspelt key may be the missing thresholds or description
    # a missing required key breaks that field: its default is not checked as if it were written
    r.mark_broken(iid, *(key for key in INDICATOR_REQUIRED if key not in m))
    r.remember(iid, m)
    with r.field(iid, "name"):
        name = r.name(m, "name", what)
    with r.field(iid, "kind"):
        kind = r.choice(m, "kind", model.KINDS, what, "kpi")
    with r.field(iid, "domain"):
        domain = r.text(m, "domain", what)
        if domain and not DOMAIN_RE.match(domain):
            r.report(
                "CK013",
                f"domain '{domain}' of {what} must be a lower-case word like 'environment'",
                m.value_loc("domain"),
            )
    with r.field(iid, "unit"):
        unit = r.text(m, "unit", what)
        if "unit" in m and isinstance(m["unit"], str) and unit not in vocab.UNITS:
            hint = did_you_mean(unit, vocab.UNITS.names()) or "see the unit list in docs/catalogue.md"
            r.report("CK080", f"unknown unit '{unit}' in {what}", m.value_loc("unit"), hint)
    with r.field(iid, "levels"):
        levels = _levels(r, m, what)
    with r.field(iid, "frequency"):
        frequency = r.choice(m, "frequency", model.FREQUENCIES, what, "daily", rule="CK082")
    with r.field(iid, "direction"):
        direction = r.choice(m, "direction", model.DIRECTIONS, what, "lower_is_better")
    # An unknown direction is reported once: the bands are then read without judging their shape.
    known_direction: str | None = None if "direction" in r.out.broken.get(iid, ()) else direction
    with r.field(iid, "tier"):
        tier = r.choice(m, "tier", model.TIERS, what, "guidance")
    with r.field(iid, "change"):
        change = r.choice(m, "change", model.CHANGE_UNITS, what, "") or None
    with r.field(iid, "tags"):
        tags = tuple(t for t, _ in r.text_list(m, "tags", what))
    staleness: timedelta | None = None
    with r.field(iid, "max_staleness"):
        staleness = _staleness(r, m, what)
    with r.field(iid, "valid_range"):
        valid_range = _valid_range(r, m, what)
    with r.field(iid, "decimals"):
        decimals = r.integer(m, "decimals", what, 1)
        if not 0 <= decimals <= 6:
            r.report("CK013", f"decimals of {what} must be between 0 and 6", m.value_loc("decimals"))
            decimals = 1
    with r.field(iid, "scale"):
        scale = _scale(r, m, what)
    with r.field(iid, "thresholds"):
        thresholds = _thresholds(r, m, what, known_direction, iid)
    if scale and known_direction is not None:
        with r.field(iid, "scale", "thresholds"):
            thresholds = _apply_scale(r, m, what, direction, scale, thresholds)
    with r.field(iid, "rollup"):
        rollup = _rollup(r, m, what, iid)
    with r.field(iid, "target"):
        target = _target(r, m, what)
    with r.field(iid, "value"):
        value = _value(r, m, what, iid)
    with r.field(iid, "due"):
        due = due_of(r, m, what)
    with r.field(iid, "base_period"):
        base_period = base_period_of(r, m, what)
    with r.field(iid, "forecast"):
        forecast = _forecast(r, m, what)
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
            forecast=forecast,
            loc=m.loc,
            due=due,
            base_period=base_period,
        )
    )


def _staleness(r: _Reader, m: YMap, what: str) -> timedelta | None:
    if "max_staleness" not in m:
        return None
    raw = m["max_staleness"]
    staleness = parse_duration(raw) if isinstance(raw, str) else None
    if staleness is None or staleness <= timedelta(0):
        r.report(
            "CK013" if isinstance(raw, str) else "CK012",
            f"max_staleness of {what} must be a duration like 30m, 6h, 2d or 1w, not {raw!r}",
            m.value_loc("max_staleness"),
        )
        return None
    if staleness > MAX_STALENESS:
        r.report(
            "CK013",
            f"max_staleness of {what} is {str(raw).strip()}, over the limit of {MAX_STALENESS.days}d (ten years)",
            m.value_loc("max_staleness"),
            "a feed silent for longer is no longer a feed; remove max_staleness or shorten it",
        )
        return None
    return staleness
