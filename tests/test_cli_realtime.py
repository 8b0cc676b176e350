"""The real-time commands through CliRunner: --at on every command that takes a date, the alert
lifecycle (alerts --at, alerts history), runs as of an instant, and the time-to-resolve KPI.

A small city of its own: a realtime gas reading every 15 minutes in two districts, the readings
sent in UTC; a red leak in 上海 from 13:00 to 14:00 city time, a flap around the cut in 北京.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from citykpi.cli import app
from citykpi.warehouse import Warehouse

DATA = Path(__file__).parent / "data"

CATALOGUE = """timezone: Asia/Shanghai
indicators:
  - id: gas.lel
    name: {zh: 燃气浓度, en: Gas concentration}
    kind: vital_sign
    domain: gas
    unit: "%LEL"
    description: Combustible gas at the monitored wells.
    owner: 城管局
    levels: [city, district]
    frequency: realtime
    max_staleness: 30m
    direction: lower_is_better
    thresholds: {orange: 20, red: 35, inclusive: true}
    rollup: {time: max, area: max}
    alert: {colour: red, clear: 30, for: 30m}
  - id: gas.resolve_minutes
    name: {zh: 告警处置时长, en: Minutes to resolve}
    kind: kpi
    domain: gas
    unit: minutes
    description: Mean minutes from firing to resolved of the bureau's alerts.
    owner: 城管局
    levels: [city]
    frequency: daily
    direction: lower_is_better
    thresholds: {yellow: 60, red: 120}
    rollup: {area: recompute}
    value:
      measure: {source: alert_episodes, numerator: avg(minutes_to_resolve), filter: "owner = '城管局'"}
