"""The alert lifecycle: pending → firing → resolved per indicator × area, with hysteresis.

Hand-computed episodes for each rule (set, clear level, for, clear_for in minutes and readings),
the incremental update against a single one, late readings, a changed rule, and the properties
of the issue: a series that never comes back past its clear level after firing never resolves; one
that stays past it for the declared time always does.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citykpi.catalogue.model import AlertRule, BandSet, Catalogue, Override, Persistence, Rollup, Thresholds
from citykpi.engine.alerting import episodes, firing, update_episodes
from tests.engine_helpers import City, indicator

T0 = datetime(2025, 12, 31, 14, 0)
STEP = timedelta(minutes=5)


def lel(**alert: object) -> object:
    """Gas %LEL: red from 35 (inclusive), orange from 20; an alert at red unless told otherwise."""
    rule = AlertRule(**{"colour": "red", **alert})  # type: ignore[arg-type]
    return indicator(
        "gas.lel",
        frequency="realtime",
        thresholds=Thresholds(bands=BandSet(cuts={"orange": 20.0, "red": 35.0}, inclusive=True)),
        rollup=Rollup(time="max", area="max"),
        alert=rule,
    )


def readings(city: City, values: list[float], *, area: str = "D1", start: datetime = T0) -> None:
    city.observe("gas.lel", [(area, start + STEP * n, v) for n, v in enumerate(values)], freq_class=2)


def table(city: City, ind: object, at: datetime | None = None) -> list[dict[str, object]]:
    frame = episodes(city.wh, Catalogue(indicators=(ind,)), at=at)  # type: ignore[arg-type]
    return (
        frame.sort("started_at")
        .select(
            "area_id",
            "state",
            "started_at",
            "fired_at",
            "ended_at",
            "peak",
            "peak_at",
            "worst_status",
            "readings",
        )
        .to_dicts()
    )


def stored(city: City) -> pl.DataFrame:
    return city.wh.con.frame("SELECT * FROM alert_episodes ORDER BY indicator_key, area_key, started_at")


def new_city(folder: Path) -> City:
    folder.mkdir(parents=True, exist_ok=True)
    return City(folder)


def t(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def city(tmp_path: Path) -> City:
    return City(tmp_path)


# --- hand-computed transitions --------------------------------------------------------------------


def test_pending_firing_resolved_with_hysteresis(city: City) -> None:
    ind = lel(clear=30.0, for_=Persistence(duration=timedelta(minutes=15)))
    #          14:00 :05  :10  :15  :20  :25  :30  :35
    readings(city, [10, 36, 37, 34, 38, 31, 29, 12])
    (ep,) = table(city, ind)
    # set at 14:05 (36 ≥ 35); 34 and 31 are below the cut but not below 30: held; fires after 15 minutes
    # (14:20); the 29 at 14:30 clears it
    assert ep == {
        "area_id": "D1",
        "state": "resolved",
        "started_at": t(5),
        "fired_at": t(20),
        "ended_at": t(30),
        "peak": 38.0,
        "peak_at": t(20),
        "worst_status": "red",
        "readings": 5,
    }
    cat = Catalogue(indicators=(ind,))  # type: ignore[arg-type]
    assert firing(city.wh, cat, t(12))[["state", "started_at", "minutes"]].row(0) == ("pending", t(5), 7.0)
    assert firing(city.wh, cat, t(22))[["state", "fired_at"]].row(0) == ("firing", t(20))
    assert firing(city.wh, cat, t(30)).height == 0


def test_without_a_clear_level_the_first_reading_below_the_cut_ends_it(city: City) -> None:
    ind = lel(for_=Persistence(duration=timedelta(minutes=15)))
    readings(city, [10, 36, 37, 34, 38, 40, 41, 12])
    eps = table(city, ind)
    # 36, 37 then 34 (below 35): cancelled before firing; 38 at 14:20 starts again, fires at 14:35?
    # no: 14:20 + 15 min = 14:35, where 12 ends it first: cancelled too
    assert [(e["started_at"], e["fired_at"], e["ended_at"], e["state"]) for e in eps] == [
        (t(5), None, t(15), "cancelled"),
        (t(20), None, t(35), "cancelled"),
    ]


def test_a_series_flapping_around_its_cut_is_one_episode_with_hysteresis(city: City) -> None:
    flaps = [36, 34, 36, 33, 37, 32, 36, 31, 29]
    readings(city, flaps)
    with_clear = table(city, lel(clear=30.0))
    assert [(e["started_at"], e["fired_at"], e["ended_at"]) for e in with_clear] == [(t(0), t(0), t(40))]
    without = table(city, lel())
    assert len(without) == 4  # every dip below 35 resolves it, every rise fires it again
    assert [e["started_at"] for e in without] == [t(0), t(10), t(20), t(30)]


def test_clear_for_a_duration(city: City) -> None:
    ind = lel(clear=30.0, clear_for=Persistence(duration=timedelta(minutes=10)))
    #          :00 :05 :10 :15 :20 :25 :30 :35
    readings(city, [40, 29, 28, 31, 29, 29, 28, 50])
    (ep, again) = table(city, ind)
    # 29, 28 then 31 (held, breaks the run); 29 from 14:20: clear for 10 minutes at 14:30
    assert (ep["started_at"], ep["ended_at"], ep["readings"]) == (t(0), t(30), 6)
    assert (again["started_at"], again["state"]) == (t(35), "firing")


def test_for_and_clear_for_in_readings(city: City) -> None:
    ind = lel(clear=30.0, for_=Persistence(readings=3), clear_for=Persistence(readings=2))
    readings(city, [36, 33, 36, 20, 25, 10])
    (ep,) = table(city, ind)
    # pending at the 1st reading, firing at the 3rd; clear at the 2nd clear reading in a row
    assert (ep["started_at"], ep["fired_at"], ep["ended_at"], ep["readings"]) == (t(0), t(10), t(20), 4)


def test_an_orange_alert_records_the_worst_colour_and_the_peak(city: City) -> None:
    ind = lel(colour="orange", clear=15.0)
    readings(city, [22, 41, 41, 30, 14])
    (ep,) = table(city, ind)
    assert (ep["worst_status"], ep["peak"], ep["peak_at"], ep["ended_at"]) == ("red", 41.0, t(5), t(20))


def test_area_overrides_move_the_cut_of_one_area(city: City) -> None:
    base = lel(clear=30.0)
    red_from_45 = Override(BandSet(cuts={"orange": 20.0, "red": 45.0}, inclusive=True), area="D2")
    ind = replace(base, thresholds=replace(base.thresholds, overrides=(red_from_45,)))  # type: ignore[type-var, attr-defined]
    readings(city, [40, 10], area="D1")
    readings(city, [40, 10], area="D2")
    eps = table(city, ind)
    assert [e["area_id"] for e in eps] == ["D1"]  # 40 is red in D1, only orange in D2 (red from 45)


# --- the stored table and its updates ------------------------------------------------------------


def test_an_update_stores_the_episodes_and_its_progress(city: City) -> None:
    ind = lel(clear=30.0, for_=Persistence(duration=timedelta(minutes=15)))
    readings(city, [10, 36, 37, 34, 38, 31, 29, 12])
    cat = Catalogue(indicators=(ind,))  # type: ignore[arg-type]
    report = update_episodes(city.wh, cat, t(40))
    assert (report.rules, report.full, report.episodes) == (1, 1, 1)
    rows = stored(city)
    assert rows.height == 1 and rows["ended_at"][0] == t(30)
    (progress,) = city.wh.con.execute("SELECT processed_at, processed_batch FROM alert_progress").fetchall()
    assert progress == (t(40), 1)
    # nothing new: the same table
    update_episodes(city.wh, cat, t(45))
    assert stored(city).equals(rows)


def test_updating_every_five_minutes_or_once_gives_the_same_episodes(tmp_path: Path) -> None:
    ind = lel(clear=30.0, for_=Persistence(duration=timedelta(minutes=10)), clear_for=Persistence(readings=2))
    values = [10, 36, 37, 34, 38, 31, 29, 33, 29, 28, 12, 40, 41, 36, 35, 20]
    cat = Catalogue(indicators=(ind,))  # type: ignore[arg-type]
    once, often = new_city(tmp_path / "a"), new_city(tmp_path / "b")
    for c in (once, often):
        readings(c, values)
        readings(c, list(reversed(values)), area="S1")
    update_episodes(once.wh, cat, t(5 * len(values)))
    for n in range(len(values) + 1):
        update_episodes(often.wh, cat, t(5 * n - 2))
    assert stored(once).equals(stored(often))
    assert stored(once).height >= 3


def test_each_batch_followed_as_it_arrives_matches_a_single_update(tmp_path: Path) -> None:
    """Micro-batches: every 5 minutes a batch of readings arrives and the lifecycle is updated."""
    ind = lel(clear=30.0, for_=Persistence(readings=2))
    values = [36, 37, 31, 29, 40, 41, 42, 28]
    cat = Catalogue(indicators=(ind,))  # type: ignore[arg-type]
    live, later = new_city(tmp_path / "a"), new_city(tmp_path / "b")
    for n, v in enumerate(values):
        live.observe("gas.lel", [("D1", t(5 * n), float(v))], freq_class=2)
        update_episodes(live.wh, cat, t(5 * n))
    readings(later, values)
    update_episodes(later.wh, cat, t(5 * len(values)))
    assert stored(live).equals(stored(later))


def test_a_late_reading_restarts_only_its_series(city: City) -> None:
    ind = lel(clear=30.0)
    cat = Catalogue(indicators=(ind,))  # type: ignore[arg-type]
    readings(city, [10, 36, 20, 10])  # one episode 14:05–14:10
    readings(city, [36, 36, 36], area="D2")  # firing, open
    update_episodes(city.wh, cat, t(20))
    # a reading of 14:12 arrives late: 36 sets D1 again, until 14:15's 10
    city.observe("gas.lel", [("D1", t(12), 36.0)], freq_class=2)
    # and D2 (seeded, open) gets readings after its last one, some stamped before the progress
    city.observe("gas.lel", [("D2", t(15), 20.0), ("D2", t(25), 50.0)], freq_class=2)
    update_episodes(city.wh, cat, t(30))
    fresh = new_city(city.wh.path.parent / "fresh")
    readings(fresh, [10, 36, 20, 10])
    fresh.observe("gas.lel", [("D1", t(12), 36.0)], freq_class=2)
    readings(fresh, [36, 36, 36], area="D2")
    fresh.observe("gas.lel", [("D2", t(15), 20.0), ("D2", t(25), 50.0)], freq_class=2)
    update_episodes(fresh.wh, cat, t(30))
    assert stored(city).equals(stored(fresh))
    d1 = table(city, ind, t(30))
    assert [(e["area_id"], e["started_at"], e["ended_at"]) for e in d1] == [
        ("D2", t(0), t(15)),
        ("D1", t(5), t(10)),
        ("D1", t(12), t(15)),
        ("D2", t(25), None),
    ]


def test_a_changed_rule_is_followed_again_from_the_start(city: City) -> None:
    readings(city, [36, 34, 36, 29])
    update_episodes(city.wh, Catalogue(indicators=(lel(),)), t(20))  # type: ignore[arg-type]
    assert stored(city).height == 2
    update_episodes(city.wh, Catalogue(indicators=(lel(clear=30.0),)), t(20))  # type: ignore[arg-type]
    assert stored(city).height == 1


def test_an_earlier_instant_is_replayed_from_the_readings(city: City) -> None:
    ind = lel(clear=30.0, for_=Persistence(duration=timedelta(minutes=10)))
    cat = Catalogue(indicators=(ind,))  # type: ignore[arg-type]
    readings(city, [10, 36, 37, 40, 38, 29])
    update_episodes(city.wh, cat, t(60))
    # as of 14:12 the episode was pending, its peak so far 37
    (ep,) = table(city, ind, t(12))
    assert (ep["state"], ep["peak"], ep["readings"], ep["ended_at"]) == ("pending", 37.0, 2, None)
    assert stored(city)["ended_at"][0] == t(25)  # replaying wrote nothing


# --- properties -----------------------------------------------------------------------------------

_settings = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_settings
@given(
    tail=st.lists(st.floats(min_value=30.0, max_value=100.0, allow_nan=False), max_size=20),
    for_n=st.integers(min_value=1, max_value=3),
)
def test_a_series_that_never_comes_back_below_the_clear_level_never_resolves(
    tmp_path_factory: pytest.TempPathFactory, tail: list[float], for_n: int
) -> None:
    city = City(tmp_path_factory.mktemp("never"))
    ind = lel(clear=30.0, for_=Persistence(readings=for_n))
    # fires after for_n readings at 40, then never below 30
    readings(city, [40.0] * for_n + tail)
    (ep,) = table(city, ind)
    assert ep["state"] == "firing" and ep["ended_at"] is None


@_settings
@given(
    before=st.lists(st.floats(min_value=0.0, max_value=100.0, allow_nan=False), max_size=12),
    clear_minutes=st.integers(min_value=0, max_value=30),
    noise=st.lists(st.floats(min_value=0.0, max_value=29.9, allow_nan=False), min_size=8, max_size=8),
)
def test_a_series_that_stays_clear_for_the_declared_time_always_resolves(
    tmp_path_factory: pytest.TempPathFactory, before: list[float], clear_minutes: int, noise: list[float]
) -> None:
    city = City(tmp_path_factory.mktemp("resolves"))
    ind = lel(clear=30.0, clear_for=Persistence(duration=timedelta(minutes=clear_minutes)))
    # anything, then a firing reading, then below 30 for 35 minutes (≥ any clear_for drawn)
    values = [*before, 40.0, *noise]
    readings(city, values)
    eps = table(city, ind)
    assert eps and eps[-1]["state"] == "resolved" and eps[-1]["ended_at"] is not None
    # the first clear reading comes 5 minutes after the last one at 40, and the run confirms at the
    # first reading at least clear_for after it
    last_set = t(5 * len(before))
    wait = 5 * -(-clear_minutes // 5)
    assert eps[-1]["ended_at"] == last_set + timedelta(minutes=5 + wait)


@_settings
@given(
    values=st.lists(st.sampled_from([10.0, 25.0, 31.0, 34.0, 35.0, 36.0, 50.0]), min_size=1, max_size=24),
    cuts=st.lists(st.integers(min_value=0, max_value=24), max_size=4),
)
def test_any_update_schedule_gives_the_single_update_table(
    tmp_path_factory: pytest.TempPathFactory, values: list[float], cuts: list[int]
) -> None:
    ind = lel(clear=30.0, for_=Persistence(duration=timedelta(minutes=10)), clear_for=Persistence(readings=2))
    cat = Catalogue(indicators=(ind,))  # type: ignore[arg-type]
    once, often = City(tmp_path_factory.mktemp("once")), City(tmp_path_factory.mktemp("often"))
    for c in (once, often):
        readings(c, values)
    end = t(5 * len(values))
    update_episodes(once.wh, cat, end)
    for cut in sorted(cuts):
        update_episodes(often.wh, cat, t(5 * cut))
    update_episodes(often.wh, cat, end)
    assert stored(once).equals(stored(often))
