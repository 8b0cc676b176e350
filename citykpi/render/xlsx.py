"""The xlsx workbook: a summary sheet, one sheet per level, the indices — formatted for people.

* **summary** — as-of date, grain, catalogue, number of cells and the worst status; the cells per
  status at each level and per domain, each status in its colour.
* **one sheet per level** (city, district, street, then any other level), one row per cell. Values
  and targets are numbers shown in a number format built from the indicator's unit and declared
  decimals (``128.0 index``, ``98.03%``); changes with their sign and unit (``+2.4 pp``, ``-1.5%``);
  attainment and expected progress as percentages. The status cell is filled in the status's colour,
  the value cell too when the colour calls for attention (blue to red).
* **indices** — one row per index × area, the score to one decimal and the status filled.

Every data sheet has its header row and id/name columns frozen, an autofilter over its rows and
column widths fitted to the content. Nothing is ever a formula: text a spreadsheet would read as one
is prefixed with ``'`` (:func:`citykpi.render.exports.neutralise`) and the writer's conversions are
off. The file is deterministic: the creation time is the as-of date, and formats are created in row
order. Rows are flushed as they are written, so memory stays flat at city scale.
"""

from __future__ import annotations

import gc
import math
import sys
import traceback
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import polars as pl

from citykpi.catalogue.model import LEVELS, SEVERITY, STATUSES
from citykpi.engine.scorecard import CELL_SCHEMA, INDEX_SCHEMA, Scorecard
from citykpi.render.exports import neutralise
from citykpi.render.format import (
    STATUS_HEX,
    STATUS_INK,
    Digits,
    change_suffix,
    domain_name,
    pick,
    progress_digits,
    sort_cells,
    sort_indices,
    status_label,
    summary_statuses,
    word,
)
from citykpi.vocab.units import UNITS

#: Columns of the level sheets: (header, cell column or a computed key starting with ``@``).
CELL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("indicator_id", "indicator_id"),
    ("indicator", "@name"),
    ("area_id", "area_id"),
    ("area", "@area_name"),
    ("domain", "domain"),
    ("kind", "kind"),
    ("tier", "tier"),
    ("value", "value"),
    ("unit", "unit"),
    ("status", "@status"),
    ("band_label", "band_label"),
    ("change_previous", "change_previous"),
    ("change_last_year", "change_last_year"),
    ("base_value", "base_value"),
    ("change_base", "change_base"),
    ("change_unit", "change_unit"),
    ("streak", "streak"),
    ("target_value", "target_value"),
    ("target_due", "target_due"),
    ("attainment", "attainment"),
    ("expected_progress", "expected_progress"),
    ("target_status", "target_status"),
    ("target_forecast", "target_forecast"),
    ("target_projected", "target_projected"),
    ("target_pace_needed", "target_pace_needed"),
    ("target_pace", "target_pace"),
    ("forecast_status", "forecast_status"),
    ("forecast_periods", "forecast_periods"),
    ("forecast_date", "forecast_date"),
    ("forecast_periods_low", "forecast_periods_low"),
    ("forecast_periods_high", "forecast_periods_high"),
    ("forecast_r2", "forecast_r2"),
    ("anomaly_score", "anomaly_score"),
    ("period_start", "period_start"),
    ("period_end", "period_end"),
    ("explanation", "explanation"),
)

#: Columns of the indices sheet.
INDEX_COLUMNS: tuple[tuple[str, str], ...] = (
    ("index_id", "index_id"),
    ("index", "@name"),
    ("area_id", "area_id"),
    ("area", "@area_name"),
    ("level", "level"),
    ("score", "score"),
    ("status", "@status"),
    ("coverage", "coverage"),
    ("capped", "capped"),
    ("components_used", "components_used"),
    ("components_total", "components_total"),
    ("rank", "rank"),
)

#: Header rows and id/name columns kept in view while scrolling (the first two columns).
FROZEN_COLUMNS = 2

