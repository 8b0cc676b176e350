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

# isort: on
from citykpi.vocab.bases._entry import Basis, BasisSql, change_sql
from citykpi.vocab.bases.registry import BASES

__all__ = ["BASES", "Basis", "BasisSql", "change_sql"]
