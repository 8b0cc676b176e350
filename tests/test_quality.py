"""``citykpi quality``: every figure on small warehouses, computed by hand.

Completeness and timeliness of a daily feed (a missing-value token, an absent day, a late day, a day
not yet due, a replaced delivery whose first arrival counts), accuracy (out of range, a robust
outlier, rejects of a feed), every consistency-rule kind with tolerances and breakdown contexts, raw
records by provider, the league table's scores, colours and ranks, and a constant statement count.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from citykpi.catalogue.model import (
    Catalogue,
    ConsistencyRule,
    Feed,
    Rollup,
    SourceTable,
    Timeliness,
)
from citykpi.errors import UsageError
from citykpi.quality import assess
from citykpi.quality.assess import explain
from citykpi.quality.report import severity_of
from tests.engine_helpers import City, indicator

AS_OF = date(2025, 6, 30)
NOW = datetime(2025, 7, 1, 8, 0)


def _day(d: int) -> date:
    return date(2025, 6, d)


def _at(d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2025, 6, d, hh, mm) if d <= 30 else datetime(2025, 7, d - 30, hh, mm)


def token(
    city: City, indicator_id: str, area: str, day: date, text: str, finished_at: datetime, dims: str = ""
) -> None:
    """A missing-value token as ingest stores it, in a batch of its own."""
    city.wh.register_indicators([indicator_id])
    city.batch += 1
    ikey = city.wh.indicator_keys()[indicator_id]
    city.wh.con.execute(
        "INSERT INTO observations_missing VALUES (?, ?, ?, ?, ?, ?)",
        [ikey, city.area_keys[area], datetime.combine(day, datetime.min.time()), dims, text, city.batch],
    )
    city.wh.con.execute(
        "INSERT INTO batches (batch_id, kind, path, status, finished_at) VALUES (?, 'long', 'tokens', 'loaded', ?)",
        [city.batch, finished_at],
    )


DAILY = indicator(
    "q.daily",
    rollup=Rollup(time="last", area="sum"),
    valid_range=(0.0, 100.0),
    due=timedelta(hours=9),
    owner="Dept A",
)


@pytest.fixture
def feed_city(tmp_path: Path) -> City:
    city = City(tmp_path)
    # D1: 24 and 25 on time, 26 absent (missing), 27 a token on time, 28 late, 29 on time (out of
    # range: stored before the range was declared), 30 not yet due (pending at 08:00 on 1 July)
    city.observe("q.daily", [("D1", _day(24), 5.0)], finished_at=_at(25, 8))
    city.observe("q.daily", [("D1", _day(25), 6.0)], finished_at=_at(26, 8))
    token(city, "q.daily", "D1", _day(27), ":", _at(28, 8))
    city.observe("q.daily", [("D1", _day(28), 7.0)], finished_at=_at(29, 10))
    city.observe("q.daily", [("D1", _day(29), 150.0)], finished_at=_at(30, 8, 59))
    # D2: all seven days in one batch on 1 July at 07:00 — only the 30th is on time — except the 24th,
    # first delivered on time on the 25th and replaced since (its first arrival counts)
    values = [10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 90.0]
    batch = city.observe(
        "q.daily", [("D2", _day(24 + n), v) for n, v in enumerate(values)], finished_at=_at(31, 7)
    )
    city.batch += 1
    city.wh.con.execute(
        "INSERT INTO batches (batch_id, kind, path, status, finished_at) VALUES (?, 'long', 'old', 'loaded', ?)",
        [city.batch, _at(25, 8)],
    )
    key = city.wh.indicator_keys()["q.daily"]
    city.wh.con.execute(
        "INSERT INTO observations_superseded VALUES (?, ?, ?, 9.0, NULL, NULL, ?, 0, ?)",
        [key, city.area_keys["D2"], datetime(2025, 6, 24), city.batch, batch],
    )
    return city


def test_completeness_timeliness_and_accuracy_of_a_daily_feed(feed_city: City) -> None:
    r = assess(feed_city.wh, Catalogue(indicators=(DAILY,)), as_of=AS_OF, now=NOW)
    s = {row["area_id"]: row for row in r.series.to_dicts()}
    assert set(s) == {"D1", "D2"}  # delivered at the lowest level; the city is rolled up
    d1, d2 = s["D1"], s["D2"]
    assert (d1["periods"], d1["pending"], d1["present"], d1["missing_tokens"], d1["absent"]) == (
        7,
        1,
        4,
        1,
        1,
    )
    assert (d1["on_time"], d1["late"], d1["missing"]) == (4, 1, 1)
    assert d1["completeness"] == pytest.approx(4 / 6 * 100)
    assert d1["timeliness"] == pytest.approx(4 / 6 * 100)
    # lags from the end of each period: 8, 8, 8 (the token), 10, 8.98 hours
    assert d1["lag_hours"] == pytest.approx((8 + 8 + 8 + 10 + 8 + 59 / 60) / 5)
    assert d1["max_lag_hours"] == pytest.approx(10)
    # four values, too few to judge outliers; 150 is outside [0, 100]
    assert (d1["values"], d1["out_of_range"], d1["outliers"], d1["inaccurate"]) == (4, 1, 0, 1)
    assert (d2["periods"], d2["pending"], d2["present"], d2["on_time"], d2["late"], d2["missing"]) == (
        7,
        0,
        7,
        2,
        5,
        0,
    )
    # median 13, MAD 2: 90 scores 0.6745 × 77 / 2 = 26 > 3.5
    assert (d2["values"], d2["out_of_range"], d2["outliers"]) == (7, 0, 1)
    (out,) = r.outliers.filter(pl.col("problem") == "outlier").to_dicts()
    assert (out["area_id"], out["value"], out["median"], out["mad"]) == ("D2", 90.0, 13.0, 2.0)
    assert out["z"] == pytest.approx(0.6745 * 77 / 2)
    g = r.groups.row(0, named=True)
    assert (
        g["by"],
        g["group"],
        g["expected"],
        g["present"],
        g["missing_tokens"],
        g["absent"],
        g["pending"],
    ) == (
        "owner",
        "Dept A",
        14,
        11,
        1,
        1,
        1,
    )
    assert g["completeness"] == pytest.approx(11 / 13 * 100)
    assert g["accuracy"] == pytest.approx(9 / 11 * 100)
    assert g["consistency"] is None
    assert g["timeliness"] == pytest.approx(6 / 13 * 100)
    assert g["score"] == pytest.approx((11 / 13 + 9 / 11 + 6 / 13) / 3 * 100)
    assert (g["status"], g["severity"], g["rank"]) == ("red", 4, 1)
    assert r.summary["completeness"] == pytest.approx(11 / 13 * 100)


def test_later_data_and_pending_depend_on_the_moment_judged(feed_city: City) -> None:
    cat = Catalogue(indicators=(DAILY,))
    # at 10:00 the 30th of D1 is due and still missing; the 28th of D1, and D2's batch of the 1st, exist
    later = assess(feed_city.wh, cat, as_of=AS_OF, now=datetime(2025, 7, 1, 10, 0))
    d1 = later.series.filter(pl.col("area_id") == "D1").row(0, named=True)
    assert (d1["pending"], d1["missing"]) == (0, 2)
    # on the 29th at noon (judging 22–28 June) the batch of 1 July has not arrived: D2 holds nothing but
    # the replaced 24th, which had arrived on time; 22, 23 and 25–28 are due and missing
    early = assess(feed_city.wh, cat, as_of=_day(28), now=_at(29, 12))
    d2 = early.series.filter(pl.col("area_id") == "D2").row(0, named=True)
    assert (d2["present"], d2["on_time"], d2["missing"]) == (0, 1, 6)


def test_from_widens_the_judged_periods(feed_city: City) -> None:
    r = assess(feed_city.wh, Catalogue(indicators=(DAILY,)), as_of=AS_OF, since=_day(1), now=NOW)
    d1 = r.series.filter(pl.col("area_id") == "D1").row(0, named=True)
    assert (d1["periods"], d1["absent"]) == (30, 24)
    with pytest.raises(UsageError, match="--from 2025-07-02 is after --date 2025-06-30"):
        assess(feed_city.wh, Catalogue(indicators=(DAILY,)), as_of=AS_OF, since=date(2025, 7, 2), now=NOW)
    with pytest.raises(UsageError, match="unknown --by 'colour'"):
        assess(feed_city.wh, Catalogue(indicators=(DAILY,)), by="colour")


def test_due_comes_from_the_indicator_then_the_feed_then_staleness(feed_city: City) -> None:
    plain = replace(DAILY, due=None)
    feed = Feed(id="f", provider="Bureau", indicators=("q.daily",), due=timedelta(hours=48))
    cat = Catalogue(indicators=(plain,), feeds=(feed,))
    d2 = (
        assess(feed_city.wh, cat, as_of=AS_OF, now=NOW)
        .series.filter(pl.col("area_id") == "D2")
        .row(0, named=True)
    )
    # due 48 h after each day's end: 29 and 30 on time (arrived 1 July 07:00), and the replaced 24th
    assert (d2["on_time"], d2["late"]) == (3, 4)
    assert d2["provider"] == "Bureau" and d2["feed"] == "f"
    nofeed = Catalogue(indicators=(plain,))  # max_staleness of a daily indicator: 2 days
    d2 = (
        assess(feed_city.wh, nofeed, as_of=AS_OF, now=NOW)
        .series.filter(pl.col("area_id") == "D2")
        .row(0, named=True)
    )
    assert (d2["on_time"], d2["late"]) == (3, 4)


# --- which series are expected ------------------------------------------------------------------------

PINNED = indicator("q.pinned", rollup=Rollup(time="last", area="sum"), due=timedelta(hours=9), owner="Dept A")
THREE = (
    ("C", "city", None, 100.0),
    ("D1", "district", "C", 30.0),
    ("D2", "district", "C", 30.0),
    ("D3", "district", "C", 40.0),
)


@pytest.fixture
def pinned_city(tmp_path: Path) -> City:
    city = City(tmp_path, areas=THREE)
    # D1 delivers 25 and 26 June; D2 once wrote a missing-value token, in January; D3 never delivered;
    # the city (rolled up from its districts) once had a value of its own, before the judged week
    city.observe("q.pinned", [("D1", _day(25), 1.0), ("D1", _day(26), 2.0)], finished_at=_at(27, 8))
    token(city, "q.pinned", "D2", date(2025, 1, 1), "NA", datetime(2025, 1, 2, 8))
    city.observe("q.pinned", [("C", date(2025, 5, 1), 9.0)], finished_at=datetime(2025, 5, 2, 8))
    return city


def _expected(city: City, *feeds: Feed) -> dict[str, tuple[int, int]]:
    cat = Catalogue(indicators=(PINNED,), feeds=feeds)
    r = assess(city.wh, cat, as_of=AS_OF, now=datetime(2025, 7, 2))
    return {row["area_id"]: (row["periods"], row["present"]) for row in r.series.to_dicts()}


def test_a_feed_that_names_its_area_is_expected_there_and_wherever_data_came_from(pinned_city: City) -> None:
    named = Feed(id="a", indicators=("q.pinned",), constants={"area_id": "D1"})
    # D1: named by the feed (2 of the 7 days); D2: delivered once, so expected every day since (none
    # came); D3: neither named nor ever delivered, so not expected; C: delivered, but the city is not a
    # delivery level of a district roll-up
    assert _expected(pinned_city, named) == {"D1": (7, 2), "D2": (7, 0)}
    # a second feed naming the city and D3: the union of the named areas (a named area at any declared
    # level), besides D2
    other = Feed(
        id="b", indicators=("q.pinned",), constants={"area_id": "D3"}, recode={"x": {"y": {"area_id": "C"}}}
    )
    assert _expected(pinned_city, named, other) == {"D1": (7, 2), "D2": (7, 0), "D3": (7, 0), "C": (7, 0)}


def test_a_feed_that_reads_areas_from_the_file_covers_its_levels(pinned_city: City) -> None:
    whole = {"D1": (7, 2), "D2": (7, 0), "D3": (7, 0)}
    # no feed at all: the indicator's levels are the promise; every district is expected
    assert _expected(pinned_city) == whole
    # a feed whose area is a column of the file covers every district, even beside a feed naming one
    from_file = Feed(id="f", indicators=("q.pinned",), columns={"area_id": "district"})
    named = Feed(id="a", indicators=("q.pinned",), constants={"area_id": "D1"})
    assert _expected(pinned_city, from_file) == whole
    assert _expected(pinned_city, named, from_file) == whole


# --- consistency rules ------------------------------------------------------------------------------------

YEARLY = dict(frequency="yearly", rollup=Rollup(time="last", area="sum"), owner="Stats")
TOTAL = indicator("pop.total", **YEARLY)  # type: ignore[arg-type]
URBAN = indicator("pop.urban", **YEARLY)  # type: ignore[arg-type]
RURAL = indicator("pop.rural", **YEARLY)  # type: ignore[arg-type]
Y19, Y20 = date(2019, 1, 1), date(2020, 1, 1)


@pytest.fixture
def rule_city(tmp_path: Path) -> City:
    city = City(tmp_path)
    fin = datetime(2021, 1, 1)
    city.observe(
        "pop.total",
        [
            ("C", Y19, 30.0),
            ("C", Y20, 21.0),
            ("D1", Y19, 9.0),
            ("D1", Y20, 10.0),
            ("D2", Y19, 9.0),
            ("D2", Y20, 10.0),
        ],
        finished_at=fin,
        freq_class=1,
    )
    city.observe(
        "pop.urban", [("D1", Y19, 5.0), ("D1", Y20, 6.0), ("D2", Y20, 6.0)], finished_at=fin, freq_class=1
    )
    city.observe("pop.rural", [("D1", Y20, 4.0), ("D2", Y20, 5.0)], finished_at=fin, freq_class=1)
    key = city.wh.indicator_keys()["pop.total"]
    dims = [
        ("D1", Y20, "sex=male", 5.0),
        ("D1", Y20, "sex=female", 5.0),
        ("D2", Y20, "sex=male", 4.0),
        ("D2", Y20, "sex=female", 5.0),
        ("D1", Y19, "sex=male", 4.0),
        ("D1", Y20, "age=0-4", 2.0),
        ("D1", Y20, "age=0-4;sex=male", 1.0),
        ("D1", Y20, "age=0-4;sex=female", 1.0),
        ("D2", Y20, "age=0-4", 3.0),
        ("D2", Y20, "age=0-4;sex=male", 1.0),
        ("D2", Y20, "age=0-4;sex=female", 1.0),
    ]
    for area, year, text, value in dims:
        city.wh.con.execute(
            "INSERT INTO observations_dims VALUES (?, ?, ?, ?, ?, NULL, NULL, 1)",
            [key, city.area_keys[area], datetime.combine(year, datetime.min.time()), text, value],
        )
    return city


RULES = (
    ConsistencyRule(id="urban_rural", kind="sum", total="pop.total", parts=("pop.urban", "pop.rural")),
    ConsistencyRule(
        id="by_sex", kind="disaggregation", indicator="pop.total", dimension="sex", values=("male", "female")
    ),
    ConsistencyRule(id="by_sex_seen", kind="disaggregation", indicator="pop.total", dimension="sex"),
    ConsistencyRule(
        id="city_sum", kind="area_rollup", indicator="pop.total", level="city", tolerance=5.0, relative=True
    ),
    ConsistencyRule(id="city_mean", kind="area_rollup", indicator="pop.total", method="mean", tolerance=0.5),
)


def test_every_rule_kind_by_hand(rule_city: City) -> None:
    cat = Catalogue(indicators=(TOTAL, URBAN, RURAL), consistency=RULES)
    r = assess(rule_city.wh, cat, as_of=date(2020, 12, 31), since=Y19, now=datetime(2021, 6, 1))
    rules = {row["rule_id"]: row for row in r.rules.to_dicts()}
    viol = {}
    for row in r.violations.to_dicts():
        viol.setdefault(row["rule_id"], []).append(
            (
                row["area_id"],
                row["period"].year,
                row["breakdown"],
                row["total"],
                row["expected"],
                row["values"],
            )
        )
    # sum: D1 2020 = 6 + 4 holds, D2 2020 ≠ 6 + 5; D1 2019 lacks its rural part (not checked)
    assert (rules["urban_rural"]["checked"], rules["urban_rural"]["violations"]) == (2, 1)
    assert viol["urban_rural"] == [("D2", 2020, "", 10.0, 11.0, "pop.urban=6.0; pop.rural=5.0")]
    # disaggregation: D1 2020 = 5 + 5 holds; D2 2020 ≠ 4 + 5; within age 0-4: D1 2 = 1 + 1, D2 3 ≠ 1 + 1;
    # D1 2019 has no female value (not checked); the declared and the seen values are the same here
    for rid in ("by_sex", "by_sex_seen"):
        assert (rules[rid]["checked"], rules[rid]["violations"]) == (4, 2), rid
        assert viol[rid] == [
            ("D2", 2020, "", 10.0, 9.0, "female=5.0; male=4.0"),
            ("D2", 2020, "age=0-4", 3.0, 2.0, "female=1.0; male=1.0"),
        ]
    # area_rollup, sum within 5 % of the total: 2020 21 vs 20 (allowed 1.05) holds; 2019 30 vs 18 fails
    assert (rules["city_sum"]["checked"], rules["city_sum"]["violations"]) == (2, 1)
    assert viol["city_sum"] == [("C", 2019, "", 30.0, 18.0, "D1=9.0; D2=9.0")]
    # area_rollup, mean, every parent level (only the city has children here): both years fail
    assert (rules["city_mean"]["checked"], rules["city_mean"]["violations"]) == (2, 2)
    # the league: consistency = checks holding over checks made (2+4+4+2+2 = 14 made, 8 fail)
    g = r.groups.row(0, named=True)
    assert (g["group"], g["checked"], g["violations"]) == ("Stats", 14, 8)
    assert g["consistency"] == pytest.approx(6 / 14 * 100)
    by_area = assess(
        rule_city.wh, cat, as_of=date(2020, 12, 31), since=Y19, by="area", now=datetime(2021, 6, 1)
    )
    areas = {row["group"]: (row["checked"], row["violations"]) for row in by_area.groups.to_dicts()}
    assert areas["C"] == (4, 3) and areas["D2"] == (5, 5) and areas["D1"] == (5, 0)


def test_an_absolute_tolerance_and_a_rule_on_data_not_stored(rule_city: City) -> None:
    lenient = replace(RULES[0], tolerance=1.0)
    ghost = ConsistencyRule(id="ghost", kind="sum", total="pop.nothing", parts=("pop.urban", "pop.rural"))
    cat = Catalogue(
        indicators=(TOTAL, URBAN, RURAL, indicator("pop.nothing", **YEARLY)), consistency=(lenient, ghost)
    )  # type: ignore[arg-type]
    r = assess(rule_city.wh, cat, as_of=date(2020, 12, 31), since=Y19, now=datetime(2021, 6, 1))
    rules = {row["rule_id"]: row for row in r.rules.to_dicts()}
    assert (rules["urban_rural"]["checked"], rules["urban_rural"]["violations"]) == (2, 0)  # |10 − 11| ≤ 1
    assert (rules["ghost"]["checked"], rules["ghost"]["violations"]) == (0, 0)


# --- rejects, raw records, grouping ----------------------------------------------------------------------


def test_rejects_count_against_their_feed_and_provider(tmp_path: Path) -> None:
    from citykpi.warehouse import IngestOptions
    from citykpi.warehouse.ingest.feeds import ingest_feed
    from tests._warehouse_support import write

    city = City(tmp_path)
    feed = Feed(id="daily_feed", provider="Bureau", indicators=("q.daily",))
    cat = Catalogue(indicators=(DAILY,), feeds=(feed,))
    text = "indicator_id,area_id,period,value\nq.daily,D1,2025-06-30,5\nq.daily,XX,2025-06-30,5\nq.daily,D2,2025-06-30,abc\n"
    ingest_feed(city.wh, cat, [write(tmp_path / "d.csv", text)], "daily_feed", IngestOptions(now=NOW))
    city.wh.con.execute("UPDATE batches SET finished_at = ?", [_at(30, 20)])
    r = assess(city.wh, cat, as_of=AS_OF, now=NOW, by="source")
    assert sorted(r.rejects.select("feed", "provider", "code", "rows").rows()) == [
        ("daily_feed", "Bureau", "IN202", 1),
        ("daily_feed", "Bureau", "IN402", 1),
    ]
    g = r.groups.row(0, named=True)
    assert (g["group"], g["values"], g["rejected"]) == ("daily_feed", 1, 2)
    assert g["accuracy"] == pytest.approx(1 / 3 * 100)
    owners = assess(city.wh, cat, as_of=AS_OF, now=NOW, by="owner").groups
    assert owners["group"].to_list() == ["Bureau"]
    # rejects cannot be told apart by indicator or area
    assert (
        assess(city.wh, cat, as_of=AS_OF, now=NOW, by="indicator").groups.row(0, named=True)["rejected"] == 0
    )


CASES = SourceTable(
    id="cases",
    columns={
        "key": "text",
        "opened": "timestamp",
        "closed": "timestamp",
        "area": "text",
        "agency": "text",
        "status": "text",
    },
    time_column="opened",
    area_column="area",
    key="key",
    filter="status <> 'Duplicate'",
    owner="Hotline",
    provider_column="agency",
    timeliness=Timeliness(done="closed", within=timedelta(hours=24)),
)


def test_raw_records_are_on_time_by_their_own_due_and_grouped_by_provider(tmp_path: Path) -> None:
    from citykpi.warehouse import IngestOptions, ingest
    from tests._warehouse_support import write

    city = City(tmp_path)
    text = (
        "key,opened,closed,area,agency,status\n"
        "1,2025-06-29 10:00,2025-06-29 20:00,D1,HPD,Closed\n"  # on time
        "2,2025-06-29 10:00,2025-06-30 11:00,D1,HPD,Closed\n"  # late (25 h)
        "3,2025-06-29 10:00,,D2,HPD,Open\n"  # due 30th 10:00, open at NOW: missing
        "4,2025-06-30 12:00,,D2,NYPD,Open\n"  # due 1 July 12:00: pending
        "5,2025-06-30 12:00,2025-06-30 13:00,D2,NYPD,Duplicate\n"  # excluded by the filter
        "6,2025-06-30 12:00,2025-06-30 13:00,D2,,Closed\n"  # no agency: the source's owner
        "7,2025-06-20 12:00,2025-06-20 13:00,D2,NYPD,Closed\n"  # before the judged week
    )
    cat = Catalogue(indicators=(), sources=(CASES,))
    ingest(
        city.wh, cat, [write(tmp_path / "c.csv", text)], IngestOptions(fmt="source", source="cases", now=NOW)
    )
    city.wh.con.execute("UPDATE batches SET finished_at = ?", [_at(30, 23)])  # loaded before NOW
    r = assess(city.wh, cat, as_of=AS_OF, now=NOW)
    rec = {(row["provider"], row["area_id"]): row for row in r.records.to_dicts()}
    hpd1, hpd2, nypd, hot = (
        rec[("HPD", "D1")],
        rec[("HPD", "D2")],
        rec[("NYPD", "D2")],
        rec[("Hotline", "D2")],
    )
    assert (hpd1["records"], hpd1["on_time"], hpd1["late"], hpd1["lag_hours"]) == (
        2,
        1,
        1,
        pytest.approx(17.5),
    )
    assert (hpd2["missing"], nypd["records"], nypd["excluded"], nypd["pending"]) == (1, 2, 1, 1)
    assert (hot["on_time"], hot["feed"]) == (1, "source:cases")
    owners = {row["group"]: row for row in r.groups.to_dicts()}
    assert owners["HPD"]["timeliness"] == pytest.approx(1 / 3 * 100)
    assert owners["NYPD"]["timeliness"] is None and owners["NYPD"]["status"] == "no_data"
    assert owners["Hotline"]["score"] == 100.0 and owners["Hotline"]["rank"] == 1
    assert (owners["HPD"]["records"], owners["HPD"]["excluded"]) == (3, 0)


def test_groups_by_indicator_and_area_with_names(feed_city: City) -> None:
    cat = Catalogue(indicators=(DAILY,))
    by_ind = assess(feed_city.wh, cat, as_of=AS_OF, now=NOW, by="indicator").groups
    assert by_ind.select("group", "name_en", "expected").rows() == [("q.daily", "q.daily", 14)]
    by_area = assess(feed_city.wh, cat, as_of=AS_OF, now=NOW, by="area").groups
    rows = {row["group"]: row for row in by_area.to_dicts()}
    assert rows["D2"]["completeness"] == 100.0 and rows["D1"]["completeness"] == pytest.approx(4 / 6 * 100)
    # ranked by score, best first
    assert by_area["group"].to_list()[0] == max(rows, key=lambda a: rows[a]["score"])


@pytest.mark.parametrize(
    ("score", "colour"),
    [
        (100.0, 0),
        (99.0, 0),
        (98.99, 1),
        (95.0, 1),
        (94.9, 2),
        (90.0, 2),
        (89.0, 3),
        (80.0, 3),
        (79.9, 4),
        (None, None),
    ],
)
def test_score_colours(score: float | None, colour: int | None) -> None:
    assert severity_of(score) == colour


def test_the_newest_data_of_yearly_values_is_the_end_of_their_year(rule_city: City, tmp_path: Path) -> None:
    from citykpi.quality.assess import newest_day

    yearly = Catalogue(indicators=(TOTAL, URBAN, RURAL))
    assert newest_day(rule_city.wh, yearly) == date(2020, 12, 31)  # values up to 2020 cover the year
    r = assess(rule_city.wh, yearly, as_of=date(2030, 1, 1), now=datetime(2031, 1, 1))
    assert r.meta["newest_data"] == "2020-12-31"
    (tmp_path / "empty").mkdir()
    assert newest_day(City(tmp_path / "empty").wh, yearly) is None


def test_the_newest_data_of_daily_values_is_their_day(feed_city: City) -> None:
    from citykpi.quality.assess import newest_day

    # daily values up to 30 June beside a monthly value for June and a yearly one for 2025: 30 June
    monthly = replace(TOTAL, frequency="monthly")
    cat = Catalogue(indicators=(DAILY, monthly, replace(URBAN, id="u")))
    feed_city.observe("pop.total", [("C", date(2025, 6, 1), 1.0)], freq_class=1)
    feed_city.observe("u", [("C", date(2025, 1, 1), 1.0)], freq_class=1)
    assert newest_day(feed_city.wh, cat) == date(2025, 6, 30)
    # a monthly value for July covers July
    feed_city.observe("pop.total", [("C", date(2025, 7, 1), 1.0)], freq_class=1)
    assert newest_day(feed_city.wh, cat) == date(2025, 7, 31)


def test_the_statement_count_does_not_grow_with_the_catalogue(rule_city: City) -> None:
    few = Catalogue(indicators=(TOTAL,))
    many = Catalogue(
        indicators=(TOTAL, URBAN, RURAL, *(replace(TOTAL, id=f"pop.extra{n}") for n in range(30))),
        consistency=RULES,
    )
    a = assess(rule_city.wh, few, as_of=date(2020, 12, 31), now=datetime(2021, 6, 1))
    b = assess(rule_city.wh, many, as_of=date(2020, 12, 31), now=datetime(2021, 6, 1))
    assert a.meta["statements"] == b.meta["statements"]
    text = explain(rule_city.wh, many, as_of=date(2020, 12, 31), now=datetime(2021, 6, 1))
    assert "pop.extra" not in text  # indicators are rows of a table, never SQL


def test_quality_writes_nothing_to_the_warehouse(feed_city: City) -> None:
    from tests._warehouse_support import checksum

    before = checksum(feed_city.wh)
    assess(feed_city.wh, Catalogue(indicators=(DAILY,), consistency=RULES[:1]), as_of=AS_OF, now=NOW)
    assert checksum(feed_city.wh) == before
