r"""citykpi's SQL in another engine's dialect: sqlglot trees plus an explicit rewrite registry.

The compiler writes one canonical dialect, DuckDB's, and the embedded DuckDB backend runs it as
written (no parsing, no cost). For any other engine each statement is parsed once into a sqlglot
tree, passed through that dialect's :class:`Rewrite`\ s — one registered entry per thing a plain
transpile gets wrong or cannot know, each with a one-line summary that docs/spark.md lists — and
generated with unsupported constructs as errors rather than silent approximations. Statement-level
rewrites (session tables that later take INSERTs, UPDATE) are done by :class:`Translator`.

The rewrites are checked for meaning, not for text: ``tests/test_spark_conformance.py`` runs an
example query of every rewrite on DuckDB as written and on Spark as translated and compares the
rows, and whole catalogues must give the same scorecards on both engines. Adding a rewrite is an
entry in :data:`SPARK_REWRITES` plus an example there.

sqlglot is an optional dependency (``citykpi[spark]``): only non-DuckDB backends import this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from citykpi.errors import UsageError

__all__ = [
    "CANONICAL",
    "DIALECTS",
    "SPARK_REWRITES",
    "ColumnTypes",
    "Dialect",
    "Rewrite",
    "Translator",
    "frame_types",
    "rewrites_markdown",
    "spark_function_sql",
    "translate",
]

#: The dialect the compiler writes (and the DuckDB backend runs unchanged).
CANONICAL = "duckdb"


_INTEGRAL = ("tinyint", "smallint", "int", "integer", "bigint", "long", "short", "byte")
_FLOATING = ("double", "float", "real")


class ColumnTypes:
    """The types of operands, for the few rewrites whose meaning depends on them (``//``, casts to text).

    ``lookup(table)`` gives a session table's column types as the engine holds them (lower-case
    names such as ``double``, ``int``); a column is resolved through the aliases of the SELECTs
    around it. Expressions whose type is evident (casts, literals, ``date_diff``, counts) need no lookup.
    """

    def __init__(self, lookup: Callable[[str], Mapping[str, str]] | None = None) -> None:
        self._lookup = lookup
        self._cache: dict[str, Mapping[str, str]] = {}

    def forget(self) -> None:
        """Drop cached table types (a statement may have recreated a table)."""
        self._cache.clear()

    def _table(self, name: str) -> Mapping[str, str]:
        if self._lookup is None:
            return {}
        if name not in self._cache:
            self._cache[name] = {k.lower(): v.lower() for k, v in self._lookup(name).items()}
        return self._cache[name]

    def of(self, node: exp.Expression) -> str | None:
        """The lower-case type name of ``node``, or None when it cannot be told."""
        if isinstance(node, exp.Paren | exp.Neg):
            return self.of(node.this)
        if isinstance(node, exp.Cast):
            return str(node.to.this.value).lower()
        if isinstance(node, exp.Literal):
            if node.is_string:
                return "string"
            return "int" if re.fullmatch(r"-?\d+", str(node.this)) else "double"
        if isinstance(node, exp.DateDiff | exp.Count):
            return "bigint"
        if isinstance(node, exp.Column) and node.table:
            table = self._resolve(node, node.table)
            return self._table(table).get(node.name.lower()) if table else None
        if isinstance(node, exp.Column):
            table = self._only_table(node)
            return self._table(table).get(node.name.lower()) if table else None
        return None

    @staticmethod
    def _only_table(node: exp.Expression) -> str | None:
        """The table an unqualified column reads: the one table of the nearest SELECT around it, if one."""
        scope = node.find_ancestor(exp.Select)
        if scope is None:
            return None
        tables = [t for t in scope.find_all(exp.Table) if t.find_ancestor(exp.Select) is scope]
        return tables[0].name if len(tables) == 1 else None

    @staticmethod
    def _resolve(node: exp.Expression, alias: str) -> str | None:
        """The table an alias names in the nearest SELECT around ``node`` that defines it."""
        scope = node.parent
        while scope is not None:
            if isinstance(scope, exp.Select | exp.Update | exp.Insert):
                for table in scope.find_all(exp.Table):
                    if table.find_ancestor(exp.Select, exp.Update, exp.Insert) is not scope:
                        continue
                    if table.alias_or_name == alias:
                        return table.name
            scope = scope.parent
        return None

    def integral(self, node: exp.Expression) -> bool | None:
        """True for an integer type, False for a floating one, None when unknown."""
        kind = self.of(node)
        if kind is None:
            return None
        if kind.startswith(_INTEGRAL):
            return True
        return False if kind.startswith(_FLOATING) or kind.startswith("decimal") else None


def frame_types(frames: Mapping[str, object]) -> Callable[[str], Mapping[str, str]]:
    """A type lookup (see :class:`ColumnTypes`) for tables loaded from Polars frames (a plan's catalogue
    tables), for translating a plan without an engine at hand."""
    import polars as pl

    names = {
        pl.Float64: "double",
        pl.Float32: "float",
        pl.Int8: "tinyint",
        pl.Int16: "smallint",
        pl.Int32: "int",
        pl.Int64: "bigint",
        pl.String: "string",
        pl.Boolean: "boolean",
        pl.Date: "date",
    }

    def lookup(table: str) -> Mapping[str, str]:
        frame = frames.get(table)
        if not isinstance(frame, pl.DataFrame):
            return {}
        return {c: names.get(type(t), str(t).lower()) for c, t in frame.schema.items()}

    return lookup


@dataclass(frozen=True)
class Rewrite:
    """One explicit correction of the canonical tree for a target engine (name, why, how)."""

    name: str
    #: one line for docs/spark.md: what DuckDB means, and what the target would do without this
    summary: str
    apply: Callable[[exp.Expression, ColumnTypes], exp.Expression]


def _spark(sql: str) -> exp.Expression:
    """A Spark SQL expression as a tree (to splice into a statement being rewritten)."""
    tree: exp.Expression = sqlglot.parse_one(sql, read="spark")  # type: ignore[assignment]
    return tree


def _sql(node: exp.Expression) -> str:
    return node.sql(dialect="spark")


def _each(
    tree: exp.Expression,
    match: Callable[[exp.Expression], bool],
    build: Callable[[exp.Expression], exp.Expression],
) -> exp.Expression:
    """Replace every node ``match`` accepts by ``build(node)``, innermost first, so that a node's own
    operands are already rewritten when it is rebuilt from them."""
    nodes: list[exp.Expression] = [n for n in tree.walk(bfs=False) if match(n)]  # type: ignore[arg-type, misc]
    for node in reversed(nodes):
        new = build(node)
        if node is tree:
            tree = new
        else:
            node.replace(new)
    return tree


# --- expression rewrites ----------------------------------------------------------------------------------


def ordered_lists(tree: exp.Expression, types: ColumnTypes | None = None) -> exp.Expression:
    """``list(x ORDER BY k1, k2)`` → ``TRANSFORM(ARRAY_SORT(COLLECT_LIST(STRUCT(k1, k2, x))), s -> s.v)``, the
    aggregate's FILTER or OVER kept on the ``COLLECT_LIST`` (Spark allows no FILTER on ``TRANSFORM``)."""

    def build(agg: exp.Expression, wrap: Callable[[exp.Expression], exp.Expression]) -> exp.Expression:
        order = agg.this
        if any(o.args.get("desc") for o in order.expressions):
            raise UsageError("descending ordered list aggregation has no rewrite for this dialect yet")
        keys = [
            exp.PropertyEQ(this=exp.to_identifier(f"k{n}"), expression=o.this.copy())
            for n, o in enumerate(order.expressions)
        ]
        value = exp.PropertyEQ(this=exp.to_identifier("v"), expression=order.this.copy())
        structs = wrap(exp.ArrayAgg(this=exp.Struct(expressions=[*keys, value])))
        lam = exp.Lambda(
            this=exp.Dot(this=exp.column("s"), expression=exp.to_identifier("v")),
            expressions=[exp.to_identifier("s")],
        )
        return exp.Transform(this=exp.ArraySort(this=structs), expression=lam)

    return _aggregates(tree, lambda n: isinstance(n, exp.ArrayAgg) and isinstance(n.this, exp.Order), build)


