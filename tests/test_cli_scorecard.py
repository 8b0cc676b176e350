"""The scorecard commands through CliRunner: evaluate (every format), show, alerts, rank, diff, runs list.

Exit codes are a contract: 0 ok, 1 breached --fail-on, 2 usage, 3 data/catalogue/environment.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from typer.testing import CliRunner, Result

from citykpi.catalogue import load_catalogue
from citykpi.cli import app
from citykpi.render.exporters import EXTENSIONS
from citykpi.warehouse import Warehouse, ingest, load_areas
from tests.scorecard_city import START, write_city, write_days

DAY = date(2026, 11, 14)  # Yuzhong AQI orange, no red


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A warehouse with two weeks of data for the tiny city."""
    root = tmp_path_factory.mktemp("city")
    paths = write_city(root)
    files = write_days(paths["inbox"], START, DAY)
    catalogue = load_catalogue(paths["catalogue"])
    with Warehouse.open(paths["db"]) as wh:
        load_areas(wh, paths["areas"])
        ingest(wh, catalogue, files)
    return paths


def run(city: dict[str, Path], *args: str) -> Result:
    """Invoke the CLI against the city's database and catalogue."""
    runner = CliRunner(env={"COLUMNS": "120", "NO_COLOR": "1"})
    return runner.invoke(app, ["--db", str(city["db"]), "--catalogue", str(city["catalogue"]), *args])


def test_evaluate_table(city: dict[str, Path]) -> None:
    r = run(city, "evaluate", "--date", DAY.isoformat())
    assert r.exit_code == 0, r.stderr
    for text in ("计分卡 截至 2026-11-14", "空气质量指数", "渝中区", "◆ 橙", "汇总", "综合指数", "运维指数"):
        assert text in r.stdout
    assert "▁" in r.stdout or "█" in r.stdout  # sparklines from history


def test_evaluate_english_by_area_with_reasons(city: dict[str, Path]) -> None:
    r = run(city, "evaluate", "--date", DAY.isoformat(), "--lang", "en", "--group-by", "area", "--why")
    assert r.exit_code == 0, r.stderr
    assert "Yuzhong District" in r.stdout and "ORANGE" in r.stdout and "Explanation" in r.stdout


@pytest.mark.parametrize("flag", [[], ["--no-record"]], ids=["default", "no-record"])
def test_evaluate_leaves_the_database_as_it_was_unless_asked(
    city: dict[str, Path], tmp_path: Path, flag: list[str]
) -> None:
    """An ad-hoc question stores nothing (the database is opened read-only); --record stores a run."""
    from tests._warehouse_support import checksum

    with Warehouse.open(city["db"], read_only=True) as wh:
        before = checksum(wh)
    out = tmp_path / "look.json"
    r = run(city, "evaluate", "--date", DAY.isoformat(), *flag, "--format", "json", "-o", str(out))
    assert r.exit_code == 0, r.stderr
    assert "(not recorded, 6 cells)" in r.stderr
    with Warehouse.open(city["db"], read_only=True) as wh:
        assert checksum(wh) == before
        runs_before = wh.con.execute("SELECT count(*) FROM runs").fetchall()[0][0]
    recorded = run(city, "evaluate", "--date", DAY.isoformat(), "--record", "--format", "json")
    assert json.loads(out.read_text(encoding="utf-8"))["cells"] == json.loads(recorded.stdout)["cells"]
    with Warehouse.open(city["db"], read_only=True) as wh:
        after = wh.con.execute("SELECT count(*) FROM runs").fetchall()[0][0]
        latest = wh.con.execute("SELECT scheduled FROM runs ORDER BY run_id DESC LIMIT 1").fetchall()
    assert after == runs_before + 1 and latest == [(False,)]  # an ad-hoc run


