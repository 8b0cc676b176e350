"""Early warning in SQL: seasonal baselines, trends, days to breach and target-miss forecasts.

With ``compiler.py`` the only modules that write evaluation SQL. Two statements, whatever the size of
the catalogue, both over the tables the compiler built (``t_k``: every cell's periods by k, 0 the
current one; ``t_classified``, the cells) and the small tables of :mod:`citykpi.engine.early`:

1. :func:`baseline_sql` → ``t_baseline``: for the periods a seasonal basis (``anomaly``) scores and
   the current period of every cell that forecasts, the median and the robust spread of the value in
   the comparable earlier periods (``ck_peer``: same weekday and kind of day at day grain), leaving out
   declared incidents (``ck_excl``). Read by the classify step through the registry's
   ``seasonal_baseline`` contract (alias ``bl``), and by the forecast for its ``anomaly_score``.
2. :func:`forecast_sql` → ``t_forecast``: per cell that forecasts, a least-squares line over its last
   ``fc_window`` periods (compensated sums, so the result does not depend on thread order), and

   * **days to breach**: when the fit is good (R² ≥ ``fc_min_r2``) and runs towards a worse colour, the
     first period the line crosses each worse cut of the cell's own band set (``ck_edge``, overrides
     included) within ``fc_horizon``; the worst colour reached is the forecast, with the periods until
     then and the range they move over with the slope at either end of its 95 % confidence interval;
   * **target miss**: for a dated target not yet due, the value the line reaches by the due date
     (for cumulative targets the sum so far plus the line's values to the due date) with a 95 %
     prediction interval: ``will_meet`` when even its pessimistic end meets the target, ``will_miss``
     when even its optimistic end misses it, ``at_risk`` between; and the monthly pace needed.

Everything is written in reporting periods (``m.rgrain``): a grain needs only its length in
:data:`PERIODS_PER_MONTH`, its steps in :data:`GRAIN_STEPS` and its row in ``seasonal.PEER_RULES``
(the hour and the quarter hour have theirs: hours to breach, the same time of comparable days).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

from citykpi.catalogue.model import COLOURS
from citykpi.engine.tables import CatalogueTables
from citykpi.sqlutil import literal
from citykpi.vocab.bases import BASELINE_ALIAS, BASES, SINGLE_VALUE_NEEDS

#: 95 % two-sided normal quantile, for the slope's confidence and the target's prediction interval.
Z95 = 1.96
#: Robust spread: MAD × 1.4826 estimates the standard deviation of normal data; when more than half
#: the comparable periods share one value (MAD 0), the mean absolute deviation × √(π/2) stands in.
MAD_SCALE = 1.4826
MEAN_AD_SCALE = 1.2533
#: Average length of a month in periods of each reporting grain (for the monthly pace of a target).
PERIODS_PER_MONTH: dict[str, float] = {
    "15min": 365.25 / 12 * 96,
    "hour": 365.25 / 12 * 24,
    "day": 365.25 / 12,
    "week": 365.25 / 12 / 7,
    "month": 1.0,
    "quarter": 1 / 3,
    "year": 1 / 12,
}
#: Fewer comparable periods than this: no seasonal baseline (the cell is not_applicable).
MIN_BASELINE = 3
TARGET_FORECASTS: tuple[str, ...] = ("will_meet", "at_risk", "will_miss")


#: The tables of a plan where nothing forecasts or has a seasonal basis: empty, with their columns.
_NO_BASELINE = """CREATE OR REPLACE TEMP TABLE t_baseline (ikey INTEGER, area_key INTEGER, k INTEGER, n BIGINT,
  med DOUBLE, scale DOUBLE)"""
_NO_FORECAST = """CREATE OR REPLACE TEMP TABLE t_forecast (ikey INTEGER, area_key INTEGER, forecast_status VARCHAR,
  forecast_periods INTEGER, forecast_date DATE, forecast_periods_low INTEGER, forecast_periods_high INTEGER,
  forecast_slope DOUBLE, forecast_r2 DOUBLE, anomaly_score DOUBLE, target_forecast VARCHAR, target_projected DOUBLE,
  target_pace_needed DOUBLE, target_pace DOUBLE)"""


def _any(tables: CatalogueTables, column: str) -> bool:
    """Whether any indicator of the plan has a positive ``column`` of ``ck_ind``."""
    return bool(tables.ind.height) and bool((tables.ind.get_column(column) > 0).any())


def baselines(tables: CatalogueTables) -> bool:
    """Whether any indicator of the plan has a seasonal baseline (a seasonal basis, or a forecast's
    anomaly score)."""
    return _any(tables, "bl_n")


def baseline_sql(tables: CatalogueTables) -> str:
    """Step 5b: the seasonal baseline of every period a seasonal basis scores (``t_baseline``).

    An empty table when no indicator has a seasonal basis: a catalogue without one runs as before.
    """
    if not baselines(tables):
        return _NO_BASELINE
    # with incidents declared, the peer table holds twice the periods: the first bl_n left in count
    excl = tables.extra.get("ck_excl")
    spare = excl is not None and excl.height > 0
    ranks = "2 * g.bl_n" if spare else "g.bl_n"
    first = "\n  QUALIFY row_number() OVER (PARTITION BY p.ikey, p.area_key, p.k ORDER BY p.rank) <= p.bl_n"
    return f"""CREATE OR REPLACE TEMP TABLE t_baseline AS
