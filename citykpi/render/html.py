"""The self-contained HTML report: Jinja2 templates with autoescaping, inline CSS, SVG and one script.

The page is one file that opens anywhere and asks for nothing: no request leaves it (a
Content-Security-Policy allows no source at all, and the style and the script only by their SHA-256
hash), so a name that looks like markup can neither load nor run anything. Every piece of text from
the scorecard reaches the page through the templates' autoescaping and the ``t`` filter, which shows
control characters (bidi overrides, escapes) as visible ``\\u202e`` text; ids and classes come from a
fixed vocabulary or are slugged. The output is deterministic (no clock, sorted rows).

Without the script every row is shown in the scorecard's order and the page prints as it is. With it,
a click on a column head sorts the table, and a toolbar filters the rows by words (a search box) and by
status. Per indicator, a trend chart draws the history: the top-level area's line (the city) over the
range its lower-level areas span (the districts), as inline SVG.

The templates (``render/templates/``) hold the markup; this module builds the view model they read:
plain values and the drawings' geometry, computed from the scorecard's Polars frames.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources
from typing import Any

import jinja2
import polars as pl
from markupsafe import Markup

from citykpi.catalogue.model import COLOURS, LEVELS, NON_COLOUR_STATUSES, STATUSES
from citykpi.engine.scorecard import Scorecard, colour_rank
from citykpi.render.format import (
    STATUS_GLYPHS,
    STATUS_HEX,
    STATUS_INK,
    domain_name,
    fmt_cell_value,
    fmt_change,
    fmt_number,
    fmt_percent,
    fmt_progress,
    fmt_target,
    history_series,
    pick,
    safe_text,
    sort_cells,
    sort_history,
    sort_indices,
    status_label,
    status_text,
    summary_statuses,
    word,
)
from citykpi.render.outlook import fmt_outlook, fmt_target_forecast
from citykpi.render.views import league_table

#: Short CSS classes of the matrix cells (one per status; the colours are in the style sheet).
_MX_CLASS: Mapping[str, str] = {
    "green": "g",
    "blue": "b",
    "yellow": "y",
    "orange": "o",
    "red": "r",
    "stale": "st",
    "unscored": "us",
    "no_data": "nd",
    "not_applicable": "na",
}

LEGEND_TEXT: Mapping[str, Mapping[str, str]] = {
    "en": {
        "green": "normal",
        "blue": "level IV — attention",
        "yellow": "level III — warning",
        "orange": "level II — serious",
        "red": "level I — critical",
        "stale": "feed silent past its cadence (value shown)",
        "unscored": "shown, never coloured: no thresholds declared",
        "no_data": "no observation in the look-back",
        "not_applicable": "not defined at this level",
    },
    "zh": {
        "green": "正常",
        "blue": "四级（关注）",
        "yellow": "三级（预警）",
        "orange": "二级（严重）",
        "red": "一级（危急）",
        "stale": "数据超期未更新（仍显示数值）",
        "unscored": "未设阈值，仅显示数值",
        "no_data": "回溯期内无数据",
        "not_applicable": "该层级不适用",
    },
}

#: Above this many cells the report switches to the compact layout: exceptions first, the city
#: rows in full, the other levels as an indicator × area matrix per domain (a city-scale
#: scorecard of ~226k cells then stays around 15 MB instead of 165 MB).
DETAIL_LIMIT = 5_000

#: Statuses listed one by one, with their explanation, in the compact layout's exceptions section.
EXCEPTION_STATUSES: tuple[str, ...] = ("red", "orange", "stale")

#: Trend charts in the compact layout: only indicators with a red, orange or stale cell, worst first,
#: at most this many (the detailed layout draws every indicator's).
TREND_LIMIT = 300

#: Points of history drawn per series (sparklines and trend charts).
HISTORY_POINTS = 14

_TEXT: Mapping[str, Mapping[str, str]] = {
    "en": {
        "city": "City",
        "district": "Districts",
        "street": "Streets",
        "exceptions": "Exceptions",
        "exceptions_note": (
            "Every red, orange and stale cell with the reason for its colour; the domain sections "
            "below show every cell (in the matrices, hover a coloured cell for its reason)."
        ),
        "all_green": "green in every area of this level",
        "indicators": "indicators",
        "areas": "areas",
        "matrix_note": "value without unit (the unit is under the indicator); pale green = normal",
        "search": "Search",
        "search_hint": "indicator, area, id or words of an explanation",
        "rows_shown": "rows shown",
        "print_filtered": "Printed with a filter: only the rows shown on screen are printed.",
        "trends": "Trends",
        "trend_caption_band": "line: {top}; band and dashed median: the other {lower} areas",
        "trend_note": "The {shown} indicators with a red, orange or stale cell (of {total}), worst first.",
    },
    "zh": {
        "city": "市级",
        "district": "区县",
        "street": "街道",
        "exceptions": "例外（红、橙、过期）",
        "exceptions_note": "逐项列出所有红色、橙色和数据过期的单元格及其原因；下方各领域列出全部单元格（矩阵中悬停彩色单元格可查看原因）。",
        "all_green": "在本层级所有区域均为绿色",
        "indicators": "个指标",
        "areas": "个区域",
        "matrix_note": "数值不含单位（单位见指标名下方）；浅绿 = 正常",
        "search": "搜索",
        "search_hint": "指标、区域、编码或说明中的词",
        "rows_shown": "显示行数",
        "print_filtered": "打印时已筛选：只打印屏幕上显示的行。",
        "trends": "趋势",
        "trend_caption_band": "实线：{top}；色带与虚线中位数：其余 {lower} 个区域",
        "trend_note": "含红、橙或过期单元格的 {shown} 个指标（共 {total} 个），最严重的在前。",
    },
}


def _t(key: str, lang: str) -> str:
    return _TEXT.get(lang, _TEXT["en"]).get(key, _TEXT["en"].get(key, key))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-") or "x"


def _num(x: float) -> str:
    """A coordinate with one decimal and no trailing '.0' (short path data)."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _sort(value: object) -> str:
    """A ``data-sort`` value: a number as Python writes it, '' for none (sorted last)."""
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return ""
    return f"{float(value):.10g}" if isinstance(value, int | float) else str(value)


