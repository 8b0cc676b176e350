"""Row checks of ingest as SQL: each reject reason is a coded rule of :mod:`citykpi.warehouse.ingest.codes`.

Every check is one SQL pass over the file joined to small key tables; no row is looked at in Python."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from citykpi.sqlutil import literal
from citykpi.warehouse import readers
from citykpi.warehouse.ingest.codes import reason
from citykpi.warehouse.ingest.options import DEFAULT_DATE_FORMATS

# --- plans: how a file becomes staged records ------------------------------------------------------------


@dataclass(frozen=True)
class _Check:
    """One validation rule: rows where ``condition`` holds are rejected with ``reason``."""

    condition: str
    reason: str
    column: str  # SQL expression giving the file column name
    value: str  # SQL expression giving the offending text


def _number_checks(v: str, column: str, *, typed: bool) -> list[_Check]:
    """The rules of number cell ``c.<v>`` (text ``c.<v>_txt``): unparseable (text cells only: a typed
    cell parsed or the read failed) and not finite. ``column``: SQL giving the file column's name."""
    checks = (
        []
        if typed
        else [_Check(f"c.{v}_txt IS NOT NULL AND c.{v} IS NULL", reason("IN402"), column, f"c.{v}_txt")]
    )
    checks.append(_Check(f"NOT isfinite(c.{v})", reason("IN403"), column, f"c.{v}_txt"))
    return checks


def _case(checks: Sequence[_Check], pick: str) -> str:
    if not checks:
        return "NULL::VARCHAR"
    whens = " ".join(
        f"WHEN {c.condition} THEN {getattr(c, pick) if pick != 'reason' else literal(c.reason)}"
        for c in checks
    )
    return f"CASE {whens} END"


def _ok(checks: Sequence[_Check]) -> str:
    """TRUE when no rule fires (``reason IS NULL``), as a conjunction: a cheap filter, no strings built."""
    if not checks:
        return "TRUE"
    return "(" + " AND ".join(f"({c.condition}) IS NOT TRUE" for c in checks) + ")"


def _date_expr(col: str, duck_type: str, fmt: str | None, *, as_date: bool = False) -> str:
    """SQL turning a file column into a TIMESTAMP (or DATE), NULL when unparseable.

    The cheap ISO cast runs first; trimming and the other formats only for cells it cannot read
    (``coalesce`` is lazy), because string copies dominate the cost of reading a CSV.
    """
    if readers.is_temporal_type(duck_type):
        expr = f"{col}::TIMESTAMP"
    else:
        text = col if readers.is_text_type(duck_type) else f"{col}::VARCHAR"
        if fmt:
            expr = (
                f"coalesce(try_strptime({text}, {literal(fmt)}), try_strptime(trim({text}), {literal(fmt)}))"
            )
        else:
            fmts = "[" + ", ".join(literal(f) for f in DEFAULT_DATE_FORMATS) + "]"
            expr = (
                f"coalesce(TRY_CAST({text} AS TIMESTAMP), TRY_CAST(trim({text}) AS TIMESTAMP), "
                f"try_strptime(trim({text}), {fmts}))"
            )
    return f"({expr})::DATE" if as_date else expr


#: A UTC offset ending a time stamp's text: ``Z``, ``+08``, ``+0800``, ``+08:00``, ``-05:00``.
OFFSET_RE = r"(Z|z|[+-]\d\d(:?\d\d)?)\s*$"


def _has_zone_format(fmt: str | None) -> bool:
    return bool(fmt) and any(z in str(fmt) for z in ("%z", "%Z"))


def _zoned_expr(col: str, duck_type: str, fmt: str | None) -> str:
    """SQL: the period carries a UTC offset (a zoned Parquet column, a --date-format with %z, or
    text ending in one). Texts shorter than a date, a time and an offset are never zoned, so a file
    of dates pays no regular expression."""
    t = duck_type.upper()
    if readers.is_temporal_type(duck_type):
        return "TRUE" if "TIME ZONE" in t or t == "TIMESTAMPTZ" else "FALSE"
    text = col if readers.is_text_type(duck_type) else f"{col}::VARCHAR"
    if _has_zone_format(fmt):
        return f"({text} IS NOT NULL)"
    return f"(length({text}) > 16 AND regexp_matches({text}, {literal(OFFSET_RE)}))"


def _period_expr(col: str, duck_type: str, fmt: str | None, zone: str | None) -> str:
    """SQL: the period as the city's local wall-clock TIMESTAMP (NULL when unparseable).

    Without an offset the text (or typed column) is local time already; with one it is an instant,
    converted to the wall clock of ``zone`` — NULL when no zone is declared (IN308 says why).
    """
    t = duck_type.upper()
    if readers.is_temporal_type(duck_type):
        if "TIME ZONE" in t or t == "TIMESTAMPTZ":
            return f"timezone({literal(zone)}, {col})" if zone else "NULL::TIMESTAMP"
        return f"{col}::TIMESTAMP"
    naive = _date_expr(col, duck_type, None if _has_zone_format(fmt) else fmt)
    if not zone:
        instant = "NULL::TIMESTAMP"
    else:
        text = col if readers.is_text_type(duck_type) else f"{col}::VARCHAR"
        if _has_zone_format(fmt):
            parsed = (
                f"coalesce(try_strptime({text}, {literal(fmt)}), try_strptime(trim({text}), {literal(fmt)}))"
            )
        else:
            normal = f"regexp_replace(upper(trim({text})), '\\s*Z$', '+00')"
            parsed = f"TRY_CAST({normal} AS TIMESTAMPTZ)"
        instant = f"timezone({literal(zone)}, {parsed})"
    return f"(CASE WHEN {_zoned_expr(col, duck_type, fmt)} THEN {instant} ELSE {naive} END)"


def _number_expr(col: str, duck_type: str) -> str:
    """SQL turning a file column into a DOUBLE, NULL when unparseable (surrounding blanks are fine)."""
    if readers.is_numeric_type(duck_type):
        return f"{col}::DOUBLE"
    return f"TRY_CAST({col}::VARCHAR AS DOUBLE)"


def _raw_expr(col: str, duck_type: str) -> str:
    """The cell as text, NULL when empty: what a reject shows and what "missing" tests."""
    inner = col if readers.is_text_type(duck_type) else f"{col}::VARCHAR"
    return f"nullif({inner}, '')"


def _text_expr(col: str, duck_type: str, *, verbatim: bool = False) -> str:
    """An id cell as text: blanks around it removed (only computed when there are any), '' as NULL.

    ``verbatim``: the cell as it is, for a staging that is kept only when every id matched (an id
    with blanks around it then fails to match, and the file is staged again from its text).
    """
    x = col if readers.is_text_type(duck_type) else f"{col}::VARCHAR"
    if verbatim:
        return x
    return f"nullif(CASE WHEN starts_with({x}, ' ') OR ends_with({x}, ' ') THEN trim({x}) ELSE {x} END, '')"
