"""One digest per notifier and run: only what changed, grouped by domain and owner.

What a notifier is told is decided against what it was told before (``notify_state``), so a
digest never repeats itself and loses nothing (a run for a date older than the newest one a notifier
was told about — a backfill — tells it nothing: :func:`citykpi.notify.plan_digests`):

- ``new``           — an alert it was never told about (``since``: when the alert began; an alert
                      held back by a silence or a red parent area is announced when that ends);
- ``escalated``     — an alert it was told about, now of a higher colour;
- ``still_firing``  — a reminder, every ``remind_after`` days an alert lasts (0: never);
- ``resolved``      — an alert it was told about whose cell now has a colour below the floor.

A cell that went stale or lost its data is not resolved (nothing is known about it): its alert
stays open, and is not announced again if it fires on. A silence or a red parent area
(inhibition: the same indicator is red in an area above) holds back new, escalated and reminder
notices; a resolution of something announced is always sent, so no one is left believing an
alert still fires.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import polars as pl

from citykpi.catalogue.model import SEVERITY, Catalogue
from citykpi.engine.scorecard import Scorecard
from citykpi.notify.changes import CHANGE_KINDS, AlertChanges
from citykpi.notify.notifiers import NotifierConfig
from citykpi.notify.silences import Silence, inhibiting_parent, matching_silence
from citykpi.render.format import fmt_value

DIGEST_SCHEMA = "citykpi.alert_digest"
DIGEST_SCHEMA_VERSION = 1

#: Columns of a notifier's delivery state (table ``notify_state`` without ``notifier``).
STATE_SCHEMA: Mapping[str, pl.DataType] = {
    "indicator_id": pl.String(),
    "area_id": pl.String(),
    "since": pl.Date(),
    "status": pl.String(),
    "severity": pl.Int8(),
    "reminded": pl.Int32(),
    "digest_key": pl.String(),
}

_KEYS = ["indicator_id", "area_id"]


@dataclass(frozen=True)
class Digest:
    """A digest for one notifier: its idempotency key, its document and its item count."""

    notifier: str
    key: str
    run_id: int | None
    as_of: date
    grain: str
    items: int
    document: Mapping[str, Any]

    @property
    def payload(self) -> str:
        """The document as JSON (what is sent, stored in the outbox and retried unchanged)."""
        return json.dumps(self.document, ensure_ascii=False, sort_keys=False)


@dataclass(frozen=True)
class NotifierPlan:
    """What one run does for one notifier: the digest to queue (or None) and the state after it.

    ``backfill``: the run's moment is older than ``backfill``, the newest moment the notifier was
    told about (a day, or the instant of a sub-daily run); such a plan queues nothing and leaves the
    notifier's state as it is.
    """

    notifier: str
    digest: Digest | None
    state: pl.DataFrame
    counts: Mapping[str, int] = field(default_factory=dict)  # items per change kind
    silenced: int = 0  # alerts held back by a silence
    inhibited: int = 0  # alerts held back by a red parent area
    as_of: date | None = None  # the run's date: the newest the notifier is told about after it
    run_id: int | None = None
    backfill: date | None = None  # a date, or a datetime when the newest told is an instant
    at: datetime | None = None  # the run's instant (a sub-daily run), None for the end of ``as_of``


def empty_state() -> pl.DataFrame:
    """A notifier's state before it was ever told anything."""
    return pl.DataFrame(schema=dict(STATE_SCHEMA))


def _labels(current: Scorecard, catalogue: Catalogue, lang: str) -> pl.DataFrame:
    """Names, unit, owner and decimals of every cell of the scorecard."""
    inds = pl.DataFrame(
        {
            "indicator_id": [i.id for i in catalogue.indicators],
            "owner": [i.owner or "" for i in catalogue.indicators],
            "decimals": [int(i.decimals) for i in catalogue.indicators],
        },
        schema={"indicator_id": pl.String(), "owner": pl.String(), "decimals": pl.Int32()},
    )
    name, area = ("name_en", "area_name_en") if lang == "en" else ("name_zh", "area_name_zh")
    cells = current.cells.select(
        pl.col("indicator_id").cast(pl.String),
        pl.col("area_id").cast(pl.String),
        pl.col("level").cast(pl.String),
        pl.col("domain").cast(pl.String).fill_null(""),
        pl.coalesce(pl.col(name), pl.col("name_zh"), pl.col("indicator_id")).cast(pl.String).alias("name"),
        pl.coalesce(pl.col(area), pl.col("area_name_zh"), pl.col("area_id"))
        .cast(pl.String)
        .alias("area_name"),
        pl.col("unit").cast(pl.String),
        pl.col("explanation").cast(pl.String),
        pl.col("status").cast(pl.String).alias("status_now"),
        pl.col("severity").cast(pl.Int8).alias("severity_now"),
        pl.col("value").cast(pl.Float64).alias("value_now"),
    )
    return cells.join(inds, on="indicator_id", how="left").with_columns(
        pl.col("owner").fill_null(""), pl.col("decimals").fill_null(1)
    )


