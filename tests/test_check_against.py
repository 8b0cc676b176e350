"""`citykpi check --against REV`: the definition diff and the statuses a change would alter, end to end.

Small catalogues test each output format, the git handling (a throw-away repository in tmp_path) and
a folder REV; the sample city tests the colour comparison against an independent count: from the
warehouse's observations with plain SQL, which cells cross a tightened cut.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from citykpi.cli import app
from citykpi.warehouse import Warehouse
from tests.golden_support import END, SampleCity

runner = CliRunner()

BASE = """\
schema_version: 1
indicators:
  - id: env.air.pm25
    name: {zh: 细颗粒物浓度, en: PM2.5 concentration}
    kind: vital_sign
    domain: environment
    unit: µg/m³
    description: Daily mean PM2.5.
    levels: [city, district]
    frequency: daily
    direction: lower_is_better
    thresholds: {blue: 35, yellow: 75, orange: 115, red: 150}
  - id: env.noise.day
    name: {zh: 昼间噪声, en: Daytime noise}
    kind: vital_sign
    domain: environment
    unit: dB(A)
    description: Daytime equivalent sound level.
    levels: [city]
    frequency: daily
    direction: lower_is_better
    thresholds: {yellow: 60, red: 70}
  - id: water.supply.pressure_ok
    name: {zh: 供水压力合格率, en: Supply pressure compliance}
    kind: kpi
    domain: water
    unit: "%"
    description: Share of pressure readings in range.
    levels: [city]
    frequency: monthly
    direction: higher_is_better
    thresholds: {yellow: 95, red: 90}
    target: {value: 99, due: 2025-12-31}
"""
ADDED = """\
  - id: env.air.o3
    name: {zh: 臭氧, en: Ozone}
    kind: vital_sign
    domain: environment
    unit: µg/m³
    description: Daily maximum 8-hour ozone.
    levels: [city]
    frequency: daily
    direction: lower_is_better
    thresholds: {yellow: 160, red: 200}
"""
NOISE = BASE[BASE.index("  - id: env.noise.day") : BASE.index("  - id: water.supply")]


def changed(text: str = BASE) -> str:
    """The scripted change: a tightened cut, a removed indicator, a renamed unit, a new target, an addition."""
    text = text.replace("orange: 115, red: 150}", "orange: 115, red: 120}")
    text = text.replace(NOISE, "")
    text = text.replace('unit: "%"', "unit: ‰")
    text = text.replace("target: {value: 99, due: 2025-12-31}", "target: {value: 99.5, due: 2026-12-31}")
    return text + ADDED


GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.org",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, capture_output=True, text=True, check=True
    )
    return done.stdout


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository whose catalogue/ holds BASE committed; the work tree then holds the change."""
    root = tmp_path / "city repo"
    folder = root / "catalogue"
    folder.mkdir(parents=True)
    (folder / "env.yaml").write_text(BASE, encoding="utf-8")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "base")
    (folder / "env.yaml").write_text(changed(), encoding="utf-8")
    monkeypatch.chdir(root)
    return root


def line_of(text: str, needle: str) -> int:
    return text.splitlines().index(next(line for line in text.splitlines() if needle in line)) + 1


# --- the definition diff ----------------------------------------------------------------------


