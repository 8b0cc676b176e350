"""Cross-file rules over the parsed catalogue: ids, references, cycles, thresholds, roll-ups.

``validate(files)`` takes every :class:`~citykpi.catalogue.parser.ParsedFile` and returns the
diagnostics that need the whole catalogue (or the model rather than the YAML): duplicate ids
across files, unknown references (indicators, indices, sources, columns), cycles among derived
indicators and among indices, threshold order for the direction, overlapping band ranges, weights,
targets, bases and roll-ups that lack what they need.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from citykpi import vocab
from citykpi.catalogue import model
from citykpi.catalogue.bands import order_problems
from citykpi.catalogue.diagnostics import Diagnostic, diagnostic, did_you_mean
from citykpi.catalogue.early_rules import early_rules
from citykpi.catalogue.expressions import (
    BOOLEAN,
    COLUMN_TYPES,
    NUMBER,
    UNKNOWN,
    Call,
    Expr,
    ExpressionTypeError,
    Name,
    check_types,
    names_used,
    parse_expression,
    walk,
)
from citykpi.catalogue.parser import ParsedFile
from citykpi.catalogue.validate_quality import validate_quality
from citykpi.catalogue.yamlsafe import YMap
from citykpi.errors import ExpressionError, Location

#: Roughly one period of each frequency, for the staleness warning.
_PERIOD: Mapping[str, timedelta] = {
    "realtime": timedelta(0),
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
    "monthly": timedelta(days=28),
    "quarterly": timedelta(days=90),
    "yearly": timedelta(days=365),
}


class _Context:
    """Everything the rules look up: entities by id, their file's locations, broken ids."""

    def __init__(self, files: Sequence[ParsedFile]) -> None:
        self.diags: list[Diagnostic] = []
        self.indicators: dict[str, model.Indicator] = {}
        self.indices: dict[str, model.CompositeIndex] = {}
        self.sources: dict[str, model.SourceTable] = {}
        #: Python id of each entity object -> the locations of its file (ids may repeat across files).
        self.file_locs: dict[int, dict[tuple[str, str], tuple[YMap, str]]] = {}
        #: Python id of each entity object -> its fields that had parse errors (ids may repeat across files).
        self.broken: dict[int, set[str]] = {}
        #: Every indicator and index of every file, duplicates too: each gets its own rules checked.
        self.all_indicators: list[model.Indicator] = []
        self.all_indices: list[model.CompositeIndex] = []
        for f in files:
            self.all_indicators.extend(f.indicators)
            self.all_indices.extend(f.indices)
            entities: list[model.Indicator | model.CompositeIndex | model.SourceTable] = [
                *f.indicators,
                *f.indices,
                *f.sources,
            ]
            for entity in entities:
                self.file_locs[id(entity)] = f.locs
                if f.broken.get(entity.id):
                    self.broken[id(entity)] = f.broken[entity.id]

    def sound(self, entity: Any, *fields: str) -> bool:
        """True when none of ``fields`` of this entity object had a parse error: a rule reading a
        broken field would only repeat its error (one root cause, one message)."""
        broken = self.broken.get(id(entity), ())
        return "*" not in broken and not any(f in broken for f in fields)

    def report(self, rule: str, message: str, loc: Location | None, hint: str | None = None) -> None:
        self.diags.append(diagnostic(rule, message, loc or Location("<catalogue>"), hint))

    def loc(self, entity: Any, path: str, fallback: Location | None) -> Location | None:
        """Where ``path`` (e.g. 'rollup.area') of this entity object is written, else ``fallback``."""
        found = self.file_locs.get(id(entity), {}).get((entity.id, path))
        return fallback if found is None else found[0].value_loc(found[1])


