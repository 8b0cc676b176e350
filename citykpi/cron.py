"""`citykpi run`: the unattended daily job — inbox → ingest → evaluate → persist → notify → export.

A run is safe to repeat: files already loaded are recognised by their sha256, exports are
deterministic and replaced atomically, so re-running a day gives byte-identical files, and a
notifier is never told the same thing twice (:mod:`citykpi.notify`). A lock on
``<database>.lock`` (``fcntl.flock``) stops two runs from overlapping.

The run ends in a *health* state (ok, partial, no_data, failed, busy, config) apart from the
city's *verdict* (a cell at or above ``fail_on``); :mod:`citykpi.daily.health` maps both to the
exit code, and a JSON run report (:mod:`citykpi.daily.report`) carries both.

The configuration is a TOML file (paths are relative to the file's folder; docs/daily-run.md
explains every key)::

    database  = "citykpi.duckdb"
    catalogue = "indicators"
    areas     = "areas.csv"          # optional: (re)loaded before ingesting
    inbox     = ["inbox"]            # folders whose data files are ingested (long format)
    archive   = "move"               # move: loaded → <inbox>/done/, rejected → <inbox>/rejected/; keep
    settle    = 1.0                  # seconds between two looks at a file's size (still being written?)
    grain     = "day"
    timezone  = "Asia/Shanghai"      # the city's zone: "yesterday", log times, silences (default: the machine's)
    fail_on   = "never"              # never | green … red: the verdict fails the process only when asked
    partial_on = ["rejected", "stale", "undelivered"]
    alerts_min = "orange"
    remind_after = 3                 # days between "still firing" reminders (0: none)
    lang      = "zh"
    wait      = 0
    keep_runs = 90
    report    = "out/runs/run-{date}-{grain}.json"
    log_format = "text"              # text | json
    log_alert_lines = 20             # above this many alerts the log gives totals per domain

    [outputs]
    folder  = "out"
    formats = ["html", "xlsx", "json"]
    name    = "scorecard-{date}-{grain}"
    quality = ["html", "json"]       # optional: the data-quality report beside the scorecard,
                                     # as quality-{date}-{grain}.<ext> (citykpi quality)

    [[inboxes]]                      # an inbox read with ingest's options
    path = "inbox/gb"
    map = {indicator_id = "指标编码", area_id = "区划代码", period = "统计日期", value = "数值"}
    date_format = {period = "%Y年%m月%d日"}
    encoding = "gb18030"
    pattern = ["*.csv"]

    [[notifiers]]                    # see citykpi.notify.notifiers
    name = "duty"
    type = "webhook"
    url = "https://alerts.example.gov.cn/hooks/citykpi"
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

from citykpi.backend import EngineError
from citykpi.catalogue.model import SUBDAILY_GRAINS
from citykpi.daily import clock, steps
from citykpi.daily.config import Outputs, RunConfig, check_outputs, check_report_target
from citykpi.daily.inbox import Inbox
from citykpi.daily.log import RunLog
from citykpi.daily.result import IngestedFile, NotificationResult, RunResult
from citykpi.errors import (
    CitykpiError,
    ConfigError,
    DatabaseBusyError,
    RunBusyError,
    RunFailedError,
    WarehouseError,
)
from citykpi.render.format import counts_line

__all__ = [
    "Inbox",
    "IngestedFile",
    "NotificationResult",
    "Outputs",
    "RunConfig",
    "RunResult",
    "check_outputs",
    "run_job",
    "run_lock",
]

Log = Callable[[str], None]


# --- the lock ------------------------------------------------------------------------------------


@contextlib.contextmanager
def run_lock(database: Path, *, wait: float = 0.0) -> Iterator[Path]:
    """Hold an exclusive ``fcntl.flock`` on ``<database>.lock`` for the duration of a run.

    Raises:
        RunBusyError: another run holds the lock beyond ``wait`` seconds (exit 75).
        WarehouseError: the lock file cannot be created (exit 3).
    """
    lock_path = database.with_name(database.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise WarehouseError(f"cannot create lock file {lock_path}: {exc.strerror or exc}") from None
    try:
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RunBusyError(
                        f"another citykpi run holds {lock_path}",
                        hint="wait for it to finish, or set `wait = SECONDS` in the config / pass --wait",
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield lock_path
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# --- the job -------------------------------------------------------------------------------------


def run_job(
    config: RunConfig,
    *,
    as_of: date | None = None,
    log: Log | None = None,
    log_format: str | None = None,
    dry_run: bool = False,
    report_path: Path | None = None,
    force_report: bool = False,
    write_report: bool = True,
    sleep: Callable[[float], None] | None = None,
    at: datetime | None = None,
) -> RunResult:
    """Run the daily job once (or, with ``dry_run``, say what it would do and write nothing).

    Args:
        config: the loaded configuration.
        as_of: the date to evaluate; default yesterday in the config's time zone.
        at: an instant to evaluate instead (naive city time): a sub-daily job, e.g. every 15 minutes
            with ``grain = "hour"``; a sub-daily job given neither evaluates the current minute.
        log: called with each log line (text or JSON, ``log_format`` or the config's).
        dry_run: read only: list what would be ingested, evaluated, written and notified.
        report_path: write the run report here instead of the configured path (checked like every
            output: never a file the run reads, only ``.json``, a foreign file only with ``force_report``).
        force_report: let ``report_path`` replace an existing file that is not a previous report.
        write_report: write the run report at all (the CLI prints it instead with ``--report -``).
        sleep: how to wait (settling inbox files, backing off between delivery attempts).

    Returns:
        RunResult: ``exit_code`` and ``report()`` follow the exit contract. A failure after the job
        started is in ``error`` (and in the report), not raised.

    Raises:
        ConfigError: the configuration or an output path is wrong (exit 78).
        OutputTargetError: ``report_path`` may not be written (exit 2).
        RunBusyError: another run holds the lock, or a process the database (exit 75).
    """
    config = config.with_city_zone()
    tz = config.tz
    started = clock.now(tz)
    if at is None and as_of is None and config.grain in SUBDAILY_GRAINS:  # a sub-daily job: now, city time
        at = started.replace(tzinfo=None, second=0, microsecond=0)
    day = at.date() if at is not None else as_of or (started.date() - timedelta(days=1))
    runlog = RunLog(log, fmt=log_format or config.log_format, tz=tz, clock=clock.now)
    job = steps.Job(config, day, runlog, dry_run, started, at=at)
    check_outputs(config, day, at)
    if report_path is not None and write_report:
        check_report_target(config, report_path, force=force_report)
    target = report_path or config.report_path(day, at)
    what = "dry run" if dry_run else "run"
    runlog.info(
        "start",
        f"{what} {job.label} ({config.grain}, {clock.zone_name(tz)}) with {config.database}",
        date=day.isoformat(),
        grain=config.grain,
        database=str(config.database),
    )
    if dry_run:  # the report only where --report says, never the configured path
        steps.dry_run(job)
        result = job.result(report_path if write_report else None)
        steps.finish(job, result, report_path if write_report else None)
        result = replace(result, log=runlog.messages)
    else:
        config.database.parent.mkdir(parents=True, exist_ok=True)
        # the lock covers the whole job, reports included, so two runs never overlap
        with run_lock(config.database, wait=config.wait):
            try:
                _run(job, sleep or time.sleep)
            except DatabaseBusyError as exc:
                raise RunBusyError(exc.message, hint=exc.hint) from None
            except ConfigError:
                raise
            except (CitykpiError, EngineError) as exc:
                job.error = exc if isinstance(exc, CitykpiError) else RunFailedError(str(exc))
                job.problem("failed", steps.one_line(job.error))
                runlog.error("failed", f"failed: {steps.one_line(job.error)}")
            result = job.result(target if write_report else None)
            steps.finish(job, result, target if write_report else None)
            result = replace(result, log=runlog.messages)
    return result


def _run(job: steps.Job, sleep: Callable[[float], None]) -> None:
    """The job under the lock: every step, each failure noted (a CitykpiError stops it)."""
    from citykpi.catalogue import load_catalogue
    from citykpi.engine.evaluate import evaluate
    from citykpi.engine.runs import next_run_id, previous_run, prune_runs
    from citykpi.notify.outbox import prune as prune_outbox
    from citykpi.render.views import alerts
    from citykpi.warehouse import Warehouse, load_areas

    config, log = job.config, job.log
    catalogue = load_catalogue(config.catalogue)
    log.info(
        "catalogue",
        f"catalogue {config.catalogue}: {len(catalogue.indicators)} indicators, {len(catalogue.indices)} indices",
    )
    steps.check_inbox_options(config, catalogue)
    for inbox in config.inboxes:
        if not inbox.path.is_dir():
            raise ConfigError(
                f"inbox {inbox.path} is not a folder", hint="create it or fix `inbox` in the config"
            )
    with Warehouse.open(config.database, wait=config.wait) as wh:
        log.run = next_run_id(wh)
        if config.areas is not None:
            report = load_areas(wh, config.areas)
            log.info(
                "areas",
                f"areas {config.areas}: {report.total} areas ({len(report.added)} added, {len(report.removed)} removed)",
            )
        for inbox in config.inboxes:
            steps.ingest_inbox(job, wh, catalogue, inbox, sleep)
        scorecard = evaluate(
            wh,
            catalogue,
            **job.moment,
            persist=True,
            scheduled=True,
        )
        job.scorecard = scorecard
        log.run = scorecard.run_id
        counts = scorecard.counts()
        log.info("evaluate", f"evaluated run {scorecard.run_id}: {counts_line(counts, 'en')}", counts=counts)
        steps.assess_data(job, wh, catalogue, scorecard)
        steps.assess_quality(job, wh, catalogue)
        previous = previous_run(wh, job.day, catalogue, grain=config.grain, at=job.at)
        job.previous_run_id = previous.run_id if previous is not None else None
        job.alerts = alerts(scorecard, previous, min_colour=config.alerts_min)
        steps.log_alerts(job, catalogue)
        steps.notify(job, wh, catalogue, scorecard, sleep)
        if config.keep_runs is not None:
            pruned = prune_runs(wh, keep=config.keep_runs)
            digests = prune_outbox(wh)
            if pruned.runs or digests:
                log.info(
                    "prune",
                    f"pruned {len(pruned.runs)} old run(s) ({pruned.cells} cells) and {digests} delivered or "
                    f"dropped digest(s) older than them; kept the latest {pruned.kept} (keep_runs = {config.keep_runs})",
                )
    steps.write_outputs(job, scorecard)