WITH tgt AS (
  SELECT t.ikey, t.area_key, t.k, t.bucket, m.rgrain, m.bl_n
  FROM t_k t JOIN ck_ind m ON m.ikey = t.ikey
  WHERE m.bl_n > 0 AND t.k >= 0 AND t.k < m.bl_k
),
excl AS (  -- declared incidents, for the area named and its descendants, or everywhere
  SELECT x.ikey, a.area_key, x.lo, x.hi FROM ck_excl x JOIN t_anc a ON a.anc_key = x.area_key
  UNION ALL
  SELECT x.ikey, g.area_key, x.lo, x.hi FROM ck_excl x JOIN (SELECT DISTINCT ikey, area_key FROM tgt) g
    ON g.ikey = x.ikey WHERE x.area_key IS NULL
),
peers AS (
  SELECT g.ikey, g.area_key, g.k, g.bl_n, p.peer, p.rank, r.v
  FROM tgt g JOIN ck_peer p ON p.rgrain = g.rgrain AND p.bucket = g.bucket AND p.rank <= {ranks}
  JOIN t_k r ON r.ikey = g.ikey AND r.area_key = g.area_key AND r.bucket = p.peer
  WHERE r.v IS NOT NULL AND isfinite(r.v)
),
kept AS (
  SELECT p.* FROM peers p
  ANTI JOIN excl e ON e.ikey = p.ikey AND e.area_key = p.area_key AND CAST(p.peer AS DATE) BETWEEN e.lo AND e.hi{first if spare else ""}
),
agg AS (
  SELECT ikey, area_key, k, count(*) AS n, median(v) AS med, mad(v) AS mad, list_sort(list(v)) AS vals
  FROM kept GROUP BY ikey, area_key, k
  HAVING count(*) >= {MIN_BASELINE}
)
SELECT ikey, area_key, k, n, med,
  CASE WHEN mad > 0 THEN {MAD_SCALE} * mad
       ELSE nullif({MEAN_AD_SCALE} * list_avg(list_transform(vals, lambda x: abs(x - med))), 0) END AS scale
