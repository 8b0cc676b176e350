"""Cross-file rules of the data-quality declarations: feeds, consistency rules, base periods.

Called by :func:`citykpi.catalogue.validate.validate` with its context once the ids are collected.
A feed must name known indicators, a known source and fields its format has; a consistency rule
must name known indicators (CK090), break an indicator down only by a dimension some feed of it
carries (CK091), and fit its kind (CK092); a ``change_base_period`` basis needs ``base_period``
(CK068). Every message points at the YAML line that holds the problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from citykpi import vocab
from citykpi.catalogue import model
from citykpi.catalogue.diagnostics import did_you_mean
from citykpi.catalogue.expressions import (
    BOOLEAN,
    COLUMN_TYPES,
    UNKNOWN,
    ExpressionTypeError,
    check_types,
    names_used,
    parse_expression,
)
from citykpi.catalogue.parser import ParsedFile
from citykpi.catalogue.parser.quality import FEED_PREFIX, RULE_PREFIX
from citykpi.catalogue.yamlsafe import YMap
from citykpi.errors import ExpressionError, Location

#: A dimension's name: a lower-case word (the same as ``citykpi ingest --dim``).
_DIMENSION_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")


class _Locs:
    """Where each key of each feed and rule is written (per file: ids may repeat across files)."""

    def __init__(self, files: Sequence[ParsedFile]) -> None:
        self.by_entity: dict[int, dict[tuple[str, str], tuple[YMap, str]]] = {}
        for f in files:
            for e in (*f.feeds, *f.consistency, *f.indicators, *f.sources):
                self.by_entity[id(e)] = f.locs

    def at(self, entity: Any, key: str) -> Location | None:
        """The location of ``key``'s value in ``entity``'s mapping, else the entity's own."""
        prefix = FEED_PREFIX if isinstance(entity, model.Feed) else ""
        prefix = RULE_PREFIX if isinstance(entity, model.ConsistencyRule) else prefix
        found = self.by_entity.get(id(entity), {}).get((prefix + entity.id, key))
        return entity.loc if found is None else found[0].value_loc(found[1])


def validate_quality(ctx: Any, files: Sequence[ParsedFile]) -> None:
    """Report every problem of the feeds, consistency rules and base periods into ``ctx``.

    ``ctx`` is the validator's context (indicators and sources by id, ``report``, ``sound``).
    """
    locs = _Locs(files)
    indicators: Mapping[str, model.Indicator] = ctx.indicators
    sources: Mapping[str, model.SourceTable] = ctx.sources
    for ind in ctx.all_indicators:
        basis = vocab.BASES.get(ind.thresholds.basis)
        if (
            basis is not None
            and "base_period" in basis.requires
            and ind.base_period is None
            and ctx.sound(ind, "thresholds", "base_period", "keys")
        ):
            ctx.report(
                "CK068",
                f"indicator {ind.id} is judged as {ind.thresholds.basis} but has no base_period",
                locs.at(ind, "thresholds"),
                "add base_period: 2010 (a year, a month '2010-06' or a date) to the indicator",
            )
    for src in sources.values():
        if src.filter:
            _source_filter(ctx, src, locs.at(src, "filter"))
    feeds = _unique(ctx, [f for pf in files for f in pf.feeds], "feed")
    for feed in feeds:
        _feed(ctx, feed, locs, indicators, sources)
    delivered = _dimensions_by_indicator(feeds)
    for rule in _unique(ctx, [r for pf in files for r in pf.consistency], "consistency rule"):
        _rule(ctx, rule, locs, indicators, delivered)


def _unique(ctx: Any, items: Sequence[Any], what: str) -> list[Any]:
    """The first definition of each id; a later one is CK020."""
    seen: dict[str, Location | None] = {}
    out = []
    for item in items:
        if item.id.startswith("<"):
            continue
        if item.id in seen:
            first = seen[item.id]
            where = f" (first defined at {first})" if first else ""
            ctx.report(
                "CK020",
                f"duplicate {what} id '{item.id}'{where}",
                item.loc,
                "ids must be unique across all files",
            )
            continue
        seen[item.id] = item.loc
        out.append(item)
    return out


def _unknown(ctx: Any, rule: str, message: str, ref: str, pool: Iterable[str], loc: Location | None) -> None:
    head = ref.split(".", 1)[0]
    near = [p for p in pool if abs(len(p) - len(ref)) <= 3 and (p.split(".", 1)[0] == head or "." not in ref)]
    ctx.report(rule, message, loc, did_you_mean(ref, near[:2000]))


