"""Deterministic generator of city-scale benchmark data: catalogue YAML, areas CSV, observations.

Usage: ``python bench/generate.py --scale small|city [--force]``. Output goes to
``bench/.cache/<scale>/`` and is reused while ``GENERATOR_VERSION`` and the scale are unchanged.

The catalogue is built in Python (a few thousand small dicts); the observations are produced by
DuckDB SQL (``COPY … TO … (FORMAT parquet)``) with hash-based values, never by Python row loops.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import yaml

GENERATOR_VERSION = "9"
#: Bump when the observation SQL changes (the catalogue alone can change without regenerating data).
SQL_VERSION = "1"
# CITYKPI_BENCH_CACHE moves the cache (a test builds the micro scale in a temporary folder).
CACHE = Path(os.environ.get("CITYKPI_BENCH_CACHE") or Path(__file__).resolve().parent / ".cache")
#: The last day of history; evaluations run "as of" this day (fixed, so data never lies in the future).
AS_OF = date(2026, 11, 20)

DOMAINS: tuple[str, ...] = (
    "environment",
    "water",
    "energy",
    "gas",
    "transport",
    "bridges",
    "tunnels",
    "telecom",
    "safety",
    "health",
    "economy",
    "livelihood",
    "housing",
    "education",
    "governance",
)
INDEX_NAMES: tuple[tuple[str, str, str], ...] = (
    ("development", "发展指数", "Development index"),
    ("construction", "建设指数", "Construction index"),
    ("operation", "运维指数", "Operation index"),
    ("service", "服务指数", "Service index"),
    ("health", "健康指数", "Health index"),
)
COUNT_UNITS = ("count", "cases", "persons", "items", "vehicles")
LEVEL_UNITS = ("index", "µg/m³", "mg/L", "MPa", "kPa", "°C", "dB(A)", "minutes", "km/h", "%LEL", "NTU")
AMOUNT_UNITS = ("km", "m³", "t", "kWh", "MWh", "10k CNY", "ha")


@dataclass(frozen=True)
class Scale:
    """Sizes of one benchmark scale."""

    name: str
    kpis: int
    vital_signs: int
    indices: int
    districts: int
    streets: int
    days: int
    street_indicators: int
    csv_rows: int
    months: int = 36
    years: int = 10


SCALES: dict[str, Scale] = {
    "city": Scale("city", 911, 4476, 13, 41, 1031, 400, 92, 10_000_000),
    "small": Scale("small", 91, 448, 5, 12, 120, 400, 8, 200_000),
    "micro": Scale("micro", 4, 16, 2, 3, 6, 10, 2, 100, months=3, years=2),
}


@dataclass
class Spec:
    """One generated indicator: its YAML fields plus the parameters its data is generated with."""

    ikey: int
    id: str
    kind: str
    domain: str
    unit: str
    frequency: str
    levels: list[str]
    store_levels: list[str]
    direction: str
    tier: str
    value_kind: str  # observed | parts | ratio | formula | from
    time_rollup: str
    area_rollup: str
    basis: str
    base: float
    spread: float
    cuts: dict[str, float] = field(default_factory=dict)
    ranges: dict[str, list[float]] = field(default_factory=dict)
    inclusive: bool = False
    for_periods: int = 1
    limit: float | None = None
    target: float | None = None
    where_op: str | None = None
    where_value: float | None = None
    inputs: list[str] = field(default_factory=list)
    formula: str | None = None  # shape code: div100 | pctdiff | add | mul
    scale: float = 1.0
    overrides: list[dict[str, Any]] = field(default_factory=list)
    own_scale: bool = False
    staleness_days: int | None = None
    integer: bool = False


FORMULAS: dict[str, str] = {
    "div100": "a / b * 100",
    "pctdiff": "(a - b) / b * 100",
    "add": "a + b",
    "mul": "a * b / 1000",
}
LOW_FRACS = {"blue": 0.6, "yellow": 0.75, "orange": 0.85, "red": 0.95}
HIGH_FRACS = {"blue": 0.4, "yellow": 0.25, "orange": 0.15, "red": 0.05}
CHANGE_CUTS = {"blue": 10.0, "yellow": 20.0, "orange": 35.0, "red": 50.0}


def area_rows(scale: Scale) -> list[dict[str, Any]]:
    """The area registry: 1 city, the districts, the streets spread over the districts."""
    rows: list[dict[str, Any]] = []
    city_pop = 32_130_000
    rows.append(
        {
            "id": "500000",
            "name": "重庆市",
            "name_en": "Chongqing",
            "level": "city",
            "parent": "",
            "population": city_pop,
            "groups": "",
        }
    )
    weights = [1 + (d * 37 % 11) for d in range(scale.districts)]
    total_w = sum(weights)
    district_pops: list[int] = []
    for d in range(scale.districts):
        pop = city_pop * weights[d] // total_w
        district_pops.append(pop)
        rows.append(
            {
                "id": f"5001{d + 1:02d}",
                "name": f"第{d + 1:02d}区",
                "name_en": f"District {d + 1:02d}",
                "level": "district",
                "parent": "500000",
                "population": pop,
                "groups": "central_urban" if d < min(11, scale.districts) else "",
            }
        )
    per = [
        scale.streets // scale.districts + (1 if d < scale.streets % scale.districts else 0)
        for d in range(scale.districts)
    ]
    for d in range(scale.districts):
        for s in range(per[d]):
            rows.append(
                {
                    "id": f"5001{d + 1:02d}{s + 1:03d}",
                    "name": f"第{d + 1:02d}区{s + 1:03d}街道",
                    "name_en": f"Street {d + 1:02d}-{s + 1:03d}",
                    "level": "street",
                    "parent": f"5001{d + 1:02d}",
                    "population": district_pops[d] // max(per[d], 1),
                    "groups": "",
                }
            )
    return rows


def _bands(spec: Spec, rng: random.Random) -> None:
    """Fill cut points / ranges so that most cells are green and a few are red."""
    b, s = spec.base, spec.spread
    if spec.basis in ("change_previous", "change_last_year"):
        sign = 1 if spec.direction == "lower_is_better" else -1
        spec.cuts = {c: sign * v for c, v in CHANGE_CUTS.items()}
        return
    if spec.direction == "band":
        spec.ranges = {
            "green": [b + 0.2 * s, b + 0.8 * s],
            "blue": [b + 0.1 * s, b + 0.9 * s],
            "yellow": [b + 0.05 * s, b + 0.95 * s],
            "orange": [b + 0.02 * s, b + 0.98 * s],
        }
        return
    fracs = LOW_FRACS if spec.direction == "lower_is_better" else HIGH_FRACS
    raw = {c: b + f * s for c, f in fracs.items()}
    if spec.basis == "percent_of_limit":
        spec.limit = round(b + s, 3)
        raw = {c: v / spec.limit * 100 for c, v in raw.items()}
    elif spec.basis == "percent_of_target":
        spec.target = round(b + s, 3)
        raw = {c: v / spec.target * 100 for c, v in raw.items()}
    cuts = {c: round(v, 3) for c, v in raw.items()}
    if rng.random() < 0.15:  # only some colours declared
        cuts = {"yellow": cuts["yellow"], "red": cuts["red"]}
    spec.cuts = cuts


def build_specs(scale: Scale) -> list[Spec]:
    """The indicator specs of a scale (deterministic)."""
    rng = random.Random(f"citykpi-bench-{scale.name}")
    n = scale.kpis + scale.vital_signs
    specs: list[Spec] = []
    street_left = scale.street_indicators
    for i in range(n):
        kind = "kpi" if i < scale.kpis else "vital_sign"
        domain = DOMAINS[i % len(DOMAINS)]
        r = rng.random()
        if kind == "kpi":
            frequency = "daily" if r < 0.10 else "monthly" if r < 0.75 else "yearly"
        else:
            frequency = "daily" if r < 0.92 else "monthly"
        levels = ["city", "district"]
        if frequency == "yearly" and rng.random() < 0.3:
            levels = ["city"]
        unit_kind = rng.random()
        if unit_kind < 0.35:
            unit, integer, base, spread = rng.choice(COUNT_UNITS), True, float(rng.randint(20, 500)), 0.0
            spread = float(round(base * rng.uniform(0.5, 1.5)))
        elif unit_kind < 0.75:
            unit, integer = rng.choice(LEVEL_UNITS), False
            base = round(rng.uniform(1, 100), 2)
            spread = round(base * rng.uniform(0.3, 1.0), 2)
        elif unit_kind < 0.9:
            unit, integer = rng.choice(AMOUNT_UNITS), False
            base = round(rng.uniform(100, 10000), 1)
            spread = round(base * rng.uniform(0.2, 0.6), 1)
        else:
            unit, integer, base, spread = "%", False, round(rng.uniform(40, 80), 1), 0.0
            spread = round(rng.uniform(5, 100 - base), 1)
        direction = "lower_is_better" if rng.random() < 0.48 else "higher_is_better"
        if not integer and rng.random() < 0.12:
            direction = "band"
        rb = rng.random()
        if direction == "band" or rb < 0.70:
            basis = "absolute"
        elif rb < 0.78:
            basis = "percent_of_limit"
        elif rb < 0.85:
            basis = "percent_of_target"
            direction = "higher_is_better"
        elif rb < 0.93:
            basis = "change_previous"
        else:
            basis = "change_last_year"
        if integer:
            time_rollup = "sum"
            area_rollup = rng.choice(["sum", "sum", "sum", "max", "none"])
        elif unit == "%":
            time_rollup = "mean"
            area_rollup = rng.choice(["weighted_mean", "mean", "none"])
        elif unit in AMOUNT_UNITS:
            time_rollup = "sum"
            area_rollup = rng.choice(["sum", "sum", "none"])
        else:
            time_rollup = rng.choice(["mean", "mean", "max", "min", "last"])
            area_rollup = rng.choice(["mean", "weighted_mean", "max", "min", "worst", "none"])
        value_kind = "observed"
        if unit == "%" and rng.random() < 0.5:
            value_kind, area_rollup, time_rollup = "parts", "ratio_of_sums", "sum"
        if (
            frequency == "daily"
            and kind == "vital_sign"
            and street_left > 0
            and value_kind == "observed"
            and area_rollup != "none"
            and i % 25 == 7
        ):
            levels = ["city", "district", "street"]
            street_left -= 1
        if area_rollup == "none" or rng.random() < 0.3:
            store = list(levels)
        else:
            store = [levels[-1]]
        ikey = i + 1
        sid = f"{domain}.g{i // 100:02d}.i{ikey:04d}"
        spec = Spec(
            ikey=ikey,
            id=sid,
            kind=kind,
            domain=domain,
            unit=unit,
            frequency=frequency,
            levels=levels,
            store_levels=store,
            direction=direction,
            tier="bottom_line" if rng.random() < 0.1 else "guidance",
            value_kind=value_kind,
            time_rollup=time_rollup,
            area_rollup=area_rollup,
            basis=basis,
            base=base,
            spread=spread,
            integer=integer,
        )
        if value_kind == "parts":
            spec.scale = 100.0
        _bands(spec, rng)
        spec.inclusive = rng.random() < 0.2
        if frequency == "daily" and basis == "absolute" and rng.random() < 0.06:
            spec.for_periods = rng.choice([2, 3])
        if frequency == "daily" and rng.random() < 0.05:
            spec.staleness_days = rng.choice([1, 3, 7])
        if spec.cuts and basis == "absolute" and len(spec.cuts) == 4:
            r2 = rng.random()
            if r2 < 0.05 and "district" in levels:
                spec.overrides.append(
                    {
                        "level": "district",
                        "red": spec.cuts["red"] * (1.02 if direction == "lower_is_better" else 0.98),
                    }
                )
            elif r2 < 0.07:
                spec.overrides.append(
                    {"area": "500101", "red": round((spec.cuts["orange"] + spec.cuts["red"]) / 2, 3)}
                )
            elif r2 < 0.08 and direction == "lower_is_better" and not spec.inclusive:
                spec.own_scale = True
        if time_rollup == "sum" and integer and rng.random() < 0.03:
            spec.time_rollup = "count_where"
            spec.where_op, spec.where_value = "<=", round(base + spread * 0.5)
        specs.append(spec)
    _add_derived(specs, rng)
    return specs


def _add_derived(specs: list[Spec], rng: random.Random) -> None:
    """Turn some indicators into ratios, formulas and `from` series over observed ones."""
    pool: dict[tuple[str, tuple[str, ...]], list[Spec]] = {}
    for s in specs:
        if s.value_kind == "observed" and s.area_rollup == "sum" and s.integer and s.time_rollup == "sum":
            pool.setdefault((s.frequency, tuple(s.levels)), []).append(s)
    from_pool = [
        s
        for s in specs
        if s.frequency == "daily"
        and s.value_kind == "observed"
        and s.area_rollup == "none"
        and s.store_levels == s.levels
        and len(s.levels) == 2
    ]
    used: set[str] = set()  # derived ids
    inputs: set[str] = set()
    for s in specs:
        r = rng.random()
        key = (s.frequency, tuple(s.levels))
        cand = [c for c in pool.get(key, []) if c.id != s.id and c.id not in used]
        if r < 0.09 and len(cand) >= 2 and s.id not in inputs and s.value_kind == "observed":
            a, b = rng.sample(cand, 2)
            used.add(s.id)
            inputs.update((a.id, b.id))
            s.inputs = [a.id, b.id]
            s.store_levels = []
            s.area_rollup = "none"
            s.time_rollup = "last"
            s.for_periods = 1
            s.overrides = []
            s.own_scale = False
            s.integer = False
            if r < 0.045:
                s.value_kind, s.scale, s.unit = "ratio", 100.0, "ratio"
                ratio = a.base / max(b.base, 1) * 100
                s.base, s.spread = ratio * 0.4, ratio * 1.6
            else:
                s.value_kind = "formula"
                s.formula = rng.choice(list(FORMULAS))
                s.unit = "index"
                lo, hi = _formula_range(s.formula, a, b)
                s.base, s.spread = lo, max(hi - lo, 1e-3)
            if s.basis in ("percent_of_target", "percent_of_limit"):
                s.basis = "absolute"
            s.target = s.limit = None
            _bands(s, rng)
        elif (
            0.09 <= r < 0.115
            and s.kind == "kpi"
            and s.frequency == "monthly"
            and from_pool
            and s.id not in inputs
            and s.value_kind == "observed"
        ):
            src = from_pool[int(rng.random() * len(from_pool))]
            inputs.add(src.id)
            used.add(s.id)
            s.value_kind = "from"
            s.inputs = [src.id]
            s.unit, s.integer = "days", True
            s.levels, s.store_levels = list(src.levels), []
            s.area_rollup, s.time_rollup = "recompute", "count_where"
            s.where_op, s.where_value = "<=", round(src.base + src.spread * 0.7, 3)
            s.base, s.spread = 15.0, 16.0
            s.direction = "higher_is_better"
            s.basis = "absolute"
            s.target = s.limit = None
            s.overrides, s.own_scale, s.for_periods = [], False, 1
            _bands(s, rng)


def _formula_range(shape: str, a: Spec, b: Spec) -> tuple[float, float]:
    """Rough range of a formula over its inputs' value ranges (for band cut points)."""
    alo, ahi, blo, bhi = a.base, a.base + a.spread, max(b.base, 1), b.base + b.spread
    if shape == "div100":
        return alo / bhi * 100, ahi / blo * 100
    if shape == "pctdiff":
        return (alo - bhi) / bhi * 100, (ahi - blo) / blo * 100
    if shape == "add":
        return alo + blo, ahi + bhi
    return alo * blo / 1000, ahi * bhi / 1000


