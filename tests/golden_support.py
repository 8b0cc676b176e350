"""The sample city as a warehouse for the golden and determinism tests, and the output normaliser.

The warehouse is built once per test session (``sample_city`` in conftest.py): the bundled generator
(``citykpi.sample``) writes the sample city with a short history, ``load_sample`` loads it as the
manifest says, a small file of bad rows gives ``db rejects`` something to show, and two recorded runs
give ``runs list`` and ``diff`` something to compare. Every golden command then reads that warehouse
(evaluations run with ``--no-record``), so the outputs do not depend on the order the cases run in.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from citykpi.catalogue import load_catalogue
from citykpi.sample import generate, load_sample
from citykpi.warehouse import IngestOptions, Warehouse, ingest

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "indicators"
GOLDEN = Path(__file__).resolve().parent / "golden"

#: The sample city's last day, and the days of daily history generated (enough for a week's incidents,
#: the previous week and the month; the periodic KPIs carry their own years of history).
END = date(2025, 12, 31)
DAYS = 20

#: A file of rows that ingest must reject, one reason each (the sample itself loads clean).
BAD_ROWS = (
    "indicator_id,area_id,period,value\n"
    "env.air.aqi,999999,2025-12-31,50\n"
    "env.air.aqi,500103,2025-12-31,not-a-number\n"
    "no.such.indicator,500103,2025-12-31,1\n"
    "env.air.aqi,500103,31/12/2025,60\n"
    "env.air.aqi,500103,2025-12-31,-5\n"
)

#: The environment every golden command runs in: fixed width, no colour, fixed zone and locale.
ENV = {"COLUMNS": "100", "LINES": "50", "NO_COLOR": "1", "TERM": "dumb", "TZ": "UTC", "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class SampleCity:
    """Where the session's sample city lives."""

    root: Path
    data: Path
    db: Path
    catalogue: Path
    bad_rows: Path


def build_sample_city(root: Path) -> SampleCity:
    """Generate and load the sample city under ``root``, add the rejects, record two runs."""
    from citykpi.engine.evaluate import evaluate

    data = root / "data"
    generate(data, end=END, days=DAYS, catalogue_path=CATALOGUE)
    catalogue = load_catalogue(CATALOGUE)
    db = root / "sample.duckdb"
    bad = root / "bad_rows.csv"
    bad.write_text(BAD_ROWS, encoding="utf-8")
    # files are ingested by relative path (as a user in that folder would), so the batches and rejects
    # the golden commands show hold the same short path wherever the session's tmp folder is
    here = Path.cwd()
    os.chdir(root)
    try:
        with Warehouse.open(db) as wh:
            load_sample(wh, catalogue, Path("data"))
            ingest(wh, catalogue, [Path("bad_rows.csv")], IngestOptions())
            for day in (date(2025, 12, 30), END):
                evaluate(wh, catalogue, as_of=day, levels=["city", "district"], scheduled=True)
    finally:
        os.chdir(here)
    return SampleCity(root=root, data=data, db=db, catalogue=CATALOGUE, bad_rows=bad)


_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?")
#: The sample holds no time after its last day: any later timestamp is the wall clock (batch
#: finished_at, run generated_at) and is normalised away.
_DATA_END = datetime(END.year, END.month, END.day, 23, 59, 59)


def _stamp(match: re.Match[str]) -> str:
    text = match.group(0)
    try:
        when = datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        return text
    return "<NOW>" if when > _DATA_END else text


def normalise(text: str, city: SampleCity) -> str:
    """Replace what varies between machines and runs: paths, wall-clock times, the version."""
    from citykpi import __version__

    for path, name in (
        (city.data, "<DATA>"),
        (city.db, "<DB>"),
        (city.root, "<ROOT>"),
        (city.catalogue, "<CATALOGUE>"),
        (ROOT, "<REPO>"),
    ):
        for spelling in {str(path), str(path.resolve()), path.as_posix()}:
            text = text.replace(spelling, name)
    text = _STAMP.sub(_stamp, text)
    text = re.sub(r"\b(citykpi|version)([ =:\"]+)" + re.escape(__version__) + r"\b", r"\1\2<VERSION>", text)
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def updating() -> bool:
    """True when ``CITYKPI_UPDATE_GOLDEN=1``: the golden files are rewritten, not compared."""
    return os.environ.get("CITYKPI_UPDATE_GOLDEN") == "1"
