"""Plain-text formatting shared by every renderer: values, changes, sparklines, status labels.

No Rich, no HTML: strings only, so the terminal, Markdown, HTML and spreadsheet outputs say the
same thing in the same words.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from citykpi.catalogue.model import LEVELS, STATUSES
from citykpi.engine.scorecard import colour_rank

#: Characters that would steer a terminal instead of being shown: C0 controls (tab and newline are
#: kept only where a text may span lines), DEL, C1 controls (0x80-0x9f, CSI among them), the line and
#: paragraph separators and the bidirectional embeddings, overrides and isolates ("Trojan Source").
_UNSAFE_MULTILINE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(value: object, *, one_line: bool = False) -> str:
    """``value`` as text that a terminal shows and never obeys: every control character made visible.

    ESC becomes the four characters ``\\x1b`` (so ``\\x1b[2J`` is printed, not executed), BEL ``\\x07``,
    C1 controls ``\\x9b``, bidi overrides ``\\u202e``; newline and tab stay unless ``one_line``. Anything
    that came from data or the catalogue goes through here before it reaches the terminal (the Rich
    views wrap the result in ``rich.text.Text``, so ``[bold]`` markup in it stays literal, too).
    ``None`` is the empty string.
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return (_UNSAFE_ONE_LINE if one_line else _UNSAFE_MULTILINE).sub(_visible, text)


#: Text label of every status, per language: the colour is never the only signal.
STATUS_LABELS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "green": "GREEN",
        "blue": "BLUE",
        "yellow": "YELLOW",
        "orange": "ORANGE",
        "red": "RED",
        "stale": "STALE",
        "unscored": "UNSCORED",
        "no_data": "NO DATA",
        "not_applicable": "N/A",
    },
    "zh": {
        "green": "绿",
        "blue": "蓝",
        "yellow": "黄",
        "orange": "橙",
        "red": "红",
        "stale": "过期",
        "unscored": "未评分",
        "no_data": "无数据",
        "not_applicable": "不适用",
    },
}

#: A glyph per status, so that a colourless print still shows the severity at a glance.
STATUS_GLYPHS: Mapping[str, str] = {
    "green": "●",
    "blue": "●",
    "yellow": "▲",
    "orange": "◆",
    "red": "■",
    "stale": "○",
    "unscored": "◇",
    "no_data": "·",
    "not_applicable": "-",
}

#: Hex colours used by HTML and xlsx (fill) for each status.
STATUS_HEX: Mapping[str, str] = {
    "green": "#2e9d4b",
    "blue": "#2f6fd0",
    "yellow": "#e8c21c",
    "orange": "#ef7d12",
    "red": "#d7263d",
    "stale": "#9aa0a6",
    "unscored": "#e3e6ea",
    "no_data": "#d0d3d6",
    "not_applicable": "#eceff1",
}

#: Text colour that reads on each status fill.
STATUS_INK: Mapping[str, str] = {
    "green": "#ffffff",
    "blue": "#ffffff",
    "yellow": "#1a1a1a",
    "orange": "#1a1a1a",
    "red": "#ffffff",
    "stale": "#1a1a1a",
    "unscored": "#1a1a1a",
    "no_data": "#1a1a1a",
    "not_applicable": "#1a1a1a",
}

SPARK_CHARS = "▁▂▃▄▅▆▇█"

