"""Edit a flow that has live tasks: the refusal, then the relocation.

Flows are versioned. Disabling a status that live tasks sit in would strand
them, so ``TaskService.edit_flow`` refuses the edit (and writes nothing) until
the caller says where those tasks go. This script shows both calls and the
history entry the relocation leaves on a task.

Run it with ``python examples/flow_edit_and_relocate.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import attrs

from cxflow import (
    Flow,
    MemoryStore,
    Status,
    StatusKind,
    TaskService,
    TestClock,
    ValidationError,
)

TENANT = "acme"


def main() -> None:
    clock = TestClock(datetime(2024, 5, 6, 9, 0, tzinfo=UTC))
    service = TaskService(MemoryStore(), clock)
    flow = service.create_flow(
        TENANT,
        Flow(
            id="inquiry",
            name="Partner inquiry",
            statuses=[
                Status(key="new", label="New", kind=StatusKind.NOT_STARTED),
                Status(key="triage", label="Triage", kind=StatusKind.IN_PROGRESS),
                Status(key="working", label="Working", kind=StatusKind.IN_PROGRESS),
                Status(key="done", label="Done", kind=StatusKind.COMPLETED_SUCCESS),
            ],
        ),
        by="admin",
    )
    for number in (1, 2):
        service.create_task(
            TENANT, flow_id="inquiry", title=f"Inquiry {number}", by="mina", task_id=f"I-{number}"
        )
    service.move_task(TENANT, "I-1", "triage", by="mina")
    print(f"v{flow.version}: I-1 in 'triage', I-2 in 'new'")

    # Switch the "triage" status OFF in the next version.
    statuses = [
        attrs.evolve(s, enabled=False) if s.key == "triage" else s for s in flow.statuses
    ]
    edit = flow.revise(statuses=statuses)

    clock.advance(hours=1)
    try:
        service.edit_flow(TENANT, edit, by="admin")
    except ValidationError as refused:
        print(f"edit refused ({refused.field}): {refused.reason}")
    print(f"stored version is still v{service.get_flow(TENANT, 'inquiry').version}")

    service.edit_flow(TENANT, edit, by="admin", relocate={"triage": "working"})
    for task_id in ("I-1", "I-2"):
        task = service.get_task(TENANT, task_id)
        print(f"{task.id}: status {task.status!r} on flow v{task.flow_version}")
    last = service.get_task(TENANT, "I-1").history[-1]
    print(f"I-1 history: {last.source} -> {last.target} ({last.reason})")

    board = service.board(TENANT, "inquiry")
    print("board columns:", [column.status.key for column in board.columns])


if __name__ == "__main__":
    main()
