"""Baselines the citykpi commands are measured against, each run as its own process by bench/run.py.

Subcommands (each prints one JSON line with its own timings):

* ``plain-load``  — ``CREATE TABLE AS SELECT * FROM read_parquet/read_csv`` into a fresh DuckDB file;
* ``warehouse``   — load a scale's data into a DuckDB file with the docs/design.md schema (integer keys,
  TIMESTAMP period, rows in period order): the tables the hand-written query and the loop read;
* ``hand``        — ONE hand-written SQL query scoring every indicator × area (the limit);
* ``loop``        — the same scoring one query per indicator (the check-by-check pattern), on a sample;
* ``quality``     — ONE hand-written query computing ``citykpi quality``'s completeness and timeliness
  figures per indicator × area (expected periods, present, on time, late, missing) on citykpi's warehouse.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

GRAIN_ORDER = {"day": 0, "month": 1, "year": 2}
FREQ_GRAIN = {"daily": "day", "monthly": "month", "yearly": "year"}
R_DAYS = {"day": 1, "month": 31, "year": 366}
DEFAULT_STALENESS = {"daily": 2, "monthly": 45, "yearly": 430}
RATE_UNITS = {"%", "‰", "per 100k", "per 10k", "per 1k"}


def connect(db: str, *, read_only: bool = False, memory_limit: str = "8GB") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the bench's memory limit and the machine's threads."""
    con = duckdb.connect(db, read_only=read_only)
    con.execute(f"SET memory_limit = '{memory_limit}'")
    return con


# --- plain load ------------------------------------------------------------------------------


def plain_load(db: str, path: str, kind: str) -> dict[str, Any]:
    """CREATE TABLE AS SELECT * FROM read_parquet/read_csv of one file into a fresh database."""
    Path(db).unlink(missing_ok=True)
    con = connect(db)
    reader = f"read_parquet('{path}')" if kind == "parquet" else f"read_csv('{path}')"
    t0 = time.perf_counter()
    con.execute(f"CREATE TABLE observations AS SELECT * FROM {reader}")
    con.execute("CHECKPOINT")
    seconds = time.perf_counter() - t0
    row = con.execute("SELECT count(*) FROM observations").fetchone()
    con.close()
    return {"seconds": seconds, "rows": int(row[0]) if row else 0}


# --- the baseline warehouse ------------------------------------------------------------------

SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE areas(area_key INTEGER PRIMARY KEY, area_id TEXT UNIQUE NOT NULL, name TEXT, name_en TEXT,
                   level TEXT NOT NULL, parent_key INTEGER, population DOUBLE, groups TEXT[]);
CREATE TABLE indicator_keys(indicator_key INTEGER PRIMARY KEY, indicator_id TEXT UNIQUE NOT NULL);
CREATE TABLE observations(indicator_key INTEGER NOT NULL, area_key INTEGER NOT NULL, period TIMESTAMP NOT NULL,
                          value DOUBLE, numerator DOUBLE, denominator DOUBLE, batch_id INTEGER NOT NULL);
"""


def build_warehouse(db: str, cache: Path) -> dict[str, Any]:
    """Load areas, indicator keys and observations (period order) with the design.md schema."""
    Path(db).unlink(missing_ok=True)
    Path(db + ".wal").unlink(missing_ok=True)
    con = connect(db)
    con.execute(f"SET temp_directory = '{cache / 'tmp'}'")
    con.execute(SCHEMA)
    con.execute("INSERT INTO meta VALUES ('schema_version', '1'), ('made_by', 'bench/baselines.py')")
    t0 = time.perf_counter()
    con.execute(
        f"""INSERT INTO areas
        SELECT row_number() OVER () AS area_key, id, name, name_en, level, NULL, population,
               CASE WHEN groups IS NULL OR groups = '' THEN [] ELSE string_split(groups, ';') END
        FROM read_csv('{cache / "areas.csv"}', all_varchar = true, header = true)"""
    )
    con.execute(
        """UPDATE areas SET parent_key = p.area_key FROM
           (SELECT area_key, area_id FROM areas) p, read_csv(?, all_varchar = true, header = true) c
           WHERE c.id = areas.area_id AND c.parent = p.area_id""",
        [str(cache / "areas.csv")],
    )
    specs = json.loads((cache / "spec.json").read_text(encoding="utf-8"))["specs"]
    ids = pl.DataFrame(
        {"indicator_key": [s["ikey"] for s in specs], "indicator_id": [s["id"] for s in specs]}
    )
    con.register("ids_df", ids)
    con.execute("INSERT INTO indicator_keys SELECT indicator_key, indicator_id FROM ids_df")
    con.execute(
        f"""INSERT INTO observations
        SELECT k.indicator_key, a.area_key, CAST(o.period AS TIMESTAMP), o.value, o.numerator,
               o.denominator, 1
        FROM read_parquet('{cache / "observations.parquet"}') o
        JOIN indicator_keys k ON k.indicator_id = o.indicator_id
        JOIN areas a ON a.area_id = o.area_id
        ORDER BY o.period"""
    )
    con.execute("CHECKPOINT")
    seconds = time.perf_counter() - t0
    row = con.execute("SELECT count(*) FROM observations").fetchone()
    con.close()
    return {"seconds": seconds, "rows": int(row[0]) if row else 0}


# --- catalogue tables --------------------------------------------------------------------------


def rgrain(freq: str, grain: str) -> str:
    """The reporting grain: the coarser of the indicator's frequency and the requested grain."""
    f = FREQ_GRAIN[freq]
    return f if GRAIN_ORDER[f] >= GRAIN_ORDER[grain] else grain


