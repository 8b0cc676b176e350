"""The validated catalogue model: frozen dataclasses, no I/O, no SQL.

The parser (``parser.py``) builds these from YAML and the validator (``validate.py``) proves them
sound; the compiler (``engine/compiler.py``) turns them into SQL. Nothing else constructs them,
except tests.

Vocabulary (used the same everywhere): *indicator*, *area*, *level*, *period*, *status*,
*band*, *target*, *index*.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from citykpi import vocab
from citykpi.errors import Location

# --- closed vocabularies -------------------------------------------------------------------

#: The five risk colours, best first. Index in this tuple is the *severity* (0 = green).
COLOURS: tuple[str, ...] = ("green", "blue", "yellow", "orange", "red")
SEVERITY: Mapping[str, int] = {c: i for i, c in enumerate(COLOURS)}
#: Statuses that are not colours.
NON_COLOUR_STATUSES: tuple[str, ...] = ("stale", "unscored", "no_data", "not_applicable")
STATUSES: tuple[str, ...] = COLOURS + NON_COLOUR_STATUSES

#: Governance levels, top first. The position is the depth (city = 0).
LEVELS: tuple[str, ...] = ("city", "district", "street")

FREQUENCIES: tuple[str, ...] = (
    "realtime",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "quarterly",
    "yearly",
)
#: Evaluation grains, finest first: the length of a reporting period.
GRAINS: tuple[str, ...] = ("15min", "hour", "day", "week", "month", "quarter", "year")
#: Grains finer than a day: their periods start at an instant, not a date.
SUBDAILY_GRAINS: tuple[str, ...] = ("15min", "hour")
#: The reporting grain of each frequency (a realtime reading belongs to a 15-minute period).
GRAIN_OF_FREQUENCY: Mapping[str, str] = {
    "realtime": "15min",
    "hourly": "hour",
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
    "quarterly": "quarter",
    "yearly": "year",
}
#: Default ``max_staleness`` by frequency, when an indicator does not declare one.
DEFAULT_STALENESS: Mapping[str, timedelta] = {
    "realtime": timedelta(hours=1),
    "hourly": timedelta(hours=3),
    "daily": timedelta(days=2),
    "weekly": timedelta(days=10),
    "monthly": timedelta(days=45),
    "quarterly": timedelta(days=120),
    "yearly": timedelta(days=430),
}

Kind = Literal["kpi", "vital_sign"]
KINDS: tuple[str, ...] = ("kpi", "vital_sign")
Tier = Literal["bottom_line", "guidance"]
TIERS: tuple[str, ...] = ("bottom_line", "guidance")
Direction = Literal["higher_is_better", "lower_is_better", "band"]
DIRECTIONS: tuple[str, ...] = ("higher_is_better", "lower_is_better", "band")

#: What the bands are compared against: the names of the threshold-basis registry
#: (``citykpi.vocab.bases``, one module per basis; each entry says what it requires).
BASES: tuple[str, ...] = vocab.BASES.names()

#: Roll-up rules (``citykpi.vocab.rollups``).
TIME_ROLLUPS: tuple[str, ...] = vocab.TIME_ROLLUPS.names()
AREA_ROLLUPS: tuple[str, ...] = vocab.AREA_ROLLUPS.names()
#: Value kinds: the one key under ``value:`` (``citykpi.vocab.values``).
VALUE_KINDS: tuple[str, ...] = vocab.VALUE_KINDS.names()
CHANGE_UNITS: tuple[str, ...] = ("percent", "points")
TARGET_METHODS: tuple[str, ...] = ("end_value", "cumulative", "time_proportional")
NORMALISATIONS: tuple[str, ...] = ("goalposts", "distance_to_target", "colour_score", "min_max", "z_score")
AGGREGATIONS: tuple[str, ...] = ("linear", "geometric")
#: How an index score is coloured: by its bands (score) or by its rank among the areas of its level.
COLOUR_BY: tuple[str, ...] = ("score", "quintile")
#: Normalisations that score an area against the other areas of its level (not on a fixed scale).
RELATIVE_NORMALISATIONS: tuple[str, ...] = ("min_max", "z_score")
#: Fewer areas than this at a level: a relative score or colour is not applicable there.
MIN_RELATIVE_AREAS = 3
COMPARATORS: tuple[str, ...] = ("<", "<=", ">", ">=", "=", "!=")
SOURCE_COLUMN_TYPES: tuple[str, ...] = ("text", "integer", "double", "date", "timestamp", "boolean")

#: Known units -> family (``citykpi.vocab.units``). ``change`` defaults to *points* for rate units
#: and *percent* otherwise.
UNITS: Mapping[str, str] = {u.name: u.family for u in vocab.UNITS.values()}


# --- building blocks ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Text:
    """A bilingual name: Chinese and English. Either may be empty, not both."""

    zh: str
    en: str

    def pick(self, lang: str) -> str:
        """The name in ``lang`` ('zh' or 'en'), falling back to the other language."""
        if lang == "zh":
            return self.zh or self.en
        return self.en or self.zh


@dataclass(frozen=True, slots=True)
class Condition:
    """``value <op> threshold`` — used by ``count_where`` time roll-ups (e.g. AQI <= 100)."""

    op: str  # one of COMPARATORS
    value: float


@dataclass(frozen=True, slots=True)
class BandSet:
    """Cut points that map a (basis) value onto the five colours.

    For ``higher_is_better`` / ``lower_is_better`` the ``cuts`` map a colour to the point where
    that colour *starts* (blue/yellow/orange/red; green is everything better than the first cut).
    Cuts must be monotone: ascending in severity for lower_is_better, descending for
    higher_is_better. A colour may be omitted (e.g. only yellow and red).

    ``inclusive`` says on which side a value exactly at a cut falls: ``False`` (default) keeps it
    in the better colour ("red above 100": 100 is not red), ``True`` puts it in the worse colour
    ("red from 100").

    For ``band`` direction the ``ranges`` map a colour to a closed interval [low, high]; ranges
    are nested and widen with severity (green innermost). A value outside every range is red.
    """

    cuts: Mapping[str, float] = field(default_factory=dict)
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    inclusive: bool = False


@dataclass(frozen=True, slots=True)
class Override:
    """Bands that replace the indicator's own bands at one level or for one area (area wins)."""

    bands: BandSet
    level: str | None = None
    area: str | None = None
    loc: Location | None = None