def validate(files: Sequence[ParsedFile]) -> list[Diagnostic]:
    """Every cross-file problem of the catalogue made of ``files`` (in file order).

    Args:
        files: the parsed files, in the order they were read.

    Returns:
        The diagnostics found (the files' own diagnostics are not repeated).
    """
    ctx = _Context(files)
    _collect_ids(ctx, files)
    used_sources: set[str] = set()
    # A second definition of an id gets its own rules checked, but not its references: whatever
    # names that id means the first one, so they would only echo the duplicate-id error.
    for ind in ctx.all_indicators:
        _indicator_rules(ctx, ind)
        if ctx.indicators.get(ind.id) is ind:
            _indicator_references(ctx, ind, used_sources)
    for idx in ctx.all_indices:
        _index_rules(ctx, idx, references=ctx.indices.get(idx.id) is idx)
    _indicator_cycles(ctx)
    _index_cycles(ctx)
    validate_quality(ctx, files)  # feeds, consistency rules, base periods
    # a source a feed loads or whose timeliness is judged is used, even without a measure
    used_sources |= {f.source for pf in files for f in pf.feeds if f.source}
    used_sources |= {s.id for s in ctx.sources.values() if s.timeliness is not None}
    for src in ctx.sources.values():
        if src.id not in used_sources and ctx.sound(src):
            ctx.report("CK106", f"source {src.id} is declared but no measure uses it", src.loc)
    ctx.diags.extend(
        early_rules(
            [d for f in files for d in f.domains], [x for f in files for x in f.incidents], ctx.all_indicators
        )
    )
    return ctx.diags


# --- ids -----------------------------------------------------------------------------------


def _collect_ids(ctx: _Context, files: Sequence[ParsedFile]) -> None:
    # Indicators and indices share one namespace: index components may name either.
    seen: dict[str, Location | None] = {}
    for f in files:
        for ind in f.indicators:
            if _first(ctx, seen, ind.id, ind.loc, "indicator"):
                ctx.indicators[ind.id] = ind
        for idx in f.indices:
            if _first(ctx, seen, idx.id, idx.loc, "index"):
                ctx.indices[idx.id] = idx
    seen_groups: dict[str, Location | None] = {}
    seen_sources: dict[str, Location | None] = {}
    for f in files:
        for g in f.groups:
            _first(ctx, seen_groups, g.id, g.loc, "group")  # a second definition is CK020
        for s in f.sources:
            if _first(ctx, seen_sources, s.id, s.loc, "source"):
                ctx.sources[s.id] = s


def _first(
    ctx: _Context, seen: dict[str, Location | None], key: str, loc: Location | None, what: str
) -> bool:
    if key.startswith("<"):  # no usable id; the parser has reported it
        return False
    if key in seen:
        first = seen[key]
        where = f" (first defined at {first})" if first else ""
        ctx.report("CK020", f"duplicate {what} id '{key}'{where}", loc, "ids must be unique across all files")
        return False
    seen[key] = loc
    return True


# --- one indicator -------------------------------------------------------------------------


def _indicator_rules(ctx: _Context, ind: model.Indicator) -> None:
    """The rules of one indicator, each run unless a field it reads had a parse error."""
    what = f"indicator {ind.id}"
    th = ind.thresholds
    th_loc = th.loc or ind.loc
    bands_sound = ctx.sound(ind, "thresholds", "scale", "direction")
    if bands_sound:
        for rule, message in order_problems(th.bands, ind.direction):
            ctx.report(rule, f"thresholds of {what}: {message}", th_loc)
    for ov in th.overrides:
        scope = f"level {ov.level}" if ov.level else f"area {ov.area}"
        if bands_sound:
            for rule, message in order_problems(ov.bands, ind.direction):
                ctx.report(rule, f"override for {scope} of {what}: {message}", ov.loc)
        if ov.level and ov.level not in ind.levels and ctx.sound(ind, "levels"):
            ctx.report(
                "CK084",
                f"override for level {ov.level} of {what}, which is reported at {', '.join(ind.levels)} only",
                ov.loc,
                f"add {ov.level} to levels or remove the override",
            )
    if (
        not th.bands.cuts
        and not th.bands.ranges
        and not ind.scale
        and ctx.sound(ind, "thresholds", "scale", "keys")
    ):
        ctx.report(
            "CK101", f"{what} has no thresholds: its cells are shown as unscored, never coloured", ind.loc
        )
    # What each basis requires comes from its registry entry (citykpi/vocab/bases/).
    basis = vocab.BASES.get(th.basis)
    requires = basis.requires if basis is not None else ()
    if "target" in requires and ind.target is None and ctx.sound(ind, "thresholds", "target", "keys"):
        ctx.report(
            "CK062",
            f"{what} is judged as {th.basis} but has no target",
            ctx.loc(ind, "thresholds.basis", th_loc),
            "add target: {value: …, due: YYYY-MM-DD} or use basis: absolute",
        )
    if "thresholds.limit" in requires and th.limit is None and ctx.sound(ind, "thresholds"):
        ctx.report(
            "CK063",
            f"{what} is judged as {th.basis} but thresholds.limit is missing",
            ctx.loc(ind, "thresholds.basis", th_loc),
            "add limit: <design value> under thresholds",
        )
    if ctx.sound(ind, "rollup", "value"):
        _rollup_rules(ctx, ind, what)
    if ind.target is not None and ctx.sound(ind, "target"):
        t = ind.target
        if t.baseline_date is not None and t.due != t.due.max and t.baseline_date >= t.due:
            ctx.report(
                "CK061",
                f"the target of {what} has baseline_date {t.baseline_date} on or after its due date {t.due}",
                t.loc,
            )
    if (
        ind.max_staleness is not None
        and ind.max_staleness < _PERIOD[ind.frequency]
        and ctx.sound(ind, "max_staleness", "frequency")
    ):
        ctx.report(
            "CK105",
            f"max_staleness of {what} is shorter than one {ind.frequency} period: every value will be stale",
            ctx.loc(ind, "max_staleness", ind.loc),
        )
    if not ind.description and ctx.sound(ind, "description", "keys"):
        ctx.report(
            "CK100", f"{what} has no description", ind.loc, "say what it measures and where it comes from"
        )