def _is_fn(node: exp.Expression, *names: str) -> bool:
    return isinstance(node, exp.Anonymous) and str(node.this).lower() in names


def _exact_sum(arg: exp.Expression, wrap: Callable[[exp.Expression], exp.Expression]) -> exp.Expression:
    """SQL of the correctly rounded sum of ``arg`` (what DuckDB's ``fsum`` gives): each value as an exact
    integer multiple of 2^-72 summed as a DECIMAL, plus the plain sum of the few values out of that
    range; ``wrap`` re-applies the aggregate's FILTER or OVER to each sum (see ``citykpi_fixed``)."""
    x = _sql(arg)
    fixed = wrap(_spark(f"SUM(citykpi_fixed({x}))"))
    loose = wrap(_spark(f"SUM(citykpi_loose({x}))"))
    scaled = exp.Mul(
        this=exp.Cast(this=fixed, to=exp.DataType.build("DOUBLE")), expression=_spark("POWER(2, -72)")
    )
    return exp.Paren(this=exp.Add(this=scaled, expression=loose))


def _aggregates(
    tree: exp.Expression,
    is_agg: Callable[[exp.Expression], bool],
    build: Callable[[exp.Expression, Callable[[exp.Expression], exp.Expression]], exp.Expression],
) -> exp.Expression:
    """Rewrite each aggregate ``is_agg`` accepts by ``build(aggregate, wrap)``, where ``wrap`` gives
    every aggregate the rewrite produces the original's ``FILTER (WHERE …)`` or ``OVER (…)``."""

    def match(node: exp.Expression) -> bool:
        if isinstance(node, exp.Window | exp.Filter):
            return is_agg(node.this)
        return is_agg(node) and not isinstance(node.parent, exp.Filter | exp.Window)

    def rebuild(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Window):
            spec = node.copy()

            def over(part: exp.Expression) -> exp.Expression:
                w = spec.copy()
                w.set("this", part)
                return w

            return build(node.this, over)
        if isinstance(node, exp.Filter):
            where = node.expression
            return build(node.this, lambda part: exp.Filter(this=part, expression=where.copy()))
        return build(node, lambda part: part)

    return _each(tree, match, rebuild)


def compensated_sums(tree: exp.Expression, types: ColumnTypes | None = None) -> exp.Expression:
    """``fsum(x)`` / ``favg(x)`` → the correctly rounded sum, as DuckDB's compensated sums give it, whatever
    order Spark adds the rows in (divided by ``count(x)`` for the mean), with the aggregate's FILTER or
    OVER on every part."""

    def build(agg: exp.Expression, wrap: Callable[[exp.Expression], exp.Expression]) -> exp.Expression:
        arg = agg.expressions[0]
        total = _exact_sum(arg, wrap)
        if str(agg.this).lower() == "fsum":
            return total
        count = wrap(exp.Count(this=arg.copy()))
        return exp.Paren(
            this=exp.Div(this=total, expression=exp.Nullif(this=count, expression=exp.Literal.number(0)))
        )

    return _aggregates(tree, lambda n: _is_fn(n, "fsum", "favg"), build)


def counts_if(tree: exp.Expression, types: ColumnTypes | None = None) -> exp.Expression:
    """``count_if(c)`` is NULL in DuckDB when no row has a non-NULL ``c`` (0 in Spark):
    ``CASE WHEN COUNT(c) = 0 THEN NULL ELSE COUNT_IF(c) END``."""

    def build(agg: exp.Expression, wrap: Callable[[exp.Expression], exp.Expression]) -> exp.Expression:
        cond = agg.this
        total = wrap(exp.Anonymous(this="COUNT_IF", expressions=[cond.copy()]))
        seen = wrap(exp.Count(this=cond.copy()))
        return exp.Case(
            ifs=[exp.If(this=exp.EQ(this=seen, expression=exp.Literal.number(0)), true=exp.Null())],
            default=total,
        )

    return _aggregates(tree, lambda n: isinstance(n, exp.CountIf), build)


def materialized_ctes(tree: exp.Expression, types: ColumnTypes | None = None) -> exp.Expression:
    """``WITH r AS MATERIALIZED (…)`` → a plain CTE (Spark has no hint of the kind)."""
    for cte in tree.find_all(exp.CTE):
        cte.set("materialized", None)
    return tree