@dataclass(frozen=True, slots=True)
class ScaleStep:
    """One step of an indicator's own scale (e.g. AQI's six bands), mapped onto a colour.

    ``upto`` is the inclusive upper edge of the step; the last step has ``upto=None``.
    Steps are listed from low to high values.
    """

    label: Text
    colour: str
    upto: float | None


@dataclass(frozen=True, slots=True)
class Thresholds:
    """How an indicator's value is judged."""

    basis: str = "absolute"
    bands: BandSet = field(default_factory=BandSet)
    #: Persistence: the colour shown is the least severe colour seen in each of the last N
    #: periods ("AQI > 200 for 2 days -> red"). 1 = no persistence rule.
    for_periods: int = 1
    #: Design value for ``percent_of_limit``.
    limit: float | None = None
    overrides: tuple[Override, ...] = ()
    #: Basis ``anomaly``: how many comparable earlier periods make the seasonal baseline
    #: (None = :data:`DEFAULT_BASELINE_PERIODS`).
    baseline: int | None = None
    loc: Location | None = None


#: Basis ``anomaly``: comparable earlier periods in a seasonal baseline, by default and at least.
DEFAULT_BASELINE_PERIODS = 8
MIN_BASELINE_PERIODS = 3
MAX_BASELINE_PERIODS = 52


@dataclass(frozen=True, slots=True)
class Forecast:
    """Early warning for an indicator (``forecast:``), or the defaults of a domain (``domains:``).

    A trend fitted over the last ``window`` reporting periods is projected ``horizon`` periods ahead
    to say when the value crosses the next worse cut, and where a dated target will end up. ``None``
    means "not declared here": the domain's setting, else the default for the reporting grain
    (:data:`FORECAST_DEFAULTS`, :data:`DEFAULT_MIN_R2`).
    """

    enabled: bool = True
    window: int | None = None
    horizon: int | None = None
    #: goodness of fit the trend needs before it warns (R², 0–1)
    min_r2: float | None = None
    #: comparable earlier periods of the seasonal anomaly score shown beside the trend
    baseline: int | None = None
    loc: Location | None = None


