"""Evaluate the catalogue against the warehouse and return a Scorecard, in four phases.

1. :func:`~citykpi.engine.gather.gather` — the catalogue slice, areas, date, keys, replay cut-off;
2. :func:`~citykpi.engine.plan.compile_evaluation` — a pure plan of set-based statements (no I/O);
3. :func:`~citykpi.engine.execute.execute` — the plan on the warehouse's backend;
4. :func:`~citykpi.engine.runs.persist_run` — the run record (scorecard history), unless asked not to.

No printing here. The number of statements issued does not depend on the number of indicators;
``--explain`` prints them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import date, datetime

from citykpi.catalogue.model import Catalogue
from citykpi.engine import plan as planning
from citykpi.engine.calendar import supported_date
from citykpi.engine.execute import execute
from citykpi.engine.gather import (
    Request,
    area_keys_of,
    gather,
    indicator_keys_for,
    latest_period,
    series_classes,
)
from citykpi.engine.plan import compile_evaluation
from citykpi.engine.runs import persist_run
from citykpi.engine.scorecard import Scorecard
from citykpi.warehouse.connection import Warehouse

__all__ = ["evaluate", "explain"]


#: Levels whose recent values an evaluation returns for sparklines unless asked otherwise.
HISTORY_LEVELS: tuple[str, ...] = ("city", "district")


def evaluate(
    wh: Warehouse,
    catalogue: Catalogue,
    *,
    as_of: date | None = None,
    grain: str = "day",
    levels: Sequence[str] | None = None,
    areas: Sequence[str] | None = None,
    domains: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    indicator_glob: str | None = None,
    as_ingested: bool | int = False,
    persist: bool = True,
    scheduled: bool = False,
    history_levels: Sequence[str] = HISTORY_LEVELS,
    sandbox: bool = True,
    history_from: date | None = None,
    parts: bool = False,
) -> Scorecard:
    """Evaluate the catalogue as of a date and return the Scorecard.

    Args:
        wh: the open warehouse (writable when ``persist``).
        catalogue: the validated catalogue.
        as_of: evaluation date; default the date of the newest observation.
        grain: day, week, month, quarter or year.
        levels, areas: restrict the reported cells (roll-ups still use all data).
        domains, kinds, indicator_glob: restrict the indicators reported (inputs are still computed).
        as_ingested: replay what was known at the end of ``as_of`` (True) or up to a batch id (int).
        persist: record the run (scorecard history) in the warehouse.
        scheduled: record it as a scheduled run (the daily job's), which ``diff``, ``alerts`` and
            the notifiers compare with by default; an ad-hoc recorded run is only compared by id.
        history_levels: levels whose recent values are returned for sparklines.
        history_from: keep history back to this date (drill-downs; default: a few periods).
        parts: also read the numerator and denominator behind each cell's value into
            ``Scorecard.parts`` (league tables use them for intervals; one more query).
        sandbox: switch off the engine's file system access and lock its configuration before the
            compiled SQL runs (see :meth:`Warehouse.sandbox`); the connection keeps it until closed.

    Returns:
        The Scorecard (cells, indices, history) with ``meta`` holding the statement count and timing.
    """
    started = time.perf_counter()
    request = Request(
        as_of=as_of,
        grain=grain,
        levels=levels,
        areas=areas,
        domains=domains,
        kinds=kinds,
        indicator_glob=indicator_glob,
        as_ingested=as_ingested,
        history_levels=history_levels,
        history_from=history_from,
        parts=parts,
    )
    gathered = gather(wh, catalogue, request)
    plan = compile_evaluation(gathered)
    done = execute(wh, plan, sandbox=sandbox)
    scorecard = Scorecard(
        as_of=gathered.as_of,
        grain=grain,
        cells=done.frames["cells"],
        indices=done.frames["indices"],
        history=done.frames["history"],
        parts=done.frames["parts"],
        catalogue_hash=catalogue.content_hash,
        generated_at=datetime.now().replace(microsecond=0),
        meta={
            "statements": done.statements,
            "seconds": round(time.perf_counter() - started, 3),
            "as_ingested_batch": gathered.batch_cut,
            "max_batch_id": gathered.max_batch,
            "indicators": len(gathered.shown),
            # declared decimals of the reported indicators, for the number formats of reports (xlsx)
            "decimals": {i.id: i.decimals for i in gathered.compiled.indicators if i.id in gathered.shown},
            "timings": done.timings,
            # the newest observation: an as_of past it evaluates a city whose feeds all look silent
            "newest_data": newest.isoformat() if (newest := latest_period(wh)) else None,
            "warnings": list(plan.warnings),
        },
    )
    if persist and not wh.read_only:
        scorecard = persist_run(
            wh,
            scorecard,
            options={
                "levels": levels,
                "areas": list(gathered.areas) if gathered.areas is not None else areas,
                "domains": domains,
                "kinds": kinds,
                "indicator": indicator_glob,
                "as_ingested": gathered.batch_cut,
            },
            scheduled=scheduled,
        )
    return scorecard


def explain(wh: Warehouse, catalogue: Catalogue, *, as_of: date | None = None, grain: str = "day") -> str:
    """The SQL an evaluation would run, as one script (for ``citykpi evaluate --explain``)."""
    as_of = supported_date("as_of", as_of or latest_period(wh) or date.today())
    _tables, plan = planning.compile_plan(
        catalogue,
        indicator_keys_for(wh, catalogue),
        area_keys_of(wh.areas()),
        as_of=as_of,
        grain=grain,
        obs="observations",
        level_filter=None,
        area_filter=None,
        classes=series_classes(wh),
    )
    return plan.text()
