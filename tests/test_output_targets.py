"""Where `--output` may write (docs/reliability.md, "Output paths"): never the database, its WAL or
lock, a catalogue or input file; only regular files (no link, folder, device, FIFO); an existing file
that is not a previous export of the same format only with --force; `--output ""` is a usage error.

Every refusal is exit 2 (exit 3 for a report path in `run`'s config) with one `Error:` line, no
traceback, and the protected file's bytes (sha256) unchanged; nothing is evaluated or recorded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from citykpi.cli import app
from citykpi.errors import ExportError
from citykpi.render.exports import atomic_write

DAY = "2026-11-07"  # the tiny city's last day (tests/reliability_support.build_city)


@pytest.fixture(scope="module")
def _built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.reliability_support import build_city

    root = tmp_path_factory.mktemp("targets")
    build_city(root)
    return root


@pytest.fixture
def city(_built: Path, tmp_path: Path) -> Path:
    """A fresh copy of the tiny city (city.duckdb and its .lock, catalogue/, areas.csv, inbox/, out/)."""
    root = tmp_path / "city"
    shutil.copytree(_built, root, symlinks=True)
    return root


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(root: Path, *args: str) -> Result:
    return CliRunner().invoke(
        app, ["--db", str(root / "city.duckdb"), "--catalogue", str(root / "catalogue"), *args]
    )


def assert_refused(result: Result, code: int, *needles: str) -> None:
    """The exit code, exactly one `Error:` line naming the cause (plus an optional hint), no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert not [x for x in result.stderr.splitlines() if x and not x.startswith(("Error: ", "  hint: "))]
    for needle in needles:
        assert needle in errors[0], errors[0]


def runs_recorded(root: Path) -> int:
    from citykpi.warehouse import Warehouse

    with Warehouse.open(root / "city.duckdb", read_only=True, create=False) as wh:
        return int(wh.con.execute("SELECT count(*) FROM runs").fetchone()[0])  # type: ignore[index]


# --- protected files ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    #: makes the target (and anything it needs) under the city root; returns (target, protected file)
    setup: Callable[[Path], tuple[Path, Path]]
    needle: str
    args: tuple[str, ...] = ("evaluate", "--date", DAY, "--format", "csv")


def _db(root: Path) -> tuple[Path, Path]:
    return root / "city.duckdb", root / "city.duckdb"


def _lock(root: Path) -> tuple[Path, Path]:
    return root / "city.duckdb.lock", root / "city.duckdb.lock"


def _dotdot(root: Path) -> tuple[Path, Path]:
    return root / "out" / ".." / "city.duckdb", root / "city.duckdb"


def _hard_link(root: Path) -> tuple[Path, Path]:
    os.link(root / "city.duckdb", root / "copy.csv")
    return root / "copy.csv", root / "city.duckdb"


def _symlink_db(root: Path) -> tuple[Path, Path]:
    (root / "latest.csv").symlink_to(root / "city.duckdb")
    return root / "latest.csv", root / "city.duckdb"


def _yaml(root: Path) -> tuple[Path, Path]:
    yaml = sorted((root / "catalogue").glob("*.yaml"))[0]
    return yaml, yaml


def _yaml_hard_link(root: Path) -> tuple[Path, Path]:
    yaml = sorted((root / "catalogue").glob("*.yaml"))[0]
    os.link(yaml, root / "dictionary.md")
    return root / "dictionary.md", yaml


PROTECTED = [
    Case("database", _db, "it is the database"),
    Case("database-parquet", _db, "it is the database", ("evaluate", "--format", "parquet")),
    Case("lock-file", _lock, "it is the database's lock file"),
    Case("dot-dot-path-to-the-database", _dotdot, "it is the database"),
    Case("hard-link-to-the-database", _hard_link, "it is the database"),
    Case("symlink-to-the-database", _symlink_db, "it is the database"),
    Case("catalogue-yaml-by-evaluate", _yaml, "catalogue"),
    Case("catalogue-yaml-by-docs", _yaml, "catalogue", ("catalogue", "docs", "--format", "md")),
    Case("hard-link-to-a-catalogue-yaml", _yaml_hard_link, "hard link", ("catalogue", "docs")),
]


@pytest.mark.parametrize("case", PROTECTED, ids=[c.id for c in PROTECTED])
@pytest.mark.parametrize("force", [False, True], ids=["", "force"])
def test_protected_files_are_never_replaced(city: Path, case: Case, force: bool) -> None:
    target, kept = case.setup(city)
    before, runs = sha(kept), runs_recorded(city)
    result = cli(city, *case.args, "--output", str(target), *(["--force"] if force else []))
    assert_refused(result, 2, "will not write", case.needle)
    assert sha(kept) == before
    assert runs_recorded(city) == runs, "the refusal came after the evaluation"


