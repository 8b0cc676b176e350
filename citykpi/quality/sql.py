"""The SQL of ``citykpi quality``: a constant number of set-based statements over the warehouse.

The quality tables (``tables.py``) are joined with the observations, the side tables of ingest
(``observations_missing``, ``observations_superseded``, ``observations_dims``), the batches, the
rejects and the raw source tables. Statements, in order:

1. ``q_rows``   every stored record in each indicator's judged periods, with its batch's arrival
   (one scan per storage class, so the daily history is skipped for coarse series);
2. ``q_extra``  earlier deliveries (superseded records) and missing-value tokens in those periods;
3. ``q_acc``    per series: its values against the valid range and its median and MAD, and in the
   same pass the completeness and timeliness sums of a series whose records each fill one cell;
4. ``q_cell``   per series (indicator × the areas expected to deliver it): its expected periods,
   what arrived, when, and when it was due (completeness, timeliness) — the grid is counted, not
   built, and only the series whose cells hold several records are grouped by cell — beside the
   accuracy counts of ``q_acc``;
5. ``q_check``  every consistency rule of every kind, one row per area × period (× breakdown);
6. ``q_src``    raw source records: excluded by the source's filter, and record timeliness;
7. rejected rows per batch and reason (an output query).

Nothing here formats user text into SQL except through :mod:`citykpi.sqlutil` and the expression
renderer of the compiler (source filters are whitelisted expressions).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from citykpi.catalogue import expressions as ex
from citykpi.catalogue.model import LEVELS, SourceTable
from citykpi.engine.compiler import render_expression
from citykpi.quality.tables import GRAIN_STEPS
from citykpi.sqlutil import ident, literal
from citykpi.warehouse.schema import source_table_name

#: A record's value is judged an outlier when its modified z-score (Iglewicz & Hoaglin:
#: 0.6745 × |x − median| / MAD over the series' records in the judged periods) is above this,
#: and the series has at least :data:`OUTLIER_MIN_VALUES` records and a MAD above zero.
OUTLIER_Z = 3.5
OUTLIER_MIN_VALUES = 5
#: Differences below this share of the total are rounding noise, whatever the rule's tolerance.
EPSILON = 1e-9


#: The tables whose records show that an area has delivered an indicator (headline values, earlier
#: deliveries, missing-value tokens, breakdowns): such an area is expected to go on delivering it.
DELIVERIES: tuple[str, ...] = (
    "observations",
    "observations_superseded",
    "observations_missing",
    "observations_dims",
)


def _levels(prefix: str) -> str:
    """SQL: area ``a`` is at one of indicator ``m``'s levels flagged ``{prefix}_<level>`` (``dl``: its
    delivery levels, ``lv``: its declared levels)."""
    return " OR ".join(f"(a.level = {literal(lv)} AND m.{prefix}_{lv})" for lv in LEVELS)


def _step(grain: str) -> str:
    """SQL: the length of one period of the grain column ``grain``."""
    whens = " ".join(f"WHEN {literal(g)} THEN {step}" for g, step in GRAIN_STEPS.items())
    return f"CASE {grain} {whens} END"


def _bucket(grain: str, period: str) -> str:
    """SQL: the start of the period of ``grain`` holding ``period`` (a TIMESTAMP)."""
    whens = " ".join(
        f"WHEN {literal(g)} THEN "
        + (
            f"time_bucket({GRAIN_STEPS[g]}, {period})"
            if g == "15min"
            else f"date_trunc({literal(g)}, {period})"
        )
        for g in GRAIN_STEPS
    )
    return f"CAST(CASE {grain} {whens} END AS TIMESTAMP)"


def _index(grain: str, lo: str, period: str) -> str:
    """SQL: which period of the grain column ``grain`` from ``lo`` the period start ``period`` is
    (0, 1, …; two starts of one period give one index, so distinct indexes mean distinct periods)."""
    whens = " ".join(
        f"WHEN {literal(g)} THEN "
        + (
            f"date_diff('minute', {lo}, {period}) // 15"
            if g == "15min"
            else f"date_diff({literal(g)}, {lo}, {period})"
        )
        for g in GRAIN_STEPS
    )
    return f"CASE {grain} {whens} END"


def area_sql() -> str:
    """The areas with their parent's key and their place in the order of the area ids, as a temp table."""
    return """CREATE OR REPLACE TEMP TABLE q_area AS
SELECT a.area_key, a.area_id, a.level, a.parent_key, coalesce(a.population, 0) AS population,
  row_number() OVER (ORDER BY a.area_id) AS a_rank
FROM areas a"""


