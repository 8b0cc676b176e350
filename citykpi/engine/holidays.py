"""China's official working calendar as day types: working day, adjusted working day (调休), weekend, holiday.

The source is the ``chinesecalendar`` package (module ``chinese_calendar``), which follows the State
Council's yearly notice on public holidays (published each autumn for the next year; the package
releases soon after). Pure Python, no SQL: the engine loads what it needs as a small table.

A date outside the years the installed package covers has no holiday information. The engine then
falls back to the plain week (Saturday and Sunday rest, no holidays) for those dates and says so in a
warning naming the years and what to update (:func:`coverage_warning`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from enum import StrEnum
from functools import cache

import chinese_calendar
from chinese_calendar import constants


class DayType(StrEnum):
    """The kind of day in China's official calendar."""

    WORKDAY = "workday"  # Monday to Friday, worked
    ADJUSTED = "adjusted_workday"  # a Saturday or Sunday worked in exchange for a holiday (调休)
    WEEKEND = "weekend"  # Saturday or Sunday, rest
    HOLIDAY = "holiday"  # a public holiday's day off (weekend days inside a holiday period too)


#: Where to get a calendar that covers a later year.
UPDATE_HINT = "update it with `pip install --upgrade chinesecalendar` (a release follows each year's notice)"


@cache
def coverage() -> tuple[int, int]:
    """First and last year the installed calendar knows the holidays of."""
    years = [d.year for d in constants.holidays]
    return min(years), max(years)


def covers(d: date) -> bool:
    """True when the installed calendar knows the holidays of ``d``'s year."""
    lo, hi = coverage()
    return lo <= d.year <= hi


def source() -> str:
    """The calendar's source and version, for messages and docs."""
    return f"chinesecalendar {chinese_calendar.__version__}"


def day_type(d: date) -> DayType:
    """The kind of day ``d`` is; outside the calendar's years, the plain week (no holidays)."""
    weekend = d.weekday() >= 5
    if not covers(d):
        return DayType.WEEKEND if weekend else DayType.WORKDAY
    if d in constants.workdays:
        return DayType.ADJUSTED if weekend else DayType.WORKDAY
    if d in constants.holidays:
        return DayType.HOLIDAY
    return DayType.WEEKEND if weekend else DayType.WORKDAY


def uncovered_years(days: Iterable[date]) -> list[int]:
    """The years among ``days`` the installed calendar does not cover, sorted."""
    return sorted({d.year for d in days if not covers(d)})


def coverage_warning(years: Iterable[int], what: str) -> str:
    """The warning for ``what`` (e.g. 'seasonal baselines') on dates of ``years`` the calendar lacks."""
    ys = sorted(set(years))
    lo, hi = coverage()
    listed = ", ".join(str(y) for y in ys)
    return (
        f"China's holiday calendar ({source()}) covers {lo}–{hi}, not {listed}: {what} on those dates treat "
        f"every Saturday and Sunday as rest days and know no public holidays or adjusted working days; "
        f"{UPDATE_HINT}"
    )
