"""Domain events: frozen records of what changed, the only output hosts consume.

Every change made through cxflow emits one or more events. They are appended
to the store's outbox in the same atomic write as the change and published to
the service's event sink. Each class has a stable ``type`` string used as the
tag when serialised (see ``cxflow.serialization``).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, NamedTuple

import attrs

from cxflow.flows.model import Material
from cxflow.tasks.model import Priority

__all__ = [
    "EVENT_TYPES",
    "AgentAssigned",
    "Envelope",
    "AgentChanged",
    "AssignmentEvent",
    "AssignmentFinished",
    "ConversationQueued",
    "CloseMessageRequested",
    "ConversationAssigned",
    "ConversationClosed",
    "ConversationEvent",
    "ConversationMessageRecorded",
    "ConversationOpened",
    "ConversationPriorityChanged",
    "ConversationReopened",
    "ConversationWaitingChanged",
    "CustomerEvent",
    "CustomerPlanChanged",
    "CustomerTagAdded",
    "CustomerTagRemoved",
    "Event",
    "FlowSaved",
    "MaterialSendRequested",
    "RoomTagAdded",
    "RoomTagRemoved",
    "SlaActivated",
    "SlaBreached",
    "SlaEvent",
    "SlaFulfilled",
    "SlaPaused",
    "SlaResumed",
    "SlaStopped",
    "SlaWarning",
    "SurveyRequested",
    "TaskAttachmentAdded",
    "TaskCommented",
    "TaskCreated",
    "TaskDeleted",
    "TaskEvent",
    "TaskMoved",
    "TaskOverdue",
    "TaskRestored",
    "TaskUpdated",
    "TimeTriggerFired",
    "TimerFired",
    "TodoAdded",
    "TodoChecked",
    "TodoUnchecked",
    "WatcherAdded",
    "WatcherRemoved",
]


class Envelope(NamedTuple):
    """What the log records about one event besides what happened: set by the
    engine when it commits the event (``docs/reference/events.md``).

    - ``id``: unique text (a random 128-bit hex command id, a dot, the event's
      number in its commit), at most 48 characters;
    - ``subject_kind``, ``subject_id``: the record the event is about
      (``Event.subject_key``);
    - ``subject_version``: that record's version as the same commit wrote it,
      or ``None`` when the commit did not write it;
    - ``causation_id``: the id of what caused the event: the command (the call
      that committed it) or, for an event a reactor added in reaction to
      another, that event's id;
    - ``correlation_id``: the id shared by everything one outermost call
      caused: the host's own (``Engine.session(..., correlation_id=...)``, a
      request id) or, by default, the command id.
    """

    id: str
    subject_kind: str
    subject_id: str
    subject_version: int | None
    causation_id: str
    correlation_id: str


@attrs.frozen(kw_only=True, slots=False)
class Event:
    """Base of all events: when it happened (aware UTC) and who did it.

    Events are built by cxflow from input the commands checked once against
    the boundary rules (``docs/reference/boundary.md``): every field is
    storable and reads back equal. So they carry no validators of their own,
    and keep a ``__dict__`` instead of slots (a frozen attrs class with a dict
    builds about a third faster): one is created on every change. Code that
    builds events itself must pass values those rules accept.

    ``envelope`` is ``None`` until the engine commits the event, which stores
    a copy carrying its ``Envelope``. It is not part of what happened: two
    events that differ only in their envelopes are equal.
    """

    type: ClassVar[str] = "event"
    schema_version: ClassVar[int] = 1
    """The version of this class's shape (``cxflow.serialization`` upcasts
    older stored data to it)."""
    at: datetime
    by: str
    envelope: Envelope | None = attrs.field(default=None, eq=False, repr=False)

    def subject_key(self) -> tuple[str, str]:
        """``(kind, id)`` of the record this event is about: ``"flow"``,
        ``"task"``, ``"conversation"``, ``"customer"``, ``"timer"`` or
        ``"agent"``. Routing events are about their conversation; SLA events
        about their ``subject``."""
        raise NotImplementedError  # pragma: no cover - every concrete event has one


@attrs.frozen(kw_only=True, slots=False)
class FlowSaved(Event):
    """A flow was created (version 1) or edited (a new version)."""

    type: ClassVar[str] = "flow.saved"
    flow_id: str
    version: int
    relocated: tuple[tuple[str, str], ...] = ()
    """(old status, new status) pairs used to move live tasks off removed statuses."""

    def subject_key(self) -> tuple[str, str]:
        return ("flow", self.flow_id)


@attrs.frozen(kw_only=True, slots=False)
class TaskEvent(Event):
    """Base of events about one task."""

    task_id: str
    flow_id: str
    flow_version: int

    def subject_key(self) -> tuple[str, str]:
        return ("task", self.task_id)


@attrs.frozen(kw_only=True, slots=False)
class TaskCreated(TaskEvent):
    type: ClassVar[str] = "task.created"
    status: str
    priority: Priority
    assignee: str | None = None
    conversation_id: str | None = None
    due_at: datetime | None = None
    task_type: str | None = None


@attrs.frozen(kw_only=True, slots=False)
class TaskMoved(TaskEvent):
    """A task changed status; the kinds (``StatusKind`` values) let
    statistics tell completions from other moves without loading the flow."""

    type: ClassVar[str] = "task.moved"
    source: str
    target: str
    source_kind: str
    target_kind: str
    reason: str | None = None


@attrs.frozen(kw_only=True, slots=False)
class TaskUpdated(TaskEvent):
    """Fields of a task changed: ``changes`` holds (field, old, new) as text."""

    type: ClassVar[str] = "task.updated"
    changes: tuple[tuple[str, str | None, str | None], ...]


@attrs.frozen(kw_only=True, slots=False)
class TaskCommented(TaskEvent):
    type: ClassVar[str] = "task.commented"
    comment_id: str
    body: str


@attrs.frozen(kw_only=True, slots=False)
class WatcherAdded(TaskEvent):
    type: ClassVar[str] = "task.watcher_added"
    watcher: str


@attrs.frozen(kw_only=True, slots=False)
class WatcherRemoved(TaskEvent):
    type: ClassVar[str] = "task.watcher_removed"
    watcher: str


@attrs.frozen(kw_only=True, slots=False)
class TodoAdded(TaskEvent):
    type: ClassVar[str] = "task.todo_added"
    todo_id: str
    text: str
    required: bool


@attrs.frozen(kw_only=True, slots=False)
class TodoChecked(TaskEvent):
    type: ClassVar[str] = "task.todo_checked"
    todo_id: str


@attrs.frozen(kw_only=True, slots=False)
class TodoUnchecked(TaskEvent):
    type: ClassVar[str] = "task.todo_unchecked"
    todo_id: str


@attrs.frozen(kw_only=True, slots=False)
class TaskAttachmentAdded(TaskEvent):
    type: ClassVar[str] = "task.attachment_added"
    attachment: Material


@attrs.frozen(kw_only=True, slots=False)
class MaterialSendRequested(TaskEvent):
    """Intent: send a flow/status material into the task's conversation.
    cxflow only records the intent; the host delivers it."""

    type: ClassVar[str] = "task.material_send_requested"
    conversation_id: str
    material: Material


@attrs.frozen(kw_only=True, slots=False)
class TaskDeleted(TaskEvent):
    type: ClassVar[str] = "task.deleted"


@attrs.frozen(kw_only=True, slots=False)
class TaskRestored(TaskEvent):
    type: ClassVar[str] = "task.restored"


@attrs.frozen(kw_only=True, slots=False)
class TaskOverdue(TaskEvent):
    """The overdue ("delayed") marker was raised: the due date passed before completion."""

    type: ClassVar[str] = "task.overdue"
    due_at: datetime


# -- conversations and customers ----------------------------------------------------
#
# Enum-valued facts (author kind, auto-close rule) are carried as their ``.value``
# text, as ``TaskMoved`` carries status kinds: ``cxflow.events`` must not import
# ``cxflow.conversations`` (whose commands import this module).


@attrs.frozen(kw_only=True, slots=False)
class ConversationEvent(Event):
    """Base of events about one conversation."""

    conversation_id: str
    customer_id: str

    def subject_key(self) -> tuple[str, str]:
        return ("conversation", self.conversation_id)


@attrs.frozen(kw_only=True, slots=False)
class ConversationOpened(ConversationEvent):
    """A conversation opened; ``plan`` is the customer's plan snapshot."""

    type: ClassVar[str] = "conversation.opened"
    channel: str
    plan: str | None = None
    priority: Priority = Priority.NORMAL
    assignee: str | None = None
    room_tags: tuple[str, ...] = ()


