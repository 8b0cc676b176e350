"""The data dictionary of a catalogue (``citykpi catalogue docs``) and its listing rows.

Markdown and a self-contained HTML page: one section per domain, one row per indicator with id,
names, unit, levels, frequency, direction, bands and target; then the indices, groups and sources.
"""

from __future__ import annotations

from typing import Any

from citykpi.catalogue import model


def bands_text(ind: model.Indicator) -> str:
    """The indicator's bands in one line, e.g. 'blue > 50 · yellow > 100 · red > 200'."""
    th = ind.thresholds
    parts: list[str] = []
    if ind.scale:
        for step in ind.scale:
            edge = f"≤ {step.upto:g}" if step.upto is not None else "above"
            label = step.label.pick("zh") or step.colour
            parts.append(f"{label} {edge} ({step.colour})")
    elif ind.direction == "band":
        for colour in model.COLOURS[:-1]:
            rng = th.bands.ranges.get(colour)
            if rng is not None:
                parts.append(f"{colour} [{rng[0]:g}, {rng[1]:g}]")
        if parts:
            parts.append("red outside")
    else:
        worse = ind.direction == "lower_is_better"
        op = (">=" if th.bands.inclusive else ">") if worse else ("<=" if th.bands.inclusive else "<")
        for colour in model.COLOURS[1:]:
            cut = th.bands.cuts.get(colour)
            if cut is not None:
                parts.append(f"{colour} {op} {cut:g}")
    if not parts:
        return "—"
    text = " · ".join(parts)
    extras = []
    if th.basis != "absolute":
        extras.append(th.basis + (f" {th.limit:g}" if th.limit is not None else ""))
    if th.for_periods > 1:
        extras.append(f"for {th.for_periods} periods")
    if th.overrides:
        extras.append(f"{len(th.overrides)} override{'s' if len(th.overrides) > 1 else ''}")
    return text + (f" ({'; '.join(extras)})" if extras else "")


def target_text(ind: model.Indicator) -> str:
    """The target in one line, e.g. '329 by 2025-12-31 (time_proportional)', or ''."""
    t = ind.target
    if t is None:
        return ""
    due = "" if t.due == t.due.max else f" by {t.due.isoformat()}"
    base = f", baseline {t.baseline:g}" if t.baseline is not None else ""
    return f"{t.value:g} {ind.unit}{due} ({t.method}{base})"


def value_text(ind: model.Indicator) -> str:
    """Where the value comes from, in a few words."""
    v = ind.value
    if isinstance(v, model.Ratio):
        return f"ratio {v.numerator} / {v.denominator}" + (f" × {v.scale:g}" if v.scale != 1 else "")
    if isinstance(v, model.Formula):
        return f"formula {v.expression}"
    if isinstance(v, model.Measure):
        return f"measure over {v.source}"
    if isinstance(v, model.FromSeries):
        return f"from {v.input}"
    return "observed" + (" (with parts)" if v.with_parts else "")


def indicator_rows(
    catalogue: model.Catalogue,
    *,
    domain: str | None = None,
    kind: str | None = None,
    tag: str | None = None,
    level: str | None = None,
) -> list[dict[str, Any]]:
    """One dict per indicator matching every filter given, sorted by domain then id."""
    rows: list[dict[str, Any]] = []
    for ind in sorted(catalogue.indicators, key=lambda i: (i.domain, i.id)):
        if domain and ind.domain != domain:
            continue
        if kind and ind.kind != kind:
            continue
        if tag and tag not in ind.tags:
            continue
        if level and level not in ind.levels:
            continue
        rows.append(
            {
                "id": ind.id,
                "name_zh": ind.name.zh,
                "name_en": ind.name.en,
                "kind": ind.kind,
                "tier": ind.tier,
                "domain": ind.domain,
                "unit": ind.unit,
                "levels": list(ind.levels),
                "frequency": ind.frequency,
                "direction": ind.direction,
                "value": value_text(ind),
                "bands": bands_text(ind),
                "target": target_text(ind),
                "tags": list(ind.tags),
                "owner": ind.owner,
            }
        )
    return rows


def by_domain(catalogue: model.Catalogue) -> dict[str, list[model.Indicator]]:
    """The indicators by domain, domains and ids in order."""
    out: dict[str, list[model.Indicator]] = {}
    for ind in sorted(catalogue.indicators, key=lambda i: (i.domain, i.id)):
        out.setdefault(ind.domain, []).append(ind)
    return out


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


#: Columns of the per-domain indicator tables.
COLUMNS = ("id", "名称", "name", "kind", "unit", "levels", "frequency", "direction", "bands", "target")


def indicator_cells(ind: model.Indicator) -> list[str]:
    """One indicator's row of the per-domain tables (:data:`COLUMNS`)."""
    return [
        ind.id,
        ind.name.zh,
        ind.name.en,
        f"{ind.kind}{' · bottom line' if ind.tier == 'bottom_line' else ''}",
        ind.unit,
        ", ".join(ind.levels),
        ind.frequency,
        ind.direction,
        bands_text(ind),
        target_text(ind),
    ]


def data_dictionary_markdown(catalogue: model.Catalogue, *, title: str = "Indicator catalogue") -> str:
    """The data dictionary as Markdown."""
    out: list[str] = [f"# {title}", ""]
    out.append(
        f"{len(catalogue.indicators)} indicators, {len(catalogue.indices)} indices, "
        f"{len(catalogue.groups)} groups, {len(catalogue.sources)} sources. "
        f"Catalogue hash `{catalogue.content_hash[:12] or '—'}`."
    )
    out.append("")
    for domain, inds in by_domain(catalogue).items():
        out += [f"## {domain}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        out += ["| " + " | ".join(_md(c) for c in indicator_cells(ind)) + " |" for ind in inds]
        out.append("")
        described = [i for i in inds if i.description]
        out += [
            f"- **{i.id}** — {_md(i.description)}" + (f" ({_md(i.owner)})" if i.owner else "")
            for i in described
        ]
        if described:
            out.append("")
    if catalogue.indices:
        out += [
            "## Indices",
            "",
            "| id | 名称 | name | aggregation | normalise | components |",
            "|---|---|---|---|---|---|",
        ]
        for x in catalogue.indices:
            comps = ", ".join(f"{c.ref} ×{c.weight:g}" for c in x.components)
            out.append(
                f"| {x.id} | {_md(x.name.zh)} | {_md(x.name.en)} | {x.aggregation} | {x.normalise.method} | {_md(comps)} |"
            )
        out.append("")
    if catalogue.groups:
        out += ["## Area groups", "", "| id | 名称 | name | areas |", "|---|---|---|---|"]
        out += [
            f"| {g.id} | {_md(g.name.zh)} | {_md(g.name.en)} | {', '.join(g.areas)} |"
            for g in catalogue.groups
        ]
        out.append("")
    if catalogue.sources:
        out += ["## Sources", "", "| id | time column | area column | columns |", "|---|---|---|---|"]
        for s in catalogue.sources:
            cols = ", ".join(f"{c} ({t})" for c, t in s.columns.items())
            out.append(f"| {s.id} | {s.time_column} | {s.area_column} | {_md(cols)} |")
        out.append("")
    return "\n".join(out)


def data_dictionary_html(catalogue: model.Catalogue, *, title: str = "Indicator catalogue") -> str:
    """The data dictionary as one self-contained HTML page (see :mod:`citykpi.render.dictionary`)."""
    from citykpi.render.dictionary import data_dictionary_html as render  # the rendering lives in render/

    return render(catalogue, title=title)