def _level_class(level: str | None) -> str:
    return f"lv{LEVELS.index(level)}" if level in LEVELS else "lv2"


def _present(v: float | None) -> bool:
    return v is not None and not math.isnan(v)


# --- templates ----------------------------------------------------------------------------------


def _one_line(value: object) -> str:
    """The ``t`` filter: text with every control character made visible (bidi overrides, escapes)."""
    return safe_text(value, one_line=True)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The templates of ``citykpi/render/templates`` with autoescaping always on."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("citykpi.render", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["t"] = _one_line
    return env


@lru_cache(maxsize=8)
def static_text(name: str) -> str:
    """A style sheet or script shipped beside the templates, as text."""
    return (resources.files("citykpi.render") / "templates" / name).read_text(encoding="utf-8")


def csp_hash(text: str) -> str:
    """The Content-Security-Policy source of an inline ``<style>``/``<script>`` with exactly ``text``."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def content_security_policy(style: str, script: str | None) -> str:
    """Nothing may load (no source is allowed for anything); the one style and the one script run by hash."""
    parts = [
        "default-src 'none'",
        f"style-src {csp_hash(style)}",
        f"script-src {csp_hash(script)}" if script else "script-src 'none'",
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
    ]
    return "; ".join(parts)


def _status_css() -> str:
    """Colour rules of the status chips and lines (from the fixed status palette)."""
    return "\n".join(
        [f".s-{s} {{ background: {STATUS_HEX[s]}; color: {STATUS_INK[s]}; }}" for s in STATUSES]
        + [f".k-{c} {{ color: {STATUS_HEX[c]}; }}" for c in COLOURS]
    )


def _compact_status_css() -> str:
    """Matrix cell colours and glyphs: a colourless print still shows the severity."""
    fills = [
        f"table.mx td.{cls} {{ background: {STATUS_HEX[s]}; color: {STATUS_INK[s]}; }}"
        for s, cls in _MX_CLASS.items()
        if s != "green"
    ]
    glyphs = [
        f'table.mx td.{cls}::before {{ content: "{STATUS_GLYPHS[s]}"; padding-right: 2px; }}'
        for s, cls in _MX_CLASS.items()
        if s not in ("green", "blue")
    ]
    return "\n".join(fills + glyphs)


def report_css(compact: bool) -> str:
    """The report's whole style sheet."""
    css = static_text("page.css") + static_text("report.css") + _status_css() + "\n"
    if compact:
        css += static_text("compact.css") + _compact_status_css() + "\n"
    return css


