"""One definition of what changed between two scorecards (``citykpi diff`` and the terminal views).

A cell (indicator × area) is reported when its status differs. Its ``change`` is, first match wins:

- ``new`` / ``gone``  — the cell exists on one side only;
- ``newly_red``      — it is red now and was not;
- ``recovered``      — it was red or orange and now has a colour below orange (yellow, blue, green);
- ``worse`` / ``better`` — both sides have a colour and the severity rose / fell;
- ``changed``        — a status without a colour on either side (stale, no_data, not_applicable…).

Rows come in the order an analyst reads them: newly red, worse, recovered, better, the rest; then
by indicator and area.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from citykpi.catalogue.model import SEVERITY
from citykpi.engine.scorecard import Scorecard, empty_frame

#: Columns of every diff.
DIFF_SCHEMA: Mapping[str, pl.DataType] = {
    "indicator_id": pl.String(),
    "area_id": pl.String(),
    "status_from": pl.String(),
    "status_to": pl.String(),
    "value_from": pl.Float64(),
    "value_to": pl.Float64(),
    "change": pl.String(),
}
#: Values of ``change``, in reading order.
CHANGES: tuple[str, ...] = ("newly_red", "worse", "recovered", "better", "new", "gone", "changed")
_ORDER = {"newly_red": 0, "worse": 1, "recovered": 2, "better": 3}

#: Columns a side of a diff needs: indicator_id, area_id, status, severity, value.
SIDE_COLUMNS: tuple[str, ...] = ("indicator_id", "area_id", "status", "severity", "value")


def _change() -> pl.Expr:
    sf, st = pl.col("_sev_from"), pl.col("_sev_to")
    orange = SEVERITY["orange"]
    return (
        pl.when(~pl.col("_in_from"))
        .then(pl.lit("new"))
        .when(~pl.col("_in_to"))
        .then(pl.lit("gone"))
        .when(pl.col("status_to") == "red")
        .then(pl.lit("newly_red"))
        .when((sf >= orange) & st.is_not_null() & (st < orange))
        .then(pl.lit("recovered"))
        .when(sf.is_not_null() & st.is_not_null() & (st > sf))
        .then(pl.lit("worse"))
        .when(sf.is_not_null() & st.is_not_null() & (st < sf))
        .then(pl.lit("better"))
        .otherwise(pl.lit("changed"))
    )


def _side(cells: pl.DataFrame, suffix: str) -> pl.DataFrame:
    return cells.select(
        pl.col("indicator_id").cast(pl.String),
        pl.col("area_id").cast(pl.String),
        pl.col("status").cast(pl.String).alias(f"status_{suffix}"),
        pl.col("severity").cast(pl.Int64).alias(f"_sev_{suffix}"),
        pl.col("value").cast(pl.Float64).alias(f"value_{suffix}"),
        pl.lit(True).alias(f"_in_{suffix}"),
    )


def diff_cells(before: pl.DataFrame, after: pl.DataFrame) -> pl.DataFrame:
    """Cells whose status differs from ``before`` to ``after`` (frames with :data:`SIDE_COLUMNS`)."""
    both = _side(before, "from").join(
        _side(after, "to"), on=["indicator_id", "area_id"], how="full", coalesce=True
    )
    both = both.with_columns(pl.col("_in_from").fill_null(False), pl.col("_in_to").fill_null(False))
    both = both.filter(pl.col("status_from").fill_null("") != pl.col("status_to").fill_null(""))
    if both.is_empty():
        return empty_frame(DIFF_SCHEMA)
    out = both.with_columns(_change().alias("change"))
    out = out.with_columns(
        pl.col("change").replace_strict(_ORDER, default=4, return_dtype=pl.Int8).alias("_order")
    )
    return out.sort("_order", "indicator_id", "area_id").select(
        [pl.col(n).cast(t) for n, t in DIFF_SCHEMA.items()]
    )


def diff_scorecards(a: Scorecard, b: Scorecard) -> pl.DataFrame:
    """Cells whose status differs from scorecard ``a`` to ``b`` (see the module for ``change``)."""
    return diff_cells(a.cells.select(SIDE_COLUMNS), b.cells.select(SIDE_COLUMNS))