def test_evaluate_filters(city: dict[str, Path]) -> None:
    r = run(
        city,
        "evaluate",
        "--date",
        DAY.isoformat(),
        "--level",
        "district",
        "--domain",
        "environment",
        "--format",
        "json",
    )
    assert r.exit_code == 0, r.stderr
    cells = json.loads(r.stdout)["cells"]
    assert {c["level"] for c in cells} == {"district"} and {c["domain"] for c in cells} == {"environment"}
    r = run(city, "evaluate", "--date", DAY.isoformat(), "--status", "orange", "--format", "jsonl")
    assert r.exit_code == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert lines and {x["status"] for x in lines} == {"orange"}
    r = run(city, "evaluate", "--date", DAY.isoformat(), "--indicator", "water.*", "--format", "csv")
    assert r.exit_code == 0, r.stderr
    frame = pl.read_csv(r.stdout.encode())
    assert set(frame.get_column("indicator_id").to_list()) == {"water.supply.pressure_ok"}


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json", "jsonl", "markdown", "html", "xlsx", "junit"])
def test_evaluate_every_format_to_a_file(city: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"scorecard{EXTENSIONS[fmt]}"
    r = run(city, "evaluate", "--date", DAY.isoformat(), "--format", fmt, "--output", str(out))
    assert r.exit_code == 0, r.stderr
    assert out.exists() and out.stat().st_size > 100
    assert f"wrote {out}" in r.stderr
    if fmt == "parquet":
        assert pl.read_parquet(out).height == 6
    elif fmt == "xlsx":
        assert openpyxl.load_workbook(out).sheetnames == ["summary", "city", "district", "indices"]
    elif fmt == "json":
        assert json.loads(out.read_text(encoding="utf-8"))["schema"] == "citykpi.scorecard"
    elif fmt == "junit":
        assert len(ET.parse(out).getroot().findall(".//testcase")) == 6
    elif fmt == "html":
        assert "<!DOCTYPE html>" in out.read_text(encoding="utf-8")


def test_fail_on_exit_codes(city: dict[str, Path]) -> None:
    assert run(city, "evaluate", "--date", DAY.isoformat()).exit_code == 0  # default never
    assert run(city, "evaluate", "--date", DAY.isoformat(), "--fail-on", "red").exit_code == 0
    assert run(city, "evaluate", "--date", DAY.isoformat(), "--fail-on", "orange").exit_code == 1
    r = run(city, "evaluate", "--date", DAY.isoformat(), "--format", "junit", "--fail-on", "orange")
    assert r.exit_code == 1
    root = ET.fromstring(r.stdout)
    assert int(root.get("failures", "0")) == 1
    # --status picks what is shown, not what is judged: the orange cell still fails the run
    shown = run(city, "evaluate", "--date", DAY.isoformat(), "--status", "green", "--format", "jsonl",
                "--fail-on", "orange")  # fmt: skip
    assert shown.exit_code == 1
    assert {json.loads(x)["status"] for x in shown.stdout.splitlines()} == {"green"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "--period", "fortnight"], "--period"),
        (["evaluate", "--date", "2026-13-01"], "--date"),
        (["evaluate", "--format", "pdf"], "--format"),
        (["evaluate", "--format", "xlsx"], "--output"),
        (["evaluate", "--output", "x.csv"], "--output"),
        (["evaluate", "--fail-on", "purple"], "--fail-on"),
        (["evaluate", "--status", "pink"], "--status"),
        (["evaluate", "--level", "county"], "--level"),  # was an empty run, recorded, exit 0
        (["evaluate", "--kind", "kpii"], "--kind"),
        (["alerts", "--level", "county"], "--level"),
        (["evaluate", "--lang", "fr"], "--lang"),
        (["evaluate", "--as-ingested"], "--as-ingested"),
        (["evaluate", "--no-such-option"], "No such option"),
        (["show", "env.air.aqx"], "env.air.aqi"),
        (["rank", "nope.nope"], "unknown indicator or index"),
        (["rank", "env.air.aqi", "--level", "province"], "--level"),
        (["alerts", "--min", "pink"], "--min"),
        (["diff", "--from", "not-a-run"], "not a run id"),
    ],
)
def test_usage_errors_exit_2(city: dict[str, Path], args: list[str], message: str) -> None:
    r = run(city, *args)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert message in r.stderr


