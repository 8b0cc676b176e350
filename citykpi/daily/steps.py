"""The steps of the daily job, each noting what it did on a :class:`Job` (``citykpi.cron`` runs them).

A step logs what it does (:mod:`citykpi.daily.log`), notes health problems on the job (a rejected
file, stale cells, no data, an undelivered digest) and raises a :class:`~citykpi.errors.CitykpiError`
only for what stops the run.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from citykpi.catalogue.model import Catalogue
from citykpi.daily import clock
from citykpi.daily.config import RunConfig
from citykpi.daily.health import Health, data_in_period, worst
from citykpi.daily.health import exit_code as health_exit_code
from citykpi.daily.inbox import DONE, REJECTED, Inbox, InboxScan, archive, scan_inbox
from citykpi.daily.log import RunLog
from citykpi.daily.result import IngestedFile, NotificationResult, RunResult
from citykpi.engine.scorecard import Scorecard
from citykpi.errors import CitykpiError, ConfigError, DatabaseBusyError, RunBusyError, UsageError
from citykpi.notify.changes import AlertChanges
from citykpi.render.exporters import write_scorecard
from citykpi.render.exports import junit_fail_on
from citykpi.render.format import Digits, counts_line, fmt_value, pick, status_label

if TYPE_CHECKING:
    from citykpi.notify.outbox import DeliveryReport
    from citykpi.quality import QualityReport


def period_of(grain: str, day: date, at: datetime | None = None) -> tuple[date, date]:
    """The period of ``grain`` that contains ``day``, as [start, end); for a run as of an instant
    ``at``, the period (date-times) that holds it, up to the instant (what the run reads of it)."""
    from citykpi.engine.calendar import TICK, shift, shift_at, trunc, trunc_at

    if at is not None:
        begun = trunc_at(grain, at)
        return begun, min(shift_at(grain, begun, 1), at + TICK)
    start = trunc(grain, day)
    return start, shift(grain, start, 1)


@dataclass
class Job:
    """What a run has gathered so far (turned into a RunResult at the end)."""

    config: RunConfig
    day: date
    log: RunLog
    dry_run: bool
    started_at: datetime
    #: the instant a sub-daily run evaluates (naive city time); None for the end of ``day``
    at: datetime | None = None
    files: list[IngestedFile] = field(default_factory=list)
    waiting: list[tuple[Path, str]] = field(default_factory=list)
    ignored: list[tuple[Path, str]] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    notifications: list[NotificationResult] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    scorecard: Scorecard | None = None
    #: the data-quality report (``[outputs] quality``), written beside the scorecard
    quality: QualityReport | None = None
    alerts: pl.DataFrame = field(default_factory=pl.DataFrame)
    changes: AlertChanges | None = None
    previous_run_id: int | None = None
    error: CitykpiError | None = None

    @property
    def label(self) -> str:
        """What the run evaluates: ``2025-12-31``, or ``2025-12-31 14:00`` for an instant."""
        return self.at.strftime("%Y-%m-%d %H:%M") if self.at is not None else self.day.isoformat()

    @property
    def moment(self) -> dict[str, Any]:
        """The ``as_of``/``at``/``grain`` arguments of :func:`~citykpi.engine.evaluate.evaluate` for this run."""
        return {"as_of": None if self.at is not None else self.day, "at": self.at, "grain": self.config.grain}

    def problem(self, state: str, reason: str, *, cause: str | None = None) -> None:
        """Note a health problem; a partial cause the config leaves out only shows in the log."""
        if state == "partial" and cause is not None and cause not in self.config.partial_on:
            return
        self.states.append(state)
        self.reasons.append(reason)

    def result(self, report_path: Path | None) -> RunResult:
        """The RunResult of what the job did so far."""
        status = worst(self.states)
        return RunResult(
            as_of=self.day,
            at=self.at,
            grain=self.config.grain,
            scorecard=self.scorecard,
            files=tuple(self.files),
            outputs=tuple(self.outputs),
            alerts=self.alerts,
            fail_on=self.config.fail_on,
            health=Health(status, tuple(self.reasons)),
            previous_run_id=self.previous_run_id,
            changes=self.changes,
            notifications=tuple(self.notifications),
            waiting=tuple(self.waiting),
            ignored=tuple(self.ignored),
            error=self.error,
            dry_run=self.dry_run,
            timezone=clock.zone_name(self.config.tz),
            started_at=self.started_at,
            finished_at=clock.now(self.config.tz),
            report_path=report_path,
            log=self.log.messages,
        )


def one_line(exc: CitykpiError) -> str:
    """The first line of an error's message."""
    return str(exc.message).splitlines()[0] if exc.message else type(exc).__name__


