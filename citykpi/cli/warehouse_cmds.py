"""Warehouse commands: ``areas load``, ``ingest``, ``db info``, ``db rejects``, ``query``, ``test``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from citykpi.cli.app import app, settings
from citykpi.cli.options import (
    ForceOpt,
    OutputOpt,
    QueryFormat,
    TableFormat,
    TableFormatOpt,
    TestFormat,
    TextOrJson,
    WaitOpt,
)
from citykpi.cli.output import check_destination, check_output, emit_frame, write_or_echo
from citykpi.errors import ExitCode

if TYPE_CHECKING:
    from citykpi.warehouse.ingest import IngestReport

areas_app = typer.Typer(help="The area registry (city → district → street).", no_args_is_help=True)
db_app = typer.Typer(help="The DuckDB warehouse.", no_args_is_help=True)
app.add_typer(areas_app, name="areas")
app.add_typer(db_app, name="db")


@areas_app.command("load")
def areas_load(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ..., help="Areas file: CSV, Parquet or YAML (id, name, name_en, level, parent, …)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Allow dropping areas that stored data still references."
    ),
    wait: WaitOpt = 0.0,
) -> None:
    """Validate an areas file and replace the area registry in one transaction.

    Columns: id, name (zh), name_en, level (city/district/street), parent, population (optional),
    groups (optional, ';'-separated). Top-level areas have level city and no parent (one city, or
    several, e.g. countries with their cities as districts); every parent one level up. Area keys
    stay stable across reloads.

    Example: citykpi areas load areas.csv
    """
    from citykpi.render.format import safe_text
    from citykpi.warehouse import Warehouse, load_areas

    with Warehouse.open(settings(ctx).db, wait=wait) as wh:
        report = load_areas(wh, file, force=force)
    levels = ", ".join(f"{n} {lvl}" for lvl, n in report.by_level.items())
    if report.roots > 1:
        levels += f"; {report.roots} top-level areas"
    typer.echo(
        f"Loaded {report.total} areas ({levels}) from {safe_text(report.path, one_line=True)}: "
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
    fmt: str | None = typer.Option(None, "--format", "-f", help="long (default) | wide | source."),
    feed: str | None = typer.Option(
        None,
        "--feed",
        help="Read the files with this catalogue feed's mapping (feeds:), or 'auto' to pick each file's feed "
        "by its files: globs; options given here win over the feed's.",
    ),
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
    constants: list[str] = typer.Option(
        [],
        "--set",
        help="FIELD=VALUE: the same value for every row, for a column the file lacks "
        "(e.g. --set period=2020 --set area_id=CQ; repeatable).",
    ),
    missing: list[str] = typer.Option(
        [],
        "--missing",
        help="A value cell meaning 'no value' (e.g. ':', '..', '-', 'NA', '' for an empty cell): recorded as "
        "missing (counted by `citykpi quality`), not rejected. Repeatable.",
    ),
    dims: list[str] = typer.Option(
        [],
        "--dim",
        help="DIMENSION=COLUMN: a breakdown column (e.g. --dim sex=Gender). Rows with a breakdown are kept "
        "beside the headline series for consistency checks. Repeatable.",
    ),
    encoding: str = typer.Option(
        "auto",
        "--encoding",
        help="Text encoding of CSV files: auto (UTF-8 or GB18030, detected), utf-8 (refuse any other) "
        "or gb18030 (read as GB18030 even when the bytes are also valid UTF-8).",
    ),
    on_duplicate: str = typer.Option(
        "reject", "--on-duplicate", help="Rows already stored: reject | replace (keeps history) | keep."
    ),
    strict: bool = typer.Option(False, "--strict", help="Reject the whole file if any row is bad."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and report; write nothing."),
    force: bool = typer.Option(False, "--force", help="Load files again even if already loaded."),
    wait: WaitOpt = 0.0,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only problems (for cron)."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the report as JSON on stdout (per file: status, counts, batch, reasons)."
    ),
) -> None:
    """Validate data files and load them into the warehouse, one transaction per file.

    Bad rows go to the `rejects` table with file, row, column and reason. A file already loaded
    (same sha256) is skipped unless --force. Real public tables: --set gives a column the file lacks,
    --map area_id=country+city joins several columns into one area id (parts joined with '/'),
    --missing names the file's missing-value tokens, --dim its breakdown columns; --feed reads a file
    as a catalogue feed declares (its mapping, tokens, dimensions and recodes), --feed auto by file name.

    Exit codes: 0 all rows loaded (or files unchanged); 1 some rows or a whole file were rejected
    (the good rows of a non-strict file are still loaded); 2 usage error; 3 data or database error.

    Example: citykpi ingest inbox/*.csv --on-duplicate replace
    """
    from citykpi.catalogue import load_catalogue
    from citykpi.warehouse import IngestOptions, Warehouse, ingest
    from citykpi.warehouse.ingest import check_options, parse_map, parse_set
    from citykpi.warehouse.ingest.feeds import AUTO, feed_by_id, ingest_feed, options_for_feed

    cfg = settings(ctx)
    explicit = [name for name, given in (("fmt", fmt is not None), ("source", source is not None)) if given]
    catalogue = load_catalogue(cfg.catalogue)
    if fmt is None and feed not in (None, AUTO):
        fmt = feed_by_id(catalogue, str(feed)).format
    fmt = fmt or "long"
    mapping, wide = parse_map(maps, fmt)
    formats, _ = parse_map(date_formats, "source", option="--date-format", example="period=%d.%m.%Y")
    dimensions, _ = parse_map(dims, "source", option="--dim", example="sex=Gender")
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
        constants=parse_set(constants, fmt),
        missing=tuple(missing),
        dimensions=dimensions,
        encoding=encoding,
    )
    if feed is None:
        check_options(catalogue, options)  # before the database is opened (and perhaps created)
    elif feed != AUTO:
        check_options(catalogue, options_for_feed(feed_by_id(catalogue, feed), options, explicit))
    progress, stop = _progress(quiet or as_json)
    try:
        with Warehouse.open(cfg.db, wait=wait) as wh:
            if feed is None:
                report = ingest(wh, catalogue, paths, options, progress=progress)
            else:
                report = ingest_feed(
                    wh, catalogue, paths, feed, options, explicit=explicit, progress=progress
                )
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
    """One line per file (and its reasons), then the totals; with --quiet only problems, on stderr.

    File names, messages and reasons can quote data: their control characters are shown, not sent.
    """
    from citykpi.render.format import safe_text

    for f in report.files:
        if quiet and not f.has_rejects:
            continue
        line = f"{f.status:9} {safe_text(f.path, one_line=True)}: {f.rows_loaded} loaded, {f.rows_rejected} rejected"
        if f.rows_skipped:
            line += f", {f.rows_skipped} kept as stored"
        if f.rows_replaced:
            line += f", {f.rows_replaced} replaced"
        if f.batch_id is not None:
            line += f" (batch {f.batch_id})"
        typer.echo(line, err=quiet)
        if f.message:
            typer.echo(f"          {safe_text(f.message, one_line=True)}", err=quiet)
        for reason, count in f.rejects.items():
            typer.echo(f"          {count:>8} × {safe_text(reason, one_line=True)}", err=quiet)
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

    from citykpi.render.format import safe_text

    def log(message: str, done: int, total: int) -> None:
        typer.echo(f"[{done}/{total}] {safe_text(message, one_line=True)}", err=True)

    return log, lambda: None


@app.command("query")
def query_cmd(
    ctx: typer.Context,
    sql: str = typer.Argument(..., help="One SELECT / WITH / SHOW / DESCRIBE / EXPLAIN statement."),
    fmt: QueryFormat = typer.Option(QueryFormat.text, "--format", "-f", help="Output format."),
    wait: WaitOpt = 0.0,
) -> None:
    """Run one read-only SQL statement against the warehouse (files, COPY, ATTACH and writes are blocked).

    Example: citykpi query "SELECT reason, count(*) FROM rejects GROUP BY ALL" --format csv
    """
    import polars as pl

    from citykpi.warehouse import run_query

    frame = run_query(settings(ctx).db, sql, wait=wait)
    if (
        fmt is QueryFormat.csv
    ):  # a cell like =cmd|… must not become a formula when the file is opened in a spreadsheet
        from citykpi.render.exports import frame_csv

        typer.echo(frame_csv(frame), nl=False)
    elif fmt is QueryFormat.json:
        typer.echo(frame.write_json())
    else:
        with pl.Config(tbl_rows=100, tbl_cols=-1, fmt_str_lengths=80, tbl_width_chars=200):
            typer.echo(str(frame))


@app.command("test")
def test_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(Path("tests"), help="A test file or a folder of *_test.yaml files."),
    fmt: TestFormat = typer.Option(
        TestFormat.text, "--format", "-f", help="Output format: text, json, github or junit."
    ),
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """Run catalogue unit tests: fixture observations with the expected value and colour.

    Each test evaluates its fixtures in a fresh temporary warehouse and compares value, status,
    band label or target status per indicator × area; failures show expected vs actual, and the
    indicators no test covers are listed. Exit 0 when all pass, 1 when any fails, 2 on bad usage,
    3 when PATH does not exist or a test file is broken. Formats: text (for people), json
    (schema_version 1), github (an ::error annotation at the line of each failing expectation),
    junit (a test suite per file, a test case per case, for CI test reports).

    Example: citykpi test tests/catalogue_tests/ --format junit --output test-results.xml
    """
    from citykpi.engine.testing import run_tests
    from citykpi.render.testreport import render_test_report

    check_output(ctx, output, fmt.value, force=force, catalogues=[path])
    report = run_tests(path, catalogue_path=settings(ctx).catalogue)
    write_or_echo(render_test_report(report, fmt.value), output)
    if output is not None:
        passed = len(report.cases) - len(report.failed)
        typer.echo(f"{passed} passed, {len(report.failed)} failed (report written to {output})")
    if report.failed:
        raise typer.Exit(int(ExitCode.FAILED))


@db_app.command("info")
def db_info_cmd(
    ctx: typer.Context,
    fmt: TextOrJson = typer.Option(TextOrJson.text, "--format", "-f", help="Output format."),
    wait: WaitOpt = 0.0,
) -> None:
    """Show the warehouse: tables with row counts, observation dates, areas, indicators, last batches.

    Example: citykpi db info --format json
    """
    import json

    from citykpi.render.format import fmt_timestamp, safe_text
    from citykpi.warehouse import Warehouse, db_info

    with Warehouse.open(settings(ctx).db, read_only=True, create=False, wait=wait) as wh:
        info = db_info(wh)
    if fmt is TextOrJson.json:
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
            f"{b['rows_rejected']:>8} rejected  {fmt_timestamp(b['finished_at'])}  "
            f"{safe_text(b['path'], one_line=True)}"
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
    fmt: TableFormatOpt = TableFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="Table format: rows (or batches) shown."),
    wait: WaitOpt = 0.0,
) -> None:
    """Show what ingest rejected: per batch with the reasons, or one batch's rows (row, column, text, reason).

    The csv of a batch is what to send back to whoever sent the file: every rejected row with its
    1-based data row, the column, the cell as written and why (formula-like cells neutralised).

    Example: citykpi db rejects --batch latest --format csv -o rejected-rows.csv
    """
    from citykpi.render.terminal import make_console, print_rejects
    from citykpi.warehouse import Warehouse, reject_batches, reject_rows, resolve_batch

    check_destination(ctx, fmt.value, output, force=force)
    with Warehouse.open(settings(ctx).db, read_only=True, create=False, wait=wait) as wh:
        batch_id = resolve_batch(wh, batch) if batch is not None else None
        if batch_id is not None:
            frame = reject_rows(wh, batch_id)
        else:
            frame = reject_batches(wh, limit if fmt is TableFormat.table else None)
    if fmt is TableFormat.table:
        print_rejects(make_console(), frame, batch_id=batch_id, limit=limit)
    else:
        emit_frame(frame, fmt.value, output)
