"""Where the real public datasets are: ``shared/real-data`` in a folder above the checkout.

CI and the workstations keep ``shared/`` beside the checkout (``<checkout>/../shared``), but a checkout
may also sit deeper (a worktree under ``wt/``), so the folder is found by walking up from this file.
Tests that need it skip with a clear reason when it is truly absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def find_real_data(start: Path | None = None) -> Path | None:
    """The ``shared/real-data`` folder of the nearest ancestor of ``start`` holding one, or None."""
    here = (start or Path(__file__)).resolve()
    for folder in here.parents:
        candidate = folder / "shared" / "real-data"
        if candidate.is_dir():
            return candidate
    return None


_FOUND = find_real_data()
#: The real-data folder (a path that does not exist when none was found, so tests can build names).
REAL: Path = (
    _FOUND if _FOUND is not None else Path(__file__).resolve().parents[1].parent / "shared" / "real-data"
)

#: Skip a test (or module, as ``pytestmark``) when the real datasets are not beside the checkout.
needs_real_data = pytest.mark.skipif(
    _FOUND is None, reason="shared/real-data is not beside the checkout (nor above it)"
)
