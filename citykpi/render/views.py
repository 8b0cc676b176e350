"""Report views derived from Scorecards — alerts, league tables, colour changes.

Polars in, Polars out: no printing. The terminal, the exporters and the cron job share them.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    current: Scorecard, previous: Scorecard | None = None, *, min_colour: str = "orange"
) -> pl.DataFrame:
    """Cells at or above ``min_colour``, worst first, flagged new when the previous run had them better.

    ``is_new`` is true when the cell was below ``min_colour`` or less severe (e.g. orange → red)
    in the previous run, or absent from it.

    Args:
        current: the scorecard to report on.
        previous: the previous run's scorecard, or None (then every alert is new).
        min_colour: the least severe colour reported (green … red).

    Returns:
        One row per alerting cell with the columns in :data:`ALERT_COLUMNS`.
    """
    if min_colour not in SEVERITY:
        raise UsageError(f"unknown colour {min_colour!r}; use one of {', '.join(SEVERITY)}")
    floor = SEVERITY[min_colour]
    cells = current.cells.filter(pl.col("severity").is_not_null() & (pl.col("severity") >= floor))
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
        (pl.col("__prev_sev").is_null() | (pl.col("__prev_sev") < pl.col("severity"))).alias("is_new")
    )
    return cells.sort(
        ["severity", "is_new", "indicator_id", "area_id"], descending=[True, True, False, False]
    ).select(ALERT_COLUMNS)


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
