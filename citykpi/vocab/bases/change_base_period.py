"""Basis ``change_base_period``: change against a fixed base period ("down 20 % on 2010")."""

from citykpi.vocab.bases._entry import BASE_VALUE, Basis, change_sql
from citykpi.vocab.bases.registry import BASES

CHANGE_BASE_PERIOD = BASES.register(
    Basis(
        name="change_base_period",
        summary="change vs the indicator's fixed `base_period` (e.g. 2010), in `change` units",
        requires=("base_period",),
        label=lambda unit, change_unit: (" pts" if change_unit == "points" else "%") + " vs base period",
        not_applicable_reason="no value in the base period",
        sql=lambda value, target, limit, previous, last_year, change_unit: change_sql(
            value, BASE_VALUE, change_unit
        ),
    )
)
