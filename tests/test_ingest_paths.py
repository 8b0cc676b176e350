"""Which paths `ingest` and `run` read: symbolic links, FIFOs, devices, and files that are no data at all.

The policy (docs/reliability.md, section 5): a file named on the command line (or matched by a
glob) may be a symbolic link and is read if it leads to a regular file; a folder is scanned without
following any link; a FIFO, device or socket is never opened; `run` never follows a link in an
inbox and says so in its log. A file that is not a data file is refused without quoting it.
"""

from __future__ import annotations

import hashlib
import os
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from citykpi.cli import app
from citykpi.cron import RunConfig, run_job
from tests.scorecard_city import write_city, write_day

DAY = date(2026, 11, 5)
SECRET = "root:x:0:0:SECRET-LINE-OF-A-PASSWORD-FILE:/root:/bin/bash"


@pytest.fixture
def city(tmp_path: Path) -> tuple[list[str], dict[str, Path]]:
    """The tiny city with its areas loaded; returns the global options and its paths."""
    paths = write_city(tmp_path)
    base = ["--db", str(paths["db"]), "--catalogue", str(paths["catalogue"])]
    assert CliRunner().invoke(app, [*base, "areas", "load", str(paths["areas"])]).exit_code == 0
    return base, paths


def _ingest(base: list[str], *paths: Path | str) -> Result:
    return CliRunner().invoke(app, [*base, "ingest", *map(str, paths)])


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _secret_file(folder: Path) -> Path:
    """A stand-in for /etc/passwd: a text file that is no CSV, outside the data folders."""
    folder.mkdir(exist_ok=True)
    secret = folder / "passwd"
    secret.write_text(f"{SECRET}\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n", encoding="utf-8")
    return secret


@pytest.mark.parametrize("through_link", [True, False])
def test_a_text_file_that_is_no_data_is_refused_without_quoting_it(
    city: tuple[list[str], dict[str, Path]], tmp_path: Path, through_link: bool
) -> None:
    base, _ = city
    secret = _secret_file(tmp_path / "etc")
    before = _digest(secret)
    target = secret
    if through_link:
        target = tmp_path / "data.csv"
        target.symlink_to(secret)
    result = _ingest(base, target)
    assert result.exit_code == 1, result.output
    assert "reads as a single column (no delimiter found: is it a data file?)" in result.output
    assert "SECRET" not in result.output and "root:x" not in result.output
    assert _digest(secret) == before


def test_a_delimited_header_is_still_listed(city: tuple[list[str], dict[str, Path]], tmp_path: Path) -> None:
    """A real CSV without the expected columns keeps the helpful list of what it has."""
    base, _ = city
    data = tmp_path / "other.csv"
    data.write_text("district,day,reading\n500103,2026-11-01,3\n", encoding="utf-8")
    result = _ingest(base, data)
    assert result.exit_code == 1, result.output
    assert "no 'indicator_id' column; the file has district, day, reading" in result.output


def test_a_named_link_to_a_data_file_is_followed(
    city: tuple[list[str], dict[str, Path]], tmp_path: Path
) -> None:
    base, _ = city
    (tmp_path / "elsewhere").mkdir()
    real = write_day(tmp_path / "elsewhere", DAY)
    link = tmp_path / "today.csv"
    link.symlink_to(real)
    result = _ingest(base, link)
    assert result.exit_code == 0, result.output
    assert "4 loaded, 0 rejected" in result.output


def test_a_fifo_is_not_a_regular_file(city: tuple[list[str], dict[str, Path]], tmp_path: Path) -> None:
    base, _ = city
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    result = _ingest(base, fifo)  # never opened: opening a FIFO with no writer would hang
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        f"Error: {fifo}: not a regular file (a FIFO); ingest reads regular files only"
    )


@pytest.mark.parametrize("named", ["link", "device"])
def test_a_device_is_never_read(city: tuple[list[str], dict[str, Path]], tmp_path: Path, named: str) -> None:
    base, _ = city
    path = Path("/dev/null")
    if named == "link":
        path = tmp_path / "null.csv"
        path.symlink_to("/dev/null")
    result = _ingest(base, path)
    assert result.exit_code == 2, result.output
    what = (
        "a symbolic link to a character device, not to a regular file"
        if named == "link"
        else "not a regular file (a character device)"
    )
    assert result.output.strip() == f"Error: {path}: {what}; ingest reads regular files only"


def test_a_dangling_link_says_so(city: tuple[list[str], dict[str, Path]], tmp_path: Path) -> None:
    base, _ = city
    link = tmp_path / "gone.csv"
    link.symlink_to(tmp_path / "nowhere.csv")
    result = _ingest(base, link)
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"Error: {link}: a symbolic link to a missing file"


def test_a_folder_scan_follows_no_link(city: tuple[list[str], dict[str, Path]], tmp_path: Path) -> None:
    """Links inside a folder, to a file or to another folder, are not read; real files are."""
    base, _ = city
    outside = tmp_path / "outside"
    outside.mkdir()
    foreign = write_day(outside, date(2026, 11, 6))
    folder = tmp_path / "drop"
    (folder / "sub").mkdir(parents=True)
    real = write_day(folder / "sub", DAY)
    (folder / "linked.csv").symlink_to(foreign)
    (folder / "linked_folder").symlink_to(outside, target_is_directory=True)
    (folder / "pw.csv").symlink_to(_secret_file(tmp_path / "etc"))
    result = _ingest(base, folder)
    assert result.exit_code == 0, result.output
    assert f"{real}: 4 loaded" in result.output
    assert "1 file(s): loaded 4 rows" in result.output
    assert str(foreign) not in result.output and "linked" not in result.output


def test_run_skips_links_in_the_inbox_and_says_so(tmp_path: Path) -> None:
    paths = write_city(tmp_path)
    (tmp_path / "citykpi.toml").write_text(
        'database = "city.duckdb"\ncatalogue = "catalogue"\nareas = "areas.csv"\ninbox = ["inbox"]\n'
        'archive = "move"\n[outputs]\nfolder = "out"\nformats = ["json"]\n',
        encoding="utf-8",
    )
    (tmp_path / "elsewhere").mkdir()
    foreign = write_day(tmp_path / "elsewhere", DAY)
    before = _digest(foreign)
    link = paths["inbox"] / "obs-linked.csv"
    link.symlink_to(foreign)
    real = write_day(paths["inbox"], date(2026, 11, 4))
    result = run_job(RunConfig.load(tmp_path / "citykpi.toml"), as_of=DAY)
    log = "\n".join(result.log)
    assert f"WARNING inbox {paths['inbox']}: skipped obs-linked.csv, a symbolic link" in log, log
    assert [f.path.name for f in result.files] == [real.name]
    assert link.is_symlink() and link.parent == paths["inbox"]  # left where it was, not archived
    assert _digest(foreign) == before
    assert not (paths["inbox"] / "done" / link.name).exists()
