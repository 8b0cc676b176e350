"""Value kinds: where an indicator's value comes from (the single key under ``value:``)."""

from __future__ import annotations

from dataclasses import dataclass

from citykpi.vocab.registry import Registry


@dataclass(frozen=True, slots=True)
class ValueKind:
    """One way of getting an indicator's value."""

    name: str
    summary: str
    #: How it is written, for the docs.
    example: str = ""
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
        "long-format observations `indicator_id, area_id, period, value`; with `with_parts: true` they also"
        " carry `numerator` and `denominator` (so the area roll-up can be a ratio of sums) and"
        " value = numerator ÷ denominator × factor",
        example="value: observed",
        keys=("with_parts", "factor"),
    ),
    ValueKind(
        "ratio",
        "one indicator over another, × factor (per 100,000…)",
        example="value: {ratio: {numerator: <id>, denominator: <id>, factor: 100000}}",
        keys=("numerator", "denominator", "factor"),
        required=("numerator", "denominator"),
    ),
    ValueKind(
        "formula",
        "arithmetic over other indicators (see [Expressions](#expressions))",
        example='value: {formula: "<expression>", inputs: {name: <id>, …}}',
        keys=("expression", "inputs"),
        required=("expression", "inputs"),
        sibling_keys=("inputs",),
    ),
    ValueKind(
        "measure",
        "aggregates over a raw source table",
        example="value: {measure: {source, numerator, denominator, filter, factor}}",
        keys=("source", "numerator", "denominator", "filter", "factor"),
        required=("source", "numerator"),
    ),
    ValueKind(
        "from",
        "another indicator's raw series, rolled up with *this* indicator's time roll-up",
        example="value: {from: <id>}",
    ),
):
    VALUE_KINDS.register(_v)
