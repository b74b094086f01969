#!/usr/bin/env python3
"""Run the fuzz suite (tests/fuzz) and write its figures as JSON.

Usage: python scripts/fuzz-figures.py [--out PATH] [--profile dev|ci] [pytest args...]

The figures (calls made, accepted, refused, entry points covered, stores,
escapes, known gaps, disagreements) are what the suite counted; the default
output is benchmarks/results/fuzz.json. PostgreSQL is included when
CXFLOW_TEST_POSTGRES_URL is set (``eval "$(scripts/pg-test-server.sh start)"``).
Exits with pytest's status, so a run with escapes fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fuzz.json"))
    parser.add_argument("--profile", choices=["dev", "ci"], default=None,
                        help="hypothesis profile (default: as tests/conftest.py decides)")
    args, pytest_args = parser.parse_known_args()
    out = Path(args.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CXFLOW_FUZZ_FIGURES=str(out))
    if args.profile:
        env["CXFLOW_HYPOTHESIS_PROFILE"] = args.profile
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
               str(ROOT / "tests" / "fuzz"), *pytest_args]
    status = subprocess.call(command, cwd=ROOT, env=env)
    if out.exists():
        figures = json.loads(out.read_text(encoding="utf-8"))
        figures["hypothesis_profile"] = args.profile or env.get("CXFLOW_HYPOTHESIS_PROFILE")
        figures["pytest_status"] = status
        out.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(
            f"calls: {figures['calls']}, entry points: {figures['entry_points']}, "
            f"stores: {', '.join(figures['stores'])}, escapes: {figures['escapes']} "
            f"(known gaps: {figures['known_gaps']}, disagreements: "
            f"{figures['disagreements']}) -> {out}"
        )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