def named_windows(tree: exp.Expression, types: ColumnTypes | None = None) -> exp.Expression:
    """``OVER w`` / ``OVER (w ORDER BY …)`` → the window spelled out (Spark cannot refine a named window)."""
    for select in list(tree.find_all(exp.Select)):
        defs = select.args.get("windows") or []
        if not defs:
            continue
        named = {str(d.this.name if isinstance(d.this, exp.Identifier) else d.this): d for d in defs}
        for win in select.find_all(exp.Window):
            if any(win is d for d in defs):
                continue
            alias = win.args.get("alias")
            name = str(alias.name) if isinstance(alias, exp.Identifier) else None
            if name is None or name not in named:
                continue
            base = named[name]
            win.set("alias", None)
            if base.args.get("partition_by") and not win.args.get("partition_by"):
                win.set("partition_by", [p.copy() for p in base.args["partition_by"]])
            if base.args.get("order") and not win.args.get("order"):
                win.set("order", base.args["order"].copy())
            if base.args.get("spec") and not win.args.get("spec"):
                win.set("spec", base.args["spec"].copy())
        select.set("windows", None)
    return tree


def list_indexing(tree: exp.Expression, types: ColumnTypes | None = None) -> exp.Expression:
    """DuckDB's 1-based ``list[i]`` (NULL when out of range) → ``TRY_ELEMENT_AT(list, i)``
    (a plain transpile shifts only literal indices to Spark's 0-based ``[]``)."""

    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Bracket) and len(node.expressions) == 1:
            return exp.Anonymous(
                this="TRY_ELEMENT_AT", expressions=[node.this.copy(), node.expressions[0].copy()]
            )
        return node

    return tree.transform(fix)


def integer_division(tree: exp.Expression, types: ColumnTypes | None = None) -> exp.Expression:
    """``a // b`` truncates integers but is a plain division of DOUBLEs in DuckDB; Spark's ``DIV``
    refuses DOUBLEs: ``DIV`` when both operands are integers, ``/`` when one is floating (told from
    the engine's column types; an operand of unknown type is an error, not a guess)."""
    types = types or ColumnTypes()

    def build(node: exp.Expression) -> exp.Expression:
        left, right = types.integral(node.this), types.integral(node.expression)
        a, b = _sql(node.this), _sql(node.expression)
        if left and right:
            return _spark(f"({a} DIV {b})")
        if left is False or right is False:
            return _spark(f"(CAST({a} AS DOUBLE) / CAST({b} AS DOUBLE))")
        raise UsageError(f"cannot tell whether {a} // {b} divides integers; cast an operand")

    return _each(tree, lambda n: isinstance(n, exp.IntDiv), build)


def any_values(tree: exp.Expression, types: ColumnTypes | None = None) -> exp.Expression:
    """``any_value(x)`` skips NULLs in DuckDB; sqlglot writes ``ANY_VALUE(x) IGNORE NULLS``, which Spark
    cannot parse before ``FILTER``: ``ANY_VALUE(x, TRUE)``."""

    def build(node: exp.Expression) -> exp.Expression:
        inner = node.this if isinstance(node, exp.IgnoreNulls) else node
        return exp.Anonymous(this="ANY_VALUE", expressions=[inner.this.copy(), exp.true()])

    return _each(
        tree,
        lambda n: (
            (isinstance(n, exp.IgnoreNulls) and isinstance(n.this, exp.AnyValue))
            or (isinstance(n, exp.AnyValue) and not isinstance(n.parent, exp.IgnoreNulls))
        ),
        build,
    )


def finite_checks(tree: exp.Expression, types: ColumnTypes | None = None) -> exp.Expression:
    """``isfinite(x)`` (no Spark function of the name) → ``citykpi_isfinite(x)``: not NaN and not ±inf."""
    return _each(
        tree,
        lambda n: _is_fn(n, "isfinite"),
        lambda n: exp.Anonymous(this="citykpi_isfinite", expressions=[n.expressions[0].copy()]),
    )


def medians(tree: exp.Expression, types: ColumnTypes | None = None) -> exp.Expression:
    """``median(x)`` / ``mad(x)``: DuckDB interpolates an even count's middle pair as ``lo * 0.5 + hi * 0.5``
    and has ``mad`` (the median absolute deviation from the median), which Spark lacks:
    ``citykpi_median(COLLECT_LIST(x))`` / ``citykpi_mad(COLLECT_LIST(x))``, with the aggregate's FILTER or OVER."""

    def build(agg: exp.Expression, wrap: Callable[[exp.Expression], exp.Expression]) -> exp.Expression:
        arg = agg.this if isinstance(agg, exp.Median) else agg.expressions[0]
        median = exp.Anonymous(this="citykpi_median", expressions=[wrap(exp.ArrayAgg(this=arg.copy()))])
        if isinstance(agg, exp.Median):
            return median
        return exp.Anonymous(this="citykpi_mad", expressions=[wrap(exp.ArrayAgg(this=arg.copy())), median])

    return _aggregates(tree, lambda n: isinstance(n, exp.Median) or _is_fn(n, "mad"), build)


def list_means(tree: exp.Expression, types: ColumnTypes | None = None) -> exp.Expression:
    """``list_avg(xs)`` (no Spark function) → the NULL-free elements summed in list order (as DuckDB's ``avg``
    adds them) over their count, NULL for an empty list. Spelled out, not a session function: Spark
    refuses a lambda (``xs`` is often a ``list_transform``) in a SQL function's argument."""

    def build(node: exp.Expression) -> exp.Expression:
        kept = f"FILTER({_sql(node.expressions[0])}, _ck_x -> _ck_x IS NOT NULL)"
        return _spark(
            f"(AGGREGATE({kept}, CAST(0 AS DOUBLE), (_ck_s, _ck_x) -> _ck_s + _ck_x) / NULLIF(SIZE({kept}), 0))"
        )

    return _each(tree, lambda n: _is_fn(n, "list_avg"), build)


_INTERVALS = {
    "to_days": "MAKE_DT_INTERVAL({n})",
    "to_weeks": "MAKE_DT_INTERVAL(7 * ({n}))",
    "to_months": "MAKE_YM_INTERVAL(0, {n})",
    "to_years": "MAKE_YM_INTERVAL({n}, 0)",
}


