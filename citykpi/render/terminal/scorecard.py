"""The scorecard view (`citykpi evaluate`): cells tables per domain or area that fit the terminal, the colour summary, the indices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from citykpi.engine.scorecard import Scorecard
from citykpi.render.format import (
    Digits,
    cell_value_parts,
    domain_name,
    fmt_change,
    fmt_number,
    fmt_percent,
    fmt_target,
    history_series,
    level_order,
    pick,
    sort_cells,
    sort_indices,
    sparkline,
    word,
)
from citykpi.render.outlook import fmt_outlook, target_forecast_label
from citykpi.render.terminal.common import (
    indent,
    plain,
    status_cell,
    summary_text,
)


def _heading(scorecard: Scorecard, lang: str) -> str:
    parts = [
        f"{word('scorecard', lang)} {word('as_of', lang)} {scorecard.as_of.isoformat()}",
        scorecard.grain,
    ]
    if scorecard.run_id is not None:
        parts.append(f"run {scorecard.run_id}")
    return " · ".join(parts)


class ValueText(Text):
    """A cell's value and unit, then its scale's label: a narrow table may put the label on a second
    line, never break the value itself (``bare`` is the width of the value and unit alone)."""

    bare: int = 0


def value_text(row: Mapping[str, Any], digits: Digits | None, lang: str) -> ValueText:
    """The value cell of ``row`` (see :class:`ValueText`)."""
    value, label = cell_value_parts(row, digits, lang)
    text = ValueText(plain(f"{value} {label}" if label else value).plain)
    text.bare = cell_len(plain(value).plain)
    return text


def _frame(columns: int) -> int:
    """Cells a table of ``columns`` columns spends besides their content: an edge on each side, and a
    padded divider (three cells) between columns (``box.SIMPLE_HEAD``, ``pad_edge=False``)."""
    return 3 * (columns - 1) + 2


def _natural(rows: list[list[Text | str]], headers: list[str], i: int) -> int:
    """The width column ``i`` takes unwrapped: its widest cell or header."""
    return max([cell_len(str(r[i])) for r in rows if i < len(r)] + [cell_len(headers[i])])


def _bare_width(rows: list[list[Text | str]], i: int) -> int:
    """The widest value of column ``i`` without its scale's label."""
    cells = [r[i] for r in rows if i < len(r)]
    return max([c.bare for c in cells if isinstance(c, ValueText)] + [1])


def cell_row(
    row: Mapping[str, Any],
    series: Mapping[tuple[str, str], list[float | None]],
    lang: str,
    *,
    first_col: str,
    explain: bool,
    digits: Digits | None = None,
) -> list[Text | str]:
    """One row of a cells table; every text from data or the catalogue is a :func:`plain` Text."""
    trend = sparkline(series.get((row["indicator_id"], row["area_id"]), []))
    cells: list[Text | str] = [
        plain(first_col),
        plain(indent(row["level"]) + (pick(row, "area_name", lang) or row["area_id"])),
        value_text(row, digits, lang),
        status_cell(row["status"], lang),
        plain(fmt_change(row["change_previous"], row["change_unit"], lang, row.get("unit"))),
        plain(fmt_change(row["change_last_year"], row["change_unit"], lang, row.get("unit"))),
        plain(fmt_change(row.get("change_base"), row["change_unit"], lang, row.get("unit"))),
        _target_text(row, lang),
        trend,
        plain(fmt_outlook(row, lang, two_lines=True)),
    ]
    if explain:
        cells.append(plain(row.get("explanation"), "dim"))
    return cells


def _target_text(row: Mapping[str, Any], lang: str) -> str:
    """Target progress, then where the trend takes it by the due date ('… behind · will miss')."""
    text = fmt_target(row["attainment"], row["expected_progress"], row["target_status"], lang)
    verdict = target_forecast_label(row.get("target_forecast"), lang)
    return f"{text} · {verdict}" if text and verdict else text or verdict


#: Columns of a cells table: (word, Rich column options, always shown, room it needs when narrow).
#: ``room`` None: as wide as its widest cell (never wrapped); a number: it may wrap down to that;
#: "bare": down to its widest value without the scale's label (:class:`ValueText`).
_CELL_COLUMNS: tuple[tuple[str, dict[str, Any], bool, int | str | None], ...] = (
    ("indicator", {"overflow": "fold", "min_width": 8}, True, 22),
    ("area", {"overflow": "fold", "min_width": 6}, True, 10),
    ("value", {"justify": "right"}, True, "bare"),
    ("status", {"no_wrap": True}, True, None),
    ("change", {"justify": "right", "no_wrap": True}, False, None),
    ("yoy", {"justify": "right", "no_wrap": True}, False, None),
    # change against a fixed base period ("down 20 % on 2010"): shown only where an indicator has one
    ("base", {"justify": "right", "no_wrap": True}, False, None),
    ("target", {}, False, 12),
    ("trend", {"no_wrap": True}, False, None),
    ("outlook", {"overflow": "fold", "min_width": 10}, False, 19),
    ("explanation", {"overflow": "fold", "min_width": 12}, False, 24),
)
#: The optional columns a narrow terminal gives up first, so the names keep room to be read.
_DROP_WHEN_NARROW = ("trend", "base", "yoy", "target", "outlook", "change")


