"""Inboxes are read like `citykpi ingest`: options, a pattern, files still being written, atomic moves."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from citykpi.cli import app
from citykpi.cron import RunConfig, run_job
from citykpi.daily.inbox import Inbox, archive, is_temporary, scan_inbox
from citykpi.errors import ConfigError
from tests.daily_support import GrowingFile
from tests.scorecard_city import START, write_city, write_day


def test_scan_sorts_ready_waiting_and_ignored(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in (
        "b.csv",
        "A.CSV",
        "c.parquet",
        "notes.txt",
        "README",
        "x.csv.part",
        "~y.csv",
        "z.tmp",
        ".hidden.csv",
    ):
        (inbox / name).write_text("indicator_id\n", encoding="utf-8")
    (inbox / "done").mkdir()
    (inbox / "link.csv").symlink_to(inbox / "b.csv")
    os.mkfifo(inbox / "pipe.csv")
    scan = scan_inbox(Inbox(inbox))
    assert [p.name for p in scan.ready] == ["A.CSV", "b.csv", "c.parquet"]  # patterns ignore case
    assert [(p.name, why.split(":")[0]) for p, why in scan.waiting] == [
        ("x.csv.part", "a temporary name"),
        ("z.tmp", "a temporary name"),
        ("~y.csv", "a temporary name"),
    ]
    assert [p.name for p, _ in scan.ignored] == ["README", "notes.txt", "pipe.csv"]
    assert (
        "does not match the inbox's pattern *.csv, *.tsv, *.parquet, *.pq"
        in dict((p.name, w) for p, w in scan.ignored)["notes.txt"]
    )
    assert [p.name for p in scan.links] == ["link.csv"]
    only = scan_inbox(Inbox(inbox, patterns=("*.txt", "c.*")))
    assert [p.name for p in only.ready] == ["c.parquet", "notes.txt"]
    assert is_temporary("report.CSV.crdownload") and not is_temporary("report.csv")


def test_a_file_that_grows_between_two_looks_waits(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "still.csv").write_text("indicator_id,area_id\n", encoding="utf-8")
    growing = GrowingFile(inbox / "copying.csv", ["a,b,c,d"] * 5)
    scan = scan_inbox(Inbox(inbox), settle=0.5, sleep=growing.sleep)
    assert [p.name for p in scan.ready] == ["still.csv"]
    [(path, why)] = scan.waiting
    assert path.name == "copying.csv" and why == "still being written: its size or time changed within 0.5 s"
    growing.finish()
    assert [p.name for p in scan_inbox(Inbox(inbox), settle=0.5, sleep=lambda s: None).ready] == [
        "copying.csv",
        "still.csv",
    ]


def test_archive_moves_by_one_rename_and_never_over_a_file(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    first = inbox / "obs.csv"
    first.write_text("1", encoding="utf-8")
    moved = archive(first, inbox / "done")
    assert moved == inbox / "done" / "obs.csv" and not first.exists()
    first.write_text("2", encoding="utf-8")
    again = archive(first, inbox / "done")
    assert again == inbox / "done" / "obs.1.csv" and again.read_text() == "2" and moved.read_text() == "1"


GB_HEADER = "指标编码,区划代码,统计日期,数值"


def _gb_config(root: Path, encoding: str, pattern: str = "城管*.csv") -> Path:
    path = root / "citykpi.toml"
    path.write_text(
        f"""database = "city.duckdb"
