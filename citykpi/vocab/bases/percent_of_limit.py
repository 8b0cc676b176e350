"""Basis ``percent_of_limit``: value / thresholds.limit × 100 (share of a design value)."""

from citykpi.vocab.bases._entry import Basis
from citykpi.vocab.bases.registry import BASES

PERCENT_OF_LIMIT = BASES.register(
    Basis(
        name="percent_of_limit",
        summary="value ÷ `thresholds.limit` × 100 (share of a design value)",
        requires=("thresholds.limit",),
        label=lambda unit, change_unit: "% of limit",
        not_applicable_reason="the basis cannot be computed",
        sql=lambda value, target, limit, previous, last_year, change_unit: (
            f"{value} / NULLIF({limit}, 0) * 100"
        ),
    )
)
