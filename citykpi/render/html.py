"""The self-contained HTML report: inline CSS and SVG, no scripts, no network, printable.

Every piece of text goes through :func:`html.escape`; ids and classes are built from a fixed
vocabulary or slugged. The output is deterministic (no timestamps, sorted rows).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from citykpi.catalogue.model import COLOURS, LEVELS, NON_COLOUR_STATUSES, STATUSES
from citykpi.engine.scorecard import Scorecard
from citykpi.render.format import (
    STATUS_GLYPHS,
    STATUS_HEX,
    STATUS_INK,
    domain_name,
    fmt_cell_value,
    fmt_change,
    fmt_number,
    fmt_percent,
    fmt_target,
    history_series,
    pick,
    sort_cells,
    sort_indices,
    status_label,
    status_text,
    summary_statuses,
    word,
)
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


_CSS = """
:root { --ink: #1f2328; --muted: #5f6368; --line: #d8dce0; --bg: #ffffff; --band: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1200px; padding: 24px; color: var(--ink); background: var(--bg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans CJK SC", "PingFang SC",
  "Microsoft YaHei", "WenQuanYi Zen Hei", sans-serif; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 16px 0 6px; }
.meta { color: var(--muted); margin: 0 0 16px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 12px; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: middle; }
th { background: var(--band); font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.first td { border-top: 1px solid #aab1b8; }
td.lv1 { padding-left: 22px; } td.lv2 { padding-left: 40px; }
.chip { display: inline-block; min-width: 64px; padding: 1px 8px; border-radius: 10px; font-weight: 600;
  font-size: 12px; white-space: nowrap; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
.counts { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0; padding: 0; list-style: none; }
.counts li { border: 1px solid var(--line); border-radius: 8px; padding: 6px 12px; min-width: 110px; }
.counts .n { display: block; font-size: 22px; font-weight: 700; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 16px; padding: 0; list-style: none; color: var(--muted); }
.explain { color: var(--muted); font-size: 12px; }
td.lv0, td.lv1, td.lv2 { white-space: nowrap; }
section.domain table { table-layout: fixed; }
section.domain th:nth-child(1) { width: 22%; } section.domain th:nth-child(2) { width: 10%; }
section.domain th:nth-child(3) { width: 14%; } section.domain th:nth-child(4) { width: 16%; }
section.domain th:nth-child(5), section.domain th:nth-child(6) { width: 8%; }
section.domain th:nth-child(7) { width: 12%; } section.domain th:nth-child(8) { width: 10%; }
section.domain td { overflow-wrap: anywhere; }
table.matrix .chip { min-width: 0; } table.matrix th, table.matrix td { padding: 4px 5px; }
.scroll { overflow-x: auto; max-width: 100%; }
svg { vertical-align: middle; }
.spark { color: #5f6368; max-width: 100%; height: auto; } .spark path { fill: none; stroke: currentColor; stroke-width: 1.4; }
.spark circle { fill: currentColor; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  h2 { break-after: avoid-page; }
  section.domain, section.league { break-inside: avoid-page; }
  tr { break-inside: avoid; }
  th { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""

_STATUS_CSS = "\n".join(
    [f".s-{s} {{ background: {STATUS_HEX[s]}; color: {STATUS_INK[s]}; }}" for s in STATUSES]
    + [f".k-{c} {{ color: {STATUS_HEX[c]}; }}" for c in COLOURS]
)

#: Extra style of the compact layout (exceptions tables, matrices); glyphs come from CSS so that a
#: matrix cell costs only its value, and a colourless print still shows the severity.
_COMPACT_CSS = (
    """
h3.level { margin: 18px 0 4px; }
table.exc { table-layout: fixed; }
table.exc th:nth-child(1) { width: 24%; } table.exc th:nth-child(2) { width: 12%; }
table.exc th:nth-child(3) { width: 13%; } table.exc th:nth-child(4), table.exc th:nth-child(5) { width: 9%; }
table.exc td { overflow-wrap: anywhere; }
table.exc td:nth-child(3), table.exc td:nth-child(4), table.exc td:nth-child(5) { text-align: right;
  font-variant-numeric: tabular-nums; }
table.exc td:nth-child(6) { color: var(--muted); font-size: 12px; }
section.domain table.mx { table-layout: auto; width: auto; font-size: 11px; margin: 4px 0 8px; }
section.domain table.mx th, section.domain table.mx td { width: auto; padding: 1px 4px; border: 1px solid #fff; }
section.domain table.mx thead th { vertical-align: bottom; white-space: normal; text-align: center;
  min-width: 44px; max-width: 64px; }
table.mx tbody th { position: sticky; left: 0; z-index: 1; min-width: 200px; max-width: 260px;
  white-space: normal; font-weight: 600; text-align: left; }
table.mx tbody th small { display: block; font-weight: 400; color: var(--muted); }
table.mx td { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; min-width: 36px;
  -webkit-print-color-adjust: exact; print-color-adjust: exact; }
table.mx td.g { background: #e3f2e6; color: #1d4d2a; }
.allgreen { font-size: 12px; color: var(--muted); }
@media print { table.mx { font-size: 6pt; } section.domain { break-inside: auto; } }
"""
    + "\n".join(
        f"table.mx td.{cls} {{ background: {STATUS_HEX[s]}; color: {STATUS_INK[s]}; }}"
        for s, cls in _MX_CLASS.items()
        if s != "green"
    )
    + "\n"
    + "\n".join(
        f'table.mx td.{cls}::before {{ content: "{STATUS_GLYPHS[s]}"; padding-right: 2px; }}'
        for s, cls in _MX_CLASS.items()
        if s not in ("green", "blue")
    )
    + "\n"
)

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


def _e(text: object) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-") or "x"


def _chip(status: str | None, lang: str) -> str:
    if status is None:
        return ""
    cls = status if status in STATUSES else "no_data"
    return f'<span class="chip s-{cls}">{_e(status_text(status, lang))}</span>'


def _num(x: float) -> str:
    """A coordinate with one decimal and no trailing '.0' (short path data)."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def sparkline_svg(
    values: Sequence[float | None],
    *,
    width: int = 120,
    height: int = 24,
    status: str | None = None,
    label: bool = True,
) -> str:
    """An inline SVG sparkline: one ``<path>`` (gaps for missing values), a dot on the last value.

    The colour comes from the CSS class ``k-<status>`` (grey without a status), so that a row
    costs one short path instead of repeated inline attributes. ``label`` adds the values as the
    accessible name (``aria-label``).
    """
    present = [v for v in values if v is not None and not math.isnan(v)]
    if not present:
        return ""
    low, high = min(present), max(present)
    span = (high - low) or 1.0
    n = len(values)
    step = (width - 4) / max(1, n - 1)

    def xy(i: int, v: float) -> str:
        y = height - 2 - (v - low) / span * (height - 4) if high != low else height / 2
        return f"{_num(2 + i * step)} {_num(y)}"

    path: list[str] = []
    dots: list[str] = []
    run: list[str] = []
    for i, v in enumerate([*values, None]):
        if v is None or math.isnan(v):
            if len(run) == 1:
                dots.append(run[0])
            elif run:
                path.append("M" + "L".join(run))
            run = []
            continue
        run.append(xy(i, v))
    last_i = max(i for i, v in enumerate(values) if v is not None and not math.isnan(v))
    parts = [f'<path d="{"".join(path)}"/>'] if path else []
    parts += [f'<circle cx="{d.split()[0]}" cy="{d.split()[1]}" r="1.2"/>' for d in dots]
    last = xy(last_i, values[last_i])  # type: ignore[arg-type]
    parts.append(f'<circle class="last" cx="{last.split()[0]}" cy="{last.split()[1]}" r="2"/>')
    cls = f"spark k-{status}" if status in STATUSES else "spark"
    aria = f' role="img" aria-label="{_e(", ".join(fmt_number(v) for v in values))}"' if label else ""
    return (
        f'<svg class="{cls}" width="{width}" height="{height}" viewBox="0 0 {width} {height}"{aria}>'
        + "".join(parts)
        + "</svg>"
    )


def progress_svg(fraction: float | None, expected: float | None, *, width: int = 90, height: int = 10) -> str:
    """An inline SVG progress bar with a tick at the expected progress."""
    if fraction is None or math.isnan(fraction):
        return ""
    filled = max(0.0, min(1.0, fraction)) * width
    colour = STATUS_HEX["green"] if expected is None or fraction >= expected else STATUS_HEX["orange"]
    parts = [
        f'<rect x="0" y="0" width="{width}" height="{height}" rx="2" fill="#e8eaed"/>',
        f'<rect x="0" y="0" width="{filled:.1f}" height="{height}" rx="2" fill="{colour}"/>',
    ]
    if expected is not None and not math.isnan(expected):
        ex = max(0.0, min(1.0, expected)) * width
        parts.append(
            f'<line x1="{ex:.1f}" y1="0" x2="{ex:.1f}" y2="{height}" stroke="#1f2328" stroke-width="1.5"/>'
        )
    return (
        f'<svg class="progress" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{_e(fmt_percent(fraction))}">' + "".join(parts) + "</svg>"
    )


def score_svg(score: float | None, status: str | None, *, width: int = 100, height: int = 10) -> str:
    """A horizontal bar for a 0–100 index score, in the index's colour."""
    if score is None or math.isnan(score):
        return ""
    w = max(0.0, min(100.0, score)) / 100 * width
    fill = STATUS_HEX.get(status or "", STATUS_HEX["no_data"])
    return (
        f'<svg class="score" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(fmt_number(score))}"><rect x="0" y="0" width="{width}" height="{height}" rx="2" '
        f'fill="#e8eaed"/><rect x="0" y="0" width="{w:.1f}" height="{height}" rx="2" fill="{fill}"/></svg>'
    )


def _change_td(change: float | None, change_unit: str | None, lang: str, unit: str | None = None) -> str:
    text = fmt_change(change, change_unit, lang, unit)
    # Arrows stay neutral: whether up is good depends on the indicator's direction.
    return f'<td class="num">{_e(text)}</td>'


def _level_class(level: str | None) -> str:
    return f"lv{LEVELS.index(level)}" if level in LEVELS else "lv2"


def _summary(scorecard: Scorecard, lang: str) -> list[str]:
    counts = scorecard.counts()
    out = [f'<section id="summary"><h2>{_e(word("summary", lang))}</h2><ul class="counts">']
    for s in summary_statuses(counts):
        out.append(
            f'<li class="count" data-status="{s}"><span class="n">{counts.get(s, 0)}</span>{_chip(s, lang)}</li>'
        )
    out.append(f'</ul><p class="meta">{sum(counts.values())} {_e(word("cells", lang))}</p></section>')
    return out


def _legend(lang: str) -> list[str]:
    texts = LEGEND_TEXT.get(lang, LEGEND_TEXT["en"])
    out = [f'<section id="legend"><h2>{_e(word("legend", lang))}</h2><ul class="legend">']
    for s in (*reversed(COLOURS), *NON_COLOUR_STATUSES):
        out.append(f"<li>{_chip(s, lang)} {_e(texts[s])}</li>")
    out.append("</ul></section>")
    return out


#: Above this many cells the report switches to the compact layout: exceptions first, the city
#: rows in full, the other levels as an indicator × area matrix per domain (a city-scale
#: scorecard of ~226k cells then stays around 15 MB instead of 165 MB).
DETAIL_LIMIT = 5_000

#: Statuses listed one by one, with their explanation, in the compact layout's exceptions section.
EXCEPTION_STATUSES: tuple[str, ...] = ("red", "orange", "stale")

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
    },
}


def _t(key: str, lang: str) -> str:
    return _TEXT.get(lang, _TEXT["en"]).get(key, _TEXT["en"].get(key, key))


def _name_cell(row: Mapping[str, Any], lang: str) -> str:
    name = pick(row, "name", lang) or row["indicator_id"]
    return f'<td><strong>{_e(name)}</strong><br><span class="explain">{_e(row["indicator_id"])}</span></td>'


def _detail_rows(
    group: pl.DataFrame, series: Mapping[tuple[str, str], list[float | None]], lang: str
) -> list[str]:
    """One table row per cell: value, status with its reason, changes, target, sparkline."""
    out: list[str] = []
    previous = None
    for row in group.iter_rows(named=True):
        first = row["indicator_id"] != previous
        previous = row["indicator_id"]
        value = fmt_cell_value(row, lang=lang)
        target = ""
        if row["attainment"] is not None or row["target_status"]:
            target = (
                progress_svg(row["attainment"], row["expected_progress"])
                + " "
                + _e(fmt_target(row["attainment"], row["expected_progress"], row["target_status"], lang))
            )
        spark = sparkline_svg(
            series.get((row["indicator_id"], row["area_id"]), []),
            status=row["status"] if row["severity"] is not None else None,
        )
        out.append(
            f'<tr class="cell{" first" if first else ""}" data-status="{_e(row["status"])}">'
            f"{_name_cell(row, lang) if first else '<td></td>'}"
            f'<td class="{_level_class(row["level"])}">{_e(pick(row, "area_name", lang) or row["area_id"])}</td>'
            f'<td class="num">{_e(value)}</td>'
            f"<td>{_chip(row['status'], lang)}"
            f'<br><span class="explain">{_e(row["explanation"])}</span></td>'
            f"{_change_td(row['change_previous'], row['change_unit'], lang, row.get('unit'))}"
            f"{_change_td(row['change_last_year'], row['change_unit'], lang, row.get('unit'))}"
            f"<td>{target}</td><td>{spark}</td></tr>"
        )
    return out


def _detail_table(rows: list[str], lang: str) -> str:
    heads = ["indicator", "area", "value", "status", "change", "yoy", "target", "trend"]
    return (
        "<table><thead><tr>"
        + "".join(f"<th>{_e(word(h, lang))}</th>" for h in heads)
        + "</tr></thead><tbody>"
        + "\n".join(rows)
        + "</tbody></table>"
    )


def _domain_open(domain: str, lang: str) -> str:
    return (
        f'<section class="domain" id="domain-{_slug(domain)}" data-domain="{_e(domain)}">'
        f"<h2>{_e(domain_name(domain, lang))}</h2>"
    )


def _domain_sections(scorecard: Scorecard, lang: str) -> list[str]:
    """The detailed layout: one row per cell, grouped by domain."""
    cells = sort_cells(scorecard.cells)
    series = history_series(scorecard.history)
    out: list[str] = []
    for (domain,), group in cells.group_by("domain", maintain_order=True):
        out.append(_domain_open(str(domain), lang))
        out.append(_detail_table(_detail_rows(group, series, lang), lang))
        out.append("</section>")
    return out


def _exceptions_section(cells: pl.DataFrame, lang: str) -> list[str]:
    """Compact layout: every red, orange and stale cell with its explanation, worst first."""
    listed = cells.filter(pl.col("status").is_in(list(EXCEPTION_STATUSES)))
    out = [
        f'<section id="exceptions"><h2>{_e(_t("exceptions", lang))}</h2>'
        f'<p class="meta">{_e(_t("exceptions_note", lang))}</p>'
    ]
    heads = "".join(
        f"<th>{_e(word(h, lang))}</th>"
        for h in ("indicator", "area", "value", "change", "yoy", "explanation")
    )
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
        "change_previous",
        "change_last_year",
        "change_unit",
        "explanation",
    )
    for status in EXCEPTION_STATUSES:
        group = listed.filter(pl.col("status") == status)
        if not group.height:
            continue
        out.append(
            f'<h3 id="exceptions-{status}">{_chip(status, lang)} {group.height} {_e(word("cells", lang))}</h3>'
            f'<table class="exc"><thead><tr>{heads}</tr></thead><tbody>'
        )
        previous = None
        for row in group.select(columns).iter_rows(named=True):
            first = row["indicator_id"] != previous
            previous = row["indicator_id"]
            value = fmt_cell_value(row, lang=lang)
            out.append(
                f"<tr{' class=first' if first else ''}>{_name_cell(row, lang) if first else '<td></td>'}"
                f'<td class="{_level_class(row["level"])}">{_e(pick(row, "area_name", lang) or row["area_id"])}</td>'
                f"<td>{_e(value)}</td>"
                f"<td>{_e(fmt_change(row['change_previous'], row['change_unit'], lang, row.get('unit')))}</td>"
                f"<td>{_e(fmt_change(row['change_last_year'], row['change_unit'], lang, row.get('unit')))}</td>"
                f"<td>{_e(row['explanation'])}</td></tr>"
            )
        out.append("</tbody></table>")
    if len(out) == 1:
        out.append(f"<p>0 {_e(word('cells', lang))}</p>")
    out.append("</section>")
    return out


#: A matrix cell for an area without a cell for the indicator (closing tags are optional in HTML).
_NO_CELL = "<td>"


def _matrix(group: pl.DataFrame, level: str, lang: str) -> list[str]:
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
    rows: dict[str, list[str]] = {}
    heads: dict[str, tuple[str, str]] = {}
    all_green: dict[str, bool] = {}
    columns = ("indicator_id", "area_id", "name_zh", "name_en", "unit", "value", "status", "explanation")
    for ind, area_id, name_zh, name_en, unit, value, status, explanation in group.select(columns).iter_rows():
        cells = rows.get(ind)
        if cells is None:
            cells = rows[ind] = [_NO_CELL] * len(areas)
            name = (name_zh or name_en) if lang == "zh" else (name_en or name_zh)
            heads[ind] = (name or ind, unit or "")
            all_green[ind] = True
        cls = _MX_CLASS.get(status, "nd")
        text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt_number(value)
        if status == "green":
            cells[position[area_id]] = f"<td class=g>{text}"
        else:
            all_green[ind] = False
            cells[position[area_id]] = f'<td class={cls} title="{_e(explanation or status)}">{text}'
    # an indicator green in every area (no area missing) is summarised in one line
    summarised = [ind for ind in rows if all_green[ind] and _NO_CELL not in rows[ind]]
    shown = [ind for ind in rows if ind not in set(summarised)]
    title = f"{_t(level, lang)} · {len(areas)} {_t('areas', lang)} · {len(rows)} {_t('indicators', lang)}"
    out = [f'<h3 class="level">{_e(title)}</h3><p class="explain">{_e(_t("matrix_note", lang))}</p>']
    if shown:
        out.append(
            f'<div class="scroll"><table class="mx"><thead><tr><th>{_e(word("indicator", lang))}</th>'
            + "".join(f"<th>{_e(name)}</th>" for name in areas.values())
            + "</tr></thead><tbody>"
        )
        for ind in shown:
            name, unit = heads[ind]
            out.append(
                f"<tr><th>{_e(name)}<small>{_e(ind)}{' · ' + _e(unit) if unit else ''}</small></th>"
                + "".join(rows[ind])
                + "</tr>"
            )
        out.append("</tbody></table></div>")
    if summarised:
        names = ", ".join(f"{_e(heads[ind][0])} ({_e(ind)})" for ind in summarised)
        out.append(
            f'<p class="allgreen">{_chip("green", lang)} {len(summarised)} {_e(_t("indicators", lang))} '
            f"{_e(_t('all_green', lang))}: {names}</p>"
        )
    return out


def _compact_domain_sections(scorecard: Scorecard, lang: str) -> list[str]:
    """The compact layout: per domain, the city rows in full, then one matrix per lower level."""
    cells = sort_cells(scorecard.cells)
    series = (
        history_series(
            scorecard.history.filter(
                pl.col("area_id").is_in(
                    cells.filter(pl.col("level") == LEVELS[0]).get_column("area_id").unique().to_list()
                )
            )
        )
        if scorecard.history.height
        else {}
    )
    present = set(cells.get_column("level").unique().to_list()) if cells.height else set()
    lower = [lv for lv in LEVELS[1:] if lv in present] + sorted(
        str(lv) for lv in present - set(LEVELS) if lv is not None
    )
    out: list[str] = []
    for (domain,), group in cells.group_by("domain", maintain_order=True):
        out.append(_domain_open(str(domain), lang))
        top = group.filter(pl.col("level") == LEVELS[0])
        if top.height:
            out.append(f'<h3 class="level">{_e(_t(LEVELS[0], lang))}</h3>')
            out.append(_detail_table(_detail_rows(top, series, lang), lang))
        for level in lower:
            part = group.filter(pl.col("level") == level)
            if part.height:
                out.extend(_matrix(part, level, lang))
        out.append("</section>")
    return out


def _indices_section(scorecard: Scorecard, lang: str) -> list[str]:
    """A matrix: one row per area (city first), one column per index (score bar, score, colour)."""
    indices = sort_indices(scorecard.indices)
    if not indices.height:
        return []
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
    out = [
        f'<section id="indices"><h2>{_e(word("indices", lang))}</h2><div class="scroll"><table class="matrix"><thead><tr>'
    ]
    out.append(f"<th>{_e(word('area', lang))}</th>" + "".join(f"<th>{_e(names[i])}</th>" for i in ids))
    out.append("</tr></thead><tbody>")
    for area_id in order:
        head = area_rows[area_id]
        out.append(
            f'<tr class="index-area"><td class="{_level_class(head["level"])}">'
            f"{_e(pick(head, 'area_name', lang) or area_id)}</td>"
        )
        for index_id in ids:
            cell = by_area[area_id].get(index_id)
            if cell is None:
                out.append("<td></td>")
                continue
            score = fmt_number(cell["score"]) + (f" ({word('capped', lang)})" if cell["capped"] else "")
            title = (
                f"{word('coverage', lang)} {fmt_percent(cell['coverage'])} "
                f"({cell['components_used'] or 0}/{cell['components_total'] or 0})"
            )
            if cell["rank"] is not None:
                title += f" · {word('rank', lang)} {cell['rank']}"
            out.append(
                f'<td class="num" data-status="{_e(cell["status"])}" title="{_e(title)}">'
                f"{score_svg(cell['score'], cell['status'], width=60)} {_e(score)} {_chip(cell['status'], lang)}</td>"
            )
        out.append("</tr>")
    out.append("</tbody></table></div></section>")
    return out


def _league_sections(scorecard: Scorecard, lang: str, level: str = "district") -> list[str]:
    if not scorecard.indices.height:
        return []
    out: list[str] = []
    ids = list(dict.fromkeys(sort_indices(scorecard.indices).get_column("index_id").to_list()))
    title = word("league", lang)
    for index_id in ids:
        table = league_table(scorecard, index_id, level=level)
        if not table.height:
            continue
        row0: Mapping[str, Any] = scorecard.indices.filter(pl.col("index_id") == index_id).row(0, named=True)
        name = pick(row0, "name", lang) or index_id
        out.append(
            f'<section class="league" id="league-{_slug(index_id)}"><h3>{_e(title)} · {_e(name)}</h3><table><thead><tr>'
            f"<th>{_e(word('rank', lang))}</th><th>{_e(word('area', lang))}</th>"
            f"<th>{_e(word('score', lang))}</th><th>{_e(word('status', lang))}</th></tr></thead><tbody>"
        )
        for row in table.iter_rows(named=True):
            out.append(
                f'<tr><td class="num">{"—" if row["rank"] is None else row["rank"]}</td><td>{_e(pick(row, "area_name", lang) or row["area_id"])}</td>'
                f'<td class="num">{score_svg(row["value"], row["status"])} {_e(fmt_number(row["value"]))}</td>'
                f"<td>{_chip(row['status'], lang)}</td></tr>"
            )
        out.append("</tbody></table></section>")
    return out


def render_html(scorecard: Scorecard, *, lang: str = "zh", detail_limit: int = DETAIL_LIMIT) -> str:
    """The whole report as one HTML document (UTF-8, no external resources, no scripts).

    Up to ``detail_limit`` cells every cell is a table row (value, colour and reason, changes,
    target, sparkline). Above it the report is compact: the red, orange and stale cells first with
    their reasons, then per domain the city rows in full and the other levels as matrices.
    """
    compact = scorecard.cells.height > detail_limit
    title = f"{word('scorecard', lang)} {word('as_of', lang)} {scorecard.label}"
    worst = scorecard.worst_severity()
    worst_text = "" if worst is None else status_label(COLOURS[worst], lang)
    meta = f"{scorecard.grain} · {sum(scorecard.counts().values())} {word('cells', lang)}"
    if worst_text:
        meta += f" · {'worst' if lang == 'en' else '最严重'}: {worst_text}"
    if scorecard.catalogue_hash:
        meta += f" · catalogue {scorecard.catalogue_hash[:12]}"
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{"zh-CN" if lang == "zh" else "en"}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}{_STATUS_CSS}\n{_COMPACT_CSS if compact else ''}</style>",
        "</head>",
        "<body>",
        f'<header><h1>{_e(title)}</h1><p class="meta">{_e(meta)}</p></header>',
        "<main>",
        *_summary(scorecard, lang),
        *_legend(lang),
        *_indices_section(scorecard, lang),
        *(_exceptions_section(sort_cells(scorecard.cells), lang) if compact else []),
        *_league_sections(scorecard, lang),
        *(_compact_domain_sections(scorecard, lang) if compact else _domain_sections(scorecard, lang)),
        "</main>",
        "<footer>citykpi · citykpi.scorecard v1</footer>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"
