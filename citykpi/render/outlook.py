"""Early warning as words and as a view: "→ red in ~6 days (around 2026-01-06)", "will miss", ``alerts --early``.

Polars and strings only, no Rich: the terminal, the exports and the HTML report share these.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import polars as pl

from citykpi.catalogue.model import SEVERITY
from citykpi.engine.scorecard import Scorecard
from citykpi.errors import UsageError
from citykpi.render.format import fmt_number, status_label

#: How a target's forecast reads.
TARGET_FORECAST_LABELS: Mapping[str, Mapping[str, str]] = {
    "en": {"will_meet": "will meet", "at_risk": "at risk", "will_miss": "will miss"},
    "zh": {"will_meet": "预计达成", "at_risk": "存在风险", "will_miss": "预计无法达成"},
}

_UNIT: Mapping[str, Mapping[str, tuple[str, str]]] = {
    "en": {
        "day": ("day", "days"),
        "week": ("week", "weeks"),
        "month": ("month", "months"),
        "quarter": ("quarter", "quarters"),
        "year": ("year", "years"),
    },
    "zh": {
        "day": ("天", "天"),
        "week": ("周", "周"),
        "month": ("个月", "个月"),
        "quarter": ("个季度", "个季度"),
        "year": ("年", "年"),
    },
}

#: Columns of :func:`early_alerts`.
EARLY_COLUMNS: tuple[str, ...] = (
    "indicator_id",
    "area_id",
    "level",
    "domain",
    "tier",
    "name_zh",
    "name_en",
    "area_name_zh",
    "area_name_en",
    "unit",
    "value",
    "status",
    "severity",
    "period_start",
    "period_end",
    "forecast_status",
    "forecast_periods",
    "forecast_date",
    "forecast_periods_low",
    "forecast_periods_high",
    "forecast_slope",
    "forecast_r2",
    "explanation",
)


def period_grain(start: date | None, end: date | None) -> str:
    """The reporting grain of a cell, from its period's first and last day."""
    if start is None or end is None:
        return "day"
    days = (end - start).days + 1
    if days <= 1:
        return "day"
    if days <= 7:
        return "week"
    if days <= 31:
        return "month"
    if days <= 92:
        return "quarter"
    return "year"


def grain_word(grain: str, lang: str) -> str:
    """'day' / '天': one period of ``grain``."""
    return _UNIT.get(lang, _UNIT["en"]).get(grain, (grain, grain))[0]


def periods_text(n: int, grain: str, lang: str) -> str:
    """'6 days' / '6 天'."""
    one, many = _UNIT.get(lang, _UNIT["en"]).get(grain, (grain, grain + "s"))
    if lang == "zh":
        return f"{n}{one}"
    return f"{n} {one if n == 1 else many}"


def fmt_outlook(
    row: Mapping[str, Any], lang: str = "en", *, with_range: bool = False, two_lines: bool = False
) -> str:
    """'→ red in ~6 days (around 2026-01-06)'; '' when the cell has no forecast.

    ``with_range`` adds the range the crossing moves over with the slope's uncertainty ('4–9 days');
    ``two_lines`` puts the date on a line of its own (a narrow table column).
    """
    colour = row.get("forecast_status")
    periods = row.get("forecast_periods")
    if not colour or periods is None:
        return ""
    grain = period_grain(row.get("period_start"), row.get("period_end"))
    when = row.get("forecast_date")
    around = when.isoformat() if isinstance(when, date) else ""
    low, high = row.get("forecast_periods_low"), row.get("forecast_periods_high")
    span = ""
    if with_range and low is not None:
        if high is None:
            span = f"{low}+" if lang == "en" else f"{low}以上"
        elif high != low:
            span = f"{low}–{high}"
    gap = "\n" if two_lines else ("" if lang == "zh" else " ")
    if lang == "zh":
        text = f"→ 约{periods_text(periods, grain, 'zh')}后转{status_label(colour, 'zh')}"
        if around:
            text += f"{gap}（{around}前后"
            text += f"，{span}{_UNIT['zh'].get(grain, (grain, grain))[0]}）" if span else "）"
        return text
    text = f"→ {colour} in ~{periods_text(periods, grain, 'en')}"
    if around:
        unit = _UNIT["en"].get(grain, (grain, grain))[1]
        text += f"{gap}(around {around}" + (f", {span} {unit})" if span else ")")
    return text


def fmt_target_forecast(row: Mapping[str, Any], lang: str = "en", decimals: int = 1) -> str:
    """'will miss: 7.9 by 2027-12-31; needs -0.12/month, trend -0.05/month'; '' without a forecast."""
    verdict = row.get("target_forecast")
    if not verdict:
        return ""
    label = TARGET_FORECAST_LABELS.get(lang, TARGET_FORECAST_LABELS["en"]).get(verdict, verdict)
    due = row.get("target_due")
    due_text = due.isoformat() if isinstance(due, date) else ""
    projected = fmt_number(row.get("target_projected"), decimals)
    need, pace = row.get("target_pace_needed"), row.get("target_pace")
    if lang == "zh":
        text = f"{label}：预计{due_text}达到 {projected}"
        if need is not None and pace is not None:
            text += f"；每月需 {need:+,.{decimals + 1}f}，当前趋势 {pace:+,.{decimals + 1}f}"
        return text
    text = f"{label}: {projected} by {due_text}"
    if need is not None and pace is not None:
        text += f"; needs {need:+,.{decimals + 1}f}/month, trend {pace:+,.{decimals + 1}f}/month"
    return text


def target_forecast_label(verdict: str | None, lang: str = "en") -> str:
    """'will miss' / '预计无法达成'; '' for none."""
    if not verdict:
        return ""
    return TARGET_FORECAST_LABELS.get(lang, TARGET_FORECAST_LABELS["en"]).get(verdict, verdict)


def early_alerts(scorecard: Scorecard, *, min_colour: str = "orange") -> pl.DataFrame:
    """Cells forecast to reach ``min_colour`` or worse within their horizon, soonest first.

    Args:
        scorecard: an evaluated scorecard (its forecast columns).
        min_colour: the least severe forecast colour listed (green … red).

    Returns:
        One row per cell with the columns in :data:`EARLY_COLUMNS`, by periods until the crossing,
        then the worse forecast colour first, then indicator and area.
    """
    if min_colour not in SEVERITY:
        raise UsageError(f"unknown colour {min_colour!r}; use one of {', '.join(SEVERITY)}")
    floor = SEVERITY[min_colour]
    forecast = [c for c, s in SEVERITY.items() if s >= floor]
    cells = scorecard.cells.filter(pl.col("forecast_status").is_in(forecast))
    rank = pl.col("forecast_status").replace_strict(dict(SEVERITY), return_dtype=pl.Int8)
    return (
        cells.with_columns(rank.alias("__fsev"))
        .sort(
            ["forecast_periods", "__fsev", "indicator_id", "area_id"],
            descending=[False, True, False, False],
        )
        .select(EARLY_COLUMNS)
    )


__all__ = [
    "EARLY_COLUMNS",
    "TARGET_FORECAST_LABELS",
    "early_alerts",
    "fmt_outlook",
    "fmt_target_forecast",
    "grain_word",
    "period_grain",
    "periods_text",
    "target_forecast_label",
]
