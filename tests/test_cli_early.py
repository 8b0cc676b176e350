"""Early warning through the CLI: ``alerts --early``, the outlook in ``evaluate`` and ``show``, the
calendar warning, and the forecast columns of the exports."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from citykpi.cli.app import app
from citykpi.engine import holidays
from tests.engine_helpers import City

DAY = date(2025, 6, 30)
CATALOGUE = """schema_version: 1
indicators:
  - id: w.pressure_drop
    name: {zh: 管网压降, en: Network pressure drop}
    kind: vital_sign
    domain: water
    unit: kPa
    description: Pressure lost between the plant and the far end of the network.
    levels: [city, district]
    frequency: daily
    direction: lower_is_better
    thresholds: {blue: 110, yellow: 115, orange: 120, red: 125}
    rollup: {time: last, area: none}
    forecast: {horizon: 10}
  - id: w.calls
    name: {zh: 热线来电, en: Hotline calls}
    kind: vital_sign
    domain: water
    unit: cases
    description: Calls about water, judged against comparable days.
    levels: [city]
    frequency: daily
    direction: band
    thresholds: {basis: anomaly, baseline: 4, green: [-6, 6], yellow: [-8, 8]}
    rollup: {time: sum, area: none}
  - id: k.coverage
    name: {zh: 覆盖率, en: Coverage}
    kind: kpi
    domain: digital
    unit: "%"
    description: Share covered.
    levels: [city]
    frequency: monthly
    direction: higher_is_better
    thresholds: {yellow: 40, red: 30}
    rollup: {time: last, area: none}
    target: {value: 80, due: 2027-12-31, baseline: 50, baseline_date: 2024-01-01}
    forecast: true
"""


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("early")
    (root / "catalogue").mkdir()
    (root / "catalogue" / "water.yaml").write_text(CATALOGUE, encoding="utf-8")
    city = City(root)
    start = DAY - timedelta(days=59)
    # D1 rises 1 a day to 106.5: above 115 (yellow) in 8.5 days, above 120 (orange) only in 13.5,
    # past the 10-day horizon; D2 rises 2 a day to 112.5: above 125 (red) in 6.25 days
    city.observe(
        "w.pressure_drop",
        [("D1", DAY - timedelta(days=k), 106.5 - 1.0 * k) for k in range(28)]
        + [("D2", DAY - timedelta(days=k), 112.5 - 2.0 * k) for k in range(28)],
    )
    city.observe("w.calls", [("C", start + timedelta(days=n), 100.0 + n % 3) for n in range(60)])
    months = [date(2024 + m // 12, m % 12 + 1, 1) for m in range(18)]
    city.observe("k.coverage", [("C", m, 50 + 0.5 * n) for n, m in enumerate(months)], freq_class=1)
    city.wh.close()
    return {"db": root / "city.duckdb", "catalogue": root / "catalogue"}


def run(paths: dict[str, Path], *args: str) -> Result:
    runner = CliRunner(env={"COLUMNS": "120", "NO_COLOR": "1"})
    return runner.invoke(app, ["--db", str(paths["db"]), "--catalogue", str(paths["catalogue"]), *args])


def test_alerts_early_lists_what_heads_for_orange_or_red_soonest_first(paths: dict[str, Path]) -> None:
    r = run(paths, "alerts", "--early", "--date", DAY.isoformat(), "--lang", "en")
    assert r.exit_code == 0, r.stderr
    assert "1 early alerts: forecast to reach ORANGE or worse · 2025-06-30" in r.stdout
    assert "→ red in ~7 days (around 2025-07-07" in r.stdout and "Network pressure drop" in r.stdout
    r = run(paths, "alerts", "--early", "--date", DAY.isoformat(), "--min", "yellow", "--format", "csv")
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [(x["area_id"], x["forecast_status"], x["forecast_periods"]) for x in rows] == [
        ("D2", "red", "7"),
        ("D1", "yellow", "9"),
    ]
    assert rows[0]["forecast_date"] == "2025-07-07"


def test_alerts_early_fails_on_the_forecast_colour(paths: dict[str, Path]) -> None:
    assert run(paths, "alerts", "--early", "--date", DAY.isoformat(), "--fail-on", "red").exit_code == 1
    r = run(paths, "alerts", "--early", "--date", DAY.isoformat(), "--min", "red", "--fail-on", "never")
    assert r.exit_code == 0 and "1 项趋势预警（预计转为红或更差）" in r.stdout
    quiet = run(paths, "alerts", "--early", "--date", (DAY - timedelta(days=20)).isoformat(), "--lang", "en")
    assert quiet.exit_code == 0 and "No cell's trend reaches that colour within its horizon." in quiet.stdout


def test_evaluate_and_show_carry_the_outlook(paths: dict[str, Path]) -> None:
    r = run(paths, "evaluate", "--date", DAY.isoformat(), "--lang", "en", "--level", "district")
    assert r.exit_code == 0, r.stderr
    assert "Outlook" in r.stdout and "→ red in ~7 days" in r.stdout
    r = run(paths, "show", "k.coverage", "--to", DAY.isoformat(), "--lang", "en")
    assert r.exit_code == 0, r.stderr
    assert "will miss: 73.5 by 2027-12-31" in r.stdout and "trend +0.50/month" in r.stdout
    r = run(paths, "show", "w.pressure_drop", "--to", DAY.isoformat(), "--lang", "en", "--area", "D2")
    assert "outlook · D2: → red in ~7 days (around 2025-07-07" in r.stdout


def test_the_json_export_carries_the_forecast(paths: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    r = run(
        paths, "evaluate", "--date", DAY.isoformat(), "--format", "json", "--output", str(out), "--no-record"
    )
    assert r.exit_code == 0, r.stderr
    cells = {
        (c["indicator_id"], c["area_id"]): c for c in json.loads(out.read_text(encoding="utf-8"))["cells"]
    }
    assert cells[("w.pressure_drop", "D2")]["forecast_date"] == "2025-07-07"
    coverage = cells[("k.coverage", "C")]
    assert coverage["target_forecast"] == "will_miss" and coverage["target_projected"] == pytest.approx(73.5)


def test_a_year_the_holiday_calendar_does_not_cover_is_said_on_stderr(
    paths: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(holidays, "coverage", lambda: (2004, 2024))
    r = run(paths, "evaluate", "--date", DAY.isoformat(), "--no-record")
    assert r.exit_code == 0, r.stderr
    assert "warning: China's holiday calendar (chinesecalendar" in r.stderr
    assert "covers 2004–2024, not 2025" in r.stderr and "pip install --upgrade chinesecalendar" in r.stderr
