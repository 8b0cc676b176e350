"""Report views derived from Scorecards — alerts, league tables, colour changes.

Polars in, Polars out: no printing. The terminal, the exporters and the cron job share them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, time, timedelta

import polars as pl

from citykpi.catalogue.model import SEVERITY
from citykpi.engine.diff import diff_scorecards  # the one definition; re-exported for render users
from citykpi.engine.scorecard import Scorecard
from citykpi.errors import UsageError

#: Columns of :func:`alerts`.
ALERT_COLUMNS: tuple[str, ...] = (
    "indicator_id",
    "area_id",
    "level",
    "domain",
    "tier",
    "name_zh",
    "name_en",
    "area_name_zh",
    "area_name_en",
    "unit",
    "value",
    "status",
    "severity",
    "streak",
    "period_start",
    "previous_status",
    "is_new",
    "explanation",
    "state",
    "since",
    "fired_at",
    "minutes",
    "peak",
    "worst_status",
)

#: Columns of :func:`league_table`.
LEAGUE_COLUMNS: tuple[str, ...] = (
    "rank",
    "area_id",
    "area_name_zh",
    "area_name_en",
    "value",
    "unit",
    "status",
    "severity",
    "change_previous",
    "change_unit",
)


def alerts(
    current: Scorecard,
    previous: Scorecard | None = None,
    *,
    min_colour: str = "orange",
    lifecycle: pl.DataFrame | None = None,
    followed: Collection[str] = (),
) -> pl.DataFrame:
    """Cells at or above ``min_colour``, worst first, flagged new when the previous run had them better.

    ``is_new`` is true when the cell was below ``min_colour`` or less severe (e.g. orange → red)
    in the previous run, or absent from it.

    With ``lifecycle`` (the open episodes at the scorecard's instant, from
    :func:`citykpi.engine.alerting.firing`), the indicators in ``followed`` (those with an alert
    rule) are listed by their episodes instead of their cells: every area pending or firing, whatever
    colour its cell has now (hysteresis may hold an alert below its colour), with ``state``,
    ``since``, ``fired_at``, ``minutes``, ``peak`` and ``worst_status``; its ``severity`` is the
    episode's worst colour. New means the episode started after the previous run.

    Args:
        current: the scorecard to report on.
        previous: the previous run's scorecard, or None (then every alert is new).
        min_colour: the least severe colour reported (green … red).
        lifecycle: open episodes to list for the followed indicators.
        followed: ids of the indicators with an alert rule.

    Returns:
        One row per alerting cell with the columns in :data:`ALERT_COLUMNS`.
    """
    if min_colour not in SEVERITY:
        raise UsageError(f"unknown colour {min_colour!r}; use one of {', '.join(SEVERITY)}")
    floor = SEVERITY[min_colour]
    cells = current.cells.filter(pl.col("severity").is_not_null() & (pl.col("severity") >= floor))
    if lifecycle is not None:
        cells = cells.filter(~pl.col("indicator_id").is_in(list(followed)))
    if previous is not None and previous.cells.height:
        prev = previous.cells.select(
            "indicator_id",
            "area_id",
            pl.col("status").alias("previous_status"),
            pl.col("severity").alias("__prev_sev"),
        )
        cells = cells.join(prev, on=["indicator_id", "area_id"], how="left")
    else:
        cells = cells.with_columns(
            pl.lit(None, dtype=pl.String).alias("previous_status"),
            pl.lit(None, dtype=pl.Int8).alias("__prev_sev"),
        )
    # new = entered the alert range or escalated (orange → red) since the previous run
    cells = cells.with_columns(
        (pl.col("__prev_sev").is_null() | (pl.col("__prev_sev") < pl.col("severity"))).alias("is_new"),
        *(pl.lit(None, dtype=t).alias(n) for n, t in _EPISODE_COLUMNS.items()),
    )
    if lifecycle is not None and lifecycle.height:
        cells = pl.concat([cells.select(ALERT_COLUMNS), _episode_rows(current, previous, lifecycle, floor)])
    return cells.sort(
        ["severity", "is_new", "indicator_id", "area_id"], descending=[True, True, False, False]
    ).select(ALERT_COLUMNS)


#: The columns an alert of a followed indicator adds (null for the others).
_EPISODE_COLUMNS: dict[str, pl.DataType] = {
    "state": pl.String(),
    "since": pl.Datetime("us"),
    "fired_at": pl.Datetime("us"),
    "minutes": pl.Float64(),
    "peak": pl.Float64(),
    "worst_status": pl.String(),
}


def _episode_rows(
    current: Scorecard, previous: Scorecard | None, lifecycle: pl.DataFrame, floor: int
) -> pl.DataFrame:
    """Alert rows of the open episodes (see :func:`alerts`), labelled from the scorecard's cells."""
    eps = lifecycle.with_columns(
        pl.col("worst_status").replace_strict(SEVERITY, default=None, return_dtype=pl.Int8).alias("severity")
    ).filter(pl.col("severity") >= floor)
    before = None
    if previous is not None:
        before = previous.at or datetime.combine(previous.as_of + timedelta(days=1), time())
    labels = current.cells.select(
        "indicator_id", "area_id", "domain", "tier", "streak", "period_start", "explanation", "status"
    )
    rows = eps.join(labels, on=["indicator_id", "area_id"], how="left").with_columns(
        pl.col("last_value").alias("value"),
        pl.col("started_at").alias("since"),
        pl.lit(None, dtype=pl.String).alias("previous_status"),
        (pl.lit(True) if before is None else pl.col("started_at") > pl.lit(before)).alias("is_new"),
        pl.col("worst_status").alias("status_worst"),
    )
    return rows.with_columns(
        pl.col("status_worst").alias("status"),
        pl.col("period_start").cast(current.cells.schema["period_start"]),
    ).select([pl.col(n).cast(t) for n, t in _alert_schema(current).items()])