# --- drawings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spark:
    """A sparkline's geometry: one path with gaps, lone points as dots, a dot on the last value."""

    width: int
    height: int
    status: str | None
    path: str
    dots: tuple[tuple[str, str], ...]
    last: tuple[str, str]
    label: str | None


def spark_geometry(
    values: Sequence[float | None],
    *,
    width: int = 120,
    height: int = 24,
    status: str | None = None,
    label: bool = True,
) -> Spark | None:
    """The sparkline of ``values`` (None or NaN are gaps); None when no value is present."""
    present = [v for v in values if v is not None and not math.isnan(v)]
    if not present:
        return None
    low, high = min(present), max(present)
    span = (high - low) or 1.0
    step = (width - 4) / max(1, len(values) - 1)

    def xy(i: int, v: float) -> tuple[str, str]:
        y = height - 2 - (v - low) / span * (height - 4) if high != low else height / 2
        return _num(2 + i * step), _num(y)

    path: list[str] = []
    dots: list[tuple[str, str]] = []
    run: list[tuple[str, str]] = []
    for i, v in enumerate([*values, None]):
        if v is None or math.isnan(v):
            if len(run) == 1:
                dots.append(run[0])
            elif run:
                path.append("M" + "L".join(f"{x} {y}" for x, y in run))
            run = []
            continue
        run.append(xy(i, v))
    last_i = max(i for i, v in enumerate(values) if _present(v))
    last_value = values[last_i]
    assert last_value is not None
    return Spark(
        width=width,
        height=height,
        status=status if status in STATUSES else None,
        path="".join(path),
        dots=tuple(dots),
        last=xy(last_i, last_value),
        label=", ".join(fmt_number(v) for v in values) if label else None,
    )


def sparkline_svg(
    values: Sequence[float | None],
    *,
    width: int = 120,
    height: int = 24,
    status: str | None = None,
    label: bool = True,
) -> str:
    """An inline SVG sparkline: one ``<path>`` (gaps for missing values), a dot on the last value.

    The colour comes from the CSS class ``k-<status>`` (grey without a status); ``label`` adds the
    values as the accessible name (``aria-label``).
    """
    geometry = spark_geometry(values, width=width, height=height, status=status, label=label)
    return str(environment().get_template("macros.html.j2").module.sparkline(geometry))  # type: ignore[attr-defined]


def _progress(
    fraction: float | None, expected: float | None, status: str | None, *, width: int = 90, height: int = 10
) -> Any:
    """A progress bar's geometry with a tick at the expected progress; None without a fraction."""
    if fraction is None or math.isnan(fraction):
        return None
    colour = STATUS_HEX["green"] if expected is None or fraction >= expected else STATUS_HEX["orange"]
    tick = None if expected is None or math.isnan(expected) else f"{max(0.0, min(1.0, expected)) * width:.1f}"
    return {
        "width": width,
        "height": height,
        "filled": f"{max(0.0, min(1.0, fraction)) * width:.1f}",
        "colour": colour,
        "tick": tick,
        "label": fmt_progress(fraction, expected, status),
    }


def _score_bar(score: float | None, status: str | None, *, width: int = 100, height: int = 10) -> Any:
    """A 0–100 score bar's geometry in the status's colour; None without a score."""
    if score is None or math.isnan(score):
        return None
    return {
        "width": width,
        "height": height,
        "filled": f"{max(0.0, min(100.0, score)) / 100 * width:.1f}",
        "colour": STATUS_HEX.get(status or "", STATUS_HEX["no_data"]),
        "label": fmt_number(score),
    }


#: Size of a trend chart (viewBox units): plot from (X0, Y0) to (X1, Y1), labels around it.
_TREND_W, _TREND_H = 300, 96
_X0, _X1, _Y0, _Y1 = 46, 294, 6, 80


def _period_text(d: date, first: date, last: date) -> str:
    """A period as a short axis label: month-day within one year, else the ISO date."""
    return d.strftime("%m-%d") if first.year == last.year else d.isoformat()