@attrs.frozen(kw_only=True, slots=False)
class ConversationMessageRecorded(ConversationEvent):
    """cxflow was told of a message (``at`` is the message's instant).

    ``author_kind`` is an ``AuthorKind`` value. ``counted`` is true for the
    messages timers look at: the customer's and human agents' non-automatic
    ones. ``agent_reply`` is true for a human agent's non-automatic message;
    ``first_agent_reply`` when this message became the earliest agent reply.
    """

    type: ClassVar[str] = "conversation.message_recorded"
    author_kind: str
    automatic: bool = False
    author_id: str | None = None
    counted: bool = False
    agent_reply: bool = False
    first_agent_reply: bool = False


@attrs.frozen(kw_only=True, slots=False)
class ConversationAssigned(ConversationEvent):
    """The assignee changed (``None``: unassigned)."""

    type: ClassVar[str] = "conversation.assigned"
    assignee: str | None
    previous: str | None = None


@attrs.frozen(kw_only=True, slots=False)
class ConversationWaitingChanged(ConversationEvent):
    """The conversation started or stopped waiting (SLA clocks pause while waiting)."""

    type: ClassVar[str] = "conversation.waiting_changed"
    waiting: bool


@attrs.frozen(kw_only=True, slots=False)
class ConversationPriorityChanged(ConversationEvent):
    type: ClassVar[str] = "conversation.priority_changed"
    priority: Priority
    previous: Priority


