"""``citykpi run --check-config``: everything a run would need, checked without running it.

Nothing is written, moved or sent: the config is parsed, the catalogue loaded, each inbox, output
path and notifier looked at, and the database opened read-only when it exists.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from citykpi.daily import clock
from citykpi.errors import CitykpiError, ExitCode

if TYPE_CHECKING:
    from citykpi.cron import RunConfig


@dataclass(frozen=True)
class ConfigCheck:
    """What --check-config found: problems of the configuration, and of the catalogue or database."""

    config_problems: tuple[str, ...]
    other_problems: tuple[str, ...]

    @property
    def exit_code(self) -> int:
        """78 for a configuration problem, 3 for a catalogue or database one, else 0."""
        if self.config_problems:
            return int(ExitCode.CONFIG)
        return int(ExitCode.ERROR) if self.other_problems else int(ExitCode.OK)


def _writable_folder(folder: Path) -> str | None:
    """Why files could not be written in ``folder`` (created if missing), or None."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


def check_config(
    config: RunConfig, path: Path, log: Callable[[str], None], *, as_of: date | None = None
) -> ConfigCheck:
    """Check a loaded config as a run would use it, for the day it would evaluate (``as_of``, by
    default yesterday in the city's zone); one line per finding through ``log``."""
    from citykpi.catalogue import load_catalogue
    from citykpi.daily.config import check_outputs
    from citykpi.daily.steps import check_inbox_options as _check_inbox_options
    from citykpi.notify.notifiers import check_notifier
    from citykpi.warehouse import Warehouse

    config_problems: list[str] = []
    other: list[str] = []

    def ok(line: str) -> None:
        log(f"ok       {line}")

    def bad(line: str, *, config_error: bool = True) -> None:
        (config_problems if config_error else other).append(line)
        log(f"PROBLEM  {line}")

    tz = config.tz
    today = clock.now(tz).date()
    day = as_of or today - timedelta(days=1)  # the day `run` would evaluate
    when = "--date: the run evaluates" if as_of is not None else "a run now evaluates"
    ok(
        f"config {path} parses; time zone {clock.zone_name(tz)} "
        f"(today is {today.isoformat()} there; {when} {day.isoformat()})"
    )
    try:
        catalogue = load_catalogue(config.catalogue)
        ok(f"catalogue {config.catalogue}: {len(catalogue.indicators)} indicators")
        try:
            _check_inbox_options(config, catalogue)
        except CitykpiError as exc:
            bad(exc.message)
    except CitykpiError as exc:
        bad(f"catalogue {config.catalogue}: {exc.message}", config_error=False)
    if config.areas is not None and not config.areas.is_file():
        bad(f"areas file {config.areas} does not exist")
    for inbox in config.inboxes:
        if not inbox.path.is_dir():
            bad(f"inbox {inbox.path} is not a folder")
        elif config.archive == "move" and not os.access(inbox.path, os.W_OK | os.X_OK):
            bad(
                f'inbox {inbox.path} is not writable: files cannot be moved to done/ (or set archive = "keep")'
            )
        else:
            ok(f"inbox {inbox.path} ({inbox.format}, {', '.join(inbox.patterns)})")
    for folder in {config.outputs.folder, config.report_path(day).parent, config.database.parent}:
        why = _writable_folder(folder)
        if why:
            bad(f"{folder}: {why}")
    try:
        check_outputs(config, day)
        ok(
            f"outputs {config.outputs.folder} ({', '.join(config.outputs.formats)}); report {config.report_path(day)}"
        )
    except CitykpiError as exc:
        bad(exc.message)
    if config.database.exists():
        try:
            with Warehouse.open(config.database, read_only=True, create=False, wait=config.wait) as wh:
                ok(f"database {config.database} (schema version {wh.schema_version})")
        except CitykpiError as exc:
            first = exc.message.splitlines()[0]
            if "older schema version" in first:
                ok(f"database {config.database}: {first} (the run migrates it)")
            else:
                bad(f"database {config.database}: {first}", config_error=False)
    else:
        ok(f"database {config.database} does not exist yet: the first run creates it")
    for notifier in config.notifiers:
        problems = check_notifier(notifier)
        for problem in problems:
            bad(problem)
        if not problems:
            ok(f"notifier {notifier.name} ({notifier.type} → {notifier.target()})")
    if not config.notifiers:
        ok("no notifiers: alerts are only logged and written to the reports")
    verdict = "problems found" if config_problems or other else "everything a run needs is in place"
    log(f"{len(config_problems) + len(other)} problem(s): {verdict}")
    return ConfigCheck(tuple(config_problems), tuple(other))
