"""Silences and maintenance windows: alerts whose notifications are held back for a while.

A silence matches alerts by any of: an indicator id glob (``env.air.*``), an area (that area and
every area below it), the indicator's owner, its domain (all given must match). It has a reason,
a start and an expiry (``ends_at``); ``every`` makes it a recurring maintenance window inside that
span (``sun 02:00-06:00``, ``mon-fri 18:00-08:00``, ``daily 00:00-06:00``), read in the silence's
own time zone. ``alerts silence expire`` ends one early.

Silences live in the warehouse (table ``silences``), not in the run configuration: the duty officer
who adds one at night does not edit a deployed config file, each one keeps who added it, when and
why, the job reads them in the same database as the alerts, and ``citykpi alerts silences`` lists
exactly what the job obeys. Times are stored in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from citykpi.errors import UsageError
from citykpi.warehouse.connection import Warehouse

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(
    r"^\s*(?P<days>[a-z,\-]+|daily)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$"
)

#: Columns of :func:`list_silences`.
SILENCE_COLUMNS: tuple[str, ...] = (
    "silence_id",
    "state",
    "indicator",
    "area_id",
    "owner",
    "domain",
    "starts_at",
    "ends_at",
    "every",
    "timezone",
    "reason",
    "created_by",
    "created_at",
    "expired_at",
)


@dataclass(frozen=True)
class Window:
    """A recurring window: weekdays (0 = Monday) and a time span in minutes, which may cross midnight."""

    days: frozenset[int]
    start: int
    end: int
    text: str

    @classmethod
    def parse(cls, text: str) -> Window:
        """``daily 02:00-06:00``, ``sun 02:00-06:00``, ``mon-fri 18:00-08:00``, ``sat,sun 00:00-24:00``.

        Raises:
            UsageError: not a window.
        """
        m = _WINDOW.match(text.lower())
        if not m:
            raise UsageError(
                f"--every {text!r}: expected DAYS HH:MM-HH:MM, e.g. 'sun 02:00-06:00' or 'mon-fri 18:00-08:00'"
            )
        days = set(range(7)) if m["days"] == "daily" else _days(m["days"], text)
        start, end = _minutes(m["start"], text), _minutes(m["end"], text)
        if start == end:
            raise UsageError(f"--every {text!r}: the window is empty (it starts where it ends)")
        return cls(frozenset(days), start, end, f"{m['days']} {m['start']}-{m['end']}")

    def contains(self, local: datetime) -> bool:
        """True when the local time falls in the window (a window past midnight belongs to the day it starts)."""
        minute = local.hour * 60 + local.minute
        day = local.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= minute < self.end
        return (day in self.days and minute >= self.start) or (
            (day - 1) % 7 in self.days and minute < self.end
        )


def _days(spec: str, text: str) -> set[int]:
    days: set[int] = set()
    for part in spec.split(","):
        first, _, last = part.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise UsageError(f"--every {text!r}: days are {', '.join(WEEKDAYS)}, ranges (mon-fri) or daily")
        a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return days


def _minutes(hhmm: str, text: str) -> int:
    h, m = (int(x) for x in hhmm.split(":"))
    if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m):
        raise UsageError(f"--every {text!r}: {hhmm} is not a time of day")
    return h * 60 + m


@dataclass(frozen=True)
class Silence:
    """One silence or maintenance window (times aware, in UTC)."""

    silence_id: int
    indicator: str | None
    area_id: str | None
    owner: str | None
    domain: str | None
    starts_at: datetime
    ends_at: datetime
    every: str | None
    timezone: str
    reason: str
    created_by: str | None
    created_at: datetime
    expired_at: datetime | None = None

    @property
    def end(self) -> datetime:
        """When it stops: its expiry, or when it was expired early."""
        return min(self.ends_at, self.expired_at) if self.expired_at else self.ends_at

    def state(self, now: datetime) -> str:
        """``active``, ``waiting`` (a recurring window, outside its hours), ``pending`` (not begun) or ``expired``."""
        if now >= self.end:
            return "expired"
        if now < self.starts_at:
            return "pending"
        if self.every and not Window.parse(self.every).contains(now.astimezone(_zone(self.timezone))):
            return "waiting"
        return "active"

    def matchers(self) -> str:
        """What it matches, as text: ``indicator env.air.* · area 500103 (and below)``."""
        parts = []
        if self.indicator:
            parts.append(f"indicator {self.indicator}")
        if self.area_id:
            parts.append(f"area {self.area_id} (and below)")
        if self.owner:
            parts.append(f"owner {self.owner}")
        if self.domain:
            parts.append(f"domain {self.domain}")
        return " · ".join(parts)


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _utc(t: datetime) -> datetime:
    """An aware time in UTC (a naive one is taken as UTC, as stored)."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _naive_utc(t: datetime) -> datetime:
    return _utc(t).replace(tzinfo=None)


