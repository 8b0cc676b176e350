"""`citykpi ingest`: validate rows set-based in the engine, record rejects, load atomically per file.

The package, by phase of one file:

- ``options``      what an ingest call is asked (formats, mapping, policies) and what it reports;
- ``files``        the entry point: one transaction per file, batch records, unchanged files;
- ``keys``         the key relations a file is checked against, kept per catalogue (``catalogue_keys``);
- ``plan``         how a file is staged, checked and appended (shared by every format);
- ``rules``        the row checks as SQL, each naming a coded reason of ``codes``;
- ``codes``        every reject reason with its code (IN…) and meaning;
- ``observations`` long and wide observation files; ``sources`` raw source tables;
- ``append``       the one path by which rows enter ``observations`` (ingest and ``citykpi test``).
"""

from __future__ import annotations

from citykpi.warehouse.ingest.codes import REJECT_RULES, RejectRule, code_of, reason
from citykpi.warehouse.ingest.files import already_loaded, check_options, ingest, target_of
from citykpi.warehouse.ingest.observations import _ObservationPlan
from citykpi.warehouse.ingest.options import (
    ALIASES,
    DATA_SUFFIXES,
    DEFAULT_DATE_FORMATS,
    DUPLICATE_POLICIES,
    EARLIEST_PERIOD,
    ENCODINGS,
    FORMATS,
    LONG_FIELDS,
    DuplicatePolicy,
    FileResult,
    Format,
    IngestOptions,
    IngestReport,
    Progress,
    expand_paths,
    parse_map,
    parse_set,
)
from citykpi.warehouse.ingest.plan import ROW_GROUP, _Plan
from citykpi.warehouse.ingest.sources import _SourcePlan

__all__ = [
    "ALIASES",
    "DATA_SUFFIXES",
    "DEFAULT_DATE_FORMATS",
    "DUPLICATE_POLICIES",
    "EARLIEST_PERIOD",
    "ENCODINGS",
    "FORMATS",
    "LONG_FIELDS",
    "REJECT_RULES",
    "ROW_GROUP",
    "DuplicatePolicy",
    "FileResult",
    "Format",
    "IngestOptions",
    "IngestReport",
    "Progress",
    "RejectRule",
    "_ObservationPlan",
    "_Plan",
    "_SourcePlan",
    "already_loaded",
    "check_options",
    "code_of",
    "expand_paths",
    "ingest",
    "parse_map",
    "parse_set",
    "reason",
    "target_of",
]
