"""Apache Spark SQL through PySpark: the scale-out backend (optional extra ``citykpi[spark]``).

A Spark warehouse is a folder (``--warehouse``): its small control tables (areas, registries,
batches, runs) live in a DuckDB file inside it and are opened, locked and migrated exactly like an
embedded database, while its data tables are Parquet files published batch by batch
(:mod:`citykpi.backend.published`). Compiled evaluation plans run on Spark SQL: each statement is
translated by :mod:`citykpi.backend.dialect` (dialect ``spark``), session tables are Parquet tables in
a scratch database private to the connection, and the data tables are views over the committed
files. Commands that only read or write the control tables (``areas load``, ``runs list``, ``diff``)
never start a JVM; ``ingest`` validates with DuckDB on the driver and writes Parquet; ``evaluate``,
``show``, ``alerts`` and ``rank`` start one Spark session per process.

PySpark is imported lazily, inside this module's functions: the plain install needs neither it nor
Java. Java 17 or newer is checked before a session starts, with a clear error when it is missing.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from citykpi.backend import duckdb as embedded
from citykpi.backend import published
from citykpi.backend.base import Registering
from citykpi.errors import EngineError, EngineUnavailableError, QueryError, WarehouseError

__all__ = [
    "DEFAULT_MASTER",
    "ERRORS",
    "SparkBackend",
    "SparkConnection",
    "java_version",
    "require_java",
    "session_started",
    "stop_session",
]

#: The Spark master when none is given (``--spark-master`` / ``CITYKPI_SPARK_MASTER``).
DEFAULT_MASTER = "local[*]"
#: The oldest Java PySpark 4 runs on.
MIN_JAVA = 17
JAVA_PACKAGE = "openjdk-17-jre-headless"
SCRATCH = "_scratch"

_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def java_version(java: str | None = None) -> int | None:
    """The major version of the ``java`` that Spark would start (``JAVA_HOME`` first, then PATH); None if absent."""
    if java is None:
        home = os.environ.get("JAVA_HOME", "").strip()
        candidate = Path(home) / "bin" / "java" if home else None
        java = str(candidate) if candidate is not None and candidate.is_file() else shutil.which("java")
    if not java:
        return None
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    m = _VERSION.search(out.stderr + out.stdout)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major  # "1.8.0_392" is Java 8


def require_java() -> int:
    """Java's major version, or :class:`EngineUnavailableError` naming what to install."""
    found = java_version()
    if found is None or found < MIN_JAVA:
        what = "no Java was found" if found is None else f"Java {found} was found"
        raise EngineUnavailableError(
            f"the Spark backend needs Java {MIN_JAVA} or newer; {what}",
            hint=f"install it (Debian/Ubuntu: `apt-get install {JAVA_PACKAGE}`, or a newer "
            "openjdk-NN-jre-headless) or point JAVA_HOME at one; or use the embedded engine (--backend duckdb)",
        )
    return found


def _pyspark() -> Any:
    try:
        import pyspark.sql
    except ImportError:
        raise EngineUnavailableError(
            "the Spark backend needs PySpark, which is not installed",
            hint="pip install 'citykpi[spark]' (PySpark 4 and sqlglot), or use --backend duckdb",
        ) from None
    return pyspark.sql


# --- the process's Spark session ------------------------------------------------------------------------

_SESSION: dict[str, Any] = {}


def _local(master: str) -> bool:
    return master.startswith("local")


def _log_config() -> Path:
    """A log4j2 configuration that keeps Spark's own logging to errors (shipped beside this module)."""
    return Path(__file__).with_name("spark-log4j2.properties")


