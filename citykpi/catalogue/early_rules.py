"""Cross-file rules of the early-warning sections: ``domains:`` and ``incidents:``.

Duplicate ids are errors (CK020); settings for a domain no indicator belongs to (CK109) and an
incident whose indicators or domains match nothing (CK110) are warnings: they are harmless but
almost always a typo.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from citykpi.catalogue import model
from citykpi.catalogue.diagnostics import Diagnostic, diagnostic, did_you_mean
from citykpi.errors import Location


def early_rules(
    domains: Sequence[model.DomainSettings],
    incidents: Sequence[model.Incident],
    indicators: Sequence[model.Indicator],
) -> list[Diagnostic]:
    """The diagnostics of ``domains:`` and ``incidents:`` against the catalogue's indicators."""
    out: list[Diagnostic] = []
    known = sorted({i.domain for i in indicators})
    seen: dict[str, Location | None] = {}
    for d in domains:
        if d.id in seen:
            first = seen[d.id]
            out.append(
                diagnostic(
                    "CK020",
                    f"duplicate domain id '{d.id}'" + (f" (first defined at {first})" if first else ""),
                    d.loc or Location("<catalogue>"),
                    "declare each domain's settings once",
                )
            )
            continue
        seen[d.id] = d.loc
        if d.id not in known and not d.id.startswith("<"):
            out.append(
                diagnostic(
                    "CK109",
                    f"settings for domain '{d.id}', which no indicator is in",
                    d.loc or Location("<catalogue>"),
                    did_you_mean(d.id, known) or f"domains in use: {', '.join(known)}",
                )
            )
    seen_incidents: dict[str, Location | None] = {}
    ids = [i.id for i in indicators]
    for x in incidents:
        if x.id in seen_incidents:
            first = seen_incidents[x.id]
            out.append(
                diagnostic(
                    "CK020",
                    f"duplicate incident id '{x.id}'" + (f" (first defined at {first})" if first else ""),
                    x.loc or Location("<catalogue>"),
                    "ids must be unique across all files",
                )
            )
            continue
        seen_incidents[x.id] = x.loc
        for pattern in x.indicators:
            if not any(fnmatchcase(i, pattern) for i in ids):
                out.append(
                    diagnostic(
                        "CK110",
                        f"incident {x.id} names indicators '{pattern}', which match no indicator",
                        x.loc or Location("<catalogue>"),
                        did_you_mean(pattern, ids)
                        or "use an indicator id or a glob such as 'case.hotline.*'",
                    )
                )
        for dom in x.domains:
            if dom not in known:
                out.append(
                    diagnostic(
                        "CK110",
                        f"incident {x.id} names domain '{dom}', which no indicator is in",
                        x.loc or Location("<catalogue>"),
                        did_you_mean(dom, known) or f"domains in use: {', '.join(known)}",
                    )
                )
    return out
