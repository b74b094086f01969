"""The benchmark scripts run, and the figures they report are sane.

Each ``benchmarks/bench_*.py`` runs once, as a ``--quick`` smoke run (tiny
workloads) in its own process, and writes its figures with ``--json``. The
checks never assert on timing: every figure is finite and non-negative, rates
and sizes are positive, medians are no better than the best, percentiles are
ordered, counts add up to the workload's sizes, and the naive assignment
baseline makes exactly the scheduler's decisions.

Marked ``benchmark``, so deselected by default (``addopts`` in pyproject.toml);
run them with ``pytest -m benchmark``. With ``CXFLOW_BENCH_RESULTS=DIR`` the
checks read ``DIR/<name>.json`` instead of running the scripts: ``.ci/run``
runs ``scripts/run-benchmarks.sh --quick --json DIR`` and then these checks.
"""

from __future__ import annotations

import json
import math
import os
import runpy
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

pytestmark = pytest.mark.benchmark

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("bench_*.py"))
RESULTS_ENV = "CXFLOW_BENCH_RESULTS"


def bench_name(script: Path) -> str:
    """The results name of a script: ``bench_timers.py`` writes ``timers.json``."""
    return script.stem.removeprefix("bench_")


@dataclass
class Run:
    result: dict[str, Any]
    """The figures, as read back from the JSON file."""
    namespace: dict[str, Any]
    """The script's globals (``render``, ``chart``, ``STRATEGIES``, ...)."""
    stdout: str | None
    """What the run printed; ``None`` when the figures come from CXFLOW_BENCH_RESULTS."""
    written: list[str]
    """What the quick run wrote to its ``--out`` directory (it must write nothing)."""