@attrs.frozen(kw_only=True, slots=False)
class RoomTagAdded(ConversationEvent):
    """A room tag (lives and dies with this conversation) was added."""

    type: ClassVar[str] = "conversation.room_tag_added"
    tag: str


@attrs.frozen(kw_only=True, slots=False)
class RoomTagRemoved(ConversationEvent):
    type: ClassVar[str] = "conversation.room_tag_removed"
    tag: str


@attrs.frozen(kw_only=True, slots=False)
class ConversationClosed(ConversationEvent):
    """A conversation closed.

    ``rule`` is the ``AutoCloseRule`` value for an auto-close, ``None`` for a
    close by hand. ``agent_replied`` tells whether a human agent ever replied.
    ``no_agent_reply`` flags an auto-close by the *agent did not answer* rule
    where no agent ever answered (hosts use it for billing and for not
    delivering the close message, e.g. KakaoTalk channel rooms).
    """

    type: ClassVar[str] = "conversation.closed"
    reason: str | None = None
    rule: str | None = None
    agent_replied: bool = False
    no_agent_reply: bool = False


@attrs.frozen(kw_only=True, slots=False)
class ConversationReopened(ConversationEvent):
    type: ClassVar[str] = "conversation.reopened"
    reason: str | None = None
    reopen_count: int = 1


@attrs.frozen(kw_only=True, slots=False)
class CloseMessageRequested(ConversationEvent):
    """Intent: send the tenant's close message into the conversation.

    With ``deliver=False`` the host shows it to agents but does not deliver it to
    the customer (``no_agent_reply`` says why).
    """

    type: ClassVar[str] = "conversation.close_message_requested"
    rule: str | None = None
    deliver: bool = True
    no_agent_reply: bool = False