def rows_sql(scans: Sequence[tuple[int, datetime, datetime]], now: datetime) -> str:
    """Step 1: the stored records in the judged periods, with their batch's arrival time.

    ``scans``: (storage class, earliest period, end) — one scan per class, so zone maps skip the rest.
    Records that arrived after ``now`` are not there yet.
    """
    if not scans:
        return """CREATE OR REPLACE TEMP TABLE q_rows (ikey INTEGER, area_key INTEGER, p TIMESTAMP,
  period TIMESTAMP, value DOUBLE, has_value BOOLEAN, arrived TIMESTAMP)"""
    parts = [
        f"""SELECT m.ikey, o.area_key, {_bucket("m.qgrain", "o.period")} AS p, o.period, o.value,
  (o.value IS NOT NULL OR (o.numerator IS NOT NULL AND o.denominator IS NOT NULL)) AS has_value,
  b.finished_at AS arrived
FROM observations o JOIN q_ind m ON o.indicator_key = m.ikey JOIN batches b ON b.batch_id = o.batch_id
WHERE o.freq_class = {int(fc)} AND o.period >= {literal(lo)} AND o.period < {literal(hi)}
  AND o.period >= m.win_lo AND o.period < m.win_hi AND b.finished_at <= {literal(now)}"""
        for fc, lo, hi in scans
    ]
    return "CREATE OR REPLACE TEMP TABLE q_rows AS\n" + "\nUNION ALL\n".join(parts)


def extra_sql(now: datetime) -> str:
    """Step 2: deliveries that are not current headline records: superseded ones (their arrival is the
    first delivery of the cell) and missing-value tokens (a cell the provider said has no value)."""
    return f"""CREATE OR REPLACE TEMP TABLE q_extra AS
SELECT m.ikey, o.area_key, {_bucket("m.qgrain", "o.period")} AS p, b.finished_at AS arrived, NULL::VARCHAR AS token
FROM observations_superseded o JOIN q_ind m ON o.indicator_key = m.ikey JOIN batches b ON b.batch_id = o.batch_id
WHERE o.period >= m.win_lo AND o.period < m.win_hi AND b.finished_at <= {literal(now)}
UNION ALL
SELECT m.ikey, o.area_key, {_bucket("m.qgrain", "o.period")} AS p, b.finished_at AS arrived, o.token
FROM observations_missing o JOIN q_ind m ON o.indicator_key = m.ikey JOIN batches b ON b.batch_id = o.batch_id
WHERE o.dims = '' AND o.period >= m.win_lo AND o.period < m.win_hi AND b.finished_at <= {literal(now)}"""


