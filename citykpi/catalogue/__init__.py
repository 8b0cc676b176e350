"""citykpi.catalogue: the indicator catalogue — YAML files → a validated, frozen model.

Public entry points: :func:`load_catalogue` (raises on errors) and :func:`check_catalogue`
(returns every diagnostic). The model lives in :mod:`citykpi.catalogue.model`.
"""

from citykpi.catalogue.diagnostics import RULES, Diagnostic, Rule
from citykpi.catalogue.loader import CatalogueLoadError, CheckResult, check_catalogue, load_catalogue
from citykpi.catalogue.model import Catalogue

__all__ = [
    "RULES",
    "Catalogue",
    "CatalogueLoadError",
    "CheckResult",
    "Diagnostic",
    "Rule",
    "check_catalogue",
    "load_catalogue",
]
