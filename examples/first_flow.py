"""Your first flow: define it, create tasks, move them across the board.

Defines a small "refund" flow with a required to-do, stores it in the
in-memory store, creates three tasks, moves them (including a move that the
flow refuses because a required to-do is still open) and prints the board.

Run it with ``python examples/first_flow.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cxflow import (
    Flow,
    MemoryStore,
    MoveRefused,
    Priority,
    Status,
    StatusKind,
    TaskService,
    TestClock,
    TodoTemplate,
)

TENANT = "acme"


def refund_flow() -> Flow:
    """A four-status refund flow; finance must approve before it can complete."""
    return Flow(
        id="refund",
        name="Refund",
        statuses=[
            Status(key="new", label="New", kind=StatusKind.NOT_STARTED),
            Status(
                key="checking",
                label="Checking the order",
                kind=StatusKind.IN_PROGRESS,
                todos=[
                    TodoTemplate(text="Finance approved the refund", required=True),
                    TodoTemplate(text="Tell the customer when to expect the money"),
                ],
            ),
            Status(key="refunded", label="Refunded", kind=StatusKind.COMPLETED_SUCCESS),
            Status(key="refused", label="Refused", kind=StatusKind.COMPLETED_FAILURE),
        ],
    )


def main() -> None:
    clock = TestClock(datetime(2024, 5, 6, 9, 0, tzinfo=UTC))
    service = TaskService(MemoryStore(), clock)
    service.create_flow(TENANT, refund_flow(), by="admin")

    due = clock.now() + timedelta(days=1)
    broken = service.create_task(
        TENANT, flow_id="refund", title="Broken kettle", by="mina",
        priority=Priority.HIGH, due_at=due, task_id="T-1",
    )
    service.create_task(TENANT, flow_id="refund", title="Late parcel", by="mina", task_id="T-2")
    service.create_task(
        TENANT, flow_id="refund", title="Double charge", by="joon",
        priority=Priority.LOW, task_id="T-3",
    )

    clock.advance(minutes=10)
    task = service.move_task(TENANT, broken.id, "checking", by="mina")
    print(f"{task.id} is now in {task.status!r} with to-dos:")
    for todo in task.todos:
        print(f"  [{todo.id}] {todo.text} (required: {todo.required})")

    try:
        service.move_task(TENANT, task.id, "refunded", by="mina")
    except MoveRefused as refused:
        print(f"refused: {refused.reason}")

    clock.advance(minutes=5)
    service.check_todo(TENANT, task.id, "t1", by="finance-kim")
    task = service.move_task(TENANT, task.id, "refunded", by="mina")
    print(f"{task.id} completed at {task.completed_at:%H:%M} (version {task.version})")

    print()
    print("Board:")
    for column in service.board(TENANT, "refund").columns:
        titles = ", ".join(f"{t.title} [{t.priority.value}]" for t in column.tasks) or "-"
        print(f"  {column.status.label:<20} {titles}")


if __name__ == "__main__":
    main()
