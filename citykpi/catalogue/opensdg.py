"""``citykpi catalogue import open-sdg PATH``: an Open SDG data repository → a catalogue, its feeds
and an areas file.

An Open SDG repository (sdg-build) has ``meta/<id>.md`` — YAML front matter between ``---`` lines —
and ``data/indicator_<id>.csv`` — ``Year``, optional disaggregation columns, optional ``Units``,
``Value``. Each pair becomes:

* an indicator ``sdg.<g>_<t>_<i>`` (one per ``Units`` value when a file holds several series, named
  after the unit), yearly, at the top level, with the goal as its domain (``sdg_goal_<g>``) and the
  goal and target as tags, its name and description from the metadata, its owner from
  ``source_organisation_1``, and a unit of citykpi's vocabulary guessed from ``computation_units``
  or the ``Units`` value (the guess and the source's own wording are in the report and the
  description). Open SDG states no direction and no thresholds: the indicators are unscored;
* a feed ``sdg_<g>_<t>_<i>`` that reads the file as it is: ``Year`` as the period, ``Value``, empty
  values recorded as missing, every other column a dimension (breakdown), ``Units`` recoded to the
  indicator of each series, the area from the metadata's ``national_geographical_coverage``;
* one top-level area per geographical coverage (several roots: the City, the County, the State…).

The metadata is untrusted YAML, read with the catalogue's safe loader; the CSVs are read with the
standard library (headers and the distinct ``Units`` values only). Nothing is written until
:func:`write_import`, which builds the whole folder beside the destination and renames it into place.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from citykpi.catalogue.yamlsafe import YMap, YSeq, load_yaml_bytes
from citykpi.errors import DataError, ExportError, UsageError

#: Columns of an Open SDG data file that are not dimensions.
_YEAR, _VALUE, _UNITS = "Year", "Value", "Units"
_META_RE = re.compile(r"^(?:indicator_)?([0-9]+-[0-9a-z]+-[0-9a-z]+)\.(md|csv)$")
#: A Year that is a range of years: a fiscal year ('2009-2010', '2009–2010') or a decade ('1990-1999').
_RANGE_RE = re.compile(r"^(\d{4})\s*[-–]\s*(\d{2}|\d{4})$")
#: A data file this large is no Open SDG indicator file: refused unread.
MAX_FILE_BYTES = 20 * 1024 * 1024
#: Fields a dimension name may not take (a feed's fields).
_FIELDS = ("indicator_id", "area_id", "period", "value", "numerator", "denominator")

#: How an Open SDG unit text maps onto citykpi's unit vocabulary: first matching pattern wins.
UNIT_RULES: tuple[tuple[str, str], ...] = (
    (r"per\s*100,?000", "per 100k"),
    (r"per\s*10,?000", "per 10k"),
    (r"per\s*1,?000\b", "per 1k"),
    (r"percent|percentage|%", "%"),
    (r"µg/m|ug/m", "µg/m³"),
    (r"km\^?2|square kilomet", "km²"),
    (r"\bgwh\b", "GWh"),
    (r"\bkwh\b", "kWh"),
    (r"\btons?\b|\btonnes?\b", "t"),
    (
        r"number|total|count|cases|people|persons|births|deaths|injuries|homicides|passengers|enrollment",
        "count",
    ),
)


def guess_unit(text: str) -> str | None:
    """citykpi's unit for an Open SDG unit text, or None when no rule fits."""
    low = text.lower()
    for pattern, unit in UNIT_RULES:
        if re.search(pattern, low):
            return unit
    return None


def slug(text: str) -> str:
    """A lower-case identifier word from free text ('Race/ Ethnicity' → 'race_ethnicity')."""
    out = re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")
    return out or "x"


@dataclass(frozen=True)
class ImportedFile:
    """One file of the import, relative to the output folder."""

    path: str
    text: str