def test_the_write_ahead_log_name_is_never_created(city: Path) -> None:
    wal = city / "city.duckdb.wal"
    before = sha(city / "city.duckdb")
    result = cli(city, "evaluate", "--format", "json", "-o", str(wal))
    assert_refused(result, 2, "write-ahead log")
    assert not wal.exists() and sha(city / "city.duckdb") == before


def test_a_new_yaml_in_the_catalogue_folder_is_refused(city: Path) -> None:
    """It would join the catalogue and break the next load."""
    result = cli(city, "catalogue", "docs", "--format", "md", "-o", str(city / "catalogue" / "docs.yml"))
    assert_refused(result, 2, "catalogue folder")
    assert not (city / "catalogue" / "docs.yml").exists()


def test_check_never_replaces_the_catalogue_it_checks(city: Path) -> None:
    yaml = sorted((city / "catalogue").glob("*.yaml"))[0]
    before = sha(yaml)
    result = CliRunner().invoke(app, ["check", str(yaml), "--format", "json", "-o", str(yaml), "--force"])
    assert_refused(result, 2, "the catalogue file")
    assert sha(yaml) == before


COMMANDS = [
    ("show", "env.air.aqi", "--format", "csv"),
    ("alerts", "--format", "csv"),
    ("rank", "env.air.aqi", "--format", "json"),
    ("diff", "--from", "latest", "--format", "csv"),
    ("runs", "list", "--format", "jsonl"),
    ("db", "rejects", "--format", "markdown"),
    ("catalogue", "docs", "--format", "html"),
    ("check", "--format", "junit"),
]


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a[:2]) for a in COMMANDS])
def test_every_command_with_output_refuses_the_database(city: Path, args: tuple[str, ...]) -> None:
    before = sha(city / "city.duckdb")
    result = cli(city, *args, "--output", str(city / "city.duckdb"))
    assert_refused(result, 2, "it is the database")
    assert sha(city / "city.duckdb") == before


# --- only regular files ------------------------------------------------------------------------


def _fifo(root: Path) -> Path:
    os.mkfifo(root / "pipe.csv")
    return root / "pipe.csv"


def _folder(root: Path) -> Path:
    return root / "out"


def _dev_null(_root: Path) -> Path:
    return Path("/dev/null")


def _symlink_export(root: Path) -> Path:
    (root / "today.csv").symlink_to(root / "out" / f"scorecard-{DAY}-day.csv")
    return root / "today.csv"


def _file_as_folder(root: Path) -> Path:
    return root / "areas.csv" / "x.csv"


SPECIAL = [
    pytest.param(_fifo, "named pipe (FIFO)", id="fifo"),
    pytest.param(_folder, "it is a folder", id="folder"),
    pytest.param(_dev_null, "it is a device", id="dev-null"),
    pytest.param(_symlink_export, "symbolic link; name the real file", id="symlink-to-an-export"),
    pytest.param(_file_as_folder, "a folder on its path is a file", id="file-as-folder"),
]


@pytest.mark.parametrize(("make", "needle"), SPECIAL)
@pytest.mark.parametrize("command", ["evaluate", "alerts"])
@pytest.mark.parametrize("force", [False, True], ids=["", "force"])
def test_only_regular_files_are_written(
    city: Path, make: Callable[[Path], Path], needle: str, command: str, force: bool
) -> None:
    target = make(city)
    kind = os.lstat(target).st_mode if os.path.lexists(target) else None
    linked = os.readlink(target) if target.is_symlink() else None
    export = city / "out" / f"scorecard-{DAY}-day.csv"
    before = sha(export)
    result = cli(city, command, "--format", "csv", "--output", str(target), *(["--force"] if force else []))
    assert_refused(result, 2, needle)
    assert (os.lstat(target).st_mode if os.path.lexists(target) else None) == kind  # still what it was
    assert (os.readlink(target) if target.is_symlink() else None) == linked
    assert sha(export) == before


def test_atomic_write_itself_replaces_only_regular_files(tmp_path: Path) -> None:
    """The library's last line of defence, for a link or FIFO that appears after the command's check."""
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    (tmp_path / "link.csv").symlink_to(real)
    os.mkfifo(tmp_path / "pipe.csv")
    for name, needle in (("link.csv", "symbolic link"), ("pipe.csv", "FIFO")):
        with pytest.raises(ExportError, match=needle):
            atomic_write(tmp_path / name, lambda tmp: tmp.write_text("new\n"))
    assert real.read_text() == "old\n" and (tmp_path / "link.csv").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "pipe.csv", "real.csv"]