def _alert_schema(current: Scorecard) -> dict[str, pl.DataType]:
    """The column types of :func:`alerts` for this scorecard."""
    cells = current.cells.schema
    out: dict[str, pl.DataType] = {}
    for name in ALERT_COLUMNS:
        if name in _EPISODE_COLUMNS:
            out[name] = _EPISODE_COLUMNS[name]
        elif name == "previous_status":
            out[name] = pl.String()
        elif name == "is_new":
            out[name] = pl.Boolean()
        else:
            out[name] = cells[name]
    return out


def league_table(
    scorecard: Scorecard,
    ref: str,
    *,
    level: str = "district",
    direction: str | None = None,
    previous: Scorecard | None = None,
) -> pl.DataFrame:
    """The league table of areas at ``level`` for an indicator or an index, best first.

    Args:
        scorecard: the evaluated scorecard.
        ref: an indicator id or an index id.
        level: the level whose areas are ranked.
        direction: the indicator's direction (higher_is_better, lower_is_better, band); without
            it areas are ranked by colour only, ties by area id.
        previous: the scorecard of the previous period, for an index's change (an indicator's
            cells carry their own).

    Returns:
        The columns in :data:`LEAGUE_COLUMNS`; ``rank`` 1 is the best, ties share a rank. Areas
        without a colour (no data, stale, not applicable) or without a score are not ranked
        (``rank`` null) and come last.
    """
    idx = scorecard.indices.filter((pl.col("index_id") == ref) & (pl.col("level") == level))
    if idx.height or (scorecard.indices.height and ref in scorecard.indices.get_column("index_id").to_list()):
        frame = idx.select(
            "area_id",
            "area_name_zh",
            "area_name_en",
            pl.col("score").alias("value"),
            pl.lit("score").alias("unit"),
            "status",
            "severity",
        )
        before = (
            previous.indices.filter((pl.col("index_id") == ref) & (pl.col("level") == level))
            if previous is not None
            else pl.DataFrame(schema={"area_id": pl.String(), "score": pl.Float64()})
        )
        frame = frame.join(
            before.select("area_id", pl.col("score").alias("__before")), on="area_id", how="left"
        ).with_columns(
            (pl.col("value") - pl.col("__before")).alias("change_previous"),
            pl.lit("points", dtype=pl.String).alias("change_unit"),
        )
        frame = frame.with_columns(
            pl.col("value").rank("min", descending=True).cast(pl.Int32).alias("rank")
        ).sort(["rank", "area_id"], nulls_last=True)
        return frame.select(LEAGUE_COLUMNS)
    cells = scorecard.cells.filter(pl.col("indicator_id") == ref)
    if not cells.height:
        raise UsageError(
            f"no indicator or index {ref!r} in this scorecard",
            hint="list the ids with `citykpi evaluate --format csv` or check the spelling",
        )
    cells = cells.filter(pl.col("level") == level)
    # Colour first (a red area never outranks a green one), then the value in the good direction.
    sev = pl.col("severity").fill_null(99)
    if direction == "higher_is_better":
        val = -pl.col("value")
    elif direction == "lower_is_better":
        val = pl.col("value")
    else:
        val = pl.lit(0.0)
    keyed = cells.with_columns(
        sev.alias("__sev"),
        val.fill_null(float("inf")).fill_nan(float("inf")).alias("__val"),
    ).sort(["__sev", "__val", "area_id"])
    ranks: list[int | None] = []
    prev_key: tuple[object, object] | None = None
    for pos, (s, v) in enumerate(zip(keyed.get_column("__sev"), keyed.get_column("__val"), strict=True), 1):
        key = (s, v)
        if s == 99:  # no colour: listed last, never ranked
            ranks.append(None)
        else:
            ranks.append(ranks[-1] if key == prev_key and ranks else pos)
        prev_key = key
    return keyed.with_columns(pl.Series("rank", ranks, dtype=pl.Int32)).select(LEAGUE_COLUMNS)


def empty_league_reason(ref: str, levels: Sequence[str], level: str) -> str:
    """Why a league table of ``level`` for ``ref`` (reported at ``levels``) has no row."""
    why = (
        f"{ref} is reported at {', '.join(levels)} only"
        if level not in levels
        else f"the warehouse has no {level}-level areas"
    )
    return f"no {level}-level areas to rank: {why}"


__all__ = ["alerts", "diff_scorecards", "empty_league_reason", "league_table"]