#: Words used in headings, per language.
WORDS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "scorecard": "Scorecard",
        "as_of": "as of",
        "indicator": "Indicator",
        "area": "Area",
        "value": "Value",
        "status": "Status",
        "change": "Change",
        "yoy": "YoY",
        "base": "vs base",
        "target": "Target",
        "trend": "Trend",
        "outlook": "Outlook",
        "indices": "Indices",
        "index": "Index",
        "score": "Score",
        "coverage": "Coverage",
        "rank": "Rank",
        "summary": "Summary",
        "cells": "cells",
        "legend": "Legend",
        "league": "League table",
        "explanation": "Explanation",
        "more": "more",
        "domain": "Domain",
        "level": "Level",
        "capped": "capped",
        "streak": "Streak",
        "new": "new",
        "since": "since",
        "interval": "95% interval",
        "funnel": "Funnel",
        "rank_range": "Rank range",
        "pending": "pending",
        "firing": "firing",
        "resolved": "resolved",
        "cancelled": "cancelled",
        "peak": "peak",
        "episodes": "episodes",
        "started": "Started",
        "fired": "Fired",
        "ended": "Ended",
        "duration": "Duration",
        "worst": "Worst",
        "state": "State",
        "day_ago": "vs yesterday",
    },
    "zh": {
        "scorecard": "计分卡",
        "as_of": "截至",
        "indicator": "指标",
        "area": "区域",
        "value": "数值",
        "status": "状态",
        "change": "环比",
        "yoy": "同比",
        "base": "较基期",
        "target": "目标",
        "trend": "趋势",
        "outlook": "预警",
        "indices": "综合指数",
        "index": "指数",
        "score": "得分",
        "coverage": "覆盖率",
        "rank": "排名",
        "summary": "汇总",
        "cells": "项",
        "legend": "图例",
        "league": "排行榜",
        "explanation": "说明",
        "more": "更多",
        "domain": "领域",
        "level": "层级",
        "capped": "封顶",
        "streak": "持续",
        "new": "新增",
        "since": "自",
        "interval": "95%区间",
        "funnel": "漏斗",
        "rank_range": "名次区间",
        "pending": "待定",
        "firing": "告警中",
        "resolved": "已解除",
        "cancelled": "已撤销",
        "peak": "峰值",
        "episodes": "次告警",
        "started": "开始",
        "fired": "触发",
        "ended": "结束",
        "duration": "历时",
        "worst": "最高",
        "state": "阶段",
        "day_ago": "较昨日",
    },
}


def fmt_minutes(minutes: float | None, lang: str = "zh") -> str:
    """A duration in minutes as people read it: ``40 min``, ``1 h 40 min``, ``2 d 3 h`` (zh: 分钟, 小时, 天)."""
    if minutes is None:
        return ""
    m = round(minutes)
    days, rest = divmod(m, 1440)
    hours, mins = divmod(rest, 60)
    units = ("天", "小时", "分钟") if lang == "zh" else ("d", "h", "min")
    if days:
        parts = [(days, units[0]), (hours, units[1])]
    elif hours:
        parts = [(hours, units[1]), (mins, units[2])]
    else:
        parts = [(mins, units[2])]
    return " ".join(f"{n} {u}" for n, u in parts if n or u == parts[0][1])


def fmt_instant(t: datetime | None, *, day: date | None = None) -> str:
    """A local time stamp: ``14:05`` on the ``day`` given, else ``2025-12-31 14:05``; '' for None."""
    if t is None:
        return ""
    if day is not None and t.date() == day:
        return t.strftime("%H:%M")
    return t.strftime("%Y-%m-%d %H:%M")


#: Display names of the catalogue's domains; an unknown domain is shown by its id.
DOMAIN_NAMES: Mapping[str, tuple[str, str]] = {
    "bridges_tunnels": ("桥梁隧道", "Bridges and tunnels"),
    "case_handling": ("事件处置", "Case handling"),
    "digital_government": ("数字政府", "Digital government"),
    "drainage": ("排水防涝", "Drainage"),
    "economy": ("经济发展", "Economy"),
    "emergency": ("应急管理", "Emergency management"),
    "environment": ("生态环境", "Environment"),
    "gas": ("燃气", "Gas"),
    "livelihood": ("民生服务", "Livelihood services"),
    "population": ("人口", "Population"),
    "power": ("电力", "Power"),
    "public_safety": ("公共安全", "Public safety"),
    "telecom": ("通信", "Telecom"),
    "transport": ("交通", "Transport"),
    "urban_renewal": ("城市更新", "Urban renewal"),
    "water_supply": ("供水", "Water supply"),
}


def domain_name(domain: str, lang: str) -> str:
    """'生态环境 (environment)' / 'Environment' — the id is kept visible in Chinese output."""
    names = DOMAIN_NAMES.get(domain)
    if names is None:
        return domain
    return f"{names[0]} · {domain}" if lang == "zh" else names[1]


def word(key: str, lang: str) -> str:
    """A heading word in ``lang`` (falls back to English)."""
    return WORDS.get(lang, WORDS["en"]).get(key, WORDS["en"][key])


def status_label(status: str | None, lang: str = "en") -> str:
    """The text label of a status, e.g. 'RED' or '红'."""
    if status is None:
        return ""
    return STATUS_LABELS.get(lang, STATUS_LABELS["en"]).get(status, status)


def status_text(status: str | None, lang: str = "en") -> str:
    """Glyph and label, e.g. '■ RED' — readable without colour."""
    if status is None:
        return ""
    return f"{STATUS_GLYPHS.get(status, '?')} {status_label(status, lang)}"


