"""The catalogue keys of the real-time vital signs: the city's time zone, alert rules, timed roll-ups,
staleness in minutes and the built-in alert_episodes source — parsed, and checked with rule codes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from citykpi.catalogue import check_catalogue, load_catalogue
from citykpi.catalogue.model import AlertRule, Persistence

GAS = """
  - id: gas.lel
    name: {{zh: 燃气, en: Gas}}
    kind: vital_sign
    domain: gas
    unit: "%LEL"
    description: x
    levels: [city, district]
    frequency: realtime
    max_staleness: 30m
    direction: {direction}
    thresholds: {thresholds}
    {extra}
"""


def catalogue(tmp_path: Path, *entries: str, head: str = "", files: dict[str, str] | None = None) -> Path:
    root = tmp_path / "cat"
    root.mkdir(exist_ok=True)
    (root / "a.yaml").write_text(head + "indicators:\n" + "".join(entries), encoding="utf-8")
    for name, text in (files or {}).items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def gas(
    extra: str = "",
    *,
    direction: str = "lower_is_better",
    thresholds: str = "{orange: 20, red: 35, inclusive: true}",
) -> str:
    return GAS.format(direction=direction, thresholds=thresholds, extra=extra)


def codes(path: Path) -> list[tuple[str, str]]:
    return [(d.rule, d.message) for d in check_catalogue(path).diagnostics]


def test_a_sound_real_time_catalogue(tmp_path: Path) -> None:
    path = catalogue(
        tmp_path,
        gas("alert: {colour: red, clear: 30, for: 15m, clear_for: 3 readings}\n"),
        head="timezone: Asia/Shanghai\n",
    )
    cat = load_catalogue(path)
    assert cat.timezone == "Asia/Shanghai"
    (ind,) = cat.indicators
    assert ind.max_staleness == timedelta(minutes=30)
    assert ind.alert == AlertRule(
        colour="red",
        clear=30.0,
        for_=Persistence(duration=timedelta(minutes=15)),
        clear_for=Persistence(readings=3),
        loc=ind.alert.loc if ind.alert else None,
    )


def test_a_file_with_only_the_time_zone_defines_something(tmp_path: Path) -> None:
    path = catalogue(tmp_path, gas(), files={"city.yaml": "timezone: Asia/Shanghai\n"})
    assert codes(path) == []


@pytest.mark.parametrize(
    ("files", "rule", "words"),
    [
        ({"city.yaml": "timezone: Asia/Shangai\n"}, "CK013", "not a time zone"),
        ({"b.yaml": "timezone: Asia/Shanghai\n", "c.yaml": "timezone: Europe/Berlin\n"}, "CK015", "differs"),
    ],
)
def test_time_zone_rules(tmp_path: Path, files: dict[str, str], rule: str, words: str) -> None:
    found = codes(catalogue(tmp_path, gas(), files=files))
    assert [r for r, _ in found] == [rule] and words in found[0][1]


@pytest.mark.parametrize(
    ("entry", "rule", "words"),
    [
        (gas("alert: {colour: green}\n"), "CK083", "colour"),
        (gas("alert: {colour: red, for: soon}\n"), "CK013", "'for'"),
        (gas("alert: {colour: red, for: 0 readings}\n"), "CK013", "'for'"),
        (gas("alert: {colour: red, clear: 40}\n"), "CK036", "above where red starts (35)"),
        (gas("alert: {colour: red, clear: [1, 2]}\n"), "CK012", "must be a number"),
        (gas("alert: {colour: red}\n", thresholds="{yellow: 10}"), "CK036", "never reach red"),
        (
            gas("alert: {colour: red}\n", thresholds="{basis: change_previous, red: 35}"),
            "CK069",
            "earlier period",
        ),
        (
            gas(
                "alert: {colour: red, clear: 30}\n",
                direction="band",
                thresholds="{green: [0, 10], orange: [0, 30]}",
            ),
            "CK012",
            "range",
        ),
        (
            gas(
                "alert: {colour: red, clear: [0, 40]}\n",
                direction="band",
                thresholds="{green: [0, 10], orange: [0, 30]}",
            ),
            "CK036",
            "outside the range",
        ),
        (gas("alert: {colour: red, when: now}\n"), "CK010", "when"),
    ],
)
def test_alert_rules(tmp_path: Path, entry: str, rule: str, words: str) -> None:
    found = codes(catalogue(tmp_path, entry))
    assert [r for r, _ in found] == [rule], found
    assert words in found[0][1]


def test_a_higher_is_better_alert_clears_above(tmp_path: Path) -> None:
    entry = gas("alert: {colour: red, clear: 0.12}\n", direction="higher_is_better", thresholds="{red: 0.14}")
    found = codes(catalogue(tmp_path, entry))
    assert [r for r, _ in found] == ["CK036"]
    assert "clears above 0.12, which is below where red starts (0.14)" in found[0][1]
    ok = gas("alert: {colour: red, clear: 0.16}\n", direction="higher_is_better", thresholds="{red: 0.14}")
    assert codes(catalogue(tmp_path, ok)) == []


def test_an_alert_needs_readings_of_its_own(tmp_path: Path) -> None:
    ratio = """
  - id: gas.share
    name: {zh: 比例, en: Share}
    kind: vital_sign
    domain: gas
    unit: "%"
    description: x
    levels: [city]
    frequency: daily
    direction: lower_is_better
    thresholds: {red: 50}
    value: {ratio: {numerator: gas.lel, denominator: gas.lel, factor: 100}}
    alert: {colour: red}
"""
    found = codes(catalogue(tmp_path, gas(), ratio))
    assert [r for r, _ in found] == ["CK069"] and "no readings of its own" in found[0][1]


def test_timed_roll_ups_need_their_where(tmp_path: Path) -> None:
    bad = gas("rollup: {time: minutes_where}\n")
    found = codes(catalogue(tmp_path, bad))
    assert [r for r, _ in found] == ["CK065"] and "minutes_where" in found[0][1]
    good = gas('rollup: {time: minutes_where, where: "value >= 20"}\n')
    assert codes(catalogue(tmp_path, good)) == []
    assert codes(catalogue(tmp_path, gas("rollup: {time: time_weighted_mean}\n"))) == []


MEASURE = """
  - id: gas.resolve
    name: {{zh: 处置, en: Resolve}}
    kind: kpi
    domain: gas
    unit: minutes
    description: x
    levels: [city]
    frequency: daily
    direction: lower_is_better
    thresholds: {{red: 120}}
    value: {{measure: {{source: alert_episodes, numerator: "{numerator}"}}}}
"""


def test_the_alert_episodes_are_a_built_in_source(tmp_path: Path) -> None:
    assert codes(catalogue(tmp_path, gas(), MEASURE.format(numerator="avg(minutes_to_resolve)"))) == []
    unknown = codes(catalogue(tmp_path, gas(), MEASURE.format(numerator="avg(time_to_fix)")))
    assert [r for r, _ in unknown] == ["CK040"]
    declared = catalogue(
        tmp_path,
        gas(),
        files={
            "s.yaml": "sources:\n  - id: alert_episodes\n    time_column: t\n    area_column: a\n"
            "    columns: {t: timestamp, a: text}\n"
        },
    )
    found = codes(declared)
    assert ("CK013" in [r for r, _ in found]) and any("built in" in m for _, m in found)
