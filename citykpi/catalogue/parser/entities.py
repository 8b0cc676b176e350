"""Composite indices, area groups and source tables."""

from __future__ import annotations

from typing import Any

from citykpi.catalogue import model
from citykpi.catalogue.diagnostics import did_you_mean
from citykpi.catalogue.parser.quality import timeliness_of
from citykpi.catalogue.parser.reader import (
    COLUMN_RE,
    COMPONENT_KEYS,
    CUT_COLOURS,
    GROUP_ID_RE,
    GROUP_KEYS,
    GROUP_REQUIRED,
    ID_RE,
    INDEX_BAND_KEYS,
    INDEX_KEYS,
    INDEX_REQUIRED,
    NORMALISE_KEYS,
    RESERVED_COLUMNS,
    SOURCE_ID_RE,
    SOURCE_KEYS,
    SOURCE_REQUIRED,
    _entity_id,
    _levels,
    _Reader,
)
from citykpi.catalogue.parser.thresholds import _cuts
from citykpi.catalogue.parser.values import _expression, _id_ref
from citykpi.catalogue.yamlsafe import YMap, YSeq
from citykpi.errors import Location

# --- indices, groups, sources --------------------------------------------------------------


def _normalisation(r: _Reader, raw: Any, loc: Location, what: str) -> model.Normalisation | None:
    if isinstance(raw, str):  # normalise: colour_score
        if raw not in model.NORMALISATIONS:
            hint = did_you_mean(raw, model.NORMALISATIONS) or f"one of: {', '.join(model.NORMALISATIONS)}"
            r.report("CK083", f"unknown normalisation '{raw}' in {what}", loc, hint)
            return None
        return model.Normalisation(method=raw)
    nm = r.mapping(raw, loc, f"normalise of {what}")
    if nm is None:
        return None
    n_what = f"normalise of {what}"
    r.keys(nm, NORMALISE_KEYS, ("method",), n_what)
    method = r.choice(nm, "method", model.NORMALISATIONS, n_what, "colour_score")
    low = r.number(nm, "low", n_what)
    high = r.number(nm, "high", n_what)
    if method == "goalposts" and (low is None or high is None):
        r.report(
            "CK051",
            f"goalposts normalisation in {what} needs both low (score 0) and high (score 100)",
            nm.loc,
        )
    elif method == "goalposts" and low == high:
        r.report("CK051", f"goalposts low and high of {what} must differ", nm.loc)
    elif method != "goalposts" and (low is not None or high is not None):
        r.report("CK013", f"low/high only apply to goalposts normalisation ({what})", nm.loc)
    return model.Normalisation(method=method, low=low, high=high)


def _index(r: _Reader, m: YMap) -> None:
    before = r.errors
    xid = _entity_id(r, m, ID_RE, "index", "index.operation")
    what = f"index {xid}"
    r.keys(m, INDEX_KEYS, INDEX_REQUIRED, what)
    r.remember(xid, m)
    name = r.name(m, "name", what)
    normalise = model.Normalisation()
    if "normalise" in m:
        normalise = _normalisation(r, m["normalise"], m.value_loc("normalise"), what) or normalise
    aggregation = r.choice(m, "aggregation", model.AGGREGATIONS, what, "linear")
    colour_by = r.choice(m, "colour_by", model.COLOUR_BY, what, "score")
    cap = r.number(m, "cap_on_red", what)
    if cap is not None and not 0 <= cap <= 100:
        r.report(
            "CK013", f"cap_on_red of {what} must be a score between 0 and 100", m.value_loc("cap_on_red")
        )
        cap = None
    coverage = r.number(m, "min_coverage", what, 0.5)
    if not 0 < coverage <= 1:
        r.report(
            "CK013", f"min_coverage of {what} must be above 0 and at most 1", m.value_loc("min_coverage")
        )
        coverage = 0.5
    levels = _levels(r, m, what, default=("city", "district"))
    components: list[model.Component] = []
    if "components" in m:
        seq = r.sequence(m["components"], m.value_loc("components"), f"components of {what}")
        if seq is not None and not seq:
            r.report("CK011", f"{what} has no components", m.value_loc("components"))
        for i, item in enumerate(seq or ()):
            assert seq is not None
            c_loc = seq.item_loc(i)
            if isinstance(item, str):  # components: [a.b, c.d]
                components.append(model.Component(ref=item, loc=c_loc))
                continue
            cm = r.mapping(item, c_loc, f"a component of {what}")
            if cm is None:
                continue
            c_what = f"component {i + 1} of {what}"
            r.keys(cm, COMPONENT_KEYS, ("ref",), c_what)
            ref = _id_ref(r, cm, "ref", c_what)
            weight = r.number(cm, "weight", c_what, 1.0)
            c_norm = (
                _normalisation(r, cm["normalise"], cm.value_loc("normalise"), c_what)
                if "normalise" in cm
                else None
            )
            components.append(model.Component(ref=ref, weight=weight, normalise=c_norm, loc=cm.loc))
            r.out.locs[(xid, f"components.{i}.weight")] = (cm, "weight")
    bands: model.BandSet | None = None
    if "bands" in m:
        bm = r.mapping(m["bands"], m.value_loc("bands"), f"bands of {what}")
        if bm is not None:
            r.keys(bm, INDEX_BAND_KEYS, (), f"bands of {what}")
            cuts, _ = _cuts(r, bm, f"bands of {what}", "higher_is_better", CUT_COLOURS)
            bands = model.BandSet(cuts=cuts, inclusive=r.boolean(bm, "inclusive", f"bands of {what}", False))
    if before != r.errors:
        r.mark_broken(xid, "*")
    extra: dict[str, Any] = {} if bands is None else {"bands": bands}
    r.out.indices.append(
        model.CompositeIndex(
            id=xid,
            name=name,
            components=tuple(components),
            description=r.text(m, "description", what).strip(),
            normalise=normalise,
            aggregation=aggregation,
            colour_by=colour_by,
            cap_on_red=cap,
            min_coverage=coverage,
            levels=levels,
            loc=m.loc,
            **extra,
        )
    )


