"""The catalogue cache: same model as a fresh parse, missed on any edit, never trusted blindly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from citykpi.catalogue import cache, load_catalogue
from citykpi.catalogue.loader import check_catalogue
from citykpi.errors import CatalogueError

ROOT = Path(__file__).parents[1]


@pytest.fixture
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "CACHE_MIN_INDICATORS", 1)


def test_round_trip_equals_a_fresh_parse() -> None:
    fresh = check_catalogue(ROOT / "indicators").catalogue
    assert fresh is not None
    again = cache.decode(json.dumps(cache.encode(fresh)))
    assert again == fresh
    assert again.by_id.keys() == fresh.by_id.keys()


def test_second_load_comes_from_the_cache(small_threshold: None, _catalogue_cache: Path) -> None:
    first = load_catalogue(ROOT / "indicators")
    files = list(_catalogue_cache.glob("catalogue-*.json"))
    assert len(files) == 1
    second = load_catalogue(ROOT / "indicators")
    assert second == first


def test_an_edit_misses_the_cache(small_threshold: None, tmp_path: Path, _catalogue_cache: Path) -> None:
    cat = tmp_path / "cat"
    shutil.copytree(ROOT / "indicators", cat)
    before = load_catalogue(cat)
    aqi = cat / "environment.yaml"
    aqi.write_text(
        aqi.read_text(encoding="utf-8").replace("Air quality index}", "AQI (edited)}", 1), encoding="utf-8"
    )
    after = load_catalogue(cat)
    assert after.indicator("env.air.aqi").name.en == "AQI (edited)"
    assert before.content_hash != after.content_hash
    assert len(list(_catalogue_cache.glob("catalogue-*.json"))) == 2


def test_a_tampered_cache_file_is_ignored(small_threshold: None, _catalogue_cache: Path) -> None:
    load_catalogue(ROOT / "indicators")
    (path,) = _catalogue_cache.glob("catalogue-*.json")
    path.write_text(json.dumps({"$": "system", "command": "touch /tmp/pwned"}), encoding="utf-8")
    catalogue = load_catalogue(ROOT / "indicators")  # parsed again, nothing constructed from the file
    assert len(catalogue.indicators) > 100
    assert not Path("/tmp/pwned").exists()


def test_cache_off(small_threshold: None, monkeypatch: pytest.MonkeyPatch, _catalogue_cache: Path) -> None:
    monkeypatch.setenv("CITYKPI_CACHE_DIR", "off")
    load_catalogue(ROOT / "indicators")
    assert not list(_catalogue_cache.glob("catalogue-*.json"))


def test_broken_catalogue_is_never_cached(
    small_threshold: None, tmp_path: Path, _catalogue_cache: Path
) -> None:
    (tmp_path / "bad.yaml").write_text("indicators:\n  - id: x\n", encoding="utf-8")
    with pytest.raises(CatalogueError):
        load_catalogue(tmp_path)
    assert not list(_catalogue_cache.glob("catalogue-*.json"))