def plan_notifier(
    notifier: NotifierConfig,
    changes: AlertChanges,
    current: Scorecard,
    catalogue: Catalogue,
    state: pl.DataFrame,
    *,
    silences: Sequence[Silence],
    lineage: pl.DataFrame,
    now: datetime,
    run_id: int | None,
    lang: str = "zh",
    remind_after: int = 0,
) -> NotifierPlan:
    """Decide one notifier's digest for this run and its state after it (see the module)."""
    floor = SEVERITY[changes.min_colour]
    as_of = changes.as_of
    labels = _labels(current, catalogue, lang)
    state = state.select([pl.col(n).cast(t) for n, t in STATE_SCHEMA.items()])
    fire = changes.firing.join(labels.drop("level"), on=_KEYS, how="left").with_columns(
        pl.col("domain").fill_null(""), pl.col("owner").fill_null(""), pl.col("decimals").fill_null(1)
    )
    if notifier.domains:
        fire = fire.filter(pl.col("domain").is_in(list(notifier.domains)))
    if notifier.owners:
        fire = fire.filter(pl.col("owner").is_in(list(notifier.owners)))
    fire = fire.with_columns(
        matching_silence(fire, silences, now, lineage).alias("silence_id"),
        inhibiting_parent(fire, current.cells, lineage).alias("inhibited_by"),
    ).with_columns((pl.col("silence_id").is_not_null() | pl.col("inhibited_by").is_not_null()).alias("held"))
    told = state.rename({c: f"{c}_told" for c in STATE_SCHEMA if c not in _KEYS})
    j = fire.join(told, on=_KEYS, how="left").with_columns(pl.col("since_told").is_not_null().alias("known"))
    days_told = (pl.lit(as_of, dtype=pl.Date) - pl.col("since_told")).dt.total_days()
    days_all = (
        pl.lit(as_of, dtype=pl.Date) - pl.coalesce(pl.col("since_told"), pl.col("since"))
    ).dt.total_days()
    step = pl.lit(max(remind_after, 1))
    j = j.with_columns(
        pl.when(~pl.col("known") & ~pl.col("held"))
        .then(pl.lit("new"))
        .when(pl.col("known") & ~pl.col("held") & (pl.col("severity") > pl.col("severity_told")))
        .then(pl.lit("escalated"))
        .when(
            pl.col("known")
            & ~pl.col("held")
            & pl.lit(remind_after > 0)
            & (days_told // step >= 1)
            & (days_told // step > pl.col("reminded_told"))
        )
        .then(pl.lit("still_firing"))
        .otherwise(pl.lit(None, dtype=pl.String))
        .alias("notice"),
    )
    # the state after the run, for the alerts firing now
    rise_held = pl.col("held") & (pl.col("severity") > pl.col("severity_told"))
    after_firing = j.filter(pl.col("known") | (pl.col("notice") == "new")).select(
        "indicator_id",
        "area_id",
        pl.coalesce(pl.col("since_told"), pl.col("since")).alias("since"),
        pl.when(rise_held).then(pl.col("status_told")).otherwise(pl.col("status")).alias("status"),
        pl.when(rise_held).then(pl.col("severity_told")).otherwise(pl.col("severity")).alias("severity"),
        pl.when(pl.col("notice").is_not_null() & pl.lit(remind_after > 0))  # a notice counts as a reminder
        .then((days_all // step).cast(pl.Int32))
        .otherwise(pl.col("reminded_told").fill_null(0))
        .alias("reminded"),
        pl.col("digest_key_told").alias("digest_key"),
    )
    # what it was told that is not firing now: resolved when the cell has a calmer colour or is gone
    firing_keys = changes.firing.select(_KEYS)
    quiet = state.join(firing_keys, on=_KEYS, how="anti").join(labels, on=_KEYS, how="left")
    ends = pl.col("severity_now").is_not_null() & (pl.col("severity_now") < floor)
    gone = pl.col("status_now").is_null()
    resolved = quiet.filter(ends | gone)
    kept = quiet.filter(~(ends | gone)).select(list(STATE_SCHEMA))
    items = pl.concat(
        [
            j.filter(pl.col("notice").is_not_null()).select(
                pl.col("notice").alias("change"),
                *_KEYS,
                "level",
                "domain",
                "owner",
                "name",
                "area_name",
                "status",
                pl.when(pl.col("notice") == "new")
                .then(pl.col("previous_status"))
                .otherwise(pl.col("status_told"))
                .alias("previous_status"),
                "value",
                "unit",
                "decimals",
                pl.when(pl.col("known")).then(pl.col("since_told")).otherwise(pl.col("since")).alias("since"),
                "explanation",
            ),
            resolved.select(
                pl.lit("resolved").alias("change"),
                *_KEYS,
                "level",
                pl.col("domain").fill_null(""),
                pl.col("owner").fill_null(""),
                pl.coalesce(pl.col("name"), pl.col("indicator_id")).alias("name"),
                pl.coalesce(pl.col("area_name"), pl.col("area_id")).alias("area_name"),
                pl.col("status_now").alias("status"),
                pl.col("status").alias("previous_status"),
                pl.col("value_now").alias("value"),
                "unit",
                pl.col("decimals").fill_null(1),
                "since",
                "explanation",
            ),
        ],
        how="vertical_relaxed",
    )
    new_state = pl.concat([after_firing, kept], how="vertical_relaxed")
    counts = {
        kind: int((items.get_column("change") == kind).sum()) if items.height else 0 for kind in CHANGE_KINDS
    }
    held = j.filter(pl.col("held") & ~pl.col("known"))
    silenced = int(held.get_column("silence_id").is_not_null().sum()) if held.height else 0
    inhibited = held.height - silenced
    digest = None
    if items.height:
        digest = _digest(
            notifier, changes, items, run_id=run_id, now=now, silenced=silenced, inhibited=inhibited
        )
        keyed = items.select(*_KEYS).with_columns(pl.lit(digest.key).alias("_key"))
        new_state = (
            new_state.join(keyed, on=_KEYS, how="left")
            .with_columns(pl.coalesce(pl.col("_key"), pl.col("digest_key")).alias("digest_key"))
            .drop("_key")
        )
    new_state = new_state.select([pl.col(n).cast(t) for n, t in STATE_SCHEMA.items()]).sort(_KEYS)
    return NotifierPlan(
        notifier.name, digest, new_state, counts, silenced, inhibited, as_of, run_id, at=changes.at
    )


def _item_id(row: Mapping[str, Any], as_of: date | datetime) -> str:
    text = f"{row['indicator_id']}|{row['area_id']}|{row['change']}|{row['since']}|{as_of}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _digest(
    notifier: NotifierConfig,
    changes: AlertChanges,
    items: pl.DataFrame,
    *,
    run_id: int | None,
    now: datetime,
    silenced: int,
    inhibited: int,
) -> Digest:
    """The digest document: items grouped by domain and owner, each group in change order."""
    order = {k: i for i, k in enumerate(CHANGE_KINDS)}
    rows = sorted(
        items.iter_rows(named=True),
        key=lambda r: (
            r["domain"] or "",
            r["owner"] or "",
            order[r["change"]],
            r["indicator_id"],
            r["area_id"],
        ),
    )
    groups: list[dict[str, Any]] = []
    ids = []
    for r in rows:
        if not groups or (groups[-1]["domain"], groups[-1]["owner"]) != (r["domain"], r["owner"]):
            groups.append({"domain": r["domain"], "owner": r["owner"], "items": []})
        item_id = _item_id(r, changes.at or changes.as_of)
        ids.append(item_id)
        since: date | None = r["since"]
        groups[-1]["items"].append(
            {
                "id": item_id,
                "change": r["change"],
                "indicator_id": r["indicator_id"],
                "indicator": r["name"],
                "area_id": r["area_id"],
                "area": r["area_name"],
                "level": r["level"],
                "status": r["status"],
                "previous_status": r["previous_status"],
                "value": r["value"],
                "value_text": fmt_value(r["value"], r["unit"], int(r["decimals"]))
                if r["value"] is not None
                else None,
                "unit": r["unit"],
                "since": since.isoformat() if since else None,
                "days": (changes.as_of - since).days if since else None,
                "explanation": r["explanation"],
            }
        )
    seed = f"{notifier.name}|{changes.as_of}|{changes.grain}|{run_id}|{'|'.join(sorted(ids))}"
    key = "citykpi-" + hashlib.sha256(seed.encode()).hexdigest()[:32]
    counts = {kind: sum(1 for r in rows if r["change"] == kind) for kind in CHANGE_KINDS}
    document = {
        "schema": DIGEST_SCHEMA,
        "schema_version": DIGEST_SCHEMA_VERSION,
        "key": key,
        "redelivery": False,  # true when sent again after an attempt that may have reached the receiver
        "notifier": notifier.name,
        "run_id": run_id,
        "as_of": changes.as_of.isoformat(),
        "grain": changes.grain,
        "created_at": now.isoformat(timespec="seconds"),
        "min_colour": changes.min_colour,
        "counts": counts,
        "held_back": {"silenced": silenced, "inhibited": inhibited},
        "groups": groups,
    }
    if changes.at is not None:  # a sub-daily run: the instant it is as of, in city time
        document = {**document, "at": changes.at.isoformat(timespec="minutes")}
    return Digest(notifier.name, key, run_id, changes.as_of, changes.grain, len(rows), document)