"""

#: City time 12:00 … 15:45, every 15 minutes (the file says it in UTC: 04:00 … 07:45Z).
START = datetime(2025, 12, 31, 12, 0)
SHANGHAI = [5, 10, 12, 14, 36, 38, 40, 41, 28, 10, 9, 8, 7, 6, 5, 4]  # red 13:00–13:45, clear at 14:00
BEIJING = [5, 36, 33, 37, 31, 36, 29, 5, 5, 5, 5, 5, 5, 5, 5, 5]  # flaps 12:15–13:30, clear at 13:30


def readings_csv(path: Path) -> Path:
    lines = ["indicator_id,area_id,period,value"]
    for area, values in (("上海", SHANGHAI), ("北京", BEIJING)):
        for n, v in enumerate(values):
            utc = START - timedelta(hours=8) + timedelta(minutes=15 * n)
            lines.append(f"gas.lel,{area},{utc:%Y-%m-%dT%H:%M}Z,{v}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("realtime")
    (root / "catalogue").mkdir()
    (root / "catalogue" / "gas.yaml").write_text(CATALOGUE, encoding="utf-8")
    shutil.copy(DATA / "areas_cn10.csv", root / "areas.csv")
    city = {"db": root / "city.duckdb", "catalogue": root / "catalogue", "root": root}
    assert run(city, "areas", "load", str(root / "areas.csv")).exit_code == 0
    r = run(city, "ingest", str(readings_csv(root / "gas.csv")), "--require-offset")
    assert r.exit_code == 0, r.stdout + r.stderr
    return city


def run(city: dict[str, Path], *args: str) -> Result:
    runner = CliRunner(env={"COLUMNS": "120", "NO_COLOR": "1"})
    return runner.invoke(app, ["--db", str(city["db"]), "--catalogue", str(city["catalogue"]), *args])


def test_readings_in_utc_are_stored_as_city_time(city: dict[str, Path]) -> None:
    r = run(city, "query", "SELECT min(period), max(period) FROM observations", "--format", "json")
    assert json.loads(r.stdout) == [
        {"min(period)": "2025-12-31 12:00:00", "max(period)": "2025-12-31 15:45:00"}
    ]


def test_evaluate_an_instant_at_the_hour_and_15_minute_grains(city: dict[str, Path]) -> None:
    r = run(
        city, "evaluate", "--at", "2025-12-31T13:40", "--period", "hour", "--no-record", "--format", "json"
    )
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["as_of"], doc["grain"], doc["at"]) == ("2025-12-31", "hour", "2025-12-31T13:40:00")
    sh = next(c for c in doc["cells"] if c["area_id"] == "上海")
    # 13:00–13:30 read 36, 38, 40 (13:45's 41 is after the instant); 12:00–12:45 peaked at 14
    assert (sh["period_start"], sh["value"], sh["previous_value"]) == ("2025-12-31T13:00:00", 40.0, 14.0)
    q = run(
        city, "evaluate", "--at", "2025-12-31T13:40", "--period", "15min", "--no-record", "--format", "csv"
    )
    row = next(line for line in q.stdout.splitlines() if ",上海," in line)
    assert "2025-12-31T13:30:00,2025-12-31T13:45:00,40.0," in row


def test_an_instant_with_an_offset_is_city_time(city: dict[str, Path]) -> None:
    utc = run(
        city, "evaluate", "--at", "2025-12-31T05:40Z", "--period", "hour", "--no-record", "--format", "json"
    )
    assert json.loads(utc.stdout)["at"] == "2025-12-31T13:40:00"


def test_date_and_instant_usage_errors(city: dict[str, Path]) -> None:
    both = run(city, "evaluate", "--date", "2025-12-31", "--at", "2025-12-31T13:40")
    assert both.exit_code == 2 and "not both" in both.stderr
    day = run(city, "evaluate", "--date", "2025-12-31", "--period", "hour")
    assert day.exit_code == 2 and "evaluates an instant" in day.stderr and "--at" in day.stderr
    bad = run(city, "alerts", "--at", "13:40")
    assert bad.exit_code == 2 and "2025-12-31T14:00" in bad.stderr


def test_an_offset_without_a_city_zone_is_a_usage_error(city: dict[str, Path], tmp_path: Path) -> None:
    plain = tmp_path / "catalogue"
    plain.mkdir()
    (plain / "gas.yaml").write_text(CATALOGUE.replace("timezone: Asia/Shanghai\n", ""), encoding="utf-8")
    runner = CliRunner()
    r = runner.invoke(
        app, ["--db", str(city["db"]), "--catalogue", str(plain), "evaluate", "--at", "2025-12-31T05:40Z"]
    )
    assert r.exit_code == 2 and "declares no time zone" in r.stderr


def test_alerts_at_an_instant_follow_the_lifecycle(city: dict[str, Path]) -> None:
    pending = run(city, "alerts", "--at", "2025-12-31T13:10", "--format", "json", "--level", "district")
    rows = {r["area_id"]: r for r in json.loads(pending.stdout)}
    # 上海: red from 13:00, for 30 minutes → pending at 13:10; 北京: firing since 12:45 (36 at 12:15 pending,
    # 33 held by the clear level, 37 at 12:45 — 30 minutes on)
    assert rows["上海"]["state"] == "pending" and rows["上海"]["since"] == "2025-12-31 13:00:00"
    assert (rows["北京"]["state"], rows["北京"]["fired_at"]) == ("firing", "2025-12-31 12:45:00")
    assert rows["北京"]["value"] == 31.0  # its latest reading (13:00): orange, but still firing
    firing = run(city, "alerts", "--at", "2025-12-31T13:40", "--level", "district", "--lang", "en")
    assert "firing" in firing.stdout and "Shanghai" in firing.stdout and "Beijing" not in firing.stdout
    quiet = run(city, "alerts", "--at", "2025-12-31T15:00", "--level", "district", "--format", "csv")
    assert quiet.stdout.count("\n") == 1  # the header only: nothing pending or firing


def test_alerts_history_lists_the_episodes(city: dict[str, Path]) -> None:
    r = run(city, "alerts", "history", "--format", "json")
    eps = sorted(json.loads(r.stdout), key=lambda e: e["area_id"])
    assert [
        (
            e["area_id"],
            e["state"],
            e["started_at"],
            e["fired_at"],
            e["ended_at"],
            e["peak"],
            e["minutes_to_resolve"],
        )
        for e in eps
    ] == [
        ("上海", "resolved", "2025-12-31 13:00:00", "2025-12-31 13:30:00", "2025-12-31 14:00:00", 41.0, 30.0),
        ("北京", "resolved", "2025-12-31 12:15:00", "2025-12-31 12:45:00", "2025-12-31 13:30:00", 37.0, 45.0),
    ]
    at = run(city, "alerts", "history", "--at", "2025-12-31T13:10", "--state", "firing", "--format", "csv")
    assert at.stdout.count("\n") == 2 and ",北京," in at.stdout
    since = run(city, "alerts", "history", "--from", "2025-12-31T13:45", "--format", "csv")
    assert since.stdout.count("\n") == 2 and ",上海," in since.stdout
    table = run(city, "alerts", "history", "--lang", "en")
    assert "resolved" in table.stdout and "13:00" in table.stdout
    bad = run(city, "alerts", "history", "--state", "open")
    assert bad.exit_code == 2 and "pending, firing, resolved, cancelled" in bad.stderr


def test_a_recorded_instant_updates_the_lifecycle_and_the_runs(city: dict[str, Path]) -> None:
    for at in ("2025-12-31T13:10", "2025-12-31T14:10"):
        assert run(city, "evaluate", "--at", at, "--period", "hour", "--scheduled").exit_code == 0
    r = run(
        city,
        "query",
        "SELECT count(*) AS n, count(ended_at) AS ended FROM alert_episodes",
        "--format",
        "json",
    )
    assert json.loads(r.stdout) == [{"n": 2, "ended": 2}]
    runs = run(city, "runs", "list", "--format", "json")
    instants = [x["as_at"] for x in json.loads(runs.stdout)]
    assert instants[:2] == ["2025-12-31 14:10:00", "2025-12-31 13:10:00"]
    listing = run(city, "runs", "list")
    assert "2025-12-31 14:10" in listing.stdout
    diff = run(city, "diff", "--from", "2025-12-31T13:10", "--to", "2025-12-31T14:10", "--format", "json")
    assert diff.exit_code == 0
    changes = {(c["area_id"], c["status_from"], c["status_to"]) for c in json.loads(diff.stdout)}
    assert ("上海", "red", "orange") in changes  # 14:00–14:10 read 28
    missing = run(city, "diff", "--from", "2025-12-31T09:00")
    assert missing.exit_code == 2 and "run as of 2025-12-31T09:00" in missing.stderr


def test_time_to_resolve_is_a_kpi(city: dict[str, Path]) -> None:
    r = run(
        city,
        "evaluate",
        "--date",
        "2025-12-31",
        "--no-record",
        "--indicator",
        "gas.resolve_minutes",
        "--format",
        "json",
    )
    (cell,) = json.loads(r.stdout)["cells"]
    assert (cell["value"], cell["status"]) == ((30.0 + 45.0) / 2, "green")
    # as of 13:45 only 北京's episode had been resolved
    early = run(
        city,
        "evaluate",
        "--at",
        "2025-12-31T13:45",
        "--no-record",
        "--indicator",
        "gas.resolve_minutes",
        "--format",
        "json",
    )
    assert json.loads(early.stdout)["cells"][0]["value"] == 45.0


def test_show_rank_and_check_take_an_instant(city: dict[str, Path]) -> None:
    show = run(city, "show", "gas.lel", "--at", "2025-12-31T13:40", "--period", "hour", "--format", "csv")
    assert show.exit_code == 0 and "2025-12-31T13:00:00" in show.stdout
    rank = run(city, "rank", "gas.lel", "--at", "2025-12-31T13:40", "--period", "15min")
    assert rank.exit_code == 0 and "13:40" in rank.stdout
    check = run(city, "check", "--at", "2025-12-31T13:40")
    assert check.exit_code == 2 and "--against" in check.stderr


def test_the_run_job_takes_an_instant(city: dict[str, Path], tmp_path: Path) -> None:
    config = tmp_path / "citykpi.toml"
    config.write_text(
        f"""database = "{city["db"]}"
