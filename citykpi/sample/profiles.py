"""How each observed indicator of the sample catalogue behaves: level, seasonality, trend, noise, incidents.

A :class:`Profile` is a handful of numbers per indicator; ``generate.py`` turns them into one set-based
DuckDB query. ``base`` is the typical value at the end date; for indicators that roll up by ``sum``
over areas it is the *city total* per period, split over the areas by population.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True, slots=True)
class Profile:
    """The behaviour of one observed indicator's generated series."""

    base: float
    noise: float = 0.05  # relative standard deviation
    sd: float = 0.0  # absolute standard deviation, added to the relative one
    season: str = ""  # summer | winter | rain | q4 | cum ('' = none)
    samp: float = 0.0  # seasonal amplitude (relative; negative flips the shape)
    weekly: float = 0.0  # relative weekday uplift (negative: busier at weekends)
    growth: float = 0.0  # relative growth per year (the value a year earlier is base / (1 + growth))
    spread: float = 0.1  # relative spread between areas (intensive indicators)
    diurnal: float = 0.0  # relative amplitude of the daily cycle (hourly indicators)
    peak: int = 14  # hour of the daily peak
    parts: float = 0.0  # with_parts: denominator units per resident per period
    sparse: float = 0.0  # probability that a period has a non-zero value (events like ponding, rain)
    lo: float | None = 0.0
    hi: float | None = None
    decimals: int = 1
    missing: float = 0.0  # share of periods silently missing
    stop_days: int = 0  # the feed goes silent this many days before the end (stale)
    path: tuple[tuple[date, float], ...] = field(default_factory=tuple)  # step values (city series)


def P(base: float, **kw: object) -> Profile:
    """Shorthand constructor used by the table below."""
    return Profile(base, **kw)  # type: ignore[arg-type]


_RAIN = {"season": "rain"}

