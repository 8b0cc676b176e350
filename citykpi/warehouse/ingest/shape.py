"""What real tables need on the way in: constant fields, composite keys, recoded values, dimensions.

Public tables rarely come in the long layout: Eurostat puts the breakdown inside the indicator's label
("Population on the 1st of January, male"), a yearly table has no date column, a city is only unique
within its province. A plan resolves each field it needs to a :class:`FieldSource` (a file column, a
constant from ``--set``, or several columns joined into one key), and :func:`shape_relation` wraps the
file's relation so that every shaped field becomes one text column of it — recoded through a small
literal table where a feed says so — and the row's dimensions become one canonical text
(``age=0-4;sex=male``). Plans then stage that relation exactly like a plain file. No row is looked
at in Python, and every value reaches SQL through :mod:`citykpi.sqlutil`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from citykpi.sqlutil import ident, literal
from citykpi.warehouse import readers
from citykpi.warehouse.ingest.options import COMPOSITE, KEY_SEPARATOR

#: Prefix of the derived columns (no file column starts with it in practice; a clash is refused).
DERIVED = "_ck_f_"
#: The derived column holding the canonical dimension text ('' for the headline series).
DIMS_COLUMN = DERIVED + "dims"


@dataclass(frozen=True)
class FieldSource:
    """Where a field's text comes from: file columns (several = a composite key) or a constant."""

    columns: tuple[str, ...] = ()
    constant: str | None = None

    @property
    def shown(self) -> str:
        """How a reject names the field's column: the file column, 'a+b', or '--set FIELD'."""
        if self.constant is not None:
            return "(constant)"
        return COMPOSITE.join(self.columns)


@dataclass(frozen=True)
class Shape:
    """The file's relation with the shaped fields added as text columns.

    ``fields``: field → the column of ``sql`` holding it (a file column, or a derived one);
    ``shown``: field → the name a reject gives its column; ``types``: every column's type.
    """

    sql: str
    types: dict[str, str]
    fields: dict[str, str] = field(default_factory=dict)
    shown: dict[str, str] = field(default_factory=dict)
    dims: str | None = None


def resolve(columns: Mapping[str, str], wanted: str) -> FieldSource | None:
    """A file column matching ``wanted`` (exactly, else loosely), or ``a+b`` naming several; None if not found."""
    found = readers.find_column(dict(columns), wanted)
    if found is not None:
        return FieldSource(columns=(found,))
    if COMPOSITE not in wanted:
        return None
    parts = [readers.find_column(dict(columns), p.strip()) for p in wanted.split(COMPOSITE)]
    if any(p is None for p in parts) or len(parts) < 2:
        return None
    return FieldSource(columns=tuple(p for p in parts if p is not None))


def _text(col: str, duck_type: str) -> str:
    """A file column as trimmed text, NULL when empty."""
    x = f"u.{ident(col)}" if readers.is_text_type(duck_type) else f"u.{ident(col)}::VARCHAR"
    return f"nullif(trim({x}), '')"


def _escape(expr: str) -> str:
    """Escape a dimension value for the canonical text (``%``, ``;`` and ``=`` are the syntax)."""
    return f"replace(replace(replace({expr}, '%', '%25'), ';', '%3B'), '=', '%3D')"


def dims_text(values: Mapping[str, str]) -> str:
    """The canonical text of a row's dimensions: ``name=value`` pairs sorted by name, ``;``-separated."""
    esc = {"%": "%25", ";": "%3B", "=": "%3D"}

    def e(v: str) -> str:
        return "".join(esc.get(ch, ch) for ch in v)

    return ";".join(f"{k}={e(v)}" for k, v in sorted(values.items()) if v)


