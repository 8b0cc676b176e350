"""The vocabulary tables of docs/catalogue.md, generated from the registries.

docs/catalogue.md holds marked blocks such as ``<!-- vocab:bases -->…<!-- /vocab -->``; their
content is :func:`render_block` of the block's name, so the docs cannot drift from the registries
(``tests/test_vocab.py`` regenerates and compares). After changing a registry, run
``python -m citykpi.vocab.docs docs/catalogue.md`` to rewrite the blocks in place.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from citykpi.vocab.bases import BASES
from citykpi.vocab.rollups import AREA_ROLLUPS, TIME_ROLLUPS
from citykpi.vocab.units import FAMILIES, UNITS
from citykpi.vocab.values import VALUE_KINDS

BLOCK_RE = re.compile(r"(<!-- vocab:([a-z_-]+) -->\n)(.*?)(<!-- /vocab -->)", re.DOTALL)

#: What a basis requirement means, in words for the docs.
REQUIREMENTS: dict[str, str] = {
    "target": "a `target` (CK062)",
    "thresholds.limit": "`limit` (CK063)",
    "previous_period": "a previous period with a value (else `not_applicable`)",
    "last_year": "the same period last year with a value (else `not_applicable`)",
    "base_period": "`base_period` (CK068) with a value in that period (else `not_applicable`)",
    "seasonal_baseline": "at least 3 comparable earlier periods with a value (else `not_applicable`)",
}


def _defaults() -> dict[str, str]:
    # The model's defaults, read lazily: citykpi.catalogue.model imports this package.
    from citykpi.catalogue import model

    return {
        "bases": model.Thresholds().basis,
        "time-rollups": model.Rollup().time,
        "area-rollups": model.Rollup().area,
        "value-kinds": "observed",
    }


def _name(name: str, default: str) -> str:
    return f"`{name}`" + (" (default)" if name == default else "")


def _bases(default: str) -> list[str]:
    rows = ["| `basis` | the number compared with the cuts | needs |", "|---|---|---|"]
    for b in BASES.values():
        needs = ", ".join(REQUIREMENTS.get(r, f"`{r}`") for r in b.requires)
        rows.append(f"| {_name(b.name, default)} | {b.summary} | {needs} |")
    return rows


def _value_kinds(default: str) -> list[str]:
    rows = ["| kind | written | meaning |", "|---|---|---|"]
    for v in VALUE_KINDS.values():
        rows.append(f"| {_name(v.name, default)} | `{v.example}` | {v.summary} |")
    return rows


def _time_rollups(default: str) -> list[str]:
    rows = ["| `time` | meaning |", "|---|---|"]
    rows += [f"| {_name(t.name, default)} | {t.summary} |" for t in TIME_ROLLUPS.values()]
    return rows


def _area_rollups(default: str) -> list[str]:
    rows = ["| `area` | meaning | needs |", "|---|---|---|"]
    rows += [f"| {_name(a.name, default)} | {a.summary} | {a.needs} |" for a in AREA_ROLLUPS.values()]
    return rows


def _units(default: str) -> list[str]:
    rows = ["| family | meaning | units |", "|---|---|---|"]
    for family, meaning in FAMILIES.items():
        names = ", ".join(f"`{u.name}`" for u in UNITS.values() if u.family == family)
        rows.append(f"| {family} | {meaning} | {names} |")
    return rows


BLOCKS: dict[str, Callable[[str], list[str]]] = {
    "bases": _bases,
    "value-kinds": _value_kinds,
    "time-rollups": _time_rollups,
    "area-rollups": _area_rollups,
    "units": _units,
}


def render_block(name: str) -> str:
    """The Markdown content of block ``name`` (a key of :data:`BLOCKS`), ending with a newline."""
    return "\n".join(BLOCKS[name](_defaults().get(name, ""))) + "\n"


def update_markdown(text: str) -> str:
    """``text`` with every vocab block regenerated (unknown block names raise KeyError)."""
    return BLOCK_RE.sub(lambda m: m.group(1) + render_block(m.group(2)) + m.group(4), text)


def main(argv: list[str]) -> int:
    """Rewrite the vocab blocks of each Markdown file named in ``argv``."""
    for arg in argv:
        path = Path(arg)
        text = path.read_text(encoding="utf-8")
        new = update_markdown(text)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
