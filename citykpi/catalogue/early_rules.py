"""Cross-file rules of the early-warning sections: ``domains:`` and ``incidents:``.

Duplicate ids are errors (CK020); settings for a domain no indicator belongs to (CK109) and an
incident whose indicators or domains match nothing (CK110) are warnings: they are harmless but
almost always a typo.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from fnmatch import fnmatchcase

from citykpi.catalogue import model
from citykpi.catalogue.diagnostics import Diagnostic, diagnostic, did_you_mean
from citykpi.errors import Location


def _firsts(
    entities: Sequence[model.DomainSettings] | Sequence[model.Incident], what: str, out: list[Diagnostic]
) -> Iterator[model.DomainSettings | model.Incident]:
    """The first definition of each id; a later one with the same id is reported (CK020) and skipped."""
    seen: dict[str, Location | None] = {}
    for e in entities:
        if e.id in seen:
            first = seen[e.id]
            out.append(
                diagnostic(
                    "CK020",
                    f"duplicate {what} id '{e.id}'" + (f" (first defined at {first})" if first else ""),
                    e.loc or Location("<catalogue>"),
                    "ids must be unique across all files",
                )
            )
            continue
        seen[e.id] = e.loc
        yield e


def early_rules(
    domains: Sequence[model.DomainSettings],
    incidents: Sequence[model.Incident],
    indicators: Sequence[model.Indicator],
) -> list[Diagnostic]:
    """The diagnostics of ``domains:`` and ``incidents:`` against the catalogue's indicators."""
    out: list[Diagnostic] = []
    known = sorted({i.domain for i in indicators})
    for d in _firsts(domains, "domain", out):
        if d.id not in known and not d.id.startswith("<"):
            out.append(
                diagnostic(
                    "CK109",
                    f"settings for domain '{d.id}', which no indicator is in",
                    d.loc or Location("<catalogue>"),
                    did_you_mean(d.id, known) or f"domains in use: {', '.join(known)}",
                )
            )
    ids = [i.id for i in indicators]
    for x in _firsts(incidents, "incident", out):
        assert isinstance(x, model.Incident)
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