def cell_sql(now: datetime) -> str:
    """Step 4: the expected grid (series × periods) with what arrived and when it was due, summed per
    series (completeness and timeliness), beside the series' accuracy counts from ``q_acc``.

    The expected series of an indicator: every area of its delivery levels when it covers them
    (``q_ind.whole``), the areas its feeds name (``q_ind_area``, at a declared level), and every area of
    a delivery level that has ever delivered it (:data:`DELIVERIES`, by the moment judged). A cell is
    ``pending`` while nothing arrived and it is not yet due (it counts nowhere), else ``on_time``,
    ``late`` or ``missing`` (due and never arrived).

    The grid is counted, not built: an indicator's periods (and how many of them are not yet due, or
    due) are counted once per indicator; the cells that received something are grouped from the
    records and summed per series (from ``q_acc`` when each record of a series fills its own cell and
    it has no earlier delivery or token: one grouping of 1.8 M records, not two at city scale); a
    series' pending and missing cells are its indicator's counts
    less the cells that arrived. A cell's period is always one of its indicator's periods (records are
    read inside the window, whose ends are period starts), and only expected series are kept.
    """
    step = _step("m.qgrain")
    now_lit = literal(now)
    delivered = "\n    UNION ALL\n    ".join(
        f"SELECT DISTINCT o.indicator_key AS ikey, o.area_key, o.batch_id FROM {table} o "
        "JOIN q_ind w ON w.ikey = o.indicator_key AND NOT w.whole"
        for table in DELIVERIES
    )
    return f"""CREATE OR REPLACE TEMP TABLE q_cell AS
WITH per AS (
  SELECT m.ikey, unnest(range(m.win_lo, m.win_hi, {step})) AS p, {step} AS len, to_seconds(m.due_s) AS due
  FROM q_ind m
),
n_per AS (
  SELECT ikey, count(*) AS periods, count(*) FILTER (WHERE {now_lit} <= p + len + due) AS waiting,
    count(*) FILTER (WHERE {now_lit} > p + len + due) AS due
  FROM per GROUP BY ikey
),
dlv AS (
  SELECT d.ikey, d.area_key FROM (
    {delivered}
  ) d JOIN batches b ON b.batch_id = d.batch_id AND b.finished_at <= {now_lit}
  GROUP BY d.ikey, d.area_key
),
ser AS (
  SELECT m.ikey, a.area_key FROM q_ind m JOIN q_area a ON m.whole AND ({_levels("dl")})
  UNION
  SELECT m.ikey, a.area_key FROM q_ind_area n JOIN q_ind m ON m.ikey = n.ikey
    JOIN q_area a ON a.area_id = n.area_id AND ({_levels("lv")})
  UNION
  SELECT m.ikey, a.area_key FROM dlv d JOIN q_ind m ON m.ikey = d.ikey
    JOIN q_area a ON a.area_key = d.area_key AND ({_levels("dl")})
),
xs AS (SELECT DISTINCT ikey, area_key FROM q_extra),
slow AS (
  SELECT ikey, area_key FROM q_acc WHERE NOT single
  UNION
  SELECT ikey, area_key FROM xs
),
got AS (
  SELECT ikey, area_key, p, bool_or(has_value) AS present, min(arrived) AS arrived,
    min(arrived) FILTER (WHERE token) AS first_token
  FROM (
    SELECT r.ikey, r.area_key, r.p, r.has_value, r.arrived, false AS token
    FROM q_rows r SEMI JOIN slow s ON s.ikey = r.ikey AND s.area_key = r.area_key
    UNION ALL
    SELECT ikey, area_key, p, NULL, arrived, token IS NOT NULL FROM q_extra
  ) GROUP BY ikey, area_key, p
),
c AS (
  SELECT g.ikey, g.area_key, g.arrived, coalesce(g.present, false) AS present,
    NOT coalesce(g.present, false) AND g.first_token IS NOT NULL AS token,
    g.p + {step} + to_seconds(m.due_s) AS due_at,
    date_diff('second', g.p + {step}, g.arrived) AS lag_s
  FROM got g JOIN q_ind m ON m.ikey = g.ikey
),
sums AS (
  SELECT ikey, area_key,
    count(*) FILTER (WHERE present) AS present,
    count(*) FILTER (WHERE token) AS tokens,
    count(*) FILTER (WHERE arrived <= due_at) AS on_time,
    count(*) FILTER (WHERE arrived > due_at) AS late,
    count(*) FILTER (WHERE {now_lit} <= due_at) AS waiting,
    count(*) FILTER (WHERE {now_lit} > due_at) AS due,
    -- whole seconds: an exact integer sum, the same whatever the order the threads add in
    sum(lag_s) AS lag_sum, count(lag_s) AS lag_n, max(lag_s) AS lag_max
  FROM c GROUP BY ikey, area_key
  UNION ALL
  -- a series whose records each fill their own cell, with no earlier delivery or token: its cells
  -- are its records, summed with its accuracy in step 3
  SELECT a.ikey, a.area_key, a.present, 0, a.on_time, a.late, a.waiting, a.due, a.lag_sum, a.lag_n, a.lag_max
  FROM q_acc a ANTI JOIN xs ON xs.ikey = a.ikey AND xs.area_key = a.area_key
  WHERE a.single
),
cs AS (
  SELECT s.ikey, s.area_key, n.periods,
    n.waiting - coalesce(x.waiting, 0) AS pending,
    coalesce(x.present, 0) AS present,
    coalesce(x.tokens, 0) AS tokens,
    coalesce(x.on_time, 0) AS on_time,
    coalesce(x.late, 0) AS late,
    n.due - coalesce(x.due, 0) AS missing,
    x.lag_sum / x.lag_n / 3600.0 AS lag_hours,
    x.lag_max / 3600.0 AS max_lag_hours
  FROM ser s JOIN n_per n ON n.ikey = s.ikey
  LEFT JOIN sums x ON x.ikey = s.ikey AND x.area_key = s.area_key
)
SELECT coalesce(cs.ikey, a.ikey) AS ikey, coalesce(cs.area_key, a.area_key) AS area_key,
  coalesce(cs.periods, 0) AS periods, coalesce(cs.pending, 0) AS pending, coalesce(cs.present, 0) AS present,
  coalesce(cs.tokens, 0) AS tokens, coalesce(cs.on_time, 0) AS on_time, coalesce(cs.late, 0) AS late,
  coalesce(cs.missing, 0) AS missing, cs.lag_hours, cs.max_lag_hours,
  coalesce(a.n_values, 0) AS n_values, coalesce(a.out_of_range, 0) AS out_of_range,
  coalesce(a.outliers, 0) AS outliers, coalesce(a.inaccurate, 0) AS inaccurate
FROM cs FULL OUTER JOIN (SELECT * FROM q_acc WHERE n_values > 0) a ON a.ikey = cs.ikey AND a.area_key = cs.area_key"""


