"""Basis ``change_last_year``: change against the same period last year, in percent or points."""

from citykpi.vocab.bases._entry import Basis, change_label, change_sql
from citykpi.vocab.bases.registry import BASES

CHANGE_LAST_YEAR = BASES.register(
    Basis(
        name="change_last_year",
        summary="change vs the same period last year, in `change` units",
        requires=("last_year",),
        label=lambda unit, change_unit: change_label(change_unit, "last year"),
        not_applicable_reason="no period to compare with",
        sql=lambda value, target, limit, previous, last_year, change_unit: change_sql(
            value, last_year, change_unit
        ),
    )
)
