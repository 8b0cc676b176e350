"""Synthetic Scorecards for the renderer, exporter and CLI tests (no engine needed)."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from citykpi.catalogue.model import SEVERITY
from citykpi.engine.scorecard import CELL_SCHEMA, HISTORY_SCHEMA, INDEX_SCHEMA, Scorecard

AS_OF = date(2026, 11, 24)

AREAS = [
    ("500000", "city", "重庆市", "Chongqing"),
    ("500103", "district", "渝中区", "Yuzhong District"),
    ("500112", "district", "渝北区", "Yubei District"),
]

# indicator id, zh, en, kind, domain, tier, unit, statuses per area (city, 500103, 500112), values
INDICATORS: list[tuple[str, str, str, str, str, str, str, tuple[str, str, str], tuple[float | None, ...]]] = [
    (
        "env.air.aqi",
        "空气质量指数",
        "Air quality index",
        "vital_sign",
        "environment",
        "guidance",
        "index",
        ("yellow", "red", "green"),
        (128.0, 212.0, 46.0),
    ),
    (
        "env.air.good_days",
        "空气质量优良天数",
        "Good-air days",
        "kpi",
        "environment",
        "bottom_line",
        "days",
        ("blue", "orange", "green"),
        (301.0, 280.0, 310.0),
    ),
    (
        "water.supply.pressure_ok",
        "供水管网压力合格率",
        "Water pressure compliance",
        "vital_sign",
        "utilities",
        "bottom_line",
        "%",
        ("orange", "stale", "no_data"),
        (96.2, 97.5, None),
    ),
    (
        "service.hotline.ontime",
        "12345热线按时办结率",
        "Hotline on-time closure",
        "kpi",
        "service",
        "guidance",
        "%",
        ("green", "yellow", "not_applicable"),
        (98.7, 91.0, None),
    ),
]

BAND_LABELS = {"env.air.aqi": {"yellow": "轻度污染", "red": "重度污染", "green": "优"}}
BAND_LABELS_EN = {
    "env.air.aqi": {"yellow": "Lightly polluted", "red": "Heavily polluted", "green": "Excellent"}
}


def _cell(ind: tuple[Any, ...], i: int) -> dict[str, Any]:
    ind_id, zh, en, kind, domain, tier, unit, statuses, values = ind
    area_id, level, area_zh, area_en = AREAS[i]
    status = statuses[i]
    value = values[i]
    sev = SEVERITY.get(status)
    has_value = value is not None
    prev = None if not has_value else round(value * (0.9 if i != 1 else 1.07), 1)
    change_unit = "points" if unit == "%" else "percent"
    change = None
    if has_value and prev is not None:
        change = round(value - prev, 1) if change_unit == "points" else round((value / prev - 1) * 100, 1)
    target = ind_id == "env.air.good_days"
    return {
        "indicator_id": ind_id,
        "area_id": area_id,
        "level": level,
        "domain": domain,
        "kind": kind,
        "tier": tier,
        "unit": unit,
        "name_zh": zh,
        "name_en": en,
        "area_name_zh": area_zh,
        "area_name_en": area_en,
        "period_start": AS_OF if has_value else None,
        "period_end": AS_OF if has_value else None,
        "value": value,
        "basis_value": value,
        "status": status,
        "severity": sev,
        "band_label": BAND_LABELS.get(ind_id, {}).get(status),
        "band_label_en": BAND_LABELS_EN.get(ind_id, {}).get(status),
        "explanation": f"{status}: {value} {unit}"
        if has_value
        else f"{status}: no observation within look-back",
        "previous_value": prev,
        "change_previous": change,
        "week_ago_value": None if not has_value else round(value * 0.95, 1),
        "change_week_ago": None if not has_value else (1.5 if change_unit == "points" else 5.3),
        "last_year_value": None if not has_value else round(value * 1.02, 1),
        "change_last_year": None if not has_value else (-2.0 if change_unit == "points" else -1.96),
        "base_value": None,
        "change_base": None,
        "change_unit": change_unit,
        "streak": None if sev is None else (3 if status == "red" else 1),
        "target_value": 329.0 if target else None,
        "target_due": date(2026, 12, 31) if target else None,
        "attainment": (value / 329.0) if target and value else None,
        "expected_progress": 0.9 if target else None,
        "target_status": ("behind" if value and value / 329 < 0.9 else "on_track") if target else None,
        "source": "observed" if i else "rollup",
        **_forecast(ind_id, i, target),
    }


def _forecast(ind_id: str, i: int, target: bool) -> dict[str, Any]:
    """The forecast columns: the city's AQI heads for red; the good-air days target will be missed."""
    heading = ind_id == "env.air.aqi" and i == 0
    projected = target and i == 0
    return {
        "forecast_status": "red" if heading else None,
        "forecast_periods": 6 if heading else None,
        "forecast_date": AS_OF + timedelta(days=6) if heading else None,
        "forecast_periods_low": 4 if heading else None,
        "forecast_periods_high": 9 if heading else None,
        "forecast_slope": 12.5 if heading else (0.4 if projected else None),
        "forecast_r2": 0.82 if heading else (0.71 if projected else None),
        "anomaly_score": 2.4 if heading else None,
        "target_forecast": "will_miss" if projected else None,
        "target_projected": 312.0 if projected else None,
        "target_pace_needed": 2.3 if projected else None,
        "target_pace": 0.4 if projected else None,
    }