def finish(job: Job, result: RunResult, target: Path | None) -> None:
    """Write the run report (atomically) and say how the run ended."""
    log = job.log
    code = result.exit_code
    status = result.health.status
    worst = result.report()["verdict"]["worst"] or "none"
    verdict = f"worst {worst}, fail_on {job.config.fail_on}" + (" (breached)" if result.breached else "")
    reasons = f"; {'; '.join(result.health.reasons)}" if result.health.reasons else ""
    fields: dict[str, Any] = {"health": status, "exit_code": code, "breached": result.breached}
    if job.dry_run:  # it exits 0 when it could look: say what the run would do, not "partial (exit 0)"
        would = health_exit_code(status, result.breached)
        text = f"dry run: the run would end {status} (exit {would}); verdict: {verdict}{reasons}"
        fields["would_exit_code"] = would
    else:
        text = f"done: {status} (exit {code}); verdict: {verdict}{reasons}"
    level = {"failed": log.error, "partial": log.warning, "no_data": log.warning}.get(status, log.info)
    level("done", text, **fields)
    if target is None:
        return
    from citykpi.render.exports import atomic_write

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        document = json.dumps(result.report(), ensure_ascii=False, indent=2, default=str) + "\n"

        def write(tmp: Path) -> None:
            tmp.write_text(document, encoding="utf-8")

        atomic_write(target, write)
    except (OSError, CitykpiError) as exc:
        log.error("report", f"cannot write the run report {target}: {exc}")
        return
    log.info("report", f"wrote the run report {target}", path=str(target))


def check_inbox_options(config: RunConfig, catalogue: Catalogue) -> None:
    """Ingest's own checks of each inbox's options against the catalogue (an unknown source…)."""
    from citykpi.warehouse.ingest import check_options

    for inbox in config.inboxes:
        try:
            check_options(catalogue, inbox.options())
        except UsageError as exc:
            raise ConfigError(f"[[inboxes]] {str(inbox.path)!r}: {exc.message}", hint=exc.hint) from None


def _scan(job: Job, inbox: Inbox, sleep: Callable[[float], None]) -> InboxScan:
    log = job.log
    try:
        scan = scan_inbox(inbox, settle=job.config.settle, sleep=sleep)
    except OSError:
        raise ConfigError(
            f"inbox {inbox.path} is not a folder", hint="create it or fix `inbox` in the config"
        ) from None
    for link in scan.links:
        log.warning(
            "inbox",
            f"inbox {inbox.path}: skipped {link.name}, a symbolic link (inboxes never follow links; copy or "
            "move the file itself into the inbox)",
            file=link.name,
        )
    for path, why in scan.waiting:
        job.waiting.append((path, why))
        log.info("inbox", f"inbox {inbox.path}: left {path.name} for the next run: {why}", file=path.name)
    for path, why in scan.ignored:
        job.ignored.append((path, why))
        log.info("inbox", f"inbox {inbox.path}: ignored {path.name}: {why}", file=path.name)
    if not scan.ready:
        log.info("inbox", f"inbox {inbox.path}: no new files")
    return scan


