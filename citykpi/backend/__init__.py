"""The engine seam: everything specific to one SQL engine lives behind :class:`Backend`.

``citykpi.backend.base`` declares the protocols; ``citykpi.backend.duckdb`` is the embedded
default; ``citykpi.backend.dialect`` turns citykpi's SQL into another engine's dialect.
"""

from __future__ import annotations

from citykpi.backend.base import Backend, Connection, TableStore, iter_backends
from citykpi.backend.duckdb import BACKEND as DUCKDB
from citykpi.backend.duckdb import DuckDBBackend, default_memory_limit, default_threads
from citykpi.errors import EngineError

__all__ = [
    "DUCKDB",
    "Backend",
    "Connection",
    "DuckDBBackend",
    "EngineError",
    "TableStore",
    "default_backend",
    "default_memory_limit",
    "default_threads",
    "engine_error",
]


def default_backend() -> Backend:
    """The backend used when none is named: embedded DuckDB."""
    return DUCKDB


def engine_error(exc: BaseException) -> EngineError | None:
    """``exc`` as an :class:`EngineError` when any known backend raised it (raw or translated), else None."""
    if isinstance(exc, EngineError):
        return exc
    for backend in iter_backends():
        if backend.is_engine_error(exc):
            return backend.translate(exc)
    return None
