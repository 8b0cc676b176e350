"""The alert lifecycle as SQL: readings → Schmitt trigger → episodes, in a constant number of statements.

For each indicator with an ``alert:`` rule, each of its series (indicator × area with readings of
its own) is a Schmitt trigger over its readings in time order:

* a reading *sets* when its colour is the rule's colour or worse; it is *clear* when it is not set
  and lies beyond the clear level (``clear``; without one, any reading that is not set is clear);
* a clear reading *confirms* once the run of consecutive clear readings it ends has lasted
  ``clear_for`` (a duration, or a number of readings; at once by default);
* the series is *active* at a reading when its last set reading is later than its last confirmed
  clear reading. A maximal run of active readings is an *episode*: pending from its first reading,
  firing from the first reading at which it has been active for ``for``, ended (resolved when it
  fired, cancelled when it never did) at the first reading after it.

Everything is set-based with window functions (gaps and islands): last-set and last-confirmed times
are running maxima, clear runs and episodes are groups numbered by running sums. Nothing loops per
series or per indicator. An update continues from the stored state of each open episode (a *seed
row* standing for the readings before it), so updating every five minutes or once gives the same
episodes; see :mod:`citykpi.engine.alerting` for how the starting points are chosen.
"""

from __future__ import annotations

from datetime import datetime

from citykpi.engine.compiler import severity_sql
from citykpi.sqlutil import literal
from citykpi.vocab.bases import basis_value_sql, single_value_bases

#: Columns of ``alert_episodes`` (and of the computed ``t_al_new``), in table order.
EPISODE_COLUMNS: tuple[str, ...] = (
    "indicator_key",
    "area_key",
    "started_at",
    "fired_at",
    "ended_at",
    "last_at",
    "last_value",
    "peak",
    "peak_at",
    "worst_severity",
    "readings",
    "last_set_at",
    "clear_since",
    "clear_readings",
)


def dirty_sql(upto: datetime, min_batch: int) -> str:
    """``t_al_dirty``: per series, the earliest reading of a batch the lifecycle has not seen yet that
    lies at or before the instant it was followed to (a late reading, or a replaced one)."""
    return f"""CREATE OR REPLACE TEMP TABLE t_al_dirty AS
SELECT r.ikey, o.area_key, min(o.period) AS d
FROM observations o JOIN ck_alert_rule r ON o.indicator_key = r.series_ikey
WHERE r.mode <> 'full' AND o.batch_id > {int(min_batch)} AND o.batch_id > r.after_batch
  AND o.period <= least(r.after_ts, {literal(upto)})
GROUP BY r.ikey, o.area_key"""


def restart_sql(upto: datetime) -> str:
    """``t_al_from``: series recomputed from a point with no seed.

    A late reading restarts its series at the start of the episode it falls in, or at itself when
    none does — unless the series has an open episode whose last reading is older than it (then the
    seed simply continues, reading the late batches too). When replaying an instant before the stored
    progress, every stored episode open at that instant is recomputed from its start.
    """
    return f"""CREATE OR REPLACE TEMP TABLE t_al_from AS
SELECT ikey, area_key, min(from_ts) AS from_ts FROM (
  SELECT d.ikey, d.area_key, coalesce(
      (SELECT min(e.started_at) FROM alert_episodes e
       WHERE e.indicator_key = d.ikey AND e.area_key = d.area_key
         AND e.started_at < d.d AND (e.ended_at IS NULL OR e.ended_at >= d.d)), d.d) AS from_ts
  FROM t_al_dirty d
  WHERE NOT EXISTS (SELECT 1 FROM alert_episodes e WHERE e.indicator_key = d.ikey AND e.area_key = d.area_key
                    AND e.ended_at IS NULL AND e.last_at < d.d)
  UNION ALL
  SELECT e.indicator_key, e.area_key, e.started_at
  FROM alert_episodes e JOIN ck_alert_rule r ON r.ikey = e.indicator_key AND r.mode = 'replay'
  WHERE e.started_at <= {literal(upto)} AND (e.ended_at IS NULL OR e.ended_at > {literal(upto)})
) GROUP BY ikey, area_key"""


