"""Shared test set-up: keep the catalogue cache out of the user's home folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _catalogue_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Every test (and the subprocesses it starts) caches catalogues under a private tmp folder."""
    folder = tmp_path_factory.mktemp("catalogue-cache")
    monkeypatch.setenv("CITYKPI_CACHE_DIR", str(folder))
    yield folder