@attrs.frozen(kw_only=True, slots=False)
class SurveyRequested(ConversationEvent):
    """Intent: send the satisfaction survey (``deliver`` as for the close message)."""

    type: ClassVar[str] = "conversation.survey_requested"
    rule: str | None = None
    deliver: bool = True


@attrs.frozen(kw_only=True, slots=False)
class CustomerEvent(Event):
    """Base of events about one customer."""

    customer_id: str

    def subject_key(self) -> tuple[str, str]:
        return ("customer", self.customer_id)


@attrs.frozen(kw_only=True, slots=False)
class CustomerTagAdded(CustomerEvent):
    """A customer tag (follows the customer into later conversations) was added."""

    type: ClassVar[str] = "customer.tag_added"
    tag: str


@attrs.frozen(kw_only=True, slots=False)
class CustomerTagRemoved(CustomerEvent):
    type: ClassVar[str] = "customer.tag_removed"
    tag: str


@attrs.frozen(kw_only=True, slots=False)
class CustomerPlanChanged(CustomerEvent):
    type: ClassVar[str] = "customer.plan_changed"
    plan: str | None
    previous: str | None = None


# -- timers, SLA and time triggers -------------------------------------------------


@attrs.frozen(kw_only=True, slots=False)
class TimerFired(Event):
    """A durable timer fired (once per ``(timer_id, cycle)``: the dedupe key).
    ``handled`` is false when no handler was registered for its kind."""

    type: ClassVar[str] = "timer.fired"
    timer_id: str
    kind: str
    subject_id: str
    cycle: int
    deadline: datetime
    handled: bool = True

    def subject_key(self) -> tuple[str, str]:
        return ("timer", self.timer_id)


@attrs.frozen(kw_only=True, slots=False)
class SlaEvent(Event):
    """Base of SLA clock events, one set for tasks and conversations.

    ``subject`` is ``"conversation"`` or ``"task"`` and ``subject_id`` its id;
    ``metric`` is ``first_response``, ``next_response`` or ``resolution`` (a
    task has the one resolution clock); ``target_us`` the target and
    ``consumed_us`` the business time used, in microseconds; ``due_at`` the
    breach instant while the clock runs."""

    subject: str
    subject_id: str
    metric: str
    target_us: int
    consumed_us: int
    due_at: datetime | None = None

    def subject_key(self) -> tuple[str, str]:
        return (self.subject, self.subject_id)


@attrs.frozen(kw_only=True, slots=False)
class SlaActivated(SlaEvent):
    type: ClassVar[str] = "sla.activated"


@attrs.frozen(kw_only=True, slots=False)
class SlaPaused(SlaEvent):
    type: ClassVar[str] = "sla.paused"


@attrs.frozen(kw_only=True, slots=False)
class SlaResumed(SlaEvent):
    type: ClassVar[str] = "sla.resumed"


@attrs.frozen(kw_only=True, slots=False)
class SlaFulfilled(SlaEvent):
    type: ClassVar[str] = "sla.fulfilled"


@attrs.frozen(kw_only=True, slots=False)
class SlaStopped(SlaEvent):
    """The clock ended without being met or missed (e.g. the conversation closed
    while a next response was pending)."""

    type: ClassVar[str] = "sla.stopped"


@attrs.frozen(kw_only=True, slots=False)
class SlaWarning(SlaEvent):
    """The breach is near (the policy's ``warn_before`` ahead of ``due_at``).
    ``late``: emitted with the breach, because no tick ran between the warning
    instant and the breach (downtime)."""

    type: ClassVar[str] = "sla.warning"
    late: bool = False


@attrs.frozen(kw_only=True, slots=False)
class SlaBreached(SlaEvent):
    """The target was missed. ``escalation`` names the policy's escalation
    actions for the host (or the rule engine) to perform."""

    type: ClassVar[str] = "sla.breached"
    escalation: tuple[str, ...] = ()


