"""Docs stay true: every command has help text ending with an example and appears in the README."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.main import get_command

from citykpi.cli import app

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands() -> list[tuple[str, object]]:
    root = get_command(app)
    out: list[tuple[str, object]] = []
    for name, cmd in root.commands.items():  # type: ignore[attr-defined]
        sub = getattr(cmd, "commands", None)
        if sub:
            out.extend((f"{name} {s}", c) for s, c in sub.items())
        else:
            out.append((name, cmd))
    return out


COMMANDS = _commands()


def test_there_are_commands() -> None:
    assert len(COMMANDS) >= 15


@pytest.mark.parametrize(("name", "cmd"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_command_has_help_with_example(name: str, cmd: object) -> None:
    text = (getattr(cmd, "help", None) or "").strip()
    assert text, f"`citykpi {name}` has no help text"
    assert "Example" in text or "citykpi " in text.splitlines()[-1], f"`citykpi {name}` help has no example"


@pytest.mark.parametrize("name", [n for n, _ in COMMANDS])
def test_command_is_in_readme(name: str) -> None:
    assert f"citykpi {name}" in README, f"`citykpi {name}` is not documented in README.md"


def test_readme_opens_with_the_two_commands() -> None:
    head = README[:1500]
    assert "make demo" in head and "make test" in head
