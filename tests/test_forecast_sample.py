"""The sample city's 12345 hotline through the Spring Festival of 2025, with its seasonal baseline.

The hotline's volume (``case.hotline.cases``, basis ``anomaly``: the same weekday and kind of day over
the last 12 weeks) has a weekly rhythm and a holiday lull (``citykpi.sample``). The Spring Festival
holidays run 28 January – 4 February 2025, with Sunday 26 January and Saturday 8 February worked (调休).
The sample is generated for the hotline alone (its source and its indicator), 150 days to 10 February:
back to the Mid-Autumn and National Day holidays of 2024, which the festival's days are compared with.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from citykpi.catalogue import load_catalogue
from citykpi.catalogue.model import Catalogue
from citykpi.engine import seasonal
from citykpi.engine.evaluate import evaluate
from citykpi.engine.holidays import DayType, day_type
from citykpi.sample import generate, load_sample
from citykpi.warehouse import IngestOptions, Warehouse, ingest

ROOT = Path(__file__).resolve().parents[1]
END, DAYS = date(2025, 2, 10), 150
FESTIVAL = [date(2025, 1, 26) + timedelta(days=n) for n in range(14)]  # 26 January … 8 February
SURGE_DAY = date(2025, 1, 31)  # a Friday inside the holidays
HOTLINE = "case.hotline.cases"


def _hotline_catalogue(folder: Path) -> Path:
    """The sample catalogue's hotline source and the hotline volume indicator, as they are written there."""
    folder.mkdir()
    shutil.copy(ROOT / "indicators" / "sources.yaml", folder / "sources.yaml")
    text = (ROOT / "indicators" / "case_handling.yaml").read_text(encoding="utf-8")
    start = text.index(f"  - id: {HOTLINE}\n")
    end = text.index("  - id:", start + 10)
    (folder / "hotline.yaml").write_text(
        "schema_version: 1\nindicators:\n" + text[start:end], encoding="utf-8"
    )
    return folder


@pytest.fixture(scope="module")
def hotline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Catalogue]:
    root = tmp_path_factory.mktemp("festival")
    folder = _hotline_catalogue(root / "catalogue")
    generate(root / "data", end=END, days=DAYS, catalogue_path=folder)
    catalogue = load_catalogue(folder)
    with Warehouse.open(root / "festival.duckdb") as wh:
        load_sample(wh, catalogue, root / "data")
    return root / "festival.duckdb", catalogue


def _city(db: Path, catalogue: Catalogue, day: date) -> dict[str, object]:
    with Warehouse.open(db, read_only=True) as wh:
        sc = evaluate(wh, catalogue, as_of=day, levels=["city"], persist=False, history_levels=())
    return sc.cells.filter(pl.col("indicator_id") == HOTLINE).row(0, named=True)


def test_the_sample_hotline_has_a_weekly_rhythm_and_a_holiday_lull(hotline: tuple[Path, Catalogue]) -> None:
    db, catalogue = hotline
    values = {
        d: _city(db, catalogue, d)["value"] for d in (date(2025, 1, 20), date(2025, 1, 19), date(2025, 1, 30))
    }
    monday, sunday, holiday = values[date(2025, 1, 20)], values[date(2025, 1, 19)], values[date(2025, 1, 30)]
    assert isinstance(monday, float) and isinstance(sunday, float) and isinstance(holiday, float)
    assert monday > 1.4 * sunday and sunday > 1.1 * holiday


def test_the_spring_festival_is_not_flagged(hotline: tuple[Path, Catalogue]) -> None:
    """Every day from the worked Sunday before the festival to the worked Saturday after it: the city's
    volume is green against its comparable days, although it halves during the holidays."""
    db, catalogue = hotline
    assert [day_type(d) for d in (FESTIVAL[0], FESTIVAL[2], FESTIVAL[-1])] == [
        DayType.ADJUSTED,
        DayType.HOLIDAY,
        DayType.ADJUSTED,
    ]
    for day in FESTIVAL:
        row = _city(db, catalogue, day)
        assert row["basis_value"] is not None, (day, row["explanation"])
        assert row["status"] == "green", (day, row["explanation"])


def test_a_surge_inside_the_festival_is_flagged(hotline: tuple[Path, Catalogue], tmp_path: Path) -> None:
    """1,200 more calls on 31 January (a burst main, say): about two holidays' worth, flagged against
    the festival's comparable days — although a Monday sees as many calls without being flagged."""
    db, catalogue = hotline
    copy = tmp_path / "surge.duckdb"
    shutil.copy(db, copy)
    before = _city(copy, catalogue, SURGE_DAY)
    created = [datetime(2025, 1, 31, 9) + timedelta(seconds=20 * n) for n in range(1_200)]
    extra = pl.DataFrame(
        {
            "case_id": [f"SURGE{n:05d}" for n in range(1_200)],
            "created_at": created,
            "due_at": [c + timedelta(hours=24) for c in created],
            "closed_at": [None] * 1_200,
            "district_id": ["500105"] * 1_200,
            "street_id": ["500105003"] * 1_200,
            "category": ["水电气讯"] * 1_200,
            "channel": ["电话"] * 1_200,
            "satisfied": [None] * 1_200,
        },
        schema_overrides={"closed_at": pl.Datetime("us"), "satisfied": pl.Boolean},
    )
    path = tmp_path / "surge.parquet"
    extra.write_parquet(path)
    with Warehouse.open(copy) as wh:
        report = ingest(wh, catalogue, [path], IngestOptions(fmt="source", source="hotline_cases"))
        assert report.rows_loaded == 1_200
    after = _city(copy, catalogue, SURGE_DAY)
    assert after["value"] == before["value"] + 1_200  # type: ignore[operator]
    assert before["status"] == "green", before["explanation"]
    assert after["status"] in ("yellow", "orange", "red") and after["basis_value"] > 8, after["explanation"]  # type: ignore[operator]


def test_without_the_calendar_the_festival_would_be_flagged(
    hotline: tuple[Path, Catalogue], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counterfactual: compared with plain weekdays, the holidays look like a slump."""
    db, catalogue = hotline
    monkeypatch.setattr(seasonal, "day_class", lambda d: f"day-{d.isoweekday()}")
    holidays = [d for d in FESTIVAL if day_type(d) is DayType.HOLIDAY]
    assert len(holidays) == 8
    flagged = [d for d in holidays if _city(db, catalogue, d)["status"] != "green"]
    assert len(flagged) >= 4 and date(2025, 1, 30) in flagged, flagged
