"""`citykpi db rejects`: which batches rejected rows, and the rows themselves, to fix or send back.

Ingest keeps every bad record in ``rejects`` (file, 1-based data row, column, the cell's text and the
reason). This module reads them back: a summary per batch, and the rows of one batch in file order.
"""

from __future__ import annotations

import polars as pl

from citykpi.errors import UsageError
from citykpi.warehouse.connection import Warehouse


def reject_batches(wh: Warehouse, limit: int | None = 20) -> pl.DataFrame:
    """Batches with rejected rows, newest first (``limit`` of them; None: all): batch_id, finished_at,
    status, path, target, rows_read, rows_rejected and ``reasons`` ('12 × unparseable number; 3 × …',
    most frequent first)."""
    return wh.con.frame(
        """WITH r AS (SELECT batch_id, reason, count(*) AS n FROM rejects GROUP BY ALL),
        s AS (SELECT batch_id, string_agg(n || ' × ' || reason, '; ' ORDER BY n DESC, reason) AS reasons
              FROM r GROUP BY batch_id)
        SELECT b.batch_id, b.finished_at, b.status, b.path, b.target, b.rows_read, b.rows_rejected, s.reasons
        FROM batches b JOIN s USING (batch_id)
        ORDER BY b.batch_id DESC LIMIT ?""",
        [limit],
    )


def resolve_batch(wh: Warehouse, ref: str) -> int:
    """A batch id from ``ref``: a number, or ``latest`` (the newest batch that rejected rows)."""
    ref = ref.strip()
    if ref == "latest":
        rows = wh.con.execute("SELECT max(batch_id) FROM rejects").fetchall()
        if not rows or rows[0][0] is None:
            raise UsageError(
                "no batch has rejected rows", hint="nothing to fix: every ingested row was loaded"
            )
        return int(rows[0][0])
    if not ref.isdigit():
        raise UsageError(f"--batch {ref!r}: expected a batch number or 'latest'")
    if not wh.con.execute("SELECT 1 FROM batches WHERE batch_id = ?", [int(ref)]).fetchall():
        raise UsageError(
            f"no batch {ref}", hint="see the batches with `citykpi db rejects` or `citykpi db info`"
        )
    return int(ref)


def reject_rows(wh: Warehouse, batch_id: int) -> pl.DataFrame:
    """The rejected records of one batch in file order: path, row_number, column_name, value, reason."""
    return wh.con.frame(
        """SELECT path, row_number, column_name, value, reason FROM rejects
        WHERE batch_id = ? ORDER BY row_number, column_name NULLS FIRST, reason""",
        [batch_id],
    )