def accuracy_sql(now: datetime) -> str:
    """Step 3: per series, its values against the valid range and its median and MAD (robust outliers:
    the modified z-score), and — in the same pass over the records — the completeness and timeliness
    sums its cells would give when no two records share a cell (``single``: each record's period is a
    different one of the first 64 of the window; otherwise step 4 groups the series' records by cell).

    The values of a series are gathered into one list, so each statistic is one pass over a short
    list, not a join back over every record. A list is only filtered when its answer is not already
    known: no valid range means nothing out of range, too few values or a MAD of zero means no
    outliers, and the values wrong either way need a pass only when there are both kinds."""
    step = _step("m.qgrain")
    now_lit = literal(now)
    bad = f"(v < x.lo OR v > x.hi OR (len(x.vs) >= {OUTLIER_MIN_VALUES} AND x.mad > 0 AND {_z('v')} > {OUTLIER_Z}))"
    return f"""CREATE OR REPLACE TEMP TABLE q_acc AS
WITH r AS (
  SELECT r.ikey, r.area_key, r.p, r.value, r.has_value, r.arrived,
    r.p + {step} + to_seconds(m.due_s) AS due_at, date_diff('second', r.p + {step}, r.arrived) AS lag_s,
    {_index("m.qgrain", "m.win_lo", "r.p")} AS n
  FROM q_rows r JOIN q_ind m ON m.ikey = r.ikey
),
g AS (
  SELECT ikey, area_key, list(value) FILTER (WHERE value IS NOT NULL) AS vs,
    -- one bit per period (the first 64): as many bits set as records means one record per cell
    coalesce(bit_count(bit_or(CASE WHEN n BETWEEN 0 AND 63 THEN CAST(1 AS UBIGINT) << n END)) = count(*),
      false) AS single,
    -- a record has a period and an arrival (step 1 reads only arrived ones), so a record not on
    -- time is late, one not due is waiting, and every record has a lag
    count(*) AS n, count(*) FILTER (WHERE has_value) AS present,
    count(*) FILTER (WHERE arrived <= due_at) AS on_time,
    count(*) FILTER (WHERE {now_lit} > due_at) AS due,
    sum(lag_s) AS lag_sum, max(lag_s) AS lag_max
  FROM r GROUP BY ikey, area_key
),
m AS (SELECT g.*, list_median(g.vs) AS med FROM g),
x AS (SELECT m.*, list_median(list_transform(m.vs, lambda v: abs(v - m.med))) AS mad FROM m),
y AS (
  SELECT x.*, i.lo, i.hi,
    CASE WHEN i.lo IS NULL AND i.hi IS NULL THEN 0
         ELSE coalesce(len(list_filter(x.vs, lambda v: v < i.lo OR v > i.hi)), 0) END AS out_of_range,
    CASE WHEN len(x.vs) >= {OUTLIER_MIN_VALUES} AND x.mad > 0
         THEN len(list_filter(x.vs, lambda v: {_z("v")} > {OUTLIER_Z})) ELSE 0 END AS outliers
  FROM x JOIN q_ind i ON i.ikey = x.ikey
)
SELECT x.ikey, x.area_key, coalesce(len(x.vs), 0) AS n_values, x.med, x.mad, x.out_of_range, x.outliers,
  CASE WHEN x.outliers = 0 THEN x.out_of_range WHEN x.out_of_range = 0 THEN x.outliers
       ELSE len(list_filter(x.vs, lambda v: {bad})) END AS inaccurate,
  x.single, x.present, x.on_time, x.n - x.on_time AS late, x.n - x.due AS waiting, x.due, x.lag_sum,
  x.n AS lag_n, x.lag_max
FROM y x"""