def pick(row: Mapping[str, object], base: str, lang: str) -> str:
    """``row[base_zh]`` or ``row[base_en]`` by language, falling back to the other, then to ''."""
    first, second = (f"{base}_zh", f"{base}_en") if lang == "zh" else (f"{base}_en", f"{base}_zh")
    for key in (first, second):
        val = row.get(key)
        if isinstance(val, str) and val:
            return val
    return ""


def fmt_number(value: float | None, decimals: int = 1) -> str:
    """A number with thousands separators; '—' for missing values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if float(value).is_integer() and abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.{decimals}f}"


def fmt_cut(value: float | None) -> str:
    """A cut point without needless decimals: 50, 0.3, 1,200."""
    if value is None:
        return "…"
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.6g}"


def fmt_duration(delta: timedelta) -> str:
    """A staleness window as '2d', '36h', '1w', '90m'."""
    minutes = int(delta.total_seconds() // 60)
    if minutes % (7 * 24 * 60) == 0 and minutes:
        return f"{minutes // (7 * 24 * 60)}w"
    if minutes % (24 * 60) == 0 and minutes:
        return f"{minutes // (24 * 60)}d"
    if minutes % 60 == 0 and minutes:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def fmt_value(value: float | None, unit: str | None, decimals: int = 1) -> str:
    """A value with its unit: '12.3 µg/m³', '98.5%', '—' when missing."""
    text = fmt_number(value, decimals)
    if text == "—" or not unit:
        return text
    if unit in ("%", "‰"):
        return f"{text}{unit}"
    return f"{text} {unit}"


def change_suffix(change_unit: str | None, unit: str | None = None) -> str:
    """What a change is counted in: '%' (relative), ' pp' (percentage points, for a unit of '%'),
    or the indicator's own unit for an absolute change of any other unit (' per 10k', ' ‰')."""
    if change_unit != "points":
        return "%"
    if unit is None or unit == "%":
        return " pp"
    if unit == "score":
        return " pts"
    return f" {unit}"


def fmt_change(
    change: float | None, change_unit: str | None, lang: str = "en", unit: str | None = None
) -> str:
    """A change with an arrow and a sign: '▲ +3.2%', '▼ -1.5 pp' (points of a percentage),
    '▲ +1.6 per 10k' (points of another rate), '= 0.0%'; '' when unknown."""
    if change is None or (isinstance(change, float) and math.isnan(change)):
        return ""
    suffix = change_suffix(change_unit, unit)
    if abs(change) < 0.05:
        return f"= 0.0{suffix}"
    arrow = "▲" if change > 0 else "▼"
    return f"{arrow} {change:+,.1f}{suffix}"


#: How many digits past whole percents a fraction may add to read differently from what it is judged
#: against (as the engine's explanations do beside a cut).
PERCENT_EXTRA_DIGITS = 8


def percent_digits(fraction: float, beside: Sequence[float | None] = (), *, least: int = 0) -> int:
    """The decimals that print ``fraction`` as a percentage reading differently from each fraction in
    ``beside`` that it differs from — from ``least``, up to :data:`PERCENT_EXTRA_DIGITS` more — so that
    a progress of 0.998 against a goal of 1 reads '99.8%', never '100%' beside "missed"."""
    value = fraction * 100
    others = [b * 100 for b in beside if b is not None and not math.isnan(b) and b != fraction]
    for k in range(least, least + PERCENT_EXTRA_DIGITS + 1):
        if all(f"{value:.{k}f}" != f"{o:.{k}f}" for o in others):
            return k
    return least + PERCENT_EXTRA_DIGITS


def fmt_percent(fraction: float | None) -> str:
    """0.873 → '87%'; '—' when missing (target progress: :func:`fmt_progress`)."""
    return _percent(fraction, 0)


def _percent(fraction: float | None, digits: int) -> str:
    """A fraction as a percentage with ``digits`` decimals; '—' when missing."""
    if fraction is None or (isinstance(fraction, float) and math.isnan(fraction)):
        return "—"
    return f"{fraction * 100:.{digits}f}%"


