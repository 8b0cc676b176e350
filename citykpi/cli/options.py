"""Options shared by the commands, declared once, with their vocabularies as str Enums.

An Enum-typed option makes Click check the value (a wrong one is a usage error, exit 2, naming the
choices) and lets shell completion offer the values. The vocabularies mirror the catalogue model and
the exporter registry; ``tests/test_cli_options.py`` proves they agree.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from citykpi.cli import complete
from citykpi.errors import UsageError

if TYPE_CHECKING:
    from citykpi.catalogue.model import Catalogue


class Lang(StrEnum):
    """Language of names and labels."""

    zh = "zh"
    en = "en"


class Grain(StrEnum):
    """The period a cell covers (``--period``)."""

    m15 = "15min"
    hour = "hour"
    day = "day"
    week = "week"
    month = "month"
    quarter = "quarter"
    year = "year"


class Level(StrEnum):
    """An area level."""

    city = "city"
    district = "district"
    street = "street"


class Kind(StrEnum):
    """An indicator kind."""

    kpi = "kpi"
    vital_sign = "vital_sign"


class Colour(StrEnum):
    """A colour of the scale, least severe first."""

    green = "green"
    blue = "blue"
    yellow = "yellow"
    orange = "orange"
    red = "red"


class Status(StrEnum):
    """A cell status: a colour or why there is none."""

    green = "green"
    blue = "blue"
    yellow = "yellow"
    orange = "orange"
    red = "red"
    stale = "stale"
    unscored = "unscored"
    no_data = "no_data"
    not_applicable = "not_applicable"


class FailOn(StrEnum):
    """The colour at or above which a command exits 1 (``never``: it does not)."""

    never = "never"
    green = "green"
    blue = "blue"
    yellow = "yellow"
    orange = "orange"
    red = "red"


class RunSet(StrEnum):
    """Which recorded runs ``latest``, ``previous``, a date and "new since the previous run" choose
    from: the scheduled ones (``citykpi run``, ``evaluate --scheduled``) or all of them."""

    scheduled = "scheduled"
    all = "all"


class GroupBy(StrEnum):
    """How the scorecard table groups its cells."""

    domain = "domain"
    area = "area"


class TableFormat(StrEnum):
    """What every command that prints a table offers: the terminal table or a table format of
    the exporter registry (``render.exporters.TABLE_FORMATS``)."""

    table = "table"
    csv = "csv"
    parquet = "parquet"
    json = "json"
    jsonl = "jsonl"
    markdown = "markdown"


class ScorecardFormat(StrEnum):
    """``evaluate``: the terminal table or any export format (``render.exporters.FORMATS``)."""

    table = "table"
    csv = "csv"
    parquet = "parquet"
    json = "json"
    jsonl = "jsonl"
    markdown = "markdown"
    html = "html"
    xlsx = "xlsx"
    junit = "junit"


class CheckFormat(StrEnum):
    """``check`` reports."""

    text = "text"
    json = "json"
    github = "github"
    junit = "junit"


class TestFormat(StrEnum):
    """``test`` reports (``render.testreport.TEST_FORMATS``)."""

    __test__ = False  # not a pytest class

    text = "text"
    json = "json"
    github = "github"
    junit = "junit"


class ListFormat(StrEnum):
    """``catalogue list``."""

    text = "text"
    json = "json"
    csv = "csv"


class DocsFormat(StrEnum):
    """``catalogue docs``."""

    md = "md"
    html = "html"


class TextOrJson(StrEnum):
    """``db info``."""

    text = "text"
    json = "json"


class QueryFormat(StrEnum):
    """``query``."""

    text = "text"
    csv = "csv"
    json = "json"


WAIT_HELP = "Seconds to wait while another citykpi process holds the database (default: fail at once)."

#: ``--wait SECONDS``: how long to wait for a database another process holds.
WaitOpt = Annotated[float, typer.Option("--wait", min=0, help=WAIT_HELP)]
#: ``--lang zh|en``.
LangOpt = Annotated[Lang, typer.Option("--lang", help="Language of names and labels.")]


def parse_output(value: str) -> Path | None:
    """``--output``: a path; ``-`` is stdout (None); an empty value is a usage error."""
    if value == "":
        raise UsageError("--output is empty; name a file, or - for stdout")
    return None if value == "-" else Path(value)


#: ``--output FILE``: write the export to a file (atomically) instead of stdout; ``-`` is stdout.
#: Where it may write: ``citykpi.render.targets`` (docs/reliability.md, "Output paths").
OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        parser=parse_output,
        metavar="FILE",
        help="Write to FILE (atomic) instead of stdout (- is stdout). Never the database, a catalogue "
        "or input file, a link or a device; an existing file that is not an export of this format "
        "needs --force.",
    ),
]
#: ``--force`` of the commands that write ``--output``.
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Let --output replace an existing file that is not a previous export of this format "
        "(never the database, a catalogue or input file).",
    ),
]
#: ``--format`` of every command that prints a table.
TableFormatOpt = Annotated[
    TableFormat,
    typer.Option(
        "--format",
        "-f",
        help="table (the terminal) or a file format; parquet needs --output.",
    ),
]
#: ``--format`` of ``evaluate``: the table formats and the scorecard-only ones.
ScorecardFormatOpt = Annotated[
    ScorecardFormat,
    typer.Option(
        "--format",
        "-f",
        help="table (the terminal) or an export format; parquet and xlsx need --output.",
    ),
]
#: ``--decimals N``: decimals of values in terminal tables (files always keep full precision).
DecimalsOpt = Annotated[
    int | None,
    typer.Option(
        "--decimals",
        min=0,
        max=9,
        help="Decimals of values in the table (default: each indicator's `decimals`; files keep full precision).",
    ),
]
#: ``--runs scheduled|all``.
RunsOpt = Annotated[
    RunSet,
    typer.Option(
        "--runs",
        help="Compare with scheduled runs only (those of `citykpi run`; the default) or all recorded runs "
        "(also those of `evaluate --record`).",
    ),
]
#: ``--period``.
GrainOpt = Annotated[Grain, typer.Option("--period", "-p", help="The period each cell covers.")]
#: ``--at``: an instant instead of ``--date`` (parsed with :func:`parse_instant`).
AtOpt = Annotated[
    str | None,
    typer.Option(
        "--at",
        help="As of this instant, e.g. 2025-12-31T14:00 (city time; an offset such as +08:00 or Z is "
        "converted) or 'now'; what --period hour and 15min evaluate.",
    ),
]
#: ``--level`` repeated.
LevelsOpt = Annotated[list[Level], typer.Option("--level", help="Only this level (repeatable).")]
#: ``--area`` repeated.
AreasOpt = Annotated[
    list[str],
    typer.Option("--area", help="Only this area id (repeatable).", autocompletion=complete.area_ids),
]

#: ``--indicator`` / ``-i``: an id glob.
IndicatorGlobOpt = Annotated[
    str | None,
    typer.Option(
        "--indicator",
        "-i",
        help="Indicator id glob, e.g. 'env.air.*'.",
        autocompletion=complete.indicator_ids,
    ),
]


def values(items: Sequence[StrEnum]) -> list[str]:
    """Enum members as plain strings, for the library."""
    return [item.value for item in items]


def parse_day(option: str, value: str | None) -> date | None:
    """Parse a date option: YYYY-MM-DD, 'today' or 'yesterday' (None stays None).

    Raises:
        UsageError: not a date, or a date outside the supported range
            (``citykpi.engine.calendar.MIN_DATE`` … ``MAX_DATE``).
    """
    from citykpi.engine.calendar import supported_date

    if value is None:
        return None
    if value == "today":
        return supported_date(option, date.today())
    if value == "yesterday":
        return supported_date(option, date.today() - timedelta(days=1))
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} {value!r}: expected a date YYYY-MM-DD, 'today' or 'yesterday'") from None
    return supported_date(option, day)


_INSTANT_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(:\d{2}(\.\d{1,6})?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?$", re.IGNORECASE
)


def parse_instant(option: str, value: str | None) -> datetime | None:
    """Parse an instant option: ``YYYY-MM-DDTHH:MM[:SS]`` (``T`` or a space), optionally with a UTC
    offset (``Z``, ``+08:00``), or ``now``. Naive results are city time; aware ones are converted by
    :func:`city_instant`.

    Raises:
        UsageError: not an instant, or outside the supported range.
    """
    from citykpi.engine.calendar import supported_instant

    if value is None:
        return None
    text = value.strip()
    if text.lower() == "now":
        return datetime.now(UTC)
    if not _INSTANT_RE.match(text):
        raise UsageError(
            f"{option} {value!r}: expected a date and time like 2025-12-31T14:00 (optionally with an "
            "offset such as +08:00 or Z), or 'now'"
        )
    try:
        t = datetime.fromisoformat(text.replace(" ", "T", 1).replace("z", "Z"))
    except ValueError:
        raise UsageError(f"{option} {value!r} is not a valid date and time") from None
    return supported_instant(option, t)


def city_instant(option: str, t: datetime | None, catalogue: Catalogue) -> datetime | None:
    """An instant as the city's local wall-clock time (how the warehouse stores time stamps).

    Raises:
        UsageError: ``t`` carries an offset and the catalogue declares no ``timezone:``.
    """
    from citykpi import citytime

    if t is None or t.tzinfo is None:
        return t
    try:
        return citytime.to_local(t, citytime.zone(catalogue.timezone))
    except ValueError:
        raise UsageError(
            f"{option} has a UTC offset, but the catalogue declares no time zone to convert it to",
            hint="declare `timezone: Asia/Shanghai` (the city's zone) in a catalogue file, or give a local "
            "time without an offset",
        ) from None


def day_or_instant(option: str, value: str | None) -> datetime | None:
    """Parse an option that takes a date (its midnight) or an instant (see :func:`parse_instant`)."""
    if value is None or "T" in value or " " in value.strip():
        return parse_instant(option, value)
    day = parse_day(option, value)
    return datetime.combine(day, datetime.min.time()) if day is not None else None


def date_or_instant(
    date_option: str, date_value: str | None, at_value: str | None
) -> tuple[date | None, datetime | None]:
    """Parse ``--date``-like and ``--at`` options together (at most one of them may be given).

    Raises:
        UsageError: both given, or either malformed.
    """
    if date_value is not None and at_value is not None:
        raise UsageError(f"give {date_option} or --at, not both")
    return parse_day(date_option, date_value), parse_instant("--at", at_value)


def unknown_id(what: str, ref: str, ids: Iterable[str]) -> UsageError:
    """The usage error for an id the catalogue lacks, naming the closest ids when there are any."""
    close = difflib.get_close_matches(ref, list(ids), n=3)
    hint = f"did you mean {', '.join(close)}?" if close else "see the ids with `citykpi catalogue list`"
    return UsageError(f"unknown {what} {ref!r}", hint=hint)