def test_environment_errors_exit_3(city: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(
        app,
        ["--db", str(tmp_path / "none.duckdb"), "--catalogue", str(city["catalogue"]), "show", "env.air.aqi"],
    )
    assert r.exit_code == 3 and r.stderr.startswith("Error: ")
    r = runner.invoke(app, ["--db", str(city["db"]), "--catalogue", str(tmp_path / "missing"), "evaluate"])
    assert r.exit_code == 3 and r.stderr.startswith("Error: ")
    r = runner.invoke(app, ["--db", str(tmp_path / "none.duckdb"), "runs", "list"])
    assert r.exit_code == 3
    r = runner.invoke(
        app, ["--db", str(tmp_path / "none.duckdb"), "--catalogue", str(city["catalogue"]), "evaluate"]
    )
    assert r.exit_code == 3 and "no database" in r.stderr
    assert not (tmp_path / "none.duckdb").exists()  # evaluate never creates an empty database


def test_export_error_exit_3(city: dict[str, Path], tmp_path: Path) -> None:
    r = run(
        city, "evaluate", "--date", DAY.isoformat(), "--format", "csv", "-o", str(tmp_path / "no" / "x.csv")
    )
    assert r.exit_code == 3 and "does not exist" in r.stderr


def test_explain_prints_sql(city: dict[str, Path]) -> None:
    r = run(city, "evaluate", "--date", DAY.isoformat(), "--explain")
    assert r.exit_code == 0, r.stderr
    assert "SELECT" in r.stdout.upper()


def test_show_history_for_a_group_of_areas(tmp_path: Path) -> None:
    """--area takes a catalogue group, whose members' history is shown (it was filtered away)."""
    paths = write_city(tmp_path)
    (paths["catalogue"] / "groups.yaml").write_text(
        "groups:\n  - id: central\n    name: {zh: 中心, en: Central}\n    areas: ['500103']\n",
        encoding="utf-8",
    )
    files = write_days(paths["inbox"], START, DAY)
    with Warehouse.open(paths["db"]) as wh:
        load_areas(wh, paths["areas"])
        ingest(wh, load_catalogue(paths["catalogue"]), files)
    by_group = run(
        paths, "show", "env.air.aqi", "--to", DAY.isoformat(), "--area", "central", "--from", "2026-11-10"
    )
    by_area = run(
        paths, "show", "env.air.aqi", "--to", DAY.isoformat(), "--area", "500103", "--from", "2026-11-10"
    )
    assert by_group.exit_code == 0, by_group.stderr
    assert "(no history)" not in by_group.stdout and "2026-11-10" in by_group.stdout
    assert by_group.stdout == by_area.stdout


def test_show(city: dict[str, Path]) -> None:
    r = run(city, "show", "env.air.aqi", "--to", DAY.isoformat(), "--area", "500103", "--from", "2026-11-10")
    assert r.exit_code == 0, r.stderr
    for text in (
        "空气质量指数 · env.air.aqi",
        "Air quality index",
        "lower_is_better",
        "渝中区",
        "2026-11-10",
        "│",
    ):
        assert text in r.stdout
    assert "2026-11-09" not in r.stdout
    assert "渝北区" not in r.stdout


def test_alerts(city: dict[str, Path]) -> None:
    r = run(city, "alerts", "--date", DAY.isoformat(), "--lang", "en")
    assert r.exit_code == 0, r.stderr
    assert (
        "alerts ≥ ORANGE" in r.stdout and "Air quality index" in r.stdout and "Yuzhong District" in r.stdout
    )
    r = run(city, "alerts", "--date", DAY.isoformat(), "--min", "red", "--lang", "en")
    assert r.exit_code == 0 and "No alerts." in r.stdout
    assert run(city, "alerts", "--date", DAY.isoformat(), "--fail-on", "orange").exit_code == 1


def test_rank(city: dict[str, Path]) -> None:
    r = run(city, "rank", "env.air.aqi", "--date", DAY.isoformat(), "--lang", "en")
    assert r.exit_code == 0, r.stderr
    lines = [x for x in r.stdout.splitlines() if "District" in x]
    assert "Yubei" in lines[0] and "Yuzhong" in lines[1]  # lower AQI is better
    r = run(city, "rank", "index.operation", "--date", DAY.isoformat())
    assert r.exit_code == 0, r.stderr
    assert "运维指数" in r.stdout and "渝中区" in r.stdout


def test_diff_and_runs_list(city: dict[str, Path]) -> None:
    assert run(city, "evaluate", "--date", "2026-11-05", "--scheduled").exit_code == 0
    assert run(city, "evaluate", "--date", DAY.isoformat(), "--scheduled").exit_code == 0
    r = run(city, "diff", "--lang", "en")
    assert r.exit_code == 0, r.stderr
    assert "→" in r.stdout and "worse" in r.stdout
    r = run(city, "diff", "--from", "2026-11-05", "--to", DAY.isoformat(), "--lang", "en")
    assert r.exit_code == 0, r.stderr
    assert "Air quality index" in r.stdout
    r = run(city, "runs", "list", "-n", "3")
    assert r.exit_code == 0, r.stderr
    assert "2026-11-14" in r.stdout and "recorded" in r.stdout and "R red · O orange" in r.stdout
    assert "scheduled" in r.stdout


def test_ad_hoc_runs_do_not_move_the_comparisons(tmp_path: Path) -> None:
    """`evaluate --record` keeps an ad-hoc run: `diff` and the "new" of `alerts` still compare the
    scheduled runs, unless --runs all asks for every recorded run."""
    paths = write_city(tmp_path)
    files = write_days(paths["inbox"], START, DAY)
    with Warehouse.open(paths["db"]) as wh:
        load_areas(wh, paths["areas"])
        ingest(wh, load_catalogue(paths["catalogue"]), files)
    assert (
        run(paths, "evaluate", "--date", "2026-11-12", "--scheduled").exit_code == 0
    )  # run 1: AQI 148 yellow
    assert (
        run(paths, "evaluate", "--date", "2026-11-13", "--record").exit_code == 0
    )  # run 2, ad hoc: 156 orange
    assert run(paths, "evaluate", "--date", DAY.isoformat(), "--scheduled").exit_code == 0  # run 3
    diffs = json.loads(run(paths, "diff", "--format", "json").stdout)
    assert diffs == [] or all(d["change"] != "new" for d in diffs)
    listed = json.loads(run(paths, "runs", "list", "--format", "json").stdout)
    assert [(r["run_id"], r["scheduled"]) for r in listed] == [(3, True), (2, False), (1, True)]
    only = json.loads(run(paths, "runs", "list", "--scheduled", "--format", "json").stdout)
    assert [r["run_id"] for r in only] == [3, 1]
    # `previous` is run 1 for the scheduled runs, run 2 with --runs all
    r = run(paths, "diff", "--from", "previous", "--to", "latest", "--runs", "all", "--lang", "en")
    assert r.exit_code == 0 and "run 2 → run 3" in r.stdout, r.stdout
    r = run(paths, "diff", "--lang", "en")
    assert r.exit_code == 0 and "run 1 → run 3" in r.stdout, r.stdout
    # a date names its latest scheduled run; an ad-hoc run by date only with --runs all
    missing = run(paths, "diff", "--from", "2026-11-13")
    assert missing.exit_code == 2 and "no scheduled run for 2026-11-13" in missing.stderr
    assert "--runs all" in missing.stderr
    assert run(paths, "diff", "--from", "2026-11-13", "--runs", "all").exit_code == 0
    assert run(paths, "diff", "--from", "2").exit_code == 0  # an id names any run
    filtered = run(paths, "evaluate", "--date", DAY.isoformat(), "--scheduled", "--level", "city")
    assert filtered.exit_code == 2 and "--scheduled records the whole catalogue" in filtered.stderr

    # alerts: Yuzhong's orange AQI is new since the scheduled run of 11-12 (yellow) …
    def yuzhong_aqi(*extra: str) -> dict[str, object]:
        found = json.loads(run(paths, "alerts", "--date", DAY.isoformat(), "--format", "json", *extra).stdout)
        return next(a for a in found if a["indicator_id"] == "env.air.aqi" and a["area_id"] == "500103")

    assert (yuzhong_aqi()["is_new"], yuzhong_aqi()["previous_status"]) == (True, "yellow")
    # … and not new against the ad-hoc run of 11-13, which only --runs all compares with
    assert (yuzhong_aqi("--runs", "all")["is_new"], yuzhong_aqi("--runs", "all")["previous_status"]) == (
        False,
        "orange",
    )


def test_every_command_has_help_with_an_example() -> None:
    runner = CliRunner()
    for args in (["evaluate"], ["show"], ["alerts"], ["rank"], ["diff"], ["runs", "list"], ["run"]):
        r = runner.invoke(app, [*args, "--help"])
        assert r.exit_code == 0, args
        assert "Example: citykpi" in r.stdout, args


@pytest.fixture(scope="module")
def two_decimals(city: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The city's catalogue with ``decimals: 2`` declared for the pressure compliance rate."""
    folder = tmp_path_factory.mktemp("decimals")
    text = (city["catalogue"] / "city.yaml").read_text(encoding="utf-8")
    marker = '    unit: "%"\n'
    assert text.count(marker) == 1
    (folder / "city.yaml").write_text(text.replace(marker, marker + "    decimals: 2\n"), encoding="utf-8")
    return folder


def _yubei_pressure(stdout: str) -> str:
    """The line of the table with Yubei's pressure compliance (99.0 - 0.2 × 13 = 96.4 on DAY)."""
    lines = [line for line in stdout.splitlines() if "渝北区" in line and "%" in line and "index" not in line]
    assert len(lines) == 1, stdout
    return lines[0]


def test_tables_show_the_decimals_the_catalogue_declares(city: dict[str, Path], two_decimals: Path) -> None:
    base = ["--db", str(city["db"]), "--catalogue", str(two_decimals)]
    runner = CliRunner(env={"COLUMNS": "120", "NO_COLOR": "1"})
    args = ["evaluate", "--date", DAY.isoformat(), "--indicator", "water.*", "--no-record"]
    declared = runner.invoke(app, [*base, *args])
    assert declared.exit_code == 0, declared.stderr
    assert "96.40%" in _yubei_pressure(declared.stdout)
    default = run(city, *args)  # the catalogue without decimals: one
    assert "96.4%" in _yubei_pressure(default.stdout) and "96.40%" not in default.stdout


@pytest.mark.parametrize("command", ["evaluate", "alerts", "rank", "show"])
def test_decimals_option_overrides_the_catalogue(city: dict[str, Path], command: str) -> None:
    args = {
        "evaluate": ["evaluate", "--date", DAY.isoformat(), "--indicator", "water.*", "--no-record"],
        "alerts": ["alerts", "--date", DAY.isoformat(), "--min", "yellow"],
        "rank": ["rank", "water.supply.pressure_ok", "--date", DAY.isoformat()],
        "show": ["show", "water.supply.pressure_ok", "--area", "500112", "--to", DAY.isoformat()],
    }[command]
    r = run(city, *args, "--decimals", "3")
    assert r.exit_code == 0, r.stderr
    assert "96.400%" in r.stdout, r.stdout


def test_decimals_option_is_checked(city: dict[str, Path]) -> None:
    r = run(city, "evaluate", "--date", DAY.isoformat(), "--decimals", "-1")
    assert r.exit_code == 2
    assert "--decimals" in r.stderr
