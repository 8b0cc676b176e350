"""The *old* side of ``citykpi check --against REV``: another catalogue folder, or PATH at a git revision.

REV is taken as a folder or file first (when one exists under that name), else as a git revision of
the repository that holds PATH. The catalogue files at that revision are copied out into a temporary
folder that is removed afterwards; git runs with argument lists only (never a shell), REV is refused
when it starts with ``-`` (it would be read as an option), and ``--`` stands before every path. Only
regular files (blobs) are copied, under names checked to stay inside the temporary folder: links,
submodules, absolute names and ``..`` are skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from citykpi.catalogue.loader import SUFFIXES
from citykpi.errors import CatalogueError, UsageError

#: git modes of the tree entries copied out: regular and executable files.
_FILE_MODES = ("100644", "100755")
#: Environment for git: no prompts, no pager, no translated messages (they are parsed).
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0"}


@dataclass(frozen=True)
class OldCatalogue:
    """Where the old catalogue can be read (``path``) and how to name it to a reader (``label``).

    ``shown_as`` maps the beginning of a file name under ``path`` (as ``check_catalogue`` shows it)
    to the name a reader knows: ``main:indicators/env.yaml`` rather than a temporary folder.
    """

    path: Path
    label: str
    revision: str | None = None  # the commit, when REV was a git revision
    shown_as: tuple[str, str] | None = None

    def display(self, file: str) -> str:
        """A file name of the old catalogue as a reader should see it."""
        if self.shown_as is not None and file.startswith(self.shown_as[0]):
            return self.shown_as[1] + file[len(self.shown_as[0]) :]
        return file


def _git(args: Sequence[str], *, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``git ARGS`` in ``cwd`` (argument list, no shell); CatalogueError when git is not installed."""
    exe = shutil.which("git")
    if exe is None:
        raise CatalogueError(
            "git is not installed, so a revision cannot be read",
            hint="install git, or pass another catalogue folder to --against",
        )
    env = {**os.environ, **_GIT_ENV}
    return subprocess.run(  # an argument list (no shell); REV was checked not to be an option
        [exe, *args], cwd=cwd, input=stdin, capture_output=True, env=env, check=False
    )


