"""An indicator's alert lifecycle (``alert:``): the colour that sets it, the clear level, and how long
each must hold. Only the shape is read here; how the clear level sits against the bands is a
validator rule (CK036)."""

from __future__ import annotations

import re

from citykpi.catalogue import model
from citykpi.catalogue.parser.reader import ALERT_KEYS, _Reader, describe, parse_duration
from citykpi.catalogue.parser.thresholds import _pair
from citykpi.catalogue.yamlsafe import YMap, YSeq

_READINGS_RE = re.compile(r"^\s*(\d+)\s*readings?\s*$")
#: The colours an alert may be set at (green is no alert).
ALERT_COLOURS: tuple[str, ...] = model.COLOURS[1:]
#: Most readings a ``for`` may count (a longer wait is a duration).
MAX_READINGS = 10_000


def parse_persistence(raw: object) -> model.Persistence | None:
    """``15m``, ``2h``, ``3 readings`` → :class:`Persistence`; None when malformed."""
    if not isinstance(raw, str):
        return None
    m = _READINGS_RE.match(raw)
    if m:
        n = int(m.group(1))
        return model.Persistence(readings=n) if 1 <= n <= MAX_READINGS else None
    duration = parse_duration(raw)
    if duration is None or duration.total_seconds() < 0:
        return None
    return model.Persistence(duration=duration)


def _alert(r: _Reader, m: YMap, what: str, iid: str) -> model.AlertRule | None:
    am = r.section(m, "alert", f"alert of {what}")
    if am is None:
        return None
    a_what = f"alert of {what}"
    r.keys(am, ALERT_KEYS, (), a_what)
    r.remember(iid, am, "alert.")
    colour = r.choice(am, "colour", ALERT_COLOURS, a_what, "red")
    clear: float | None = None
    clear_range: tuple[float, float] | None = None
    if "clear" in am:
        raw = am["clear"]
        if isinstance(raw, YSeq):
            pair = _pair(r, raw, am.value_loc("clear"), f"clear of {a_what}", allow_null=False)
            clear_range = (float(pair[0]), float(pair[1])) if pair else None
        else:
            clear = r.number(am, "clear", a_what)
    persistence: dict[str, model.Persistence] = {}
    for key in ("for", "clear_for"):
        if key not in am:
            continue
        got = parse_persistence(am[key])
        if got is None:
            r.report(
                "CK013" if isinstance(am[key], str) else "CK012",
                f"'{key}' of {a_what} must be a duration like 15m or 2h, or a count like '3 readings', "
                f"not {describe(am[key])}",
                am.value_loc(key),
            )
            continue
        persistence[key] = got
    return model.AlertRule(
        colour=colour,
        clear=clear,
        clear_range=clear_range,
        for_=persistence.get("for", model.Persistence()),
        clear_for=persistence.get("clear_for", model.Persistence()),
        loc=am.loc,
    )
