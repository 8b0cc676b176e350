"""Generate the sample city's data files, set-based in DuckDB, deterministically.

Every random number is a hash of (seed, indicator, area, period, purpose): no state, no Python loops
over rows, the same bytes on every run. One query builds all observations from three small tables
(series to generate, indicator profiles, calendars); another builds the hotline cases. The files come
out in the forms departments send them: long CSV, GB18030 CSV with Chinese headers, a wide CSV,
Parquet, and a ``manifest.json`` saying how each is ingested.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from citykpi.catalogue import load_catalogue
from citykpi.catalogue.model import UNITS, Catalogue, FromSeries, Indicator, Observed
from citykpi.engine.holidays import day_type
from citykpi.sample.areas import CITY_ID, build_areas
from citykpi.sample.profiles import AQI_EPISODE, DRIFTS, INCIDENTS, PM25_EPISODE, PROFILES, Profile

DEFAULT_SEED = "citykpi-sample-v1"
#: District-level hourly series are kept to the last days (city-level ones cover the whole history).
HOURLY_DAYS = 30
#: Hotline cases created per day in the whole city (before weekly and seasonal factors).
HOTLINE_PER_DAY = 1_800
#: The hotline's volume on a public holiday, relative to a plain day (the Spring Festival lull).
HOTLINE_HOLIDAY = 0.55

#: Daily indicators a water company sends as one wide sheet per day (one column per indicator).
WIDE_WATER = (
    "water.supply.residual_chlorine",
    "water.supply.turbidity",
    "water.supply.daily_volume",
    "water.supply.pipe_bursts",
    "water.supply.outage_households",
    "water.supply.plant_load",
)
#: Daily indicators the city-management bureau exports from Excel: GB18030, Chinese headers.
GB18030_CITY_MANAGEMENT = (
    "drain.pump_availability",
    "drain.manhole_alarms",
    "ur.lighting_on_rate",
    "bt.tunnel.lighting_ok",
    "bt.bridge.deflection",
    "env.waste.collected",
)
GB_HEADERS = {"indicator_id": "指标编码", "area_id": "区划代码", "period": "统计日期", "value": "数值"}

#: Hotline categories: (name, share of cases, hours allowed to close).
HOTLINE_CATEGORIES: tuple[tuple[str, float, int], ...] = (
    ("城市管理", 0.18, 72),
    ("住房物业", 0.14, 120),
    ("交通出行", 0.11, 72),
    ("噪声扰民", 0.09, 48),
    ("水电气讯", 0.10, 24),
    ("市场监管", 0.09, 120),
    ("劳动保障", 0.08, 168),
    ("环境保护", 0.06, 72),
    ("医疗卫生", 0.05, 72),
    ("教育", 0.04, 120),
    ("政务服务", 0.04, 72),
    ("其他", 0.02, 120),
)
HOTLINE_CHANNELS: tuple[tuple[str, float], ...] = (
    ("电话", 0.70),
    ("微信", 0.12),
    ("渝快办", 0.10),
    ("网站", 0.05),
    ("短信", 0.03),
)


@dataclass(frozen=True)
class OutputFile:
    """One generated file and how to ingest it."""

    path: str
    rows: int
    sha256: str
    entry: dict[str, object]


@dataclass(frozen=True)
class GenerationResult:
    """What ``generate`` wrote: the files, row counts and the time it took."""

    out: Path
    files: tuple[OutputFile, ...]
    observations: int
    hotline_cases: int
    seconds: float


def _is_count(indicator: Indicator) -> bool:
    return UNITS.get(indicator.unit) == "count"


def _generated_levels(ind: Indicator, from_inputs: set[str]) -> tuple[str, ...]:
    """Levels at which an observed indicator gets rows: the finest, or all when it cannot roll up."""
    if ind.rollup.area == "none" or ind.id in from_inputs:
        return ind.levels
    return (ind.levels[-1],)


def _sql_literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def _periods(frequency: str, end: date, days: int) -> tuple[datetime, datetime]:
    """First and last period start generated for a frequency."""
    last_day = datetime(end.year, end.month, end.day)
    first_day = last_day - timedelta(days=days - 1)
    if frequency in ("daily", "hourly", "realtime"):
        return first_day, last_day + timedelta(hours=23)
    if frequency == "weekly":
        monday = last_day - timedelta(days=last_day.weekday())
        return monday - timedelta(weeks=max(days // 7, 60)), monday
    if frequency == "monthly":
        return datetime(end.year - 2, 1, 1), datetime(end.year, end.month, 1)
    if frequency == "quarterly":
        return datetime(end.year - 2, 1, 1), datetime(end.year, 3 * ((end.month - 1) // 3) + 1, 1)
    return datetime(end.year - 5, 1, 1), datetime(end.year, 1, 1)


#: Longer periods average out day-to-day noise: relative noise is scaled down by frequency.
_NOISE_BY_FREQUENCY = {
    "realtime": 1.0,
    "hourly": 1.0,
    "daily": 1.0,
    "weekly": 0.7,
    "monthly": 0.5,
    "quarterly": 0.4,
    "yearly": 0.3,
}

_STEP = {
    "realtime": "INTERVAL 1 HOUR",
    "hourly": "INTERVAL 1 HOUR",
    "daily": "INTERVAL 1 DAY",
    "weekly": "INTERVAL 7 DAY",
    "monthly": "INTERVAL 1 MONTH",
    "quarterly": "INTERVAL 3 MONTH",
    "yearly": "INTERVAL 1 YEAR",
}


def _setup(con: duckdb.DuckDBPyConnection, seed: str) -> None:
    con.execute("SET threads = 2")
    con.execute("SET enable_progress_bar = false")
    # uniform [0, 1) and standard normal (Box–Muller) from hashes: stateless and repeatable
    con.execute(
        "CREATE OR REPLACE MACRO u01(a, b, c, d) AS "
        f"((hash(concat_ws('|', {_sql_literal(seed)}, a, b, c, d)) >> 11)::DOUBLE / 9007199254740992.0)"
    )
    con.execute(
        "CREATE OR REPLACE MACRO nrm(a, b, c, d) AS "
        "sqrt(-2 * ln(greatest(u01(a, b, c, d || '#1'), 1e-12))) * cos(2 * pi() * u01(a, b, c, d || '#2'))"
    )


def _load_tables(
    con: duckdb.DuckDBPyConnection, catalogue: Catalogue, areas: pl.DataFrame, end: date, days: int
) -> list[str]:
    """Create the small driving tables: areas, profiles, series, calendars, incidents. Returns ids."""
    observed = [i for i in catalogue.indicators if isinstance(i.value, Observed)]
    missing = [i.id for i in observed if i.id not in PROFILES]
    if missing:
        raise ValueError(f"no sample profile for observed indicator(s): {', '.join(missing)}")
    from_inputs = {
        i.value.input
        for i in catalogue.indicators
        if isinstance(i.value, FromSeries) and i.rollup.area == "recompute"
    }
    city_pop = float(areas.filter(pl.col("level") == "city")["population"][0])
    con.register("areas_src", areas)
    con.execute(
        "CREATE TABLE areas AS SELECT id AS area_id, level, parent, population::DOUBLE AS population, "
        f"population / {city_pop} AS share FROM areas_src"
    )
    con.unregister("areas_src")
    if not observed:  # a slice of the catalogue with measures only (the hotline): no series to generate
        return []

    prof_rows: list[dict[str, object]] = []
    series_rows: list[dict[str, object]] = []
    path_rows: list[dict[str, object]] = []
    for ind in observed:
        p: Profile = PROFILES[ind.id]
        assert isinstance(ind.value, Observed)
        lo = p.lo
        hi = p.hi
        if ind.valid_range is not None:
            vlo, vhi = ind.valid_range
            lo = vlo if lo is None else (lo if vlo is None else max(lo, vlo))
            hi = vhi if hi is None else (hi if vhi is None else min(hi, vhi))
        first, last = _periods(ind.frequency, end, days)
        prof_rows.append(
            {
                "indicator_id": ind.id,
                "frequency": ind.frequency,
                "base_v": float(p.base),
                "noise": float(p.noise) * _NOISE_BY_FREQUENCY[ind.frequency],
                "sd": p.sd,
                "season": p.season,
                "samp": p.samp,
                "weekly": p.weekly,
                "growth": p.growth,
                "spread": p.spread,
                "diurnal": p.diurnal,
                "peak": p.peak,
                "parts": p.parts,
                "sparse": p.sparse,
                "lo": None if lo is None else float(lo),
                "hi": None if hi is None else float(hi),
                "decimals": p.decimals,
                "is_int": _is_count(ind),
                "missing": p.missing,
                "stop_days": p.stop_days,
                "extensive": ind.rollup.area == "sum",
                "with_parts": ind.value.with_parts,
                "scale": float(ind.value.scale),
                "has_path": bool(p.path),
            }
        )
        path_rows.extend(
            {"indicator_id": ind.id, "from_period": datetime(d.year, d.month, d.day), "value": v}
            for d, v in p.path
        )
        derive_parent = ind.id in from_inputs and ind.rollup.area != "none"
        for level in _generated_levels(ind, from_inputs):
            if derive_parent and level != ind.levels[-1]:
                continue  # parent rows are derived from the children after generation
            start = first
            if ind.frequency in ("hourly", "realtime") and level != "city":
                start = max(first, datetime(end.year, end.month, end.day) - timedelta(days=HOURLY_DAYS - 1))
            series_rows.append(
                {"indicator_id": ind.id, "level": level, "first_period": start, "last_period": last}
            )
    con.register("prof_src", pl.DataFrame(prof_rows, infer_schema_length=None))
    con.execute("CREATE TABLE prof AS SELECT * FROM prof_src")
    con.register("series_src", pl.DataFrame(series_rows))
    con.execute(
        "CREATE TABLE series AS SELECT s.indicator_id, a.area_id, a.level, a.population, a.share, "
        "s.first_period, s.last_period FROM series_src s JOIN areas a USING (level)"
    )
    path_frame = pl.DataFrame(
        path_rows, schema={"indicator_id": pl.String, "from_period": pl.Datetime("us"), "value": pl.Float64}
    )
    con.register("path_src", path_frame)
    con.execute("CREATE TABLE paths AS SELECT * FROM path_src")
    for name in ("prof_src", "series_src", "path_src"):
        con.unregister(name)

    # calendars: one row per frequency and period start
    cal_parts = []
    for freq in sorted({str(r["frequency"]) for r in prof_rows}):
        first, last = _periods(freq, end, days)
        cal_parts.append(
            f"SELECT '{freq}' AS frequency, generate_series AS period, "
            f"generate_series + {_STEP[freq]} AS period_next FROM generate_series("
            f"TIMESTAMP '{first:%Y-%m-%d %H:%M:%S}', TIMESTAMP '{last:%Y-%m-%d %H:%M:%S}', {_STEP[freq]})"
        )
    con.execute(
        f"""CREATE TABLE cal AS
        SELECT frequency, period,
               -- trend time from the end of the period, so a year's value is the year-end level
               greatest(0, datediff('day', period_next - INTERVAL 1 DAY, TIMESTAMP '{end:%Y-%m-%d}'))
                 / 365.25 AS t_years,
               dayofyear(period) AS doy, month(period) AS mon, dayofweek(period) AS dow,
               hour(period) AS hr, date_trunc('week', period) AS week,
               CASE frequency WHEN 'quarterly' THEN quarter(period) / 4.0
                              WHEN 'monthly' THEN month(period) / 12.0 ELSE 1.0 END AS cum_share
        FROM ({" UNION ALL ".join(cal_parts)})"""
    )

    # incidents and the smog episode
    inc_rows: list[dict[str, object]] = []
    last_day = datetime(end.year, end.month, end.day)
    by_id = catalogue.by_id
    for inc in INCIDENTS:
        if inc.indicator not in by_id:  # generating for a slice of the sample catalogue
            continue
        freq = by_id[inc.indicator].frequency
        for back in range(inc.last, inc.first + 1):
            day = last_day - timedelta(days=back)
            hours = inc.hours or (tuple(range(24)) if freq == "hourly" else (0,))
            for h in hours:
                inc_rows.append(
                    {
                        "indicator_id": inc.indicator,
                        "area_id": inc.area,
                        "period": day + timedelta(hours=h),
                        "value": float(inc.value),
                    }
                )
    con.register(
        "inc_src",
        pl.DataFrame(
            inc_rows,
            schema={
                "indicator_id": pl.String,
                "area_id": pl.String,
                "period": pl.Datetime("us"),
                "value": pl.Float64,
            },
        ),
    )
    con.execute("CREATE TABLE incidents AS SELECT * FROM inc_src")
    con.unregister("inc_src")
    drifts = pl.DataFrame(
        [{"indicator_id": d.indicator, "area_id": d.area, "days": d.days, "to_factor": d.to} for d in DRIFTS],
        schema={"indicator_id": pl.String, "area_id": pl.String, "days": pl.Int64, "to_factor": pl.Float64},
    )
    con.register("drift_src", drifts)
    con.execute("CREATE TABLE drifts AS SELECT * FROM drift_src")
    con.unregister("drift_src")
    ep_rows: list[dict[str, object]] = []
    for ind_id, episode in (
        ("env.air.aqi", AQI_EPISODE),
        ("env.air.aqi_hourly", AQI_EPISODE),
        ("env.air.pm25", PM25_EPISODE),
    ):
        for back, ep_level in episode.items():
            if back < days:
                ep_rows.append(
                    {"indicator_id": ind_id, "day": last_day - timedelta(days=back), "level": ep_level}
                )
    con.register(
        "ep_src",
        pl.DataFrame(
            ep_rows, schema={"indicator_id": pl.String, "day": pl.Datetime("us"), "level": pl.Float64}
        ),
    )
    con.execute("CREATE TABLE episodes AS SELECT * FROM ep_src")
    con.unregister("ep_src")
    return [i.id for i in observed]


_OBSERVATIONS_SQL = """
CREATE TABLE obs AS
WITH base AS (
    SELECT s.indicator_id, s.area_id, s.level, s.population, c.period, c.frequency, p.* EXCLUDE (indicator_id, frequency),
           c.t_years, c.doy, c.mon, c.dow, c.hr, c.cum_share,
           CASE p.season
               WHEN 'summer' THEN cos(2 * pi() * (c.doy - 205) / 365.25)
               WHEN 'winter' THEN cos(2 * pi() * (c.doy - 20) / 365.25)
               WHEN 'rain' THEN cos(2 * pi() * (c.doy - 190) / 365.25)
               WHEN 'q4' THEN CASE WHEN c.mon >= 10 THEN 1.0 ELSE -1.0 / 3 END
               ELSE 0.0 END AS season_f,
           CASE WHEN p.frequency IN ('daily', 'hourly')
                THEN CASE WHEN c.dow IN (0, 6) THEN -1.0 ELSE 0.4 END ELSE 0.0 END AS weekly_f,
           CASE WHEN p.frequency = 'hourly' THEN cos(2 * pi() * (c.hr - p.peak) / 24) ELSE 0.0 END AS diurnal_f,
           CASE WHEN s.level = 'city' THEN 0.0 ELSE nrm(s.indicator_id, s.area_id, 'area', 'a') END AS za,
           0.55 * nrm(s.indicator_id, 'all', c.period::VARCHAR, 'c')
             + 0.55 * nrm(s.indicator_id, s.area_id, c.period::VARCHAR, 'd')
             + 0.63 * nrm(s.indicator_id, 'all', c.week::VARCHAR, 'w') AS z,
           nrm(s.indicator_id, s.area_id, c.period::VARCHAR, 'e') AS zd,
           u01(s.indicator_id, s.area_id, c.period::VARCHAR, 'occ') AS u_occ,
           u01(s.indicator_id, s.area_id, c.period::VARCHAR, 'miss') AS u_miss,
           u01(s.indicator_id, s.area_id, c.period::VARCHAR, 'round') AS u_round,
           CASE WHEN p.extensive THEN s.share ELSE 1.0 END AS share_f
    FROM series s
    JOIN prof p USING (indicator_id)
    JOIN cal c ON c.frequency = p.frequency AND c.period BETWEEN s.first_period AND s.last_period
),
shaped AS (
    SELECT *,
           share_f * (1 + spread * za) AS area_f,
           pow(1 + growth, -t_years) AS growth_f
    FROM base
    WHERE u_miss >= missing
      AND (stop_days = 0 OR period < TIMESTAMP '{end}' - to_days((stop_days - 1)::INTEGER))
),
raw AS (
    SELECT r.*,
           CASE
             WHEN i.value IS NOT NULL THEN i.value
             WHEN e.level IS NOT NULL
               THEN e.level * (1 + 0.08 * zd) * (1 + diurnal * diurnal_f) * (1 + 0.12 * za)
             WHEN has_path THEN pa.value
             WHEN sparse > 0 THEN CASE WHEN u_occ < sparse * greatest(0.05, 1 + samp * season_f)
                                       THEN base_v * area_f * exp(0.9 * z) ELSE 0.0 END
             WHEN season = 'cum' THEN base_v * growth_f * area_f * cum_share * (1 + noise * z) + sd * z
             ELSE base_v * growth_f * area_f
                    * (1 + samp * season_f + weekly * weekly_f + diurnal * diurnal_f) * (1 + noise * z)
                  + sd * z * share_f
           END AS v0,
           -- a drift: from 1 (days before the end) in a straight line to to_factor (the end date)
           coalesce(1 - (1 - dr.to_factor)
                      * greatest(0.0, 1 - datediff('day', r.period, TIMESTAMP '{end}') / dr.days), 1.0) AS drift_f
    FROM shaped r
    LEFT JOIN incidents i ON i.indicator_id = r.indicator_id AND i.area_id = r.area_id AND i.period = r.period
    LEFT JOIN drifts dr ON dr.indicator_id = r.indicator_id AND dr.area_id = r.area_id
    LEFT JOIN episodes e ON e.indicator_id = r.indicator_id AND e.day = date_trunc('day', r.period)
    ASOF LEFT JOIN paths pa ON pa.indicator_id = r.indicator_id AND r.period >= pa.from_period
),
clamped AS (
    SELECT *,
           least(coalesce(hi, 1e300), greatest(coalesce(lo, -1e300), v0 * drift_f)) AS v1
    FROM raw
),
valued AS (
    SELECT *,
           CASE WHEN is_int THEN floor(v1 + u_round) ELSE round(v1, decimals::INTEGER) END AS v
    FROM clamped
),
parted AS (
    SELECT *,
           CASE WHEN with_parts THEN greatest(1, round(population * parts * (1 + 0.03 * zd))) END AS den
    FROM valued
)
SELECT indicator_id, area_id, level, frequency, period,
       CASE WHEN with_parts THEN round(num / den * scale, 3) ELSE v END AS value,
       num AS numerator, den AS denominator
