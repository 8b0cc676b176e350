"""The command line: thin commands over the library.

Each command parses options, makes one library call, renders the result and maps it to an exit
code. The single error boundary is :class:`_ErrorBoundary`: a :class:`CitykpiError` becomes
``Error: …`` on stderr and its exit code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
import typer.core

from citykpi import __version__
from citykpi.errors import CitykpiError, EngineError, ExitCode

if TYPE_CHECKING:
    from citykpi.warehouse.ingest import IngestReport


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
        except EngineError as exc:
            self._engine_failure(ctx, exc, exc.cause or exc)
        except CitykpiError as exc:
            settings = ctx.obj if isinstance(ctx.obj, Settings) else None
            if settings is not None and settings.debug:
                raise
            typer.echo(f"Error: {exc}", err=True)
            ctx.exit(int(exc.exit_code))
        except Exception as exc:
            # a raw engine exception escaping the library: the backend says what is its own; anything
            # else is a bug and propagates with its traceback
            from citykpi.backend import engine_error

            if engine_error(exc) is None:
                raise
            self._engine_failure(ctx, exc, exc)

    @staticmethod
    def _engine_failure(ctx: Any, exc: BaseException, cause: BaseException) -> None:
        """The SQL engine failed under the library (damaged file, disk full, I/O error): a message, not a traceback."""
        settings = ctx.obj if isinstance(ctx.obj, Settings) else None
        if settings is not None and settings.debug:
            raise exc
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        typer.echo(
            f"Error: database error: {first}\n  hint: the database file may be damaged or its disk full or "
            "read-only; nothing more was written. Check `citykpi db info`; --debug shows the traceback",
            err=True,
        )
        ctx.exit(int(ExitCode.ERROR))


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


def _unknown(what: str, ref: str, ids: Iterable[str]) -> Exception:
    """The usage error for an id the catalogue lacks, naming the closest ids when there are any."""
    import difflib

    from citykpi.errors import UsageError

    close = difflib.get_close_matches(ref, list(ids), n=3)
    hint = f"did you mean {', '.join(close)}?" if close else "see the ids with `citykpi catalogue list`"
    return UsageError(f"unknown {what} {ref!r}", hint=hint)


def _write_or_echo(text: str, output: Path | None) -> None:
    """Write ``text`` to ``output`` (creating parent folders) or print it to stdout."""
    if output is None:
        typer.echo(text, nl=False)
        return
    from citykpi.render.exports import atomic_write

    output.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    atomic_write(output, write)


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
    level: str | None = typer.Option(
        None, "--level", help="Only indicators reported at city, district or street."
    ),
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
    as_json: bool = typer.Option(
        False, "--json", help="Print the report as JSON on stdout (per file: status, counts, batch, reasons)."
    ),
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
    from citykpi.warehouse.ingest import check_options, parse_map

    cfg = settings(ctx)
    mapping, wide = parse_map(maps, fmt)
    formats, _ = parse_map(date_formats, "source", option="--date-format", example="period=%d.%m.%Y")
    catalogue = load_catalogue(cfg.catalogue)
    options = IngestOptions(
        fmt=fmt,  # type: ignore[arg-type]  # checked by check_options
        source=source,
        mapping=mapping,
        wide=wide,
        on_duplicate=on_duplicate,  # type: ignore[arg-type]
        strict=strict,
        dry_run=dry_run,
        force=force,
        date_formats=formats,
    )
    check_options(catalogue, options)  # before the database is opened (and perhaps created)
    progress, stop = _progress(quiet or as_json)
    try:
        with Warehouse.open(cfg.db, wait=wait) as wh:
            report = ingest(wh, catalogue, paths, options, progress=progress)
    finally:
        stop()
    if as_json:
        import json

        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_ingest(report, quiet)
    if report.has_rejects:
        raise typer.Exit(int(ExitCode.FAILED))


def _print_ingest(report: IngestReport, quiet: bool) -> None:
    """One line per file (and its reasons), then the totals; with --quiet only problems, on stderr."""
    for f in report.files:
        if quiet and not f.has_rejects:
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
    if quiet:
        return
    # rows rejected in a recorded batch can be listed; a dry run or a whole-file refusal left none
    batches = [f.batch_id for f in report.files if f.rows_rejected and f.batch_id is not None]
    rej = ""
    if len(batches) == 1:
        rej = f" (the rows: citykpi db rejects --batch {batches[0]})"
    elif batches:
        rej = " (the rows: citykpi db rejects --batch N, for each batch above)"
    what = "would load" if report.dry_run else "loaded"
    typer.echo(
        f"{len(report.files)} file(s): {what} {report.rows_loaded} rows, rejected {report.rows_rejected}{rej}"
    )


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

    from citykpi.render.format import fmt_timestamp
    from citykpi.warehouse import Warehouse, db_info

    _choice(fmt, ("text", "json"), "--format")
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
            f"{b['rows_rejected']:>8} rejected  {fmt_timestamp(b['finished_at'])}  {b['path']}"
        )


@db_app.command("rejects")
def db_rejects_cmd(
    ctx: typer.Context,
    batch: str | None = typer.Option(
        None,
        "--batch",
        "-b",
        help="The rows of this batch (a number or 'latest'); default: a summary per batch.",
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table | csv | json."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write csv/json to FILE (atomic)."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="Table format: rows (or batches) shown."),
    wait: float = typer.Option(0.0, "--wait", min=0, help=_WAIT_HELP),
) -> None:
    """Show what ingest rejected: per batch with the reasons, or one batch's rows (row, column, text, reason).

    The csv of a batch is what to send back to whoever sent the file: every rejected row with its
    1-based data row, the column, the cell as written and why (formula-like cells neutralised).

    Example: citykpi db rejects --batch latest --format csv -o rejected-rows.csv
    """
    from citykpi.errors import UsageError
    from citykpi.render.diagnostics import rows_json
    from citykpi.render.exports import frame_csv
    from citykpi.render.terminal import make_console, print_rejects
    from citykpi.warehouse import Warehouse, reject_batches, reject_rows, resolve_batch

    _choice(fmt, ("table", "csv", "json"), "--format")
    if fmt == "table" and output is not None:
        raise UsageError("--output needs --format csv or json")
    with Warehouse.open(settings(ctx).db, read_only=True, create=False, wait=wait) as wh:
        batch_id = resolve_batch(wh, batch) if batch is not None else None
        if batch_id is not None:
            frame = reject_rows(wh, batch_id)
        else:
            frame = reject_batches(wh, limit if fmt == "table" else None)
    if fmt == "table":
        print_rejects(make_console(), frame, batch_id=batch_id, limit=limit)
        return
    _write_or_echo(frame_csv(frame) if fmt == "csv" else rows_json(frame.to_dicts()), output)
    if output is not None:
        typer.echo(f"wrote {output} ({frame.height} rows)", err=True)


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

    from citykpi.warehouse import run_query

    _choice(fmt, ("text", "csv", "json"), "--format")
    frame = run_query(settings(ctx).db, sql, wait=wait)
    if fmt == "csv":  # a cell like =cmd|… must not become a formula when the file is opened in a spreadsheet
        from citykpi.render.exports import frame_csv

        typer.echo(frame_csv(frame), nl=False)
    elif fmt == "json":
        typer.echo(frame.write_json())
    else:
        with pl.Config(tbl_rows=100, tbl_cols=-1, fmt_str_lengths=80, tbl_width_chars=200):
            typer.echo(str(frame))


# --- engine commands (evaluate, test) ----------------------------------------------------------


@app.command("test")
def test_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(Path("tests"), help="A test file or a folder of *_test.yaml files."),
    output_format: str = typer.Option("text", "--format", help="text or json."),
) -> None:
    """Run catalogue unit tests: fixture observations with the expected value and colour.

    Each test evaluates its fixtures in a fresh temporary warehouse and compares value, status,
    band label or target status per indicator × area; failures show expected vs actual, and the
    indicators no test covers are listed. Exit 0 when all pass, 1 when any fails.

    Example: citykpi test tests/catalogue_tests/
    """
    from citykpi.engine.testing import run_tests, summary_lines

    fmt = _choice(output_format, ("text", "json"), "--format")
    report = run_tests(path, catalogue_path=settings(ctx).catalogue)
    if fmt == "json":
        typer.echo(report.to_json())
    else:
        for line in summary_lines(report):
            typer.echo(line)
    if report.failed:
        raise typer.Exit(int(ExitCode.FAILED))


# --- scorecard commands (show, alerts, rank, diff, run) -------------------------------------
#
# Exit codes (a published contract, see citykpi/errors.py): 0 success; 1 the scorecard breached
# --fail-on (default never for `evaluate`, red for `run`); 2 usage; 3 data, catalogue or
# environment error.

runs_app = typer.Typer(help="Persisted evaluation runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")

_OUTPUT_FORMATS = ("table", "csv", "parquet", "json", "jsonl", "markdown", "html", "xlsx", "junit")


def _sc_day(option: str, value: str | None) -> Any:
    """Parse a date option: YYYY-MM-DD, 'today' or 'yesterday' (None stays None)."""
    from datetime import date, timedelta

    from citykpi.errors import UsageError

    if value is None:
        return None
    if value == "today":
        return date.today()
    if value == "yesterday":
        return date.today() - timedelta(days=1)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} {value!r}: expected a date YYYY-MM-DD, 'today' or 'yesterday'") from None


def _sc_statuses(values: list[str]) -> list[str]:
    from citykpi.catalogue.model import STATUSES

    return [_choice(v, STATUSES, "--status") for v in values]


def _sc_fail_on(value: str) -> str:
    from citykpi.engine.scorecard import FAIL_ON

    return _choice(value, FAIL_ON, "--fail-on")


def _sc_colour(value: str, option: str) -> str:
    from citykpi.catalogue.model import COLOURS

    return _choice(value, COLOURS, option)


def _sc_levels(values: list[str]) -> list[str]:
    from citykpi.catalogue.model import LEVELS

    return [_choice(v, LEVELS, "--level") for v in values]


def _sc_kinds(values: list[str]) -> list[str]:
    from citykpi.catalogue.model import KINDS

    return [_choice(v, KINDS, "--kind") for v in values]


@app.command("evaluate")
def evaluate_cmd(
    ctx: typer.Context,
    date_: str | None = typer.Option(
        None, "--date", "-d", help="Evaluate as of this date (YYYY-MM-DD); default the newest data."
    ),
    period: str = typer.Option("day", "--period", "-p", help="day | week | month | quarter | year."),
    level: list[str] = typer.Option(
        [], "--level", help="Only this level (repeatable): city, district, street."
    ),
    area: list[str] = typer.Option([], "--area", help="Only this area id (repeatable)."),
    domain: list[str] = typer.Option([], "--domain", help="Only this domain (repeatable)."),
    kind: list[str] = typer.Option([], "--kind", help="Only kpi or vital_sign (repeatable)."),
    status: list[str] = typer.Option(
        [],
        "--status",
        help="Only show or export cells with this status (repeatable); --fail-on still judges every cell.",
    ),
    indicator: str | None = typer.Option(
        None, "--indicator", "-i", help="Indicator id glob, e.g. 'env.air.*'."
    ),
    lang: str = typer.Option("zh", "--lang", help="Names and labels: zh | en."),
    fmt: str = typer.Option("table", "--format", "-f", help=" | ".join(_OUTPUT_FORMATS) + "."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the export to FILE (atomic)."),
    fail_on: str = typer.Option(
        "never",
        "--fail-on",
        help="Exit 1 when a cell is at or above: never | yellow | orange | red. "
        "junit marks failures at this colour (at red when never).",
    ),
    explain: bool = typer.Option(False, "--explain", help="Print the generated SQL instead of evaluating."),
    why: bool = typer.Option(False, "--why", help="Table format: add the one-line reason of each colour."),
    group_by: str = typer.Option("domain", "--group-by", help="Table format: domain | area."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Table format: rows per group."),
    as_ingested: bool = typer.Option(
        False, "--as-ingested", help="Replay what was known at the end of --date (batches finished by then)."
    ),
    record: bool = typer.Option(
        True,
        "--record/--no-record",
        help="Record the run (default). --no-record opens the database read-only and stores nothing: "
        "for a look that should leave no trace, or a read-only copy.",
    ),
    wait: float = typer.Option(0.0, "--wait", min=0, help=_WAIT_HELP),
) -> None:
    """Evaluate the catalogue as of a date, record the run, and print or export the scorecard.

    The table groups cells by domain and area: value with unit, colour with a text label, change
    arrows, target progress, a sparkline, counts per colour and the indices. Exports: csv, parquet,
    json (docs/scorecard-json.md), jsonl, markdown, html (one self-contained file), xlsx, junit
    (one test case per indicator × area). Text formats go to stdout unless --output is given.

    Exit codes: 0 ok; 1 a cell is at or above --fail-on; 2 usage error; 3 data, catalogue or database error.

    Example: citykpi evaluate --date 2026-11-24 --level district --format html -o report.html --fail-on red
    """
    from citykpi.catalogue import load_catalogue
    from citykpi.catalogue.model import GRAINS
    from citykpi.engine.evaluate import evaluate
    from citykpi.engine.evaluate import explain as explain_sql
    from citykpi.errors import UsageError
    from citykpi.render.exports import TEXT_FORMATS, junit_fail_on, render_text, write_scorecard
    from citykpi.warehouse import Warehouse

    cfg = settings(ctx)
    as_of = _sc_day("--date", date_)
    _choice(period, GRAINS, "--period")
    _choice(lang, ("zh", "en"), "--lang")
    _choice(fmt, _OUTPUT_FORMATS, "--format")
    _sc_fail_on(fail_on)
    _choice(group_by, ("domain", "area"), "--group-by")
    statuses = _sc_statuses(status)
    levels, kinds = _sc_levels(level), _sc_kinds(kind)
    if fmt == "table" and output is not None:
        raise UsageError("--output needs an export format, e.g. --format html")
    if fmt not in TEXT_FORMATS and fmt != "table" and output is None:
        raise UsageError(f"--format {fmt} is binary; give a file with --output")
    if as_ingested and as_of is None:
        raise UsageError("--as-ingested needs --date")
    catalogue = load_catalogue(cfg.catalogue)
    if explain:
        with Warehouse.open(cfg.db, read_only=True, create=False, wait=wait) as wh:
            typer.echo(explain_sql(wh, catalogue, as_of=as_of, grain=period))
        return
    with Warehouse.open(cfg.db, read_only=not record, create=False, wait=wait) as wh:
        scorecard = evaluate(
            wh,
            catalogue,
            as_of=as_of,
            grain=period,
            levels=levels or None,
            areas=area or None,
            domains=domain or None,
            kinds=kinds or None,
            indicator_glob=indicator,
            as_ingested=as_ingested,
            persist=record,
        )
    # --status only chooses what is shown: the exit code judges every evaluated cell, so a cron line
    # that prints the greens still fails on a red
    breached = scorecard.breaches(fail_on)
    if statuses:
        scorecard = scorecard.filter(statuses=statuses)
    junit = junit_fail_on(fail_on)
    if output is not None:
        write_scorecard(scorecard, fmt, output, lang=lang, fail_on=junit)
        run = f"run {scorecard.run_id}" if scorecard.run_id is not None else "not recorded"
        typer.echo(f"wrote {output} ({run}, {scorecard.cells.height} cells)", err=True)
    elif fmt == "table":
        from citykpi.render.terminal import make_console, print_lines, print_scorecard

        console = make_console()
        shown = scorecard
        if not level and not area and scorecard.cells.height:
            # a thousand streets do not fit a terminal: the table shows city and districts by default
            shown = scorecard.filter(levels=["city", "district"])
            hidden = scorecard.cells.height - shown.cells.height
        else:
            hidden = 0
        print_scorecard(console, shown, lang=lang, group_by=group_by, limit=limit, explain=why)
        if hidden:
            print_lines(
                console, [f"({hidden} street-level cells not shown: add --level street or --area ID)"]
            )
    else:
        typer.echo(render_text(scorecard, fmt, lang=lang, fail_on=junit), nl=False)
    if breached:
        raise typer.Exit(int(ExitCode.FAILED))


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    indicator: str = typer.Argument(..., help="Indicator id, e.g. env.air.aqi."),
    area: list[str] = typer.Option([], "--area", help="Only this area id (repeatable)."),
    from_: str | None = typer.Option(None, "--from", help="History from this date (YYYY-MM-DD)."),
    to: str | None = typer.Option(None, "--to", help="Evaluate as of this date; default the newest data."),
    period: str = typer.Option("day", "--period", "-p", help="day | week | month | quarter | year."),
    lang: str = typer.Option("zh", "--lang", help="zh | en."),
    wait: float = typer.Option(0.0, "--wait", min=0, help=_WAIT_HELP),
) -> None:
    """Drill into one indicator: definition, bands, current colours and why, history table and chart, target.

    Nothing is recorded (the database is opened read-only).

    Example: citykpi show env.air.aqi --area 500103 --from 2026-11-01 --to 2026-11-24
    """
    import polars as pl

    from citykpi.catalogue import load_catalogue
    from citykpi.catalogue.model import GRAINS
    from citykpi.engine.evaluate import evaluate
    from citykpi.render.terminal import make_console, print_indicator
    from citykpi.warehouse import Warehouse

    cfg = settings(ctx)
    start, end = _sc_day("--from", from_), _sc_day("--to", to)
    _choice(period, GRAINS, "--period")
    _choice(lang, ("zh", "en"), "--lang")
    catalogue = load_catalogue(cfg.catalogue)
    if indicator not in catalogue.by_id:
        raise _unknown("indicator", indicator, catalogue.by_id)
    with Warehouse.open(cfg.db, read_only=True, create=False, wait=wait) as wh:
        scorecard = evaluate(
            wh,
            catalogue,
            as_of=end,
            grain=period,
            areas=area or None,
            indicator_glob=indicator,
            persist=False,
            history_levels=("city", "district", "street"),
            history_from=start,
        )
    # evaluate() already kept the indicator and the areas (groups expanded to their members)
    history = scorecard.history
    if start is not None:  # it reads back further than --from
        history = history.filter(pl.col("period_start") >= start)
    print_indicator(make_console(), catalogue.indicator(indicator), scorecard.cells, history, lang=lang)


@app.command("alerts")
def alerts_cmd(
    ctx: typer.Context,
    date_: str | None = typer.Option(None, "--date", "-d", help="As of this date; default the newest data."),
    min_colour: str = typer.Option(
        "orange", "--min", help="Least severe colour shown: yellow | orange | red."
    ),
    level: list[str] = typer.Option(
        [], "--level", help="Only this level (repeatable): city, district, street."
    ),
    area: list[str] = typer.Option([], "--area", help="Only this area id (repeatable)."),
    period: str = typer.Option("day", "--period", "-p", help="day | week | month | quarter | year."),
    lang: str = typer.Option("zh", "--lang", help="zh | en."),
    fail_on: str = typer.Option(
        "never", "--fail-on", help="Exit 1 when an alert is at or above this colour."
    ),
    wait: float = typer.Option(0.0, "--wait", min=0, help=_WAIT_HELP),
) -> None:
    """What is red or orange now, what is new since the previous run, and how long each has persisted.

    "New" compares with the latest recorded run for an earlier date. Nothing is recorded.

    Example: citykpi alerts --date 2026-11-24 --min orange --level district
    """
    from citykpi.catalogue import load_catalogue
    from citykpi.catalogue.model import GRAINS
    from citykpi.engine.evaluate import evaluate
    from citykpi.engine.runs import previous_run
    from citykpi.render.terminal import make_console, print_alerts
    from citykpi.render.views import alerts

    cfg = settings(ctx)
    as_of = _sc_day("--date", date_)
    _sc_colour(min_colour, "--min")
    _choice(period, GRAINS, "--period")
    _choice(lang, ("zh", "en"), "--lang")
    _sc_fail_on(fail_on)
    levels = _sc_levels(level)
    catalogue = load_catalogue(cfg.catalogue)
    from citykpi.warehouse import Warehouse

    with Warehouse.open(cfg.db, read_only=True, create=False, wait=wait) as wh:
        scorecard = evaluate(
            wh,
            catalogue,
            as_of=as_of,
            grain=period,
            levels=levels or None,
            areas=area or None,
            persist=False,
            history_levels=(),
        )
        previous = previous_run(wh, scorecard.as_of, catalogue)
    frame = alerts(scorecard, previous, min_colour=min_colour)
    print_alerts(make_console(), frame, lang=lang, min_colour=min_colour, grain=period, as_of=scorecard.as_of)
    if scorecard.breaches(fail_on):
        raise typer.Exit(int(ExitCode.FAILED))


@app.command("rank")
def rank_cmd(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="An indicator id or an index id."),
    level: str = typer.Option("district", "--level", help="The level whose areas are ranked."),
    date_: str | None = typer.Option(None, "--date", "-d", help="As of this date; default the newest data."),
    period: str = typer.Option("day", "--period", "-p", help="day | week | month | quarter | year."),
    lang: str = typer.Option("zh", "--lang", help="zh | en."),
    wait: float = typer.Option(0.0, "--wait", min=0, help=_WAIT_HELP),
) -> None:
    """The league table of areas for an indicator or an index, best first (the quarterly "airing").

    Indicators rank by colour first, then by value in the indicator's good direction; indices by
    score. Nothing is recorded.

    Example: citykpi rank index.operation --level district --period quarter
    """
    from citykpi.catalogue import load_catalogue
    from citykpi.catalogue.model import GRAINS, LEVELS
    from citykpi.engine.evaluate import evaluate
    from citykpi.render.terminal import make_console, print_league
    from citykpi.render.views import league_table
    from citykpi.warehouse import Warehouse

    cfg = settings(ctx)
    as_of = _sc_day("--date", date_)
    _choice(level, LEVELS, "--level")
    _choice(period, GRAINS, "--period")
    _choice(lang, ("zh", "en"), "--lang")
    catalogue = load_catalogue(cfg.catalogue)
    indicator = catalogue.by_id.get(ref)
    index = next((i for i in catalogue.indices if i.id == ref), None)
    if indicator is None and index is None:
        raise _unknown("indicator or index", ref, [*catalogue.by_id, *(i.id for i in catalogue.indices)])
    with Warehouse.open(cfg.db, read_only=True, create=False, wait=wait) as wh:
        scorecard = evaluate(
            wh,
            catalogue,
            as_of=as_of,
            grain=period,
            indicator_glob=ref if indicator is not None else None,
            persist=False,
            history_levels=(),
        )
    table = league_table(scorecard, ref, level=level, direction=indicator.direction if indicator else None)
    name = (indicator or index).name.pick(lang)  # type: ignore[union-attr]  # one of them is set
    print_league(make_console(), table, title=f"{name} · {level} · {scorecard.as_of.isoformat()}", lang=lang)


@app.command("diff")
def diff_cmd(
    ctx: typer.Context,
    from_: str = typer.Option(
        "previous", "--from", help="Run id, date (its latest run), 'latest' or 'previous'."
    ),
    to: str = typer.Option("latest", "--to", help="Run id, date (its latest run), 'latest' or 'previous'."),
    lang: str = typer.Option("zh", "--lang", help="zh | en."),
    wait: float = typer.Option(0.0, "--wait", min=0, help=_WAIT_HELP),
) -> None:
    """Colour changes between two recorded runs: newly red, recovered, worse, better (default: the last two).

    Example: citykpi diff --from 2026-11-23 --to 2026-11-24
    """
    from citykpi.catalogue import load_catalogue
    from citykpi.engine.runs import diff_runs, load_run, resolve_run
    from citykpi.render.terminal import make_console, print_diff
    from citykpi.warehouse import Warehouse

    cfg = settings(ctx)
    _choice(lang, ("zh", "en"), "--lang")
    catalogue = load_catalogue(cfg.catalogue)
    with Warehouse.open(cfg.db, read_only=True, create=False, wait=wait) as wh:
        a, b = resolve_run(wh, from_), resolve_run(wh, to)
        frame = diff_runs(wh, a, b)
        names = load_run(wh, b, catalogue).cells
    print_diff(make_console(), frame, lang=lang, label_from=f"run {a}", label_to=f"run {b}", names=names)


@runs_app.command("list")
def runs_list_cmd(
    ctx: typer.Context,
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many runs, newest first."),
    wait: float = typer.Option(0.0, "--wait", min=0, help=_WAIT_HELP),
) -> None:
    """List recorded runs, newest first: id, when, as-of date, period, cells and counts per colour.

    Example: citykpi runs list -n 5
    """
    from citykpi.engine.runs import list_runs
    from citykpi.render.terminal import make_console, print_runs
    from citykpi.warehouse import Warehouse

    with Warehouse.open(settings(ctx).db, read_only=True, create=False, wait=wait) as wh:
        frame = list_runs(wh, limit=limit)
    print_runs(make_console(), frame)


@runs_app.command("prune")
def runs_prune_cmd(
    ctx: typer.Context,
    keep: int | None = typer.Option(None, "--keep", min=1, help="Keep this many most recent runs."),
    keep_days: int | None = typer.Option(
        None, "--keep-days", min=1, help="Keep the runs recorded within this many days."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be removed; remove nothing."),
    wait: float = typer.Option(0.0, "--wait", min=0, help=_WAIT_HELP),
) -> None:
    """Remove old runs (their cells and index scores) so the database stops growing.

    A run is kept when either rule keeps it; the latest run is always kept. Observations are
    never touched, so a removed run can be evaluated again. Keep at least 2 for the daily job:
    its alerts compare with the previous day's run.

    Example: citykpi runs prune --keep 90 --keep-days 90
    """
    from citykpi.engine.runs import prune_runs
    from citykpi.warehouse import Warehouse

    with Warehouse.open(settings(ctx).db, create=False, wait=wait) as wh:
        report = prune_runs(wh, keep=keep, keep_days=keep_days, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    span = f" (runs {report.runs[0]}–{report.runs[-1]})" if report.runs else ""
    typer.echo(
        f"{verb} {len(report.runs)} run(s){span}: {report.cells:,} cells, {report.index_scores:,} index "
        f"scores; {report.kept} run(s) kept"
    )


@app.command("run")
def run_cmd(
    config: Path = typer.Option(Path("citykpi.toml"), "--config", "-c", help="The job's TOML config file."),
    date_: str | None = typer.Option(
        None, "--date", "-d", help="Evaluate as of this date; default yesterday."
    ),
    fail_on: str | None = typer.Option(None, "--fail-on", help="Override the config's fail_on."),
    wait: float | None = typer.Option(None, "--wait", min=0, help="Seconds to wait for a running job."),
) -> None:
    """The unattended daily job: ingest the inbox, evaluate, record the run, export dated files, print alerts.

    Safe to repeat: loaded files are recognised by sha256 and exports are byte-identical for the same
    day. A lock (<database>.lock) stops overlapping runs. Log lines go to stderr. The config names
    database, catalogue, areas, inbox folder(s), archive (move | keep), outputs (folder, formats,
    name with {date} and {grain}) and fail_on (default red); see citykpi/cron.py.

    Exit codes: 0 ok; 1 a cell is at or above fail_on; 2 usage; 3 data, catalogue, database or lock error.

    Example: citykpi run --config /etc/citykpi/citykpi.toml --date 2026-11-24
    """
    from dataclasses import replace

    from citykpi.cron import RunConfig, run_job

    as_of = _sc_day("--date", date_)
    cfg = RunConfig.load(config)
    if fail_on is not None:
        cfg = replace(cfg, fail_on=_sc_fail_on(fail_on))
    if wait is not None:
        cfg = replace(cfg, wait=wait)
    result = run_job(cfg, as_of=as_of, log=lambda line: typer.echo(line, err=True))
    raise typer.Exit(int(result.exit_code))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SystemExit as exc:  # normalise Click's exit codes to the documented contract
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else int(ExitCode.USAGE))
        sys.exit(code)
