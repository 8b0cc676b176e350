"""The daily job's log: a time stamp, a level and the run id on every line, as text or JSON.

Text (for people, ``log_format = "text"``)::

    2026-11-19T02:10:03+08:00 INFO    run=17 ingest obs-2026-11-18.csv: loaded, 4 rows loaded, 0 rejected → done/

JSON lines (for machines, ``--log-format json``): ``{"time": …, "level": "info", "run": 17,
"event": "ingest", "message": …, <the event's fields>}``. The time is in the job's time zone.
Names of areas, indicators and files are data: their control characters are shown (``\\x1b``),
never sent, in both formats (:func:`citykpi.render.format.safe_text`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from citykpi.render.format import safe_text

#: Log formats (``log_format`` / ``--log-format``).
LOG_FORMATS: tuple[str, ...] = ("text", "json")
LEVELS: tuple[str, ...] = ("info", "warning", "error")


@dataclass(frozen=True)
class LogRecord:
    """One line of the run's log."""

    time: datetime
    level: str
    run: int | None
    event: str
    message: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        """The line for people."""
        run = f"run={self.run}" if self.run is not None else "run=-"
        stamp = self.time.isoformat(timespec="seconds")
        return f"{stamp} {self.level.upper():<7} {run} {safe_text(self.message, one_line=True)}"

    def json(self) -> str:
        """The line for machines (one JSON object)."""
        doc: dict[str, Any] = {
            "time": self.time.isoformat(timespec="seconds"),
            "level": self.level,
            "run": self.run,
            "event": self.event,
            "message": self.message,
            **self.fields,
        }
        return json.dumps(_safe(doc), ensure_ascii=False, default=str, sort_keys=False)


def _safe(value: Any) -> Any:
    if isinstance(value, str):
        return safe_text(value, one_line=True)
    if isinstance(value, Mapping):
        return {str(k): _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value]
    return value


class RunLog:
    """Collects the run's log records and hands each line to ``sink`` as it happens."""

    def __init__(
        self,
        sink: Callable[[str], None] | None = None,
        *,
        fmt: str = "text",
        tz: tzinfo | None = None,
        clock: Callable[[tzinfo | None], datetime] | None = None,
    ) -> None:
        """A log writing ``fmt`` lines (text or json) with times in ``tz`` read from ``clock``."""
        if fmt not in LOG_FORMATS:
            raise ValueError(f"unknown log format {fmt!r}")
        self.sink = sink
        self.fmt = fmt
        self.tz = tz
        self.clock = clock or (lambda zone: datetime.now(zone))
        self.run: int | None = None
        self.records: list[LogRecord] = []

    def _emit(self, level: str, event: str, message: str, fields: Mapping[str, Any]) -> None:
        record = LogRecord(self.clock(self.tz), level, self.run, event, message, dict(fields))
        self.records.append(record)
        if self.sink is not None:
            self.sink(record.json() if self.fmt == "json" else record.text())

    def info(self, event: str, message: str, **fields: Any) -> None:
        """Log a step."""
        self._emit("info", event, message, fields)

    def warning(self, event: str, message: str, **fields: Any) -> None:
        """Log something the operator should look at; the run goes on."""
        self._emit("warning", event, message, fields)

    def error(self, event: str, message: str, **fields: Any) -> None:
        """Log what stopped (part of) the run."""
        self._emit("error", event, message, fields)

    @property
    def messages(self) -> tuple[str, ...]:
        """The plain messages, in order (``WARNING``/``ERROR`` prefixed)."""
        return tuple(
            f"{r.level.upper()} {r.message}" if r.level != "info" else r.message for r in self.records
        )
