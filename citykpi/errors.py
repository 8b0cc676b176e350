"""The one error hierarchy of citykpi, and the exit codes it maps to.

Every error the library raises on purpose is a :class:`CitykpiError`. The CLI has a single
error boundary that prints ``Error: <message>`` on stderr and exits with ``exit_code``.

Exit codes are a published contract (see README "Exit codes"); never renumber them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Documented process exit codes."""

    OK = 0
    #: The scorecard breached ``--fail-on``, or ``check``/``test`` found errors.
    FAILED = 1
    #: Bad command-line usage (Click's convention).
    USAGE = 2
    #: Data, catalogue or environment error: nothing was evaluated or written.
    ERROR = 3
    #: ``run`` only: evaluated and written, but some input was rejected or stale, a file could not
    #: be archived, or a notification is still undelivered.
    PARTIAL = 4
    #: ``run`` only: evaluated and written, but nothing was observed in the date's period.
    NO_DATA = 5
    #: ``run`` only: another run holds the lock (sysexits.h EX_TEMPFAIL: try again later).
    BUSY = 75
    #: ``run`` only: the configuration file is missing or wrong (sysexits.h EX_CONFIG).
    CONFIG = 78


@dataclass(frozen=True, slots=True)
class Location:
    """Where something is: a file and, when known, a 1-based line and column (or a data row)."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


class CitykpiError(Exception):
    """Base of every error citykpi raises on purpose."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, location: Location | None = None, hint: str | None = None):
        self.message = message
        self.location = location
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class UsageError(CitykpiError):
    """The command was called wrongly (bad option value, conflicting options)."""

    exit_code = ExitCode.USAGE


class CatalogueError(CitykpiError):
    """The indicator catalogue cannot be loaded or is unsound."""


class ExpressionError(CatalogueError):
    """An expression in the catalogue is unparsable or uses something not on the whitelist."""


class DataError(CitykpiError):
    """An input data file is unreadable or rejected."""


class WarehouseError(CitykpiError):
    """The DuckDB database is missing, corrupt, foreign, too new, or cannot be written."""


class DatabaseBusyError(WarehouseError):
    """Another citykpi process holds the database for writing."""


class EngineUnavailableError(CitykpiError):
    """The SQL engine asked for cannot run here: its Python package or its runtime (Java for Spark) is
    missing or too old. Exit 3; the hint names what to install."""


class QueryError(CitykpiError):
    """A read-only query (``citykpi query``) does not parse or fails: unknown table or column, a type
    error. Exit 3 like other database errors; a statement that is not a read is a UsageError."""


class EvaluationError(CitykpiError):
    """Evaluation could not be carried out (e.g. no areas loaded)."""


class ExportError(CitykpiError):
    """A scorecard could not be written to its destination."""


class ConfigError(CitykpiError):
    """The run configuration (citykpi.toml) is invalid: ``run`` exits 78 (sysexits.h EX_CONFIG)."""

    exit_code = ExitCode.CONFIG


class RunBusyError(DatabaseBusyError):
    """Another ``citykpi run`` holds the job's lock (or another process the database beyond the
    wait): ``run`` exits 75 (sysexits.h EX_TEMPFAIL), so a scheduler can tell it from a failure."""

    exit_code = ExitCode.BUSY


class RunFailedError(CitykpiError):
    """The daily job failed after it started (nothing evaluated, or the reports not written); the
    message is the cause's. Exit 3, whatever the cause's own code."""


class EngineError(CitykpiError):
    """The SQL engine failed under the library (damaged file, disk full, I/O error, a bad statement).

    Raised by a backend in place of the engine's own exception, which stays as ``__cause__`` (and as
    :attr:`cause`); the message is the engine's own first line(s), unchanged. The backend sorts it
    into :attr:`kind`: ``"storage"`` (I/O, disk full, read-only, a damaged file), ``"resources"``
    (out of memory, interrupted), ``"forbidden"`` (the sandbox refused a file or setting access) or
    ``"statement"`` (the SQL itself failed: a conversion, binder or other error that no disk problem
    explains). :attr:`step` names the evaluation step whose SQL
    failed, when the error happened in one.
    """

    def __init__(
        self,
        message: str,
        *,
        cause: BaseException | None = None,
        hint: str | None = None,
        kind: str = "storage",
    ):
        super().__init__(message, hint=hint)
        self.cause = cause
        self.kind = kind
        self.step: str | None = None
