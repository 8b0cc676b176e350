"""Terminal rendering with Rich — the ONLY module of citykpi that imports Rich.

Every function takes a ``Console`` and a result object (a Scorecard, a Polars frame, a model object)
and prints; none computes. Colour is never the only signal: each status also has a glyph and a text
label, so the output reads the same with ``NO_COLOR`` set or when piped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import polars as pl
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from citykpi.catalogue.model import SEVERITY, STATUSES, BandSet, Indicator
from citykpi.engine.scorecard import Scorecard
from citykpi.render.format import (
    domain_name,
    fmt_cell_value,
    fmt_change,
    fmt_cut,
    fmt_duration,
    fmt_number,
    fmt_percent,
    fmt_target,
    fmt_timestamp,
    fmt_value,
    history_series,
    iso,
    level_order,
    level_rank,
    pick,
    progress_bar,
    sort_cells,
    sort_indices,
    sparkline,
    status_label,
    status_order,
    status_text,
    word,
)

#: Rich style of each status (the text label is printed too, so colour is redundant).
STATUS_STYLES: Mapping[str, str] = {
    "green": "bold green",
    "blue": "bold blue",
    "yellow": "bold yellow",
    "orange": "bold dark_orange",
    "red": "bold red",
    "stale": "dim",
    "no_data": "dim",
    "not_applicable": "dim",
}

CHANGE_LABELS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "newly_red": "newly red",
        "recovered": "recovered",
        "worse": "worse",
        "better": "better",
        "new": "new",
        "gone": "gone",
        "changed": "changed",
    },
    "zh": {
        "newly_red": "新转红",
        "recovered": "已恢复",
        "worse": "变差",
        "better": "好转",
        "new": "新增",
        "gone": "移除",
        "changed": "变化",
    },
}
_CHANGE_ORDER = ("newly_red", "recovered", "worse", "better", "new", "gone", "changed")


def make_console(*, stderr: bool = False, width: int | None = None) -> Console:
    """A Console for the CLI (Rich honours NO_COLOR and plain output when not a terminal)."""
    return Console(stderr=stderr, width=width, highlight=False, soft_wrap=False)


def status_cell(status: str | None, lang: str = "en") -> Text:
    """A status as coloured glyph + label (e.g. '■ RED')."""
    if status is None:
        return Text("")
    return Text(status_text(status, lang), style=STATUS_STYLES.get(status, ""))


def _indent(level: str | None) -> str:
    return "  " * min(level_rank(level), 2)


def _heading(scorecard: Scorecard, lang: str) -> str:
    parts = [
        f"{word('scorecard', lang)} {word('as_of', lang)} {scorecard.as_of.isoformat()}",
        scorecard.grain,
    ]
    if scorecard.run_id is not None:
        parts.append(f"run {scorecard.run_id}")
    return " · ".join(parts)


def summary_text(counts: Mapping[str, int], lang: str = "en") -> Text:
    """'Summary: 3 ■ RED · 1 ◆ ORANGE · …' with every status coloured."""
    text = Text(f"{word('summary', lang)}: ", style="bold")
    for i, status in enumerate(status_order(STATUSES)):
        if i:
            text.append(" · ")
        text.append(f"{counts.get(status, 0)} {status_text(status, lang)}", style=STATUS_STYLES[status])
    text.append(f"  ({sum(counts.values())} {word('cells', lang)})")
    return text


def _cell_row(
    row: Mapping[str, Any],
    series: Mapping[tuple[str, str], list[float | None]],
    lang: str,
    *,
    first_col: str,
    explain: bool,
) -> list[Text | str]:
    trend = sparkline(series.get((row["indicator_id"], row["area_id"]), []))
    value = fmt_cell_value(row)
    cells: list[Text | str] = [
        first_col,
        _indent(row["level"]) + (pick(row, "area_name", lang) or row["area_id"]),
        value,
        status_cell(row["status"], lang),
        fmt_change(row["change_previous"], row["change_unit"], lang),
        fmt_change(row["change_last_year"], row["change_unit"], lang),
        fmt_target(row["attainment"], row["expected_progress"], row["target_status"], lang),
        trend,
    ]
    if explain:
        cells.append(Text(row.get("explanation") or "", style="dim"))
    return cells


#: Columns of a cells table: (word, Rich column options, always shown, room it needs when narrow).
#: ``room`` None: as wide as its widest cell (never wrapped); a number: it may wrap down to that.
_CELL_COLUMNS: tuple[tuple[str, dict[str, Any], bool, int | None], ...] = (
    ("indicator", {"overflow": "fold", "min_width": 8}, True, 22),
    ("area", {"overflow": "fold", "min_width": 6}, True, 10),
    ("value", {"justify": "right", "no_wrap": True}, True, None),
    ("status", {"no_wrap": True}, True, None),
    ("change", {"justify": "right", "no_wrap": True}, False, None),
    ("yoy", {"justify": "right", "no_wrap": True}, False, None),
    ("target", {}, False, 12),
    ("trend", {"no_wrap": True}, False, None),
    ("explanation", {"overflow": "fold", "min_width": 12}, False, 24),
)
#: The optional columns a narrow terminal gives up first, so the names keep room to be read.
_DROP_WHEN_NARROW = ("trend", "yoy", "target", "change")


def _fit_columns(
    keep: list[int], headers: list[str], rows: list[list[Text | str]], width: int | None
) -> list[int]:
    """Leave out optional columns, least useful first, until the rest fit ``width`` cells."""
    if width is None:
        return keep

    def room(i: int) -> int:
        natural = max([cell_len(str(r[i])) for r in rows if i < len(r)] + [cell_len(headers[i])])
        wanted = _CELL_COLUMNS[i][3]
        return natural if wanted is None else min(natural, wanted)

    kept = list(keep)
    for name in _DROP_WHEN_NARROW:
        if sum(room(i) for i in kept) + 2 * (len(kept) - 1) <= width:
            break
        kept = [i for i in kept if _CELL_COLUMNS[i][0] != name]
    return kept


def _cells_table(
    title: str,
    lang: str,
    rows: list[list[Text | str]],
    *,
    explain: bool,
    first: str,
    second: str = "area",
    width: int | None = None,
) -> Table:
    """A cells table; optional columns (changes, target, trend) that are empty in every row are left out,
    and so are the least useful ones when the table would not fit ``width`` with readable names."""
    specs = list(_CELL_COLUMNS if explain else _CELL_COLUMNS[:-1])
    headers = [word(first, lang), word(second, lang), *(word(c[0], lang) for c in specs[2:])]
    keep = [
        i
        for i, (_, _, always, _) in enumerate(specs)
        if always or any(str(r[i]).strip() for r in rows if i < len(r))
    ]
    keep = _fit_columns(keep, headers, rows, width)
    table = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for i in keep:
        table.add_column(headers[i], **specs[i][1])
    for r in rows:
        table.add_row(*[r[i] for i in keep])
    return table


def print_scorecard(
    console: Console,
    scorecard: Scorecard,
    *,
    lang: str = "zh",
    group_by: str = "domain",
    limit: int | None = None,
    explain: bool = False,
) -> None:
    """Print a scorecard: one table per domain (or area), the colour summary and the indices.

    ``limit`` caps the rows shown per table (the rest are counted); ``explain`` adds the one-line
    explanation of each colour.
    """
    if group_by not in ("domain", "area"):
        raise ValueError(f"group_by must be 'domain' or 'area', not {group_by!r}")
    console.rule(Text(_heading(scorecard, lang), style="bold"), align="left")
    cells = sort_cells(scorecard.cells)
    series = history_series(scorecard.history)
    if group_by == "domain":
        groups = [(domain_name(str(k[0]), lang), g) for k, g in cells.group_by("domain", maintain_order=True)]
    else:
        order = cells.with_columns(level_order().alias("__lv")).sort("__lv", "area_id")
        groups = []
        for (area_id,), g in order.group_by("area_id", maintain_order=True):
            name = pick(g.row(0, named=True), "area_name", lang) or str(area_id)
            groups.append((name, sort_cells(g.drop("__lv"))))
    if not groups:
        console.print(Text("(no cells)", style="dim"))
    for title, group in groups:
        second = "area" if group_by == "domain" else "domain"
        rows = group.rows(named=True)
        shown = rows if limit is None else rows[:limit]
        previous_id = None
        lines: list[list[Text | str]] = []
        for row in shown:
            if group_by == "domain":
                name = pick(row, "name", lang) or row["indicator_id"]
                first = name if row["indicator_id"] != previous_id else ""
                previous_id = row["indicator_id"]
                values = _cell_row(row, series, lang, first_col=first, explain=explain)
            else:
                values = _cell_row(row, series, lang, first_col=pick(row, "name", lang), explain=explain)
                values[1] = row["domain"]
            lines.append(values)
        table = _cells_table(
            title, lang, lines, explain=explain, first="indicator", second=second, width=console.width
        )
        console.print(table)
        if len(rows) > len(shown):
            console.print(Text(f"  … {len(rows) - len(shown)} {word('more', lang)}", style="dim"))
    console.print(summary_text(scorecard.counts(), lang))
    if scorecard.indices.height:
        console.print(indices_table(scorecard.indices, lang))


def indices_table(indices: pl.DataFrame, lang: str = "zh") -> Table:
    """The composite indices: score, colour, coverage, rank."""
    table = Table(
        title=word("indices", lang),
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column(word("index", lang))
    table.add_column(word("area", lang))
    table.add_column(word("score", lang), justify="right")
    table.add_column(word("status", lang), no_wrap=True)
    table.add_column(word("coverage", lang), justify="right")
    table.add_column(word("rank", lang), justify="right")
    previous_id = None
    for row in sort_indices(indices).iter_rows(named=True):
        name = pick(row, "name", lang) or row["index_id"]
        score = fmt_number(row["score"])
        if row.get("capped"):
            score += f" ({word('capped', lang)})"
        table.add_row(
            name if row["index_id"] != previous_id else "",
            _indent(row["level"]) + (pick(row, "area_name", lang) or row["area_id"]),
            score,
            status_cell(row["status"], lang),
            fmt_percent(row["coverage"]),
            "" if row["rank"] is None else str(row["rank"]),
        )
        previous_id = row["index_id"]
    return table


# --- indicator detail (`citykpi show`) ----------------------------------------------------------


def bands_table(indicator: Indicator, lang: str = "zh") -> Table:
    """The indicator's bands: own scale, cut points or ranges, and overrides."""
    table = Table(
        title="Bands" if lang == "en" else "分级", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False
    )
    table.add_column(word("status", lang), no_wrap=True)
    table.add_column("Rule" if lang == "en" else "规则")
    th = indicator.thresholds
    basis = "" if th.basis == "absolute" else f" ({th.basis})"
    if indicator.scale:
        lower: float | None = None
        for step in indicator.scale:
            parts = []
            if lower is not None:
                parts.append(f"> {fmt_cut(lower)}")
            if step.upto is not None:
                parts.append(f"≤ {fmt_cut(step.upto)}")
            table.add_row(status_cell(step.colour, lang), f"{step.label.pick(lang)}: {' '.join(parts)}")
            lower = step.upto
    else:
        for colour, rule in describe_bands(th.bands, indicator.direction):
            table.add_row(status_cell(colour, lang), rule + basis)
    for ov in th.overrides:
        where = f"area {ov.area}" if ov.area else f"level {ov.level}"
        rules = "; ".join(
            f"{c}: {r}"
            for c, r in describe_bands(ov.bands, indicator.direction)
            if not r.startswith("better")
        )
        table.add_row(Text("override", style="italic"), f"{where}: {rules}")
    if th.for_periods > 1:
        table.add_row(
            Text("persistence", style="italic"), f"colour must hold {th.for_periods} periods running"
        )
    return table


