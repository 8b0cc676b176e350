"""Which earlier periods a period is compared with in a seasonal baseline (basis ``anomaly``).

Pure calendar logic, no SQL: for each period to be scored, its comparable earlier periods ("peers"),
newest first. The engine loads the result as the small table ``ck_peer`` (reporting grain, period,
peer, rank) and joins it with the series: nothing here runs per series.

* **day** — the same weekday and the same kind of day in China's official calendar
  (:mod:`citykpi.engine.holidays`): a working Monday with earlier working Mondays, a rest Saturday
  with earlier rest Saturdays, a public holiday with earlier holidays (whatever the weekday), an
  adjusted working day (调休) with earlier working days (whatever the weekday).
* **week, month, quarter, year** — the previous periods.
* **hour, 15min** — the same time of day on the latest earlier days of the same kind: working days
  (adjusted ones included) with working days, rest days with rest days, public holidays with public
  holidays. A city's hours follow the working week more than the weekday (the 08:00 rush of a
  Tuesday is a Monday's), and keeping the peers days rather than weeks back keeps the hours a
  baseline reads to a few days' worth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta

from citykpi.engine.calendar import MIN_DATE, shift
from citykpi.engine.holidays import DayType, day_type

#: How far back a day looks for its comparable days (a holiday's previous holidays lie months back).
MAX_DAY_LOOKBACK = 400


def day_class(d: date) -> str:
    """The comparison class of a day: ``holiday``, ``workday`` (adjusted working days), or the kind of
    day with its weekday (``workday-1`` … ``weekend-7``, ISO weekday)."""
    t = day_type(d)
    if t is DayType.HOLIDAY:
        return "holiday"
    if t is DayType.ADJUSTED:
        return "workday"
    return f"{t.value}-{d.isoweekday()}"


def _compatible(target: str, candidate: str) -> bool:
    """Whether a day of class ``candidate`` may serve as a peer of a day of class ``target``."""
    if target == "workday":  # an adjusted working day: any working day
        return candidate == "workday" or candidate.startswith("workday-")
    return candidate == target


def day_peers(d: date, n: int) -> list[date]:
    """The ``n`` latest earlier days comparable with ``d``, newest first (fewer near the calendar's start)."""
    target = day_class(d)
    out: list[date] = []
    step = 7 if target.startswith(("workday-", "weekend-")) else 1
    cand = d - timedelta(days=step)
    oldest = max(MIN_DATE, d - timedelta(days=MAX_DAY_LOOKBACK))
    while len(out) < n and cand >= oldest:
        if _compatible(target, day_class(cand)):
            out.append(cand)
        cand -= timedelta(days=step)
    return out


def _kind_of_day(d: date) -> str:
    """``work`` (a working day, adjusted ones too), ``rest`` or ``holiday``: how a sub-daily
    period's day is compared."""
    t = day_type(d)
    if t is DayType.HOLIDAY:
        return "holiday"
    return "rest" if t is DayType.WEEKEND else "work"


def time_of_day_peers(d: date, n: int) -> list[date]:
    """The ``n`` latest earlier days of the same kind as ``d`` (see :func:`_kind_of_day`), newest
    first: the days whose same time of day a sub-daily period is compared with."""
    target = _kind_of_day(d)
    out: list[date] = []
    cand = d - timedelta(days=1)
    oldest = max(MIN_DATE, d - timedelta(days=MAX_DAY_LOOKBACK))
    while len(out) < n and cand >= oldest:
        if _kind_of_day(cand) == target:
            out.append(cand)
        cand -= timedelta(days=1)
    return out


def _previous_periods(grain: str) -> Callable[[date, int], list[date]]:
    def peers(d: date, n: int) -> list[date]:
        return [p for k in range(1, n + 1) if (p := shift(grain, d, -k)) >= MIN_DATE]

    return peers


#: Reporting grain → (period start, how many) → comparable earlier period starts, newest first.
PEER_RULES: dict[str, Callable[[date, int], list[date]]] = {
    "15min": time_of_day_peers,
    "hour": time_of_day_peers,
    "day": day_peers,
    "week": _previous_periods("week"),
    "month": _previous_periods("month"),
    "quarter": _previous_periods("quarter"),
    "year": _previous_periods("year"),
}


def peer_rows(grain: str, periods: Iterable[date], n: int) -> list[tuple[str, date, date, int]]:
    """Rows (grain, period, peer, rank) of the peer table for ``periods`` at ``grain``, ranks 1 … n.

    In a sub-daily evaluation the period starts of every grain are date-times (midnight for a day or
    coarser one): their peers are found by their dates and given the same time of day.
    """
    rule = PEER_RULES[grain]
    rows: list[tuple[str, date, date, int]] = []
    for d in sorted(set(periods)):
        if isinstance(d, datetime):
            t = d.time()
            peers: list[date] = [datetime.combine(p, t) for p in rule(d.date(), n)]
        else:
            peers = rule(d, n)
        rows.extend((grain, d, p, rank) for rank, p in enumerate(peers, start=1))
    return rows
