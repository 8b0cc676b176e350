"""The data dictionary as one HTML page (``citykpi catalogue docs --format html``), on the report's base.

The same base template as the scorecard report: autoescaping and the ``t`` filter for every text from
the catalogue, the page's own style and script allowed by hash only, no request. The script is the
report's: click a column head to sort, type words to hide the rows (and descriptions) that lack them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup

from citykpi.catalogue import model
from citykpi.render.html import content_security_policy, environment, static_text


def _section(
    title: str, heads: Sequence[str], rows: list[list[str]], anchor: str = "", notes: Any = ()
) -> dict[str, Any]:
    return {"title": title, "heads": list(heads), "rows": rows, "anchor": anchor, "notes": list(notes)}


def data_dictionary_html(catalogue: model.Catalogue, *, title: str = "Indicator catalogue") -> str:
    """The data dictionary as one self-contained HTML page (inline CSS and script, no request)."""
    from citykpi.catalogue.docs import COLUMNS, by_domain, indicator_cells

    sections = [
        _section(
            domain,
            COLUMNS,
            [indicator_cells(i) for i in inds],
            anchor=domain,
            notes=[(i.id, i.description) for i in inds if i.description],
        )
        for domain, inds in by_domain(catalogue).items()
    ]
    if catalogue.indices:
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
        sections.append(
            _section("Indices", ["id", "名称", "name", "aggregation", "normalise", "components"], rows)
        )
    if catalogue.groups:
        rows = [[g.id, g.name.zh, g.name.en, ", ".join(g.areas)] for g in catalogue.groups]
        sections.append(_section("Area groups", ["id", "名称", "name", "areas"], rows))
    if catalogue.sources:
        rows = [
            [s.id, s.time_column, s.area_column, ", ".join(f"{c} ({t})" for c, t in s.columns.items())]
            for s in catalogue.sources
        ]
        sections.append(_section("Sources", ["id", "time column", "area column", "columns"], rows))
    css = static_text("page.css") + static_text("catalogue.css")
    script = static_text("report.js")
    counts = (
        f"{len(catalogue.indicators)} indicators, {len(catalogue.indices)} indices, "
        f"{len(catalogue.groups)} groups, {len(catalogue.sources)} sources."
    )
    return (
        environment()
        .get_template("dictionary.html.j2")
        .render(
            html_lang="zh",
            csp=Markup(content_security_policy(css, script)),
            css=Markup(css),
            script=Markup(script),
            title=title,
            counts=counts,
            hash=catalogue.content_hash[:12] or "—",
            sections=sections,
        )
    )


__all__ = ["data_dictionary_html"]