FROM (
    SELECT *,
           CASE WHEN with_parts THEN
               CASE WHEN hi IS NOT NULL AND hi <= scale THEN least(den, round(den * v / scale))
                    ELSE round(den * v / scale) END
           END AS num
    FROM parted
)
"""

#: The observations of a catalogue slice without observed indicators (the files come out empty).
_NO_OBSERVATIONS_SQL = """CREATE TABLE obs (indicator_id VARCHAR, area_id VARCHAR, level VARCHAR, frequency VARCHAR,
    period TIMESTAMP, value DOUBLE, numerator DOUBLE, denominator DOUBLE)"""

_DERIVED_PARENTS_SQL = """
INSERT INTO obs
SELECT o.indicator_id, a.parent AS area_id, 'city' AS level, any_value(o.frequency), o.period,
       round(sum(round(o.value * 10)::HUGEINT * a.population::HUGEINT)::DOUBLE
             / sum(a.population::HUGEINT)::DOUBLE / 10.0, 0) AS value,
       NULL AS numerator, NULL AS denominator
FROM obs o JOIN areas a USING (area_id)
WHERE o.indicator_id IN ({ids}) AND o.level = 'district'
GROUP BY o.indicator_id, a.parent, o.period
"""


def _day_types(con: duckdb.DuckDBPyConnection, end: date, days: int) -> None:
    """Table ``daytypes`` (day, kind): China's official calendar over the generated days."""
    first = end - timedelta(days=days - 1)
    frame = pl.DataFrame(
        {
            "day": [first + timedelta(days=n) for n in range(days)],
            "kind": [day_type(first + timedelta(days=n)).value for n in range(days)],
        }
    )
    con.register("daytypes_src", frame)
    con.execute("CREATE OR REPLACE TABLE daytypes AS SELECT * FROM daytypes_src")
    con.unregister("daytypes_src")


