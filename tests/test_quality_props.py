"""Property tests of the pure logic behind data quality: due times, breakdown texts, score colours,
judged periods."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from citykpi.catalogue.model import Indicator, Text, Thresholds
from citykpi.catalogue.parser import parse_due
from citykpi.engine.calendar import trunc
from citykpi.quality.report import severity_of
from citykpi.quality.tables import DEFAULT_PERIODS, quality_grain, window
from citykpi.warehouse.ingest.shape import dims_text


@given(st.integers(0, 23), st.integers(0, 59))
def test_next_day_is_hours_after_the_period_end(hh: int, mm: int) -> None:
    assert parse_due(f"{hh:02d}:{mm:02d} next day") == timedelta(hours=hh, minutes=mm)
    assert parse_due(f"{hh}:{mm:02d}  next  day ") == timedelta(hours=hh, minutes=mm)


@given(st.integers(1, 10_000), st.sampled_from(["m", "h", "d", "w"]))
def test_a_due_duration_reads_like_max_staleness(n: int, unit: str) -> None:
    per = {
        "m": timedelta(minutes=1),
        "h": timedelta(hours=1),
        "d": timedelta(days=1),
        "w": timedelta(weeks=1),
    }
    assert parse_due(f"{n}{unit}") == n * per[unit]


@given(st.text(min_size=1, max_size=12).filter(lambda s: ":" not in s and not s.strip()[:1].isdigit()))
def test_anything_else_is_no_due(text: str) -> None:
    assert parse_due(text) is None


def _parse(text: str) -> dict[str, str]:
    out = {}
    for pair in text.split(";") if text else []:
        k, _, v = pair.partition("=")
        out[k] = v.replace("%3D", "=").replace("%3B", ";").replace("%25", "%")
    return out


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)


@given(st.dictionaries(names, st.text(min_size=1, max_size=10), max_size=4))
def test_breakdown_text_is_canonical_and_reversible(dims: dict[str, str]) -> None:
    text = dims_text(dims)
    assert _parse(text) == dims  # escaped values come back whole, whatever they hold (';', '=', '%')
    assert text == dims_text(dict(reversed(list(dims.items()))))  # the order written does not matter
    assert list(_parse(text)) == sorted(dims)


@given(st.floats(0, 100), st.floats(0, 100))
def test_a_better_score_never_gets_a_worse_colour(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    sa, sb = severity_of(lo), severity_of(hi)
    assert sa is not None and sb is not None and sb <= sa


FREQ = st.sampled_from(["daily", "weekly", "monthly", "quarterly", "yearly", "hourly"])


@given(FREQ, st.dates(date(1950, 1, 1), date(2150, 12, 31)), st.none() | st.integers(0, 4000))
def test_judged_periods_have_ended_and_start_on_a_period(freq: str, as_of: date, back: int | None) -> None:
    ind = Indicator(
        id="a.b", name=Text("a", "a"), kind="kpi", domain="d", unit="count", levels=("city",),
        frequency=freq, direction="higher_is_better", thresholds=Thresholds(),
    )  # fmt: skip
    since = as_of - timedelta(days=back) if back is not None else None
    w = window(ind, as_of, since)
    grain = quality_grain(ind)
    end = as_of + timedelta(days=1)
    assert w.lo <= w.hi
    assert w.hi.date() == trunc(grain, end) <= end  # the last judged period has ended by the end of as_of
    assert trunc(grain, w.lo.date()) == w.lo.date()
    if since is None:
        from citykpi.engine.calendar import shift

        assert w.lo.date() == min(shift(grain, w.hi.date(), -DEFAULT_PERIODS[grain]), w.hi.date())
    else:
        assert w.lo.date() == min(trunc(grain, since), w.hi.date())
