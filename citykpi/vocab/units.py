"""Units an indicator may declare (``unit:``), each with its family.

The family decides what ``change`` defaults to: *points* for ``rate`` units (a rate going from 5 %
to 6 % changed by 1 point), *percent* otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from citykpi.vocab.registry import Registry

#: Unit families and what they mean.
FAMILIES: dict[str, str] = {
    "rate": "a share or rate; changes are in points",
    "level": "a level or reading (not additive); changes are in percent",
    "count": "a number of things; changes are in percent",
    "amount": "an additive quantity; changes are in percent",
}


#: How a value of a unit built from counts (value = numerator / denominator × factor) varies by chance,
#: which decides its interval in league tables (:mod:`citykpi.engine.funnel`).
INTERVALS: dict[str, str] = {
    "binomial": "a share: numerator successes out of denominator trials (Wilson score interval)",
    "poisson": "a count per exposure, e.g. per 10k residents (Byar's approximation to the exact Poisson interval)",
}


@dataclass(frozen=True, slots=True)
class Unit:
    """A known unit."""

    name: str
    family: str  # one of FAMILIES
    interval: str | None = None  # one of INTERVALS, for rates built from counts

    @property
    def summary(self) -> str:
        """One line for docs and the schema: the family and what it implies."""
        return f"{self.family}: {FAMILIES[self.family]}"


UNITS: Registry[Unit] = Registry("unit")
for _u in (
    Unit("%", "rate", "binomial"),
    Unit("‰", "rate", "binomial"),
    Unit("index", "level"),
    Unit("score", "level"),
    Unit("count", "count"),
    Unit("cases", "count"),
    Unit("days", "count"),
    Unit("persons", "count"),
    Unit("10k persons", "count"),
    Unit("households", "count"),
    Unit("km", "amount"),
    Unit("m", "amount"),
    Unit("cm", "amount"),
    Unit("mm", "amount"),
    Unit("ha", "amount"),
    Unit("km²", "amount"),
    Unit("m³", "amount"),
    Unit("10k m³", "amount"),
    Unit("t", "amount"),
    Unit("10k t", "amount"),
    Unit("kWh", "amount"),
    Unit("MWh", "amount"),
    Unit("GWh", "amount"),
    Unit("MW", "level"),
    Unit("kV", "level"),
    Unit("Hz", "level"),
    Unit("MPa", "level"),
    Unit("kPa", "level"),
    Unit("m/s", "level"),
    Unit("km/h", "level"),
    Unit("°C", "level"),
    Unit("µg/m³", "level"),
    Unit("mg/m³", "level"),
    Unit("mg/L", "level"),
    Unit("NTU", "level"),
    Unit("dB(A)", "level"),
    Unit("%LEL", "level"),
    Unit("CNY", "amount"),
    Unit("10k CNY", "amount"),
    Unit("100M CNY", "amount"),
    Unit("CNY/person", "level"),
    Unit("CNY/kg", "level"),
    Unit("minutes", "level"),
    Unit("hours", "level"),
    Unit("per 100k", "rate", "poisson"),
    Unit("per 10k", "rate", "poisson"),
    Unit("per 1k", "rate", "poisson"),
    Unit("m²/person", "level"),
    Unit("vehicles", "count"),
    Unit("items", "count"),
    Unit("apps", "count"),
    Unit("projects", "count"),
    Unit("parks", "count"),
    Unit("points", "count"),
    Unit("ratio", "level"),
):
    UNITS.register(_u)
