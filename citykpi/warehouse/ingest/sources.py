"""Raw source table files (e.g. hotline cases) → ``src_<id>`` with the declared column types."""

from __future__ import annotations

from collections.abc import Mapping

from citykpi.backend import Connection
from citykpi.catalogue.model import Catalogue, SourceTable
from citykpi.errors import WarehouseError
from citykpi.sqlutil import ident, literal
from citykpi.warehouse import readers, schema
from citykpi.warehouse.ingest.codes import reason
from citykpi.warehouse.ingest.options import IngestOptions
from citykpi.warehouse.ingest.plan import _FileRejected, _Plan
from citykpi.warehouse.ingest.rules import _case, _Check, _date_expr, _number_expr, _ok, _raw_expr, _text_expr
from citykpi.warehouse.ingest.shape import FieldSource, Shape, resolve, shape_relation


class _SourcePlan(_Plan):
    """A raw source table file → ``src_<id>`` with the declared column types."""

    dup_reason = reason("IN605")
    clash_reason = reason("IN606")

    def __init__(
        self, catalogue: Catalogue, source: SourceTable, table: readers.TableFile, options: IngestOptions
    ) -> None:
        """Match every declared column to a file column."""
        super().__init__(options)
        self.source = source
        self.table = table
        self.target = schema.source_table_name(source.id)
        declared_formats: Mapping[str, str] = getattr(source, "formats", None) or {}
        self.formats = {**declared_formats, **options.date_formats}
        cols = table.columns
        self.col: dict[str, str] = {}
        self.shown: dict[str, str] = {}
        sources: dict[str, FieldSource] = {}
        missing = []
        for name in source.columns:
            if name in options.constants:
                sources[name] = FieldSource(constant=options.constants[name])
                continue
            wanted = options.mapping.get(name, name)
            src = resolve(cols, wanted)
            if src is None:
                missing.append(name if wanted == name else f"{name} (mapped to {wanted!r})")
            else:
                sources[name] = src
        if missing:
            raise _FileRejected(
                f"source {source.id!r} columns not found in the file: {', '.join(missing)}; "
                f"{readers.describe_columns(cols, self.table.kind)}; pass --map COLUMN=FILE_COLUMN"
            )
        self.shape: Shape | None = None
        if options.shaped:
            # constants, composite keys and missing-value tokens (a token cell is stored as NULL)
            recode = {readers.find_column(cols, c) or c: t for c, t in options.recode.items()}
            if any(readers.find_column(cols, c) is None for c in options.recode):
                raise _FileRejected(f"recode: no column {next(iter(options.recode))!r} in the file")
            try:
                self.shape = shape_relation(
                    table.sql, cols, sources, recode=recode, null_tokens=options.missing
                )
            except ValueError as exc:
                raise _FileRejected(str(exc)) from None
            self.col = dict(self.shape.fields)
            self.shown = dict(self.shape.shown)
        else:
            self.col = {n: src.columns[0] for n, src in sources.items()}
            self.shown = dict(self.col)
        if source.key:
            self.keys = ((ident(source.key), ident(source.key)),)
        self.time_stage = ident(source.time_column)
        self.time_target = None  # records clash by key, whatever their time

    def stage_sql(self, file_filter: str | None = None, table: readers.TableFile | None = None) -> str:
        """One pass: cast each declared column, map the area, give each record its first failing rule."""
        table = table or self.table
        types = table.columns
        relation = table.sql
        if self.shape is not None and table is self.table:
            relation, types = self.shape.sql, self.shape.types
        src = self.source
        typed: list[str] = []
        raw: list[str] = []
        checks: list[_Check] = []
        for name, kind in src.columns.items():
            fcol = self.col[name]
            ref = ident(fcol)
            ftype = types[fcol]
            is_id = name in (src.area_column, src.key)
            text = _text_expr(ref, ftype) if is_id else _raw_expr(ref, ftype)
            raw.append(f"{text} AS {ident('raw_' + name)}")
            fmt = self.formats.get(name)
            if kind == "text":
                expr = f"{ref}::VARCHAR" if not readers.is_text_type(ftype) else ref
            elif kind in ("date", "timestamp"):
                expr = _date_expr(ref, ftype, fmt, as_date=kind == "date")
            elif kind == "integer":
                expr = (
                    f"TRY_CAST({text} AS BIGINT)"
                    if not readers.is_numeric_type(ftype)
                    else f"TRY_CAST({ref} AS BIGINT)"
                )
            elif kind == "double":
                expr = _number_expr(ref, ftype)
            else:  # boolean
                expr = f"TRY_CAST({text} AS BOOLEAN)"
            typed.append(f"{expr} AS {ident(name)}")
            rawc = f"c.{ident('raw_' + name)}"
            if kind != "text":
                hint = f" (expected format {fmt})" if fmt else ""
                checks.append(
                    _Check(
                        f"{rawc} IS NOT NULL AND c.{ident(name)} IS NULL",
                        reason("IN604", kind=kind, hint=hint),
                        literal(self.shown[name]),
                        rawc,
                    )
                )
            if kind == "double":
                checks.append(
                    _Check(
                        f"NOT isfinite(c.{ident(name)})",
                        reason("IN403"),
                        literal(self.shown[name]),
                        rawc,
                    )
                )
        area_raw = f"c.{ident('raw_' + src.area_column)}"
        time_raw = f"c.{ident('raw_' + src.time_column)}"
        now = literal(self.now.replace(microsecond=0))
        head = [
            _Check(f"{area_raw} IS NULL", reason("IN201"), literal(self.shown[src.area_column]), "NULL"),
            _Check(
                "a.area_key IS NULL",
                reason("IN202"),
                literal(self.shown[src.area_column]),
                area_raw,
            ),
            _Check(
                f"{time_raw} IS NULL",
                reason("IN602", column=src.time_column),
                literal(self.shown[src.time_column]),
                "NULL",
            ),
        ]
        if src.key:
            head.append(
                _Check(
                    f"c.{ident('raw_' + src.key)} IS NULL",
                    reason("IN601"),
                    literal(self.shown[src.key]),
                    "NULL",
                )
            )
        checks = head + checks
        checks.append(
            _Check(
                f"c.{ident(src.time_column)} > {now}",
                reason("IN603", column=src.time_column),
                literal(self.shown[src.time_column]),
                time_raw,
            )
        )
        out_cols = ", ".join(f"c.{ident(n)}" for n in src.columns)
        return f"""
        WITH c AS (SELECT {readers.ROW} AS _row, {", ".join(typed)}, {", ".join(raw)}
                   FROM ({relation}))
        SELECT c._row, {out_cols}, a.area_key AS ak,
               {_ok(checks)} AS ok,
               {_case(checks, "reason")} AS reason,
               {_case(checks, "column")}::VARCHAR AS bad_col,
               {_case(checks, "value")}::VARCHAR AS bad_val
        FROM c LEFT JOIN _ck_area a ON a.area_id = {area_raw}
        """

    def _ensure_table(self, con: Connection) -> bool:
        """True when the source table exists with the declared columns; error when it differs."""
        if self.target not in schema.table_names(con):
            return False
        rows = con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema='main' "
            "AND table_catalog = current_database() AND table_name = ? ORDER BY ordinal_position",
            [self.target],
        ).fetchall()
        have = [str(r[0]) for r in rows]
        want = [*self.source.columns, "area_key", "batch_id"]
        if have != want:
            raise WarehouseError(
                f"table {self.target} has columns {', '.join(have)} but the catalogue declares {', '.join(want)}",
                hint=f"rename the old table (ALTER TABLE {self.target} RENAME TO …) or keep the source's columns",
            )
        return True

    def ensure_target(self, con: Connection) -> None:
        """Create ``src_<id>`` from the declared columns, or check the existing one matches."""
        if not self._ensure_table(con):
            con.execute(schema.source_table_ddl(self.source))

    def insert_values(self, batch_id: int) -> str:
        """The declared columns, area_key, batch_id."""
        cols = ", ".join(f"s.{ident(n)}" for n in self.source.columns)
        return f"{cols}, s.ak, {batch_id}"

    def supersede(self, con: Connection, batch_id: int) -> None:
        """Delete the stored rows whose key this batch brings again."""
        assert self.source.key is not None
        k = ident(self.source.key)
        con.execute(
            f"DELETE FROM {ident(self.target)} o USING _ck_clash c WHERE o.batch_id <> {batch_id} AND o.{k} = c.{k}"
        )