def interval_functions(tree: exp.Expression, types: ColumnTypes | None = None) -> exp.Expression:
    """``to_days(n)`` / ``to_weeks(n)`` / ``to_months(n)`` / ``to_years(n)`` (intervals of a computed length)
    have no Spark spelling: ``MAKE_DT_INTERVAL(n)`` / ``MAKE_YM_INTERVAL(0, n)``, which add to dates alike."""

    def name(node: exp.Expression) -> str | None:
        if isinstance(node, exp.ToDays):
            return "to_days"
        if isinstance(node, exp.Anonymous) and str(node.this).lower() in _INTERVALS:
            return str(node.this).lower()
        return None

    def build(node: exp.Expression) -> exp.Expression:
        arg = node.this if isinstance(node, exp.ToDays) else node.expressions[0]
        return _spark(_INTERVALS[name(node) or ""].format(n=_sql(arg)))

    return _each(tree, lambda n: name(n) is not None, build)


def qualify_filters(tree: exp.Expression, types: ColumnTypes | None = None) -> exp.Expression:
    """``SELECT … QUALIFY cond`` (no QUALIFY in Spark; sqlglot's own rewrite loses the inner aliases the
    condition names) → ``SELECT … FROM (SELECT …, cond AS _ck_keep …) WHERE _ck_keep``; a SELECT of
    ``*`` keeps the extra ``_ck_keep`` column, named ones are listed again."""

    def build(node: exp.Expression) -> exp.Expression:
        cond = node.args["qualify"].this.copy()
        if node.args.get("order") or node.args.get("limit"):
            raise UsageError("QUALIFY with ORDER BY or LIMIT has no rewrite for this dialect yet")
        inner = node.copy()
        inner.set("qualify", None)
        inner.set("expressions", [*inner.expressions, exp.alias_(cond, "_ck_keep")])
        starred = any(
            isinstance(e, exp.Star) or (isinstance(e, exp.Column) and e.is_star) for e in node.expressions
        )
        outer = (
            [exp.Star()]
            if starred
            else [exp.column(e.alias_or_name, table="_ck_q") for e in node.expressions]
        )
        return (
            exp.select(*outer)
            .from_(exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("_ck_q"))))
            .where(exp.column("_ck_keep", table="_ck_q"))
        )

    return _each(tree, lambda n: isinstance(n, exp.Select) and n.args.get("qualify") is not None, build)


def list_functions(tree: exp.Expression, types: ColumnTypes | None = None) -> exp.Expression:
    """``len(list)`` → ``SIZE(list)`` (Spark's LENGTH is for text; a column known to be text keeps it) and
    ``list_position(xs, x)`` → ``NULLIF(ARRAY_POSITION(xs, x), 0)`` (DuckDB gives NULL when ``x`` is absent,
    Spark 0)."""
    types = types or ColumnTypes()

    def match(node: exp.Expression) -> bool:
        if isinstance(node, exp.Length):
            return types.of(node.this) not in ("string", "varchar", "text")
        return _is_fn(node, "list_position")

    def build(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Length):
            return exp.Anonymous(this="SIZE", expressions=[node.this.copy()])
        xs, x = node.expressions
        return _spark(f"NULLIF(ARRAY_POSITION({_sql(xs)}, {_sql(x)}), 0)")

    return _each(tree, match, build)


def epoch_seconds(tree: exp.Expression, types: ColumnTypes | None = None) -> exp.Expression:
    """``epoch(ts)`` → seconds with their fraction (``UNIX_MICROS(…) / 1e6``; Spark's UNIX_TIMESTAMP drops them)."""

    return _each(
        tree,
        lambda n: isinstance(n, exp.TimeToUnix),
        lambda n: _spark(f"(UNIX_MICROS(CAST({_sql(n.this)} AS TIMESTAMP)) / 1000000.0)"),
    )


_PART_DIFF = {
    "DAY": "DATEDIFF(CAST({b} AS DATE), CAST({a} AS DATE))",
    "MONTH": "((YEAR({b}) - YEAR({a})) * 12 + MONTH({b}) - MONTH({a}))",
    "QUARTER": "((YEAR({b}) - YEAR({a})) * 4 + QUARTER({b}) - QUARTER({a}))",
    "YEAR": "(YEAR({b}) - YEAR({a}))",
}


def date_differences(tree: exp.Expression, types: ColumnTypes | None = None) -> exp.Expression:
    """``date_diff(part, a, b)`` counts the part's *boundaries* crossed (DuckDB); Spark's
    ``DATEDIFF(MONTH, …)`` counts whole months. Spelled out from the calendar fields."""

    def build(node: exp.Expression) -> exp.Expression:
        unit = str(node.args.get("unit") or "DAY").upper()
        template = _PART_DIFF.get(unit)
        if template is None:
            raise UsageError(f"date_diff({unit.lower()}, …) has no rewrite for this dialect yet")
        return _spark(template.format(a=_sql(node.expression), b=_sql(node.this)))

    return _each(tree, lambda n: isinstance(n, exp.DateDiff), build)


def rounding(tree: exp.Expression, types: ColumnTypes | None = None) -> exp.Expression:
    """``round(x, d)`` rounds the exact binary double half away from zero in DuckDB (17.95 → 17.9), the
    decimal text in Spark (18.0), whose ROUND also wants a constant ``d``: ``citykpi_round(x, d)``
    (see :data:`SPARK_FUNCTIONS`)."""
    return _each(
        tree,
        lambda n: isinstance(n, exp.Round) and n.args.get("decimals") is not None,
        lambda n: _spark(f"citykpi_round({_sql(n.this)}, {_sql(n.args['decimals'])})"),
    )


_INTEGER_TYPES = {
    exp.DataType.Type.TINYINT,
    exp.DataType.Type.SMALLINT,
    exp.DataType.Type.INT,
    exp.DataType.Type.BIGINT,
}


def _literal_or_null(node: exp.Expression) -> bool:
    return isinstance(node, exp.Literal | exp.Null) or (
        isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal)
    )


def integer_casts(tree: exp.Expression, types: ColumnTypes | None = None) -> exp.Expression:
    """``CAST(x AS <integer>)`` rounds half to even in DuckDB (2.5 → 2, 3.5 → 4); Spark truncates:
    ``CAST(BROUND(x, 0) AS …)``."""

    def match(node: exp.Expression) -> bool:
        return (
            isinstance(node, exp.Cast)
            and node.to.this in _INTEGER_TYPES
            and not _literal_or_null(node.this)
            and not (isinstance(node.this, exp.Cast) and node.this.to.this in _INTEGER_TYPES)
        )

    return _each(
        tree, match, lambda n: exp.Cast(this=_spark(f"BROUND({_sql(n.this)}, 0)"), to=n.args["to"].copy())
    )


