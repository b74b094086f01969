"""What every benchmark script shares: the machine description, best-of-N
rates, and the command line (``--quick`` smoke runs, ``--out`` for results,
``--json`` for the figures of any run, quick ones included)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def machine_info() -> dict[str, Any]:
    """Python, platform and CPU of this machine, for the results files."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
    }


def best_rate(run: Callable[[], int], repeats: int) -> tuple[float, float]:
    """Run ``run`` (returns operations done) ``repeats`` times; return the best
    and the median rate in operations per second."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = run()
        rates.append(done / (time.perf_counter() - start))
    return max(rates), statistics.median(rates)


def main(
    argv: list[str] | None,
    *,
    name: str,
    doc: str,
    measure: Callable[[bool], dict[str, Any]],
    render: Callable[[dict[str, Any]], str],
) -> int:
    """Parse ``--quick``/``--out``/``--json``, measure, print the table and
    (unless quick) write ``<name>.json`` and ``<name>.md`` to the results
    directory; with ``--json DIR``, also write ``<name>.json`` to ``DIR``."""
    parser = argparse.ArgumentParser(description=doc.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run, writes no results")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument(
        "--json",
        type=Path,
        metavar="DIR",
        help=f"also write {name}.json to DIR, even with --quick (for checking the figures)",
    )
    args = parser.parse_args(argv)
    result = measure(args.quick)
    table = render(result)
    print(table)
    if not args.quick:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        (args.out / f"{name}.md").write_text(table + "\n")
        print(f"\nwrote {args.out / f'{name}.json'} and {args.out / f'{name}.md'}")
    if args.json is not None:
        args.json.mkdir(parents=True, exist_ok=True)
        (args.json / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0
