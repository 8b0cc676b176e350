"""The key relations every record of a file is checked against, made inside the file's transaction:
``_ck_ind`` (each indicator's key, valid range and storage class), ``_ck_area`` and ``_ck_dst`` (the
local days the city's clocks skip or repeat an hour).

The indicator rows are kept in the warehouse, per catalogue (``catalogue_keys``, schema 8): the first
file read with a catalogue writes them, the next ones only read them, so a feed's 5-minute batch does
not send the city's ~4,500 indicators from Python to SQL again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl

from citykpi import __version__, citytime
from citykpi.backend import Connection
from citykpi.catalogue.model import Catalogue
from citykpi.sqlutil import literal
from citykpi.warehouse import schema
from citykpi.warehouse.connection import Warehouse


@dataclass(frozen=True)
class Found:
    """What making the key relations learnt on the way."""

    #: whether ``series_classes`` holds every (indicator, class) pair of ``_ck_ind`` (None: not asked)
    classes_recorded: bool | None
    #: the storage classes of the catalogue's indicators
    classes: frozenset[int]


def prepare(
    wh: Warehouse, con: Connection, catalogue: Catalogue, windows: tuple[citytime.DstWindow, ...]
) -> Found:
    """Small key relations the staging query joins: ``_ck_ind`` (each indicator's key, valid range and
    storage class; new ids get their keys here), ``_ck_area`` and the days of the city's DST
    ``windows`` (the plan's: those of the years the file spans; none, no table, since the staging
    query then does not join it). The keys stay in SQL: a city's ~10,000 never make the trip to Python.

    Returns what was learnt on the way (:class:`Found`)."""
    found = _indicator_rows(wh, con, catalogue)
    con.execute("CREATE OR REPLACE TEMP VIEW _ck_area AS SELECT area_id, area_key FROM areas")
    if not windows:
        return found
    # the local days on which the city's clocks skip or repeat an hour, one row per day a range touches
    days: list[tuple[date, datetime, datetime, str]] = []
    for w in windows:
        day = w.start.date()
        while day <= (w.end - timedelta(microseconds=1)).date():
            days.append((day, w.start, w.end, w.kind))
            day += timedelta(days=1)
    dst = pl.DataFrame(
        days,
        schema={"day": pl.Date, "lo": pl.Datetime("us"), "hi": pl.Datetime("us"), "kind": pl.String},
        orient="row",
    )
    with con.registered("_ck_dst_frame", dst):
        con.execute("CREATE OR REPLACE TEMP TABLE _ck_dst AS SELECT * FROM _ck_dst_frame")
    return found


#: Catalogues whose rows ``catalogue_keys`` keeps (the newest): feeds read with a few catalogues
#: each find theirs; an older one is written again when it comes back.
KEPT_CATALOGUES = 8


def catalogue_id(catalogue: Catalogue) -> str | None:
    """What names a catalogue's rows in ``catalogue_keys``: its files' content hash and the citykpi
    version that parsed them (a parser's rules may change what the same files mean); None for a
    catalogue built in code, which has no content hash."""
    if not catalogue.content_hash:
        return None
    return hashlib.sha256(f"{catalogue.content_hash}\0{__version__}".encode()).hexdigest()[:32]


def _indicator_rows(wh: Warehouse, con: Connection, catalogue: Catalogue) -> Found:
    """``_ck_ind``: a view of the catalogue's rows in ``catalogue_keys``, written (inside the file's
    transaction) when they are not there yet, so that a feed's next batches only read them. A
    catalogue without a content hash gets a temporary table instead.

    The class pairs are asked in the query that finds the kept rows (unknown when they are written)."""
    name = catalogue_id(catalogue)
    rows = f"SELECT indicator_id, indicator_key, lo, hi, fc FROM catalogue_keys WHERE catalogue = {literal(name)}"
    if name is not None:
        found, unrecorded, classes = con.execute(
            f"""SELECT count(*), count(*) FILTER (WHERE r.indicator_key IS NULL), list(DISTINCT c.fc)
            FROM ({rows}) c
            LEFT JOIN series_classes r ON r.indicator_key = c.indicator_key AND r.freq_class = c.fc"""
        ).fetchall()[0]
        if found == len(catalogue.indicators):
            con.execute(f"CREATE OR REPLACE TEMP VIEW _ck_ind AS {rows}")
            return Found(not unrecorded, frozenset(int(fc) for fc in classes or ()))
    ids, los, his, fcs = [], [], [], []
    for ind in catalogue.indicators:
        lo, hi = ind.valid_range if ind.valid_range else (None, None)
        ids.append(ind.id)
        los.append(lo)
        his.append(hi)
        fcs.append(schema.frequency_class(ind.frequency))
    frame = pl.DataFrame(
        {"indicator_id": ids, "lo": los, "hi": his, "fc": fcs},
        schema={"indicator_id": pl.String, "lo": pl.Float64, "hi": pl.Float64, "fc": pl.Int8},
    )
    keyed = "SELECT f.indicator_id, k.indicator_key, f.lo, f.hi, f.fc FROM _ck_ind_frame f JOIN indicator_keys k USING (indicator_id)"
    with con.registered("_ck_ind_frame", frame):
        # a new indicator gets its key inside the file's transaction, like its rows (rarely: a
        # catalogue's ids are keyed by the first ingest or evaluation that sees them)
        if con.execute(f"SELECT count(*) FROM ({keyed})").fetchall()[0][0] < len(frame):
            wh.register_indicators_of("_ck_ind_frame")
        if name is None:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _ck_ind_rows AS {keyed}")
            con.execute("CREATE OR REPLACE TEMP VIEW _ck_ind AS SELECT * FROM _ck_ind_rows")
            return Found(None, frozenset(fcs))
        generation = con.execute("SELECT coalesce(max(generation), 0) + 1 FROM catalogue_keys").fetchall()[0][
            0
        ]
        con.execute(
            f"DELETE FROM catalogue_keys WHERE catalogue = {literal(name)} OR generation <= {int(generation) - KEPT_CATALOGUES}"
        )
        con.execute(
            f"INSERT INTO catalogue_keys SELECT {literal(name)}, {int(generation)}, indicator_id, indicator_key, lo, hi, fc FROM ({keyed})"
        )
    con.execute(f"CREATE OR REPLACE TEMP VIEW _ck_ind AS {rows}")
    return Found(None, frozenset(fcs))