def add_silence(
    wh: Warehouse,
    *,
    reason: str,
    ends_at: datetime,
    now: datetime,
    starts_at: datetime | None = None,
    indicator: str | None = None,
    area_id: str | None = None,
    owner: str | None = None,
    domain: str | None = None,
    every: str | None = None,
    timezone: str = "UTC",
    created_by: str | None = None,
) -> Silence:
    """Record a silence (aware times) and return it with its id.

    Raises:
        UsageError: no matcher, no reason, an expiry not after its start or already past, a bad
            window, or an unknown area.
    """
    if not any((indicator, area_id, owner, domain)):
        raise UsageError(
            "a silence needs something to match: --indicator GLOB, --area ID, --owner or --domain",
            hint="to hold back everything, say so: --indicator '*'",
        )
    if not reason.strip():
        raise UsageError("a silence needs a --reason (it is shown to whoever wonders where an alert went)")
    start = _utc(starts_at or now)
    end = _utc(ends_at)
    if end <= start:
        raise UsageError("the silence ends before it starts: give an expiry after its start")
    if end <= _utc(now):
        raise UsageError("the expiry is in the past: give a time to come (--until or --for)")
    window = Window.parse(every).text if every else None
    if area_id is not None:
        known = wh.con.execute("SELECT count(*) FROM areas WHERE area_id = ?", [area_id]).fetchall()
        if not known or not known[0][0]:
            raise UsageError(
                f"unknown area {area_id!r}", hint="the area ids are in the areas file (`citykpi areas load`)"
            )
    con = wh.con
    con.execute("BEGIN TRANSACTION")
    try:
        row = con.execute("SELECT coalesce(max(silence_id), 0) + 1 FROM silences").fetchall()
        silence_id = int(row[0][0])
        con.execute(
            "INSERT INTO silences (silence_id, indicator, area_id, owner, domain, starts_at, ends_at, every, "
            "timezone, reason, created_by, created_at, expired_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            [
                silence_id,
                indicator,
                area_id,
                owner,
                domain,
                _naive_utc(start),
                _naive_utc(end),
                window,
                timezone,
                reason.strip(),
                created_by,
                _naive_utc(now),
            ],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return next(s for s in load_silences(wh) if s.silence_id == silence_id)


def expire_silence(wh: Warehouse, silence_id: int, *, now: datetime) -> Silence:
    """End a silence now (it stays listed with ``--all``).

    Raises:
        UsageError: no such silence, or it already ended.
    """
    found = next((s for s in load_silences(wh) if s.silence_id == silence_id), None)
    if found is None:
        raise UsageError(f"no silence {silence_id}", hint="list them with `citykpi alerts silences --all`")
    if found.state(_utc(now)) == "expired":
        raise UsageError(f"silence {silence_id} already ended at {found.end.isoformat(timespec='minutes')}")
    wh.con.execute("UPDATE silences SET expired_at = ? WHERE silence_id = ?", [_naive_utc(now), silence_id])
    return next(s for s in load_silences(wh) if s.silence_id == silence_id)


def load_silences(wh: Warehouse) -> list[Silence]:
    """Every recorded silence, oldest first."""
    rows = wh.con.execute(
        "SELECT silence_id, indicator, area_id, owner, domain, starts_at, ends_at, every, timezone, reason, "
        "created_by, created_at, expired_at FROM silences ORDER BY silence_id"
    ).fetchall()
    return [
        Silence(
            int(r[0]),
            r[1],
            r[2],
            r[3],
            r[4],
            _utc(r[5]),
            _utc(r[6]),
            r[7],
            str(r[8] or "UTC"),
            str(r[9]),
            r[10],
            _utc(r[11]),
            _utc(r[12]) if r[12] is not None else None,
        )
        for r in rows
    ]