def double_text(tree: exp.Expression, types: ColumnTypes | None = None) -> exp.Expression:
    """``CAST(x AS VARCHAR)`` of a number prints DuckDB's shortest form (``1e-05``, ``10000000.0``),
    not Java's (``1.0E-5``, ``1.0E7``). Applied to every cast to text whose operand is not known to be
    an integer, a string or a date: the compiler casts only numbers to text (dates go through ``strftime``)."""

    types = types or ColumnTypes()

    def match(node: exp.Expression) -> bool:
        return (
            isinstance(node, exp.Cast)
            and node.to.this in (exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR)
            and not _literal_or_null(node.this)
            and types.integral(node.this) is not True
            and types.of(node.this) not in ("string", "varchar", "text", "date", "timestamp", "timestamp_ntz")
        )

    return _each(tree, match, lambda n: _spark(f"citykpi_text({_sql(n.this)})"))


def _guarded(divisor: exp.Expression) -> bool:
    """A divisor that can never be 0: ``NULLIF(…, 0)``, ``greatest(1, …)``, a non-zero literal."""
    node = divisor.unnest() if isinstance(divisor, exp.Paren) else divisor
    if isinstance(node, exp.Nullif):
        return True
    if isinstance(node, exp.Literal) and not node.is_string:
        return float(node.this) != 0
    if isinstance(node, exp.Cast):
        return _guarded(node.this)
    if isinstance(node, exp.Greatest):  # greatest(1, …)
        return any(
            isinstance(e, exp.Literal) and not e.is_string and float(e.this) > 0 for e in node.expressions
        )
    return False


def ieee_division(tree: exp.Expression, types: ColumnTypes | None = None) -> exp.Expression:
    """``a / b`` with ``b = 0`` is ±inf or NaN in DuckDB and an error in ANSI Spark: unless the divisor is
    guarded (``NULLIF(b, 0)``), ``citykpi_divide(a, b)``."""

    def build(node: exp.Expression) -> exp.Expression:
        return _spark(f"citykpi_divide({_sql(node.this)}, {_sql(node.expression)})")

    return _each(tree, lambda n: isinstance(n, exp.Div) and not _guarded(n.expression), build)


