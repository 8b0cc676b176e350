"""Which colours a change of definitions would change: both catalogues evaluated on the same warehouse.

``citykpi check --against REV --db FILE`` evaluates the old and the new catalogue as of one date (the
newest data unless given) with the public :func:`~citykpi.engine.evaluate.evaluate`, without recording
a run, and compares the two scorecards with :func:`~citykpi.engine.diff.diff_cells` — the same
definition of a change (``newly_red``, ``worse``, ``recovered``, ``better``, ``new``, ``gone``,
``changed``) that ``citykpi diff`` uses between two recorded runs. A cell is listed when its status
differs; its value may differ too (a formula, factor or roll-up changed) or not (a cut moved).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from citykpi.catalogue.model import Catalogue
from citykpi.engine.diff import DIFF_SCHEMA, SIDE_COLUMNS, diff_cells
from citykpi.engine.evaluate import evaluate
from citykpi.engine.scorecard import Scorecard
from citykpi.warehouse.connection import Warehouse

#: Columns of :attr:`ColourChanges.cells`: the diff's, with the level and each side's unit.
CELL_CHANGE_SCHEMA: Mapping[str, pl.DataType] = {
    **DIFF_SCHEMA,
    "level": pl.String(),
    "unit_from": pl.String(),
    "unit_to": pl.String(),
}
#: Columns of :attr:`ColourChanges.indices` (``value_*`` are the scores).
INDEX_CHANGE_SCHEMA: Mapping[str, pl.DataType] = {
    "index_id": pl.String(),
    "area_id": pl.String(),
    "level": pl.String(),
    "status_from": pl.String(),
    "status_to": pl.String(),
    "value_from": pl.Float64(),
    "value_to": pl.Float64(),
    "change": pl.String(),
}
#: Columns of :attr:`ColourChanges.transitions`.
TRANSITION_SCHEMA: Mapping[str, pl.DataType] = {
    "status_from": pl.String(),
    "status_to": pl.String(),
    "cells": pl.UInt32(),
}


@dataclass(frozen=True)
class ColourChanges:
    """The cells (indicator × area) and index scores whose status differs between two catalogues."""

    as_of: date
    grain: str
    cells: pl.DataFrame  # CELL_CHANGE_SCHEMA, in citykpi diff's reading order
    indices: pl.DataFrame  # INDEX_CHANGE_SCHEMA
    transitions: pl.DataFrame  # TRANSITION_SCHEMA, most cells first
    cells_compared: int  # cells evaluated on either side

    @property
    def empty(self) -> bool:
        """True when no cell and no index changes status."""
        return self.cells.is_empty() and self.indices.is_empty()


def _cell_changes(old: Scorecard, new: Scorecard) -> pl.DataFrame:
    changed = diff_cells(old.cells.select(SIDE_COLUMNS), new.cells.select(SIDE_COLUMNS))
    keys = ["indicator_id", "area_id"]
    levels = pl.concat([new.cells.select(*keys, "level"), old.cells.select(*keys, "level")]).unique(
        keys, keep="first", maintain_order=True
    )
    unit_from = old.cells.select("indicator_id", pl.col("unit").alias("unit_from")).unique("indicator_id")
    unit_to = new.cells.select("indicator_id", pl.col("unit").alias("unit_to")).unique("indicator_id")
    out = (
        changed.join(levels, on=keys, how="left")
        .join(unit_from, on="indicator_id", how="left")
        .join(unit_to, on="indicator_id", how="left")
    )
    return out.select([pl.col(n).cast(t) for n, t in CELL_CHANGE_SCHEMA.items()])


def _index_side(indices: pl.DataFrame) -> pl.DataFrame:
    return indices.select(
        pl.col("index_id").alias("indicator_id"),
        "area_id",
        "status",
        "severity",
        pl.col("score").alias("value"),
    )


def _index_changes(old: Scorecard, new: Scorecard) -> pl.DataFrame:
    changed = diff_cells(_index_side(old.indices), _index_side(new.indices))
    keys = ["index_id", "area_id"]
    levels = pl.concat([new.indices.select(*keys, "level"), old.indices.select(*keys, "level")]).unique(
        keys, keep="first", maintain_order=True
    )
    out = changed.rename({"indicator_id": "index_id"}).join(levels, on=keys, how="left")
    return out.select([pl.col(n).cast(t) for n, t in INDEX_CHANGE_SCHEMA.items()])


def transitions(cells: pl.DataFrame) -> pl.DataFrame:
    """How many cells go from each status to each other (null: the cell exists on one side only)."""
    if cells.is_empty():
        return pl.DataFrame(schema=dict(TRANSITION_SCHEMA))
    counted = cells.group_by("status_from", "status_to").agg(pl.len().alias("cells"))
    return counted.sort(
        ["cells", "status_from", "status_to"], descending=[True, False, False], nulls_last=True
    ).select([pl.col(n).cast(t) for n, t in TRANSITION_SCHEMA.items()])


def colour_changes(
    wh: Warehouse,
    old: Catalogue,
    new: Catalogue,
    *,
    as_of: date | None = None,
    grain: str = "day",
    at: datetime | None = None,
) -> ColourChanges:
    """Evaluate ``old`` and ``new`` on ``wh`` as of one date and list the statuses that differ.

    Nothing is recorded: both evaluations run with ``persist=False`` (open ``wh`` read-only).

    Args:
        wh: the warehouse (read-only is enough).
        old: the catalogue before the change.
        new: the catalogue after it.
        as_of: the evaluation date; default the newest observation (as ``evaluate`` picks it).
        grain: 15min, hour, day, week, month, quarter or year.
        at: an instant instead of a date (sub-daily grains).

    Returns:
        A :class:`ColourChanges` with the cells and index scores whose status differs.
    """
    after = evaluate(wh, new, as_of=as_of, at=at, grain=grain, persist=False, history_levels=())
    same = {"at": after.at} if after.at is not None else {"as_of": after.as_of}
    before = evaluate(wh, old, grain=grain, persist=False, history_levels=(), **same)
    cells = _cell_changes(before, after)
    keys = pl.concat(
        [before.cells.select("indicator_id", "area_id"), after.cells.select("indicator_id", "area_id")]
    )
    return ColourChanges(
        as_of=after.as_of,
        grain=grain,
        cells=cells,
        indices=_index_changes(before, after),
        transitions=transitions(cells),
        cells_compared=keys.unique().height,
    )