catalogue = "{city["catalogue"]}"
grain = "hour"
fail_on = "red"
[outputs]
folder = "out"
formats = ["json"]
quality = ["csv"]
""",
        encoding="utf-8",
    )
    r = CliRunner().invoke(app, ["run", "--config", str(config), "--at", "2025-12-31T13:40"])
    assert r.exit_code == 1, r.stderr  # 上海 is red at 13:40
    out = tmp_path / "out" / "scorecard-2025-12-31T1340-hour.json"
    assert json.loads(out.read_text(encoding="utf-8"))["at"] == "2025-12-31T13:40:00"
    # the run's quality report judges the 96 quarter hours that ended by 13:40 in the ten districts;
    # 上海 and 北京 delivered the six of 12:00–13:15 each
    lines = (tmp_path / "out" / "quality-2025-12-31T1340-hour.csv").read_text(encoding="utf-8").splitlines()
    row = dict(zip(lines[0].split(","), lines[1].split(","), strict=True))
    assert (row["group"], row["expected"], row["present"]) == ("城管局", "960", "12")


def test_a_sub_daily_run_tells_its_notifiers_what_changed_since_the_previous_instant(
    city: dict[str, Path], tmp_path: Path
) -> None:
    db = tmp_path / "city.duckdb"
    shutil.copy(city["db"], db)
    config = tmp_path / "citykpi.toml"
    config.write_text(
        f"""database = "{db}"
