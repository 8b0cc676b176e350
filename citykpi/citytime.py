"""The city's clock: one declared time zone, local wall-clock time stamps, and its DST edges.

The warehouse stores every period as a *naive local wall-clock* TIMESTAMP in the city's zone (the
catalogue's ``timezone:``), so a day is a local day and day-grain evaluation needs no conversion. Time
stamps that carry a UTC offset (``2025-12-31T06:00Z``, ``…+08:00``) are converted to that wall clock
when they are read (ingest, ``--at``); time stamps without one are taken as local time already.

In a zone with daylight saving time the wall clock skips an hour in spring (a *non-existent* local
time) and repeats one in autumn (an *ambiguous* local time). :func:`dst_windows` lists those local
ranges so that ingest can refuse a reading in them with a coded reject instead of storing a time that
means two instants or none. Pure Python (``zoneinfo``); no SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

#: Years searched for DST transitions: the warehouse's period range (see ``engine.calendar``).
FIRST_YEAR, LAST_YEAR = 1900, 2200


def zone(name: str | None) -> ZoneInfo | None:
    """The ``ZoneInfo`` of a declared zone name (None when none is declared).

    Raises:
        ValueError: the name is not a zone of the tz database.
    """
    if not name:
        return None
    return _zone(name)


@cache
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def is_zone(name: str) -> bool:
    """True when ``name`` names a zone of the tz database (``Asia/Shanghai``, ``UTC``…)."""
    try:
        _zone(name)
    except ValueError:
        return False
    return True


def zone_names() -> list[str]:
    """Every zone name the tz database knows, sorted (for messages and completion)."""
    return sorted(available_timezones())


def to_local(t: datetime, tz: ZoneInfo | None) -> datetime:
    """``t`` as naive local wall-clock time of ``tz``.

    A naive ``t`` is already local and returned as it is; an aware one is converted.

    Raises:
        ValueError: ``t`` carries an offset and no zone is declared to convert it to.
    """
    if t.tzinfo is None:
        return t
    if tz is None:
        raise ValueError("a time with a UTC offset needs the city's time zone (catalogue `timezone:`)")
    return t.astimezone(tz).replace(tzinfo=None)


def city_now(timezone: str | None) -> datetime:
    """The current wall-clock time of the city whose catalogue declares ``timezone`` (the clock the
    periods are stored in): batch arrival times and the moment timeliness is judged at, so neither
    depends on the server's own zone. The machine's local time when no zone is declared."""
    return now_local(zone(timezone))


def now_local(tz: ZoneInfo | None) -> datetime:
    """The current wall-clock time of the city (the machine's local time when no zone is declared)."""
    if tz is None:
        return datetime.now()
    return datetime.now(UTC).astimezone(tz).replace(tzinfo=None)


@dataclass(frozen=True)
class DstWindow:
    """A local wall-clock range ``[start, end)`` the clocks skip (``gap``) or repeat (``fold``)."""

    start: datetime
    end: datetime
    kind: str  # gap | fold


def dst_windows(tz: ZoneInfo | None, years: tuple[int, int] | None = None) -> tuple[DstWindow, ...]:
    """Every skipped or repeated local range of ``tz`` whose transition falls in ``years`` (first and
    last, inclusive; default :data:`FIRST_YEAR` to :data:`LAST_YEAR`).

    Each year is searched once per process. Ingest asks only for the years a file's statistics say
    it spans: a 5-minute batch need not pay for three centuries of a zone's history.
    """
    if tz is None:
        return ()
    first, last = years if years is not None else (FIRST_YEAR, LAST_YEAR)
    first, last = max(first, FIRST_YEAR), min(last, LAST_YEAR)
    return tuple(w for year in range(first, last + 1) for w in _year_windows(str(tz.key), year))


@cache
def _year_windows(name: str, year: int) -> tuple[DstWindow, ...]:
    """The DST windows of zone ``name`` whose transition moment (UTC) falls in ``year``."""
    tz = _zone(name)
    out: list[DstWindow] = []
    start = datetime(year, 1, 1, tzinfo=UTC)
    stop = datetime(year + 1, 1, 1, tzinfo=UTC)
    step = timedelta(days=7)  # no zone changes its offset twice within a week

    def offset(u: datetime) -> timedelta:
        off = u.astimezone(tz).utcoffset()
        return off if off is not None else timedelta(0)

    u, before = start, offset(start)
    while u < stop:
        nxt = min(u + step, stop)
        after = offset(nxt)
        if after != before:
            lo, hi = u, nxt  # bisect to the second of the transition
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                if offset(mid) == before:
                    lo = mid
                else:
                    hi = mid
            moment = hi.replace(microsecond=0)
            local_before = (moment + before).replace(tzinfo=None)
            local_after = (moment + after).replace(tzinfo=None)
            if after > before:  # clocks jump forward: [local_before, local_after) never happens
                out.append(DstWindow(local_before, local_after, "gap"))
            else:  # clocks go back: [local_after, local_before) happens twice
                out.append(DstWindow(local_after, local_before, "fold"))
            before = after
        u = nxt
    return tuple(out)