def ingest_inbox(
    job: Job, wh: Any, catalogue: Catalogue, inbox: Inbox, sleep: Callable[[float], None]
) -> None:
    """Ingest an inbox's ready files and move each to done/ or rejected/."""
    from citykpi.warehouse import ingest

    config, log = job.config, job.log
    scan = _scan(job, inbox, sleep)
    if not scan.ready:
        return
    ingested = ingest(wh, catalogue, list(scan.ready), inbox.options())
    for f in ingested.files:
        path = Path(f.path)
        moved: Path | None = None
        if config.archive == "move" and path.exists():
            try:
                moved = archive(path, inbox.path / (REJECTED if f.status == "rejected" else DONE))
            except OSError as exc:
                why = (
                    f"cannot move {path.name} to {inbox.path}/{DONE}/: {exc.strerror or exc}; its data is stored "
                    '(the next run sees it as unchanged); make the inbox writable, or set archive = "keep"'
                )
                log.error("archive", why, file=path.name)
                job.problem("partial", why)
        reasons = top_rejects(f.rejects)
        message = rejects_message(f.message, reasons, f.batch_id if f.rows_rejected else None)
        job.files.append(
            IngestedFile(path, f.status, f.rows_loaded, f.rows_rejected, moved, message, f.batch_id, reasons)
        )
        line = f"ingest {path.name}: {f.status}, {f.rows_loaded} loaded, {f.rows_rejected} rejected"
        if message:
            line += f": {message}"
        if moved is not None:
            line += f" → {moved.parent.name}/"
        fields = {
            "file": path.name,
            "status": f.status,
            "rows_loaded": f.rows_loaded,
            "rows_rejected": f.rows_rejected,
        }
        if f.has_rejects:
            log.warning("ingest", line, **fields)
            what = "was rejected" if f.status == "rejected" else f"had {f.rows_rejected} rejected row(s)"
            job.problem("partial", f"{path.name} {what}", cause="rejected")
        else:
            log.info("ingest", line, **fields)


#: How many reject reasons the log and the run report name per file (the rest are counted).
TOP_REJECTS = 3