def _rollup_rules(ctx: _Context, ind: model.Indicator, what: str) -> None:
    ro, v = ind.rollup, ind.value
    if ro.area == "weighted_mean" and not ro.weight:
        ctx.report(
            "CK064",
            f"{what} rolls up as weighted_mean but names no weight",
            ctx.loc(ind, "rollup.area", ind.loc),
            "add weight: population (an area attribute)",
        )
    if ro.time == "count_where" and ro.where is None:
        ctx.report(
            "CK065",
            f"{what} rolls up as count_where but has no where condition",
            ctx.loc(ind, "rollup.time", ind.loc),
            'add where: "value <= 100"',
        )
    if ro.where is not None and ro.time != "count_where":
        ctx.report(
            "CK065",
            f"{what} has a where condition but its time roll-up is {ro.time}, not count_where",
            ctx.loc(ind, "rollup.where", ind.loc),
            "set time: count_where or remove where",
        )
    if ro.area == "ratio_of_sums":
        has_parts = (
            (isinstance(v, model.Observed) and v.with_parts)
            or isinstance(v, model.Ratio)
            or (isinstance(v, model.Measure) and v.denominator is not None)
        )
        if not has_parts:
            ctx.report(
                "CK066",
                f"{what} rolls up as ratio_of_sums but its value has no numerator/denominator parts",
                ctx.loc(ind, "rollup.area", ind.loc),
                "use value: {observed: {with_parts: true}}, a ratio, or a measure with a denominator",
            )
    if ro.area == "recompute" and isinstance(v, model.Observed):
        ctx.report(
            "CK067",
            f"{what} rolls up by recompute, but an observed value has no raw data to recompute from",
            ctx.loc(ind, "rollup.area", ind.loc),
            "use sum, mean, weighted_mean, worst … for observed values",
        )


# --- references ----------------------------------------------------------------------------


def _unknown(
    ctx: _Context, kind: str, ref: str, what: str, loc: Location | None, pool: Iterable[str]
) -> None:
    # Compare with ids of similar length and the same first segment only: difflib over thousands
    # of ids per unknown reference would make `check` slow on a large, broken catalogue.
    head = ref.split(".", 1)[0]
    near = [p for p in pool if abs(len(p) - len(ref)) <= 3 and (p.split(".", 1)[0] == head or "." not in ref)]
    ctx.report("CK040", f"{what} refers to unknown {kind} '{ref}'", loc, did_you_mean(ref, near[:2000]))


