"""citykpi.warehouse: the DuckDB file — schema, opening, areas, ingest, rejects, info and read-only query."""

from citykpi.warehouse.areas import AreasReport, load_areas
from citykpi.warehouse.connection import Warehouse
from citykpi.warehouse.info import DbInfo, db_info, run_query
from citykpi.warehouse.ingest import FileResult, IngestOptions, IngestReport, ingest
from citykpi.warehouse.rejects import reject_batches, reject_rows, resolve_batch
from citykpi.warehouse.schema import SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION",
    "AreasReport",
    "DbInfo",
    "FileResult",
    "IngestOptions",
    "IngestReport",
    "Warehouse",
    "db_info",
    "ingest",
    "load_areas",
    "reject_batches",
    "reject_rows",
    "resolve_batch",
    "run_query",
]