def _group(r: _Reader, m: YMap) -> None:
    gid = _entity_id(r, m, GROUP_ID_RE, "group", "central_urban")
    what = f"group {gid}"
    r.keys(m, GROUP_KEYS, GROUP_REQUIRED, what)
    name = r.name(m, "name", what)
    areas = r.text_list(m, "areas", what)
    seen: set[str] = set()
    for area, loc in areas:
        if area in seen:
            r.report("CK013", f"area '{area}' is listed twice in {what}", loc)
        seen.add(area)
    if "areas" in m and not areas and isinstance(m["areas"], YSeq):
        r.report("CK013", f"{what} lists no areas", m.value_loc("areas"))
    r.out.groups.append(
        model.AreaGroup(id=gid, name=name, areas=tuple(dict.fromkeys(a for a, _ in areas)), loc=m.loc)
    )


def _source(r: _Reader, m: YMap) -> None:
    sid = _entity_id(r, m, SOURCE_ID_RE, "source", "hotline_cases")
    what = f"source {sid}"
    r.keys(m, SOURCE_KEYS, SOURCE_REQUIRED, what)
    r.remember(sid, m)
    columns: dict[str, str] = {}
    if "columns" in m:
        cm = r.mapping(m["columns"], m.value_loc("columns"), f"columns of {what}")
        for col, typ in (cm or {}).items():
            assert cm is not None
            if not COLUMN_RE.match(col):
                r.report(
                    "CK013",
                    f"column name '{col}' of {what} must be a plain identifier (letters, digits, _)",
                    cm.key_loc(col),
                )
                continue
            if col in RESERVED_COLUMNS:
                r.report("CK013", f"column name '{col}' of {what} is reserved by citykpi", cm.key_loc(col))
                continue
            if not isinstance(typ, str) or typ not in model.SOURCE_COLUMN_TYPES:
                hint = (did_you_mean(typ, model.SOURCE_COLUMN_TYPES) if isinstance(typ, str) else None) or (
                    f"one of: {', '.join(model.SOURCE_COLUMN_TYPES)}"
                )
                r.report(
                    "CK083", f"unknown column type {typ!r} for '{col}' in {what}", cm.value_loc(col), hint
                )
                continue
            columns[col] = typ
        if cm is not None and not cm:
            r.report("CK011", f"{what} declares no columns", m.value_loc("columns"))
    # each read once: a wrong type is reported once
    key_col = r.text(m, "key", what) or None
    tcol, acol = r.text(m, "time_column", what), r.text(m, "area_column", what)
    for role, ref in (("time_column", tcol), ("area_column", acol), ("key", key_col)):
        if ref and columns and ref not in columns:
            hint = did_you_mean(ref, columns) or f"declared columns: {', '.join(columns)}"
            r.report("CK040", f"{role} '{ref}' of {what} is not a declared column", m.value_loc(role), hint)
    formats: dict[str, str] = {}
    if "formats" in m:
        fm = r.mapping(m["formats"], m.value_loc("formats"), f"formats of {what}")
        for col, fmt in (fm or {}).items():
            assert fm is not None
            if col not in columns or columns[col] not in ("date", "timestamp"):
                r.report(
                    "CK040",
                    f"formats: '{col}' of {what} is not a declared date or timestamp column",
                    fm.key_loc(col),
                )
            elif not isinstance(fmt, str) or "%" not in fmt:
                r.report(
                    "CK012",
                    f"format of '{col}' in {what} must be a strptime pattern such as '%m/%d/%Y %I:%M:%S %p'",
                    fm.value_loc(col),
                )
            else:
                formats[col] = fmt
    if tcol in columns and columns[tcol] not in ("date", "timestamp"):
        r.report(
            "CK012",
            f"time_column '{tcol}' of {what} must be a date or timestamp column",
            m.value_loc("time_column"),
        )
    flt = _expression(r, m, "filter", what, names=set(columns), boolean=True) or None
    provider_column = r.text(m, "provider_column", what) or None
    timeliness = timeliness_of(r, m, what)
    for role, ref in (
        ("provider_column", provider_column),
        ("timeliness.done", timeliness.done if timeliness else None),
        ("timeliness.due", timeliness.due if timeliness else None),
    ):
        if ref and columns and ref not in columns:
            hint = did_you_mean(ref, columns) or f"declared columns: {', '.join(columns)}"
            loc = m.value_loc(role) if role in m else m.value_loc("timeliness")
            r.report("CK040", f"{role} '{ref}' of {what} is not a declared column", loc, hint)
        elif ref and role.startswith("timeliness") and columns.get(ref) not in (None, "date", "timestamp"):
            r.report(
                "CK012",
                f"{role} '{ref}' of {what} must be a date or timestamp column",
                m.value_loc("timeliness"),
            )
    r.out.sources.append(
        model.SourceTable(
            id=sid,
            columns=columns,
            time_column=tcol,
            area_column=acol,
            key=key_col,
            description=r.text(m, "description", what).strip(),
            formats=formats,
            loc=m.loc,
            filter=flt,
            owner=r.text(m, "owner", what).strip(),
            provider_column=provider_column,
            timeliness=timeliness,
        )
    )
