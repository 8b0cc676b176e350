"""Threshold bases, one module per basis.

Adding a basis is one module here (it calls ``BASES.register(Basis(...))``) plus its import below
and its tests; the JSON Schema, ``check``, docs/catalogue.md and the compiler read ``BASES``.
The import order is the registry order (and the order in the schema and the docs).
"""

from collections.abc import Collection

# isort: off
from citykpi.vocab.bases import absolute  # noqa: F401  (imported to register)
from citykpi.vocab.bases import percent_of_target  # noqa: F401
from citykpi.vocab.bases import percent_of_limit  # noqa: F401
from citykpi.vocab.bases import change_previous  # noqa: F401
from citykpi.vocab.bases import change_last_year  # noqa: F401
from citykpi.vocab.bases import change_base_period  # noqa: F401
from citykpi.vocab.bases import anomaly  # noqa: F401

# isort: on
from citykpi.vocab.bases._entry import BASE_VALUE, BASELINE_ALIAS, Basis, BasisSql, change_sql
from citykpi.vocab.bases.registry import BASES

__all__ = [
    "BASELINE_ALIAS",
    "BASES",
    "BASE_VALUE",
    "SINGLE_VALUE_NEEDS",
    "Basis",
    "BasisSql",
    "basis_value_sql",
    "change_sql",
    "single_value_bases",
]

#: What a basis computable from one value alone may need (the catalogue's target and limit): no
#: earlier period, base period or seasonal baseline. Alert rules follow single readings on these
#: bases, and forecasts project a trend in them.
SINGLE_VALUE_NEEDS: frozenset[str] = frozenset({"target", "thresholds.limit"})


def single_value_bases() -> tuple[str, ...]:
    """Names of the registered bases computable from one value alone (see :data:`SINGLE_VALUE_NEEDS`)."""
    return tuple(b.name for b in BASES.values() if set(b.requires) <= SINGLE_VALUE_NEEDS)


def basis_value_sql(
    basis: str,
    value: str,
    target: str,
    limit: str,
    previous: str,
    last_year: str,
    change_unit: str,
    *,
    only: Collection[str] | None = None,
) -> str:
    """One SQL ``CASE`` over the basis column ``basis`` with every registered basis's ``sql`` hook
    (or those named in ``only``: a query without the earlier periods' tables leaves out the bases
    that read them).

    With the compiler's arguments (``"m.basis", "t.v", "m.target_value", "m.limit_value", "p.v",
    "y.v", "m.change_unit"``) this is, character for character, the basis expression of
    ``engine/compiler.py``'s ``classify_sql`` (tests/test_vocab.py proves it).
    """
    branches = "\n  ".join(
        f"WHEN '{b.name}' THEN {b.sql(value, target, limit, previous, last_year, change_unit)}"
        for b in BASES.values()
        if only is None or b.name in only
    )
    return f"CASE {basis} {branches} END"