# --- existing files: previous exports, foreign files, --force -----------------------------------


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [
        pytest.param("notes.txt", b"my notes\n", "csv", id="text-file-with-another-extension"),
        pytest.param("s.parquet", b"yesterday's report", "parquet", id="parquet-name-not-parquet"),
        pytest.param("s.xlsx", b"%PDF-1.7\n", "xlsx", id="xlsx-name-not-xlsx"),
        pytest.param("s.json", b"name: x\n", "json", id="json-name-yaml-content"),
        pytest.param("s.csv", b"PAR1\x00\x01binary", "csv", id="csv-name-binary-content"),
        pytest.param("s.html", "名前\n".encode("gb18030"), "html", id="html-name-not-utf8"),
    ],
)
def test_a_foreign_file_needs_force(city: Path, name: str, content: bytes, fmt: str) -> None:
    target = city / name
    target.write_bytes(content)
    result = cli(city, "evaluate", "--date", DAY, "--no-record", "--format", fmt, "-o", str(target))
    assert_refused(result, 2, f"will not replace {target}", "--force")
    assert target.read_bytes() == content
    forced = cli(
        city, "evaluate", "--date", DAY, "--no-record", "--format", fmt, "-o", str(target), "--force"
    )
    assert forced.exit_code == 0, forced.output
    assert target.read_bytes() != content


def test_a_copy_of_a_database_is_never_replaced_even_with_force(city: Path) -> None:
    other = city / "old.json"
    shutil.copyfile(city / "city.duckdb", other)
    before = sha(other)
    result = cli(city, "evaluate", "--format", "json", "-o", str(other), "--force")
    assert_refused(result, 2, "it is a DuckDB database")
    assert sha(other) == before


#: what a file of each format's name holds when it is not an export of that format
_FOREIGN = {"csv": b"\x00\x01binary", "json": b"name: x\n", "html": b"plain words\n", "xlsx": b"%PDF-1.7\n"}


@pytest.mark.parametrize("fmt", ["csv", "json", "html", "xlsx"])
def test_previous_exports_and_empty_files_are_replaced_but_foreign_ones_are_not(city: Path, fmt: str) -> None:
    """`run` wrote these reports; writing the same format over them (or over an empty file) needs no
    --force; a file of the same name pattern with other content does."""
    evaluate = ("evaluate", "--date", DAY, "--level", "city", "--no-record", "--format", fmt, "-o")
    previous = city / "out" / f"scorecard-{DAY}-day.{fmt}"
    before = sha(previous)
    result = cli(city, *evaluate, str(previous))
    assert result.exit_code == 0, result.output
    assert sha(previous) != before  # the city-only scorecard replaced the full one
    again = cli(city, *evaluate, str(previous))
    assert again.exit_code == 0, again.output
    empty = city / f"empty.{fmt}"
    empty.touch()
    assert cli(city, *evaluate, str(empty)).exit_code == 0 and empty.stat().st_size > 0
    foreign = city / f"foreign.{fmt}"
    foreign.write_bytes(_FOREIGN[fmt])
    assert_refused(cli(city, *evaluate, str(foreign)), 2, "is not a previous", "--force")
    assert foreign.read_bytes() == _FOREIGN[fmt]


# --- the option's value ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [("evaluate", "--format", "csv"), ("catalogue", "docs"), ("runs", "list", "-f", "csv")]
)
def test_an_empty_output_is_a_usage_error(city: Path, args: tuple[str, ...]) -> None:
    before = sha(city / "city.duckdb")
    result = cli(city, *args, "--output", "")
    assert_refused(result, 2, "--output is empty")
    assert sha(city / "city.duckdb") == before


def test_dash_is_stdout(city: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(city)
    result = cli(city, "evaluate", "--date", DAY, "--no-record", "--format", "csv", "--output", "-")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("indicator_id,")
    assert not (city / "-").exists()
    binary = cli(city, "evaluate", "--date", DAY, "--no-record", "--format", "xlsx", "--output", "-")
    assert_refused(binary, 2, "binary")


# --- the daily run's reports --------------------------------------------------------------------


def _config(root: Path, folder: str) -> Path:
    text = (
        (root / "citykpi.toml").read_text(encoding="utf-8").replace('folder = "out"', f'folder = "{folder}"')
    )
    (root / "citykpi.toml").write_text(text, encoding="utf-8")
    return root / "citykpi.toml"


def test_run_refuses_a_foreign_file_at_a_report_name_before_it_starts(city: Path) -> None:
    foreign = city / "out" / "scorecard-2026-11-08-day.json"
    foreign.write_text("keep me\n", encoding="utf-8")
    before, runs = sha(city / "city.duckdb"), runs_recorded(city)
    result = CliRunner().invoke(app, ["run", "--config", str(city / "citykpi.toml"), "--date", "2026-11-08"])
    assert_refused(result, 78, "[outputs] will not replace", "scorecard-2026-11-08-day.json")  # EX_CONFIG
    assert foreign.read_text(encoding="utf-8") == "keep me\n"
    assert sha(city / "city.duckdb") == before and runs_recorded(city) == runs


def test_run_never_writes_its_reports_where_an_inbox_would_read_them(city: Path) -> None:
    config = _config(city, "inbox")
    before = sha(city / "city.duckdb")
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--date", DAY])
    assert_refused(result, 78, "input folder")
    assert sha(city / "city.duckdb") == before
    assert not list((city / "inbox").glob("scorecard-*"))