def _z(v: str) -> str:
    """SQL: the modified z-score of value ``v`` in series ``x`` (median ``x.med``, MAD ``x.mad``)."""
    return f"0.6745 * abs({v} - x.med) / x.mad"


def outliers_sql() -> str:
    """The values judged inaccurate (outside the valid range, or robust outliers), for the listing:
    the records of the series that have any, against their series' statistics."""
    return f"""SELECT r.ikey, r.area_key, r.period, r.value, x.med AS median, x.mad,
  CASE WHEN x.mad > 0 THEN 0.6745 * (r.value - x.med) / x.mad END AS z,
  CASE WHEN r.value < i.lo OR r.value > i.hi THEN 'out_of_range' ELSE 'outlier' END AS problem
FROM q_rows r JOIN q_acc x ON x.ikey = r.ikey AND x.area_key = r.area_key AND x.inaccurate > 0
JOIN q_ind i ON i.ikey = r.ikey
WHERE r.value < i.lo OR r.value > i.hi
   OR (x.n_values >= {OUTLIER_MIN_VALUES} AND x.mad > 0 AND {_z("r.value")} > {OUTLIER_Z})"""


def empty_checks_sql() -> str:
    """``q_check`` with no rows, for a catalogue without consistency rules."""
    return """CREATE OR REPLACE TEMP TABLE q_check (rule_id VARCHAR, area_key INTEGER, p TIMESTAMP, context VARCHAR,
  total DOUBLE, computed DOUBLE, n_have BIGINT, n_need BIGINT, details VARCHAR, kind VARCHAR, ikey INTEGER,
  tolerance DOUBLE, relative BOOLEAN, allowed DOUBLE)"""


