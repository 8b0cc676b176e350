"""Renamed YAML keys: the old spelling is still read, to the same model, with a CK108 warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from citykpi.catalogue import check_catalogue, model
from citykpi.catalogue.diagnostics import RULES

HEAD = """\
indicators:
  - id: test.base
    name: {zh: 基, en: Base}
    kind: kpi
    domain: test
    unit: count
    description: Base.
    levels: [city]
    frequency: daily
    direction: lower_is_better
    thresholds: {yellow: 10, red: 20}
  - id: test.x
    name: {zh: 指标, en: Indicator}
    kind: kpi
    domain: test
    unit: "%"
    description: Test.
    levels: [city]
    frequency: daily
    direction: lower_is_better
    thresholds: {yellow: 10, red: 20}
"""
SOURCE = """\
sources:
  - id: cases
    columns: {case_id: text, created_at: timestamp, street_id: text, closed: boolean}
    time_column: created_at
    area_column: street_id
"""
VALUES = {
    "observed": "value: {{observed: {{with_parts: true, {key}: 100}}}}",
    "ratio": "value: {{ratio: {{numerator: test.base, denominator: test.base, {key}: 100000}}}}",
    "measure": "value:\n      measure:\n        source: cases\n        numerator: count_if(closed)\n"
    "        denominator: count(*)\n        {key}: 100",
}


def load(tmp_path: Path, value: str) -> tuple[model.Catalogue | None, list[tuple[str, str, int]]]:
    source = SOURCE if "measure" in value else ""
    (tmp_path / "c.yaml").write_text(HEAD + "    " + value + "\n" + source, encoding="utf-8")
    result = check_catalogue(tmp_path)
    return result.catalogue, [
        (d.rule, d.severity, d.location.line if d.location else 0) for d in result.diagnostics
    ]


def test_the_rule_is_a_documented_warning() -> None:
    assert RULES["CK108"].severity == "warning"
    assert RULES["CK108"].name == "deprecated-key"
    assert "| CK108 | deprecated-key | warning |" in (
        Path(__file__).parent.parent / "docs" / "catalogue.md"
    ).read_text(encoding="utf-8")


@pytest.mark.parametrize("kind", list(VALUES))
def test_scale_inside_value_is_read_as_factor(kind: str, tmp_path: Path) -> None:
    # the same path for both, so that the locations in the model compare equal
    new, new_diags = load(tmp_path, VALUES[kind].format(key="factor"))
    old, old_diags = load(tmp_path, VALUES[kind].format(key="scale"))
    assert new is not None and old is not None
    assert new_diags == []
    assert [d[:2] for d in old_diags] == [("CK108", "warning")]
    # the warning points at the old key's line
    text = (tmp_path / "c.yaml").read_text(encoding="utf-8").splitlines()
    assert "scale" in text[old_diags[0][2] - 1]
    assert old.indicators == new.indicators
    assert old.indicator("test.x").value.scale != 1.0  # type: ignore[union-attr]


def test_a_deprecation_warning_fails_check_only_when_strict(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        HEAD + "    " + VALUES["ratio"].format(key="scale") + "\n", encoding="utf-8"
    )
    result = check_catalogue(tmp_path)
    assert result.ok() and not result.ok(strict=True)
    assert [d.rule for d in result.warnings] == ["CK108"]


def test_both_spellings_at_once_are_an_error(tmp_path: Path) -> None:
    value = "value: {ratio: {numerator: test.base, denominator: test.base, scale: 100, factor: 100}}"
    (tmp_path / "c.yaml").write_text(HEAD + "    " + value + "\n", encoding="utf-8")
    result = check_catalogue(tmp_path)
    assert [d.rule for d in result.errors] == ["CK013"]
    assert "both 'scale' and 'factor'" in result.errors[0].message


def test_the_own_scale_keeps_its_name(tmp_path: Path) -> None:
    own = """\
    scale:
      - {label: {zh: 好, en: Good}, upto: 50, colour: green}
      - {label: {zh: 差, en: Bad}, colour: red}
"""
    text = HEAD.rsplit("    thresholds: {yellow: 10, red: 20}\n", 1)[0] + own
    (tmp_path / "c.yaml").write_text(text, encoding="utf-8")
    result = check_catalogue(tmp_path)
    assert "CK108" not in {d.rule for d in result.diagnostics}
    assert result.catalogue is not None and len(result.catalogue.indicator("test.x").scale) == 2