@dataclass(frozen=True)
class ImportReport:
    """What ``import_open_sdg`` made and what it could not use."""

    source: str
    files: tuple[ImportedFile, ...]
    indicators: int = 0
    feeds: int = 0
    areas: int = 0
    data_without_meta: tuple[str, ...] = ()
    meta_without_data: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()
    #: the folder the import is written to, as the user named it (None: not known; the commands
    #: then name the import's files relative to its folder)
    output: str | None = None

    def commands(self) -> tuple[str, ...]:
        """The shell commands that load the areas and ingest the repository's data files with the
        imported feeds: the paths as given (the output folder and the repository), shell-quoted."""
        out = Path(self.output) if self.output is not None else None
        areas = str(out / "areas.csv") if out is not None else "areas.csv"
        catalogue = str(out / "indicators") if out is not None else "indicators"
        data = Path(self.source) / "data"
        if out is None and not data.is_absolute():
            data = data.absolute()  # run from the import's folder: a relative path would not reach it
        return (
            f"citykpi areas load {shlex.quote(areas)}",
            f"citykpi --catalogue {shlex.quote(catalogue)} ingest --feed auto {shlex.quote(str(data))}",
        )

    def markdown(self) -> str:
        """The import report as Markdown (also written as ``import-report.md``)."""
        where = (
            "from the folder the import was run in"
            if self.output is not None
            else "from this folder (the import's)"
        )
        lines = [
            f"# Open SDG import of {self.source}",
            "",
            f"{self.indicators} indicators, {self.feeds} feeds, {self.areas} areas.",
            "",
            f"Load the areas, then ingest the data files as published, {where}:",
            "",
            "```sh",
            *self.commands(),
            "```",
        ]
        for title, items in (
            ("Data files without metadata", self.data_without_meta),
            ("Metadata without a data file", self.meta_without_data),
        ):
            lines += ["", f"## {title} ({len(items)})", ""]
            lines += [f"- {i}" for i in items] or ["none"]
        lines += ["", f"## Skipped ({len(self.skipped)})", ""]
        lines += [f"- {i}: {why}" for i, why in self.skipped] or ["none"]
        lines += ["", f"## Notes ({len(self.notes)})", ""]
        lines += [f"- {n}" for n in self.notes] or ["none"]
        return "\n".join(lines) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, YMap):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, YSeq | list):
        return [_plain(v) for v in value]
    return value


def read_meta(path: Path) -> dict[str, Any]:
    """The front matter of one ``meta/*.md`` file as a plain dict (untrusted YAML, safe loader)."""
    raw = path.read_bytes()
    text = raw.decode("utf-8-sig", errors="replace")
    parts = re.split(r"^---[ \t]*\r?$", text, maxsplit=2, flags=re.M)
    body = parts[1] if len(parts) >= 3 else text
    loaded = load_yaml_bytes(body.encode("utf-8"), path.name)
    errors = [d for d in loaded.diagnostics if d.severity == "error"]
    if errors or not isinstance(loaded.data, YMap):
        why = errors[0].message if errors else "no YAML front matter"
        raise DataError(f"{path}: {why}")
    return _plain(loaded.data)


@dataclass
class _Data:
    """What the import needs of one data file."""

    header: list[str]
    units: list[str] = field(default_factory=list)  # distinct Units values, in file order
    rows: int = 0
    numeric_years: int = 0
    #: Year labels that are ranges ('2009-2010', a fiscal year or a decade) → their first year
    ranges: dict[str, str] = field(default_factory=dict)


