"""Catalogue model → SQL. With forecast.py (early warning), the only module that writes evaluation SQL.

The whole catalogue compiles into a *constant* number of set-based statements: the catalogue
becomes small tables (one row per indicator, band set, override, input, component) that are
joined with the observations; per-indicator behaviour is table-driven (``CASE m.time_rollup …``),
never one query per indicator. Only formulas and measures, whose expressions differ, render one
``CASE``/``UNION ALL`` branch each inside a single statement.

Pipeline (temp tables, in order):

1. ``t_bucket``  raw observations in each indicator's windows → one row per indicator × area ×
   reporting bucket (R-period), with the time roll-up applied;
2. ``t_bucket`` += measures over raw source tables, recomputed at every ancestor level;
3. ``t_bucket`` += area roll-ups street → district → city where a parent has no data of its own;
4. ``t_k``       buckets re-indexed relative to each cell's latest bucket: k = 0 current,
   1 previous, … K history, −1 same period last year;
5. ``t_k``       += derived values (ratios, formulas), one statement per dependency layer
   (``ly`` and ``base`` mark the same period last year and a fixed base period);
6.–7. ``t_classified``  one statement: the basis value and colour of every k ≥ 0 row (bands
   with overrides), aggregated to one row per indicator × area at its declared levels: value,
   status, persistence, streak, changes, target progress, scale label, explanation;
8. ``t_index``   composite indices, one statement per nesting depth;
9. ``t_cells``   the cells with their forecasts, in the scorecard's order.

Everything here is pure: functions return SQL text. The catalogue tables it joins with are built by
``tables.py``, the dates by ``calendar.py``; ``plan.py`` orders the statements, ``execute.py`` runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import date, datetime

import polars as pl

from citykpi.catalogue import expressions as ex
from citykpi.catalogue.model import (
    BUILTIN_SOURCES,
    COLOURS,
    GRAINS,
    MIN_RELATIVE_AREAS,
    RELATIVE_NORMALISATIONS,
    Catalogue,
    Formula,
    Indicator,
    Measure,
    SourceTable,
)
from citykpi.engine.calendar import SUBDAILY_STEP, Moment, is_subdaily
from citykpi.engine.forecast import FORECAST_COLUMNS
from citykpi.engine.tables import CatalogueTables
from citykpi.errors import EvaluationError
from citykpi.sqlutil import ident, literal
from citykpi.vocab.bases import BASELINE_ALIAS, BASES, basis_value_sql
from citykpi.vocab.rollups import TIME_ROLLUPS


#: Index scores of the colours for ``colour_score`` normalisation.
def colour_of(severity: str) -> str:
    """SQL naming the colour of a 0-based severity expression: ['green', …, 'red'][severity + 1]."""
    return "[" + ", ".join(literal(c) for c in COLOURS) + f"][{severity} + 1]"


def is_colour(status: str) -> str:
    """SQL testing that a status expression is one of the five colours."""
    return f"{status} IN (" + ", ".join(literal(c) for c in COLOURS) + ")"


COLOUR_SCORE: dict[str, float] = {"green": 100.0, "blue": 80.0, "yellow": 60.0, "orange": 40.0, "red": 20.0}


# --- expressions ------------------------------------------------------------------------------

_SQL_FUNCS = {
    "abs": "abs",
    "round": "round",
    "least": "least",
    "greatest": "greatest",
    "coalesce": "coalesce",
    "nullif": "nullif",
    "count": "count",
    "count_if": "count_if",
    "sum": "fsum",
    "avg": "favg",
    "min": "min",
    "max": "max",
    "median": "median",
}


def render_expression(expr: ex.Expr, name_sql: Callable[[str], str]) -> str:
    """Render a parsed (whitelisted) expression AST as DuckDB SQL; names go through ``name_sql``."""
    r = lambda e: render_expression(e, name_sql)  # noqa: E731
    if isinstance(expr, ex.Number):
        return f"CAST({literal(float(expr.value))} AS DOUBLE)"
    if isinstance(expr, ex.String):
        return literal(expr.value)
    if isinstance(expr, ex.Name):
        return name_sql(expr.name)
    if isinstance(expr, ex.Star):
        return "*"
    if isinstance(expr, ex.Unary):
        return f"({expr.op}{r(expr.operand)})"
    if isinstance(expr, ex.Binary):
        if expr.op == "/":
            return f"({r(expr.left)} / NULLIF({r(expr.right)}, 0))"
        return f"({r(expr.left)} {expr.op} {r(expr.right)})"
    if isinstance(expr, ex.Compare):
        op = "<>" if expr.op == "!=" else expr.op
        return f"({r(expr.left)} {op} {r(expr.right)})"
    if isinstance(expr, ex.BoolOp):
        joiner = f" {expr.op.upper()} "
        return "(" + joiner.join(r(o) for o in expr.operands) + ")"
    if isinstance(expr, ex.Not):
        return f"(NOT {r(expr.operand)})"
    if isinstance(expr, ex.IsNull):
        return f"({r(expr.operand)} IS {'NOT ' if expr.negated else ''}NULL)"
    if isinstance(expr, ex.Call):
        if expr.func == "date_diff_hours":
            a, b = expr.args
            return f"(epoch({r(b)}) - epoch({r(a)})) / 3600.0"
        if expr.func == "count" and (not expr.args or isinstance(expr.args[0], ex.Star)):
            return "count(*)"
        if expr.func == "round" and len(expr.args) == 2:
            # DuckDB's round takes INTEGER digits; a number literal renders as DOUBLE
            digits = ex.whole_number(expr.args[1])
            places = str(digits) if digits is not None else f"CAST({r(expr.args[1])} AS INTEGER)"
            return f"round({r(expr.args[0])}, {places})"
        return f"{_SQL_FUNCS[expr.func]}({', '.join(r(a) for a in expr.args)})"
    raise EvaluationError(f"cannot render expression node {type(expr).__name__}")


# --- SQL steps ----------------------------------------------------------------------------------


def _bucket_cols(grain: str) -> str:
    """Columns of ``t_bucket``: buckets are dates, or date-times at sub-daily grains."""
    kind = "TIMESTAMP" if is_subdaily(grain) else "DATE"
    return (
        f"ikey INTEGER, area_key INTEGER, bucket {kind}, v DOUBLE, sn DOUBLE, sd DOUBLE, last_period TIMESTAMP, "
        "data_end TIMESTAMP, src TINYINT"
    )


def _moment(as_of: date | Moment) -> Moment:
    return as_of if isinstance(as_of, Moment) else Moment.of_day(as_of)


def bucket_of(grain: str, column: str, requested: str) -> str:
    """SQL: the start of the ``grain`` period holding timestamp ``column``, typed for the ``requested``
    grain's buckets (a DATE for day and coarser evaluations, a TIMESTAMP for sub-daily ones)."""
    if grain in SUBDAILY_STEP:
        minutes = int(SUBDAILY_STEP[grain].total_seconds() // 60)
        if minutes == 60:
            return f"date_trunc('hour', {column})"
        return f"time_bucket(INTERVAL {minutes} MINUTE, {column})"
    if is_subdaily(requested):
        return f"date_trunc('{grain}', {column})"
    return f"CAST(date_trunc('{grain}', {column}) AS DATE)"


def grains_from(grain: str) -> tuple[str, ...]:
    """The reporting grains an evaluation at ``grain`` can meet: it and every coarser one."""
    return GRAINS[GRAINS.index(grain) :]


#: src codes: 0 observed/own data, 1 area roll-up, 2 derived
SRC_OWN, SRC_ROLLUP, SRC_DERIVED = 0, 1, 2


def end_of(period: str, frequency: str) -> str:
    """SQL: the end of the raw period starting at ``period`` for an indicator of ``frequency`` (SQL expr)."""
    return f"""CASE {frequency} WHEN 'realtime' THEN {period} WHEN 'hourly' THEN {period} + INTERVAL 1 HOUR
      WHEN 'daily' THEN {period} + INTERVAL 1 DAY WHEN 'weekly' THEN {period} + INTERVAL 7 DAY
      WHEN 'monthly' THEN {period} + INTERVAL 1 MONTH WHEN 'quarterly' THEN {period} + INTERVAL 3 MONTH
      ELSE {period} + INTERVAL 1 YEAR END"""


#: ``count_where``: the record's value against the indicator's ``where`` condition (table-driven).
_WHERE = """(CASE m.where_op
              WHEN '<' THEN r.value < m.where_val WHEN '<=' THEN r.value <= m.where_val
              WHEN '>' THEN r.value > m.where_val WHEN '>=' THEN r.value >= m.where_val
              WHEN '=' THEN r.value = m.where_val WHEN '!=' THEN r.value <> m.where_val END)"""

#: Each time roll-up's aggregate over the records ``r`` of a bucket (``r.hit``: the record meets its
#: indicator's ``where``; ``r.dur``: the seconds it held, for the timed roll-ups). The GROUP BY is on
#: (indicator, area, bucket) alone, and computes only the aggregates of the roll-ups the compiled
#: catalogue uses; each indicator then picks its own (:data:`_PICK`). A period whose readings held for
#: no time at all (its only reading is at the instant evaluated) takes its latest reading as its
#: time-weighted mean.
_AGGREGATES: dict[str, str] = {
    "sum": "fsum(r.value)",
    "mean": "favg(r.value)",
    "last": "arg_max(r.value, r.period)",
    "max": "max(r.value)",
    "min": "min(r.value)",
    "count": "CAST(count(r.value) AS DOUBLE)",
    "count_where": "CAST(count_if(r.hit) AS DOUBLE)",
    "time_weighted_mean": """CASE WHEN fsum(CASE WHEN r.value IS NOT NULL THEN r.dur END) > 0
           THEN fsum(r.value * r.dur) / fsum(CASE WHEN r.value IS NOT NULL THEN r.dur END)
           ELSE arg_max(r.value, r.period) END""",
    "minutes_where": "coalesce(fsum(CASE WHEN r.hit THEN r.dur END), 0.0) / 60.0",
}


def _aggregated(used: Collection[str], parts: bool) -> tuple[str, str]:
    """(the aggregates of one bucket over ``many``, the SQL picking an indicator's value from them, ``a``)."""
    names = [n for n in _AGGREGATES if n in used]
    aggs = [f"{_AGGREGATES[n]} AS t_{n}" for n in names]
    if parts:
        aggs.append("fsum(r.numerator) AS sn, fsum(r.denominator) AS sd")
    else:
        aggs.append("NULL::DOUBLE AS sn, NULL::DOUBLE AS sd")
    pick = "CASE m.time_rollup " + " ".join(f"WHEN '{n}' THEN a.t_{n}" for n in names) + " END"
    if parts:
        pick = f"CASE WHEN m.with_parts THEN a.sn / NULLIF(a.sd, 0) * m.scale ELSE {pick} END"
    return ",\n         ".join(aggs), pick


_SINGLE_VALUE = """CASE WHEN m.with_parts THEN r.numerator / NULLIF(r.denominator, 0) * m.scale
       ELSE CASE m.time_rollup
         WHEN 'count' THEN CASE WHEN r.value IS NULL THEN 0.0 ELSE 1.0 END
         WHEN 'count_where' THEN CASE WHEN {WHERE} THEN 1.0 ELSE 0.0 END
         ELSE r.value END END""".replace("{WHERE}", _WHERE)


def _ranges(rows: pl.DataFrame) -> list[tuple[datetime, datetime]]:
    """Disjoint ranges [lo, hi) covering every indicator's read windows in ``rows``."""

    def ts(d: date) -> datetime:
        return d if isinstance(d, datetime) else datetime.combine(d, datetime.min.time())

    spans: list[tuple[datetime, datetime]] = []
    for win_lo, ly_lo, ly_hi in rows.select("win_lo", "ly_lo", "ly_hi").unique().iter_rows():
        spans.append((ts(win_lo), datetime.max))
        spans.append((ts(ly_lo), ts(ly_hi)))
    for pair in _EXTRA_WINDOWS:
        for lo, hi in rows.select(*pair).unique().iter_rows():
            if lo is not None:
                spans.append((ts(lo), ts(hi)))
    spans.sort()
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


#: Windows read beside the look-back and last year: a fixed base period ("down 20 % on 2010",
#: ``base_lo``/``base_hi``) and the day-ago and week-ago windows (``dy_lo``/``dy_hi``,
#: ``wk_lo``/``wk_hi``) of sub-daily cells.
_EXTRA_WINDOWS = (("base_lo", "base_hi"), ("dy_lo", "dy_hi"), ("wk_lo", "wk_hi"))


def _window_filter(grain: str) -> str:
    """SQL: the record ``o`` lies in indicator ``m``'s read windows."""
    base = """(o.period >= m.win_lo) OR (o.period >= m.ly_lo AND o.period < m.ly_hi)
       OR (o.period >= m.base_lo AND o.period < m.base_hi)"""
    if not is_subdaily(grain):
        return base
    return f"{base} OR (o.period >= m.dy_lo AND o.period < m.dy_hi) OR (o.period >= m.wk_lo AND o.period < m.wk_hi)"


#: Storage classes of observations (``warehouse.schema.frequency_class``), scanned one at a time.
STORAGE_CLASSES: tuple[int, ...] = (0, 1, 2)


def _record_shape(tables: CatalogueTables, classes: dict[int, set[int]]) -> tuple[bool, bool]:
    """(some indicator combines parts, some stored record may be alone in its period) for
    :func:`bucket_sql`. Records that may be alone are split off the GROUP BY and carry their own
    parts; when none can be, the scans carry neither the flags of that split nor parts nobody reads."""
    series = tables.ind.filter(pl.col("series_ikey").is_not_null())
    if not series.height:
        return False, False
    parts = bool(series.get_column("with_parts").any())
    stored = {k for k, cs in classes.items() if cs}
    plain_rows = series.filter(pl.col("series_ikey").is_in(list(stored)) & ~pl.col("timed"))
    return parts, bool(plain_rows.height) and bool(plain_rows.get_column("single").any())


def bucket_carries_parts(tables: CatalogueTables, classes: dict[int, set[int]]) -> bool:
    """Whether the buckets :func:`bucket_sql` writes may hold numerators and denominators (``sn``,
    ``sd``); when not, and no measure adds buckets, the area roll-ups need not sum them."""
    return any(_record_shape(tables, classes))


def slice_of(alias: str, part: tuple[int, int] | None) -> str:
    """`` AND <alias>.ikey % n = i``: the indicators of slice ``i`` of ``n`` (nothing for no slice).
    Every roll-up and comparison stays within one indicator, so slices of indicators partition
    the cells exactly."""
    if part is None:
        return ""
    i, n = part
    return f" AND {alias}.ikey % {int(n)} = {int(i)}"


def bucket_sql(
    tables: CatalogueTables,
    *,
    as_of: date | Moment,
    obs: str,
    classes: dict[int, set[int]],
    part: tuple[int, int] | None = None,
) -> str:
    """Step 1: observations → reporting buckets with the time roll-up applied.

    One scan per storage class over the union of its indicators' windows:
    monthly and yearly series live in row groups of their own (``freq_class`` 1), and so do
    realtime and hourly readings (``freq_class`` 2), so reading either skips the daily history.
    ``classes`` (series key → storage classes it has rows in, from ``series_classes``) keeps rows
    stored under another class reachable. ``part`` = (slice, slices): only the indicators of that
    slice (see :func:`slice_of`).
    """
    grain = tables.grain
    hi = _moment(as_of).end
    series = tables.ind.filter(pl.col("series_ikey").is_not_null())
    # the bucket of a record, by its indicator's reporting grain (one grain: no CASE at all)
    present = set(series.get_column("rgrain").to_list())
    rgrains = [g for g in grains_from(grain) if g in present] or [grain]
    if len(rgrains) == 1:
        bucket = bucket_of(rgrains[0], "o.period", grain)
    else:
        bucket = (
            "CASE m.rgrain "
            + " ".join(f"WHEN '{g}' THEN {bucket_of(g, 'o.period', grain)}" for g in rgrains)
            + " END"
        )
    timed = bool(series.height) and bool(series.get_column("timed").any())
    used = set(series.get_column("time_rollup").to_list())
    parts, any_split = _record_shape(tables, classes)
    # the records' own facts the aggregates read: the where condition, the time held
    hit = (
        ", " + _WHERE.replace("r.value", "o.value") + " AS hit"
        if used & {n for n in TIME_ROLLUPS if TIME_ROLLUPS[n].needs_where}
        else ""
    )
    dur = ", NULL::DOUBLE AS dur" if timed else ""
    flags = f", m.single, m.single AND o.period = CAST({bucket} AS TIMESTAMP) AS pass" if any_split else ""
    cols = ", o.numerator, o.denominator" if parts or any_split else ""
    split: list[str] = []  # scans with records that may be alone in their period: materialised, then split
    streamed: list[str] = []  # scans of series that always aggregate: straight into the GROUP BY
    for fc in STORAGE_CLASSES:
        with_class = [k for k, cs in classes.items() if fc in cs]
        rows = series.filter(pl.col("series_ikey").is_in(with_class))
        plain = rows.filter(~pl.col("timed")) if timed else rows
        any_single = bool(plain.height) and bool(plain.get_column("single").any())
        for lo, top in _ranges(plain):
            top_ts = min(hi, top)
            (split if any_single else streamed).append(
                f"""SELECT m.ikey, o.area_key, {bucket} AS bucket, o.period, o.value{cols}{flags}{hit}{dur}
FROM {obs} o JOIN ck_ind m ON o.indicator_key = m.series_ikey{slice_of("m", part)}
WHERE o.freq_class = {fc}{" AND NOT m.timed" if timed else ""}
  AND o.period >= {literal(lo)} AND o.period < {literal(top_ts)}
  AND ({_window_filter(grain)})"""
            )
        if timed:
            for lo, top in _ranges(rows.filter(pl.col("timed"))):
                streamed.append(
                    _timed_scan(
                        bucket,
                        obs,
                        fc,
                        lo,
                        min(hi, top),
                        _moment(as_of).now,
                        grain,
                        cols + (", FALSE AS single, FALSE AS pass" if any_split else "") + hit,
                        slice_of("m", part),
                    )
                )
    if not split and not streamed:
        return f"CREATE OR REPLACE TEMP TABLE t_bucket ({_bucket_cols(grain)})"
    # Records that are alone in their reporting period (``pass``) skip the GROUP BY: at day grain
    # that is nearly every record. A period that also holds an off-grid record of the same series
    # (``mixed``, normally none) is aggregated whole, so the result is the same either way. Only the
    # scans that can hold such records are materialised to be split; at month and year grain the
    # daily history streams into the GROUP BY without being held in memory first.
    aggs, pick = _aggregated(used, parts)
    agg = f"""agg AS (
  SELECT r.ikey, r.area_key, r.bucket,
         {aggs}, max(r.period) AS last_period
  FROM many r GROUP BY r.ikey, r.area_key, r.bucket
)"""
    aggregated = f"""SELECT a.ikey, a.area_key, a.bucket, {pick} AS v, a.sn, a.sd, a.last_period,
       {end_of("a.last_period", "m.frequency")} AS data_end, {SRC_OWN}::TINYINT AS src
FROM agg a JOIN ck_ind m ON m.ikey = a.ikey"""
    if not split:
        streamed_union = "\n  UNION ALL\n  ".join(streamed)
        return f"""CREATE OR REPLACE TEMP TABLE t_bucket AS
WITH many AS (
  {streamed_union}
),
{agg}
{aggregated}"""
    many = "\n  UNION ALL\n  ".join(
        [
            "SELECT r.* FROM r WHERE NOT r.pass",
            "SELECT r.* FROM r SEMI JOIN mixed x ON x.ikey = r.ikey AND x.area_key = r.area_key "
            "AND x.bucket = r.bucket\n  WHERE r.pass",
            *streamed,
        ]
    )
    split_union = "\nUNION ALL\n".join(split)
    return f"""CREATE OR REPLACE TEMP TABLE t_bucket AS
WITH r AS MATERIALIZED (
{split_union}
),
mixed AS (SELECT DISTINCT ikey, area_key, bucket FROM r WHERE single AND NOT pass),
one AS (SELECT r.* FROM r ANTI JOIN mixed x ON x.ikey = r.ikey AND x.area_key = r.area_key AND x.bucket = r.bucket
        WHERE r.pass),
many AS (
  {many}
),
{agg}
SELECT r.ikey, r.area_key, r.bucket, {_SINGLE_VALUE} AS v,
       r.numerator AS sn, r.denominator AS sd, r.period AS last_period,
       {end_of("r.period", "m.frequency")} AS data_end, {SRC_OWN}::TINYINT AS src
FROM one r JOIN ck_ind m ON m.ikey = r.ikey
UNION ALL
{aggregated}"""


def _timed_scan(
    bucket: str,
    obs: str,
    fc: int,
    lo: datetime,
    top: datetime,
    now: datetime,
    grain: str,
    extra: str,
    only: str = "",
) -> str:
    """A scan of the records of timed roll-ups, each with ``dur``: the seconds until the next record of
    its period, or until the period ends (or the instant evaluated, whichever is first) for the last."""
    ends = " ".join(
        f"WHEN '{g}' THEN CAST({bucket} AS TIMESTAMP) + INTERVAL {_GRAIN_INTERVALS[g]}"
        for g in grains_from(grain)
    )
    return f"""SELECT t.* EXCLUDE (bucket_end),
    epoch(least(coalesce(lead(t.period) OVER (PARTITION BY t.ikey, t.area_key, t.bucket ORDER BY t.period),
                         t.bucket_end), {literal(now)})) - epoch(t.period) AS dur
  FROM (
    SELECT m.ikey, o.area_key, {bucket} AS bucket, o.period, o.value{extra},
       CASE m.rgrain {ends} END AS bucket_end
    FROM {obs} o JOIN ck_ind m ON o.indicator_key = m.series_ikey{only}
    WHERE o.freq_class = {fc} AND m.timed
      AND o.period >= {literal(lo)} AND o.period < {literal(top)}
      AND ({_window_filter(grain)})
  ) t"""


#: The length of a period of each grain, as a SQL interval.
_GRAIN_INTERVALS: dict[str, str] = {
    "15min": "15 MINUTE",
    "hour": "1 HOUR",
    "day": "1 DAY",
    "week": "7 DAY",
    "month": "1 MONTH",
    "quarter": "3 MONTH",
    "year": "1 YEAR",
}


def measure_sql(
    tables: CatalogueTables,
    catalogue: Catalogue,
    keys: dict[str, int],
    *,
    as_of: date | Moment,
    source_table: Callable[[SourceTable], str],
) -> str | None:
    """Step 2: measures over raw source tables, recomputed at every ancestor level (one statement)."""
    if not tables.measures:
        return None
    sources = {**BUILTIN_SOURCES, **{s.id: s for s in catalogue.sources}}
    hi = _moment(as_of).end
    # the read window build_tables worked out (with any history_from), by indicator key
    windows = {
        r["ikey"]: r
        for r in tables.ind.select(
            "ikey", "rgrain", "win_lo", "ly_lo", "ly_hi", "base_lo", "base_hi"
        ).iter_rows(named=True)
    }
    parts: list[str] = []
    for ind in tables.measures:
        m = ind.value
        assert isinstance(m, Measure)
        src = sources[m.source]
        cols = set(src.columns)

        def col(name: str, _cols: set[str] = cols, _id: str = ind.id) -> str:
            if name not in _cols:
                raise EvaluationError(f"unknown column {name!r} in measure of {_id}")
            return "s." + ident(name)

        num = render_expression(ex.parse_expression(m.numerator, names=cols, aggregates=True), col)
        den = (
            render_expression(ex.parse_expression(m.denominator, names=cols, aggregates=True), col)
            if m.denominator
            else "1.0"
        )
        flt = (
            render_expression(ex.parse_expression(m.filter, names=cols, aggregates=False), col)
            if m.filter
            else "TRUE"
        )
        if src.filter:  # the source's own rule of which rows count (e.g. no duplicates)
            flt = f"({flt}) AND {render_expression(ex.parse_expression(src.filter, names=cols), col)}"
        w = windows[keys[ind.id]]
        tcol = "s." + ident(src.time_column)
        base = ""
        if w["base_lo"] is not None:
            base = f"\n       OR ({tcol} >= {literal(_ts(w['base_lo']))} AND {tcol} < {literal(_ts(w['base_hi']))})"
        parts.append(
            f"""SELECT {keys[ind.id]} AS ikey, a.anc_key AS area_key,
       {bucket_of(w["rgrain"], tcol, tables.grain)} AS bucket,
       CAST({num} AS DOUBLE) AS sn, CAST({den} AS DOUBLE) AS sd, max({tcol}) AS last_period
FROM {source_table(src)} s JOIN t_anc a ON a.area_key = s.area_key
WHERE {flt} AND {tcol} < {literal(hi)}
  AND ({tcol} >= {literal(_ts(w["win_lo"]))}
       OR ({tcol} >= {literal(_ts(w["ly_lo"]))}
           AND {tcol} < {literal(_ts(w["ly_hi"]))}){base})
GROUP BY a.anc_key, bucket"""
        )
    union = "\nUNION ALL\n".join(parts)
    return f"""INSERT INTO t_bucket
SELECT q.ikey, q.area_key, q.bucket, q.sn / NULLIF(q.sd, 0) * m.scale AS v, q.sn, q.sd, q.last_period,
  q.last_period + INTERVAL 1 DAY AS data_end, {SRC_OWN}
FROM (
{union}
) q JOIN ck_ind m ON m.ikey = q.ikey"""


def _ts(d: date) -> datetime:
    """A window bound as a timestamp (day windows are dates)."""
    return d if isinstance(d, datetime) else datetime.combine(d, datetime.min.time())


#: Each area roll-up that combines children: its aggregate over the child buckets ``c`` (areas ``a``,
#: indicator ``m``); only those of the roll-ups the compiled catalogue uses are computed.
_AREA_AGGREGATES: dict[str, str] = {
    "sum": "fsum(c.v)",
    "mean": "favg(c.v)",
    "max": "max(c.v)",
    "min": "min(c.v)",
    "worst": """CASE any_value(m.direction) WHEN 'lower_is_better' THEN max(c.v)
                        WHEN 'higher_is_better' THEN min(c.v) ELSE arg_max(c.v, abs(c.v - m.mid)) END""",
    "weighted_mean": "fsum(c.v * a.population) / NULLIF(fsum(CASE WHEN c.v IS NOT NULL THEN a.population END), 0)",
    "ratio_of_sums": "fsum(c.sn) / NULLIF(fsum(c.sd), 0) * any_value(m.scale)",
}


def rollup_sql(child_level: str, used: Collection[str] | None = None, parts: bool = True) -> str:
    """Step 3: roll children at ``child_level`` up to their parents that lack data of their own.

    Grouped by indicator, parent and bucket alone; only the area roll-ups in ``used`` (those of the
    indicators compiled; None: all) are computed — every aggregate of a CASE is, for every group —
    and with one in use, it alone, with no CASE. Numerators and denominators are summed only when
    the buckets may hold them (``parts``)."""
    names = [n for n in _AREA_AGGREGATES if used is None or n in used]
    if len(names) == 1:  # the WHERE below leaves only its indicators' rows
        value = _AREA_AGGREGATES[names[0]]
    elif names:
        value = (
            "CASE any_value(m.area_rollup) "
            + "\n      ".join(f"WHEN '{n}' THEN {_AREA_AGGREGATES[n]}" for n in names)
            + " END"
        )
    else:
        value = "NULL::DOUBLE"
    combining = ", ".join(f"'{n}'" for n in (names or _AREA_AGGREGATES))
    sums = "fsum(c.sn) AS sn, fsum(c.sd) AS sd" if parts else "NULL::DOUBLE AS sn, NULL::DOUBLE AS sd"
    return f"""INSERT INTO t_bucket
SELECT * FROM (
  SELECT c.ikey, a.parent_key AS area_key, c.bucket,
    {value} AS v,
    {sums}, max(c.last_period) AS last_period, max(c.data_end) AS data_end,
    {SRC_ROLLUP}::TINYINT AS src
  FROM t_bucket c
  JOIN t_area a ON a.area_key = c.area_key AND a.level = '{child_level}' AND a.parent_key IS NOT NULL
  JOIN ck_ind m ON m.ikey = c.ikey
  WHERE m.area_rollup IN ({combining})
  GROUP BY c.ikey, a.parent_key, c.bucket
) q ANTI JOIN t_bucket own ON own.ikey = q.ikey AND own.area_key = q.area_key AND own.bucket = q.bucket"""


_K_OF = """CASE m.rgrain{SUBDAILY}
  WHEN 'day' THEN date_diff('day', b.bucket, c.cb)
  WHEN 'week' THEN date_diff('day', b.bucket, c.cb) // 7
  WHEN 'month' THEN date_diff('month', b.bucket, c.cb)
  WHEN 'quarter' THEN date_diff('quarter', b.bucket, c.cb)
  ELSE date_diff('year', b.bucket, c.cb) END"""
_K_OF_SUBDAILY = """
  WHEN '15min' THEN date_diff('minute', b.bucket, c.cb) // 15
  WHEN 'hour' THEN date_diff('hour', b.bucket, c.cb)"""

_LY_OF = """CASE m.rgrain WHEN 'week' THEN c.cb - INTERVAL 364 DAY
  WHEN 'day' THEN c.cb - INTERVAL 1 YEAR ELSE c.cb - INTERVAL 1 YEAR END"""


def k_index_sql(grain: str = "day") -> str:
    """Step 4: index buckets relative to each cell's latest bucket (k = 0 current; ``ly`` marks last
    year, ``base`` the indicator's fixed base period).

    At sub-daily grains the buckets a day and a week before the period evaluated are kept too,
    flagged ``dy`` and ``wk`` (k = -1 when they lie beyond the history).
    """
    sub = is_subdaily(grain)
    k_of = _K_OF.replace("{SUBDAILY}", _K_OF_SUBDAILY if sub else "")
    ly = f"b.bucket = {_LY_OF}" if sub else f"b.bucket = CAST({_LY_OF} AS DATE)"
    extra = (
        ", coalesce(b.bucket = m.dy_lo, FALSE) AS dy, coalesce(b.bucket = m.wk_lo, FALSE) AS wk"
        if sub
        else ""
    )
    flags = ", dy, wk" if sub else ""
    more = " OR dy OR wk" if sub else ""
    return f"""CREATE OR REPLACE TEMP TABLE t_k AS
WITH cur AS (
  SELECT b.ikey, b.area_key, max(b.bucket) AS cb
  FROM t_bucket b JOIN ck_ind m ON m.ikey = b.ikey
  WHERE b.bucket >= m.cand_lo AND b.v IS NOT NULL
  GROUP BY b.ikey, b.area_key
),
x AS (
  SELECT b.*, {k_of} AS k0, {ly} AS ly, m.hist{extra},
    coalesce(b.bucket = m.base_lo, false) AS base
  FROM t_bucket b JOIN cur c ON c.ikey = b.ikey AND c.area_key = b.area_key
  JOIN ck_ind m ON m.ikey = b.ikey
  WHERE b.bucket <= c.cb
)
SELECT ikey, area_key, (CASE WHEN k0 <= hist THEN k0 ELSE -1 END)::INTEGER AS k, ly{flags},
  bucket, v, last_period, data_end, src, base
FROM x WHERE k0 <= hist OR ly OR base{more}"""


def derived_sql(layer_no: int, layer: Sequence[Indicator], keys: dict[str, int], grain: str = "day") -> str:
    """Step 5: ratios and formulas of one dependency layer, combined by area and k (and, at sub-daily
    grains, the day-ago and week-ago flags)."""
    branches: list[str] = []
    for ind in layer:
        v = ind.value
        if isinstance(v, Formula):
            slots = {name: n for n, name in enumerate(sorted(v.inputs), start=1)}
            expr = ex.parse_expression(v.expression, names=set(slots), aggregates=False)

            def slot_sql(name: str, _slots: dict[str, int] = slots) -> str:
                return f"max(i.v) FILTER (WHERE f.slot = {_slots[name]})"

            body = render_expression(expr, slot_sql)
            branches.append(f"WHEN {keys[ind.id]} THEN {body}")
    formula = ("CASE f.ikey " + " ".join(branches) + " END") if branches else "NULL"
    flags = ", i.dy, i.wk" if is_subdaily(grain) else ""
    return f"""INSERT INTO t_k
SELECT f.ikey, i.area_key, i.k, i.ly{flags}, max(i.bucket) AS bucket,
  CASE WHEN m.vkind = 'ratio'
       THEN max(i.v) FILTER (WHERE f.slot = 1) / NULLIF(max(i.v) FILTER (WHERE f.slot = 2), 0) * m.scale
       ELSE {formula} END AS v,
  min(i.last_period) AS last_period, min(i.data_end) AS data_end,
  {SRC_DERIVED}::TINYINT AS src, i.base
FROM ck_input f JOIN t_k i ON i.ikey = f.input_ikey
JOIN ck_ind m ON m.ikey = f.ikey
WHERE f.layer = {layer_no}
GROUP BY f.ikey, i.area_key, i.k, i.ly{flags}, i.base, m.vkind, m.scale
HAVING count(DISTINCT f.slot) = (SELECT count(*) FROM ck_input g WHERE g.ikey = f.ikey)"""


def _severity(v: str, b: str) -> str:
    """SQL severity (0–4) of value ``v`` against band-set alias ``b``; NULL when ``v`` is NULL."""
    gt = f"(CASE WHEN {b}.inclusive THEN {v} >= {{c}} ELSE {v} > {{c}} END)"
    lt = f"(CASE WHEN {b}.inclusive THEN {v} <= {{c}} ELSE {v} < {{c}} END)"
    lower = " ".join(
        f"WHEN {gt.format(c=f'{b}.c_{c}')} THEN {n}" for n, c in reversed(list(enumerate(COLOURS))) if n > 0
    )
    higher = " ".join(
        f"WHEN {lt.format(c=f'{b}.c_{c}')} THEN {n}" for n, c in reversed(list(enumerate(COLOURS))) if n > 0
    )
    band = " ".join(f"WHEN {v} BETWEEN {b}.lo_{c} AND {b}.hi_{c} THEN {n}" for n, c in enumerate(COLOURS[:4]))
    return f"""CASE WHEN {v} IS NULL OR isnan({v}) THEN NULL
  WHEN {b}.direction = 'lower_is_better' THEN CASE {lower} ELSE 0 END
  WHEN {b}.direction = 'higher_is_better' THEN CASE {higher} ELSE 0 END
  ELSE CASE {band} ELSE 4 END END"""


#: The severity of a value against a band set (public for the alert lifecycle's SQL).
severity_sql = _severity


def _change(cur: str, prev: str) -> str:
    return f"""CASE WHEN m.change_unit = 'points' THEN {cur} - {prev}
  ELSE ({cur} - {prev}) / NULLIF(abs({prev}), 0) * 100 END"""


def _bases_requiring(what: str) -> str:
    """SQL list of the registered bases that need ``what`` (``previous_period``, ``last_year``)."""
    names = [literal(b.name) for b in BASES.values() if what in b.requires]
    return "(" + (", ".join(names) if names else "NULL") + ")"


def _needed(what: str, bases: Collection[str] | None) -> bool:
    """Some basis in ``bases`` (every registered one when None) needs ``what``."""
    return any(what in b.requires for b in BASES.values() if bases is None or b.name in bases)


def classify_sql(where: str = "", bases: Collection[str] | None = None) -> str:
    """Step 6: basis value and colour severity of every current/history row (with overrides).

    A query over ``t_k`` (every row kept for the scorecard, or those meeting ``where`` on its alias
    ``t``; ``sev`` is NULL for the last-year row, k = -1) that the cells statement reads. The
    previous, last-year and base-period rows and the seasonal baselines are joined only for
    indicators whose basis needs them (the registry's ``requires``), so the self-joins stay small;
    ``bases`` (the bases the catalogue uses; all registered ones when None) leaves out the joins
    no indicator needs.
    """
    # one WHEN per registered threshold basis (citykpi/vocab/bases/): a new basis needs no edit here
    prev = _needed("previous_period", bases)
    last = _needed("last_year", bases)
    base = _needed("base_period", bases)
    seasonal = _needed("seasonal_baseline", bases)
    basis = basis_value_sql(
        "m.basis",
        "t.v",
        "m.target_value",
        "m.limit_value",
        "p.v" if prev else "NULL::DOUBLE",
        "y.v" if last else "NULL::DOUBLE",
        "m.change_unit",
        only=bases,
    )
    joins = ""
    if prev:
        joins += f"""
  LEFT JOIN (SELECT q.ikey, q.area_key, q.k, q.v FROM t_k q JOIN ck_ind mq ON mq.ikey = q.ikey
             WHERE mq.basis IN {_bases_requiring("previous_period")}) p
    ON p.ikey = t.ikey AND p.area_key = t.area_key AND p.k = t.k + 1"""
    if last:
        joins += f"""
  LEFT JOIN (SELECT q.ikey, q.area_key, q.v FROM t_k q JOIN ck_ind mq ON mq.ikey = q.ikey
             WHERE q.ly AND mq.basis IN {_bases_requiring("last_year")}) y
    ON y.ikey = t.ikey AND y.area_key = t.area_key AND t.k = 0"""
    if base:
        joins += f"""
  LEFT JOIN (SELECT q.ikey, q.area_key, q.v FROM t_k q JOIN ck_ind mq ON mq.ikey = q.ikey
             WHERE q.base AND mq.basis IN {_bases_requiring("base_period")}) bp
    ON bp.ikey = t.ikey AND bp.area_key = t.area_key"""
    joins += """
  LEFT JOIN ck_override oa ON oa.ikey = t.ikey AND oa.area_key = t.area_key
  LEFT JOIN ck_override ol ON ol.ikey = t.ikey AND ol.area_key IS NULL AND ol.level = a.level"""
    if seasonal:
        joins += f"""
  LEFT JOIN t_baseline {BASELINE_ALIAS} ON {BASELINE_ALIAS}.ikey = t.ikey AND {BASELINE_ALIAS}.area_key = t.area_key
    AND {BASELINE_ALIAS}.k = t.k"""
    also = f"\n    AND {where}" if where else ""
    return f"""SELECT b.*, CASE WHEN b.k >= 0 THEN {_severity("b.bv", "bs")} END AS sev
FROM (
  SELECT t.*, {basis} AS bv,
         coalesce(oa.bs_id, ol.bs_id, m.bs_id) AS bs_id
  FROM t_k t JOIN ck_ind m ON m.ikey = t.ikey
  JOIN t_area a ON a.area_key = t.area_key{joins}
  WHERE t.k <= m.keep  -- periods read further back only for forecasts and baselines are not classified{also}
) b JOIN ck_bandset bs ON bs.bs_id = b.bs_id"""


#: The streak is counted with one bit per history period while the deepest history fits a BIGINT.
MASK_PERIODS = 62


def _streak_parts(max_k: int) -> tuple[str, str, str, str]:
    """The streak (periods running at the current colour): its aggregates over the history, the
    columns that carry them beside the current row ``z``, the same columns further on, and the
    expression over those (``j``).

    With at most :data:`MASK_PERIODS` periods of history, one bit mask per colour (bit k set when
    period k has that colour) gives the streak as the trailing ones of the current colour's mask,
    with no ordered aggregate and without joining the history to the current row. Deeper histories
    (drill-downs far back) use ordered lists.
    """
    if max_k < MASK_PERIODS:
        aggs = ",\n    ".join(
            f"bit_or(1::BIGINT << greatest(c.k, 0)) FILTER (WHERE c.k >= 0 AND c.sev = {n}) AS smask{n}"
            for n in range(len(COLOURS))
        )
        pick = (
            "CASE z.sev "
            + " ".join(f"WHEN {n} THEN h.smask{n}" for n in range(len(COLOURS)))
            + " END AS smask"
        )
        return aggs, pick, "h.smask", "bit_count(xor(j.smask, j.smask + 1)) - 1"
    aggs = """list(c.sev ORDER BY c.k) FILTER (WHERE c.k >= 0) AS sev_list,
    list(c.k ORDER BY c.k) FILTER (WHERE c.k >= 0) AS k_list"""
    expr = """coalesce(list_position(list_transform(range(len(j.sev_list)),
        lambda i: j.sev_list[i + 1] IS DISTINCT FROM j.sev0 OR j.k_list[i + 1] <> i), true) - 1, len(j.sev_list))"""
    return aggs, "h.sev_list, h.k_list", "h.sev_list, h.k_list", expr


def cumulative_sql(tables: CatalogueTables, *, as_of: date | Moment, obs: str) -> str:
    """Sums since ``baseline_date`` for indicators whose target method is ``cumulative`` (one statement).

    Areas without data of their own get the sum of their descendants' sums.
    """
    cum = tables.ind.filter((pl.col("target_method") == "cumulative") & pl.col("series_ikey").is_not_null())
    if cum.is_empty():
        return "CREATE OR REPLACE TEMP TABLE t_cum (ikey INTEGER, area_key INTEGER, cum DOUBLE)"
    lo = datetime.combine(min(cum["baseline_date"].to_list()), datetime.min.time())
    hi = _moment(as_of).end
    return f"""CREATE OR REPLACE TEMP TABLE t_cum AS
WITH own AS (
  SELECT m.ikey, o.area_key, fsum(o.value) AS cum
  FROM {obs} o JOIN ck_ind m ON o.indicator_key = m.series_ikey
  WHERE m.target_method = 'cumulative' AND o.period >= {literal(lo)} AND o.period < {literal(hi)}
    AND o.period >= m.baseline_date
  GROUP BY m.ikey, o.area_key
)
SELECT ikey, area_key, cum FROM own
UNION ALL
SELECT o.ikey, a.anc_key, fsum(o.cum) FROM own o JOIN t_anc a ON a.area_key = o.area_key AND a.anc_key <> a.area_key
ANTI JOIN own p ON p.ikey = o.ikey AND p.area_key = a.anc_key
GROUP BY o.ikey, a.anc_key"""


def cells_query(
    *,
    as_of: date | Moment,
    level_filter: Sequence[str] | None,
    area_filter: Sequence[int] | None,
    max_k: int,
    grain: str = "day",
    persistence: bool = True,
    base_periods: bool = True,
    week_in_history: bool = True,
    bases: Collection[str] | None = None,
    part: tuple[int, int] | None = None,
) -> str:
    """Steps 6–7: classify, then one row per indicator × area at its declared levels (a query).

    ``max_k`` is the deepest history period kept (it decides how streaks are counted);
    ``persistence``: some indicator has ``for_periods`` above 1; ``base_periods``: some indicator
    has a fixed ``base_period``; ``week_in_history``: some indicator's week-ago period is a history
    period (k = ``wk_k``), not only the sub-daily week-ago bucket (``wk``); ``bases``: the threshold
    bases the indicators use (None: any; joins for the others are left out); ``part``: only the
    cells of that slice of the indicators (see :func:`slice_of`).

    Each cell's current row is picked by key (k = 0 is one row per cell); its previous, week-ago,
    last-year, base-period (and, sub-daily, day-ago) values come from one aggregate over only the
    rows flagged for them; the history (streak, persistence) is aggregated over the periods with
    narrow aggregates alone. (One wide aggregate over every period for all of these is far
    slower: the engine carries its width for every row it has not yet combined, 2.4× for an hour
    of the city.) Sub-daily cells also carry the same period a day earlier (``day_ago_value``),
    and their ``period_end`` is the end instant of the period (exclusive) instead of its last day.
    """
    sub = is_subdaily(grain)
    streak_aggs, streak_picked, streak_cols, streak = _streak_parts(max_k)
    moment = _moment(as_of)
    end = literal(moment.now)
    as_of_lit = literal(moment.day)
    if sub:
        week_ago = "c.wk OR c.k = m.wk_k" if week_in_history else "c.wk"
    else:
        week_ago = "c.k = 7 AND m.rgrain = 'day'"
    # the values each cell is compared with, one pass over the rows flagged for them
    compared = [("v1", "c.k = 1"), ("v7", week_ago), ("vly", "c.ly")]
    if base_periods:
        compared.append(("vbase", "c.base"))
    if sub:
        compared.append(("vdy", "c.dy"))
    compared_sql = ",\n    ".join(f"any_value(c.v) FILTER (WHERE {w}) AS {name}" for name, w in compared)
    compared_where = " OR ".join(f"({w})" if " OR " in w else w for _, w in compared)
    # the week-ago row is known by its flag alone unless it may be a history period (m.wk_k, m.rgrain)
    compared_join = " JOIN ck_ind m ON m.ikey = c.ikey" if not sub or week_in_history else ""
    base_sel = "p.vbase" if base_periods else "NULL::DOUBLE"
    day_ago_sel = ", p.vdy" if sub else ""
    if persistence:
        persist_aggs = """count(*) FILTER (WHERE c.k >= 0 AND c.k < m.for_periods AND c.sev IS NOT NULL) AS persist_n,
    min(c.sev) FILTER (WHERE c.k >= 0 AND c.k < m.for_periods) AS persist_sev"""
        persist_join = " JOIN ck_ind m ON m.ikey = c.ikey"
    else:
        persist_aggs = "NULL::BIGINT AS persist_n, NULL::TINYINT AS persist_sev"
        persist_join = ""
    day_ago_col = ", h.vdy" if sub else ""
    day_ago_out = (
        """
  s.vdy AS day_ago_value,
  CASE WHEN s.change_unit = 'points' THEN s.v0 - s.vdy ELSE (s.v0 - s.vdy) / NULLIF(abs(s.vdy), 0) * 100 END AS change_day_ago,"""
        if sub
        else ""
    )
    if sub:
        period_end = """CASE j.rgrain WHEN '15min' THEN j.bucket0 + INTERVAL 15 MINUTE
      WHEN 'hour' THEN j.bucket0 + INTERVAL 1 HOUR WHEN 'day' THEN j.bucket0 + INTERVAL 1 DAY
      WHEN 'week' THEN j.bucket0 + INTERVAL 7 DAY WHEN 'month' THEN j.bucket0 + INTERVAL 1 MONTH
      WHEN 'quarter' THEN j.bucket0 + INTERVAL 3 MONTH ELSE j.bucket0 + INTERVAL 1 YEAR END"""
    else:
        period_end = """CASE j.rgrain WHEN 'day' THEN j.bucket0 WHEN 'week' THEN j.bucket0 + 6
      WHEN 'month' THEN CAST(j.bucket0 + INTERVAL 1 MONTH AS DATE) - 1
      WHEN 'quarter' THEN CAST(j.bucket0 + INTERVAL 3 MONTH AS DATE) - 1
      ELSE CAST(j.bucket0 + INTERVAL 1 YEAR AS DATE) - 1 END"""
    # a declared baseline is the value where the plan started at the indicator's top level (the
    # city's, usually): other areas have no baseline and are measured against the target alone,
    # never against another area's starting point
    bl = """CASE WHEN s.level = CASE WHEN s.lvl_city THEN 'city' WHEN s.lvl_district THEN 'district'
        ELSE 'street' END THEN s.baseline END"""
    lv = ""
    if level_filter:
        lv = " AND a.level IN (" + ", ".join(literal(x) for x in level_filter) + ")"
    af = ""
    if area_filter:
        af = " AND a.area_key IN (" + ", ".join(str(int(x)) for x in area_filter) + ")"
    return f"""WITH cur0 AS (  -- each cell's current row (one per cell), classified
{classify_sql("t.k = 0", bases)}
),
grid AS (
  SELECT m.ikey, a.area_key, a.level FROM ck_ind m JOIN t_area a
    ON (a.level = 'city' AND m.lvl_city) OR (a.level = 'district' AND m.lvl_district)
       OR (a.level = 'street' AND m.lvl_street)
  WHERE NOT m.hidden{lv}{af}{slice_of("m", part)}
),
hist AS (  -- over the periods: persistence and the streak
  SELECT c.ikey, c.area_key,
    {persist_aggs},
    {streak_aggs}
  FROM (
{classify_sql(bases=bases)}
  ) c{persist_join}
  GROUP BY c.ikey, c.area_key
),
cmp AS (  -- the values the cell is compared with
  SELECT c.ikey, c.area_key,
    {compared_sql}
  FROM t_k c{compared_join}
  WHERE {compared_where}
  GROUP BY c.ikey, c.area_key
),
hv AS (
  SELECT h.ikey, h.area_key, z.sev AS sev0, z.bv AS bv0, z.bs_id, h.persist_n, h.persist_sev, {streak_picked},
    z.v AS v0, z.bucket AS bucket0, z.last_period AS last0, z.data_end AS data_end0, z.src AS src0,
    p.v1, p.v7, p.vly, {base_sel} AS vbase{day_ago_sel}
  FROM hist h LEFT JOIN cur0 z ON z.ikey = h.ikey AND z.area_key = h.area_key
  LEFT JOIN cmp p ON p.ikey = h.ikey AND p.area_key = h.area_key
),
j AS (
  SELECT g.ikey, g.area_key, g.level, m.* EXCLUDE (ikey), h.v0, h.bucket0, h.last0, h.src0, h.v1, h.v7, h.vly,
    h.vbase{day_ago_col},
    CASE WHEN m.target_method = 'cumulative' THEN coalesce(cu.cum, h.v0) ELSE h.v0 END AS tv,
    h.sev0, h.bv0, h.bs_id AS cell_bs, h.persist_n, h.persist_sev, {streak_cols},
    CASE WHEN h.v0 IS NULL THEN NULL
      WHEN m.for_periods > 1 THEN CASE WHEN h.persist_n = m.for_periods THEN h.persist_sev ELSE 0 END
      ELSE h.sev0 END AS sev,
    h.data_end0 AS data_end
  FROM grid g JOIN ck_ind m ON m.ikey = g.ikey
  LEFT JOIN hv h ON h.ikey = g.ikey AND h.area_key = g.area_key
  LEFT JOIN t_cum cu ON cu.ikey = g.ikey AND cu.area_key = g.area_key
),
s AS (
  SELECT j.*,
    CASE WHEN j.v0 IS NULL THEN 'no_data'
      WHEN epoch({end}) - epoch(j.data_end) > j.stale_s THEN 'stale'
      WHEN j.sev IS NULL THEN 'not_applicable'
      WHEN NOT coalesce(bsx.scored, TRUE) THEN 'unscored'
      ELSE {colour_of("j.sev")} END AS status,
    CASE WHEN j.v0 IS NULL OR j.sev0 IS NULL OR NOT coalesce(bsx.scored, TRUE) THEN NULL
      -- a seasonal baseline scores only the periods persistence needs: no colours to count a streak in
      WHEN j.basis IN {_bases_requiring("seasonal_baseline")} THEN NULL ELSE
      {streak}
    END AS streak,
    {period_end} AS period_end
  FROM j LEFT JOIN ck_bandset bsx ON bsx.bs_id = j.cell_bs
)
SELECT s.ikey, s.area_key, s.level, s.bucket0 AS period_start, s.period_end, s.v0 AS value, s.bv0 AS basis_value,
  s.status, CASE WHEN {is_colour("s.status")} THEN s.sev END::TINYINT AS severity,
  s.v1 AS previous_value,
  CASE WHEN s.change_unit = 'points' THEN s.v0 - s.v1 ELSE (s.v0 - s.v1) / NULLIF(abs(s.v1), 0) * 100 END AS change_previous,
  s.v7 AS week_ago_value,
  CASE WHEN s.change_unit = 'points' THEN s.v0 - s.v7 ELSE (s.v0 - s.v7) / NULLIF(abs(s.v7), 0) * 100 END AS change_week_ago,
  s.vly AS last_year_value,
  CASE WHEN s.change_unit = 'points' THEN s.v0 - s.vly ELSE (s.v0 - s.vly) / NULLIF(abs(s.vly), 0) * 100 END AS change_last_year,
  s.vbase AS base_value,
  CASE WHEN s.change_unit = 'points' THEN s.v0 - s.vbase ELSE (s.v0 - s.vbase) / NULLIF(abs(s.vbase), 0) * 100 END AS change_base,{day_ago_out}
  s.change_unit, s.streak::INTEGER AS streak, s.last0 AS last_period, s.cell_bs AS bs_id,
  s.target_value, s.target_due,
  CASE WHEN s.target_value IS NULL OR s.tv IS NULL THEN NULL
    WHEN s.target_method = 'cumulative' THEN s.tv / NULLIF(s.target_value, 0)
    WHEN s.direction = 'lower_is_better' THEN
      CASE WHEN {bl} IS NOT NULL AND {bl} <> s.target_value
           THEN ({bl} - s.tv) / ({bl} - s.target_value) ELSE s.target_value / NULLIF(s.tv, 0) END
    ELSE CASE WHEN {bl} IS NOT NULL AND {bl} <> s.target_value
           THEN (s.tv - {bl}) / (s.target_value - {bl}) ELSE s.tv / NULLIF(s.target_value, 0) END
  END AS attainment,
  CASE WHEN s.target_value IS NULL THEN NULL
    ELSE greatest(0.0, least(1.0, date_diff('day', s.baseline_date, {as_of_lit})
         / greatest(1, date_diff('day', s.baseline_date, s.target_due))::DOUBLE)) END AS expected_progress,
  CASE WHEN s.src0 = {SRC_DERIVED} THEN 'derived' WHEN s.src0 = {SRC_ROLLUP} THEN 'rollup'
       WHEN s.src0 IS NULL THEN NULL ELSE 'observed' END AS source
FROM s"""


def _num(x: str) -> str:
    """SQL text of a number for explanations: integers plainly, others rounded to the indicator's decimals."""
    return (
        f"CASE WHEN {x} IS NULL THEN '?' WHEN {x} = round({x}) AND abs({x}) < 1e15 "
        f"THEN CAST(CAST({x} AS BIGINT) AS VARCHAR) ELSE CAST(round({x}, m.decimals) AS VARCHAR) END"
    )


#: How many digits past the indicator's decimals an explanation may add to tell a value from its cut.
EXTRA_DIGITS = 6


def _num_beside(x: str, cut: str) -> str:
    """SQL text of ``x`` printed beside ``cut``: to the indicator's decimals, or with as many more digits
    (up to :data:`EXTRA_DIGITS`) as it takes for the two to read differently, so that an explanation
    never says "red: 1.5 < 1.5". A value equal to its cut, or with no cut, prints as :func:`_num`."""
    steps = " ".join(
        f"WHEN round({x}, m.decimals + {k}) <> round({cut}, m.decimals + {k}) THEN m.decimals + {k}"
        for k in range(EXTRA_DIGITS + 1)
    )
    digits = f"CASE {steps} ELSE NULL END"
    return (
        f"CASE WHEN {x} IS NULL THEN '?' WHEN {cut} IS NULL OR {x} = {cut} OR {x} = round({x}) THEN {_num(x)} "
        f"WHEN {digits} IS NULL THEN CAST({x} AS VARCHAR) ELSE CAST(round({x}, {digits}) AS VARCHAR) END"
    )


def _cut(x: str) -> str:
    """SQL text of a declared cut: exactly as declared (integers plainly, others in their shortest form)."""
    return (
        f"CASE WHEN {x} IS NULL THEN '?' WHEN {x} = round({x}) AND abs({x}) < 1e15 "
        f"THEN CAST(CAST({x} AS BIGINT) AS VARCHAR) ELSE CAST({x} AS VARCHAR) END"
    )


def cells_sql(cells: str, *, append: bool = False) -> str:
    """The classified cells ``t_classified``: the rows of query ``cells`` with target status, own-scale labels
    and the one-line explanation, in one statement (nothing in between is materialised); ``append``:
    added to the table an earlier slice made."""
    first_cut = "coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red)"
    first_colour = """CASE WHEN bs.c_blue IS NOT NULL THEN 'blue' WHEN bs.c_yellow IS NOT NULL THEN 'yellow'
        WHEN bs.c_orange IS NOT NULL THEN 'orange' ELSE 'red' END"""
    crossed = "CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END"
    worse_op = """CASE WHEN m.direction = 'lower_is_better' THEN CASE WHEN bs.inclusive THEN ' ≥ ' ELSE ' > ' END
        ELSE CASE WHEN bs.inclusive THEN ' ≤ ' ELSE ' < ' END END"""
    better_op = """CASE WHEN m.direction = 'lower_is_better' THEN CASE WHEN bs.inclusive THEN ' < ' ELSE ' ≤ ' END
        ELSE CASE WHEN bs.inclusive THEN ' > ' ELSE ' ≥ ' END END"""
    side = """CASE WHEN m.direction = 'lower_is_better' THEN CASE WHEN bs.inclusive THEN ' from ' ELSE ' above ' END
        ELSE CASE WHEN bs.inclusive THEN ' at or below ' ELSE ' below ' END END"""
    what = "m.basis_label"  # the registry's label of the indicator's basis (engine/tables.py)
    bv = "c.basis_value"
    directional = f"""CASE WHEN c.severity = 0 THEN 'green: ' || {_num_beside(bv, first_cut)} || {what} ||
          coalesce({better_op} || {_cut(first_cut)} || ' (' || {first_colour} || {side} || {_cut(first_cut)} || ')', '')
        ELSE c.status || ': ' || {_num_beside(bv, crossed)} || {what} || {worse_op} || {_cut(crossed)}
          || ' (' || c.status || {side} || {_cut(crossed)} || ')' END"""
    edge = (
        f"CASE WHEN abs({bv} - bs.lo_green) < abs({bv} - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END"
    )
    band = f"""CASE WHEN c.severity = 0 THEN 'green: ' || {_num_beside(bv, edge)} || {what} || ' within '
          || {_cut("bs.lo_green")} || '–' || {_cut("bs.hi_green")}
        ELSE c.status || ': ' || {_num_beside(bv, edge)} || {what} || ' outside the green range '
          || {_cut("bs.lo_green")} || '–' || {_cut("bs.hi_green")} END"""
    persist = """CASE WHEN m.for_periods > 1 AND c.severity > 0 THEN ' for ' || m.for_periods || ' ' ||
        CASE m.rgrain WHEN 'day' THEN 'days' WHEN '15min' THEN '15-minute periods' ELSE m.rgrain || 's' END
        || ' running' ELSE '' END"""
    stale = f"""'stale: latest value ' || {_num("c.value")} || m.unit_label || ' from ' || strftime(c.last_period, '%Y-%m-%d %H:%M')
        || ', older than ' || CASE WHEN m.stale_s % 86400 = 0 THEN (m.stale_s // 86400)::BIGINT || 'd'
           WHEN m.stale_s % 3600 = 0 THEN (m.stale_s // 3600)::BIGINT || 'h'
           ELSE (m.stale_s // 60)::BIGINT || 'm' END"""
    if append:
        head, tail = "INSERT INTO t_classified SELECT * FROM (", "\n)"
    else:
        head, tail = "CREATE OR REPLACE TEMP TABLE t_classified AS", ""
    return f"""{head}
WITH cells AS (
{cells}
),
lab AS (
  SELECT c.ikey, c.area_key, arg_min(s.label_zh, s.step) AS label_zh, arg_min(s.label_en, s.step) AS label_en
  FROM cells c JOIN ck_scale s ON s.ikey = c.ikey AND c.value IS NOT NULL AND (s.upto IS NULL OR c.value <= s.upto)
  GROUP BY c.ikey, c.area_key
)
SELECT c.*,
  CASE WHEN c.target_value IS NULL OR c.attainment IS NULL THEN NULL
    WHEN m.target_method = 'cumulative' AND m.direction = 'lower_is_better' THEN
      -- a budget (e.g. at most 10,000 fires a year): the share used against the time elapsed
      CASE WHEN c.attainment > 1 THEN 'missed' WHEN c.expected_progress >= 1 THEN 'achieved'
           WHEN c.attainment <= c.expected_progress THEN 'on_track' ELSE 'behind' END
    WHEN c.attainment >= 1 THEN 'achieved'
    WHEN c.expected_progress >= 1 THEN 'missed'
    WHEN c.attainment >= c.expected_progress THEN 'on_track' ELSE 'behind' END AS target_status,
  lab.label_zh AS band_label, lab.label_en AS band_label_en,
  CASE c.status
    WHEN 'no_data' THEN 'no_data: no value within the look-back window'
    WHEN 'stale' THEN {stale}
    WHEN 'not_applicable' THEN 'not_applicable: ' || m.na_reason
    WHEN 'unscored' THEN 'unscored: ' || {_num("c.value")} || {what} || '; no thresholds are declared for it'
    ELSE CASE WHEN m.direction = 'band' THEN {band} ELSE {directional} END || {persist}
  END AS explanation
FROM cells c JOIN ck_ind m ON m.ikey = c.ikey LEFT JOIN ck_bandset bs ON bs.bs_id = c.bs_id
LEFT JOIN lab ON lab.ikey = c.ikey AND lab.area_key = c.area_key{tail}"""


def index_sql(depth: int) -> str:
    """Step 8: composite indices of one nesting depth (components: indicators and shallower indices)."""
    scores = " ".join(f"WHEN {severity} THEN {COLOUR_SCORE[c]}" for severity, c in enumerate(COLOURS))
    relative = ", ".join(literal(m) for m in RELATIVE_NORMALISATIONS)
    norm = f"""CASE p.method
      WHEN 'colour_score' THEN CASE p.severity {scores} END
      WHEN 'goalposts' THEN greatest(0.0, least(100.0, (p.value - p.low) / NULLIF(p.high - p.low, 0) * 100))
      WHEN 'distance_to_target' THEN CASE WHEN p.direction = 'lower_is_better'
            THEN least(100.0, p.target_value / NULLIF(p.value, 0) * 100)
            ELSE least(100.0, p.value / NULLIF(p.target_value, 0) * 100) END
      WHEN 'min_max' THEN CASE WHEN p.vmax = p.vmin THEN 100.0 WHEN p.direction = 'lower_is_better'
            THEN (p.vmax - p.value) / (p.vmax - p.vmin) * 100 ELSE (p.value - p.vmin) / (p.vmax - p.vmin) * 100 END
      WHEN 'z_score' THEN greatest(0.0, least(100.0, 50 + 10 * CASE WHEN p.direction = 'lower_is_better'
            THEN -(p.value - p.vmean) ELSE (p.value - p.vmean) END / NULLIF(p.vsd, 0)))
    END"""
    return f"""INSERT INTO t_index
WITH comp AS (
  SELECT k.index_id, k.weight, k.method, k.low, k.high, c.area_key, c.level, c.value, c.severity,
         m.direction, m.target_value, m.tier,
         min(c.value) OVER w AS vmin, max(c.value) OVER w AS vmax, favg(c.value) OVER w AS vmean,
         stddev_pop(c.value) OVER w AS vsd, count(c.value) OVER w AS peers
  FROM ck_component k JOIN ck_index x ON x.index_id = k.index_id AND x.depth = {depth}
  JOIN t_classified c ON c.ikey = k.ikey AND NOT k.ref_index
  JOIN ck_ind m ON m.ikey = c.ikey
  WINDOW w AS (PARTITION BY k.index_id, k.ikey, c.level ORDER BY c.area_key
               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
  UNION ALL
  SELECT k.index_id, k.weight, 'raw' AS method, NULL, NULL, i.area_key, i.level, i.score, i.severity,
         'higher_is_better', NULL, 'guidance', NULL, NULL, NULL, NULL, NULL
  FROM ck_component k JOIN ck_index x ON x.index_id = k.index_id AND x.depth = {depth}
  JOIN t_index i ON i.index_id = k.ref AND k.ref_index
),
scored AS (
  SELECT p.*, p.method IN ({relative}) AND p.peers < {MIN_RELATIVE_AREAS} AS alone,
    CASE WHEN p.method = 'raw' THEN p.value
    WHEN p.severity IS NULL OR p.value IS NULL THEN NULL
    -- an area scored against fewer than MIN_RELATIVE_AREAS at its level is not scored (a z-score of one area is not 100)
    WHEN p.method IN ({relative}) AND p.peers < {MIN_RELATIVE_AREAS} THEN NULL
    ELSE {norm} END AS s FROM comp p
),
agg AS (
  SELECT s.index_id, s.area_key, any_value(s.level) AS level,
    fsum(s.weight) FILTER (WHERE s.s IS NOT NULL) AS w_used,
    count(*) FILTER (WHERE s.s IS NOT NULL) AS n_used,
    fsum(s.weight * s.s) FILTER (WHERE s.s IS NOT NULL) AS ws,
    fsum(s.weight * ln(greatest(s.s, 1.0))) FILTER (WHERE s.s IS NOT NULL) AS wl,
    bool_or(s.tier = 'bottom_line' AND s.severity = 4) AS red_bottom_line,
    bool_or(s.alone) AS relative_alone  -- some component had too few areas to be scored against
  FROM scored s GROUP BY s.index_id, s.area_key
),
tot AS (SELECT index_id, fsum(weight) AS w_total, count(*) AS n_total FROM ck_component GROUP BY index_id)
SELECT a.index_id, a.area_key, a.level,
  CASE WHEN coalesce(a.w_used, 0) / t.w_total < x.min_coverage THEN NULL
    WHEN x.cap_on_red IS NOT NULL AND a.red_bottom_line
      THEN least(x.cap_on_red, CASE x.aggregation WHEN 'geometric' THEN exp(a.wl / a.w_used) ELSE a.ws / a.w_used END)
    ELSE CASE x.aggregation WHEN 'geometric' THEN exp(a.wl / a.w_used) ELSE a.ws / a.w_used END END AS score,
  coalesce(a.w_used, 0) / t.w_total AS coverage,
  coalesce(x.cap_on_red IS NOT NULL AND a.red_bottom_line AND
    (CASE x.aggregation WHEN 'geometric' THEN exp(a.wl / a.w_used) ELSE a.ws / a.w_used END) > x.cap_on_red, false) AS capped,
  a.n_used::INTEGER AS components_used, t.n_total::INTEGER AS components_total, x.bs_id,
  NULL::TINYINT AS severity, coalesce(a.relative_alone, false) AS relative_alone
FROM agg a JOIN ck_index x ON x.index_id = a.index_id JOIN tot t ON t.index_id = a.index_id
WHERE (a.level = 'city' AND x.lvl_city) OR (a.level = 'district' AND x.lvl_district) OR (a.level = 'street' AND x.lvl_street)"""


def index_table_sql() -> str:
    """The empty index result table."""
    return """CREATE OR REPLACE TEMP TABLE t_index (index_id TEXT, area_key INTEGER, level TEXT, score DOUBLE,
  coverage DOUBLE, capped BOOLEAN, components_used INTEGER, components_total INTEGER, bs_id INTEGER,
  severity TINYINT, relative_alone BOOLEAN)"""


def index_severity_sql() -> str:
    """Colour the index scores of the last inserted layer (score is higher_is_better)."""
    # colour_by quintile: the top fifth of a level's scores is green … the bottom fifth red; fewer than
    # MIN_RELATIVE_AREAS scores at a level have no relative colour (severity stays NULL: not applicable)
    return f"""UPDATE t_index SET severity = q.sev
FROM (
  SELECT t.index_id, t.area_key, CASE WHEN x.colour_by = 'quintile' THEN
      CASE WHEN count(*) OVER p < {MIN_RELATIVE_AREAS} THEN NULL
        ELSE least(4, floor(percent_rank() OVER (p ORDER BY t.score DESC) * 5)) END
    ELSE ({_severity("t.score", "bs")}) END::TINYINT AS sev
  FROM t_index t JOIN ck_index x ON x.index_id = t.index_id JOIN ck_bandset bs ON bs.bs_id = t.bs_id
  WHERE t.score IS NOT NULL
  WINDOW p AS (PARTITION BY t.index_id, t.level)
) q
WHERE q.index_id = t_index.index_id AND q.area_key = t_index.area_key
  AND t_index.severity IS NULL AND t_index.score IS NOT NULL"""


def index_status_sql(i: str) -> str:
    """SQL of an index row's status (``i`` the t_index alias): its colour; ``not_applicable`` when
    a relative score or colour has too few areas to compare; ``no_data`` when there is no score."""
    return f"""CASE WHEN {i}.score IS NULL THEN CASE WHEN {i}.relative_alone THEN 'not_applicable' ELSE 'no_data' END
    WHEN {i}.severity IS NULL THEN 'not_applicable' ELSE {colour_of(f"{i}.severity")} END"""


def area_tables_sql() -> list[str]:
    """Areas and their ancestry (self, parent, grandparent) as temp tables."""
    return [
        """CREATE OR REPLACE TEMP TABLE t_area AS
SELECT area_key, area_id, name, name_en, level, parent_key, coalesce(population, 0) AS population FROM areas""",
        """CREATE OR REPLACE TEMP TABLE t_anc AS
SELECT area_key, area_key AS anc_key FROM t_area
UNION ALL SELECT area_key, parent_key FROM t_area WHERE parent_key IS NOT NULL
UNION ALL SELECT a.area_key, p.parent_key FROM t_area a JOIN t_area p ON p.area_key = a.parent_key
  WHERE p.parent_key IS NOT NULL""",
    ]


def observation_source(as_ingested_batch: int | None) -> tuple[str, str | None]:
    """The relation to read observations from, and the SQL creating it when replaying ingests.

    Normally the ``observations`` table itself. With ``as_ingested_batch`` (the last batch visible
    at the replayed moment) a temp view restores what was known then: rows of visible batches,
    including rows later superseded by a batch that was not yet visible.
    """
    if as_ingested_batch is None:
        return "observations", None
    b = int(as_ingested_batch)
    sql = f"""CREATE OR REPLACE TEMP VIEW t_obs AS
SELECT indicator_key, area_key, period, value, numerator, denominator, batch_id, freq_class
FROM observations WHERE batch_id <= {b}
UNION ALL
SELECT indicator_key, area_key, period, value, numerator, denominator, batch_id, freq_class
FROM observations_superseded
WHERE batch_id <= {b} AND superseded_by > {b}"""
    return "t_obs", sql


# --- outputs ------------------------------------------------------------------------------------

# The output queries return integer keys (``ikey``, ``area_key``) in place of the indicator's and
# area's names: :func:`citykpi.engine.execute.execute` joins those from the catalogue and area
# frames it already holds (a string column costs more to move out of the engine than to join).
# Cells sort on integer ranks of the ids: the same order as sorting the strings, far cheaper.
#: The scorecard's order of the cells, by columns of ``t_cells``: the ``t_cells`` statement writes
#: them in it, so a backend that scans a table in the order it was written reads them without
#: sorting again; another sorts by it as it reads (:attr:`Plan.orders`).
CELLS_ORDER = "rank_indicator, level, rank_area"

_CELLS_TABLE = f"""CREATE OR REPLACE TEMP TABLE t_cells AS
WITH ri AS (SELECT ikey, dense_rank() OVER (ORDER BY domain, indicator_id) AS r FROM ck_ind),
ra AS (SELECT area_key, dense_rank() OVER (ORDER BY area_id) AS r FROM t_area)
SELECT x.*, {", ".join(f"f.{c}" for c in FORECAST_COLUMNS)}, ri.r AS rank_indicator, ra.r AS rank_area
FROM t_classified x JOIN ri ON ri.ikey = x.ikey JOIN ra ON ra.area_key = x.area_key
LEFT JOIN t_forecast f ON f.ikey = x.ikey AND f.area_key = x.area_key
ORDER BY {CELLS_ORDER}"""

_CELLS_OUT = """
SELECT x.ikey, x.area_key, x.level, x.period_start, x.period_end, x.value, x.basis_value,
  x.status, x.severity, x.band_label, x.band_label_en, x.explanation, x.previous_value, x.change_previous,
  x.week_ago_value, x.change_week_ago, x.last_year_value, x.change_last_year, x.base_value, x.change_base,
  x.change_unit, x.streak,
  x.target_value, x.target_due, x.attainment, x.expected_progress, x.target_status, x.source,
  {FORECAST_OUT}{SUBDAILY}
FROM t_cells x""".replace("{FORECAST_OUT}", ", ".join(f"x.{c}" for c in FORECAST_COLUMNS))

# History rows come in no particular order: every reader orders what it draws (sorting the
# 1.7 M rows of a city's day in the engine was 5 % of the whole evaluation).
_HISTORY_OUT = """
SELECT t.ikey, t.area_key, t.bucket AS period_start, t.v AS value
FROM t_k t JOIN t_cells x ON x.ikey = t.ikey AND x.area_key = t.area_key JOIN ck_ind m ON m.ikey = t.ikey
WHERE t.k >= 0 AND t.k <= m.keep AND x.level IN ({levels})"""

#: Columns the execute phase joins to output rows by ``ikey`` and by ``area_key``.
INDICATOR_COLUMNS = ("indicator_id", "domain", "kind", "tier", "unit", "name_zh", "name_en")
AREA_COLUMNS = {"area_id": "area_id", "name": "area_name_zh", "name_en": "area_name_en"}


def cells_table_sql() -> str:
    """Step 9: ``t_cells``, the cells with their forecasts in the scorecard's order (domain,
    indicator, level, area; integer ranks of the ids sort as the strings do, far cheaper). Sorted
    here, while the engine still holds its own memory, the cells are read back as they lie instead
    of being sorted beside the frame being built from them (an hour of the city: 4.8 M cells, 2 GB
    less at the read)."""
    return _CELLS_TABLE


def cells_out_sql(grain: str = "day") -> str:
    """The reported cells (one row per indicator × area), unordered: see :data:`CELLS_ORDER`;
    sub-daily cells add the same period a day earlier."""
    return _CELLS_OUT.replace(
        "{SUBDAILY}", ", x.day_ago_value, x.change_day_ago" if is_subdaily(grain) else ""
    )


def index_out_sql() -> str:
    """The composite index scores with colour and rank per index and level."""
    return f"""
SELECT i.index_id, a.area_id, i.level, x.name_zh, x.name_en, a.name AS area_name_zh, a.name_en AS area_name_en,
  i.score,
  {index_status_sql("i")} AS status,
  i.severity, i.coverage, i.capped, i.components_used, i.components_total,
  CASE WHEN i.score IS NOT NULL
    THEN CAST(rank() OVER (PARTITION BY i.index_id, i.level ORDER BY i.score DESC NULLS LAST) AS INTEGER) END AS rank
FROM t_index i JOIN ck_index x ON x.index_id = i.index_id JOIN t_area a ON a.area_key = i.area_key
ORDER BY i.index_id, i.level, rank, a.area_id"""


# The parts behind a cell's current value, read only when asked (``rank`` of an indicator): an own or
# rolled-up value keeps its summed numerator and denominator in its bucket; a ratio's parts are its
# two inputs' current values. ``factor`` is what value = numerator / denominator × factor multiplies by.
_PARTS_OUT = """
SELECT x.ikey, x.area_key,
  CASE WHEN m.vkind = 'ratio' THEN n.v ELSE b.sn END AS numerator,
  CASE WHEN m.vkind = 'ratio' THEN d.v ELSE b.sd END AS denominator,
  m.scale AS factor
FROM t_cells x JOIN ck_ind m ON m.ikey = x.ikey
LEFT JOIN t_bucket b ON m.vkind <> 'ratio' AND b.ikey = x.ikey AND b.area_key = x.area_key
  AND b.bucket = x.period_start
LEFT JOIN ck_input fn ON m.vkind = 'ratio' AND fn.ikey = x.ikey AND fn.slot = 1
LEFT JOIN t_k n ON n.ikey = fn.input_ikey AND n.area_key = x.area_key AND n.k = 0
LEFT JOIN ck_input fd ON m.vkind = 'ratio' AND fd.ikey = x.ikey AND fd.slot = 2
LEFT JOIN t_k d ON d.ikey = fd.input_ikey AND d.area_key = x.area_key AND d.k = 0
WHERE m.parts AND x.value IS NOT NULL"""


def parts_out_sql() -> str:
    """The numerator, denominator and factor behind each reported cell's value (one query, any size).

    Only indicators whose value is a numerator over a denominator (observed with parts, a ratio, a
    measure with a denominator) have rows; the caller checks that the parts reproduce the value.
    """
    return _PARTS_OUT


def history_out_sql(levels: Sequence[str]) -> str | None:
    """Recent values of the cells at ``levels`` (for sparklines), unordered; None when no level is asked."""
    lv = ", ".join(literal(x) for x in levels if x in ("city", "district", "street"))
    return _HISTORY_OUT.format(levels=lv) if lv else None
