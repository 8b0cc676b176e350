"""Docs stay true: every command has help text ending with an example and appears in the README."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

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


def _all_commands() -> list[tuple[str, ...]]:
    """Every command and group as its words after ``citykpi`` (the root is ``()``)."""
    out: list[tuple[str, ...]] = []

    def walk(cmd: object, path: tuple[str, ...]) -> None:
        out.append(path)
        for name, sub in (getattr(cmd, "commands", None) or {}).items():
            walk(sub, (*path, name))

    walk(get_command(app), ())
    return out


@pytest.mark.parametrize("words", _all_commands(), ids=lambda w: " ".join(w) or "citykpi")
def test_help_paragraphs_are_not_broken_where_the_source_wraps(words: tuple[str, ...]) -> None:
    """At a wide terminal, each paragraph of a command's help is one line unless it is longer than the
    terminal: a line that ends well short of the width while its paragraph goes on is a hard wrap of
    the docstring, kept by the help formatter (it breaks mid-sentence at any width)."""
    width = 200
    result = CliRunner().invoke(app, [*words, "--help"], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    start = next(n for n, line in enumerate(lines) if line.strip().startswith("Usage:")) + 1
    end = next((n for n, line in enumerate(lines) if line.startswith("╭")), len(lines))
    text = lines[start:end]
    paragraphs: list[list[str]] = [[]]
    for line in text:
        if line.strip():
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    paragraphs = [p for p in paragraphs if p]
    assert paragraphs, f"`citykpi {' '.join(words)}` --help shows no description"
    cmd = get_command(app)
    for word in words:
        cmd = cmd.commands[word]  # type: ignore[attr-defined]
    first = " ".join(((cmd.help or "").split("\n\n")[0]).split())  # type: ignore[attr-defined]
    if len(first) < width - 10:
        assert paragraphs[0] == [" " + first], f"first paragraph not on one line: {paragraphs[0]}"
    for para in paragraphs:
        for line, following in itertools.pairwise(para):
            assert len(line) > width * 3 // 4, (
                f"`citykpi {' '.join(words)} --help` breaks a paragraph early, after {line.strip()!r} "
                f"(next: {following.strip()!r})"
            )


def test_unwrap_help_keeps_marked_paragraphs_and_what_follows_a_form_feed() -> None:
    from citykpi.cli.app import unwrap_help

    doc = """First line
    goes on.

    Second paragraph
      wrapped here.

    \b
    kept
    as lines

    Example: citykpi x
    \f
    internal
    notes"""
    assert unwrap_help(doc) == (
        "First line goes on.\n\nSecond paragraph wrapped here.\n\nkept\nas lines\n\nExample: citykpi x"
        "\f\ninternal\nnotes"
    )


def test_readme_opens_with_the_two_commands() -> None:
    head = README[:1500]
    assert "make demo" in head and "make test" in head
