"""JSON Schema (draft 2020-12) of the catalogue YAML format, printed by ``citykpi schema``.

Editors (VS Code's YAML extension, JetBrains) validate catalogue files with it as they are typed:
``# yaml-language-server: $schema=../schema/catalogue.schema.json`` (the file shipped in the
repository, see docs/ci.md). The schema covers structure,
types and vocabularies; cross-file rules (references, cycles, threshold order) need ``citykpi check``.
"""

from __future__ import annotations

import json
from typing import Any

from citykpi import vocab
from citykpi.catalogue import model, parser
from citykpi.catalogue.expressions import MAX_LENGTH

#: The schema version this JSON Schema describes: the newest ``schema_version`` the parser reads.
SCHEMA_VERSION = max(parser.SCHEMA_VERSIONS)
#: A stable URI naming the catalogue format's version; a new ``schema_version`` gets a new URI.
SCHEMA_ID = f"https://citykpi.org/schema/catalogue/v{SCHEMA_VERSION}.json"
#: Where the repository ships the generated schema (a test keeps it equal to ``citykpi schema``).
SCHEMA_FILE = "schema/catalogue.schema.json"


def _enum(values: Any, description: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values), "description": description}


def _obj(properties: dict[str, Any], required: tuple[str, ...] = (), description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    if description:
        schema["description"] = description
    return schema


_NUMBER = {"type": "number"}
_RANGE = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
#: A deprecated spelling of ``factor`` (still read, with a CK108 warning).
_OLD_FACTOR = {"type": "number", "deprecated": True, "description": "Deprecated: write factor."}
#: When data is due: a duration after the period's end, or 'HH:MM next day'.
_DUE = {
    "type": "string",
    "description": "When a period's data must have arrived: 36h, 2d, or '09:00 next day'.",
}
_EXPR = {
    "type": "string",
    "maxLength": MAX_LENGTH,
    "description": "A restricted expression (see docs/catalogue.md).",
}


def catalogue_schema() -> dict[str, Any]:
    """The JSON Schema of one catalogue file, as a dict."""
    text = {
        "oneOf": [
            {"type": "string", "minLength": 1},
            _obj(
                {"zh": {"type": "string"}, "en": {"type": "string"}}, description="Chinese and English names."
            ),
        ]
    }
    cut_or_range = {
        "oneOf": [_NUMBER, _RANGE],
        "description": "A cut point (number) or, for band, [low, high].",
    }
    colours = {c: cut_or_range for c in model.COLOURS}
    override = _obj(
        {
            "level": _enum(model.LEVELS, "The level this override applies to."),
            "area": {"type": "string", "description": "The area id this override applies to (quoted)."},
            "inclusive": {"type": "boolean"},
            **colours,
        },
        description="Bands for one level or one area; unspecified colours keep the indicator's cuts.",
    )
    thresholds = _obj(
        {
            "basis": _enum(vocab.BASES.names(), "What the bands are compared with."),
            **colours,
            "inclusive": {
                "type": "boolean",
                "description": "A value exactly at a cut goes to the worse colour.",
            },
            "for_periods": {"type": "integer", "minimum": 1, "maximum": 366},
            "limit": {
                "type": "number",
                "exclusiveMinimum": 0,
                "description": "Design value for percent_of_limit.",
            },
            "overrides": {"type": "array", "items": override},
            "baseline": {
                "type": "integer",
                "minimum": model.MIN_BASELINE_PERIODS,
                "maximum": model.MAX_BASELINE_PERIODS,
                "description": "Basis anomaly: comparable earlier periods in the seasonal baseline "
                f"(default {model.DEFAULT_BASELINE_PERIODS}).",
            },
        },
        description="Five-colour bands: colour -> cut point where it starts.",
    )
    forecast = {
        "oneOf": [
            {"type": "boolean", "description": "Forecast with the defaults (true) or not (false)."},
            _obj(
                {
                    "enabled": {"type": "boolean"},
                    "window": {
                        "type": "integer",
                        "minimum": 3,
                        "maximum": model.MAX_FORECAST_WINDOW,
                        "description": "Periods the trend is fitted over (default by reporting grain).",
                    },
                    "horizon": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": model.MAX_FORECAST_HORIZON,
                        "description": "Periods ahead a crossing is forecast (default by reporting grain).",
                    },
                    "min_r2": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": 1,
                        "description": f"Goodness of fit needed to warn (default {model.DEFAULT_MIN_R2}).",
                    },
                    "baseline": {
                        "type": "integer",
                        "minimum": model.MIN_BASELINE_PERIODS,
                        "maximum": model.MAX_BASELINE_PERIODS,
                        "description": "Comparable earlier periods of the anomaly score beside the trend "
                        f"(default {model.DEFAULT_FORECAST_BASELINE}).",
                    },
                },
                description="Early warning: when the trend crosses the next worse cut; where a target ends.",
            ),
        ]
    }
    scale_step = _obj(
        {"label": text, "upto": _NUMBER, "colour": _enum(model.COLOURS, "The colour of this step.")},
        ("label", "colour"),
    )
    rollup = _obj(
        {
            "time": _enum(vocab.TIME_ROLLUPS.names(), "Roll-up over time within a period."),
            "where": {"type": "string", "pattern": r"^\s*value\s*(<=|>=|!=|<>|<|>|=)\s*[-+]?[0-9.eE+-]+\s*$"},
            "area": _enum(vocab.AREA_ROLLUPS.names(), "Roll-up from child areas to the parent."),
            "weight": {"type": "string", "description": "Area attribute for weighted_mean, e.g. population."},
        }
    )
    target = _obj(
        {
            "value": _NUMBER,
            "due": {"type": "string", "format": "date"},
            "baseline": _NUMBER,
            "baseline_date": {"type": "string", "format": "date"},
            "method": _enum(model.TARGET_METHODS, "How progress is measured."),
        },
        ("value", "due"),
    )
    formula_body = _obj(
        {"expression": _EXPR, "inputs": {"type": "object", "additionalProperties": {"type": "string"}}}
    )
    # One alternative per registered value kind (citykpi/vocab/values.py), in registry order.
    kinds: dict[str, Any] = {
        "observed": _obj(
            {
                "observed": {
                    "oneOf": [
                        {"type": "null"},
                        _obj({"with_parts": {"type": "boolean"}, "factor": _NUMBER, "scale": _OLD_FACTOR}),
                    ]
                }
            },
            ("observed",),
        ),
        "ratio": _obj(
            {
                "ratio": _obj(
                    {
                        "numerator": {"type": "string"},
                        "denominator": {"type": "string"},
                        "factor": _NUMBER,
                        "scale": _OLD_FACTOR,
                    },
                    ("numerator", "denominator"),
                )
            },
            ("ratio",),
        ),
        "formula": _obj(
            {
                "formula": {"oneOf": [_EXPR, formula_body]},
                "inputs": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            ("formula",),
        ),
        "measure": _obj(
            {
                "measure": _obj(
                    {
                        "source": {"type": "string"},
                        "numerator": _EXPR,
                        "denominator": _EXPR,
                        "filter": _EXPR,
                        "factor": _NUMBER,
                        "scale": _OLD_FACTOR,
                    },
                    ("source", "numerator"),
                )
            },
            ("measure",),
        ),
        "from": _obj({"from": {"type": "string"}}, ("from",)),
    }
    missing = [k for k in vocab.VALUE_KINDS if k not in kinds]
    if missing:
        raise RuntimeError(f"value kind(s) {', '.join(missing)} have no JSON Schema")
    value = {"oneOf": [{"const": "observed"}, *(kinds[k] for k in vocab.VALUE_KINDS)]}
    levels = {
        "type": "array",
        "items": _enum(model.LEVELS, "A governance level."),
        "minItems": 1,
        "uniqueItems": True,
    }
    indicator_props: dict[str, Any] = {
        "id": {"type": "string", "pattern": parser.ID_RE.pattern},
        "name": text,
        "kind": _enum(model.KINDS, "KPI or vital sign."),
        "domain": {"type": "string", "pattern": parser.DOMAIN_RE.pattern},
        "unit": _enum(vocab.UNITS.names(), "The unit."),
        "description": {"type": "string"},
        "owner": {"type": "string"},
        "tier": _enum(model.TIERS, "Bottom-line or guidance."),
        "tags": {"type": "array", "items": {"type": "string"}},
        "levels": levels,
        "frequency": _enum(model.FREQUENCIES, "How often a value is observed."),
        "max_staleness": {"type": "string", "pattern": parser.DURATION_RE.pattern},
        "valid_range": {"type": "array", "items": {"type": ["number", "null"]}, "minItems": 2, "maxItems": 2},
        "direction": _enum(model.DIRECTIONS, "Which way is better."),
        "scale": {"type": "array", "items": scale_step, "minItems": 2},
        "thresholds": thresholds,
        "rollup": rollup,
        "change": _enum(model.CHANGE_UNITS, "Change in percent or points."),
        "target": target,
        "value": value,
        "decimals": {"type": "integer", "minimum": 0, "maximum": 6},
        "due": _DUE,
        "base_period": {
            "oneOf": [{"type": "integer", "minimum": 1900, "maximum": 2199}, {"type": "string"}],
            "description": "The fixed base period of change_base_period: a year (2010), a month ('2010-06') or a date.",
        },
        "forecast": forecast,
    }
    normalise = {
        "oneOf": [
            _enum(model.NORMALISATIONS, "Normalisation method."),
            _obj(
                {"method": _enum(model.NORMALISATIONS, "Method."), "low": _NUMBER, "high": _NUMBER},
                ("method",),
            ),
        ]
    }
    component = {
        "oneOf": [
            {"type": "string"},
            _obj(
                {
                    "ref": {"type": "string"},
                    "weight": {"type": "number", "exclusiveMinimum": 0},
                    "normalise": normalise,
                },
                ("ref",),
            ),
        ]
    }
    index = _obj(
        {
            "id": {"type": "string", "pattern": parser.ID_RE.pattern},
            "name": text,
            "description": {"type": "string"},
            "components": {"type": "array", "items": component, "minItems": 1},
            "normalise": normalise,
            "aggregation": _enum(model.AGGREGATIONS, "Linear or geometric mean."),
            "colour_by": _enum(
                model.COLOUR_BY,
                "score: the bands colour the score; quintile: colours by rank among the areas of a level "
                "(needed with min_max or z_score).",
            ),
            "cap_on_red": {"type": "number", "minimum": 0, "maximum": 100},
            "min_coverage": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "bands": _obj({**{c: _NUMBER for c in model.COLOURS[1:]}, "inclusive": {"type": "boolean"}}),
            "levels": levels,
        },
        parser.INDEX_REQUIRED,
    )
    group = _obj(
        {
            "id": {"type": "string", "pattern": parser.GROUP_ID_RE.pattern},
            "name": text,
            "description": {"type": "string"},
            "areas": {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True},
        },
        parser.GROUP_REQUIRED,
    )
    source = _obj(
        {
            "id": {"type": "string", "pattern": parser.SOURCE_ID_RE.pattern},
            "description": {"type": "string"},
            "columns": {
                "type": "object",
                "propertyNames": {"pattern": parser.COLUMN_RE.pattern},
                "additionalProperties": _enum(model.SOURCE_COLUMN_TYPES, "Column type."),
                "minProperties": 1,
            },
            "time_column": {"type": "string"},
            "area_column": {"type": "string"},
            "key": {"type": "string"},
            "formats": {
                "type": "object",
                "description": "strptime format per date/timestamp column, e.g. '%m/%d/%Y %I:%M:%S %p'.",
                "additionalProperties": {"type": "string"},
            },
            "filter": {**_EXPR, "description": "Which rows count: a condition over the declared columns."},
            "owner": {"type": "string", "description": "The department responsible for the records."},
            "provider_column": {
                "type": "string",
                "description": "A text column naming each record's provider.",
            },
            "timeliness": _obj(
                {
                    "done": {
                        "type": "string",
                        "description": "The column with each record's completion time.",
                    },
                    "due": {"type": "string", "description": "The column with each record's due time."},
                    "within": {
                        "type": "string",
                        "pattern": parser.DURATION_RE.pattern,
                        "description": "Due this long after the record's time.",
                    },
                },
                description="When a record is on time (citykpi quality).",
            ),
        },
        parser.SOURCE_REQUIRED,
    )
    text_map = {"type": "object", "additionalProperties": {"type": ["string", "number"]}}
    feed = _obj(
        {
            "id": {"type": "string", "pattern": parser.SOURCE_ID_RE.pattern},
            "description": {"type": "string"},
            "provider": {"type": "string", "description": "The department or system that delivers the feed."},
            "format": _enum(model.FEED_FORMATS, "How its files are laid out (as citykpi ingest --format)."),
            "source": {"type": "string", "description": "format source: the declared source table."},
            "indicators": {"type": "array", "items": {"type": "string"}},
            "files": {
                "type": "array",
                "items": {"type": "string"},
                "description": "File-name globs `citykpi ingest --feed auto` picks this feed for.",
            },
            "columns": {
                **text_map,
                "description": "field -> file column (a+b joins several: a composite key).",
            },
            "wide": {**text_map, "description": "format wide: file column -> indicator id."},
            "set": {
                **text_map,
                "description": "field -> the same value for every row (a column the file lacks).",
            },
            "missing": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Value cells meaning 'no value' (':', '..', 'NA', '' …): recorded as missing.",
            },
            "dimensions": {
                "oneOf": [
                    {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
                    {"type": "array", "items": {"type": "string"}},
                ],
                "description": "dimension -> the file column holding it (null, or a list of names: set by recode).",
            },
            "recode": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": {"oneOf": [{"type": "string"}, text_map]},
                },
                "description": "file column -> value -> the fields (and dimensions) that value stands for.",
            },
            "date_formats": {**text_map, "description": "field -> strptime format, e.g. period: '%Y'."},
            "due": _DUE,
        },
        parser.FEED_REQUIRED,
        "A delivery from a provider: what it carries, how its files read, when it is due.",
    )
    rule = _obj(
        {
            "id": {"type": "string", "pattern": parser.SOURCE_ID_RE.pattern},
            "description": {"type": "string"},
            "kind": _enum(model.RULE_KINDS, "sum, disaggregation or area_rollup."),
            "total": {"type": "string", "description": "sum: the indicator that is the total."},
            "parts": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "indicator": {
                "type": "string",
                "description": "disaggregation, area_rollup: the indicator checked.",
            },
            "dimension": {"type": "string", "description": "disaggregation: the dimension summed over."},
            "values": {"type": "array", "items": {"type": "string"}},
            "level": _enum(model.LEVELS, "area_rollup: the parents' level."),
            "method": _enum(
                model.RULE_METHODS, "area_rollup: how children combine (default: the indicator's)."
            ),
            "tolerance": {
                "oneOf": [
                    {"type": "number", "minimum": 0},
                    {"type": "string", "pattern": r"^\s*[0-9.]+\s*%\s*$"},
                ],
                "description": "Allowed difference: a number, or a percentage of the total ('1%').",
            },
        },
        parser.RULE_REQUIRED,
        "A declared identity the data must satisfy (citykpi quality).",
    )
    domain = _obj(
        {
            "id": {"type": "string", "pattern": parser.DOMAIN_RE.pattern},
            "description": {"type": "string"},
            "forecast": forecast,
        },
        parser.DOMAIN_REQUIRED,
        "Settings shared by the indicators of a domain.",
    )
    incident = _obj(
        {
            "id": {"type": "string", "pattern": parser.GROUP_ID_RE.pattern},
            "description": {"type": "string"},
            "start": {"type": "string", "format": "date"},
            "end": {"type": "string", "format": "date"},
            "indicators": {"type": "array", "items": {"type": "string"}, "description": "Ids or globs."},
            "domains": {"type": "array", "items": {"type": "string"}},
            "areas": {"type": "array", "items": {"type": "string"}},
        },
        parser.INCIDENT_REQUIRED,
        "Days left out of seasonal baselines.",
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "citykpi catalogue file",
        "description": f"One YAML file of a citykpi indicator catalogue (schema_version {SCHEMA_VERSION}).",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "schema_version": {"type": "integer", "enum": list(parser.SCHEMA_VERSIONS)},
            "indicators": {"type": "array", "items": {"$ref": "#/$defs/indicator"}},
            "indices": {"type": "array", "items": {"$ref": "#/$defs/index"}},
            "groups": {"type": "array", "items": {"$ref": "#/$defs/group"}},
            "sources": {"type": "array", "items": {"$ref": "#/$defs/source"}},
            "feeds": {"type": "array", "items": {"$ref": "#/$defs/feed"}},
            "consistency": {"type": "array", "items": {"$ref": "#/$defs/rule"}},
            "domains": {"type": "array", "items": {"$ref": "#/$defs/domain"}},
            "incidents": {"type": "array", "items": {"$ref": "#/$defs/incident"}},
        },
        "$defs": {
            "indicator": _obj(indicator_props, parser.INDICATOR_REQUIRED, "One KPI or vital sign."),
            "index": index,
            "group": group,
            "source": source,
            "feed": feed,
            "rule": rule,
            "domain": domain,
            "incident": incident,
        },
    }


def catalogue_schema_json() -> str:
    """The JSON Schema as indented JSON text."""
    return json.dumps(catalogue_schema(), ensure_ascii=False, indent=2) + "\n"