def _source_filter(ctx: Any, src: model.SourceTable, loc: Location | None) -> None:
    """A source's ``filter`` names declared columns and is a condition (CK040, CK071)."""
    assert src.filter is not None
    try:
        expr = parse_expression(src.filter, names=None)
    except ExpressionError:
        return  # the parser has reported it
    unknown = sorted(n for n in names_used(expr) if n not in src.columns)
    for name in unknown:
        _unknown(
            ctx,
            "CK040",
            f"filter of source {src.id} refers to unknown column '{name}'",
            name,
            src.columns,
            loc,
        )
    if unknown:
        return
    try:
        check_types(expr, {n: COLUMN_TYPES.get(t, UNKNOWN) for n, t in src.columns.items()}, want=BOOLEAN)
    except ExpressionTypeError as exc:
        ctx.report("CK071", f"filter of source {src.id}: {exc.message}", loc)


def _feed(
    ctx: Any,
    feed: model.Feed,
    locs: _Locs,
    indicators: Mapping[str, model.Indicator],
    sources: Mapping[str, model.SourceTable],
) -> None:
    what = f"feed {feed.id}"
    for ind in feed.indicators:
        if ind not in indicators:
            _unknown(
                ctx,
                "CK040",
                f"{what} refers to unknown indicator '{ind}'",
                ind,
                indicators,
                locs.at(feed, "indicators"),
            )
    source = sources.get(feed.source) if feed.source else None
    if feed.format == "source":
        if feed.source is None:
            ctx.report("CK011", f"{what} of format source needs source: <a declared source id>", feed.loc)
        elif source is None:
            _unknown(
                ctx,
                "CK040",
                f"{what} refers to unknown source '{feed.source}'",
                feed.source,
                sources,
                locs.at(feed, "source"),
            )
        for key in ("indicators", "wide", "dimensions"):
            if getattr(feed, key):
                ctx.report("CK013", f"{what} of format source does not use '{key}'", locs.at(feed, key))
    elif feed.source is not None:
        ctx.report("CK013", f"{what}: source goes with format: source only", locs.at(feed, "source"))
    if feed.wide and feed.format != "wide":
        ctx.report("CK013", f"{what}: wide goes with format: wide only", locs.at(feed, "wide"))
    for column, ind in feed.wide.items():
        if ind not in indicators:
            _unknown(
                ctx,
                "CK040",
                f"wide column '{column}' of {what} refers to unknown indicator '{ind}'",
                ind,
                indicators,
                locs.at(feed, "wide"),
            )
    fields: tuple[str, ...]
    if feed.format == "source":
        fields = tuple(source.columns) if source is not None else ()
    elif feed.format == "wide":
        fields = ("area_id", "period")
    else:
        fields = model.FEED_FIELDS
    for key, mapping in (("columns", feed.columns), ("set", feed.constants)):
        for name in mapping:
            if fields and name not in fields:
                hint = did_you_mean(name, fields) or f"{feed.format} fields: {', '.join(fields)}"
                ctx.report(
                    "CK013",
                    f"'{key}' of {what} names '{name}', which is not a field of {feed.format} files",
                    locs.at(feed, key),
                    hint,
                )
    for name in feed.dimensions:
        if not name or set(name) - _DIMENSION_CHARS or not name[0].isalpha() or name in model.FEED_FIELDS:
            ctx.report(
                "CK013",
                f"dimension '{name}' of {what} must be a lower-case word other than {', '.join(model.FEED_FIELDS)}",
                locs.at(feed, "dimensions"),
            )
    for column, fmt in feed.date_formats.items():
        if "%" not in fmt:
            ctx.report(
                "CK012",
                f"date format of '{column}' in {what} must be a strptime pattern such as '%Y'",
                locs.at(feed, "date_formats"),
            )
    targets = set(fields) | set(feed.dimensions)
    for column, table in feed.recode.items():
        for value, sets in table.items():
            for name, text in sets.items():
                if name == "":
                    mapped = [f for f, c in feed.columns.items() if c == column]
                    if not mapped:
                        ctx.report(
                            "CK013",
                            f"recode of {what}: {value!r} gives a plain value, but column '{column}' is mapped to no field",
                            locs.at(feed, "recode"),
                            f"write {{field: value}}, e.g. {{indicator_id: {text}}}, or map the column under columns",
                        )
                elif name not in targets:
                    hint = (
                        did_you_mean(name, targets) or f"fields and dimensions: {', '.join(sorted(targets))}"
                    )
                    ctx.report(
                        "CK013",
                        f"recode of {what} sets '{name}', which is neither a field nor a declared dimension",
                        locs.at(feed, "recode"),
                        hint,
                    )
                if (
                    name == "indicator_id" or (name == "" and feed.columns.get("indicator_id") == column)
                ) and text not in indicators:
                    _unknown(
                        ctx,
                        "CK040",
                        f"recode of {what} refers to unknown indicator '{text}'",
                        text,
                        indicators,
                        locs.at(feed, "recode"),
                    )


