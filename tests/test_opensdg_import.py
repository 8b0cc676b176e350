"""``citykpi catalogue import open-sdg``: a small repository by hand, the Los Angeles one, and the rules
for where it may write (a new folder, all or nothing)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from citykpi.catalogue import check_catalogue
from citykpi.catalogue.opensdg import guess_unit, import_open_sdg, slug, write_import
from citykpi.cli import app
from citykpi.errors import DataError, ExportError, UsageError
from tests.real_data import REAL, needs_real_data


def _repo(root: Path) -> Path:
    (root / "meta").mkdir(parents=True)
    (root / "data").mkdir()
    meta = {
        "1-2-1": "indicator_name: People in poverty\ncomputation_units: Percentage\n"
        "source_organisation_1: Census Bureau\nnational_geographical_coverage: City of Los Angeles\n",
        "11-6-2": "indicator_name: Particulate matter\ncomputation_units: Annual Average Concentration in µg/m^3\n"
        "national_geographical_coverage: Los Angeles County\n",
        "17-1-1": "indicator_name: Revenue\ncomputation_units: $ Billions\n"
        "national_geographical_coverage: City of Los Angeles\n",
        "5-a-2": "indicator_name: Land rights\ndata_non_statistical: true\n",
        "9-9-9": "indicator_name: Only metadata\n",
    }
    for sid, body in meta.items():
        (root / "meta" / f"{sid}.md").write_text(f"---\nindicator: x\n{body}---\nprose\n", encoding="utf-8")
    data = {
        "1-2-1": "Year,Gender,Race/ Ethnicity,Value\r\n2019,,,20\r\n2019,Female,,21\r\n2020,,,\r\n",
        "11-6-2": "Year,Units,Value\n2019,Fine Particulates PM2.5,12\n2019,Suspended Particulates PM10,30\n",
        "17-1-1": "Year,Value\n2009-2010,6.8\n2010–2011,7.1\n",
        "5-a-2": "Year,Value\nThis is a non-statistical indicator,\n",
        "8-8-8": "Year,Value\n2019,1\n",
    }
    for sid, body in data.items():
        (root / "data" / f"indicator_{sid}.csv").write_text(body, encoding="utf-8")
    return root


def test_a_small_repository_by_hand(tmp_path: Path) -> None:
    report = import_open_sdg(_repo(tmp_path / "repo"))
    assert (report.indicators, report.feeds, report.areas) == (4, 3, 2)
    assert report.data_without_meta == ("indicator_8-8-8.csv",)
    assert report.meta_without_data == ("9-9-9.md",)
    assert [s for s, _ in report.skipped] == ["5-a-2"]
    files = {f.path: f.text for f in report.files}
    assert sorted(files) == [
        "areas.csv",
        "import-report.md",
        "indicators/feeds.yaml",
        "indicators/sdg_goal_1.yaml",
        "indicators/sdg_goal_11.yaml",
        "indicators/sdg_goal_17.yaml",
    ]
    goal11 = yaml.safe_load(files["indicators/sdg_goal_11.yaml"])["indicators"]
    assert [(i["id"], i["unit"]) for i in goal11] == [
        ("sdg.11_6_2.fine_particulates_pm2_5", "µg/m³"),
        ("sdg.11_6_2.suspended_particulates_pm10", "µg/m³"),
    ]
    (poverty,) = yaml.safe_load(files["indicators/sdg_goal_1.yaml"])["indicators"]
    assert (poverty["id"], poverty["unit"], poverty["domain"], poverty["owner"], poverty["tags"]) == (
        "sdg.1_2_1",
        "%",
        "sdg_goal_1",
        "Census Bureau",
        ["sdg", "goal_1", "target_1_2"],
    )
    feeds = {f["id"]: f for f in yaml.safe_load(files["indicators/feeds.yaml"])["feeds"]}
    assert feeds["sdg_1_2_1"]["dimensions"] == {"gender": "Gender", "race_ethnicity": "Race/ Ethnicity"}
    assert feeds["sdg_1_2_1"]["set"] == {"area_id": "city_of_los_angeles", "indicator_id": "sdg.1_2_1"}
    assert feeds["sdg_11_6_2"]["columns"]["indicator_id"] == "Units"
    assert (
        feeds["sdg_11_6_2"]["recode"]["Units"]["Fine Particulates PM2.5"]
        == "sdg.11_6_2.fine_particulates_pm2_5"
    )
    assert feeds["sdg_17_1_1"]["recode"]["Year"] == {
        "2009-2010": {"period": "2009"},
        "2010–2011": {"period": "2010"},
    }
    assert "'$ Billions' has no citykpi unit; imported as 'index'" in files["import-report.md"]
    assert files["areas.csv"].splitlines() == [
        "id,name,name_en,level,parent",
        "city_of_los_angeles,City of Los Angeles,City of Los Angeles,city,",
        "los_angeles_county,Los Angeles County,Los Angeles County,city,",
    ]


def test_the_import_is_a_sound_catalogue_that_ingests(tmp_path: Path) -> None:
    out = write_import(import_open_sdg(_repo(tmp_path / "repo")), tmp_path / "out")
    result = check_catalogue(out / "indicators")
    assert result.errors == (), [str(d) for d in result.errors]
    runner = CliRunner()
    base = ["--db", str(tmp_path / "w.duckdb"), "--catalogue", str(out / "indicators")]
    assert runner.invoke(app, [*base, "areas", "load", str(out / "areas.csv")]).exit_code == 0
    done = runner.invoke(app, [*base, "ingest", "--feed", "auto", str(tmp_path / "repo" / "data")])
    # 8-8-8 and 5-a-2 have no feed; everything else loads: 2 + 2 + 2 values, 1 breakdown, 1 missing
    assert "1-2-1.csv: 3 loaded, 0 rejected" in done.output and "17-1-1.csv: 2 loaded" in done.output
    assert "no feed's files match indicator_8-8-8.csv" in done.output


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        ("Percentage", "%"),
        ("Annual Incidence Rate (Cases per 100,000)", "per 100k"),
        ("Rate per 10,000", "per 10k"),
        ("Total deaths and rate per 1,000", "per 1k"),
        ("Annual Average Concentration in µg/m^3", "µg/m³"),
        ("km^2", "km²"),
        ("Millions of kWh (GWh)", "GWh"),
        ("Tons", "t"),
        ("Number of People", "count"),
        ("$ Billions", None),
    ],
)
def test_unit_guesses(text: str, unit: str | None) -> None:
    assert guess_unit(text) == unit


def test_slug() -> None:
    assert (slug("Race/ Ethnicity"), slug("11-6-2"), slug("!!")) == ("race_ethnicity", "11_6_2", "x")


def test_where_it_writes(tmp_path: Path) -> None:
    report = import_open_sdg(_repo(tmp_path / "repo"))
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(UsageError, match="the folder is not empty"):
        write_import(report, taken)
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]
    cat = tmp_path / "catalogue"
    cat.mkdir()
    with pytest.raises(UsageError, match="which citykpi reads"):
        write_import(report, cat / "sdg", protected=[cat])
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    with pytest.raises(UsageError, match="is not a folder"):
        write_import(report, tmp_path / "afile")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert write_import(report, empty) == empty.resolve() and (empty / "areas.csv").exists()
    with pytest.raises(DataError, match="not an Open SDG data repository"):
        import_open_sdg(tmp_path / "catalogue")


def test_a_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = import_open_sdg(_repo(tmp_path / "repo"))
    calls = []
    real = Path.write_text

    def failing(self: Path, text: str, encoding: str | None = None) -> int:
        calls.append(self)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(self, text, encoding=encoding)

    monkeypatch.setattr(Path, "write_text", failing)
    with pytest.raises(ExportError, match="No space left on device; nothing was written"):
        write_import(report, tmp_path / "out")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]  # no folder, no hidden leftovers


def test_cli(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    runner = CliRunner()
    base = ["--catalogue", str(tmp_path / "cat"), "--db", str(tmp_path / "w.duckdb")]
    ok = runner.invoke(
        app, [*base, "catalogue", "import", "open-sdg", str(repo), "--output", str(tmp_path / "o")]
    )
    assert ok.exit_code == 0, ok.output
    assert "Imported 4 indicators, 3 feeds and 2 areas" in ok.output
    assert "1 data files without metadata, 1 metadata files without data, 1 skipped" in ok.output
    again = runner.invoke(
        app, [*base, "catalogue", "import", "open-sdg", str(repo), "--output", str(tmp_path / "o")]
    )
    assert again.exit_code == 2 and "not empty" in again.output
    bad = runner.invoke(
        app, [*base, "catalogue", "import", "open-sdg", str(tmp_path), "--output", str(tmp_path / "p")]
    )
    assert bad.exit_code == 3 and "not an Open SDG data repository" in bad.output
    kind = runner.invoke(
        app, [*base, "catalogue", "import", "ckan", str(repo), "--output", str(tmp_path / "q")]
    )
    assert kind.exit_code == 2


def test_the_report_names_the_paths_to_ingest_from_and_they_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The import report's commands name the output folder and the repository's data folder as given
    (shell-quoted), and, typed from where the import ran, they load the areas and ingest every file;
    each series is then expected for the one area its metadata names."""
    _repo(tmp_path / "my repo")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    db = ["--db", "w.duckdb"]
    done = runner.invoke(app, [*db, "catalogue", "import", "open-sdg", "my repo", "--output", "sdg out"])
    assert done.exit_code == 0, done.output
    report = (tmp_path / "sdg out" / "import-report.md").read_text(encoding="utf-8")
    block = report.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert block == [
        "citykpi areas load 'sdg out/areas.csv'",
        "citykpi --catalogue 'sdg out/indicators' ingest --feed auto 'my repo/data'",
    ]
    assert "data/`" not in report  # no folder of the output that does not exist
    assert "  citykpi areas load 'sdg out/areas.csv'" in done.output  # also printed as the next step
    codes = []
    for line in block:
        words = shlex.split(line)
        assert words[0] == "citykpi"
        ran = runner.invoke(app, [*db, *words[1:]])
        codes.append(ran.exit_code)
    # the ingest exits 1: files without a feed (8-8-8) or without a year (5-a-2) are refused
    assert codes == [0, 1] and "17-1-1.csv: 2 loaded" in ran.output, ran.output
    judged = ["--date", "2020-12-31", "--from", "2019-01-01", "--format", "json", "--table", "series"]
    quality = runner.invoke(app, [*db, "--catalogue", "sdg out/indicators", "quality", *judged])
    assert quality.exit_code == 0, quality.output
    doc = json.loads(quality.stdout)
    series = {(r["indicator_id"], r["area_id"]): (r["periods"], r["present"]) for r in doc["series"]}
    # 1.2.1 (the City): 2019 a value, 2020 written empty; 11.6.2's two series (the County): 2019 only;
    # 17.1.1 (the City): 2009 and 2010 only — each expected in its own area alone, not in both
    assert series == {
        ("sdg.1_2_1", "city_of_los_angeles"): (2, 1),
        ("sdg.11_6_2.fine_particulates_pm2_5", "los_angeles_county"): (2, 1),
        ("sdg.11_6_2.suspended_particulates_pm10", "los_angeles_county"): (2, 1),
        ("sdg.17_1_1", "city_of_los_angeles"): (2, 0),
    }
    assert doc["summary"]["completeness"] == pytest.approx(3 / 8 * 100)


def test_the_report_without_an_output_folder_names_the_data_folder_in_full(tmp_path: Path) -> None:
    report = import_open_sdg(_repo(tmp_path / "it's here"))
    assert report.commands() == (
        "citykpi areas load areas.csv",
        "citykpi --catalogue indicators ingest --feed auto "
        + shlex.quote(str(tmp_path / "it's here" / "data")),
    )


@needs_real_data
def test_los_angeles(tmp_path: Path) -> None:
    report = import_open_sdg(REAL / "la-open-sdg")
    assert (report.data_without_meta, report.meta_without_data) == ((), ())
    assert [s for s, _ in report.skipped] == ["5-a-2"]  # "This is a non-statistical indicator"
    assert report.feeds == 129  # 130 files, one non-statistical
    out = write_import(report, tmp_path / "la")
    result = check_catalogue(out / "indicators")
    assert result.errors == () and result.catalogue is not None
    assert len(result.catalogue.indicators) == report.indicators
    assert {d.rule for d in result.diagnostics} <= {"CK101", "CK104"}  # no thresholds, no Chinese names