def session(master: str) -> Any:
    """The process's SparkSession on ``master`` (started on first use, one per process).

    Settings that make Spark's SQL mean what DuckDB's means are fixed here (docs/spark.md, "Session
    settings"): zone-less timestamps, the UTC session time zone, ANSI mode, no SQL on raw files.
    A session started by ``spark-submit`` keeps its own master and resources.
    """
    current = _SESSION.get("session")
    if current is not None and _SESSION.get("master") == master:
        return current
    if current is not None:
        stop_session()
    sql = _pyspark()
    require_java()
    builder = sql.SparkSession.builder.appName("citykpi")
    # Spark's default database lives in ./spark-warehouse unless told otherwise: keep the user's folder clean
    default_db = Path(tempfile.gettempdir()) / f"citykpi-spark-{os.getpid()}"
    conf: dict[str, str] = {
        "spark.sql.warehouse.dir": default_db.as_posix(),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.timestampType": "TIMESTAMP_NTZ",
        "spark.sql.ansi.enabled": "true",
        "spark.sql.runSQLOnFiles": "false",
        "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    }
    # under spark-submit the JVM is already up with its own master, resources and configuration
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    if _local(master) and not submitted:
        conf.update(
            {
                "spark.ui.enabled": "false",
                "spark.sql.shuffle.partitions": os.environ.get("CITYKPI_SPARK_SHUFFLE_PARTITIONS", "4"),
                "spark.default.parallelism": "4",
                "spark.driver.memory": os.environ.get("CITYKPI_SPARK_DRIVER_MEMORY", "1g"),
                "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{_log_config()}",
            }
        )
    if not submitted:
        builder = builder.master(master)
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: no Java after all, or a bad master
        raise EngineUnavailableError(
            f"cannot start Spark on {master}: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc}",
            hint="check --spark-master and that `java -version` works; --debug shows the traceback",
        ) from exc
    spark.sparkContext.setLogLevel("ERROR")
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)  # failures come back as exceptions
    from citykpi.backend.dialect import spark_function_sql

    for statement in spark_function_sql():
        spark.sql(statement)
    for key in ("spark.sql.session.timeZone", "spark.sql.timestampType", "spark.sql.ansi.enabled"):
        spark.conf.set(key, conf[key])  # also on a session spark-submit made
    _SESSION.update(session=spark, master=master, default_db=default_db)
    return spark


def session_started() -> bool:
    """True when this process has a Spark session (for the CLI, which stops it when done)."""
    return "session" in _SESSION


def stop_session() -> None:
    """Stop the process's Spark session, if any (idempotent)."""
    spark = _SESSION.pop("session", None)
    _SESSION.pop("master", None)
    default_db = _SESSION.pop("default_db", None)
    if spark is not None:
        with contextlib.suppress(Exception):
            spark.stop()
    if default_db is not None:
        published.remove_tree(default_db)


atexit.register(stop_session)


# --- errors ---------------------------------------------------------------------------------------------

_STATEMENT_CLASSES = (
    "AnalysisException",
    "ParseException",
    "ArithmeticException",
    "NumberFormatException",
    "DateTimeException",
    "IllegalArgumentException",
    "SparkRuntimeException",
    "UnsupportedOperationException",
    "SparkNoSuchElementException",
)
_RESOURCE_WORDS = ("outofmemory", "out of memory", "java heap space", "interrupted", "cancelled")


class SparkErrors:
    """Recognises and translates PySpark's exceptions (an entry of :func:`iter_backends`)."""

    def is_engine_error(self, exc: BaseException) -> bool:
        """True for a PySpark or Py4J exception."""
        names = {c.__name__ for c in type(exc).__mro__}
        return bool(names & {"PySparkException", "Py4JError", "CapturedException"})

    def translate(self, exc: BaseException) -> EngineError:
        """The :class:`EngineError` of a PySpark exception, sorted into a kind."""
        text = str(exc)
        lower = text.lower()
        names = {c.__name__ for c in type(exc).__mro__}
        if any(w in lower for w in _RESOURCE_WORDS):
            kind = "resources"
        elif names & set(_STATEMENT_CLASSES):
            kind = "statement"
        elif any(w in lower for w in embedded._STORAGE_WORDS):
            kind = "storage"
        else:
            kind = "statement"
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        return EngineError(first, cause=exc, kind=kind)


#: The error translator of the Spark backend.
ERRORS = SparkErrors()


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        if ERRORS.is_engine_error(exc):
            raise ERRORS.translate(exc) from exc
        raise


# --- connections ----------------------------------------------------------------------------------------


def _arrow(frame: pl.DataFrame) -> Any:
    return frame.to_arrow(compat_level=pl.CompatLevel.oldest())


