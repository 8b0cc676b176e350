"""The reference band classifier: exact edges, own scales, and monotonicity (Hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from citykpi.catalogue.bands import classify, order_problems, scale_problems, scale_to_bands, severity
from citykpi.catalogue.model import COLOURS, SEVERITY, BandSet, ScaleStep, Text

AQI = BandSet(cuts={"blue": 50, "yellow": 100, "orange": 150, "red": 200})


@pytest.mark.parametrize(
    ("value", "inclusive", "colour"),
    [
        (0, False, "green"),
        (50, False, "green"),
        (50.01, False, "blue"),
        (100, False, "blue"),
        (100, True, "yellow"),
        (200, False, "orange"),
        (200, True, "red"),
        (1e9, False, "red"),
        (-5, True, "green"),
    ],
)
def test_lower_is_better_edges(value: float, inclusive: bool, colour: str) -> None:
    bands = BandSet(cuts=AQI.cuts, inclusive=inclusive)
    assert classify(value, bands, "lower_is_better") == colour


@pytest.mark.parametrize(
    ("value", "inclusive", "colour"),
    [
        (99, False, "green"),
        (95, False, "green"),
        (95, True, "blue"),
        (90, False, "blue"),
        (89.9, False, "yellow"),
        (10, False, "red"),
    ],
)
def test_higher_is_better_edges(value: float, inclusive: bool, colour: str) -> None:
    bands = BandSet(cuts={"blue": 95, "yellow": 90, "red": 80}, inclusive=inclusive)
    assert classify(value, bands, "higher_is_better") == colour


@pytest.mark.parametrize(
    ("value", "colour"),
    [
        (1.0, "green"),
        (0.3, "green"),
        (2.0, "green"),
        (0.25, "yellow"),
        (4.5, "orange"),
        (0.05, "red"),
        (6, "red"),
    ],
)
def test_band_direction(value: float, colour: str) -> None:
    bands = BandSet(ranges={"green": (0.3, 2.0), "yellow": (0.2, 4.0), "orange": (0.1, 5.0)})
    assert classify(value, bands, "band") == colour


def test_missing_colours_and_empty_bands() -> None:
    bands = BandSet(cuts={"yellow": 10, "red": 20})
    assert [classify(v, bands, "lower_is_better") for v in (5, 15, 25)] == ["green", "yellow", "red"]
    assert classify(5, BandSet(), "lower_is_better") == "green"
    assert classify(5, BandSet(), "band") == "green"
    assert severity(25, bands, "lower_is_better") == 4


def test_nan_and_unknown_direction() -> None:
    with pytest.raises(ValueError):
        classify(float("nan"), AQI, "lower_is_better")
    with pytest.raises(ValueError):
        classify(1, AQI, "sideways")


def _step(colour: str, upto: float | None, label: str = "") -> ScaleStep:
    return ScaleStep(Text(label, label), colour, upto)


AQI_SCALE = (
    _step("green", 50, "优"),
    _step("blue", 100, "良"),
    _step("yellow", 150, "轻度污染"),
    _step("orange", 200, "中度污染"),
    _step("red", 300, "重度污染"),
    _step("red", None, "严重污染"),
)


def test_aqi_scale_becomes_the_design_cuts() -> None:
    bands = scale_to_bands(AQI_SCALE, "lower_is_better")
    assert bands == BandSet(cuts={"blue": 50, "yellow": 100, "orange": 150, "red": 200}, inclusive=False)
    # The step's upto stays in the step (优 is 0–50 inclusive).
    assert classify(50, bands, "lower_is_better") == "green"
    assert classify(51, bands, "lower_is_better") == "blue"
    assert classify(300, bands, "lower_is_better") == "red"
    assert scale_problems(AQI_SCALE, "lower_is_better") == []


def test_higher_is_better_scale_keeps_upto_in_the_lower_worse_step() -> None:
    scale = (_step("red", 50), _step("red", 60), _step("yellow", 80), _step("green", None))
    bands = scale_to_bands(scale, "higher_is_better")
    assert bands == BandSet(cuts={"red": 60, "yellow": 80}, inclusive=True)
    assert [classify(v, bands, "higher_is_better") for v in (60, 60.5, 80, 81)] == [
        "red",
        "yellow",
        "yellow",
        "green",
    ]
    assert scale_problems(scale, "higher_is_better") == []


@pytest.mark.parametrize(
    ("scale", "direction", "words"),
    [
        ((_step("green", 50), _step("blue", 40), _step("red", None)), "lower_is_better", "must ascend"),
        (
            (_step("green", 50), _step("red", 60), _step("blue", None)),
            "lower_is_better",
            "must not get better",
        ),
        ((_step("blue", 50), _step("red", None)), "lower_is_better", "first step"),
        ((_step("green", 50), _step("red", 60)), "lower_is_better", "must have no 'upto'"),
        ((_step("green", None), _step("red", None)), "lower_is_better", "needs 'upto'"),
        ((_step("red", 50), _step("green", None)), "band", "not band"),
        ((_step("green", None),), "lower_is_better", "at least two"),
        ((_step("red", 50), _step("yellow", None)), "higher_is_better", "last step"),
    ],
)
def test_scale_problems(scale: tuple[ScaleStep, ...], direction: str, words: str) -> None:
    assert any(words in message for _, message in scale_problems(scale, direction))


def test_order_problems() -> None:
    assert order_problems(AQI, "lower_is_better") == []
    assert [r for r, _ in order_problems(AQI, "higher_is_better")] == ["CK030"] * 3
    assert order_problems(BandSet(ranges={"green": (1, 2), "yellow": (0, 3)}), "band") == []
    assert [r for r, _ in order_problems(BandSet(ranges={"green": (1, 2), "yellow": (1.5, 3)}), "band")] == [
        "CK031"
    ]
    assert [r for r, _ in order_problems(BandSet(ranges={"green": (3, 2)}), "band")] == ["CK035"]


# --- property tests ------------------------------------------------------------------------

_finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def band_sets(draw: st.DrawFn, direction: str) -> BandSet:
    """A random valid BandSet for ``direction`` (a random subset of colours, ordered cuts/nested ranges)."""
    inclusive = draw(st.booleans())
    if direction == "band":
        colours = draw(
            st.lists(st.sampled_from(COLOURS[:-1]), min_size=1, unique=True).map(
                lambda cs: sorted(cs, key=SEVERITY.__getitem__)
            )
        )
        centre = draw(_finite)
        widths = sorted(
            draw(
                st.lists(
                    st.floats(min_value=0.01, max_value=1e5),
                    min_size=len(colours),
                    max_size=len(colours),
                    unique=True,
                )
            )
        )
        ranges = {
            c: (centre - w, centre + w * draw(st.floats(min_value=0.5, max_value=2)))
            for c, w in zip(colours, widths, strict=True)
        }
        assume(not order_problems(BandSet(ranges=ranges), "band"))
        return BandSet(ranges=ranges, inclusive=inclusive)
    colours = draw(
        st.lists(st.sampled_from(COLOURS[1:]), min_size=1, unique=True).map(
            lambda cs: sorted(cs, key=SEVERITY.__getitem__)
        )
    )
    points = sorted(draw(st.lists(_finite, min_size=len(colours), max_size=len(colours), unique=True)))
    if direction == "higher_is_better":
        points.reverse()
    return BandSet(cuts=dict(zip(colours, points, strict=True)), inclusive=inclusive)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), direction=st.sampled_from(["lower_is_better", "higher_is_better"]))
def test_worse_value_never_gets_a_better_colour(data: st.DataObject, direction: str) -> None:
    bands = data.draw(band_sets(direction))
    assert not order_problems(bands, direction)
    a, b = sorted(data.draw(st.lists(_finite, min_size=2, max_size=2)))
    # For lower_is_better b is the worse value; for higher_is_better a is.
    better, worse = (a, b) if direction == "lower_is_better" else (b, a)
    assert severity(worse, bands, direction) >= severity(better, bands, direction)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_band_direction_moving_away_from_green_never_improves(data: st.DataObject) -> None:
    bands = data.draw(band_sets("band"))
    inner = next(r for c, r in sorted(bands.ranges.items(), key=lambda kv: SEVERITY[kv[0]]))
    start = data.draw(st.floats(min_value=inner[0], max_value=inner[1]))
    d1, d2 = sorted(data.draw(st.lists(st.floats(min_value=0, max_value=1e6), min_size=2, max_size=2)))
    sign = data.draw(st.sampled_from([-1, 1]))
    near, far = start + sign * d1, start + sign * d2
    assert severity(far, bands, "band") >= severity(near, bands, "band")


@settings(max_examples=200, deadline=None)
@given(data=st.data(), direction=st.sampled_from(["lower_is_better", "higher_is_better"]))
def test_inclusive_only_matters_exactly_at_a_cut(data: st.DataObject, direction: str) -> None:
    bands = data.draw(band_sets(direction))
    value = data.draw(_finite)
    flipped = BandSet(cuts=bands.cuts, inclusive=not bands.inclusive)
    if value not in bands.cuts.values():
        assert classify(value, bands, direction) == classify(value, flipped, direction)
    else:
        hi, lo = (bands, flipped) if bands.inclusive else (flipped, bands)
        assert severity(value, hi, direction) > severity(value, lo, direction)
