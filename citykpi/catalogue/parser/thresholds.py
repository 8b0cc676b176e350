"""Thresholds and bands: cut points, ranges, overrides, own scales and ``valid_range``."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import replace
from typing import Any

from citykpi import vocab
from citykpi.catalogue import model
from citykpi.catalogue.bands import scale_problems, scale_to_bands
from citykpi.catalogue.parser.reader import (
    OVERRIDE_KEYS,
    SCALE_STEP_KEYS,
    THRESHOLD_KEYS,
    _as_number,
    _Reader,
    describe,
)
from citykpi.catalogue.yamlsafe import YMap, YSeq
from citykpi.errors import Location


def _pair(r: _Reader, raw: Any, loc: Location, what: str, allow_null: bool) -> tuple[Any, Any] | None:
    if not isinstance(raw, YSeq) or len(raw) != 2:
        r.report("CK012", f"{what} must be a list of two numbers [low, high], not {describe(raw)}", loc)
        return None
    out: list[float | None] = []
    for i, item in enumerate(raw):
        if item is None and allow_null:
            out.append(None)
            continue
        num = _as_number(item)
        if num is None or not math.isfinite(num):
            r.report("CK012", f"{what} must hold numbers, not {describe(item)}", raw.item_loc(i))
            return None
        out.append(num)
    low, high = out
    if low is not None and high is not None and low > high:
        r.report("CK035", f"{what} [{low:g}, {high:g}] has its low end above its high end", loc)
        return None
    return (low, high)


def _valid_range(r: _Reader, m: YMap, what: str) -> tuple[float | None, float | None] | None:
    if "valid_range" not in m:
        return None
    pair = _pair(r, m["valid_range"], m.value_loc("valid_range"), f"valid_range of {what}", allow_null=True)
    return pair


def _scale(r: _Reader, m: YMap, what: str) -> tuple[model.ScaleStep, ...]:
    if "scale" not in m:
        return ()
    seq = r.sequence(m["scale"], m.value_loc("scale"), f"the scale of {what}")
    if seq is None:
        return ()
    steps: list[model.ScaleStep] = []
    for i, item in enumerate(seq):
        sm = r.mapping(item, seq.item_loc(i), f"a scale step of {what}")
        if sm is None:
            continue
        step_what = f"scale step {i + 1} of {what}"
        r.keys(sm, SCALE_STEP_KEYS, ("label", "colour"), step_what)
        label = r.name(sm, "label", step_what) if "label" in sm else model.Text("", "")
        colour = r.choice(sm, "colour", model.COLOURS, step_what, "green")
        upto = r.number(sm, "upto", step_what)
        steps.append(model.ScaleStep(label, colour, upto))
    return tuple(steps)


def _apply_scale(
    r: _Reader,
    m: YMap,
    what: str,
    direction: str,
    scale: tuple[model.ScaleStep, ...],
    thresholds: model.Thresholds,
) -> model.Thresholds:
    """Turn an own scale into the thresholds' cut points (overrides keep their own changes)."""
    if thresholds.bands.cuts or thresholds.bands.ranges:
        r.report(
            "CK034",
            f"{what} has both a scale and threshold cut points",
            m.value_loc("thresholds"),
            "keep one: the scale implies the cut points",
        )
        return thresholds
    tm = m.get("thresholds")
    if isinstance(tm, YMap) and "inclusive" in tm:
        r.report(
            "CK034",
            f"{what} has a scale, which fixes the edges itself: each 'upto' belongs to its step",
            tm.key_loc("inclusive"),
            "remove inclusive",
        )
    problems = scale_problems(scale, direction)
    for rule, message in problems:
        r.report(rule, f"{message} ({what})", m.value_loc("scale"))
    if problems:
        return thresholds
    bands = scale_to_bands(scale, direction)
    overrides = tuple(
        replace(o, bands=model.BandSet(cuts={**bands.cuts, **o.bands.cuts}, inclusive=bands.inclusive))
        for o in thresholds.overrides
    )
    return replace(thresholds, bands=bands, overrides=overrides)


