"""The hooks of .pre-commit-hooks.yaml, run by pre-commit itself from a throw-away repository that uses
this checkout as its hook source: pre-commit clones it at a commit, builds the hook's environment
(pip installs citykpi from that clone, ~30 s the first time) and runs the hooks as a city repository would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GIT = shutil.which("git")

pytestmark = pytest.mark.skipif(GIT is None, reason="git is not installed")


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    done = subprocess.run([GIT or "git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def hook_source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A commit holding this checkout's files as they are now (uncommitted edits included), so the
    hooks under test are the ones in the working tree, wherever and however it was cloned."""
    src = tmp_path_factory.mktemp("hook-source")
    for name in (".pre-commit-hooks.yaml", "pyproject.toml", "README.md", "citykpi"):
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    _git(src, "init", "-q")
    _git(src, "add", "-A")
    _git(src, "commit", "-q", "-m", "hook source")
    return src, _git(src, "rev-parse", "HEAD")


def _city_repo(root: Path, source: tuple[Path, str]) -> Path:
    repo = root / "city"
    shutil.copytree(ROOT / "indicators", repo / "indicators")
    shutil.copytree(ROOT / "tests" / "catalogue_tests", repo / "tests" / "catalogue_tests")
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {source[0].as_posix()}\n    rev: {source[1]}\n"
        "    hooks:\n      - id: citykpi-check\n      - id: citykpi-test\n",
        encoding="utf-8",
    )
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "catalogue")
    return repo


def _pre_commit(repo: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1"}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files", "--color", "never"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_the_hooks_pass_a_sound_catalogue_and_point_at_a_broken_line(
    tmp_path: Path, hook_source: tuple[Path, str]
) -> None:
    repo = _city_repo(tmp_path, hook_source)
    home = tmp_path / "pre-commit-home"
    sound = _pre_commit(repo, home)
    assert sound.returncode == 0, sound.stdout + sound.stderr
    assert "citykpi check (catalogue)" in sound.stdout and "citykpi test" in sound.stdout
    assert sound.stdout.count("Passed") == 2, sound.stdout

    air = repo / "indicators" / "environment.yaml"
    lines = air.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next(n for n, line in enumerate(lines) if "direction: lower_is_better" in line)
    lines[at] = lines[at].replace("lower_is_better", "sideways")
    air.write_text("".join(lines), encoding="utf-8")
    broken = _pre_commit(repo, home)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert f"indicators/environment.yaml:{at + 1}:" in broken.stdout, broken.stdout
    assert "CK083" in broken.stdout and "Failed" in broken.stdout