def _first_line(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else "no message"


def _repository(path: Path) -> tuple[Path, str]:
    """The work tree's top folder and PATH relative to it (posix), or UsageError outside a repository."""
    folder = path if path.is_dir() else path.parent
    done = _git(["rev-parse", "--show-toplevel", "--show-prefix"], cwd=folder)
    if done.returncode != 0:
        raise UsageError(
            f"{path.as_posix()} is not in a git repository, and --against names no folder or file",
            hint="pass a revision of the repository that holds the catalogue (e.g. origin/main), "
            "or another catalogue folder",
        )
    top, prefix = [*done.stdout.decode("utf-8", "surrogateescape").splitlines(), "", ""][:2]
    relative = PurePosixPath(prefix) if prefix else PurePosixPath()
    if path.is_file():
        relative = relative / path.name
    return Path(top), relative.as_posix() if str(relative) != "." else ""


def _commit(top: Path, rev: str) -> str:
    """The commit REV names, or UsageError."""
    done = _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"], cwd=top)
    if done.returncode != 0:
        raise UsageError(
            f"unknown revision {rev!r} in the git repository {top.as_posix()}",
            hint="name a branch, tag or commit (`git log --oneline` lists them; a CI checkout may "
            "need `fetch-depth: 0`), or another catalogue folder",
        )
    return done.stdout.decode("ascii").strip()


def _safe_name(name: str) -> PurePosixPath | None:
    """A tree path that stays inside the destination, or None."""
    pure = PurePosixPath(name)
    if pure.is_absolute() or not pure.parts or any(p in ("", ".", "..") for p in pure.parts):
        return None
    if "\\" in name or "\0" in name:
        return None
    return pure


def _blobs(top: Path, commit: str, relative: str) -> list[tuple[PurePosixPath, str]]:
    """(path, blob id) of the catalogue files under ``relative`` at ``commit``."""
    args = ["ls-tree", "-r", "-z", "--full-tree", commit, "--"]
    done = _git([*args, relative] if relative else args, cwd=top)
    if done.returncode != 0:
        raise CatalogueError(f"git ls-tree failed: {_first_line(done.stderr)}")
    out: list[tuple[PurePosixPath, str]] = []
    for entry in done.stdout.split(b"\0"):
        if not entry:
            continue
        meta, _, raw_name = entry.partition(b"\t")
        mode, kind, blob = meta.decode("ascii").split()
        name = _safe_name(raw_name.decode("utf-8", "surrogateescape"))
        if kind != "blob" or mode not in _FILE_MODES or name is None:
            continue  # links, submodules and odd names are never written out
        if name.suffix.lower() in SUFFIXES:
            out.append((name, blob))
    return out


def _write_blobs(top: Path, blobs: list[tuple[PurePosixPath, str]], dest: Path) -> None:
    """Write each blob to ``dest / path`` with one ``git cat-file --batch``."""
    if not blobs:
        return
    done = _git(["cat-file", "--batch"], cwd=top, stdin="".join(f"{b}\n" for _, b in blobs).encode())
    if done.returncode != 0:
        raise CatalogueError(f"git cat-file failed: {_first_line(done.stderr)}")
    data, at = done.stdout, 0
    for name, blob in blobs:
        end = data.index(b"\n", at)
        header = data[at:end].decode("ascii").split()
        if len(header) != 3 or header[0] != blob or header[1] != "blob":
            raise CatalogueError(f"git cat-file gave an unexpected answer for {name}")
        size = int(header[2])
        content = data[end + 1 : end + 1 + size]
        at = end + 1 + size + 1  # the content is followed by a newline
        target = dest.joinpath(*name.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


@contextmanager
def old_catalogue(path: str | Path, against: str) -> Iterator[OldCatalogue]:
    """The catalogue to compare ``path`` against, for as long as the ``with`` block lasts.

    Args:
        path: the (new) catalogue folder or file.
        against: another catalogue folder or file, or a git revision of the repository holding ``path``.

    Yields:
        An :class:`OldCatalogue`; a revision's files live in a temporary folder removed on exit.

    Raises:
        UsageError: ``against`` starts with ``-``, names no folder and ``path`` is not in a git
            repository, or names no revision there (exit 2).
        CatalogueError: git is not installed, or the catalogue did not exist at that revision (exit 3).
    """
    if not against or against.startswith("-"):
        raise UsageError(
            f"--against {against!r} is not a revision or a folder",
            hint="a revision may not start with '-'; write a folder as ./-name",
        )
    other = Path(against)
    if other.exists():
        yield OldCatalogue(path=other, label=other.as_posix())
        return
    new = Path(path)
    if not new.exists():
        raise CatalogueError(f"catalogue path {new.as_posix()!r} does not exist")
    top, relative = _repository(new)
    commit = _commit(top, against)
    blobs = _blobs(top, commit, relative)
    if not blobs:
        where = relative or "the repository's top folder"
        raise CatalogueError(
            f"{where} holds no *.yaml or *.yml files at revision {against!r} ({commit[:12]})",
            hint="every entity would be new: compare with a revision that has the catalogue",
        )
    tmp = Path(tempfile.mkdtemp(prefix="citykpi-against-"))
    try:
        _write_blobs(top, blobs, tmp)
        old_path = tmp.joinpath(*PurePosixPath(relative).parts) if relative else tmp
        shown_root = old_path if old_path.is_dir() else old_path.parent
        shown_rel = PurePosixPath(relative) if new.is_dir() else PurePosixPath(relative).parent
        prefix = f"{shown_rel.as_posix()}/" if str(shown_rel) not in ("", ".") else ""
        yield OldCatalogue(
            path=old_path,
            label=f"{against}:{relative}" if relative else against,
            revision=commit,
            shown_as=(f"{shown_root.as_posix()}/", f"{against}:{prefix}"),
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