#: Reporting grain → (window, horizon) in periods of that grain, when not declared.
FORECAST_DEFAULTS: Mapping[str, tuple[int, int]] = {
    # a vital sign's trend over the last hours, projected as far ahead (Prometheus' predict_linear
    # is typically read over 1–6 hours and a few hours ahead)
    "15min": (8, 8),
    "hour": (6, 6),
    "day": (28, 14),
    "week": (13, 8),
    "month": (12, 6),
    "quarter": (8, 4),
    "year": (6, 3),
}
DEFAULT_MIN_R2 = 0.7
#: Comparable periods of a forecasting cell's anomaly score (four weeks of the same weekday: the data
#: the default 28-day window reads anyway).
DEFAULT_FORECAST_BASELINE = 4
MAX_FORECAST_WINDOW = 366
MAX_FORECAST_HORIZON = 366


@dataclass(frozen=True, slots=True)
class Rollup:
    """How values roll up over time within a period, and over areas up the levels."""

    time: str = "last"  # TIME_ROLLUPS
    where: Condition | None = None  # for time == count_where
    area: str = "none"  # AREA_ROLLUPS
    weight: str | None = None  # area attribute for weighted_mean (e.g. "population")


@dataclass(frozen=True, slots=True)
class Target:
    """A dated target with an optional baseline."""

    value: float
    due: date
    baseline: float | None = None
    baseline_date: date | None = None
    #: end_value: the latest value vs the target; cumulative: sum since baseline_date vs target;
    #: time_proportional: expected progress grows linearly from baseline_date to due.
    method: str = "end_value"
    loc: Location | None = None


@dataclass(frozen=True, slots=True)
class Persistence:
    """How long a condition must hold: a duration (``15m``) or a number of readings (``3 readings``).

    Neither set means at once (the first reading).
    """

    duration: timedelta | None = None
    readings: int | None = None


@dataclass(frozen=True, slots=True)
class AlertRule:
    """The alert lifecycle of an indicator, followed per area that has readings of its own.

    A reading *sets* the alert when its colour is ``colour`` or worse; it *clears* it when it lies
    beyond ``clear`` on the good side (hysteresis: "red from 35 %LEL, clears below 30"; for a band
    direction ``clear_range`` is the range it must come back into). Without a clear level a reading
    below ``colour`` clears. A set reading never clears, whatever the clear level. The alert is
    *pending* from the first set reading, *firing* once it has stayed set (not cleared) for ``for_``,
    and *resolved* at the reading that has been clear for ``clear_for`` (at once by default).
    """

    colour: str = "red"
    clear: float | None = None
    clear_range: tuple[float, float] | None = None
    for_: Persistence = field(default_factory=Persistence)
    clear_for: Persistence = field(default_factory=Persistence)
    loc: Location | None = None


# --- where a value comes from --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observed:
    """Observations of this indicator in long format (``indicator_id, area_id, period, value``).

    With ``with_parts`` the observations carry ``numerator`` and ``denominator`` too, so that the
    indicator can roll up as a ratio of sums; ``scale`` multiplies numerator/denominator.
    """

    with_parts: bool = False
    scale: float = 1.0
    kind: Literal["observed"] = "observed"


@dataclass(frozen=True, slots=True)
class Ratio:
    """numerator indicator / denominator indicator * scale (e.g. x 100, or per 100,000)."""

    numerator: str
    denominator: str
    scale: float = 1.0
    kind: Literal["ratio"] = "ratio"


@dataclass(frozen=True, slots=True)
class Formula:
    """An arithmetic expression over other indicators, named in ``inputs`` (name -> indicator id)."""

    expression: str
    inputs: Mapping[str, str]
    kind: Literal["formula"] = "formula"


