"""Phase 2 of an evaluation, *compile*: the gathered request → a :class:`Plan`, with no I/O.

A plan is the catalogue tables to load, the ordered set-based statements and the output queries.
Its size does not depend on the number of indicators (only on formula/index nesting depth and the
number of raw source tables). ``Plan.text()`` is what ``citykpi evaluate --explain`` prints.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from citykpi.catalogue.model import BUILTIN_SOURCES, Catalogue, SourceTable
from citykpi.engine import compiler as c
from citykpi.engine import early, forecast
from citykpi.engine.calendar import Moment, is_subdaily
from citykpi.engine.gather import Gathered
from citykpi.engine.scorecard import cell_schema, history_schema
from citykpi.engine.tables import CatalogueTables, build_tables
from citykpi.sqlutil import ident
from citykpi.warehouse.schema import builtin_source_table, source_table_name

#: The engine memory an hour or 15-minute evaluation is held to unless ``CITYKPI_MEMORY_LIMIT``
#: says otherwise. It runs every hour beside the feeds' ingest; at city scale (4.6 M series, two days
#: of hourly readings) its buckets fill whatever DuckDB is given (17 GiB at 60 % of a 24 GiB
#: machine). Held to 4 GB, DuckDB spills them and the whole process stays under 6 GiB
#: (bench/run.py --cases hourly; docs/warehouse.md, "Memory", has the figures).
SUBDAILY_MEMORY_MB = 4096
#: ... and from the read of its outputs on. The statements leave the engine holding up to the bound
#: (the sorted cells, memory freed but kept); with the 4.8 M cells of an hour of the city built in
#: Polars beside it the process peaked at 6.1 GiB. Lowered before the read, DuckDB moves the cells
#: to its temp file (0.4 s) and reads them back as they stream: 4.1 GiB, the statements' own peak.
SUBDAILY_READ_MEMORY_MB = 1024

#: The tables a statement creates (every compiled statement that makes one says it so).
_CREATED = re.compile(r"CREATE OR REPLACE TEMP TABLE (\w+)")


@dataclass
class Plan:
    """The statements of one evaluation, in order: (step name, SQL), plus what to load and to read back."""

    statements: list[tuple[str, str]] = field(default_factory=list)
    #: temp-table name → catalogue frame, loaded before the statements
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    #: output name (cells, indices, history) → query
    outputs: dict[str, str] = field(default_factory=dict)
    #: key column (``ikey``, ``area_key``) → frame of names joined to output rows that carry that key
    lookups: dict[str, pl.DataFrame] = field(default_factory=dict)
    #: indices are computed for every area; these restrict what is reported
    index_areas: tuple[str, ...] | None = None
    index_levels: tuple[str, ...] | None = None
    #: what the evaluation should say on the side (e.g. a holiday calendar that does not cover the dates)
    warnings: list[str] = field(default_factory=list)
    #: output name → the column types it is read back with (sub-daily cells carry date-times)
    schemas: dict[str, dict[str, pl.DataType]] = field(default_factory=dict)
    #: output name → the order its rows are read in, when a statement already wrote them in it: a
    #: backend that scans tables in the order they were written reads them as they lie, another
    #: sorts (:attr:`citykpi.backend.Backend.scans_in_order`)
    orders: dict[str, str] = field(default_factory=dict)

    #: the engine memory (MB) the evaluation is held to by default (see :data:`SUBDAILY_MEMORY_MB`)
    memory_mb: int | None = None
    #: the engine memory (MB) from the outputs' read on (see :data:`SUBDAILY_READ_MEMORY_MB`)
    read_memory_mb: int | None = None

    def releases(self) -> dict[int, list[str]]:
        """Statement index → the tables to drop once it has run: each table the statements create
        and no output reads, after the last statement that mentions it. An hour of the city holds
        gigabytes of buckets and index periods; dropped as soon as they are done with, they neither
        crowd the engine's memory in the later statements nor stay for the scorecard's read."""
        read = "\n".join(self.outputs.values())
        created = dict.fromkeys(t for _, sql in self.statements for t in _CREATED.findall(sql))
        out: dict[int, list[str]] = {}
        for table in created:
            word = re.compile(rf"\b{table}\b")
            if not word.search(read):
                last = max(i for i, (_, sql) in enumerate(self.statements) if word.search(sql))
                out.setdefault(last, []).append(table)
        return out

    def add(self, name: str, sql: str | None) -> None:
        """Append a statement (``None`` is skipped)."""
        if sql:
            self.statements.append((name, sql))

    def text(self) -> str:
        """All statements as one SQL script with step comments (for ``--explain``)."""
        return "\n\n".join(f"-- {name}\n{sql};" for name, sql in self.statements)


def compile_plan(
    catalogue: Catalogue,
    keys: dict[str, int],
    area_keys: dict[str, int],
    *,
    as_of: date | Moment,
    grain: str,
    obs: str,
    level_filter: Sequence[str] | None,
    area_filter: Sequence[int] | None,
    classes: dict[int, set[int]],
    history_from: date | None = None,
    shown: Collection[str] | None = None,
    may_slice: bool = False,
) -> tuple[CatalogueTables, Plan]:
    """Compile the catalogue into catalogue tables and the ordered SQL statements.

    ``may_slice``: nothing read after the cells needs the buckets or periods (no sparkline history,
    no parts), so a large sub-daily evaluation may run in slices of indicators (:func:`slice_count`).
    """
    as_of = as_of if isinstance(as_of, Moment) else Moment.of_day(as_of)
    tables = build_tables(
        catalogue, keys, grain=grain, as_of=as_of, area_keys=area_keys, history_from=history_from, shown=shown
    )
    plan = Plan(warnings=early.extend_tables(tables, catalogue, area_keys=area_keys))
    for i, sql in enumerate(c.area_tables_sql()):
        plan.add(f"areas {i + 1}", sql)

    def src_table(s: SourceTable) -> str:
        if s.id in BUILTIN_SOURCES:  # made by gather (the alert episodes as of the moment)
            return ident(builtin_source_table(s.id))
        return ident(source_table_name(s.id))

    measures = c.measure_sql(tables, catalogue, tables.keys, as_of=as_of, source_table=src_table)
    n = slice_count(tables, len(area_keys)) if may_slice and measures is None else 1
    area_rollups = set(tables.ind.get_column("area_rollup").to_list())
    parts = measures is not None or c.bucket_carries_parts(tables, classes)
    has_rows = bool(tables.ind.height)
    # the cells statement of every slice: the same but for the slice
    cells_of = functools.partial(
        c.cells_query,
        as_of=as_of,
        level_filter=level_filter,
        area_filter=area_filter,
        max_k=tables.max_k,
        grain=grain,
        persistence=has_rows and bool((tables.ind.get_column("for_periods") > 1).any()),
        base_periods=has_rows and bool(tables.ind.get_column("base_lo").is_not_null().any()),
        week_in_history=tables.week_in_history,
        bases=set(tables.ind.get_column("basis").to_list()) or None,
    )
    # a sliced plan's baselines and trends read each slice's periods, before the slice drops them
    sliced_baselines = n > 1 and forecast.baselines(tables)
    sliced_trends = n > 1 and forecast.forecasts(tables)
    for i in range(n):
        part = (i, n) if n > 1 else None
        of = f" (slice {i + 1} of {n})" if part else ""
        plan.add(
            "buckets: observations → reporting periods" + of,
            c.bucket_sql(tables, as_of=as_of, obs=obs, classes=classes, part=part),
        )
        plan.add("measures over raw source tables", measures)
        plan.add("area roll-up street → district" + of, c.rollup_sql("street", area_rollups, parts))
        plan.add("area roll-up district → city" + of, c.rollup_sql("district", area_rollups, parts))
        plan.add("index periods (current, history, last year)" + of, c.k_index_sql(grain))
        for depth, layer in enumerate(tables.derived_layers, start=1):
            plan.add(f"derived values, layer {depth}", c.derived_sql(depth, layer, tables.keys, grain))
        if i == 0:
            plan.add("cumulative sums for cumulative targets", c.cumulative_sql(tables, as_of=as_of, obs=obs))
        if i == 0 or sliced_baselines:
            plan.add("seasonal baselines" + of, forecast.baseline_sql(tables))
        cells = cells_of(part=part)
        plan.add("classify, cells and explanations" + of, c.cells_sql(cells, append=i > 0))
        if sliced_trends:
            trends = forecast.forecast_sql(tables, as_of=as_of.day, append=i > 0)
            plan.add("trends, days to breach, target forecasts" + of, trends)
        if part and i < n - 1:  # the next slice starts from nothing: free its memory first
            for table in ("t_bucket", "t_k"):
                plan.add("done with the slice" + of, f"DROP TABLE IF EXISTS {table}")
    if not sliced_trends:
        plan.add("trends, days to breach, target forecasts", forecast.forecast_sql(tables, as_of=as_of.day))
    plan.add("indices table", c.index_table_sql())
    for depth, _layer in enumerate(tables.index_layers, start=1):
        plan.add(f"indices, depth {depth}", c.index_sql(depth))
        plan.add(f"index colours, depth {depth}", c.index_severity_sql())
    plan.add("cells in the scorecard's order, with their forecasts", c.cells_table_sql())
    return tables, plan


#: Bucket rows (indicator × area × period read, an upper bound) a slice of a sub-daily evaluation is
#: planned for: an hour of the benchmark's city (4,476 vital signs × 1,091 areas × 30 periods) runs
#: in 10 slices. Each fits the engine's memory bound, so nothing spills. Measured on that hour at the
#: 4 GB bound: one pass 85 s, 2 slices 67 s, 4 slices 59 s, 8 slices 56 s, 16 slices 55 s (before
#: the cells step read each cell's comparisons in one pass; with it, 10 slices 46 s), the same cells.
SLICE_ROWS = 16_000_000
#: More slices than this only add scans of the readings.
MAX_SLICES = 16


def slice_count(tables: CatalogueTables, areas: int) -> int:
    """How many slices of indicators a sub-daily evaluation runs in (1: the whole catalogue at once).

    Only a sub-daily evaluation is sliced, and only when each slice is complete in itself: no
    derived indicators (their inputs could fall in another slice) and no cumulative targets (summed
    once, over every indicator). Seasonal baselines and trends are computed slice by slice, while the
    slice's periods are there. The estimate is an upper bound: every area for every period each
    indicator reads.
    """
    ind = tables.ind
    if not is_subdaily(tables.grain) or not ind.height or tables.derived_layers:
        return 1
    if (ind.get_column("target_method") == "cumulative").any():
        return 1
    periods = sum(
        early.periods_between(rg, lo, cur) + 3  # the window, and the same period a day and a week before
        for rg, cur, lo in ind.select("rgrain", "cur_start", "win_lo").iter_rows()
        if cur is not None and lo is not None
    )
    return max(1, min(MAX_SLICES, ind.height, -(-periods * max(areas, 1) // SLICE_ROWS)))


def compile_evaluation(g: Gathered) -> Plan:
    """The whole plan of a gathered evaluation: tables to load, statements, outputs. Pure."""
    req = g.request
    obs, obs_sql = c.observation_source(g.batch_cut)
    tables, plan = compile_plan(
        g.compiled,
        g.keys,
        g.area_keys,
        as_of=g.when,
        grain=req.grain,
        obs=obs,
        level_filter=req.levels,
        area_filter=g.area_filter,
        classes=g.classes,
        history_from=req.history_from,
        shown=g.shown,
        may_slice=not req.history_levels and not req.parts,
    )
    plan.frames = tables.frames()
    if obs_sql:
        plan.statements.insert(0, ("observations as ingested", obs_sql))
    plan.outputs = {"cells": c.cells_out_sql(req.grain), "indices": c.index_out_sql()}
    plan.orders = {"cells": c.CELLS_ORDER}
    plan.schemas = {"cells": dict(cell_schema(req.grain)), "history": dict(history_schema(req.grain))}
    plan.memory_mb = SUBDAILY_MEMORY_MB if is_subdaily(req.grain) else None
    plan.read_memory_mb = SUBDAILY_READ_MEMORY_MB if is_subdaily(req.grain) else None
    history = c.history_out_sql(req.history_levels) if req.history_levels else None
    if history:
        plan.outputs["history"] = history
    if req.parts:
        plan.outputs["parts"] = c.parts_out_sql()
    plan.lookups = {
        "ikey": tables.ind.select("ikey", *c.INDICATOR_COLUMNS),
        "area_key": g.area_frame.select("area_key", *c.AREA_COLUMNS).rename(c.AREA_COLUMNS),
    }
    plan.index_areas = g.areas if g.area_filter else None
    plan.index_levels = tuple(req.levels) if req.levels else None
    return plan
