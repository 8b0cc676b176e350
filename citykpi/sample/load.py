"""Load a generated sample into a warehouse, file by file, as its ``manifest.json`` says."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from citykpi.catalogue.model import Catalogue
from citykpi.errors import DataError
from citykpi.warehouse.areas import AreasReport, load_areas
from citykpi.warehouse.connection import Warehouse
from citykpi.warehouse.ingest import IngestOptions, IngestReport, ingest


@dataclass(frozen=True)
class SampleLoad:
    """What loading the sample did: the areas report and one ingest report per data file."""

    areas: AreasReport
    ingests: tuple[tuple[str, IngestReport], ...]

    @property
    def rows_loaded(self) -> int:
        """Records loaded over all data files."""
        return sum(r.rows_loaded for _, r in self.ingests)

    @property
    def rows_rejected(self) -> int:
        """Records rejected over all data files."""
        return sum(r.rows_rejected for _, r in self.ingests)


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a generated sample directory."""
    path = directory / "manifest.json"
    if not path.exists():
        raise DataError(
            f"no manifest.json in {directory}",
            hint="generate the sample first: python -m citykpi.sample (or make sample)",
        )
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


def _options(spec: dict[str, Any]) -> IngestOptions:
    return IngestOptions(
        fmt=spec.get("fmt", "long"),
        source=spec.get("source"),
        mapping=dict(spec.get("mapping", {})),
        wide=dict(spec.get("wide", {})),
        date_formats=dict(spec.get("date_formats", {})),
    )


def load_sample(wh: Warehouse, catalogue: Catalogue, directory: Path) -> SampleLoad:
    """Load the areas and then every data file of a generated sample, in the manifest's order.

    Args:
        wh: the open, writable warehouse.
        catalogue: the catalogue the sample was generated for (``indicators/``).
        directory: the generator's output directory (``sample_data/generated``).

    Returns:
        The areas report and the ingest report of each file (already-loaded files are no-ops).
    """
    manifest = read_manifest(directory)
    entries = {f["path"]: f for f in manifest["files"]}
    areas_report: AreasReport | None = None
    ingests: list[tuple[str, IngestReport]] = []
    for name in manifest["order"]:
        entry = entries[name]
        path = directory / name
        if entry["kind"] == "areas":
            areas_report = load_areas(wh, path)
        else:
            ingests.append((name, ingest(wh, catalogue, [path], _options(entry["ingest"]))))
    if areas_report is None:
        raise DataError(f"{directory / 'manifest.json'} lists no areas file")
    return SampleLoad(areas_report, tuple(ingests))
