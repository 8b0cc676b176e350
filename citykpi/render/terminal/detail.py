"""The drill-down of one indicator (`citykpi show`): definition, bands, current cells, history chart and table, targets."""

from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from citykpi.catalogue.model import SEVERITY, BandSet, Indicator
from citykpi.render.format import (
    Digits,
    fmt_cut,
    fmt_duration,
    fmt_number,
    fmt_target,
    fmt_value,
    history_series,
    iso,
    pick,
    progress_bar,
    sort_cells,
    word,
)
from citykpi.render.outlook import fmt_outlook, fmt_target_forecast, grain_word, period_grain
from citykpi.render.terminal.common import (
    plain,
    status_cell,
)
from citykpi.render.terminal.scorecard import cell_row, cells_table


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
            table.add_row(
                status_cell(step.colour, lang), plain(f"{step.label.pick(lang)}: {' '.join(parts)}")
            )
            lower = step.upto
    else:
        for colour, rule in describe_bands(th.bands, indicator.direction):
            table.add_row(status_cell(colour, lang), plain(rule + basis))
    for ov in th.overrides:
        where = f"area {ov.area}" if ov.area else f"level {ov.level}"
        rules = "; ".join(
            f"{c}: {r}"
            for c, r in describe_bands(ov.bands, indicator.direction)
            if not r.startswith("better")
        )
        table.add_row(Text("override", style="italic"), plain(f"{where}: {rules}"))
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
    decimals: int | None = None,
) -> None:
    """Drill-down of one indicator: definition, bands, current values, history table and chart, targets.

    Values are shown with ``decimals`` (default: the indicator's declared ``decimals``).
    """
    decimals = indicator.decimals if decimals is None else decimals
    digits = Digits(decimals)
    console.rule(plain(f"{indicator.name.pick(lang)} · {indicator.id}", "bold", one_line=True), align="left")
    other = indicator.name.pick("en" if lang == "zh" else "zh")
    if other and other != indicator.name.pick(lang):
        console.print(plain(other, "italic"))
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
        base = (
            ""
            if t.baseline is None
            else f", baseline {fmt_number(t.baseline, decimals)} on {iso(t.baseline_date)}"
        )
        facts.append(
            (
                "target",
                f"{fmt_value(t.value, indicator.unit, decimals)} by {t.due.isoformat()} ({t.method}{base})",
            )
        )
    for key, value in facts:
        definition.add_row(key, plain(value))
    console.print(definition)
    console.print(bands_table(indicator, lang))

    cells = sort_cells(cells.filter(pl.col("indicator_id") == indicator.id)) if cells.height else cells
    if cells.height:
        series = history_series(history, points=14)
        lines = [
            cell_row(row, series, lang, first_col="", explain=True, digits=digits)
            for row in cells.iter_rows(named=True)
        ]
        table = cells_table(
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
                plain(
                    f"{word('target', lang)} · {area}: {fmt_value(row['target_value'], row['unit'], decimals)} "
                    f"({iso(row['target_due'])})  {progress_bar(row['attainment'])} "
                    f"{fmt_target(row['attainment'], row['expected_progress'], row['target_status'], lang)}"
                )
            )
        for row in cells.iter_rows(named=True):
            outlook, target = (
                fmt_outlook(row, lang, with_range=True),
                fmt_target_forecast(row, lang, decimals),
            )
            if not (outlook or target or row.get("forecast_r2") is not None):
                continue
            area = pick(row, "area_name", lang) or row["area_id"]
            trend = ""
            if row.get("forecast_slope") is not None:
                per = grain_word(period_grain(row["period_start"], row["period_end"]), lang)
                trend = (
                    f"{'trend' if lang == 'en' else '趋势'} {row['forecast_slope']:+,.{decimals + 1}f}/{per}, "
                    f"R² {row['forecast_r2']:.2f}"
                )
            if row.get("anomaly_score") is not None:
                score = row["anomaly_score"]
                trend += (
                    f", {score:+.1f} σ vs comparable periods"
                    if lang == "en"
                    else f"，较可比周期 {score:+.1f}σ"
                )
            parts = [p for p in (outlook, trend, target) if p]
            console.print(plain(f"{'outlook' if lang == 'en' else '预警'} · {area}: " + " · ".join(parts)))
        for row in cells.iter_rows(named=True):
            if row.get("explanation"):
                area = pick(row, "area_name", lang) or row["area_id"]
                console.print(
                    Text.assemble(
                        plain(f"{area}: ", "bold"),
                        status_cell(row["status"], lang),
                        plain(f"  {row['explanation']}"),
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
        console.print(plain(title, "bold"))
        present_values = [v for v in values if v is not None]
        chart = vertical_chart(values)
        if chart:
            top_label = fmt_number(max(present_values), decimals)
            low_label = fmt_number(min(present_values), decimals)
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
            htable.add_row(iso(period), plain(fmt_value(value, indicator.unit, decimals)), bar)
        console.print(htable)