def read_data(path: Path) -> _Data:
    """The header, the distinct ``Units`` values and the row counts of one data file."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise DataError(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MiB; not an Open SDG indicator file")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        data = _Data(header=[h.strip() for h in header])
        year = data.header.index(_YEAR) if _YEAR in data.header else None
        unit = data.header.index(_UNITS) if _UNITS in data.header else None
        seen: dict[str, None] = {}
        for row in reader:
            if not row:
                continue
            data.rows += 1
            label = row[year].strip() if year is not None and year < len(row) else ""
            if label.isdigit():
                data.numeric_years += 1
            elif m := _RANGE_RE.match(label):
                data.numeric_years += 1
                data.ranges[label] = m.group(1)
            if unit is not None and unit < len(row) and row[unit].strip():
                seen.setdefault(row[unit].strip(), None)
        data.units = list(seen)
    return data


def _text(meta: Mapping[str, Any], key: str) -> str:
    value = meta.get(key)
    return " ".join(str(value).split()) if value is not None else ""


def import_open_sdg(path: str | Path, *, output: str | Path | None = None) -> ImportReport:
    """Read an Open SDG repository (``meta/`` and ``data/``) and make its catalogue, feeds and areas.

    ``output`` is the folder the import will be written to, as the user named it: the report's
    commands name the files there and the repository's data folder as given (see
    :meth:`ImportReport.commands`).

    Raises:
        DataError: ``path`` has no ``meta/`` or ``data/`` folder.
    """
    root = Path(path)
    meta_dir, data_dir = root / "meta", root / "data"
    if not meta_dir.is_dir() or not data_dir.is_dir():
        raise DataError(
            f"{root}: not an Open SDG data repository (no meta/ and data/ folders)",
            hint="point at the folder that holds meta/<id>.md and data/indicator_<id>.csv",
        )
    metas = {
        m.group(1): p
        for p in sorted(meta_dir.iterdir())
        if (m := _META_RE.match(p.name)) and m.group(2) == "md"
    }
    datas = {
        m.group(1): p
        for p in sorted(data_dir.iterdir())
        if (m := _META_RE.match(p.name)) and m.group(2) == "csv"
    }
    skipped: list[tuple[str, str]] = []
    notes: list[str] = []
    indicators: dict[str, list[dict[str, Any]]] = {}
    feeds: list[dict[str, Any]] = []
    areas: dict[str, str] = {}
    for sid in sorted(set(metas) & set(datas), key=_order):
        try:
            meta = read_meta(metas[sid])
            data = read_data(datas[sid])
        except (DataError, OSError, UnicodeDecodeError, csv.Error) as exc:
            skipped.append((sid, str(exc)))
            continue
        if _YEAR not in data.header or _VALUE not in data.header:
            skipped.append((sid, f"no {_YEAR} and {_VALUE} columns (header: {', '.join(data.header)})"))
            continue
        if not data.numeric_years:
            skipped.append(
                (sid, "no row has a Year that is a year or a range of years (a non-statistical indicator)")
            )
            continue
        if meta.get("data_non_statistical") is True:
            notes.append(
                f"{sid}: marked data_non_statistical but its file holds {data.numeric_years} yearly values; imported"
            )
        goal, target, _n = sid.split("-")
        base = f"sdg.{slug(sid)}"
        coverage = _text(meta, "national_geographical_coverage") or "Unknown coverage"
        area = slug(coverage)
        areas.setdefault(area, coverage)
        name = _text(meta, "indicator_name") or _text(meta, "graph_title") or sid
        owner = _text(meta, "source_organisation_1")
        units_text = _text(meta, "computation_units")
        series = data.units if len(data.units) > 1 else [data.units[0] if data.units else units_text]
        ids: dict[str, str] = {}
        for text in series:
            iid = base if len(series) == 1 else f"{base}.{slug(text)[:40]}"
            while iid in ids.values():
                iid += "_"
            ids[text] = iid
            unit = guess_unit(text) or guess_unit(units_text)
            if unit is None:
                unit = "index"
                notes.append(f"{iid}: unit {text or units_text!r} has no citykpi unit; imported as 'index'")
            described = " ".join(
                x
                for x in (
                    _text(meta, "national_indicator_description") or name,
                    f"Unit in the source: {text or units_text}." if (text or units_text) else "",
                    f"Source: {owner}." if owner else "",
                    "Open SDG states no direction or thresholds: the values are shown, unscored.",
                )
                if x
            )
            indicators.setdefault(goal, []).append(
                {
                    "id": iid,
                    "name": {"zh": "", "en": name + (f" ({text})" if len(series) > 1 else "")},
                    "kind": "kpi",
                    "domain": f"sdg_goal_{slug(goal)}",
                    "unit": unit,
                    "description": described,
                    **({"owner": owner} if owner else {}),
                    "tags": ["sdg", f"goal_{slug(goal)}", f"target_{slug(goal)}_{slug(target)}"],
                    "levels": ["city"],
                    "frequency": "yearly",
                    "direction": "higher_is_better",
                    "rollup": {"time": "last"},
                }
            )
        dims: dict[str, str] = {}
        for col in data.header:
            if col in (_YEAR, _VALUE, _UNITS) or not col:
                continue
            d = slug(col)
            if d[0].isdigit() or d in _FIELDS:
                d = "d_" + d
            while d in dims:
                d += "_"
            dims[d] = col
        feed: dict[str, Any] = {
            "id": "sdg_" + slug(sid),
            "description": f"Open SDG data file indicator_{sid}.csv.",
            **({"provider": owner} if owner else {}),
            "indicators": list(ids.values()),
            "files": [f"indicator_{sid}.csv"],
            "columns": {
                "period": _YEAR,
                "value": _VALUE,
                **({"indicator_id": _UNITS} if len(series) > 1 else {}),
            },
            "set": {"area_id": area, **({"indicator_id": ids[series[0]]} if len(series) == 1 else {})},
            "date_formats": {"period": "%Y"},
            "missing": [""],
            **({"dimensions": dims} if dims else {}),
        }
        recode: dict[str, Any] = {}
        if len(series) > 1:
            recode[_UNITS] = dict(ids)  # each Units value is a series of its own
        if data.ranges:  # a range of years is stored at its first year
            recode[_YEAR] = {label: {"period": first} for label, first in data.ranges.items()}
            notes.append(
                f"{sid}: {len(data.ranges)} Year label(s) are ranges ({next(iter(data.ranges))} …), stored at their first year"
            )
        if recode:
            feed["recode"] = recode
        feeds.append(feed)
    files = [
        ImportedFile(
            f"indicators/sdg_goal_{slug(goal)}.yaml", _yaml({"schema_version": 1, "indicators": inds})
        )
        for goal, inds in sorted(indicators.items(), key=lambda kv: _order(kv[0] + "-0-0"))
    ]
    files.append(ImportedFile("indicators/feeds.yaml", _yaml({"schema_version": 1, "feeds": feeds})))
    area_rows = ["id,name,name_en,level,parent"] + [
        ",".join(_csv_cell(x) for x in (aid, text, text, "city", "")) for aid, text in sorted(areas.items())
    ]
    files.append(ImportedFile("areas.csv", "\n".join(area_rows) + "\n"))
    report = ImportReport(
        source=str(root),
        files=tuple(files),
        indicators=sum(len(v) for v in indicators.values()),
        feeds=len(feeds),
        areas=len(areas),
        data_without_meta=tuple(datas[s].name for s in sorted(set(datas) - set(metas), key=_order)),
        meta_without_data=tuple(metas[s].name for s in sorted(set(metas) - set(datas), key=_order)),
        skipped=tuple(skipped),
        notes=tuple(notes),
        output=str(output) if output is not None else None,
    )
    return ImportReport(
        **{**report.__dict__, "files": (*report.files, ImportedFile("import-report.md", report.markdown()))}
    )


def _order(sid: str) -> tuple[object, ...]:
    """Goal, target, indicator in numeric order where they are numbers (1-2-1 before 10-1-1)."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in sid.split("-"))