@needs_git
def test_text_lists_added_removed_and_changed_fields(repo: Path) -> None:
    result = runner.invoke(app, ["check", "catalogue", "--against", "HEAD"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "catalogue is sound" in out
    assert "Definition diff against HEAD:catalogue (" in out
    assert "indicators: 1 added, 1 removed, 2 changed" in out
    new = changed()
    assert f"changed  indicator env.air.pm25  catalogue/env.yaml:{line_of(new, 'id: env.air.pm25')}:5" in out
    assert "      thresholds.red: 150 → 120" in out
    assert "      unit: % → ‰" in out
    assert "      target.value: 99 → 99.5" in out
    assert "      target.due: 2025-12-31 → 2026-12-31" in out
    old_line = line_of(BASE, "id: env.noise.day")
    assert f"removed  indicator env.noise.day  (was HEAD:catalogue/env.yaml:{old_line}:5)" in out
    assert f"added    indicator env.air.o3  catalogue/env.yaml:{line_of(new, 'id: env.air.o3')}:5" in out
    # nothing else changed: exactly those field lines
    fields = [line.strip() for line in out.splitlines() if line.startswith("      ")]
    assert fields == [
        "thresholds.red: 150 → 120",
        "unit: % → ‰",
        "target.value: 99 → 99.5",
        "target.due: 2025-12-31 → 2026-12-31",
    ]


@needs_git
def test_json_has_a_versioned_against_object(repo: Path) -> None:
    result = runner.invoke(app, ["check", "catalogue", "--against", "HEAD", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["schema_version"] == 1 and doc["ok"] is True  # check's own document is unchanged
    against = doc["against"]
    assert against["schema_version"] == 1
    assert against["label"] == "HEAD:catalogue"
    assert against["revision"] == git(repo, "rev-parse", "HEAD").strip()
    assert against["old"]["ok"] is True and against["old"]["counts"]["indicators"] == 3
    assert against["changed"] is True and against["colours"] is None
    defs = against["definitions"]
    assert defs["counts"]["indicator"] == {"added": 1, "removed": 1, "changed": 2}
    by_id = {c["id"]: c for c in defs["changes"]}
    assert by_id["env.air.pm25"]["fields"] == [{"field": "thresholds.red", "old": 150, "new": 120}]
    assert by_id["env.noise.day"]["change"] == "removed" and by_id["env.noise.day"]["location"] is None
    assert by_id["env.noise.day"]["old_location"]["file"] == "HEAD:catalogue/env.yaml"
    assert by_id["env.air.o3"]["location"]["line"] == line_of(changed(), "id: env.air.o3")


@needs_git
def test_github_annotates_the_new_file_and_line(repo: Path) -> None:
    result = runner.invoke(app, ["check", "catalogue", "--against", "HEAD", "--format", "github"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    pm25 = line_of(changed(), "id: env.air.pm25")
    assert (
        f"::notice file=catalogue/env.yaml,line={pm25},title=citykpi diff%3A changed indicator env.air.pm25"
        "::thresholds.red: 150 → 120" in lines
    )
    removed = next(line for line in lines if "removed indicator env.noise.day" in line)
    assert "file=" not in removed and "was at HEAD:catalogue/env.yaml" in removed
    assert lines[-1].startswith("::notice title=citykpi diff against HEAD%3Acatalogue::indicators: 1 added")


@needs_git
def test_junit_adds_a_suite_with_a_case_per_changed_entity(repo: Path) -> None:
    result = runner.invoke(app, ["check", "catalogue", "--against", "HEAD", "--format", "junit"])
    assert result.exit_code == 0, result.output
    root = ET.fromstring(result.output)
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"catalogue", "catalogue diff"}
    cases = {c.get("name"): c for c in suites["catalogue diff"].iter("testcase")}
    assert set(cases) == {"env.air.o3", "env.air.pm25", "env.noise.day", "water.supply.pressure_ok"}
    assert "thresholds.red: 150 → 120" in (cases["env.air.pm25"].findtext("system-out") or "")
    assert root.get("tests") == "5" and root.get("failures") == "0"
    failing = runner.invoke(
        app, ["check", "catalogue", "--against", "HEAD", "--format", "junit", "--fail-on-change"]
    )
    assert failing.exit_code == 1
    root = ET.fromstring(failing.output)
    assert root.get("failures") == "4"
    assert len(list(root.iter("failure"))) == 4


@needs_git
def test_an_unchanged_catalogue_shows_no_change_and_passes_fail_on_change(repo: Path) -> None:
    git(repo, "commit", "-q", "-am", "the change")
    result = runner.invoke(app, ["check", "catalogue", "--against", "HEAD", "--fail-on-change"])
    assert result.exit_code == 0, result.output
    assert "no definition changed" in result.output
    # a mere reformatting (comments, key order, a default spelt out) is no change either
    text = (
        changed()
        .replace("kind: kpi", "kind: kpi  # steered")
        .replace("thresholds: {yellow: 95, red: 90}", "thresholds: {red: 90, yellow: 95, inclusive: false}")
    )
    (repo / "catalogue" / "env.yaml").write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["check", "catalogue", "--against", "HEAD", "--fail-on-change"])
    assert result.exit_code == 0, result.output
    assert "no definition changed" in result.output


@needs_git
def test_fail_on_change_fails_a_change(repo: Path) -> None:
    result = runner.invoke(app, ["check", "catalogue", "--against", "HEAD", "--fail-on-change"])
    assert result.exit_code == 1, result.output
    assert "thresholds.red: 150 → 120" in result.output


def test_a_folder_rev(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "a.yaml").write_text(BASE, encoding="utf-8")
    (new / "b.yaml").write_text(changed(), encoding="utf-8")  # renamed file: ids are what count
    result = runner.invoke(app, ["check", str(new), "--against", str(old), "--format", "json"])
    assert result.exit_code == 0, result.output
    against = json.loads(result.output)["against"]
    assert against["label"] == old.as_posix() and against["revision"] is None
    assert against["definitions"]["counts"]["indicator"] == {"added": 1, "removed": 1, "changed": 2}
    removed = next(c for c in against["definitions"]["changes"] if c["change"] == "removed")
    assert removed["old_location"]["file"] == (old / "a.yaml").as_posix()


def test_a_single_file_against_a_single_file(tmp_path: Path) -> None:
    (tmp_path / "old.yaml").write_text(BASE, encoding="utf-8")
    (tmp_path / "new.yaml").write_text(BASE.replace("red: 70}", "red: 65}"), encoding="utf-8")
    result = runner.invoke(
        app, ["check", str(tmp_path / "new.yaml"), "--against", str(tmp_path / "old.yaml")]
    )
    assert result.exit_code == 0, result.output
    assert "indicators: 1 changed" in result.output
    assert "thresholds.red: 70 → 65" in result.output


# --- git handling and errors ----------------------------------------------------------------


@needs_git
def test_a_subfolder_of_the_repository_and_an_older_commit(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "commit", "-q", "-am", "the change")
    (repo / "catalogue" / "env.yaml").write_text(
        changed().replace("red: 200}", "red: 180}"), encoding="utf-8"
    )
    result = runner.invoke(app, ["check", str(repo / "catalogue"), "--against", first[:10]])
    assert result.exit_code == 0, result.output
    assert "indicators: 1 added, 1 removed, 2 changed" in result.output  # o3 is new against the first commit
    result = runner.invoke(app, ["check", str(repo / "catalogue"), "--against", "HEAD"])
    assert "indicators: 1 changed" in result.output and "thresholds.red: 200 → 180" in result.output
    # one file of the catalogue, named relative to the current folder
    result = runner.invoke(app, ["check", "catalogue/env.yaml", "--against", "HEAD", "--format", "json"])
    assert result.exit_code == 0, result.output
    against = json.loads(result.output)["against"]
    assert against["label"] == "HEAD:catalogue/env.yaml"
    assert against["old"]["files"] == ["HEAD:catalogue/env.yaml"]
    assert [c["id"] for c in against["definitions"]["changes"]] == ["env.air.o3"]


@needs_git
def test_the_temporary_folder_is_removed(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    result = runner.invoke(app, ["check", "catalogue", "--against", "HEAD"])
    assert result.exit_code == 0, result.output
    assert list(scratch.iterdir()) == []


@needs_git
def test_links_at_the_revision_are_not_followed(repo: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text(
        ADDED.replace("env.air.o3", "env.secret.x").join(["indicators:\n", ""]), encoding="utf-8"
    )
    (repo / "catalogue" / "link.yaml").symlink_to(secret)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "a link")
    result = runner.invoke(app, ["check", "catalogue", "--against", "HEAD", "--format", "json"])
    assert result.exit_code == 0, result.output
    against = json.loads(result.output)["against"]
    # the work tree reads the link (it is the user's own checkout); the revision's copy never does
    assert against["old"]["files"] == ["HEAD:catalogue/env.yaml"]
    added = [c["id"] for c in against["definitions"]["changes"] if c["change"] == "added"]
    assert "env.secret.x" in added


@needs_git
@pytest.mark.parametrize(
    ("rev", "code", "message"),
    [
        ("no-such-branch", 2, "unknown revision 'no-such-branch'"),
        ("--output=x", 2, "is not a revision or a folder"),
        ("-x", 2, "is not a revision or a folder"),
    ],
)
def test_bad_revisions_are_usage_errors(repo: Path, rev: str, code: int, message: str) -> None:
    result = runner.invoke(app, ["check", "catalogue", f"--against={rev}"])
    assert result.exit_code == code, result.output
    assert message in result.output
    assert not (repo / "x").exists()


@needs_git
def test_a_catalogue_missing_at_the_revision_is_exit_3(repo: Path) -> None:
    (repo / "more").mkdir()
    (repo / "more" / "b.yaml").write_text(BASE, encoding="utf-8")
    result = runner.invoke(app, ["check", "more", "--against", "HEAD"])
    assert result.exit_code == 3, result.output
    assert "holds no *.yaml or *.yml files at revision 'HEAD'" in result.output


def test_outside_a_repository_a_rev_that_is_no_folder_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.yaml").write_text(BASE, encoding="utf-8")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # never find an enclosing repository
    result = runner.invoke(app, ["check", str(tmp_path), "--against", "main"])
    assert result.exit_code == 2, result.output
    assert "is not in a git repository, and --against names no folder or file" in result.output


def test_git_missing_is_exit_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.yaml").write_text(BASE, encoding="utf-8")
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    result = runner.invoke(app, ["check", str(tmp_path), "--against", "main"])
    assert result.exit_code == 3, result.output
    assert "git is not installed" in result.output


@needs_git
def test_an_unsound_old_catalogue_is_reported_and_does_not_fail(repo: Path) -> None:
    broken = BASE.replace("{yellow: 95, red: 90}", "{yellow: 90, red: 95}")
    (repo / "catalogue" / "env.yaml").write_text(broken, encoding="utf-8")
    git(repo, "commit", "-q", "-am", "broken")
    (repo / "catalogue" / "env.yaml").write_text(BASE, encoding="utf-8")  # the pull request repairs it
    result = runner.invoke(app, ["check", "catalogue", "--against", "HEAD"])
    assert result.exit_code == 0, result.output
    assert "the catalogue at HEAD:catalogue has 1 error: nothing sound to compare with" in result.output
    assert "HEAD:catalogue/env.yaml:" in result.output and "CK030" in result.output
    doc = json.loads(runner.invoke(app, ["check", "catalogue", "--against", "HEAD", "-f", "json"]).output)
    assert doc["against"]["definitions"] is None and doc["against"]["old"]["ok"] is False


@needs_git
def test_an_unsound_new_catalogue_still_fails(repo: Path) -> None:
    broken = changed().replace("{yellow: 95, red: 90}", "{yellow: 90, red: 95}")
    (repo / "catalogue" / "env.yaml").write_text(broken, encoding="utf-8")
    result = runner.invoke(app, ["check", "catalogue", "--against", "HEAD"])
    assert result.exit_code == 1, result.output
    assert "no definition diff until they are fixed" in result.output


def test_diff_options_need_against(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(BASE, encoding="utf-8")
    for extra in (
        ["--db", "x.duckdb"],
        ["--date", "2025-12-31"],
        ["--fail-on-change"],
        ["--period", "month"],
    ):
        result = runner.invoke(app, ["check", str(tmp_path), *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert "need" in result.output


def test_date_and_period_need_a_warehouse(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(BASE, encoding="utf-8")
    for extra in (["--date", "2025-12-31"], ["--period", "month"]):
        result = runner.invoke(app, ["check", str(tmp_path), "--against", str(tmp_path), *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert "need a warehouse: give --db FILE" in result.output


def test_a_missing_database_is_exit_3(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(BASE, encoding="utf-8")
    result = runner.invoke(
        app, ["check", str(tmp_path), "--against", str(tmp_path), "--db", str(tmp_path / "none.duckdb")]
    )
    assert result.exit_code == 3, result.output
    assert not (tmp_path / "none.duckdb").exists()


# --- the colours on the sample city -----------------------------------------------------------

PM25_CUTS = (115.0, 150.0, 120.0)  # orange, old red, new red (scripted below)


def _sample_change(root: Path, catalogue: Path) -> Path:
    """The sample catalogue committed in a repository under ``root``, then changed in the work tree."""
    folder = root / "indicators"
    shutil.copytree(catalogue, folder)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "sample city")
    env = folder / "environment.yaml"
    text = env.read_text(encoding="utf-8")
    tightened = '      orange: 115\n      red: 120\n      overrides:\n        - {area: "500103"'
    text = text.replace(
        '      orange: 115\n      red: 150\n      overrides:\n        - {area: "500103"', tightened
    )
    assert tightened in text
    annual = "    unit: µg/m³\n    description: Annual mean of daily PM2.5."
    assert annual in text
    text = text.replace(annual, annual.replace("µg/m³", "mg/m³"))
    env.write_text(text, encoding="utf-8")
    renewal = folder / "urban_renewal.yaml"
    text = renewal.read_text(encoding="utf-8")
    start = text.index("  - id: ur.sanitation.cleanliness")
    end = text.find("\n  - id:", start + 1)
    renewal.write_text(text[:start] + (text[end + 1 :] if end >= 0 else ""), encoding="utf-8")
    return folder


def _expected_newly_red(wh: Warehouse, day: date) -> set[str]:
    """Areas whose daily mean PM2.5 on ``day`` lies above the new red cut and not above the old one.

    Plain SQL over the observations (the city and every district observe PM2.5 themselves); 500103
    keeps its own override (red above 130), which the change did not touch.
    """
    orange, old_red, new_red = PM25_CUTS
    rows = wh.con.execute(
        """
        SELECT a.area_id, avg(o.value) AS v
        FROM observations o JOIN indicator_keys k USING (indicator_key) JOIN areas a USING (area_key)
        WHERE k.indicator_id = 'env.air.pm25' AND a.level IN ('city', 'district')
          AND o.period >= CAST(? AS TIMESTAMP) AND o.period < CAST(? AS TIMESTAMP) + INTERVAL 1 DAY
        GROUP BY a.area_id
        """,
        [day, day],
    ).fetchall()
    assert len(rows) == 41  # the city and its 40 districts
    assert new_red > orange
    return {area for area, v in rows if new_red < v <= old_red and area != "500103"}


@pytest.fixture
def changed_city(sample_city: SampleCity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository holding the sample catalogue and, uncommitted, the scripted change; the cwd."""
    root = tmp_path / "city"
    root.mkdir()
    _sample_change(root, sample_city.catalogue)
    monkeypatch.chdir(root)
    return root


@needs_git
def test_colour_changes_on_the_sample_city_match_a_hand_count(
    sample_city: SampleCity, changed_city: Path
) -> None:
    with Warehouse.open(sample_city.db, read_only=True, create=False) as wh:
        expected = _expected_newly_red(wh, END)
        areas = int(wh.con.execute("SELECT count(*) FROM areas").fetchall()[0][0])
        runs_before = wh.con.execute("SELECT count(*), max(run_id) FROM runs").fetchall()
    assert expected, "the scripted change must turn some cell red"
    args = [
        "check",
        "indicators",
        "--against",
        "HEAD",
        "--db",
        str(sample_city.db),
        "--date",
        END.isoformat(),
    ]
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    against = json.loads(result.output)["against"]
    by_id = {c["id"]: c for c in against["definitions"]["changes"]}
    assert by_id["env.air.pm25"]["fields"] == [{"field": "thresholds.red", "old": 150, "new": 120}]
    assert by_id["env.air.pm25_annual"]["fields"] == [{"field": "unit", "old": "µg/m³", "new": "mg/m³"}]
    assert by_id["ur.sanitation.cleanliness"]["change"] == "removed"
    assert len(by_id) == 3
    colours = against["colours"]
    assert colours["as_of"] == END.isoformat() and colours["grain"] == "day"
    cells = colours["cells"]
    pm25 = [c for c in cells if c["indicator_id"] == "env.air.pm25"]
    assert {c["area_id"] for c in pm25} == expected
    assert all(
        (c["status_from"], c["status_to"], c["change"]) == ("orange", "red", "newly_red") for c in pm25
    )
    assert all(c["value_from"] == c["value_to"] for c in pm25)  # a cut moved, not the value
    gone = [c for c in cells if c["indicator_id"] == "ur.sanitation.cleanliness"]
    assert len(gone) == areas  # every area of its three levels
    assert all(c["change"] == "gone" and c["status_to"] is None for c in gone)
    # renaming the unit changes no value and no colour
    assert not [c for c in cells if c["indicator_id"] == "env.air.pm25_annual"]
    assert {c["indicator_id"] for c in cells} == {"env.air.pm25", "ur.sanitation.cleanliness"}
    transitions = {(t["status_from"], t["status_to"]): t["cells"] for t in colours["transitions"]}
    assert transitions[("orange", "red")] == len(expected)
    assert sum(n for (a, b), n in transitions.items() if b is None) == areas
    assert sum(transitions.values()) == len(cells)
    # the text and github forms list the same cells
    text = runner.invoke(app, args).output
    listed = {
        line.split()[2] for line in text.splitlines() if line.strip().startswith("newly_red env.air.pm25")
    }
    assert listed == expected
    assert f"orange → red {len(expected)}" in text
    assert f"gone      ur.sanitation.cleanliness: {areas} cells" in text
    github = runner.invoke(app, [*args, "--format", "github"]).output
    note = next(line for line in github.splitlines() if "title=citykpi colours%3A env.air.pm25" in line)
    assert note.startswith("::notice file=indicators/environment.yaml,line=")
    assert f"::{len(expected)} cells change status" in note
    # nothing was recorded: the warehouse was only read
    with Warehouse.open(sample_city.db, read_only=True, create=False) as wh:
        assert wh.con.execute("SELECT count(*), max(run_id) FROM runs").fetchall() == runs_before


@needs_git
def test_the_global_db_option_turns_the_colours_on(sample_city: SampleCity, changed_city: Path) -> None:
    result = runner.invoke(app, ["--db", str(sample_city.db), "check", "indicators", "--against", "HEAD"])
    assert result.exit_code == 0, result.output
    assert f"Status changes as of {END.isoformat()} (day)" in result.output  # default: the newest data
    result = runner.invoke(
        app, ["--db", str(sample_city.db), "check", "indicators", "--against", "HEAD", "--period", "month"]
    )
    assert result.exit_code == 0, result.output
    assert f"Status changes as of {END.isoformat()} (month)" in result.output
    # CITYKPI_DB alone does not: a CI job that exports it keeps a check that needs no data
    result = runner.invoke(
        app, ["check", "indicators", "--against", "HEAD"], env={"CITYKPI_DB": str(sample_city.db)}
    )
    assert result.exit_code == 0, result.output
    assert "Status changes" not in result.output


@needs_git
def test_index_status_changes_on_the_sample_city(
    sample_city: SampleCity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stricter blue band for the operation index: the scores from 85 up to the new cut turn blue."""
    import polars as pl

    from citykpi.catalogue import load_catalogue
    from citykpi.engine.evaluate import evaluate

    root = tmp_path / "city"
    shutil.copytree(sample_city.catalogue, root / "indicators")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "sample city")
    indices = root / "indicators" / "indices.yaml"
    text = indices.read_text(encoding="utf-8")
    anchor = "    cap_on_red: 60\n    min_coverage: 0.6\n"
    assert text.count("  - id: index.operation") == 1 and anchor in text
    at = text.index("  - id: index.operation")
    text = text[:at] + text[at:].replace(
        anchor, anchor + "    bands: {blue: 95, yellow: 70, orange: 60, red: 50}\n", 1
    )
    indices.write_text(text, encoding="utf-8")
    monkeypatch.chdir(root)
    with Warehouse.open(sample_city.db, read_only=True, create=False) as wh:
        card = evaluate(
            wh, load_catalogue(sample_city.catalogue), as_of=END, persist=False, history_levels=()
        )
    scores = card.indices.filter(pl.col("index_id") == "index.operation")
    # by hand: higher is better; a score exactly at a cut keeps the better colour
    expected = {a for a, s in scores.select("area_id", "score").iter_rows() if s is not None and 85 <= s < 95}
    assert expected
    result = runner.invoke(
        app, ["check", "indicators", "--against", "HEAD", "--db", str(sample_city.db), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    colours = json.loads(result.output)["against"]["colours"]
    assert colours["cells"] == []  # the indicators are untouched
    changed_indices = colours["indices"]
    assert {r["area_id"] for r in changed_indices} == expected
    assert all(
        (r["index_id"], r["status_from"], r["status_to"], r["change"])
        == ("index.operation", "green", "blue", "worse")
        and r["value_from"] == r["value_to"]
        for r in changed_indices
    )
    fields = json.loads(result.output)["against"]["definitions"]["changes"][0]["fields"]
    assert fields == [{"field": "bands.blue", "old": 85, "new": 95}]


@needs_git
def test_control_characters_of_the_catalogue_are_shown_not_obeyed(repo: Path) -> None:
    git(repo, "commit", "-q", "-am", "the change")
    hostile = changed().replace("en: Ozone}", 'en: "Ozone\\e]8;;x\\a\\e[2J"}')
    (repo / "catalogue" / "env.yaml").write_text(hostile, encoding="utf-8")
    for fmt in ("text", "github", "junit"):
        result = runner.invoke(app, ["check", "catalogue", "--against", "HEAD", "--format", fmt])
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\x07" not in result.output, fmt
        assert "\\x1b" in result.output, fmt