def shape_relation(
    table_sql: str,
    types: Mapping[str, str],
    sources: Mapping[str, FieldSource],
    *,
    dimensions: Mapping[str, FieldSource | None] | None = None,
    recode: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None,
    blank_tokens: Sequence[str] = (),
    null_tokens: Sequence[str] = (),
) -> Shape:
    """Wrap ``table_sql`` (alias ``u``) so that each shaped field is a text column.

    Args:
        table_sql: the file's relation (with ``_row``).
        types: its columns and their types.
        sources: field → where it comes from. A single plain column that no recode touches stays the
            file column itself (its type kept); anything else becomes a derived VARCHAR column.
        dimensions: dimension name → its column(s) or constant, or None when only a recode sets it;
            given (even empty), the relation gets the canonical dimension text column.
        recode: file column → value → {field or dimension: text}; a matching value overrides the
            field's own text (the first recode column that sets a field wins).
        blank_tokens: dimension cells equal to one of these mean "no breakdown" (as an empty cell).
        null_tokens: every field's cells equal to one of these become NULL (a raw source table's
            missing-value tokens); with any given, every field becomes a derived text column.

    Returns:
        The :class:`Shape`; ``dims`` is set when ``dimensions`` is not None.

    Raises:
        KeyError: a recode names a file column that ``types`` lacks (the caller checked it).
    """
    recode = recode or {}
    joins: list[str] = []
    sets: dict[str, list[str]] = {}  # target → recode expressions setting it, in declaration order
    for n, (column, table) in enumerate(recode.items(), start=1):
        targets = sorted({t for mapping in table.values() for t in mapping})
        alias = f"_ck_r{n}"
        rows = ", ".join(
            "(" + ", ".join([literal(value), *(literal(mapping.get(t)) for t in targets)]) + ")"
            for value, mapping in table.items()
        )
        names = ", ".join(["k", *(f"t{i}" for i in range(len(targets)))])
        key = _text(column, types[column])
        joins.append(f"LEFT JOIN (VALUES {rows}) {alias}({names}) ON {alias}.k = {key}")
        for i, t in enumerate(targets):
            sets.setdefault(t, []).append(f"{alias}.t{i}::VARCHAR")

    def base(src: FieldSource | None) -> str | None:
        if src is None or (src.constant is None and not src.columns):
            return None
        if src.constant is not None:
            return f"{literal(src.constant)}::VARCHAR"
        parts = [_text(c, types[c]) for c in src.columns]
        if len(parts) == 1:
            return parts[0]
        missing = " OR ".join(f"{p} IS NULL" for p in parts)
        joined = f" || {literal(KEY_SEPARATOR)} || ".join(parts)
        return f"CASE WHEN {missing} THEN NULL ELSE {joined} END"

    out_types = dict(types)
    fields: dict[str, str] = {}
    shown: dict[str, str] = {}
    derived: list[str] = []
    nulls = [literal(t.strip()) for t in null_tokens]
    for name, src in sources.items():
        recoded = sets.get(name, [])
        if not recoded and not nulls and src.constant is None and len(src.columns) == 1:
            fields[name] = src.columns[0]  # a plain column: kept as it is (and typed as it is)
            shown[name] = src.columns[0]
            continue
        expr = base(src)
        exprs = [*recoded, *([expr] if expr is not None else [])]
        column = DERIVED + name
        if column in types:
            raise ValueError(f"the file has a column named {column!r}, which citykpi reserves")
        value = f"coalesce({', '.join(exprs)})" if exprs else "NULL::VARCHAR"
        if nulls:
            value = f"CASE WHEN coalesce({value}, '') IN ({', '.join(nulls)}) THEN NULL ELSE {value} END"
        derived.append(f"{value} AS {ident(column)}")
        fields[name] = column
        shown[name] = src.shown + (" (recoded)" if recoded else "")
        out_types[column] = "VARCHAR"
    dims_col: str | None = None
    if dimensions is not None:
        tokens = [t.strip() for t in blank_tokens if t.strip()]
        pieces = []
        for name in sorted(dimensions):
            exprs = [*sets.get(name, [])]
            b = base(dimensions[name])
            if b is not None:
                exprs.append(b)
            if not exprs:
                continue
            value = f"coalesce({', '.join(exprs)})" if len(exprs) > 1 else exprs[0]
            if tokens:
                value = f"CASE WHEN trim({value}) IN ({', '.join(literal(t) for t in tokens)}) THEN NULL ELSE {value} END"
            pieces.append(
                f"CASE WHEN nullif(trim({value}), '') IS NOT NULL THEN {literal(name + '=')} || {_escape(f'trim({value})')} END"
            )
        dims_col = DIMS_COLUMN
        text = f"concat_ws(';', {', '.join(pieces)})" if pieces else "''"
        derived.append(f"coalesce({text}, '') AS {ident(dims_col)}")
        out_types[dims_col] = "VARCHAR"
    if not derived:
        return Shape(table_sql, out_types, fields, shown, None)
    sql = f"SELECT u.*, {', '.join(derived)} FROM ({table_sql}) u {' '.join(joins)}"
    return Shape(sql, out_types, fields, shown, dims_col)
