"""Where a value comes from (``value:``), roll-ups, targets and the expressions inside them."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime

from citykpi import vocab
from citykpi.catalogue import model
from citykpi.catalogue.diagnostics import did_you_mean
from citykpi.catalogue.expressions import parse_condition, parse_expression
from citykpi.catalogue.parser.reader import (
    COLUMN_RE,
    FORMULA_KEYS,
    MEASURE_KEYS,
    OBSERVED_KEYS,
    RATIO_KEYS,
    RENAMED_VALUE_KEYS,
    ROLLUP_KEYS,
    TARGET_KEYS,
    VALUE_KINDS,
    _Reader,
    describe,
)
from citykpi.catalogue.yamlsafe import YMap
from citykpi.errors import ExpressionError


def _rollup(r: _Reader, m: YMap, what: str, iid: str) -> model.Rollup:
    rm = r.section(m, "rollup", f"rollup of {what}")
    if rm is None:
        return model.Rollup()
    r_what = f"rollup of {what}"
    r.keys(rm, ROLLUP_KEYS, (), r_what)
    r.remember(iid, rm, "rollup.")
    time = r.choice(rm, "time", vocab.TIME_ROLLUPS.names(), r_what, "last")
    area = r.choice(rm, "area", vocab.AREA_ROLLUPS.names(), r_what, "none")
    weight = r.text(rm, "weight", r_what) or None
    where: model.Condition | None = None
    if "where" in rm:
        raw = rm["where"]
        try:
            where = parse_condition(raw)
        except ExpressionError as exc:
            r.report(
                "CK070",
                f"where of {what}: {exc.message}",
                rm.value_loc("where"),
                'write e.g. where: "value <= 100"',
            )
    return model.Rollup(time=time, where=where, area=area, weight=weight)


def _date(r: _Reader, m: YMap, key: str, what: str) -> date | None:
    if key not in m:
        return None
    raw = m[key]
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            pass
    r.report("CK012", f"'{key}' of {what} must be a date like 2025-12-31, not {raw!r}", m.value_loc(key))
    return None


def _target(r: _Reader, m: YMap, what: str) -> model.Target | None:
    if "target" not in m or m["target"] is None:
        return None
    tm = r.mapping(m["target"], m.value_loc("target"), f"target of {what}")
    if tm is None:
        return None
    t_what = f"the target of {what}"
    r.keys(tm, TARGET_KEYS, ("value",), t_what)
    value = r.number(tm, "value", t_what)
    due = _date(r, tm, "due", t_what)
    if "due" not in tm:
        r.report("CK060", f"{t_what} has no due date", tm.loc, "add due: YYYY-MM-DD")
    baseline = r.number(tm, "baseline", t_what)
    baseline_date = _date(r, tm, "baseline_date", t_what)
    method = r.choice(tm, "method", model.TARGET_METHODS, t_what, "end_value")
    if value is None:
        return None
    return model.Target(
        value=value,
        due=due or date.max,
        baseline=baseline,
        baseline_date=baseline_date,
        method=method,
        loc=tm.loc,
    )


def _expression(
    r: _Reader,
    m: YMap,
    key: str,
    what: str,
    *,
    names: Collection[str] | None,
    aggregates: bool = False,
    boolean: bool | None = None,
) -> str:
    if key not in m:
        return ""
    raw = m[key]
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        r.report(
            "CK012", f"'{key}' of {what} must be an expression (text), not {describe(raw)}", m.value_loc(key)
        )
        return ""
    text = str(raw)
    try:
        parse_expression(text, names=names, aggregates=aggregates, boolean=boolean)
    except ExpressionError as exc:
        r.report("CK070", f"{key} of {what}: {exc.message}", m.value_loc(key))
    return text


def _id_ref(r: _Reader, m: YMap, key: str, what: str) -> str:
    raw = m.get(key)
    if not isinstance(raw, str):
        if key in m:
            r.report(
                "CK012",
                f"'{key}' of {what} must be an indicator id (text), not {describe(raw)}",
                m.value_loc(key),
            )
        return ""
    return raw


def _value(r: _Reader, m: YMap, what: str, iid: str) -> model.ValueSource:
    if "value" not in m:
        return model.Observed()
    raw, loc = m["value"], m.value_loc("value")
    locs = r.out.locs
    if raw == "observed" or raw is None:
        return model.Observed()
    if isinstance(raw, str):
        hint = (
            did_you_mean(raw, VALUE_KINDS)
            or "write value: observed, or a mapping such as value: {from: <id>}"
        )
        r.report("CK083", f"unknown value kind '{raw}' in {what}", loc, hint)
        return model.Observed()
    vm = r.mapping(raw, loc, f"value of {what}")
    if vm is None:
        return model.Observed()
    kinds = [k for k in vm if k in VALUE_KINDS]
    allowed = (*VALUE_KINDS, "inputs") if "formula" in vm else VALUE_KINDS
    r.keys(vm, allowed, (), f"value of {what}")
    if len(kinds) != 1:
        r.report(
            "CK011" if not kinds else "CK013",
            f"value of {what} needs exactly one of {', '.join(VALUE_KINDS)}"
            + (f" (found {', '.join(kinds)})" if kinds else ""),
            vm.loc,
        )
        return model.Observed()
    kind = kinds[0]
    body, body_loc = vm[kind], vm.value_loc(kind)
    v_what = f"the {kind} value of {what}"
    locs[(iid, f"value.{kind}")] = (vm, kind)
    if kind == "observed":
        if body is None or body is True:
            return model.Observed()
        om = r.mapping(body, body_loc, v_what)
        if om is None:
            return model.Observed()
        r.renamed(om, RENAMED_VALUE_KEYS, v_what)
        r.keys(om, OBSERVED_KEYS, (), v_what)
        return model.Observed(
            with_parts=r.boolean(om, "with_parts", v_what, False), scale=_scale_factor(r, om, v_what)
        )
    if kind == "from":
        if not isinstance(body, str):
            r.report("CK012", f"'from' of {what} must be an indicator id, not {describe(body)}", body_loc)
            return model.Observed()
        return model.FromSeries(body)
    if kind == "ratio":
        rm = r.mapping(body, body_loc, v_what)
        if rm is None:
            return model.Observed()
        r.renamed(rm, RENAMED_VALUE_KEYS, v_what)
        r.keys(rm, RATIO_KEYS, ("numerator", "denominator"), v_what)
        r.remember(iid, rm, "value.")
        return model.Ratio(
            numerator=_id_ref(r, rm, "numerator", v_what),
            denominator=_id_ref(r, rm, "denominator", v_what),
            scale=_scale_factor(r, rm, v_what),
        )
    if kind == "formula":
        fm: YMap = vm
        if isinstance(body, YMap):  # value: {formula: {expression: …, inputs: …}}
            fm = body
            r.keys(fm, FORMULA_KEYS, ("expression", "inputs"), v_what)
            expr_key = "expression"
            if "inputs" in vm:
                r.report(
                    "CK010",
                    f"unknown key 'inputs' in value of {what}",
                    vm.key_loc("inputs"),
                    "move it inside formula",
                )
        else:
            expr_key = "formula"
            if "inputs" not in vm:
                r.report("CK011", f"{v_what} is missing the required key 'inputs'", vm.loc)
        inputs: dict[str, str] = {}
        if "inputs" in fm:
            locs[(iid, "value.inputs")] = (fm, "inputs")
            im = r.mapping(fm["inputs"], fm.value_loc("inputs"), f"inputs of {what}")
            for name, ref in (im or {}).items():
                assert im is not None
                if not COLUMN_RE.match(name):
                    r.report(
                        "CK013", f"input name '{name}' of {what} must be a plain identifier", im.key_loc(name)
                    )
                elif not isinstance(ref, str):
                    r.report(
                        "CK012",
                        f"input '{name}' of {what} must be an indicator id, not {describe(ref)}",
                        im.value_loc(name),
                    )
                else:
                    inputs[name] = ref
                    locs[(iid, f"value.inputs.{name}")] = (im, name)
        names = list(inputs) if "inputs" in fm else None
        text = _expression(r, fm, expr_key, what, names=names, boolean=False)
        locs[(iid, "value.formula")] = (fm, expr_key)
        return model.Formula(expression=text, inputs=inputs)
    # measure
    mm = r.mapping(body, body_loc, v_what)
    if mm is None:
        return model.Observed()
    r.renamed(mm, RENAMED_VALUE_KEYS, v_what)
    r.keys(mm, MEASURE_KEYS, ("source", "numerator"), v_what)
    r.remember(iid, mm, "value.")
    source = mm.get("source")
    if "source" in mm and not isinstance(source, str):
        r.report(
            "CK012",
            f"source of {what} must be a source id (text), not {describe(source)}",
            mm.value_loc("source"),
        )
    # Column names are checked by the validator, which knows the source's declared columns.
    numerator = _expression(r, mm, "numerator", what, names=None, aggregates=True, boolean=False)
    denominator = _expression(r, mm, "denominator", what, names=None, aggregates=True, boolean=False) or None
    filt = _expression(r, mm, "filter", what, names=None, boolean=True) or None
    return model.Measure(
        source=source if isinstance(source, str) else "",
        numerator=numerator,
        denominator=denominator,
        filter=filt,
        scale=_scale_factor(r, mm, v_what),
    )


def _scale_factor(r: _Reader, m: YMap, what: str) -> float:
    value = r.number(m, "factor", what, 1.0)
    if value == 0:
        r.report("CK013", f"factor of {what} must not be 0", m.value_loc("factor"))
        return 1.0
    return float(value)
