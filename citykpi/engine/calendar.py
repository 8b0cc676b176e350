"""Calendar maths of an evaluation: reporting grains, period starts, shifts and look-back windows.

Pure date arithmetic, no SQL and no catalogue flattening: which buckets an indicator needs as of a
day at a grain. The compiler and the catalogue tables both read it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from citykpi.catalogue.model import (
    GRAIN_OF_FREQUENCY,
    GRAINS,
    Indicator,
)
from citykpi.errors import UsageError

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
#: scorecard shows the week-ago value (k = 7); coarser grains need only the previous period(s).
#: Streaks are counted within this window ("8" means at least 8 days).
HISTORY_BY_GRAIN: dict[str, int] = {"day": 8, "week": 3, "month": 2, "quarter": 1, "year": 1}
#: Nominal days per grain, used only to size look-back windows.
_GRAIN_DAYS: dict[str, int] = {"day": 1, "week": 7, "month": 31, "quarter": 92, "year": 366}


# --- grains and windows ------------------------------------------------------------------------


def reporting_grain(indicator: Indicator, grain: str) -> str:
    """The coarser of the indicator's own frequency grain and the requested grain."""
    own = GRAIN_OF_FREQUENCY[indicator.frequency]
    return own if GRAINS.index(own) >= GRAINS.index(grain) else grain


def trunc(grain: str, d: date) -> date:
    """Start of the ``grain`` period containing ``d`` (weeks start on Monday, like DuckDB)."""
    if grain == "day":
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


def previous_period_end(grain: str, d: date) -> date | None:
    """The last day of the ``grain`` period before the one containing ``d`` (None before MIN_DATE)."""
    before = trunc(grain, d) - timedelta(days=1)
    return before if before >= MIN_DATE else None


def minus_year(d: date) -> date:
    """Same day a year earlier (29 Feb → 28 Feb)."""
    try:
        return d.replace(year=d.year - 1)
    except ValueError:
        return d.replace(year=d.year - 1, day=28)


@dataclass(frozen=True)
class Window:
    """The buckets an indicator reads: candidates for 'current', history, and last year."""

    rgrain: str
    cur_start: date  # bucket containing as_of
    cand_lo: date  # oldest bucket that may still be 'current' (look-back)
    win_lo: date  # oldest bucket read (look-back + history)
    ly_lo: date
    ly_hi: date  # exclusive


def history_periods(indicator: Indicator, grain: str, as_of: date, history_from: date | None = None) -> int:
    """How many periods before the current one are kept (streaks, persistence, sparklines)."""
    rg = reporting_grain(indicator, grain)
    h = max(HISTORY_BY_GRAIN[rg], indicator.thresholds.for_periods)
    if history_from is not None and history_from < as_of:
        cur, start = trunc(rg, as_of), trunc(rg, history_from)
        n = 0
        while shift(rg, cur, -n) > start and n < 5000:
            n += 1
        h = max(h, n)
    return h


def window(indicator: Indicator, grain: str, as_of: date, history_from: date | None = None) -> Window:
    """Compute the read window of one indicator for an evaluation as of ``as_of``."""
    rg = reporting_grain(indicator, grain)
    cur = trunc(rg, as_of)
    stale_days = indicator.staleness.total_seconds() / 86400.0
    # a silent feed is reported 'stale' (not 'no_data') for max(2 × staleness, staleness + 7 days);
    # the look-back is what a scan costs, so it stays proportional to the staleness
    lookback = max(1, math.ceil(max(2 * stale_days, stale_days + 7) / _GRAIN_DAYS[rg]))
    cand_lo = shift(rg, cur, -lookback)
    win_lo = min(cand_lo, shift(rg, cur, -history_periods(indicator, grain, as_of, history_from)))
    ly_lo = trunc(rg, minus_year(cand_lo))
    ly_hi = shift(rg, trunc(rg, minus_year(cur)), 1)
    return Window(rg, cur, cand_lo, win_lo, ly_lo, ly_hi)


# --- catalogue tables ----------------------------------------------------------------------------
