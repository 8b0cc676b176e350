"""Completeness and timeliness are counted, not expanded: ``citykpi quality`` counts each indicator's
periods and subtracts the cells that arrived, instead of building every series × period cell. These
tests expand the grid in plain Python from the raw tables — several records per cell (hourly values
in a daily cell, days in a week), cells without a value, earlier deliveries, missing-value tokens,
records arriving after the moment judged, areas outside the delivery levels — and check every
series' figures against it, for any moment judged, report date and start.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citykpi.catalogue.model import Catalogue, Indicator, Rollup
from citykpi.engine.calendar import shift, trunc
from citykpi.quality import assess
from citykpi.quality.tables import delivery_levels, quality_grain, window
from tests.engine_helpers import AREAS, City, indicator

START = date(2025, 3, 1)
END = date(2025, 7, 15)

INDICATORS: tuple[Indicator, ...] = (
    indicator("g.hourly", frequency="hourly", due=timedelta(hours=9)),
    indicator("g.daily", levels=("city", "district", "street"), rollup=Rollup(time="last", area="sum")),
    indicator("g.weekly", frequency="weekly", levels=("district",), due=timedelta(days=2)),
    indicator("g.monthly", frequency="monthly", due=timedelta(days=10)),
)


def _at(d: date, hours: float) -> datetime:
    return datetime.combine(d, datetime.min.time()) + timedelta(seconds=round(hours * 3600))


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    """Seeded records of every indicator at every area (streets too), each in a batch of its own."""
    rng = random.Random(17)
    c = City(tmp_path_factory.mktemp("grid"))
    c.wh.register_indicators([i.id for i in INDICATORS])
    keys = c.wh.indicator_keys()
    obs: list[tuple[object, ...]] = []
    old: list[tuple[object, ...]] = []
    tokens: list[tuple[object, ...]] = []
    batches: list[tuple[int, datetime]] = []
    for ind in INDICATORS:
        grain = quality_grain(ind)
        fc = 1 if grain in ("week", "month") else 0
        p = trunc(grain, START)
        while p < END:
            nxt = shift(grain, p, 1)
            for area, _level, _parent, _pop in AREAS:
                if rng.random() < 0.2:
                    continue  # nothing for this cell
                hourly = ind.frequency == "hourly"
                slots = (nxt - p).days * (24 if hourly else 1)
                n = rng.choice([1, 1, 2, 3]) if hourly or grain != "day" else 1
                for s in sorted({rng.randrange(slots) for _ in range(n)}):
                    period = _at(p, s) if hourly else _at(p + timedelta(days=s), 0)
                    arrived = _at(nxt, rng.randrange(-2 * 3600, 60 * 3600) / 3600)
                    value = None if rng.random() < 0.1 else round(rng.uniform(0, 50), 1)
                    batch = len(batches) + 1
                    batches.append((batch, arrived))
                    cell = (keys[ind.id], c.area_keys[area], period)
                    kind = rng.random()
                    if kind < 0.08:  # a missing-value token instead of a value
                        tokens.append((*cell, batch))
                        continue
                    obs.append((*cell, value, batch, fc))
                    if kind < 0.16:  # an earlier delivery of the same record, replaced by this one
                        batches.append(
                            (batch + 1, arrived - timedelta(seconds=rng.randrange(3600, 30 * 3600)))
                        )
                        old.append((*cell, batch + 1, fc, batch))
            p = nxt
    con = c.wh.con
    frames = {
        "batches": (batches, ["batch_id", "finished_at"]),
        "observations": (obs, ["indicator_key", "area_key", "period", "value", "batch_id", "freq_class"]),
        "observations_superseded": (
            old,
            ["indicator_key", "area_key", "period", "batch_id", "freq_class", "superseded_by"],
        ),
        "observations_missing": (tokens, ["indicator_key", "area_key", "period", "batch_id"]),
    }
    extra = {
        "batches": "kind, path, status",
        "observations_superseded": "value",
        "observations_missing": "dims, token",
    }
    constants = {
        "batches": "'long', 'g', 'loaded'",
        "observations_superseded": "1.0",
        "observations_missing": "'', ':'",
    }
    for table, (rows, columns) in frames.items():
        frame = pl.DataFrame(rows, schema=columns, orient="row")
        with con.registered("_grid", frame):
            more = f", {extra[table]}" if table in extra else ""
            values = f", {constants[table]}" if table in constants else ""
            con.execute(f"INSERT INTO {table} ({', '.join(columns)}{more}) SELECT *{values} FROM _grid")
    con.execute(
        "INSERT OR IGNORE INTO series_classes SELECT DISTINCT indicator_key, freq_class FROM observations"
    )
    yield c
    c.wh.close()


def _expanded(c: City, as_of: date, since: date | None, now: datetime) -> dict[tuple[str, str], tuple]:
    """Every expected cell built and judged one by one, summed per series (indicator id, area id)."""
    con = c.wh.con
    batches = dict(con.execute("SELECT batch_id, finished_at FROM batches").fetchall())
    ids = {k: i for i, k in c.wh.indicator_keys().items()}
    areas = {c.area_keys[a[0]]: a[0] for a in AREAS}
    records: list[tuple[str, str, datetime, bool | None, datetime, bool]] = []
    for table, has_value, token in (
        ("observations", "(value IS NOT NULL OR (numerator IS NOT NULL AND denominator IS NOT NULL))", False),
        ("observations_superseded", "NULL", False),
        ("observations_missing WHERE dims = ''", "NULL", True),
    ):
        name, _, where = table.partition(" WHERE ")
        rows = con.execute(
            f"SELECT indicator_key, area_key, period, {has_value}, batch_id FROM {name} {'WHERE ' + where if where else ''}"
        ).fetchall()
        for ikey, akey, period, has, batch in rows:
            if batches[batch] <= now:
                records.append((ids[ikey], areas[akey], period, has, batches[batch], token))
    out: dict[tuple[str, str], tuple] = {}
    for ind in INDICATORS:
        grain = quality_grain(ind)
        w = window(ind, as_of, since)
        due = ind.due or ind.staleness
        deliver = delivery_levels(ind)
        periods = []
        p = w.lo.date()
        while p < w.hi.date():
            periods.append(p)
            p = shift(grain, p, 1)
        if not periods:
            continue
        for area, level, _parent, _pop in AREAS:
            if level not in deliver:
                continue
            counts = dict.fromkeys(("pending", "present", "tokens", "on_time", "late", "missing"), 0)
            lags: list[int] = []
            for p in periods:
                start = datetime.combine(p, datetime.min.time())
                end = datetime.combine(shift(grain, p, 1), datetime.min.time())
                mine = [r for r in records if r[0] == ind.id and r[1] == area and start <= r[2] < end]
                present = any(r[3] for r in mine if not r[5] and r[3] is not None)
                arrived = min((r[4] for r in mine), default=None)
                due_at = end + due
                counts["present"] += present
                counts["tokens"] += not present and any(r[5] for r in mine)
                if arrived is None:
                    counts["pending" if now <= due_at else "missing"] += 1
                else:
                    counts["on_time" if arrived <= due_at else "late"] += 1
                    lags.append(int((arrived - end).total_seconds()))
            lag = sum(lags) / len(lags) / 3600.0 if lags else None
            out[(ind.id, area)] = (len(periods), *counts.values(), lag, max(lags) / 3600.0 if lags else None)
    return out


COLUMNS = (
    "periods",
    "pending",
    "present",
    "missing_tokens",
    "on_time",
    "late",
    "missing",
    "lag_hours",
    "max_lag_hours",
)


@settings(max_examples=30, deadline=None)
@given(
    as_of=st.dates(date(2025, 5, 1), date(2025, 7, 20)),
    back=st.none() | st.integers(0, 80),
    now_hours=st.integers(-24 * 20, 24 * 60),
)
def test_counted_grid_equals_the_expanded_grid(
    city: City, as_of: date, back: int | None, now_hours: int
) -> None:
    since = as_of - timedelta(days=back) if back is not None else None
    now = _at(as_of, 24 + now_hours)
    report = assess(city.wh, Catalogue(indicators=INDICATORS), as_of=as_of, since=since, now=now)
    want = _expanded(city, as_of, since, now)
    got = {
        (r["indicator_id"], r["area_id"]): tuple(r[c] for c in COLUMNS)
        for r in report.series.iter_rows(named=True)
    }
    for key, figures in want.items():
        assert got.get(key) == figures, key  # whole seconds: the mean lag is the same division
    for key in set(got) - set(want):  # a series outside the expected ones has values only
        assert got[key][:7] == (0,) * 7 and got[key][7:] == (None, None), key
    assert report.summary["expected"] == sum(f[0] for f in want.values())
