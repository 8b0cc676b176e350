"""Basis ``change_previous``: change against the previous period, in percent or points."""

from citykpi.vocab.bases._entry import Basis, change_label, change_sql
from citykpi.vocab.bases.registry import BASES

CHANGE_PREVIOUS = BASES.register(
    Basis(
        name="change_previous",
        summary="change vs the previous period, in `change` units",
        requires=("previous_period",),
        label=lambda unit, change_unit: change_label(change_unit, "previous"),
        not_applicable_reason="no period to compare with",
        sql=lambda value, target, limit, previous, last_year, change_unit: change_sql(
            value, previous, change_unit
        ),
    )
)
