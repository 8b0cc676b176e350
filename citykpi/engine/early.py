"""The catalogue side of early warning: who forecasts, how far back to read, and the small tables.

Pure (no database), run on the catalogue tables :func:`~citykpi.engine.tables.build_tables` made:

* each indicator's forecast settings (its own ``forecast:``, else its domain's, else off), with the
  window and horizon defaults of the reporting grain (``fc_window`` 0 means no forecast);
* the periods each indicator keeps: ``keep`` is the history the scorecard reads (streaks, persistence,
  sparklines, unchanged), ``hist`` grows to the forecast window and to the oldest comparable period of
  a seasonal baseline, for these indicators and the inputs they are computed from only, so a
  catalogue that forecasts nothing reads exactly what it read before;
* ``ck_edge``: each band set's cut points as the severity a value reaches when it crosses them going
  up or down (band ranges become two edges each);
* ``ck_peer``: the comparable earlier periods of every period a seasonal baseline scores
  (:mod:`citykpi.engine.seasonal`, China's calendar at day grain);
* ``ck_excl``: the declared incidents as (indicator, area, first day, last day), left out of baselines.

The SQL that reads them is in :mod:`citykpi.engine.forecast`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from fnmatch import fnmatchcase

import polars as pl

from citykpi.catalogue.model import (
    COLOURS,
    DEFAULT_BASELINE_PERIODS,
    DEFAULT_FORECAST_BASELINE,
    DEFAULT_MIN_R2,
    FORECAST_DEFAULTS,
    GRAIN_OF_FREQUENCY,
    Catalogue,
    Forecast,
    Indicator,
)
from citykpi.engine.calendar import SUBDAILY_STEP, period_shift, period_start
from citykpi.engine.holidays import coverage_warning, uncovered_years
from citykpi.engine.seasonal import PEER_RULES, peer_rows
from citykpi.engine.tables import CatalogueTables
from citykpi.vocab.bases import BASES


def periods_between(grain: str, lo: date, hi: date) -> int:
    """Whole periods of ``grain`` from period start ``lo`` to period start ``hi`` (``hi - lo``); the
    bounds are date-times in a sub-daily evaluation (of any reporting grain)."""
    if grain in SUBDAILY_STEP:
        assert isinstance(lo, datetime) and isinstance(hi, datetime)
        return (hi - lo) // SUBDAILY_STEP[grain]
    if grain == "day":
        return (hi - lo).days
    if grain == "week":
        return (hi - lo).days // 7
    months = (hi.year - lo.year) * 12 + hi.month - lo.month
    return {"month": months, "quarter": months // 3, "year": hi.year - lo.year}[grain]


def _day(d: date) -> date:
    """The day of a period start (a date, or a date-time in a sub-daily evaluation)."""
    return d.date() if isinstance(d, datetime) else d


def forecast_settings(
    ind: Indicator, domains: Mapping[str, Forecast | None], rgrain: str
) -> tuple[int, int, float, int] | None:
    """(window, horizon, min_r2, baseline) of an indicator reported at ``rgrain``, or None when it does
    not forecast.

    Its own ``forecast:`` wins key by key over its domain's; a declared window or horizon counts
    periods of the indicator's own frequency, so it applies when the reporting grain is that frequency;
    at a coarser grain the defaults of that grain apply.
    """
    own, dom = ind.forecast, domains.get(ind.domain)
    enabled = own.enabled if own is not None else (dom.enabled if dom is not None else False)
    if not enabled or rgrain not in FORECAST_DEFAULTS:
        return None
    window, horizon = FORECAST_DEFAULTS[rgrain]
    blocks = [b for b in (own, dom) if b is not None]
    if GRAIN_OF_FREQUENCY[ind.frequency] == rgrain:
        window = next((b.window for b in blocks if b.window is not None), window)
        horizon = next((b.horizon for b in blocks if b.horizon is not None), horizon)
    min_r2 = next((b.min_r2 for b in blocks if b.min_r2 is not None), DEFAULT_MIN_R2)
    baseline = next((b.baseline for b in blocks if b.baseline is not None), DEFAULT_FORECAST_BASELINE)
    return window, horizon, float(min_r2), baseline


def min_points(window: int) -> int:
    """Values a trend over ``window`` periods needs: half the window, at least 3."""
    return max(3, math.ceil(window / 2))


def _seasonal(basis: str) -> bool:
    return "seasonal_baseline" in BASES[basis].requires


def _edges(bandsets: pl.DataFrame) -> pl.DataFrame:
    """Each band set's crossings: (bs_id, severity reached, edge value, reached going up)."""
    rows: list[dict[str, object]] = []
    for bs in bandsets.iter_rows(named=True):
        if not bs["scored"]:
            continue
        if bs["direction"] in ("lower_is_better", "higher_is_better"):
            up = bs["direction"] == "lower_is_better"
            for sev, colour in enumerate(COLOURS):
                if sev and bs[f"c_{colour}"] is not None:
                    rows.append({"bs_id": bs["bs_id"], "sev_to": sev, "edge": bs[f"c_{colour}"], "up": up})
            continue
        declared = [s for s, c in enumerate(COLOURS[:4]) if bs[f"lo_{c}"] is not None]
        for s in declared:
            reached = next((t for t in declared if t > s), len(COLOURS) - 1)
            colour = COLOURS[s]
            rows.append({"bs_id": bs["bs_id"], "sev_to": reached, "edge": bs[f"hi_{colour}"], "up": True})
            rows.append({"bs_id": bs["bs_id"], "sev_to": reached, "edge": bs[f"lo_{colour}"], "up": False})
    return pl.DataFrame(
        rows, schema={"bs_id": pl.Int32(), "sev_to": pl.Int32(), "edge": pl.Float64(), "up": pl.Boolean()}
    )


