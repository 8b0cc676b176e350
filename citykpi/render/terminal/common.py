"""What every terminal view shares: the console, status styles and labels, plain frames, progress."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import polars as pl
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from citykpi.render.format import (
    fmt_timestamp,
    level_rank,
    safe_text,
    status_text,
    summary_statuses,
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
    "unscored": "dim",
    "no_data": "dim",
    "not_applicable": "dim",
}

#: One-letter status codes for compact listings (R O Y B G S N -).
STATUS_LABELS_SHORT: Mapping[str, str] = {
    "red": "R",
    "orange": "O",
    "yellow": "Y",
    "blue": "B",
    "green": "G",
    "stale": "S",
    "unscored": "U",
    "no_data": "N",
    "not_applicable": "-",
}


def make_console(*, stderr: bool = False, width: int | None = None) -> Console:
    """A Console for the CLI (Rich honours NO_COLOR and plain output when not a terminal).

    Markup and emoji codes are off: a string printed as it is (a name, a message) never becomes a
    style, a link or an emoji. The views do not rely on that, they hand Rich :func:`plain` texts.
    """
    return Console(stderr=stderr, width=width, highlight=False, soft_wrap=False, markup=False, emoji=False)


def print_prose(console: Console, text: Text | str = "") -> None:
    """Print one line of prose (a diagnostic, hint, summary, note) that is never hard-wrapped off a terminal.

    In a terminal the line folds at its width as usual; piped or redirected (CI logs, ``| grep``),
    whatever ``COLUMNS`` says, it stays one line, so that each diagnostic is one grep-able
    ``file:line:col`` line. Tables keep the console's width: they need one to lay out their columns.
    """
    console.print(text, soft_wrap=not console.is_terminal)


def plain(value: object, style: str = "", *, one_line: bool = False) -> Text:
    """A string from data or the catalogue as a Rich ``Text``: markup stays literal, controls visible.

    The one way the terminal views show a name, unit, label, explanation, reason or raw cell (see
    :func:`citykpi.render.format.safe_text`); a ``str`` given to Rich would be read as markup.
    """
    return Text(safe_text(value, one_line=one_line), style=style)


def status_cell(status: str | None, lang: str = "en") -> Text:
    """A status as coloured glyph + label (e.g. '■ RED')."""
    if status is None:
        return Text("")
    return Text(status_text(status, lang), style=STATUS_STYLES.get(status, ""))


def indent(level: str | None) -> str:
    return "  " * min(level_rank(level), 2)


def summary_text(counts: Mapping[str, int], lang: str = "en") -> Text:
    """'Summary: 3 ■ RED · 1 ◆ ORANGE · …' with every status coloured."""
    text = Text(f"{word('summary', lang)}: ", style="bold")
    for i, status in enumerate(summary_statuses(counts)):
        if i:
            text.append(" · ")
        text.append(f"{counts.get(status, 0)} {status_text(status, lang)}", style=STATUS_STYLES[status])
    text.append(f"  ({sum(counts.values())} {word('cells', lang)})")
    return text


def print_frame(console: Console, frame: pl.DataFrame, *, title: str, limit: int | None = None) -> None:
    """Print any frame as a plain table under ``title`` (long text folds; the first ``limit`` rows)."""
    console.rule(plain(title, "bold", one_line=True), align="left")
    if not frame.height:
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name, dtype in frame.schema.items():
        numeric = dtype.is_numeric()
        table.add_column(
            plain(name, one_line=True),
            justify="right" if numeric else "left",
            no_wrap=numeric,
            overflow="fold",
        )
    shown = frame if limit is None else frame.head(limit)
    for row in shown.iter_rows():
        table.add_row(*[_cell_text(v) for v in row])
    console.print(table)
    if shown.height < frame.height:
        print_prose(console, Text(f"  … {frame.height - shown.height} more", style="dim"))


def _cell_text(value: Any) -> Text:
    if isinstance(value, datetime):
        return Text(fmt_timestamp(value))
    return plain(value)


def print_lines(console: Console, lines: Sequence[str]) -> None:
    """Print plain lines (no markup interpretation, control characters visible)."""
    for line in lines:
        print_prose(console, plain(line))


def start_progress(console: Console, description: str) -> tuple[Any, Any]:
    """Start a transient Rich progress bar; return ``(update(message, done, total), stop())``.

    ``update`` matches the library's progress callbacks (e.g. ``warehouse.ingest(progress=...)``).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task(safe_text(description, one_line=True), total=None)
    bar.start()

    def update(message: str, done: int, total: int) -> None:
        bar.update(task, description=safe_text(message, one_line=True), completed=done, total=total)

    return update, bar.stop