def seed_sql() -> str:
    """``t_al_seed``: the open episode of each series that continues from the stored state."""
    cols = ", ".join(f"e.{c}" for c in EPISODE_COLUMNS)
    return f"""CREATE OR REPLACE TEMP TABLE t_al_seed AS
SELECT {cols.replace("e.indicator_key", "e.indicator_key AS ikey")}
FROM alert_episodes e JOIN ck_alert_rule r ON r.ikey = e.indicator_key AND r.mode = 'incremental'
WHERE e.ended_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM t_al_from f WHERE f.ikey = e.indicator_key AND f.area_key = e.area_key)"""


def compute_sql(upto: datetime, lowest: datetime | None, late: tuple[int, datetime] | None) -> str:
    """``t_al_new``: the episodes of the readings up to ``upto`` of every series being followed.

    Two scans, each pruned by zone maps: the readings after each rule's progress (from ``lowest``,
    the earliest period any series is read from; None: from the start of the history, for a rule
    seen for the first time or changed), and — ``late`` = (the lowest batch already followed, the
    latest progress) — the readings of batches not yet followed that continue a seeded series from
    its last reading up to the rule's progress.
    """
    basis = basis_value_sql(
        "r.basis",
        "o.value",
        "r.target_value",
        "r.limit_value",
        "NULL",
        "NULL",
        "r.change_unit",
        only=single_value_bases(),
    )
    pruned = f" AND period >= {literal(lowest)}" if lowest is not None else ""
    cols = "indicator_key, area_key, period, value, batch_id"
    scans = [f"SELECT {cols}, FALSE AS late FROM observations WHERE period <= {literal(upto)}{pruned}"]
    if late is not None:
        scans.append(
            f"SELECT {cols}, TRUE AS late FROM observations "
            f"WHERE batch_id > {int(late[0])} AND period <= {literal(late[1])}"
        )
    source = "\n  UNION ALL\n  ".join(scans)
    return f"""CREATE OR REPLACE TEMP TABLE t_al_new AS
WITH rd AS (
  SELECT r.ikey, o.area_key, o.period, o.value, {basis} AS bv, coalesce(oa.bs_id, ol.bs_id, r.bs_id) AS bs_id
  FROM (
  {source}
  ) o JOIN ck_alert_rule r ON o.indicator_key = r.series_ikey
  LEFT JOIN t_al_from f ON f.ikey = r.ikey AND f.area_key = o.area_key
  LEFT JOIN t_al_seed s ON s.ikey = r.ikey AND s.area_key = o.area_key
  JOIN areas a ON a.area_key = o.area_key
  LEFT JOIN ck_alert_override oa ON oa.ikey = r.ikey AND oa.area_key = o.area_key
  LEFT JOIN ck_alert_override ol ON ol.ikey = r.ikey AND ol.area_key IS NULL AND ol.level = a.level
  WHERE o.value IS NOT NULL AND isfinite(o.value)
    AND CASE WHEN o.late THEN s.ikey IS NOT NULL AND o.period > s.last_at AND o.period <= r.after_ts
                              AND o.batch_id > r.after_batch
             WHEN f.from_ts IS NOT NULL THEN o.period >= f.from_ts
             WHEN r.mode = 'full' THEN TRUE
             WHEN r.mode = 'incremental' THEN o.period > r.after_ts
             ELSE FALSE END
),
fl AS (
  SELECT rd.ikey, rd.area_key, rd.period, rd.value, x.sev,
    coalesce(x.sev >= r.set_sev, FALSE) AS is_set,
    NOT coalesce(x.sev >= r.set_sev, FALSE) AND coalesce(CASE r.clear_kind
      WHEN 'below' THEN rd.bv < r.clear_lo WHEN 'above' THEN rd.bv > r.clear_hi
      WHEN 'within' THEN rd.bv BETWEEN r.clear_lo AND r.clear_hi ELSE TRUE END, FALSE) AS is_clear
  FROM rd JOIN ck_alert_rule r ON r.ikey = rd.ikey
  JOIN ck_alert_bandset bs ON bs.bs_id = rd.bs_id,
  LATERAL (SELECT ({severity_sql("rd.bv", "bs")})::TINYINT AS sev) x
),
keep AS (
  SELECT ikey, area_key FROM fl GROUP BY ikey, area_key HAVING bool_or(is_set)
  UNION SELECT ikey, area_key FROM t_al_seed
),
rows AS (
  SELECT f.ikey, f.area_key, f.period, f.value, f.sev, f.is_set, f.is_clear, FALSE AS is_seed,
    NULL::TIMESTAMP AS s_started, NULL::TIMESTAMP AS s_fired, NULL::INTEGER AS s_readings,
    NULL::TIMESTAMP AS s_last_set, NULL::TIMESTAMP AS s_clear_since, NULL::INTEGER AS s_clear_n,
    NULL::DOUBLE AS s_peak, NULL::TIMESTAMP AS s_peak_at, NULL::TINYINT AS s_worst
  FROM fl f SEMI JOIN keep k ON k.ikey = f.ikey AND k.area_key = f.area_key
  UNION ALL
  SELECT s.ikey, s.area_key, s.last_at, s.last_value, s.worst_severity, FALSE, s.clear_since IS NOT NULL, TRUE,
    s.started_at, s.fired_at, s.readings, s.last_set_at, s.clear_since, s.clear_readings,
    s.peak, s.peak_at, s.worst_severity
  FROM t_al_seed s
),
w1 AS (
  SELECT x.*,
    max(CASE WHEN is_seed THEN s_last_set WHEN is_set THEN period END) OVER cum AS last_set,
    sum(CASE WHEN is_clear THEN 0 ELSE 1 END) OVER cum AS g,
    lead(period) OVER ord AS nxt
  FROM rows x
  WINDOW ord AS (PARTITION BY ikey, area_key ORDER BY period),
         cum AS (PARTITION BY ikey, area_key ORDER BY period ROWS UNBOUNDED PRECEDING)
),
w2 AS (
  SELECT w1.*,
    min(CASE WHEN is_seed THEN s_clear_since WHEN is_clear THEN period END)
      OVER (PARTITION BY ikey, area_key, g) AS run_start,
    sum(CASE WHEN is_seed THEN coalesce(s_clear_n, 0) WHEN is_clear THEN 1 ELSE 0 END)
      OVER (PARTITION BY ikey, area_key, g ORDER BY period ROWS UNBOUNDED PRECEDING) AS run_n
  FROM w1
),
w3 AS (
  SELECT w2.*,
    max(CASE WHEN w2.is_clear AND NOT w2.is_seed AND (
          (r.clear_s IS NULL AND r.clear_n IS NULL)
          OR epoch(w2.period) - epoch(w2.run_start) >= r.clear_s
          OR w2.run_n >= r.clear_n) THEN w2.period END)
      OVER (PARTITION BY w2.ikey, w2.area_key ORDER BY w2.period ROWS UNBOUNDED PRECEDING) AS last_clear
  FROM w2 JOIN ck_alert_rule r ON r.ikey = w2.ikey
),
w4 AS (
  SELECT w3.*, last_set IS NOT NULL AND (last_clear IS NULL OR last_set > last_clear) AS active
  FROM w3
),
w5 AS (
  SELECT w4.*,
    sum(CASE WHEN active AND NOT coalesce(prev_active, FALSE) THEN 1 ELSE 0 END)
      OVER (PARTITION BY ikey, area_key ORDER BY period ROWS UNBOUNDED PRECEDING) AS island
  FROM (SELECT w4.*, lag(active) OVER (PARTITION BY ikey, area_key ORDER BY period) AS prev_active FROM w4) w4
),
w6 AS (
  SELECT w5.*,
    min(CASE WHEN active THEN CASE WHEN is_seed THEN s_started ELSE period END END)
      OVER (PARTITION BY ikey, area_key, island) AS i_start,
    sum(CASE WHEN NOT active THEN 0 WHEN is_seed THEN s_readings ELSE 1 END)
      OVER (PARTITION BY ikey, area_key, island ORDER BY period ROWS UNBOUNDED PRECEDING) AS n_in
  FROM w5
),
ep AS (
  SELECT w6.*,
    CASE WHEN is_seed THEN s_fired
      WHEN (r.for_s IS NULL AND r.for_n IS NULL) OR epoch(period) - epoch(i_start) >= r.for_s
           OR n_in >= r.for_n THEN period END AS fire_time,
    CASE WHEN is_seed THEN s_peak ELSE value END AS pv,
    CASE WHEN is_seed THEN s_peak_at ELSE period END AS pt,
    -- the worse the reading for the direction, the higher; ties go to the earliest
    CASE r.direction WHEN 'lower_is_better' THEN CASE WHEN is_seed THEN s_peak ELSE value END
      WHEN 'higher_is_better' THEN -CASE WHEN is_seed THEN s_peak ELSE value END
      ELSE abs(CASE WHEN is_seed THEN s_peak ELSE value END - r.mid) END AS score
  FROM w6 JOIN ck_alert_rule r ON r.ikey = w6.ikey
  WHERE active
),
agg AS (
  SELECT ikey AS indicator_key, area_key, min(i_start) AS started_at, min(fire_time) AS fired_at,
    arg_max_null(nxt, period) AS ended_at, max(period) AS last_at, arg_max_null(value, period) AS last_value,
    arg_min(pv, struct_pack(k := -score, t := pt)) AS peak,
    arg_min(pt, struct_pack(k := -score, t := pt)) AS peak_at,
    max(CASE WHEN is_seed THEN s_worst ELSE sev END)::TINYINT AS worst_severity,
    sum(CASE WHEN is_seed THEN s_readings ELSE 1 END)::INTEGER AS readings,
    arg_max_null(last_set, period) AS last_set_at,
    arg_max_null(CASE WHEN is_clear THEN run_start END, period) AS clear_since,
    arg_max_null(CASE WHEN is_clear THEN run_n END, period)::INTEGER AS clear_readings
  FROM ep GROUP BY ikey, area_key, island
)
-- a closed episode carries no state forward
SELECT indicator_key, area_key, started_at, fired_at, ended_at, last_at, last_value, peak, peak_at,
  worst_severity, readings,
  CASE WHEN ended_at IS NULL THEN last_set_at END AS last_set_at,
  CASE WHEN ended_at IS NULL THEN clear_since END AS clear_since,
  CASE WHEN ended_at IS NULL THEN clear_readings END AS clear_readings
FROM agg"""