def _yaml_indicator(s: Spec) -> dict[str, Any]:
    """The YAML mapping of one indicator (docs/design.md format)."""
    doc: dict[str, Any] = {
        "id": s.id,
        "name": {"zh": f"指标{s.ikey:04d}", "en": f"Indicator {s.ikey:04d}"},
        "kind": s.kind,
        "domain": s.domain,
        "unit": s.unit,
        "description": f"Generated benchmark {s.kind} ({s.value_kind}, {s.frequency}).",
        "owner": "bench",
        "tier": s.tier,
        "levels": s.levels,
        "frequency": s.frequency,
    }
    if s.staleness_days:
        doc["max_staleness"] = f"{s.staleness_days}d"
    if s.value_kind in ("observed", "parts") and s.spread > 0:
        doc["valid_range"] = [0, round((s.base + s.spread) * 10 + 100, 3)] if s.base >= 0 else None
        if doc["valid_range"] is None:
            del doc["valid_range"]
    doc["direction"] = s.direction
    if s.own_scale:
        c = s.cuts
        doc["scale"] = [
            {"label": {"zh": "优", "en": "Excellent"}, "upto": c["blue"], "colour": "green"},
            {"label": {"zh": "良", "en": "Good"}, "upto": c["yellow"], "colour": "blue"},
            {"label": {"zh": "轻度", "en": "Light"}, "upto": c["orange"], "colour": "yellow"},
            {"label": {"zh": "中度", "en": "Moderate"}, "upto": c["red"], "colour": "orange"},
            {"label": {"zh": "重度", "en": "Heavy"}, "colour": "red"},
        ]
    th: dict[str, Any] = {"basis": s.basis}
    if s.direction == "band":
        th.update({c: list(v) for c, v in s.ranges.items()})
    elif not s.own_scale:
        th.update(s.cuts)
    if s.inclusive:
        th["inclusive"] = True
    if s.for_periods > 1:
        th["for_periods"] = s.for_periods
    if s.limit is not None:
        th["limit"] = s.limit
    if s.overrides:
        th["overrides"] = s.overrides
    if len(th) > 1 or not s.own_scale:
        doc["thresholds"] = th
    roll: dict[str, Any] = {"time": s.time_rollup}
    if s.time_rollup == "count_where":
        roll["where"] = f"value {s.where_op} {s.where_value}"
    roll["area"] = s.area_rollup
    if s.area_rollup == "weighted_mean":
        roll["weight"] = "population"
    doc["rollup"] = roll
    if s.target is not None:
        doc["target"] = {
            "value": s.target,
            "due": "2026-12-31",
            "baseline": round(s.base, 3),
            "baseline_date": "2026-01-01",
            "method": "end_value",
        }
    if s.value_kind == "parts":
        doc["value"] = {"observed": {"with_parts": True, "scale": 100}}
    elif s.value_kind == "ratio":
        doc["value"] = {"ratio": {"numerator": s.inputs[0], "denominator": s.inputs[1], "scale": 100}}
    elif s.value_kind == "formula":
        assert s.formula
        doc["value"] = {"formula": FORMULAS[s.formula], "inputs": {"a": s.inputs[0], "b": s.inputs[1]}}
    elif s.value_kind == "from":
        doc["value"] = {"from": s.inputs[0]}
    return doc


