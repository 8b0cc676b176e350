"""A cache of validated catalogues, so commands load a city-size catalogue in a fraction of a second.

Parsing and validating 5,400 indicators takes about 2 s, which every ``ingest`` and ``evaluate`` would
pay again. ``load_catalogue`` keeps the validated model as JSON in the user's cache folder, keyed by
the catalogue's files (names and bytes) and by citykpi's own catalogue code, so any edit of either
misses the cache. ``citykpi check`` never uses it: it always parses and reports everything.

The cache is plain JSON decoded through a whitelist of the model's dataclasses: a tampered cache
file can at worst fail to decode (then the catalogue is parsed as usual); it can never run code.
Set ``CITYKPI_CACHE_DIR`` to choose the folder, or to ``off`` to disable the cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from citykpi import __version__
from citykpi.catalogue import model
from citykpi.errors import Location

#: Catalogues smaller than this parse faster than the cache is worth.
CACHE_MIN_INDICATORS = 1000
_FORMAT = 1

_CLASSES: dict[str, type] = {
    **{
        name: obj
        for name, obj in vars(model).items()
        if isinstance(obj, type) and dataclasses.is_dataclass(obj)
    },
    "Location": Location,
}


def cache_dir() -> Path | None:
    """The cache folder, or None when caching is off."""
    env = os.environ.get("CITYKPI_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "no") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "citykpi"


@cache
def _code_fingerprint() -> str:
    """A hash of the code that turns YAML into the model: a new parser never reads an old cache."""
    digest = hashlib.sha256(f"{__version__}/{_FORMAT}".encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def cache_key(content_hash: str, files: tuple[str, ...]) -> str:
    """The cache key of a catalogue: its content, the names it is shown under, and the code version."""
    digest = hashlib.sha256(_code_fingerprint().encode())
    digest.update(content_hash.encode())
    for name in files:
        digest.update(b"\0" + name.encode("utf-8"))
    return digest.hexdigest()


def encode(value: Any) -> Any:
    """A model value as JSON-ready data, with tags for dataclasses, tuples, mappings, dates and durations."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {"$": type(value).__name__}
        for f in dataclasses.fields(value):
            if f.init:
                out[f.name] = encode(getattr(value, f.name))
        return out
    if isinstance(value, tuple):
        return {"$t": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {"$m": [[str(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$s": value.total_seconds()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot cache a {type(value).__name__}")


def _decode_object(data: dict[str, Any]) -> Any:
    """One tagged JSON object, its members already decoded (``json``'s ``object_hook``, bottom-up)."""
    if "$" in data:
        cls = _CLASSES[str(data.pop("$"))]  # KeyError: not a model class → the caller ignores the cache
        return cls(**data)
    if "$t" in data:
        return tuple(data["$t"])
    if "$m" in data:
        return {str(k): v for k, v in data["$m"]}
    if "$d" in data:
        return date.fromisoformat(str(data["$d"]))
    if "$s" in data:
        return timedelta(seconds=float(data["$s"]))
    raise ValueError("untagged object in catalogue cache")


def decode(text: str) -> Any:
    """The inverse of :func:`encode` on its JSON text; only whitelisted model classes are constructed.

    Objects are rebuilt by the JSON parser's hook as it meets them, which is twice as fast as
    walking the parsed tree again in Python.
    """
    return json.loads(text, object_hook=_decode_object)


def load(key: str) -> model.Catalogue | None:
    """The cached catalogue for ``key``, or None (missing, unreadable or not decodable)."""
    folder = cache_dir()
    if folder is None:
        return None
    path = folder / f"catalogue-{key}.json"
    try:
        catalogue = decode(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return catalogue if isinstance(catalogue, model.Catalogue) else None


def store(key: str, catalogue: model.Catalogue) -> None:
    """Write the catalogue to the cache atomically; a failure (read-only home, full disk) is ignored."""
    folder = cache_dir()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".catalogue-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(encode(catalogue), fh, ensure_ascii=False, separators=(",", ":"))
            os.replace(tmp, folder / f"catalogue-{key}.json")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        return
