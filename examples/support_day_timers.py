"""A support morning in Seoul, driven by timers.

One tenant runs three kinds of timers on its conversations:

- **auto-close**: close when no agent answered for 3 hours, or when the
  customer stayed silent for 30 minutes after an agent's reply; request the
  close message and the satisfaction survey;
- **SLA**: a first response within 30 business minutes and a resolution
  within 4 business hours, on a Seoul calendar closed for lunch from 12:00 to
  13:00, with a warning 10 minutes ahead and an escalation on breach;
- **a time trigger**: notify the team leads when a customer has waited 2
  hours.

The script plays a Monday morning on a ``TestClock`` and ticks a
``TimerWorker`` every 5 minutes, as a host's worker loop would, printing
each message cxflow is told about and each event the timers cause:

- room-1 (KakaoTalk) is never answered: its first-response SLA warns, then
  breaches and escalates; the trigger notifies the team leads; it auto-closes
  flagged "no agent reply" (not billed; the close message is shown to agents
  but not delivered). The automatic greeting does not count as an answer;
- room-2 is answered in time and closes when the customer goes quiet, with
  the close message and survey sent;
- room-3 opens at 11:50, so its first response is due after lunch, at 13:20.

Run it with ``python examples/support_day_timers.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cxflow import (
    AuthorKind,
    AutoClosePolicy,
    BusinessCalendar,
    ConversationService,
    ConversationSettings,
    ElapsedSince,
    Event,
    MemoryStore,
    SlaPolicy,
    SlaRule,
    SlaTargets,
    TestClock,
    TimerWorker,
    TimeTrigger,
    TriggerAction,
    TriggerActionKind,
)
from cxflow.events import (
    CloseMessageRequested,
    ConversationClosed,
    ConversationEvent,
    SlaActivated,
    SlaBreached,
    SlaFulfilled,
    SlaResumed,
    SlaWarning,
    SurveyRequested,
    TimerFired,
    TimeTriggerFired,
)

TENANT = "acme"
SEOUL = ZoneInfo("Asia/Seoul")
MONDAY = datetime(2026, 5, 11, tzinfo=SEOUL)

SETTINGS = ConversationSettings(
    autoclose=AutoClosePolicy(
        agent_silence=timedelta(hours=3),
        customer_silence=timedelta(minutes=30),
        survey_enabled=True,
    ),
    sla=SlaPolicy(
        id="standard",
        rules=[
            SlaRule(
                targets=SlaTargets(
                    first_response=timedelta(minutes=30), resolution=timedelta(hours=4)
                )
            )
        ],
        warn_before=timedelta(minutes=10),
        calendar=BusinessCalendar.weekdays("Asia/Seoul", [("09:00", "12:00"), ("13:00", "18:00")]),
        escalation=("page-team-lead",),
    ),
    triggers=[
        TimeTrigger(
            id="customer-waiting-2h",
            since=ElapsedSince.CUSTOMER_WAITING,
            after=timedelta(hours=2),
            action=TriggerAction(kind=TriggerActionKind.NOTIFY, target="team-leads"),
        )
    ],
)


def hhmm(instant: datetime) -> str:
    """An instant as Seoul wall-clock time."""
    return instant.astimezone(SEOUL).strftime("%H:%M")


def describe(event: Event) -> str | None:
    """One line for the events worth showing, ``None`` for the rest."""
    if isinstance(event, TimerFired):
        return f"timer {event.timer_id} fired (cycle {event.cycle})"
    if not isinstance(event, ConversationEvent):
        return None
    room = event.conversation_id
    if isinstance(event, SlaBreached):
        return f"{room}: SLA {event.metric} BREACHED, escalate: {', '.join(event.escalation)}"
    if isinstance(event, SlaActivated | SlaResumed) and event.due_at is not None:
        return f"{room}: SLA {event.metric} due at {hhmm(event.due_at)}"
    if isinstance(event, SlaWarning | SlaFulfilled):
        return f"{room}: SLA {event.metric} {event.type.removeprefix('sla.')}"
    if isinstance(event, TimeTriggerFired):
        return f"{room}: trigger {event.trigger_id}: {event.action} {event.target}"
    if isinstance(event, ConversationClosed):
        unanswered = ", no agent ever replied: not billed" if event.no_agent_reply else ""
        return f"{room}: closed by {event.rule or 'hand'}{unanswered}"
    if isinstance(event, CloseMessageRequested | SurveyRequested):
        what = "close message" if isinstance(event, CloseMessageRequested) else "survey"
        return f"{room}: {what}: {'send' if event.deliver else 'show to agents only'}"
    return None


class PrintingSink:
    """An event sink that prints the events worth showing."""

    def __init__(self, clock: TestClock) -> None:
        self.clock = clock

    def publish(self, tenant: str, events: Sequence[Event]) -> None:
        for event in events:
            line = describe(event)
            if line is not None:
                print(f"{hhmm(self.clock.now())}    {line}")


def open_room(service: ConversationService, room: str, customer: str, channel: str) -> None:
    print(f"{hhmm(service.clock.now())}  {room} opens on {channel}")
    service.open_conversation(
        TENANT, customer_id=customer, channel=channel, by=customer, conversation_id=room
    )


def message(
    service: ConversationService,
    room: str,
    kind: AuthorKind,
    text: str,
    *,
    automatic: bool = False,
    author_id: str | None = None,
) -> None:
    print(f"{hhmm(service.clock.now())}  {room} {kind.value}: {text}")
    service.record_message(TENANT, room, kind, automatic=automatic, author_id=author_id)


def play(service: ConversationService, now: str) -> None:
    """The morning's script: what the host tells cxflow at each local time."""
    customer, agent = AuthorKind.CUSTOMER, AuthorKind.AGENT
    match now:
        case "09:05":  # nobody will answer room-1
            open_room(service, "room-1", "kakao-17", "kakao")
            message(service, "room-1", customer, "My parcel is late")
            message(service, "room-1", agent, "(automatic greeting)", automatic=True)
        case "09:10":  # room-2 is answered in time, then the customer goes quiet
            open_room(service, "room-2", "lee", "web")
            message(service, "room-2", customer, "How do I exchange a size?")
        case "09:20":
            message(service, "room-2", agent, "Here is the exchange form", author_id="mina")
        case "09:25":
            message(service, "room-2", customer, "Thanks! Is shipping free?")
        case "09:40":
            message(service, "room-2", agent, "Yes, it is free", author_id="mina")
        case "11:50":  # just before lunch: the first response is due after lunch
            open_room(service, "room-3", "park", "email")
            message(service, "room-3", customer, "Please send an invoice")
        case "13:05":
            message(service, "room-3", agent, "Invoice attached", author_id="joon")


def main() -> None:
    clock = TestClock(MONDAY.replace(hour=9))
    store = MemoryStore()
    sink = PrintingSink(clock)
    service = ConversationService(store, clock, sink, SETTINGS)
    worker = TimerWorker(
        store, clock, sink, worker_id="worker-1", handlers=service.timer_handlers()
    )

    fired = 0
    end = MONDAY.replace(hour=13, minute=30)
    while clock.now() <= end:  # a host's worker loop, ticking every 5 minutes
        play(service, hhmm(clock.now()))
        fired += len(worker.tick(TENANT))
        clock.advance(minutes=5)
    print(f"-- {fired} timers fired, each once, at deadlines computed in advance --")


if __name__ == "__main__":
    main()
