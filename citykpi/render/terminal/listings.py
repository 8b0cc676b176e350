"""Listings of cells and runs: alerts, league tables, run diffs, the runs and reject tables."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import polars as pl
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from citykpi.catalogue.model import STATUSES
from citykpi.render.format import (
    Digits,
    fmt_change,
    fmt_instant,
    fmt_minutes,
    fmt_number,
    fmt_timestamp,
    fmt_value,
    pick,
    status_label,
    status_order,
    word,
)
from citykpi.render.outlook import fmt_outlook
from citykpi.render.terminal.common import (
    STATUS_LABELS_SHORT,
    STATUS_STYLES,
    plain,
    print_frame,
    print_prose,
    status_cell,
)

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


_GRAIN_ZH: Mapping[str, str] = {
    "15min": "个15分钟",
    "hour": "小时",
    "day": "天",
    "week": "周",
    "month": "个月",
    "quarter": "个季度",
    "year": "年",
}


def _cell_grain(row: Mapping[str, Any], grain: str) -> str:
    """The reporting grain of an alert's cell at a sub-daily evaluation (a daily indicator's cell
    counts days, an hourly one hours), from its period; at a day or coarser grain, ``grain``."""
    start, end = row.get("period_start"), row.get("period_end")
    if grain not in _SUBDAILY or not isinstance(start, datetime) or not isinstance(end, datetime):
        return grain
    days = (end - start).total_seconds() / 86400
    if days < 1 / 24:
        return "15min"
    if days < 1:
        return "hour"
    for name, longest in (("day", 1), ("week", 7), ("month", 31), ("quarter", 92)):
        if days <= longest:
            return name
    return "year"


_SUBDAILY = ("15min", "hour")


def _periods(n: int | None, grain: str, lang: str) -> str:
    """'3 days' / '3 天'; '' when unknown."""
    if n is None:
        return ""
    if lang == "zh":
        return f"{n} {_GRAIN_ZH.get(grain, grain)}"
    if grain == "15min":
        return f"{n} × 15 min"
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
    digits: Digits | None = None,
    label: str | None = None,
) -> None:
    """Print alerts (see ``views.alerts``): colour, indicator, area, value, how long, new or persisting.

    ``label`` names what they are as of (``2025-12-31 14:00``); default ``as_of``."""
    new = int(frame.get_column("is_new").sum()) if frame.height else 0
    head = f"{frame.height} alerts ≥ {status_label(min_colour, 'en')}, {new} new"
    if lang == "zh":
        head = f"{frame.height} 项预警（≥{status_label(min_colour, 'zh')}），新增 {new} 项"
    if label is not None:
        head += f" · {label}"
    elif as_of is not None:
        head += f" · {as_of.isoformat()}"
    console.rule(Text(head, style="bold"), align="left")
    if not frame.height:
        print_prose(console, "No alerts." if lang == "en" else "无预警。")
        return
    rows: list[tuple[Text, Text, Text, Text, str, Text, Text]] = []
    for row in frame.iter_rows(named=True):
        if row["is_new"]:
            flag = Text(word("new", lang).upper() if lang == "en" else word("new", lang), style="bold")
        else:
            flag = Text(
                f"was {status_label(row['previous_status'], lang)}" if row["previous_status"] else "",
                style="dim",
            )
        places = (digits or Digits()).of(row["indicator_id"])
        how_long = _periods(row["streak"], _cell_grain(row, grain), lang)
        why = plain(row["explanation"], "dim")
        if row.get("state"):  # an alert rule's episode: its stage, since when, its peak
            state = Text(word(row["state"], lang), style="bold" if row["state"] == "firing" else "")
            flag = Text.assemble(state, " ", flag) if row["is_new"] else state
            how_long = fmt_minutes(row["minutes"], lang)
            peak = fmt_value(row["peak"], row["unit"], places)
            why = plain(
                f"{word('since', lang)} {fmt_instant(row['since'], day=as_of)}, {word('peak', lang)} {peak}"
                + (f" ({status_label(row['worst_status'], lang)})" if row["worst_status"] else ""),
                "dim",
            )
        rows.append(
            (
                status_cell(row["status"], lang),
                plain(pick(row, "name", lang) or row["indicator_id"]),
                plain(pick(row, "area_name", lang) or row["area_id"]),
                plain(fmt_value(row["value"], row["unit"], places)),
                how_long,
                flag,
                why,
            )
        )
    widths = [max(cell_len(str(r[i])) for r in rows) for i in range(7)]
    text_room = sum(min(widths[i], room) for i, room in zip((1, 2, 6), _ALERT_TEXT_ROOM, strict=True))
    if sum(widths[i] for i in (0, 3, 4, 5)) + text_room + 2 * 6 > console.width:
        # a table would fold names and reasons into slivers: two lines per alert instead
        for status, name, area, value, streak, flag, why in rows:
            names = Text.assemble("  ", name, " · ", area, "  ", style="bold")
            line = Text.assemble(status, names, value, f"  {streak}  ", flag)
            print_prose(console, line)  # a terminal folds it; a log keeps one line per alert
            if why.plain:
                print_prose(console, Text(f"    {why.plain}", style="dim"))
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


#: The room the league table's area column needs to stay readable (cells): a longer name wraps at its
#: words (or folds, in Chinese), never cut to a sliver.
_AREA_ROOM = 16
#: The league table's columns in the order a narrow terminal gives them up, until the rest fits with
#: the area column at :data:`_AREA_ROOM`: the rank range, then the interval, then the change. Rank,
#: area, value, status and the funnel flag always stay.
_LEAGUE_OPTIONAL: tuple[str, ...] = ("rank_range", "interval", "change")
_LEFT_OUT: Mapping[str, tuple[str, str]] = {
    "en": ("Left out at this width: {}; a wider terminal (COLUMNS=120) or --format csv shows them.", ", "),
    "zh": ("终端较窄，未显示：{}；加宽终端（COLUMNS=120）或用 --format csv 查看。", "、"),
}


def _league_columns(widths: Mapping[str, int], room: int) -> tuple[list[str], list[str]]:
    """The league table's columns that fit ``room`` cells (see :data:`_LEAGUE_OPTIONAL`), and those
    left out. ``widths``: each column's widest cell (the area's counted as at most :data:`_AREA_ROOM`)."""
    keys = list(widths)
    left_out: list[str] = []

    def total(ks: list[str]) -> int:
        # SIMPLE_HEAD without edge padding: one edge space each side, three cells between columns
        return (
            sum(min(widths[k], _AREA_ROOM) if k == "area" else widths[k] for k in ks) + 3 * (len(ks) - 1) + 2
        )

    for key in _LEAGUE_OPTIONAL:
        if total(keys) <= room:
            break
        if key in keys:
            keys.remove(key)
            left_out.append(key)
    return keys, left_out


def print_league(
    console: Console,
    frame: pl.DataFrame,
    *,
    title: str,
    lang: str = "zh",
    decimals: int = 1,
    direction: str | None = None,
) -> None:
    """Print a league table (see ``views.league_table``), best first, values with ``decimals``.

    A table with intervals (a rate built from counts) also shows the 95 % interval, the funnel flag
    and the rank range, and says under the table what they mean for its order (``views.league_note``).
    On a narrow terminal the rank range, the interval and the change are left out in that order (and
    said so) before the area names or the funnel flags would be cut.
    """
    from citykpi.render.views import funnel_text, league_note

    intervals = "ci_low" in frame.columns and not frame.get_column("ci_low").is_null().all()
    keys = ["rank", "area", "value", "status", "change"]
    if intervals:
        keys += ["interval", "funnel", "rank_range"]
    rows: list[dict[str, Text | str]] = []
    for row in frame.iter_rows(named=True):
        cells: dict[str, Text | str] = {
            "rank": "" if row["rank"] is None else str(row["rank"]),
            "area": plain(pick(row, "area_name", lang) or row["area_id"]),
            "value": plain(
                fmt_value(row["value"], None if row["unit"] == "score" else row["unit"], decimals)
            ),
            "status": status_cell(row["status"], lang),
            "change": plain(fmt_change(row["change_previous"], row["change_unit"], lang, row.get("unit"))),
        }
        if intervals:
            cells["interval"] = (
                ""
                if row["ci_low"] is None
                else f"{fmt_number(row['ci_low'], decimals)}–{fmt_number(row['ci_high'], decimals)}"
            )
            cells["funnel"] = plain(funnel_text(row["funnel"], direction, lang))
            cells["rank_range"] = (
                ""
                if row["rank_low"] is None
                else (
                    str(row["rank_low"])
                    if row["rank_low"] == row["rank_high"]
                    else f"{row['rank_low']}–{row['rank_high']}"
                )
            )
        rows.append(cells)
    widths = {k: max([cell_len(word(k, lang)), *(cell_len(str(r[k])) for r in rows)]) for k in keys}
    shown, left_out = _league_columns(widths, console.width)
    table = Table(
        title=plain(title, "bold", one_line=True), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False
    )
    for key in shown:
        if key == "area":
            table.add_column(word(key, lang), min_width=min(widths[key], _AREA_ROOM), overflow="fold")
        else:
            table.add_column(
                word(key, lang), justify="left" if key in ("status", "funnel") else "right", no_wrap=True
            )
    for cells in rows:
        table.add_row(*(cells[k] for k in shown))
    console.print(table)
    if left_out:
        text, sep = _LEFT_OUT.get(lang, _LEFT_OUT["en"])
        names = sep.join(word(k, lang).lower() if lang == "en" else word(k, lang) for k in left_out)
        print_prose(console, plain(text.format(names), "dim"))
    note = league_note(frame, lang=lang, decimals=decimals) if intervals else None
    if note:
        print_prose(console, plain(note))


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
    console.rule(plain(head, "bold", one_line=True), align="left")
    if not frame.height:
        print_prose(console, "No colour changes." if lang == "en" else "无状态变化。")
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
            plain(pick(info, "name", lang) or row["indicator_id"]),
            plain(pick(info, "area_name", lang) or row["area_id"]),
            status_cell(row["status_from"], lang),
            status_cell(row["status_to"], lang),
        )
    console.print(table)


def _counts_cell(value: Any) -> Text:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return plain(value)
    if not isinstance(value, Mapping):
        return plain(value)
    text = Text()
    for status in status_order([s for s in STATUSES if value.get(s)]):
        if text:
            text.append(" ")
        text.append(f"{value[status]}{STATUS_LABELS_SHORT[status]}", style=STATUS_STYLES[status])
    return text


def print_episodes(
    console: Console,
    frame: pl.DataFrame,
    *,
    lang: str = "zh",
    label: str | None = None,
    digits: Digits | None = None,
) -> None:
    """Print alert episodes (``alerts history``), newest first: stage, indicator, area, start, firing,
    end, how long, peak and worst colour."""
    head = f"{frame.height} {word('episodes', lang)}" if lang == "zh" else f"{frame.height} alert episodes"
    if label:
        head += f" · {label}"
    console.rule(Text(head, style="bold"), align="left")
    if not frame.height:
        print_prose(console, "No episodes." if lang == "en" else "无告警记录。")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column(word("state", lang), no_wrap=True)
    table.add_column(word("indicator", lang), overflow="fold")
    table.add_column(word("area", lang), overflow="fold")
    for key in ("started", "fired", "ended"):
        table.add_column(word(key, lang), no_wrap=True)
    table.add_column(word("duration", lang), justify="right", no_wrap=True)
    table.add_column(word("peak", lang), justify="right", no_wrap=True)
    table.add_column(word("worst", lang), no_wrap=True)
    for row in frame.iter_rows(named=True):
        day = row["started_at"].date() if row["started_at"] else None
        table.add_row(
            Text(word(row["state"], lang), style="bold" if row["state"] == "firing" else ""),
            plain(pick(row, "name", lang) or row["indicator_id"]),
            plain(pick(row, "area_name", lang) or row["area_id"]),
            fmt_instant(row["started_at"]),
            fmt_instant(row["fired_at"], day=day),
            fmt_instant(row["ended_at"], day=day),
            fmt_minutes(row["minutes"], lang),
            plain(fmt_value(row["peak"], row["unit"], (digits or Digits()).of(row["indicator_id"]))),
            status_cell(row["worst_status"], lang) if row["worst_status"] else Text(""),
        )
    console.print(table)


def print_runs(console: Console, runs: pl.DataFrame) -> None:
    """Print persisted runs, newest first: id, when, as-of date, grain, cells and counts per colour."""
    if not runs.height:
        print_prose(console, "No runs yet; `citykpi run` (or `citykpi evaluate --record`) records one.")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    headers = {
        "run_id": "run",
        "created_at": "recorded",
        "as_of": "as of",
        "grain": "period",
        "scheduled": "kind",
        "cells": "cells",
        "max_batch_id": "to batch",
        "catalogue_hash": "catalogue",
    }
    # a terminal narrower than 120 columns keeps what tells runs apart; the counts get the room
    narrow = ("max_batch_id", "catalogue_hash") if console.width < 120 else ()
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
        values: list[Text] = []
        for col in wanted:
            v = row[col]
            if col == "catalogue_hash" and isinstance(v, str):
                v = v[:8]
            elif col == "created_at" and isinstance(v, datetime):
                v = fmt_timestamp(v)
            elif col == "scheduled":
                v = "scheduled" if v else "ad hoc"
            elif col == "as_of" and isinstance(row.get("as_at"), datetime):
                v = fmt_instant(row["as_at"])  # a run as of an instant
            values.append(plain(v))
        if "counts" in runs.columns:
            values.append(_counts_cell(row["counts"]))
        table.add_row(*values)
    console.print(table)
    if "counts" in runs.columns:
        names = {"no_data": "no data", "not_applicable": "n/a"}  # unscored reads as itself
        legend = " · ".join(f"{code} {names.get(s, s)}" for s, code in STATUS_LABELS_SHORT.items())
        print_prose(console, Text(legend, style="dim"))


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


def print_early_alerts(
    console: Console,
    frame: pl.DataFrame,
    *,
    lang: str = "zh",
    min_colour: str = "orange",
    as_of: date | None = None,
    digits: Digits | None = None,
    label: str | None = None,
) -> None:
    """Print early alerts (see ``outlook.early_alerts``): the colour a cell is heading for and when, soonest first.

    ``label`` names what they are as of (``2025-12-31 10:30`` in a sub-daily evaluation); default ``as_of``."""
    head = f"{frame.height} early alerts: forecast to reach {status_label(min_colour, 'en')} or worse"
    if lang == "zh":
        head = f"{frame.height} 项趋势预警（预计转为{status_label(min_colour, 'zh')}或更差）"
    if label is not None:
        head += f" · {label}"
    elif as_of is not None:
        head += f" · {as_of.isoformat()}"
    console.rule(Text(head, style="bold"), align="left")
    if not frame.height:
        print_prose(
            console,
            "No cell's trend reaches that colour within its horizon."
            if lang == "en"
            else "没有指标的趋势在预测期内达到该等级。",
        )
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column(word("outlook", lang), overflow="fold")
    table.add_column(word("indicator", lang), overflow="fold")
    table.add_column(word("area", lang), overflow="fold")
    table.add_column(word("value", lang), justify="right", no_wrap=True)
    table.add_column(word("status", lang), no_wrap=True)
    for row in frame.iter_rows(named=True):
        table.add_row(
            Text.assemble(
                status_cell(row["forecast_status"], lang), " ", plain(fmt_outlook(row, lang, with_range=True))
            ),
            plain(pick(row, "name", lang) or row["indicator_id"]),
            plain(pick(row, "area_name", lang) or row["area_id"]),
            plain(fmt_value(row["value"], row["unit"], (digits or Digits()).of(row["indicator_id"]))),
            status_cell(row["status"], lang),
        )
    console.print(table)