#: One profile per observed indicator of indicators/*.yaml (tests check the two stay in step).
PROFILES: dict[str, Profile] = {
    # population
    "pop.resident": P(32_110_000, noise=0.001, growth=0.002, decimals=0),
    "pop.registered": P(3_395, noise=0.002, growth=-0.002),
    "pop.urbanisation": P(71.6, noise=0.002, growth=0.012, spread=0.18, hi=100, decimals=2),
    # economy
    "econ.gdp": P(8_650, noise=0.015, growth=0.058, season="q4", samp=0.12, decimals=2),
    "econ.gdp_growth": P(5.9, sd=0.25, noise=0, spread=0),
    "econ.industrial_growth": P(7.2, sd=1.2, noise=0, spread=0.45, lo=-30),
    "econ.fixed_investment_growth": P(3.2, sd=1.5, noise=0, spread=1.2, lo=-40),
    "econ.retail_sales": P(1_340, noise=0.03, growth=0.045, season="q4", samp=0.1, decimals=2),
    "econ.budget_revenue": P(205, noise=0.08, growth=0.03, decimals=2),
    "econ.unemployment": P(5.1, sd=0.12, noise=0, spread=0, season="q4", samp=-0.03),
    "econ.cpi": P(0.4, sd=0.5, noise=0, spread=0, lo=-5),
    "econ.new_market_entities": P(43_000, noise=0.09, growth=0.03, decimals=0),
    "econ.foreign_trade": P(620, noise=0.08, growth=0.02, decimals=2),
    "econ.rd_intensity": P(2.55, noise=0.02, growth=0.04, spread=0.3, decimals=2),
    "econ.disposable_income": P(43_500, noise=0.005, growth=0.052, season="cum", spread=0, decimals=0),
    "econ.digital_core_share": P(9.9, noise=0.01, growth=0.07, spread=0),
    # livelihood
    "live.new_urban_jobs": P(62_000, noise=0.1, decimals=0),
    "live.elderly_canteens_new": P(150, noise=0.2, growth=0.25, decimals=0),
    "live.childcare_places_new": P(2_700, noise=0.15, decimals=0),
    "live.life_circles": P(65, noise=0.05, season="cum", spread=0, decimals=0),
    "live.bed_occupancy": P(86, sd=2.5, noise=0, spread=0.06, season="winter", samp=0.04, hi=110),
    "live.primary_care_share": P(52, sd=1.5, noise=0, spread=0.12, parts=0.6, hi=100),
    "live.pension_coverage": P(95.4, sd=0.3, noise=0, spread=0.02, growth=0.003, hi=100),
    "live.subsistence_recipients": P(1_150_000, noise=0.004, growth=-0.02, decimals=0),
    "live.vegetable_price": P(
        5.6, noise=0.03, season="winter", samp=0.15, growth=0.02, spread=0.08, decimals=2
    ),
    "live.doctors": P(98_000, noise=0.01, growth=0.04, decimals=0),
    "live.hospital_beds": P(262_000, noise=0.01, growth=0.02, decimals=0),
    "live.elderly_service_coverage": P(96, sd=2, noise=0, growth=0.05, spread=0.04, parts=0.00035, hi=100),
    # case handling
    "case.event.closed_loop_rate": P(97, sd=1.5, noise=0, spread=0.02, parts=0.00085, hi=100),
    "case.event.dispatched": P(27_000, noise=0.08, weekly=0.15, growth=0.08, decimals=0),
    "case.event.dispatch_minutes": P(12, noise=0.1, spread=0.25),
    "case.event.smart_discovery_share": P(36, sd=2, noise=0, growth=0.15, spread=0.2, parts=0.025, hi=100),
    "case.enforcement.satisfaction": P(87.5, sd=1.0, noise=0, growth=0.01, spread=0.03, hi=100),
    # environment
    "env.air.aqi": P(60, noise=0.37, season="winter", samp=0.45, spread=0.1, decimals=0, missing=0.003),
    "env.air.aqi_hourly": P(
        60, noise=0.37, season="winter", samp=0.45, spread=0.1, diurnal=0.15, peak=9, decimals=0, missing=0.02
    ),
    "env.air.pm25": P(29, noise=0.35, season="winter", samp=0.65, spread=0.15, decimals=0, missing=0.003),
    "env.air.o3_8h": P(92, noise=0.22, season="summer", samp=0.45, spread=0.1, decimals=0, missing=0.003),
    "env.water.section_good_rate": P(98.8, sd=1.5, noise=0, spread=0, parts=6e-6, hi=100),
    "env.water.river_do": P(8.2, noise=0.06, season="summer", samp=-0.15, spread=0.08, stop_days=4),
    "env.water.drinking_source_compliance": P(100.6, sd=0.25, noise=0, spread=0, hi=100),
    "env.noise.day_compliance": P(93, sd=3, noise=0, spread=0.03, hi=100),
    "env.noise.road_traffic": P(66.5, sd=1.0, noise=0, weekly=0.01, spread=0.03),
    "env.waste.harmless_rate": P(100, noise=0, spread=0, parts=0.014, hi=100),
    "env.waste.collected": P(15_500, noise=0.05, weekly=-0.03, growth=0.02, decimals=0),
    "env.carbon.intensity_decline": P(3.6, sd=0.4, noise=0, spread=0),
    # water supply
    "water.supply.pressure": P(
        0.35, sd=0.012, noise=0, diurnal=-0.12, peak=8, spread=0.1, decimals=3, missing=0.002
    ),
    "water.supply.residual_chlorine": P(0.75, sd=0.04, noise=0, spread=0.2, decimals=2),
    "water.supply.turbidity": P(0.18, noise=0.25, season="rain", samp=0.3, spread=0.2, decimals=2),
    "water.supply.quality_pass_rate": P(99.85, sd=0.1, noise=0, spread=0, parts=0.0008, hi=100),
    "water.supply.daily_volume": P(420, noise=0.03, season="summer", samp=0.12, weekly=0.02, growth=0.03),
    "water.supply.leakage_rate": P(9.3, sd=0.4, noise=0, growth=-0.08, spread=0.15, parts=3.9),
    "water.supply.pipe_bursts": P(9, noise=0.35, season="winter", samp=0.3, decimals=0),
    "water.supply.outage_households": P(3_000, noise=0.7, decimals=0),
    "water.supply.repair_on_time": P(96.8, sd=1.0, noise=0, spread=0.01, parts=0.00003, hi=100),
    "water.supply.plant_load": P(72, sd=3, noise=0, season="summer", samp=0.1, spread=0.15),
    "water.supply.rural_tap_coverage": P(89.6, sd=0.3, noise=0, growth=0.01, spread=0.05, hi=99.5),
    # drainage
    "drain.ponding.depth": P(4, sparse=0.012, season="rain", samp=2.0, spread=0.3),
    "drain.rainfall": P(7, sparse=0.3, season="rain", samp=0.8, spread=0.15),
    "drain.sewage.treatment_rate": P(98.3, sd=0.5, noise=0, spread=0.005, parts=4.0, hi=100),
    "drain.sewage.collection_rate": P(73.4, sd=0.5, noise=0, growth=0.02, spread=0.1, parts=48, hi=100),
    "drain.sponge_city_share": P(45.6, sd=0.5, noise=0, growth=0.12, spread=0.15, parts=0.0056, hi=100),
    "drain.flood_points_fixed": P(17.5, noise=0.15, spread=0, decimals=0),
    "drain.pump_availability": P(98.8, sd=0.7, noise=0, spread=0.005, hi=100),
    "drain.misconnections_fixed": P(420, noise=0.2, decimals=0),
    "drain.manhole_alarms": P(180, noise=0.25, season="rain", samp=0.4, decimals=0),
    "drain.river_level_margin": P(
        -8, sd=0.8, noise=0, season="rain", samp=-0.5, spread=0, lo=-30, decimals=2, stop_days=4
    ),
    # power
    "power.load": P(
        19_500,
        noise=0.03,
        season="summer",
        samp=0.22,
        weekly=0.04,
        diurnal=0.15,
        peak=20,
        growth=0.06,
        spread=0,
        decimals=0,
    ),
    "power.frequency": P(50.0, sd=0.02, noise=0, spread=0, decimals=3),
    "power.consumption": P(438, noise=0.03, season="summer", samp=0.18, weekly=0.04, growth=0.05, decimals=2),
    "power.outage_households": P(2_500, noise=0.7, season="summer", samp=0.4, decimals=0),
    "power.reliability": P(99.94, sd=0.02, noise=0, spread=0.0002, hi=100, decimals=3),
    "power.voltage_compliance": P(99.96, sd=0.015, noise=0, spread=0.0001, hi=100, decimals=3),
    "power.overloaded_transformers": P(300, noise=0.2, season="summer", samp=0.8, decimals=0),
    "power.ev_chargers_new": P(1_050, noise=0.15, growth=0.3, decimals=0),
    "power.repair_arrival": P(32, noise=0.15, spread=0.25),
    # gas
    "gas.leak.lel": P(1.5, noise=0.6, spread=0.3),
    "gas.network_pressure": P(0.25, sd=0.008, noise=0, diurnal=-0.1, peak=19, spread=0.08, decimals=3),
    "gas.daily_supply": P(3_500, noise=0.04, season="winter", samp=0.25, growth=0.03),
    "gas.alarms_handled": P(45, noise=0.3, season="winter", samp=0.3, decimals=0),
    "gas.inspection_rate": P(97.5, sd=1, noise=0, growth=0.01, spread=0.01, parts=0.3, hi=100),
    "gas.aged_pipe_renewed": P(55, noise=0.2),
    "gas.third_party_damage": P(25, noise=0.15, growth=-0.3, decimals=0),
    # telecom
    "tel.station_availability": P(99.85, sd=0.08, noise=0, spread=0.0005, hi=100, decimals=2),
    "tel.stations_down": P(260, noise=0.25, decimals=0),
    "tel.fibre_cuts": P(18, noise=0.4, decimals=0),
    "tel.5g_stations": P(101_000, noise=0.002, growth=0.2, spread=0, decimals=0),
    "tel.gigabit_households": P(5_200_000, noise=0.003, growth=0.15, decimals=0),
    "tel.complaints": P(1_200, noise=0.12, growth=-0.05, decimals=0),
    # bridges and tunnels
    "bt.bridge.deflection": P(150, noise=0.08, season="summer", samp=0.1, spread=0.3),
    "bt.bridge.condition_index": P(88, sd=1.5, noise=0, spread=0.06, hi=100),
    "bt.bridge.poor_condition": P(4, noise=0.2, growth=-0.3, decimals=0),
    "bt.tunnel.co": P(25, noise=0.2, diurnal=0.5, peak=18, weekly=0.1, spread=0.3),
    "bt.tunnel.lighting_ok": P(98.8, sd=0.6, noise=0, spread=0.003, hi=100),
    "bt.bridge.overweight_vehicles": P(350, noise=0.2, weekly=0.2, growth=-0.1, decimals=0),
    "bt.monitoring_online": P(97.6, sd=1.0, noise=0, spread=0.01, parts=0.0003, hi=100),
    "bt.inspection_on_time": P(98.5, sd=1.0, noise=0, spread=0.01, parts=0.00005, hi=100),
    # transport
    "tr.rail.operating_km": P(
        593,
        noise=0,
        spread=0,
        path=(
            (date(2000, 1, 1), 494.0),
            (date(2024, 1, 1), 538.0),
            (date(2025, 9, 1), 556.0),
            (date(2025, 12, 1), 593.0),
        ),
    ),
    "tr.rail.ridership": P(420, noise=0.025, weekly=0.12, growth=0.05, spread=0),
    "tr.transit.ridership": P(860, noise=0.02, weekly=0.1, growth=0.01, spread=0),
    "tr.rail.on_time": P(99.95, sd=0.04, noise=0, spread=0, hi=100, decimals=2),
    "tr.congestion_index": P(1.62, noise=0.05, weekly=0.08, spread=0.12, lo=1.0, decimals=2),
    "tr.peak_speed": P(26, noise=0.05, weekly=-0.05, spread=0.15, growth=0.031),
    "tr.parking.roadside_compliance": P(
        98.2, sd=0.6, noise=0, growth=0.01, spread=0.005, parts=0.004, hi=100
    ),
    "tr.parking.spaces_new": P(17_500, noise=0.15, decimals=0),
    "tr.congestion_points_fixed": P(11, noise=0.15, spread=0, decimals=0),
    "tr.bus_routes_optimised": P(25, noise=0.15, spread=0, decimals=0),
    "tr.accidents": P(320, noise=0.1, weekly=-0.05, growth=-0.04, decimals=0),
    "tr.road_deaths": P(60, noise=0.15, growth=-0.05, decimals=0),
    # urban renewal and greening
    "ur.green.new_green_space": P(86, noise=0.25, season="q4", samp=0.3),
    "ur.green.pocket_parks": P(9, noise=0.15, decimals=0),
    "ur.urban_village.projects": P(165, noise=0.01, growth=0.37, spread=0, decimals=0),
    "ur.old_communities_started": P(105, noise=0.2, decimals=0),
    "ur.renewal_projects_started": P(2.3, noise=0.3, spread=0, decimals=0),
    "ur.green.coverage": P(43.6, sd=0.3, noise=0, growth=0.01, spread=0.1, parts=0.0056, hi=100),
    "ur.green.park_area": P(48_000, noise=0.005, growth=0.03),
    "ur.sanitation.cleanliness": P(90, sd=3, noise=0, weekly=-0.01, spread=0.04, hi=100),
    "ur.lighting_on_rate": P(98.7, sd=0.5, noise=0, spread=0.003, hi=100, decimals=2),
    "ur.public_toilets": P(15_300, noise=0.005, growth=0.03, decimals=0),
    "ur.environment_issues_fixed": P(68_000, noise=0.1, decimals=0),
    # digital government
    "dg.apps": P(268, noise=0, growth=0.34, spread=0, decimals=0),
    "dg.twin.pipeline_coverage": P(100.3, sd=0.4, noise=0, growth=0.15, spread=0.01, parts=0.002, hi=100),
    "dg.twin.pipeline_km": P(62_500, noise=0.002, growth=0.15),
    "dg.sensors_connected": P(13_620_000, noise=0.003, growth=0.25, decimals=0),
    "dg.data_quality_pass_rate": P(100.6, sd=0.3, noise=0, spread=0, parts=0.0001, hi=100),
    "dg.data_sharing_rate": P(100.5, sd=0.3, noise=0, spread=0, hi=100),
    "dg.online_service_rate": P(85.5, sd=1, noise=0, growth=0.04, spread=0.04, parts=0.05, hi=100),
    "dg.yukuaiban_users": P(3_050, noise=0.002, growth=0.12, spread=0),
    "dg.high_freq_sharing": P(86, sd=1, noise=0, growth=0.2, spread=0, hi=100),
    # public safety
    "ps.fire.count": P(760, noise=0.08, season="winter", samp=0.3, growth=-0.1, decimals=0),
    "ps.fire.deaths": P(2.5, noise=0.3, season="winter", samp=0.3, decimals=0),
    "ps.fire.response_minutes": P(8.5, noise=0.15, spread=0.2),
    "ps.fire.hazards_found": P(2_100, noise=0.12, decimals=0),
    "ps.fire.hydrants_ok": P(97.5, sd=1, noise=0, spread=0.01, parts=0.002, hi=100),
    "ps.major_accidents": P(0, noise=0, decimals=0),
    "ps.work_accidents": P(40, noise=0.12, growth=-0.08, decimals=0),
    "ps.criminal_cases": P(5_500, noise=0.08, growth=-0.06, decimals=0),
    "ps.sense_of_security": P(97.8, sd=0.6, noise=0, spread=0.005, hi=100),
    # emergency
    "em.risk_points.total": P(30_500, noise=0.005, growth=0.03, decimals=0),
    "em.risk_points.red": P(45, noise=0.15, season="rain", samp=0.6, decimals=0),
    "em.risk_points.monitored": P(91, sd=1, noise=0, growth=0.08, spread=0.04, parts=0.00095, hi=100),
    "em.geohazard.alerts": P(3, noise=0.5, season="rain", samp=1.2, decimals=0),
    "em.response_minutes": P(9, noise=0.1, growth=-0.2, spread=0.2),
    "em.affected_population": P(40_000, noise=0.5, season="rain", samp=1.5, growth=-0.35, decimals=0),
    "em.direct_loss": P(18_000, noise=0.6, season="rain", samp=1.5, growth=-0.6, decimals=0),
    "em.shelter_capacity": P(19_000_000, noise=0.005, growth=0.04, decimals=0),
    "em.flood_rounds": P(2.4, noise=0.4, season="rain", samp=1.2, spread=0, decimals=0),
}