@dataclass(frozen=True, slots=True)
class Measure:
    """An aggregate over a raw source table (e.g. share of hotline cases closed on time).

    ``numerator`` (and optional ``denominator``) are aggregate expressions over the source's
    declared columns; ``filter`` restricts the rows. Value = numerator / denominator * scale.
    """

    source: str
    numerator: str
    denominator: str | None = None
    filter: str | None = None
    scale: float = 1.0
    kind: Literal["measure"] = "measure"


@dataclass(frozen=True, slots=True)
class FromSeries:
    """The raw series of another indicator, rolled up with this indicator's own time roll-up
    (e.g. good-air days per year = count of daily AQI <= 100)."""

    input: str
    kind: Literal["from"] = "from"


ValueSource = Observed | Ratio | Formula | Measure | FromSeries


# --- top-level entities --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Indicator:
    """One KPI or vital sign."""

    id: str
    name: Text
    kind: str  # KINDS
    domain: str
    unit: str
    levels: tuple[str, ...]
    frequency: str
    direction: str
    thresholds: Thresholds
    value: ValueSource = field(default_factory=Observed)
    rollup: Rollup = field(default_factory=Rollup)
    description: str = ""
    owner: str = ""
    tier: str = "guidance"
    tags: tuple[str, ...] = ()
    max_staleness: timedelta | None = None
    valid_range: tuple[float | None, float | None] | None = None
    change: str | None = None  # CHANGE_UNITS; None = by unit (points for rates)
    scale: tuple[ScaleStep, ...] = ()
    target: Target | None = None
    decimals: int = 1
    #: early warning (None: the domain's ``forecast`` setting, else off)
    forecast: Forecast | None = None
    loc: Location | None = None
    #: When a period's data must have arrived, after the period's end (``due: 9h`` = 09:00 next day
    #: for daily data); None: the feed's ``due``, else ``staleness``. Read by ``citykpi quality``.
    due: timedelta | None = None
    #: The fixed period a ``change_base_period`` basis compares with ("down 20 % on 2010"): the
    #: first day of the year, month or day written; the reporting period containing it is the base.
    base_period: date | None = None
    #: The alert lifecycle (pending → firing → resolved) of each of its series, when declared.
    alert: AlertRule | None = None

    @property
    def staleness(self) -> timedelta:
        """``max_staleness`` or the default for the frequency."""
        return self.max_staleness or DEFAULT_STALENESS[self.frequency]

    @property
    def change_unit(self) -> str:
        """'points' for rate units, 'percent' otherwise, unless declared."""
        if self.change:
            return self.change
        return "points" if UNITS.get(self.unit) == "rate" else "percent"

    @property
    def inputs(self) -> tuple[str, ...]:
        """Indicator ids this indicator's value is computed from."""
        v = self.value
        if isinstance(v, Ratio):
            return (v.numerator, v.denominator)
        if isinstance(v, Formula):
            return tuple(v.inputs.values())
        if isinstance(v, FromSeries):
            return (v.input,)
        return ()


@dataclass(frozen=True, slots=True)
class Normalisation:
    """How a component's value becomes a 0–100 score inside an index."""

    method: str = "colour_score"  # NORMALISATIONS
    low: float | None = None  # goalposts: worst value (score 0)
    high: float | None = None  # goalposts: best value (score 100)


@dataclass(frozen=True, slots=True)
class Component:
    """A weighted member of a composite index: an indicator or another index."""

    ref: str
    weight: float = 1.0
    normalise: Normalisation | None = None  # None = the index's default
    loc: Location | None = None


@dataclass(frozen=True, slots=True)
class CompositeIndex:
    """A composite index scoring a whole domain (OECD/JRC handbook style)."""

    id: str
    name: Text
    components: tuple[Component, ...]
    description: str = ""
    normalise: Normalisation = field(default_factory=Normalisation)
    aggregation: str = "linear"  # AGGREGATIONS
    #: When a bottom-line component is red the index score is capped at this value.
    cap_on_red: float | None = None
    #: Missing components are re-weighted away; below this coverage (0–1) the index is no_data.
    min_coverage: float = 0.5
    #: Score bands for the index's own colour (score is higher_is_better, 0–100).
    bands: BandSet = field(
        default_factory=lambda: BandSet(cuts={"blue": 85.0, "yellow": 70.0, "orange": 60.0, "red": 50.0})
    )
    levels: tuple[str, ...] = ("city", "district")
    #: ``score``: the bands colour the score; ``quintile``: the top fifth of the areas of a level is
    #: green … the bottom fifth red (for relative normalisations, whose scores have no fixed scale).
    colour_by: str = "score"
    loc: Location | None = None


