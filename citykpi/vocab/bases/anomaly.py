"""Basis ``anomaly``: a robust z-score against a seasonal baseline of comparable earlier periods.

The baseline is the median and the MAD (median absolute deviation, × 1.4826 so that it estimates
a standard deviation for normal data) of the value in the last N comparable periods: at day grain
the same weekday and the same kind of day in China's official calendar (a public holiday is compared
with holidays, an adjusted working day 调休 with working days), at coarser grains the previous
periods. The engine computes it set-based (``engine/forecast.py``); this entry only reads it.
"""

from citykpi.vocab.bases._entry import BASELINE_ALIAS, Basis
from citykpi.vocab.bases.registry import BASES


def _robust_z(value: str, target: str, limit: str, previous: str, last_year: str, change_unit: str) -> str:
    b = BASELINE_ALIAS
    # no spread in the baseline: the value equal to its median is 0, anything else has no z-score
    return f"CASE WHEN {b}.scale > 0 THEN ({value} - {b}.med) / {b}.scale WHEN {value} = {b}.med THEN 0.0 END"


ANOMALY = BASES.register(
    Basis(
        name="anomaly",
        summary="robust z-score against the median of comparable earlier periods (same weekday and kind "
        "of day at day grain; `baseline` periods, default 8)",
        requires=("seasonal_baseline",),
        label=lambda unit, change_unit: " σ vs seasonal baseline",
        not_applicable_reason="too few comparable earlier periods for a seasonal baseline, or none that vary",
        sql=_robust_z,
    )
)
