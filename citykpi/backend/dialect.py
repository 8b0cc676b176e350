r"""citykpi's SQL in another engine's dialect: sqlglot trees plus a small rewrite layer.

The compiler writes one canonical dialect, DuckDB's, and the embedded DuckDB backend runs it as
written (no parsing, no cost). For any other engine each statement is parsed once into a sqlglot
tree, passed through that dialect's rewrites, for what transpilers get wrong or cannot know, and
generated with unsupported constructs as errors rather than silent approximations:

- **ordered list aggregation**: DuckDB's ``list(x ORDER BY k)`` becomes ``COLLECT_LIST(x)`` in a
  plain transpile, which loses the order (and drops NULL elements); rewritten as the values of the
  sorted list of ``(k, x)`` structs;
- **session tables**: ``CREATE OR REPLACE TEMP TABLE`` becomes a temporary view without
  ``OR REPLACE``, which later ``INSERT``\ s cannot fill; on Spark it is a scratch Parquet table;
- **UPDATE** of a session table (Spark has none without Delta): the table is rebuilt with
  ``CASE WHEN matched THEN new ELSE old END`` per set column, then swapped in;
- **citykpi's compensated sums** ``fsum``/``favg`` (DuckDB-only) become ``SUM``/``AVG``.

A second dialect is therefore an entry in :data:`DIALECTS`, not a fork of the compiler. sqlglot is an
optional dependency (``pip install 'citykpi[engines]'``): only non-DuckDB backends import this module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from citykpi.errors import UsageError

#: The dialect the compiler writes (and the DuckDB backend runs unchanged).
CANONICAL = "duckdb"

Rewrite = Callable[[exp.Expression], exp.Expression]


def ordered_lists(tree: exp.Expression) -> exp.Expression:
    """``list(x ORDER BY k1, k2)`` → ``TRANSFORM(ARRAY_SORT(COLLECT_LIST(STRUCT(k1, k2, x))), s -> s.v)``."""

    def fix(node: exp.Expression) -> exp.Expression:
        if not (isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Order)):
            return node
        order = node.this
        if any(o.args.get("desc") for o in order.expressions):
            raise UsageError("descending ordered list aggregation has no rewrite for this dialect yet")
        keys = [
            exp.PropertyEQ(this=exp.to_identifier(f"k{n}"), expression=o.this.copy())
            for n, o in enumerate(order.expressions)
        ]
        value = exp.PropertyEQ(this=exp.to_identifier("v"), expression=order.this.copy())
        structs = exp.ArrayAgg(this=exp.Struct(expressions=[*keys, value]))
        lam = exp.Lambda(
            this=exp.Dot(this=exp.column("s"), expression=exp.to_identifier("v")),
            expressions=[exp.to_identifier("s")],
        )
        return exp.Transform(this=exp.ArraySort(this=structs), expression=lam)

    return tree.transform(fix)


def compensated_sums(tree: exp.Expression) -> exp.Expression:
    """``fsum(x)`` / ``favg(x)`` → ``SUM(x)`` / ``AVG(x)``."""

    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and str(node.this).lower() in ("fsum", "favg"):
            cls = exp.Sum if str(node.this).lower() == "fsum" else exp.Avg
            return cls(this=node.expressions[0].copy())
        return node

    return tree.transform(fix)


def _is_temp_table(tree: exp.Expression) -> bool:
    props = tree.args.get("properties")
    return (
        isinstance(tree, exp.Create)
        and str(tree.args.get("kind", "")).upper() == "TABLE"
        and props is not None
        and any(isinstance(p, exp.TemporaryProperty) for p in props.expressions)
    )


class Translator:
    """Translate the statements of one plan, in order, into ``dialect``.

    Stateful on purpose: it remembers the columns of every table the plan creates with a column
    list, which the ``UPDATE`` rewrite needs (engines without UPDATE on session tables get a
    rebuilt table instead).
    """

    def __init__(self, dialect: str) -> None:
        if dialect != CANONICAL and dialect not in DIALECTS:
            raise UsageError(f"no SQL dialect {dialect!r}; known: {', '.join([CANONICAL, *DIALECTS])}")
        self.dialect = dialect
        self.spec = DIALECTS.get(dialect, _IDENTITY)
        self.target = self.spec.sqlglot
        self.columns: dict[str, list[str]] = {}

    # --- statement-level rewrites ---------------------------------------------------------------

    def _table(self, name: str, body: str) -> str:
        """DDL for a session table, as the dialect spells one that later INSERTs can fill."""
        return self.spec.session_table.format(name=name, body=body)

    def _create(self, tree: exp.Create) -> list[str]:
        if isinstance(tree.this, exp.Schema):
            name = tree.this.this.sql(dialect=self.target)
            self.columns[name] = [
                str(c.this.this) for c in tree.this.expressions if isinstance(c, exp.ColumnDef)
            ]
            cols = ", ".join(
                c.sql(dialect=self.target, unsupported_level=ErrorLevel.RAISE) for c in tree.this.expressions
            )
            return [self._table(name, f"({cols})")]
        name = tree.this.sql(dialect=self.target)
        query = tree.expression.sql(dialect=self.target, unsupported_level=ErrorLevel.RAISE)
        return [self._table(name, f"AS {query}")]

    def _update(self, tree: exp.Update) -> list[str]:
        """``UPDATE t SET c = e FROM b WHERE cond`` → t rebuilt with ``CASE WHEN matched THEN e ELSE c END``.

        The FROM side must match at most one row per row of ``t`` (a key join), as in the compiler.
        """
        gen = lambda e: e.sql(dialect=self.target, unsupported_level=ErrorLevel.RAISE)  # noqa: E731
        name = gen(tree.this)
        if name not in self.columns:
            raise UsageError(f"cannot rewrite UPDATE of {name}: its columns are not known to the plan")
        sets = {str(e.this.name): gen(e.expression) for e in tree.expressions}
        where = tree.args.get("where")
        cond = gen(where.this) if where is not None else "TRUE"
        source = tree.args.get("from_") or tree.args.get("from")
        if source is not None:
            other = source.this
            alias = other.alias_or_name
            plain = other.copy()
            plain.set("alias", None)
            join = f" LEFT JOIN (SELECT *, TRUE AS _ck_matched FROM {gen(plain)}) {alias} ON {cond}"
            hit = f"{alias}._ck_matched"
        else:
            join, hit = "", f"({cond})"
        select = ", ".join(
            f"CASE WHEN {hit} THEN {sets[c]} ELSE {name}.{c} END AS {c}" if c in sets else f"{name}.{c}"
            for c in self.columns[name]
        )
        return [
            self._table(f"{name}_ck_new", f"AS SELECT {select} FROM {name}{join}"),
            f"DROP TABLE {name}",
            f"ALTER TABLE {name}_ck_new RENAME TO {name}",
        ]

    def translate(self, sql: str) -> list[str]:
        """``sql`` (one canonical statement) as the statements this dialect runs.

        Raises:
            UsageError: the statement uses something the dialect cannot express.
        """
        if self.dialect == CANONICAL:
            return [sql]
        try:
            tree: exp.Expression = sqlglot.parse_one(sql, read=CANONICAL)  # type: ignore[assignment]
            for rewrite in self.spec.rewrites:
                tree = rewrite(tree)
            if _is_temp_table(tree):
                return self._create(tree)  # type: ignore[arg-type]
            if isinstance(tree, exp.Update):
                return self._update(tree)
            return [tree.sql(dialect=self.target, unsupported_level=ErrorLevel.RAISE)]
        except SqlglotError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"cannot express this statement in {self.dialect}: {first}") from None


@dataclass(frozen=True)
class Dialect:
    """What differs per target engine: its sqlglot name, its session-table DDL, its tree rewrites.

    Session tables and UPDATE are rewritten by :class:`Translator` for every non-canonical dialect.
    """

    sqlglot: str
    session_table: str  # format string with {name} and {body} ("(cols)" or "AS query")
    rewrites: Sequence[Rewrite] = (compensated_sums, ordered_lists)


_IDENTITY = Dialect(CANONICAL, "CREATE OR REPLACE TEMP TABLE {name} {body}", ())

#: dialect name → what to do for it (canonical DuckDB needs nothing and is not listed).
DIALECTS: dict[str, Dialect] = {
    # a temporary view takes no INSERT: session tables are scratch Parquet tables
    "spark": Dialect("spark", "CREATE OR REPLACE TABLE {name} USING PARQUET {body}"),
    # DuckDB → DuckDB through every rewrite: what tests use to run rewritten statements for real
    "duckdb-rewritten": Dialect("duckdb", "CREATE OR REPLACE TEMP TABLE {name} {body}"),
}


def translate(sql: str, dialect: str) -> list[str]:
    """One canonical statement as ``dialect`` runs it (a fresh :class:`Translator`; plans use one per plan)."""
    return Translator(dialect).translate(sql)