@dataclass(frozen=True, slots=True)
class AreaGroup:
    """A named group of areas (e.g. the "9+2" central urban area)."""

    id: str
    name: Text
    areas: tuple[str, ...]
    loc: Location | None = None


@dataclass(frozen=True, slots=True)
class Timeliness:
    """When a raw record is on time (``citykpi quality``): its ``done`` column (else its arrival in
    the warehouse) against its ``due`` column or its time column plus ``within``."""

    done: str | None = None
    due: str | None = None
    within: timedelta | None = None


@dataclass(frozen=True, slots=True)
class SourceTable:
    """A raw source table declared in the catalogue (e.g. hotline cases), loaded by ``ingest``."""

    id: str
    columns: Mapping[str, str]  # column -> SOURCE_COLUMN_TYPES
    time_column: str
    area_column: str
    key: str | None = None
    description: str = ""
    #: strptime format per date/timestamp column (e.g. ``"%m/%d/%Y %I:%M:%S %p"``); ISO when absent.
    formats: Mapping[str, str] = field(default_factory=dict)
    loc: Location | None = None
    #: Which rows count (an expression over the columns, e.g. excluding duplicates): every measure
    #: over the source reads only these; ``citykpi quality`` counts the rest as excluded.
    filter: str | None = None
    #: The department responsible for the records, and the text column naming each record's
    #: provider (e.g. the agency), by which ``citykpi quality --by owner`` groups them.
    owner: str = ""
    provider_column: str | None = None
    timeliness: Timeliness | None = None


#: Fields a feed's ``columns`` and ``set`` may name (for the long, wide and source formats the
#: source's declared columns are the fields instead).
FEED_FIELDS: tuple[str, ...] = ("indicator_id", "area_id", "period", "value", "numerator", "denominator")
FEED_FORMATS: tuple[str, ...] = ("long", "wide", "source")


@dataclass(frozen=True, slots=True)
class Feed:
    """A delivery from a provider: what it carries, how its files read, and when it is due.

    ``citykpi ingest --feed ID`` reads a file with the feed's mapping (the same as the options
    ``--map``, ``--set``, ``--missing``, ``--dim``, ``--date-format``, plus ``recode``);
    ``citykpi quality`` groups by feed (``--by source``) and by provider, and judges arrival
    against ``due``.
    """

    id: str
    description: str = ""
    provider: str = ""
    format: str = "long"  # FEED_FORMATS
    source: str | None = None  # format source: the declared source table
    indicators: tuple[str, ...] = ()
    #: file-name globs ``citykpi ingest --feed auto`` picks this feed for
    files: tuple[str, ...] = ()
    columns: Mapping[str, str] = field(default_factory=dict)  # field -> file column ("a+b": composite)
    wide: Mapping[str, str] = field(default_factory=dict)  # wide: file column -> indicator id
    constants: Mapping[str, str] = field(default_factory=dict)  # YAML ``set``
    missing: tuple[str, ...] = ()
    dimensions: Mapping[str, str] = field(default_factory=dict)  # dimension -> file column ('' = recode only)
    #: file column -> value -> {field or dimension: text}
    recode: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)
    date_formats: Mapping[str, str] = field(default_factory=dict)
    due: timedelta | None = None
    loc: Location | None = None


#: The kinds of consistency rule (``consistency:``), see :class:`ConsistencyRule`.
RULE_KINDS: tuple[str, ...] = ("sum", "disaggregation", "area_rollup")
#: How a parent's value is computed from its children by an ``area_rollup`` rule.
RULE_METHODS: tuple[str, ...] = ("sum", "mean", "max", "min", "weighted_mean")