def top_rejects(rejects: Mapping[str, int]) -> tuple[tuple[str | None, str, int], ...]:
    """A file's reject reasons as (code, reason, rows), most rows first (ties by reason)."""
    from citykpi.warehouse.ingest import code_of

    ranked = sorted(rejects.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple((code_of(why), why, int(n)) for why, n in ranked)


def rejects_message(message: str, reasons: tuple[tuple[str | None, str, int], ...], batch: int | None) -> str:
    """What a file's log line and report say about it: ingest's own message, the top reasons
    (``2 × IN202 unknown area id …``) and the command that lists the rejected rows."""
    parts = [message] if message else []
    shown = [f"{n} × {code + ' ' if code else ''}{why}" for code, why, n in reasons[:TOP_REJECTS]]
    if len(reasons) > TOP_REJECTS:
        rest = sum(n for _c, _w, n in reasons[TOP_REJECTS:])
        shown.append(f"{rest} more in {len(reasons) - TOP_REJECTS} other reason(s)")
    parts += shown
    if batch is not None:
        parts.append(f"the rows: citykpi db rejects --batch {batch}")
    return "; ".join(parts)


def assess_data(job: Job, wh: Any, catalogue: Catalogue, scorecard: Scorecard) -> None:
    """A date without data is its own state; stale cells make a run partial (when configured)."""
    start, end = period_of(job.config.grain, job.day, job.at)
    if data_in_period(wh, catalogue, start, end) == 0:
        if isinstance(start, datetime):  # a sub-daily run: the period up to its instant
            span = f"{start:%Y-%m-%d %H:%M} … {job.at:%H:%M}"
        else:
            last = end - timedelta(days=1)
            span = start.isoformat() if start == last else f"{start.isoformat()} … {last.isoformat()}"
        newest = scorecard.meta.get("newest_data")
        why = f"no data for {span}: nothing was observed in the date's period" + (
            f" (the newest data is from {newest})" if newest else ""
        )
        job.log.warning("no_data", why)
        job.problem("no_data", why)
    stale = scorecard.counts().get("stale", 0)
    if stale:
        job.problem("partial", f"{stale} stale cell(s): a feed stopped delivering", cause="stale")


def log_alerts(job: Job, catalogue: Catalogue) -> None:
    """The alerts: one line each up to ``log_alert_lines``, totals per domain above (values to the
    indicator's decimals)."""
    config, log, found = job.config, job.log, job.alerts
    new = int(found.get_column("is_new").sum()) if found.height else 0
    log.info(
        "alerts",
        f"alerts: {found.height} at or above {config.alerts_min}, {new} new since the previous run",
        alerts=found.height,
        new=new,
    )
    if not found.height:
        return
    if found.height > config.log_alert_lines:
        totals = (
            found.group_by("domain")
            .agg(
                pl.len().alias("n"),
                (pl.col("status") == "red").sum().alias("red"),
                (pl.col("status") == "orange").sum().alias("orange"),
                pl.col("is_new").sum().alias("new"),
            )
            .sort(["n", "domain"], descending=[True, False])
        )
        for row in totals.iter_rows(named=True):
            log.info(
                "alerts",
                f"  {row['domain']}: {row['n']} ({row['red']} red, {row['orange']} orange; {row['new']} new)",
                domain=row["domain"],
                alerts=row["n"],
            )
        log.info(
            "alerts",
            f"  (more than {config.log_alert_lines} alerts: totals per domain; the outputs list each)",
        )
        return
    digits = Digits.of_catalogue(catalogue.indicators)
    for row in found.iter_rows(named=True):
        streak = f", {row['streak']} {config.grain}(s)" if row["streak"] else ""
        flag = "NEW " if row["is_new"] else ""
        value = fmt_value(row["value"], row["unit"], digits.of(row["indicator_id"]))
        log.info(
            "alert",
            f"  {flag}{status_label(row['status'], 'en')} {row['indicator_id']} @ {row['area_id']} "
            f"{pick(row, 'area_name', config.lang)}: {value}{streak}",
            indicator_id=row["indicator_id"],
            area_id=row["area_id"],
            status=row["status"],
            value=row["value"],
            new=bool(row["is_new"]),
        )


def notify(
    job: Job, wh: Any, catalogue: Catalogue, scorecard: Scorecard, sleep: Callable[[float], None]
) -> None:
    """Queue this run's digests with the notifiers' new state (one transaction), then deliver every
    waiting digest."""
    from citykpi.notify import outbox, plan_digests

    config, log = job.config, job.log
    now = clock.now(config.tz)
    plans, changes = plan_digests(
        wh, scorecard, catalogue, config.notifiers, now=now, lang=config.lang,
        min_colour=config.alerts_min, remind_after=config.remind_after,
    )  # fmt: skip
    job.changes = changes
    if not config.notifiers:
        return
    outbox.queue(wh, plans, now=now)
    for plan in plans:
        if plan.backfill is not None:
            note = backfill_note(plan.notifier, job.label, plan.backfill)
            log.info("notify", note, notifier=plan.notifier, backfill=True)
            job.notifications.append(NotificationResult(plan.notifier, "", "backfill", 0, note=note))
            continue
        held = f"; held back: {plan.silenced} silenced, {plan.inhibited} by a red parent area"
        if plan.digest is None:
            log.info("notify", f"notify {plan.notifier}: nothing new{held}", notifier=plan.notifier)
            continue
        told = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in plan.counts.items() if n)
        log.info(
            "notify",
            f"notify {plan.notifier}: queued digest {plan.digest.key} ({told}){held}",
            notifier=plan.notifier,
            digest=plan.digest.key,
        )
    for name, n in outbox.orphaned(wh, config.notifiers).items():
        log.warning(
            "notify",
            f"outbox: {n} undelivered digest(s) for notifier {name!r}, which the config no longer declares",
        )
    for report in outbox.deliver_pending(wh, config.notifiers, now=lambda: clock.now(config.tz), sleep=sleep):
        _delivered(job, report)
    waiting = outbox.pending(wh)
    declared = {n.name for n in config.notifiers}
    stuck = [r for r in waiting.iter_rows(named=True) if r["notifier"] in declared]
    if stuck:
        job.problem(
            "partial", f"{len(stuck)} digest(s) not delivered yet (retried next run)", cause="undelivered"
        )
    set_aside = Counter(n.notifier for n in job.notifications if n.status == "dead")
    for name, n in outbox.dead(wh).items():
        if n > set_aside[name]:  # the run that set them aside was partial; now they only wait
            log.warning(
                "notify",
                f"outbox: {n - set_aside[name]} dead digest(s) of {name!r} from earlier runs wait for an "
                "operator (citykpi alerts outbox; retry KEY or drop KEY)",
                notifier=name,
            )


def backfill_note(notifier: str, run: str, newest: date) -> str:
    """Why a run (``run``: its label) tells a notifier nothing: it was told about a later moment
    (a day, or an instant) already."""
    instant = isinstance(newest, datetime)
    told = newest.strftime("%Y-%m-%d %H:%M") if instant else newest.isoformat()
    return (
        f"backfill: not notified: {notifier} was told about {told} already; "
        f"a run for an earlier {'time' if instant else 'date'} ({run}) tells it nothing"
    )


