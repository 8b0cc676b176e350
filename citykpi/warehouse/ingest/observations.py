"""Long and wide observation files → ``observations`` (indicator × area × period values)."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from typing import Any, ClassVar

from citykpi import citytime
from citykpi.backend import Connection
from citykpi.catalogue.model import Catalogue
from citykpi.sqlutil import ident, literal
from citykpi.warehouse import readers, schema
from citykpi.warehouse.ingest import append
from citykpi.warehouse.ingest.codes import reason
from citykpi.warehouse.ingest.options import ALIASES, EARLIEST_PERIOD, LONG_FIELDS, IngestOptions
from citykpi.warehouse.ingest.plan import _FileRejected, _Plan, _Side, temp_tables
from citykpi.warehouse.ingest.rules import (
    _case,
    _Check,
    _number_checks,
    _number_expr,
    _ok,
    _period_expr,
    _raw_expr,
    _text_expr,
    _zoned_expr,
)
from citykpi.warehouse.ingest.shape import FieldSource, Shape, resolve, shape_relation


class _ObservationPlan(_Plan):
    """Long or wide observations → ``observations``."""

    target = "observations"
    keys = (("ik", "indicator_key"), ("ak", "area_key"), ("period", "period"))
    dup_reason = reason("IN501")
    clash_reason = reason("IN502")
    changed_reason = reason("IN503")

    def __init__(self, catalogue: Catalogue, table: readers.TableFile, options: IngestOptions) -> None:
        """Resolve the file's columns against the long or wide layout (and reshape it when asked)."""
        super().__init__(options)
        self.table = table
        self.catalogue = catalogue
        self.sources: dict[str, FieldSource] = {}
        self.shape: Shape | None = None
        self.col: dict[str, str | None] = {}
        #: the city's zone: offsets are converted to its wall clock, its DST edges checked
        self.zone_name = catalogue.timezone
        self.zone = citytime.zone(catalogue.timezone)
        if options.now is None:
            self.now = citytime.now_local(self.zone)
        #: the DST windows of the file's years, once :meth:`dst_windows` has read them
        self._windows: tuple[citytime.DstWindow, ...] | None = None
        self._stats: list[tuple[Any, Any]] | None = None
        #: rows per row group of a Parquet file, read with the period statistics
        self._group_rows: list[int] = []
        cols = table.columns
        if options.fmt == "wide":
            self._resolve_wide(cols)
        else:
            self._resolve_long(cols)
        self.shown = {f: c for f, c in self.col.items() if c}
        if options.shaped:
            self._reshape(cols)

    # column resolution ------------------------------------------------------------------------

    def _recoded(self, name: str) -> bool:
        """True when some recode sets field ``name``."""
        return any(name in m for table in self.options.recode.values() for m in table.values())

    def _find(self, cols: dict[str, str], name: str, *, required: bool) -> str | None:
        if name in self.options.constants:
            self.sources[name] = FieldSource(constant=self.options.constants[name])
            return f"--set {name}"
        explicit = self.options.mapping.get(name)
        if explicit is not None:
            src = resolve(cols, explicit)
            if src is None:
                raise _FileRejected(
                    f"--map {name}={explicit}: no column {explicit!r}; {readers.describe_columns(cols, self.table.kind)}"
                )
            self.sources[name] = src
            return src.shown
        for candidate in (name, *ALIASES.get(name, ())):
            found = readers.find_column(cols, candidate)
            if found is not None:
                self.sources[name] = FieldSource(columns=(found,))
                return found
        if self._recoded(name):
            self.sources[name] = FieldSource()
            return f"{name} (recoded)"
        if required:
            raise _FileRejected(
                f"no {name!r} column; {readers.describe_columns(cols, self.table.kind)}; pass --map {name}=COLUMN"
            )
        return None

    def _reshape(self, cols: dict[str, str]) -> None:
        """Constants, composite keys, recodes and dimensions: stage a relation with them as columns."""
        for column in self.options.recode:
            if readers.find_column(cols, column) is None:
                raise _FileRejected(
                    f"recode: no column {column!r}; {readers.describe_columns(cols, self.table.kind)}"
                )
        recode = {readers.find_column(cols, c) or c: t for c, t in self.options.recode.items()}
        dims: dict[str, FieldSource | None] = {}
        for dim, column in self.options.dimensions.items():
            if not column:
                dims[dim] = None  # set by a recode only
                continue
            src = resolve(cols, column)
            if src is None:
                raise _FileRejected(
                    f"dimension {dim}={column}: no column {column!r}; {readers.describe_columns(cols, self.table.kind)}"
                )
            dims[dim] = src
        try:
            self.shape = shape_relation(
                self.table.sql,
                cols,
                self.sources,
                dimensions=dims,
                recode=recode,
                blank_tokens=self.options.missing,
            )
        except ValueError as exc:
            raise _FileRejected(str(exc)) from None
        self.col = {f: (self.shape.fields.get(f) if c else None) for f, c in self.col.items()}
        self.shown = {f: self.shape.shown.get(f, f) for f, c in self.col.items() if c}

    def _resolve_long(self, cols: dict[str, str]) -> None:
        positional = (
            all(re.fullmatch(r"column\d+", c) for c in cols) and len(cols) >= 4 and not self.options.mapping
        )
        if positional:  # a header-less file: indicator_id, area_id, period, value[, numerator, denominator]
            names = list(cols)
            self.col = {f: (names[i] if i < len(names) else None) for i, f in enumerate(LONG_FIELDS)}
            self.sources = {f: FieldSource(columns=(c,)) for f, c in self.col.items() if c}
        else:
            self.col = {
                "indicator_id": self._find(cols, "indicator_id", required=True),
                "area_id": self._find(cols, "area_id", required=True),
                "period": self._find(cols, "period", required=True),
                "numerator": self._find(cols, "numerator", required=False),
                "denominator": self._find(cols, "denominator", required=False),
            }
            has_parts = self.col["numerator"] is not None and self.col["denominator"] is not None
            self.col["value"] = self._find(cols, "value", required=not has_parts)

    def _resolve_wide(self, cols: dict[str, str]) -> None:
        self.col = {
            "area_id": self._find(cols, "area_id", required=True),
            "period": self._find(cols, "period", required=True),
        }
        wide: dict[str, str] = {}
        if self.options.wide:
            for column, indicator in self.options.wide.items():
                found = readers.find_column(cols, column)
                if found is None:
                    raise _FileRejected(
                        f"--map {column}={indicator}: no column {column!r}; {readers.describe_columns(cols, self.table.kind)}"
                    )
                wide[found] = indicator
        else:
            known = set(self.catalogue.by_id)
            wide = {c: c for c in cols if c in known}
        if not wide:
            raise _FileRejected(
                "no indicator columns found in this wide file; pass --map COLUMN=INDICATOR_ID for each value column"
            )
        self.wide = wide

    # SQL --------------------------------------------------------------------------------------

    def typed_columns(self) -> dict[str, str] | None:
        """Ids as VARCHAR, the period as DATE (as TIMESTAMP in the --date-format of ``period`` when one
        is given, unless it has a time zone) and the numbers as DOUBLE."""
        if self.shape is not None or self.options.shaped:
            return None  # reshaped rows (tokens, constants, recodes…) are staged from the text read
        if any(z in self.options.date_formats.get("period", "") for z in ("%z", "%Z")):
            return None  # a zoned period converts through TIMESTAMPTZ as text: keep to that path
        # DuckDB's typed TIMESTAMP read drops a UTC offset without a word: without a --date-format
        # the period is read as a plain date (YYYY-MM-DD) and a file of time stamps goes the text way
        kind = "TIMESTAMP" if self.options.date_formats.get("period") else "DATE"
        wanted = {"indicator_id": "VARCHAR", "area_id": "VARCHAR", "period": kind}
        types = {column: wanted[f] for f, column in self.col.items() if column and f in wanted}
        if self.options.fmt == "wide":
            types.update(dict.fromkeys(self.wide, "DOUBLE"))
        else:
            types.update({column: "DOUBLE" for f, column in self.col.items() if column and f not in wanted})
        return types

    def streamed_passes(self, part: str, good: str) -> tuple[str, tuple[str, ...]]:
        """A streamed long file's pass over ``part`` reads its ids verbatim: the test for blanks
        around an id, computed for every record, cost a seventh of a 5-minute batch's append. An id
        with blanks around it then matches nothing; such records (and no others) are read again, with
        the blanks removed, when the count of rejects says records are missing.

        The passes of the smaller storage classes (weekly-or-coarser, realtime and hourly) keep only
        records whose indicator id is one of that class's ids (a semi join on the key table
        ``_ck_ind``: a literal IN list of the city's 4,476 hourly ids cost 5× the rest of a 5-minute
        batch's scan); records of ids the filter cannot match verbatim are the rest."""
        blanks = self._blanks()
        hit = self._class_filter(part)
        first = f"(SELECT * FROM ({self.stage_sql(hit, appending=True)}) WHERE ok)"
        unseen = [] if hit is None else [self._good(self.stage_sql(f"NOT coalesce({hit}, FALSE)"))]
        if blanks:
            unseen.append(self._good(self.stage_sql(blanks if hit is None else f"({hit}) AND ({blanks})")))
        return first, tuple(unseen)

    @staticmethod
    def _good(stage: str) -> str:
        return f"(SELECT * FROM ({stage}) WHERE reason IS NULL)"

    def _blanks(self) -> str | None:
        """SQL over the file's columns: a text id has blanks around it (None: no text ids)."""
        cols = [self.col.get("indicator_id"), self.col.get("area_id")]
        tests = [
            f"starts_with({ident(c)}, ' ') OR ends_with({ident(c)}, ' ')"
            for c in cols
            if c and readers.is_text_type(self.table.columns.get(c, ""))
        ]
        return " OR ".join(f"({t})" for t in tests) or None

    def _classes(self) -> frozenset[int]:
        """The storage classes of the catalogue's indicators (read by ingest's key check, else worked out)."""
        if self.catalogue_classes is not None:
            return self.catalogue_classes
        return frozenset(schema.frequency_class(i.frequency) for i in self.catalogue.indicators)

    def _class_filter(self, part: str) -> str | None:
        """The pushed-down id filter of the pass over storage class ``part`` (None: read every record)."""
        column = self.col.get("indicator_id")
        classes = {"s.fc = 1": 1, "s.fc = 2": 2}
        if part not in classes or self.options.fmt != "long" or column is None or self.shape is not None:
            return None
        if not readers.is_text_type(self.table.columns.get(column, "")):
            return None
        fc = classes[part]
        some = fc in self._classes()
        return f"{ident(column)} IN (SELECT indicator_id FROM _ck_ind WHERE fc = {fc})" if some else "FALSE"

    def stage_sql(
        self,
        file_filter: str | None = None,
        table: readers.TableFile | None = None,
        *,
        appending: bool = False,
    ) -> str:
        """One pass: parse, join the key tables, give each record its first failing rule.

        ``appending``: the stage of a pass that appends only the records that are ``ok``, when another
        reads the rest (:meth:`streamed_passes`): ids as they are (no blanks removed, '' not
        missing), and no reject texts (``reason``, ``bad_col``, ``bad_val`` are NULL)."""
        table = table or self.table
        types = table.columns
        relation = table.sql
        if self.shape is not None and table is self.table:
            relation, types = self.shape.sql, self.shape.types
        verbatim = appending or table.typed  # kept only if every record is good: see _Plan.load
        c = {k: (ident(v) if v else None) for k, v in self.col.items()}
        shown = self.shown
        period_fmt = self.options.date_formats.get("period")
        if self.options.fmt == "wide":
            wcols = list(self.wide)
            all_numeric = all(readers.is_numeric_type(types[w]) for w in wcols)
            cast = "DOUBLE" if all_numeric else "VARCHAR"
            inner = ", ".join(f"{ident(w)}::{cast} AS {ident(w)}" for w in wcols)
            area_c, period_c = c["area_id"], c["period"]
            assert area_c is not None and period_c is not None
            dims_in = f", {ident(self.shape.dims)} AS _dims" if self.shape and self.shape.dims else ""
            src = (
                f"SELECT * FROM (UNPIVOT (SELECT {readers.ROW}, {area_c} AS _area, {period_c} AS _period{dims_in}, {inner} "
                f"FROM ({relation})) ON {', '.join(ident(w) for w in wcols)} INTO NAME _col VALUE _val)"
            )
            ind = " ".join(f"WHEN {literal(w)} THEN {literal(i)}" for w, i in self.wide.items())
            ind_raw, ind_col = f"CASE _col {ind} END", "_col"
            area = _text_expr("_area", types[self.col["area_id"] or ""], verbatim=verbatim)
            ptype = types[self.col["period"] or ""]
            period_txt = _raw_expr("_period", ptype)
            period = _period_expr("_period", ptype, period_fmt, self.zone_name)
            zoned = _zoned_expr("_period", ptype, period_fmt)
            vtype = "DOUBLE" if all_numeric else "VARCHAR"
            value_txt, value, value_col = _raw_expr("_val", vtype), _number_expr("_val", vtype), "_col"
            value_type = vtype
            num = den = None
            area_col_name, period_col_name = shown.get("area_id", ""), shown.get("period", "")
            dims_sql = "_dims" if dims_in else "''"
        else:
            src = relation
            if file_filter is not None:
                src = f"SELECT * FROM ({src}) WHERE {file_filter}"
            ic, ac, pc = c["indicator_id"], c["area_id"], c["period"]
            assert ic is not None and ac is not None and pc is not None
            ind_raw = _text_expr(ic, types[self.col["indicator_id"] or ""], verbatim=verbatim)
            ind_col = literal(shown.get("indicator_id", "indicator_id"))
            area = _text_expr(ac, types[self.col["area_id"] or ""], verbatim=verbatim)
            ptype = types[self.col["period"] or ""]
            period_txt = _raw_expr(pc, ptype)
            period = _period_expr(pc, ptype, period_fmt, self.zone_name)
            zoned = _zoned_expr(pc, ptype, period_fmt)
            if c["value"] is not None:
                value_type = types[self.col["value"] or ""]
                value_txt, value = _raw_expr(c["value"], value_type), _number_expr(c["value"], value_type)
            else:
                value_type = "DOUBLE"  # no value column: nothing to parse
                value_txt, value = "NULL::VARCHAR", "NULL::DOUBLE"
            value_col = literal(shown.get("value") or "value")
            num = (c["numerator"], types[self.col["numerator"] or ""]) if c["numerator"] else None
            den = (c["denominator"], types[self.col["denominator"] or ""]) if c["denominator"] else None
            area_col_name, period_col_name = shown.get("area_id", ""), shown.get("period", "")
            dims_sql = ident(self.shape.dims) if self.shape and self.shape.dims else "''"
        num_txt, num_v = (_raw_expr(*num), _number_expr(*num)) if num else ("NULL::VARCHAR", "NULL::DOUBLE")
        den_txt, den_v = (_raw_expr(*den), _number_expr(*den)) if den else ("NULL::VARCHAR", "NULL::DOUBLE")
        # the local day a realtime or hourly reading falls in holds at most one DST edge (_ck_dst)
        dst = (
            "\n        LEFT JOIN _ck_dst d ON d.day = CAST(c.period AS DATE) AND c.period >= d.lo "
            "AND c.period < d.hi AND i.fc = 2"
            if self.dst
            else ""
        )
        # A typed cell is missing exactly when it is NULL and can never be unparseable: testing its
        # value instead of its text spares turning every number and date back into a string.
        period_typed = readers.is_temporal_type(ptype)
        value_typed = readers.is_numeric_type(value_type)
        num_typed = num is None or readers.is_numeric_type(num[1])
        den_typed = den is None or readers.is_numeric_type(den[1])
        checks = [
            _Check("c.ind_raw IS NULL", reason("IN101"), "c.ind_col", "NULL"),
            _Check(
                "i.indicator_id IS NULL",
                reason("IN102"),
                "c.ind_col",
                "c.ind_raw",
            ),
            _Check("c.area_raw IS NULL", reason("IN201"), literal(area_col_name), "NULL"),
            _Check(
                "a.area_key IS NULL",
                reason("IN202"),
                literal(area_col_name),
                "c.area_raw",
            ),
            _Check(
                "c.period IS NULL" if period_typed else "c.period_txt IS NULL",
                reason("IN301"),
                literal(period_col_name),
                "NULL",
            ),
        ]
        pcol = literal(period_col_name)
        if self.zone_name is None:
            checks.append(
                _Check("c.zoned AND c.period_txt IS NOT NULL", reason("IN308"), pcol, "c.period_txt")
            )
        if not period_typed:
            checks.append(_Check("c.period IS NULL", reason("IN302"), pcol, "c.period_txt"))
        if self.dst:  # the city's clocks skip and repeat an hour: a sub-daily reading there is no instant
            zone = str(self.zone_name)
            checks += [
                _Check("d.kind = 'fold'", reason("IN305", zone=zone), pcol, "c.period_txt"),
                _Check("d.kind = 'gap' AND NOT c.zoned", reason("IN306", zone=zone), pcol, "c.period_txt"),
            ]
        if self.options.require_offset:
            checks.append(_Check("i.fc = 2 AND NOT c.zoned", reason("IN307"), pcol, "c.period_txt"))
        future = literal((self.now + self.options.future_tolerance).replace(microsecond=0))
        checks += [
            _Check(f"c.period > {future}", reason("IN303"), literal(period_col_name), "c.period_txt"),
            _Check(
                f"c.period < {literal(EARLIEST_PERIOD)}",
                reason("IN304", year=EARLIEST_PERIOD.year),
                literal(period_col_name),
                "c.period_txt",
            ),
        ]
        value_checks = _number_checks("value", "c.value_col", typed=value_typed)
        if num:
            value_checks += _number_checks("num", literal(shown.get("numerator", "")), typed=num_typed)
        if den:
            value_checks += _number_checks("den", literal(shown.get("denominator", "")), typed=den_typed)
        value_checks += [
            _Check(
                "c.value IS NULL AND (c.num IS NULL OR c.den IS NULL)", reason("IN401"), "c.value_col", "NULL"
            ),
            _Check(
                "c.value < i.lo OR c.value > i.hi",
                reason("IN404"),
                "c.value_col",
                "c.value_txt",
            ),
        ]
        tokens = [t.strip() for t in self.options.missing]
        if tokens:
            # a cell written as a missing-value token is a row saying "no value": recorded, not judged
            value_checks = [
                replace(ch, condition=f"c.token IS NULL AND ({ch.condition})") for ch in value_checks
            ]
        checks += value_checks
        judged = value_txt if c.get("value") is not None or self.options.fmt == "wide" else num_txt
        token_sql = "NULL::VARCHAR"
        if tokens:
            empty = "''" if "" in tokens else "NULL"
            listed = ", ".join(literal(t) for t in tokens if t)
            named = f"WHEN trim({judged}) IN ({listed}) THEN trim({judged}) " if listed else ""
            token_sql = f"CASE WHEN {judged} IS NULL THEN {empty} {named}END"
        told = [] if appending else checks  # an appending pass carries no reject texts
        extra = ""
        if self.shape is not None:
            extra = (
                ", c.dims, c.token, CASE WHEN c.token IS NOT NULL THEN 2 WHEN c.dims <> '' THEN 1 ELSE 0 END"
                "::TINYINT AS route"
            )
        return f"""
        WITH u AS ({src}),
        c AS (
            SELECT {readers.ROW} AS _row,
                   {ind_raw} AS ind_raw, {ind_col} AS ind_col, {area} AS area_raw,
                   {period_txt} AS period_txt, {period} AS period, {zoned} AS zoned,
                   {value_txt} AS value_txt, {value} AS value, {value_col} AS value_col,
                   {num_txt} AS num_txt, {num_v} AS num, {den_txt} AS den_txt, {den_v} AS den,
                   {dims_sql} AS dims, {token_sql} AS token
            FROM u)
        SELECT c._row, i.indicator_key AS ik, a.area_key AS ak, c.period, c.value,
               c.num AS numerator, c.den AS denominator, coalesce(i.fc, 0)::TINYINT AS fc{extra},
               {_ok(checks)} AS ok,
               {_case(told, "reason")} AS reason,
               {_case(told, "column")}::VARCHAR AS bad_col,
               {_case(told, "value")}::VARCHAR AS bad_val
        FROM c
        LEFT JOIN _ck_ind i ON i.indicator_id = c.ind_raw
        LEFT JOIN _ck_area a ON a.area_id = c.area_raw{dst}
        """

    def file_rows(self, con: Connection) -> int | None:
        """Rows of a long-format Parquet file, from its footer."""
        if self.table.kind != "parquet" or self.options.fmt != "long" or self.shape is not None:
            return None
        if self._group_rows:  # the period statistics' query read them already
            return sum(self._group_rows)
        rows = con.execute(
            f"SELECT sum(num_rows) FROM parquet_file_metadata({literal(str(self.table.path))})"
        ).fetchall()
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def clustered_by_metadata(self, con: Connection) -> bool | None:
        """A typed period column is clustered when its row groups' min/max ranges follow each other.

        Statistics cover bad records too, so "clustered" here implies the good records are; a file
        without usable statistics is checked by reading it instead (None).
        """
        rows = self._period_stats(con)
        if rows is None:
            return None
        return all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(rows))

    def dst_windows(self, con: Connection) -> tuple[citytime.DstWindow, ...]:
        """The city's DST windows in the years the file's period statistics span, a year either side
        (a UTC time stamp's local day may be the next or the previous); every year's when unknown."""
        rows = self._period_stats(con)
        years = None
        if rows is not None:
            years = (min(r[0] for r in rows).year - 1, max(r[1] for r in rows).year + 1)
        self._windows = citytime.dst_windows(self.zone, years)
        return self._windows

    @property
    def dst(self) -> bool:
        """Whether the staging query checks DST edges: the file's years have some (assumed until
        :meth:`dst_windows` has looked, so the check is never skipped by mistake)."""
        return self._windows is None or bool(self._windows)

    def _period_stats(self, con: Connection) -> list[tuple[Any, Any]] | None:
        """(min, max) of a typed period column per row group of a Parquet file, from its footer;
        None when the file is not Parquet, the column not typed or a group has no statistics."""
        if self._stats is None:
            column = self.col["period"] or ""
            rows: list[tuple[Any, Any]] = []
            if (
                self.table.kind == "parquet"
                and self.shape is None
                and readers.is_temporal_type(self.table.columns.get(column, ""))
            ):
                found = con.execute(
                    f"""SELECT TRY_CAST(stats_min_value AS TIMESTAMP), TRY_CAST(stats_max_value AS TIMESTAMP),
                        row_group_num_rows
                    FROM parquet_metadata({literal(str(self.table.path))})
                    WHERE path_in_schema = {literal(column)} ORDER BY row_group_id"""
                ).fetchall()
                rows = [(r[0], r[1]) for r in found]
                self._group_rows = [int(r[2]) for r in found]
            self._stats = rows
        if not self._stats or any(lo is None or hi is None for lo, hi in self._stats):
            return None
        return self._stats

    def stored_near(self, con: Connection) -> bool | None:
        """From the period statistics of a Parquet file whose period is a plain TIMESTAMP or DATE (the
        wall-clock time stored as it is; a zoned one is converted, so its statistics are not the
        stored span): whether any stored observation lies between the file's first and last period.
        A 5-minute batch asks before its rows are staged, which is cheaper than reading around them."""
        column = self.col.get("period") or ""
        kind = self.table.columns.get(column, "").upper()
        if kind != "DATE" and (not kind.startswith("TIMESTAMP") or "ZONE" in kind):
            return None
        stats = self._period_stats(con)
        if stats is None:
            return None
        lo, hi = min(r[0] for r in stats), max(r[1] for r in stats)
        found = con.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM observations o "
            f"WHERE o.period BETWEEN {literal(lo)} AND {literal(hi)} LIMIT 1)"
        ).fetchall()
        return bool(found[0][0])

    def duplicate_blocks(self, this: str, rows: str | None = None) -> str | None:
        """Blocks of 64 area keys per indicator and period: a duplicate sets a bit already set, so
        the block's row count exceeds the bits set. Exact, and the aggregate holds one small
        fixed-size state per block instead of one hash-table entry per observation.

        The batch's keys are read once, then grouped. Grouped straight off ``observations``,
        DuckDB splits the aggregate into one branch per run of row groups with disjoint periods
        (its partitioned execution), each scanning the table again: a 5-minute batch's screen
        took 10 ms over one day of hourly history and 45 ms over two."""
        return f"""WITH r AS MATERIALIZED (
                SELECT indicator_key, period, area_key, {this} AS mine FROM observations WHERE {rows or this})
            {self._blocks("r", "indicator_key", "area_key", other="count(*) FILTER (WHERE NOT mine)")}"""

    @staticmethod
    def _blocks(rows: str, ik: str, ak: str, *, other: str = "0") -> str:
        """The blocks of :meth:`duplicate_blocks` over the keys (``ik``, ``ak``, period) in ``rows``."""
        return f"""SELECT {ik} AS ik, period, {ak} >> 6 AS blk, count(*) AS n, {other} AS other,
                   count(*) > bit_count(bit_or(1::UBIGINT << ({ak} & 63))) AS dup
            FROM {rows} GROUP BY ik, period, blk"""

    def screened_insert(self, con: Connection, source: str, batch_id: int, *, where: str, order: str) -> str:
        """The INSERT and the screen of the keys it appends in one statement (``append.screened_insert_sql``):
        the batch is never read back from ``observations``. It records series classes only when the
        catalogue's indicators have some unrecorded (known from ingest's key check, else asked once)."""
        if self.classes_recorded is None:
            self.classes_recorded = append.classes_recorded(con, "_ck_ind")
        return append.screened_insert_sql(
            source,
            batch_id,
            self._blocks("m", "ik", "ak"),
            where=where,
            order=order,
            record_classes=not self.classes_recorded,
        )

    def block_match(self, rows: str, blocks: str) -> str:
        """Rows of a block: same indicator and period, area key in the block."""
        return (
            f"{rows}.indicator_key = {blocks}.ik AND {rows}.period = {blocks}.period "
            f"AND {rows}.area_key >> 6 = {blocks}.blk"
        )

    def same_record(self, new: str, old: str) -> str:
        """The same value, numerator and denominator: an identical re-send of a stored reading."""
        return " AND ".join(
            f"{new}.{c} IS NOT DISTINCT FROM {old}.{c}" for c in ("value", "numerator", "denominator")
        )

    def insert_sql(self, source: str, batch_id: int, *, where: str, order: str) -> str:
        """Observations are appended by the one writer of ``observations`` (``append.py``)."""
        return append.insert_sql(source, batch_id, where=where, order=order)

    def partitions(self, con: Connection | None = None) -> tuple[str, ...]:
        """One insert per storage class, so each class fills its own row groups (zone maps); only the
        classes the catalogue's indicators are in (a good record's indicator is in the catalogue) and,
        given ``con``, that the file holds (:meth:`_classes_in_file`). A reshaped file sends only its
        headline records there (the others go beside it, see :meth:`side_load`). One class needs one
        pass and no filter (a filter by class is a semi join of every record's id: a tenth of a
        5-minute batch's INSERT)."""
        present = set(self._classes())
        if con is not None and len(present) > 1:
            present = self._classes_in_file(con, present)
        passes = tuple(p for fc, p in enumerate(append.CLASS_PASSES) if fc in present)
        if len(passes) <= 1:  # every good record is in the one class: no filter by class
            passes = ("TRUE",)
        if self.shape is not None:
            return tuple(f"s.route = 0 AND {p}" for p in passes)
        return passes

    def _classes_in_file(self, con: Connection, present: set[int]) -> set[int]:
        """The storage classes of a long Parquet file's records, from its id column alone (a feed's
        5-minute file holds one: its other classes' passes would each read the file for nothing).
        An id not matched as written (blank-padded, unknown or missing) may be of any class: then
        ``present``, the catalogue's."""
        column = self.col.get("indicator_id")
        if (
            self.table.kind != "parquet"
            or self.options.fmt != "long"
            or self.shape is not None
            or column is None
            or not readers.is_text_type(self.table.columns.get(column, ""))
        ):
            return present
        rows = con.execute(
            f"""SELECT DISTINCT i.fc FROM (SELECT {ident(column)} AS id FROM ({self.table.sql})) f
            LEFT JOIN _ck_ind i ON i.indicator_id = f.id"""
        ).fetchall()
        found = {r[0] for r in rows}
        return present if None in found else {int(fc) for fc in found}

    #: route → (side table, the columns appended from the stage ``s``)
    _SIDE: ClassVar[dict[int, tuple[str, str]]] = {
        1: ("observations_dims", "s.ik, s.ak, s.period, s.dims, s.value, s.numerator, s.denominator"),
        2: ("observations_missing", "s.ik, s.ak, s.period, s.dims, s.token"),
    }
    #: The columns that make two side records with the same key the same (``--on-duplicate resend``).
    _SIDE_VALUES: ClassVar[dict[int, tuple[str, ...]]] = {
        1: ("value", "numerator", "denominator"),
        2: ("token",),
    }

    def target_rows(self, good: str) -> str:
        """The headline records (route 0) of a reshaped file; every good record otherwise."""
        return f"(SELECT * FROM {good} s WHERE s.route = 0)" if self.shape is not None else good

    def side_load(self, con: Connection, good: str, batch_id: int) -> _Side:
        """Disaggregated records (a dimension set) go to ``observations_dims``, records written as a
        missing-value token to ``observations_missing``; each with the duplicate checks and policy
        of the headline records, by indicator, area, period and dimensions. A key written both as a
        value and as a token is a duplicate within the file too: every copy is rejected."""
        side = _Side()
        if self.shape is None:
            return side
        b = int(batch_id)
        side.removed_target, side.inserted = self._cross_route_duplicates(con, good, b)
        match = "o.indicator_key = d.ik AND o.area_key = d.ak AND o.period = d.period AND o.dims = d.dims"
        for route, (table, cols) in self._SIDE.items():
            gone = (
                ""
                if not side.removed_target and not _has_rows(con, "_ck_sidegone")
                else (" AND s._row NOT IN (SELECT _row FROM _ck_sidegone)")
            )
            n = int(
                con.execute(
                    f"INSERT INTO {table} SELECT {cols}, {b} FROM {good} s WHERE s.route = {route}{gone} "
                    "ORDER BY s.period"
                ).fetchall()[0][0]
            )
            if not n:
                continue
            side.inserted += n
            mine = (
                f"(SELECT s._row, s.ik, s.ak, s.period, s.dims FROM {good} s WHERE s.route = {route}{gone})"
            )
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _ck_sidedup AS SELECT indicator_key AS ik, area_key AS ak, period, dims
                FROM {table} WHERE batch_id = {b} GROUP BY ALL HAVING count(*) > 1"""
            )
            dups = 0
            if con.execute("SELECT count(*) FROM _ck_sidedup").fetchall()[0][0]:
                con.execute(
                    f"""INSERT INTO _ck_bad
                    WITH m AS (SELECT s.* FROM {mine} s JOIN _ck_sidedup d
                               ON s.ik = d.ik AND s.ak = d.ak AND s.period = d.period AND s.dims = d.dims),
                         t AS (SELECT ik, ak, period, dims,
                                      'rows ' || array_to_string(list(_row ORDER BY _row)[1:5], ', ') AS txt
                               FROM m GROUP BY ALL)
                    SELECT m._row, NULL, t.txt, {literal(self.dup_reason)} FROM m JOIN t USING (ik, ak, period, dims)"""
                )
                dups = int(
                    con.execute(
                        f"DELETE FROM {table} o USING _ck_sidedup d WHERE o.batch_id = {b} AND {match}"
                    ).fetchall()[0][0]
                )
            clash_table = f"_ck_sideclash{route}"
            same = " AND ".join(f"n.{c} IS NOT DISTINCT FROM o.{c}" for c in self._SIDE_VALUES[route])
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE {clash_table} AS
                SELECT n.indicator_key AS ik, n.area_key AS ak, n.period, n.dims, min(o.batch_id) AS old_batch,
                       bool_and({same}) AS same
                FROM {table} n JOIN {table} o ON o.indicator_key = n.indicator_key AND o.area_key = n.area_key
                  AND o.period = n.period AND o.dims = n.dims
                WHERE n.batch_id = {b} AND o.batch_id <> {b} GROUP BY n.indicator_key, n.area_key, n.period, n.dims"""
            )
            clash = int(con.execute(f"SELECT count(*) FROM {clash_table}").fetchall()[0][0])
            policy = self.options.on_duplicate
            # reject: every clash is a reject; resend: only a record that differs from the stored one
            refused = {"reject": "TRUE", "resend": "NOT d.same"}.get(policy)
            if clash and refused is not None:
                why = self.clash_reason if policy == "reject" else self.changed_reason
                con.execute(
                    f"""INSERT INTO _ck_bad SELECT s._row, NULL, 'batch ' || d.old_batch, {literal(why)}
                    FROM {mine} s JOIN {clash_table} d
                    ON s.ik = d.ik AND s.ak = d.ak AND s.period = d.period AND s.dims = d.dims
                    WHERE {refused}"""
                )
            changed = 0
            if clash and policy == "resend":
                changed = int(
                    con.execute(f"SELECT count(*) FROM {clash_table} WHERE NOT same").fetchall()[0][0]
                )
            if clash and policy in ("reject", "keep", "resend"):
                con.execute(f"DELETE FROM {table} o USING {clash_table} d WHERE o.batch_id = {b} AND {match}")
            side.loaded += n - dups - (clash if policy in ("reject", "keep", "resend") else 0)
            side.skipped += clash if policy == "keep" else clash - changed if policy == "resend" else 0
            side.replaced += clash if policy == "replace" else 0
        return side

    def _cross_route_duplicates(self, con: Connection, good: str, b: int) -> tuple[int, int]:
        """Reject every copy of a key the file gives both a value and a missing-value token; return how
        many headline records were taken out again, and how many side records were read and rejected
        (the side tables are filled after this)."""
        routes = f"(SELECT * FROM {good} s WHERE s.ik IS NOT NULL)"
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _ck_sidedup AS
            SELECT s.ik, s.ak, s.period, s.dims FROM {routes} s GROUP BY ALL
            HAVING count(*) FILTER (WHERE s.route = 2) > 0 AND count(*) FILTER (WHERE s.route <> 2) > 0"""
        )
        if not con.execute("SELECT count(*) FROM _ck_sidedup").fetchall()[0][0]:
            return 0, 0
        con.execute(
            f"""INSERT INTO _ck_bad
            WITH m AS (SELECT s._row, s.ik, s.ak, s.period, s.dims FROM {routes} s JOIN _ck_sidedup d
                       ON s.ik = d.ik AND s.ak = d.ak AND s.period = d.period AND s.dims = d.dims),
                 t AS (SELECT ik, ak, period, dims,
                              'rows ' || array_to_string(list(_row ORDER BY _row)[1:5], ', ') AS txt
                       FROM m GROUP BY ALL)
            SELECT m._row, NULL, t.txt, {literal(self.dup_reason)} FROM m JOIN t USING (ik, ak, period, dims)"""
        )
        # the rows go nowhere: out of the stage's routes for the side tables, out of observations
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _ck_sidegone AS SELECT s._row, s.route FROM {routes} s JOIN _ck_sidedup d
            ON s.ik = d.ik AND s.ak = d.ak AND s.period = d.period AND s.dims = d.dims"""
        )
        removed = con.execute(
            f"""DELETE FROM observations o USING _ck_sidedup d WHERE o.batch_id = {b} AND d.dims = ''
            AND o.indicator_key = d.ik AND o.area_key = d.ak AND o.period = d.period"""
        ).fetchall()[0][0]
        side = con.execute("SELECT count(*) FROM _ck_sidegone WHERE route <> 0").fetchall()[0][0]
        return int(removed), int(side)

    def side_supersede(self, con: Connection, batch_id: int) -> None:
        """Delete the stored side records this batch brings again (--on-duplicate replace)."""
        match = "o.indicator_key = d.ik AND o.area_key = d.ak AND o.period = d.period AND o.dims = d.dims"
        for route, (table, _cols) in self._SIDE.items():
            if f"_ck_sideclash{route}" in temp_tables(con):
                con.execute(
                    f"DELETE FROM {table} o USING _ck_sideclash{route} d WHERE o.batch_id <> {int(batch_id)} AND {match}"
                )

    def discard(self, con: Connection, batch_id: int) -> None:
        """Take a rejected batch's records out of observations and the side tables."""
        super().discard(con, batch_id)
        if self.shape is not None:
            for table, _cols in self._SIDE.values():
                con.execute(f"DELETE FROM {table} WHERE batch_id = {int(batch_id)}")

    def after_insert(self, con: Connection, batch_id: int, *, screened: bool = False) -> None:
        """Record which storage classes each series of this batch has rows in (the screened INSERTs
        recorded theirs; none needs to when every class pair of the catalogue is recorded)."""
        if not screened and not self.classes_recorded:
            append.record_series_classes(con, batch_id, classes="_ck_ind")

    def supersede(self, con: Connection, batch_id: int) -> None:
        """Move the stored rows this batch replaces to observations_superseded."""
        match = "o.indicator_key = c.ik AND o.area_key = c.ak AND o.period = c.period"
        con.execute(
            f"""INSERT INTO observations_superseded (indicator_key, area_key, period, value, numerator,
                denominator, batch_id, freq_class, superseded_by)
            SELECT o.indicator_key, o.area_key, o.period, o.value, o.numerator, o.denominator, o.batch_id,
                o.freq_class, {batch_id}
            FROM observations o SEMI JOIN _ck_clash c ON {match}
            WHERE o.batch_id <> {batch_id}"""
        )
        con.execute(
            f"DELETE FROM observations o USING _ck_clash c WHERE o.batch_id <> {batch_id} AND {match}"
        )


def _has_rows(con: Connection, table: str) -> bool:
    """True when the temporary ``table`` exists and holds a row."""
    if table not in temp_tables(con):
        return False
    return bool(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
