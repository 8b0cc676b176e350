"""citykpi: city KPIs and vital signs — catalogue, warehouse, set-based evaluation, scorecards.

The public Python API (documented in docs/api.md)::

    import citykpi

    catalogue = citykpi.load_catalogue("indicators")
    with citykpi.open_warehouse("city.duckdb") as wh:
        citykpi.load_areas(wh, "sample_data/areas.csv")
        citykpi.ingest(wh, catalogue, ["sample_data/observations.csv"])
        scorecard = citykpi.evaluate(wh, catalogue)
    scorecard.cells            # a Polars frame: one row per indicator × area
    scorecard.write("xlsx", "scorecard.xlsx")

Names are imported on first use, so ``import citykpi`` stays cheap for the command line.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from citykpi.errors import CitykpiError, EngineError, ExitCode

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pathlib import Path

    from citykpi.backend.base import Backend
    from citykpi.catalogue.diff import CatalogueDiff, diff_catalogues
    from citykpi.catalogue.loader import CheckResult, check_catalogue, load_catalogue
    from citykpi.catalogue.model import Catalogue
    from citykpi.engine.alerting import episodes, firing, update_episodes
    from citykpi.engine.evaluate import evaluate
    from citykpi.engine.scorecard import Scorecard
    from citykpi.quality.assess import assess
    from citykpi.quality.report import QualityReport
    from citykpi.review import Review, review_catalogue
    from citykpi.warehouse.areas import AreasReport, load_areas
    from citykpi.warehouse.connection import Warehouse
    from citykpi.warehouse.ingest import IngestOptions, IngestReport, ingest

#: public name → module that defines it
_LAZY = {
    "load_catalogue": "citykpi.catalogue.loader",
    "check_catalogue": "citykpi.catalogue.loader",
    "CheckResult": "citykpi.catalogue.loader",
    "Catalogue": "citykpi.catalogue.model",
    "CatalogueDiff": "citykpi.catalogue.diff",
    "diff_catalogues": "citykpi.catalogue.diff",
    "Review": "citykpi.review",
    "review_catalogue": "citykpi.review",
    "Warehouse": "citykpi.warehouse.connection",
    "load_areas": "citykpi.warehouse.areas",
    "AreasReport": "citykpi.warehouse.areas",
    "ingest": "citykpi.warehouse.ingest",
    "IngestOptions": "citykpi.warehouse.ingest",
    "IngestReport": "citykpi.warehouse.ingest",
    "evaluate": "citykpi.engine.evaluate",
    "episodes": "citykpi.engine.alerting",
    "firing": "citykpi.engine.alerting",
    "update_episodes": "citykpi.engine.alerting",
    "Scorecard": "citykpi.engine.scorecard",
    "assess": "citykpi.quality.assess",
    "QualityReport": "citykpi.quality.report",
}

__all__ = [
    "AreasReport",
    "Catalogue",
    "CatalogueDiff",
    "CheckResult",
    "CitykpiError",
    "EngineError",
    "ExitCode",
    "IngestOptions",
    "IngestReport",
    "QualityReport",
    "Review",
    "Scorecard",
    "Warehouse",
    "__version__",
    "assess",
    "check_catalogue",
    "diff_catalogues",
    "episodes",
    "evaluate",
    "firing",
    "ingest",
    "load_areas",
    "load_catalogue",
    "open_warehouse",
    "review_catalogue",
    "update_episodes",
]


def open_warehouse(
    path: str | Path,
    *,
    read_only: bool = False,
    create: bool = True,
    wait: float = 0.0,
    backend: Backend | None = None,
) -> Warehouse:
    """Open (creating and migrating when allowed) the citykpi database at ``path``.

    Use it as a context manager, or call ``close()``. ``wait`` is how many seconds to keep retrying
    while another process writes to the database (then :class:`citykpi.errors.DatabaseBusyError`).
    ``backend``: the SQL engine (default embedded DuckDB; ``citykpi.backend.spark_backend("local[2]")``
    for Spark, with ``path`` a warehouse folder — see docs/spark.md).
    """
    from citykpi.warehouse.connection import Warehouse

    return Warehouse.open(path, read_only=read_only, create=create, wait=wait, backend=backend)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'citykpi' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
