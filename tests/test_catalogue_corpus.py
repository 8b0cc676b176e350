"""The broken-catalogue corpus: each file under tests/corpus/catalogue/ names its rule and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from citykpi.catalogue import check_catalogue, load_catalogue
from citykpi.catalogue.diagnostics import RULES
from citykpi.errors import CatalogueError

CORPUS = Path(__file__).parent / "corpus" / "catalogue"
FILES = sorted(CORPUS.glob("*.yaml"))
EXPECT = re.compile(rb"^# expect: (CK\d{3}) line (\d+)$")


def _expected(path: Path) -> tuple[str, int]:
    first = path.read_bytes().split(b"\n", 1)[0]
    m = EXPECT.match(first)
    assert m, f"{path.name}: first line must be '# expect: CKxxx line N'"
    return m.group(1).decode(), int(m.group(2))


def test_corpus_is_large_enough() -> None:
    assert len(FILES) >= 30


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_corpus_file_reports_its_rule_at_its_line(path: Path) -> None:
    rule, line = _expected(path)
    result = check_catalogue(path)
    found = {(d.rule, d.location.line) for d in result.errors}
    assert (rule, line) in found, [str(d) for d in result.diagnostics]
    # No noise: every error in the file is the one the file is about.
    assert {d.rule for d in result.errors} == {rule}, [str(d) for d in result.errors]
    assert all(d.location.file.endswith(path.name) for d in result.errors)
    assert result.catalogue is None
    assert not result.ok()
    with pytest.raises(CatalogueError):
        load_catalogue(path)


def test_corpus_covers_most_error_rules() -> None:
    covered = {_expected(p)[0] for p in FILES}
    errors = {code for code, rule in RULES.items() if rule.severity == "error"}
    assert len(covered & errors) >= 30


def test_whole_corpus_in_one_pass() -> None:
    """A folder of broken files: every file gets its errors reported, none stops the others.

    (Across the folder many files share ids, so some rules give way to duplicate-id errors.)
    """
    result = check_catalogue(CORPUS)
    files_with_errors = {d.location.file.rsplit("/", 1)[-1] for d in result.errors}
    assert files_with_errors == {p.name for p in FILES}
    assert result.counts["files"] == len(FILES)
