"""Recorded runs: ``diff``, ``runs list``, ``runs prune`` and the unattended daily job ``run``."""

from __future__ import annotations

from pathlib import Path

import typer

from citykpi.cli.app import app, settings
from citykpi.cli.options import (
    AtOpt,
    FailOn,
    ForceOpt,
    Lang,
    LangOpt,
    OutputOpt,
    TableFormat,
    TableFormatOpt,
    WaitOpt,
    city_instant,
    date_or_instant,
)
from citykpi.cli.output import check_destination, emit_frame

runs_app = typer.Typer(help="Persisted evaluation runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


@app.command("diff")
def diff_cmd(
    ctx: typer.Context,
    from_: str = typer.Option(
        "previous", "--from", help="Run id, date (its latest run), 'latest' or 'previous'."
    ),
    to: str = typer.Option("latest", "--to", help="Run id, date (its latest run), 'latest' or 'previous'."),
    lang: LangOpt = Lang.zh,
    fmt: TableFormatOpt = TableFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = 0.0,
) -> None:
    """Colour changes between two recorded runs: newly red, recovered, worse, better (default: the last two).

    Example: citykpi diff --from 2025-12-30 --to 2025-12-31
    """
    from citykpi.catalogue import load_catalogue
    from citykpi.engine.runs import diff_runs, load_run, resolve_run
    from citykpi.warehouse import Warehouse

    cfg = settings(ctx)
    check_destination(ctx, fmt.value, output, force=force)
    catalogue = load_catalogue(cfg.catalogue)
    with Warehouse.open(cfg.db, read_only=True, create=False, wait=wait) as wh:
        a, b = resolve_run(wh, from_), resolve_run(wh, to)
        frame = diff_runs(wh, a, b)
        names = load_run(wh, b, catalogue).cells if fmt is TableFormat.table else None
    if fmt is not TableFormat.table:
        emit_frame(frame, fmt.value, output)
        return
    from citykpi.render.terminal import make_console, print_diff

    print_diff(
        make_console(), frame, lang=lang.value, label_from=f"run {a}", label_to=f"run {b}", names=names
    )


@runs_app.command("list")
def runs_list_cmd(
    ctx: typer.Context,
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many runs, newest first."),
    fmt: TableFormatOpt = TableFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = 0.0,
) -> None:
    """List recorded runs, newest first: id, when, as-of date, period, cells and counts per colour.

    Example: citykpi runs list -n 5
    """
    from citykpi.engine.runs import list_runs
    from citykpi.warehouse import Warehouse

    check_destination(ctx, fmt.value, output, force=force)
    with Warehouse.open(settings(ctx).db, read_only=True, create=False, wait=wait) as wh:
        frame = list_runs(wh, limit=limit)
    if fmt is not TableFormat.table:
        emit_frame(frame, fmt.value, output)
        return
    from citykpi.render.terminal import make_console, print_runs

    print_runs(make_console(), frame)


@runs_app.command("prune")
def runs_prune_cmd(
    ctx: typer.Context,
    keep: int | None = typer.Option(None, "--keep", min=1, help="Keep this many most recent runs."),
    keep_days: int | None = typer.Option(
        None, "--keep-days", min=1, help="Keep the runs recorded within this many days."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be removed; remove nothing."),
    wait: WaitOpt = 0.0,
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
    at_: AtOpt = None,
    fail_on: FailOn | None = typer.Option(None, "--fail-on", help="Override the config's fail_on."),
    wait: float | None = typer.Option(None, "--wait", min=0, help="Seconds to wait for a running job."),
) -> None:
    """The unattended daily job: ingest the inbox, evaluate, record the run, export dated files, print alerts.

    Safe to repeat: loaded files are recognised by sha256 and exports are byte-identical for the same
    day. A lock (<database>.lock) stops overlapping runs. Log lines go to stderr. The config names
    database, catalogue, areas, inbox folder(s), archive (move | keep), outputs (folder, formats,
    name with {date} and {grain}) and fail_on (default red); see citykpi/cron.py.

    Exit codes: 0 ok; 1 a cell is at or above fail_on; 2 usage; 3 data, catalogue, database or lock error.

    With --at (an instant) the job evaluates that instant (with grain = "hour" in the config, an
    hourly job: `--at now` from cron every 15 minutes) and updates the alert lifecycle to it;
    {date} in the file names is then 2025-12-31T1400.

    Example: citykpi run --config /etc/citykpi/citykpi.toml --date 2025-12-31
    """
    from dataclasses import replace

    from citykpi.cron import RunConfig, run_job

    as_of, at = date_or_instant("--date", date_, at_)
    cfg = RunConfig.load(config)
    if at is not None:
        from citykpi.catalogue import load_catalogue

        at = city_instant("--at", at, load_catalogue(cfg.catalogue))
    if fail_on is not None:
        cfg = replace(cfg, fail_on=fail_on.value)
    if wait is not None:
        cfg = replace(cfg, wait=wait)
    result = run_job(cfg, as_of=as_of, at=at, log=lambda line: typer.echo(line, err=True))
    raise typer.Exit(int(result.exit_code))
