"""A flow A/B test: one task type, two flows, a deterministic split.

``FlowExperiment`` maps a task type to two or more flows with integer
weights. Each new task gets a variant from a hash of the task type and the
task id, so the same id always lands on the same flow, in every process.
The chosen task type is stored on the task and on its ``task.created`` event,
so statistics can compare the variants.

Run it with ``python examples/ab_test.py``.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from cxflow import (
    Flow,
    FlowExperiment,
    FlowVariant,
    MemoryStore,
    TaskQuery,
    TaskService,
    TestClock,
    default_flow,
)

TENANT = "acme"


def main() -> None:
    service = TaskService(MemoryStore(), TestClock(datetime(2024, 5, 6, 9, 0, tzinfo=UTC)))
    # Variant A: the stock exchange/return template. Variant B: the same
    # procedure without the separate inspection step.
    service.create_flow(TENANT, default_flow("exchange_return", flow_id="returns-a"), by="admin")
    stock = default_flow("exchange_return")
    lean = Flow(
        id="returns-b",
        name="Returns, no inspection",
        statuses=[status for status in stock.statuses if status.key != "inspecting"],
    )
    service.create_flow(TENANT, lean, by="admin")
    print(f"variant A: {len(stock.statuses)} statuses, variant B: {len(lean.statuses)}")

    experiment = FlowExperiment(
        task_type="return",
        variants=[FlowVariant(flow_id="returns-a", weight=3), FlowVariant(flow_id="returns-b")],
    )
    for number in range(200):
        task = service.create_task_in_experiment(
            TENANT, experiment, title=f"Return #{number}", by="bot", task_id=f"R-{number}"
        )
        assert task.flow_id == experiment.choose(task.id)

    page = service.list_tasks(TENANT, TaskQuery(limit=1000))
    split = Counter(task.flow_id for task in page.items)
    print(f"{page.total} tasks of type {experiment.task_type!r}:")
    for flow_id, count in sorted(split.items()):
        print(f"  {flow_id}: {count} ({count / page.total:.0%})")
    print("R-7 always goes to", experiment.choose("R-7"))


if __name__ == "__main__":
    main()