def _delivered(job: Job, report: DeliveryReport) -> None:
    """Note and log one digest's delivery: delivered, refused for good (dead) or to be retried."""
    from citykpi.notify.notifiers import SELF_DEDUPING

    config, log = job.config, job.log
    d = report.delivery
    status = "delivered" if d.delivered else "dead" if d.dead else "undelivered"
    job.notifications.append(
        NotificationResult(
            report.notifier, report.digest_key, status, report.items, d.attempts, d.error, report.run_id
        )
    )
    notifier = next(n for n in config.notifiers if n.name == report.notifier)
    where = notifier.target()
    fields = {"notifier": report.notifier, "digest": report.digest_key, "attempts": d.attempts}
    if d.delivered:
        flagged = d.uncertain and notifier.type not in SELF_DEDUPING
        log.info(
            "deliver",
            f"delivered {report.digest_key} to {report.notifier} ({where}) after {d.attempts} attempt(s)"
            + (' (with "redelivery": true: an earlier attempt may have arrived)' if flagged else ""),
            **fields,
        )
    elif d.dead:
        log.error(
            "deliver",
            f"{report.notifier} refused digest {report.digest_key} for good: {d.error}; it is set aside "
            f"(dead) and the notifier's later digests go on; retry it with `citykpi alerts outbox retry "
            f"{report.digest_key}` once the receiver is fixed, or drop it with `… drop {report.digest_key}`",
            **fields,
        )
        job.problem(
            "partial",
            f"digest {report.digest_key} to {report.notifier} was refused for good (dead): {d.error}",
            cause="undelivered",
        )
    else:
        log.warning(
            "deliver",
            f"could not deliver {report.digest_key} to {report.notifier} after {d.attempts} attempt(s): "
            f"{d.error}; it stays in the outbox and is retried next run",
            **fields,
        )


def assess_quality(job: Job, wh: Any, catalogue: Catalogue) -> None:
    """The data-quality report of the day (of the instant, for a sub-daily run), when ``[outputs]
    quality`` asks for one (one log line)."""
    if not job.config.outputs.quality:
        return
    from citykpi.quality import assess

    job.quality = assess(wh, catalogue, as_of=job.day, at=job.at)
    job.log.info("quality", f"data quality: {quality_line(job.quality.summary)}")


def quality_line(summary: Mapping[str, object]) -> str:
    """'complete 99.1%, accurate 100.0%, consistent —, timely 97.0%: green' for the run log."""

    def pct(value: object) -> str:
        return f"{value:.1f}%" if isinstance(value, float) else "—"

    figures = ", ".join(
        f"{word} {pct(summary.get(key))}"
        for word, key in (
            ("complete", "completeness"),
            ("accurate", "accuracy"),
            ("consistent", "consistency"),
            ("timely", "timeliness"),
        )
    )
    return f"{figures}: {summary.get('status')}"


def write_outputs(job: Job, scorecard: Scorecard) -> None:
    """The dated scorecard files and the data-quality report (atomically); a failure is a failed run."""
    config, log = job.config, job.log
    config.outputs.folder.mkdir(parents=True, exist_ok=True)
    junit = junit_fail_on(config.fail_on)
    for fmt in config.outputs.formats:
        target = config.outputs.path_for(fmt, job.day, config.grain, job.at)
        job.outputs.append(write_scorecard(scorecard, fmt, target, lang=config.lang, fail_on=junit))
        log.info("output", f"wrote {target}", path=str(target), format=fmt)
    if job.quality is not None:
        for fmt in config.outputs.quality:
            target = config.outputs.quality_path_for(fmt, job.day, config.grain, job.at)
            job.outputs.append(job.quality.write(fmt, target, lang=config.lang))
            log.info("output", f"wrote {target}", path=str(target), format=fmt)