class SparkConnection(Registering):
    """Spark SQL on the process's session, in a scratch database private to this connection.

    Implements :class:`citykpi.backend.base.Connection`. Session tables the plan creates are
    Parquet tables under ``scratch`` (dropped with :meth:`close`); registered frames and the
    warehouse's data tables are temporary views.
    """

    def __init__(self, spark: Any, scratch: Path) -> None:
        """Open a scratch database under ``scratch`` and make it current."""
        self._spark = spark
        self._last: Any = None
        self._rows: list[tuple[Any, ...]] | None = None
        self.scratch = scratch
        self.database = f"citykpi_{uuid.uuid4().hex[:12]}"
        self._views: set[str] = set()
        scratch.mkdir(parents=True, exist_ok=True)
        with _translated():
            spark.sql(f"CREATE DATABASE {self.database} LOCATION '{scratch.as_posix()}'")
            spark.catalog.setCurrentDatabase(self.database)

    @property
    def spark(self) -> Any:
        """The SparkSession."""
        return self._spark

    def execute(self, sql: str, params: Sequence[object] | None = None) -> SparkConnection:
        """Run one statement (queries run when their rows are fetched)."""
        with _translated():
            self._last = self._spark.sql(sql, args=list(params) if params else None)
        self._rows = None
        return self

    def executemany(self, sql: str, params: Sequence[Sequence[object]]) -> SparkConnection:
        """Run one statement once per parameter row."""
        for row in params:
            self.execute(sql, row)
        return self

    def fetchall(self) -> list[tuple[Any, ...]]:
        """All (remaining) rows of the last result."""
        if self._last is None:
            return []
        if self._rows is None:
            with _translated():
                self._rows = [tuple(r) for r in self._last.collect()]
        rows, self._rows = self._rows, []
        return rows

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row of the last result."""
        if self._rows is None:
            self.fetchall_into_buffer()
        assert self._rows is not None
        return self._rows.pop(0) if self._rows else None

    def fetchall_into_buffer(self) -> None:
        """Collect the last result into the row buffer."""
        with _translated():
            self._rows = [tuple(r) for r in self._last.collect()] if self._last is not None else []

    def frame(self, sql: str, params: Sequence[object] | None = None) -> pl.DataFrame:
        """Run a query and return its rows as a Polars frame (through Arrow)."""
        with _translated():
            table = self._spark.sql(sql, args=list(params) if params else None).toArrow()
        return pl.DataFrame(pl.from_arrow(table))

    def batches(self, sql: str, rows: int) -> Iterator[pl.DataFrame]:
        """The whole result as one frame: the driver collects it through Arrow either way."""
        yield self.frame(sql)

    def register(self, name: str, frame: pl.DataFrame) -> None:
        """``frame`` as the temporary view ``name``."""
        with _translated():
            self._spark.createDataFrame(_arrow(frame)).createOrReplaceTempView(name)
        self._views.add(name)

    def unregister(self, name: str) -> None:
        """Drop the temporary view ``name``."""
        with _translated():
            self._spark.catalog.dropTempView(name)
        self._views.discard(name)

    def view(self, name: str, dataframe: Any) -> None:
        """A Spark DataFrame as the temporary view ``name``."""
        with _translated():
            dataframe.createOrReplaceTempView(name)
        self._views.add(name)

    def column_types(self, table: str) -> dict[str, str]:
        """Column → Spark type name (``double``, ``int``…) of a table or view; empty when unknown."""
        try:
            schema = self._spark.table(table).schema
        except Exception:  # not a table of this session: the caller treats the type as unknown
            return {}
        return {f.name: f.dataType.simpleString() for f in schema.fields}

    def complete(self) -> None:
        """Nothing is pending on Spark between statements."""

    def cursor(self) -> SparkConnection:
        """The same session (Spark sessions are shared by the threads of a process)."""
        return self

    def close(self) -> None:
        """Drop the scratch database and its files, and this connection's views (idempotent)."""
        if self._spark is None:
            return
        with contextlib.suppress(Exception):
            self._spark.sql(f"DROP DATABASE IF EXISTS {self.database} CASCADE")
            self._spark.catalog.setCurrentDatabase("default")
        for name in list(self._views):
            with contextlib.suppress(Exception):
                self._spark.catalog.dropTempView(name)
        self._views.clear()
        published.remove_tree(self.scratch)
        self._spark = None


class ControlConnection(embedded.DuckDBConnection):
    """The control database of a Spark warehouse; it owns the Spark connection its plans run on."""

    __slots__ = ("engine", "root")

    def __init__(self, con: Any, root: Path) -> None:
        """Wrap the DuckDB connection of ``root/citykpi.duckdb``."""
        super().__init__(con)
        self.root = root
        self.engine: SparkConnection | None = None

    def close(self) -> None:
        """Close the Spark connection (scratch tables) and the control database."""
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        super().close()