#: Columns that hold a fraction shown as a percentage.
_FRACTIONS = frozenset({"attainment", "expected_progress", "coverage"})
#: Columns that hold a whole number.
_WHOLE = frozenset({"streak", "components_used", "components_total", "rank"})
#: Columns in the value's own number format (unit and decimals).
_IN_UNIT = frozenset({"value", "target_value", "base_value", "target_projected"})
#: Columns of changes (sign and the change's unit).
_CHANGES = frozenset({"change_previous", "change_last_year", "change_base"})

#: Words of the summary sheet that the shared vocabulary does not have.
_SUMMARY_WORDS: Mapping[str, Mapping[str, str]] = {
    "en": {"grain": "Grain", "catalogue": "Catalogue", "worst": "Worst status", "total": "Total"},
    "zh": {"grain": "周期", "catalogue": "指标目录", "worst": "最严重状态", "total": "合计"},
}


def _summary_word(key: str, lang: str) -> str:
    return _SUMMARY_WORDS.get(lang, _SUMMARY_WORDS["en"])[key]


def number_format(decimals: int, suffix: str = "") -> str:
    """An Excel number format with thousands separators, ``decimals`` places and a literal ``suffix``."""
    body = "#,##0" + ("." + "0" * decimals if decimals > 0 else "")
    safe = suffix.replace('"', "").replace("\\", "")
    return body + (f'"{safe}"' if safe else "")


def unit_suffix(unit: str | None) -> str:
    """What follows a value of ``unit`` in its number format: '%' or ' µg/m³'; '' for no or an unknown unit."""
    if not unit or unit not in UNITS:
        return ""
    return unit if unit in ("%", "‰") else f" {unit}"


def change_format(change_unit: str | None, unit: str | None) -> str:
    """The number format of a change: a sign and the change's unit ('+2.4 pp', '-1.5%', '0.0%')."""
    suffix = change_suffix(change_unit, unit if unit in UNITS else None)
    one = number_format(1, suffix)
    return f"+{one};-{one};{one}"


def _text_width(text: str) -> int:
    """Approximate column width of ``text`` (a CJK character is two columns wide)."""
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value)))


def _quiet_os_error(exc: BaseException) -> OSError:
    """The OSError behind ``exc``, after releasing the half-written zip file its frames hold.

    Otherwise the zip file's finaliser fails again at exit and prints a second, ignored traceback.
    """
    cause = exc.args[0] if exc.args and isinstance(exc.args[0], OSError) else None
    failure = OSError(cause.errno, cause.strerror) if cause is not None else OSError(str(exc))
    hook = sys.unraisablehook
    sys.unraisablehook = lambda _info: None
    try:
        seen: set[int] = set()
        todo: list[BaseException | None] = [exc, cause]
        while todo:
            e = todo.pop()
            if e is None or id(e) in seen:
                continue
            seen.add(id(e))
            if e.__traceback__ is not None:
                traceback.clear_frames(e.__traceback__)
            todo += [e.__context__, e.__cause__]
        gc.collect()
    finally:
        sys.unraisablehook = hook
    return failure


