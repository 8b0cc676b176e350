"""The machine-readable run report: the job's health and the city's verdict, apart, in one JSON file.

Written atomically after every run that got the lock (also a failed one), at ``report`` in the
config (default ``<outputs.folder>/runs/run-{date}-{grain}.json``); ``citykpi run --report -`` prints it
instead. The shape (``schema: citykpi.run_report``, ``schema_version: 1``) is documented in
docs/daily-run.md, "The run report".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from citykpi.daily.health import HEALTH_CODES
from citykpi.notify.changes import CHANGE_KINDS

if TYPE_CHECKING:
    from citykpi.daily.result import RunResult

REPORT_SCHEMA = "citykpi.run_report"
REPORT_SCHEMA_VERSION = 1


def run_report(result: RunResult) -> dict[str, Any]:
    """The run report of a result (JSON-ready)."""
    card = result.scorecard
    counts = card.counts() if card is not None else {}
    worst = None
    if card is not None and card.cells.height:
        from citykpi.render.format import status_order

        colours = [s for s in ("red", "orange", "yellow", "blue", "green") if counts.get(s)]
        worst = status_order(colours)[0] if colours else None
    changes = result.changes
    alerts = result.alerts
    return {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_SCHEMA_VERSION,
        "dry_run": result.dry_run,
        "as_of": result.as_of.isoformat(),
        "grain": result.grain,
        "timezone": result.timezone,
        "started_at": result.started_at.isoformat(timespec="seconds") if result.started_at else None,
        "finished_at": result.finished_at.isoformat(timespec="seconds") if result.finished_at else None,
        "run_id": result.run_id,
        "previous_run_id": result.previous_run_id,
        "exit_code": result.exit_code,
        "health": {
            "status": result.health.status,
            "exit_code": HEALTH_CODES[result.health.status],
            "reasons": list(result.health.reasons),
        },
        "verdict": {
            "fail_on": result.fail_on,
            "breached": result.breached,
            "worst": worst,
            "counts": counts,
        },
        "error": (
            {"message": result.error.message, "hint": result.error.hint, "type": type(result.error).__name__}
            if result.error is not None
            else None
        ),
        "files": [
            {
                "path": str(f.path),
                "status": f.status,
                "rows_loaded": f.rows_loaded,
                "rows_rejected": f.rows_rejected,
                "batch_id": f.batch_id,
                "moved_to": str(f.moved_to) if f.moved_to is not None else None,
                "message": f.message,
                "rejects": [{"code": code, "reason": why, "rows": n} for code, why, n in f.rejects],
            }
            for f in result.files
        ],
        "waiting": [{"path": str(p), "reason": why} for p, why in result.waiting],
        "ignored": [{"path": str(p), "reason": why} for p, why in result.ignored],
        "outputs": [str(p) for p in result.outputs],
        "alerts": {
            "firing": alerts.height,
            "new_since_previous_run": int(alerts.get_column("is_new").sum()) if alerts.height else 0,
            "changes": changes.counts if changes is not None else {k: 0 for k in CHANGE_KINDS},
        },
        "notifications": [
            {
                "notifier": n.notifier,
                "digest_key": n.digest_key,
                "status": n.status,
                "items": n.items,
                "attempts": n.attempts,
                "error": n.error or None,
                "run_id": n.run_id,
                "note": n.note or None,
            }
            for n in result.notifications
        ],
    }