def check_sql(now: datetime) -> str:
    """Step 5: every consistency rule, one row per area × period (× the breakdown's other dimensions):
    the total, what it should equal, how many members there are and are needed, and the values."""
    now_lit = literal(now)
    return f"""CREATE OR REPLACE TEMP TABLE q_check AS
WITH v AS (
  SELECT ikey, area_key, p, arg_max(value, period) AS v FROM q_rows WHERE value IS NOT NULL
  GROUP BY ikey, area_key, p
),
s_mem AS (
  SELECT x.rule_id, x.role, x.pos, x.ikey, v.area_key, v.p, v.v
  FROM q_rule r JOIN q_rule_part x ON x.rule_id = r.rule_id JOIN v ON v.ikey = x.ikey
  WHERE r.kind = 'sum'
),
s_need AS (SELECT rule_id, count(*) FILTER (WHERE role = 'part') AS n FROM q_rule_part GROUP BY rule_id),
s AS (
  SELECT m.rule_id, m.area_key, m.p, '' AS context,
    max(m.v) FILTER (WHERE m.role = 'total') AS total,
    fsum(m.v) FILTER (WHERE m.role = 'part') AS computed,
    count(*) FILTER (WHERE m.role = 'part') AS n_have, any_value(n.n) AS n_need,
    string_agg(k.indicator_id || '=' || CAST(m.v AS VARCHAR), '; ' ORDER BY m.pos)
      FILTER (WHERE m.role = 'part') AS details
  FROM s_mem m JOIN s_need n ON n.rule_id = m.rule_id JOIN indicator_keys k ON k.indicator_key = m.ikey
  GROUP BY m.rule_id, m.area_key, m.p
),
d_rows AS (
  SELECT r.rule_id, r.dimension, o.area_key, {_bucket("m.qgrain", "o.period")} AS p, o.period, o.dims, o.value
  FROM observations_dims o JOIN q_rule r ON r.ikey = o.indicator_key AND r.kind = 'disaggregation'
  JOIN q_ind m ON m.ikey = o.indicator_key JOIN batches b ON b.batch_id = o.batch_id
  WHERE o.period >= m.win_lo AND o.period < m.win_hi AND b.finished_at <= {now_lit} AND o.value IS NOT NULL
  UNION ALL
  SELECT r.rule_id, r.dimension, q.area_key, q.p, q.period, '' AS dims, q.value
  FROM q_rows q JOIN q_rule r ON r.ikey = q.ikey AND r.kind = 'disaggregation' WHERE q.value IS NOT NULL
),
d_cell AS (
  SELECT rule_id, dimension, area_key, p, dims, arg_max(value, period) AS v
  FROM d_rows GROUP BY rule_id, dimension, area_key, p, dims
),
d_split AS (
  SELECT c.*, list_filter(string_split(c.dims, ';'), lambda e: e <> '') AS entries FROM d_cell c
),
d_kv AS (
  SELECT s.rule_id, s.area_key, s.p, s.v,
    array_to_string(list_filter(s.entries, lambda e: NOT starts_with(e, s.dimension || '=')), ';') AS context,
    list_filter(s.entries, lambda e: starts_with(e, s.dimension || '=')) AS hit, s.dimension
  FROM d_split s
),
d_known AS (
  SELECT rule_id, value FROM q_rule_value
  UNION
  SELECT r.rule_id, substr(e, length(r.dimension) + 2) AS value
  FROM (SELECT DISTINCT indicator_key, dims FROM observations_dims) o
  JOIN q_rule r ON r.ikey = o.indicator_key AND r.kind = 'disaggregation' AND r.n_values = 0,
  unnest(string_split(o.dims, ';')) AS t(e)
  WHERE starts_with(e, r.dimension || '=')
),
d_need AS (SELECT rule_id, count(*) AS n FROM d_known GROUP BY rule_id),
d_part AS (
  SELECT k.rule_id, k.area_key, k.p, k.context, substr(k.hit[1], length(k.dimension) + 2) AS dval, k.v
  FROM d_kv k WHERE len(k.hit) = 1
),
d AS (
  SELECT t.rule_id, t.area_key, t.p, t.context, t.v AS total,
    fsum(x.v) AS computed, count(x.v) AS n_have, any_value(n.n) AS n_need,
    string_agg(x.dval || '=' || CAST(x.v AS VARCHAR), '; ' ORDER BY x.dval) AS details
  FROM d_kv t JOIN d_need n ON n.rule_id = t.rule_id
  LEFT JOIN (SELECT p.* FROM d_part p SEMI JOIN d_known k ON k.rule_id = p.rule_id AND k.value = p.dval) x
    ON x.rule_id = t.rule_id AND x.area_key = t.area_key AND x.p = t.p AND x.context = t.context
  WHERE len(t.hit) = 0
  GROUP BY t.rule_id, t.area_key, t.p, t.context, t.v
),
a_kids AS (
  SELECT parent_key AS area_key, count(*) AS n FROM q_area WHERE parent_key IS NOT NULL GROUP BY parent_key
),
a_mem AS (
  SELECT r.rule_id, r.method, pa.area_key AS parent, v.p, ch.area_id, ch.population, v.v
  FROM q_rule r JOIN q_ind m ON m.ikey = r.ikey JOIN v ON v.ikey = r.ikey
  JOIN q_area ch ON ch.area_key = v.area_key JOIN q_area pa ON pa.area_key = ch.parent_key
  WHERE r.kind = 'area_rollup' AND (r.level IS NULL OR pa.level = r.level)
    AND ((pa.level = 'city' AND m.lv_city AND m.lv_district) OR (pa.level = 'district' AND m.lv_district AND m.lv_street))
),
a AS (
  SELECT x.rule_id, x.parent AS area_key, x.p, '' AS context, pv.v AS total,
    CASE any_value(x.method) WHEN 'sum' THEN fsum(x.v) WHEN 'mean' THEN favg(x.v) WHEN 'max' THEN max(x.v)
      WHEN 'min' THEN min(x.v)
      WHEN 'weighted_mean' THEN fsum(x.v * x.population) / NULLIF(fsum(x.population), 0) END AS computed,
    count(*) AS n_have, any_value(k.n) AS n_need,
    string_agg(x.area_id || '=' || CAST(x.v AS VARCHAR), '; ' ORDER BY x.area_id) AS details
  FROM a_mem x JOIN a_kids k ON k.area_key = x.parent JOIN q_rule r ON r.rule_id = x.rule_id
  LEFT JOIN v pv ON pv.ikey = r.ikey AND pv.area_key = x.parent AND pv.p = x.p
  GROUP BY x.rule_id, x.parent, x.p, pv.v
)
SELECT q.*, r.kind, r.ikey, r.tolerance, r.relative,
  CASE WHEN r.relative THEN r.tolerance / 100.0 * abs(q.total) ELSE r.tolerance END
    + {EPSILON} * greatest(1.0, abs(q.total)) AS allowed
FROM (SELECT * FROM s UNION ALL SELECT * FROM d UNION ALL SELECT * FROM a) q
JOIN q_rule r ON r.rule_id = q.rule_id"""