def dry_run(job: Job) -> None:
    """What a run would do, from what is stored now; nothing is written, moved, recorded or sent."""
    from citykpi.catalogue import load_catalogue
    from citykpi.engine.evaluate import evaluate
    from citykpi.engine.runs import previous_run
    from citykpi.render.views import alerts
    from citykpi.warehouse import Warehouse, readers
    from citykpi.warehouse.ingest import already_loaded

    config, log = job.config, job.log
    try:
        catalogue = load_catalogue(config.catalogue)
        check_inbox_options(config, catalogue)
        log.info("catalogue", f"catalogue {config.catalogue}: {len(catalogue.indicators)} indicators")
        exists = config.database.exists()
        wh = (
            Warehouse.open(config.database, read_only=True, create=False, wait=config.wait)
            if exists
            else None
        )
    except DatabaseBusyError as exc:
        raise RunBusyError(exc.message, hint=exc.hint) from None
    except CitykpiError as exc:
        job.error = exc
        job.problem("failed", one_line(exc))
        log.error("failed", f"failed: {one_line(exc)}")
        return
    try:
        for inbox in config.inboxes:
            scan = _scan(job, inbox, time.sleep)
            options = inbox.options()
            for path in scan.ready:
                sha = readers.scan_file(path, text=False).sha256
                batch = already_loaded(wh.con, sha, options) if wh is not None else None
                status = "unchanged" if batch is not None else "would_load"
                note = f"already loaded as batch {batch}" if batch is not None else "new: would be ingested"
                job.files.append(IngestedFile(path, status, message=note, batch_id=batch))
                log.info("ingest", f"would ingest {path.name}: {note}", file=path.name, status=status)
        if wh is None:
            log.info("evaluate", f"no database yet at {config.database}: the run would create it")
        else:
            scorecard = evaluate(
                wh,
                catalogue,
                **job.moment,
                persist=False,
                history_levels=(),
            )
            job.scorecard = scorecard
            log.info(
                "evaluate",
                f"would evaluate {job.label} from the data stored now (the inbox files above not included): "
                f"{counts_line(scorecard.counts(), 'en')}",
            )
            assess_data(job, wh, catalogue, scorecard)
            previous = previous_run(wh, job.day, catalogue, grain=config.grain, at=job.at)
            job.previous_run_id = previous.run_id if previous is not None else None
            job.alerts = alerts(scorecard, previous, min_colour=config.alerts_min)
            log_alerts(job, catalogue)
            _dry_notify(job, wh, catalogue, scorecard)
        for fmt in config.outputs.formats:
            path = config.outputs.path_for(fmt, job.day, config.grain, job.at)
            log.info("output", f"would write {path}", path=str(path), format=fmt)
        for fmt in config.outputs.quality:
            path = config.outputs.quality_path_for(fmt, job.day, config.grain, job.at)
            log.info("output", f"would write {path}", path=str(path), format=fmt)
    finally:
        if wh is not None:
            wh.close()


def _dry_notify(job: Job, wh: Any, catalogue: Catalogue, scorecard: Scorecard) -> None:
    from citykpi.notify import outbox, plan_digests

    config, log = job.config, job.log
    declared = {n.name for n in config.notifiers}
    for name, n in outbox.dead(wh).items():
        log.warning(
            "notify", f"outbox: {n} dead digest(s) of {name!r} wait for an operator (citykpi alerts outbox)"
        )
    for row in outbox.pending(wh).iter_rows(named=True):
        if row["notifier"] in declared:
            job.notifications.append(
                NotificationResult(
                    row["notifier"], row["digest_key"], "would_retry", int(row["items"]), run_id=row["run_id"]
                )
            )
            log.info(
                "notify", f"would retry {row['digest_key']} to {row['notifier']} ({row['items']} item(s))"
            )
    plans, changes = plan_digests(
        wh, scorecard, catalogue, config.notifiers, now=clock.now(config.tz), lang=config.lang,
        min_colour=config.alerts_min, remind_after=config.remind_after,
    )  # fmt: skip
    job.changes = changes
    for plan in plans:
        if plan.backfill is not None:
            note = backfill_note(plan.notifier, job.label, plan.backfill)
            log.info("notify", note, notifier=plan.notifier, backfill=True)
            job.notifications.append(NotificationResult(plan.notifier, "", "backfill", 0, note=note))
            continue
        if plan.digest is None:
            log.info("notify", f"would tell {plan.notifier} nothing new")
            continue
        job.notifications.append(
            NotificationResult(plan.notifier, plan.digest.key, "would_send", plan.digest.items)
        )
        told = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in plan.counts.items() if n)
        log.info("notify", f"would send {plan.notifier} a digest: {told}", notifier=plan.notifier)
