"""The catalogue's data-quality expectations flattened into small frames (pure: no database).

One row per observed indicator (``q_ind``: what is expected of it, when, from whom), per area its
feeds name (``q_ind_area``, see :func:`expected_areas`), per consistency rule (``q_rule``), per rule
member (``q_rule_part``) and per declared breakdown value (``q_rule_value``). ``sql.py`` joins them with the warehouse, so the number of statements never
depends on how many indicators or rules there are.

Periods are grain-generic: an indicator is expected once per period of its *quality grain* (its
frequency's grain, :data:`GRAIN_OF_FREQUENCY`); :data:`GRAIN_STEPS` gives each grain's length as SQL,
and :data:`DEFAULT_PERIODS` how many periods back a report looks by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl

from citykpi.catalogue.model import (
    GRAIN_OF_FREQUENCY,
    LEVELS,
    Catalogue,
    Feed,
    Indicator,
    Observed,
)
from citykpi.engine.calendar import SUBDAILY_STEP, shift, shift_at, trunc, trunc_at
from citykpi.warehouse.ingest.shape import dims_text

#: Each quality grain's length, as a SQL interval (``range(lo, hi, step)`` makes the expected periods).
GRAIN_STEPS: Mapping[str, str] = {
    "15min": "INTERVAL 15 MINUTE",
    "hour": "INTERVAL 1 HOUR",
    "day": "INTERVAL 1 DAY",
    "week": "INTERVAL 7 DAY",
    "month": "INTERVAL 1 MONTH",
    "quarter": "INTERVAL 3 MONTH",
    "year": "INTERVAL 1 YEAR",
}
#: Periods a report looks back by default, per quality grain (``--from`` sets the start for all).
DEFAULT_PERIODS: Mapping[str, int] = {
    "15min": 96,
    "hour": 24,
    "day": 7,
    "week": 4,
    "month": 3,
    "quarter": 4,
    "year": 3,
}
#: The provider, feed or owner named when the catalogue names none.
NOBODY = "(none declared)"


def quality_grain(indicator: Indicator, *, subdaily: bool = False) -> str:
    """The period an indicator is expected once in: its frequency's grain. Realtime and hourly feeds
    are judged by the day, or with ``subdaily`` (a report as of an instant, ``--at``) by the quarter
    hour and the hour."""
    grain = GRAIN_OF_FREQUENCY[indicator.frequency]
    return grain if subdaily or grain not in SUBDAILY_STEP else "day"


def delivery_levels(indicator: Indicator) -> tuple[str, ...]:
    """The levels at which an indicator's data must be delivered, not rolled up: its lowest declared
    level, and every declared level its area roll-up cannot reach (``none``)."""
    lowest = indicator.levels[-1]
    if indicator.rollup.area == "none":
        return indicator.levels
    return (lowest,)


def feed_of(catalogue: Catalogue) -> dict[str, Feed]:
    """Indicator id → the first feed (in catalogue order) that delivers it."""
    from citykpi.catalogue.validate_quality import feed_indicators

    out: dict[str, Feed] = {}
    for feed in catalogue.feeds:
        for iid in sorted(feed_indicators(feed)):
            out.setdefault(iid, feed)
    return out


def feed_areas(feed: Feed) -> frozenset[str] | None:
    """The areas a feed names for its rows — its ``set: {area_id: …}`` and the areas its ``recode``
    sets — or None when it reads each row's area from the file (it may cover a whole level)."""
    if "area_id" not in feed.constants:
        return None
    named = {feed.constants["area_id"]}
    for column, table in feed.recode.items():
        for sets in table.values():
            for name, text in sets.items():
                if name == "area_id" or (name == "" and feed.columns.get("area_id") == column):
                    named.add(text)
    return frozenset(named)