def _hotline_sql(end: date, days: int) -> str:
    cats = " UNION ALL ".join(
        f"SELECT {_sql_literal(n)} AS category, {s} AS share, {h} AS limit_hours"
        for n, s, h in HOTLINE_CATEGORIES
    )
    chans = " UNION ALL ".join(
        f"SELECT {_sql_literal(n)} AS channel, {s} AS share" for n, s in HOTLINE_CHANNELS
    )
    first = end - timedelta(days=days - 1)
    return f"""
CREATE TABLE hotline AS
WITH days AS (
    SELECT generate_series::DATE AS day FROM generate_series(DATE '{first}', DATE '{end}', INTERVAL 1 DAY)
),
volume AS (
    SELECT d.day,
           round({HOTLINE_PER_DAY}
                 -- busy Mondays, quiet weekends, and the lull of public holidays; a worked weekend day
                 -- (调休) is a working day
                 * CASE k.kind WHEN 'holiday' THEN {HOTLINE_HOLIDAY} WHEN 'adjusted_workday' THEN 1.05
                     ELSE [0.72, 1.20, 1.10, 1.06, 1.04, 1.00, 0.85][dayofweek(d.day) + 1] END
                 * (1 + 0.12 * cos(2 * pi() * (dayofyear(d.day) - 205) / 365.25))
                 * pow(1.06, -datediff('day', d.day, DATE '{end}') / 365.25)
                 * (1 + 0.08 * nrm('hotline', 'all', d.day::VARCHAR, 'n')))::INTEGER AS n
    FROM days d JOIN daytypes k ON k.day = d.day
),
cats AS (
    SELECT category, limit_hours, sum(share) OVER (ORDER BY category) - share AS cum_lo FROM ({cats})
),
chans AS (
    SELECT channel, sum(share) OVER (ORDER BY channel) - share AS cum_lo FROM ({chans})
),
streets AS (
    SELECT area_id AS street_id, parent AS district_id,
           sum(population) OVER (ORDER BY area_id) / sum(population) OVER () - population / sum(population) OVER ()
             AS cum_lo
    FROM areas WHERE level = 'street'
),
dist AS (
    SELECT area_id AS district_id, exp(0.12 * nrm('hotline', area_id, 'eff', 'x')) AS slowness
    FROM areas WHERE level = 'district'
),
cases AS (
    SELECT day, unnest(range(n)) AS i FROM volume
    UNION ALL  -- the burst water main in Jiangbei on the day before the end: a wave of calls
    SELECT DATE '{end}' - 1 AS day, 100000 + unnest(range(420)) AS i
),
drawn AS (
    SELECT c.day, c.i,
           'RX' || strftime(c.day, '%Y%m%d') || lpad(c.i::VARCHAR, 6, '0') AS case_id,
           u01('hotline', c.day::VARCHAR, c.i::VARCHAR, 'street') AS u_street,
           u01('hotline', c.day::VARCHAR, c.i::VARCHAR, 'cat') AS u_cat,
           u01('hotline', c.day::VARCHAR, c.i::VARCHAR, 'chan') AS u_chan,
           u01('hotline', c.day::VARCHAR, c.i::VARCHAR, 'time') AS u_time,
           u01('hotline', c.day::VARCHAR, c.i::VARCHAR, 'time2') AS u_time2,
           nrm('hotline', c.day::VARCHAR, c.i::VARCHAR, 'handle') AS z_handle,
           u01('hotline', c.day::VARCHAR, c.i::VARCHAR, 'stuck') AS u_stuck,
           u01('hotline', c.day::VARCHAR, c.i::VARCHAR, 'rate') AS u_rate,
           u01('hotline', c.day::VARCHAR, c.i::VARCHAR, 'sat') AS u_sat
    FROM cases c
),
placed AS (
    SELECT d.*,
           CASE WHEN d.i >= 100000 THEN (CASE WHEN d.i % 3 = 0 THEN '500105005' ELSE '500105003' END)
                ELSE s.street_id END AS street_id,
           CASE WHEN d.i >= 100000 THEN '水电气讯' ELSE k.category END AS category,
           CASE WHEN d.i >= 100000 THEN 24 ELSE k.limit_hours END AS limit_hours,
           h.channel
    FROM drawn d
    ASOF JOIN streets s ON d.u_street >= s.cum_lo
    ASOF JOIN cats k ON d.u_cat >= k.cum_lo
    ASOF JOIN chans h ON d.u_chan >= h.cum_lo
),
timed AS (
    SELECT p.*, substr(p.street_id, 1, 6) AS district_id,
           p.day::TIMESTAMP + to_seconds(
               CASE WHEN p.u_time < 0.9 THEN 25200 + floor(p.u_time2 * 54000)
                    ELSE floor(p.u_time2 * 86400) END::BIGINT) AS created_at
    FROM placed p
),
handled AS (
    SELECT t.*,
           t.created_at + to_hours(t.limit_hours) AS due_at,
           t.created_at + to_seconds(floor(t.limit_hours * 3600 * dd.slowness
                                           * exp(-1.05 + 0.5 * t.z_handle))::BIGINT) AS closed_raw
    FROM timed t JOIN dist dd USING (district_id)
),
closed AS (
    SELECT h.*,
           CASE WHEN h.u_stuck < 0.004 OR h.closed_raw > TIMESTAMP '{end} 23:59:59' THEN NULL
                ELSE h.closed_raw END AS closed_at
    FROM handled h
)
SELECT case_id, created_at, due_at, closed_at, district_id, street_id, category, channel,
       CASE WHEN closed_at IS NULL OR u_rate < 0.3 THEN NULL
            ELSE u_sat < CASE WHEN closed_at > due_at THEN 0.70 ELSE 0.95 END END AS satisfied
FROM closed
"""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _id_list(ids: tuple[str, ...] | list[str]) -> str:
    return ", ".join(_sql_literal(i) for i in ids)


