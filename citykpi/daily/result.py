"""What a run of the daily job did: files, the scorecard, alerts, notifications, health and verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from citykpi.daily.health import Health
from citykpi.daily.health import exit_code as health_exit_code
from citykpi.engine.scorecard import Scorecard
from citykpi.errors import CitykpiError, ExitCode
from citykpi.notify.changes import AlertChanges


@dataclass(frozen=True)
class IngestedFile:
    """One inbox file and what the run did with it."""

    path: Path
    status: str  # loaded | unchanged | rejected (dry run: would_load | unchanged)
    rows_loaded: int = 0
    rows_rejected: int = 0
    moved_to: Path | None = None
    message: str = ""
    batch_id: int | None = None
    #: why rows were rejected, most rows first: (code or None, reason, rows)
    rejects: tuple[tuple[str | None, str, int], ...] = ()


@dataclass(frozen=True)
class NotificationResult:
    """One digest this run queued, delivered, failed to deliver or (dry run) would send."""

    notifier: str
    digest_key: str
    status: str  # delivered | undelivered | dead | backfill (dry run: would_send | would_retry | backfill)
    items: int
    attempts: int = 0
    error: str = ""
    run_id: int | None = None
    note: str = ""  # e.g. why a backfill tells this notifier nothing


@dataclass(frozen=True)
class RunResult:
    """What one run did: files, the scorecard, alerts, notifications, outputs, health and verdict."""

    as_of: date
    grain: str
    scorecard: Scorecard | None
    files: tuple[IngestedFile, ...]
    outputs: tuple[Path, ...]
    alerts: pl.DataFrame
    fail_on: str
    health: Health
    previous_run_id: int | None = None
    changes: AlertChanges | None = None
    notifications: tuple[NotificationResult, ...] = ()
    waiting: tuple[tuple[Path, str], ...] = ()
    ignored: tuple[tuple[Path, str], ...] = ()
    error: CitykpiError | None = None
    dry_run: bool = False
    timezone: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    report_path: Path | None = None
    log: tuple[str, ...] = field(default=())

    @property
    def run_id(self) -> int | None:
        """The persisted run's id (None when nothing was recorded)."""
        return self.scorecard.run_id if self.scorecard is not None else None

    @property
    def breached(self) -> bool:
        """True when some cell is at or above ``fail_on``."""
        return self.scorecard is not None and self.scorecard.breaches(self.fail_on)

    @property
    def exit_code(self) -> int:
        """The exit code of the contract (:mod:`citykpi.daily.health`): health first, then the verdict."""
        if self.dry_run:
            return int(ExitCode.ERROR) if self.health.status == "failed" else int(ExitCode.OK)
        return health_exit_code(self.health.status, self.breached)

    def report(self) -> dict[str, Any]:
        """The machine-readable run report (docs/daily-run.md, "The run report")."""
        from citykpi.daily.report import run_report

        return run_report(self)