def _trend_charts(
    history: pl.DataFrame,
    top: pl.DataFrame,
    unit_of: Mapping[str, str | None],
    lang: str,
) -> dict[str, dict[str, Any]]:
    """Per indicator, the geometry of its trend chart.

    ``top`` holds, per indicator, the area drawn as the line (the top level's only area, usually
    the city) with its status and level. The band is the range of the other areas of the next level
    present in the history for that indicator, per period; the dashed line its median.
    """
    if not history.height or not top.height:
        return {}
    hist = sort_history(history).filter(pl.col("value").is_not_null() & pl.col("value").is_finite())
    # the last HISTORY_POINTS periods of each indicator
    periods = (
        hist.select("indicator_id", "period_start")
        .unique()
        .sort("indicator_id", "period_start")
        .with_columns(
            pl.col("period_start").rank("dense", descending=True).over("indicator_id").alias("__age")
        )
        .filter(pl.col("__age") <= HISTORY_POINTS)
        .drop("__age")
    )
    hist = hist.join(periods, on=["indicator_id", "period_start"], how="semi")
    marked = hist.join(
        top.select("indicator_id", pl.col("area_id").alias("__top")), on="indicator_id", how="inner"
    )
    line = marked.filter(pl.col("area_id") == pl.col("__top")).select("indicator_id", "period_start", "value")
    band = (
        marked.filter(pl.col("area_id") != pl.col("__top"))
        .group_by("indicator_id", "period_start")
        .agg(
            pl.col("value").min().alias("lo"),
            pl.col("value").max().alias("hi"),
            pl.col("value").median().alias("mid"),
            pl.len().alias("n"),
        )
    )
    frames = (
        periods.join(top.select("indicator_id"), on="indicator_id", how="semi")
        .join(line, on=["indicator_id", "period_start"], how="left")
        .join(band, on=["indicator_id", "period_start"], how="left")
        .sort("indicator_id", "period_start")
    )
    tops = {r["indicator_id"]: r for r in top.iter_rows(named=True)}
    charts: dict[str, dict[str, Any]] = {}
    for (indicator_id,), part in frames.group_by("indicator_id", maintain_order=True):
        ind = str(indicator_id)
        days: list[date] = part.get_column("period_start").to_list()
        values: list[float | None] = part.get_column("value").to_list()
        lows: list[float | None] = part.get_column("lo").to_list()
        highs: list[float | None] = part.get_column("hi").to_list()
        mids: list[float | None] = part.get_column("mid").to_list()
        counts: list[int | None] = part.get_column("n").to_list()
        seen = [v for v in (*values, *lows, *highs) if v is not None]
        if not seen or len(days) < 2:
            continue
        low, high = min(seen), max(seen)
        span = (high - low) or 1.0

        def x(i: int, _n: int = len(days)) -> str:
            return _num(_X0 + i * (_X1 - _X0) / max(1, _n - 1))

        def y(v: float, _low: float = low, _span: float = span, _flat: bool = high == low) -> str:
            return _num((_Y0 + _Y1) / 2 if _flat else _Y1 - (v - _low) / _span * (_Y1 - _Y0))

        def path(series: Sequence[float | None]) -> str:
            runs: list[str] = []
            run: list[str] = []
            for i, v in enumerate([*series, None]):
                if v is None:
                    if len(run) > 1:
                        runs.append("M" + "L".join(run))
                    run = []
                    continue
                run.append(f"{x(i)} {y(v)}")
            return "".join(runs)

        spans = [(i, lo, hi) for i, (lo, hi) in enumerate(zip(lows, highs, strict=True)) if lo is not None]
        lower_n = max((c for c in counts if c is not None), default=0)
        band_path = ""
        if len(spans) > 1 and lower_n > 1:  # one other area is drawn as its (dashed) line alone
            upper = "L".join(f"{x(i)} {y(hi)}" for i, _lo, hi in spans if hi is not None)
            lower = "L".join(f"{x(i)} {y(lo)}" for i, lo, _hi in reversed(spans) if lo is not None)
            band_path = f"M{upper}L{lower}Z"
        last_i = max((i for i, v in enumerate(values) if v is not None), default=None)
        head = tops[ind]
        unit = unit_of.get(ind)
        status = head["status"] if head["status"] in COLOURS else None
        top_name = pick(head, "area_name", lang) or head["area_id"]
        caption = _t("trend_caption_band", lang).format(top=top_name, lower=lower_n) if lower_n else top_name
        label_values = ", ".join(
            f"{d.isoformat()} {fmt_number(v)}" for d, v in zip(days, values, strict=True) if v is not None
        )
        charts[ind] = {
            "indicator_id": ind,
            "unit": unit or "",
            "status": status,
            "width": _TREND_W,
            "height": _TREND_H,
            "x0": _X0,
            "x1": _X1,
            "y0": _Y0,
            "y1": _Y1,
            "line": path(values),
            "last": None if last_i is None or (end := values[last_i]) is None else (x(last_i), y(end)),
            "band": band_path,
            "mid": path(mids) if lower_n else "",
            "high": fmt_number(high),
            "low": fmt_number(low),
            "first": _period_text(days[0], days[0], days[-1]),
            "last_period": _period_text(days[-1], days[0], days[-1]),
            "caption": caption,
            "label": f"{top_name}: {label_values}" if label_values else caption,
        }
    return charts