@dataclass(frozen=True, slots=True)
class ConsistencyRule:
    """A declared identity the data must satisfy, checked by ``citykpi quality``.

    ``sum``: ``total`` equals the sum of ``parts`` (indicators) per area and period;
    ``disaggregation``: an indicator's value equals the sum over the values of ``dimension``
    (``values``, or every value the data holds), within each combination of its other dimensions;
    ``area_rollup``: a parent area's own value equals ``method`` over its children's (at ``level``,
    the parents' level; every declared level with children by default). ``tolerance`` is absolute,
    or relative to the total when ``relative``.
    """

    id: str
    kind: str  # RULE_KINDS
    description: str = ""
    total: str | None = None
    parts: tuple[str, ...] = ()
    indicator: str | None = None
    dimension: str | None = None
    values: tuple[str, ...] = ()
    level: str | None = None
    method: str | None = None
    tolerance: float = 0.0
    relative: bool = False
    loc: Location | None = None

    @property
    def subject(self) -> str:
        """The indicator whose data the rule judges (the total of a sum)."""
        return str(self.total if self.kind == "sum" else self.indicator)


@dataclass(frozen=True, slots=True)
class DomainSettings:
    """Settings shared by the indicators of one domain (``domains:``): the default ``forecast``."""

    id: str
    forecast: Forecast | None = None
    description: str = ""
    loc: Location | None = None


@dataclass(frozen=True, slots=True)
class Incident:
    """A declared incident (``incidents:``): its days are left out of seasonal baselines.

    ``indicators`` are ids or globs (``case.hotline.*``) and ``domains`` domain names; with neither,
    every indicator. ``areas`` are area ids (an area's descendants too); empty means every area.
    ``start`` and ``end`` are inclusive.
    """

    id: str
    start: date
    end: date
    indicators: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    areas: tuple[str, ...] = ()
    description: str = ""
    loc: Location | None = None


#: The alert episodes of the lifecycle (``engine/alerting.py``) as a raw source a ``measure`` can
#: aggregate without declaring it: one row per resolved episode, timed by when it was resolved, in
#: the area of its series. E.g. the mean minutes a department takes to resolve its alerts:
#: ``measure: {source: alert_episodes, numerator: "avg(minutes_to_resolve)", filter: "owner = '…'"}``.
ALERT_EPISODES_SOURCE = SourceTable(
    id="alert_episodes",
    columns={
        "indicator_id": "text",
        "owner": "text",
        "domain": "text",
        "area_id": "text",
        "started_at": "timestamp",
        "fired_at": "timestamp",
        "resolved_at": "timestamp",
        "minutes": "double",
        "minutes_to_fire": "double",
        "minutes_to_resolve": "double",
        "peak": "double",
        "worst_colour": "text",
        "readings": "integer",
    },
    time_column="resolved_at",
    area_column="area_id",
    description="The resolved alert episodes of the indicators with an alert rule (built in).",
)
#: Sources every catalogue has without declaring them (their ids cannot be declared).
BUILTIN_SOURCES: Mapping[str, SourceTable] = {ALERT_EPISODES_SOURCE.id: ALERT_EPISODES_SOURCE}


@dataclass(frozen=True)
class Catalogue:
    """The whole validated catalogue."""

    indicators: tuple[Indicator, ...]
    indices: tuple[CompositeIndex, ...] = ()
    groups: tuple[AreaGroup, ...] = ()
    sources: tuple[SourceTable, ...] = ()
    domains: tuple[DomainSettings, ...] = ()
    incidents: tuple[Incident, ...] = ()
    schema_version: int = 1
    feeds: tuple[Feed, ...] = ()
    consistency: tuple[ConsistencyRule, ...] = ()
    files: tuple[str, ...] = ()
    #: sha256 over the catalogue's files (sorted by path) — recorded with every run.
    content_hash: str = ""
    #: The city's time zone (tz database name, e.g. ``Asia/Shanghai``): time stamps are stored as its
    #: local wall-clock time; None when the catalogue declares none (time stamps are taken as written).
    timezone: str | None = None

    by_id: Mapping[str, Indicator] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {i.id: i for i in self.indicators})

    def indicator(self, indicator_id: str) -> Indicator:
        """The indicator with this id (KeyError if none)."""
        return self.by_id[indicator_id]