def _indicator_references(ctx: _Context, ind: model.Indicator, used_sources: set[str]) -> None:
    what = f"indicator {ind.id}"
    v = ind.value
    refs: list[tuple[str, str]] = []  # (ref, locs path)
    if isinstance(v, model.Ratio):
        refs = [(v.numerator, "value.numerator"), (v.denominator, "value.denominator")]
    elif isinstance(v, model.Formula):
        refs = [(ref, f"value.inputs.{name}") for name, ref in v.inputs.items()]
        _formula_inputs(ctx, ind, v, what)
    elif isinstance(v, model.FromSeries):
        refs = [(v.input, "value.from")]
    elif isinstance(v, model.Measure):
        _measure(ctx, ind, v, what, used_sources)
    for ref, path in refs:
        if not ref:
            continue
        loc = ctx.loc(ind, path, ind.loc)
        if ref == ind.id:
            ctx.report("CK041", f"{what} is computed from itself", loc)
        elif ref in ctx.indices:
            ctx.report("CK042", f"{what} refers to index '{ref}' where an indicator is needed", loc)
        elif ref not in ctx.indicators:
            _unknown(ctx, "indicator", ref, what, loc, ctx.indicators)
        elif isinstance(v, model.FromSeries) and not isinstance(ctx.indicators[ref].value, model.Observed):
            ctx.report(
                "CK042",
                f"{what} takes the raw series of {ref}, but {ref} is a {ctx.indicators[ref].value.kind} "
                "value with no raw series",
                loc,
                "point 'from' at an observed indicator",
            )


def _formula_inputs(ctx: _Context, ind: model.Indicator, v: model.Formula, what: str) -> None:
    if not ctx.sound(ind, "value") or not v.expression:
        return
    try:
        expr = parse_expression(v.expression, names=None)
    except ExpressionError:
        return
    try:
        check_types(expr, dict.fromkeys(v.inputs, NUMBER), want=NUMBER)  # every input is a number
    except ExpressionTypeError as exc:
        ctx.report(
            "CK071",
            f"formula of {what}: {exc.message}",
            ctx.loc(ind, "value.formula", ind.loc),
            "inputs are numbers; text, conditions and dates cannot be used in arithmetic",
        )
    used = names_used(expr)
    for name in v.inputs:
        if name not in used:
            ctx.report(
                "CK103",
                f"input '{name}' of {what} is not used in its formula",
                ctx.loc(ind, f"value.inputs.{name}", ind.loc),
            )


def _measure(
    ctx: _Context, ind: model.Indicator, v: model.Measure, what: str, used_sources: set[str]
) -> None:
    if not v.source:
        return
    used_sources.add(v.source)
    src = ctx.sources.get(v.source)
    if src is None:
        _unknown(ctx, "source", v.source, what, ctx.loc(ind, "value.source", ind.loc), ctx.sources)
        return
    for key, text, aggregates in (
        ("numerator", v.numerator, True),
        ("denominator", v.denominator, True),
        ("filter", v.filter, False),
    ):
        if not text:
            continue
        try:
            expr: Expr = parse_expression(text, names=None, aggregates=aggregates)
        except ExpressionError:
            continue  # the parser has reported it
        loc = ctx.loc(ind, f"value.{key}", ind.loc)
        before = len(ctx.diags)
        for name in sorted(names_used(expr)):
            if name not in src.columns:
                _unknown(ctx, f"column of source {src.id}", name, f"{key} of {what}", loc, src.columns)
        for node in walk(expr):
            if isinstance(node, Call) and node.func == "count_if":
                _boolean_column(ctx, node.args[0], src, f"count_if() in {key} of {what}", loc)
        if key == "filter":
            _boolean_column(ctx, expr, src, f"filter of {what}", loc)
        if len(ctx.diags) == before:  # types only once the names are right
            _measure_types(ctx, expr, src, key, what, loc)


def _measure_types(
    ctx: _Context, expr: Expr, src: model.SourceTable, key: str, what: str, loc: Location | None
) -> None:
    types = {name: COLUMN_TYPES.get(kind, UNKNOWN) for name, kind in src.columns.items()}
    try:
        check_types(expr, types, want=BOOLEAN if key == "filter" else NUMBER)
    except ExpressionTypeError as exc:
        declared = ", ".join(f"{c} ({t})" for c, t in src.columns.items())
        ctx.report(
            "CK071",
            f"{key} of {what}: {exc.message}",
            loc,
            f"columns of source {src.id}: {declared}" if len(declared) <= 200 else None,
        )


def _boolean_column(
    ctx: _Context, expr: Expr, src: model.SourceTable, what: str, loc: Location | None
) -> None:
    """A bare column used as a condition must be a boolean column."""
    if isinstance(expr, Name) and expr.name in src.columns and src.columns[expr.name] != "boolean":
        ctx.report(
            "CK070",
            f"{what} uses column '{expr.name}' ({src.columns[expr.name]}) as a condition; it must be boolean",
            loc,
            f"compare it, e.g. {expr.name} = 'yes'",
        )


