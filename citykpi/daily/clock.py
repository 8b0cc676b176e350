"""The job's clock and time zone: "today" is the city's, not the server's.

Everything in the daily job that needs the time (the default date, log time stamps, whether a
silence is active) reads :func:`now`, so tests pin it in one place.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from citykpi.errors import UsageError


def now(tz: tzinfo | None = None) -> datetime:
    """The current time, aware, in ``tz`` (the machine's zone when None)."""
    return datetime.now(tz).astimezone(tz)


def local_zone() -> tzinfo:
    """The machine's time zone."""
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None
    return zone


def zone(name: str | None) -> tzinfo:
    """An IANA time zone by name (``Asia/Shanghai``), or the machine's zone for None.

    Raises:
        UsageError: an unknown zone name (``RunConfig`` turns it into a ConfigError for ``run``).
    """
    if name is None:
        return local_zone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"unknown time zone {name!r}", hint="use an IANA name such as Asia/Shanghai or UTC"
        ) from None


def zone_name(tz: tzinfo) -> str:
    """A zone's name for reports (``Asia/Shanghai``, or ``UTC+08:00`` for a fixed offset)."""
    key = getattr(tz, "key", None)
    if isinstance(key, str):
        return key
    return datetime.now(tz).strftime("UTC%z") if datetime.now(tz).utcoffset() else "UTC"