def build_indices(specs: list[Spec], scale: Scale) -> list[dict[str, Any]]:
    """Composite indices over city+district indicators (colour scores, some goalposts)."""
    rng = random.Random(f"citykpi-bench-indices-{scale.name}")
    eligible = [s for s in specs if "city" in s.levels and "district" in s.levels]
    out: list[dict[str, Any]] = []
    for k in range(scale.indices):
        if k < len(INDEX_NAMES):
            key, zh, en = INDEX_NAMES[k]
        else:
            dom = DOMAINS[k % len(DOMAINS)]
            key, zh, en = f"{dom}_{k}", f"{dom}指数{k}", f"{dom.title()} index {k}"
        comps = rng.sample(eligible, min(len(eligible), 12 + (k * 7) % 30))
        components: list[dict[str, Any]] = []
        for c in comps:
            comp: dict[str, Any] = {"ref": c.id, "weight": float(rng.choice([1, 1, 2, 3]))}
            if rng.random() < 0.2 and c.direction != "band" and c.basis == "absolute":
                lo, hi = c.base + c.spread, c.base
                if c.direction == "higher_is_better":
                    lo, hi = hi, lo
                comp["normalise"] = {"method": "goalposts", "low": round(lo, 3), "high": round(hi, 3)}
            components.append(comp)
        idx: dict[str, Any] = {
            "id": f"index.{key}",
            "name": {"zh": zh, "en": en},
            "aggregation": "geometric" if k % 5 == 3 else "linear",
            "normalise": {"method": "colour_score"},
            "min_coverage": 0.6,
            "components": components,
        }
        if k % 3 == 0:
            idx["cap_on_red"] = 60
        out.append(idx)
    return out