def source_sql(
    sources: Sequence[SourceTable], windows: dict[str, tuple[datetime, datetime]], now: datetime
) -> str | None:
    """Step 6: raw source records in the judged window: how many, how many the source's filter
    excludes, and (with ``timeliness``) on time, late, missing or pending — per provider and area.

    One ``UNION ALL`` branch per source (their columns differ), in one statement.
    """
    if not sources:
        return None
    now_lit = literal(now)
    parts = []
    for src in sources:
        cols = set(src.columns)

        def col(name: str, _cols: set[str] = cols) -> str:
            return "s." + ident(name)

        keep = render_expression(ex.parse_expression(src.filter, names=cols), col) if src.filter else "TRUE"
        provider = (
            f"coalesce(nullif(trim(s.{ident(src.provider_column)}), ''), NULL)"
            if src.provider_column
            else "NULL"
        )
        t = src.timeliness
        tcol = f"s.{ident(src.time_column)}"
        if t is not None:
            done = f"CAST(s.{ident(t.done)} AS TIMESTAMP)" if t.done else "b.finished_at"
            if t.due:
                due = f"CAST(s.{ident(t.due)} AS TIMESTAMP)"
            else:
                assert t.within is not None
                due = f"CAST({tcol} AS TIMESTAMP) + to_seconds({t.within.total_seconds()})"
            status = f"""CASE WHEN {due} IS NULL THEN NULL
      WHEN {done} IS NULL OR {done} > {now_lit} THEN CASE WHEN {now_lit} > {due} THEN 'missing' ELSE 'pending' END
      WHEN {done} <= {due} THEN 'on_time' ELSE 'late' END"""
            lag = f"epoch({done}) - epoch(CAST({tcol} AS TIMESTAMP))"
        else:
            status, lag = "NULL", "NULL"
        lo, hi = windows[src.id]
        parts.append(
            f"""SELECT {literal(src.id)} AS source_id, x.provider, x.area_key, count(*) AS records,
  count(*) FILTER (WHERE NOT x.keep) AS excluded,
  count(*) FILTER (WHERE x.keep AND x.t = 'on_time') AS on_time,
  count(*) FILTER (WHERE x.keep AND x.t = 'late') AS late,
  count(*) FILTER (WHERE x.keep AND x.t = 'missing') AS missing,
  count(*) FILTER (WHERE x.keep AND x.t = 'pending') AS pending,
  favg(x.lag) FILTER (WHERE x.keep AND x.t IN ('on_time', 'late')) / 3600.0 AS lag_hours
FROM (
  SELECT s.area_key, {provider} AS provider, coalesce({keep}, false) AS keep, {status} AS t, {lag} AS lag
  FROM {ident(source_table_name(src.id))} s JOIN batches b ON b.batch_id = s.batch_id
  WHERE {tcol} >= {literal(lo)} AND {tcol} < {literal(hi)} AND b.finished_at <= {now_lit}
) x GROUP BY x.provider, x.area_key"""
        )
    return "CREATE OR REPLACE TEMP TABLE q_src AS\n" + "\nUNION ALL\n".join(parts)


def reject_sql(lo: datetime, now: datetime) -> str:
    """Step 7: rows ingest rejected, per batch and reason, for the batches that arrived from ``lo`` on."""
    return f"""SELECT b.batch_id, b.path, b.options, r.reason, count(*) AS rows
FROM rejects r JOIN batches b ON b.batch_id = r.batch_id
WHERE b.finished_at >= {literal(lo)} AND b.finished_at <= {literal(now)}
GROUP BY b.batch_id, b.path, b.options, r.reason"""


#: The output queries: name → SELECT (the series with their ids, feed and provider, in the order of
#: the indicator and area ids; elsewhere integer keys, whose names are joined in Polars).
OUTPUTS: dict[str, str] = {
    "series": """SELECT i.indicator_id, a.area_id, a.level, i.feed, i.provider, s.*
FROM q_cell s JOIN q_ind i ON i.ikey = s.ikey JOIN q_area a ON a.area_key = s.area_key
ORDER BY i.i_rank, a.a_rank""",
    "checks": "SELECT rule_id, kind, ikey, area_key, p, context, total, computed, n_have, n_need, details, allowed FROM q_check",
}
