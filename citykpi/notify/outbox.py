"""The outbox: digests are recorded before they are sent, and sent until delivered.

A run queues its digests, each notifier's new delivery state and the newest date it is told about
(``notify_cursor``) in ONE transaction (all are recorded or none), then delivers every pending
digest of each notifier, oldest first. A digest's life::

    pending ──(marked before the attempt, committed)──▶ sending ──▶ delivered
       ▲                                                  │  └────▶ pending (failed: retried next run)
       │                                                  └───────▶ dead (refused for good)
       └──────────── alerts outbox retry ◀── dead, dropped ◀── alerts outbox drop ── pending, dead

Each outcome is recorded as it happens. A notifier whose digest failed stops there for this run (its
later digests wait, in order); a dead digest does not stop it. So a digest is never lost while its
endpoint is down, never queued twice, and one the receiver refuses for good does not block the rest.

A digest is marked ``sending`` in its own committed statement before each delivery, so a run stopped
during a delivery leaves a trace: the next run knows the digest may have arrived. What each notifier
type then guarantees (docs/daily-run.md, "Delivery"):

- ``jsonl`` — exactly once: it is its own receiver and finds a digest already written on its last
  line (:func:`citykpi.notify.notifiers.send_jsonl`);
- ``webhook``, ``command`` — at least once, with the same idempotency key, and ``"redelivery": true``
  on any attempt after one that may have reached the receiver (the run was stopped while
  ``sending``, a timeout, a connection lost): a receiver that keeps the keys it has seen acts on
  every digest exactly once; one that does not is told which deliveries may be repeats.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import polars as pl

from citykpi.backend import EngineError
from citykpi.errors import UsageError
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
    "action",
    "action_by",
    "action_at",
    "action_reason",
)
#: Statuses of a digest still to be delivered (``sending``: a run was stopped while delivering it).
WAITING: tuple[str, ...] = ("pending", "sending")
#: Statuses an operator acts on: ``retry`` puts a dead or dropped digest back in the queue, ``drop``
#: sets a waiting or dead one aside for good.
ACTIONS: dict[str, tuple[str, ...]] = {"retry": ("dead", "dropped"), "drop": ("pending", "sending", "dead")}


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


def told_up_to(wh: Warehouse) -> dict[str, date]:
    """The newest moment each notifier was told about (``notify_cursor``): the instant of a
    sub-daily run (a ``datetime``), or the day of a daily one (a ``date``, meaning its end)."""
    rows = wh.con.execute("SELECT notifier, as_of, as_at FROM notify_cursor").fetchall()
    return {str(r[0]): r[2] if r[2] is not None else r[1] for r in rows}


def moment_key(moment: date) -> datetime:
    """A day (its end) or an instant as one comparable instant: a day ends where the next begins."""
    if isinstance(moment, datetime):
        return moment
    return datetime.combine(moment + timedelta(days=1), time())


def queue(wh: Warehouse, plans: Sequence[NotifierPlan], *, now: datetime) -> None:
    """Record this run's digests, every notifier's new state and the newest date it was told about,
    in one transaction. A backfill plan records nothing."""
    con = wh.con
    con.execute("BEGIN TRANSACTION")
    try:
        for plan in plans:
            if plan.backfill is not None:
                continue
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
            if plan.as_of is not None:
                # the newest moment wins, a day counting as its end (a later-or-equal run moves it)
                newer = (
                    "coalesce(excluded.as_at, excluded.as_of + INTERVAL 1 DAY) >= "
                    "coalesce(notify_cursor.as_at, notify_cursor.as_of + INTERVAL 1 DAY)"
                )
                con.execute(
                    "INSERT INTO notify_cursor (notifier, as_of, as_at, run_id, updated_at) VALUES (?, ?, ?, ?, ?) "
                    f"ON CONFLICT (notifier) DO UPDATE SET "
                    f"as_of = CASE WHEN {newer} THEN excluded.as_of ELSE notify_cursor.as_of END, "
                    f"as_at = CASE WHEN {newer} THEN excluded.as_at ELSE notify_cursor.as_at END, "
                    "run_id = excluded.run_id, updated_at = excluded.updated_at",
                    [plan.notifier, plan.as_of, plan.at, plan.run_id, _utc_naive(now)],
                )
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(EngineError):  # never mask the error that got us here
            con.execute("ROLLBACK")
        raise


def pending(wh: Warehouse) -> pl.DataFrame:
    """Digests to deliver, oldest first: notifier, digest_key, status (pending or sending), run_id,
    items, attempts, uncertain, payload."""
    return wh.con.frame(
        "SELECT notifier, digest_key, status, run_id, items, attempts, coalesce(uncertain, false) AS uncertain, "
        "payload FROM notify_outbox WHERE status IN ('pending', 'sending') ORDER BY created_at, run_id, digest_key"
    )


def mark_sending(wh: Warehouse, notifier: str, key: str, *, now: datetime) -> None:
    """Record, committed before the attempt, that a digest is being delivered (a stopped run leaves it so)."""
    wh.con.execute(
        "UPDATE notify_outbox SET status = 'sending', last_attempt_at = ? WHERE notifier = ? AND digest_key = ?",
        [_utc_naive(now), notifier, key],
    )


def record(
    wh: Warehouse, notifier: str, key: str, delivery: Delivery, *, now: datetime, uncertain: bool = False
) -> None:
    """Record one delivery attempt series: delivered, dead (refused for good) or pending again, the
    attempts added, the error, and whether some attempt may have reached the receiver."""
    stamp = _utc_naive(now)
    status = "delivered" if delivery.delivered else "dead" if delivery.dead else "pending"
    wh.con.execute(
        "UPDATE notify_outbox SET attempts = attempts + ?, last_attempt_at = ?, status = ?, "
        "delivered_at = CASE WHEN ? THEN ? ELSE delivered_at END, last_error = ?, "
        "uncertain = coalesce(uncertain, false) OR ? WHERE notifier = ? AND digest_key = ?",
        [
            delivery.attempts,
            stamp,
            status,
            delivery.delivered,
            stamp,
            None if delivery.delivered else delivery.error,
            uncertain or delivery.uncertain,
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
    """Deliver every waiting digest of the declared notifiers, oldest first; a notifier whose digest
    failed stops for this run (a dead one does not stop it). Each digest is marked ``sending`` before
    its delivery and its outcome recorded at once (the run may be killed at any point)."""
    by_name = {n.name: n for n in notifiers}
    reports: list[DeliveryReport] = []
    stopped: set[str] = set()
    for row in pending(wh).iter_rows(named=True):
        config = by_name.get(row["notifier"])
        if config is None or row["notifier"] in stopped:
            continue
        # a run stopped while sending it, or an attempt that may have arrived: say it may be a repeat
        maybe_seen = row["status"] == "sending" or bool(row["uncertain"])
        mark_sending(wh, row["notifier"], row["digest_key"], now=now())
        kwargs: dict[str, object] = {"redelivery": maybe_seen}
        if sleep is not None:
            kwargs["sleep"] = sleep
        outcome = send(config, row["digest_key"], row["payload"], **kwargs)
        record(wh, row["notifier"], row["digest_key"], outcome, now=now(), uncertain=maybe_seen)
        reports.append(
            DeliveryReport(row["notifier"], row["digest_key"], row["run_id"], int(row["items"]), outcome)
        )
        if not outcome.delivered and not outcome.dead:
            stopped.add(row["notifier"])
    return reports


def outbox(wh: Warehouse, *, include_delivered: bool = False, limit: int | None = None) -> pl.DataFrame:
    """The outbox, newest first (:data:`OUTBOX_COLUMNS`): what was not delivered (pending, sending,
    dead), and with ``include_delivered`` also the delivered and dropped digests."""
    where = "" if include_delivered else "WHERE status IN ('pending', 'sending', 'dead')"
    frame = wh.con.frame(
        f"SELECT {', '.join(OUTBOX_COLUMNS)} FROM notify_outbox {where} "
        "ORDER BY created_at DESC, run_id DESC, digest_key" + (f" LIMIT {int(limit)}" if limit else "")
    )
    return frame


def orphaned(wh: Warehouse, notifiers: Sequence[NotifierConfig]) -> dict[str, int]:
    """Waiting digests of notifiers the configuration no longer declares (they are never sent)."""
    names = {n.name for n in notifiers}
    rows = wh.con.execute(
        "SELECT notifier, count(*) FROM notify_outbox WHERE status IN ('pending', 'sending') GROUP BY notifier"
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows if str(r[0]) not in names}


def dead(wh: Warehouse) -> dict[str, int]:
    """Dead digests (refused for good) per notifier: they wait for an operator."""
    rows = wh.con.execute(
        "SELECT notifier, count(*) FROM notify_outbox WHERE status = 'dead' GROUP BY notifier ORDER BY notifier"
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


@dataclass(frozen=True)
class OutboxAction:
    """What ``alerts outbox retry|drop`` did to one digest."""

    notifier: str
    digest_key: str
    action: str
    before: str
    after: str
    as_of: date | None
    items: int


def act(
    wh: Warehouse,
    key: str,
    action: str,
    *,
    by: str | None,
    reason: str | None,
    now: datetime,
    notifier: str | None = None,
) -> OutboxAction:
    """An operator's ``retry`` (a dead or dropped digest goes back in the queue, first in line: the
    next run delivers it) or ``drop`` (a waiting or dead digest is set aside for good), recorded
    with who, when and why. ``key`` is a digest key or a unique start of one.

    Raises:
        UsageError: no such digest, an ambiguous key, or a digest in a status the action does not
            take (a delivered one; retrying one that waits already).
    """
    if action not in ACTIONS:
        raise UsageError(f"unknown outbox action {action!r}; use {' or '.join(ACTIONS)}")
    if action == "drop" and not (reason or "").strip():
        raise UsageError("drop needs a --reason (it is kept with the digest, for whoever asks where it went)")
    rows = wh.con.execute(
        "SELECT notifier, digest_key, status, as_of, items FROM notify_outbox "
        "WHERE starts_with(digest_key, ?) AND (? IS NULL OR notifier = ?) ORDER BY notifier, digest_key",
        [key, notifier, notifier],
    ).fetchall()
    exact = [r for r in rows if r[1] == key]
    rows = exact or rows
    if not rows:
        raise UsageError(
            f"no digest {key!r} in the outbox", hint="list them with `citykpi alerts outbox --all`"
        )
    if len(rows) > 1:
        named = ", ".join(f"{r[1]} ({r[0]})" for r in rows[:5])
        raise UsageError(
            f"{key!r} names {len(rows)} digests: {named}", hint="give the whole key, or --notifier NAME"
        )
    name, full, status, as_of, items = rows[0]
    if status not in ACTIONS[action]:
        why = {
            "delivered": "it was delivered",
            "pending": "it waits for delivery already: the next run sends it",
            "sending": "it waits for delivery already: the next run sends it",
            "dropped": "it was dropped already",
        }.get(status, f"it is {status}")
        raise UsageError(
            f"cannot {action} digest {full} ({name}): {why}",
            hint=f"{action} takes a digest that is {' or '.join(ACTIONS[action])}",
        )
    after = "pending" if action == "retry" else "dropped"
    wh.con.execute(
        "UPDATE notify_outbox SET status = ?, action = ?, action_by = ?, action_at = ?, action_reason = ? "
        "WHERE notifier = ? AND digest_key = ?",
        [after, action, by, _utc_naive(now), (reason or "").strip() or None, name, full],
    )
    return OutboxAction(str(name), str(full), action, str(status), after, as_of, int(items))


def prune(wh: Warehouse, *, removed: Sequence[int] = (), dry_run: bool = False) -> int:
    """Remove delivered and dropped digests older than every run that is kept (``removed``: runs
    about to be removed, for a dry run); pending, sending and dead ones always stay. Returns how many."""
    ids = list(removed) or [-1]
    oldest = wh.con.execute(
        "SELECT min(run_id) FROM runs WHERE NOT list_contains(?, run_id)", [ids]
    ).fetchall()
    if not oldest or oldest[0][0] is None:
        return 0
    where = "status IN ('delivered', 'dropped') AND run_id < ?"
    count = wh.con.execute(f"SELECT count(*) FROM notify_outbox WHERE {where}", [oldest[0][0]]).fetchall()
    n = int(count[0][0]) if count else 0
    if n and not dry_run:
        wh.con.execute(f"DELETE FROM notify_outbox WHERE {where}", [oldest[0][0]])
    return n
