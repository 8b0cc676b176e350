"""The entry type of the threshold-basis registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: ``sql(value, target, limit, previous, last_year, change_unit_expr) -> SQL text``
BasisSql = Callable[[str, str, str, str, str, str], str]
#: The SQL of the value in an indicator's fixed base period (``base_period``): the compiler joins
#: the base period's row as ``bp`` wherever a basis that ``requires`` "base_period" is judged.
BASE_VALUE = "bp.v"

#: The seasonal baseline of the row being classified, for bases that require ``"seasonal_baseline"``
#: (``anomaly``): the engine joins table ``t_baseline`` under this alias with the baseline's median
#: (``med``), its robust spread (``scale``: 1.4826 × MAD, NULL when the comparable periods do not
#: vary) and the number of comparable periods (``n``); no row when there are too few of them.
BASELINE_ALIAS = "bl"


@dataclass(frozen=True, slots=True)
class Basis:
    """A threshold basis: what an indicator's bands are compared against.

    ``requires`` names what the indicator must provide for the basis to have a value
    (``"target"``, ``"thresholds.limit"``, ``"previous_period"``, ``"last_year"``, ``"base_period"``,
    whose value the hook reads as :data:`BASE_VALUE`); it is empty for
    ``absolute``. ``label(unit, change_unit)`` is how a basis value is labelled after the number in
    explanations (``' %'``, ``'% of target'``, ``' pts vs previous'``); ``not_applicable_reason`` is
    the text after ``not_applicable:`` when the basis value cannot be computed. ``sql`` returns the
    SQL expression of the basis value from the SQL expressions of its inputs.
    """

    name: str
    summary: str
    requires: tuple[str, ...]
    label: Callable[[str, str], str]
    not_applicable_reason: str
    sql: BasisSql


def change_sql(cur: str, prev: str, change_unit: str) -> str:
    """Change of ``cur`` against ``prev`` in points or percent (``change_unit`` is a SQL expression).

    The text is exactly the compiler's ``_change`` with ``m.change_unit`` as ``change_unit``.
    """
    return f"""CASE WHEN {change_unit} = 'points' THEN {cur} - {prev}
  ELSE ({cur} - {prev}) / NULLIF(abs({prev}), 0) * 100 END"""


def change_label(change_unit: str, against: str) -> str:
    """' pts vs previous' or '% vs last year'…"""
    return (" pts" if change_unit == "points" else "%") + f" vs {against}"
