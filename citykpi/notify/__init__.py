"""Alert delivery of the daily job: what changed, silences, one digest per notifier, the outbox.

- ``changes``    :func:`alert_changes` — the alerts of a scorecard against the previous scheduled run
                 (the one input of the digests);
- ``silences``   silences and maintenance windows (warehouse table ``silences``), inhibition by a
                 red parent area;
- ``digest``     one digest per notifier and run: new, escalated, still firing, resolved, grouped
                 by domain and owner, decided against what the notifier was already told;
- ``notifiers``  the ``[[notifiers]]`` of the run configuration (jsonl, webhook, command) and how
                 each delivers a digest (timeout, retries with backoff, idempotency key);
- ``outbox``     digests recorded before they are sent and retried until delivered (or refused for
                 good: set aside as dead for an operator to retry or drop); the newest date each
                 notifier was told about (``notify_cursor``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from citykpi.catalogue.model import Catalogue
from citykpi.engine.scorecard import Scorecard
from citykpi.notify.changes import CHANGE_KINDS, AlertChanges, alert_changes
from citykpi.notify.digest import Digest, NotifierPlan, plan_notifier
from citykpi.notify.notifiers import NotifierConfig
from citykpi.notify.outbox import moment_key, notifier_state, told_up_to
from citykpi.notify.silences import area_lineage, load_silences
from citykpi.warehouse.connection import Warehouse

__all__ = [
    "CHANGE_KINDS",
    "AlertChanges",
    "Digest",
    "NotifierConfig",
    "NotifierPlan",
    "alert_changes",
    "plan_digests",
]


def plan_digests(
    wh: Warehouse,
    scorecard: Scorecard,
    catalogue: Catalogue,
    notifiers: Sequence[NotifierConfig],
    *,
    now: datetime,
    lang: str = "zh",
    min_colour: str = "orange",
    remind_after: int = 0,
) -> tuple[list[NotifierPlan], AlertChanges]:
    """Each notifier's digest for this scorecard (nothing written), and the changes they come from.

    A notifier already told about a later moment than the scorecard's (the run is a backfill: an
    older day, or an earlier hour, evaluated again) gets no digest and keeps its state: what it was
    told is about a later moment, and telling it about the older one would announce as new, resolved
    or escalated what is not so now (:attr:`NotifierPlan.backfill`). A day counts as its end.
    """
    changes = alert_changes(wh, scorecard, min_colour=min_colour)
    if not notifiers:
        return [], changes
    silences = load_silences(wh)
    lineage = area_lineage(wh.areas())
    cursor = told_up_to(wh)
    plans = []
    for n in notifiers:
        newest = cursor.get(n.name)
        if newest is not None and moment_key(scorecard.at or scorecard.as_of) < moment_key(newest):
            plans.append(
                NotifierPlan(
                    n.name, None, notifier_state(wh, n.name), as_of=scorecard.as_of,
                    run_id=scorecard.run_id, backfill=newest, at=scorecard.at,
                )
            )  # fmt: skip
            continue
        plans.append(
            plan_notifier(
                n,
                changes,
                scorecard,
                catalogue,
                notifier_state(wh, n.name),
                silences=silences,
                lineage=lineage,
                now=now,
                run_id=scorecard.run_id,
                lang=lang,
                remind_after=remind_after,
            )
        )
    return plans, changes
