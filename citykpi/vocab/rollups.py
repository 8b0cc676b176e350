"""Roll-up rules: over time within a period (``rollup.time``) and over areas up the levels
(``rollup.area``)."""

from __future__ import annotations

from dataclasses import dataclass

from citykpi.vocab.registry import Registry


@dataclass(frozen=True, slots=True)
class TimeRollup:
    """How the observations inside one period become the period's value."""

    name: str
    summary: str
    #: Needs ``rollup.where`` (a condition such as ``<= 100``).
    needs_where: bool = False
    #: Weighs each record by how long it held (the time to the next record), so the engine reads
    #: the records of a period in time order.
    timed: bool = False


@dataclass(frozen=True, slots=True)
class AreaRollup:
    """How child areas' values become the parent area's value."""

    name: str
    summary: str
    #: Needs ``rollup.weight`` (an area attribute such as ``population``).
    needs_weight: bool = False
    #: Needs numerator and denominator parts (``observed: {with_parts: true}``, a ratio or a measure).
    needs_parts: bool = False
    #: What it needs, in words for the docs (empty: nothing).
    needs: str = ""


TIME_ROLLUPS: Registry[TimeRollup] = Registry("time roll-up")
for _t in (
    TimeRollup("sum", "sum of the records in the period"),
    TimeRollup("mean", "mean of the records in the period"),
    TimeRollup("last", "the latest record in the period"),
    TimeRollup("max", "the largest record in the period"),
    TimeRollup("min", "the smallest record in the period"),
    TimeRollup("count", "the number of records in the period"),
    TimeRollup(
        "count_where",
        'the number of records meeting `where: "value <op> number"` (CK065; e.g. good-air days: AQI <= 100)',
        needs_where=True,
    ),
    TimeRollup(
        "time_weighted_mean",
        "the mean of the readings weighted by how long each held: a reading holds until the next one in "
        "the period, the last one until the period ends (or the instant evaluated)",
        timed=True,
    ),
    TimeRollup(
        "minutes_where",
        'the minutes the readings spent meeting `where: "value <op> number"` (CK065; e.g. minutes above '
        "35 %LEL), each reading holding as for time_weighted_mean",
        needs_where=True,
        timed=True,
    ),
):
    TIME_ROLLUPS.register(_t)

AREA_ROLLUPS: Registry[AreaRollup] = Registry("area roll-up")
for _a in (
    AreaRollup("sum", "sum of the children (counts, km, ha)"),
    AreaRollup(
        "ratio_of_sums",
        "sum of numerators ÷ sum of denominators — never the mean of child ratios",
        needs_parts=True,
        needs="parts: `observed.with_parts`, a ratio or a measure with a denominator (CK066)",
    ),
    AreaRollup(
        "weighted_mean",
        "children weighted by an area attribute",
        needs_weight=True,
        needs="`weight: population` (CK064)",
    ),
    AreaRollup("mean", "plain mean of the children"),
    AreaRollup("max", "the largest child value"),
    AreaRollup("min", "the smallest child value"),
    AreaRollup("worst", "the worse child value for the direction"),
    AreaRollup(
        "recompute",
        "recomputed from the parent's own raw data or inputs",
        needs="a measure, `from` series, ratio or formula — not a plain observed value (CK067)",
    ),
    AreaRollup("none", "not defined above the declared levels (`not_applicable`)"),
):
    AREA_ROLLUPS.register(_a)
