"""YAML documents → catalogue model objects, collecting every problem in one pass.

The parser checks structure, types, closed vocabularies and expression syntax of each file on its
own; rules that need the whole catalogue (ids across files, references, cycles, thresholds vs
direction…) live in ``validate.py``. A broken field is reported and replaced by a harmless
default so that parsing goes on; the fields with errors are remembered in ``ParsedFile.broken`` so
the validator skips only the rules that read them: every independent problem is still reported,
and a broken field causes no follow-on errors.

Modules, by concern: ``reader`` (keys per entity, ``ParsedFile``, the typed ``_Reader``),
``document`` (one file), ``indicator``, ``thresholds`` (bands, overrides, own scales), ``values``
(value kinds, roll-ups, targets, expressions) and ``entities`` (indices, groups, sources).
"""

from __future__ import annotations

from citykpi.catalogue.parser.document import (
    parse_document,
)
from citykpi.catalogue.parser.reader import (
    ALERT_KEYS,
    COLUMN_RE,
    COMPONENT_KEYS,
    CUT_COLOURS,
    DOMAIN_RE,
    DURATION_RE,
    FILE_KEYS,
    FORMULA_KEYS,
    GROUP_ID_RE,
    GROUP_KEYS,
    GROUP_REQUIRED,
    ID_RE,
    INDEX_BAND_KEYS,
    INDEX_KEYS,
    INDEX_REQUIRED,
    INDICATOR_KEYS,
    INDICATOR_REQUIRED,
    MEASURE_KEYS,
    NORMALISE_KEYS,
    OBSERVED_KEYS,
    OVERRIDE_KEYS,
    RATIO_KEYS,
    RESERVED_COLUMNS,
    ROLLUP_KEYS,
    SCALE_STEP_KEYS,
    SCHEMA_VERSIONS,
    SOURCE_ID_RE,
    SOURCE_KEYS,
    SOURCE_REQUIRED,
    TARGET_KEYS,
    THRESHOLD_KEYS,
    VALUE_KINDS,
    ParsedFile,
    describe,
    parse_duration,
)

__all__ = [
    "ALERT_KEYS",
    "COLUMN_RE",
    "COMPONENT_KEYS",
    "CUT_COLOURS",
    "DOMAIN_RE",
    "DURATION_RE",
    "FILE_KEYS",
    "FORMULA_KEYS",
    "GROUP_ID_RE",
    "GROUP_KEYS",
    "GROUP_REQUIRED",
    "ID_RE",
    "INDEX_BAND_KEYS",
    "INDEX_KEYS",
    "INDEX_REQUIRED",
    "INDICATOR_KEYS",
    "INDICATOR_REQUIRED",
    "MEASURE_KEYS",
    "NORMALISE_KEYS",
    "OBSERVED_KEYS",
    "OVERRIDE_KEYS",
    "RATIO_KEYS",
    "RESERVED_COLUMNS",
    "ROLLUP_KEYS",
    "SCALE_STEP_KEYS",
    "SCHEMA_VERSIONS",
    "SOURCE_ID_RE",
    "SOURCE_KEYS",
    "SOURCE_REQUIRED",
    "TARGET_KEYS",
    "THRESHOLD_KEYS",
    "VALUE_KINDS",
    "ParsedFile",
    "describe",
    "parse_document",
    "parse_duration",
]