def _exclusions(catalogue: Catalogue, ind: pl.DataFrame, area_keys: Mapping[str, int]) -> pl.DataFrame:
    """Declared incidents as rows (ikey, area_key or NULL for every area, first day, last day)."""
    rows: list[dict[str, object]] = []
    shown = ind.select("ikey", "indicator_id", "domain").iter_rows()
    members = [(k, i, d) for k, i, d in shown if "@" not in i]
    for x in catalogue.incidents:
        keys = [
            k
            for k, i, d in members
            if (not x.indicators and not x.domains)
            or any(fnmatchcase(i, p) for p in x.indicators)
            or d in x.domains
        ]
        areas: list[int | None] = [area_keys[a] for a in x.areas if a in area_keys] if x.areas else [None]
        rows.extend({"ikey": k, "area_key": a, "lo": x.start, "hi": x.end} for k in keys for a in areas)
    return pl.DataFrame(
        rows, schema={"ikey": pl.Int32(), "area_key": pl.Int32(), "lo": pl.Date(), "hi": pl.Date()}
    )


def extend_tables(
    tables: CatalogueTables, catalogue: Catalogue, *, area_keys: Mapping[str, int]
) -> list[str]:
    """Add the early-warning columns and tables to ``tables`` (in place); returns warnings for the run.

    Columns added to ``ck_ind``: ``keep`` (history the scorecard reads), ``fc_window`` (0: no forecast),
    ``fc_horizon``, ``fc_min_r2``, ``fc_min_n``, ``bl_n`` (comparable periods of a seasonal baseline,
    0: none) and ``bl_k`` (the periods k < bl_k that get one); ``hist`` and ``win_lo`` grow as the
    forecasts and baselines need.
    """
    by_id = catalogue.by_id
    domains = {d.id: d.forecast for d in catalogue.domains}
    ind = tables.ind
    hist: dict[int, int] = dict(zip(ind["ikey"].to_list(), ind["hist"].to_list(), strict=True))
    keep = dict(hist)
    fc_cols: dict[str, list[object]] = {k: [] for k in ("fc_window", "fc_horizon", "fc_min_r2", "fc_min_n")}
    bl_n: list[int] = []
    bl_k: list[int] = []
    incident_keys = set(_exclusions(catalogue, ind, area_keys).get_column("ikey").to_list())
    # (ikey, grain, comparable periods to rank — twice as many when incidents may leave some out, current
    # period start, periods scored)
    scoring: list[tuple[int, str, int, date, list[date]]] = []
    for row in ind.iter_rows(named=True):
        k, rg = row["ikey"], row["rgrain"]
        indicator = by_id.get(row["indicator_id"])
        settings = None
        if indicator is not None and not row["hidden"]:
            settings = forecast_settings(indicator, domains, rg)
        window, horizon, min_r2, fc_baseline = settings or (0, 0, 0.0, 0)
        fc_cols["fc_window"].append(window)
        fc_cols["fc_horizon"].append(horizon)
        fc_cols["fc_min_r2"].append(min_r2)
        fc_cols["fc_min_n"].append(min_points(window) if window else 0)
        if window:
            hist[k] = max(hist[k], window - 1)
        # a seasonal basis scores the periods persistence reads; a forecasting cell gets the anomaly
        # score of its current period beside its trend
        n, scored_k = 0, 0
        first = period_shift(rg, row["cand_lo"], -(row["for_periods"] - 1))
        if indicator is not None and _seasonal(row["basis"]) and rg in PEER_RULES:
            n, scored_k = indicator.thresholds.baseline or DEFAULT_BASELINE_PERIODS, row["for_periods"]
        elif window:
            # only a cell that is not stale forecasts: its current period is within the staleness
            n, scored_k = fc_baseline, 1
            first = max(
                row["cand_lo"], period_start(rg, row["cur_start"] - timedelta(seconds=row["stale_s"]))
            )
        if n:
            scored = [
                period_shift(rg, first, j) for j in range(periods_between(rg, first, row["cur_start"]) + 1)
            ]
            scoring.append((k, rg, n * (2 if k in incident_keys else 1), row["cur_start"], scored))
        bl_n.append(n)
        bl_k.append(scored_k)
    # one peer table per grain, deep enough for the deepest need; each indicator reads back only as far
    # as its own comparable periods reach
    peers: list[tuple[str, date, date, int]] = []
    for rg in sorted({s[1] for s in scoring}):
        mine = [s for s in scoring if s[1] == rg]
        peers.extend(peer_rows(rg, {d for s in mine for d in s[4]}, max(s[2] for s in mine)))
    ranked: dict[tuple[str, date], list[date]] = {}
    for rg, d, p, _rank in peers:  # rows come rank by rank for each period
        ranked.setdefault((rg, d), []).append(p)
    for k, rg, ranks, cur, scored in scoring:
        reach = [ranked[(rg, d)][:ranks][-1] for d in scored if ranked.get((rg, d))]
        if reach:
            hist[k] = max(hist[k], periods_between(rg, min(reach), cur))
    _widen_inputs(tables, hist, keep)
    warnings: list[str] = []
    # the kinds of day the day and sub-daily peers were chosen by
    by_day = ("day", "hour", "15min")
    day_dates = [_day(x) for rg, d, p, _r in peers if rg in by_day for x in (d, p)]
    if years := uncovered_years(day_dates):
        warnings.append(coverage_warning(years, "seasonal baselines"))
    new_hist = [hist[k] for k in ind["ikey"].to_list()]
    win_lo = [
        min(lo, period_shift(rg, cur, -h))
        for lo, rg, cur, h in zip(ind["win_lo"], ind["rgrain"], ind["cur_start"], new_hist, strict=True)
    ]
    tables.ind = ind.with_columns(
        pl.Series("keep", ind["hist"].to_list(), dtype=pl.Int32()),
        pl.Series("hist", new_hist, dtype=pl.Int32()),
        pl.Series("win_lo", win_lo, dtype=ind.schema["win_lo"]),
        pl.Series("fc_window", fc_cols["fc_window"], dtype=pl.Int32()),
        pl.Series("fc_horizon", fc_cols["fc_horizon"], dtype=pl.Int32()),
        pl.Series("fc_min_r2", fc_cols["fc_min_r2"], dtype=pl.Float64()),
        pl.Series("fc_min_n", fc_cols["fc_min_n"], dtype=pl.Int32()),
        pl.Series("bl_n", bl_n, dtype=pl.Int32()),
        pl.Series("bl_k", bl_k, dtype=pl.Int32()),
    )
    tables.extra = {
        "ck_edge": _edges(tables.bandsets),
        "ck_peer": pl.DataFrame(
            peers,
            schema={
                "rgrain": pl.String(),
                "bucket": ind.schema["cur_start"],
                "peer": ind.schema["cur_start"],
                "rank": pl.Int32(),
            },
            orient="row",
        ),
        "ck_excl": _exclusions(catalogue, tables.ind, area_keys),
    }
    return warnings


def _widen_inputs(tables: CatalogueTables, hist: dict[int, int], keep: Mapping[int, int]) -> None:
    """A derived indicator that reads further back needs its inputs that far back too (transitively)."""
    inputs: dict[int, list[int]] = {}
    for ikey, input_ikey in tables.inputs.select("ikey", "input_ikey").iter_rows():
        inputs.setdefault(ikey, []).append(input_ikey)
    stack = [k for k in hist if hist[k] > keep[k] and k in inputs]
    while stack:
        k = stack.pop()
        for i in inputs.get(k, ()):
            if i in hist and hist[i] < hist[k]:
                hist[i] = hist[k]
                stack.append(i)
