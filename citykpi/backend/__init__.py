"""The engine seam: everything specific to one SQL engine lives behind :class:`Backend`.

``citykpi.backend.base`` declares the protocols; ``citykpi.backend.duckdb`` is the embedded
default; ``citykpi.backend.spark`` runs plans on Apache Spark SQL over a warehouse folder
(``citykpi.backend.published`` keeps its tables); ``citykpi.backend.dialect`` turns citykpi's SQL
into another engine's dialect. :func:`use` chooses the backend a :class:`Warehouse` opens with when
none is named (the CLI's ``--backend``).
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
    "spark_backend",
    "use",
]

_CHOSEN: list[Backend] = []


def default_backend() -> Backend:
    """The backend used when none is named: the one :func:`use` chose, else embedded DuckDB."""
    return _CHOSEN[-1] if _CHOSEN else DUCKDB


def use(backend: Backend | None) -> None:
    """Make ``backend`` the one warehouses open with when none is named (None: back to DuckDB)."""
    _CHOSEN.clear()
    if backend is not None and backend is not DUCKDB:
        _CHOSEN.append(backend)


def spark_backend(master: str | None = None) -> Backend:
    """A Spark backend on ``master`` (default ``local[*]``); imports nothing of PySpark until used."""
    from citykpi.backend.spark import DEFAULT_MASTER, SparkBackend

    return SparkBackend(master or DEFAULT_MASTER)


def engine_error(exc: BaseException) -> EngineError | None:
    """``exc`` as an :class:`EngineError` when any known backend raised it (raw or translated), else None."""
    if isinstance(exc, EngineError):
        return exc
    for backend in iter_backends():
        if backend.is_engine_error(exc):
            return backend.translate(exc)
    return None
