"""The exit contract of `citykpi run`: one table, and a job driven into each of its states.

The table in the README and in docs/daily-run.md is generated from ``citykpi.daily.health`` and must
stay equal to it. Each state is then produced through the CLI: ok, the verdict, usage, failed,
partial (rejected, stale, undelivered), no data, busy, config; and the precedence when several apply.
Also here: the run report, ``--report -``, the logs (text and JSON, rounding, totals), the city's
time zone for "yesterday", ``--dry-run`` and ``--check-config``.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner, Result

from citykpi.cli import app
from citykpi.cron import run_lock
from citykpi.daily.health import HEALTH_CODES, PRECEDENCE, RUN_OUTCOMES, exit_code, exit_code_table, worst
from citykpi.errors import ExitCode
from tests._warehouse_support import checksum
from tests.daily_support import pinned_clock
from tests.scorecard_city import START, write_city, write_day, write_days

ROOT = Path(__file__).resolve().parents[1]
DAY = date(2026, 11, 19)  # Yuzhong AQI 204: red


def _config(root: Path, extra: str = "") -> Path:
    path = root / "citykpi.toml"
    path.write_text(
        f'database = "city.duckdb"\ncatalogue = "catalogue"\nareas = "areas.csv"\ninbox = ["inbox"]\n'
        f'lang = "en"\nsettle = 0\ntimezone = "Asia/Shanghai"\n{extra}\n[outputs]\nfolder = "out"\nformats = ["json"]\n',
        encoding="utf-8",
    )
    return path


def _run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["run", "--config", str(config), *args])


def _report(root: Path, day: date = DAY) -> dict[str, object]:
    return json.loads((root / "out" / "runs" / f"run-{day}-day.json").read_text(encoding="utf-8"))


@pytest.fixture
def city(tmp_path: Path) -> Path:
    """The tiny city with its inbox holding 1–19 November."""
    paths = write_city(tmp_path)
    write_days(paths["inbox"], START, DAY)
    return tmp_path


# --- one table ----------------------------------------------------------------------------------------


def test_the_table_in_the_docs_is_the_registry() -> None:
    table = exit_code_table()
    for doc in ("README.md", "docs/daily-run.md"):
        assert table in (ROOT / doc).read_text(encoding="utf-8"), (
            f"{doc}: the exit-code table is not the registry's"
        )
    assert [o.code for o in RUN_OUTCOMES] == [0, 1, 2, 3, 4, 5, 75, 78]
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 5, 75, 78]  # the published codes, one enum


def test_precedence_health_first_then_the_verdict() -> None:
    assert PRECEDENCE == ("config", "busy", "failed", "no_data", "partial")
    assert worst(["partial", "no_data"]) == "no_data" and worst([]) == "ok"
    assert exit_code("partial", breached=True) == 4  # the operator's problem is named first
    assert exit_code("ok", breached=True) == 1 and exit_code("ok", breached=False) == 0
    assert {o.health: o.code for o in RUN_OUTCOMES if o.health} == HEALTH_CODES


# --- each state, through the CLI ---------------------------------------------------------------------


def test_ok_and_the_verdict_only_when_asked(city: Path) -> None:
    config = _config(city)
    ok = _run(config, "--date", DAY.isoformat())
    assert ok.exit_code == 0, ok.stderr  # a red city is not a broken job
    report = _report(city)
    assert report["health"] == {"status": "ok", "exit_code": 0, "reasons": []}
    assert report["verdict"]["worst"] == "red" and report["verdict"]["breached"] is False  # type: ignore[index]
    assert _run(config, "--date", DAY.isoformat(), "--fail-on", "red").exit_code == 1
    assert _report(city)["verdict"]["breached"] is True  # type: ignore[index]
    assert _run(config, "--date", DAY.isoformat(), "--fail-on", "purple").exit_code == 2
    assert _run(config, "--log-format", "xml").exit_code == 2


def test_failed_nothing_evaluated(city: Path) -> None:
    (city / "catalogue" / "city.yaml").write_text("indicators: [{id: broken", encoding="utf-8")
    r = _run(_config(city), "--date", DAY.isoformat())
    assert r.exit_code == 3 and "\nError: " in "\n" + r.stderr, r.stderr
    report = _report(city)
    assert (report["health"]["status"], report["run_id"], report["outputs"]) == ("failed", None, [])  # type: ignore[index]


@pytest.mark.parametrize(
    ("extra", "code", "reason"),
    [
        ("", 4, "broken.csv was rejected"),
        ('partial_on = ["stale", "undelivered"]', 0, None),  # rejects do not make this city's runs partial
    ],
)
def test_partial_when_a_file_is_rejected(city: Path, extra: str, code: int, reason: str | None) -> None:
    (city / "inbox" / "broken.csv").write_bytes(b"\x00garbage\xff\n")
    r = _run(_config(city, extra), "--date", DAY.isoformat(), "--fail-on", "red")
    assert r.exit_code == (code or 1), r.stderr  # partial wins over the breached verdict
    assert _report(city)["health"]["reasons"] == ([reason] if reason else [])  # type: ignore[index]
    assert (city / "inbox" / "rejected" / "broken.csv").exists()


def test_partial_when_a_feed_is_stale(tmp_path: Path) -> None:
    paths = write_city(tmp_path)
    write_days(paths["inbox"], START, DAY)
    for n in (17, 18, 19):  # the pressure feed stopped on the 16th: stale after two days
        path = paths["inbox"] / f"obs-2026-11-{n}.csv"
        path.write_text(
            "\n".join(line for line in path.read_text().splitlines() if "pressure" not in line) + "\n"
        )
    r = _run(_config(tmp_path), "--date", DAY.isoformat())
    assert r.exit_code == 4, r.stderr
    assert _report(tmp_path)["health"]["reasons"] == ["3 stale cell(s): a feed stopped delivering"]  # type: ignore[index]
    relaxed = _run(_config(tmp_path, 'partial_on = ["rejected", "undelivered"]'), "--date", DAY.isoformat())
    assert relaxed.exit_code == 0, relaxed.stderr


def test_partial_when_a_notification_is_not_delivered(city: Path) -> None:
    extra = (
        '[[notifiers]]\nname = "duty"\ntype = "webhook"\nurl = "http://127.0.0.1:9/hooks"\n'
        "timeout = 1\nretries = 1\nbackoff = 0.01"
    )
    config = _config(city)
    config.write_text(config.read_text(encoding="utf-8") + "\n" + extra + "\n", encoding="utf-8")
    r = _run(config, "--date", DAY.isoformat())
    assert r.exit_code == 4, r.stderr
    report = _report(city)
    assert report["health"]["reasons"] == ["1 digest(s) not delivered yet (retried next run)"]  # type: ignore[index]
    [n] = report["notifications"]  # type: ignore[misc]
    assert (n["status"], n["attempts"]) == ("undelivered", 2) and "cannot reach http://127.0.0.1:9" in n[
        "error"
    ]
    listed = CliRunner().invoke(
        app, ["--db", str(city / "city.duckdb"), "alerts", "outbox", "--format", "json"]
    )
    [row] = json.loads(listed.stdout)
    assert (row["notifier"], row["status"], row["attempts"]) == ("duty", "pending", 2)


def test_no_data_for_the_date(city: Path) -> None:
    config = _config(city)
    assert _run(config, "--date", DAY.isoformat()).exit_code == 0
    late = _run(config, "--date", "2026-11-20")
    assert late.exit_code == 5, late.stderr
    assert (
        "no data for 2026-11-20: nothing was observed in the date's period (the newest data is from 2026-11-19)"
        in (late.stderr)
    )
    assert _report(city, date(2026, 11, 20))["health"]["status"] == "no_data"
    write_day(city / "inbox", date(2026, 11, 20))  # the files came late: the day is run again
    assert _run(config, "--date", "2026-11-20").exit_code == 0


def test_busy_and_config(city: Path) -> None:
    config = _config(city)
    with run_lock(city / "city.duckdb"):
        busy = _run(config, "--date", DAY.isoformat())
    assert busy.exit_code == 75 and "another citykpi run holds" in busy.stderr
    assert not (city / "out").exists()  # nothing done
    config.write_text(
        config.read_text(encoding="utf-8").replace("settle = 0", "settle = -1"), encoding="utf-8"
    )
    bad = _run(config, "--date", DAY.isoformat())
    assert bad.exit_code == 78 and "settle must be a number (>= 0)" in bad.stderr
    config.write_text(config.read_text(encoding="utf-8").replace("settle = -1", 'timezone = "Mars/Olympus"'))
    assert _run(config).exit_code == 78


# --- the report and the logs --------------------------------------------------------------------------


def test_report_on_stdout(city: Path) -> None:
    r = _run(_config(city), "--date", DAY.isoformat(), "--report", "-")
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert (report["schema"], report["schema_version"], report["as_of"], report["run_id"]) == (
        "citykpi.run_report",
        1,
        DAY.isoformat(),
        1,
    )
    assert len(report["files"]) == 19 and all(f["status"] == "loaded" for f in report["files"])
    assert report["outputs"] == [str(city / "out" / f"scorecard-{DAY}-day.json")]
    assert report["timezone"] == "Asia/Shanghai" and report["started_at"].endswith("+08:00")
    assert not (city / "out" / "runs").exists()  # printed instead of written


def test_json_logs_carry_time_level_and_run(city: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pinned_clock(monkeypatch, datetime(2026, 11, 20, 2, 10, tzinfo=ZoneInfo("Asia/Shanghai")))
    r = _run(_config(city), "--date", DAY.isoformat(), "--log-format", "json")
    assert r.exit_code == 0, r.stderr
    lines = [json.loads(line) for line in r.stderr.splitlines()]
    assert all(set(line) >= {"time", "level", "run", "event", "message"} for line in lines)
    assert all(
        line["time"].startswith("2026-11-20T02:10") and line["time"].endswith("+08:00") for line in lines
    )
    assert [line["run"] for line in lines[:2]] == [None, None] and {line["run"] for line in lines[2:]} == {1}
    ingest = [line for line in lines if line["event"] == "ingest"]
    assert len(ingest) == 19 and ingest[0]["rows_loaded"] == 4 and ingest[0]["status"] == "loaded"
    [alert] = [line for line in lines if line["event"] == "alert"]
    assert (alert["indicator_id"], alert["status"], alert["value"], alert["new"]) == (
        "env.air.aqi",
        "red",
        204.0,
        True,
    )
    assert lines[-2]["event"] == "done" and lines[-2]["exit_code"] == 0


def test_text_logs_round_to_the_indicator_and_total_above_the_limit(city: Path) -> None:
    catalogue = city / "catalogue" / "city.yaml"
    catalogue.write_text(
        catalogue.read_text(encoding="utf-8").replace(
            "    unit: index\n", "    unit: index\n    decimals: 0\n"
        )
    )
    r = _run(_config(city), "--date", DAY.isoformat())
    line = next(x for x in r.stderr.splitlines() if "NEW RED env.air.aqi" in x)
    assert line.split(" ")[0].endswith("+08:00") and " INFO    run=1   NEW RED" in line
    assert line.endswith("Yuzhong District: 204 index, 1 day(s)")  # decimals: 0
    totals = _run(_config(city, "log_alert_lines = 0"), "--date", DAY.isoformat())
    assert "  environment: 1 (1 red, 0 orange; 1 new)" in totals.stderr
    assert "NEW RED" not in totals.stderr and "(more than 0 alerts: totals per domain" in totals.stderr


def test_yesterday_is_the_citys(city: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 01:00 on the 20th in Chongqing is still the 19th in UTC: the job evaluates the 19th, not the 18th
    pinned_clock(monkeypatch, datetime(2026, 11, 20, 1, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    r = _run(_config(city), "--report", "-")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["as_of"] == "2026-11-19"


# --- dry run and check-config -------------------------------------------------------------------------


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def test_dry_run_changes_nothing(city: Path) -> None:
    config = _config(city)
    assert _run(config, "--date", DAY.isoformat()).exit_code == 0
    nxt = date(2026, 11, 20)
    write_day(city / "inbox", nxt)
    from citykpi.warehouse import Warehouse

    with Warehouse.open(city / "city.duckdb", read_only=True) as wh:
        before = checksum(wh)
    files = _tree(city)
    r = _run(config, "--date", nxt.isoformat(), "--dry-run", "--report", "-")
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["dry_run"] is True and report["run_id"] is None
    assert [(Path(f["path"]).name, f["status"]) for f in report["files"]] == [
        (f"obs-{nxt}.csv", "would_load")
    ]
    assert report["health"]["status"] == "no_data"  # from what is stored now: the new file is not in yet
    assert f"would write {city / 'out' / f'scorecard-{nxt}-day.json'}" in r.stderr
    assert "from the data stored now (the inbox files above not included)" in r.stderr
    assert _tree(city) == files  # nothing moved, written or removed
    with Warehouse.open(city / "city.duckdb", read_only=True) as wh:
        assert checksum(wh) == before


def test_check_config(city: Path) -> None:
    config = _config(city)
    ok = _run(config, "--check-config")
    assert ok.exit_code == 0, ok.stdout
    assert "0 problem(s): everything a run needs is in place" in ok.stdout
    assert "database" in ok.stdout and "does not exist yet" in ok.stdout
    config.write_text(
        config.read_text(encoding="utf-8")
        + '\n[[notifiers]]\nname = "sms"\ntype = "command"\ncommand = ["no-such-sender-citykpi"]\n'
        + '[[notifiers]]\nname = "duty"\ntype = "webhook"\nurl = "https://x.example/h"\n'
        + 'headers = {Authorization = "Bearer ${CITYKPI_NO_SUCH_TOKEN}"}\n',
        encoding="utf-8",
    )
    bad = _run(config, "--check-config")
    assert bad.exit_code == 78, bad.stdout
    assert (
        "PROBLEM  notifier 'sms': command 'no-such-sender-citykpi' is not an executable on PATH" in bad.stdout
    )
    assert "environment variable CITYKPI_NO_SUCH_TOKEN (in its headers) is not set" in bad.stdout
    (city / "catalogue" / "city.yaml").write_text("indicators: [", encoding="utf-8")
    config.write_text(config.read_text(encoding="utf-8").split("\n[[notifiers]]")[0], encoding="utf-8")
    broken = _run(config, "--check-config")
    assert broken.exit_code == 3 and "PROBLEM  catalogue" in broken.stdout
    assert not (city / "out").exists() and not (city / "city.duckdb").exists()


# --- --report FILE: the one output-target rule -------------------------------------------------------


def test_report_file_on_the_command_line_never_replaces_what_the_run_reads(city: Path) -> None:
    """`--report FILE` goes through the rule of every other output: the database (and its WAL and
    lock), the catalogue, the areas file, an inbox's data files and the config file itself are
    refused (exit 2, a usage error: the config is fine), so is a name that is not .json and a
    foreign existing file without --force; a previous report is replaced; - prints it."""
    from citykpi.warehouse import Warehouse

    config = _config(city)
    assert _run(config, "--date", DAY.isoformat()).exit_code == 0
    db = city / "city.duckdb"
    with Warehouse.open(db, read_only=True) as wh:
        before = checksum(wh)
    config_text = config.read_text(encoding="utf-8")
    (city / "lookup.json").write_text('{"not": "a citykpi file"}', encoding="utf-8")
    (city / "inbox" / "late.csv").write_text("indicator_id,area_id,period,value\n", encoding="utf-8")
    for target, why in [
        (db, "it is the database"),
        (city / "city.duckdb.wal", "the database's write-ahead log"),
        (config, "it is the run's config file"),
        (city / "areas.csv", "an input file of this command"),
        (city / "catalogue" / "city.yaml", "the catalogue folder"),
        (city / "inbox" / "late.csv", "an input folder of this command"),
        (city / "report.txt", "report.txt must name a .json file"),
        (city / "notes.JSON.bak", "must name a .json file"),
    ]:
        for dry in ([], ["--dry-run"]):
            r = _run(config, "--date", DAY.isoformat(), *dry, "--report", str(target))
            assert r.exit_code == 2, (target, dry, r.output)
            assert why in r.stderr, (target, r.stderr)
    with Warehouse.open(db, read_only=True) as wh:
        assert checksum(wh) == before
    assert config.read_text(encoding="utf-8") == config_text
    assert (city / "inbox" / "late.csv").read_text(encoding="utf-8") == "indicator_id,area_id,period,value\n"
    # a foreign file is replaced only with --force; a previous report always
    foreign = _run(config, "--date", DAY.isoformat(), "--report", str(city / "lookup.json"))
    assert foreign.exit_code == 2 and "is not a previous run report" in foreign.stderr
    assert "--force" in foreign.stderr
    assert (city / "lookup.json").read_text(encoding="utf-8") == '{"not": "a citykpi file"}'
    (city / "old.json").write_text("plain text\n", encoding="utf-8")
    forced = _run(config, "--date", DAY.isoformat(), "--report", str(city / "old.json"), "--force")
    assert forced.exit_code == 0, forced.stderr
    assert json.loads((city / "old.json").read_text(encoding="utf-8"))["schema"] == "citykpi.run_report"
    again = _run(config, "--date", DAY.isoformat(), "--dry-run", "--report", str(city / "old.json"))
    assert again.exit_code == 0, again.stderr
    assert json.loads((city / "old.json").read_text(encoding="utf-8"))["dry_run"] is True
    printed = _run(config, "--date", DAY.isoformat(), "--dry-run", "--report", "-")
    assert printed.exit_code == 0 and json.loads(printed.stdout)["dry_run"] is True
    empty = _run(config, "--date", DAY.isoformat(), "--report", "")
    assert empty.exit_code == 2 and "--report is empty" in empty.stderr


# --- what the operator reads --------------------------------------------------------------------------


def test_a_rejected_file_says_why_and_where_its_rows_are(city: Path) -> None:
    """A file whose every row was rejected names the top reasons, with counts and codes, and the
    command that lists the rows; in the log (at WARNING, as is the partial run's last line) and in
    the report."""
    inbox = city / "inbox"
    (inbox / "x.csv").write_text(
        "indicator_id,area_id,period,value\n"
        f"env.air.aqi,999999,{DAY},80\nenv.air.aqi,999998,{DAY},81\nenv.air.nox,500103,{DAY},3\n",
        encoding="utf-8",
    )
    r = _run(_config(city), "--date", DAY.isoformat())
    assert r.exit_code == 4, r.stderr
    report = _report(city)
    [x] = [f for f in report["files"] if Path(f["path"]).name == "x.csv"]  # type: ignore[union-attr,index]
    batch = x["batch_id"]
    assert (x["status"], x["rows_loaded"], x["rows_rejected"]) == ("rejected", 0, 3)
    assert x["rejects"] == [
        {"code": "IN202", "reason": "unknown area id (load it with `citykpi areas load`)", "rows": 2},
        {"code": "IN102", "reason": "unknown indicator id (not in the catalogue)", "rows": 1},
    ]
    assert x["message"] == (
        "2 × IN202 unknown area id (load it with `citykpi areas load`); 1 × IN102 unknown indicator id "
        f"(not in the catalogue); the rows: citykpi db rejects --batch {batch}"
    )
    [line] = [line for line in r.stderr.splitlines() if " ingest x.csv" in line]
    assert " WARNING " in line and line.endswith(f"3 rejected: {x['message']} → rejected/")
    [done] = [line for line in r.stderr.splitlines() if " done: " in line]
    assert " WARNING " in done and "done: partial (exit 4)" in done


def test_the_last_line_is_as_loud_as_the_run_went(city: Path) -> None:
    ok = _run(_config(city), "--date", DAY.isoformat())
    [done] = [line for line in ok.stderr.splitlines() if " done: " in line]
    assert " INFO " in done
    (city / "catalogue" / "city.yaml").write_text("indicators: [{id: broken", encoding="utf-8")
    failed = _run(_config(city), "--date", DAY.isoformat())
    assert failed.exit_code == 3
    [done] = [line for line in failed.stderr.splitlines() if " done: " in line]
    assert " ERROR " in done and "done: failed (exit 3)" in done


def test_a_dry_run_says_how_the_run_would_end(city: Path) -> None:
    """The dry run exits 0 (it could look); its last line says what the run would do, not
    'partial (exit 0)'."""
    assert _run(_config(city), "--date", DAY.isoformat()).exit_code == 0
    late = date(2026, 11, 20)
    dry = _run(_config(city), "--date", late.isoformat(), "--dry-run", "--report", "-")
    assert dry.exit_code == 0, dry.stderr
    [done] = [line for line in dry.stderr.splitlines() if "dry run: the run would end" in line]
    assert " WARNING " in done and "dry run: the run would end no_data (exit 5); verdict: " in done, done
    assert "(exit 0)" not in done
    assert json.loads(dry.stdout)["exit_code"] == 0


def test_check_config_names_the_report_of_the_day_a_run_would_evaluate(
    city: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--check-config shows the report path of the day the run would use: yesterday in the city's
    zone by default, or --date."""
    pinned_clock(monkeypatch, datetime(2026, 11, 20, 1, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    config = _config(city)
    r = _run(config, "--check-config")
    assert r.exit_code == 0, r.stdout
    assert f"report {city / 'out' / 'runs' / 'run-2026-11-19-day.json'}" in r.stdout
    assert "today is 2026-11-20 there; a run now evaluates 2026-11-19" in r.stdout
    dated = _run(config, "--check-config", "--date", "2026-11-05")
    assert f"report {city / 'out' / 'runs' / 'run-2026-11-05-day.json'}" in dated.stdout