@dataclass(frozen=True, slots=True)
class Incident:
    """A scripted event near the end date: the value of a series is set for some periods.

    ``first``/``last`` count days back from the end date (0 = the end date itself). ``hours``
    limits an hourly series to those hours of the day. ``area`` may be a district or a street.
    """

    indicator: str
    area: str
    first: int
    last: int
    value: float
    hours: tuple[int, ...] = ()
    why: str = ""


#: The sample's story for its last week, so that the last day's scorecard shows red for good reason.
INCIDENTS: tuple[Incident, ...] = (
    # A water main bursts in Jiangbei on 30 December: bursts, outages and a flooded underpass.
    Incident("water.supply.pipe_bursts", "500105", 1, 1, 7, why="DN800 water main burst at Guanyinqiao"),
    Incident("water.supply.pipe_bursts", "500105", 0, 0, 3, why="follow-up bursts after re-pressurising"),
    Incident("water.supply.outage_households", "500105", 1, 1, 38_000, why="outage after the burst"),
    Incident("water.supply.outage_households", "500105", 0, 0, 12_500, why="outage after the burst"),
    Incident("drain.ponding.depth", "500105003", 1, 1, 32, why="underpass flooded by the burst main"),
    Incident("drain.ponding.depth", "500105003", 0, 0, 27, why="pumping still under way"),
    Incident("drain.ponding.depth", "500105005", 1, 1, 12, why="run-off from the burst"),
    # A gas leak in Shapingba on the morning of 31 December.
    Incident("gas.leak.lel", "500106", 0, 0, 22, hours=(8,), why="leak detected at a market"),
    Incident("gas.leak.lel", "500106", 0, 0, 38, hours=(9,), why="shut-off threshold passed"),
    Incident("gas.leak.lel", "500106", 0, 0, 41, hours=(10,), why="valve closed at 10:40"),
    Incident("gas.leak.lel", "500106", 0, 0, 12, hours=(11,), why="venting"),
    Incident("gas.alarms_handled", "500106", 0, 0, 14, why="alarms around the leak"),
    # Evening traffic jams a Yuzhong tunnel: CO hovers around the red cut (115) for six hours; the
    # alert's clear level (100) holds it as one episode until the fans bring it down at 22:00.
    *(
        Incident(
            "bt.tunnel.co", "500103", 0, 0, v, hours=(h,), why="rush-hour jam, ventilation at half power"
        )
        for h, v in ((16, 118), (17, 112), (18, 119), (19, 111), (20, 117), (21, 108), (22, 92))
    ),
    # A booster pump trips in Jiulongpo at 05:00: end-point pressure falls 0.015 MPa an hour, still
    # green at 10:00 (0.225), but the hour's early warning sees yellow (0.2) and orange (0.16) coming
    # within the 6-hour horizon; the standby pump is started at 11:00.
    *(
        Incident(
            "water.supply.pressure",
            "500107",
            0,
            0,
            round(0.3 - 0.015 * (h - 5), 3),
            hours=(h,),
            why="booster pump tripped, standby started at 11:00",
        )
        for h in range(5, 11)
    ),
    # Bridge deflection creeping up in Nan'an under heavy-lorry traffic.
    Incident("bt.bridge.deflection", "500108", 2, 2, 290, why="heavy lorries on a closed lane"),
    Incident("bt.bridge.deflection", "500108", 1, 1, 312, why="heavy lorries on a closed lane"),
    Incident("bt.bridge.deflection", "500108", 0, 0, 338, why="heavy lorries on a closed lane"),
)


@dataclass(frozen=True, slots=True)
class Drift:
    """A slow change over the last ``days`` days: the series ends at ``to`` times its usual value,
    reached in a straight line (noise and all), so that early warning has a trend to see."""

    indicator: str
    area: str
    days: int
    to: float
    why: str = ""


#: The sample's slow stories, which the day's colours do not show yet but the trends do.
DRIFTS: tuple[Drift, ...] = (
    # Residual chlorine leaving the Yubei plant falls as a dosing pump wears: still green (≥ 0.3 mg/L)
    # on 31 December, heading for yellow and then orange in the weeks after.
    Drift("water.supply.residual_chlorine", "500112", 40, 0.42, why="chlorine dosing pump wearing out"),
)

#: A regional winter smog episode over the last week: AQI and PM2.5 for every district (and the city).
#: Values by days before the end date; districts vary around them.
AQI_EPISODE: dict[int, float] = {6: 118, 5: 142, 4: 165, 3: 188, 2: 214, 1: 236, 0: 228}
PM25_EPISODE: dict[int, float] = {6: 88, 5: 108, 4: 126, 3: 143, 2: 164, 1: 181, 0: 175}