#: Session functions the Spark rewrites call (Spark SQL functions, created once per session by the
#: Spark backend). A function's parameters are bound once, so an operand used many times in the body
#: is neither copied into the statement nor computed again; a statement stays about as long as the
#: canonical one.
#:
#: * ``citykpi_round(x, d)``: DuckDB rounds the exact binary value of a DOUBLE half away from zero
#:   (round(17.95, 1) = 17.9, as 17.95 is stored as 17.9499…); Spark's ROUND rounds the shortest
#:   decimal text (18.0) and takes only a constant scale. p = |x|·10^d is a double whose exact error
#:   comes from Dekker's product (Veltkamp's split: no FMA needed); the sign of (p − ⌊p⌋ − ½) + error
#:   decides the half; the division by 10^d is correctly rounded, as DuckDB returns the double nearest
#:   the decimal result.
#: * ``citykpi_text(x)``: a DOUBLE as DuckDB prints it (the shortest digits, Python's ``repr``): plain
#:   from 1e-4 to 1e16, else ``1e-05`` / ``1.5e+16``; Spark prints Java's ``1.0E-5``, ``1.0E7``.
#: * ``citykpi_divide(a, b)``: IEEE division (±inf, NaN) where ANSI Spark raises DIVIDE_BY_ZERO.
#: * ``citykpi_fixed(x)`` / ``citykpi_loose(x)``: DuckDB's ``fsum`` is the correctly rounded sum. A
#:   double 2^-20 ≤ |x| < 2^46 is N·2^(e−52) with N an integer below 2^53, so x·2^72 is an exact
#:   integer, built as a DECIMAL(38, 0) from BIGINT factors (Spark's cast of a double to DECIMAL goes
#:   through its shortest text, which is not its binary value). Their DECIMAL sum is exact and its
#:   cast to DOUBLE correctly rounded; values out of that range (rare: tiny, huge, NaN, ±inf) are
#:   ``citykpi_loose`` and summed as doubles.
SPARK_FUNCTIONS: tuple[tuple[str, str], ...] = (
    (
        "citykpi_round",
        """(x DOUBLE, d INT) RETURNS DOUBLE RETURN
CASE WHEN x IS NULL OR d IS NULL THEN NULL
  WHEN isnan(x) OR abs(x) = double('infinity') THEN x
  WHEN d < 0 THEN CASE WHEN abs(x) / power(10, -d) < 4500000000000000
    THEN sign(x) * floor(abs(x) / power(10, -d) + 0.5) * power(10, -d) ELSE x END
  WHEN abs(x) * power(10, d) >= 4500000000000000 THEN x
  ELSE sign(x) * (floor(abs(x) * power(10, d)) + CASE WHEN (abs(x) * power(10, d) - floor(abs(x) * power(10, d)) - 0.5)
    + ((((134217729.0 * abs(x) - (134217729.0 * abs(x) - abs(x))) * (134217729.0 * power(10, d) - (134217729.0 * power(10, d) - power(10, d))) - abs(x) * power(10, d))
       + (134217729.0 * abs(x) - (134217729.0 * abs(x) - abs(x))) * (power(10, d) - (134217729.0 * power(10, d) - (134217729.0 * power(10, d) - power(10, d))))
       + (abs(x) - (134217729.0 * abs(x) - (134217729.0 * abs(x) - abs(x)))) * (134217729.0 * power(10, d) - (134217729.0 * power(10, d) - power(10, d))))
       + (abs(x) - (134217729.0 * abs(x) - (134217729.0 * abs(x) - abs(x)))) * (power(10, d) - (134217729.0 * power(10, d) - (134217729.0 * power(10, d) - power(10, d))))) >= 0
    THEN 1 ELSE 0 END) / power(10, d) END""",
    ),
    (
        "citykpi_exponent",
        """(a DOUBLE) RETURNS INT RETURN
CASE WHEN a < power(2, CAST(floor(log2(a)) AS INT)) THEN CAST(floor(log2(a)) AS INT) - 1
  WHEN a >= power(2, CAST(floor(log2(a)) AS INT) + 1) THEN CAST(floor(log2(a)) AS INT) + 1
  ELSE CAST(floor(log2(a)) AS INT) END""",
    ),
    (
        "citykpi_fixed_at",
        """(x DOUBLE, e INT) RETURNS DECIMAL(38, 0) RETURN
CASE WHEN e < -20 OR e > 45 THEN CAST(0 AS DECIMAL(38, 0))
  ELSE CAST(CAST(x * power(2, 52 - e) AS BIGINT) AS DECIMAL(38, 0))
    * CAST(shiftleft(1L, least(20 + e, 62)) AS DECIMAL(38, 0))
    * CAST(shiftleft(1L, greatest(20 + e - 62, 0)) AS DECIMAL(38, 0)) END""",
    ),
    (
        "citykpi_fixed",
        """(x DOUBLE) RETURNS DECIMAL(38, 0) RETURN
CASE WHEN x IS NULL THEN NULL WHEN x = 0 OR isnan(x) OR abs(x) = double('infinity') THEN CAST(0 AS DECIMAL(38, 0))
  ELSE citykpi_fixed_at(x, citykpi_exponent(abs(x))) END""",
    ),
    (
        "citykpi_loose",
        """(x DOUBLE) RETURNS DOUBLE RETURN
CASE WHEN x IS NULL THEN NULL WHEN x = 0 THEN 0.0
  WHEN isnan(x) OR abs(x) = double('infinity') OR abs(x) < power(2, -20) OR abs(x) >= power(2, 46) THEN x
  ELSE 0.0 END""",
    ),
    (
        "citykpi_text",
        """(x DOUBLE) RETURNS STRING RETURN
CASE WHEN x IS NULL THEN NULL
  WHEN isnan(x) THEN 'nan' WHEN x = double('infinity') THEN 'inf' WHEN x = double('-infinity') THEN '-inf'
  WHEN x = 0 THEN CASE WHEN CAST(x AS STRING) LIKE '-%' THEN '-0.0' ELSE '0.0' END
  WHEN abs(x) >= 0.0001 AND abs(x) < 10000000000000000 THEN
    regexp_replace(regexp_replace(CAST(CAST(x AS DECIMAL(38, 21)) AS STRING), '0+$', ''), '[.]$', '.0')
  ELSE regexp_replace(regexp_extract(CAST(x AS STRING), '^(-?[0-9.]+)E', 1), '[.]0$', '')
    || 'e' || CASE WHEN CAST(regexp_extract(CAST(x AS STRING), 'E(-?[0-9]+)$', 1) AS INT) < 0 THEN '-' ELSE '+' END
    || lpad(CAST(abs(CAST(regexp_extract(CAST(x AS STRING), 'E(-?[0-9]+)$', 1) AS INT)) AS STRING), 2, '0')
END""",
    ),
    (
        "citykpi_isfinite",
        """(x DOUBLE) RETURNS BOOLEAN RETURN NOT isnan(x) AND abs(x) <> double('infinity')""",
    ),
    (
        "citykpi_middle",
        """(s ARRAY<DOUBLE>, h INT) RETURNS DOUBLE RETURN
CASE WHEN size(s) % 2 = 1 THEN element_at(s, h + 1)
  ELSE element_at(s, h) * 0.5 + element_at(s, h + 1) * 0.5 END""",
    ),
    (
        "citykpi_median",
        """(a ARRAY<DOUBLE>) RETURNS DOUBLE RETURN
CASE WHEN a IS NULL OR size(a) = 0 THEN NULL ELSE citykpi_middle(sort_array(a), CAST(size(a) DIV 2 AS INT)) END""",
    ),
    (
        "citykpi_mad",
        """(a ARRAY<DOUBLE>, m DOUBLE) RETURNS DOUBLE RETURN
CASE WHEN a IS NULL OR size(a) = 0 THEN NULL
  WHEN size(a) % 2 = 1 THEN element_at(sort_array(transform(a, x -> abs(x - m))), CAST(size(a) DIV 2 AS INT) + 1)
  ELSE element_at(sort_array(transform(a, x -> abs(x - m))), CAST(size(a) DIV 2 AS INT)) * 0.5
    + element_at(sort_array(transform(a, x -> abs(x - m))), CAST(size(a) DIV 2 AS INT) + 1) * 0.5 END""",
    ),
    (
        "citykpi_divide",
        """(a DOUBLE, b DOUBLE) RETURNS DOUBLE RETURN
CASE WHEN a IS NULL OR b IS NULL THEN NULL WHEN b = 0 THEN CASE WHEN a > 0 THEN double('infinity') WHEN a < 0 THEN double('-infinity')
  ELSE double('NaN') END ELSE a / b END""",
    ),
)


def rewrites_markdown() -> str:
    """The table of :data:`SPARK_REWRITES` that docs/spark.md shows (``tests/test_spark_conformance.py``
    keeps it in step)."""
    rows = ["| # | rewrite | what DuckDB means, and what Spark does instead |", "|---|---|---|"]
    rows += [f"| {n} | `{r.name}` | {r.summary} |" for n, r in enumerate(SPARK_REWRITES, start=1)]
    return "\n".join(rows) + "\n"


def spark_function_sql() -> list[str]:
    """The statements that create :data:`SPARK_FUNCTIONS` in a Spark session (callees first)."""
    return [f"CREATE OR REPLACE TEMPORARY FUNCTION {name}{body}" for name, body in SPARK_FUNCTIONS]