# --- the backend ----------------------------------------------------------------------------------------

_SPARK_TYPES = {
    "INTEGER": "INT",
    "BIGINT": "BIGINT",
    "DOUBLE": "DOUBLE",
    "FLOAT": "FLOAT",
    "TIMESTAMP": "TIMESTAMP_NTZ",
    "DATE": "DATE",
    "TINYINT": "TINYINT",
    "SMALLINT": "SMALLINT",
    "VARCHAR": "STRING",
    "BOOLEAN": "BOOLEAN",
}


def _spark_type(duck: str) -> str:
    return _SPARK_TYPES.get(duck.upper(), "STRING")


class SparkBackend:
    """Spark SQL over a warehouse folder (see the module docstring and docs/spark.md)."""

    dialect = "spark"
    #: days and coarser only for now (docs/spark.md, Limits)
    sub_daily = False
    #: catalogue frames stay in-memory views (a LocalRelation) instead of being written as Parquet
    frames_as_views = True
    #: a scratch table is Parquet files, whose splits Spark reads in no set order
    scans_in_order = False

    def __init__(self, master: str = DEFAULT_MASTER) -> None:
        """A backend on the Spark ``master`` (``local[*]``, ``local[2]``, ``yarn``, ``spark://…``, ``k8s://…``)."""
        self.master = master

    #: ``citykpi query`` runs DuckDB SQL on the control connection: DuckDB's read kinds
    read_kinds: tuple[str, ...] = embedded.BACKEND.read_kinds

    # --- opening ---------------------------------------------------------------------------------

    def check_location(self, path: Path, *, read_only: bool, create: bool) -> None:
        """A warehouse folder: it must exist unless it may be created, and not be a file."""
        _pyspark()  # fail early and plainly when the extra or Java is missing, whatever the command
        require_java()
        control = path / published.CONTROL_FILE
        if path.exists() and not path.is_dir():
            raise WarehouseError(
                f"{path} is a file, not a Spark warehouse folder",
                hint="pass --warehouse FOLDER (it holds citykpi.duckdb and the Parquet tables)",
            )
        if not control.exists() and (read_only or not create):
            raise WarehouseError(
                f"no citykpi warehouse in {path}",
                hint="load areas first (`citykpi --backend spark --warehouse FOLDER areas load FILE`)",
            )
        if not path.exists():
            if not path.parent.exists():
                raise WarehouseError(f"cannot create {path}: folder {path.parent} does not exist")
            path.mkdir()

    def connect(self, path: Path, *, read_only: bool, wait: float) -> ControlConnection:
        """Open the control database (DuckDB's lock and ``--wait``) and show the published tables."""
        inner = embedded.BACKEND.connect(path / published.CONTROL_FILE, read_only=read_only, wait=wait)
        raw = inner._con
        con = ControlConnection(raw, path)
        if not read_only:
            (path / published.TABLES).mkdir(exist_ok=True)
        return con

    def prepared(self, con: Any) -> None:
        """Show the published rows under the data tables' names on the control connection."""
        published.refresh_control_views(con, con.root)

    def tables(self, path: Path) -> published.PublishedTables:
        """The published Parquet tables of the warehouse."""
        return published.PublishedTables(path)

    # --- the engine ------------------------------------------------------------------------------

    def engine(self, con: Any, path: Path) -> SparkConnection:
        """The Spark connection of this warehouse, its views showing the batches committed now."""
        if not isinstance(con, ControlConnection):
            raise WarehouseError("a Spark warehouse was opened without its control connection")
        if con.engine is None:
            spark = session(self.master)
            con.engine = SparkConnection(spark, path / SCRATCH / uuid.uuid4().hex[:12])
        self._refresh_views(con, con.engine, path)
        return con.engine

    def _refresh_views(self, control: ControlConnection, engine: SparkConnection, root: Path) -> None:
        """The data tables as views over their committed files; ``areas`` from the control database."""
        spark = engine.spark
        catalog = str(control.execute("SELECT current_database()").fetchall()[0][0])
        committed = [
            int(r[0])
            for r in control.execute(
                f"SELECT batch_id FROM {catalog}.main.batches WHERE status = 'loaded' ORDER BY batch_id"
            ).fetchall()
        ]
        listed = ", ".join(str(b) for b in committed) or "NULL"
        for name, columns in published.data_tables(control, catalog):
            t = published.table_files(root, name, columns)
            cols = ", ".join(f"`{c}` {_spark_type(k)}" for c, k in columns if c != t.key)
            files = f"_ck_files_{name}"
            if t.has_files():
                schema = f"{cols}, `{t.key}` INT, `day` DATE"
                df = spark.read.schema(schema).option("basePath", str(t.folder)).parquet(str(t.folder))
            else:
                df = spark.createDataFrame([], schema=f"{cols}, `{t.key}` INT, `day` DATE")
            engine.view(files, df)
            select = ", ".join(f"p.`{c}`" for c, _ in columns)
            where = f"p.`{t.key}` IN ({listed})"
            if t.has_removals():
                keys = sorted(published._removal_keys(t))
                rschema = (
                    ", ".join(f"`{c}` {_spark_type(k)}" for c, k in columns if c in keys)
                    + ", `removed_by` INT"
                )
                rdf = spark.read.schema(rschema).option("basePath", str(t.removed)).parquet(str(t.removed))
                engine.view(f"_ck_removed_{name}", rdf)
                match = " AND ".join(f"r.`{k}` = p.`{k}`" for k in keys)
                where += (
                    f" AND NOT EXISTS (SELECT 1 FROM _ck_removed_{name} r "
                    f"WHERE r.removed_by IN ({listed}) AND {match})"
                )
            engine.execute(
                f"CREATE OR REPLACE TEMP VIEW `{name}` AS SELECT {select} FROM {files} p WHERE {where}"
            )
            engine._views.add(name)
        areas = control.frame(
            f"SELECT area_key, area_id, name, name_en, level, parent_key, population, groups "
            f"FROM {catalog}.main.areas ORDER BY area_key"
        )
        engine.register("areas", areas)

    def share(self, con: Any, names: Sequence[str]) -> None:
        """Copy the Spark session tables ``names`` into temporary tables of the control connection."""
        engine = con.engine if isinstance(con, ControlConnection) else None
        if engine is None:
            return
        for name in names:
            frame = engine.frame(f"SELECT * FROM {name}")
            with con.registered("_ck_shared", frame):
                con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _ck_shared")

    def lend(self, con: Any, path: Path, names: Sequence[str]) -> None:
        """Copy the control connection's session tables ``names`` into temporary views of the Spark
        session (they are small: worked out on the driver, such as the alert episodes)."""
        engine = self.engine(con, path)
        for name in names:
            engine.register(name, con.frame(f"SELECT * FROM {name}"))

    # --- the rest of the Backend protocol ---------------------------------------------------------

    def bound_memory(self, con: Any, megabytes: int) -> None:
        """Nothing: a Spark session's memory is its cluster's configuration (and the grains that ask
        for a bound, hour and 15 minutes, are not evaluated on Spark)."""

    def sandbox(self, con: Any, *, lock: bool = True) -> None:
        """Spark: SQL on raw files is off for the whole session; the control connection: DuckDB's sandbox
        with only the warehouse's tables folder readable."""
        if isinstance(con, SparkConnection):
            if str(con.spark.conf.get("spark.sql.runSQLOnFiles")).lower() != "false":
                con.spark.conf.set("spark.sql.runSQLOnFiles", "false")
            return
        root = getattr(con, "root", None)
        if root is not None:
            allowed = str((Path(root) / published.TABLES).resolve())
            con.execute(f"SET allowed_directories = ['{allowed}']")
        embedded.BACKEND.sandbox(con, lock=lock)

    def statement_kinds(self, sql: str) -> list[str]:
        """Kinds of the statements in ``sql`` (``query`` runs DuckDB SQL on the control connection)."""
        try:
            return embedded.BACKEND.statement_kinds(sql)
        except QueryError:
            raise

    def temp_table_sql(self, name: str, select: str) -> str:
        """Canonical session-table DDL (translated to a scratch Parquet table by the dialect)."""
        return f"CREATE OR REPLACE TEMP TABLE {name} AS {select}"

    def is_engine_error(self, exc: BaseException) -> bool:
        """PySpark's and DuckDB's (the control database's) exceptions."""
        return ERRORS.is_engine_error(exc) or embedded.BACKEND.is_engine_error(exc)

    def translate(self, exc: BaseException) -> EngineError:
        """The :class:`EngineError` for a raw PySpark or DuckDB exception."""
        if embedded.BACKEND.is_engine_error(exc):
            return embedded.BACKEND.translate(exc)
        return ERRORS.translate(exc)