def replaced_sql(upto: datetime) -> str:
    """``t_al_replaced``: the stored episodes the computed ones stand in for — every episode of a rule
    followed from scratch, a series' episodes from its restart point on, and the open episode a
    seed continued."""
    return f"""CREATE OR REPLACE TEMP TABLE t_al_replaced AS
SELECT e.indicator_key, e.area_key, e.started_at FROM alert_episodes e
JOIN ck_alert_rule r ON r.ikey = e.indicator_key
LEFT JOIN t_al_from f ON f.ikey = e.indicator_key AND f.area_key = e.area_key
WHERE r.mode = 'full'
   OR (f.from_ts IS NOT NULL AND e.started_at >= f.from_ts)
   OR (r.mode = 'incremental' AND e.ended_at IS NULL AND f.from_ts IS NULL)
   OR (r.mode = 'replay' AND e.started_at > {literal(upto)})"""


def merged_sql(upto: datetime) -> str:
    """``t_al_episodes``: the episodes as of ``upto``: stored ones not replaced, plus the computed."""
    cols = ", ".join(EPISODE_COLUMNS)
    return f"""CREATE OR REPLACE TEMP TABLE t_al_episodes AS
SELECT {cols} FROM alert_episodes e
WHERE e.started_at <= {literal(upto)}
  AND NOT EXISTS (SELECT 1 FROM t_al_replaced x WHERE x.indicator_key = e.indicator_key
                  AND x.area_key = e.area_key AND x.started_at = e.started_at)
UNION ALL
SELECT {cols} FROM t_al_new"""


#: The statements that store an update (inside the caller's transaction).
def store_sql() -> list[str]:
    """Replace the stored episodes the update recomputed and append the new ones."""
    cols = ", ".join(EPISODE_COLUMNS)
    return [
        """DELETE FROM alert_episodes e USING t_al_replaced x
WHERE x.indicator_key = e.indicator_key AND x.area_key = e.area_key AND x.started_at = e.started_at""",
        f"INSERT INTO alert_episodes ({cols}) SELECT {cols} FROM t_al_new ORDER BY started_at",
    ]
