"""The outbox: digests are recorded before they are sent, and sent until delivered.

A run queues its digests and each notifier's new delivery state in ONE transaction (either both
are recorded or neither), then delivers every pending digest of each notifier, oldest first,
recording each outcome as it happens. A notifier that fails stops there for this run (its later
digests wait, in order); the next run tries again. So a digest is never lost while its endpoint
is down, and never queued twice.

The guarantee is *at least once* with an idempotency key: a digest is sent again only when a run
was stopped after the receiver took it and before the outbox recorded it, and then with the same
key (the JSONL notifier checks its own file and appends exactly once). A receiver that keeps the
keys it has seen gets every digest exactly once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from citykpi.backend import EngineError
from citykpi.notify.digest import STATE_SCHEMA, NotifierPlan, empty_state
from citykpi.notify.notifiers import Delivery, NotifierConfig, deliver
from citykpi.warehouse.connection import Warehouse

#: Columns of :func:`outbox`.
OUTBOX_COLUMNS: tuple[str, ...] = (
    "notifier",
    "digest_key",
    "status",
    "run_id",
    "as_of",
    "grain",
    "items",
    "attempts",
    "created_at",
    "last_attempt_at",
    "delivered_at",
    "last_error",
)


@dataclass(frozen=True)
class DeliveryReport:
    """One digest's delivery in this run."""

    notifier: str
    digest_key: str
    run_id: int | None
    items: int
    delivery: Delivery


def _utc_naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def notifier_state(wh: Warehouse, notifier: str) -> pl.DataFrame:
    """What ``notifier`` was told is firing (:data:`~citykpi.notify.digest.STATE_SCHEMA`)."""
    frame = wh.con.frame(
        f"SELECT {', '.join(STATE_SCHEMA)} FROM notify_state WHERE notifier = ? ORDER BY indicator_id, area_id",
        [notifier],
    )
    if not frame.height:
        return empty_state()
    return frame.select([pl.col(n).cast(t) for n, t in STATE_SCHEMA.items()])


def queue(wh: Warehouse, plans: Sequence[NotifierPlan], *, now: datetime) -> None:
    """Record this run's digests and every notifier's new state, in one transaction."""
    con = wh.con
    con.execute("BEGIN TRANSACTION")
    try:
        for plan in plans:
            if plan.digest is not None:
                d = plan.digest
                con.execute(
                    "INSERT INTO notify_outbox (notifier, digest_key, run_id, as_of, grain, created_at, items, "
                    "payload, status, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0)",
                    [d.notifier, d.key, d.run_id, d.as_of, d.grain, _utc_naive(now), d.items, d.payload],
                )
            con.execute("DELETE FROM notify_state WHERE notifier = ?", [plan.notifier])
            if plan.state.height:
                con.register("_ck_state", plan.state.with_columns(pl.lit(plan.notifier).alias("notifier")))
                con.execute(
                    "INSERT INTO notify_state (notifier, indicator_id, area_id, since, status, severity, reminded, "
                    "digest_key) SELECT notifier, indicator_id, area_id, since, status, severity, reminded, "
                    "digest_key FROM _ck_state"
                )
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(EngineError):  # never mask the error that got us here
            con.execute("ROLLBACK")
        raise


def pending(wh: Warehouse) -> pl.DataFrame:
    """Digests not delivered yet, oldest first: notifier, digest_key, run_id, items, payload."""
    return wh.con.frame(
        "SELECT notifier, digest_key, run_id, items, payload FROM notify_outbox WHERE status = 'pending' "
        "ORDER BY created_at, run_id, digest_key"
    )


def record(wh: Warehouse, notifier: str, key: str, delivery: Delivery, *, now: datetime) -> None:
    """Record one delivery attempt series (delivered, or the error and the attempts added)."""
    stamp = _utc_naive(now)
    wh.con.execute(
        "UPDATE notify_outbox SET attempts = attempts + ?, last_attempt_at = ?, "
        "status = CASE WHEN ? THEN 'delivered' ELSE status END, "
        "delivered_at = CASE WHEN ? THEN ? ELSE delivered_at END, "
        "last_error = CASE WHEN ? THEN NULL ELSE ? END "
        "WHERE notifier = ? AND digest_key = ?",
        [
            delivery.attempts,
            stamp,
            delivery.delivered,
            delivery.delivered,
            stamp,
            delivery.delivered,
            delivery.error,
            notifier,
            key,
        ],
    )


def deliver_pending(
    wh: Warehouse,
    notifiers: Sequence[NotifierConfig],
    *,
    now: Callable[[], datetime],
    sleep: Callable[[float], None] | None = None,
    send: Callable[..., Delivery] = deliver,
) -> list[DeliveryReport]:
    """Deliver every pending digest of the declared notifiers, oldest first; a notifier that fails
    stops for this run. Each outcome is recorded at once (the run may be killed at any point)."""
    by_name = {n.name: n for n in notifiers}
    reports: list[DeliveryReport] = []
    stopped: set[str] = set()
    for row in pending(wh).iter_rows(named=True):
        config = by_name.get(row["notifier"])
        if config is None or row["notifier"] in stopped:
            continue
        kwargs = {"sleep": sleep} if sleep is not None else {}
        outcome = send(config, row["digest_key"], row["payload"], **kwargs)
        record(wh, row["notifier"], row["digest_key"], outcome, now=now())
        reports.append(
            DeliveryReport(row["notifier"], row["digest_key"], row["run_id"], int(row["items"]), outcome)
        )
        if not outcome.delivered:
            stopped.add(row["notifier"])
    return reports


def outbox(wh: Warehouse, *, include_delivered: bool = False, limit: int | None = None) -> pl.DataFrame:
    """The outbox, newest first (:data:`OUTBOX_COLUMNS`): pending digests, and delivered ones when asked."""
    where = "" if include_delivered else "WHERE status = 'pending'"
    frame = wh.con.frame(
        f"SELECT {', '.join(OUTBOX_COLUMNS)} FROM notify_outbox {where} "
        "ORDER BY created_at DESC, run_id DESC, digest_key" + (f" LIMIT {int(limit)}" if limit else "")
    )
    return frame


def orphaned(wh: Warehouse, notifiers: Sequence[NotifierConfig]) -> dict[str, int]:
    """Pending digests of notifiers the configuration no longer declares (they are never sent)."""
    names = {n.name for n in notifiers}
    rows = wh.con.execute(
        "SELECT notifier, count(*) FROM notify_outbox WHERE status = 'pending' GROUP BY notifier"
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows if str(r[0]) not in names}