def _write_outputs(con: duckdb.DuckDBPyConnection, out: Path) -> list[OutputFile]:
    """Split the observations into the departments' file forms and write them."""
    files: list[OutputFile] = []
    wide = _id_list(WIDE_WATER)
    gb = _id_list(GB18030_CITY_MANAGEMENT)

    def record(name: str, rows: int, entry: dict[str, object]) -> None:
        files.append(OutputFile(name, rows, _sha256(out / name), entry))

    def count(sql: str) -> int:
        row = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()
        return int(row[0]) if row else 0

    # 1. Hourly vital signs: Parquet, long, timestamp periods.
    q = (
        "SELECT indicator_id, area_id, period, value FROM obs WHERE frequency = 'hourly' "
        "ORDER BY period, indicator_id, area_id"
    )
    con.execute(f"COPY ({q}) TO '{out / 'observations_hourly.parquet'}' (FORMAT parquet, COMPRESSION zstd)")
    record(
        "observations_hourly.parquet",
        count(q),
        {
            "kind": "observations",
            "format": "parquet",
            "layout": "long",
            "description": "Hourly vital signs from the sensor platforms (power, water and gas pressure, "
            "gas leaks, tunnel CO, hourly AQI).",
            "ingest": {"fmt": "long"},
            "command": "citykpi ingest --format long sample_data/generated/observations_hourly.parquet",
        },
    )

    # 2. Daily observations (everything daily not sent in the two department forms below): Parquet, long.
    q = (
        "SELECT indicator_id, area_id, period::DATE AS period, value, numerator, denominator FROM obs "
        f"WHERE frequency = 'daily' AND indicator_id NOT IN ({wide}) AND indicator_id NOT IN ({gb}) "
        "ORDER BY period, indicator_id, area_id"
    )
    con.execute(f"COPY ({q}) TO '{out / 'observations_daily.parquet'}' (FORMAT parquet, COMPRESSION zstd)")
    record(
        "observations_daily.parquet",
        count(q),
        {
            "kind": "observations",
            "format": "parquet",
            "layout": "long",
            "description": "Daily vital signs at district and street level; numerator/denominator for "
            "indicators observed with parts.",
            "ingest": {"fmt": "long"},
            "command": "citykpi ingest --format long sample_data/generated/observations_daily.parquet",
        },
    )

    # 3. Weekly, monthly, quarterly and yearly KPIs: one long CSV (UTF-8), as the statistics bureau sends it.
    q = (
        "SELECT indicator_id, area_id, strftime(period, '%Y-%m-%d') AS period, value, numerator, denominator "
        "FROM obs WHERE frequency IN ('weekly', 'monthly', 'quarterly', 'yearly') "
        "ORDER BY period, indicator_id, area_id"
    )
    con.execute(f"COPY ({q}) TO '{out / 'kpi_periodic.csv'}' (FORMAT csv, HEADER true)")
    record(
        "kpi_periodic.csv",
        count(q),
        {
            "kind": "observations",
            "format": "csv",
            "encoding": "utf-8",
            "layout": "long",
            "description": "Weekly to yearly KPIs in long format; period is the first day of the period.",
            "ingest": {"fmt": "long"},
            "command": "citykpi ingest --format long sample_data/generated/kpi_periodic.csv",
        },
    )

    # 4. City-management daily sheet: GB18030 (Excel export), Chinese headers, dates as 2025年12月31日.
    q = (
        f"SELECT indicator_id AS {GB_HEADERS['indicator_id']}, area_id AS {GB_HEADERS['area_id']}, "
        f"strftime(period, '%Y年%m月%d日') AS {GB_HEADERS['period']}, value AS {GB_HEADERS['value']} "
        f"FROM obs WHERE frequency = 'daily' AND indicator_id IN ({gb}) ORDER BY period, indicator_id, area_id"
    )
    tmp = out / "city_management_daily.utf8.tmp"
    con.execute(f"COPY ({q}) TO '{tmp}' (FORMAT csv, HEADER true)")
    (out / "city_management_daily_gb18030.csv").write_bytes(tmp.read_text(encoding="utf-8").encode("gb18030"))
    tmp.unlink()
    maps = [f"{field}={column}" for field, column in GB_HEADERS.items()]
    record(
        "city_management_daily_gb18030.csv",
        count(q),
        {
            "kind": "observations",
            "format": "csv",
            "encoding": "gb18030",
            "layout": "long",
            "ingest": {
                "fmt": "long",
                "mapping": dict(GB_HEADERS),
                "date_formats": {"period": "%Y年%m月%d日"},
            },
            "description": "City-management bureau's daily export from Excel: GB18030, Chinese headers "
            "(指标编码, 区划代码, 统计日期, 数值), dates written 2025年12月31日.",
            "command": "citykpi ingest --format long "
            + " ".join(f"--map {m}" for m in maps)
            + " --date-format 'period=%Y年%m月%d日' "
            "sample_data/generated/city_management_daily_gb18030.csv",
        },
    )

    # 5. Water company's wide daily sheet: one column per indicator, UTF-8 with BOM, blanks for missing.
    cols = ", ".join(
        f'max(value) FILTER (WHERE indicator_id = {_sql_literal(i)}) AS "{i}"' for i in WIDE_WATER
    )
    q = (
        f"SELECT area_id, strftime(period, '%Y-%m-%d') AS date, {cols} FROM obs "
        f"WHERE frequency = 'daily' AND indicator_id IN ({wide}) GROUP BY area_id, period "
        "ORDER BY date, area_id"
    )
    tmp = out / "water_supply_wide.utf8.tmp"
    con.execute(f"COPY ({q}) TO '{tmp}' (FORMAT csv, HEADER true)")
    (out / "water_supply_daily_wide.csv").write_bytes(b"\xef\xbb\xbf" + tmp.read_bytes())
    tmp.unlink()
    record(
        "water_supply_daily_wide.csv",
        count(q),
        {
            "kind": "observations",
            "format": "csv",
            "encoding": "utf-8-sig",
            "layout": "wide",
            "ingest": {"fmt": "wide", "mapping": {"area_id": "area_id", "period": "date"}},
            "columns": list(WIDE_WATER),
            "description": "Water company's daily sheet: one row per district and day, one column per "
            "indicator (headers are the indicator ids), empty cells for missing readings.",
            "command": "citykpi ingest --format wide --map period=date "
            "sample_data/generated/water_supply_daily_wide.csv",
        },
    )

    # 6. Raw hotline cases: Parquet, loaded as the catalogue's source table.
    q = "SELECT * FROM hotline ORDER BY created_at, case_id"
    con.execute(f"COPY ({q}) TO '{out / 'hotline_cases.parquet'}' (FORMAT parquet, COMPRESSION zstd)")
    record(
        "hotline_cases.parquet",
        count("SELECT * FROM hotline"),
        {
            "kind": "source",
            "source": "hotline_cases",
            "format": "parquet",
            "ingest": {"fmt": "source", "source": "hotline_cases"},
            "description": "12345 hotline cases: case_id, created_at, due_at, closed_at (empty while open), "
            "district_id, street_id, category, channel, satisfied (empty when not rated).",
            "command": "citykpi ingest --format source --source hotline_cases "
            "sample_data/generated/hotline_cases.parquet",
        },
    )
    return files


