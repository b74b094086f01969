"""Test data and test doubles for hosts and adapter authors.

Everything here is deterministic: fixed aware datetimes (``T0``), no
clock reads, no randomness. Tasks are built with the pure commands of
``cxflow.tasks.commands``, so they are exactly what cxflow itself writes;
conversations, customers and timers are built directly from their models.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from cxflow.app.unit import EventSink
from cxflow.conversations.model import Conversation, Customer
from cxflow.events import Event
from cxflow.flows.model import Flow, Material, Status, StatusKind, TodoTemplate
from cxflow.tasks import commands
from cxflow.tasks.model import Priority, Task
from cxflow.timers.model import Timer

__all__ = [
    "T0",
    "RecordingSink",
    "sample_conversation",
    "sample_customer",
    "sample_flow",
    "sample_task",
    "sample_task_history",
    "sample_timer",
]

T0: datetime = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
"""A fixed aware instant (Monday 2024-01-01 09:00 UTC) test data is built around."""


class RecordingSink:
    """An ``EventSink`` that keeps what it is given.

    ``published`` holds ``(tenant, event)`` pairs in publication order.
    """

    def __init__(self) -> None:
        self.published: list[tuple[str, Event]] = []

    def publish(self, tenant: str, events: Sequence[Event]) -> None:
        """Record ``events`` of ``tenant``."""
        self.published.extend((tenant, event) for event in events)

    def events(self, tenant: str | None = None) -> list[Event]:
        """The events published so far (of ``tenant`` only, when given)."""
        return [event for t, event in self.published if tenant is None or t == tenant]

    def clear(self) -> None:
        """Forget everything recorded so far."""
        self.published.clear()


def _is_sink(sink: RecordingSink) -> EventSink:
    # mypy checks here that RecordingSink satisfies the EventSink protocol.
    return sink


def sample_flow(flow_id: str = "support", *, name: str | None = None) -> Flow:
    """A small flow (version 1) exercising most of the model.

    Statuses ``new`` (not started, one optional to-do), ``doing`` (in progress,
    one required to-do), ``waiting``, ``done`` (success) and ``failed``
    (failure); any move allowed; one flow-level material.
    """
    return Flow(
        id=flow_id,
        name=name if name is not None else f"Flow {flow_id}",
        description="A sample flow for tests.",
        statuses=(
            Status(
                key="new",
                label="New",
                kind=StatusKind.NOT_STARTED,
                todos=(TodoTemplate(text="Read the request"),),
            ),
            Status(
                key="doing",
                label="In progress",
                kind=StatusKind.IN_PROGRESS,
                todos=(TodoTemplate(text="Reply to the customer", required=True),),
            ),
            Status(key="waiting", label="Waiting", kind=StatusKind.WAITING),
            Status(key="done", label="Done", kind=StatusKind.COMPLETED_SUCCESS),
            Status(key="failed", label="Failed", kind=StatusKind.COMPLETED_FAILURE),
        ),
        materials=(
            Material(name="faq", uri="https://example.com/faq.pdf", media_type="application/pdf"),
        ),
    )


def sample_task(
    flow: Flow | None = None,
    task_id: str = "task-1",
    *,
    at: datetime = T0,
    title: str | None = None,
    by: str = "tester",
    **fields: Any,
) -> Task:
    """A new task (version 1) on ``flow`` (default ``sample_flow``) created at
    ``at``; ``fields`` are passed to ``cxflow.tasks.commands.create_task``."""
    task, _events = commands.create_task(
        flow=flow if flow is not None else sample_flow(),
        task_id=task_id,
        title=title if title is not None else f"Task {task_id}",
        by=by,
        at=at,
        **fields,
    )
    return task


def sample_task_history(
    flow: Flow | None = None, task_id: str = "task-1", *, at: datetime = T0
) -> list[tuple[Task, list[Event]]]:
    """Every snapshot of one task taken through many commands, with its events.

    Item *i* is the task at version *i + 1* and the events that produced it.
    The final snapshot has watchers, a comment (with microseconds), checked and
    template to-dos, an attachment, a move, an edited title, a due date given
    with a non-UTC offset and a raised overdue marker: a good round-trip sample.
    """
    flow = flow if flow is not None else sample_flow()
    plus_two = timezone(timedelta(hours=2))
    steps: list[tuple[Task, list[Event]]] = []
    task, events = commands.create_task(
        flow=flow,
        task_id=task_id,
        title="Zwrot \u2014 \u017c\u00f3\u0142\u0107 \U0001f69a",
        by="ana",
        at=at,
        description="Customer wants a refund.\nSecond line.",
        priority=Priority.HIGH,
        due_at=(at + timedelta(hours=2)).astimezone(plus_two),
        assignee="ana",
        conversation_id="conv-1",
        watchers=("bo", "cy"),
    )
    steps.append((task, events))

    def add(result: tuple[Task, list[Event]]) -> Task:
        steps.append(result)
        return result[0]

    minute = timedelta(minutes=1)
    task = add(commands.add_comment(
        task, "Called the customer.", by="bo", at=at + 5 * minute + timedelta(microseconds=123456)
    ))
    task = add(commands.add_todo(task, "Check the invoice", by="ana", at=at + 6 * minute,
                                 required=True))
    task = add(commands.check_todo(task, "t2", by="ana", at=at + 7 * minute))
    photo = Material(name="photo", uri="s3://bucket/photo.png", media_type="image/png")
    task = add(commands.add_attachment(task, photo, by="ana", at=at + 8 * minute))
    task = add(commands.move_task(task, flow, "doing", by="ana", at=at + 9 * minute,
                                  reason="started"))
    task = add(commands.update_task(task, by="bo", at=at + 10 * minute,
                                    title="Refund request", priority=Priority.NORMAL))
    add(commands.raise_overdue(task, at=at + timedelta(hours=3)))
    return steps


def sample_customer(
    customer_id: str = "cust-1",
    *,
    plan: str | None = None,
    tags: Sequence[str] = (),
    version: int = 1,
) -> Customer:
    """A customer (version 1 unless told) with ``plan`` and ``tags``."""
    return Customer(id=customer_id, plan=plan, tags=tuple(tags), version=version)


def sample_conversation(
    conversation_id: str = "conv-1",
    *,
    at: datetime = T0,
    customer_id: str = "cust-1",
    channel: str = "web",
    **fields: Any,
) -> Conversation:
    """An open conversation (version 1 unless told) opened and updated at ``at``;
    ``fields`` set any other attribute of ``Conversation``."""
    return Conversation(
        id=conversation_id,
        channel=channel,
        customer_id=customer_id,
        opened_at=fields.pop("opened_at", at),
        updated_at=fields.pop("updated_at", at),
        **fields,
    )


def sample_timer(
    timer_id: str = "timer-1",
    *,
    deadline: datetime = T0,
    kind: str = "autoclose",
    subject_id: str = "conv-1",
    **fields: Any,
) -> Timer:
    """A pending timer (version 1, cycle 1 unless told) due at ``deadline``;
    ``fields`` set any other attribute of ``Timer``."""
    return Timer(id=timer_id, kind=kind, subject_id=subject_id, deadline=deadline, **fields)