def list_silences(wh: Warehouse, *, now: datetime, include_expired: bool = False) -> pl.DataFrame:
    """The silences with their state now (:data:`SILENCE_COLUMNS`), times in each silence's zone."""
    now = _utc(now)
    rows = []
    for s in load_silences(wh):
        state = s.state(now)
        if state == "expired" and not include_expired:
            continue
        zone = _zone(s.timezone)

        def local(t: datetime | None, zone: tzinfo = zone) -> str | None:
            return t.astimezone(zone).isoformat(timespec="minutes") if t is not None else None

        rows.append(
            {
                "silence_id": s.silence_id,
                "state": state,
                "indicator": s.indicator,
                "area_id": s.area_id,
                "owner": s.owner,
                "domain": s.domain,
                "starts_at": local(s.starts_at),
                "ends_at": local(s.ends_at),
                "every": s.every,
                "timezone": s.timezone,
                "reason": s.reason,
                "created_by": s.created_by,
                "created_at": local(s.created_at),
                "expired_at": local(s.expired_at),
            }
        )
    schema = {c: (pl.Int64() if c == "silence_id" else pl.String()) for c in SILENCE_COLUMNS}
    return pl.DataFrame(rows, schema=schema)


def area_lineage(areas: pl.DataFrame) -> pl.DataFrame:
    """For each area: ``lineage``, the list of its own id and its ancestors' ids, nearest first.

    ``areas`` has ``area_id`` and ``parent_id`` (``Warehouse.areas()``). One join per level of the
    hierarchy, never one step per area.
    """
    parents = areas.select(pl.col("area_id").cast(pl.String), pl.col("parent_id").cast(pl.String))
    out = parents.select(
        "area_id", pl.concat_list([pl.col("area_id")]).alias("lineage"), pl.col("parent_id").alias("_up")
    )
    for _ in range(64):  # deeper than any real hierarchy; a cycle stops here
        if out.get_column("_up").is_null().all():
            break
        out = (
            out.join(parents.rename({"area_id": "_up", "parent_id": "_next"}), on="_up", how="left")
            .with_columns(
                pl.when(pl.col("_up").is_not_null())
                .then(pl.concat_list([pl.col("lineage"), pl.concat_list([pl.col("_up")])]))
                .otherwise(pl.col("lineage"))
                .alias("lineage")
            )
            .drop("_up")
            .rename({"_next": "_up"})
        )
    return out.select("area_id", "lineage")


def glob_regex(glob: str) -> str:
    """A shell glob as an anchored regular expression for Polars that matches exactly what
    :func:`fnmatch.fnmatchcase` matches (what ``alerts silence add`` checks the glob with).

    Polars' regex engine has no look-arounds (``fnmatch.translate`` uses them for several stars) and
    reads ``[`` inside a class as a nested class and ``&&``, ``--``, ``~~`` as set operations, so a
    class is never copied: it is parsed as fnmatch parses it (:func:`_glob_class`) and written out
    member by member as ``\\x{..}`` escapes. A bracket that opens no class is a plain character.
    """
    out, i, n = ["(?s)^"], 0, len(glob)
    while i < n:
        ch = glob[i]
        i += 1
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            found = _glob_class(glob, i)
            if found is None:
                out.append(_char(ch))
            else:
                out.append(found[0])
                i = found[1]
        else:
            out.append(_char(ch))
    return "".join(out) + "$"


#: A class that matches no character (fnmatch's empty range ``[b-a]``).
_NOTHING = "[^\\x{0}-\\x{10FFFF}]"


def _char(ch: str) -> str:
    """One character as a regex atom: itself when a letter, digit or ``_``, else ``\\x{..}``."""
    return ch if ch.isascii() and (ch.isalnum() or ch == "_") else f"\\x{{{ord(ch):x}}}"


def _glob_class(pat: str, i: int) -> tuple[str, int] | None:
    """The class opened by the ``[`` before ``pat[i]``, read as ``fnmatch.translate`` reads it (its
    ranges, backwards ranges dropped, ``!`` for negation; tests/test_notify.py compares with fnmatch):
    the regex and the index after its ``]``; None when no ``]`` closes it."""
    j = i
    if j < len(pat) and pat[j] == "!":
        j += 1
    if j < len(pat) and pat[j] == "]":
        j += 1
    while j < len(pat) and pat[j] != "]":
        j += 1
    if j >= len(pat):
        return None
    if "-" not in pat[i:j]:
        chunks = [pat[i:j]]
    else:  # fnmatch's ranges: chunks joined by the hyphens that make ranges
        chunks = []
        k = i + 2 if pat[i] == "!" else i + 1
        start = i
        while (k := pat.find("-", k, j)) >= 0:
            chunks.append(pat[start:k])
            start = k + 1
            k += 3
        if pat[start:j]:
            chunks.append(pat[start:j])
        else:
            chunks[-1] += "-"
        for k in range(len(chunks) - 1, 0, -1):  # a backwards range is removed with its ends
            if chunks[k - 1][-1] > chunks[k][0]:
                chunks[k - 1] = chunks[k - 1][:-1] + chunks[k][1:]
                del chunks[k]
    if chunks == [""]:
        return _NOTHING, j + 1
    if chunks == ["!"]:
        return ".", j + 1
    negate = chunks[0].startswith("!")
    if negate:
        chunks[0] = chunks[0][1:]
    members: list[str] = []
    for k, chunk in enumerate(chunks):
        first = 1 if k > 0 else 0  # the chunk's first character ends the range before it
        last = len(chunk) - 1 if k < len(chunks) - 1 else len(chunk)  # its last one starts the next
        if k > 0:
            members.append(f"{_hex(chunks[k - 1][-1])}-{_hex(chunk[0])}")
        members += [_hex(c) for c in chunk[first:last]]
    return "[" + ("^" if negate else "") + "".join(members) + "]", j + 1


