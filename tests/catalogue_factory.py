"""Generate large, valid catalogues for scale tests of `citykpi check` (and benchmarks)."""

from __future__ import annotations

from pathlib import Path

_DOMAINS = (
    "environment",
    "water",
    "power",
    "gas",
    "transport",
    "drainage",
    "safety",
    "economy",
    "livelihood",
)


def _indicator(domain: str, i: int, k: int) -> str:
    iid = f"{domain}.gen.i{i:05d}"
    variant = k % 6 if k >= 6 else 0
    lines = [
        f"  - id: {iid}",
        f"    name: {{zh: 生成指标{i}, en: Generated indicator {i}}}",
        f"    kind: {'kpi' if i % 2 else 'vital_sign'}",
        f"    domain: {domain}",
        "    unit: '%'" if variant in (1, 2) else "    unit: count",
        f"    description: Generated indicator number {i} for scale tests.",
        "    owner: 市大数据发展局",
        "    tags: [generated]",
        "    levels: [city, district, street]",
        "    frequency: daily",
        "    max_staleness: 2d",
    ]
    if variant == 0:
        lines += [
            "    direction: lower_is_better",
            "    thresholds: {blue: 50, yellow: 100, orange: 150, red: 200, for_periods: 2,",
            "                 overrides: [{level: street, red: 250}]}",
            "    rollup: {time: sum, area: sum}",
        ]
    elif variant == 1:
        lines += [
            "    direction: higher_is_better",
            "    thresholds: {basis: percent_of_target, blue: 95, yellow: 90, orange: 85, red: 80}",
            "    target: {value: 98, due: 2025-12-31, baseline: 90, baseline_date: 2025-01-01, method: time_proportional}",
            "    rollup: {time: last, area: ratio_of_sums}",
            "    value: {observed: {with_parts: true, factor: 100}}",
        ]
    elif variant == 2:
        lines += [
            "    direction: band",
            "    thresholds: {green: [0.3, 2.0], yellow: [0.2, 4.0], orange: [0.1, 5]}",
            "    rollup: {time: mean, area: weighted_mean, weight: population}",
        ]
    elif variant == 3:
        prev = f"{domain}.gen.i{i - 3:05d}"
        lines += [
            "    direction: lower_is_better",
            "    thresholds: {yellow: 10, red: 20}",
            "    rollup: {time: count_where, where: 'value <= 100', area: recompute}",
            f"    value: {{from: {prev}}}",
        ]
    elif variant == 4:
        a, b = f"{domain}.gen.i{i - 4:05d}", f"{domain}.gen.i{i - 1:05d}"
        lines += [
            "    direction: higher_is_better",
            "    thresholds: {basis: change_last_year, yellow: 0, red: -5}",
            f"    value: {{formula: 'a / nullif(b, 0) * 100', inputs: {{a: {a}, b: {b}}}}}",
        ]
    else:
        lines += [
            "    direction: higher_is_better",
            "    thresholds: {yellow: 90, red: 80}",
            "    rollup: {time: last, area: recompute}",
            "    value:",
            "      measure: {source: cases, numerator: 'count_if(closed_at <= due_at)',",
            "                denominator: 'count(*)', filter: \"category = 'noise'\", factor: 100}",
        ]
    return "\n".join(lines) + "\n"


def write_catalogue(root: Path, n_indicators: int = 5400, per_file: int = 150) -> Path:
    """Write a valid catalogue of ``n_indicators`` indicators (+ a source and an index) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    per_domain = -(-n_indicators // len(_DOMAINS))
    written = 0
    for d, domain in enumerate(_DOMAINS):
        count = min(per_domain, n_indicators - written)
        for start in range(0, count, per_file):
            body = ["schema_version: 1", "indicators:"]
            body += [
                _indicator(domain, d * 100000 + k, k) for k in range(start, min(start + per_file, count))
            ]
            (root / f"{domain}_{start // per_file:03d}.yaml").write_text("\n".join(body), encoding="utf-8")
        written += count
    (root / "sources.yaml").write_text(
        "sources:\n  - id: cases\n    time_column: created_at\n    area_column: street_id\n    key: case_id\n"
        "    columns: {case_id: text, created_at: timestamp, due_at: timestamp, closed_at: timestamp,\n"
        "              street_id: text, category: text}\n",
        encoding="utf-8",
    )
    comps = "\n".join(
        f"      - {{ref: {d}.gen.i{i * 100000:05d}, weight: 1}}" for i, d in enumerate(_DOMAINS)
    )
    (root / "indices.yaml").write_text(
        "indices:\n  - id: index.generated\n    name: {zh: 生成指数, en: Generated index}\n"
        "    description: All domains.\n    components:\n" + comps + "\n",
        encoding="utf-8",
    )
    return root