def describe_bands(bands: BandSet, direction: str) -> list[tuple[str, str]]:
    """(colour, human rule) pairs, e.g. ('red', 'above 200') or ('green', 'within [0.3, 2]')."""
    out: list[tuple[str, str]] = []
    if direction == "band" or bands.ranges:
        for colour, (low, high) in sorted(bands.ranges.items(), key=lambda kv: SEVERITY[kv[0]]):
            out.append((colour, f"within [{fmt_cut(low)}, {fmt_cut(high)}]"))
        out.append(("red", "outside every range"))
        return out
    worse = "above" if direction == "lower_is_better" else "below"
    if bands.inclusive:
        worse = "from" if direction == "lower_is_better" else "at or below"
    for colour, cut in sorted(bands.cuts.items(), key=lambda kv: SEVERITY[kv[0]]):
        out.append((colour, f"{worse} {fmt_cut(cut)}"))
    if bands.cuts:
        out.insert(0, ("green", "better than every cut"))
    return out


def vertical_chart(values: Sequence[float | None], height: int = 6) -> list[str]:
    """A block chart of a series between its min and max, ``height`` rows, one column per value."""
    present = [v for v in values if v is not None and not math.isnan(v)]
    if not present:
        return []
    low, high = min(present), max(present)
    span = (high - low) or 1.0
    # the minimum still gets a sliver so that a value is never drawn as a gap
    eighths = [
        None if v is None or math.isnan(v) else max(1, round((v - low) / span * (height * 8 - 1)) + 1)
        for v in values
    ]
    rows = []
    for r in range(height - 1, -1, -1):
        line = []
        for e in eighths:
            if e is None:
                line.append(" ")
                continue
            fill = e - r * 8
            line.append("█" if fill >= 8 else (" ▁▂▃▄▅▆▇"[fill] if fill > 0 else " "))
        rows.append("".join(line))
    return rows