#: The early-warning variant of the catalogue (``indicators_early/``): every daily indicator forecasts,
#: over the 28 days before its current one, with an anomaly score against the same weekday of 4 weeks.
EARLY_FORECAST: dict[str, Any] = {"window": 28, "horizon": 14, "baseline": 4}


def write_catalogue(
    specs: list[Spec],
    indices: list[dict[str, Any]],
    areas: list[dict[str, Any]],
    folder: Path,
    *,
    early: bool = False,
) -> None:
    """Write the catalogue as YAML files, one per domain, plus indices and groups (``early``: with
    :data:`EARLY_FORECAST` on every daily indicator)."""
    folder.mkdir(parents=True, exist_ok=True)
    by_domain: dict[str, list[dict[str, Any]]] = {}
    for s in specs:
        doc = _yaml_indicator(s)
        if early and s.frequency == "daily":
            doc["forecast"] = dict(EARLY_FORECAST)
        by_domain.setdefault(s.domain, []).append(doc)
    for dom, docs in by_domain.items():
        text = yaml.safe_dump(
            {"schema_version": 1, "indicators": docs}, allow_unicode=True, sort_keys=False, width=200
        )
        (folder / f"{dom}.yaml").write_text(text, encoding="utf-8")
    central = [a["id"] for a in areas if a["groups"] == "central_urban"]
    extra = {
        "schema_version": 1,
        "indices": indices,
        "groups": [
            {
                "id": "central_urban",
                "name": {"zh": "中心城区", "en": "Central urban area (9+2)"},
                "areas": central,
            }
        ],
    }
    (folder / "_indices.yaml").write_text(
        yaml.safe_dump(extra, allow_unicode=True, sort_keys=False, width=200), encoding="utf-8"
    )