def _hex(ch: str) -> str:
    """One character as a ``\\x{..}`` escape (valid inside and outside a class)."""
    return f"\\x{{{ord(ch):x}}}"


def matching_silence(
    items: pl.DataFrame, silences: Sequence[Silence], now: datetime, lineage: pl.DataFrame
) -> pl.Series:
    """For each item (``indicator_id``, ``area_id``, ``owner``, ``domain``): the id of the first silence
    active at ``now`` that matches it, or null. One vectorised test per active silence."""
    active = [s for s in silences if s.state(_utc(now)) == "active"]
    if not items.height or not active:
        return pl.Series("silence_id", [None] * items.height, dtype=pl.Int64)
    frame = items.select("indicator_id", "area_id", "owner", "domain").join(lineage, on="area_id", how="left")
    frame = frame.with_columns(pl.col("lineage").fill_null(pl.concat_list([pl.col("area_id")])))
    result = pl.lit(None, dtype=pl.Int64)
    for s in reversed(active):  # the first matching silence wins
        cond = pl.lit(True)
        if s.indicator:
            cond = cond & pl.col("indicator_id").str.contains(glob_regex(s.indicator))
        if s.area_id:
            cond = cond & pl.col("lineage").list.contains(s.area_id)
        if s.owner:
            cond = cond & (pl.col("owner") == s.owner)
        if s.domain:
            cond = cond & (pl.col("domain") == s.domain)
        result = pl.when(cond).then(pl.lit(s.silence_id, dtype=pl.Int64)).otherwise(result)
    return frame.select(result.alias("silence_id")).get_column("silence_id")


def inhibiting_parent(items: pl.DataFrame, cells: pl.DataFrame, lineage: pl.DataFrame) -> pl.Series:
    """For each item (``indicator_id``, ``area_id``): the nearest ancestor area whose cell of the same
    indicator is red in ``cells`` (a red parent holds back its children's notifications), or null."""
    if not items.height:
        return pl.Series("inhibited_by", [], dtype=pl.String)
    red = cells.filter(pl.col("status") == "red").select(
        pl.col("indicator_id").cast(pl.String),
        pl.col("area_id").cast(pl.String).alias("_anc"),
        pl.lit(True).alias("_red"),
    )
    base = items.select("indicator_id", "area_id").with_row_index("_row")
    up = (
        base.join(lineage, on="area_id", how="left")
        .with_columns(pl.col("lineage").fill_null([]).list.slice(1).alias("_anc"))
        .explode("_anc")
        .with_columns(pl.int_range(pl.len()).over("_row").alias("_depth"))
        .join(red, on=["indicator_id", "_anc"], how="inner")
        .sort(["_row", "_depth"])
        .group_by("_row", maintain_order=True)
        .agg(pl.col("_anc").first().alias("inhibited_by"))
    )
    return base.join(up, on="_row", how="left").sort("_row").get_column("inhibited_by")


def silence_summary(silences: Sequence[Silence], now: datetime) -> Mapping[str, int]:
    """How many silences are in each state now."""
    out: dict[str, int] = {}
    for s in silences:
        state = s.state(_utc(now))
        out[state] = out.get(state, 0) + 1
    return out


def parse_time(text: str, zone: tzinfo, *, end_of_day: bool) -> datetime:
    """A time given on the command line: ISO ``2026-11-20T18:00`` (or with a space, or with an
    offset), or a date alone: the start of that day, or with ``end_of_day`` its end (the next
    midnight: ``--until 2026-11-20`` silences all of the 20th). Naive times are in ``zone``.

    Raises:
        UsageError: not a date or time.
    """
    from datetime import date, timedelta

    raw = text.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            moment = datetime(day.year, day.month, day.day) + (
                timedelta(days=1) if end_of_day else timedelta()
            )
        else:
            moment = datetime.fromisoformat(raw)
    except ValueError:
        raise UsageError(f"{text!r} is not a date or time; use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment
