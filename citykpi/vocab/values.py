"""Value kinds: where an indicator's value comes from (the single key under ``value:``)."""

from __future__ import annotations

from dataclasses import dataclass

from citykpi.vocab.registry import Registry


@dataclass(frozen=True, slots=True)
class ValueKind:
    """One way of getting an indicator's value."""

    name: str
    summary: str
    #: Keys allowed inside the kind's mapping (``value: {ratio: {numerator: …}}``); empty when the
    #: body is a plain string (``from``).
    keys: tuple[str, ...] = ()
    #: Keys the mapping must have.
    required: tuple[str, ...] = ()
    #: Keys allowed next to the kind itself (``value: {formula: "…", inputs: {…}}``).
    sibling_keys: tuple[str, ...] = ()


VALUE_KINDS: Registry[ValueKind] = Registry("value kind")
for _v in (
    ValueKind(
        "observed",
        "Observations of this indicator, loaded by ingest (optionally with numerator and denominator parts).",
        keys=("with_parts", "scale"),
    ),
    ValueKind(
        "ratio",
        "numerator indicator / denominator indicator × scale.",
        keys=("numerator", "denominator", "scale"),
        required=("numerator", "denominator"),
    ),
    ValueKind(
        "formula",
        "An arithmetic expression over other indicators named in inputs.",
        keys=("expression", "inputs"),
        required=("expression", "inputs"),
        sibling_keys=("inputs",),
    ),
    ValueKind(
        "measure",
        "An aggregate over a declared source table: numerator / denominator × scale, rows restricted by filter.",
        keys=("source", "numerator", "denominator", "filter", "scale"),
        required=("source", "numerator"),
    ),
    ValueKind(
        "from", "The raw series of another indicator, rolled up with this indicator's own time roll-up."
    ),
):
    VALUE_KINDS.register(_v)
