"""Basis ``absolute``: the bands are compared with the value itself."""

from citykpi.vocab.bases._entry import Basis
from citykpi.vocab.bases.registry import BASES

ABSOLUTE = BASES.register(
    Basis(
        name="absolute",
        summary="the value",
        requires=(),
        label=lambda unit, change_unit: "" if unit == "" else " " + unit,
        not_applicable_reason="the basis cannot be computed",
        sql=lambda value, target, limit, previous, last_year, change_unit: value,
    )
)
