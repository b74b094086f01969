"""The demo (``python -m cxflow demo``) runs and tells a consistent day."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from cxflow.demo import TENANT, run_demo

SRC = Path(__file__).resolve().parent.parent / "src"


def test_demo_routes_the_chat_queue() -> None:
    lines: list[str] = []
    service = run_demo(lines.append)
    assert lines[0].endswith("tasks opened")
    queue = lines[lines.index("== chat queue ==") + 1 :]
    assigned = Counter(line.split()[1] for line in queue if " -> " in line)
    assert set(assigned.values()) == {1}  # no chat assigned twice
    assert "04:35  chat-2 -> mina" in queue  # enterprise billing: the billing expert
    back = [line.split()[1] for line in queue if "back to the queue (agent_offline)" in line]
    assert back == ["chat-1", "chat-6"]
    assert queue[-1].startswith("why is chat-1 waiting?")
    stored = {r.conversation_id: r.agent for r in service.store.list_routings(TENANT)}  # type: ignore[attr-defined]
    assert "chat-2" not in stored  # closed
    assert stored["chat-1"] is None
    assert stored["chat-4"] == "mina"


def test_demo_command_runs() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run(
        [sys.executable, "-m", "cxflow", "demo"], capture_output=True, text=True, check=True,
        env=env,
    )
    assert "== chat queue ==" in result.stdout