# --- the view model ----------------------------------------------------------------------------------


def _labels(lang: str) -> dict[str, str]:
    return {s: status_text(s, lang) for s in STATUSES}


def _detail_rows(
    group: pl.DataFrame, series: Mapping[tuple[str, str], list[float | None]], lang: str
) -> list[dict[str, Any]]:
    """One row per cell: value, status with its reason, changes, target, sparkline."""
    rows: list[dict[str, Any]] = []
    previous = None
    for row in group.iter_rows(named=True):
        first = row["indicator_id"] != previous
        previous = row["indicator_id"]
        has_target = row["attainment"] is not None or bool(row["target_status"])
        rows.append(
            {
                "first": first,
                "name": pick(row, "name", lang) or row["indicator_id"],
                "indicator_id": row["indicator_id"],
                "area": pick(row, "area_name", lang) or row["area_id"],
                "level_class": _level_class(row["level"]),
                "status": row["status"],
                "status_sort": _sort(colour_rank(row["status"]) if row["status"] in STATUSES else 99),
                "value": fmt_cell_value(row, lang=lang),
                "explanation": row["explanation"] or "",
                "change": fmt_change(row["change_previous"], row["change_unit"], lang, row.get("unit")),
                "yoy": fmt_change(row["change_last_year"], row["change_unit"], lang, row.get("unit")),
                "progress": _progress(row["attainment"], row["expected_progress"], row["target_status"])
                if has_target
                else None,
                "target": fmt_target(row["attainment"], row["expected_progress"], row["target_status"], lang)
                if has_target
                else "",
                "target_forecast": fmt_target_forecast(row, lang) if row.get("target_forecast") else "",
                "outlook": fmt_outlook(row, lang, with_range=True),
                "target_sort": _sort(row["attainment"]),
                "spark": spark_geometry(
                    series.get((row["indicator_id"], row["area_id"]), []),
                    status=row["status"] if row["severity"] is not None else None,
                ),
            }
        )
    return rows


def _exceptions(cells: pl.DataFrame, lang: str) -> list[dict[str, Any]]:
    """Compact layout: every red, orange and stale cell with its explanation, by status."""
    listed = cells.filter(pl.col("status").is_in(list(EXCEPTION_STATUSES)))
    columns = (
        "indicator_id",
        "name_zh",
        "name_en",
        "area_id",
        "area_name_zh",
        "area_name_en",
        "level",
        "value",
        "unit",
        "band_label",
        "band_label_en",
        "change_previous",
        "change_last_year",
        "change_unit",
        "explanation",
    )
    groups = []
    for status in EXCEPTION_STATUSES:
        group = listed.filter(pl.col("status") == status)
        if not group.height:
            continue
        rows = []
        previous = None
        for row in group.select(columns).iter_rows(named=True):
            first = row["indicator_id"] != previous
            previous = row["indicator_id"]
            rows.append(
                {
                    "first": first,
                    "name": pick(row, "name", lang) or row["indicator_id"],
                    "indicator_id": row["indicator_id"],
                    "area": pick(row, "area_name", lang) or row["area_id"],
                    "level_class": _level_class(row["level"]),
                    "value": fmt_cell_value(row, lang=lang),
                    "change": fmt_change(row["change_previous"], row["change_unit"], lang, row.get("unit")),
                    "yoy": fmt_change(row["change_last_year"], row["change_unit"], lang, row.get("unit")),
                    "explanation": row["explanation"] or "",
                }
            )
        groups.append({"status": status, "rows": rows})
    return groups


