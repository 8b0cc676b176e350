"""Shell completion offers what the catalogue and the warehouse know (issue: analyst correctness)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.golden_support import SampleCity

SCRIPT = Path(sys.executable).parent / "citykpi"


def _complete(words: str, city: SampleCity) -> list[str]:
    env = {
        **os.environ,
        "_CITYKPI_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - 1),
        "CITYKPI_DB": str(city.db),
        "CITYKPI_CATALOGUE": str(city.catalogue),
    }
    done = subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.skipif(not SCRIPT.exists(), reason="the citykpi script is not installed beside this Python")
def test_completion_offers_ids_areas_domains_and_option_values(sample_city: SampleCity) -> None:
    assert "env.air.aqi" in _complete("citykpi show env.air.", sample_city)
    assert all(x.startswith("env.air.") for x in _complete("citykpi show env.air.", sample_city))
    ranked = _complete("citykpi rank index.op", sample_city)
    assert ranked == ["index.operation"]
    areas = _complete("citykpi evaluate --area 500103", sample_city)
    assert "500103" in areas and all(a.startswith("500103") for a in areas) and len(areas) > 1
    assert _complete("citykpi evaluate --domain envi", sample_city) == ["environment"]
    assert _complete("citykpi evaluate --period mo", sample_city) == ["month"]


@pytest.mark.skipif(not SCRIPT.exists(), reason="the citykpi script is not installed beside this Python")
def test_completion_without_a_database_completes_nothing(sample_city: SampleCity, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "_CITYKPI_COMPLETE": "complete_bash",
        "COMP_WORDS": "citykpi evaluate --area 5",
        "COMP_CWORD": "3",
        "CITYKPI_DB": str(tmp_path / "missing.duckdb"),
    }
    done = subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.split() == [] and not (tmp_path / "missing.duckdb").exists()