#: What each rewrite is for, in the order they are applied (docs/spark.md lists this registry). Later
#: rewrites see the Spark SQL earlier ones produced, so the order matters: list indices first (a
#: regenerated operand would shift them), the compiler's own divisions before rewrites that divide by
#: what is never zero, and the casts rewritten before ``rounding``, whose own casts must stay as written.
SPARK_REWRITES: tuple[Rewrite, ...] = (
    Rewrite(
        "list_indexing",
        "list[i] is 1-based and NULL out of range in DuckDB: TRY_ELEMENT_AT(list, i)",
        list_indexing,
    ),
    Rewrite(
        "ieee_division",
        "x / 0 is ±inf or NaN in DuckDB, an error in ANSI Spark (unless the divisor is NULLIF-guarded)",
        ieee_division,
    ),
    Rewrite(
        "integer_division",
        "a // b truncates integers but divides DOUBLEs plainly in DuckDB; Spark's DIV refuses DOUBLEs: by operand type",
        integer_division,
    ),
    Rewrite(
        "counts_if",
        "count_if(c) is NULL in DuckDB when no row has a non-NULL c, 0 in Spark: NULL when COUNT(c) = 0",
        counts_if,
    ),
    Rewrite(
        "any_values",
        "any_value(x) skips NULLs; Spark's ANY_VALUE(x) IGNORE NULLS does not parse before FILTER: ANY_VALUE(x, TRUE)",
        any_values,
    ),
    Rewrite(
        "finite_checks",
        "isfinite(x) has no Spark function: citykpi_isfinite(x) (not NaN, not ±inf)",
        finite_checks,
    ),
    Rewrite(
        "medians",
        "median(x) interpolates as lo * 0.5 + hi * 0.5 and mad(x) exists in DuckDB only: citykpi_median / "
        "citykpi_mad over COLLECT_LIST(x) (spelled out: Spark refuses a session function inside a lambda)",
        medians,
    ),
    Rewrite(
        "list_means",
        "list_avg(xs) has no Spark function: the sum of its elements in list order over their count",
        list_means,
    ),
    Rewrite(
        "interval_functions",
        "to_days/to_weeks/to_months/to_years(n) have no Spark spelling: MAKE_DT_INTERVAL / MAKE_YM_INTERVAL",
        interval_functions,
    ),
    Rewrite(
        "qualify_filters",
        "QUALIFY does not exist in Spark (and sqlglot's rewrite loses the aliases it names): a filtered subquery",
        qualify_filters,
    ),
    Rewrite(
        "list_functions",
        "len(list) is LENGTH in sqlglot, text-only in Spark: SIZE; list_position(xs, x) is NULL when absent, "
        "Spark's ARRAY_POSITION 0: NULLIF(…, 0)",
        list_functions,
    ),
    Rewrite(
        "materialized_ctes", "WITH … AS MATERIALIZED has no Spark spelling: a plain CTE", materialized_ctes
    ),
    Rewrite(
        "named_windows",
        "OVER (w ORDER BY …) refines a named window, which Spark cannot: every window is spelled out",
        named_windows,
    ),
    Rewrite(
        "ordered_lists",
        "list(x ORDER BY k) transpiles to COLLECT_LIST(x), which loses the order: the sorted list of (k, x) structs",
        ordered_lists,
    ),
    Rewrite(
        "compensated_sums",
        "fsum/favg (DuckDB's compensated sums: the correctly rounded sum) become an exact sum of the doubles as "
        "integer multiples of 2^-72 in a DECIMAL, whatever order Spark adds the rows in",
        compensated_sums,
    ),
    Rewrite("epoch_seconds", "epoch(ts) keeps fractional seconds: UNIX_MICROS(ts) / 1e6", epoch_seconds),
    Rewrite(
        "date_differences",
        "date_diff(part, a, b) counts boundaries crossed, Spark's DATEDIFF(MONTH, …) whole months: from calendar fields",
        date_differences,
    ),
    Rewrite(
        "integer_casts",
        "CAST(double AS INTEGER) rounds half to even in DuckDB, truncates in Spark: BROUND first",
        integer_casts,
    ),
    Rewrite(
        "double_text",
        "CAST(double AS VARCHAR) prints 1e-05 / 10000000.0 in DuckDB, 1.0E-5 / 1.0E7 in Spark: DuckDB's form",
        double_text,
    ),
    Rewrite(
        "rounding",
        "round(x, d) rounds the exact binary double in DuckDB (17.95 → 17.9), the decimal text in Spark (18.0), "
        "whose ROUND also wants a constant d: an exact (Dekker) product decides the half",
        rounding,
    ),
)