def feed_indicators(feed: model.Feed) -> set[str]:
    """Every indicator a feed delivers: its ``indicators``, its wide columns' and its recodes' ids."""
    out = set(feed.indicators) | set(feed.wide.values())
    if "indicator_id" in feed.constants:
        out.add(feed.constants["indicator_id"])
    for column, table in feed.recode.items():
        for sets in table.values():
            for name, text in sets.items():
                if name == "indicator_id" or (name == "" and feed.columns.get("indicator_id") == column):
                    out.add(text)
    return out


def _dimensions_by_indicator(feeds: Sequence[model.Feed]) -> dict[str, dict[str, list[str]]]:
    """indicator id → dimension → the feeds that carry it for that indicator."""
    out: dict[str, dict[str, list[str]]] = {}
    for feed in feeds:
        for ind in feed_indicators(feed):
            dims = out.setdefault(ind, {})
            for dim in feed.dimensions:
                dims.setdefault(dim, []).append(feed.id)
    return out


def _rule(
    ctx: Any,
    rule: model.ConsistencyRule,
    locs: _Locs,
    indicators: Mapping[str, model.Indicator],
    delivered: Mapping[str, Mapping[str, list[str]]],
) -> None:
    what = f"consistency rule {rule.id}"
    refs = [("total", rule.total)] if rule.total else []
    refs += [("parts", p) for p in rule.parts]
    refs += [("indicator", rule.indicator)] if rule.indicator else []
    known = True
    for key, ref in refs:
        if ref not in indicators:
            known = False
            _unknown(
                ctx,
                "CK090",
                f"{what}: {key} '{ref}' is not an indicator of the catalogue",
                ref,
                indicators,
                locs.at(rule, key),
            )
    if rule.kind == "sum" and rule.total and rule.total in rule.parts:
        ctx.report(
            "CK092", f"{what}: the total {rule.total} is also one of its parts", locs.at(rule, "parts")
        )
    if rule.kind == "sum" and len(set(rule.parts)) != len(rule.parts):
        ctx.report("CK092", f"{what} lists a part twice", locs.at(rule, "parts"))
    if not known or rule.indicator is None:
        return
    ind = indicators[rule.indicator]
    if rule.kind == "disaggregation" and rule.dimension:
        carried = delivered.get(ind.id, {})
        if rule.dimension not in carried:
            feeds = sorted({f for fs in carried.values() for f in fs})
            have = sorted(carried)
            if not carried and not any(ind.id in d for d in delivered):
                hint = f"declare a feed that delivers {ind.id} with dimensions: {{{rule.dimension}: COLUMN}}"
            else:
                hint = f"the feeds of {ind.id} carry: {', '.join(have) or 'no dimension'}"
            ctx.report(
                "CK091",
                f"{what} breaks {ind.id} down by '{rule.dimension}', which no feed of {ind.id} carries"
                + (f" (feeds: {', '.join(feeds)})" if feeds else ""),
                locs.at(rule, "dimension"),
                hint,
            )
    if rule.kind == "area_rollup":
        parents = [lv for lv in ind.levels[:-1] if model.LEVELS.index(lv) + 1 < len(model.LEVELS)]
        parents = [lv for lv in parents if model.LEVELS[model.LEVELS.index(lv) + 1] in ind.levels]
        if not parents:
            ctx.report(
                "CK092",
                f"{what}: {ind.id} is reported at {', '.join(ind.levels)} only, so no parent level has "
                "children to roll up",
                locs.at(rule, "indicator"),
                "an area_rollup rule needs two adjacent declared levels (e.g. city and district)",
            )
        elif rule.level is not None and rule.level not in parents:
            ctx.report(
                "CK092",
                f"{what}: level {rule.level} is not a parent level of {ind.id} (parent levels: {', '.join(parents)})",
                locs.at(rule, "level"),
            )
