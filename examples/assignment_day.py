"""A support morning in Seoul, routed by cxflow's assignment engine.

Three agents and ten conversations on one tenant:

- general conversations go to the least-loaded agent (``LeastLoad``); the
  billing desk ranks by billing proficiency (``SkillBased``);
- the queue serves higher plan tiers first: when sora comes online at 09:04,
  she takes the enterprise c7 before the SMB c6 that arrived before it;
- joon never answers c4: after 2 minutes its no-answer timer, fired by a
  ``TimerWorker``, sends it to someone else;
- joon goes offline at 09:06: his conversations go back to the queue,
  keeping their arrival, and are taken as slots free;
- c10 arrives for the billing desk while mina, its only agent left, is full;
  ``explain`` says why it waits.

The script plays the morning on a ``TestClock``, ticking the worker every
minute as a host's worker loop would, and prints each assignment event.

Run it with ``python examples/assignment_day.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from cxflow import (
    Agent,
    AssignmentService,
    AssignmentSettings,
    Event,
    LeastLoad,
    MemoryStore,
    Presence,
    Routing,
    SkillBased,
    TestClock,
    TimerWorker,
)
from cxflow.events import AgentAssigned, AgentChanged, AssignmentFinished, ConversationQueued

TENANT = "acme"
SEOUL = ZoneInfo("Asia/Seoul")
START = datetime(2026, 5, 11, 9, 0, tzinfo=SEOUL)

SETTINGS = AssignmentSettings(
    strategy=LeastLoad(),
    group_strategies={"billing": SkillBased()},
    no_answer_after=timedelta(minutes=2),
)

TEAM = {
    "mina": Agent(id="mina", capacity=3, skills={"billing": 5, "shipping": 3}, groups=("billing",)),
    "joon": Agent(id="joon", capacity=2, skills={"billing": 2, "shipping": 4}, groups=("billing",)),
    "sora": Agent(id="sora", capacity=3, skills={"shipping": 3}),
}

BILLING = {"group": "billing", "skills": ("billing",)}
ARRIVALS: dict[str, list[tuple[str, dict[str, Any]]]] = {  # routing fields by local time
    "09:01": [
        ("c1", {"plan": "smb", "skills": ("shipping",)}),
        ("c2", {"plan": "enterprise", **BILLING}),
    ],
    "09:02": [("c3", {"plan": "large", "vip": True}), ("c4", {"plan": "smb"})],
    "09:03": [
        ("c5", {"plan": "smb", **BILLING}),
        ("c6", {"plan": "smb"}),
        ("c7", {"plan": "enterprise"}),
    ],
    "09:05": [("c8", {}), ("c9", {"plan": "smb", **BILLING})],
    "09:09": [("c10", {"plan": "enterprise", **BILLING})],
}
CLOSES = {"09:05": ["c2"], "09:07": ["c3", "c6"]}
IGNORED = {("c4", "joon")}  # every other assignee answers a minute after assignment


def hhmm(instant: datetime) -> str:
    return instant.astimezone(SEOUL).strftime("%H:%M")


def describe(event: Event) -> str | None:
    """One line for each assignment event."""
    if isinstance(event, AgentChanged):
        return f"{event.agent_id} is {event.presence}"
    if isinstance(event, ConversationQueued):
        why = f"back: {event.reason} by {event.previous_agent}" if event.previous_agent else "new"
        return f"{event.conversation_id} queued (level {event.level}, {why})"
    if isinstance(event, AgentAssigned):
        how = event.strategy or event.reason
        waited = event.waited_us // 1_000_000
        return f"{event.conversation_id} -> {event.agent_id} ({how}, waited {waited} s)"
    if isinstance(event, AssignmentFinished):
        return f"{event.conversation_id} closed by {event.agent_id}"
    return None


class PrintingSink:
    """An event sink that prints the assignment events."""

    def publish(self, tenant: str, events: Sequence[Event]) -> None:
        for event in events:
            line = describe(event)
            if line is not None:
                print(f"{hhmm(event.at)}  {line}")


def play(service: AssignmentService, now: str) -> None:
    """What the host tells cxflow at each local time."""
    at = service.clock.now()
    if now == "09:00":
        for name in ("mina", "joon"):
            service.save_agent(TENANT, attrs.evolve(TEAM[name], presence=Presence.ONLINE), by=name)
        service.save_agent(TENANT, TEAM["sora"], by="admin")  # starts at 09:04
    if now == "09:04":
        service.set_presence(TENANT, "sora", Presence.ONLINE, by="sora")
    if now == "09:06":
        service.set_presence(TENANT, "joon", Presence.OFFLINE, by="joon")
    for cid in CLOSES.get(now, []):
        service.close(TENANT, cid, by=str(service.get_routing(TENANT, cid).agent))
    for cid, fields in ARRIVALS.get(now, []):
        routing = Routing(conversation_id=cid, channel="chat", arrived_at=at, **fields)
        service.route(TENANT, routing, by="widget")
    for routing in service.store.list_routings(TENANT):  # assignees answer after a minute
        held_for = at - (routing.assigned_at or at)
        key = (routing.conversation_id, routing.agent)
        if held_for >= timedelta(minutes=1) and not routing.answered and key not in IGNORED:
            service.answered(TENANT, routing.conversation_id, by=str(routing.agent))


def main() -> None:
    clock = TestClock(START)
    store = MemoryStore()
    service = AssignmentService(store, clock, PrintingSink(), SETTINGS)
    worker = TimerWorker(store, clock, worker_id="worker-1", handlers=service.timer_handlers())
    while clock.now() <= START + timedelta(minutes=10):  # a worker loop ticking every minute
        play(service, hhmm(clock.now()))
        worker.tick(TENANT)
        clock.advance(minutes=1)

    scheduler = service.scheduler(TENANT)
    for state in scheduler.agents():
        print(f"-- {state.id} holds {', '.join(sorted(scheduler.held_by(state.id))) or 'nothing'}")
    print("-- why is c10 still waiting?")
    explanation = service.explain(TENANT, "c10")
    print(explanation.summary)
    for candidate in explanation.candidates:
        print(f"  {candidate.agent_id}: {candidate.rank_text or '; '.join(candidate.reasons)}")


if __name__ == "__main__":
    main()
