"""``python -m cxflow demo``: a scripted support day on the in-memory store.

Two flows from the default templates, a dozen tasks created, moved, commented,
watched, checked off, made overdue, deleted and restored; then each flow's
board is printed as text. Then the chat queue of the same morning: agents with
skills come online, conversations of three plan tiers are routed to them,
closed, and taken back when an agent leaves. Deterministic: it runs on a
``TestClock``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import count

from cxflow.app.assignment import AssignmentService
from cxflow.app.tasks import TaskService
from cxflow.assignment import (
    Agent,
    AssignmentSettings,
    Decision,
    Presence,
    Routing,
    SkillBased,
)
from cxflow.clock import TestClock
from cxflow.errors import MoveRefused
from cxflow.flows.templates import default_flow
from cxflow.storage.memory import MemoryStore
from cxflow.tasks.model import Priority, Task
from cxflow.tasks.query import Board, TaskQuery

__all__ = ["render_board", "route_chats", "run_demo"]

TENANT = "acme-shop"
START = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # 09:00 in Seoul

_MARK = {Priority.HIGH: "!!", Priority.NORMAL: " -", Priority.LOW: " ."}


def render_board(board: Board, at: datetime) -> str:
    """Render ``board`` as text: one block per column, one line per task."""
    lines = [f"== {board.flow.name} (v{board.flow.version}) =="]
    for column in board.columns:
        lines.append(f"[{column.status.label}] ({len(column.tasks)})")
        for task in column.tasks:
            due = f" due {task.due_at:%m-%d %H:%M}Z" if task.due_at else ""
            late = "  OVERDUE" if task.is_overdue(at) else ""
            done = sum(1 for todo in task.todos if todo.done)
            todos = f" [{done}/{len(task.todos)} to-dos]" if task.todos else ""
            who = f" @{task.assignee}" if task.assignee else ""
            lines.append(f"  {_MARK[task.priority]} {task.title}{who}{due}{todos}{late}")
    return "\n".join(lines)


def run_demo(echo: Callable[[str], None] = print) -> TaskService:
    """Run the scripted day, printing through ``echo``; return the service."""
    clock = TestClock(START)
    ids = count(1)
    store = MemoryStore()
    service = TaskService(store, clock, new_id=lambda: f"T{next(ids):03d}")
    exchange = service.create_flow(TENANT, default_flow("exchange_return"), by="admin")
    delivery = service.create_flow(TENANT, default_flow("delivery_inquiry"), by="admin")

    def new(flow_id: str, title: str, hours_due: float | None, **fields: object) -> Task:
        due = clock.now() + timedelta(hours=hours_due) if hours_due is not None else None
        return service.create_task(
            TENANT, flow_id=flow_id, title=title, by="mina", due_at=due, **fields  # type: ignore[arg-type]
        )

    swap = new(exchange.id, "Swap sneakers 260 -> 265", 6, priority=Priority.HIGH,
               assignee="mina", conversation_id="room-1")
    refund = new(exchange.id, "Refund damaged mug", 2, assignee="jun")
    jacket = new(exchange.id, "Return jacket (wrong colour)", 48, priority=Priority.LOW)
    lamp = new(exchange.id, "Exchange lamp, missing part", 1, priority=Priority.HIGH,
               assignee="jun")
    spam = new(exchange.id, "Duplicate of refund request", None)
    parcel = new(delivery.id, "Where is parcel #4411?", 3, assignee="mina")
    late = new(delivery.id, "Courier says delivered, customer disagrees", 1,
               priority=Priority.HIGH, assignee="sora")
    address = new(delivery.id, "Change delivery address", 0.5, assignee="sora")
    split = new(delivery.id, "Split shipment question", 24, priority=Priority.LOW)
    abroad = new(delivery.id, "Overseas delivery time", None)
    gift = new(delivery.id, "Gift wrap before dispatch", 5)
    bulk = new(delivery.id, "Bulk order tracking", 72, assignee="mina")
    echo(f"09:00  {len(service.list_tasks(TENANT, TaskQuery(limit=100)).items)} tasks opened")

    clock.advance(minutes=40)
    for task in (swap, refund, lamp):
        service.move_task(TENANT, task.id, "reviewing", by=task.assignee or "mina")
    service.add_watcher(TENANT, swap.id, "sora", by="mina")
    service.add_comment(TENANT, swap.id, "Customer sent the photo of the box.", by="mina")
    for task in (parcel, late, address):
        service.move_task(TENANT, task.id, "tracking", by=task.assignee or "mina")

    clock.advance(minutes=50)
    try:
        service.move_task(TENANT, swap.id, "completed", by="mina")
    except MoveRefused as refused:
        echo(f"09:30  refused: {refused.reason}")
    def check_all(task_id: str, by: str) -> None:
        for todo in service.get_task(TENANT, task_id).todos:
            service.check_todo(TENANT, task_id, todo.id, by=by)

    check_all(swap.id, "mina")
    service.move_task(TENANT, swap.id, "awaiting_item", by="mina")
    check_all(address.id, "sora")
    service.move_task(TENANT, address.id, "delivered", by="sora")
    service.move_task(TENANT, late.id, "waiting_courier", by="sora")
    service.delete_task(TENANT, spam.id, by="jun")
    echo("10:30  spam task deleted")

    clock.advance(hours=2)
    marked = service.raise_overdue(TENANT)
    echo(f"12:30  overdue marker raised on {len(marked)} task(s): "
         + ", ".join(sorted(t.title for t in marked)))
    service.update_task(TENANT, refund.id, by="jun", priority=Priority.HIGH)
    service.add_comment(TENANT, refund.id, "Escalated: customer called twice.", by="jun")
    service.move_task(TENANT, jacket.id, "reviewing", by="mina")
    service.move_task(TENANT, gift.id, "tracking", by="mina")

    clock.advance(hours=1)
    service.restore_task(TENANT, spam.id, by="jun")
    service.update_task(TENANT, spam.id, by="jun", title="Refund request (second order)")
    echo("13:30  deleted task restored and renamed")
    for task in (split, abroad, bulk):
        service.move_task(TENANT, task.id, "tracking", by="mina")

    now = clock.now()
    events = service.store.read_events(TENANT, limit=1000)
    echo(f"{len(events)} events in the outbox\n")
    for flow in service.list_flows(TENANT):
        echo(render_board(service.board(TENANT, flow.id), now))
        echo("")
    route_chats(store, clock, echo)
    return service


def route_chats(
    store: MemoryStore, clock: TestClock, echo: Callable[[str], None] = print
) -> AssignmentService:
    """The chat queue: skill-based routing, plan tiers first, reassignment on
    leaving; print each decision through ``echo``; return the service."""
    settings = AssignmentSettings(strategy=SkillBased())
    routing = AssignmentService(store, clock, settings=settings)

    def show(decisions: list[Decision]) -> None:
        for d in decisions:
            if d.agent_id is None:
                echo(f"{clock.now():%H:%M}  {d.conversation_id} back to the queue ({d.reason})")
            else:
                echo(f"{clock.now():%H:%M}  {d.conversation_id} -> {d.agent_id}")

    echo("== chat queue ==")
    team = {
        "mina": {"billing": 5, "delivery": 3},
        "jun": {"billing": 2, "returns": 4},
        "sora": {"delivery": 5, "returns": 2},
    }
    for name, skills in team.items():
        routing.save_agent(TENANT, Agent(id=name, capacity=2, skills=skills), by="admin")
    chats = [
        ("chat-1", "smb", ("delivery",)),
        ("chat-2", "enterprise", ("billing",)),
        ("chat-3", "large", ("returns",)),
        ("chat-4", "smb", ("billing",)),
        ("chat-5", "enterprise", ("delivery",)),
        ("chat-6", "smb", ("returns",)),
        ("chat-7", "large", ("billing",)),
        ("chat-8", "smb", ()),
    ]
    for number, (cid, plan, needs) in enumerate(chats):
        routed = Routing(
            conversation_id=cid,
            channel="chat",
            arrived_at=clock.now() + timedelta(seconds=number),
            plan=plan,
            skills=needs,
        )
        routing.route(TENANT, routed, by="widget")
    echo(f"{clock.now():%H:%M}  {len(chats)} chats waiting, nobody online yet")
    clock.advance(minutes=5)
    for name in team:
        show(routing.set_presence(TENANT, name, Presence.ONLINE, by=name))
    clock.advance(minutes=20)
    show(routing.close(TENANT, "chat-2", by="mina"))
    clock.advance(minutes=10)
    show(routing.set_presence(TENANT, "sora", Presence.OFFLINE, by="sora"))
    waiting = routing.scheduler(TENANT).waiting()
    if waiting:
        echo(f"why is {waiting[0]} waiting? {routing.explain(TENANT, waiting[0]).summary}")
    return routing