def _periods(scale: Scale) -> list[tuple[str, date]]:
    """(frequency, period start) of every stored period, in date order."""
    days = [("daily", AS_OF - timedelta(days=k)) for k in range(scale.days)]
    months: list[tuple[str, date]] = []
    y, m = AS_OF.year, AS_OF.month - 1  # the last complete month
    for _ in range(scale.months):
        if m == 0:
            y, m = y - 1, 12
        months.append(("monthly", date(y, m, 1)))
        m -= 1
    years = [("yearly", date(AS_OF.year - 1 - k, 1, 1)) for k in range(scale.years)]
    return sorted(days + months + years, key=lambda p: (p[1], p[0]))


def _hash(expr: str, salt: int) -> str:
    """SQL for a deterministic pseudo-random integer in [0, 2^31-1) from an integer expression."""
    h = f"((CAST({expr} AS BIGINT) % 2147483647) * 48271 + {salt}) % 2147483647"
    return f"(({h}) * 16807 % 2147483647 * 48271 % 2147483647)"


def generate_observations(con: duckdb.DuckDBPyConnection, out: Path, scale: Scale) -> int:
    """Write observations.parquet (date order) and observations.csv; return the Parquet row count."""
    mix = "s.ikey * 7919 + a.akey * 104729 + p.dn * 1299709"
    u = f"({_hash(mix, 17)} / 2147483647.0)"
    u2 = _hash(mix, 23)
    series = _hash("s.ikey * 7919 + a.akey * 104729", 5)
    value = f"s.base + s.spread * {u}"
    sql = f"""
    COPY (
      SELECT s.indicator_id, a.area_id, p.period,
             CASE WHEN s.parts THEN round(({u2} % 9000 + 1000) * (0.4 + 0.6 * {u})) / ({u2} % 9000 + 1000) * 100
                  WHEN s.integer THEN round({value}) ELSE round({value}, 3) END AS value,
             CASE WHEN s.parts THEN round(({u2} % 9000 + 1000) * (0.4 + 0.6 * {u})) END AS numerator,
             CASE WHEN s.parts THEN CAST({u2} % 9000 + 1000 AS DOUBLE) END AS denominator
      FROM periods p
      JOIN gen_spec s ON s.frequency = p.frequency
      JOIN gen_areas a ON list_contains(s.store_levels, a.level)
      WHERE {series} % 1000 >= 3                                   -- 0.3% series have no data at all
        AND NOT ({series} % 1000 < 10 AND p.dn < 6 AND p.frequency = 'daily')  -- 0.7% stale feeds
        AND {u2} % 1000 >= 2                                        -- 0.2% gaps
      ORDER BY p.period, s.ikey, a.akey
    ) TO '{out / "observations.parquet"}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)
    """
    con.execute(sql)
    n = con.execute(f"SELECT count(*) FROM read_parquet('{out / 'observations.parquet'}')").fetchone()
    rows = int(n[0]) if n else 0
    con.execute(
        f"""COPY (SELECT * FROM read_parquet('{out / "observations.parquet"}') LIMIT {scale.csv_rows})
        TO '{out / "observations.csv"}' (HEADER, DELIMITER ',')"""
    )
    return rows