def expected_areas(catalogue: Catalogue) -> dict[str, frozenset[str]]:
    """Indicator id → the areas its feeds name, for the indicators whose every feed names its areas.

    An indicator absent from the result is expected at every area of its delivery levels: no feed
    delivers it (its ``levels`` are the only promise), or a feed reads the area from the file.
    """
    from citykpi.catalogue.validate_quality import feed_indicators

    named: dict[str, set[str]] = {}
    whole: set[str] = set()
    for feed in catalogue.feeds:
        areas = feed_areas(feed)
        for iid in feed_indicators(feed):
            if areas is None:
                whole.add(iid)
            else:
                named.setdefault(iid, set()).update(areas)
    return {iid: frozenset(a) for iid, a in named.items() if iid not in whole}


def source_feed(catalogue: Catalogue) -> dict[str, Feed]:
    """Source id → the first feed that loads it (``format: source``)."""
    out: dict[str, Feed] = {}
    for feed in catalogue.feeds:
        if feed.source:
            out.setdefault(feed.source, feed)
    return out


@dataclass(frozen=True)
class Window:
    """The periods a report judges, per indicator: [lo, hi) of period starts (TIMESTAMPs)."""

    lo: datetime
    hi: datetime


def window(indicator: Indicator, as_of: date, since: date | None, at: datetime | None = None) -> Window:
    """The expected periods of ``indicator`` in a report as of ``as_of``: those that have ended by the
    end of that day (or by the instant ``at``), from ``since`` (its period) or the default number of
    periods back."""
    grain = quality_grain(indicator, subdaily=at is not None)
    if at is not None:
        if grain in SUBDAILY_STEP:
            top = trunc_at(grain, at)
            first = (
                trunc_at(grain, datetime.combine(since, datetime.min.time()))
                if since is not None
                else shift_at(grain, top, -DEFAULT_PERIODS[grain])
            )
            return Window(min(first, top), top)
        as_of = at.date() - timedelta(days=1)  # the periods that ended by the instant: by its midnight
    end = as_of + timedelta(days=1)
    hi = trunc(grain, end)
    lo = trunc(grain, since) if since is not None else shift(grain, hi, -DEFAULT_PERIODS[grain])
    lo = min(lo, hi)
    return Window(datetime.combine(lo, datetime.min.time()), datetime.combine(hi, datetime.min.time()))


@dataclass
class QualityTables:
    """The frames loaded as temp tables before the quality statements run."""

    ind: pl.DataFrame
    ind_areas: pl.DataFrame
    rules: pl.DataFrame
    parts: pl.DataFrame
    values: pl.DataFrame

    def frames(self) -> dict[str, pl.DataFrame]:
        """Temp-table name → frame."""
        return {
            "q_ind": self.ind,
            "q_ind_area": self.ind_areas,
            "q_rule": self.rules,
            "q_rule_part": self.parts,
            "q_rule_value": self.values,
        }


_IND_SCHEMA: dict[str, pl.DataType] = {
    "ikey": pl.Int32(),
    "indicator_id": pl.String(),
    "qgrain": pl.String(),
    "win_lo": pl.Datetime("us"),
    "win_hi": pl.Datetime("us"),
    "due_s": pl.Float64(),
    "lo": pl.Float64(),
    "hi": pl.Float64(),
    "provider": pl.String(),
    "feed": pl.String(),
    "fc": pl.Int8(),
    "whole": pl.Boolean(),
    "dl_city": pl.Boolean(),
    "dl_district": pl.Boolean(),
    "dl_street": pl.Boolean(),
    "lv_city": pl.Boolean(),
    "lv_district": pl.Boolean(),
    "lv_street": pl.Boolean(),
    "i_rank": pl.Int32(),
}


