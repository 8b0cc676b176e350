"""``python -m citykpi.sample``: regenerate the sample city's data files (deterministic)."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from citykpi.sample.generate import DEFAULT_SEED, generate


def main(argv: list[str] | None = None) -> int:
    """Parse the options, generate the files, print a summary."""
    parser = argparse.ArgumentParser(
        prog="python -m citykpi.sample",
        description="Generate the sample city's observations and hotline cases (deterministic).",
    )
    parser.add_argument("--out", type=Path, default=Path("sample_data/generated"), help="output directory")
    parser.add_argument("--days", type=int, default=430, help="days of daily history (default 430)")
    parser.add_argument("--end", type=date.fromisoformat, default=date(2025, 12, 31), help="last day (ISO)")
    parser.add_argument("--seed", default=DEFAULT_SEED, help="seed mixed into every hash")
    parser.add_argument("--catalogue", type=Path, default=Path("indicators"), help="catalogue folder")
    args = parser.parse_args(argv)
    result = generate(args.out, end=args.end, days=args.days, seed=args.seed, catalogue_path=args.catalogue)
    for f in result.files:
        print(f"{f.rows:>10,}  {args.out / f.path}")
    print(
        f"{result.observations:,} observations and {result.hotline_cases:,} hotline cases "
        f"in {result.seconds:.1f} s; how to ingest each file: {args.out / 'manifest.json'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
