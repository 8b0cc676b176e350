"""What changed in the alerts since the previous scheduled run: the one input of the notifiers.

An alert is a cell (indicator × area) whose colour is at or above ``min_colour``. Compared with the
previous scheduled run (the latest of an earlier date and the same grain), each alert now is:

- ``new``           — it was not an alert then (below the floor, without a colour, or absent);
- ``escalated``     — it was an alert of a lower colour (orange → red);
- ``still_firing``  — it was an alert of the same or a higher colour;

and an alert of the previous run is ``resolved`` when its cell now has a colour below the floor.
A cell that went stale or lost its data is neither: nothing is known about it, and it is not
reported resolved. ``since`` is the first date of the alert's unbroken run of scheduled runs as an
alert (today for a new one).

:func:`alert_changes` is the seam between the runs and the notifiers: the digests
(:mod:`citykpi.notify.digest`) read only :class:`AlertChanges`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import polars as pl

from citykpi.catalogue.model import SEVERITY
from citykpi.engine.runs import previous_run_id
from citykpi.engine.scorecard import Scorecard, empty_frame
from citykpi.errors import UsageError
from citykpi.warehouse.connection import Warehouse

#: Kinds of change, in the order a digest lists them.
CHANGE_KINDS: tuple[str, ...] = ("new", "escalated", "still_firing", "resolved")

#: Columns of :attr:`AlertChanges.firing` and :attr:`AlertChanges.resolved`.
CHANGE_SCHEMA: Mapping[str, pl.DataType] = {
    "indicator_id": pl.String(),
    "area_id": pl.String(),
    "level": pl.String(),
    "status": pl.String(),
    "severity": pl.Int8(),
    "value": pl.Float64(),
    "previous_status": pl.String(),
    "change": pl.String(),
    "since": pl.Date(),
}


@dataclass(frozen=True)
class AlertChanges:
    """The alerts of a scorecard against the previous scheduled run."""

    as_of: date
    grain: str
    min_colour: str
    previous_run_id: int | None
    #: Alerts now: one row per cell at or above ``min_colour``, ``change`` new, escalated or still_firing.
    firing: pl.DataFrame
    #: Alerts of the previous run whose cell now has a colour below ``min_colour``.
    resolved: pl.DataFrame

    def count(self, change: str) -> int:
        """How many alerts changed this way."""
        if change == "resolved":
            return self.resolved.height
        return int((self.firing.get_column("change") == change).sum()) if self.firing.height else 0

    @property
    def counts(self) -> dict[str, int]:
        """Alerts per kind of change."""
        return {kind: self.count(kind) for kind in CHANGE_KINDS}


def _episodes(wh: Warehouse, as_of: date, grain: str, floor: int) -> pl.DataFrame:
    """For each alert of the previous scheduled run: its status, severity, value and the first
    date of its unbroken run of scheduled runs as an alert (one query, however long the history)."""
    return wh.con.frame(
        """
        WITH r AS (
            SELECT as_of, max(run_id) AS run_id, row_number() OVER (ORDER BY as_of) AS idx
            FROM runs WHERE scheduled AND grain = ? AND as_of < ? GROUP BY as_of),
        last AS (SELECT max(idx) AS idx FROM r),
        f AS (
            SELECT c.indicator_key, c.area_key, c.status, c.severity, c.value, r.as_of, r.idx
            FROM run_cells c JOIN r USING (run_id) WHERE c.severity >= ?),
        cur AS (SELECT f.* FROM f, last WHERE f.idx = last.idx),
        s AS (
            SELECT f.indicator_key, f.area_key, f.as_of, f.idx,
                   row_number() OVER (PARTITION BY f.indicator_key, f.area_key ORDER BY f.idx DESC) - 1 AS rn
            FROM f SEMI JOIN cur USING (indicator_key, area_key)),
        since AS (
            SELECT s.indicator_key, s.area_key, min(s.as_of) AS since
            FROM s, last WHERE s.idx + s.rn = last.idx GROUP BY s.indicator_key, s.area_key)
        SELECT k.indicator_id, a.area_id, cur.status AS previous_status, cur.severity AS previous_severity,
               since.since
        FROM cur JOIN since USING (indicator_key, area_key)
        JOIN indicator_keys k ON k.indicator_key = cur.indicator_key
        JOIN areas a ON a.area_key = cur.area_key
        """,
        [grain, as_of, floor],
    )


def alert_changes(wh: Warehouse, current: Scorecard, *, min_colour: str = "orange") -> AlertChanges:
    """The alerts of ``current`` (recorded or not) and what changed since the previous scheduled run.

    Args:
        wh: the warehouse holding the scheduled runs.
        current: the scorecard to report on (its cells; ``as_of`` and ``grain`` pick the previous run).
        min_colour: the least severe colour that is an alert.
    """
    if min_colour not in SEVERITY:
        raise UsageError(f"unknown colour {min_colour!r}; use one of {', '.join(SEVERITY)}")
    floor = SEVERITY[min_colour]
    prev_id = previous_run_id(wh, current.as_of, grain=current.grain, scheduled_only=True)
    before = (
        _episodes(wh, current.as_of, current.grain, floor)
        if prev_id is not None
        else pl.DataFrame(
            schema={
                "indicator_id": pl.String(),
                "area_id": pl.String(),
                "previous_status": pl.String(),
                "previous_severity": pl.Int8(),
                "since": pl.Date(),
            }
        )
    )
    before = before.with_columns(pl.col("previous_severity").cast(pl.Int8), pl.col("since").cast(pl.Date))
    cells = current.cells.select(
        pl.col("indicator_id").cast(pl.String),
        pl.col("area_id").cast(pl.String),
        pl.col("level").cast(pl.String),
        pl.col("status").cast(pl.String),
        pl.col("severity").cast(pl.Int8),
        pl.col("value").cast(pl.Float64),
    )
    keys = ["indicator_id", "area_id"]
    now = cells.filter(pl.col("severity").is_not_null() & (pl.col("severity") >= floor))
    firing = now.join(before, on=keys, how="left").with_columns(
        pl.when(pl.col("previous_severity").is_null())
        .then(pl.lit("new"))
        .when(pl.col("previous_severity") < pl.col("severity"))
        .then(pl.lit("escalated"))
        .otherwise(pl.lit("still_firing"))
        .alias("change"),
        pl.col("since").fill_null(pl.lit(current.as_of, dtype=pl.Date)),
    )
    calmer = cells.filter(pl.col("severity").is_not_null() & (pl.col("severity") < floor))
    resolved = before.join(calmer, on=keys, how="inner").with_columns(pl.lit("resolved").alias("change"))
    return AlertChanges(
        as_of=current.as_of,
        grain=current.grain,
        min_colour=min_colour,
        previous_run_id=prev_id,
        firing=_shape(firing),
        resolved=_shape(resolved),
    )


def _shape(frame: pl.DataFrame) -> pl.DataFrame:
    if not frame.height:
        return empty_frame(CHANGE_SCHEMA)
    order = pl.col("change").replace_strict({k: i for i, k in enumerate(CHANGE_KINDS)}, return_dtype=pl.Int8)
    return (
        frame.with_columns(order.alias("_order"))
        .sort(["_order", "severity", "indicator_id", "area_id"], descending=[False, True, False, False])
        .select([pl.col(n).cast(t) for n, t in CHANGE_SCHEMA.items()])
    )
