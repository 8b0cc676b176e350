"""The "hourly city" case: the city's vital signs by the hour, beside the daily city warehouse.

Every vital sign of the scale (4,476 at city scale) becomes an hourly reading of every street (1,031), two
days of them (≈ 221 M readings at city scale), in a catalogue of its own whose indicators all have an alert
rule. The readings are ingested beside the daily city warehouse's 99.5 M observations, so an hourly
evaluation has to skip the daily history (storage class 2) and a 5-minute batch must cost what the batch
costs, not the history.

Subcommands (each prints one JSON line with its own timings; bench/run.py runs each in a process of its own):

* ``generate``        — the hourly catalogue, ``spec.json``, one Parquet file per hour and the 5-minute batches;
* ``hand``            — ONE hand-written evaluation of one hour (its previous hour and the same hour
  yesterday, the roll-ups to districts and the city, colours, staleness, streaks) with the alert lifecycle
  step (pending → firing → resolved with hysteresis, continued from its own stored state): the limit;
* ``hand-init``       — the hand-written lifecycle state followed up to an instant (set-up, not timed);
* ``probe-evaluate``  — ``evaluate(grain="hour", at=T)`` and ``update_episodes(upto=T)`` in-process;
* ``probe-update``    — ``update_episodes`` alone (the set-up of the lifecycle, not timed);
* ``probe-ingest``    — ``ingest()`` of one batch in-process (``--on-duplicate resend``);
* ``plain-insert``    — a plain ``INSERT … SELECT`` of the same batch, ids joined to keys;
* ``compare``         — rows in which citykpi's episode table and the hand-written one differ.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import generate  # noqa: E402  (the bench's own module, beside this one)

HOURLY_VERSION = "1"
#: The bands and the alert rule of every hourly vital sign (readings are 20 + 60 × u, u uniform).
CUTS = {"yellow": 60.0, "orange": 70.0, "red": 79.8}
CLEAR = 75.0
FOR_READINGS = 2
STALE_HOURS = 3
#: 5-minute batches generated (warm-up + runs of the ingest case).
BATCHES = 8


def folder(cache: Path) -> Path:
    """Where the hourly case's files live: ``<cache>/hourly``."""
    return cache / "hourly"


def days() -> tuple[date, date]:
    """The two days of readings: the day before the daily data's as-of date, and that date."""
    return generate.AS_OF - timedelta(days=1), generate.AS_OF


# --- generate ---------------------------------------------------------------------------------------


def _catalogue(scale: generate.Scale) -> tuple[str, list[dict[str, Any]]]:
    """The hourly catalogue (YAML text) and its spec rows."""
    units = generate.LEVEL_UNITS
    lines = ["schema_version: 1", "timezone: Asia/Shanghai", "indicators:"]
    spec = []
    for n in range(scale.vital_signs):
        iid = f"hv.sensor.s{n:05d}"
        unit = units[n % len(units)]
        lines += [
            f"  - id: {iid}",
            f"    name: {{zh: 实时监测{n}, en: Realtime sensor {n}}}",
            "    kind: vital_sign",
            "    domain: realtime",
            f"    unit: {json.dumps(unit, ensure_ascii=False)}",
            f"    description: Hourly reading {n} of every street's sensor.",
            "    owner: 城市运行管理中心",
            "    levels: [city, district, street]",
            "    frequency: hourly",
            "    direction: lower_is_better",
            f"    thresholds: {{yellow: {CUTS['yellow']}, orange: {CUTS['orange']}, red: {CUTS['red']}}}",
            "    rollup: {time: max, area: max}",
            f"    alert: {{colour: red, clear: {CLEAR}, for: {FOR_READINGS} readings}}",
        ]
        spec.append({"id": iid, "n": n})
    return "\n".join(lines) + "\n", spec