# --- indices -------------------------------------------------------------------------------


def _index_rules(ctx: _Context, idx: model.CompositeIndex, *, references: bool = True) -> None:
    what = f"index {idx.id}"
    for rule, message in order_problems(idx.bands, "higher_is_better"):
        ctx.report(rule, f"bands of {what}: {message}", ctx.loc(idx, "bands", idx.loc))
    relative = sorted(
        {
            (c.normalise or idx.normalise).method
            for c in idx.components
            if (c.normalise or idx.normalise).method in model.RELATIVE_NORMALISATIONS
        }
    )
    if relative and idx.colour_by == "score":
        ctx.report(
            "CK053",
            f"{what} scores areas against each other ({', '.join(relative)}), but its bands colour the "
            "score as if it were absolute (the best of 40 districts may score 57)",
            ctx.loc(idx, "normalise", idx.loc),
            "add colour_by: quintile (colours by rank among the areas of a level), or normalise by goalposts",
        )
    seen: set[str] = set()
    pool = list(ctx.indicators) + list(ctx.indices)
    for i, comp in enumerate(idx.components):
        loc = comp.loc or idx.loc
        if comp.weight <= 0:
            ctx.report(
                "CK050",
                f"component {comp.ref} of {what} has weight {comp.weight:g}; weights must be positive",
                ctx.loc(idx, f"components.{i}.weight", loc),
                "remove the component instead of giving it weight 0",
            )
        if not comp.ref or not references:
            continue
        if comp.ref in seen:
            ctx.report("CK052", f"{what} lists component {comp.ref} twice", loc)
        seen.add(comp.ref)
        if comp.ref == idx.id:
            ctx.report("CK041", f"{what} contains itself", loc)
            continue
        if comp.ref not in ctx.indicators and comp.ref not in ctx.indices:
            _unknown(ctx, "indicator or index", comp.ref, what, loc, pool)
            continue
        norm = comp.normalise or idx.normalise
        ind = ctx.indicators.get(comp.ref)
        if ind is not None and norm.method == "distance_to_target" and ind.target is None:
            ctx.report(
                "CK051",
                f"{what} normalises {comp.ref} by distance_to_target, but {comp.ref} has no target",
                loc,
                "give the indicator a target or use another normalisation for this component",
            )


# --- cycles --------------------------------------------------------------------------------


def _cycles(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, pos = work.pop()
            if pos == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            edges = graph.get(node, ())
            recursed = False
            while pos < len(edges):
                nxt = edges[pos]
                pos += 1
                if nxt not in graph:
                    continue
                if nxt not in index:
                    work.append((node, pos))
                    work.append((nxt, 0))
                    recursed = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if recursed:
                continue
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def _report_cycles(
    ctx: _Context, graph: Mapping[str, Sequence[str]], kind: str, locate: Mapping[str, Location | None]
) -> None:
    for members in _cycles(graph):
        path = _cycle_path(graph, members)
        first = min(members, key=lambda m: _loc_key(locate.get(m)))
        ctx.report(
            "CK041",
            f"{kind} form a cycle: {' → '.join(path)}",
            locate.get(first),
            "break the cycle: one of them must not depend on the others",
        )


def _loc_key(loc: Location | None) -> tuple[str, int]:
    return (loc.file, loc.line or 0) if loc else ("~", 0)


def _cycle_path(graph: Mapping[str, Sequence[str]], members: list[str]) -> list[str]:
    inside = set(members)
    path = [members[0]]
    seen = {members[0]}
    node = members[0]
    while True:
        nxt = next((n for n in graph.get(node, ()) if n in inside), None)
        if nxt is None:
            return [*path, "…"]
        if nxt in seen:
            return [*path[path.index(nxt) :], nxt]
        path.append(nxt)
        seen.add(nxt)
        node = nxt


def _indicator_cycles(ctx: _Context) -> None:
    graph = {i.id: [r for r in i.inputs if r != i.id] for i in ctx.indicators.values()}
    _report_cycles(ctx, graph, "derived indicators", {i.id: i.loc for i in ctx.indicators.values()})


def _index_cycles(ctx: _Context) -> None:
    graph = {
        x.id: [c.ref for c in x.components if c.ref in ctx.indices and c.ref != x.id]
        for x in ctx.indices.values()
    }
    _report_cycles(ctx, graph, "indices", {x.id: x.loc for x in ctx.indices.values()})
