"""Persisted evaluation runs: record, list, load, diff and prune scorecards."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

import polars as pl

from citykpi.backend import Connection, EngineError
from citykpi.catalogue.model import Catalogue
from citykpi.engine.calendar import supported_date
from citykpi.engine.compiler import index_status_sql
from citykpi.engine.diff import diff_cells
from citykpi.engine.scorecard import INDEX_SCHEMA, Scorecard, cell_schema, empty_frame
from citykpi.errors import UsageError
from citykpi.warehouse.connection import Warehouse

#: Columns of ``runs`` in table order (v4 appended ``scheduled``, v6 ``as_at``); name them in every INSERT.
RUN_COLUMNS: tuple[str, ...] = (
    "run_id",
    "created_at",
    "as_of",
    "grain",
    "catalogue_hash",
    "options",
    "max_batch_id",
    "cells",
    "counts",
    "scheduled",
    "as_at",
)


def persist_run(
    wh: Warehouse, scorecard: Scorecard, *, options: Mapping[str, object], scheduled: bool = False
) -> Scorecard:
    """Record the scorecard just evaluated on ``wh.con`` (temp tables t_cells/t_index) as a run.

    One transaction: the run row, its cells and its index scores appear together or not at all.
    ``scheduled`` marks a run of the daily job (``citykpi run``, ``evaluate --scheduled``): the runs
    that ``diff``, ``alerts`` and the notifiers compare with by default.
    """
    con = wh.con
    counts = json.dumps(scorecard.counts(), sort_keys=True)
    wh.backend.share(con, ("t_cells", "t_index"))  # the plan may have run on another engine
    con.execute("BEGIN TRANSACTION")
    try:
        row = next(iter(con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM runs").fetchall()), None)
        run_id = int(row[0]) if row else 1
        con.execute(
            f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                scorecard.generated_at or datetime.now(),
                scorecard.as_of,
                scorecard.grain,
                scorecard.catalogue_hash,
                json.dumps(options, default=str, sort_keys=True),
                scorecard.meta.get("max_batch_id"),
                scorecard.cells.height,
                counts,
                scheduled,
                scorecard.at,
            ],
        )
        con.execute(
            "INSERT INTO run_cells SELECT ?, ikey, area_key, value, status, severity FROM t_cells", [run_id]
        )
        con.execute(
            f"""INSERT INTO run_indices SELECT ?, index_id, area_key, score,
                 {index_status_sql("t_index")}, coverage FROM t_index""",
            [run_id],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return replace(scorecard, run_id=run_id)


def next_run_id(wh: Warehouse) -> int:
    """The id the next recorded run gets (while the caller holds the database for writing)."""
    rows = wh.con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM runs").fetchall()
    return int(rows[0][0]) if rows else 1


def list_runs(wh: Warehouse, limit: int = 50, *, scheduled_only: bool = False) -> pl.DataFrame:
    """The most recent runs: run_id, created_at, as_of, grain, scheduled, catalogue_hash, max_batch_id,
    cells, counts (JSON) and ``as_at``, the instant of a run as of one (null for a day's run); only
    the scheduled ones with ``scheduled_only``."""
    return wh.con.frame(
        f"""SELECT run_id, created_at, as_of, grain, scheduled, catalogue_hash, max_batch_id, cells, counts, as_at
           FROM runs {"WHERE scheduled" if scheduled_only else ""} ORDER BY run_id DESC LIMIT ?""",
        [limit],
    )


def _no_run_hint(scheduled_only: bool) -> str:
    if scheduled_only:
        return (
            "scheduled runs are recorded by `citykpi run` (or `evaluate --scheduled`); add --runs all "
            "to use the runs `evaluate --record` recorded too"
        )
    return "record one: `citykpi run`, or `citykpi evaluate --record`"


def _is_instant(ref: str) -> bool:
    """True when a run reference names an instant (``YYYY-MM-DDTHH:MM``) rather than a day."""
    return len(ref) > 10 and ref[10] in "T "


def check_run_ref(ref: str) -> date | None:
    """The date (or the instant, a datetime) a run reference names; None for an id, ``latest`` or
    ``previous``.

    Raises:
        UsageError: neither a run id, ``latest``, ``previous``, a supported date nor an instant in
            city time.
    """
    ref = ref.strip()
    if ref.isdigit() or ref in ("latest", "previous"):
        return None
    if _is_instant(ref):
        try:
            at = datetime.fromisoformat(ref.replace(" ", "T", 1))
        except ValueError:
            raise UsageError(f"{ref!r} is not a valid date and time") from None
        if at.tzinfo is not None:
            raise UsageError(f"{ref!r}: give the run's instant in city time, without an offset")
        supported_date("the run date", at.date())
        return at
    try:
        day = date.fromisoformat(ref)
    except ValueError:
        raise UsageError(
            f"{ref!r} is not a run id, 'latest', 'previous', a date (YYYY-MM-DD) or an instant (YYYY-MM-DDTHH:MM)"
        ) from None
    return supported_date("the run date", day)


def resolve_run(wh: Warehouse, ref: str, *, scheduled_only: bool = False) -> int:
    """A run id from a reference: a number, ``latest``, ``previous``, a date (the latest run for it)
    or an instant ``YYYY-MM-DDTHH:MM`` (the latest run as of it).

    With ``scheduled_only``, ``latest``, ``previous``, a date and an instant choose among the
    scheduled runs; a run id names any run.
    """
    ref = ref.strip()
    day = check_run_ref(ref)
    which = "WHERE scheduled" if scheduled_only else ""
    kind = "scheduled " if scheduled_only else ""
    if ref.isdigit():
        row = next(
            iter(wh.con.execute("SELECT run_id FROM runs WHERE run_id = ?", [int(ref)]).fetchall()), None
        )
        if not row:
            raise UsageError(f"no run {ref}", hint="list runs with `citykpi runs list`")
        return int(row[0])
    if ref in ("latest", "previous"):
        rows = wh.con.execute(f"SELECT run_id FROM runs {which} ORDER BY run_id DESC LIMIT 2").fetchall()
        n = 0 if ref == "latest" else 1
        if len(rows) <= n:
            raise UsageError(f"there is no {ref} {kind}run", hint=_no_run_hint(scheduled_only))
        return int(rows[n][0])
    if isinstance(day, datetime):
        where = "WHERE as_at = ?" + (" AND scheduled" if scheduled_only else "")
        rows = wh.con.execute(f"SELECT max(run_id) FROM runs {where}", [day]).fetchall()
        if not rows or rows[0][0] is None:
            raise UsageError(f"no {kind}run as of {ref}", hint=f"evaluate it: `citykpi evaluate --at {ref}`")
        return int(rows[0][0])
    where = "WHERE as_of = ?" + (" AND scheduled" if scheduled_only else "")
    row = next(iter(wh.con.execute(f"SELECT max(run_id) FROM runs {where}", [day]).fetchall()), None)
    if not row or row[0] is None:
        raise UsageError(f"no {kind}run for {day}", hint=_no_run_hint(scheduled_only))
    return int(row[0])


def previous_run_id(
    wh: Warehouse,
    as_of: date,
    *,
    grain: str | None = None,
    scheduled_only: bool = True,
    at: datetime | None = None,
) -> int | None:
    """The run to compare a scorecard of ``as_of`` with: of the latest earlier date (the last run
    recorded for it), of the same ``grain`` when given, scheduled unless ``scheduled_only`` is False.

    For an instant ``at``: the latest run as of an earlier instant, or of a day that ended by then.
    """
    when = "as_of"
    where = ["as_of < ?"]
    params: list[object] = [as_of]
    if at is not None:
        when = "coalesce(as_at, CAST(as_of AS TIMESTAMP) + INTERVAL 1 DAY)"
        where = [f"{when} < ?"]
        params = [at]
    if grain is not None:
        where.append("grain = ?")
        params.append(grain)
    if scheduled_only:
        where.append("scheduled")
    rows = wh.con.execute(
        f"SELECT run_id FROM runs WHERE {' AND '.join(where)} ORDER BY {when} DESC, run_id DESC LIMIT 1",
        params,
    ).fetchall()
    return int(rows[0][0]) if rows else None


def previous_run(
    wh: Warehouse,
    as_of: date,
    catalogue: Catalogue | None = None,
    *,
    grain: str | None = None,
    scheduled_only: bool = True,
    at: datetime | None = None,
) -> Scorecard | None:
    """The run before ``as_of`` (or the instant ``at``; see :func:`previous_run_id`) as a Scorecard, for
    'new since the previous run'; None when there is none."""
    run_id = previous_run_id(wh, as_of, grain=grain, scheduled_only=scheduled_only, at=at)
    return load_run(wh, run_id, catalogue) if run_id is not None else None


def load_run(wh: Warehouse, run_id: int, catalogue: Catalogue | None = None) -> Scorecard:
    """A persisted run as a Scorecard (labels from ``catalogue`` when given; explanations are not stored)."""
    con = wh.con
    heads = con.execute(
        "SELECT as_of, grain, catalogue_hash, created_at, max_batch_id, as_at FROM runs WHERE run_id = ?",
        [run_id],
    ).fetchall()
    head = heads[0] if heads else None
    if not head:
        raise UsageError(f"no run {run_id}", hint="list runs with `citykpi runs list`")
    raw = con.frame(
        """SELECT k.indicator_id, a.area_id, a.level, a.name AS area_name_zh, a.name_en AS area_name_en,
                  c.value, c.status, c.severity
           FROM run_cells c JOIN indicator_keys k ON k.indicator_key = c.indicator_key
           JOIN areas a ON a.area_key = c.area_key WHERE c.run_id = ?
           ORDER BY k.indicator_id, a.level, a.area_id""",
        [run_id],
    )
    if catalogue is not None and raw.height:
        labels = pl.DataFrame(
            {
                "indicator_id": [i.id for i in catalogue.indicators],
                "domain": [i.domain for i in catalogue.indicators],
                "kind": [i.kind for i in catalogue.indicators],
                "tier": [i.tier for i in catalogue.indicators],
                "unit": [i.unit for i in catalogue.indicators],
                "name_zh": [i.name.zh for i in catalogue.indicators],
                "name_en": [i.name.en for i in catalogue.indicators],
            }
        )
        raw = raw.join(labels, on="indicator_id", how="left")
    schema = cell_schema(str(head[1]))
    cells = empty_frame(schema)
    if raw.height:
        cells = raw.select(
            [(pl.col(n) if n in raw.columns else pl.lit(None)).cast(t).alias(n) for n, t in schema.items()]
        )
    idx = con.frame(
        """SELECT i.index_id, a.area_id, a.level, a.name AS area_name_zh, a.name_en AS area_name_en,
                  i.score, i.status, i.coverage
           FROM run_indices i JOIN areas a ON a.area_key = i.area_key WHERE i.run_id = ?
           ORDER BY i.index_id, a.level, a.area_id""",
        [run_id],
    )
    indices = empty_frame(INDEX_SCHEMA)
    if idx.height:
        indices = idx.select(
            [
                (pl.col(n) if n in idx.columns else pl.lit(None)).cast(t).alias(n)
                for n, t in INDEX_SCHEMA.items()
            ]
        )
    return Scorecard(
        as_of=head[0],
        grain=str(head[1]),
        cells=cells,
        indices=indices,
        catalogue_hash=str(head[2] or ""),
        run_id=run_id,
        generated_at=head[3],
        meta={"max_batch_id": head[4], "loaded_from_run": True},
        at=head[5],
    )


def diff_runs(wh: Warehouse, run_from: int, run_to: int) -> pl.DataFrame:
    """Cells whose status changed between two runs (``change`` as :mod:`citykpi.engine.diff` defines it)."""
    sides = [
        wh.con.frame(
            """SELECT k.indicator_id, ar.area_id, c.status, c.severity, c.value
            FROM run_cells c JOIN indicator_keys k ON k.indicator_key = c.indicator_key
            JOIN areas ar ON ar.area_key = c.area_key WHERE c.run_id = ?""",
            [run],
        )
        for run in (run_from, run_to)
    ]
    return diff_cells(*sides)


@dataclass(frozen=True)
class PruneReport:
    """What :func:`prune_runs` removed (or, on a dry run, would remove) and what it kept."""

    runs: tuple[int, ...]  # run ids removed
    cells: int
    index_scores: int
    kept: int
    dry_run: bool = False


def prune_runs(
    wh: Warehouse,
    *,
    keep: int | None = None,
    keep_days: int | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PruneReport:
    """Delete old runs with their cells and index scores, in one transaction.

    A run is kept when it is one of the ``keep`` most recent, or was recorded within the last
    ``keep_days`` days (either rule keeps it); the most recent run is always kept. Observations
    are never touched: any removed run can be evaluated again from them.

    Raises:
        UsageError: neither rule given, or a rule below 1.
    """
    if keep is None and keep_days is None:
        raise UsageError("say what to keep: --keep N (most recent runs) and/or --keep-days D")
    if (keep is not None and keep < 1) or (keep_days is not None and keep_days < 1):
        raise UsageError("--keep and --keep-days must be at least 1: the latest run is always kept")
    cutoff = (now or datetime.now()) - timedelta(days=keep_days) if keep_days is not None else None
    con = wh.con
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            """CREATE OR REPLACE TEMP TABLE _ck_prune AS
            SELECT run_id FROM (
                SELECT run_id, created_at, row_number() OVER (ORDER BY run_id DESC) AS recent FROM runs)
            WHERE recent > 1 AND recent > coalesce(?, 1) AND (? IS NULL OR created_at < ?)""",
            [keep, cutoff, cutoff],
        )
        runs = tuple(
            int(r[0]) for r in con.execute("SELECT run_id FROM _ck_prune ORDER BY run_id").fetchall()
        )
        cells = _count(con, "SELECT count(*) FROM run_cells SEMI JOIN _ck_prune USING (run_id)")
        scores = _count(con, "SELECT count(*) FROM run_indices SEMI JOIN _ck_prune USING (run_id)")
        total = _count(con, "SELECT count(*) FROM runs")
        if not dry_run and runs:
            for table in ("run_cells", "run_indices", "runs"):
                con.execute(f"DELETE FROM {table} WHERE run_id IN (SELECT run_id FROM _ck_prune)")
        con.execute("ROLLBACK" if dry_run else "COMMIT")
    except BaseException:
        with contextlib.suppress(EngineError):  # never mask the error that got us here
            con.execute("ROLLBACK")
        raise
    finally:
        con.execute("DROP TABLE IF EXISTS _ck_prune")
    return PruneReport(runs, cells, scores, total - len(runs), dry_run)


def _count(con: Connection, sql: str) -> int:
    rows = con.execute(sql).fetchall()
    return int(rows[0][0]) if rows else 0
