"""Calendar maths of an evaluation: reporting grains, period starts, shifts and look-back windows.

Pure date arithmetic, no SQL and no catalogue flattening: which buckets an indicator needs as of a
moment at a grain. The compiler and the catalogue tables both read it.

An evaluation is as of a :class:`Moment`: the end of a day (``--date``) or an instant (``--at``).
Day and coarser grains work in dates, exactly as they always have; the sub-daily grains (``hour``,
``15min``) work in naive local date-times in the city's time zone (how the warehouse stores them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TypeVar

from citykpi.catalogue.model import (
    GRAIN_OF_FREQUENCY,
    GRAINS,
    SUBDAILY_GRAINS,
    Indicator,
)
from citykpi.errors import UsageError

_D = TypeVar("_D", date, datetime)

#: The dates an evaluation may be asked for (``--date``, ``--from``, ``--to``, ``as_of=``,
#: ``history_from=``). Look-back windows, last-year shifts and history reach a few centuries at most
#: (the longest look-back is 2 × max_staleness, history at most 5,000 periods), so within this range
#: the calendar maths stays far from the ends of Python's and DuckDB's calendars; outside it a date is
#: a usage error, never an overflow.
MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(2199, 12, 31)


def supported_date(what: str, d: date) -> date:
    """``d`` itself when it is within :data:`MIN_DATE` … :data:`MAX_DATE`.

    Raises:
        UsageError: naming ``what`` (e.g. ``--date``) and the supported range.
    """
    if not MIN_DATE <= d <= MAX_DATE:
        raise UsageError(
            f"{what} {d.isoformat()} is outside the supported range {MIN_DATE.isoformat()} … {MAX_DATE.isoformat()}"
        )
    return d


#: History periods kept for streaks and persistence (k = 0 … H) per reporting grain: a day-grain
#: scorecard shows the week-ago value (k = 7); coarser grains need only the previous period(s); an
#: hour-grain one keeps the last day of hours. Streaks are counted within this window ("8" means at
#: least 8 days). The same hour yesterday and last week are read as single periods of their own
#: (:func:`comparison_offsets`), not as history.
HISTORY_BY_GRAIN: dict[str, int] = {
    "15min": 16,
    "hour": 24,
    "day": 8,
    "week": 3,
    "month": 2,
    "quarter": 1,
    "year": 1,
}
#: Nominal days per grain, used only to size look-back windows.
_GRAIN_DAYS: dict[str, float] = {
    "15min": 1 / 96,
    "hour": 1 / 24,
    "day": 1,
    "week": 7,
    "month": 31,
    "quarter": 92,
    "year": 366,
}
#: Length of a sub-daily period.
SUBDAILY_STEP: dict[str, timedelta] = {"15min": timedelta(minutes=15), "hour": timedelta(hours=1)}
#: How long past its staleness a silent feed is still reported ``stale`` (then ``no_data``): a week
#: for day and coarser reporting grains, a day for sub-daily ones (whose look-back is read hour by hour).
_STALE_GRACE_DAYS = 7.0
_STALE_GRACE_SUBDAILY = timedelta(days=1)
#: One tick of the warehouse's clock: periods are TIMESTAMPs with microseconds.
TICK = timedelta(microseconds=1)


def is_subdaily(grain: str) -> bool:
    """True for the grains finer than a day (``hour``, ``15min``)."""
    return grain in SUBDAILY_GRAINS


@dataclass(frozen=True)
class Moment:
    """What an evaluation is as of: the end of a day, or an instant.

    ``end`` is exclusive (records with a period before it are read), ``now`` is where staleness is
    measured from. For a day both are the next midnight; for an instant ``T`` the records at or
    before ``T`` are read (``end`` is one tick later) and staleness is measured at ``T``.
    """

    end: datetime
    now: datetime
    #: Asked as an instant (``--at``): shown with its time of day.
    instant: bool = False

    @classmethod
    def of_day(cls, d: date) -> Moment:
        """The end of day ``d`` (what ``--date`` means)."""
        midnight = datetime.combine(d + timedelta(days=1), time())
        return cls(end=midnight, now=midnight, instant=False)

    @classmethod
    def of_instant(cls, t: datetime) -> Moment:
        """The instant ``t`` (naive local time; what ``--at`` means): readings at or before ``t``."""
        return cls(end=t + TICK, now=t, instant=True)

    @property
    def last(self) -> datetime:
        """The last instant whose records are read."""
        return self.end - TICK

    @property
    def day(self) -> date:
        """The calendar day the moment falls in (the run's date; targets count days to it)."""
        return self.last.date()

    @property
    def at(self) -> datetime | None:
        """The instant, when the moment was asked as one (None for the end of a day)."""
        return self.now if self.instant else None

    def label(self) -> str:
        """``2025-12-31`` for a day, ``2025-12-31 14:00`` (seconds when present) for an instant."""
        if not self.instant:
            return self.day.isoformat()
        return format_instant(self.now)


def format_instant(t: datetime) -> str:
    """An instant as people read it: ``2025-12-31 14:00``, with seconds only when it has them."""
    return t.strftime("%Y-%m-%d %H:%M:%S" if t.second or t.microsecond else "%Y-%m-%d %H:%M")


def supported_instant(what: str, t: datetime) -> datetime:
    """``t`` itself when its day is within :data:`MIN_DATE` … :data:`MAX_DATE` (see :func:`supported_date`)."""
    supported_date(what, t.date())
    return t


# --- grains and windows ------------------------------------------------------------------------


def reporting_grain(indicator: Indicator, grain: str) -> str:
    """The coarser of the indicator's own frequency grain and the requested grain."""
    own = GRAIN_OF_FREQUENCY[indicator.frequency]
    return own if GRAINS.index(own) >= GRAINS.index(grain) else grain


def trunc(grain: str, d: date) -> date:
    """Start of the ``grain`` period containing ``d`` (weeks start on Monday, like DuckDB)."""
    if grain == "day" or grain in SUBDAILY_GRAINS:
        return d
    if grain == "week":
        return d - timedelta(days=d.weekday())
    if grain == "month":
        return d.replace(day=1)
    if grain == "quarter":
        return d.replace(month=3 * ((d.month - 1) // 3) + 1, day=1)
    return d.replace(month=1, day=1)


def shift(grain: str, d: date, n: int) -> date:
    """``d`` moved by ``n`` periods of ``grain`` (``d`` must be a period start)."""
    if grain == "day":
        return d + timedelta(days=n)
    if grain == "week":
        return d + timedelta(weeks=n)
    months = {"month": 1, "quarter": 3, "year": 12}[grain] * n
    total = d.year * 12 + (d.month - 1) + months
    return date(total // 12, total % 12 + 1, 1)


def trunc_at(grain: str, t: datetime) -> datetime:
    """Start of the ``grain`` period containing instant ``t`` (15-minute periods start on the quarter hour)."""
    if grain == "hour":
        return t.replace(minute=0, second=0, microsecond=0)
    if grain == "15min":
        return t.replace(minute=t.minute - t.minute % 15, second=0, microsecond=0)
    return datetime.combine(trunc(grain, t.date()), time())


def shift_at(grain: str, t: datetime, n: int) -> datetime:
    """Period start ``t`` moved by ``n`` periods of ``grain``."""
    if grain in SUBDAILY_STEP:
        return t + SUBDAILY_STEP[grain] * n
    return datetime.combine(shift(grain, t.date(), n), time())


def period_start(grain: str, d: _D) -> _D:
    """Start of the ``grain`` period holding ``d``, in ``d``'s own type: a date for day and coarser
    evaluations, a date-time (of any grain) for sub-daily ones."""
    if isinstance(d, datetime):
        return trunc_at(grain, d)
    return trunc(grain, d)


def period_shift(grain: str, d: _D, n: int) -> _D:
    """Period start ``d`` moved by ``n`` periods of ``grain``, in ``d``'s own type (see :func:`period_start`)."""
    if isinstance(d, datetime):
        return shift_at(grain, d, n)
    return shift(grain, d, n)


def comparison_offsets(grain: str) -> tuple[int | None, int | None]:
    """(periods in a day, periods in a week) at reporting ``grain``: how far back the same period a day
    and a week earlier lie. A day-grain cell's week-ago value is its history period k = 7; a sub-daily
    cell's are single buckets a day and a week before the period evaluated (:func:`window`)."""
    if grain in SUBDAILY_STEP:
        per_day = int(timedelta(days=1) / SUBDAILY_STEP[grain])
        return per_day, 7 * per_day
    return (None, 7) if grain == "day" else (None, None)


def previous_period_end(grain: str, d: date) -> date | None:
    """The last day of the ``grain`` period before the one containing ``d`` (None before MIN_DATE)."""
    before = trunc(grain, d) - timedelta(days=1)
    return before if before >= MIN_DATE else None


def previous_period_instant(grain: str, t: datetime) -> datetime | None:
    """The last instant of the ``grain`` period before the one containing instant ``t`` (None before MIN_DATE)."""
    before = trunc_at(grain, t) - TICK
    return before if before.date() >= MIN_DATE else None


def minus_year(d: _D) -> _D:
    """Same day (and time) a year earlier (29 Feb → 28 Feb)."""
    try:
        return d.replace(year=d.year - 1)
    except ValueError:
        return d.replace(year=d.year - 1, day=28)


@dataclass(frozen=True)
class Window:
    """The buckets an indicator reads: candidates for 'current', history, last year and, at sub-daily
    grains, the same period a day and a week earlier.

    Dates for day and coarser evaluations, date-times (period starts) for sub-daily ones.
    """

    rgrain: str
    cur_start: date | datetime  # bucket containing the moment
    cand_lo: date | datetime  # oldest bucket that may still be 'current' (look-back)
    win_lo: date | datetime  # oldest bucket read (look-back + history)
    ly_lo: date | datetime
    ly_hi: date | datetime  # exclusive
    #: k of the day-ago and week-ago periods of a day-grain cell (the week ago is history period 7)
    dy_k: int | None = None
    wk_k: int | None = None
    #: [lo, hi) of the same sub-daily period a day and a week before the period evaluated
    #: (``cur_start``): single buckets, read beside the history
    dy_lo: datetime | None = None
    dy_hi: datetime | None = None
    wk_lo: datetime | None = None
    wk_hi: datetime | None = None


def _periods_between(rg: str, cur: datetime, start: datetime) -> int:
    """How many ``rg`` periods back from ``cur`` reach ``start`` (at most 5,000)."""
    if rg in SUBDAILY_STEP:
        return min(5000, max(0, math.ceil((cur - start) / SUBDAILY_STEP[rg])))
    n = 0
    while shift_at(rg, cur, -n) > start and n < 5000:
        n += 1
    return n


def history_periods(
    indicator: Indicator, grain: str, as_of: date | Moment, history_from: date | None = None
) -> int:
    """How many periods before the current one are kept (streaks, persistence, sparklines)."""
    rg = reporting_grain(indicator, grain)
    h = max(HISTORY_BY_GRAIN[rg], indicator.thresholds.for_periods)
    moment = as_of if isinstance(as_of, Moment) else Moment.of_day(as_of)
    if history_from is not None and history_from < moment.day:
        cur, start = trunc_at(rg, moment.last), trunc_at(rg, datetime.combine(history_from, time()))
        h = max(h, _periods_between(rg, cur, start))
    return h


def window(
    indicator: Indicator, grain: str, as_of: date | Moment, history_from: date | None = None
) -> Window:
    """Compute the read window of one indicator for an evaluation as of a day or a moment."""
    moment = as_of if isinstance(as_of, Moment) else Moment.of_day(as_of)
    rg = reporting_grain(indicator, grain)
    cur = trunc_at(rg, moment.last)
    # a silent feed is reported 'stale' (not 'no_data') for max(2 × staleness, staleness + grace);
    # the look-back is what a scan costs, so it stays proportional to the staleness
    if rg in SUBDAILY_STEP:  # exact: whole periods of a sub-daily grain
        span = max(2 * indicator.staleness, indicator.staleness + _STALE_GRACE_SUBDAILY)
        lookback = max(1, -(-span // SUBDAILY_STEP[rg]))
    else:
        stale_days = indicator.staleness.total_seconds() / 86400.0
        lookback = max(1, math.ceil(max(2 * stale_days, stale_days + _STALE_GRACE_DAYS) / _GRAIN_DAYS[rg]))
    cand_lo = shift_at(rg, cur, -lookback)
    win_lo = min(cand_lo, shift_at(rg, cur, -history_periods(indicator, grain, moment, history_from)))
    ly_lo = trunc_at(rg, minus_year(cand_lo))
    ly_hi = shift_at(rg, trunc_at(rg, minus_year(cur)), 1)
    dy_k, wk_k = comparison_offsets(rg)
    extra: dict[str, datetime] = {}
    if rg in SUBDAILY_STEP:
        # the same period yesterday and last week of the period evaluated: one bucket each, so that an
        # hour costs the periods it compares, whatever the look-back
        step = SUBDAILY_STEP[rg]
        for name, back in (("dy", timedelta(days=1)), ("wk", timedelta(days=7))):
            extra[f"{name}_lo"] = cur - back
            extra[f"{name}_hi"] = cur - back + step
        dy_k = wk_k = None
    if not is_subdaily(grain):  # day and coarser evaluations keep working in dates
        return Window(rg, cur.date(), cand_lo.date(), win_lo.date(), ly_lo.date(), ly_hi.date(), dy_k, wk_k)
    return Window(rg, cur, cand_lo, win_lo, ly_lo, ly_hi, dy_k, wk_k, **extra)


# --- catalogue tables ----------------------------------------------------------------------------