def _csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


class _Dumper(yaml.SafeDumper):
    """Block style, no aliases, keys in the order given."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _yaml(doc: Mapping[str, Any]) -> str:
    head = "# Imported from an Open SDG data repository by `citykpi catalogue import open-sdg`.\n"
    return head + yaml.dump(doc, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=110)


def write_import(report: ImportReport, folder: str | Path, *, protected: Iterable[Path] = ()) -> Path:
    """Write the import's files under ``folder``, all or nothing.

    The files are written into a new folder beside it, then renamed into place, so a failure or a kill
    leaves either nothing or the whole import. ``folder`` must not exist yet (or be empty); it may not
    be or be inside a ``protected`` folder (the catalogue in use), nor be a link.

    Raises:
        UsageError: the folder exists and is not empty, is a file or a link, or is protected.
        ExportError: the files could not be written (disk full, read-only); nothing is left behind.
    """
    target = Path(folder)
    if target.is_symlink():
        raise UsageError(f"--output {target}: is a symbolic link; name a new folder")
    if target.exists() and not target.is_dir():
        raise UsageError(f"--output {target}: is not a folder; name a new folder")
    if target.is_dir() and any(target.iterdir()):
        raise UsageError(
            f"--output {target}: the folder is not empty; name a new folder (nothing is overwritten)"
        )
    resolved = target.resolve()
    for p in protected:
        p = p.resolve()
        if resolved == p or p in resolved.parents or (p.is_dir() and resolved.is_relative_to(p)):
            raise UsageError(f"--output {target}: inside {p}, which citykpi reads; name a folder outside it")
    parent = resolved.parent
    if not parent.is_dir():
        raise UsageError(f"--output {target}: folder {parent} does not exist; create it first")
    tmp = Path(tempfile.mkdtemp(prefix=f".{resolved.name}.", suffix=".tmp", dir=parent))
    try:
        for f in report.files:
            out = tmp / f.path
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(f.text, encoding="utf-8")
            with out.open("rb") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o777 & ~_umask())
        if resolved.is_dir():
            resolved.rmdir()  # empty (checked above)
        os.rename(tmp, resolved)
    except OSError as exc:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}; nothing was written") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    return resolved


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
