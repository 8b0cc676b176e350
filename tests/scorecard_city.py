"""A tiny real city for CLI and cron tests: catalogue YAML, areas CSV, daily inbox files."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

CATALOGUE = """\
schema_version: 1
indicators:
  - id: env.air.aqi
    name: {zh: 空气质量指数, en: Air quality index}
    kind: vital_sign
    domain: environment
    unit: index
    levels: [city, district]
    frequency: daily
    valid_range: [0, 500]
    direction: lower_is_better
    thresholds: {blue: 50, yellow: 100, orange: 150, red: 200}
    rollup: {time: mean, area: weighted_mean, weight: population}
  - id: water.supply.pressure_ok
    name: {zh: 供水管网压力合格率, en: Water pressure compliance}
    kind: vital_sign
    domain: utilities
    tier: bottom_line
    unit: "%"
    levels: [city, district]
    frequency: daily
    valid_range: [0, 100]
    direction: higher_is_better
    thresholds: {yellow: 98, orange: 95, red: 90}
    rollup: {time: mean, area: mean}
indices:
  - id: index.operation
    name: {zh: 运维指数, en: Operation index}
    components:
      - {ref: env.air.aqi, weight: 1}
      - {ref: water.supply.pressure_ok, weight: 2}
"""

AREAS = """\
id,name,name_en,level,parent,population
500000,重庆市,Chongqing,city,,32130000
500103,渝中区,Yuzhong District,district,500000,590000
500112,渝北区,Yubei District,district,500000,2190000
"""

START = date(2026, 11, 1)


#: Daily values per district: AQI goes red in Yuzhong on the last days, pressure dips in Yubei.
def values_for(day: date) -> dict[tuple[str, str], float]:
    """The observations of one day (indicator, area) → value, deterministic."""
    n = (day - START).days
    return {
        ("env.air.aqi", "500103"): 60.0 + 8 * n,
        ("env.air.aqi", "500112"): 45.0 + (n % 5),
        ("water.supply.pressure_ok", "500103"): 99.5,
        ("water.supply.pressure_ok", "500112"): 99.0 - 0.2 * n,
    }


def write_city(root: Path) -> dict[str, Path]:
    """Write catalogue/, areas.csv and an empty inbox/ under ``root``."""
    (root / "catalogue").mkdir(parents=True, exist_ok=True)
    (root / "catalogue" / "city.yaml").write_text(CATALOGUE, encoding="utf-8")
    (root / "areas.csv").write_text(AREAS, encoding="utf-8")
    (root / "inbox").mkdir(exist_ok=True)
    return {
        "catalogue": root / "catalogue",
        "areas": root / "areas.csv",
        "inbox": root / "inbox",
        "db": root / "city.duckdb",
    }


def write_day(inbox: Path, day: date) -> Path:
    """One long-format CSV with the day's observations."""
    lines = ["indicator_id,area_id,period,value"]
    for (ind, area), value in sorted(values_for(day).items()):
        lines.append(f"{ind},{area},{day.isoformat()},{value}")
    path = inbox / f"obs-{day.isoformat()}.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_days(inbox: Path, first: date, last: date) -> list[Path]:
    """One file per day from ``first`` to ``last``."""
    out = []
    d = first
    while d <= last:
        out.append(write_day(inbox, d))
        d += timedelta(days=1)
    return out