def generate(
    out: Path,
    *,
    end: date = date(2025, 12, 31),
    days: int = 430,
    seed: str = DEFAULT_SEED,
    catalogue_path: Path = Path("indicators"),
) -> GenerationResult:
    """Generate the sample city's data files into ``out`` (deterministic for the same arguments).

    Args:
        out: the output directory (created; files in it are overwritten).
        end: the last day of data.
        days: days of daily history (hourly city-level series too; district-level hourly: last 30 days).
        seed: the seed mixed into every hash.
        catalogue_path: the catalogue whose observed indicators get data.

    Returns:
        The files written, with row counts and sha256, and the time taken.
    """
    started = time.perf_counter()
    if days < 8:
        raise ValueError("days must be at least 8 (the last week carries the scripted incidents)")
    catalogue = load_catalogue(catalogue_path)
    out.mkdir(parents=True, exist_ok=True)
    areas = build_areas()
    areas.write_csv(out / "areas.csv")
    con = duckdb.connect()
    try:
        _setup(con, seed)
        if _load_tables(con, catalogue, areas, end, days):
            con.execute(_OBSERVATIONS_SQL.format(end=f"{end:%Y-%m-%d}"))
        else:
            con.execute(_NO_OBSERVATIONS_SQL)
        derived = [
            i.value.input
            for i in catalogue.indicators
            if isinstance(i.value, FromSeries) and i.rollup.area == "recompute"
        ]
        parents = sorted({d for d in derived if catalogue.by_id[d].rollup.area != "none"})
        if parents:
            con.execute(_DERIVED_PARENTS_SQL.format(ids=_id_list(parents)))
        _day_types(con, end, days)
        con.execute(_hotline_sql(end, days))
        files = _write_outputs(con, out)
        n_obs_row = con.execute("SELECT count(*) FROM obs").fetchone()
        n_hot_row = con.execute("SELECT count(*) FROM hotline").fetchone()
    finally:
        con.close()
    n_obs = int(n_obs_row[0]) if n_obs_row else 0
    n_hot = int(n_hot_row[0]) if n_hot_row else 0
    areas_entry = OutputFile(
        "areas.csv",
        areas.height,
        _sha256(out / "areas.csv"),
        {
            "kind": "areas",
            "format": "csv",
            "encoding": "utf-8",
            "description": "The city, 40 district-level areas (38 districts and counties + 2 development "
            "zones) and their towns/streets; groups separated by ';'.",
            "command": "citykpi areas load sample_data/generated/areas.csv",
        },
    )
    all_files = (areas_entry, *files)
    manifest = {
        "generator": "citykpi.sample",
        "seed": seed,
        "end": f"{end:%Y-%m-%d}",
        "days": days,
        "catalogue": str(catalogue_path),
        "order": [f.path for f in all_files],
        "files": [{"path": f.path, "rows": f.rows, "sha256": f.sha256, **f.entry} for f in all_files],
        "drifts": [
            {"indicator": d.indicator, "area": d.area, "days": d.days, "to": d.to, "why": d.why}
            for d in DRIFTS
        ],
        "incidents": [
            {
                "indicator": i.indicator,
                "area": i.area,
                "days_before_end": [i.last, i.first],
                "value": i.value,
                "why": i.why,
            }
            for i in INCIDENTS
        ]
        + [
            {
                "indicator": "env.air.aqi",
                "area": "all districts",
                "days_before_end": [0, 6],
                "value": max(AQI_EPISODE.values()),
                "why": "regional winter smog episode",
            },
            {
                "indicator": "env.water.river_do",
                "area": "all",
                "days_before_end": [0, 4],
                "value": None,
                "why": "automatic water-quality station feed silent (stale)",
            },
        ],
    }
    (out / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return GenerationResult(out, all_files, n_obs, n_hot, time.perf_counter() - started)


__all__ = ["CITY_ID", "DEFAULT_SEED", "GenerationResult", "OutputFile", "generate"]