def data_key(scale: Scale, areas: list[dict[str, Any]], specs: list[Spec]) -> str:
    """sha256 of everything the observations depend on (not names, bands or derived indicators)."""
    stored = [
        (s.ikey, s.id, s.frequency, s.store_levels, s.base, s.spread, s.value_kind == "parts", s.integer)
        for s in specs
        if s.store_levels
    ]
    doc = [asdict(scale), AS_OF.isoformat(), [(a["id"], a["level"]) for a in areas], stored, SQL_VERSION]
    return hashlib.sha256(json.dumps(doc, default=str).encode()).hexdigest()


def generate(scale: Scale, out: Path, *, memory_limit: str = "6GB", threads: int = 2) -> dict[str, Any]:
    """Generate everything for ``scale`` into ``out`` and return the manifest."""
    t0 = time.perf_counter()
    old_manifest: dict[str, Any] = {}
    if (out / "manifest.json").exists():
        old_manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    old_key = old_manifest.get("data_key")
    keep = out.parent / f".{out.name}.keep"  # observations kept while only the catalogue changes
    shutil.rmtree(keep, ignore_errors=True)
    keep.mkdir(parents=True)
    for name in ("observations.parquet", "observations.csv"):
        if (out / name).exists():
            (out / name).rename(keep / name)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    areas = area_rows(scale)
    specs = build_specs(scale)
    indices = build_indices(specs, scale)
    write_catalogue(specs, indices, areas, out / "indicators")
    write_catalogue(specs, indices, areas, out / "indicators_early", early=True)
    with (out / "areas.csv").open("w", encoding="utf-8") as f:
        f.write("id,name,name_en,level,parent,population,groups\n")
        for a in areas:
            f.write(
                f"{a['id']},{a['name']},{a['name_en']},{a['level']},{a['parent']},"
                f"{a['population']},{a['groups']}\n"
            )
    (out / "spec.json").write_text(
        json.dumps({"specs": [asdict(s) for s in specs], "indices": indices}, ensure_ascii=False),
        encoding="utf-8",
    )
    con = duckdb.connect()
    con.execute(
        f"SET memory_limit = '{memory_limit}'; SET threads = {threads}; "
        f"SET temp_directory = '{out / 'tmp'}'; SET preserve_insertion_order = true"
    )
    con.execute("CREATE TABLE gen_areas (akey BIGINT, area_id TEXT, level TEXT)")
    con.executemany(
        "INSERT INTO gen_areas VALUES (?, ?, ?)", [(k + 1, a["id"], a["level"]) for k, a in enumerate(areas)]
    )
    con.execute("""CREATE TABLE gen_spec (ikey BIGINT, indicator_id TEXT, frequency TEXT,
                   store_levels TEXT[], base DOUBLE, spread DOUBLE, parts BOOLEAN, integer BOOLEAN)""")
    con.executemany(
        "INSERT INTO gen_spec VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (s.ikey, s.id, s.frequency, s.store_levels, s.base, s.spread, s.value_kind == "parts", s.integer)
            for s in specs
            if s.store_levels
        ],
    )
    con.execute("CREATE TABLE periods (frequency TEXT, period DATE, dn BIGINT)")
    con.executemany(
        "INSERT INTO periods VALUES (?, ?, ?)", [(f, p, (AS_OF - p).days) for f, p in _periods(scale)]
    )
    key = data_key(scale, areas, specs)
    if old_key == key and (keep / "observations.parquet").exists() and (keep / "observations.csv").exists():
        for name in ("observations.parquet", "observations.csv"):
            (keep / name).rename(out / name)
        rows = int(old_manifest["observations"])
    else:
        rows = generate_observations(con, out, scale)
    shutil.rmtree(keep, ignore_errors=True)
    con.close()
    shutil.rmtree(out / "tmp", ignore_errors=True)
    counts: dict[str, int] = {}
    for s in specs:
        counts[s.value_kind] = counts.get(s.value_kind, 0) + 1
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "data_key": key,
        "duckdb_version": duckdb.__version__,
        "scale": asdict(scale),
        "as_of": AS_OF.isoformat(),
        "indicators": len(specs),
        "kpis": sum(s.kind == "kpi" for s in specs),
        "vital_signs": sum(s.kind == "vital_sign" for s in specs),
        "indices": len(indices),
        "value_kinds": counts,
        "street_level_indicators": sum("street" in s.levels for s in specs),
        "areas": len(areas),
        "observations": rows,
        "csv_rows": min(rows, scale.csv_rows),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def fingerprint(out: Path) -> str:
    """sha256 over the generated catalogue, areas and spec (observations are derived from these)."""
    h = hashlib.sha256()
    for p in sorted([*out.glob("indicators/*.yaml"), out / "areas.csv", out / "spec.json"]):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def ensure(scale_name: str, *, force: bool = False, root: Path = CACHE) -> tuple[Path, dict[str, Any]]:
    """The cache folder of a scale, generated if missing or made by another generator version."""
    out = root / scale_name
    mf = out / "manifest.json"
    if not force and mf.exists():
        manifest = json.loads(mf.read_text(encoding="utf-8"))
        if manifest.get("generator_version") == GENERATOR_VERSION:
            return out, manifest
    return out, generate(SCALES[scale_name], out)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--scale", choices=sorted(SCALES), default="small")
    ap.add_argument("--force", action="store_true", help="regenerate even if cached")
    args = ap.parse_args(argv)
    out, manifest = ensure(args.scale, force=args.force)
    print(json.dumps(manifest, indent=2))
    print(f"data in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
