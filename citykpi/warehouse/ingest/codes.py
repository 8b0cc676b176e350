"""Every reason ingest rejects a row for, as a coded rule (like the catalogue's CK codes).

A rejected row is stored in ``rejects`` with the rule's reason text (what ``citykpi db rejects``
shows); :func:`code_of` maps a stored reason back to its code. The codes and meanings are listed in
docs/warehouse.md (``## Reject codes``), generated from this table and checked by a test.
Adding a rule is one entry here plus the check that uses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from string import Formatter


@dataclass(frozen=True)
class RejectRule:
    """One reject reason: a stable code, the stored text (a template for some) and what it means."""

    code: str
    reason: str
    meaning: str

    def text(self, **values: object) -> str:
        """The stored reason, with the template's fields filled in."""
        return self.reason.format(**values) if values else self.reason

    def pattern(self) -> re.Pattern[str]:
        """A regular expression matching every text :meth:`text` can produce."""
        out = ""
        for literal, field, _spec, _conv in Formatter().parse(self.reason):
            out += re.escape(literal)
            if field is not None:
                out += ".*?"
        return re.compile(out + r"\Z", re.S)


_RULES = (
    RejectRule("IN101", "missing indicator id", "the indicator column is empty on this row"),
    RejectRule(
        "IN102",
        "unknown indicator id (not in the catalogue)",
        "the id is not an indicator of the catalogue (a typo, or a retired indicator)",
    ),
    RejectRule("IN201", "missing area id", "the area column is empty on this row"),
    RejectRule(
        "IN202",
        "unknown area id (load it with `citykpi areas load`)",
        "the area is not in the area registry",
    ),
    RejectRule("IN301", "missing period", "the period (date) column is empty"),
    RejectRule(
        "IN302", "unparseable date", "the period is neither ISO nor one of the known or declared date formats"
    ),
    RejectRule(
        "IN303",
        "period in the future",
        "the period is later than the time of ingest (city time, plus the --future-tolerance, 5 minutes by "
        "default): a wrong clock or a mistyped date",
    ),
    RejectRule(
        "IN304",
        "period before {year} (a mistyped year?)",
        "dates before 1900 are typos ('0201-05-01'), not history",
    ),
    RejectRule(
        "IN305",
        "ambiguous local time (the clocks go back in {zone} and repeat it)",
        "a realtime or hourly reading in the hour the city's clocks repeat when daylight saving time ends: "
        "stored as local time it would mean two instants; send it with a UTC offset outside that hour",
    ),
    RejectRule(
        "IN306",
        "non-existent local time (the clocks skip it in {zone})",
        "a realtime or hourly reading without a UTC offset in the hour the city's clocks skip when "
        "daylight saving time starts: a wrong clock",
    ),
    RejectRule(
        "IN307",
        "time stamp without a UTC offset (this feed must give one)",
        "ingest was told --require-offset, and a realtime or hourly reading has no offset (Z, +08:00)",
    ),
    RejectRule(
        "IN308",
        "time stamp with a UTC offset, but the catalogue declares no time zone",
        "the reading says which instant it is, but not which wall clock to store it in: declare "
        "`timezone:` in the catalogue",
    ),
    RejectRule("IN401", "missing value", "no value, and not both numerator and denominator"),
    RejectRule("IN402", "unparseable number", "the value (or numerator/denominator) is not a number"),
    RejectRule("IN403", "not a finite number (NaN or infinity)", "NaN and ±infinity are refused"),
    RejectRule(
        "IN404",
        "value outside the indicator's valid_range",
        "the value is outside the indicator's declared valid_range: a unit or entry error",
    ),
    RejectRule(
        "IN501",
        "duplicate within the file (same indicator, area and period)",
        "the file holds the same indicator × area × period more than once; every copy is rejected",
    ),
    RejectRule(
        "IN502",
        "duplicate of a stored observation (use --on-duplicate replace or keep)",
        "an earlier batch holds this indicator × area × period; --on-duplicate decides",
    ),
    RejectRule(
        "IN503",
        "changed reading: a stored observation has the same time and another value",
        "--on-duplicate resend skips a record identical to the stored one (a feed re-sending its latest "
        "reading) and rejects one whose value differs; correct a reading with --on-duplicate replace",
    ),
    RejectRule("IN601", "missing key", "a raw source record without its declared key"),
    RejectRule("IN602", "missing {column}", "a raw source record without its declared time column"),
    RejectRule("IN603", "{column} in the future", "a raw source record timed after the time of ingest"),
    RejectRule(
        "IN604",
        "unparseable {kind}{hint}",
        "a raw source column does not parse as its declared type (integer, double, date, timestamp, boolean)",
    ),
    RejectRule(
        "IN605",
        "duplicate key within the file",
        "the file holds the same source key more than once; every copy is rejected",
    ),
    RejectRule(
        "IN606",
        "duplicate of a stored record with the same key (use --on-duplicate replace or keep)",
        "an earlier batch holds a record with this key; --on-duplicate decides",
    ),
)

#: code → rule, in code order
REJECT_RULES: dict[str, RejectRule] = {r.code: r for r in _RULES}


def reason(code: str, **values: object) -> str:
    """The stored reason text of rule ``code`` (KeyError for an unknown code: a programming error)."""
    return REJECT_RULES[code].text(**values)


def code_of(text: str) -> str | None:
    """The code of a stored reason text, or None (reasons written by an older citykpi)."""
    for rule in REJECT_RULES.values():
        if rule.reason == text:
            return rule.code
    for rule in REJECT_RULES.values():
        if "{" in rule.reason and rule.pattern().match(text):
            return rule.code
    return None


def markdown_table() -> str:
    """The reject codes as a Markdown table (docs/warehouse.md)."""
    rows = ["| code | reason stored in `rejects` | meaning |", "|---|---|---|"]
    for r in REJECT_RULES.values():
        shown = r.reason.replace("|", "\\|")
        rows.append(f"| {r.code} | {shown} | {r.meaning} |")
    return "\n".join(rows)
