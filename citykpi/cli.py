"""The command line: thin commands over the library.

Each command parses options, makes one library call, renders the result and maps it to an exit
code. The single error boundary is :class:`_ErrorBoundary`: a :class:`CitykpiError` becomes
``Error: …`` on stderr and its exit code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import typer.core

from citykpi import __version__
from citykpi.errors import CitykpiError, ExitCode


@dataclass(frozen=True)
class Settings:
    """Global options shared by every command."""

    db: Path
    catalogue: Path
    debug: bool


class _ErrorBoundary(typer.core.TyperGroup):
    """The one place where library errors become messages and exit codes."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CitykpiError as exc:
            settings = ctx.obj if isinstance(ctx.obj, Settings) else None
            if settings is not None and settings.debug:
                raise
            typer.echo(f"Error: {exc}", err=True)
            ctx.exit(int(exc.exit_code))


app = typer.Typer(
    cls=_ErrorBoundary,
    help="citykpi — city KPIs and vital signs: check the catalogue, ingest data, evaluate scorecards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"citykpi {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    ctx: typer.Context,
    db: Path = typer.Option(
        Path("citykpi.duckdb"), "--db", envvar="CITYKPI_DB", help="DuckDB database file."
    ),
    catalogue: Path = typer.Option(
        Path("indicators"), "--catalogue", envvar="CITYKPI_CATALOGUE", help="Catalogue folder or file."
    ),
    debug: bool = typer.Option(
        False, "--debug", envvar="CITYKPI_DEBUG", help="Show the traceback instead of a one-line error."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """citykpi — city KPIs and vital signs."""
    ctx.obj = Settings(db=db, catalogue=catalogue, debug=debug)


def settings(ctx: typer.Context) -> Settings:
    """The global settings of this invocation."""
    obj = ctx.find_root().obj
    assert isinstance(obj, Settings)
    return obj


# --- catalogue commands (check, schema, catalogue list/docs) ---------------------------------

# --- warehouse commands (areas load, ingest, db info, query) ----------------------------------

# --- engine commands (evaluate, test) ----------------------------------------------------------

# --- scorecard commands (show, alerts, rank, diff, run) -------------------------------------


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SystemExit as exc:  # normalise Click's exit codes to the documented contract
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else int(ExitCode.USAGE))
        sys.exit(code)
