"""Warehouse DDL and migrations; the schema version lives in table ``meta``.

Keys are integers (text ids live in the ``areas`` and ``indicator_keys`` registries), periods are
TIMESTAMPs and values DOUBLEs, because that is what keeps set-based evaluation fast (see
PERFORMANCE.md). ``observations`` deliberately has no PRIMARY KEY or UNIQUE index: at 100 M rows the
index costs more than it saves, and ingest detects duplicates with set-based anti-joins instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from citykpi.backend import Connection, EngineError
from citykpi.catalogue.model import SourceTable
from citykpi.errors import WarehouseError
from citykpi.sqlutil import ident

#: The schema version this code writes. Bump it and append to :data:`MIGRATIONS` together.
SCHEMA_VERSION = 8

_OBSERVATION_COLUMNS = """
    indicator_key INTEGER NOT NULL,
    area_key INTEGER NOT NULL,
    period TIMESTAMP NOT NULL,
    value DOUBLE,
    numerator DOUBLE,
    denominator DOUBLE,
    batch_id INTEGER NOT NULL"""

_V1: tuple[str, ...] = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
    """CREATE TABLE areas (
    area_key INTEGER PRIMARY KEY,
    area_id TEXT UNIQUE NOT NULL,
    name TEXT,
    name_en TEXT,
    level TEXT NOT NULL,
    parent_key INTEGER,
    population DOUBLE,
    groups TEXT[])""",
    """CREATE TABLE indicator_keys (
    indicator_key INTEGER PRIMARY KEY,
    indicator_id TEXT UNIQUE NOT NULL)""",
    f"CREATE TABLE observations ({_OBSERVATION_COLUMNS})",
    f"CREATE TABLE observations_superseded ({_OBSERVATION_COLUMNS},\n    superseded_by INTEGER NOT NULL)",
    """CREATE TABLE batches (
    batch_id INTEGER PRIMARY KEY,
    kind TEXT,
    path TEXT,
    sha256 TEXT,
    target TEXT,
    rows_read BIGINT,
    rows_loaded BIGINT,
    rows_rejected BIGINT,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    status TEXT,
    tool_version TEXT,
    options TEXT)""",
    """CREATE TABLE rejects (
    batch_id INTEGER,
    path TEXT,
    row_number BIGINT,
    column_name TEXT,
    value TEXT,
    reason TEXT)""",
    """CREATE TABLE runs (
    run_id INTEGER PRIMARY KEY,
    created_at TIMESTAMP,
    as_of DATE,
    grain TEXT,
    catalogue_hash TEXT,
    options TEXT,
    max_batch_id INTEGER,
    cells BIGINT,
    counts TEXT)""",
    """CREATE TABLE run_cells (
    run_id INTEGER,
    indicator_key INTEGER,
    area_key INTEGER,
    value DOUBLE,
    status TEXT,
    severity TINYINT)""",
    """CREATE TABLE run_indices (
    run_id INTEGER,
    index_id TEXT,
    area_key INTEGER,
    score DOUBLE,
    status TEXT,
    coverage DOUBLE)""",
)

#: Version 2 clusters observations by cadence: ``freq_class`` 0 = daily or finer, 1 = weekly or
#: coarser (from the indicator's frequency at ingest). Ingest writes each class in its own row
#: groups, so evaluating monthly and yearly series skips the daily history through zone maps
#: instead of scanning it. ``series_classes`` records which classes each series has rows in, so a
#: later change of an indicator's frequency never hides its older rows.
_V2: tuple[str, ...] = (
    "ALTER TABLE observations ADD COLUMN freq_class TINYINT DEFAULT 0",
    "ALTER TABLE observations_superseded ADD COLUMN freq_class TINYINT DEFAULT 0",
    """CREATE TABLE series_classes (
    indicator_key INTEGER NOT NULL,
    freq_class TINYINT NOT NULL,
    PRIMARY KEY (indicator_key, freq_class))""",
    "INSERT INTO series_classes SELECT DISTINCT indicator_key, 0 FROM observations",
)

#: Version 3 (data quality: what real tables need at ingest) keeps two kinds of records beside the
#: headline observations, which evaluation never reads: ``observations_dims`` holds disaggregated
#: values (``dims`` is the canonical text of the breakdown, e.g. ``age=0-4;sex=male``), checked by
#: the catalogue's consistency rules; ``observations_missing`` holds the cells a provider wrote as a
#: missing-value token (``:``, ``..``, ``NA``…), counted as missing by ``citykpi quality`` instead of
#: being rejected. ``dims`` is '' for a headline cell.
_V3: tuple[str, ...] = (
    """CREATE TABLE observations_dims (
    indicator_key INTEGER NOT NULL,
    area_key INTEGER NOT NULL,
    period TIMESTAMP NOT NULL,
    dims TEXT NOT NULL,
    value DOUBLE,
    numerator DOUBLE,
    denominator DOUBLE,
    batch_id INTEGER NOT NULL)""",
    """CREATE TABLE observations_missing (
    indicator_key INTEGER NOT NULL,
    area_key INTEGER NOT NULL,
    period TIMESTAMP NOT NULL,
    dims TEXT NOT NULL,
    token TEXT,
    batch_id INTEGER NOT NULL)""",
)

#: What an unfiltered evaluation recorded as its options (engine.evaluate, json.dumps sort_keys).
_UNFILTERED_OPTIONS = (
    '{"areas": null, "as_ingested": null, "domains": null, "indicator": null, "kinds": null, "levels": null}'
)

#: Version 4, unattended operation: runs are told apart (``scheduled``: recorded by ``citykpi run``
#: or ``evaluate --scheduled``; comparisons use these by default, so ad-hoc evaluations recorded
#: with ``evaluate --record`` no longer shift "new since the previous run"). Runs recorded before
#: count as scheduled when they evaluated the whole catalogue (what every recorded run was compared
#: with until now), as ad hoc when they were filtered. Alert delivery: ``silences`` (held back
#: notifications, by indicator glob, area, owner or domain, one-off or recurring, with a reason and
#: an expiry), ``notify_outbox`` (one digest per notifier and run, kept until delivered, with its
#: idempotency key) and ``notify_state`` (what each notifier was told is firing, so nothing is sent
#: twice and an alert held back by a silence is announced once the silence ends).
_V4: tuple[str, ...] = (
    "ALTER TABLE runs ADD COLUMN scheduled BOOLEAN DEFAULT false",
    f"UPDATE runs SET scheduled = (options = '{_UNFILTERED_OPTIONS}' OR options IS NULL)",
    """CREATE TABLE silences (
    silence_id INTEGER PRIMARY KEY,
    indicator TEXT,
    area_id TEXT,
    owner TEXT,
    domain TEXT,
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP NOT NULL,
    every TEXT,
    timezone TEXT,
    reason TEXT NOT NULL,
    created_by TEXT,
    created_at TIMESTAMP NOT NULL,
    expired_at TIMESTAMP)""",
    """CREATE TABLE notify_outbox (
    notifier TEXT NOT NULL,
    digest_key TEXT NOT NULL,
    run_id INTEGER,
    as_of DATE,
    grain TEXT,
    created_at TIMESTAMP NOT NULL,
    items INTEGER NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_attempt_at TIMESTAMP,
    last_error TEXT,
    delivered_at TIMESTAMP,
    PRIMARY KEY (notifier, digest_key))""",
    """CREATE TABLE notify_state (
    notifier TEXT NOT NULL,
    indicator_id TEXT NOT NULL,
    area_id TEXT NOT NULL,
    since DATE NOT NULL,
    status TEXT NOT NULL,
    severity TINYINT NOT NULL,
    reminded INTEGER NOT NULL,
    digest_key TEXT,
    PRIMARY KEY (notifier, indicator_id, area_id))""",
)

#: Version 5, alert delivery that survives backfills, refusals and kills: ``notify_cursor`` keeps,
#: per notifier, the newest as-of date it was told about, so a run for an older date (a backfill)
#: tells it nothing (seeded from the digests already queued); ``notify_outbox`` gains ``uncertain``
#: (an earlier attempt may have reached the receiver: a run stopped while ``sending``, a timeout, so
#: the next attempt says ``redelivery``) and who retried or dropped a digest, when and why (statuses:
#: pending, sending, delivered, dead — refused for good — and dropped).
_V5: tuple[str, ...] = (
    """CREATE TABLE notify_cursor (
    notifier TEXT PRIMARY KEY,
    as_of DATE NOT NULL,
    run_id INTEGER,
    updated_at TIMESTAMP NOT NULL)""",
    "INSERT INTO notify_cursor SELECT notifier, max(as_of), max(run_id), max(created_at) FROM notify_outbox "
    "WHERE as_of IS NOT NULL GROUP BY notifier",
    "ALTER TABLE notify_outbox ADD COLUMN uncertain BOOLEAN DEFAULT false",
    "ALTER TABLE notify_outbox ADD COLUMN action TEXT",
    "ALTER TABLE notify_outbox ADD COLUMN action_by TEXT",
    "ALTER TABLE notify_outbox ADD COLUMN action_at TIMESTAMP",
    "ALTER TABLE notify_outbox ADD COLUMN action_reason TEXT",
)

#: Version 6 — real-time vital signs: a run may be as of an instant (``runs.as_at``, NULL for the end of
#: the day ``as_of``), and the alert lifecycle is kept per indicator × area: ``alert_episodes`` holds
#: every episode (pending from ``started_at``, firing from ``fired_at``, resolved or cancelled at
#: ``ended_at``; the last four columns carry an open episode's state to the next update) and
#: ``alert_progress`` how far each indicator's readings have been followed, under which rule.
#: Realtime and hourly readings get storage class 2 from now on (rows already stored keep theirs;
#: ``series_classes`` keeps them reachable).
_V6: tuple[str, ...] = (
    "ALTER TABLE runs ADD COLUMN as_at TIMESTAMP",
    """CREATE TABLE alert_episodes (
    indicator_key INTEGER NOT NULL,
    area_key INTEGER NOT NULL,
    started_at TIMESTAMP NOT NULL,
    fired_at TIMESTAMP,
    ended_at TIMESTAMP,
    last_at TIMESTAMP NOT NULL,
    last_value DOUBLE,
    peak DOUBLE,
    peak_at TIMESTAMP,
    worst_severity TINYINT,
    readings INTEGER NOT NULL,
    last_set_at TIMESTAMP,
    clear_since TIMESTAMP,
    clear_readings INTEGER)""",
    """CREATE TABLE alert_progress (
    indicator_key INTEGER PRIMARY KEY,
    rule_hash TEXT NOT NULL,
    processed_at TIMESTAMP NOT NULL,
    processed_batch INTEGER NOT NULL,
    updated_at TIMESTAMP)""",
)

#: Version 7 — the notify cursor keeps an instant: ``notify_cursor.as_at`` is the instant a
#: notifier was last told about (NULL: the end of the day ``as_of``, as ``runs.as_at``), so running an
#: earlier hour of the same day again is a backfill too. Rows of version 6 are days: NULL.
_V7: tuple[str, ...] = ("ALTER TABLE notify_cursor ADD COLUMN as_at TIMESTAMP",)

#: Version 8 — ingest keeps what it checks each record against: ``catalogue_keys`` holds, per
#: catalogue (``catalogue``: its content hash and the citykpi version that parsed it), each
#: indicator's key, valid range and storage class. A feed's 5-minute batch reads its catalogue's rows
#: instead of sending the city's ~4,500 indicators from Python to SQL again; ``generation`` orders the
#: catalogues, and ingest keeps the newest few.
_V8: tuple[str, ...] = (
    """CREATE TABLE catalogue_keys (
    catalogue TEXT NOT NULL,
    generation INTEGER NOT NULL,
    indicator_id TEXT NOT NULL,
    indicator_key INTEGER NOT NULL,
    lo DOUBLE,
    hi DOUBLE,
    fc TINYINT NOT NULL)""",
)

#: Ordered migrations: (version reached, statements). Applied in order, each in one transaction.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, _V1),
    (2, _V2),
    (3, _V3),
    (4, _V4),
    (5, _V5),
    (6, _V6),
    (7, _V7),
    (8, _V8),
)

#: Observation columns in table order (v2 appended ``freq_class``); name them in every INSERT.
OBSERVATION_COLUMNS: tuple[str, ...] = (
    "indicator_key",
    "area_key",
    "period",
    "value",
    "numerator",
    "denominator",
    "batch_id",
    "freq_class",
)


def frequency_class(frequency: str) -> int:
    """Storage class of an indicator's observations: 0 daily, 1 weekly or coarser, 2 realtime or hourly.

    Each class fills row groups of its own, so a daily evaluation skips the readings of the sub-daily
    feeds and an hourly one the daily history.
    """
    if frequency in ("realtime", "hourly"):
        return 2
    return 0 if frequency == "daily" else 1


#: Tables every citykpi database has (raw ``src_*`` tables come and go with the catalogue).
CORE_TABLES: tuple[str, ...] = (
    "meta",
    "areas",
    "indicator_keys",
    "observations",
    "observations_superseded",
    "batches",
    "rejects",
    "runs",
    "run_cells",
    "run_indices",
    "series_classes",
    "observations_dims",
    "observations_missing",
    "silences",
    "notify_outbox",
    "notify_state",
    "notify_cursor",
    "alert_episodes",
    "alert_progress",
    "catalogue_keys",
)

#: SQL type of each catalogue source column type.
SOURCE_SQL_TYPES: Mapping[str, str] = {
    "text": "TEXT",
    "integer": "BIGINT",
    "double": "DOUBLE",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "boolean": "BOOLEAN",
}


def source_table_name(source_id: str) -> str:
    """Name of the raw table of a catalogue source: ``src_<id>``."""
    return f"src_{source_id}"


def builtin_source_table(source_id: str) -> str:
    """Name of the session table a built-in source (the alert episodes) is read from: ``t_src_<id>``."""
    return f"t_src_{source_id}"


def source_table_ddl(source: SourceTable) -> str:
    """``CREATE TABLE IF NOT EXISTS src_<id>`` from the source's declared columns."""
    cols = [f"{ident(name)} {SOURCE_SQL_TYPES[kind]}" for name, kind in source.columns.items()]
    cols += ["area_key INTEGER", "batch_id INTEGER"]
    return f"CREATE TABLE IF NOT EXISTS {ident(source_table_name(source.id))} (" + ", ".join(cols) + ")"