def _matrix(group: pl.DataFrame, level: str, lang: str) -> dict[str, Any]:
    """One level of one domain as an indicator × area matrix: colour-coded cells, value as text.

    The reason of a colour is in the cell's tooltip for every status but green; indicators that
    are green in every area are summarised in one line under the matrix.
    """
    areas: dict[str, str] = {}
    for area_id, zh, en in (
        group.select("area_id", "area_name_zh", "area_name_en")
        .unique("area_id", keep="first", maintain_order=True)
        .sort("area_id")
        .iter_rows()
    ):
        areas[area_id] = (zh or en or area_id) if lang == "zh" else (en or zh or area_id)
    position = {a: i for i, a in enumerate(areas)}
    rows: dict[str, list[tuple[str, str | None, str] | None]] = {}
    heads: dict[str, tuple[str, str]] = {}
    statuses: dict[str, set[str]] = {}
    columns = ("indicator_id", "area_id", "name_zh", "name_en", "unit", "value", "status", "explanation")
    for ind, area_id, name_zh, name_en, unit, value, status, explanation in group.select(columns).iter_rows():
        line = rows.get(ind)
        if line is None:
            line = rows[ind] = [None] * len(areas)
            name = (name_zh or name_en) if lang == "zh" else (name_en or name_zh)
            heads[ind] = (name or ind, unit or "")
            statuses[ind] = set()
        text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt_number(value)
        statuses[ind].add(status)
        tip = None if status == "green" else (explanation or status)
        line[position[area_id]] = (_MX_CLASS.get(status, "nd"), tip, text)
    # an indicator green in every area (no area missing) is summarised in one line
    summarised = [ind for ind in rows if statuses[ind] == {"green"} and None not in rows[ind]]
    gone = set(summarised)
    title = f"{_t(level, lang)} · {len(areas)} {_t('areas', lang)} · {len(rows)} {_t('indicators', lang)}"
    return {
        "title": title,
        "areas": list(areas.values()),
        "rows": [
            {
                "name": heads[ind][0],
                "indicator_id": ind,
                "unit": heads[ind][1],
                "statuses": " ".join(sorted(statuses[ind])),
                "cells": rows[ind],
            }
            for ind in rows
            if ind not in gone
        ],
        "all_green": [(heads[ind][0], ind) for ind in summarised],
    }


def _trend_tops(cells: pl.DataFrame) -> pl.DataFrame:
    """Per indicator, the area its trend chart draws as the line: the only area of its top level."""
    if not cells.height:
        return cells.select("indicator_id", "area_id", "level", "status", "area_name_zh", "area_name_en")
    ranked = cells.with_columns(
        pl.col("level")
        .replace_strict(list(LEVELS), list(range(len(LEVELS))), default=len(LEVELS), return_dtype=pl.Int32)
        .alias("__lv")
    )
    top = ranked.filter(pl.col("__lv") == pl.col("__lv").min().over("indicator_id"))
    single = top.filter(pl.len().over("indicator_id") == 1)
    return single.select("indicator_id", "area_id", "level", "status", "area_name_zh", "area_name_en")


def _trend_selection(cells: pl.DataFrame, compact: bool) -> tuple[list[str], int]:
    """The indicators that get a trend chart, and how many there are in all.

    Every indicator in the detailed layout; in the compact one those with a red, orange or stale
    cell, worst first (most severe cell, then most such cells), at most :data:`TREND_LIMIT`.
    """
    ids = cells.get_column("indicator_id").unique(maintain_order=True).to_list() if cells.height else []
    if not compact:
        return ids, len(ids)
    hot = (
        cells.filter(pl.col("status").is_in(list(EXCEPTION_STATUSES)))
        .group_by("indicator_id")
        .agg(
            pl.col("status")
            .replace_strict({"red": 0, "orange": 1, "stale": 2}, default=3, return_dtype=pl.Int8)
            .min()
            .alias("worst"),
            pl.len().alias("n"),
        )
        .sort(["worst", "n", "indicator_id"], descending=[False, True, False])
        .head(TREND_LIMIT)
    )
    return hot.get_column("indicator_id").to_list(), len(ids)