@attrs.frozen(kw_only=True, slots=False)
class TimeTriggerFired(ConversationEvent):
    """A time trigger's condition held for its duration: perform ``action``
    (``notify`` or ``escalate``) towards ``target``. An intent for the host."""

    type: ClassVar[str] = "trigger.fired"
    trigger_id: str
    action: str
    target: str
    note: str = ""
    since: datetime


# -- assignment ---------------------------------------------------------------------


@attrs.frozen(kw_only=True, slots=False)
class AgentChanged(Event):
    """An agent's presence, capacity, skills or groups changed (or the agent was
    added: ``previous_presence`` is then ``None``). ``presence`` is a
    ``Presence`` value."""

    type: ClassVar[str] = "agent.changed"
    agent_id: str
    presence: str
    previous_presence: str | None = None
    capacity: int = 1
    skills: tuple[tuple[str, int], ...] = ()
    groups: tuple[str, ...] = ()

    def subject_key(self) -> tuple[str, str]:
        return ("agent", self.agent_id)


@attrs.frozen(kw_only=True, slots=False)
class AssignmentEvent(Event):
    """Base of events about one conversation's routing."""

    conversation_id: str

    def subject_key(self) -> tuple[str, str]:
        return ("conversation", self.conversation_id)


@attrs.frozen(kw_only=True, slots=False)
class ConversationQueued(AssignmentEvent):
    """A conversation entered the queue. ``reason``: ``"arrived"``, or for a
    conversation sent back (keeping ``arrived_at``): ``"agent_offline"``,
    ``"no_answer"`` or ``"unassigned"``; ``previous_agent`` then names who
    held it."""

    type: ClassVar[str] = "assignment.queued"
    channel: str
    level: int
    arrived_at: datetime
    reason: str = "arrived"
    previous_agent: str | None = None


@attrs.frozen(kw_only=True, slots=False)
class AgentAssigned(AssignmentEvent):
    """A conversation was given to ``agent_id``. ``reason``: ``"auto"`` (the
    scheduler, with ``strategy`` naming how), ``"manual"`` or ``"transfer"`` (a
    person, ``by``). ``overflow`` is true when a person exceeded the agent's
    capacity on purpose. ``waited_us`` is the time since the conversation's
    arrival, in microseconds."""

    type: ClassVar[str] = "assignment.assigned"
    agent_id: str
    reason: str
    strategy: str | None = None
    previous_agent: str | None = None
    overflow: bool = False
    waited_us: int = 0


@attrs.frozen(kw_only=True, slots=False)
class AssignmentFinished(AssignmentEvent):
    """A conversation left routing (it closed): ``agent_id`` held it, or
    ``None`` if it was still waiting."""

    type: ClassVar[str] = "assignment.finished"
    agent_id: str | None
    reason: str = "closed"


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        FlowSaved,
        TaskCreated,
        TaskMoved,
        TaskUpdated,
        TaskCommented,
        WatcherAdded,
        WatcherRemoved,
        TodoAdded,
        TodoChecked,
        TodoUnchecked,
        TaskAttachmentAdded,
        MaterialSendRequested,
        TaskDeleted,
        TaskRestored,
        TaskOverdue,
        ConversationOpened,
        ConversationMessageRecorded,
        ConversationAssigned,
        ConversationWaitingChanged,
        ConversationPriorityChanged,
        RoomTagAdded,
        RoomTagRemoved,
        ConversationClosed,
        ConversationReopened,
        CloseMessageRequested,
        SurveyRequested,
        CustomerTagAdded,
        CustomerTagRemoved,
        CustomerPlanChanged,
        TimerFired,
        SlaActivated,
        SlaPaused,
        SlaResumed,
        SlaFulfilled,
        SlaStopped,
        SlaWarning,
        SlaBreached,
        TimeTriggerFired,
        AgentChanged,
        ConversationQueued,
        AgentAssigned,
        AssignmentFinished,
    )
}
"""Tag -> event class: the explicit map the serializer uses (never an import by name)."""