def _fit_columns(
    keep: list[int], headers: list[str], rows: list[list[Text | str]], width: int | None
) -> list[int]:
    """Leave out optional columns, least useful first, until the rest fit ``width`` cells."""
    if width is None:
        return keep

    def room(i: int) -> int:
        natural = _natural(rows, headers, i)
        wanted = _CELL_COLUMNS[i][3]
        if wanted == "bare":
            wanted = _bare_width(rows, i)
        return natural if not isinstance(wanted, int) else min(natural, wanted)

    kept = list(keep)
    for name in _DROP_WHEN_NARROW:
        if sum(room(i) for i in kept) + _frame(len(kept)) <= width:
            break
        kept = [i for i in kept if _CELL_COLUMNS[i][0] != name]
    return kept


def _squeeze(
    keep: list[int],
    specs: list[tuple[str, dict[str, Any], bool, int | str | None]],
    headers: list[str],
    rows: list[list[Text | str]],
    width: int | None,
) -> dict[int, int]:
    """Fixed widths for the columns of a table that does not fit ``width`` as it is (none when it does).

    First a scale's label goes under its value; if that is not enough, every column gets the room
    :func:`_fit_columns` counted on and what is left over goes to the names, then the target, so that
    Rich never has to cut a status or fold a name mid-word.
    """
    natural = {i: _natural(rows, headers, i) for i in keep}
    if width is None or sum(natural.values()) + _frame(len(keep)) <= width:
        return {}
    bare = [i for i in keep if specs[i][3] == "bare"]
    out = {i: max(_bare_width(rows, i), cell_len(headers[i])) for i in bare}
    if sum({**natural, **out}.values()) + _frame(len(keep)) <= width:
        return out
    for i in keep:
        if i not in out:
            room = specs[i][3]
            out[i] = min(room, natural[i]) if isinstance(room, int) else natural[i]
    spare = width - _frame(len(keep)) - sum(out.values())
    for name in ("indicator", "area", "target", "explanation"):
        for i in keep:
            if spare > 0 and specs[i][0] == name and out[i] < natural[i]:
                grow = min(spare, natural[i] - out[i])
                out[i] += grow
                spare -= grow
    return out


def cells_table(
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
    table = Table(
        title=plain(title, "bold", one_line=True),
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    widths = _squeeze(keep, specs, headers, rows, width)
    for i in keep:
        options = dict(specs[i][1])
        if specs[i][3] == "bare":
            options["min_width"] = _bare_width(rows, i)  # a value never breaks, its label may
        if i in widths:
            options["width"] = widths[i]
        table.add_column(headers[i], **options)
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
    digits: Digits | None = None,
) -> None:
    """Print a scorecard: one table per domain (or area), the colour summary and the indices.

    ``limit`` caps the rows shown per table (the rest are counted); ``explain`` adds the one-line
    explanation of each colour; ``digits`` sets the decimals of values (default: one).
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
                values = cell_row(row, series, lang, first_col=first, explain=explain, digits=digits)
            else:
                values = cell_row(
                    row, series, lang, first_col=pick(row, "name", lang), explain=explain, digits=digits
                )
                values[1] = plain(row["domain"])
            lines.append(values)
        table = cells_table(
            title, lang, lines, explain=explain, first="indicator", second=second, width=console.width
        )
        console.print(table)
        if len(rows) > len(shown):
            console.print(Text(f"  … {len(rows) - len(shown)} {word('more', lang)}", style="dim"))
    console.print(summary_text(scorecard.counts(), lang))
    if scorecard.indices.height:
        console.print(indices_table(scorecard.indices, lang, digits))


def indices_table(indices: pl.DataFrame, lang: str = "zh", digits: Digits | None = None) -> Table:
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
        score = fmt_number(row["score"], (digits or Digits()).of(None))
        if row.get("capped"):
            score += f" ({word('capped', lang)})"
        table.add_row(
            plain(name if row["index_id"] != previous_id else ""),
            plain(indent(row["level"]) + (pick(row, "area_name", lang) or row["area_id"])),
            score,
            status_cell(row["status"], lang),
            fmt_percent(row["coverage"]),
            "" if row["rank"] is None else str(row["rank"]),
        )
        previous_id = row["index_id"]
    return table
