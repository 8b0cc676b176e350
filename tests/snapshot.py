"""Plain-file snapshots under tests/snapshots/; refresh with CITYKPI_UPDATE_SNAPSHOTS=1."""

from __future__ import annotations

import os
import re
from pathlib import Path

SNAPSHOTS = Path(__file__).parent / "snapshots"

#: Fields that vary between runs and are stripped before comparing.
_VARYING = [
    (re.compile(r"\brun \d+\b"), "run <N>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?"), "<TIMESTAMP>"),
    (re.compile(r"/tmp/[^\s'\"]+"), "<PATH>"),
    # a rule's length depends on its (varying) title
    (re.compile(r"^(\S.*?) ─+ *$", re.MULTILINE), r"\1 ───"),
]


def normalise(text: str) -> str:
    """Strip varying fields and trailing spaces."""
    for pattern, repl in _VARYING:
        text = pattern.sub(repl, text)
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def assert_snapshot(name: str, text: str) -> None:
    """Compare ``text`` (normalised) with tests/snapshots/<name>; write it when updating."""
    path = SNAPSHOTS / name
    got = normalise(text)
    if os.environ.get("CITYKPI_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        path.write_text(got, encoding="utf-8")
        return
    assert path.exists(), f"snapshot {path} missing; run with CITYKPI_UPDATE_SNAPSHOTS=1 to create it"
    want = path.read_text(encoding="utf-8")
    assert got == want, f"snapshot {name} differs; review and refresh with CITYKPI_UPDATE_SNAPSHOTS=1"
