"""Business-hours deadlines: ``BusinessCalendar.add`` and ``elapsed`` per second.

Run from the repository root (after ``pip install -e '.[test]'``)::

    python benchmarks/bench_calendar.py            # full run, writes results
    python benchmarks/bench_calendar.py --quick    # smoke run, writes nothing

All figures come from one run on one machine. Results go to
``benchmarks/results/calendar.json`` and ``calendar.md``.

Workload, per calendar (the same seeded random inputs for every path):

- ``Asia/Seoul``, Monday to Friday 09:00-12:00 and 13:00-18:00 (a lunch
  break), Chuseok 2026-09-24..26 and a few other holidays closed;
- ``America/New_York``, Monday to Friday 09:00-17:00 (the year crosses both
  DST changes);
- starts uniformly random over 2026 (to the microsecond), durations uniformly
  random from zero to nine business days, so a deadline lands at most about
  two calendar weeks after its start (the largest span is reported);
- ``add warm``: the calendar's per-date cache already holds the year;
- ``add cold``: a new calendar per repeat, so the run also computes every
  date's open intervals once (time zone arithmetic) as it meets them;
- ``add uncached``: the worst case, starts uniformly random over 2000-2099 on
  a new calendar per repeat, so nearly every call computes the ~15 dates it
  walks (a host computing deadlines near "now" never sees this);
- ``first add``: the latency of the very first ``add`` on a new calendar
  (about fifteen dates computed), median over many calendars;
- ``elapsed``: random starts, ends up to fourteen calendar days later, warm.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import benchkit
from benchkit import best_rate, machine_info

from cxflow.timers.calendar import BusinessCalendar

YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
YEAR_US = 365 * 86_400 * 1_000_000
CENTURY_START = datetime(2000, 1, 1, tzinfo=UTC)
BUSINESS_DAYS = 9
TARGET_RATE = 50_000
SEOUL_HOLIDAYS = [
    date(2026, 1, 1),
    date(2026, 2, 16),
    date(2026, 2, 17),
    date(2026, 2, 18),
    date(2026, 3, 2),
    date(2026, 5, 5),
    date(2026, 6, 3),
    date(2026, 8, 17),
    date(2026, 9, 24),
    date(2026, 9, 25),
    date(2026, 9, 26),
    date(2026, 10, 5),
    date(2026, 10, 9),
    date(2026, 12, 25),
]


def calendars() -> dict[str, tuple[Callable[[], BusinessCalendar], timedelta]]:
    """Name -> (a factory for a fresh calendar, open time per business day)."""
    return {
        "Asia/Seoul, lunch break, holidays": (
            lambda: BusinessCalendar.weekdays(
                "Asia/Seoul", [("09:00", "12:00"), ("13:00", "18:00")], holidays=SEOUL_HOLIDAYS
            ),
            timedelta(hours=8),
        ),
        "America/New_York, 09:00-17:00": (
            lambda: BusinessCalendar.weekdays("America/New_York", [("09:00", "17:00")]),
            timedelta(hours=8),
        ),
    }


def inputs(
    count: int, per_day: timedelta, seed: int, years: int = 1
) -> tuple[list[datetime], list[timedelta], list[datetime]]:
    """Seeded starts over 2026 (or ``years`` from 2000), durations up to
    ``BUSINESS_DAYS`` business days, and ends up to fourteen calendar days
    after each start."""
    rng = random.Random(seed)
    longest = per_day * BUSINESS_DAYS // timedelta(microseconds=1)
    first = YEAR_START if years == 1 else CENTURY_START
    starts = [first + timedelta(microseconds=rng.randrange(YEAR_US * years)) for _ in range(count)]
    durations = [timedelta(microseconds=rng.randrange(longest + 1)) for _ in range(count)]
    ends = [s + timedelta(seconds=rng.uniform(0, 14 * 86_400)) for s in starts]
    return starts, durations, ends


def add_run(
    calendar: Callable[[], BusinessCalendar], starts: list[datetime], durations: list[timedelta]
) -> Callable[[], int]:
    def run() -> int:
        add = calendar().add
        for start, duration in zip(starts, durations, strict=True):
            add(start, duration)
        return len(starts)

    return run


def elapsed_run(
    calendar: BusinessCalendar, starts: list[datetime], ends: list[datetime]
) -> Callable[[], int]:
    def run() -> int:
        elapsed = calendar.elapsed
        for start, end in zip(starts, ends, strict=True):
            elapsed(start, end)
        return len(starts)

    return run


def first_add_us(
    factory: Callable[[], BusinessCalendar],
    starts: list[datetime],
    durations: list[timedelta],
    count: int,
) -> float:
    """Median microseconds of the first ``add`` on a freshly built calendar."""
    samples = []
    for start, duration in zip(starts[:count], durations[:count], strict=True):
        calendar = factory()
        begin = time.perf_counter()
        calendar.add(start, duration)
        samples.append((time.perf_counter() - begin) * 1e6)
    return statistics.median(samples)


def measure(quick: bool) -> dict[str, Any]:
    count, repeats, fresh = (500, 2, 20) if quick else (50_000, 5, 500)
    results: dict[str, Any] = {}
    for seed, (name, (factory, per_day)) in enumerate(calendars().items()):
        starts, durations, ends = inputs(count, per_day, seed)
        warm = factory()
        for start, duration in zip(starts, durations, strict=True):  # fill the cache
            warm.add(start, duration)
        spans = [
            (warm.add(s, d) - s) / timedelta(days=1) for s, d in zip(starts, durations, strict=True)
        ]
        warm_best, warm_median = best_rate(add_run(lambda w=warm: w, starts, durations), repeats)
        cold_best, cold_median = best_rate(add_run(factory, starts, durations), repeats)
        far_starts, far_durations, _ = inputs(count // 5, per_day, seed + 100, years=100)
        uncached_best, uncached_median = best_rate(
            add_run(factory, far_starts, far_durations), repeats
        )
        elapsed_best, elapsed_median = best_rate(elapsed_run(warm, starts, ends), repeats)
        results[name] = {
            "add_warm": round(warm_best),
            "add_warm_median": round(warm_median),
            "add_cold": round(cold_best),
            "add_cold_median": round(cold_median),
            "add_uncached": round(uncached_best),
            "add_uncached_median": round(uncached_median),
            "elapsed": round(elapsed_best),
            "elapsed_median": round(elapsed_median),
            "first_add_on_new_calendar_us": round(
                first_add_us(factory, starts, durations, fresh), 1
            ),
            "largest_span_days": round(max(spans), 2),
            "median_span_days": round(statistics.median(spans), 2),
        }
    slowest = min(min(r["add_warm_median"], r["add_cold_median"]) for r in results.values())
    return {
        "benchmark": "calendar",
        "machine": machine_info(),
        "workload": {
            "operations_per_repeat": count,
            "repeats": repeats,
            "fresh_calendars_for_first_add": fresh,
            "starts": "uniform over 2026 (uncached row: over 2000-2099)",
            "durations": f"uniform, 0 to {BUSINESS_DAYS} business days",
            "elapsed_ends": "uniform, 0 to 14 calendar days after the start",
            "quick": quick,
        },
        "per_second": results,
        "target": ">= 50k business-hours deadlines/s over a two-week horizon",
        "target_met": slowest >= TARGET_RATE,
    }


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"Measured on {m['cpu'] or 'unknown CPU'} ({m['cpus']} CPUs), "
        f"{m['implementation']} {m['python']}, {m['platform']}; one process, one run.",
        "",
        "| calendar | path | ops/s (best) | ops/s (median) |",
        "|---|---|---:|---:|",
    ]
    for name, r in result["per_second"].items():
        lines += [
            f"| {name} | `add` warm cache | {r['add_warm']:,} | {r['add_warm_median']:,} |",
            f"| {name} | `add` cold cache (new calendar per run) "
            f"| {r['add_cold']:,} | {r['add_cold_median']:,} |",
            f"| {name} | `add` uncached (starts over 2000-2099, worst case) "
            f"| {r['add_uncached']:,} | {r['add_uncached_median']:,} |",
            f"| {name} | `elapsed` (up to 14 days) | {r['elapsed']:,} | {r['elapsed_median']:,} |",
        ]
    lines += [
        "",
        "| calendar | first `add` on a new calendar (µs, median) "
        "| deadline span, median / largest (days) |",
        "|---|---:|---:|",
    ]
    for name, r in result["per_second"].items():
        lines.append(
            f"| {name} | {r['first_add_on_new_calendar_us']} "
            f"| {r['median_span_days']} / {r['largest_span_days']} |"
        )
    w = result["workload"]
    lines += [
        "",
        f"Workload: starts {w['starts']}; durations {w['durations']}; "
        f"{w['operations_per_repeat']:,} operations per repeat, {w['repeats']} repeats.",
        "",
        f"Target: {result['target']} — "
        f"{'met' if result['target_met'] else 'NOT met'} "
        "(slowest median of the warm and cold `add` rows).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return benchkit.main(argv, name="calendar", doc=__doc__ or "", measure=measure, render=render)


if __name__ == "__main__":
    raise SystemExit(main())
