"""Ranked search over the catalogue: ids, Chinese and English names, tags, owners and descriptions.

A query is split into terms (on white space); an indicator matches when every term is found in one
of its fields, and scores the sum, per term, of the best field it was found in: an exact id or name
outranks a prefix, a prefix a substring, a name a tag, a tag an owner, an owner a description. Case
is ignored; Chinese matches as a substring (no word boundaries to split on). Ties sort by id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from citykpi.catalogue.model import Catalogue, Indicator

#: (field, weight of an exact match, of a prefix, of a substring)
_FIELDS: tuple[tuple[str, int, int, int], ...] = (
    ("id", 100, 60, 40),
    ("name_zh", 90, 60, 45),
    ("name_en", 90, 55, 35),
    ("tag", 30, 20, 15),
    ("domain", 25, 15, 10),
    ("owner", 20, 15, 12),
    ("description", 8, 8, 5),
)


@dataclass(frozen=True, slots=True)
class Hit:
    """One indicator found: its score and the fields the terms were found in."""

    indicator: Indicator
    score: int
    fields: tuple[str, ...]


def _texts(ind: Indicator) -> dict[str, list[str]]:
    return {
        "id": [ind.id.lower()],
        "name_zh": [ind.name.zh.lower()],
        "name_en": [ind.name.en.lower()],
        "tag": [t.lower() for t in ind.tags],
        "domain": [ind.domain.lower()],
        "owner": [ind.owner.lower()],
        "description": [ind.description.lower()],
    }


def _best(term: str, texts: dict[str, list[str]]) -> tuple[int, str] | None:
    best: tuple[int, str] | None = None
    for name, exact, prefix, inside in _FIELDS:
        for text in texts[name]:
            score = (
                exact if text == term else prefix if text.startswith(term) else inside if term in text else 0
            )
            if score and (best is None or score > best[0]):
                best = (score, name)
    return best


def search(catalogue: Catalogue, query: str, *, limit: int | None = 20) -> list[Hit]:
    """The indicators matching every term of ``query``, best first (see the module docstring)."""
    terms = [t for t in query.lower().split() if t]
    if not terms:
        return []
    hits: list[Hit] = []
    for ind in catalogue.indicators:
        texts = _texts(ind)
        found = [_best(term, texts) for term in terms]
        if all(f is not None for f in found):
            matched = [f for f in found if f is not None]
            hits.append(Hit(ind, sum(s for s, _ in matched), tuple(dict.fromkeys(n for _, n in matched))))
    hits.sort(key=lambda h: (-h.score, h.indicator.id))
    return hits if limit is None else hits[:limit]


def resolve_indicator(catalogue: Catalogue, ref: str, ids: Sequence[str] = ()) -> str | None:
    """``ref`` as an indicator id: itself when it is one (or one of ``ids``), else the one indicator whose
    Chinese or English name is ``ref`` exactly, else the single search hit; None when it names none
    or several."""
    if ref in catalogue.by_id or ref in ids:
        return ref
    low = ref.strip().lower()
    named = [i.id for i in catalogue.indicators if low in (i.name.zh.lower(), i.name.en.lower())]
    if len(named) == 1:
        return named[0]
    hits = search(catalogue, ref, limit=2)
    return hits[0].indicator.id if len(hits) == 1 else None
