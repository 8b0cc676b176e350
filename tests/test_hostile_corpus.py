"""The hostile corpus (tests/hostile/cases.yaml): every case, one parametrised test.

Each case gets its documented exit code and, when it fails, one ``Error:`` line with a reason and
no traceback; nothing it names as forbidden reaches the terminal; the warehouse's content and every
input file are unchanged (content digests, not row counts). See tests/hostile/README.md.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from citykpi.cli import app
from citykpi.warehouse import Warehouse
from citykpi.warehouse.schema import table_names
from tests._warehouse_support import checksum
from tests.reliability_support import build_city, check_invariants, file_digest

HERE = Path(__file__).parent / "hostile"
CASES: list[dict[str, Any]] = yaml.safe_load((HERE / "cases.yaml").read_text(encoding="utf-8"))
KEYS = {
    "id",
    "group",
    "files",
    "symlinks",
    "fifos",
    "catalogue",
    "args",
    "exit",
    "message",
    "forbid",
    "records_rejects",
}
GROUPS = {"files", "catalogues", "names", "dates", "output targets", "query"}


def test_the_corpus_is_well_formed() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    for c in CASES:
        assert set(c) <= KEYS and {"id", "group", "args", "exit"} <= set(c), c["id"]
        assert c["group"] in GROUPS, c["id"]
        assert c["exit"] == 0 or c.get("message"), f"{c['id']}: a failing case names its message"
    assert {c["group"] for c in CASES} == GROUPS, "every group has cases"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny city, loaded and with one run recorded, copied for every case."""
    root = tmp_path_factory.mktemp("hostile-template") / "city"
    root.mkdir()
    build_city(root)
    return root


def _digest(db: Path, *, but_rejects: bool) -> str:
    """The warehouse's content digest; ``but_rejects`` leaves out what recording rejected rows adds."""
    with Warehouse.open(db, read_only=True, create=False) as wh:
        if not but_rejects:
            return checksum(wh)
        h = hashlib.sha256()
        for name in sorted(set(table_names(wh.con)) - {"batches", "rejects"}):
            h.update(
                name.encode()
                + repr(wh.con.execute(f'SELECT * FROM "{name}" ORDER BY ALL').fetchall()).encode()
            )
        return h.hexdigest()


def _fill(text: str, places: dict[str, str]) -> str:
    for key, value in places.items():
        text = text.replace("{" + key + "}", value)
    return text


def _inputs(*folders: Path) -> dict[Path, str]:
    """sha256 of every regular file (not followed through symlinks) under the folders."""
    out = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if p.is_file() and not p.is_symlink() and p.suffix not in {".wal", ".tmp"}:
                if p.name.endswith(".duckdb"):
                    continue  # the warehouse is compared by content
                out[p] = file_digest(p)
    return out


def _run(args: list[str], *, needs_process: bool) -> tuple[int, str, str]:
    if needs_process:  # a FIFO would block an in-process read forever: a real process with a timeout
        env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
        try:
            done = subprocess.run(
                [sys.executable, "-m", "citykpi", *args], capture_output=True, text=True, timeout=60, env=env
            )
        except subprocess.TimeoutExpired:
            pytest.fail("the command blocked (it opened a FIFO?)")
        return done.returncode, done.stdout, done.stderr
    result = CliRunner().invoke(app, args)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_hostile_case(
    case: dict[str, Any], template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    city = tmp_path / "city"
    shutil.copytree(template, city, symlinks=True)
    here = tmp_path / "case"
    here.mkdir()
    places = {
        "db": str(city / "city.duckdb"),
        "catalogue": str(city / "catalogue"),
        "areas": str(city / "areas.csv"),
        "dir": str(here),
        "case_catalogue": "catalogue",  # relative to the case folder, the working directory: short names
        # in check's text table, which wraps long paths at the terminal width
    }
    for name, text in (case.get("files") or {}).items():
        (here / name).write_bytes(text.encode("utf-8"))
    if case.get("catalogue"):
        (here / "catalogue").mkdir()
        for name, text in case["catalogue"].items():
            (here / "catalogue" / name).write_bytes(text.encode("utf-8"))
    for name, target in (case.get("symlinks") or {}).items():
        (here / name).symlink_to(_fill(target, places))
    for name in case.get("fifos") or ():
        os.mkfifo(here / name)
    rejects = bool(case.get("records_rejects"))
    monkeypatch.chdir(here)
    before_db = _digest(city / "city.duckdb", but_rejects=rejects)
    before = _inputs(city, here)

    args = [_fill(a, places) for a in case["args"]]
    code, out, err = _run(args, needs_process=bool(case.get("fifos")))

    both = out + err
    assert code == case["exit"], f"exit {code}, expected {case['exit']}:\n{both}"
    assert "Traceback" not in both, both
    if case["exit"] in (2, 3):
        errors = [line for line in err.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1, f"expected one Error: line on stderr:\n{err}"
        assert case["message"] in errors[0], errors[0]
    elif case["exit"]:
        assert case["message"] in both, both
    for bad in case.get("forbid") or ():
        assert bad not in both, f"{bad!r} reached the terminal:\n{both!r}"
    assert _digest(city / "city.duckdb", but_rejects=rejects) == before_db, "the warehouse content changed"
    check_invariants(city / "city.duckdb")
    after = _inputs(city, here)
    changed = [str(p) for p, digest in before.items() if after.get(p) != digest]
    assert not changed, f"input files changed or vanished: {changed}"