def _domains(scorecard: Scorecard, cells: pl.DataFrame, lang: str, compact: bool) -> list[dict[str, Any]]:
    """Per domain: the detail table (every cell; the city rows in the compact layout), the matrices
    of the lower levels (compact layout) and the trend charts."""
    top_level = LEVELS[0]
    if compact:
        city_areas = cells.filter(pl.col("level") == top_level).get_column("area_id").unique().to_list()
        series = (
            history_series(scorecard.history.filter(pl.col("area_id").is_in(city_areas)), HISTORY_POINTS)
            if scorecard.history.height
            else {}
        )
    else:
        series = history_series(scorecard.history, HISTORY_POINTS)
    present = set(cells.get_column("level").unique().to_list()) if cells.height else set()
    lower = [lv for lv in LEVELS[1:] if lv in present] + sorted(
        str(lv) for lv in present - set(LEVELS) if lv is not None
    )
    chosen, total = _trend_selection(cells, compact)
    order = {ind: i for i, ind in enumerate(chosen)}
    unit_of = (
        dict(cells.select("indicator_id", "unit").unique("indicator_id").iter_rows()) if cells.height else {}
    )
    charts = _trend_charts(
        scorecard.history.filter(pl.col("indicator_id").is_in(chosen))
        if scorecard.history.height
        else scorecard.history,
        _trend_tops(cells).filter(pl.col("indicator_id").is_in(chosen)),
        unit_of,
        lang,
    )
    statuses_of = (
        {
            ind: " ".join(sorted(set(sts)))
            for ind, sts in cells.group_by("indicator_id").agg(pl.col("status")).iter_rows()
        }
        if cells.height
        else {}
    )
    out: list[dict[str, Any]] = []
    for (domain,), group in cells.group_by("domain", maintain_order=True):
        names = dict(
            group.select(
                "indicator_id",
                (pl.col("name_zh") if lang == "zh" else pl.col("name_en")).fill_null(
                    pl.col("name_en") if lang == "zh" else pl.col("name_zh")
                ),
            )
            .unique("indicator_id", maintain_order=True)
            .iter_rows()
        )
        if compact:
            top = group.filter(pl.col("level") == top_level)
            detail = _detail_rows(top, series, lang) if top.height else []
            matrices = [
                _matrix(part, level, lang)
                for level in lower
                if (part := group.filter(pl.col("level") == level)).height
            ]
        else:
            detail = _detail_rows(group, series, lang)
            matrices = []
        trends = sorted(
            (
                {**charts[ind], "name": names.get(ind) or ind, "statuses": statuses_of.get(ind, "")}
                for ind in names
                if ind in charts
            ),
            key=lambda c: order.get(c["indicator_id"], 0) if compact else 0,
        )
        out.append(
            {
                "domain": str(domain),
                "slug": _slug(str(domain)),
                "title": domain_name(str(domain), lang),
                "detail": detail,
                "detail_title": _t(top_level, lang) if compact and detail else "",
                "matrices": matrices,
                "trends": trends,
                "trend_note": _t("trend_note", lang).format(shown=len(chosen), total=total)
                if compact and trends
                else "",
            }
        )
    return out


def _indices(scorecard: Scorecard, lang: str) -> dict[str, Any] | None:
    """A matrix: one row per area (city first), one column per index (score bar, score, colour)."""
    indices = sort_indices(scorecard.indices)
    if not indices.height:
        return None
    ids = list(dict.fromkeys(indices.get_column("index_id").to_list()))
    names = {r["index_id"]: pick(r, "name", lang) or r["index_id"] for r in indices.iter_rows(named=True)}
    by_area: dict[str, dict[str, Mapping[str, Any]]] = {}
    area_rows: dict[str, Mapping[str, Any]] = {}
    for row in indices.iter_rows(named=True):
        by_area.setdefault(row["area_id"], {})[row["index_id"]] = row
        area_rows.setdefault(row["area_id"], row)
    order = sorted(
        area_rows,
        key=lambda a: (LEVELS.index(area_rows[a]["level"]) if area_rows[a]["level"] in LEVELS else 9, a),
    )
    rows = []
    for position, area_id in enumerate(order):
        head = area_rows[area_id]
        cells: list[dict[str, Any] | None] = []
        for index_id in ids:
            cell = by_area[area_id].get(index_id)
            if cell is None:
                cells.append(None)
                continue
            title = (
                f"{word('coverage', lang)} {fmt_percent(cell['coverage'])} "
                f"({cell['components_used'] or 0}/{cell['components_total'] or 0})"
            )
            if cell["rank"] is not None:
                title += f" · {word('rank', lang)} {cell['rank']}"
            cells.append(
                {
                    "status": cell["status"],
                    "sort": _sort(cell["score"]),
                    "title": title,
                    "bar": _score_bar(cell["score"], cell["status"], width=60),
                    "score": fmt_number(cell["score"])
                    + (f" ({word('capped', lang)})" if cell["capped"] else ""),
                }
            )
        rows.append(
            {
                "area": pick(head, "area_name", lang) or area_id,
                "level_class": _level_class(head["level"]),
                "order": str(position),
                "statuses": " ".join(sorted({c["status"] for c in cells if c is not None})),
                "cells": cells,
            }
        )
    return {"names": [names[i] for i in ids], "rows": rows}