def _run(script: Path, tmp: Path) -> Run:
    out, json_dir = tmp / "out", tmp / "json"
    command = [sys.executable, str(script), "--quick", "--out", str(out), "--json", str(json_dir)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{script.name} failed:\n{done.stdout}\n{done.stderr}"
    return Run(
        result=json.loads((json_dir / f"{bench_name(script)}.json").read_text()),
        namespace=runpy.run_path(str(script)),
        stdout=done.stdout,
        written=sorted(p.name for p in out.iterdir()) if out.exists() else [],
    )


def _load(script: Path, results: Path) -> Run:
    path = results / f"{bench_name(script)}.json"
    assert path.is_file(), f"{script.name} wrote no {path}"
    return Run(json.loads(path.read_text()), runpy.run_path(str(script)), None, [])


@pytest.fixture(scope="module")
def run_of(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Run]:
    """The run of ``bench_<name>.py``: each script runs (or is read) once per module."""
    given = os.environ.get(RESULTS_ENV)
    runs: dict[str, Run] = {}

    def run_of(name: str) -> Run:
        if name not in runs:
            script = BENCHMARKS / f"bench_{name}.py"
            runs[name] = (
                _load(script, Path(given)) if given else _run(script, tmp_path_factory.mktemp(name))
            )
        return runs[name]

    return run_of


def numbers(value: Any, path: str = "result") -> Iterator[tuple[str, float]]:
    """Every number in ``value`` (booleans excepted), with where it is."""
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from numbers(item, f"{path}[{key!r}]")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from numbers(item, f"{path}[{index}]")


def quick_flags(value: Any) -> Iterator[Any]:
    """The value of every ``"quick"`` key in ``value``."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "quick":
                yield item
            yield from quick_flags(item)
    elif isinstance(value, list):
        for item in value:
            yield from quick_flags(item)


def rate_and_median(rates: dict[str, float], key: str) -> None:
    """``key`` is a best-of-N rate and ``key_median`` its median: 0 < median <= best."""
    assert 0 < rates[f"{key}_median"] <= rates[key], key


def ordered_percentiles(row: dict[str, float]) -> None:
    assert 0 < row["p50_us"] <= row["p99_us"] <= row["p999_us"], row
    # max_us is rounded to 0.1 and the percentiles to 0.01: allow both roundings
    # (and the float error of the sum: 96.6 + 0.05 < 96.65).
    assert row["p999_us"] <= row["max_us"] + 0.05 + 0.005 + 1e-9, row


# -- every script -----------------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_a_quick_run_prints_its_table_and_writes_no_results(
    script: Path, run_of: Callable[[str], Run]
) -> None:
    run = run_of(bench_name(script))
    table = run.namespace["render"](run.result)
    assert "|---" in table  # a Markdown table
    if run.stdout is not None:
        assert table in run.stdout  # the JSON holds the figures the table printed
        assert run.written == []  # quick runs write no results


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_figure_is_finite_and_non_negative(
    script: Path, run_of: Callable[[str], Run]
) -> None:
    run = run_of(bench_name(script))
    assert run.result["benchmark"] == bench_name(script)
    assert run.result["machine"]["python"]
    bad = [(path, x) for path, x in numbers(run.result) if not (math.isfinite(x) and x >= 0)]
    assert bad == []
    if run.stdout is not None:
        assert set(quick_flags(run.result)) == {True}


# -- per script -------------------------------------------------------------------------


def test_flow_moves_reports_rates_ratios_and_sizes(run_of: Callable[[str], Run]) -> None:
    result = run_of("flow_moves").result
    rates = result["moves_per_second"]
    assert set(rates) >= {"cxflow_move", "statemachine_per_task", "service_move_memory_store"}
    assert all(rate > 0 for rate in rates.values())
    for key in ("cxflow_move", "cxflow_check", "statemachine_per_task"):
        rate_and_median(rates, key)
    ratios = result["ratios"]
    assert ratios["cxflow_move_vs_statemachine_per_task"] == pytest.approx(
        rates["cxflow_move"] / rates["statemachine_per_task"], rel=0.02, abs=0.051
    )
    assert ratios["cxflow_check_vs_statemachine_per_task"] == pytest.approx(
        rates["cxflow_check"] / rates["statemachine_per_task"], rel=0.02, abs=0.051
    )
    assert result["bytes_per_task"]["cxflow_task_after_6_moves"] > 0
    assert result["bytes_per_task"]["statemachine_instance"] > 0


def test_stores_report_consistent_rates_for_every_store(run_of: Callable[[str], Run]) -> None:
    result = run_of("stores").result
    stores = result["stores"]
    assert set(stores) >= {"memory", "sqlite_file"}
    assert ("postgresql" in stores) == (result["postgresql"] == "measured")
    for name, row in stores.items():
        for what in ("create", "move"):
            rate, ms = row[f"{what}s_per_second"], row[f"ms_per_{what}"]
            assert rate > 0, name
            # both are rounded: the rate to 1/s, the time to 0.001 ms
            assert ms == pytest.approx(1000 / rate, rel=0.01, abs=0.0006), (name, what)


def test_timers_report_rates_sizes_and_counts_that_add_up(run_of: Callable[[str], Run]) -> None:
    result = run_of("timers").result
    work = result["workload"]
    timers, cancelled, pending = work["timers"], work["cancelled"], work["pending_when_measured"]
    assert cancelled == int(timers * work["cancelled_fraction"])
    assert pending == timers - cancelled
    assert work["moved"] == int(pending * work["moved_fraction_of_rest"])
    steps_per_day = 86_400 // work["fire_due_step_seconds"]
    assert work["fire_due_calls"] == work["spread_days"] * steps_per_day + 1

    rates = result["ops_per_second"]
    for phase in ("schedules", "cancels", "moves", "fires"):
        rate_and_median(rates, phase)

    size = result["bytes_per_pending_timer"]
    assert 0 < size["structure_only"] < size["incl_ids"]
    assert size["peak_structure_only"] >= size["structure_only"]
    assert size["peak_incl_ids"] >= size["incl_ids"]
    assert 0 < size["structure_only_per_scheduled"] <= size["structure_only"]
    assert result["memory"]["process_peak_rss_mib"] > 0
    assert all(isinstance(t["met"], bool) for t in result["targets"].values())


def test_calendar_reports_rates_latencies_and_spans(run_of: Callable[[str], Run]) -> None:
    result = run_of("calendar").result
    per_calendar = result["per_second"]
    assert len(per_calendar) == 2
    for name, row in per_calendar.items():
        for path in ("add_warm", "add_cold", "add_uncached", "elapsed"):
            rate_and_median(row, path)
        assert row["first_add_on_new_calendar_us"] > 0, name
        # durations are 0..9 business days: "about two calendar weeks" at most
        assert 0 < row["median_span_days"] <= row["largest_span_days"] < 31, name
    assert isinstance(result["target_met"], bool)


def test_assignment_reports_every_figure(run_of: Callable[[str], Run]) -> None:
    run = run_of("assignment")
    result, namespace = run.result, run.namespace
    params = result["parameters"]
    strategies = set(namespace["STRATEGIES"])
    assert strategies == {"round-robin", "least-load", "skill-based", "skill-based+spread"}

    def check_latencies(row: dict[str, Any]) -> None:
        assert row["decisions_per_s"] > 0
        ordered_percentiles(row)

    for section in ("saturated", "poisson", "churn"):
        rows = result[section]
        assert {row["strategy"] for row in rows} == strategies, section
        for row in rows:
            check_latencies(row)
    agent_counts = params["agent_counts"]
    for strategy in strategies:
        charted = {r["agents"] for r in result["saturated"] if r["strategy"] == strategy}
        assert charted == set(agent_counts)

    # saturation: every close frees one slot, the backlog fills it (at most one decision)
    for row in result["saturated"]:
        planned = params["saturated_decisions"][str(row["agents"])]
        made = row["decisions"] + row["closes_without_decision"]
        if "without_gc_freeze" in row:
            unfrozen = row["without_gc_freeze"]
            made += unfrozen["decisions"] + unfrozen["closes_without_decision"]
        assert made == planned, row
        assert row["closes_without_decision"] == 0, row
        assert 0 < row["decisions_per_s"] <= row["decisions_per_s_best"]
        assert row["arrivals_per_s"] > 0
        ordered_percentiles(row["arrival"])

    assert {row["utilisation"] for row in result["poisson"]} == set(params["utilisations"])
    assert {row["churn_per_minute"] for row in result["churn"]} == set(
        params["churn_rates_per_minute"]
    )
    for section, arrivals in (
        ("poisson", params["poisson_arrivals"]),
        ("churn", params["churn_arrivals"]),
    ):
        for row in result[section]:
            assert row["arrivals"] == arrivals, row
            # every timed arrival was decided (at least once) or is still waiting
            assert row["decisions"] + row["waiting_at_end"] >= arrivals, row
            assert 0 < row["single_decision_calls"] <= row["decisions"], row
            assert row["new_needs"] > 0, row
    assert all(row["presence_changes"] == 0 for row in result["poisson"])
    assert all(row["presence_changes"] > 0 for row in result["churn"])

    memory = result["memory"]
    conversation = memory["per_waiting_conversation"]
    assert conversation["conversations"] == params["memory_conversations"]
    assert 0 < conversation["structure_only"] < conversation["incl_ids"]
    assert conversation["peak_structure_only"] >= conversation["structure_only"]
    assert memory["per_agent"]["agents"] == params["memory_agents"]
    assert all(memory["per_agent"][strategy] > 0 for strategy in strategies)

    assert {row["agents"] for row in result["naive"]} == set(agent_counts)
    for row in result["naive"]:
        naive_decisions = params["naive_decisions"][str(row["agents"])]
        assert row["naive_decisions"] == naive_decisions
        assert row["textbook_decisions"] == max(1, naive_decisions // 4)
        assert row["ratio"] > 0
        assert row["naive_decisions_per_s"] > 0
        assert row["textbook_scans_per_decision"] >= 1
        assert row["same_decisions"] is True  # the naive scan decides exactly as the scheduler
    growth = result["growth"]
    assert set(growth["per_10x_agents"]) == strategies
    assert all(r > 0 for ratios in growth["per_10x_agents"].values() for r in ratios.values())
    assert growth["per_10x_backlog"] > 0
    assert growth["per_10x_agents_and_backlog"] > 0
    assert set(result["targets"]) == {
        "decisions_per_s",
        "p99_us",
        "bytes_per_waiting_conversation",
        "growth_per_10x_agents",
        "vs_naive_scan",
    }
    assert all(isinstance(t["met"], bool) for t in result["targets"].values())
    svg = namespace["chart"](result)
    assert ElementTree.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg"  # well-formed
    assert all(strategy in svg for strategy in strategies)


def test_consumers_report_a_rate_per_store_and_batch_size(run_of: Callable[[str], Run]) -> None:
    result = run_of("consumers").result
    rows = [*result["memory"], *result["sql"].values()]
    assert "sqlite_file" in result["sql"]
    for row in rows:
        assert 0 < row["events_per_second_median"] <= row["events_per_second"], row
        assert row["batch_size"] >= 1
    assert set(result["targets"]) == {"memory", *result["sql"]}
    best_memory = max(row["events_per_second"] for row in result["memory"])
    assert result["targets"]["memory"]["measured"] == best_memory
    assert sum(result["workload"]["event_types"].values()) == result["workload"]["memory_events"]