def catalogue_frames(
    cache: Path, grain: str
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Small catalogue tables (one row per indicator / override / index component / index)."""
    doc = json.loads((cache / "spec.json").read_text(encoding="utf-8"))
    rows: list[dict[str, Any]] = []
    ovr: list[dict[str, Any]] = []
    for s in doc["specs"]:
        cuts, rng = s["cuts"], s["ranges"]
        vk = s["value_kind"]
        rows.append(
            {
                "indicator_id": s["id"],
                "frequency": s["frequency"],
                "rgrain": rgrain(s["frequency"], grain),
                "levels": s["levels"],
                "direction": s["direction"],
                "tier": s["tier"],
                "value_kind": vk,
                "src_id": s["inputs"][0]
                if vk == "from"
                else (s["id"] if vk in ("observed", "parts") else None),
                "in_a": s["inputs"][0] if vk in ("ratio", "formula") else None,
                "in_b": s["inputs"][1] if vk in ("ratio", "formula") else None,
                "formula": s["formula"],
                "scale": float(s["scale"]),
                "time_rollup": s["time_rollup"],
                "where_op": s["where_op"],
                "where_value": s["where_value"],
                "area_rollup": s["area_rollup"],
                "basis": s["basis"],
                "sgn": -1.0 if s["direction"] == "higher_is_better" else 1.0,
                "c1": cuts.get("blue"),
                "c2": cuts.get("yellow"),
                "c3": cuts.get("orange"),
                "c4": cuts.get("red"),
                "g_lo": rng.get("green", [None, None])[0],
                "g_hi": rng.get("green", [None, None])[1],
                "b_lo": rng.get("blue", [None, None])[0],
                "b_hi": rng.get("blue", [None, None])[1],
                "y_lo": rng.get("yellow", [None, None])[0],
                "y_hi": rng.get("yellow", [None, None])[1],
                "o_lo": rng.get("orange", [None, None])[0],
                "o_hi": rng.get("orange", [None, None])[1],
                "incl": bool(s["inclusive"]),
                "for_periods": int(s["for_periods"]),
                "lim": s["limit"],
                "target": s["target"],
                "staleness_days": int(s["staleness_days"] or DEFAULT_STALENESS[s["frequency"]]),
                "pct_change": s["unit"] not in RATE_UNITS,
            }
        )
        for o in s["overrides"]:
            ovr.append(
                {
                    "indicator_id": s["id"],
                    "o_level": o.get("level"),
                    "o_area": o.get("area"),
                    "o1": o.get("blue"),
                    "o2": o.get("yellow"),
                    "o3": o.get("orange"),
                    "o4": o.get("red"),
                }
            )
    comps: list[dict[str, Any]] = []
    idx: list[dict[str, Any]] = []
    for ix in doc["indices"]:
        idx.append(
            {
                "index_id": ix["id"],
                "aggregation": ix["aggregation"],
                "cap": ix.get("cap_on_red"),
                "min_coverage": float(ix["min_coverage"]),
            }
        )
        for c in ix["components"]:
            n = c.get("normalise") or {}
            comps.append(
                {
                    "index_id": ix["id"],
                    "ref": c["ref"],
                    "weight": float(c["weight"]),
                    "method": n.get("method", "colour_score"),
                    "low": n.get("low"),
                    "high": n.get("high"),
                }
            )
    ovr_schema = {
        "indicator_id": pl.String,
        "o_level": pl.String,
        "o_area": pl.String,
        "o1": pl.Float64,
        "o2": pl.Float64,
        "o3": pl.Float64,
        "o4": pl.Float64,
    }
    return (
        pl.DataFrame(rows, infer_schema_length=None),
        pl.DataFrame(ovr, schema=ovr_schema),
        pl.DataFrame(comps, infer_schema_length=None),
        pl.DataFrame(idx, infer_schema_length=None),
    )


def load_catalogue(con: duckdb.DuckDBPyConnection, cache: Path, grain: str) -> None:
    """Create the TEMP catalogue tables bi, bov, bcomp, bidx in this connection."""
    bi, bov, bcomp, bidx = catalogue_frames(cache, grain)
    for name, df in (("bi", bi), ("bov", bov), ("bcomp", bcomp), ("bidx", bidx)):
        con.register(f"{name}_df", df)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_df")
        con.unregister(f"{name}_df")
    con.execute("""CREATE OR REPLACE TEMP TABLE bi2 AS
        SELECT bi.*, k.indicator_key AS ikey, ks.indicator_key AS src_key,
               ka.indicator_key AS a_key, kb.indicator_key AS b_key
        FROM bi JOIN indicator_keys k ON k.indicator_id = bi.indicator_id
        LEFT JOIN indicator_keys ks ON ks.indicator_id = bi.src_id
        LEFT JOIN indicator_keys ka ON ka.indicator_id = bi.in_a
        LEFT JOIN indicator_keys kb ON kb.indicator_id = bi.in_b""")


# --- windows ---------------------------------------------------------------------------------


def _month(d: date, back: int = 0) -> date:
    """First day of d's month, ``back`` months earlier."""
    m = d.year * 12 + d.month - 1 - back
    return date(m // 12, m % 12 + 1, 1)


def _year_back(d: date) -> date:
    """d one year earlier (29 Feb → 28 Feb)."""
    try:
        return d.replace(year=d.year - 1)
    except ValueError:
        return d.replace(year=d.year - 1, day=28)


#: Days of daily data the plain query reads (look-back, previous day and week, persistence), and the
#: early-warning query (the 28-day trend and four same weekdays before a current day up to 2 days old).
DAYS_BACK, EARLY_DAYS_BACK = 17, 31


def scan_ranges(
    as_of: date, grain: str, days_back: int = DAYS_BACK
) -> tuple[list[tuple[date, date]], list[tuple[date, date]]]:
    """Period ranges the query must read: (own series ranges, ranges of `from` inputs' daily data)."""
    own: list[tuple[date, date]] = []
    full: list[tuple[date, date]] = []
    ly = _year_back(as_of)
    if grain == "day":  # look-back, previous day/week, persistence; the same days a year ago
        own += [(as_of - timedelta(days=days_back), as_of), (ly - timedelta(days=12), ly)]
    # month starts (monthly records; month grain for daily data reads whole months)
    months = [_month(as_of, k) for k in range(4)] + [_month(ly, k) for k in range(4)]
    if grain == "month":
        full += [(_month(as_of, 3), as_of), (_month(ly, 3), _month(ly, -1) - timedelta(days=1))]
    else:
        own += [(m, m) for m in months]
        full += [(_month(as_of, 3), as_of), (_month(ly, 3), _month(ly, -1) - timedelta(days=1))]
    if grain == "year":
        own = [(date(as_of.year - 3, 1, 1), as_of)]
    else:
        own += [(date(as_of.year - k, 1, 1), date(as_of.year - k, 1, 1)) for k in range(4)]
    if grain == "month":
        own += full
    return _merge(own), _merge(full)


def _merge(ranges: list[tuple[date, date]]) -> list[tuple[date, date]]:
    """Sorted, merged, inclusive date ranges."""
    out: list[tuple[date, date]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _where(ranges: list[tuple[date, date]]) -> str:
    """An OR of period ranges (TIMESTAMP column, end exclusive)."""
    parts = [
        f"(o.period >= TIMESTAMP '{a}' AND o.period < TIMESTAMP '{b + timedelta(days=1)}')" for a, b in ranges
    ]
    return "(" + " OR ".join(parts) + ")"


# --- the hand-written query --------------------------------------------------------------------


def _sev(x: str) -> str:
    """SQL severity (0–4) of value ``x`` against the effective bands k1..k4 / ranges of the row."""
    steps_incl = " ".join(f"WHEN sgn * {x} >= k{k} THEN {k}" for k in (4, 3, 2, 1))
    steps_excl = steps_incl.replace(">=", ">")
    band = (
        f"CASE WHEN {x} BETWEEN g_lo AND g_hi THEN 0 WHEN {x} BETWEEN b_lo AND b_hi THEN 1 "
        f"WHEN {x} BETWEEN y_lo AND y_hi THEN 2 WHEN {x} BETWEEN o_lo AND o_hi THEN 3 ELSE 4 END"
    )
    return (
        f"(CASE WHEN {x} IS NULL THEN NULL WHEN direction = 'band' THEN {band} "
        f"WHEN incl THEN (CASE {steps_incl} ELSE 0 END) ELSE (CASE {steps_excl} ELSE 0 END) END)"
    )


def _rollup_level(src: str, child_level: str) -> str:
    """SQL of one level of area roll-up: parents of ``child_level`` areas without their own value."""
    return f"""
    SELECT g.ikey, g.akey, g.bucket,
      CASE b.area_rollup
        WHEN 'sum' THEN g.s_v WHEN 'mean' THEN g.a_v WHEN 'max' THEN g.mx WHEN 'min' THEN g.mn
        WHEN 'weighted_mean' THEN g.s_vw / nullif(g.s_w, 0)
        WHEN 'worst' THEN CASE b.direction WHEN 'higher_is_better' THEN g.mn WHEN 'lower_is_better' THEN g.mx
                          ELSE g.far END
        WHEN 'ratio_of_sums' THEN g.num / nullif(g.den, 0) * b.scale
      END AS v, g.num, g.den, g.lastp
    FROM (
      SELECT s.ikey, a.parent_key AS akey, s.bucket, sum(s.v) AS s_v, avg(s.v) AS a_v, max(s.v) AS mx,
        min(s.v) AS mn, sum(s.v * a.population) AS s_vw,
        sum(CASE WHEN s.v IS NOT NULL THEN a.population END) AS s_w,
        arg_max(s.v, abs(s.v - (b.g_lo + b.g_hi) / 2)) AS far,
        sum(s.num) AS num, sum(s.den) AS den, max(s.lastp) AS lastp
      FROM {src} s JOIN areas a ON a.area_key = s.akey AND a.level = '{child_level}'
      JOIN bi2 b ON b.ikey = s.ikey AND b.area_rollup NOT IN ('none', 'recompute')
      GROUP BY s.ikey, a.parent_key, s.bucket
    ) g JOIN bi2 b ON b.ikey = g.ikey
    LEFT JOIN {src} p ON p.ikey = g.ikey AND p.akey = g.akey AND p.bucket = g.bucket
    WHERE p.ikey IS NULL"""


INDICES_SQL = """
UNION ALL
SELECT NULL, index_id, akey, NULL, NULL,
  CASE WHEN coverage < min_coverage OR score IS NULL THEN 'no_data'
       ELSE ['green','blue','yellow','orange','red'][1 + (CASE WHEN score >= 85 THEN 0 WHEN score >= 70 THEN 1
            WHEN score >= 60 THEN 2 WHEN score >= 50 THEN 3 ELSE 4 END)] END,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, score, coverage
FROM (
  SELECT index_id, akey, min_coverage, coverage,
    CASE WHEN red AND cap IS NOT NULL THEN least(raw_score, cap) ELSE raw_score END AS score
  FROM (
    SELECT sc.index_id, sc.akey, ix.min_coverage, ix.cap, bool_or(sc.red_bottom) AS red,
      sum(sc.w_av) / sum(sc.w) AS coverage,
      CASE ix.aggregation WHEN 'geometric'
        THEN exp(sum(sc.w_av * ln(greatest(sc.s, 1))) / nullif(sum(sc.w_av), 0))
        ELSE sum(sc.w_av * sc.s) / nullif(sum(sc.w_av), 0) END AS raw_score
    FROM (
      SELECT ic.index_id, ce.akey, ic.weight AS w,
        CASE WHEN ce.sev IS NOT NULL THEN ic.weight ELSE 0 END AS w_av,
        CASE WHEN ce.sev IS NULL THEN NULL WHEN ic.method = 'goalposts'
             THEN greatest(0, least(100, (ce.v - ic.low) / nullif(ic.high - ic.low, 0) * 100))
             ELSE 100 - 25 * ce.sev END AS s,
        ce.sev = 4 AND ce.tier = 'bottom_line' AS red_bottom
      FROM bcomp ic JOIN cells ce ON ce.indicator_id = ic.ref
      JOIN areas ar ON ar.area_key = ce.akey AND ar.level IN ('city', 'district')
    ) sc JOIN bidx ix USING (index_id)
    GROUP BY sc.index_id, sc.akey, ix.min_coverage, ix.cap, ix.aggregation
  )
)"""


#: Early warning by hand (``hand --early``), for every cell of a daily indicator: the least-squares line
#: over its last 28 days (regr_slope/regr_intercept/regr_r2), the first worse cut it crosses within 14
#: days (R² ≥ 0.7, basis units for absolute and percent-of bases), and the same-weekday median/MAD
#: robust z-score of its current day (k = 7, 14, 21, 28).
EARLY_SQL = """,
fc_pts AS (
  SELECT s.ikey, s.akey, -date_diff('day', v.cb, s.bucket)::DOUBLE AS x, s.v AS y
  FROM vals v JOIN bi2 b ON b.ikey = v.ikey AND b.rgrain = 'day'
  JOIN s3 s ON s.ikey = v.ikey AND s.akey = v.akey
  WHERE s.bucket > v.cb - INTERVAL 28 DAY AND s.bucket <= v.cb AND s.v IS NOT NULL
),
fc AS (
  SELECT ikey, akey, regr_slope(y, x) AS b, regr_intercept(y, x) AS a, regr_r2(y, x) AS r2
  FROM fc_pts GROUP BY ikey, akey HAVING count(*) >= 14
),
an AS (
  SELECT v.ikey, v.akey, median(s.v) AS med, mad(s.v) AS mad
  FROM vals v JOIN bi2 b ON b.ikey = v.ikey AND b.rgrain = 'day'
  JOIN s3 s ON s.ikey = v.ikey AND s.akey = v.akey
  WHERE s.bucket IN (v.cb - INTERVAL 7 DAY, v.cb - INTERVAL 14 DAY, v.cb - INTERVAL 21 DAY, v.cb - INTERVAL 28 DAY)
  GROUP BY v.ikey, v.akey HAVING count(*) >= 3
),
early AS (
  SELECT e.indicator_id, e.akey, (e.v - n.med) / nullif(1.4826 * n.mad, 0) AS z,
    -- the line in basis units, signed so that up is worse; each cut k1..k4 is crossed at (k - f0) / b
    f.r2, f.b * u.f * e.sgn AS bb, (f.a) * u.f * e.sgn AS f0, e.k1, e.k2, e.k3, e.k4, e.sev
  FROM cells e JOIN bi2 i ON i.indicator_id = e.indicator_id
  LEFT JOIN fc f ON f.ikey = i.ikey AND f.akey = e.akey
  LEFT JOIN an n ON n.ikey = i.ikey AND n.akey = e.akey
  CROSS JOIN LATERAL (SELECT CASE i.basis WHEN 'absolute' THEN 1.0 WHEN 'percent_of_limit' THEN 100.0 / i.lim
    WHEN 'percent_of_target' THEN 100.0 / i.target END AS f) u
  WHERE i.rgrain = 'day'
),
crossed AS (
  SELECT indicator_id, akey, z,
    CASE WHEN r2 >= 0.7 AND bb > 0 AND sev IS NOT NULL THEN
      CASE WHEN sev < 4 AND (k4 - f0) / bb <= 14 THEN 4 WHEN sev < 3 AND (k3 - f0) / bb <= 14 THEN 3
           WHEN sev < 2 AND (k2 - f0) / bb <= 14 THEN 2 WHEN sev < 1 AND (k1 - f0) / bb <= 14 THEN 1 END
    END AS fsev, f0, bb, k1, k2, k3, k4
  FROM early
),
forecast AS (
  SELECT indicator_id, akey, z, fsev,
    greatest(1, ceil((CASE fsev WHEN 4 THEN k4 WHEN 3 THEN k3 WHEN 2 THEN k2 ELSE k1 END - f0) / bb)) AS fperiods
  FROM crossed
)"""


def hand_query(
    as_of: date,
    grain: str,
    *,
    only: tuple[list[int], list[int]] | None = None,
    with_indices: bool = True,
    early: bool = False,
) -> str:
    """The hand-written scoring query; ``only`` = (indicator keys to score, observation keys to read);
    ``early`` adds the trend, days to breach and anomaly score of every daily cell (:data:`EARLY_SQL`)."""
    days_back = EARLY_DAYS_BACK if early else DAYS_BACK
    own, full = scan_ranges(as_of, grain, days_back)
    ly = _year_back(as_of)
    ao = f"TIMESTAMP '{as_of}'"
    key_filter = ""
    sel_bi = cells_bi = "bi2"
    if only is not None:  # the loop: one indicator, reading its own rows (and a derived one's inputs)
        ks = ",".join(str(k) for k in only[0])
        obs = ",".join(str(k) for k in only[1])
        key_filter = f" AND o.indicator_key IN ({obs})"
        cells_bi = f"(SELECT * FROM bi2 WHERE ikey IN ({ks}))"
        sel_bi = f"(SELECT * FROM bi2 WHERE ikey IN ({ks}) OR src_key IN ({obs}))"
    step = (
        "CASE b.rgrain WHEN 'day' THEN INTERVAL 1 DAY WHEN 'month' THEN INTERVAL 1 MONTH "
        "ELSE INTERVAL 1 YEAR END"
    )
    raw_step = (
        "CASE WHEN b.frequency = 'daily' OR b.value_kind = 'from' THEN INTERVAL 1 DAY "
        "WHEN b.frequency = 'monthly' THEN INTERVAL 1 MONTH ELSE INTERVAL 1 YEAR END"
    )
    day_rows = ""
    if grain == "day":  # daily series at day grain only need the look-back days and the same days a year ago
        day_rows = (
            f" AND (b.rgrain <> 'day' OR o.period >= TIMESTAMP '{as_of - timedelta(days=days_back)}' "
            f"OR (o.period >= TIMESTAMP '{ly - timedelta(days=12)}' AND o.period <= TIMESTAMP '{ly}'))"
        )
    lb = f"{ao} - to_days(b.staleness_days) - {step}"
    fgrain = "CASE b.frequency WHEN 'daily' THEN 'day' WHEN 'monthly' THEN 'month' ELSE 'year' END"
    hit = (
        "CASE b.where_op WHEN '<=' THEN o.value <= b.where_value WHEN '<' THEN o.value < b.where_value "
        "WHEN '>=' THEN o.value >= b.where_value WHEN '>' THEN o.value > b.where_value "
        "WHEN '=' THEN o.value = b.where_value ELSE o.value <> b.where_value END"
    )
    extra = ", f.fsev, f.fperiods, f.z" if early else ""
    joined = " LEFT JOIN forecast f ON f.indicator_id = c.indicator_id AND f.akey = c.akey" if early else ""
    indices = ""
    if with_indices:
        indices = (
            INDICES_SQL.replace("score, coverage\nFROM (", "score, coverage, NULL, NULL, NULL\nFROM (")
            if early
            else INDICES_SQL
        )
    return f"""
WITH
raw AS (   -- the rows of the periods needed: own series, then the daily inputs of `from` series
  SELECT b.ikey, o.area_key AS akey, o.period, o.value, o.numerator, o.denominator,
         date_trunc(b.rgrain, o.period) AS bucket, {hit} AS hit
  FROM observations o JOIN {sel_bi} b ON b.src_key = o.indicator_key AND b.value_kind <> 'from'
  WHERE {_where(own)}{key_filter} AND o.period < {ao} + INTERVAL 1 DAY{day_rows}
  UNION ALL
  SELECT b.ikey, o.area_key, o.period, o.value, o.numerator, o.denominator,
         date_trunc(b.rgrain, o.period), {hit}
  FROM observations o JOIN {sel_bi} b ON b.src_key = o.indicator_key AND b.value_kind = 'from'
  WHERE {_where(full)}{key_filter} AND o.period < {ao} + INTERVAL 1 DAY
),
agg AS (   -- every time roll-up at once, where a reporting period holds several records
  SELECT r.ikey, r.akey, r.bucket, sum(r.value) AS s_v, avg(r.value) AS a_v, max(r.value) AS mx,
    min(r.value) AS mn, arg_max(r.value, r.period) AS last_v, count(r.value) AS n, count_if(r.hit) AS n_hit,
    sum(r.numerator) AS num, sum(r.denominator) AS den, max(r.period) AS lastp
  FROM raw r JOIN bi2 b ON b.ikey = r.ikey
  WHERE b.value_kind = 'from' OR {fgrain} <> b.rgrain
  GROUP BY r.ikey, r.akey, r.bucket
),
s0 AS (    -- pick each indicator's time roll-up (one record per period: the record itself)
  SELECT g.ikey, g.akey, g.bucket,
    CASE WHEN b.value_kind = 'parts' THEN g.num / nullif(g.den, 0) * b.scale
      ELSE CASE b.time_rollup WHEN 'sum' THEN g.s_v WHEN 'mean' THEN g.a_v WHEN 'max' THEN g.mx
        WHEN 'min' THEN g.mn WHEN 'last' THEN g.last_v WHEN 'count' THEN g.n ELSE g.n_hit END
    END AS v, g.num, g.den, g.lastp + {raw_step} AS lastp
  FROM agg g JOIN bi2 b ON b.ikey = g.ikey
  UNION ALL
  SELECT r.ikey, r.akey, r.bucket,
    CASE WHEN b.value_kind = 'parts' THEN r.numerator / nullif(r.denominator, 0) * b.scale
      WHEN b.time_rollup = 'count' THEN (r.value IS NOT NULL)::INTEGER
      WHEN b.time_rollup = 'count_where' THEN coalesce(r.hit::INTEGER, 0) ELSE r.value END,
    r.numerator, r.denominator, r.period + {raw_step}
  FROM raw r JOIN bi2 b ON b.ikey = r.ikey
  WHERE b.value_kind <> 'from' AND {fgrain} = b.rgrain
),
r1 AS ({_rollup_level("s0", "street")}),
s1 AS (SELECT * FROM s0 UNION ALL SELECT * FROM r1),
r2 AS ({_rollup_level("s1", "district")}),
s2 AS (SELECT * FROM s1 UNION ALL SELECT * FROM r2),
s3 AS (    -- ratios and formulas, per area and period, after their inputs
  SELECT b.ikey, x.akey, x.bucket,
    CASE WHEN b.value_kind = 'ratio' THEN x.v / nullif(y.v, 0) * b.scale
         WHEN b.formula = 'div100' THEN x.v / nullif(y.v, 0) * 100
         WHEN b.formula = 'pctdiff' THEN (x.v - y.v) / nullif(y.v, 0) * 100
         WHEN b.formula = 'add' THEN x.v + y.v ELSE x.v * y.v / 1000 END AS v,
    NULL::DOUBLE AS num, NULL::DOUBLE AS den, least(x.lastp, y.lastp) AS lastp
  FROM {cells_bi} b JOIN s2 x ON x.ikey = b.a_key JOIN s2 y ON y.ikey = b.b_key AND y.akey = x.akey
       AND y.bucket = x.bucket
  WHERE b.value_kind IN ('ratio', 'formula')
  UNION ALL SELECT * FROM s2
),
cur AS (   -- the latest reporting period with data within the look-back
  SELECT s.ikey, s.akey, max(s.bucket) AS cb
  FROM s3 s JOIN bi2 b ON b.ikey = s.ikey
  WHERE s.bucket >= {lb} AND s.bucket <= {ao}
  GROUP BY s.ikey, s.akey
),
vals AS (  -- current, previous (×2 for persistence), a week ago, a year ago
  SELECT c.ikey, c.akey, c.cb,
    max(s.v) FILTER (WHERE s.bucket = c.cb) AS v0,
    max(s.v) FILTER (WHERE s.bucket = c.cb - {step}) AS v1,
    max(s.v) FILTER (WHERE s.bucket = c.cb - 2 * {step}) AS v2,
    max(s.v) FILTER (WHERE s.bucket = c.cb - INTERVAL 7 DAY AND b.rgrain = 'day') AS vweek,
    max(s.v) FILTER (WHERE s.bucket = c.cb - INTERVAL 1 YEAR) AS vly,
    max(s.lastp) AS newest
  FROM cur c JOIN bi2 b ON b.ikey = c.ikey
  JOIN s3 s ON s.ikey = c.ikey AND s.akey = c.akey
  GROUP BY c.ikey, c.akey, c.cb
),
grid AS (  -- indicator × area at declared levels; each cut: area override, else level override, else own
  SELECT b.*, a.area_key AS akey, a.level,
    coalesce(oa.o1, ol.o1, b.c1) * b.sgn AS k1,
    coalesce(oa.o2, ol.o2, b.c2) * b.sgn AS k2,
    coalesce(oa.o3, ol.o3, b.c3) * b.sgn AS k3,
    coalesce(oa.o4, ol.o4, b.c4) * b.sgn AS k4
  FROM {cells_bi} b JOIN areas a ON list_contains(b.levels, a.level)
  LEFT JOIN bov oa ON oa.indicator_id = b.indicator_id AND oa.o_area = a.area_id
  LEFT JOIN bov ol ON ol.indicator_id = b.indicator_id AND ol.o_level = a.level
),
scored AS (
  SELECT v.cb, v.newest, v.v0, v.v1, v.v2, v.vweek, v.vly,
    CASE WHEN e.pct_change THEN (v.v0 - v.v1) / nullif(abs(v.v1), 0) * 100 ELSE v.v0 - v.v1 END AS chg1,
    CASE WHEN e.pct_change THEN (v.v0 - v.vweek) / nullif(abs(v.vweek), 0) * 100 ELSE v.v0 - v.vweek END AS chg7,
    CASE WHEN e.pct_change THEN (v.v0 - v.vly) / nullif(abs(v.vly), 0) * 100 ELSE v.v0 - v.vly END AS chgly,
    CASE e.basis WHEN 'absolute' THEN v.v0 WHEN 'percent_of_limit' THEN v.v0 / e.lim * 100
      WHEN 'percent_of_target' THEN v.v0 / e.target * 100
      WHEN 'change_previous' THEN (CASE WHEN e.pct_change THEN (v.v0 - v.v1) / nullif(abs(v.v1), 0) * 100
                                   ELSE v.v0 - v.v1 END)
      ELSE (CASE WHEN e.pct_change THEN (v.v0 - v.vly) / nullif(abs(v.vly), 0) * 100 ELSE v.v0 - v.vly END)
    END AS bv,
    e.*
  FROM grid e LEFT JOIN vals v ON v.ikey = e.ikey AND v.akey = e.akey
),
cells AS (
  SELECT indicator_id, akey, tier, v0 AS v, bv, chg1, chg7, chgly, v1, vweek, vly, cb, sgn, k1, k2, k3, k4,
    CASE WHEN cb IS NULL THEN NULL
         WHEN newest < {ao} - to_days(staleness_days) THEN NULL
         WHEN for_periods = 1 THEN {_sev("bv")}
         WHEN for_periods = 2 THEN least({_sev("bv")}, coalesce({_sev("v1")}, 0))
         ELSE least({_sev("bv")}, coalesce({_sev("v1")}, 0), coalesce({_sev("v2")}, 0)) END AS sev,
    CASE WHEN cb IS NULL THEN 'no_data' WHEN newest < {ao} - to_days(staleness_days) THEN 'stale' END AS special
  FROM scored e
){EARLY_SQL if early else ""}
SELECT c.indicator_id, NULL AS index_id, c.akey, c.v, c.bv,
  coalesce(c.special, ['green','blue','yellow','orange','red'][1 + c.sev], 'not_applicable') AS status, c.sev,
  c.v1, c.chg1, c.vweek, c.chg7, c.vly, c.chgly, c.cb, NULL::DOUBLE AS score, NULL::DOUBLE AS coverage{extra}
FROM cells c{joined}{indices}
"""


def run_hand(
    db: str, cache: Path, as_of: date, grain: str, *, explain: bool = False, early: bool = False
) -> dict[str, Any]:
    """Run the one hand-written query (``early``: with trends and anomaly scores); time setup and query."""
    t0 = time.perf_counter()
    con = connect(db, read_only=True)
    load_catalogue(con, cache, grain)
    t1 = time.perf_counter()
    sql = hand_query(as_of, grain, early=early)
    if explain:
        rows = con.execute("EXPLAIN ANALYZE " + sql).fetchall()
        print(rows[0][1], file=sys.stderr)
    con.execute("CREATE TEMP TABLE result AS " + sql)
    t2 = time.perf_counter()
    counts = dict(con.execute("SELECT status, count(*) FROM result GROUP BY ALL ORDER BY ALL").fetchall())
    cells = con.execute("SELECT count(*) FROM result WHERE index_id IS NULL").fetchone()
    out: dict[str, Any] = {
        "setup_seconds": t1 - t0,
        "query_seconds": t2 - t1,
        "cells": int(cells[0]) if cells else 0,
        "status_counts": counts,
    }
    if early:
        row = con.execute("SELECT count(fsev), count(z) FROM result WHERE index_id IS NULL").fetchone()
        out["forecasts"], out["anomaly_scores"] = (int(row[0]), int(row[1])) if row else (0, 0)
    con.close()
    return out


def run_loop(db: str, cache: Path, as_of: date, grain: str, sample: int) -> dict[str, Any]:
    """One query per indicator over an evenly spaced sample; extrapolated linearly to the catalogue."""
    con = connect(db, read_only=True)
    load_catalogue(con, cache, grain)
    inputs = {
        int(r[0]): [int(x) for x in r[1:] if x is not None]
        for r in con.execute("SELECT ikey, src_key, a_key, b_key FROM bi2 ORDER BY ikey").fetchall()
    }
    keys = sorted(inputs)
    step = max(1, len(keys) // sample)
    chosen = keys[::step][:sample]
    t0 = time.perf_counter()
    cells = 0
    for k in chosen:
        rows = con.execute(hand_query(as_of, grain, only=([k], inputs[k]), with_indices=False)).fetchall()
        cells += len(rows)
    seconds = time.perf_counter() - t0
    con.close()
    return {
        "sample": len(chosen),
        "indicators": len(keys),
        "sample_seconds": seconds,
        "extrapolated_seconds": seconds * len(keys) / max(len(chosen), 1),
        "sample_cells": cells,
    }


# --- data quality: completeness and timeliness, one hand-written query -------------------------

QUALITY_PERIODS = {"day": 7, "month": 3, "year": 3}
QUALITY_STEP = {"day": "INTERVAL 1 DAY", "month": "INTERVAL 1 MONTH", "year": "INTERVAL 1 YEAR"}


def _trunc(grain: str, d: date) -> date:
    return d if grain == "day" else (d.replace(day=1) if grain == "month" else d.replace(month=1, day=1))


def _back(grain: str, d: date, n: int) -> date:
    if grain == "day":
        return d - timedelta(days=n)
    if grain == "month":
        total = d.year * 12 + d.month - 1 - n
        return date(total // 12, total % 12 + 1, 1)
    return date(d.year - n, 1, 1)


def quality_frame(cache: Path, as_of: date) -> pl.DataFrame:
    """One row per observed indicator: its grain, judged periods [lo, hi), due, delivery levels."""
    doc = json.loads((cache / "spec.json").read_text(encoding="utf-8"))
    rows = []
    end = as_of + timedelta(days=1)
    for s in doc["specs"]:
        if s["value_kind"] not in ("observed", "parts"):
            continue
        g = FREQ_GRAIN[s["frequency"]]
        hi = _trunc(g, end)
        levels = s["levels"]
        deliver = levels if s["area_rollup"] == "none" else levels[-1:]
        rows.append(
            {
                "indicator_id": s["id"],
                "grain": g,
                "lo": _back(g, hi, QUALITY_PERIODS[g]),
                "hi": hi,
                "due_s": 86400.0 * int(s["staleness_days"] or DEFAULT_STALENESS[s["frequency"]]),
                "d_city": "city" in deliver,
                "d_district": "district" in deliver,
                "d_street": "street" in deliver,
            }
        )
    return pl.DataFrame(rows)


def run_quality(db: str, cache: Path, as_of: date) -> dict[str, Any]:
    """Completeness and timeliness per indicator × area (and their totals), in ONE hand-written query."""
    t0 = time.perf_counter()
    con = connect(db, read_only=True)
    frame = quality_frame(cache, as_of)
    con.register("qf", frame)
    con.execute(
        """CREATE TEMP TABLE qi AS SELECT k.indicator_key AS ikey, qf.grain,
             CAST(qf.lo AS TIMESTAMP) AS lo, CAST(qf.hi AS TIMESTAMP) AS hi, qf.due_s,
             qf.d_city, qf.d_district, qf.d_street
           FROM qf JOIN indicator_keys k ON k.indicator_id = qf.indicator_id"""
    )
    con.unregister("qf")
    now = datetime(2100, 1, 1)  # as bench/quality_probe.py: after every batch, so nothing is pending
    lo_day = min(r["lo"] for r in frame.to_dicts() if r["grain"] == "day")
    lo_coarse = min((r["lo"] for r in frame.to_dicts() if r["grain"] != "day"), default=lo_day)
    step = "CASE i.grain " + " ".join(f"WHEN '{g}' THEN {v}" for g, v in QUALITY_STEP.items()) + " END"
    t1 = time.perf_counter()
    con.execute(
        f"""CREATE TEMP TABLE result AS
        WITH r AS (
          SELECT i.ikey, o.area_key, CAST(date_trunc(i.grain, o.period) AS TIMESTAMP) AS p,
                 bool_or(o.value IS NOT NULL OR (o.numerator IS NOT NULL AND o.denominator IS NOT NULL)) AS present,
                 min(b.finished_at) AS arrived
          FROM observations o JOIN qi i ON i.ikey = o.indicator_key JOIN batches b ON b.batch_id = o.batch_id
          WHERE ((o.freq_class = 0 AND o.period >= TIMESTAMP '{lo_day}')
                 OR (o.freq_class = 1 AND o.period >= TIMESTAMP '{lo_coarse}'))
            AND o.period >= i.lo AND o.period < i.hi AND b.finished_at <= TIMESTAMP '{now}'
          GROUP BY ALL
        ),
        e AS (
          SELECT i.ikey, a.area_key, unnest(range(i.lo, i.hi, {step})) AS p, i.due_s, {step} AS len
          FROM qi i JOIN areas a ON (a.level = 'city' AND i.d_city) OR (a.level = 'district' AND i.d_district)
                                  OR (a.level = 'street' AND i.d_street)
        ),
        c AS (
          SELECT e.ikey, e.area_key, coalesce(r.present, false) AS present,
            CASE WHEN r.arrived IS NULL THEN
                   CASE WHEN TIMESTAMP '{now}' > e.p + e.len + to_seconds(e.due_s) THEN 'missing' ELSE 'pending' END
                 WHEN r.arrived <= e.p + e.len + to_seconds(e.due_s) THEN 'on_time' ELSE 'late' END AS t
          FROM e LEFT JOIN r ON r.ikey = e.ikey AND r.area_key = e.area_key AND r.p = e.p
        )
        SELECT ikey, area_key, count(*) AS expected, count(*) FILTER (WHERE present) AS present,
          count(*) FILTER (WHERE t = 'pending') AS pending, count(*) FILTER (WHERE t = 'on_time') AS on_time,
          count(*) FILTER (WHERE t = 'late') AS late, count(*) FILTER (WHERE t = 'missing') AS missing
        FROM c GROUP BY ikey, area_key"""
    )
    t2 = time.perf_counter()
    totals = con.execute(
        "SELECT sum(expected), sum(present), sum(pending), sum(on_time), sum(late), sum(missing) FROM result"
    ).fetchone()
    con.close()
    names = ("expected", "present", "pending", "on_time", "late", "missing")
    return {
        "setup_seconds": t1 - t0,
        "query_seconds": t2 - t1,
        "totals": {n: int(v or 0) for n, v in zip(names, totals or (), strict=True)},
    }


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: one baseline per process, JSON on stdout."""
    ap = argparse.ArgumentParser(description="bench baselines")
    ap.add_argument("what", choices=["plain-load", "warehouse", "hand", "loop", "sql", "quality"])
    ap.add_argument("--db", required=True)
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--file")
    ap.add_argument("--kind", choices=["parquet", "csv"], default="parquet")
    ap.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 11, 20))
    ap.add_argument("--grain", choices=["day", "month", "year"], default="day")
    ap.add_argument("--sample", type=int, default=300)
    ap.add_argument("--explain", action="store_true")
    ap.add_argument("--early", action="store_true", help="hand: with trends, days to breach, anomaly scores")
    a = ap.parse_args(argv)
    if a.what == "plain-load":
        out = plain_load(a.db, a.file, a.kind)
    elif a.what == "warehouse":
        out = build_warehouse(a.db, a.cache)
    elif a.what == "hand":
        out = run_hand(a.db, a.cache, a.as_of, a.grain, explain=a.explain, early=a.early)
    elif a.what == "loop":
        out = run_loop(a.db, a.cache, a.as_of, a.grain, a.sample)
    elif a.what == "quality":
        out = run_quality(a.db, a.cache, a.as_of)
    else:
        print(hand_query(a.as_of, a.grain, early=a.early))
        return 0
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
