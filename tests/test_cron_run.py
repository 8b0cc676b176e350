"""`citykpi run`: config parsing, the lock, and a two-day cron simulation (run twice per day)."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from citykpi.cli import app
from citykpi.cron import RunConfig, run_job, run_lock
from citykpi.errors import ConfigError, DatabaseBusyError
from tests.scorecard_city import START, write_city, write_day, write_days

DAY1 = date(2026, 11, 18)  # Yuzhong AQI 196: orange
DAY2 = date(2026, 11, 19)  # Yuzhong AQI 204: red

FORMATS = '["csv", "parquet", "json", "jsonl", "markdown", "html", "xlsx", "junit"]'


def write_config(root: Path, *, archive: str = "move", extra: str = "") -> Path:
    """A citykpi.toml for the tiny city under ``root`` (relative paths)."""
    path = root / "citykpi.toml"
    path.write_text(
        f"""database = "city.duckdb"
catalogue = "catalogue"
areas = "areas.csv"
inbox = ["inbox"]
archive = "{archive}"
lang = "en"
settle = 0
{extra}
[outputs]
folder = "out"
formats = {FORMATS}
name = "scorecard-{{date}}-{{grain}}"
""",
        encoding="utf-8",
    )
    return path


def run_cli(config: Path, *args: str) -> Result:
    """`citykpi run --config CONFIG ARGS`."""
    return CliRunner().invoke(app, ["run", "--config", str(config), *args])


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file in ``folder``."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()
    }


def test_two_days_twice_a_day(tmp_path: Path) -> None:
    paths = write_city(tmp_path)
    config = write_config(tmp_path)
    write_days(paths["inbox"], START, DAY1)

    # day 1, first run: ingests the backlog, archives it, writes every format, exit 0 (no red)
    first = run_cli(config, "--date", DAY1.isoformat())
    assert first.exit_code == 0, first.stderr
    assert "ingest obs-2026-11-18.csv: loaded" in first.stderr
    assert "alerts: 1 at or above orange, 1 new" in first.stderr
    assert sorted(p.name for p in paths["inbox"].iterdir()) == ["done"]
    assert len(list((paths["inbox"] / "done").iterdir())) == 18
    out = tmp_path / "out"
    day1 = digests(out)
    assert sorted(day1) == sorted(
        f"scorecard-2026-11-18-day{ext}"
        for ext in (".csv", ".parquet", ".json", ".jsonl", ".md", ".html", ".xlsx", ".xml")
    )

    # day 1 again: nothing new to ingest, byte-identical outputs, same exit code
    again = run_cli(config, "--date", DAY1.isoformat())
    assert again.exit_code == 0, again.stderr
    assert "no new files" in again.stderr
    assert digests(out) == day1

    # day 2: one new file; Yuzhong AQI turns red: the job is ok and the verdict fails the process
    # only when asked (fail_on defaults to never)
    write_day(paths["inbox"], DAY2)
    second = run_cli(config, "--date", DAY2.isoformat())
    assert second.exit_code == 0, second.stderr
    assert "NEW RED env.air.aqi @ 500103 Yuzhong District: 204.0 index" in second.stderr
    assert "done: ok (exit 0); verdict: worst red, fail_on never" in second.stderr
    day2 = digests(out)
    assert {k: v for k, v in day2.items() if "2026-11-18" in k} == day1  # yesterday's files untouched
    assert len(day2) == 16

    second_again = run_cli(config, "--date", DAY2.isoformat(), "--fail-on", "red")
    assert second_again.exit_code == 1
    assert "done: ok (exit 1); verdict: worst red, fail_on red (breached)" in second_again.stderr
    assert digests(out) == day2

    # the config's fail_on, overridden by --fail-on: exit 0, still identical files
    strict = RunConfig.load(config)
    assert strict.fail_on == "never"
    config.write_text(
        config.read_text(encoding="utf-8").replace('lang = "en"', 'lang = "en"\nfail_on = "red"')
    )
    assert run_cli(config, "--date", DAY2.isoformat()).exit_code == 1
    relaxed = run_cli(config, "--date", DAY2.isoformat(), "--fail-on", "never")
    assert relaxed.exit_code == 0
    assert digests(out) == day2
    # every run wrote its report beside the outputs: the job's health and the city's verdict apart
    report = json.loads((out / "runs" / "run-2026-11-19-day.json").read_text(encoding="utf-8"))
    assert (report["health"]["status"], report["verdict"]["breached"], report["exit_code"]) == (
        "ok",
        False,
        0,
    )
    assert report["verdict"]["worst"] == "red" and report["run_id"] == 6


def test_keep_archive_relies_on_sha256(tmp_path: Path) -> None:
    paths = write_city(tmp_path)
    config = RunConfig.load(write_config(tmp_path, archive="keep"))
    write_days(paths["inbox"], START, DAY1)
    first = run_job(config, as_of=DAY1)
    assert {f.status for f in first.files} == {"loaded"} and len(first.files) == 18
    assert all(f.moved_to is None for f in first.files)
    second = run_job(config, as_of=DAY1)
    assert {f.status for f in second.files} == {"unchanged"}
    assert second.run_id is not None and first.run_id is not None and second.run_id > first.run_id
    assert [p.read_bytes() for p in first.outputs] == [p.read_bytes() for p in second.outputs]
    assert int(second.exit_code) == 0 and not second.breached
    assert first.log[0].startswith("run 2026-11-18 (day, UTC)")


def test_rejected_file_is_moved_aside(tmp_path: Path) -> None:
    paths = write_city(tmp_path)
    config = RunConfig.load(write_config(tmp_path))
    write_days(paths["inbox"], START, DAY1)
    (paths["inbox"] / "broken.csv").write_bytes(b"\x00\x01garbage\xff\n")
    result = run_job(config, as_of=DAY1)
    broken = next(f for f in result.files if f.path.name == "broken.csv")
    assert broken.status == "rejected"
    assert broken.moved_to == paths["inbox"] / "rejected" / "broken.csv"
    assert any(line.startswith("WARNING ingest broken.csv") for line in result.log)
    assert result.health.status == "partial" and result.exit_code == 4
    assert result.health.reasons == ("broken.csv was rejected",)


def test_overlapping_runs_get_a_busy_error(tmp_path: Path) -> None:
    paths = write_city(tmp_path)
    config_path = write_config(tmp_path)
    with run_lock(paths["db"]):
        with pytest.raises(DatabaseBusyError, match="another citykpi run"), run_lock(paths["db"], wait=0.3):
            pass
        r = run_cli(config_path, "--date", DAY1.isoformat())
        assert r.exit_code == 75  # busy: try later (sysexits EX_TEMPFAIL), not a failure
        assert "another citykpi run holds" in r.stderr
        assert not (tmp_path / "out").exists()  # nothing done, no report that would hide the other run's
    with run_lock(paths["db"]):  # released
        pass


def test_config_defaults_and_paths(tmp_path: Path) -> None:
    cfg = RunConfig.load(write_config(tmp_path))
    assert cfg.database == tmp_path / "city.duckdb" and cfg.catalogue == tmp_path / "catalogue"
    assert cfg.inboxes[0].path == tmp_path / "inbox" and cfg.fail_on == "never" and cfg.grain == "day"
    assert cfg.outputs.path_for("html", DAY1, "day") == tmp_path / "out" / "scorecard-2026-11-18-day.html"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('fail_on = "purple"', "fail_on"),
        ('grain = "fortnight"', "grain"),
        ('colour = "red"', "unknown key 'colour'"),
        ("wait = -1", "wait"),
        ('lang = "fr"', "lang"),
        ("keep_runs = 1", "keep_runs must be a whole number of runs, at least 2"),
        ('[[inboxes]]\npath = "x"\nstrict = "false"', "strict must be true or false"),
        ('[[inboxes]]\npath = "x"\nformat = "tall"', "format must be one of long, wide, source"),
        ('[[inboxes]]\npath = "x"\nformat = "source"', 'source = "ID" goes with format = "source"'),
        ('[[inboxes]]\npath = "x"\non_duplicate = "merge"', "on_duplicate must be one of reject"),
        ('keep_runs = "all"', "keep_runs"),
    ],
)
def test_config_errors(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RunConfig.load(write_config(tmp_path, extra=extra))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('catalogue = "c"', "missing key 'database'"),
        ('database = "d"\ncatalogue = "c"\n[outputs]\nname = "x"', "must contain {date}"),
        ('database = "d"\ncatalogue = "c"\n[outputs]\nname = "../{date}"', "plain file name"),
        ('database = "d"\ncatalogue = "c"\n[outputs]\nformats = ["pdf"]', "unknown output format"),
        ('database = "d"\ncatalogue = "c"\narchive = "delete"', "archive"),
        ("database = ", "invalid TOML"),
    ],
)
def test_config_file_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        RunConfig.load(path)


def test_missing_config_exits_78(tmp_path: Path) -> None:
    r = run_cli(tmp_path / "nope.toml")
    assert r.exit_code == 78 and "no config file" in r.stderr  # sysexits EX_CONFIG


def test_bad_date_exits_2(tmp_path: Path) -> None:
    r = run_cli(write_config(tmp_path), "--date", "tomorrow-ish")
    assert r.exit_code == 2


def test_keep_runs_prunes_after_each_run_and_alerts_still_compare(tmp_path: Path) -> None:
    paths = write_city(tmp_path)
    config = RunConfig.load(write_config(tmp_path, archive="keep", extra="keep_runs = 2"))
    write_days(paths["inbox"], START, DAY1)
    first = run_job(config, as_of=DAY1)
    again = run_job(config, as_of=DAY1)
    write_day(paths["inbox"], DAY2)
    last = run_job(config, as_of=DAY2)
    assert (first.run_id, again.run_id, last.run_id) == (1, 2, 3)
    assert any(line.startswith("pruned 1 old run(s)") and "kept the latest 2" in line for line in last.log)
    assert last.previous_run_id == 2  # the kept run of DAY1, so "new since the previous run" still works
    assert "NEW RED env.air.aqi @ 500103" in "\n".join(last.log)
    from citykpi.warehouse import Warehouse

    with Warehouse.open(paths["db"], read_only=True) as wh:
        kept = wh.con.execute("SELECT run_id FROM runs ORDER BY run_id").fetchall()
        orphans = wh.con.execute(
            "SELECT count(*) FROM run_cells WHERE run_id NOT IN (SELECT run_id FROM runs)"
        ).fetchall()
    assert kept == [(2,), (3,)] and orphans == [(0,)]


def test_the_documented_config_is_valid(tmp_path: Path) -> None:
    """docs/daily-run.md's example citykpi.toml parses, with every key it shows."""
    import re
    import tomllib

    doc = (Path(__file__).resolve().parents[1] / "docs" / "daily-run.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", doc, re.S)
    assert block is not None
    cfg = RunConfig.from_mapping(tomllib.loads(block.group(1)), base=tmp_path)
    assert (cfg.keep_runs, cfg.grain, cfg.fail_on, cfg.alerts_min) == (90, "day", "never", "orange")
    assert [i.format for i in cfg.inboxes] == ["long", "long", "source"]
    gb = cfg.inboxes[1]
    assert (gb.encoding, gb.patterns, gb.date_formats) == (
        "gb18030",
        ("城管*.csv",),
        {"period": "%Y年%m月%d日"},
    )
    assert gb.mapping == {
        "indicator_id": "指标编码",
        "area_id": "区划代码",
        "period": "统计日期",
        "value": "数值",
    }
    assert cfg.outputs.formats == ("html", "xlsx", "json", "junit")
    assert [(n.name, n.type) for n in cfg.notifiers] == [
        ("archive", "jsonl"),
        ("duty", "webhook"),
        ("sms", "command"),
    ]
    assert cfg.notifiers[1].headers == {"Authorization": "Bearer ${CITYKPI_WEBHOOK_TOKEN}"}
    assert (cfg.timezone, cfg.remind_after, cfg.settle, cfg.log_format) == ("Asia/Shanghai", 3, 1.0, "text")
    assert cfg.report_path(DAY1) == tmp_path / "out" / "runs" / "run-2026-11-18-day.json"


def test_a_data_quality_report_beside_the_scorecard(tmp_path: Path) -> None:
    paths = write_city(tmp_path)
    config = write_config(tmp_path)
    text = config.read_text(encoding="utf-8").replace(f"formats = {FORMATS}", 'formats = ["json"]')
    config.write_text(text + 'quality = ["json", "html"]\n', encoding="utf-8")
    write_days(paths["inbox"], START, DAY1)
    first = run_cli(config, "--date", DAY1.isoformat())
    assert first.exit_code == 0, first.stderr
    assert "data quality: complete " in first.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == [
        "quality-2026-11-18-day.html",
        "quality-2026-11-18-day.json",
        "scorecard-2026-11-18-day.json",
    ]
    import json

    doc = json.loads((out / "quality-2026-11-18-day.json").read_text(encoding="utf-8"))
    assert doc["schema"] == "citykpi.quality" and doc["as_of"] == "2026-11-18" and doc["groups"]
    bad = config.read_text(encoding="utf-8").replace('quality = ["json", "html"]', 'quality = ["pdf"]')
    config.write_text(bad, encoding="utf-8")
    assert run_cli(config, "--date", DAY1.isoformat()).exit_code == 78  # a configuration error
