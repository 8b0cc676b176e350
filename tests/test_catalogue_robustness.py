"""`check` never crashes: random mutations of a full catalogue give diagnostics, not exceptions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citykpi.catalogue.loader import check_catalogue
from citykpi.catalogue.parser import parse_document
from citykpi.catalogue.validate import validate
from citykpi.catalogue.yamlsafe import load_yaml_text
from tests.test_catalogue_loader import FULL

BASE = yaml.safe_load(FULL)

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "",
            "x",
            "red",
            "city",
            "env.air.aqi",
            "index.service",
            "value <= 1",
            "count(*)",
            "2025-13-45",
            "1d",
            "%",
        ]
    ),
    st.text(max_size=12),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["red", "ref", "id", "x", "value", "upto"]), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


PATHS = _paths(BASE)[1:]


def _mutate(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    import copy

    doc = copy.deepcopy(doc)
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), _VALUES, st.booleans()), min_size=1, max_size=3))
def test_mutated_catalogues_never_crash(mutations: list[tuple[tuple[Any, ...], Any, bool]]) -> None:
    doc = BASE
    for path, value, delete in mutations:
        try:
            doc = _mutate(doc, path, value, delete)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed the path
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    loaded = load_yaml_text(text, "m.yaml")
    parsed = parse_document(loaded.data, "m.yaml")
    validate([parsed])  # must not raise


def test_check_on_random_bytes_never_crashes(tmp_path: Path) -> None:
    import random

    rng = random.Random(7)
    for i in range(200):
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        (tmp_path / f"r{i}.yaml").write_bytes(raw)
    result = check_catalogue(tmp_path)
    assert result.counts["files"] == 200
