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


@dataclass(frozen=True, slots=True)
class AreaRollup:
    """How child areas' values become the parent area's value."""

    name: str
    summary: str
    #: Needs ``rollup.weight`` (an area attribute such as ``population``).
    needs_weight: bool = False
    #: Needs numerator and denominator parts (``observed: {with_parts: true}``, a ratio or a measure).
    needs_parts: bool = False


TIME_ROLLUPS: Registry[TimeRollup] = Registry("time roll-up")
for _t in (
    TimeRollup("sum", "Sum of the observations in the period."),
    TimeRollup("mean", "Mean of the observations in the period."),
    TimeRollup("last", "The latest observation in the period."),
    TimeRollup("max", "The largest observation in the period."),
    TimeRollup("min", "The smallest observation in the period."),
    TimeRollup("count", "Number of observations in the period."),
    TimeRollup(
        "count_where", "Number of observations meeting rollup.where (e.g. AQI <= 100).", needs_where=True
    ),
):
    TIME_ROLLUPS.register(_t)

AREA_ROLLUPS: Registry[AreaRollup] = Registry("area roll-up")
for _a in (
    AreaRollup("sum", "Sum of the child areas' values."),
    AreaRollup(
        "ratio_of_sums", "Sum of numerators / sum of denominators of the child areas.", needs_parts=True
    ),
    AreaRollup(
        "weighted_mean", "Mean of the child areas' values weighted by rollup.weight.", needs_weight=True
    ),
    AreaRollup("mean", "Plain mean of the child areas' values."),
    AreaRollup("max", "The largest child value."),
    AreaRollup("min", "The smallest child value."),
    AreaRollup("worst", "The child value with the worst colour."),
    AreaRollup("recompute", "Computed again from the inputs at the parent level (derived values, measures)."),
    AreaRollup("none", "No roll-up: the parent needs its own observations."),
):
    AREA_ROLLUPS.register(_a)