catalogue = "catalogue"
areas = "areas.csv"
settle = 0
[outputs]
folder = "out"
formats = ["json"]
[[inboxes]]
path = "inbox"
map = {{indicator_id = "指标编码", area_id = "区划代码", period = "统计日期", value = "数值"}}
date_format = {{period = "%Y年%m月%d日"}}
encoding = "{encoding}"
pattern = ["{pattern}"]
""",
        encoding="utf-8",
    )
    return path


def test_an_inbox_takes_ingests_options(tmp_path: Path) -> None:
    paths = write_city(tmp_path)
    body = f"{GB_HEADER}\nenv.air.aqi,500103,2026年11月01日,61\nenv.air.aqi,500112,2026年11月01日,48\n"
    (paths["inbox"] / "城管-1101.csv").write_bytes(body.encode("gb18030"))
    (paths["inbox"] / "other.csv").write_text("not for this inbox\n", encoding="utf-8")
    result = run_job(RunConfig.load(_gb_config(tmp_path, "gb18030")), as_of=START)
    [loaded] = result.files
    assert (loaded.path.name, loaded.status, loaded.rows_loaded, loaded.rows_rejected) == (
        "城管-1101.csv",
        "loaded",
        2,
        0,
    )
    assert [p.name for p, _ in result.ignored] == ["other.csv"]
    assert result.scorecard is not None
    values = result.scorecard.cells.filter(result.scorecard.cells["indicator_id"] == "env.air.aqi")
    assert sorted(values["value"].drop_nulls().to_list())[-1] == 61.0


def test_a_declared_encoding_is_enforced(tmp_path: Path) -> None:
    paths = write_city(tmp_path)
    body = f"{GB_HEADER}\nenv.air.aqi,500103,2026年11月01日,61\n"
    (paths["inbox"] / "城管-1101.csv").write_bytes(body.encode("gb18030"))
    result = run_job(RunConfig.load(_gb_config(tmp_path, "utf-8")), as_of=START)
    [refused] = result.files
    assert (
        refused.status == "rejected"
        and "the text is not UTF-8, as declared (it reads as gb18030)" in refused.message
    )
    assert refused.moved_to == paths["inbox"] / "rejected" / "城管-1101.csv"
    assert result.exit_code == 5  # nothing else came: no data for the day, which outranks partial
    assert result.health.reasons[0] == "城管-1101.csv was rejected"


def test_ingest_takes_an_encoding_too(tmp_path: Path) -> None:
    paths = write_city(tmp_path)
    CliRunner().invoke(
        app,
        [
            "--db",
            str(paths["db"]),
            "--catalogue",
            str(paths["catalogue"]),
            "areas",
            "load",
            str(paths["areas"]),
        ],
    )
    utf8 = write_day(tmp_path, date(2026, 11, 2))
    base = ["--db", str(paths["db"]), "--catalogue", str(paths["catalogue"]), "ingest"]
    forced = CliRunner().invoke(app, [*base, str(utf8), "--encoding", "gb18030"])
    assert forced.exit_code == 0, forced.output  # ASCII reads the same either way
    gb = tmp_path / "gb.csv"
    gb.write_bytes("indicator_id,area_id,period,value\nenv.air.aqi,500103,2026-11-03,50\n".encode("gb18030"))
    bom = tmp_path / "bom.csv"
    bom.write_bytes(
        b"\xef\xbb\xbf" + b"indicator_id,area_id,period,value\nenv.air.aqi,500103,2026-11-04,50\n"
    )
    r = CliRunner().invoke(app, [*base, str(bom), "--encoding", "gb18030"])
    assert r.exit_code == 1 and "starts with a UTF-8 byte-order mark, but GB18030 is declared" in r.output
    assert CliRunner().invoke(app, [*base, str(gb), "--encoding", "latin-1"]).exit_code == 2


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("map = 3", "map must be a table"),
        ('encoding = "latin-1"', "encoding must be auto, utf-8 or gb18030"),
        ('pattern = "sub/*.csv"', "pattern matches file names in the inbox, without a folder"),
        ("pattern = []", "pattern must be a file name glob or a list of them"),
        ('map = ["indicator"]', "map 'indicator': expected NAME=VALUE"),
        ('map = {colour = "x"}', "unknown field 'colour'"),
        ('format = "source"\nsource = "nope"', "unknown source 'nope'"),
    ],
)
def test_inbox_config_errors(tmp_path: Path, table: str, message: str) -> None:
    write_city(tmp_path)
    path = tmp_path / "citykpi.toml"
    path.write_text(
        f'database = "d.duckdb"\ncatalogue = "catalogue"\n[[inboxes]]\npath = "inbox"\n{table}\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=message):
        run_job(RunConfig.load(path), as_of=START)


def test_dry_run_and_run_agree_on_a_file_read_otherwise_before(tmp_path: Path) -> None:
    """The same bytes loaded earlier with `--set` are other data: the run loads them again, and the
    dry run says it would (one `already_loaded` rule for both, not a copy with a condition missing)."""
    import json

    paths = write_city(tmp_path)
    config = tmp_path / "citykpi.toml"
    config.write_text(
        'database = "city.duckdb"\ncatalogue = "catalogue"\nareas = "areas.csv"\ninbox = ["inbox"]\n'
        'settle = 0\ntimezone = "Asia/Shanghai"\n[outputs]\nfolder = "out"\nformats = ["json"]\n',
        encoding="utf-8",
    )
    day = date(2026, 11, 19)
    aside = tmp_path / "aside"
    aside.mkdir()
    file = aside / "yuzhong.csv"  # Yuzhong's rows of the day
    file.write_text(
        "indicator_id,area_id,period,value\n"
        f"env.air.aqi,500103,{day},204.0\nwater.supply.pressure_ok,500103,{day},99.5\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    base = ["--db", str(paths["db"]), "--catalogue", str(paths["catalogue"])]
    assert runner.invoke(app, [*base, "areas", "load", str(paths["areas"])]).exit_code == 0
    # loaded by hand as Yubei's rows (--set area_id=…): the file's own area column was overridden
    done = runner.invoke(
        app, [*base, "ingest", str(file), "--set", "area_id=500112", "--on-duplicate", "keep"]
    )
    assert done.exit_code == 0, done.output
    (paths["inbox"] / file.name).write_bytes(file.read_bytes())

    def statuses(*args: str) -> list[tuple[str, str]]:
        r = runner.invoke(
            app, ["run", "--config", str(config), "--date", day.isoformat(), *args, "--report", "-"]
        )
        assert r.exit_code in (0, 5), r.output
        return [(Path(f["path"]).name, f["status"]) for f in json.loads(r.stdout)["files"]]

    assert statuses("--dry-run") == [(file.name, "would_load")]
    assert statuses() == [(file.name, "loaded")]
    # and now, read as the inbox reads it, it is loaded: both say so
    (paths["inbox"] / file.name).write_bytes(file.read_bytes())
    assert statuses("--dry-run") == [(file.name, "unchanged")]
    assert statuses() == [(file.name, "unchanged")]
