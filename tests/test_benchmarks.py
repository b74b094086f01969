"""The benchmark scripts run (tiny workloads, nothing written, no timing asserted)."""

from __future__ import annotations

import runpy
from pathlib import Path

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