def xlsx_writer(scorecard: Scorecard, lang: str) -> Callable[[Path], None]:
    """Write the workbook (summary, a sheet per level, indices) into a temporary file, row by row."""
    import xlsxwriter

    cells = sort_cells(scorecard.cells.select(list(CELL_SCHEMA)))
    indices = sort_indices(scorecard.indices.select(list(INDEX_SCHEMA)))
    decimals = scorecard.meta.get("decimals")
    digits = Digits(declared=dict(decimals) if isinstance(decimals, Mapping) else {})

    def write(tmp: Path) -> None:
        wb = xlsxwriter.Workbook(
            str(tmp),
            {
                "strings_to_formulas": False,
                "strings_to_numbers": False,
                "strings_to_urls": False,
                # rows are written in order and flushed as they go: memory stays flat at city
                # scale (226k cells: ~0.9 GB without it)
                "constant_memory": True,
            },
        )
        # A fixed creation time (the as-of date) keeps the file byte-identical across re-runs.
        created = datetime.combine(scorecard.as_of, time())
        wb.set_properties({"title": f"citykpi scorecard {scorecard.as_of.isoformat()}", "created": created})
        formats: dict[tuple[str, str | None], Any] = {}

        def fmt(num_format: str, status: str | None = None) -> Any:
            """The one format of a number format with a status fill (None: no fill), made on first use."""
            key = (num_format, status)
            if key not in formats:
                spec: dict[str, Any] = {"num_format": num_format} if num_format else {}
                if status is not None:
                    spec |= {"bg_color": STATUS_HEX[status], "font_color": STATUS_INK[status]}
                    spec |= {"bold": status in SEVERITY}
                formats[key] = wb.add_format(spec)
            return formats[key]

        header = wb.add_format({"bold": True, "bottom": 1, "bg_color": "#f1f3f4"})
        title = wb.add_format({"bold": True, "font_size": 14})

        def text_cell(ws: Any, r: int, c: int, value: object, widths: list[int], style: Any = None) -> None:
            text = neutralise(value.isoformat() if isinstance(value, date) else str(value))
            ws.write_string(r, c, text, style)
            widths[c] = max(widths[c], min(60, _text_width(text) + 2))

        def number_cell(
            ws: Any,
            r: int,
            c: int,
            value: float,
            shape: tuple[int, str, str],
            widths: list[int],
            status: str | None,
        ) -> None:
            """Write a number in the format ``shape`` (decimals, suffix, Excel format); fit its column."""
            places, suffix, num_format = shape
            ws.write_number(r, c, value, fmt(num_format, status))
            shown = f"{value:+,.{places}f}{suffix}"
            widths[c] = max(widths[c], min(30, _text_width(shown) + 3))

        def data_sheet(name: str, frame: pl.DataFrame, columns: tuple[tuple[str, str], ...]) -> None:
            ws = wb.add_worksheet(name)
            widths = [_text_width(h) + 4 for h, _ in columns]  # room for the filter button
            for c, (head, _) in enumerate(columns):
                ws.write_string(0, c, head, header)
            for r, row in enumerate(frame.iter_rows(named=True), start=1):
                status = row["status"] if row.get("status") in STATUSES else None
                attention = status if status is not None and (SEVERITY.get(status) or 0) > 0 else None
                places = digits.of(row.get("indicator_id"))
                for c, (_, key) in enumerate(columns):
                    if key == "@status":
                        text_cell(ws, r, c, status_label(row["status"], lang), widths, fmt("", status))
                        continue
                    value = pick(row, key[1:], lang) if key.startswith("@") else row[key]
                    if _blank(value):
                        continue  # a blank without a format writes nothing
                    if isinstance(value, bool):
                        ws.write_boolean(r, c, value)
                    elif isinstance(value, int | float):
                        fill = attention if key in ("value", "score") else None
                        number_cell(ws, r, c, value, _shape(key, row, places), widths, fill)
                    else:
                        text_cell(ws, r, c, value, widths)
            for c, w in enumerate(widths):
                ws.set_column(c, c, w)
            ws.freeze_panes(1, FROZEN_COLUMNS)
            if frame.height:
                ws.autofilter(0, 0, frame.height, len(columns) - 1)

        def summary_sheet(levels: list[str]) -> None:
            ws = wb.add_worksheet("summary")
            counts = scorecard.counts()
            worst = scorecard.worst_severity()
            worst_status = None if worst is None else next(c for c, s in SEVERITY.items() if s == worst)
            ws.write_string(
                0, 0, f"{word('scorecard', lang)} {word('as_of', lang)} {scorecard.as_of.isoformat()}", title
            )
            facts: list[tuple[str, str | int, str | None]] = [
                (_summary_word("grain", lang), scorecard.grain, None),
                (_summary_word("catalogue", lang), scorecard.catalogue_hash[:12], None),
                (word("cells", lang), sum(counts.values()), None),
                (_summary_word("worst", lang), status_label(worst_status, lang), worst_status),
            ]
            r = 2
            for label, value, status in facts:
                ws.write_string(r, 0, label, header)
                if isinstance(value, int):
                    ws.write_number(r, 1, value)
                else:
                    ws.write_string(r, 1, neutralise(value), fmt("", status) if status else None)
                r += 1
            r += 1
            statuses = summary_statuses(counts)
            by_level = (
                dict(((lv, st), n) for lv, st, n in cells.group_by("level", "status").len().iter_rows())
                if cells.height
                else {}
            )
            heads = [
                word("status", lang),
                *(_level_name(lv, lang) for lv in levels),
                _summary_word("total", lang),
            ]
            for c, head in enumerate(heads):
                ws.write_string(r, c, head, header)
            r += 1
            for st in statuses:
                ws.write_string(r, 0, status_label(st, lang), fmt("", st))
                for c, lv in enumerate(levels, start=1):
                    ws.write_number(r, c, int(by_level.get((lv, st), 0)))
                ws.write_number(r, len(levels) + 1, counts.get(st, 0))
                r += 1
            r += 1
            domains = (
                cells.group_by("domain", "status").len().sort("domain").iter_rows()
                if cells.height
                else iter(())
            )
            per_domain: dict[str, dict[str, int]] = {}
            for domain, st, n in domains:
                per_domain.setdefault(str(domain), {})[st] = int(n)
            ws.write_string(r, 0, word("domain", lang), header)
            for c, st in enumerate(statuses, start=1):
                ws.write_string(r, c, status_label(st, lang), fmt("", st))
            r += 1
            for domain, by_status in per_domain.items():
                ws.write_string(r, 0, neutralise(domain_name(domain, lang)))
                for c, st in enumerate(statuses, start=1):
                    ws.write_number(r, c, by_status.get(st, 0))
                r += 1
            ws.set_column(0, 0, max([24, *(_text_width(domain_name(d, lang)) + 2 for d in per_domain)]))
            ws.set_column(1, max(len(levels) + 1, len(statuses)), 12)

        present = cells.get_column("level").unique().to_list() if cells.height else []
        levels = [lv for lv in LEVELS if lv in present]
        levels += sorted(str(lv) for lv in set(present) - set(LEVELS) if lv is not None)
        summary_sheet(levels or ["city"])
        for lv in levels or ["city"]:
            data_sheet(lv, cells.filter(pl.col("level") == lv), CELL_COLUMNS)
        data_sheet("indices", indices, INDEX_COLUMNS)
        try:
            wb.close()
        except xlsxwriter.exceptions.FileCreateError as exc:  # wraps the OSError (disk full, read-only)
            raise _quiet_os_error(exc) from None

    return write


