"""Recorded runs: ``diff``, ``runs list``, ``runs prune`` and the unattended daily job ``run``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from citykpi.cli.app import app, settings
from citykpi.cli.options import (
    FailOn,
    ForceOpt,
    Lang,
    LangOpt,
    OutputOpt,
    RunSet,
    RunsOpt,
    TableFormat,
    TableFormatOpt,
    WaitOpt,
    parse_day,
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
    runs: RunsOpt = RunSet.scheduled,
    lang: LangOpt = Lang.zh,
    fmt: TableFormatOpt = TableFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = 0.0,
) -> None:
    """Colour changes between two recorded runs: newly red, recovered, worse, better (default: the last two).

    'latest', 'previous' and a date choose among the scheduled runs (those of `citykpi run`);
    --runs all adds the ad-hoc runs of `evaluate --record`. A run id names any run.

    Example: citykpi diff --from 2025-12-30 --to 2025-12-31
    """
    from citykpi.catalogue import load_catalogue
    from citykpi.engine.runs import check_run_ref, diff_runs, load_run, resolve_run
    from citykpi.warehouse import Warehouse

    cfg = settings(ctx)
    check_run_ref(from_), check_run_ref(to)  # a bad date is a usage error before any lookup
    check_destination(ctx, fmt.value, output, force=force)
    catalogue = load_catalogue(cfg.catalogue)
    with Warehouse.open(cfg.db, read_only=True, create=False, wait=wait) as wh:
        only = runs is RunSet.scheduled
        a, b = resolve_run(wh, from_, scheduled_only=only), resolve_run(wh, to, scheduled_only=only)
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
    scheduled: bool = typer.Option(False, "--scheduled", help="Only the scheduled runs (`citykpi run`)."),
    fmt: TableFormatOpt = TableFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = 0.0,
) -> None:
    """List recorded runs, newest first: id, when, as-of date, period, scheduled or ad hoc, cells and counts.

    Example: citykpi runs list -n 5
    """
    from citykpi.engine.runs import list_runs
    from citykpi.warehouse import Warehouse

    check_destination(ctx, fmt.value, output, force=force)
    with Warehouse.open(settings(ctx).db, read_only=True, create=False, wait=wait) as wh:
        frame = list_runs(wh, limit=limit, scheduled_only=scheduled)
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
    its alerts compare with the previous day's run. Delivered and dropped digests of the daily
    job's outbox older than every kept run go too (undelivered and dead ones stay).

    Example: citykpi runs prune --keep 90 --keep-days 90
    """
    from citykpi.engine.runs import prune_runs
    from citykpi.notify.outbox import prune as prune_outbox
    from citykpi.warehouse import Warehouse

    with Warehouse.open(settings(ctx).db, create=False, wait=wait) as wh:
        report = prune_runs(wh, keep=keep, keep_days=keep_days, dry_run=dry_run)
        digests = prune_outbox(wh, removed=report.runs if dry_run else (), dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    span = f" (runs {report.runs[0]}–{report.runs[-1]})" if report.runs else ""
    typer.echo(
        f"{verb} {len(report.runs)} run(s){span}: {report.cells:,} cells, {report.index_scores:,} index "
        f"scores, {digests:,} delivered or dropped digest(s); {report.kept} run(s) kept"
    )


class LogFormat(StrEnum):
    """``run --log-format``."""

    text = "text"
    json = "json"


def _run_help() -> str:
    from citykpi.daily.health import RUN_OUTCOMES

    codes = "; ".join(f"{o.code} {o.health or ('verdict' if o.code == 1 else 'usage')}" for o in RUN_OUTCOMES)
    paragraphs = [
        "The unattended daily job: ingest the inboxes, evaluate, record the run, notify, export dated files.",
        "Safe to repeat: loaded files are recognised by sha256, exports are byte-identical for the same day, "
        "and no notifier is told the same thing twice. A lock (<database>.lock) stops overlapping runs. Log "
        "lines (time, level, run id) go to stderr; a JSON run report with the job's health and the city's "
        "verdict is written (report = … in the config; --report - prints it). The config (docs/daily-run.md) "
        "names the database, catalogue, areas, inboxes, outputs, notifiers, time zone and fail_on (default "
        "never: a red city does not fail the job unless asked).",
        f'Exit codes (README, "Exit codes"): {codes}. --dry-run exits 0 when it could look (its report '
        "carries the health a run would have), --check-config 0, 78 or 3.",
        "Example: citykpi run --config /etc/citykpi/citykpi.toml --date 2025-12-31",
    ]
    return "\n\n".join(paragraphs)


@app.command("run", help=_run_help())
def run_cmd(
    config: Path = typer.Option(Path("citykpi.toml"), "--config", "-c", help="The job's TOML config file."),
    date_: str | None = typer.Option(
        None, "--date", "-d", help="Evaluate as of this date; default yesterday in the config's time zone."
    ),
    fail_on: FailOn | None = typer.Option(None, "--fail-on", help="Override the config's fail_on."),
    wait: float | None = typer.Option(None, "--wait", min=0, help="Seconds to wait for a running job."),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Say what would be ingested, evaluated, written and notified; change nothing.",
    ),
    check_config: bool = typer.Option(
        False, "--check-config", help="Check the config (paths, inboxes, notifiers, catalogue) and exit."
    ),
    log_format: LogFormat | None = typer.Option(
        None, "--log-format", help="Log lines as text (for people) or json (one object per line)."
    ),
    report: str | None = typer.Option(
        None,
        "--report",
        metavar="FILE",
        help="Write the run report to FILE (.json) instead of the config's (- prints it).",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Let --report replace an existing file that is not a previous run report "
        "(never the database, the config, the catalogue or an input file).",
    ),
) -> None:
    from dataclasses import replace

    from citykpi.cron import RunConfig, run_job
    from citykpi.errors import RunFailedError

    as_of = parse_day("--date", date_)
    if report == "":
        from citykpi.errors import UsageError

        raise UsageError("--report is empty; name a .json file, or - to print the report")
    cfg = RunConfig.load(config)
    if fail_on is not None:
        cfg = replace(cfg, fail_on=fail_on.value)
    if wait is not None:
        cfg = replace(cfg, wait=wait)
    if check_config:
        from citykpi.daily.check import check_config as check

        checked = check(cfg, config, log=typer.echo, as_of=as_of)
        raise typer.Exit(checked.exit_code)
    to_stdout = report == "-"
    result = run_job(
        cfg,
        as_of=as_of,
        log=lambda line: typer.echo(line, err=True),
        log_format=log_format.value if log_format is not None else None,
        dry_run=dry_run,
        report_path=Path(report) if report is not None and not to_stdout else None,
        force_report=force,
        write_report=not to_stdout,
    )
    if to_stdout:
        import json

        typer.echo(json.dumps(result.report(), ensure_ascii=False, indent=2, default=str))
    if result.error is not None:
        error = result.error
        if int(error.exit_code) != 3:  # the contract: a failed run exits 3, whatever the cause's own code
            error = RunFailedError(error.message, hint=error.hint)
        raise error
    raise typer.Exit(result.exit_code)