def table_names(con: Connection) -> set[str]:
    """Base tables in the main schema of the open database."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'main' AND table_catalog = current_database() AND table_type = 'BASE TABLE'"
    ).fetchall()
    return {str(r[0]) for r in rows}


def stored_version(con: Connection) -> int | None:
    """The schema version recorded in ``meta``; None for an empty (new) database.

    Raises:
        WarehouseError: the database holds tables but no citykpi ``meta`` table (a foreign file).
    """
    tables = table_names(con)
    if not tables:
        return None
    if "meta" not in tables:
        raise WarehouseError(
            "this DuckDB file was not made by citykpi (no 'meta' table); it was left untouched",
            hint="point --db at a citykpi database or a new file name",
        )
    rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    row = rows[0] if rows else None
    if row is None or not str(row[0]).isdigit():
        raise WarehouseError(
            "the 'meta' table holds no valid schema_version; this is not a citykpi database",
            hint="point --db at a citykpi database or a new file name",
        )
    return int(row[0])


def migrate(con: Connection, current: int | None, *, tool_version: str) -> int:
    """Apply the migrations after ``current`` in order, each in one transaction; return the new version."""
    version = current or 0
    if version > SCHEMA_VERSION:
        raise WarehouseError(
            f"database schema version {version} was made by a newer citykpi (this one knows {SCHEMA_VERSION}); upgrade",
            hint="install a newer citykpi, or use a different --db",
        )
    for target, statements in _pending(version):
        con.execute("BEGIN TRANSACTION")
        try:
            for stmt in statements:
                con.execute(stmt)
            con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?), ('tool_version', ?)",
                [str(target), tool_version],
            )
            con.execute("COMMIT")
        except EngineError as exc:
            con.execute("ROLLBACK")
            raise WarehouseError(f"migration to schema version {target} failed: {exc}") from exc
        version = target
    return version


def _pending(version: int) -> Sequence[tuple[int, tuple[str, ...]]]:
    return [(v, stmts) for v, stmts in MIGRATIONS if v > version]
