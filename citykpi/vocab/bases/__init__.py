"""Threshold bases, one module per basis.

Adding a basis is one module here (it calls ``BASES.register(Basis(...))``) plus its import below
and its tests; the JSON Schema, ``check``, docs/catalogue.md and the compiler read ``BASES``.
The import order is the registry order (and the order in the schema and the docs).
"""

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

__all__ = ["BASELINE_ALIAS", "BASES", "BASE_VALUE", "Basis", "BasisSql", "basis_value_sql", "change_sql"]


def basis_value_sql(
    basis: str, value: str, target: str, limit: str, previous: str, last_year: str, change_unit: str
) -> str:
    """One SQL ``CASE`` over the basis column ``basis`` with every registered basis's ``sql`` hook.

    With the compiler's arguments (``"m.basis", "t.v", "m.target_value", "m.limit_value", "p.v",
    "y.v", "m.change_unit"``) this is, character for character, the basis expression of
    ``engine/compiler.py``'s ``classify_sql`` (tests/test_vocab.py proves it).
    """
    branches = "\n  ".join(
        f"WHEN '{b.name}' THEN {b.sql(value, target, limit, previous, last_year, change_unit)}"
        for b in BASES.values()
    )
    return f"CASE {basis} {branches} END"
