"""The data dictionary of a catalogue (``citykpi catalogue docs``) and its listing rows.

Markdown and a self-contained HTML page: one section per domain, one row per indicator with id,
names, unit, levels, frequency, direction, bands and target; then the indices, groups and sources.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
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


def _by_domain(catalogue: model.Catalogue) -> dict[str, list[model.Indicator]]:
    out: dict[str, list[model.Indicator]] = {}
    for ind in sorted(catalogue.indicators, key=lambda i: (i.domain, i.id)):
        out.setdefault(ind.domain, []).append(ind)
    return out


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


_COLUMNS = ("id", "名称", "name", "kind", "unit", "levels", "frequency", "direction", "bands", "target")


def _cells(ind: model.Indicator) -> list[str]:
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
    for domain, inds in _by_domain(catalogue).items():
        out += [f"## {domain}", "", "| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
        out += ["| " + " | ".join(_md(c) for c in _cells(ind)) + " |" for ind in inds]
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


_CSS = """
body{font-family:system-ui,-apple-system,"Noto Sans CJK SC","PingFang SC",sans-serif;margin:2rem;color:#1b1f24}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}code{font-size:.85em}p.desc{color:#57606a;font-size:.85rem}
"""


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def data_dictionary_html(catalogue: model.Catalogue, *, title: str = "Indicator catalogue") -> str:
    """The data dictionary as one self-contained HTML page (inline CSS, no scripts)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{len(catalogue.indicators)} indicators, {len(catalogue.indices)} indices, "
        f"{len(catalogue.groups)} groups, {len(catalogue.sources)} sources. Catalogue hash "
        f"<code>{html.escape(catalogue.content_hash[:12] or '—')}</code>.</p>",
    ]
    for domain, inds in _by_domain(catalogue).items():
        parts.append(f'<h2 id="{html.escape(domain)}">{html.escape(domain)}</h2>')
        parts.append(_table(_COLUMNS, [_cells(i) for i in inds]))
        for i in inds:
            if i.description:
                parts.append(f'<p class="desc"><b>{html.escape(i.id)}</b> — {html.escape(i.description)}</p>')
    if catalogue.indices:
        parts.append("<h2>Indices</h2>")
        rows = [
            [
                x.id,
                x.name.zh,
                x.name.en,
                x.aggregation,
                x.normalise.method,
                ", ".join(f"{c.ref} ×{c.weight:g}" for c in x.components),
            ]
            for x in catalogue.indices
        ]
        parts.append(_table(["id", "名称", "name", "aggregation", "normalise", "components"], rows))
    if catalogue.groups:
        parts.append("<h2>Area groups</h2>")
        parts.append(
            _table(
                ["id", "名称", "name", "areas"],
                [[g.id, g.name.zh, g.name.en, ", ".join(g.areas)] for g in catalogue.groups],
            )
        )
    if catalogue.sources:
        parts.append("<h2>Sources</h2>")
        rows = [
            [s.id, s.time_column, s.area_column, ", ".join(f"{c} ({t})" for c, t in s.columns.items())]
            for s in catalogue.sources
        ]
        parts.append(_table(["id", "time column", "area column", "columns"], rows))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