class Translator:
    """Translate the statements of one plan, in order, into ``dialect``.

    Stateful on purpose: it remembers the columns of every table the plan creates with a column
    list, which the ``UPDATE`` rewrite needs (engines without UPDATE on session tables get a
    rebuilt table instead).

    ``ordered_tables``: the engine scans a session table in the order its query wrote it
    (:attr:`citykpi.backend.Backend.scans_in_order`). Where it does not, the ORDER BY of a query
    filling one (without LIMIT) is dropped: it would sort for nothing, the read sorts again.
    """

    def __init__(
        self,
        dialect: str,
        column_types: Callable[[str], Mapping[str, str]] | None = None,
        *,
        ordered_tables: bool = True,
    ) -> None:
        if dialect != CANONICAL and dialect not in DIALECTS:
            raise UsageError(f"no SQL dialect {dialect!r}; known: {', '.join([CANONICAL, *DIALECTS])}")
        self.dialect = dialect
        self.spec = DIALECTS.get(dialect, _IDENTITY)
        self.target = self.spec.sqlglot
        self.columns: dict[str, list[str]] = {}
        self.types = ColumnTypes(column_types)
        self.ctes = 0  # session tables made of shared CTEs so far (their names are numbered)
        self.ordered_tables = ordered_tables

    # --- statement-level rewrites ---------------------------------------------------------------

    def _table(self, name: str, *, columns: str = "", query: str = "") -> list[str]:
        """DDL for a session table, as the dialect spells one that later INSERTs can fill:
        ``columns`` a column list, or ``query`` the SELECT filling it."""
        cols = f" ({columns})" if columns else ""
        body = f" AS {query}" if query else ""
        return [part.format(name=name, columns=cols, query=body) for part in self.spec.session_table]

    def _gen(self, node: exp.Expression) -> str:
        return node.sql(dialect=self.target, unsupported_level=ErrorLevel.RAISE)

    def _create(self, tree: exp.Create) -> list[str]:
        if isinstance(tree.this, exp.Schema):
            name = tree.this.this.sql(dialect=self.target)
            self.columns[name] = [
                str(c.this.this) for c in tree.this.expressions if isinstance(c, exp.ColumnDef)
            ]
            cols = ", ".join(self._gen(c) for c in tree.this.expressions)
            return self._table(name, columns=cols)
        name = tree.this.sql(dialect=self.target)
        query = tree.expression
        if not self.ordered_tables and not query.args.get("limit") and not query.args.get("offset"):
            query.set("order", None)
        return self._table(name, query=self._gen(query))

    def _update(self, tree: exp.Update) -> list[str]:
        """``UPDATE t SET c = e FROM b WHERE cond`` → t rebuilt with ``CASE WHEN matched THEN e ELSE c END``.

        The FROM side must match at most one row per row of ``t`` (a key join), as in the compiler.
        """
        gen = self._gen
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
            *self._table(f"{name}_ck_new", query=f"SELECT {select} FROM {name}{join}"),
            f"DROP TABLE {name}",
            f"ALTER TABLE {name}_ck_new RENAME TO {name}",
        ]

    def _shared_ctes(self, tree: exp.Expression) -> tuple[list[exp.Expression], list[str]]:
        """Session tables for the CTEs a statement reads more than once (or marks MATERIALIZED).

        DuckDB computes such a CTE once; Spark inlines it into every reference, computing (and
        planning) it again each time. Each becomes ``CREATE TEMP TABLE ck_cte_<n>_<name>`` (with the
        CTEs before it, which it may use) ahead of the statement, which then reads the table;
        returns those statements and the DROPs that follow it.
        """
        query = tree.expression if isinstance(tree, exp.Create | exp.Insert) else tree
        with_ = query.args.get("with_") if isinstance(query, exp.Expression) else None
        if not isinstance(with_, exp.With) or not self.spec.materialize_shared_ctes:
            return [], []
        ctes = list(with_.expressions)
        before: list[exp.Expression] = []
        after: list[str] = []
        for i, cte in enumerate(ctes):
            name = cte.alias
            refs = [t for t in query.find_all(exp.Table) if t.name == name and not t.db]
            if len(refs) < 2 and not cte.args.get("materialized"):
                continue
            self.ctes += 1
            table = f"ck_cte_{self.ctes}_{name}"
            body = cte.this.copy()
            earlier = [c.copy() for c in ctes[:i] if c.parent is with_]
            if earlier:
                body.set("with_", exp.With(expressions=earlier))
            before.append(
                exp.Create(
                    this=exp.to_table(table),
                    kind="TABLE",
                    replace=True,
                    expression=body,
                    properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
                )
            )
            for ref in refs:
                ref.set("this", exp.to_identifier(table))
                if not ref.alias:
                    ref.set("alias", exp.TableAlias(this=exp.to_identifier(name)))
            cte.pop()
            after.append(f"DROP TABLE IF EXISTS {table}")
        if not with_.expressions:
            query.set("with_", None)
        return before, after

    def _one(self, tree: exp.Expression) -> list[str]:
        """The statements of one canonical tree, rewritten for the dialect."""
        self.types.forget()
        for rewrite in self.spec.rewrites:
            tree = rewrite.apply(tree, self.types)
        if _is_temp_table(tree):
            return self._create(tree)  # type: ignore[arg-type]
        if isinstance(tree, exp.Update):
            return self._update(tree)
        return [self._gen(tree)]

    def translate(self, sql: str) -> list[str]:
        """``sql`` (one canonical statement) as the statements this dialect runs.

        Raises:
            UsageError: the statement uses something the dialect cannot express.
        """
        if self.dialect == CANONICAL:
            return [sql]
        try:
            tree: exp.Expression = sqlglot.parse_one(sql, read=CANONICAL)  # type: ignore[assignment]
            before, after = self._shared_ctes(tree)
            out: list[str] = []
            for part in before:
                out += self._one(part)
            return [*out, *self._one(tree), *after]
        except SqlglotError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"cannot express this statement in {self.dialect}: {first}") from None


def _is_temp_table(tree: exp.Expression) -> bool:
    props = tree.args.get("properties")
    return (
        isinstance(tree, exp.Create)
        and str(tree.args.get("kind", "")).upper() == "TABLE"
        and props is not None
        and any(isinstance(p, exp.TemporaryProperty) for p in props.expressions)
    )


@dataclass(frozen=True)
class Dialect:
    """What differs per target engine: its sqlglot name, its session-table DDL, its tree rewrites.

    Session tables and UPDATE are rewritten by :class:`Translator` for every non-canonical dialect.
    """

    sqlglot: str
    #: format strings with {name}, {columns} (" (a INT, …)" or "") and {query} (" AS SELECT …" or "")
    session_table: tuple[str, ...]
    rewrites: Sequence[Rewrite] = SPARK_REWRITES
    #: CTEs read more than once become session tables first (engines that inline CTEs)
    materialize_shared_ctes: bool = True


def _plain_sums(tree: exp.Expression, types: ColumnTypes | None = None) -> exp.Expression:
    """``fsum``/``favg`` → ``SUM``/``AVG`` (DuckDB has no decimal remainder trick to check here)."""

    def fix(node: exp.Expression) -> exp.Expression:
        if _is_fn(node, "fsum", "favg"):
            cls = exp.Sum if str(node.this).lower() == "fsum" else exp.Avg
            return cls(this=node.expressions[0].copy())
        return node

    return tree.transform(fix)


_IDENTITY = Dialect(CANONICAL, ("CREATE OR REPLACE TEMP TABLE {name}{columns}{query}",), ())

#: The rewrites that keep the tree DuckDB SQL (DuckDB → DuckDB through them is what the rewrite tests run).
_PORTABLE = tuple(r for r in SPARK_REWRITES if r.name in ("ordered_lists", "materialized_ctes"))

#: dialect name → what to do for it (canonical DuckDB needs nothing and is not listed).
DIALECTS: dict[str, Dialect] = {
    # Spark's file-based session tables have no CREATE OR REPLACE: drop, then create (see docs/spark.md)
    "spark": Dialect(
        "spark", ("DROP TABLE IF EXISTS {name}", "CREATE TABLE {name}{columns} USING PARQUET{query}")
    ),
    # DuckDB → DuckDB through the statement rewrites and the portable tree rewrites: what tests use to
    # run rewritten statements on DuckDB itself
    "duckdb-rewritten": Dialect(
        "duckdb",
        ("CREATE OR REPLACE TEMP TABLE {name}{columns}{query}",),
        (
            Rewrite("plain_sums", "fsum/favg as SUM/AVG", _plain_sums),
            *_PORTABLE,
        ),
    ),
}


def translate(sql: str, dialect: str) -> list[str]:
    """One canonical statement as ``dialect`` runs it (a fresh :class:`Translator`; plans use one per plan)."""
    return Translator(dialect).translate(sql)
