"""The one path by which rows enter ``observations``: ingest's plans and ``citykpi test`` fixtures both use it.

An append is an ``INSERT … SELECT`` of the eight observation columns from a staged relation
(aliased ``s``) in storage-class passes, followed by :func:`record_series_classes`, which keeps
``series_classes`` (what the evaluation's zone-map pruning relies on) in step with the rows.
"""

from __future__ import annotations

from citykpi.backend import Connection
from citykpi.warehouse import schema

#: The staged relation's columns an append reads, in ``schema.OBSERVATION_COLUMNS`` order (the batch id,
#: a constant, goes before the last).
_STAGED: tuple[str, ...] = ("s.ik", "s.ak", "s.period", "s.value", "s.numerator", "s.denominator", "s.fc")
#: One insert per storage class, so each class fills its own row groups (zone maps).
CLASS_PASSES: tuple[str, ...] = ("s.fc = 0", "s.fc = 1", "s.fc = 2")


def insert_sql(source: str, batch_id: int, *, where: str = "TRUE", order: str = "") -> str:
    """``INSERT INTO observations`` from the staged relation ``source`` (columns ik, ak, period, …, fc)."""
    return (
        f"INSERT INTO observations ({', '.join(schema.OBSERVATION_COLUMNS)}) "  # named: v2 appended freq_class
        f"SELECT {', '.join((*_STAGED[:-1], str(int(batch_id)), _STAGED[-1]))} "
        f"FROM {source} s WHERE {where}{order}"
    )


def screened_insert_sql(
    source: str,
    batch_id: int,
    blocks: str,
    *,
    where: str = "TRUE",
    order: str = "",
    record_classes: bool = True,
) -> str:
    """One statement: the rows of ``source`` (alias ``s``) that satisfy ``where`` are staged once in memory
    (``m``: ik, ak, period, …), appended by an ``INSERT`` in a ``WITH`` (a DuckDB 2 statement runs it
    whether or not the query reads it) and grouped by ``blocks``, a SELECT over ``m`` with columns
    ``n`` (rows), ``dup`` and ``period``. Its one row: (rows appended, blocks with ``dup``, first and last
    period). The ``INSERT`` writes as a plain one does (row groups written as they fill, not at commit).
    With ``record_classes`` (unless :func:`classes_recorded` says the rows cannot add one: a DISTINCT
    of every row cost a tenth of the statement), a second ``INSERT`` records the (indicator, class)
    pairs of ``series_classes`` the rows add, as :func:`record_series_classes` would after them."""
    classes = f"c AS ({_new_classes_sql('SELECT DISTINCT ik, fc FROM m')}) " if record_classes else ""
    return (
        f"WITH m AS MATERIALIZED (SELECT {', '.join(_STAGED)} FROM {source} s WHERE {where}), "
        f"a AS ({insert_sql('m', batch_id, order=order)}){', ' if classes else ' '}{classes}"
        f"SELECT coalesce(sum(n), 0), count(*) FILTER (WHERE dup), min(period), max(period) FROM ({blocks})"
    )


def classes_recorded(con: Connection, classes: str) -> bool:
    """Whether ``series_classes`` holds every pair of ``classes``, a relation (indicator_key, fc) of
    the one class each indicator's rows can be stored in (ingest's ``_ck_ind``): then no row stored
    by its rules can add a pair, as on every feed batch after the first."""
    unrecorded = con.execute(
        f"""SELECT count(*) FROM {classes} c ANTI JOIN series_classes r
        ON r.indicator_key = c.indicator_key AND r.freq_class = c.fc"""
    ).fetchall()[0][0]
    return not unrecorded


def record_series_classes(con: Connection, batch_id: int, *, classes: str | None = None) -> None:
    """Record which storage classes each series of batch ``batch_id`` has rows in.

    ``classes``, when given, names a relation (indicator_key, fc) holding the one class each
    indicator's rows can be stored in (ingest's ``_ck_ind``). When every such pair is recorded
    already, as on every feed batch after the first, the batch cannot add one and is not read.
    """
    if classes is not None and classes_recorded(con, classes):
        return
    con.execute(
        _new_classes_sql(
            f"SELECT DISTINCT indicator_key, freq_class FROM observations WHERE batch_id = {int(batch_id)}"
        )
    )


def _new_classes_sql(pairs: str) -> str:
    """INSERT into ``series_classes`` the (indicator key, class) pairs of the SELECT ``pairs`` it lacks."""
    return f"INSERT INTO series_classes {pairs} EXCEPT SELECT indicator_key, freq_class FROM series_classes"


def append_observations(con: Connection, source: str, batch_id: int) -> int:
    """Append every row of the staged relation ``source`` as batch ``batch_id``, class by class in time order.

    The batch row itself is the caller's (ingest records it with the file's facts). Returns the rows appended.
    """
    total = 0
    for where in CLASS_PASSES:
        total += int(
            con.execute(insert_sql(source, batch_id, where=where, order=" ORDER BY s.period")).fetchall()[0][
                0
            ]
        )
    record_series_classes(con, batch_id)
    return total
