"""Early-warning settings: an indicator's or a domain's ``forecast``, ``domains:`` and ``incidents:``."""

from __future__ import annotations

from typing import Any

from citykpi.catalogue import model
from citykpi.catalogue.parser.reader import (
    DOMAIN_KEYS,
    DOMAIN_RE,
    DOMAIN_REQUIRED,
    FORECAST_KEYS,
    GROUP_ID_RE,
    INCIDENT_KEYS,
    INCIDENT_REQUIRED,
    _entity_id,
    _Reader,
    describe,
)
from citykpi.catalogue.parser.values import _date
from citykpi.catalogue.yamlsafe import YMap
from citykpi.errors import Location


def _forecast_block(r: _Reader, raw: Any, loc: Location, what: str) -> model.Forecast | None:
    """``forecast: true|false`` or a mapping of ``enabled``, ``window``, ``horizon``, ``min_r2``."""
    if isinstance(raw, bool):
        return model.Forecast(enabled=raw, loc=loc)
    fm = r.mapping(raw, loc, f"forecast of {what}")
    if fm is None:
        return None
    f_what = f"forecast of {what}"
    r.keys(fm, FORECAST_KEYS, (), f_what)
    enabled = r.boolean(fm, "enabled", f_what, True)
    window = r.integer(fm, "window", f_what)
    if window is not None and not 3 <= window <= model.MAX_FORECAST_WINDOW:
        r.report(
            "CK013",
            f"window of {f_what} must be between 3 and {model.MAX_FORECAST_WINDOW} periods",
            fm.value_loc("window"),
            "a trend needs at least three points",
        )
        window = None
    horizon = r.integer(fm, "horizon", f_what)
    if horizon is not None and not 1 <= horizon <= model.MAX_FORECAST_HORIZON:
        r.report(
            "CK013",
            f"horizon of {f_what} must be between 1 and {model.MAX_FORECAST_HORIZON} periods",
            fm.value_loc("horizon"),
        )
        horizon = None
    min_r2 = r.number(fm, "min_r2", f_what)
    if min_r2 is not None and not 0 <= min_r2 <= 1:
        r.report("CK013", f"min_r2 of {f_what} must be between 0 and 1", fm.value_loc("min_r2"))
        min_r2 = None
    baseline = r.integer(fm, "baseline", f_what)
    if baseline is not None and not model.MIN_BASELINE_PERIODS <= baseline <= model.MAX_BASELINE_PERIODS:
        r.report(
            "CK013",
            f"baseline of {f_what} must be between {model.MIN_BASELINE_PERIODS} and "
            f"{model.MAX_BASELINE_PERIODS} comparable periods",
            fm.value_loc("baseline"),
        )
        baseline = None
    return model.Forecast(
        enabled=enabled, window=window, horizon=horizon, min_r2=min_r2, baseline=baseline, loc=fm.loc
    )


def _forecast(r: _Reader, m: YMap, what: str) -> model.Forecast | None:
    """The ``forecast`` key of an indicator or a domain (None when absent)."""
    if "forecast" not in m or m["forecast"] is None:
        return None
    return _forecast_block(r, m["forecast"], m.value_loc("forecast"), what)


def _domain(r: _Reader, m: YMap) -> None:
    did = _entity_id(r, m, DOMAIN_RE, "domain", "environment")
    what = f"domain {did}"
    r.keys(m, DOMAIN_KEYS, DOMAIN_REQUIRED, what)
    r.out.domains.append(
        model.DomainSettings(
            id=did,
            forecast=_forecast(r, m, what),
            description=r.text(m, "description", what).strip(),
            loc=m.loc,
        )
    )


def _incident(r: _Reader, m: YMap) -> None:
    xid = _entity_id(r, m, GROUP_ID_RE, "incident", "flood_2025_07")
    what = f"incident {xid}"
    r.keys(m, INCIDENT_KEYS, INCIDENT_REQUIRED, what)
    start = _date(r, m, "start", what)
    end = _date(r, m, "end", what)
    if start is not None and end is not None and end < start:
        r.report("CK013", f"{what} ends ({end}) before it starts ({start})", m.value_loc("end"))
        return
    indicators = tuple(i for i, _ in r.text_list(m, "indicators", what))
    domains = tuple(d for d, _ in r.text_list(m, "domains", what))
    areas: list[str] = []
    if "areas" in m:
        raw = m["areas"]
        items = raw if isinstance(raw, list) else [raw]
        for item in items:
            if isinstance(item, str):
                areas.append(item)
            else:
                hint = f'quote it: "{item}"' if isinstance(item, int) and not isinstance(item, bool) else None
                r.report(
                    "CK012",
                    f"areas of {what} must be area ids (text), not {describe(item)}",
                    m.value_loc("areas"),
                    hint,
                )
    if start is None or end is None:
        return
    r.out.incidents.append(
        model.Incident(
            id=xid,
            start=start,
            end=end,
            indicators=indicators,
            domains=domains,
            areas=tuple(areas),
            description=r.text(m, "description", what).strip(),
            loc=m.loc,
        )
    )
