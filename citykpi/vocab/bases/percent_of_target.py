"""Basis ``percent_of_target``: value / target.value × 100."""

from citykpi.vocab.bases._entry import Basis
from citykpi.vocab.bases.registry import BASES

PERCENT_OF_TARGET = BASES.register(
    Basis(
        name="percent_of_target",
        summary="value ÷ `target.value` × 100",
        requires=("target",),
        label=lambda unit, change_unit: "% of target",
        not_applicable_reason="no target",
        sql=lambda value, target, limit, previous, last_year, change_unit: (
            f"{value} / NULLIF({target}, 0) * 100"
        ),
    )
)