catalogue = "{city["catalogue"]}"
grain = "hour"
fail_on = "never"
[[notifiers]]
name = "archive"
type = "jsonl"
path = "out/alerts.jsonl"
""",
        encoding="utf-8",
    )
    for at in ("2025-12-31T13:10", "2025-12-31T15:10"):
        r = CliRunner().invoke(app, ["run", "--config", str(config), "--at", at])
        assert r.exit_code == 0, r.stderr
    first, second = (
        json.loads(line)
        for line in (tmp_path / "out" / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    )
    items = [[i for g in d["groups"] for i in g["items"]] for d in (first, second)]
    assert (first["at"], second["at"]) == ("2025-12-31T13:10", "2025-12-31T15:10")
    # 13:00–13:10: 上海 read 36 (red), 北京 31 (orange), the city their max; the city's red alert
    # holds back its districts' (inhibition)
    assert [(i["area_id"], i["status"], i["change"], i["since"]) for i in items[0]] == [
        ("cn", "red", "new", "2025-12-31")
    ]
    assert first["held_back"] == {"silenced": 0, "inhibited": 2}
    # 15:00–15:10: at most 6 anywhere (green): the city's alert is resolved, against the 13:10 run
    assert [(i["area_id"], i["status"], i["previous_status"], i["change"]) for i in items[1]] == [
        ("cn", "green", "red", "resolved")
    ]
    assert second["run_id"] != first["run_id"]
    # the config names no time zone: the job keeps the city's, which the catalogue declares
    reports = [
        json.loads(p.read_text(encoding="utf-8")) for p in sorted((tmp_path / "out" / "runs").glob("*.json"))
    ]
    assert len(reports) == 2 and {r["timezone"] for r in reports} == {"Asia/Shanghai"}
    # 13:10 again, after 15:10 was told: an earlier hour of the same day is a backfill, which tells
    # the notifier nothing (its red would be announced as new again) and keeps what it was told
    again = CliRunner().invoke(app, ["run", "--config", str(config), "--at", "2025-12-31T13:10"])
    assert again.exit_code == 0, again.stderr
    assert "backfill: not notified: archive was told about 2025-12-31 15:10 already" in again.stderr
    assert len((tmp_path / "out" / "alerts.jsonl").read_text(encoding="utf-8").splitlines()) == 2
    with Warehouse.open(db) as wh:
        told = wh.con.execute("SELECT as_of, as_at FROM notify_cursor WHERE notifier = 'archive'").fetchall()
    assert told == [(date(2025, 12, 31), datetime(2025, 12, 31, 15, 10))]


def test_quality_at_an_instant_judges_quarter_hours(city: dict[str, Path]) -> None:
    def series(*args: str) -> dict[str, str]:
        r = run(city, "quality", *args, "--by", "indicator", "--format", "csv", "--table", "series")
        assert r.exit_code == 0, r.stderr
        lines = r.stdout.splitlines()
        head = lines[0].split(",")
        return next(
            dict(zip(head, x.split(","), strict=True)) for x in lines[1:] if x.startswith("gas.lel,上海,")
        )

    # 00:00–14:00 is 56 quarter hours; 上海 delivered the eight of 12:00–13:45 (one reading each)
    at = series("--at", "2025-12-31T14:00", "--from", "2025-12-31")
    assert (at["periods"], at["present"], at["values"]) == ("56", "8", "8")
    # by date the realtime feed is judged by the day: 7 days, one present with its 16 readings
    day = series("--date", "2025-12-31")
    assert (day["periods"], day["present"], day["values"]) == ("7", "1", "16")
    both = run(city, "quality", "--date", "2025-12-31", "--at", "2025-12-31T14:00")
    assert both.exit_code == 2 and "not both" in both.stderr
