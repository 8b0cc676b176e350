"""The alert lifecycle of the vital signs: pending → firing → resolved, per indicator × area.

An indicator with an ``alert:`` rule (catalogue) is followed per area that has readings of its own.
The lifecycle is a deterministic function of the readings (see :mod:`citykpi.engine.alertsql` for
the rule), kept in the warehouse as an episode table and updated incrementally:

* :func:`update_episodes` follows every rule's readings up to an instant and stores the episodes
  (one transaction). It continues each open episode from its stored state, so updating every five
  minutes or once gives the same table. A changed rule is followed again from the start; readings
  that arrive late (a batch with periods the lifecycle has passed) restart only their series.
* :func:`episodes` gives the episode table as of any instant — past ones are replayed from the
  readings, later ones continue the stored state — without writing anything.
* :func:`firing` gives what is pending or firing at an instant, with since and duration.

A recorded evaluation (``citykpi evaluate``, ``run``) updates the lifecycle to its moment; the
``alerts`` command reads it with :func:`firing` and :func:`episodes`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from citykpi.catalogue.model import (
    ALERT_EPISODES_SOURCE,
    COLOURS,
    SEVERITY,
    Catalogue,
    FromSeries,
    Indicator,
    Observed,
)
from citykpi.engine import alertsql
from citykpi.engine.tables import _BANDSET_SCHEMA, _bandset_row
from citykpi.errors import UsageError
from citykpi.warehouse.connection import Warehouse
from citykpi.warehouse.schema import builtin_source_table

#: Episode states: open (pending, firing) and closed (resolved after firing, cancelled before).
STATES: tuple[str, ...] = ("pending", "firing", "resolved", "cancelled")

#: Columns of :func:`episodes` and :func:`firing`.
EPISODE_FRAME_COLUMNS: tuple[str, ...] = (
    "indicator_id",
    "area_id",
    "level",
    "owner",
    "state",
    "started_at",
    "fired_at",
    "ended_at",
    "minutes",
    "minutes_to_fire",
    "minutes_to_resolve",
    "peak",
    "peak_at",
    "worst_status",
    "last_value",
    "last_at",
    "readings",
    "unit",
    "name_zh",
    "name_en",
    "area_name_zh",
    "area_name_en",
)

_TEMP = (
    "ck_alert_rule",
    "ck_alert_bandset",
    "ck_alert_override",
    "t_al_dirty",
    "t_al_from",
    "t_al_seed",
    "t_al_new",
    "t_al_replaced",
    "t_al_episodes",
)


def rules(catalogue: Catalogue) -> tuple[Indicator, ...]:
    """The indicators whose lifecycle is followed: an ``alert:`` rule on observed readings."""
    return tuple(
        i for i in catalogue.indicators if i.alert is not None and isinstance(i.value, Observed | FromSeries)
    )


def rule_hash(ind: Indicator) -> str:
    """A fingerprint of everything that decides an indicator's episodes (a change restarts them)."""
    a = ind.alert
    assert a is not None
    th = ind.thresholds

    def bands(b: object) -> tuple[object, ...]:
        cuts = sorted(getattr(b, "cuts", {}).items())
        ranges = sorted(getattr(b, "ranges", {}).items())
        return (cuts, ranges, getattr(b, "inclusive", False))

    series = ind.value.input if isinstance(ind.value, FromSeries) else ind.id
    parts = (
        a.colour,
        a.clear,
        a.clear_range,
        a.for_,
        a.clear_for,
        ind.direction,
        th.basis,
        th.limit,
        ind.target.value if ind.target else None,
        bands(th.bands),
        [(o.level, o.area, bands(o.bands)) for o in th.overrides],
        series,
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class UpdateReport:
    """What :func:`update_episodes` did: the instant followed to and the rules it moved."""

    upto: datetime
    rules: int  # rules updated
    full: int  # of which followed again from the start (new or changed)
    episodes: int  # episodes written (new or continued)


def _frames(
    wh: Warehouse, catalogue: Catalogue, upto: datetime, *, persist: bool
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, list[tuple[int, str]]]:
    """The rule table (with each rule's mode), band sets, overrides, and (key, hash) of the rules moved."""
    if not wh.read_only:
        wh.register_indicators(i.id for i in catalogue.indicators)
    keys = wh.indicator_keys()
    area_keys = dict(wh.con.execute("SELECT area_id, area_key FROM areas").fetchall())
    progress = {
        int(k): (str(h), p, int(b))
        for k, h, p, b in wh.con.execute(
            "SELECT indicator_key, rule_hash, processed_at, processed_batch FROM alert_progress"
        ).fetchall()
    }
    rule_rows: list[dict[str, object]] = []
    bs_rows: list[dict[str, object]] = []
    ov_rows: list[dict[str, object]] = []
    moved: list[tuple[int, str]] = []
    for ind in rules(catalogue):
        series = ind.value.input if isinstance(ind.value, FromSeries) else ind.id
        if ind.id not in keys or series not in keys:
            continue  # never seen by this warehouse (read-only): nothing to follow
        ikey, h = keys[ind.id], rule_hash(ind)
        done = progress.get(ikey)
        if done is None or done[0] != h:
            mode, after_ts, after_batch = "full", None, 0
        elif upto >= done[1]:
            mode, after_ts, after_batch = "incremental", done[1], done[2]
        elif persist:
            continue  # the lifecycle only moves forward; an earlier instant is replayed, not stored
        else:
            mode, after_ts, after_batch = "replay", done[1], done[2]
        if mode != "replay":
            moved.append((ikey, h))
        a = ind.alert
        assert a is not None
        bs_id = len(bs_rows) + 1
        bs_rows.append(_bandset_row(bs_id, ind.direction, ind.thresholds.bands))
        for ov in ind.thresholds.overrides:
            akey = area_keys.get(ov.area) if ov.area else None
            if ov.area and akey is None:
                continue
            ob = len(bs_rows) + 1
            bs_rows.append(_bandset_row(ob, ind.direction, ov.bands))
            ov_rows.append({"ikey": ikey, "level": ov.level, "area_key": akey, "bs_id": ob})
        if ind.direction == "band":
            kind = "within" if a.clear_range else "none"
            lo, hi = a.clear_range if a.clear_range else (None, None)
        elif a.clear is None:
            kind, lo, hi = "none", None, None
        elif ind.direction == "lower_is_better":
            kind, lo, hi = "below", a.clear, None
        else:
            kind, lo, hi = "above", None, a.clear
        green = ind.thresholds.bands.ranges.get("green")
        rule_rows.append(
            {
                "ikey": ikey,
                "series_ikey": keys[series],
                "direction": ind.direction,
                "basis": ind.thresholds.basis,
                "target_value": ind.target.value if ind.target else None,
                "limit_value": ind.thresholds.limit,
                "change_unit": ind.change_unit,
                "mid": (green[0] + green[1]) / 2 if green else None,
                "bs_id": bs_id,
                "set_sev": SEVERITY[a.colour],
                "clear_kind": kind,
                "clear_lo": lo,
                "clear_hi": hi,
                "for_s": a.for_.duration.total_seconds() if a.for_.duration is not None else None,
                "for_n": a.for_.readings,
                "clear_s": a.clear_for.duration.total_seconds() if a.clear_for.duration is not None else None,
                "clear_n": a.clear_for.readings,
                "mode": mode,
                "after_ts": after_ts,
                "after_batch": after_batch,
            }
        )
    rule_frame = pl.DataFrame(
        rule_rows,
        schema={
            "ikey": pl.Int32(),
            "series_ikey": pl.Int32(),
            "direction": pl.String(),
            "basis": pl.String(),
            "target_value": pl.Float64(),
            "limit_value": pl.Float64(),
            "change_unit": pl.String(),
            "mid": pl.Float64(),
            "bs_id": pl.Int32(),
            "set_sev": pl.Int8(),
            "clear_kind": pl.String(),
            "clear_lo": pl.Float64(),
            "clear_hi": pl.Float64(),
            "for_s": pl.Float64(),
            "for_n": pl.Int32(),
            "clear_s": pl.Float64(),
            "clear_n": pl.Int32(),
            "mode": pl.String(),
            "after_ts": pl.Datetime("us"),
            "after_batch": pl.Int32(),
        },
    )
    return (
        rule_frame,
        pl.DataFrame(bs_rows, schema=_BANDSET_SCHEMA),
        pl.DataFrame(
            ov_rows,
            schema={"ikey": pl.Int32(), "level": pl.String(), "area_key": pl.Int32(), "bs_id": pl.Int32()},
        ),
        moved,
    )


def _compute(wh: Warehouse, catalogue: Catalogue, upto: datetime, *, persist: bool) -> list[tuple[int, str]]:
    """Run the lifecycle statements up to ``upto``: temp tables ``t_al_new`` (computed episodes),
    ``t_al_replaced`` (stored ones they stand in for) and ``t_al_episodes`` (the table as of
    ``upto``). Returns the (key, hash) of the rules computed forward."""
    con = wh.con
    rule_frame, bandsets, overrides, moved = _frames(wh, catalogue, upto, persist=persist)
    for name, frame in (
        ("ck_alert_rule", rule_frame),
        ("ck_alert_bandset", bandsets),
        ("ck_alert_override", overrides),
    ):
        with con.registered("_ck_alert_frame", frame):
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _ck_alert_frame")
    followed = rule_frame.filter(pl.col("mode") != "full")
    min_batch = int(followed["after_batch"].min() or 0) if followed.height else 0  # type: ignore[arg-type]
    con.execute(alertsql.dirty_sql(upto, min_batch))
    con.execute(alertsql.restart_sql(upto))
    con.execute(alertsql.seed_sql())
    lowest: datetime | None = None
    if not rule_frame.filter(pl.col("mode") == "full").height:
        starts = [x for x in con.execute("SELECT min(from_ts) FROM t_al_from").fetchall()[0] if x is not None]
        incremental = rule_frame.filter(pl.col("mode") == "incremental")
        if incremental.height:
            starts.append(incremental["after_ts"].min())
        lowest = min(starts) if starts else upto
    seeded = con.execute("SELECT count(*) FROM t_al_seed").fetchall()[0][0]
    late = None
    if seeded and followed.height:
        late = (min_batch, followed["after_ts"].max())
    con.execute(alertsql.compute_sql(upto, lowest, late))  # type: ignore[arg-type]
    con.execute(alertsql.replaced_sql(upto))
    con.execute(alertsql.merged_sql(upto))
    return moved


def update_episodes(wh: Warehouse, catalogue: Catalogue, upto: datetime) -> UpdateReport:
    """Follow every alert rule's readings up to ``upto`` (naive city time) and store the episodes.

    One transaction: the episodes and the progress change together or not at all. Rules already
    followed past ``upto`` are left as they are (replay an earlier instant with :func:`episodes`).
    """
    con = wh.con
    if not rules(catalogue):
        return UpdateReport(upto, 0, 0, 0)
    max_batch = int(con.execute("SELECT coalesce(max(batch_id), 0) FROM batches").fetchall()[0][0])
    con.execute("BEGIN TRANSACTION")
    try:
        moved = _compute(wh, catalogue, upto, persist=True)
        full = con.execute("SELECT count(*) FROM ck_alert_rule WHERE mode = 'full'").fetchall()[0][0]
        written = con.execute("SELECT count(*) FROM t_al_new").fetchall()[0][0]
        for stmt in alertsql.store_sql():
            con.execute(stmt)
        if moved:
            frame = pl.DataFrame(
                {"indicator_key": [k for k, _ in moved], "rule_hash": [h for _, h in moved]},
                schema={"indicator_key": pl.Int32(), "rule_hash": pl.String()},
            )
            with con.registered("_ck_alert_moved", frame):
                con.execute(
                    "DELETE FROM alert_progress WHERE indicator_key IN (SELECT indicator_key FROM _ck_alert_moved)"
                )
                con.execute(
                    "INSERT INTO alert_progress SELECT indicator_key, rule_hash, ?, ?, now()::TIMESTAMP "
                    "FROM _ck_alert_moved",
                    [upto, max_batch],
                )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        _drop(wh)
    return UpdateReport(upto, len(moved), int(full), int(written))


def _drop(wh: Warehouse) -> None:
    for name in _TEMP:
        wh.con.execute(f"DROP TABLE IF EXISTS {name}")


def _labels(wh: Warehouse, followed: Sequence[Indicator]) -> pl.DataFrame:
    """The followed indicators' keys with their id, owner, domain, unit and names (key -1: not stored yet)."""
    keys = wh.indicator_keys()
    return pl.DataFrame(
        {
            "indicator_key": [keys.get(i.id, -1) for i in followed],
            "indicator_id": [i.id for i in followed],
            "owner": [i.owner for i in followed],
            "domain": [i.domain for i in followed],
            "unit": [i.unit for i in followed],
            "name_zh": [i.name.zh for i in followed],
            "name_en": [i.name.en for i in followed],
        },
        schema={
            "indicator_key": pl.Int32(),
            "indicator_id": pl.String(),
            "owner": pl.String(),
            "domain": pl.String(),
            "unit": pl.String(),
            "name_zh": pl.String(),
            "name_en": pl.String(),
        },
    )


def prepare_episode_source(wh: Warehouse, catalogue: Catalogue, upto: datetime) -> str:
    """Make the session table a ``measure`` over the built-in source ``alert_episodes`` reads: the
    resolved episodes as of ``upto`` (as :func:`episodes` gives them), with the columns of
    :data:`~citykpi.catalogue.model.ALERT_EPISODES_SOURCE` and ``area_key``. Returns its name."""
    name = builtin_source_table(ALERT_EPISODES_SOURCE.id)
    followed = rules(catalogue)
    labels = _labels(wh, followed).select("indicator_key", "indicator_id", "owner", "domain")
    colours = "[" + ", ".join(f"'{c}'" for c in COLOURS) + "]"
    empty = f"""CREATE OR REPLACE TEMP TABLE {name} (indicator_id TEXT, owner TEXT, domain TEXT, area_id TEXT,
  area_key INTEGER, started_at TIMESTAMP, fired_at TIMESTAMP, resolved_at TIMESTAMP, minutes DOUBLE,
  minutes_to_fire DOUBLE, minutes_to_resolve DOUBLE, peak DOUBLE, worst_colour TEXT, readings INTEGER)"""
    if not followed:
        wh.con.execute(empty)
        return name
    try:
        _compute(wh, catalogue, upto, persist=False)
        with wh.con.registered("_ck_alert_labels", labels):
            wh.con.execute(
                f"""CREATE OR REPLACE TEMP TABLE {name} AS
SELECT l.indicator_id, l.owner, l.domain, a.area_id, e.area_key, e.started_at, e.fired_at,
  e.ended_at AS resolved_at,
  (epoch(e.ended_at) - epoch(e.started_at)) / 60.0 AS minutes,
  (epoch(e.fired_at) - epoch(e.started_at)) / 60.0 AS minutes_to_fire,
  (epoch(e.ended_at) - epoch(e.fired_at)) / 60.0 AS minutes_to_resolve,
  e.peak, {colours}[e.worst_severity + 1] AS worst_colour, e.readings
FROM t_al_episodes e JOIN _ck_alert_labels l ON l.indicator_key = e.indicator_key
JOIN areas a ON a.area_key = e.area_key
WHERE e.fired_at IS NOT NULL AND e.ended_at IS NOT NULL AND e.ended_at <= ?""",
                [upto],
            )
    finally:
        _drop(wh)
    return name


def latest_reading(wh: Warehouse, catalogue: Catalogue) -> datetime | None:
    """The newest reading of any followed indicator (the default instant of :func:`episodes`)."""
    keys = wh.indicator_keys()
    wanted = sorted(
        {
            keys[i.value.input if isinstance(i.value, FromSeries) else i.id]
            for i in rules(catalogue)
            if (i.value.input if isinstance(i.value, FromSeries) else i.id) in keys
        }
    )
    if not wanted:
        return None
    row = wh.con.execute(
        f"SELECT max(period) FROM observations WHERE indicator_key IN ({', '.join(map(str, wanted))})"
    ).fetchall()
    return row[0][0] if row and row[0][0] is not None else None


def episodes(
    wh: Warehouse,
    catalogue: Catalogue,
    *,
    at: datetime | None = None,
    indicators: Sequence[str] | None = None,
    areas: Sequence[str] | None = None,
    since: datetime | None = None,
    states: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Every episode as of ``at`` (default: the newest reading), newest first; nothing is written.

    Open episodes are ``pending`` or ``firing`` at ``at``; closed ones ``resolved`` (it fired) or
    ``cancelled`` (it cleared before ``for`` elapsed). Minutes count from the start (``minutes``:
    to the end, or to ``at`` while open), from the start to firing, and from firing to the end.
    ``since`` keeps the episodes still open or ended at or after it; ``states`` keeps those stages.

    Columns: :data:`EPISODE_FRAME_COLUMNS`.

    Raises:
        UsageError: a state that is not one of :data:`STATES`.
    """
    unknown = [s for s in states or () if s not in STATES]
    if unknown:
        raise UsageError(f"unknown state {unknown[0]!r}", hint=f"use one of {', '.join(STATES)}")
    upto = at or latest_reading(wh, catalogue)
    if upto is None or not rules(catalogue):
        return _empty()
    try:
        _compute(wh, catalogue, upto, persist=False)
        frame = wh.con.frame(_EPISODES_OUT, [upto, upto, upto, upto])
    finally:
        _drop(wh)
    frame = _decorate(frame, catalogue, wh, indicators=indicators, areas=areas)
    if since is not None:
        frame = frame.filter(pl.col("ended_at").is_null() | (pl.col("ended_at") >= since))
    if states:
        frame = frame.filter(pl.col("state").is_in(list(states)))
    return frame


def firing(
    wh: Warehouse,
    catalogue: Catalogue,
    at: datetime | None = None,
    *,
    indicators: Sequence[str] | None = None,
    areas: Sequence[str] | None = None,
) -> pl.DataFrame:
    """What is pending or firing at ``at`` (default: the newest reading): one row per open episode,
    firing first, then the longest running."""
    frame = episodes(wh, catalogue, at=at, indicators=indicators, areas=areas)
    open_ = frame.filter(pl.col("state").is_in(["pending", "firing"]))
    return open_.sort(
        [pl.col("state") == "firing", "started_at", "indicator_id", "area_id"],
        descending=[True, False, False, False],
    )


#: The episodes as of an instant (``?`` ×4: the instant), with their state at it.
_EPISODES_OUT = """
SELECT e.indicator_key, e.area_key,
  CASE WHEN e.ended_at IS NULL OR e.ended_at > ? THEN
         CASE WHEN e.fired_at IS NOT NULL AND e.fired_at <= ? THEN 'firing' ELSE 'pending' END
       WHEN e.fired_at IS NOT NULL THEN 'resolved' ELSE 'cancelled' END AS state,
  e.started_at, e.fired_at, e.ended_at,
  (epoch(coalesce(e.ended_at, ?)) - epoch(e.started_at)) / 60.0 AS minutes,
  (epoch(e.fired_at) - epoch(e.started_at)) / 60.0 AS minutes_to_fire,
  (epoch(e.ended_at) - epoch(e.fired_at)) / 60.0 AS minutes_to_resolve,
  e.peak, e.peak_at, e.worst_severity, e.last_value, e.last_at, e.readings
FROM t_al_episodes e WHERE e.started_at <= ?"""


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=_FRAME_SCHEMA)


_FRAME_SCHEMA: dict[str, pl.DataType] = {
    "indicator_id": pl.String(),
    "area_id": pl.String(),
    "level": pl.String(),
    "owner": pl.String(),
    "state": pl.String(),
    "started_at": pl.Datetime("us"),
    "fired_at": pl.Datetime("us"),
    "ended_at": pl.Datetime("us"),
    "minutes": pl.Float64(),
    "minutes_to_fire": pl.Float64(),
    "minutes_to_resolve": pl.Float64(),
    "peak": pl.Float64(),
    "peak_at": pl.Datetime("us"),
    "worst_status": pl.String(),
    "last_value": pl.Float64(),
    "last_at": pl.Datetime("us"),
    "readings": pl.Int32(),
    "unit": pl.String(),
    "name_zh": pl.String(),
    "name_en": pl.String(),
    "area_name_zh": pl.String(),
    "area_name_en": pl.String(),
}


def _decorate(
    frame: pl.DataFrame,
    catalogue: Catalogue,
    wh: Warehouse,
    *,
    indicators: Sequence[str] | None,
    areas: Sequence[str] | None,
) -> pl.DataFrame:
    """Names, owners and colours joined to the episodes' keys; filtered; newest first."""
    if not frame.height:
        return _empty()
    labels = _labels(wh, rules(catalogue)).drop("domain")
    area_frame = wh.areas().select(
        pl.col("area_key").cast(pl.Int32()),
        "area_id",
        "level",
        pl.col("name").alias("area_name_zh"),
        pl.col("name_en").alias("area_name_en"),
    )
    out = (
        frame.with_columns(pl.col("indicator_key").cast(pl.Int32()), pl.col("area_key").cast(pl.Int32()))
        .join(labels, on="indicator_key", how="inner")
        .join(area_frame, on="area_key", how="left")
        .with_columns(
            pl.col("worst_severity")
            .replace_strict(dict(enumerate(COLOURS)), default=None, return_dtype=pl.String())
            .alias("worst_status")
        )
    )
    if indicators:
        out = out.filter(pl.col("indicator_id").is_in(list(indicators)))
    if areas:
        out = out.filter(pl.col("area_id").is_in(list(areas)))
    out = out.select([pl.col(n).cast(t) for n, t in _FRAME_SCHEMA.items()])
    return out.sort(["started_at", "indicator_id", "area_id"], descending=[True, False, False])
