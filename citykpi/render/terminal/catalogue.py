"""The catalogue views: `citykpi check` diagnostics and `citykpi catalogue list`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from citykpi.render.format import safe_text
from citykpi.render.terminal.common import plain, print_prose

DIAGNOSTIC_STYLES: Mapping[str, str] = {"error": "bold red", "warning": "yellow"}


def print_diagnostics(console: Console, result: Any) -> None:
    """Every diagnostic of a ``CheckResult`` as ``file:line:col severity CKxxx message``, then a summary."""
    from citykpi.render.diagnostics import summary_line

    for d in result.diagnostics:
        line = Text()
        line.append(safe_text(d.location, one_line=True), style="bold")
        line.append("  ")
        line.append(d.severity, style=DIAGNOSTIC_STYLES.get(d.severity, ""))
        line.append(f" {d.rule} ", style="dim")
        line.append(safe_text(d.message))
        print_prose(console, line)
        if d.hint:
            print_prose(console, plain(f"    hint: {d.hint}", "dim"))
    if result.diagnostics:
        console.print()
    style = "bold red" if result.errors else ("yellow" if result.warnings else "bold green")
    print_prose(console, Text(("✗ " if result.errors else "✓ ") + summary_line(result), style=style))


def print_indicator_list(
    console: Console, rows: Sequence[Mapping[str, Any]], *, lang: str = "zh", title: str | None = None
) -> None:
    """Catalogue listing rows (from ``catalogue.docs.indicator_rows``) as a table."""
    wide = console.width >= 140  # the bands column only when there is room for it
    heading = plain(title if title is not None else f"{len(rows)} indicators", one_line=True)
    table = Table(box=box.SIMPLE_HEAD, title=heading, title_justify="left")
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
        ident = plain(row["id"], "bold", one_line=True)
        ident.append("\n" + safe_text(name), style="")
        cells = [row["kind"], row["unit"], " ".join(row["levels"]), row["frequency"]]
        cells.append(better.get(row["direction"], row["direction"]))
        table.add_row(ident, *(plain(c) for c in cells), *([plain(row["bands"])] if wide else []))
    console.print(table)