def progress_digits(
    attainment: float | None, expected: float | None, target_status: str | None, *, least: int = 0
) -> tuple[int, int]:
    """Decimals for a target's progress and its expected progress: ``least`` (whole percents), or as
    many more as it takes for neither to read as a mark it did not reach — the goal (100 %) unless the
    target is achieved, and, when behind, each other — so that 0.998 of a goal due now reads
    '99.8% (exp. 100%) missed', never '100% (exp. 100%) missed'. A progress past a mark it reached
    keeps its digits (1.0002 achieved: '100%')."""
    goal: tuple[float | None, ...] = () if target_status in (None, "achieved") else (1.0,)
    behind = target_status == "behind"
    digits = [least, least]
    for n, (x, other) in enumerate(((attainment, expected), (expected, attainment))):
        if x is None or math.isnan(x):
            continue
        # the expected progress has reached the goal when the target is missed: it reads 100 % rightly
        marks = (
            *(goal if n == 0 or target_status in ("behind", "on_track") else ()),
            *((other,) if behind else ()),
        )
        digits[n] = percent_digits(x, marks, least=least)
    return digits[0], digits[1]


def fmt_progress(attainment: float | None, expected: float | None, target_status: str | None) -> str:
    """A target's progress as a percentage with the digits :func:`progress_digits` gives it."""
    return _percent(attainment, progress_digits(attainment, expected, target_status)[0])


TARGET_STATUS_LABELS: Mapping[str, Mapping[str, str]] = {
    "en": {"on_track": "on track", "behind": "behind", "achieved": "achieved", "missed": "missed"},
    "zh": {"on_track": "进度正常", "behind": "滞后", "achieved": "已完成", "missed": "未完成"},
}


def fmt_target(
    attainment: float | None,
    expected: float | None,
    target_status: str | None,
    lang: str = "en",
) -> str:
    """Target progress: '87% (exp. 90%) behind', '99.8% (exp. 100%) missed'; '' when the indicator has
    no target."""
    if attainment is None and target_status is None:
        return ""
    own, exp = progress_digits(attainment, expected, target_status)
    parts = [_percent(attainment, own)]
    if expected is not None:
        parts.append(f"({'exp.' if lang == 'en' else '应达'} {_percent(expected, exp)})")
    if target_status:
        parts.append(
            TARGET_STATUS_LABELS.get(lang, TARGET_STATUS_LABELS["en"]).get(target_status, target_status)
        )
    return " ".join(parts)


def progress_bar(fraction: float | None, width: int = 10) -> str:
    """A text bar for a 0–1 fraction: '███████░░░'; over 100% is shown full."""
    if fraction is None or math.isnan(fraction):
        return "░" * width
    filled = max(0, min(width, round(fraction * width)))
    return "█" * filled + "░" * (width - filled)


def sparkline(values: Sequence[float | None]) -> str:
    """A sparkline '▁▃▅█' of a series; missing values are spaces, a flat series is mid-height."""
    present = [v for v in values if v is not None and not math.isnan(v)]
    if not present:
        return ""
    low, high = min(present), max(present)
    span = high - low
    out = []
    for v in values:
        if v is None or math.isnan(v):
            out.append(" ")
        elif span == 0:
            out.append(SPARK_CHARS[3])
        else:
            out.append(SPARK_CHARS[min(7, int((v - low) / span * 7 + 0.5))])
    return "".join(out)


def history_series(history: pl.DataFrame, points: int = 14) -> dict[tuple[str, str], list[float | None]]:
    """The last ``points`` values per (indicator_id, area_id), oldest first."""
    if not history.height:
        return {}
    out: dict[tuple[str, str], list[float | None]] = {}
    for row in sort_history(history).iter_rows(named=True):
        out.setdefault((row["indicator_id"], row["area_id"]), []).append(row["value"])
    return {k: v[-points:] for k, v in out.items()}


def level_rank(level: str | None) -> int:
    """Sort key of a level: city first."""
    return LEVELS.index(level) if level in LEVELS else len(LEVELS)


def level_order() -> pl.Expr:
    """:func:`level_rank` of the ``level`` column, as a Polars sort key."""
    return pl.col("level").replace_strict(
        list(LEVELS), list(range(len(LEVELS))), default=len(LEVELS), return_dtype=pl.Int32
    )


def _cell_keys() -> list[pl.Expr]:
    return [pl.col("domain"), pl.col("indicator_id"), level_order(), pl.col("area_id")]


def in_cell_order(cells: pl.DataFrame) -> bool:
    """Whether ``cells`` already are in :func:`sort_cells`' order: one pass over the four keys, each
    row against the one before (no key may be null, as sorting puts nulls last)."""
    keys = cells.select([k.alias(f"k{n}") for n, k in enumerate(_cell_keys())])
    if sum(keys.null_count().row(0)):
        return False
    ordered: pl.Expr = pl.lit(True)
    for name in reversed(keys.columns):  # lexicographic: a key decides unless it ties
        key, before = pl.col(name), pl.col(name).shift(1)
        ordered = (key > before) | ((key == before) & ordered)
    return bool(keys.select(ordered.fill_null(True).all()).item())


