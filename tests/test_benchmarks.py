"""The benchmark scripts run (tiny workloads, nothing written, no timing asserted)."""

from __future__ import annotations

import runpy
from pathlib import Path
from xml.etree import ElementTree

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize("script", sorted(BENCHMARKS.glob("bench_*.py")), ids=lambda p: p.name)
def test_benchmark_quick_run_reports_every_figure(
    script: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    namespace = runpy.run_path(str(script))
    assert namespace["main"](["--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "|" in out  # a results table was printed
    assert list(tmp_path.iterdir()) == []  # quick runs write no results


def test_flow_moves_measure_reports_rates_ratios_and_sizes() -> None:
    namespace = runpy.run_path(str(BENCHMARKS / "bench_flow_moves.py"))
    result = namespace["measure"](True)
    assert set(result["moves_per_second"]) >= {"cxflow_move", "statemachine_per_task"}
    assert all(rate > 0 for rate in result["moves_per_second"].values())
    assert result["ratios"]["cxflow_move_vs_statemachine_per_task"] > 0
    assert result["bytes_per_task"]["cxflow_task_after_6_moves"] > 0
    assert result["bytes_per_task"]["statemachine_instance"] > 0


def test_assignment_measure_reports_every_figure() -> None:
    namespace = runpy.run_path(str(BENCHMARKS / "bench_assignment.py"))
    result = namespace["measure"](True)
    strategies = set(namespace["STRATEGIES"])
    assert strategies == {"round-robin", "least-load", "skill-based", "skill-based+spread"}

    def check_latencies(row: dict[str, float]) -> None:
        assert row["decisions_per_s"] > 0
        assert 0 < row["p50_us"] <= row["p99_us"] <= row["p999_us"]

    for section in ("saturated", "poisson", "churn"):
        rows = result[section]
        assert {row["strategy"] for row in rows} == strategies, section
        for row in rows:
            check_latencies(row)
    agent_counts = result["parameters"]["agent_counts"]
    for strategy in strategies:
        charted = {r["agents"] for r in result["saturated"] if r["strategy"] == strategy}
        assert charted == set(agent_counts)
    assert {row["utilisation"] for row in result["poisson"]} == {0.5, 0.9, 1.1}
    assert {row["churn_per_minute"] for row in result["churn"]} == {0.01, 0.10}
    assert all(row["presence_changes"] > 0 for row in result["churn"])

    memory = result["memory"]
    conversation = memory["per_waiting_conversation"]
    assert 0 < conversation["structure_only"] < conversation["incl_ids"]
    assert all(memory["per_agent"][strategy] > 0 for strategy in strategies)

    assert {row["agents"] for row in result["naive"]} == set(agent_counts)
    for row in result["naive"]:
        assert row["ratio"] > 0
        assert row["naive_decisions_per_s"] > 0
        assert row["same_decisions"]  # the naive scan decides exactly as the scheduler
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
