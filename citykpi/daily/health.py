"""The daily job's exit contract: the job's health apart from the city's verdict, one registry.

A run ends in one *health* state (did the job do its work?) and carries a *verdict* (is the city at
or above ``fail_on``?). The process exit code says the health first; the verdict fails the process
only when asked (``fail_on``, default ``never``). Every code, its meaning and its precedence live
in :data:`RUN_OUTCOMES`; the README's "Exit codes" table and docs/daily-run.md are generated from
it (:func:`exit_code_table`) and a test keeps them equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from citykpi.catalogue.model import Catalogue
from citykpi.errors import ExitCode
from citykpi.sqlutil import ident
from citykpi.warehouse.connection import Warehouse
from citykpi.warehouse.schema import source_table_name


@dataclass(frozen=True)
class Outcome:
    """One exit code: what it means for every command and for ``run``."""

    code: int
    health: str  # the run's health state ('' for a code that is not one)
    commands: str  # meaning for the other commands
    run: str  # meaning for `citykpi run`


#: The exit codes, in code order. ``run``'s health states: ok, partial, no_data, failed, busy, config.
RUN_OUTCOMES: tuple[Outcome, ...] = (
    Outcome(
        0,
        "ok",
        "success",
        "**ok**: every step done (files ingested, run recorded, reports written, alerts delivered), and "
        "no cell at or above `fail_on`",
    ),
    Outcome(
        1,
        "",
        "the scorecard breached `--fail-on` (default `never`); `check` found errors (or warnings with "
        "`--strict`, or a change with `--against … --fail-on-change`); `test` had a failing case; "
        "`ingest` rejected rows or a file",
        "**verdict**: the job was ok, and some cell is at or above `fail_on` (only when asked: "
        "`fail_on`/`--fail-on`, default `never`)",
    ),
    Outcome(2, "", "usage error (unknown option, bad value)", "usage error (unknown option, bad value)"),
    Outcome(
        3,
        "failed",
        "data, catalogue or environment error: nothing was evaluated or written (message on stderr: "
        "`Error: …` and what to do)",
        "**failed**: nothing was evaluated (catalogue, database, data or disk error), or the scorecard "
        "files could not be written; `Error: …` says why",
    ),
    Outcome(
        4,
        "partial",
        "—",
        "**partial**: evaluated and written, but an input file or rows were rejected, a feed is stale, "
        "a file could not be archived or a notification is still undelivered (retried next run)",
    ),
    Outcome(
        5,
        "no_data",
        "—",
        "**no data**: evaluated and written, but nothing was observed in the date's period (files "
        "late? wrong `--date`?)",
    ),
    Outcome(
        75,
        "busy",
        "—",
        "**busy**: another run holds the lock (or another process the database beyond `wait`); "
        "nothing was done, try later (sysexits `EX_TEMPFAIL`)",
    ),
    Outcome(
        78,
        "config",
        "—",
        "**configuration error**: the config file is missing or wrong; nothing was done (sysexits "
        "`EX_CONFIG`)",
    ),
)

#: Health state → exit code.
HEALTH_CODES: Mapping[str, int] = {o.health: o.code for o in RUN_OUTCOMES if o.health}

#: Which of several applicable states decides the exit code, first wins (the verdict, code 1,
#: comes after every health state but ok).
PRECEDENCE: tuple[str, ...] = ("config", "busy", "failed", "no_data", "partial")

#: What makes a run partial; ``partial_on`` in the config chooses among them (default: all).
PARTIAL_CAUSES: Mapping[str, str] = {
    "rejected": "an inbox file or some of its rows were rejected",
    "stale": "some cells are stale: a feed stopped delivering",
    "undelivered": "a notification could not be delivered yet (it is retried on the next run)",
}

assert set(PRECEDENCE) | {"ok"} == set(HEALTH_CODES)
assert HEALTH_CODES["ok"] == ExitCode.OK and HEALTH_CODES["failed"] == ExitCode.ERROR
assert (HEALTH_CODES["partial"], HEALTH_CODES["no_data"]) == (ExitCode.PARTIAL, ExitCode.NO_DATA)
assert (HEALTH_CODES["busy"], HEALTH_CODES["config"]) == (ExitCode.BUSY, ExitCode.CONFIG)


@dataclass(frozen=True)
class Health:
    """A run's health: the state and why (one line per reason)."""

    status: str
    reasons: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        """The health's own exit code (before the verdict is considered)."""
        return HEALTH_CODES[self.status]


def worst(states: list[str]) -> str:
    """The state that decides among several (``ok`` when none)."""
    for state in PRECEDENCE:
        if state in states:
            return state
    return "ok"


def exit_code(health: str, breached: bool) -> int:
    """The process exit code of a run: the health's, else 1 when the verdict breached ``fail_on``."""
    if health != "ok":
        return HEALTH_CODES[health]
    return int(ExitCode.FAILED) if breached else int(ExitCode.OK)


def exit_code_table() -> str:
    """The Markdown table of exit codes (README "Exit codes" and docs/daily-run.md show it verbatim)."""
    lines = ["| code | every command | `citykpi run` (the daily job) |", "|---|---|---|"]
    lines += [f"| {o.code} | {o.commands} | {o.run} |" for o in RUN_OUTCOMES]
    return "\n".join(lines) + "\n"


def data_in_period(wh: Warehouse, catalogue: Catalogue, start: date, end: date) -> int:
    """How many observations and raw source rows fall in ``[start, end)`` (0: the date has no data).

    One count per stored table (observations and each declared source's raw table), never per
    indicator: a zone-map scan of the period's rows.
    """
    total = 0
    rows = wh.con.execute(
        "SELECT count(*) FROM observations WHERE period >= ? AND period < ?", [start, end]
    ).fetchall()
    total += int(rows[0][0]) if rows else 0
    tables = {
        str(r[0])
        for r in wh.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_catalog = current_database()"
        ).fetchall()
    }
    for source in catalogue.sources:
        table = source_table_name(source.id)
        if table not in tables:
            continue
        rows = wh.con.execute(
            f"SELECT count(*) FROM {ident(table)} WHERE {ident(source.time_column)} >= ? "
            f"AND {ident(source.time_column)} < ?",
            [start, end],
        ).fetchall()
        total += int(rows[0][0]) if rows else 0
    return total