def _cuts(
    r: _Reader, m: YMap, what: str, direction: str | None, colours: Collection[str]
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Cut points (or ranges, for direction band) by colour; with ``direction`` None (it was not
    understood, and has been reported) the values are read without judging their shape."""
    cuts: dict[str, float] = {}
    ranges: dict[str, tuple[float, float]] = {}
    for colour in model.COLOURS:
        if colour not in m or colour not in colours:
            continue
        raw, loc = m[colour], m.value_loc(colour)
        if direction is None:
            if isinstance(raw, YSeq):
                pair = _pair(r, raw, loc, f"the {colour} range of {what}", allow_null=False)
                if pair is not None:
                    ranges[colour] = (float(pair[0]), float(pair[1]))
                continue
            if (num := _cut_number(r, raw, loc, colour, what)) is not None:
                cuts[colour] = num
            continue
        if direction == "band":
            if colour == "red":
                r.report("CK033", f"red needs no range in {what}: a value outside every range is red", loc)
                continue
            if not isinstance(raw, YSeq):
                r.report(
                    "CK033",
                    f"{colour} of {what} must be a range [low, high] for direction band, not {describe(raw)}",
                    loc,
                    f"write {colour}: [low, high]",
                )
                continue
            pair = _pair(r, raw, loc, f"the {colour} range of {what}", allow_null=False)
            if pair is not None:
                ranges[colour] = (float(pair[0]), float(pair[1]))
        else:
            if colour == "green":
                r.report(
                    "CK033",
                    f"green needs no cut point in {what}: green is everything better than the first cut",
                    loc,
                    "remove green",
                )
                continue
            if isinstance(raw, YSeq):
                r.report(
                    "CK033",
                    f"{colour} of {what} is a range, but ranges are only for direction band",
                    loc,
                    f"write {colour}: <number> (where {colour} starts)",
                )
                continue
            if (num := _cut_number(r, raw, loc, colour, what)) is not None:
                cuts[colour] = num
    return cuts, ranges


def _cut_number(r: _Reader, raw: Any, loc: Location, colour: str, what: str) -> float | None:
    """A cut point as a finite number, or None after reporting CK012."""
    num = _as_number(raw)
    if num is None or not math.isfinite(num):
        r.report("CK012", f"{colour} of {what} must be a number, not {describe(raw)}", loc)
        return None
    return num


def _thresholds(r: _Reader, m: YMap, what: str, direction: str | None, iid: str) -> model.Thresholds:
    tm = r.section(m, "thresholds", f"thresholds of {what}")
    if tm is None:
        return model.Thresholds()
    t_what = f"thresholds of {what}"
    r.keys(tm, THRESHOLD_KEYS, (), t_what)
    r.remember(iid, tm, "thresholds.")
    basis = r.choice(tm, "basis", vocab.BASES.names(), t_what, "absolute")
    inclusive = r.boolean(tm, "inclusive", t_what, False)
    for_periods = r.integer(tm, "for_periods", t_what, 1)
    if for_periods < 1 or for_periods > 366:
        r.report("CK013", f"for_periods of {what} must be between 1 and 366", tm.value_loc("for_periods"))
        for_periods = 1
    limit = r.number(tm, "limit", t_what)
    if limit is not None and limit <= 0:
        r.report("CK013", f"limit of {what} must be positive", tm.value_loc("limit"))
        limit = None
    baseline = r.integer(tm, "baseline", t_what)
    if baseline is not None and basis != "anomaly":
        r.report(
            "CK013",
            f"baseline of {what} only applies to basis anomaly (the basis is {basis})",
            tm.key_loc("baseline"),
            "remove baseline, or set basis: anomaly",
        )
        baseline = None
    elif baseline is not None and not model.MIN_BASELINE_PERIODS <= baseline <= model.MAX_BASELINE_PERIODS:
        r.report(
            "CK013",
            f"baseline of {what} must be between {model.MIN_BASELINE_PERIODS} and "
            f"{model.MAX_BASELINE_PERIODS} comparable periods",
            tm.value_loc("baseline"),
        )
        baseline = None
    cuts, ranges = _cuts(r, tm, t_what, direction, model.COLOURS)
    bands = model.BandSet(cuts=cuts, ranges=ranges, inclusive=inclusive)
    overrides: list[model.Override] = []
    if "overrides" in tm:
        seq = r.sequence(tm["overrides"], tm.value_loc("overrides"), f"overrides of {what}")
        for i, item in enumerate(seq or ()):
            assert seq is not None
            om = r.mapping(item, seq.item_loc(i), f"an override of {what}")
            if om is None:
                continue
            o_what = f"override {i + 1} of {what}"
            r.keys(om, OVERRIDE_KEYS, (), o_what)
            level = area = None
            if "level" in om:
                level = r.choice(om, "level", model.LEVELS, o_what, "", rule="CK081") or None
            if "area" in om:
                raw = om["area"]
                if isinstance(raw, str):
                    area = raw
                else:
                    hint = (
                        f'quote it: "{raw}"' if isinstance(raw, int) and not isinstance(raw, bool) else None
                    )
                    r.report(
                        "CK012",
                        f"area of {o_what} must be text (an area id), not {describe(raw)}",
                        om.value_loc("area"),
                        hint,
                    )
            if ("level" in om) == ("area" in om):
                r.report(
                    "CK011" if "level" not in om else "CK013",
                    f"{o_what} needs exactly one of 'level' or 'area'",
                    om.loc,
                )
            o_cuts, o_ranges = _cuts(r, om, o_what, direction, model.COLOURS)
            if not o_cuts and not o_ranges:
                r.report("CK011", f"{o_what} changes no colour", om.loc, "add e.g. red: <number>")
            merged = model.BandSet(
                cuts={**cuts, **o_cuts},
                ranges={**ranges, **o_ranges},
                inclusive=r.boolean(om, "inclusive", o_what, inclusive),
            )
            overrides.append(model.Override(merged, level=level, area=area, loc=om.loc))
    return model.Thresholds(
        basis=basis,
        bands=bands,
        for_periods=for_periods,
        limit=limit,
        overrides=tuple(overrides),
        baseline=baseline,
        loc=tm.loc,
    )
