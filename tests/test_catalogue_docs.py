"""docs/catalogue.md stays true: its YAML examples are one sound catalogue, its rule table is complete."""

from __future__ import annotations

import re
from pathlib import Path

from citykpi.catalogue import check_catalogue
from citykpi.catalogue.diagnostics import RULES

DOC = Path(__file__).resolve().parent.parent / "docs" / "catalogue.md"
BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)
TOP_KEYS = (
    "schema_version:",
    "indicators:",
    "indices:",
    "groups:",
    "sources:",
    "feeds:",
    "consistency:",
    "domains:",
    "incidents:",
)


def _examples() -> list[str]:
    return [b for b in BLOCK.findall(DOC.read_text(encoding="utf-8")) if b.startswith(TOP_KEYS)]


def test_examples_form_one_sound_catalogue(tmp_path: Path) -> None:
    blocks = _examples()
    assert len(blocks) >= 12
    for i, block in enumerate(blocks):
        (tmp_path / f"example_{i:02d}.yaml").write_text(block, encoding="utf-8")
    result = check_catalogue(tmp_path)
    assert result.diagnostics == (), [str(d) for d in result.diagnostics]
    cat = result.catalogue
    assert cat is not None
    # Each feature the reference promises has an example.
    assert {i.direction for i in cat.indicators} == {"higher_is_better", "lower_is_better", "band"}
    assert {i.thresholds.basis for i in cat.indicators} == {
        "absolute",
        "percent_of_target",
        "percent_of_limit",
        "change_previous",
        "change_last_year",
        "change_base_period",
        "anomaly",
    }
    assert {i.value.kind for i in cat.indicators} == {"observed", "ratio", "formula", "measure", "from"}
    assert {i.rollup.time for i in cat.indicators} == {
        "sum",
        "mean",
        "last",
        "max",
        "min",
        "count",
        "count_where",
    }
    assert {i.rollup.area for i in cat.indicators} >= {
        "sum",
        "ratio_of_sums",
        "weighted_mean",
        "mean",
        "min",
        "worst",
        "recompute",
        "none",
    }
    assert {i.target.method for i in cat.indicators if i.target} == {
        "end_value",
        "cumulative",
        "time_proportional",
    }
    methods = {x.normalise.method for x in cat.indices} | {
        c.normalise.method for x in cat.indices for c in x.components if c.normalise
    }
    assert methods == {"goalposts", "distance_to_target", "colour_score", "min_max", "z_score"}
    assert {x.aggregation for x in cat.indices} == {"linear", "geometric"}
    assert any(i.scale for i in cat.indicators) and any(i.thresholds.overrides for i in cat.indicators)
    assert any(i.thresholds.for_periods > 1 for i in cat.indicators)
    assert cat.groups and cat.sources
    assert {r.kind for r in cat.consistency} == {"sum", "disaggregation", "area_rollup"}
    assert {f.format for f in cat.feeds} == {"long", "source"}
    assert any(s.timeliness and s.filter and s.provider_column for s in cat.sources)


def test_rule_table_lists_every_rule() -> None:
    text = DOC.read_text(encoding="utf-8")
    for rule in RULES.values():
        assert f"| {rule.code} | {rule.name} | {rule.severity} | {rule.description} |" in text
