"""citykpi: city KPIs and vital signs — catalogue, warehouse, set-based evaluation, scorecards."""

from citykpi.errors import CitykpiError, ExitCode

__version__ = "0.1.0"

__all__ = ["CitykpiError", "ExitCode", "__version__"]
