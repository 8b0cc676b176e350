"""Load a catalogue folder (or one file): YAML → parsed files → validated :class:`Catalogue`.

``check_catalogue`` never raises for catalogue problems; it returns every diagnostic in one
:class:`CheckResult`. ``load_catalogue`` is for commands that need a sound catalogue: it raises
:class:`CatalogueError` when there are errors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from citykpi.catalogue import cache, model
from citykpi.catalogue.diagnostics import Diagnostic, diagnostic, sort_key
from citykpi.catalogue.parser import ParsedFile, parse_document
from citykpi.catalogue.validate import validate
from citykpi.catalogue.yamlsafe import load_yaml_bytes
from citykpi.errors import CatalogueError, Location

SUFFIXES: tuple[str, ...] = (".yaml", ".yml")


@dataclass(frozen=True)
class CheckResult:
    """Everything ``citykpi check`` found: the catalogue (None when unsound) and its diagnostics."""

    catalogue: model.Catalogue | None
    diagnostics: tuple[Diagnostic, ...]
    files: tuple[str, ...]
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        """The diagnostics with severity error."""
        return tuple(d for d in self.diagnostics if d.severity == "error")

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        """The diagnostics with severity warning."""
        return tuple(d for d in self.diagnostics if d.severity == "warning")

    def ok(self, strict: bool = False) -> bool:
        """True when there are no errors (and, when ``strict``, no warnings either)."""
        if strict:
            return not self.diagnostics
        return not self.errors


class CatalogueLoadError(CatalogueError):
    """The catalogue has errors; ``diagnostics`` holds all of them."""

    def __init__(self, diagnostics: tuple[Diagnostic, ...]) -> None:
        errors = [d for d in diagnostics if d.severity == "error"]
        first = errors[0]
        more = len(errors) - 1
        message = f"{first.message} [{first.rule}]"
        if more:
            message += f" (and {more} more; run `citykpi check`)"
        super().__init__(message, location=first.location, hint=first.hint)
        self.diagnostics = diagnostics


def catalogue_files(path: str | Path) -> tuple[Path, list[tuple[Path, str]]]:
    """The root and the (file, name relative to the root) pairs of a catalogue path, sorted.

    Raises CatalogueError (exit code 3) when the path does not exist.
    """
    root = Path(path)
    if not root.exists():
        raise CatalogueError(
            f"catalogue path {str(root)!r} does not exist",
            hint="pass a folder of *.yaml files or one file, or set --catalogue / CITYKPI_CATALOGUE",
        )
    if root.is_file():
        return root.parent, [(root, root.name)]
    found = [
        p
        for p in root.rglob("*")
        if p.suffix.lower() in SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    pairs = sorted(((p, p.relative_to(root).as_posix()) for p in found), key=lambda pair: pair[1])
    return root, pairs


def _hash_file(digest: Any, rel: str, raw: bytes) -> None:
    """Feed one file (its name relative to the root, and its bytes) into the content hash."""
    digest.update(rel.encode("utf-8") + b"\0" + len(raw).to_bytes(8, "big"))
    digest.update(raw)


def _display_names(path: str | Path, pairs: list[tuple[Path, str]]) -> tuple[str, ...]:
    shown_root = Path(path) if Path(path).is_dir() else Path(path).parent
    return tuple(
        (shown_root / rel).as_posix() if str(shown_root) not in ("", ".") else rel for _, rel in pairs
    )


def catalogue_fingerprint(path: str | Path) -> tuple[str, tuple[str, ...]] | None:
    """The content hash and display names of a catalogue without parsing it (None if a file is unreadable)."""
    _, pairs = catalogue_files(path)
    digest = hashlib.sha256()
    for file, rel in pairs:
        try:
            _hash_file(digest, rel, file.read_bytes())
        except OSError:
            return None
    return digest.hexdigest(), _display_names(path, pairs)


def check_catalogue(path: str | Path) -> CheckResult:
    """Read, parse and validate a catalogue, collecting every problem in one pass.

    Args:
        path: a folder (every ``*.yaml`` / ``*.yml`` below it, sorted) or one YAML file.

    Returns:
        A :class:`CheckResult`; ``catalogue`` is set when there are no errors.

    Raises:
        CatalogueError: the path does not exist (nothing could be checked).
    """
    _, pairs = catalogue_files(path)
    digest = hashlib.sha256()
    parsed: list[ParsedFile] = []
    diags: list[Diagnostic] = []
    names = _display_names(path, pairs)
    for (file, rel), display in zip(pairs, names, strict=True):
        try:
            raw = file.read_bytes()
        except OSError as exc:
            diags.append(
                diagnostic("CK006", f"cannot read the file: {exc.strerror or exc}", Location(display))
            )
            continue
        _hash_file(digest, rel, raw)
        loaded = load_yaml_bytes(raw, display)
        diags.extend(loaded.diagnostics)
        if loaded.data is None and loaded.diagnostics:
            continue
        pf = parse_document(loaded.data, display)
        diags.extend(pf.diagnostics)
        parsed.append(pf)
    if not pairs:
        diags.append(
            diagnostic(
                "CK107", f"no *.yaml or *.yml files under {Path(path).as_posix()}", Location(str(path))
            )
        )
    diags.extend(validate(parsed))
    diags.sort(key=sort_key)
    errors = sum(d.severity == "error" for d in diags)
    indicators = tuple(i for f in parsed for i in f.indicators)
    indices = tuple(x for f in parsed for x in f.indices)
    groups = tuple(g for f in parsed for g in f.groups)
    sources = tuple(s for f in parsed for s in f.sources)
    feeds = tuple(x for f in parsed for x in f.feeds)
    rules = tuple(x for f in parsed for x in f.consistency)
    domains = tuple(d for f in parsed for d in f.domains)
    incidents = tuple(x for f in parsed for x in f.incidents)
    counts = {
        "files": len(pairs),
        "indicators": len(indicators),
        "indices": len(indices),
        "groups": len(groups),
        "sources": len(sources),
        "feeds": len(feeds),
        "consistency": len(rules),
        "errors": errors,
        "warnings": len(diags) - errors,
    }
    catalogue = None
    if not errors:
        catalogue = model.Catalogue(
            indicators=indicators,
            indices=indices,
            groups=groups,
            sources=sources,
            feeds=feeds,
            consistency=rules,
            domains=domains,
            incidents=incidents,
            schema_version=max((f.schema_version for f in parsed), default=1),
            files=names,
            content_hash=digest.hexdigest(),
        )
    return CheckResult(catalogue=catalogue, diagnostics=tuple(diags), files=names, counts=counts)


def load_catalogue(path: str | Path) -> model.Catalogue:
    """Load a sound catalogue or raise.

    Args:
        path: a folder of catalogue files or one file.

    Returns:
        The validated :class:`~citykpi.catalogue.model.Catalogue` (warnings are ignored).

    Raises:
        CatalogueError: the path does not exist, or the catalogue has errors (the subclass
            :class:`CatalogueLoadError` carries every diagnostic in ``diagnostics``).
    """
    fingerprint = catalogue_fingerprint(path)
    key = cache.cache_key(*fingerprint) if fingerprint else None
    if key is not None:
        cached = cache.load(key)
        if cached is not None:
            return cached
    result = check_catalogue(path)
    if result.catalogue is None:
        raise CatalogueLoadError(result.diagnostics)
    if key is not None and len(result.catalogue.indicators) >= cache.CACHE_MIN_INDICATORS:
        cache.store(key, result.catalogue)
    return result.catalogue
