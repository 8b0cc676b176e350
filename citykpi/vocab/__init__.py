"""The catalogue's vocabularies as registries: one place that says which words the YAML accepts.

Each registry is an ordered mapping ``name → entry`` (see :class:`~citykpi.vocab.registry.Registry`);
every entry has a ``name`` (the YAML spelling) and a one-line ``summary`` (used in docs/catalogue.md).
The catalogue model's tuples (``model.BASES``, ``model.UNITS``…), the JSON Schema, ``check`` and the
docs are derived from these registries, and the compiler calls the basis hooks.

- :data:`BASES` (``citykpi.vocab.bases``, one module per basis) — threshold bases
- :data:`VALUE_KINDS` (``citykpi.vocab.values``) — where a value comes from
- :data:`TIME_ROLLUPS`, :data:`AREA_ROLLUPS` (``citykpi.vocab.rollups``) — roll-up rules
- :data:`UNITS` (``citykpi.vocab.units``) — known units and their families

Output formats are not here: the exporter registry in ``citykpi.render`` owns them.
"""

from citykpi.vocab.bases import BASES, Basis
from citykpi.vocab.registry import Registry
from citykpi.vocab.rollups import AREA_ROLLUPS, TIME_ROLLUPS, AreaRollup, TimeRollup
from citykpi.vocab.units import UNITS, Unit
from citykpi.vocab.values import VALUE_KINDS, ValueKind

__all__ = [
    "AREA_ROLLUPS",
    "BASES",
    "TIME_ROLLUPS",
    "UNITS",
    "VALUE_KINDS",
    "AreaRollup",
    "Basis",
    "Registry",
    "TimeRollup",
    "Unit",
    "ValueKind",
]