FROM agg"""


def _forecastable_basis(value: str) -> str:
    """SQL of the basis value of ``value`` for bases computable from the value alone (NULL for the others:
    a change or an anomaly score has no trend of its own to project)."""
    branches = [
        f"WHEN '{b.name}' THEN {b.sql(value, 'm.target_value', 'm.limit_value', 'NULL', 'NULL', 'm.change_unit')}"
        for b in BASES.values()
        if set(b.requires) <= SINGLE_VALUE_NEEDS
    ]
    return "CASE m.basis " + " ".join(branches) + " END"


#: Per reporting grain: (SQL of the whole periods from period start {a} to date {b}, SQL of the period
#: {n} periods after {s}). Each grain also has its length in PERIODS_PER_MONTH and a peer rule.
GRAIN_STEPS: dict[str, tuple[str, str]] = {
    "15min": ("date_diff('minute', {a}, {b}) // 15", "{s} + to_minutes(15 * {n})"),
    "hour": ("date_diff('hour', {a}, {b})", "{s} + to_hours({n})"),
    "day": ("date_diff('day', {a}, {b})", "{s} + to_days({n})"),
    "week": ("date_diff('day', {a}, {b}) // 7", "{s} + to_weeks({n})"),
    "month": ("date_diff('month', {a}, {b})", "{s} + to_months({n})"),
    "quarter": ("date_diff('quarter', {a}, {b})", "{s} + to_months(3 * {n})"),
    "year": ("date_diff('year', {a}, {b})", "{s} + to_years({n})"),
}


def _periods_to(grain: str, start: str, end: str, grains: Collection[str]) -> str:
    """SQL: whole periods of the grain column ``grain`` (one of ``grains``) from period start ``start``
    to date ``end``."""
    steps = " ".join(
        f"WHEN '{g}' THEN {diff.format(a=start, b=end)}"
        for g, (diff, _) in GRAIN_STEPS.items()
        if g in grains
    )
    return f"CASE {grain} {steps} END"


def _plus_periods(grain: str, start: str, n: str, grains: Collection[str]) -> str:
    """SQL: the start of the period ``n`` periods of the grain column ``grain`` (one of ``grains``) after ``start``."""
    count = f"CAST({n} AS INTEGER)"
    steps = " ".join(
        f"WHEN '{g}' THEN {add.format(s=start, n=count)}"
        for g, (_, add) in GRAIN_STEPS.items()
        if g in grains
    )
    return f"CAST(CASE {grain} {steps} END AS DATE)"


def forecasts(tables: CatalogueTables) -> bool:
    """Whether any indicator of the plan forecasts."""
    return _any(tables, "fc_window")


def forecast_sql(tables: CatalogueTables, *, as_of: date, append: bool = False) -> str:
    """Step 7b: trends, days to breach and target-miss forecasts of the cells that forecast (``t_forecast``).

    An empty table when no indicator forecasts: a catalogue without forecasts runs as before.
    ``append``: added to the table an earlier slice of indicators made (each slice's cells are fitted
    while its periods are there; an earlier slice's cells have none left, so they add nothing).
    """
    if not forecasts(tables):
        return _NO_FORECAST
    colours = ", ".join(literal(c) for c in COLOURS)
    # only the reporting grains of the plan's indicators: a day's plan reads as it always has (and the
    # Spark dialect, which has no sub-daily grains, never meets an hour's steps)
    grains = set(tables.ind.get_column("rgrain").to_list())
    ppm = (
        "CASE m.rgrain "
        + " ".join(f"WHEN '{g}' THEN {v!r}" for g, v in PERIODS_PER_MONTH.items() if g in grains)
        + " END"
    )
    as_of_lit = literal(as_of)
    lower = "m.direction = 'lower_is_better'"
    head, tail = (
        ("INSERT INTO t_forecast SELECT * FROM (\n", "\n)")
        if append
        else ("CREATE OR REPLACE TEMP TABLE t_forecast AS\n", "")
    )
    return f"""{head}WITH fc AS (  -- the cells that forecast
  SELECT c.ikey, c.area_key, c.value AS v0, c.status, c.severity, c.bs_id, c.period_start,
    c.target_value, c.target_due, coalesce(cu.cum, c.value) AS tv
  FROM t_classified c JOIN ck_ind m ON m.ikey = c.ikey
  LEFT JOIN t_cum cu ON cu.ikey = c.ikey AND cu.area_key = c.area_key AND m.target_method = 'cumulative'
  WHERE m.fc_window > 0 AND c.value IS NOT NULL AND isfinite(c.value) AND c.status <> 'stale'
),
pts AS (  -- the window's values of every series that forecasts (joined with its cell once summed)
  SELECT t.ikey, t.area_key, -CAST(t.k AS DOUBLE) AS x, t.v AS y
  FROM t_k t JOIN ck_ind m ON m.ikey = t.ikey
  WHERE t.k >= 0 AND t.k < m.fc_window AND t.v IS NOT NULL AND isfinite(t.v)
),
sums AS (
  SELECT ikey, area_key, count(*) AS n, fsum(x) AS sx, fsum(y) AS sy, fsum(x * x) AS sxx,
    fsum(x * y) AS sxy, fsum(y * y) AS syy
  FROM pts GROUP BY ikey, area_key
),
line AS (  -- least squares: slope b per period, fitted value now f0, residual variance s2, R²
  SELECT s.ikey, s.area_key, s.n, s.sx / s.n AS xbar, s.sxx - s.sx * s.sx / s.n AS cxx,
    s.sxy - s.sx * s.sy / s.n AS cxy, greatest(s.syy - s.sy * s.sy / s.n, 0) AS cyy, s.sy / s.n AS ybar
  FROM sums s JOIN ck_ind m ON m.ikey = s.ikey
  WHERE s.n >= m.fc_min_n AND s.sxx - s.sx * s.sx / s.n > 0
),
fit AS (
  SELECT f.*, l.n, l.xbar, l.cxx, l.cxy / l.cxx AS b,
    l.ybar - l.cxy / l.cxx * l.xbar AS f0,
    CASE WHEN l.cyy > 0 THEN least(1.0, l.cxy * l.cxy / (l.cxx * l.cyy)) ELSE 0.0 END AS r2,
    CASE WHEN l.n > 2 THEN greatest(l.cyy - l.cxy * l.cxy / l.cxx, 0) / (l.n - 2) ELSE 0.0 END AS s2
  FROM line l JOIN fc f ON f.ikey = l.ikey AND f.area_key = l.area_key
),
based AS (  -- the line in basis units (the bases that follow the value: absolute, share of target/limit)
  SELECT q.*, q.b1 - q.f0b AS bb, abs(q.se1 - q.f0b) AS seb FROM (
    SELECT f.*, sqrt(f.s2 / f.cxx) AS se_b,
      {_forecastable_basis("f.f0")} AS f0b,
      {_forecastable_basis("(f.f0 + f.b)")} AS b1,
      {_forecastable_basis("(f.f0 + sqrt(f.s2 / f.cxx))")} AS se1,
      m.fc_min_r2, m.fc_horizon, m.direction, m.mid, m.rgrain
    FROM fit f JOIN ck_ind m ON m.ikey = f.ikey
  ) q
),
crossing AS (  -- each worse cut ahead, in the direction the line runs (band: away from the middle)
  SELECT f.ikey, f.area_key, e.sev_to,
    (e.edge - f.f0b) / f.bb AS x_at,
    (e.edge - f.f0b) / (f.bb + sign(f.bb) * {Z95} * f.seb) AS x_fast,
    CASE WHEN abs(f.bb) > {Z95} * f.seb THEN (e.edge - f.f0b) / (f.bb - sign(f.bb) * {Z95} * f.seb) END AS x_slow
  FROM based f JOIN ck_edge e ON e.bs_id = f.bs_id AND e.up = (f.bb > 0)
  WHERE f.status IN ({colours}) AND f.bb <> 0 AND f.r2 >= f.fc_min_r2 AND e.sev_to > f.severity
    AND (f.direction <> 'band' OR (f.bb > 0 AND f.f0b >= f.mid) OR (f.bb < 0 AND f.f0b <= f.mid))
),
soon AS (
  SELECT c.ikey, c.area_key, max(c.sev_to) AS sev_to,
    arg_max({{'x_at': c.x_at, 'x_fast': c.x_fast, 'x_slow': c.x_slow}}, c.sev_to) AS x
  FROM crossing c JOIN ck_ind m ON m.ikey = c.ikey
  WHERE c.x_at <= m.fc_horizon
  GROUP BY c.ikey, c.area_key
),
due AS (
  SELECT f.*, m.target_method, {ppm} AS ppm,
    greatest(0, {_periods_to("m.rgrain", "f.period_start", "f.target_due", grains)}) AS x_due
  FROM fit f JOIN ck_ind m ON m.ikey = f.ikey
  WHERE f.target_value IS NOT NULL AND f.target_due > {as_of_lit}
),
tgt AS (  -- where the line takes a dated target by its due date
  SELECT d.ikey, d.area_key,
    CASE WHEN d.target_method = 'cumulative' THEN d.tv + d.x_due * d.f0 + d.b * d.x_due * (d.x_due + 1) / 2
         ELSE d.f0 + d.b * d.x_due END AS projected,
    CASE WHEN d.target_method = 'cumulative'
         THEN sqrt(d.x_due * d.s2 + d.x_due * d.x_due * d.s2 * (1.0 / d.n + pow(d.x_due / 2 - d.xbar, 2) / d.cxx))
         ELSE sqrt(d.s2 * (1 + 1.0 / d.n + pow(d.x_due - d.xbar, 2) / d.cxx)) END AS se,
    (d.target_value - d.tv) / (date_diff('day', {as_of_lit}, d.target_due) / {PERIODS_PER_MONTH["day"]!r}) AS pace_needed,
    CASE WHEN d.target_method = 'cumulative' THEN d.f0 ELSE d.b END * d.ppm AS pace
  FROM due d
),
ahead AS (
  SELECT s.ikey, s.area_key, s.sev_to, greatest(1, ceil(s.x.x_at)) AS p_at,
    least(greatest(1, ceil(s.x.x_fast)), greatest(1, ceil(s.x.x_at))) AS p_low,
    CASE WHEN s.x.x_slow IS NOT NULL THEN greatest(ceil(s.x.x_slow), greatest(1, ceil(s.x.x_at))) END AS p_high
  FROM soon s
)
SELECT f.ikey, f.area_key,
  [{colours}][s.sev_to + 1] AS forecast_status,
  CAST(s.p_at AS INTEGER) AS forecast_periods,
  CASE WHEN s.p_at IS NOT NULL THEN {_plus_periods("f.rgrain", "f.period_start", "s.p_at", grains)} END AS forecast_date,
  CAST(s.p_low AS INTEGER) AS forecast_periods_low,
  CAST(s.p_high AS INTEGER) AS forecast_periods_high,
  f.b AS forecast_slope, f.r2 AS forecast_r2, {BASES["anomaly"].sql("f.v0", "", "", "", "", "")} AS anomaly_score,
  CASE WHEN t.projected IS NULL THEN NULL
    WHEN CASE WHEN {lower} THEN t.projected + {Z95} * t.se <= f.target_value
              ELSE t.projected - {Z95} * t.se >= f.target_value END THEN 'will_meet'
    WHEN CASE WHEN {lower} THEN t.projected - {Z95} * t.se > f.target_value
              ELSE t.projected + {Z95} * t.se < f.target_value END THEN 'will_miss'
    ELSE 'at_risk' END AS target_forecast,
  t.projected AS target_projected, t.pace_needed AS target_pace_needed, t.pace AS target_pace
FROM based f JOIN ck_ind m ON m.ikey = f.ikey
LEFT JOIN ahead s ON s.ikey = f.ikey AND s.area_key = f.area_key
LEFT JOIN t_baseline {BASELINE_ALIAS} ON {BASELINE_ALIAS}.ikey = f.ikey AND {BASELINE_ALIAS}.area_key = f.area_key
  AND {BASELINE_ALIAS}.k = 0
LEFT JOIN tgt t ON t.ikey = f.ikey AND t.area_key = f.area_key{tail}"""


#: The forecast columns of the cells output, in order (``t_forecast`` joined as ``f``).
FORECAST_COLUMNS: tuple[str, ...] = (
    "forecast_status",
    "forecast_periods",
    "forecast_date",
    "forecast_periods_low",
    "forecast_periods_high",
    "forecast_slope",
    "forecast_r2",
    "anomaly_score",
    "target_forecast",
    "target_projected",
    "target_pace_needed",
    "target_pace",
)
