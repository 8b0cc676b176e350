"""The threshold-basis registry itself (filled by the basis modules, see ``__init__``)."""

from citykpi.vocab.bases._entry import Basis
from citykpi.vocab.registry import Registry

BASES: Registry[Basis] = Registry("threshold basis")
