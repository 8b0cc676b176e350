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

catalogue_app = typer.Typer(
    help="Browse the indicator catalogue: list indicators, write the data dictionary.", no_args_is_help=True
)
app.add_typer(catalogue_app, name="catalogue")

_CHECK_FORMATS = ("text", "json", "github", "junit")
_LIST_FORMATS = ("text", "json", "csv")
_DOCS_FORMATS = ("md", "html")


def _choice(value: str, choices: tuple[str, ...], option: str) -> str:
    """The value if it is one of ``choices``, else a usage error (exit 2)."""
    from citykpi.errors import UsageError

    if value not in choices:
        raise UsageError(f"{option} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _write_or_echo(text: str, output: Path | None) -> None:
    """Write ``text`` to ``output`` (creating parent folders) or print it to stdout."""
    if output is None:
        typer.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(output)


@app.command("check")
def check_cmd(
    ctx: typer.Context,
    path: Path | None = typer.Argument(
        None, help="Catalogue folder or file (default: the global --catalogue).", show_default=False
    ),
    fmt: str = typer.Option("text", "--format", "-f", help="Output format: text, json, github or junit."),
    strict: bool = typer.Option(False, "--strict", help="Fail (exit 1) on warnings too."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the report to this file."),
) -> None:
    """Check the catalogue without any data: every problem with file:line:col and a rule code.

    Exit 0 when sound, 1 when there are errors (or warnings with --strict), 2 on bad usage, 3 when PATH does not exist. Formats: text (for people), json (schema_version 1), github (workflow annotations), junit (CI test reports).

    Example: citykpi check indicators/ --format github --strict
    """
    from citykpi.catalogue import check_catalogue
    from citykpi.render import diagnostics as plain

    fmt = _choice(fmt, _CHECK_FORMATS, "--format")
    result = check_catalogue(path if path is not None else settings(ctx).catalogue)
    if fmt == "text" and output is None:
        from citykpi.render.terminal import make_console, print_diagnostics

        print_diagnostics(make_console(), result)
    else:
        renderers = {
            "text": lambda: plain.diagnostics_text(result),
            "json": lambda: plain.diagnostics_json(result, strict=strict),
            "github": lambda: plain.diagnostics_github(result),
            "junit": lambda: plain.diagnostics_junit(result, strict=strict),
        }
        _write_or_echo(renderers[fmt](), output)
        if output is not None:
            typer.echo(f"{plain.summary_line(result)} (report written to {output})")
    raise typer.Exit(int(ExitCode.OK) if result.ok(strict) else int(ExitCode.FAILED))


@app.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema (draft 2020-12) of the catalogue YAML format, for editors and CI.

    Example: citykpi schema > catalogue.schema.json
    """
    from citykpi.catalogue.jsonschema import catalogue_schema_json

    typer.echo(catalogue_schema_json(), nl=False)


@catalogue_app.command("list")
def catalogue_list_cmd(
    ctx: typer.Context,
    domain: str | None = typer.Option(None, "--domain", help="Only this domain (e.g. environment)."),
    kind: str | None = typer.Option(None, "--kind", help="Only kpi or vital_sign."),
    tag: str | None = typer.Option(None, "--tag", help="Only indicators with this tag."),
    level: str | None = typer.Option(None, "--level", help="Only indicators reported at city, district or street."),
    fmt: str = typer.Option("text", "--format", "-f", help="Output format: text, json or csv."),
    lang: str = typer.Option("zh", "--lang", help="Name language in the text table: zh or en."),
) -> None:
    """List the catalogue's indicators, filtered by domain, kind, tag or level.

    Example: citykpi catalogue list --domain environment --level district --format csv
    """
    from citykpi.catalogue import load_catalogue
    from citykpi.catalogue.docs import indicator_rows
    from citykpi.catalogue.model import KINDS, LEVELS
    from citykpi.render import diagnostics as plain

    fmt = _choice(fmt, _LIST_FORMATS, "--format")
    if kind is not None:
        _choice(kind, KINDS, "--kind")
    if level is not None:
        _choice(level, LEVELS, "--level")
    _choice(lang, ("zh", "en"), "--lang")
    catalogue = load_catalogue(settings(ctx).catalogue)
    rows = indicator_rows(catalogue, domain=domain, kind=kind, tag=tag, level=level)
    if fmt == "json":
        typer.echo(plain.rows_json(rows), nl=False)
    elif fmt == "csv":
        typer.echo(plain.rows_csv(rows), nl=False)
    else:
        from citykpi.render.terminal import make_console, print_indicator_list

        print_indicator_list(make_console(), rows, lang=lang)


@catalogue_app.command("docs")
def catalogue_docs_cmd(
    ctx: typer.Context,
    fmt: str = typer.Option("md", "--format", "-f", help="md (Markdown) or html (one self-contained page)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Write the data dictionary: one section per domain, a row per indicator (names, unit, bands, target).

    Example: citykpi catalogue docs --format html --output catalogue.html
    """
    from citykpi.catalogue import load_catalogue
    from citykpi.catalogue.docs import data_dictionary_html, data_dictionary_markdown

    fmt = _choice(fmt, _DOCS_FORMATS, "--format")
    catalogue = load_catalogue(settings(ctx).catalogue)
    text = data_dictionary_html(catalogue) if fmt == "html" else data_dictionary_markdown(catalogue)
    _write_or_echo(text, output)
    if output is not None:
        typer.echo(f"Wrote the data dictionary of {len(catalogue.indicators)} indicators to {output}")


# --- warehouse commands (areas load, ingest, db info, query) ----------------------------------

areas_app = typer.Typer(help="The area registry (city → district → street).", no_args_is_help=True)
db_app = typer.Typer(help="The DuckDB warehouse.", no_args_is_help=True)
app.add_typer(areas_app, name="areas")
app.add_typer(db_app, name="db")

_WAIT_HELP = "Seconds to wait while another citykpi process holds the database (default: fail at once)."


@areas_app.command("load")
def areas_load(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ..., help="Areas file: CSV, Parquet or YAML (id, name, name_en, level, parent, …)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Allow dropping areas that stored data still references."
    ),
    wait: float = typer.Option(0.0, "--wait", min=0, help=_WAIT_HELP),
) -> None:
    """Validate an areas file and replace the area registry in one transaction.

    Columns: id, name (zh), name_en, level (city/district/street), parent, population (optional),
    groups (optional, ';'-separated). Exactly one city; every parent one level up. Area keys stay
    stable across reloads.

    Example: citykpi areas load areas.csv
    """
    from citykpi.warehouse import Warehouse, load_areas

    with Warehouse.open(settings(ctx).db, wait=wait) as wh:
        report = load_areas(wh, file, force=force)
    levels = ", ".join(f"{n} {lvl}" for lvl, n in report.by_level.items())
    typer.echo(
        f"Loaded {report.total} areas ({levels}) from {report.path}: "
        f"{len(report.added)} added, {report.kept} kept, {len(report.removed)} removed."
    )
    if report.orphaned_observations:
        typer.echo(
            f"Warning: {report.orphaned_observations} observations now point at removed areas.", err=True
        )


@app.command("ingest")
def ingest_cmd(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(..., help="Files, folders or globs (CSV, TSV, Parquet)."),
    fmt: str = typer.Option("long", "--format", "-f", help="long | wide | source."),
    source: str | None = typer.Option(
        None, "--source", help="Source id from the catalogue (with --format source)."
    ),
    maps: list[str] = typer.Option(
        [],
        "--map",
        help="Column mapping, repeatable. long/source: FIELD=COLUMN (e.g. area_id=district_code); "
        "wide: area_id=COLUMN, period=COLUMN and COLUMN=INDICATOR_ID.",
    ),
    date_formats: list[str] = typer.Option(
        [], "--date-format", help="COLUMN=STRPTIME, e.g. period=%d.%m.%Y (repeatable)."
    ),
    on_duplicate: str = typer.Option(
        "reject", "--on-duplicate", help="Rows already stored: reject | replace (keeps history) | keep."
    ),
    strict: bool = typer.Option(False, "--strict", help="Reject the whole file if any row is bad."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and report; write nothing."),
    force: bool = typer.Option(False, "--force", help="Load files again even if already loaded."),
    wait: float = typer.Option(0.0, "--wait", min=0, help=_WAIT_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only problems (for cron)."),
) -> None:
    """Validate data files and load them into the warehouse, one transaction per file.

    Bad rows go to the `rejects` table with file, row, column and reason. A file already loaded
    (same sha256) is skipped unless --force.

    Exit codes: 0 all rows loaded (or files unchanged); 1 some rows or a whole file were rejected
    (the good rows of a non-strict file are still loaded); 2 usage error; 3 data or database error.

    Example: citykpi ingest inbox/*.csv --on-duplicate replace
    """
    from citykpi.catalogue import load_catalogue
    from citykpi.warehouse import IngestOptions, Warehouse, ingest
    from citykpi.warehouse.ingest import parse_map

    cfg = settings(ctx)
    mapping, wide = parse_map(maps, fmt)
    formats, _ = parse_map(date_formats, "source")
    catalogue = load_catalogue(cfg.catalogue)
    options = IngestOptions(
        fmt=fmt,  # type: ignore[arg-type]  # checked by ingest()
        source=source,
        mapping=mapping,
        wide=wide,
        on_duplicate=on_duplicate,  # type: ignore[arg-type]
        strict=strict,
        dry_run=dry_run,
        force=force,
        date_formats=formats,
    )
    progress, stop = _progress(quiet)
    try:
        with Warehouse.open(cfg.db, wait=wait) as wh:
            report = ingest(wh, catalogue, paths, options, progress=progress)
    finally:
        stop()
    for f in report.files:
        bad = f.status == "rejected" or f.rows_rejected > 0
        if quiet and not bad:
            continue
        line = f"{f.status:9} {f.path}: {f.rows_loaded} loaded, {f.rows_rejected} rejected"
        if f.rows_skipped:
            line += f", {f.rows_skipped} kept as stored"
        if f.rows_replaced:
            line += f", {f.rows_replaced} replaced"
        if f.batch_id is not None:
            line += f" (batch {f.batch_id})"
        typer.echo(line, err=quiet)
        if f.message:
            typer.echo(f"          {f.message}", err=quiet)
        for reason, count in f.rejects.items():
            typer.echo(f"          {count:>8} × {reason}", err=quiet)
    if not quiet:
        rej = ' (see the rejects table: citykpi query "SELECT * FROM rejects")' if report.has_rejects else ""
        what = "would load" if report.dry_run else "loaded"
        typer.echo(
            f"{len(report.files)} file(s): {what} {report.rows_loaded} rows, rejected {report.rows_rejected}{rej}"
        )
    if report.has_rejects:
        raise typer.Exit(int(ExitCode.FAILED))


def _progress(quiet: bool) -> tuple[Any, Any]:
    """A progress callback: a Rich bar on a terminal, plain stderr lines otherwise, nothing when quiet."""
    if quiet:
        return None, lambda: None
    if sys.stderr.isatty():
        from citykpi.render.terminal import make_console, start_progress

        return start_progress(make_console(stderr=True), "ingest")

    def log(message: str, done: int, total: int) -> None:
        typer.echo(f"[{done}/{total}] {message}", err=True)

    return log, lambda: None


@db_app.command("info")
def db_info_cmd(
    ctx: typer.Context,
    fmt: str = typer.Option("text", "--format", "-f", help="text | json."),
    wait: float = typer.Option(0.0, "--wait", min=0, help=_WAIT_HELP),
) -> None:
    """Show the warehouse: tables with row counts, observation dates, areas, indicators, last batches.

    Example: citykpi db info --format json
    """
    import json

    from citykpi.errors import UsageError
    from citykpi.warehouse import Warehouse, db_info

    if fmt not in ("text", "json"):
        raise UsageError(f"unknown --format {fmt!r}; use text or json")
    with Warehouse.open(settings(ctx).db, read_only=True, create=False, wait=wait) as wh:
        info = db_info(wh)
    if fmt == "json":
        typer.echo(json.dumps(info.to_dict(), ensure_ascii=False, indent=2, default=str))
        return
    typer.echo(f"database        {info.path} (schema version {info.schema_version})")
    typer.echo(f"areas           {info.areas}")
    typer.echo(f"indicators      {info.indicators}")
    span = f"{info.observations_from} … {info.observations_to}" if info.observations_from else "none"
    typer.echo(f"observations    {info.tables.get('observations', 0)} ({span})")
    typer.echo("tables:")
    for name, rows in info.tables.items():
        typer.echo(f"  {name:<28} {rows:>12}")
    typer.echo("last batches:")
    if info.batches.is_empty():
        typer.echo("  none")
    for b in info.batches.iter_rows(named=True):
        typer.echo(
            f"  #{b['batch_id']:<5} {b['status']:<9} {b['target']:<16} {b['rows_loaded']:>10} loaded "
            f"{b['rows_rejected']:>8} rejected  {b['finished_at']:%Y-%m-%d %H:%M}  {b['path']}"
        )


@app.command("query")
def query_cmd(
    ctx: typer.Context,
    sql: str = typer.Argument(..., help="One SELECT / WITH / SHOW / DESCRIBE / EXPLAIN statement."),
    fmt: str = typer.Option("text", "--format", "-f", help="text | csv | json."),
    wait: float = typer.Option(0.0, "--wait", min=0, help=_WAIT_HELP),
) -> None:
    """Run one read-only SQL statement against the warehouse (files, COPY, ATTACH and writes are blocked).

    Example: citykpi query "SELECT reason, count(*) FROM rejects GROUP BY ALL" --format csv
    """
    import polars as pl

    from citykpi.errors import UsageError
    from citykpi.warehouse import run_query

    if fmt not in ("text", "csv", "json"):
        raise UsageError(f"unknown --format {fmt!r}; use text, csv or json")
    frame = run_query(settings(ctx).db, sql, wait=wait)
    if fmt == "csv":
        typer.echo(frame.write_csv(), nl=False)
    elif fmt == "json":
        typer.echo(frame.write_json())
    else:
        with pl.Config(tbl_rows=100, tbl_cols=-1, fmt_str_lengths=80, tbl_width_chars=200):
            typer.echo(str(frame))


# --- engine commands (evaluate, test) ----------------------------------------------------------

# --- scorecard commands (show, alerts, rank, diff, run) -------------------------------------


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SystemExit as exc:  # normalise Click's exit codes to the documented contract
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else int(ExitCode.USAGE))
        sys.exit(code)