def generate_hourly(scale_name: str, cache: Path) -> dict[str, Any]:
    """Write the hourly catalogue, one Parquet file per hour of readings and the 5-minute batches."""
    scale = generate.SCALES[scale_name]
    out = folder(cache)
    mf = out / "manifest.json"
    if mf.exists():
        old = json.loads(mf.read_text(encoding="utf-8"))
        if old.get("version") == HOURLY_VERSION and old.get("scale") == scale_name:
            return dict(old)
    t0 = time.perf_counter()
    (out / "indicators").mkdir(parents=True, exist_ok=True)
    (out / "readings").mkdir(exist_ok=True)
    (out / "batches").mkdir(exist_ok=True)
    text, spec = _catalogue(scale)
    (out / "indicators" / "hourly.yaml").write_text(text, encoding="utf-8")
    (out / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    streets = [a for a in generate.area_rows(scale) if a["level"] == "street"]
    con = duckdb.connect()
    con.execute("SET memory_limit = '4GB'")
    con.execute(
        "CREATE TABLE s AS SELECT range AS n, printf('hv.sensor.s%05d', range) AS indicator_id FROM range(?)",
        [len(spec)],
    )
    con.execute("CREATE TABLE a (akey INTEGER, area_id TEXT)")
    con.executemany("INSERT INTO a VALUES (?, ?)", [(k, row["id"]) for k, row in enumerate(streets)])
    series = generate._hash("s.n * 7919 + a.akey * 104729", 31)
    first, _ = days()
    start = datetime.combine(first, datetime.min.time())

    def write(path: Path, hour: int, slot: int | None) -> int:
        """Readings of hour ``hour`` after ``start`` (only minute slot ``slot``, for a batch)."""
        mix = f"s.n * 7919 + a.akey * 104729 + {hour} * 1299709"
        u = f"({generate._hash(mix, 17)} / 2147483647.0)"
        gap = generate._hash(mix, 23)
        only = f" AND {series} % 12 = {slot}" if slot is not None else ""
        con.execute(
            f"""COPY (
              SELECT s.indicator_id, a.area_id,
                     TIMESTAMP '{start:%Y-%m-%d %H:%M:%S}' + INTERVAL ({hour}) HOUR
                       + INTERVAL ({series} % 12 * 5) MINUTE AS period,
                     round(20 + 60 * {u}, 1) AS value
              FROM s CROSS JOIN a
              WHERE {gap} % 1000 >= 2{only}
              ORDER BY period, s.n, a.akey
            ) TO '{path}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"""
        )
        row = con.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()
        return int(row[0]) if row else 0

    readings = sum(write(out / "readings" / f"h{h:02d}.parquet", h, None) for h in range(48))
    batch_rows = [write(out / "batches" / f"b{k:02d}.parquet", 48 + k // 12, k % 12) for k in range(BATCHES)]
    manifest = {
        "version": HOURLY_VERSION,
        "scale": scale_name,
        "indicators": len(spec),
        "streets": len(streets),
        "series": len(spec) * len(streets),
        "readings": readings,
        "batch_rows": batch_rows,
        "first_day": first.isoformat(),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    mf.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


# --- the hand-written hour -------------------------------------------------------------------------


def _keys(con: duckdb.DuckDBPyConnection, cache: Path) -> None:
    """TEMP table ``hk``: the hourly indicators' keys, cut points and alert rules (from spec.json)."""
    spec = json.loads((folder(cache) / "spec.json").read_text(encoding="utf-8"))
    con.execute("CREATE OR REPLACE TEMP TABLE hk_ids (indicator_id TEXT)")
    con.executemany("INSERT INTO hk_ids VALUES (?)", [(s["id"],) for s in spec])
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE hk AS
        SELECT k.indicator_key AS ikey, {CUTS["yellow"]} AS c_yellow, {CUTS["orange"]} AS c_orange,
               {CUTS["red"]} AS c_red, {CLEAR} AS clear_below, {FOR_READINGS} AS for_n
        FROM hk_ids i JOIN indicator_keys k USING (indicator_id)"""
    )


def _state_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """CREATE TABLE IF NOT EXISTS hand_episodes (ikey INTEGER, area_key INTEGER, started_at TIMESTAMP,
        fired_at TIMESTAMP, ended_at TIMESTAMP, last_at TIMESTAMP, peak DOUBLE, readings INTEGER,
        last_set_at TIMESTAMP)"""
    )
    con.execute("CREATE TABLE IF NOT EXISTS hand_progress (processed_at TIMESTAMP)")


def _lifecycle_sql(after: str, upto: str) -> str:
    """The episodes of the readings in (after, upto], continued from the open ones (hand-written)."""
    return f"""
    rd AS (
      SELECT o.indicator_key AS ikey, o.area_key, o.period, o.value,
             o.value > h.c_red AS is_set, o.value <= h.c_red AND o.value < h.clear_below AS is_clear
      FROM observations o JOIN hk h ON h.ikey = o.indicator_key
      WHERE o.freq_class = 2 AND o.period > {after} AND o.period <= {upto}
    ),
    seed AS (SELECT * FROM hand_episodes WHERE ended_at IS NULL),
    keep AS (SELECT ikey, area_key FROM rd GROUP BY ALL HAVING bool_or(is_set)
             UNION SELECT ikey, area_key FROM seed),
    rows AS (
      SELECT r.ikey, r.area_key, r.period, r.value, r.is_set, r.is_clear, FALSE AS is_seed,
             NULL::TIMESTAMP AS s_start, NULL::TIMESTAMP AS s_fired, NULL::INTEGER AS s_n,
             NULL::TIMESTAMP AS s_set, NULL::DOUBLE AS s_peak
      FROM rd r SEMI JOIN keep k ON k.ikey = r.ikey AND k.area_key = r.area_key
      UNION ALL
      SELECT ikey, area_key, last_at, NULL, FALSE, FALSE, TRUE, started_at, fired_at, readings, last_set_at, peak
      FROM seed
    ),
    w AS (
      SELECT x.*,
        max(CASE WHEN is_seed THEN s_set WHEN is_set THEN period END) OVER c AS last_set,
        max(CASE WHEN is_clear THEN period END) OVER c AS last_clear,
        lead(period) OVER o AS nxt
      FROM rows x
      WINDOW o AS (PARTITION BY ikey, area_key ORDER BY period),
             c AS (PARTITION BY ikey, area_key ORDER BY period ROWS UNBOUNDED PRECEDING)
    ),
    act AS (SELECT w.*, last_set IS NOT NULL AND (last_clear IS NULL OR last_set > last_clear) AS active FROM w),
    isl AS (
      SELECT a.*, sum(CASE WHEN active AND NOT coalesce(prev, FALSE) THEN 1 ELSE 0 END)
                    OVER (PARTITION BY ikey, area_key ORDER BY period ROWS UNBOUNDED PRECEDING) AS island
      FROM (SELECT act.*, lag(active) OVER (PARTITION BY ikey, area_key ORDER BY period) AS prev FROM act) a
    ),
    cnt AS (
      SELECT isl.*, sum(CASE WHEN NOT active THEN 0 WHEN is_seed THEN s_n ELSE 1 END)
                      OVER (PARTITION BY ikey, area_key, island ORDER BY period ROWS UNBOUNDED PRECEDING) AS n_in
      FROM isl
    ),
    episodes AS (
      SELECT c.ikey, c.area_key, min(CASE WHEN is_seed THEN s_start ELSE period END) AS started_at,
        min(CASE WHEN is_seed THEN s_fired WHEN n_in >= h.for_n THEN period END) AS fired_at,
        arg_max_null(nxt, period) AS ended_at, max(period) AS last_at,
        max(CASE WHEN is_seed THEN s_peak ELSE value END) AS peak,
        sum(CASE WHEN is_seed THEN s_n ELSE 1 END)::INTEGER AS readings,
        arg_max_null(last_set, period) AS last_set_at
      FROM cnt c JOIN hk h ON h.ikey = c.ikey WHERE active GROUP BY c.ikey, c.area_key, c.island
    )"""


def _lit(t: datetime) -> str:
    return f"TIMESTAMP '{t:%Y-%m-%d %H:%M:%S.%f}'"


def hand_init(db: str, cache: Path, at: datetime) -> dict[str, Any]:
    """Follow the hand-written lifecycle from nothing up to ``at`` (the set-up of ``hand``)."""
    con = generate_connect(db)
    _keys(con, cache)
    con.execute("DROP TABLE IF EXISTS hand_episodes")
    con.execute("DROP TABLE IF EXISTS hand_progress")
    _state_tables(con)
    t0 = time.perf_counter()
    con.execute(
        f"CREATE TEMP TABLE hand_new AS WITH {_lifecycle_sql(_lit(datetime(1900, 1, 1)), _lit(at))} "
        "SELECT * FROM episodes"
    )
    con.execute("INSERT INTO hand_episodes SELECT * FROM hand_new")
    con.execute("INSERT INTO hand_progress VALUES (?)", [at])
    return {"init_seconds": round(time.perf_counter() - t0, 3)}


def generate_connect(db: str) -> duckdb.DuckDBPyConnection:
    """A connection with the bench's memory limit."""
    con = duckdb.connect(db)
    con.execute("SET memory_limit = '8GB'")
    return con


def hand(db: str, cache: Path, at: datetime) -> dict[str, Any]:
    """ONE hand-written evaluation of the hour holding ``at`` and the lifecycle step up to it."""
    con = generate_connect(db)
    _keys(con, cache)
    _state_tables(con)
    row = con.execute("SELECT max(processed_at) FROM hand_progress").fetchone()
    after = row[0] if row and row[0] else datetime(1900, 1, 1)
    cur = at.replace(minute=0, second=0, microsecond=0)
    lo = cur - timedelta(hours=max(2 * STALE_HOURS, STALE_HOURS + 24))  # the look-back, as citykpi's
    lit = _lit
    t0 = time.perf_counter()
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE hand_out AS
    WITH b AS (   -- the streets' hours in the look-back: max and last reading
      SELECT o.indicator_key AS ikey, o.area_key, date_trunc('hour', o.period) AS bucket,
             max(o.value) AS v, max(o.period) AS last_period
      FROM observations o SEMI JOIN hk h ON h.ikey = o.indicator_key
      WHERE o.freq_class = 2 AND o.period >= {lit(lo)} AND o.period <= {lit(at)}
      GROUP BY ALL
    ),
    d AS (        -- districts: the max of their streets
      SELECT b.ikey, ar.parent_key AS area_key, b.bucket, max(b.v) AS v, max(b.last_period) AS last_period
      FROM b JOIN areas ar ON ar.area_key = b.area_key WHERE ar.parent_key IS NOT NULL GROUP BY ALL
    ),
    c AS (        -- the city: the max of its districts
      SELECT d.ikey, ar.parent_key AS area_key, d.bucket, max(d.v) AS v, max(d.last_period) AS last_period
      FROM d JOIN areas ar ON ar.area_key = d.area_key WHERE ar.parent_key IS NOT NULL GROUP BY ALL
    ),
    allb AS (SELECT * FROM b UNION ALL SELECT * FROM d UNION ALL SELECT * FROM c),
    cur AS (SELECT ikey, area_key, max(bucket) AS cb FROM allb GROUP BY ALL),
    k AS (
      SELECT a.*, date_diff('hour', a.bucket, u.cb) AS k, a.bucket = {lit(cur - timedelta(days=1))} AS dy,
        CASE WHEN a.v > h.c_red THEN 4 WHEN a.v > h.c_orange THEN 3 WHEN a.v > h.c_yellow THEN 2 ELSE 0 END AS sev
      FROM allb a JOIN cur u USING (ikey, area_key) JOIN hk h ON h.ikey = a.ikey
    ),
    cells AS (
      SELECT ikey, area_key,
        any_value(v) FILTER (WHERE k = 0) AS v0, any_value(v) FILTER (WHERE k = 1) AS v1,
        any_value(v) FILTER (WHERE dy) AS vdy, any_value(sev) FILTER (WHERE k = 0) AS sev0,
        any_value(bucket) FILTER (WHERE k = 0) AS bucket0,
        any_value(last_period) FILTER (WHERE k = 0) AS last0,
        {", ".join(f"bit_or(1::BIGINT << k) FILTER (WHERE k BETWEEN 0 AND 24 AND sev = {n}) AS m{n}" for n in (0, 2, 3, 4))}
      FROM k GROUP BY ikey, area_key
    ),
    scored AS (
      SELECT ikey, area_key, bucket0, v0, v1, vdy, (v0 - v1) / NULLIF(abs(v1), 0) * 100 AS change_previous,
        (v0 - vdy) / NULLIF(abs(vdy), 0) * 100 AS change_day_ago,
        CASE WHEN epoch({lit(at)}) - epoch(last0 + INTERVAL 1 HOUR) > {STALE_HOURS * 3600} THEN 'stale'
             ELSE ['green', 'blue', 'yellow', 'orange', 'red'][sev0 + 1] END AS status,
        bit_count(xor(CASE sev0 WHEN 0 THEN m0 WHEN 2 THEN m2 WHEN 3 THEN m3 ELSE m4 END,
                      CASE sev0 WHEN 0 THEN m0 WHEN 2 THEN m2 WHEN 3 THEN m3 ELSE m4 END + 1)) - 1 AS streak
      FROM cells
    ),
    {_lifecycle_sql(lit(after), lit(at))}
    SELECT 'cell' AS what, ikey, area_key, bucket0 AS t1, NULL::TIMESTAMP AS t2, NULL::TIMESTAMP AS t3,
           NULL::TIMESTAMP AS t4, v0 AS x1, change_previous AS x2, change_day_ago AS x3, status, streak,
           NULL::INTEGER AS readings, NULL::TIMESTAMP AS t5
    FROM scored
    UNION ALL
    SELECT 'episode', ikey, area_key, started_at, fired_at, ended_at, last_at, peak, NULL, NULL, NULL, NULL,
           readings, last_set_at
    FROM episodes"""
    )
    # store the lifecycle step: the open episodes it continued are replaced by what it computed
    con.execute("DELETE FROM hand_episodes WHERE ended_at IS NULL")
    con.execute(
        """INSERT INTO hand_episodes SELECT ikey, area_key, t1, t2, t3, t4, x1, readings, t5
        FROM hand_out WHERE what = 'episode'"""
    )
    con.execute("INSERT INTO hand_progress VALUES (?)", [at])
    seconds = time.perf_counter() - t0
    counts = dict(
        con.execute("SELECT what, count(*) FROM hand_out GROUP BY what").fetchall()  # type: ignore[arg-type]
    )
    return {"query_seconds": round(seconds, 3), "rows": counts}


# --- probes of citykpi ----------------------------------------------------------------------------


def probe_evaluate(db: str, catalogue: str, at: datetime, *, update: bool = True) -> dict[str, Any]:
    """citykpi in-process: the hour's evaluation (not recorded) and the lifecycle update to ``at``."""
    from citykpi.catalogue.loader import load_catalogue
    from citykpi.engine.alerting import update_episodes
    from citykpi.engine.evaluate import evaluate
    from citykpi.warehouse.connection import Warehouse

    cat = load_catalogue(catalogue)
    wh = Warehouse.open(db)
    t0 = time.perf_counter()
    sc = evaluate(wh, cat, at=at, grain="hour", persist=False, history_levels=())
    t1 = time.perf_counter()
    report = update_episodes(wh, cat, at) if update else None
    t2 = time.perf_counter()
    wh.close()
    return {
        "evaluate_seconds": round(t1 - t0, 3),
        "update_seconds": round(t2 - t1, 3),
        "total_seconds": round(t2 - t0, 3),
        "cells": sc.cells.height,
        "statements": sc.meta.get("statements"),
        "episodes_written": report.episodes if report else None,
        "status_counts": dict(sc.cells.group_by("status").len().sort("status").iter_rows()),
    }


def probe_update(db: str, catalogue: str, at: datetime) -> dict[str, Any]:
    """citykpi in-process: the lifecycle followed up to ``at`` (set-up)."""
    from citykpi.catalogue.loader import load_catalogue
    from citykpi.engine.alerting import update_episodes
    from citykpi.warehouse.connection import Warehouse

    cat = load_catalogue(catalogue)
    wh = Warehouse.open(db)
    t0 = time.perf_counter()
    report = update_episodes(wh, cat, at)
    wh.close()
    return {"update_seconds": round(time.perf_counter() - t0, 3), "episodes": report.episodes}


def probe_ingest(db: str, catalogue: str, path: str) -> dict[str, Any]:
    """citykpi in-process: ``ingest()`` of one 5-minute batch (a feed: --on-duplicate resend)."""
    from citykpi.catalogue.loader import load_catalogue
    from citykpi.warehouse import IngestOptions, Warehouse, ingest

    cat = load_catalogue(catalogue)
    wh = Warehouse.open(db)
    t0 = time.perf_counter()
    report = ingest(wh, cat, [path], IngestOptions(on_duplicate="resend", now=datetime(2100, 1, 1)))
    t1 = time.perf_counter()
    wh.close()
    t2 = time.perf_counter()
    f = report.files[0]
    return {
        "ingest_seconds": round(t1 - t0, 3),
        "close_seconds": round(t2 - t1, 3),
        "status": f.status,
        "loaded": f.rows_loaded,
        "rejected": f.rows_rejected,
    }


def compare(db: str) -> dict[str, Any]:
    """Rows in which citykpi's episode table and the hand-written one differ (both followed to the
    same instant): 0 when the lifecycle agrees."""
    con = generate_connect(db)
    # last_set_at is state carried only by open episodes (citykpi clears it once an episode ends)
    cols = "started_at, fired_at, ended_at, last_at, peak, readings, if(ended_at IS NULL, last_set_at, NULL)"
    mine = f"SELECT indicator_key, area_key, {cols} FROM alert_episodes"
    hand = f"SELECT ikey, area_key, {cols} FROM hand_episodes"
    row = con.execute(
        f"SELECT (SELECT count(*) FROM ({mine} EXCEPT ALL {hand})) + (SELECT count(*) FROM ({hand} EXCEPT ALL {mine})),"
        f" (SELECT count(*) FROM alert_episodes)"
    ).fetchone()
    con.close()
    return {"differing_rows": int(row[0]) if row else -1, "episodes": int(row[1]) if row else 0}


def plain_insert(db: str, path: str) -> dict[str, Any]:
    """A plain INSERT of the batch: ids joined to keys, no validation, no duplicate check."""
    con = generate_connect(db)
    t0 = time.perf_counter()
    con.execute(
        f"""INSERT INTO observations (indicator_key, area_key, period, value, numerator, denominator, batch_id,
            freq_class)
        SELECT k.indicator_key, a.area_key, f.period, f.value, NULL, NULL, -1, 2
        FROM read_parquet('{path}') f JOIN indicator_keys k USING (indicator_id) JOIN areas a USING (area_id)"""
    )
    t1 = time.perf_counter()
    con.close()
    return {"insert_seconds": round(t1 - t0, 3), "close_seconds": round(time.perf_counter() - t1, 3)}


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command")
    ap.add_argument("--scale", default="small")
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--db")
    ap.add_argument("--catalogue")
    ap.add_argument("--at", type=datetime.fromisoformat)
    ap.add_argument("--file")
    a = ap.parse_args(argv)
    cache = a.cache or generate.CACHE / a.scale
    if a.command == "generate":
        out = generate_hourly(a.scale, cache)
    elif a.command == "hand":
        out = hand(a.db, cache, a.at)
    elif a.command == "hand-init":
        out = hand_init(a.db, cache, a.at)
    elif a.command == "probe-evaluate":
        out = probe_evaluate(a.db, a.catalogue, a.at)
    elif a.command == "probe-update":
        out = probe_update(a.db, a.catalogue, a.at)
    elif a.command == "probe-ingest":
        out = probe_ingest(a.db, a.catalogue, a.file)
    elif a.command == "compare":
        out = compare(a.db)
    elif a.command == "plain-insert":
        out = plain_insert(a.db, a.file)
    else:
        raise SystemExit(f"unknown command {a.command!r}")
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