def make_cells(rename: dict[str, str] | None = None) -> pl.DataFrame:
    """Cells for 4 indicators × (city + 2 districts): every status, Chinese names."""
    rows = [_cell(ind, i) for ind in INDICATORS for i in range(len(AREAS))]
    # keep the fixture in step with the engine's schema
    assert set(rows[0]) == set(CELL_SCHEMA), set(CELL_SCHEMA) ^ set(rows[0])
    if rename:
        for r in rows:
            for key, new in rename.items():
                if r["indicator_id"] == key:
                    r["name_zh"] = new
                    r["name_en"] = new
    return pl.DataFrame(rows, schema=dict(CELL_SCHEMA))


def make_indices() -> pl.DataFrame:
    """Two indices at city and district level, districts ranked."""
    rows = []
    for index_id, zh, en, scores in (
        ("index.operation", "运维指数", "Operation index", (72.5, 58.0, 88.1)),
        ("index.health", "健康指数", "Health index", (81.0, 60.0, 64.0)),
    ):
        for i, (area_id, level, area_zh, area_en) in enumerate(AREAS):
            score = scores[i]
            status = (
                "green" if score >= 85 else "blue" if score >= 70 else "yellow" if score >= 60 else "orange"
            )
            rows.append(
                {
                    "index_id": index_id,
                    "area_id": area_id,
                    "level": level,
                    "name_zh": zh,
                    "name_en": en,
                    "area_name_zh": area_zh,
                    "area_name_en": area_en,
                    "score": score,
                    "status": status,
                    "severity": SEVERITY[status],
                    "coverage": 1.0 if i != 1 else 0.75,
                    "capped": i == 1 and index_id == "index.operation",
                    "components_used": 4 if i != 1 else 3,
                    "components_total": 4,
                    "rank": None if level == "city" else (1 if score == max(scores[1:]) else 2),
                }
            )
    return pl.DataFrame(rows, schema=dict(INDEX_SCHEMA))


def make_history(days: int = 14) -> pl.DataFrame:
    """A fortnight of values per cell that has a value."""
    rows = []
    for ind in INDICATORS:
        for i, (area_id, *_rest) in enumerate(AREAS):
            value = ind[8][i]
            if value is None:
                continue
            for d in range(days):
                wobble = math.sin(d / 2.0 + i) * 0.1
                rows.append(
                    {
                        "indicator_id": ind[0],
                        "area_id": area_id,
                        "period_start": AS_OF - timedelta(days=days - 1 - d),
                        "value": round(value * (1 + wobble), 2),
                    }
                )
    return pl.DataFrame(rows, schema=dict(HISTORY_SCHEMA))


def make_scorecard(*, rename: dict[str, str] | None = None, run_id: int | None = 7) -> Scorecard:
    """A realistic small scorecard."""
    return Scorecard(
        as_of=AS_OF,
        grain="day",
        cells=make_cells(rename),
        indices=make_indices(),
        history=make_history(),
        catalogue_hash="c0ffee" * 10 + "abcd",
        run_id=run_id,
        generated_at=datetime(2026, 11, 25, 2, 0, 5),
        meta={"queries": 9, "seconds": 0.42},
    )