def print_indicator(
    console: Console,
    indicator: Indicator,
    cells: pl.DataFrame,
    history: pl.DataFrame,
    *,
    lang: str = "zh",
    max_rows: int = 31,
) -> None:
    """Drill-down of one indicator: definition, bands, current values, history table and chart, targets."""
    console.rule(Text(f"{indicator.name.pick(lang)} · {indicator.id}", style="bold"), align="left")
    other = indicator.name.pick("en" if lang == "zh" else "zh")
    if other and other != indicator.name.pick(lang):
        console.print(Text(other, style="italic"))
    definition = Table.grid(padding=(0, 2))
    definition.add_column(style="bold", no_wrap=True)
    definition.add_column()
    facts: list[tuple[str, str]] = [
        ("kind", f"{indicator.kind} · {indicator.tier}"),
        ("domain", indicator.domain),
        ("unit", indicator.unit),
        ("frequency", f"{indicator.frequency} (stale after {fmt_duration(indicator.staleness)})"),
        ("direction", indicator.direction),
        ("levels", ", ".join(indicator.levels)),
        ("rollup", f"time {indicator.rollup.time}, area {indicator.rollup.area}"),
        ("value", indicator.value.kind),
    ]
    if indicator.owner:
        facts.append(("owner", indicator.owner))
    if indicator.description:
        facts.append(("description", indicator.description))
    if indicator.target is not None:
        t = indicator.target
        base = "" if t.baseline is None else f", baseline {fmt_number(t.baseline)} on {iso(t.baseline_date)}"
        facts.append(
            ("target", f"{fmt_value(t.value, indicator.unit)} by {t.due.isoformat()} ({t.method}{base})")
        )
    for key, value in facts:
        definition.add_row(key, value)
    console.print(definition)
    console.print(bands_table(indicator, lang))

    cells = sort_cells(cells.filter(pl.col("indicator_id") == indicator.id)) if cells.height else cells
    if cells.height:
        series = history_series(history, points=14)
        lines = [
            _cell_row(row, series, lang, first_col="", explain=True) for row in cells.iter_rows(named=True)
        ]
        table = _cells_table(
            word("status", lang), lang, lines, explain=True, first="indicator", width=console.width
        )
        table.columns[0].header = ""
        table.columns[0].min_width = 0
        console.print(table)
        for row in cells.iter_rows(named=True):
            if row["target_value"] is None:
                continue
            area = pick(row, "area_name", lang) or row["area_id"]
            console.print(
                f"{word('target', lang)} · {area}: {fmt_value(row['target_value'], row['unit'])} "
                f"({iso(row['target_due'])})  {progress_bar(row['attainment'])} "
                f"{fmt_target(row['attainment'], row['expected_progress'], row['target_status'], lang)}"
            )
        for row in cells.iter_rows(named=True):
            if row.get("explanation"):
                area = pick(row, "area_name", lang) or row["area_id"]
                console.print(
                    Text.assemble(
                        (f"{area}: ", "bold"), status_cell(row["status"], lang), f"  {row['explanation']}"
                    )
                )

    hist = history.filter(pl.col("indicator_id") == indicator.id) if history.height else history
    if not hist.height:
        console.print(Text("(no history)", style="dim"))
        return
    area_names = (
        {r["area_id"]: pick(r, "area_name", lang) for r in cells.iter_rows(named=True)}
        if cells.height
        else {}
    )
    order = list(dict.fromkeys([*area_names, *sorted(hist.get_column("area_id").unique().to_list())]))
    for area_id in order:
        series_frame = hist.filter(pl.col("area_id") == area_id).sort("period_start")
        if not series_frame.height:
            continue
        values = series_frame.get_column("value").to_list()
        periods = series_frame.get_column("period_start").to_list()
        title = f"{area_names.get(area_id) or area_id}"
        console.print(Text(title, style="bold"))
        present_values = [v for v in values if v is not None]
        chart = vertical_chart(values)
        if chart:
            top_label = fmt_number(max(present_values), indicator.decimals)
            low_label = fmt_number(min(present_values), indicator.decimals)
            pad = max(len(top_label), len(low_label))
            stretch = max(1, min(4, 60 // len(values)))  # few points: wider columns
            for i, line in enumerate(chart):
                label = top_label if i == 0 else low_label if i == len(chart) - 1 else ""
                console.print(Text(f"{label:>{pad}} │{''.join(ch * stretch for ch in line)}"))
            axis = "─" * (len(values) * stretch)
            console.print(Text(f"{'':>{pad}} └{axis} {iso(periods[0])} … {iso(periods[-1])}"))
        present = [v for v in values if v is not None]
        top = max([abs(v) for v in present], default=0.0) or 1.0
        htable = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        htable.add_column("Period" if lang == "en" else "周期", no_wrap=True)
        htable.add_column(word("value", lang), justify="right", no_wrap=True)
        htable.add_column("", no_wrap=True)
        for period, value in list(zip(periods, values, strict=True))[-max_rows:]:
            bar = "" if value is None else "█" * max(0, round(abs(value) / top * 20))
            htable.add_row(iso(period), fmt_value(value, indicator.unit, indicator.decimals), bar)
        console.print(htable)


# --- alerts, league tables, diffs, runs --------------------------------------------------------


_GRAIN_ZH: Mapping[str, str] = {"day": "天", "week": "周", "month": "个月", "quarter": "个季度", "year": "年"}


def _periods(n: int | None, grain: str, lang: str) -> str:
    """'3 days' / '3 天'; '' when unknown."""
    if n is None:
        return ""
    if lang == "zh":
        return f"{n} {_GRAIN_ZH.get(grain, grain)}"
    return f"{n} {grain}{'s' if n != 1 else ''}"


#: Room the alerts table must leave its text columns (indicator, area, explanation), or it becomes a list.
_ALERT_TEXT_ROOM = (20, 12, 30)


def print_alerts(
    console: Console,
    frame: pl.DataFrame,
    *,
    lang: str = "zh",
    min_colour: str = "orange",
    grain: str = "day",
    as_of: date | None = None,
) -> None:
    """Print alerts (see ``views.alerts``): colour, indicator, area, value, how long, new or persisting."""
    new = int(frame.get_column("is_new").sum()) if frame.height else 0
    head = f"{frame.height} alerts ≥ {status_label(min_colour, 'en')}, {new} new"
    if lang == "zh":
        head = f"{frame.height} 项预警（≥{status_label(min_colour, 'zh')}），新增 {new} 项"
    if as_of is not None:
        head += f" · {as_of.isoformat()}"
    console.rule(Text(head, style="bold"), align="left")
    if not frame.height:
        console.print("No alerts." if lang == "en" else "无预警。")
        return
    rows: list[tuple[Text, str, str, str, str, Text, Text]] = []
    for row in frame.iter_rows(named=True):
        if row["is_new"]:
            flag = Text(word("new", lang).upper() if lang == "en" else word("new", lang), style="bold")
        else:
            flag = Text(
                f"was {status_label(row['previous_status'], lang)}" if row["previous_status"] else "",
                style="dim",
            )
        rows.append(
            (
                status_cell(row["status"], lang),
                str(pick(row, "name", lang) or row["indicator_id"]),
                str(pick(row, "area_name", lang) or row["area_id"]),
                fmt_value(row["value"], row["unit"]),
                _periods(row["streak"], grain, lang),
                flag,
                Text(row["explanation"] or "", style="dim"),
            )
        )
    widths = [max(cell_len(str(r[i])) for r in rows) for i in range(7)]
    text_room = sum(min(widths[i], room) for i, room in zip((1, 2, 6), _ALERT_TEXT_ROOM, strict=True))
    if sum(widths[i] for i in (0, 3, 4, 5)) + text_room + 2 * 6 > console.width:
        # a table would fold names and reasons into slivers: two lines per alert instead
        for status, name, area, value, streak, flag, why in rows:
            line = Text.assemble(status, (f"  {name} · {area}  ", "bold"), f"{value}  {streak}  ", flag)
            console.print(line, overflow="fold")
            if why.plain:
                console.print(Text(f"    {why.plain}", style="dim"), overflow="fold")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column(word("status", lang), no_wrap=True)
    table.add_column(word("indicator", lang), overflow="fold")
    table.add_column(word("area", lang), overflow="fold")
    table.add_column(word("value", lang), justify="right", no_wrap=True)
    table.add_column(word("streak", lang), justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column(word("explanation", lang), overflow="fold")
    for r in rows:
        table.add_row(*r)
    console.print(table)


def print_league(console: Console, frame: pl.DataFrame, *, title: str, lang: str = "zh") -> None:
    """Print a league table (see ``views.league_table``), best first."""
    table = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column(word("rank", lang), justify="right")
    table.add_column(word("area", lang))
    table.add_column(word("value", lang), justify="right", no_wrap=True)
    table.add_column(word("status", lang), no_wrap=True)
    table.add_column(word("change", lang), justify="right", no_wrap=True)
    for row in frame.iter_rows(named=True):
        table.add_row(
            "" if row["rank"] is None else str(row["rank"]),
            pick(row, "area_name", lang) or row["area_id"],
            fmt_value(row["value"], None if row["unit"] == "score" else row["unit"]),
            status_cell(row["status"], lang),
            fmt_change(row["change_previous"], row["change_unit"], lang),
        )
    console.print(table)


def print_diff(
    console: Console,
    frame: pl.DataFrame,
    *,
    lang: str = "zh",
    label_from: str = "",
    label_to: str = "",
    names: pl.DataFrame | None = None,
) -> None:
    """Print colour changes between two runs: counts per kind, then one row per changed cell.

    ``names`` (cells of either scorecard) supplies indicator and area names when given.
    """
    labels = CHANGE_LABELS.get(lang, CHANGE_LABELS["en"])
    counts = dict(frame.group_by("change").len().iter_rows()) if frame.height else {}
    head = f"{label_from} → {label_to}: " if label_from or label_to else ""
    head += " · ".join(
        f"{counts.get(k, 0)} {labels[k]}"
        for k in _CHANGE_ORDER
        if counts.get(k) or k in ("newly_red", "recovered", "worse", "better")
    )
    console.rule(Text(head, style="bold"), align="left")
    if not frame.height:
        console.print("No colour changes." if lang == "en" else "无状态变化。")
        return
    lookup: dict[tuple[str, str], Mapping[str, Any]] = {}
    if names is not None and names.height:
        lookup = {(r["indicator_id"], r["area_id"]): r for r in names.iter_rows(named=True)}
    order = {k: i for i, k in enumerate(_CHANGE_ORDER)}
    rows = sorted(
        frame.iter_rows(named=True),
        key=lambda r: (order.get(r["change"], 9), r["indicator_id"], r["area_id"]),
    )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column(word("change", lang), no_wrap=True)
    table.add_column(word("indicator", lang), overflow="fold")
    table.add_column(word("area", lang), overflow="fold")
    table.add_column("From" if lang == "en" else "原状态", no_wrap=True)
    table.add_column("To" if lang == "en" else "现状态", no_wrap=True)
    for row in rows:
        info = lookup.get((row["indicator_id"], row["area_id"]), {})
        style = "bold red" if row["change"] in ("newly_red", "worse") else "green"
        table.add_row(
            Text(labels.get(row["change"], row["change"]), style=style),
            pick(info, "name", lang) or row["indicator_id"],
            pick(info, "area_name", lang) or row["area_id"],
            status_cell(row["status_from"], lang),
            status_cell(row["status_to"], lang),
        )
    console.print(table)


def _counts_cell(value: Any) -> Text:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return Text(value)
    if not isinstance(value, Mapping):
        return Text("" if value is None else str(value))
    text = Text()
    for status in status_order([s for s in STATUSES if value.get(s)]):
        if text:
            text.append(" ")
        text.append(f"{value[status]}{STATUS_LABELS_SHORT[status]}", style=STATUS_STYLES[status])
    return text


#: One-letter status codes for compact listings (R O Y B G S N -).
STATUS_LABELS_SHORT: Mapping[str, str] = {
    "red": "R",
    "orange": "O",
    "yellow": "Y",
    "blue": "B",
    "green": "G",
    "stale": "S",
    "no_data": "N",
    "not_applicable": "-",
}


def print_runs(console: Console, runs: pl.DataFrame) -> None:
    """Print persisted runs, newest first: id, when, as-of date, grain, cells and counts per colour."""
    if not runs.height:
        console.print("No runs yet; `citykpi evaluate` or `citykpi run` records one.")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    headers = {
        "run_id": "run",
        "created_at": "recorded",
        "as_of": "as of",
        "grain": "period",
        "cells": "cells",
        "max_batch_id": "to batch",
        "catalogue_hash": "catalogue",
    }
    # an 80-column terminal keeps what tells runs apart; the counts get the room
    narrow = ("max_batch_id", "catalogue_hash") if console.width < 100 else ()
    wanted = [c for c in headers if c in runs.columns and c not in narrow]
    for col in wanted:
        table.add_column(
            headers[col],
            justify="right" if col in ("run_id", "cells", "max_batch_id") else "left",
            no_wrap=True,
        )
    if "counts" in runs.columns:
        table.add_column("counts", overflow="fold")
    frame = runs.sort("run_id", descending=True) if "run_id" in runs.columns else runs
    for row in frame.iter_rows(named=True):
        values: list[Text | str] = []
        for col in wanted:
            v = row[col]
            if col == "catalogue_hash" and isinstance(v, str):
                v = v[:8]
            elif col == "created_at" and isinstance(v, datetime):
                v = fmt_timestamp(v)
            values.append("" if v is None else str(v))
        if "counts" in runs.columns:
            values.append(_counts_cell(row["counts"]))
        table.add_row(*values)
    console.print(table)
    if "counts" in runs.columns:
        names = {"no_data": "no data", "not_applicable": "n/a"}
        legend = " · ".join(f"{code} {names.get(s, s)}" for s, code in STATUS_LABELS_SHORT.items())
        console.print(Text(legend, style="dim"))


def print_rejects(console: Console, frame: pl.DataFrame, *, batch_id: int | None, limit: int) -> None:
    """Print ``warehouse.reject_batches`` (``batch_id`` None) or ``reject_rows`` of one batch."""
    if batch_id is None:
        title = "batches with rejected rows, newest first" if frame.height else "no batch has rejected rows"
        shown = frame.select(
            pl.col("batch_id").alias("batch"),
            pl.col("finished_at").alias("finished"),
            "status",
            # the file's name keeps the table readable in any checkout; --format json/csv carry the path
            pl.col("path").str.extract(r"([^/\\]+)$").alias("file"),
            pl.col("rows_rejected").alias("rejected"),
            pl.col("rows_read").alias("of"),
            "reasons",
        )
    else:
        title = f"batch {batch_id}: {frame.height} rejected row(s)"
        shown = frame.rename({"row_number": "row", "column_name": "column"})
    print_frame(console, shown, title=title, limit=limit)


def print_frame(console: Console, frame: pl.DataFrame, *, title: str, limit: int | None = None) -> None:
    """Print any frame as a plain table under ``title`` (long text folds; the first ``limit`` rows)."""
    console.rule(Text(title, style="bold"), align="left")
    if not frame.height:
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name, dtype in frame.schema.items():
        numeric = dtype.is_numeric()
        table.add_column(name, justify="right" if numeric else "left", no_wrap=numeric, overflow="fold")
    shown = frame if limit is None else frame.head(limit)
    for row in shown.iter_rows():
        table.add_row(*[_cell_text(v) for v in row])
    console.print(table)
    if shown.height < frame.height:
        console.print(Text(f"  … {frame.height - shown.height} more", style="dim"))


def _cell_text(value: Any) -> str:
    if isinstance(value, datetime):
        return fmt_timestamp(value)
    return "" if value is None else str(value)


def print_lines(console: Console, lines: Sequence[str]) -> None:
    """Print plain lines (no markup interpretation)."""
    for line in lines:
        console.print(Text(line))


def start_progress(console: Console, description: str) -> tuple[Any, Any]:
    """Start a transient Rich progress bar; return ``(update(message, done, total), stop())``.

    ``update`` matches the library's progress callbacks (e.g. ``warehouse.ingest(progress=...)``).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task(description, total=None)
    bar.start()

    def update(message: str, done: int, total: int) -> None:
        bar.update(task, description=message, completed=done, total=total)

    return update, bar.stop


# --- catalogue check and listing (`citykpi check`, `citykpi catalogue list`) -------------------

DIAGNOSTIC_STYLES: Mapping[str, str] = {"error": "bold red", "warning": "yellow"}


def print_diagnostics(console: Console, result: Any) -> None:
    """Every diagnostic of a ``CheckResult`` as ``file:line:col severity CKxxx message``, then a summary."""
    from citykpi.render.diagnostics import summary_line

    for d in result.diagnostics:
        line = Text()
        line.append(str(d.location), style="bold")
        line.append("  ")
        line.append(d.severity, style=DIAGNOSTIC_STYLES.get(d.severity, ""))
        line.append(f" {d.rule} ", style="dim")
        line.append(d.message)
        console.print(line)
        if d.hint:
            console.print(Text(f"    hint: {d.hint}", style="dim"))
    if result.diagnostics:
        console.print()
    style = "bold red" if result.errors else ("yellow" if result.warnings else "bold green")
    console.print(Text(("✗ " if result.errors else "✓ ") + summary_line(result), style=style))


def print_indicator_list(console: Console, rows: Sequence[Mapping[str, Any]], *, lang: str = "zh") -> None:
    """Catalogue listing rows (from ``catalogue.docs.indicator_rows``) as a table."""
    wide = console.width >= 140  # the bands column only when there is room for it
    table = Table(box=box.SIMPLE_HEAD, title=f"{len(rows)} indicators", title_justify="left")
    table.add_column("indicator", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("unit", min_width=4)
    table.add_column("levels", min_width=8)
    table.add_column("frequency", no_wrap=True)
    table.add_column("better", no_wrap=True)
    if wide:
        table.add_column("bands", overflow="fold")
    better = {"lower_is_better": "lower", "higher_is_better": "higher", "band": "in band"}
    for row in rows:
        name = (row["name_zh"] or row["name_en"]) if lang == "zh" else (row["name_en"] or row["name_zh"])
        ident = Text(row["id"], style="bold")
        ident.append("\n" + name, style="")
        cells = [row["kind"], row["unit"], " ".join(row["levels"]), row["frequency"]]
        cells.append(better.get(row["direction"], row["direction"]))
        table.add_row(ident, *(Text(c) for c in cells), *([Text(row["bands"])] if wide else []))
    console.print(table)