def _shape(key: str, row: Mapping[str, Any], places: int) -> tuple[int, str, str]:
    """Decimals, suffix and Excel number format of column ``key`` in ``row``.

    Values and targets: the indicator's decimals and unit; changes: one decimal, a sign and the
    change's unit; fractions as percentages; counts whole; scores to one decimal.
    """
    if key in _IN_UNIT:
        suffix = unit_suffix(row.get("unit"))
        return places, suffix, number_format(places, suffix)
    if key in _CHANGES:
        unit = row.get("unit")
        return (
            1,
            change_suffix(row.get("change_unit"), unit if unit in UNITS else None),
            change_format(row.get("change_unit"), unit),
        )
    if key in _FRACTIONS:
        # progress with the digits it takes not to read as the goal or the expected progress (99.95 %
        # of a goal is not '100.0%' beside "missed"), at least one
        digits = 1
        if key != "coverage":
            pair = progress_digits(
                row.get("attainment"), row.get("expected_progress"), row.get("target_status"), least=1
            )
            digits = pair[0] if key == "attainment" else pair[1]
        return digits, "%", "0." + "0" * digits + "%"
    if key in _WHOLE:
        return 0, "", "0"
    if key == "score":
        return 1, "", number_format(1)
    return 3, "", "#,##0.0##"


def _level_name(level: str, lang: str) -> str:
    """A level as a summary column head: the level's id in English, its Chinese name in Chinese."""
    names = {"city": "市级", "district": "区县", "street": "街道"}
    return names.get(level, level) if lang == "zh" else level


__all__ = ["CELL_COLUMNS", "INDEX_COLUMNS", "change_format", "number_format", "unit_suffix", "xlsx_writer"]
