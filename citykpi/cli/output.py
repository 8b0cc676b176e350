"""Where a command's result goes: the terminal, stdout or a file (always written atomically)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import typer

from citykpi.errors import UsageError

if TYPE_CHECKING:
    from citykpi.engine.scorecard import Scorecard


def check_output(
    ctx: typer.Context,
    output: Path | None,
    kind: str,
    *,
    force: bool,
    catalogues: Sequence[Path] = (),
) -> None:
    """Refuse, before any work, an ``--output`` that may not be written: the database (and its WAL and
    lock), a file of the catalogue (the global one and ``catalogues``), a link, a device or folder, or an existing
    file that is not a previous export of ``kind`` without ``--force`` (:mod:`citykpi.render.targets`)."""
    if output is None:
        return
    from citykpi.cli.app import settings
    from citykpi.render.targets import check_output_target, protected_files

    cfg = settings(ctx)
    protected = protected_files(database=cfg.db, catalogues=[cfg.catalogue, *catalogues])
    check_output_target(output, protected=protected, force=force, kind=kind)


def write_or_echo(text: str, output: Path | None) -> None:
    """Write ``text`` to ``output`` (creating parent folders) or print it to stdout."""
    if output is None:
        typer.echo(text, nl=False)
        return
    from citykpi.render.exports import atomic_write

    output.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    atomic_write(output, write)


def check_destination(ctx: typer.Context, fmt: str, output: Path | None, *, force: bool) -> None:
    """Usage errors for a format and destination that do not go together, or an output path that may
    not be written (before any work)."""
    from citykpi.render.exporters import TERMINAL, exporter

    if fmt == TERMINAL:
        if output is not None:
            raise UsageError("--output needs an export format, e.g. --format csv")
        return
    if exporter(fmt).binary and output is None:
        raise UsageError(f"--format {fmt} is binary; give a file with --output")
    check_output(ctx, output, fmt, force=force)


def emit_frame(frame: pl.DataFrame, fmt: str, output: Path | None) -> None:
    """Print ``frame`` in the table format ``fmt`` on stdout, or write it to ``output`` atomically."""
    from citykpi.render.exporters import render_frame, write_frame

    if output is None:
        typer.echo(render_frame(frame, fmt), nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    write_frame(frame, fmt, output)
    typer.echo(f"wrote {output} ({frame.height} rows)", err=True)


def warn_past_data(scorecard: Scorecard) -> None:
    """Say on stderr what the evaluation warned about (e.g. a holiday calendar that does not cover the
    dates), and when the scorecard's date is after the newest observation: every feed then looks
    silent, and a scorecard of stale cells is easy to take for a real one."""
    warnings = scorecard.meta.get("warnings")
    for text in warnings if isinstance(warnings, list) else ():
        typer.echo(f"warning: {text}", err=True)
    warn_after_newest(
        scorecard.as_of, scorecard.meta.get("newest_data"), "cells past their staleness show as stale"
    )


def warn_after_newest(as_of: date, newest: object, consequence: str) -> None:
    """Say on stderr when ``as_of`` is after ``newest`` (the newest observation's ISO date, from a
    result's ``meta["newest_data"]``): what that does to the figures, and the date to try instead."""
    if isinstance(newest, str) and as_of.isoformat() > newest:
        typer.echo(
            f"warning: {as_of.isoformat()} is after the newest data ({newest}); {consequence} "
            f"(try --date {newest})",
            err=True,
        )
