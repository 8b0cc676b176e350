"""Catalogue diagnostics: one problem found by ``citykpi check``, and the registry of rule codes.

Every problem has a stable rule code (``CK0xx`` errors, ``CK1xx`` warnings) with a short name and a
one-line description; the codes are a published contract (CI pipelines filter on them) — never
renumber one, only add new ones.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from citykpi.errors import Location

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule code with its short name, default severity and one-line description."""

    code: str
    name: str
    severity: Severity
    description: str


_RULES: tuple[Rule, ...] = (
    # --- YAML -----------------------------------------------------------------------------
    Rule("CK001", "yaml-syntax", "error", "The file is not valid YAML."),
    Rule("CK002", "duplicate-key", "error", "A mapping has the same key twice."),
    Rule("CK003", "tab", "error", "A tab is used for indentation (YAML allows spaces only)."),
    Rule(
        "CK004",
        "yaml-limit",
        "error",
        "File size, nesting depth or alias expansion is over the safety limit.",
    ),
    Rule("CK005", "unsafe-tag", "error", "A YAML tag other than the plain core tags (e.g. !!python/...)."),
    Rule("CK006", "unreadable-file", "error", "The file cannot be read or is not UTF-8."),
    # --- structure ------------------------------------------------------------------------
    Rule("CK010", "unknown-key", "error", "A key the catalogue format does not define (often a typo)."),
    Rule("CK011", "missing-key", "error", "A required key is missing."),
    Rule("CK012", "wrong-type", "error", "A value has the wrong type (e.g. text where a number is needed)."),
    Rule("CK013", "invalid-value", "error", "A value has the right type but an invalid form or range."),
    Rule("CK014", "schema-version", "error", "The file's schema_version is not supported."),
    # --- identity -------------------------------------------------------------------------
    Rule("CK020", "duplicate-id", "error", "Two definitions share an id (across all files)."),
    Rule("CK021", "invalid-id", "error", "An id is not a dotted lower-case identifier."),
    # --- thresholds -----------------------------------------------------------------------
    Rule("CK030", "thresholds-out-of-order", "error", "Cut points are not monotone for the direction."),
    Rule("CK031", "thresholds-overlap", "error", "Band ranges are not nested (they overlap or are equal)."),
    Rule("CK032", "scale-out-of-order", "error", "Scale steps are not ascending or their colours jump back."),
    Rule(
        "CK033", "thresholds-shape", "error", "Cut points given for a band direction, or ranges for another."
    ),
    Rule("CK034", "scale-and-cuts", "error", "An indicator declares both a scale and threshold cut points."),
    Rule("CK035", "invalid-range", "error", "A range's low end is above its high end."),
    # --- references -----------------------------------------------------------------------
    Rule(
        "CK040", "unknown-reference", "error", "A reference to an unknown indicator, index, source or column."
    ),
    Rule("CK041", "cycle", "error", "Indicators or indices depend on themselves."),
    Rule("CK042", "wrong-reference-kind", "error", "A reference names the wrong kind of thing."),
    # --- indices --------------------------------------------------------------------------
    Rule("CK050", "non-positive-weight", "error", "A component weight is zero or negative."),
    Rule(
        "CK051",
        "normalisation-incomplete",
        "error",
        "A normalisation lacks what it needs (goalposts, target).",
    ),
    Rule("CK052", "duplicate-component", "error", "An index lists the same component twice."),
    Rule(
        "CK053",
        "relative-score-absolute-bands",
        "error",
        "An index normalised relatively (min_max, z_score) is coloured by absolute bands.",
    ),
    # --- targets and bases ----------------------------------------------------------------
    Rule("CK060", "target-without-due", "error", "A target has no due date."),
    Rule("CK061", "target-dates", "error", "A target's baseline date is not before its due date."),
    Rule("CK062", "basis-needs-target", "error", "Basis percent_of_target on an indicator without a target."),
    Rule("CK063", "basis-needs-limit", "error", "Basis percent_of_limit without thresholds.limit."),
    Rule("CK064", "rollup-needs-weight", "error", "Area roll-up weighted_mean without a weight."),
    Rule(
        "CK065",
        "rollup-needs-where",
        "error",
        "Time roll-up count_where without where (or where without it).",
    ),
    Rule("CK066", "rollup-needs-parts", "error", "Area roll-up ratio_of_sums on a value that has no parts."),
    Rule(
        "CK067",
        "rollup-recompute",
        "error",
        "Area roll-up recompute on a value with no raw data to recompute.",
    ),
    Rule(
        "CK068",
        "basis-needs-base-period",
        "error",
        "Basis change_base_period on an indicator without base_period.",
    ),
    # --- expressions ----------------------------------------------------------------------
    Rule(
        "CK070",
        "unsafe-expression",
        "error",
        "An expression is unparsable or uses something not whitelisted.",
    ),
    Rule(
        "CK071",
        "expression-type",
        "error",
        "An expression combines values of the wrong types (e.g. a number plus text, a string where digits go).",
    ),
    # --- vocabularies ---------------------------------------------------------------------
    Rule("CK080", "unknown-unit", "error", "A unit that is not in the unit vocabulary."),
    Rule("CK081", "unknown-level", "error", "A level other than city, district, street."),
    Rule("CK082", "unknown-frequency", "error", "A frequency other than realtime … yearly."),
    Rule(
        "CK083", "unknown-choice", "error", "A value outside its closed vocabulary (kind, direction, basis…)."
    ),
    Rule("CK084", "override-level-not-declared", "error", "An override names a level the indicator lacks."),
    # --- consistency rules ----------------------------------------------------------------
    Rule(
        "CK090",
        "rule-unknown-indicator",
        "error",
        "A consistency rule names an indicator the catalogue does not define.",
    ),
    Rule(
        "CK091",
        "rule-unknown-dimension",
        "error",
        "A consistency rule breaks an indicator down by a dimension no feed of that indicator carries.",
    ),
    Rule(
        "CK092",
        "rule-shape",
        "error",
        "A consistency rule lacks what its kind needs (parts, a dimension, a parent level) or has what it cannot use.",
    ),
    # --- warnings -------------------------------------------------------------------------
    Rule("CK100", "missing-description", "warning", "An indicator or index has no description."),
    Rule(
        "CK101",
        "no-thresholds",
        "warning",
        "An indicator has no thresholds: its cells are unscored (shown, never coloured, counted apart).",
    ),
    Rule("CK102", "empty-file", "warning", "A catalogue file defines nothing."),
    Rule("CK103", "unused-input", "warning", "A formula input is declared but not used in the expression."),
    Rule("CK104", "name-not-bilingual", "warning", "A name lacks its Chinese or its English form."),
    Rule("CK105", "staleness-short", "warning", "max_staleness is shorter than one period of the frequency."),
    Rule("CK106", "unused-source", "warning", "A source table is declared but no measure uses it."),
    Rule("CK107", "no-files", "warning", "The catalogue path holds no *.yaml / *.yml files."),
    Rule(
        "CK108",
        "deprecated-key",
        "warning",
        "A key with a deprecated spelling (e.g. scale inside value: is now factor); it is still read.",
    ),
    Rule("CK109", "unused-domain", "warning", "Settings under domains: for a domain no indicator is in."),
    Rule(
        "CK110",
        "incident-matches-nothing",
        "warning",
        "An incident names indicators or domains that match none.",
    ),
)


def did_you_mean(word: str, choices: Collection[str]) -> str | None:
    """'did you mean …?' for the closest choice, or None."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


#: Rule code -> rule, in code order.
RULES: Mapping[str, Rule] = {r.code: r for r in _RULES}


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in the catalogue, where it is, and what to do about it."""

    rule: str
    severity: Severity
    message: str
    location: Location
    hint: str | None = None

    @property
    def name(self) -> str:
        """The rule's short name (e.g. 'duplicate-id')."""
        return RULES[self.rule].name

    def __str__(self) -> str:
        text = f"{self.location}: {self.severity} {self.rule} {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (file, line, column, rule, name, severity, message, hint)."""
        return {
            "file": self.location.file,
            "line": self.location.line,
            "column": self.location.column,
            "rule": self.rule,
            "name": self.name,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
        }


def diagnostic(rule: str, message: str, location: Location, hint: str | None = None) -> Diagnostic:
    """A diagnostic for ``rule`` with the rule's default severity."""
    return Diagnostic(rule, RULES[rule].severity, message, location, hint)


def sort_key(d: Diagnostic) -> tuple[str, int, int, str]:
    """Order diagnostics by file, line, column, rule."""
    return (d.location.file, d.location.line or 0, d.location.column or 0, d.rule)
