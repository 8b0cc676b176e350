"""The Typer application: global options, :class:`Settings`, the single error boundary, ``main``.

The commands live in the ``*_cmds`` modules next to this one and register themselves on :data:`app`
when :mod:`citykpi.cli` is imported.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
import typer.core

from citykpi import __version__
from citykpi.errors import CitykpiError, EngineError, ExitCode


class BackendName(StrEnum):
    """The SQL engine (``--backend``)."""

    duckdb = "duckdb"
    spark = "spark"


@dataclass(frozen=True)
class Settings:
    """Global options shared by every command.

    ``db`` is where the warehouse is: the DuckDB file, or with ``--backend spark`` the warehouse folder.
    """

    db: Path
    catalogue: Path
    debug: bool
    backend: str = "duckdb"


def unwrap_help(text: str) -> str:
    """A command's docstring as its help: the source's line wrapping inside each paragraph becomes
    spaces, so the terminal wraps at its own width and never mid-sentence at the source's; a
    paragraph that starts with Click's ``\\b`` keeps its lines (the marker is dropped after the first
    paragraph, which Typer's help does not read it in). Anything after ``\\f`` is left as it is."""
    head, mark, tail = inspect.cleandoc(text).partition("\f")
    paragraphs = []
    for n, para in enumerate(head.strip("\n").split("\n\n")):
        if para.startswith("\b"):
            paragraphs.append(para if n == 0 else para[1:].lstrip("\n"))
        else:
            paragraphs.append(" ".join(line.strip() for line in para.splitlines() if line.strip()))
    return "\n\n".join(paragraphs) + mark + tail


def _unwrap_tree(command: Any) -> None:
    """Unwrap the help of ``command`` and of every command under it (see :func:`unwrap_help`)."""
    if getattr(command, "help", None):
        command.help = unwrap_help(command.help)
    for sub in (getattr(command, "commands", None) or {}).values():
        _unwrap_tree(sub)


class _ErrorBoundary(typer.core.TyperGroup):
    """The one place where library errors become messages and exit codes; it also gives every
    command's help its paragraphs unwrapped (:func:`unwrap_help`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _unwrap_tree(self)

    def invoke(self, ctx: Any) -> Any:
        try:
            return self._invoke(ctx)
        finally:
            from citykpi.backend import use

            use(None)  # the choice of --backend lasts for this invocation only

    def _invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except EngineError as exc:
            self._engine_failure(ctx, exc, exc)
        except CitykpiError as exc:
            settings = ctx.obj if isinstance(ctx.obj, Settings) else None
            if settings is not None and settings.debug:
                raise
            from citykpi.render.format import safe_text

            typer.echo(f"Error: {safe_text(exc)}", err=True)  # messages quote file names and cells
            ctx.exit(int(exc.exit_code))
        except Exception as exc:
            # a raw engine exception escaping the library: the backend says what is its own; anything
            # else is a bug and propagates with its traceback
            from citykpi.backend import engine_error

            translated = engine_error(exc)
            if translated is None:
                raise
            self._engine_failure(ctx, exc, translated)

    @staticmethod
    def _engine_failure(ctx: Any, exc: BaseException, error: EngineError) -> None:
        """The SQL engine failed under the library: a message, not a traceback, and a hint that
        blames the disk only when the engine said it was the disk."""
        settings = ctx.obj if isinstance(ctx.obj, Settings) else None
        if settings is not None and settings.debug:
            raise exc
        from citykpi.render.format import safe_text

        cause = error.cause or error
        text = str(cause).strip() or str(error.message).strip()
        first = text.splitlines()[0] if text else type(cause).__name__
        hint = _ENGINE_HINTS.get(error.kind, _STATEMENT_HINT).format(step=_step(error))
        typer.echo(
            f"Error: database error: {safe_text(first, one_line=True)}\n  hint: {hint}",
            err=True,
        )
        ctx.exit(int(ExitCode.ERROR))


def _step(error: EngineError) -> str:
    return f" (evaluation step '{error.step}')" if error.step else ""


_STATEMENT_HINT = (
    "a statement failed{step}: this is a defect in the catalogue's expressions or in citykpi, not damage "
    "to the database; nothing more was written. Run `citykpi check`; if it finds nothing, report it with "
    "the traceback --debug shows"
)
_ENGINE_HINTS = {
    "storage": (
        "the database file may be damaged or its disk full or read-only; nothing more was written. "
        "Check `citykpi db info`; --debug shows the traceback"
    ),
    "resources": (
        "the engine ran out of memory or was interrupted{step}; nothing more was written. Lower "
        "CITYKPI_MEMORY_LIMIT or CITYKPI_THREADS, or free memory; --debug shows the traceback"
    ),
    "statement": _STATEMENT_HINT,
}


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
    backend: BackendName = typer.Option(
        BackendName.duckdb,
        "--backend",
        envvar="CITYKPI_BACKEND",
        help="SQL engine: duckdb (embedded, the default) or spark (needs citykpi[spark] and Java 17+).",
    ),
    spark_master: str = typer.Option(
        "local[*]",
        "--spark-master",
        envvar="CITYKPI_SPARK_MASTER",
        help="Spark master for --backend spark (local[*], local[2], yarn, spark://…, k8s://…).",
    ),
    warehouse: Path = typer.Option(
        Path("citykpi-warehouse"),
        "--warehouse",
        envvar="CITYKPI_WAREHOUSE",
        help="Warehouse folder for --backend spark (control database and Parquet tables).",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """citykpi — city KPIs and vital signs."""
    from citykpi.backend import spark_backend, use

    if backend == BackendName.spark:
        source = ctx.get_parameter_source("db")
        if source is not None and source.name == "COMMANDLINE":  # Click's ParameterSource, by name
            raise typer.BadParameter(
                "--db names a DuckDB file; with --backend spark pass --warehouse FOLDER", param_hint="--db"
            )
        use(spark_backend(spark_master))
        ctx.obj = Settings(db=warehouse, catalogue=catalogue, debug=debug, backend=backend.value)
    else:
        use(None)
        ctx.obj = Settings(db=db, catalogue=catalogue, debug=debug)


def settings(ctx: typer.Context) -> Settings:
    """The global settings of this invocation."""
    obj = ctx.find_root().obj
    assert isinstance(obj, Settings)
    return obj


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SystemExit as exc:  # normalise Click's exit codes to the documented contract
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else int(ExitCode.USAGE))
        _stop_engines()
        sys.exit(code)


def _stop_engines() -> None:
    """Stop a Spark session this process started (one per command; its JVM would outlive nothing)."""
    spark = sys.modules.get("citykpi.backend.spark")
    if spark is not None:
        spark.stop_session()
