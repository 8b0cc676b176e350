"""``assess``: the data-quality scorecard of the warehouse, as of a date — in a constant number of
statements (the quality tables are loaded, ``sql.py``'s statements run, the outputs come back as
Polars frames and are scored and grouped here). No printing, nothing written to the warehouse."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import polars as pl

from citykpi import citytime
from citykpi.catalogue.model import Catalogue
from citykpi.engine.calendar import shift, supported_date, trunc
from citykpi.engine.gather import latest_period, series_classes
from citykpi.errors import EngineError, UsageError
from citykpi.quality import sql
from citykpi.quality.report import BY, QualityReport, build_report
from citykpi.quality.tables import DEFAULT_PERIODS, NOBODY, build_tables, quality_grain, source_feed
from citykpi.sqlutil import ident
from citykpi.warehouse.connection import Warehouse
from citykpi.warehouse.ingest.codes import code_of
from citykpi.warehouse.schema import source_table_name, table_names

__all__ = ["assess", "explain", "newest_day"]


@dataclass
class _Plan:
    """The frames to load, the statements in order and the output queries of one assessment."""

    frames: dict[str, pl.DataFrame]
    statements: list[tuple[str, str]] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        """Every statement as one SQL script with step comments."""
        steps = [*self.statements, *((f"read {n}", q) for n, q in self.outputs.items())]
        return "\n\n".join(f"-- {name}\n{text};" for name, text in steps)


def _keys(wh: Warehouse) -> dict[str, int]:
    return wh.indicator_keys()


def _plan(
    wh: Warehouse,
    catalogue: Catalogue,
    *,
    as_of: date,
    since: date | None,
    now: datetime,
    at: datetime | None = None,
) -> tuple[_Plan, dict[str, tuple[datetime, datetime]]]:
    tables = build_tables(catalogue, _keys(wh), as_of=as_of, since=since, at=at)
    classes = series_classes(wh)
    scans: list[tuple[int, datetime, datetime]] = []
    ind = tables.ind
    for fc in (0, 1, 2):
        with_class = [k for k, cs in classes.items() if fc in cs]
        rows = ind.filter(pl.col("ikey").is_in(with_class))
        if rows.height:
            scans.append((fc, rows["win_lo"].min(), rows["win_hi"].max()))  # type: ignore[arg-type]
    end = at if at is not None else datetime.combine(as_of + timedelta(days=1), datetime.min.time())
    start = (
        datetime.combine(since, datetime.min.time())
        if since is not None
        else end - timedelta(days=DEFAULT_PERIODS["day"])
    )
    present = table_names(wh.con)
    sources = [s for s in catalogue.sources if source_table_name(s.id) in present]
    windows = {s.id: (start, end) for s in sources}
    plan = _Plan(frames=tables.frames())
    plan.statements = [
        ("areas", sql.area_sql()),
        ("records in the judged periods", sql.rows_sql(scans, now)),
        ("earlier deliveries and missing-value tokens", sql.extra_sql(now)),
        ("values: range and robust outliers", sql.accuracy_sql(now)),
        ("per series: expected periods, completeness, timeliness, accuracy", sql.cell_sql(now)),
        # no rules: an empty table, not a statement over every record (the count stays constant)
        ("consistency rules", sql.check_sql(now) if tables.rules.height else sql.empty_checks_sql()),
    ]
    src = sql.source_sql(sources, windows, now)
    if src:
        plan.statements.append(("raw source records", src))
    plan.outputs = dict(sql.OUTPUTS)
    plan.outputs["outliers"] = sql.outliers_sql()
    plan.outputs["rejects"] = sql.reject_sql(min([start, *(r for r in ind["win_lo"].to_list())]), now)
    if src:
        plan.outputs["records"] = "SELECT * FROM q_src"
    return plan, windows


def _run(
    wh: Warehouse, plan: _Plan, *, sandbox: bool
) -> tuple[dict[str, pl.DataFrame], int, list[tuple[str, float]]]:
    con = wh.con
    if sandbox:
        wh.sandbox()
    count = 0
    timings: list[tuple[str, float]] = []
    for name, frame in plan.frames.items():
        with con.registered("_q_frame", frame):
            con.execute(wh.backend.temp_table_sql(ident(name), "SELECT * FROM _q_frame"))
        count += 1
    for name, text in plan.statements:
        t = time.perf_counter()
        try:
            con.execute(text)
        except EngineError as exc:
            exc.step = f"quality: {name}"
            raise
        count += 1
        timings.append((name, round(time.perf_counter() - t, 4)))
    out: dict[str, pl.DataFrame] = {}
    for name, query in plan.outputs.items():
        t = time.perf_counter()
        try:
            out[name] = con.frame(query)
        except EngineError as exc:
            exc.step = f"quality: read {name}"
            raise
        count += 1
        timings.append((f"read {name}", round(time.perf_counter() - t, 4)))
    for name in (
        *plan.frames,
        "q_area",
        "q_rows",
        "q_extra",
        "q_cell",
        "q_acc",
        "q_check",
        "q_src",
    ):
        con.execute(f"DROP TABLE IF EXISTS {ident(name)}")
    con.complete()
    return out, count, timings


def _batch_feeds(rejects: pl.DataFrame) -> Iterator[tuple[int, str | None]]:
    for batch_id, options in rejects.select("batch_id", "options").unique().iter_rows():
        try:
            feed = json.loads(options or "{}").get("feed")
        except ValueError:
            feed = None
        yield int(batch_id), feed if isinstance(feed, str) else None


def assess(
    wh: Warehouse,
    catalogue: Catalogue,
    *,
    as_of: date | None = None,
    since: date | None = None,
    by: str = "owner",
    now: datetime | None = None,
    sandbox: bool = True,
    at: datetime | None = None,
) -> QualityReport:
    """The data-quality scorecard of the warehouse as of ``as_of``: completeness, accuracy,
    consistency and timeliness, per series and grouped ``by`` provider, feed, indicator or area.

    Args:
        wh: the open warehouse (read-only is enough: only temporary tables are made).
        catalogue: the validated catalogue (frequencies, levels, ranges, feeds, rules, due times).
        as_of: the periods that have ended by the end of this day are judged; default the newest data.
        at: an instant (city time) instead of ``as_of``: the periods that have ended by it are judged,
            realtime and hourly feeds by the quarter hour and the hour (``as_of`` is its date).
        since: judge periods from this date on (default: a few periods back per frequency).
        by: ``owner`` (the provider league), ``source`` (feeds), ``indicator`` or ``area``.
        now: the moment arrivals are judged at (default the clock): later data has not arrived, and a
            period not yet due is pending.
        sandbox: switch off the engine's file access before the statements run.

    Returns:
        A :class:`QualityReport` (Polars frames); ``meta`` holds the statement count, timing and the
        last day the newest data covers (``newest_data``, see :func:`newest_day`; None when empty).

    Raises:
        UsageError: an unknown ``by``, or ``since`` after ``as_of``.
    """
    started = time.perf_counter()
    if by not in BY:
        raise UsageError(f"unknown --by {by!r}; use one of {', '.join(BY)}")
    if at is not None:
        as_of = at.date()
    day = supported_date("--date", as_of or latest_period(wh) or date.today())
    newest = newest_day(wh, catalogue)
    if since is not None and supported_date("--from", since) > day:
        raise UsageError(f"--from {since.isoformat()} is after --date {day.isoformat()}")
    now = now or citytime.city_now(catalogue.timezone)
    plan, _windows = _plan(wh, catalogue, as_of=day, since=since, now=now, at=at)
    out, statements, timings = _run(wh, plan, sandbox=sandbox)
    rejects = out["rejects"]
    feeds = {f.id: f for f in catalogue.feeds}
    batch_feed = dict(_batch_feeds(rejects)) if rejects.height else {}
    codes = {r: code_of(r) or "" for r in rejects["reason"].unique().to_list()} if rejects.height else {}
    rejects = rejects.with_columns(
        pl.col("batch_id").replace_strict(batch_feed, default=None, return_dtype=pl.String).alias("feed"),
        pl.col("reason").replace_strict(codes, default="", return_dtype=pl.String).alias("code"),
    ).drop("options")
    rejects = rejects.with_columns(
        pl.col("feed")
        .replace_strict(
            {k: (f.provider or NOBODY) for k, f in feeds.items()}, default=NOBODY, return_dtype=pl.String
        )
        .alias("provider"),
        pl.col("feed").fill_null(NOBODY),
    )
    out["rejects"] = rejects
    report = build_report(
        catalogue,
        wh.areas(),
        wh.indicator_keys(),
        out,
        as_of=day,
        since=since,
        by=by,
        now=now,
        source_feeds={k: v.id for k, v in source_feed(catalogue).items()},
    )
    meta = {
        "statements": statements,
        "seconds": round(time.perf_counter() - started, 3),
        "timings": timings,
        "newest_data": newest.isoformat() if newest else None,  # the last day it covers
    }
    return report.with_meta(meta)


#: The quality grains longer than a day: a value covers its period up to the period's last day.
_COARSE: frozenset[str] = frozenset({"week", "month", "quarter", "year"})


def newest_day(wh: Warehouse, catalogue: Catalogue) -> date | None:
    """The last day the newest data covers: the newest daily (or finer) value's day, unless a coarser
    series has a later period, then that period's last day (a yearly value for 2022 covers up to
    2022-12-31); None in an empty warehouse.

    Coarse series are read per indicator (their own row groups); daily and finer need only their
    newest period.
    """
    grains = {i.id: quality_grain(i) for i in catalogue.indicators}
    ids = {k: i for i, k in wh.indicator_keys().items()}
    rows = wh.con.execute(
        """SELECT indicator_key, CAST(max(period) AS DATE) FROM observations WHERE freq_class = 1
        GROUP BY indicator_key
        UNION ALL SELECT NULL, CAST(max(period) AS DATE) FROM observations WHERE freq_class IN (0, 2)"""
    ).fetchall()
    daily = max((d for k, d in rows if k is None and d is not None), default=None)
    coarse = [(d, ids.get(k, "")) for k, d in rows if k is not None and d is not None]
    if not coarse or (daily is not None and daily >= max(d for d, _ in coarse)):
        return daily
    start, iid = max(coarse)
    grain = grains.get(iid, "day")
    return shift(grain, trunc(grain, start), 1) - timedelta(days=1) if grain in _COARSE else start


def explain(
    wh: Warehouse,
    catalogue: Catalogue,
    *,
    as_of: date | None = None,
    since: date | None = None,
    now: datetime | None = None,
    at: datetime | None = None,
) -> str:
    """The SQL an assessment would run, as one script (``citykpi quality --explain``)."""
    day = supported_date("--date", (at.date() if at else as_of) or latest_period(wh) or date.today())
    now = now or citytime.city_now(catalogue.timezone)
    plan, _ = _plan(wh, catalogue, as_of=day, since=since, now=now, at=at)
    return plan.text()