def sort_cells(cells: pl.DataFrame) -> pl.DataFrame:
    """Cells in the canonical, deterministic order: domain, indicator, level, area.

    The engine returns them in it; they are then returned as they are, not copied by a sort (an
    hour of the city is 4.8 M cells, 1.2 GB)."""
    if not cells.height or in_cell_order(cells):
        return cells
    return cells.sort(_cell_keys(), nulls_last=True)


def sort_history(history: pl.DataFrame) -> pl.DataFrame:
    """History rows in the canonical order: indicator, area, period (the engine leaves them unordered)."""
    return history.sort("indicator_id", "area_id", "period_start") if history.height else history


def sort_indices(indices: pl.DataFrame) -> pl.DataFrame:
    """Indices in the canonical order: index, level, rank, area."""
    if not indices.height:
        return indices
    return indices.sort(
        [pl.col("index_id"), level_order(), pl.col("rank"), pl.col("area_id")], nulls_last=True
    )


@dataclass(frozen=True)
class Digits:
    """How many decimals a value is shown with in a table.

    ``override`` (the ``--decimals`` option) wins; otherwise the indicator's ``decimals`` from the
    catalogue (``declared``); otherwise one. Files (csv, json, parquet…) always keep full precision.
    """

    override: int | None = None
    declared: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of_catalogue(cls, indicators: Iterable[Any], override: int | None = None) -> Digits:
        """Digits from the catalogue's indicators (anything with ``id`` and ``decimals``)."""
        return cls(override, {ind.id: int(ind.decimals) for ind in indicators})

    def of(self, indicator_id: str | None = None) -> int:
        """Decimals for a value of ``indicator_id`` (None: a score or a value of no indicator)."""
        if self.override is not None:
            return self.override
        return self.declared.get(indicator_id, 1) if indicator_id is not None else 1


def cell_value_parts(
    row: Mapping[str, Any], digits: Digits | None = None, lang: str = "zh"
) -> tuple[str, str | None]:
    """A cell's value with its unit, and the label its scale gives the band in ``lang`` (None when
    the indicator has no own scale or the cell has no value)."""
    decimals = (digits or Digits()).of(row.get("indicator_id"))
    value = fmt_value(row["value"], row["unit"], decimals)
    if row.get("value") is None:
        return value, None
    label = (row.get("band_label_en") if lang == "en" else None) or row.get("band_label")
    return value, label or None


def fmt_cell_value(row: Mapping[str, Any], digits: Digits | None = None, lang: str = "zh") -> str:
    """A cell's value with its unit and, when its scale names the band, the band's label in ``lang``:
    '128 index 轻度污染', '128 index Lightly polluted'. A cell without a value has no band."""
    value, label = cell_value_parts(row, digits, lang)
    return f"{value} {label}" if label else value


def status_order(statuses: Iterable[str]) -> list[str]:
    """Statuses sorted worst first (red … green, stale, unscored, no_data, not_applicable)."""
    return sorted(statuses, key=colour_rank)


#: Statuses a summary names only when some cell has them (most catalogues score everything).
QUIET_STATUSES: tuple[str, ...] = ("unscored",)


def summary_statuses(counts: Mapping[str, int]) -> list[str]:
    """The statuses a summary line lists, worst first: every one, and those of QUIET_STATUSES when present."""
    return [s for s in status_order(STATUSES) if s not in QUIET_STATUSES or counts.get(s, 0)]


def counts_line(counts: Mapping[str, int], lang: str = "en") -> str:
    """'3 RED · 1 ORANGE · … (14 cells)' — every status (unscored only when present), worst first."""
    parts = [f"{counts.get(s, 0)} {status_label(s, lang)}" for s in summary_statuses(counts)]
    total = sum(counts.values())
    return " · ".join(parts) + f" ({total} {word('cells', lang)})"


def iso(d: date | None) -> str:
    """ISO date or ''."""
    return d.isoformat() if d else ""


def fmt_timestamp(t: datetime | None) -> str:
    """A timestamp to the minute, '2026-11-25 18:29', or ''."""
    return t.isoformat(sep=" ", timespec="minutes") if t else ""
