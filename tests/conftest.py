"""Shared test set-up: keep the catalogue cache out of the user's home folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.daily_support import Receiver
    from tests.golden_support import SampleCity


@pytest.fixture(autouse=True)
def _catalogue_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Every test (and the subprocesses it starts) caches catalogues under a private tmp folder."""
    folder = tmp_path_factory.mktemp("catalogue-cache")
    monkeypatch.setenv("CITYKPI_CACHE_DIR", str(folder))
    yield folder


@pytest.fixture(autouse=True)
def _terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees an 100-column terminal, whatever the shell that runs pytest has in COLUMNS.

    Rich wraps plain output at COLUMNS; a test that asserts on a message must not depend on the
    width of the terminal it was started from (tests that need another width pass it themselves).
    """
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("LINES", raising=False)


@pytest.fixture(scope="session")
def sample_city(tmp_path_factory: pytest.TempPathFactory) -> SampleCity:
    """The bundled sample city as a loaded warehouse, built once per session (tests/golden_support.py)."""
    from tests.golden_support import build_sample_city

    return build_sample_city(tmp_path_factory.mktemp("sample-city"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A running local webhook receiver on 127.0.0.1 (tests/daily_support.py), stopped after the test."""
    from tests.daily_support import Receiver

    r = Receiver().start()
    yield r
    r.stop()