def _leagues(scorecard: Scorecard, lang: str, level: str = "district") -> list[dict[str, Any]]:
    if not scorecard.indices.height:
        return []
    out: list[dict[str, Any]] = []
    ids = list(dict.fromkeys(sort_indices(scorecard.indices).get_column("index_id").to_list()))
    for index_id in ids:
        table = league_table(scorecard, index_id, level=level)
        if not table.height:
            continue
        row0: Mapping[str, Any] = scorecard.indices.filter(pl.col("index_id") == index_id).row(0, named=True)
        out.append(
            {
                "slug": _slug(index_id),
                "name": pick(row0, "name", lang) or index_id,
                "rows": [
                    {
                        "rank": "—" if row["rank"] is None else str(row["rank"]),
                        "rank_sort": _sort(row["rank"]),
                        "area": pick(row, "area_name", lang) or row["area_id"],
                        "bar": _score_bar(row["value"], row["status"]),
                        "score": fmt_number(row["value"]),
                        "score_sort": _sort(row["value"]),
                        "status": row["status"],
                        "status_sort": _sort(colour_rank(row["status"]) if row["status"] in STATUSES else 99),
                    }
                    for row in table.iter_rows(named=True)
                ],
            }
        )
    return out


def render_html(scorecard: Scorecard, *, lang: str = "zh", detail_limit: int = DETAIL_LIMIT) -> str:
    """The whole report as one HTML document (UTF-8, no external resources, one inline script).

    Up to ``detail_limit`` cells every cell is a table row (value, colour and reason, changes,
    target, sparkline). Above it the report is compact: the red, orange and stale cells first with
    their reasons, then per domain the city rows in full and the other levels as matrices. Both
    end each domain with its trend charts.
    """
    compact = scorecard.cells.height > detail_limit
    cells = sort_cells(scorecard.cells)
    counts = scorecard.counts()
    title = f"{word('scorecard', lang)} {word('as_of', lang)} {scorecard.as_of.isoformat()}"
    worst = scorecard.worst_severity()
    worst_text = "" if worst is None else status_label(COLOURS[worst], lang)
    meta = f"{scorecard.grain} · {sum(counts.values())} {word('cells', lang)}"
    if worst_text:
        meta += f" · {'worst' if lang == 'en' else '最严重'}: {worst_text}"
    if scorecard.catalogue_hash:
        meta += f" · catalogue {scorecard.catalogue_hash[:12]}"
    css = report_css(compact)
    script = static_text("report.js")
    text = {k: _t(k, lang) for k in _TEXT["en"]} | {
        k: word(k, lang)
        for k in (
            "summary",
            "cells",
            "legend",
            "indices",
            "area",
            "league",
            "rank",
            "score",
            "status",
            "indicator",
        )
    }
    legend_words = LEGEND_TEXT.get(lang, LEGEND_TEXT["en"])
    context = {
        "html_lang": "zh-CN" if lang == "zh" else "en",
        "csp": Markup(content_security_policy(css, script)),
        "css": Markup(css),
        "script": Markup(script),
        "title": title,
        "meta_line": meta,
        "text": text,
        "labels": _labels(lang),
        "filter_statuses": [s for s in (*reversed(COLOURS), *NON_COLOUR_STATUSES) if counts.get(s, 0)],
        "counts": [(s, counts.get(s, 0)) for s in summary_statuses(counts)],
        "total_cells": sum(counts.values()),
        "legend": [(s, legend_words[s]) for s in (*reversed(COLOURS), *NON_COLOUR_STATUSES)],
        "indices": _indices(scorecard, lang),
        "exceptions": _exceptions(cells, lang) if compact else None,
        "exception_heads": [
            word(h, lang) for h in ("indicator", "area", "value", "change", "yoy", "explanation")
        ],
        "leagues": _leagues(scorecard, lang),
        "detail_heads": [
            word(h, lang)
            for h in ("indicator", "area", "value", "status", "change", "yoy", "target", "trend")
        ],
        "domains": _domains(scorecard, cells, lang, compact),
    }
    return environment().get_template("report.html.j2").render(context)


__all__ = [
    "DETAIL_LIMIT",
    "EXCEPTION_STATUSES",
    "LEGEND_TEXT",
    "TREND_LIMIT",
    "content_security_policy",
    "csp_hash",
    "environment",
    "render_html",
    "sparkline_svg",
]
