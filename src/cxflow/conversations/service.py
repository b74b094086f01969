"""``ConversationService``: conversations, customers, auto-close, SLA and time
triggers for a host.

Like ``TaskService`` it is a thin shell: each call loads a snapshot, runs a
pure command with the clock's instant, then brings the conversation's timers
in line with its new state — the auto-close timer, one timer per running SLA
clock, one per time trigger — and commits the snapshot, the timers and the
events in one atomic write. ``timer_handlers()`` gives ``TimerWorker`` what
to do when those timers fire.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from cxflow import _validate as v
from cxflow.clock import Clock, SystemClock, ensure_aware
from cxflow.conversations import autoclose, commands
from cxflow.conversations.model import AuthorKind, Conversation, Customer
from cxflow.conversations.query import ConversationQuery, CustomerQuery
from cxflow.errors import ConflictError, NotFound, ValidationError
from cxflow.events import (
    Event,
    SlaActivated,
    SlaBreached,
    SlaEvent,
    SlaFulfilled,
    SlaPaused,
    SlaResumed,
    SlaStopped,
    SlaWarning,
    TimeTriggerFired,
)
from cxflow.service import EventSink
from cxflow.storage.protocols import ChangeSet, FullStore, require_tenant
from cxflow.tasks.model import Priority
from cxflow.timers import sla as sla_clocks
from cxflow.timers.model import Timer, plan_timer
from cxflow.timers.sla import SlaClock, SlaMetric, SlaPolicy
from cxflow.timers.triggers import TimeTrigger, trigger_timer_id
from cxflow.timers.worker import TimerHandler

__all__ = ["ConversationService", "ConversationSettings"]

SLA_TIMER_KIND = "sla"
TRIGGER_TIMER_KIND = "trigger"

_SLA_EVENTS: Mapping[str, type[SlaEvent]] = {
    "activated": SlaActivated,
    "paused": SlaPaused,
    "resumed": SlaResumed,
    "fulfilled": SlaFulfilled,
    "stopped": SlaStopped,
    "warned": SlaWarning,
    "breached": SlaBreached,
}


def sla_timer_id(metric: SlaMetric, conversation_id: str) -> str:
    """The timer id of one SLA clock of a conversation."""
    return f"{SLA_TIMER_KIND}:{metric.value}:{conversation_id}"


@attrs.frozen(kw_only=True)
class ConversationSettings:
    """A tenant's automation: auto-close policy, SLA policy and time triggers
    (each optional)."""

    autoclose: autoclose.AutoClosePolicy | None = None
    sla: SlaPolicy | None = None
    triggers: tuple[TimeTrigger, ...] = attrs.field(
        default=(), converter=v.to_tuple, validator=v.tuple_of(TimeTrigger)
    )

    def __attrs_post_init__(self) -> None:
        ids = [trigger.id for trigger in self.triggers]
        if len(set(ids)) != len(ids):
            raise ValidationError("triggers", "trigger ids must be unique")


def _micros(value: Any) -> int:
    return int(value.total_seconds() * 1_000_000) if value is not None else 0


class ConversationService:
    """Conversations and customers for a host, built from a store, a clock, an
    event sink and the tenants' settings.

    ``settings`` is one ``ConversationSettings`` for every tenant, or a
    callable ``tenant -> ConversationSettings`` (read on every call, so a host
    can change a tenant's policy at run time; existing timers move on the
    conversation's next change).
    """

    def __init__(
        self,
        store: FullStore,
        clock: Clock | None = None,
        sink: EventSink | None = None,
        settings: ConversationSettings | Callable[[str], ConversationSettings] = (
            ConversationSettings()
        ),
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.store = store
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.sink = sink
        self._settings = settings
        self._new_id = new_id

    # -- plumbing -------------------------------------------------------------------

    def settings(self, tenant: str) -> ConversationSettings:
        """The settings in force for ``tenant``."""
        found = self._settings(tenant) if callable(self._settings) else self._settings
        if not isinstance(found, ConversationSettings):
            raise ValidationError("settings", "expected ConversationSettings")
        return found

    def _now(self) -> datetime:
        return ensure_aware(self.clock.now(), "clock.now()")

    def _commit(self, tenant: str, changes: ChangeSet) -> None:
        if not changes:
            return
        self.store.commit(tenant, changes)
        if self.sink is not None and changes.events:
            self.sink.publish(tenant, changes.events)

    def _timer(self, tenant: str, timer_id: str) -> Timer | None:
        try:
            return self.store.get_timer(tenant, timer_id)
        except NotFound:
            return None

    def _settle(
        self,
        tenant: str,
        before: Conversation | None,
        after: Conversation,
        events: list[Event],
        at: datetime,
        *,
        timers: Iterable[Timer] = (),
    ) -> ChangeSet:
        """The change set that writes ``after`` with its SLA clocks synced and
        its timers planned (``timers``: versions already written by the caller)."""
        settings = self.settings(tenant)
        events = list(events)
        if settings.sla is not None:
            clocks, changes = sla_clocks.sync_clocks(settings.sla, before, after, at)
            if changes:
                after = attrs.evolve(after, sla=clocks)
                events += [self._sla_event(after, c.change, c.clock, at) for c in changes]
        written = list(timers)
        latest = {timer.id: timer for timer in written}
        for timer_id, kind, deadline in self._desired_timers(settings, after):
            current = latest.get(timer_id) or self._timer(tenant, timer_id)
            change = plan_timer(
                current, timer_id=timer_id, kind=kind, subject_id=after.id, deadline=deadline
            )
            if change is not None:
                written.append(change)
                latest[timer_id] = change
        return ChangeSet(conversations=(after,), timers=tuple(written), events=tuple(events))

    def _desired_timers(
        self, settings: ConversationSettings, conversation: Conversation
    ) -> list[tuple[str, str, datetime | None]]:
        desired: list[tuple[str, str, datetime | None]] = []
        if settings.autoclose is not None:
            due = autoclose.due(settings.autoclose, conversation)
            desired.append(
                (
                    autoclose.autoclose_timer_id(conversation.id),
                    autoclose.AUTOCLOSE_TIMER_KIND,
                    None if due is None else due.deadline,
                )
            )
        # A clock, once started, stays on the conversation: a metric without one
        # never had a timer, so there is nothing to read or cancel for it.
        for clock in conversation.sla:
            desired.append(
                (sla_timer_id(clock.metric, conversation.id), SLA_TIMER_KIND, clock.next_instant)
            )
        for trigger in settings.triggers:
            desired.append(
                (
                    trigger_timer_id(trigger.id, conversation.id),
                    TRIGGER_TIMER_KIND,
                    trigger.deadline(conversation),
                )
            )
        return desired

    @staticmethod
    def _sla_event(
        conversation: Conversation, change: str, clock: SlaClock, at: datetime, **extra: Any
    ) -> Event:
        fields: dict[str, Any] = {
            **extra,
            "at": at,
            "by": "cxflow",
            "conversation_id": conversation.id,
            "customer_id": conversation.customer_id,
            "metric": clock.metric.value,
            "target_us": _micros(clock.target),
            "consumed_us": _micros(clock.consumed),
            "due_at": clock.due_at,
        }
        return _SLA_EVENTS[change](**fields)

    def _change(
        self,
        tenant: str,
        conversation_id: str,
        command: Callable[[Conversation, datetime], tuple[Conversation, list[Event]]],
        expected_version: int | None = None,
    ) -> Conversation:
        require_tenant(tenant)
        before = self.store.get_conversation(tenant, conversation_id)
        if expected_version is not None and before.version != expected_version:
            raise ConflictError(
                f"conversation {conversation_id!r} is at v{before.version}, "
                f"caller expected v{expected_version}"
            )
        now = self._now()
        after, events = command(before, now)
        if after is before:
            return before
        changes = self._settle(tenant, before, after, events, now)
        self._commit(tenant, changes)
        return changes.conversations[0]

    # -- customers ------------------------------------------------------------------

    def get_customer(self, tenant: str, customer_id: str) -> Customer:
        """Customer ``customer_id``; ``NotFound`` if unknown."""
        return self.store.get_customer(tenant, customer_id)

    def query_customers(self, tenant: str, query: CustomerQuery | None = None) -> list[Customer]:
        """Customers matching ``query`` (e.g. by customer tag)."""
        return self.store.query_customers(tenant, query if query is not None else CustomerQuery())

    def _change_customer(
        self,
        tenant: str,
        customer_id: str,
        command: Callable[[Customer, datetime], tuple[Customer, list[Event]]],
    ) -> Customer:
        require_tenant(tenant)
        now = self._now()
        try:
            before = self.store.get_customer(tenant, customer_id)
        except NotFound:
            before = Customer(id=customer_id, version=1)
            after, events = command(before, now)
            after = attrs.evolve(after, version=1)
        else:
            after, events = command(before, now)
            if after is before:
                return before
        self._commit(tenant, ChangeSet(customers=(after,), events=tuple(events)))
        return after

    def add_customer_tag(self, tenant: str, customer_id: str, tag: str, *, by: str) -> Customer:
        """Tag a customer (the tag follows them into every later conversation);
        an unknown customer id is created."""
        return self._change_customer(
            tenant, customer_id,
            lambda c, now: commands.add_customer_tag(c, tag, at=now, by=by),
        )

    def remove_customer_tag(self, tenant: str, customer_id: str, tag: str, *, by: str) -> Customer:
        """Remove a customer tag (no-op if absent)."""
        self.store.get_customer(tenant, customer_id)
        return self._change_customer(
            tenant, customer_id,
            lambda c, now: commands.remove_customer_tag(c, tag, at=now, by=by),
        )

    def set_customer_plan(
        self, tenant: str, customer_id: str, plan: str | None, *, by: str
    ) -> Customer:
        """Set a customer's plan tier (new conversations snapshot it)."""
        return self._change_customer(
            tenant, customer_id,
            lambda c, now: commands.set_customer_plan(c, plan, at=now, by=by),
        )

    # -- conversations --------------------------------------------------------------

    def get_conversation(self, tenant: str, conversation_id: str) -> Conversation:
        """Conversation ``conversation_id``; ``NotFound`` if unknown."""
        return self.store.get_conversation(tenant, conversation_id)

    def query_conversations(
        self, tenant: str, query: ConversationQuery | None = None
    ) -> list[Conversation]:
        """Conversations matching ``query`` (customer, state, channel, room tag...)."""
        return self.store.query_conversations(
            tenant, query if query is not None else ConversationQuery()
        )

    def open_conversation(
        self,
        tenant: str,
        *,
        customer_id: str,
        channel: str,
        by: str,
        conversation_id: str | None = None,
        priority: Priority = Priority.NORMAL,
        assignee: str | None = None,
        room_tags: Iterable[str] = (),
    ) -> Conversation:
        """Open a conversation for ``customer_id`` (created on first contact),
        starting its SLA clocks and timers."""
        require_tenant(tenant)
        now = self._now()
        try:
            customer = self.store.get_customer(tenant, customer_id)
            new_customer: tuple[Customer, ...] = ()
        except NotFound:
            customer = Customer(id=customer_id)
            new_customer = (customer,)
        conversation, events = commands.open_conversation(
            conversation_id=conversation_id if conversation_id is not None else self._new_id(),
            channel=channel,
            customer=customer,
            at=now,
            by=by,
            priority=priority,
            assignee=assignee,
            room_tags=room_tags,
        )
        changes = self._settle(tenant, None, conversation, events, now)
        changes = attrs.evolve(changes, customers=new_customer)
        self._commit(tenant, changes)
        return changes.conversations[0]

    def record_message(
        self,
        tenant: str,
        conversation_id: str,
        author_kind: AuthorKind,
        *,
        at: datetime | None = None,
        automatic: bool = False,
        author_id: str | None = None,
    ) -> Conversation:
        """Tell cxflow a message was written (``at`` defaults to now): moves or
        cancels the auto-close timer, fulfils or starts SLA clocks, re-arms triggers."""
        return self._change(
            tenant,
            conversation_id,
            lambda c, now: commands.record_message(
                c, author_kind, at=at if at is not None else now,
                automatic=automatic, author_id=author_id,
            ),
        )

    def assign(
        self, tenant: str, conversation_id: str, assignee: str | None, *, by: str
    ) -> Conversation:
        """Set (or clear) the assignee."""
        return self._change(
            tenant, conversation_id, lambda c, now: commands.assign(c, assignee, at=now, by=by)
        )

    def set_waiting(
        self, tenant: str, conversation_id: str, waiting: bool, *, by: str
    ) -> Conversation:
        """Enter or leave waiting (on the customer or a third party): SLA clocks pause."""
        return self._change(
            tenant, conversation_id, lambda c, now: commands.set_waiting(c, waiting, at=now, by=by)
        )

    def set_priority(
        self, tenant: str, conversation_id: str, priority: Priority, *, by: str
    ) -> Conversation:
        """Change the priority (running SLA clocks keep their targets)."""
        return self._change(
            tenant, conversation_id,
            lambda c, now: commands.set_priority(c, priority, at=now, by=by),
        )

    def add_room_tag(self, tenant: str, conversation_id: str, tag: str, *, by: str) -> Conversation:
        """Tag this conversation only."""
        return self._change(
            tenant, conversation_id, lambda c, now: commands.add_room_tag(c, tag, at=now, by=by)
        )

    def remove_room_tag(
        self, tenant: str, conversation_id: str, tag: str, *, by: str
    ) -> Conversation:
        """Remove a room tag."""
        return self._change(
            tenant, conversation_id, lambda c, now: commands.remove_room_tag(c, tag, at=now, by=by)
        )

    def close(
        self, tenant: str, conversation_id: str, *, by: str, reason: str | None = None
    ) -> Conversation:
        """Close by hand: fulfils resolution, cancels the conversation's timers."""
        return self._change(
            tenant, conversation_id, lambda c, now: commands.close(c, at=now, by=by, reason=reason)
        )

    def reopen(
        self, tenant: str, conversation_id: str, *, by: str, reason: str | None = None
    ) -> Conversation:
        """Reopen: the resolution clock resumes with the time it had consumed."""
        return self._change(
            tenant, conversation_id, lambda c, now: commands.reopen(c, at=now, by=by, reason=reason)
        )

    # -- timers ---------------------------------------------------------------------

    def timer_handlers(self) -> dict[str, TimerHandler]:
        """Handlers for ``TimerWorker``: auto-close, SLA and trigger timers."""
        return {
            autoclose.AUTOCLOSE_TIMER_KIND: self._on_autoclose,
            SLA_TIMER_KIND: self._on_sla,
            TRIGGER_TIMER_KIND: self._on_trigger,
        }

    def _subject(self, tenant: str, timer: Timer) -> Conversation | None:
        try:
            return self.store.get_conversation(tenant, timer.subject_id)
        except NotFound:
            return None

    def _on_autoclose(self, tenant: str, timer: Timer, at: datetime) -> ChangeSet:
        policy = self.settings(tenant).autoclose
        conversation = self._subject(tenant, timer)
        if policy is None or conversation is None:
            return ChangeSet()
        due = autoclose.due(policy, conversation)
        if due is None or not autoclose.still_due(policy, conversation, due.rule, at):
            return ChangeSet()
        closed, events = autoclose.close_by_rule(policy, conversation, due.rule, at=at)
        fired = timer.fired(at)
        return self._without_timer(self._settle(tenant, conversation, closed, events, at,
                                                timers=(fired,)), timer.id)

    def _on_sla(self, tenant: str, timer: Timer, at: datetime) -> ChangeSet:
        policy = self.settings(tenant).sla
        conversation = self._subject(tenant, timer)
        if policy is None or conversation is None:
            return ChangeSet()
        clocks = list(conversation.sla)
        for index, clock in enumerate(clocks):
            if sla_timer_id(clock.metric, conversation.id) != timer.id:
                continue
            checked, what = sla_clocks.check_clock(policy, clock, at)
            if what is None:
                return ChangeSet()
            clocks[index] = checked
            updated = attrs.evolve(
                conversation, sla=tuple(clocks), updated_at=at, version=conversation.version + 1
            )
            extra = {"escalation": policy.escalation} if what == "breached" else {}
            event = self._sla_event(updated, what, checked, at, **extra)
            fired = timer.fired(at)
            return self._without_timer(
                self._settle(tenant, updated, updated, [event], at, timers=(fired,)), timer.id
            )
        return ChangeSet()

    def _on_trigger(self, tenant: str, timer: Timer, at: datetime) -> ChangeSet:
        conversation = self._subject(tenant, timer)
        if conversation is None:
            return ChangeSet()
        for trigger in self.settings(tenant).triggers:
            if trigger_timer_id(trigger.id, conversation.id) != timer.id:
                continue
            deadline = trigger.deadline(conversation)
            if deadline is None or deadline > at:
                return ChangeSet()
            anchor = trigger.anchor(conversation)
            assert anchor is not None
            event = TimeTriggerFired(
                trigger_id=trigger.id,
                action=trigger.action.kind.value,
                target=trigger.action.target,
                note=trigger.action.note,
                since=anchor,
                at=at,
                by="cxflow",
                conversation_id=conversation.id,
                customer_id=conversation.customer_id,
            )
            return ChangeSet(events=(event,))
        return ChangeSet()

    @staticmethod
    def _without_timer(changes: ChangeSet, timer_id: str) -> ChangeSet:
        """Drop the fired version of ``timer_id`` from a handler's changes (the
        worker writes it) but keep any later version (a rescheduled cycle)."""
        timers = list(changes.timers)
        for index, timer in enumerate(timers):
            if timer.id == timer_id:
                del timers[index]
                break
        return attrs.evolve(changes, timers=tuple(timers))