def build_tables(
    catalogue: Catalogue,
    keys: Mapping[str, int],
    *,
    as_of: date,
    since: date | None,
    at: datetime | None = None,
) -> QualityTables:
    """Flatten what the catalogue expects of its data for a report as of ``as_of``.

    Args:
        catalogue: the validated catalogue.
        keys: indicator id → warehouse indicator key (indicators without one have no data yet).
        as_of: the report's date: periods that have ended by the end of it are expected.
        since: the start of the judged periods for every indicator (None: the default look-back).
        at: an instant instead: the periods that have ended by it, realtime and hourly feeds by the
            quarter hour and the hour.
    """
    from citykpi.warehouse.schema import frequency_class

    feeds = feed_of(catalogue)
    named = expected_areas(catalogue)
    rows: list[dict[str, object]] = []
    area_rows: list[dict[str, object]] = []
    windows: dict[str, Window] = {}
    for ind in catalogue.indicators:
        if not isinstance(ind.value, Observed) or ind.id not in keys:
            continue  # only stored observations are delivered; the rest is computed from them
        feed = feeds.get(ind.id)
        grain = quality_grain(ind, subdaily=at is not None)
        if grain not in windows:  # an indicator's window depends on its grain alone
            windows[grain] = window(ind, as_of, since, at)
        w = windows[grain]
        due = ind.due or (feed.due if feed is not None else None) or ind.staleness
        lo, hi = ind.valid_range if ind.valid_range else (None, None)
        deliver = delivery_levels(ind)
        rows.append(
            {
                "ikey": keys[ind.id],
                "indicator_id": ind.id,
                "qgrain": grain,
                "win_lo": w.lo,
                "win_hi": w.hi,
                "due_s": due.total_seconds(),
                "lo": lo,
                "hi": hi,
                "provider": (feed.provider if feed is not None and feed.provider else ind.owner) or NOBODY,
                "feed": feed.id if feed is not None else NOBODY,
                "fc": frequency_class(ind.frequency),
                "whole": ind.id not in named,
                **{f"dl_{lv}": lv in deliver for lv in LEVELS},
                **{f"lv_{lv}": lv in ind.levels for lv in LEVELS},
            }
        )
        if ind.id in named:
            area_rows.extend({"ikey": keys[ind.id], "area_id": a} for a in sorted(named[ind.id]))
    # each indicator's place in the order of the ids, so the series are listed by id without
    # comparing the id texts row by row
    rank = {iid: n for n, iid in enumerate(sorted(str(r["indicator_id"]) for r in rows))}
    for r in rows:
        r["i_rank"] = rank[str(r["indicator_id"])]
    rule_rows: list[dict[str, object]] = []
    part_rows: list[dict[str, object]] = []
    value_rows: list[dict[str, object]] = []
    for rule in catalogue.consistency:
        subject = keys.get(rule.subject)
        if subject is None:
            continue  # nothing stored for it yet: nothing to check
        method = rule.method
        if rule.kind == "area_rollup" and method is None:
            area = catalogue.indicator(rule.subject).rollup.area
            method = area if area in ("sum", "mean", "max", "min", "weighted_mean") else "sum"
        rule_rows.append(
            {
                "rule_id": rule.id,
                "kind": rule.kind,
                "ikey": subject,
                "dimension": rule.dimension,
                "method": method,
                "level": rule.level,
                "tolerance": rule.tolerance,
                "relative": rule.relative,
                "n_values": len(rule.values),
            }
        )
        members = [(rule.total, "total")] + [(p, "part") for p in rule.parts] if rule.kind == "sum" else []
        for pos, (iid, role) in enumerate(members):
            part_rows.append({"rule_id": rule.id, "ikey": keys.get(str(iid), -1), "role": role, "pos": pos})
        for value in rule.values:
            value_rows.append({"rule_id": rule.id, "value": dims_text({"x": value})[2:]})
    return QualityTables(
        ind=pl.DataFrame(rows, schema=_IND_SCHEMA),
        ind_areas=pl.DataFrame(area_rows, schema={"ikey": pl.Int32(), "area_id": pl.String()}),
        rules=pl.DataFrame(
            rule_rows,
            schema={
                "rule_id": pl.String(),
                "kind": pl.String(),
                "ikey": pl.Int32(),
                "dimension": pl.String(),
                "method": pl.String(),
                "level": pl.String(),
                "tolerance": pl.Float64(),
                "relative": pl.Boolean(),
                "n_values": pl.Int32(),
            },
        ),
        parts=pl.DataFrame(
            part_rows,
            schema={"rule_id": pl.String(), "ikey": pl.Int32(), "role": pl.String(), "pos": pl.Int32()},
        ),
        values=pl.DataFrame(value_rows, schema={"rule_id": pl.String(), "value": pl.String()}),
    )
