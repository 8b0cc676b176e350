"""Band classification in pure Python: the reference the engine's SQL is tested against.

Semantics (see :class:`~citykpi.catalogue.model.BandSet`):

* ``lower_is_better``: cuts ascend with severity; the colour is the most severe one whose cut the
  value is above (``>``; ``>=`` when ``inclusive``), green when below every cut.
* ``higher_is_better``: cuts descend with severity; the colour is the most severe one whose cut the
  value is below (``<``; ``<=`` when ``inclusive``), green when above every cut.
* ``band``: closed, nested ranges; the colour is the least severe range holding the value, red when
  outside every range.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from citykpi.catalogue.model import COLOURS, SEVERITY, BandSet, ScaleStep


def classify(value: float, bands: BandSet, direction: str) -> str:
    """The colour of ``value`` under ``bands`` for ``direction`` (NaN is refused)."""
    if math.isnan(value):
        raise ValueError("cannot classify NaN")
    if direction == "band":
        for colour in COLOURS:
            rng = bands.ranges.get(colour)
            if rng is not None and rng[0] <= value <= rng[1]:
                return colour
        return "red" if bands.ranges else "green"
    if direction not in ("lower_is_better", "higher_is_better"):
        raise ValueError(f"unknown direction {direction!r}")
    worse = direction == "lower_is_better"
    result = "green"
    for colour in COLOURS[1:]:
        cut = bands.cuts.get(colour)
        if cut is None:
            continue
        if worse:
            hit = value >= cut if bands.inclusive else value > cut
        else:
            hit = value <= cut if bands.inclusive else value < cut
        if hit:
            result = colour
    return result


def severity(value: float, bands: BandSet, direction: str) -> int:
    """The severity (0 = green … 4 = red) of ``value``."""
    return SEVERITY[classify(value, bands, direction)]


def order_problems(bands: BandSet, direction: str) -> list[tuple[str, str]]:
    """Problems with the order of the cut points or nesting of ranges, as (rule, message) pairs."""
    problems: list[tuple[str, str]] = []
    if direction == "band":
        previous: tuple[str, tuple[float, float]] | None = None
        for colour in COLOURS:
            rng = bands.ranges.get(colour)
            if rng is None:
                continue
            low, high = rng
            if low > high:
                problems.append(
                    ("CK035", f"the {colour} range [{_num(low)}, {_num(high)}] is empty (low > high)")
                )
                continue
            if previous is not None:
                pc, (pl, ph) = previous
                if not (low <= pl and high >= ph) or (low == pl and high == ph):
                    problems.append(
                        (
                            "CK031",
                            f"the {colour} range [{_num(low)}, {_num(high)}] must contain the {pc} range "
                            f"[{_num(pl)}, {_num(ph)}] and be wider (ranges widen with severity)",
                        )
                    )
            previous = (colour, (low, high))
        return problems
    ascending = direction == "lower_is_better"
    last: tuple[str, float] | None = None
    for colour in COLOURS[1:]:
        cut = bands.cuts.get(colour)
        if cut is None:
            continue
        if last is not None:
            lc, lv = last
            ok = cut > lv if ascending else cut < lv
            if not ok:
                word = "above" if ascending else "below"
                problems.append(
                    (
                        "CK030",
                        f"{colour} starts at {_num(cut)} but must be {word} {lc} ({_num(lv)}) "
                        f"for {direction}",
                    )
                )
                continue
        last = (colour, cut)
    return problems


def scale_to_bands(scale: Sequence[ScaleStep], direction: str) -> BandSet:
    """Cut points implied by an own scale (steps listed low → high with inclusive ``upto`` edges).

    A colour starts just above the ``upto`` of the step before its first step. For
    ``lower_is_better`` that edge value stays in the lower, better colour (``inclusive=False``);
    for ``higher_is_better`` the lower step is the worse one, so the edge goes to it
    (``inclusive=True``). Call :func:`scale_problems` first: the scale must be well ordered.
    """
    cuts: dict[str, float] = {}
    if direction == "lower_is_better":
        for prev, step in itertools.pairwise(scale):
            if step.colour != prev.colour and step.colour != "green" and prev.upto is not None:
                cuts.setdefault(step.colour, float(prev.upto))
        return BandSet(cuts=cuts, inclusive=False)
    # higher_is_better: colours improve upwards; a colour covers values up to its last step's upto.
    for step, nxt in itertools.pairwise(scale):
        if step.colour != nxt.colour and step.colour != "green" and step.upto is not None:
            cuts[step.colour] = float(step.upto)
    return BandSet(cuts=cuts, inclusive=True)


def scale_problems(scale: Sequence[ScaleStep], direction: str) -> list[tuple[str, str]]:
    """Problems with an own scale for ``direction``, as (rule, message) pairs."""
    problems: list[tuple[str, str]] = []
    if direction == "band":
        return [("CK033", "an own scale needs direction higher_is_better or lower_is_better, not band")]
    if len(scale) < 2:
        problems.append(("CK032", "a scale needs at least two steps"))
        return problems
    for i, step in enumerate(scale):
        last = i == len(scale) - 1
        if last and step.upto is not None:
            problems.append(("CK032", f"the last scale step ({step.label.pick('en')}) must have no 'upto'"))
        if not last and step.upto is None:
            problems.append(("CK032", f"scale step {i + 1} ({step.label.pick('en')}) needs 'upto'"))
    edges = [s.upto for s in scale if s.upto is not None]
    for a, b in itertools.pairwise(edges):
        if b <= a:
            problems.append(("CK032", f"scale steps must ascend: 'upto' {_num(b)} follows {_num(a)}"))
            break
    severities = [SEVERITY[s.colour] for s in scale]
    if direction == "lower_is_better":
        good = all(b >= a for a, b in itertools.pairwise(severities))
        best, end = severities[0], "first"
        want = "must not get better from low to high values (lower_is_better)"
    else:
        good = all(b <= a for a, b in itertools.pairwise(severities))
        best, end = severities[-1], "last"
        want = "must not get worse from low to high values (higher_is_better)"
    if not good:
        problems.append(("CK032", f"the scale's colours {want}"))
    if best != 0:
        problems.append(("CK032", f"the {end} step of a {direction} scale must be green (the best colour)"))
    return problems


def _num(x: float) -> str:
    return f"{x:g}"
