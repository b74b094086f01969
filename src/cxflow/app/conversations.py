"""``ConversationService``: conversations, customers, auto-close, SLA and time
triggers for a host.

Like ``TaskService`` it is a thin shell: each call runs as one unit of work
(``cxflow.app.unit``) that loads a snapshot, runs a pure command at the
unit's instant and stages the new snapshot and its events. The writer's
reactors (``cxflow.app.reactors``) then sync its SLA clocks and bring its
timers in line with its new state (one per running SLA clock, one per time
trigger, the auto-close timer), and the writer commits it all in one atomic
write. ``timer_handlers()`` gives ``TimerWorker`` what to do when those
timers fire.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import attrs

from cxflow import _validate as v
from cxflow._records import open_copy
from cxflow.app.reactors import sla as sla_reactor
from cxflow.app.reactors import timekeeping
from cxflow.app.reactors.sla import SLA_TIMER_KIND, sla_timer_id
from cxflow.app.reactors.timers import TRIGGER_TIMER_KIND
from cxflow.app.unit import EventSink, UnitOfWork, Writer, WritesThrough, as_committed
from cxflow.app.worker import TimerHandler, UnitTimerHandler, settled
from cxflow.assignment.model import Routing
from cxflow.clock import Clock, ensure_aware
from cxflow.conversations import autoclose, commands
from cxflow.conversations.model import AuthorKind, Conversation, Customer
from cxflow.conversations.query import ConversationQuery, CustomerQuery
from cxflow.conversations.settings import ConversationSettings
from cxflow.errors import ConflictError, NotFound, ValidationError
from cxflow.events import Event, TimeTriggerFired
from cxflow.storage.protocols import ChangeSet, FullStore, require_tenant
from cxflow.tasks.model import Priority
from cxflow.timers.model import Timer
from cxflow.timers.triggers import trigger_timer_id

__all__ = [
    "MESSAGE_CLOCK_SKEW",
    "SLA_TIMER_KIND",
    "TRIGGER_TIMER_KIND",
    "ConversationService",
    "sla_timer_id",
]

MESSAGE_CLOCK_SKEW = timedelta(seconds=30)
"""How far after the clock's now a recorded message's instant may lie (host
clocks drift); anything later is refused, so a wrong instant cannot push
auto-close or SLA deadlines into the future."""

def _routing(
    conversation: Conversation,
    arrived_at: datetime,
    *,
    skills: tuple[str, ...],
    group: str | None,
    vip: bool,
) -> Routing:
    """The routing record a conversation asks for assignment with."""
    return Routing(
        conversation_id=conversation.id,
        channel=conversation.channel,
        arrived_at=arrived_at,
        plan=conversation.plan,
        vip=vip,
        priority=conversation.priority,
        skills=skills,
        group=group,
    )


_NO_AUTOMATION = ConversationSettings()


class ConversationService(WritesThrough):
    """Conversations and customers for a host, built from a store, a clock, an
    event sink and the tenants' settings.

    ``settings`` is one ``ConversationSettings`` for every tenant, or a
    callable ``tenant -> ConversationSettings`` (read on every call, so a host
    can change a tenant's policy at run time; existing timers move on the
    conversation's next change).

    Every change runs as one unit of work through ``writer`` (see
    ``cxflow.app.unit``); lost races are retried on fresh reads. Built by
    hand, a service has a writer of its own and cannot route
    (``open_conversation(route=True)`` is refused); a ``cxflow.Session``
    builds it with the engine's writer, whose reactors keep assignment in
    step with every conversation change. ``routing``: which tenants route
    conversations by default (set by the engine).
    """

    def __init__(
        self,
        store: FullStore,
        clock: Clock | None = None,
        sink: EventSink | None = None,
        settings: ConversationSettings | Callable[[str], ConversationSettings] = (
            _NO_AUTOMATION
        ),
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        *,
        writer: Writer | None = None,
        routing: Callable[[str], bool] | None = None,
    ) -> None:
        self.store = store
        self._settings = settings
        self._use_writer(
            store, clock, sink, writer,
            reactors=lambda: timekeeping(conversations=self.settings),
        )
        self._new_id = new_id
        self._routing = routing

    # -- plumbing -------------------------------------------------------------------

    def settings(self, tenant: str) -> ConversationSettings:
        """The settings in force for ``tenant``."""
        found = self._settings(tenant) if callable(self._settings) else self._settings
        if not isinstance(found, ConversationSettings):
            raise ValidationError("settings", "expected ConversationSettings")
        return found

    def _change(
        self,
        tenant: str,
        conversation_id: str,
        command: Callable[[Conversation, datetime], tuple[Conversation, list[Event]]],
        expected_version: int | None = None,
        *,
        by: object = None,
        then: Callable[[UnitOfWork, Conversation, Conversation], None] | None = None,
    ) -> Conversation:
        """Run ``command`` on the stored conversation in a unit of work;
        ``then(unit, before, after)`` stages what else follows a change."""
        actor = None if by is None else v.actor(by)

        def build(unit: UnitOfWork) -> Conversation:
            if actor is not None:
                unit.by = actor
            before = unit.stored_conversation(conversation_id)
            if before is None:
                raise NotFound("conversation", conversation_id)
            if expected_version is not None and before.version != expected_version:
                raise ConflictError(
                    f"conversation {conversation_id!r} is at v{before.version}, "
                    f"caller expected v{expected_version}"
                )
            after, events = command(before, unit.at)
            if after is before:
                unit.seen(before)
                unit.emit(events)  # e.g. an intent that changes no state
                return before
            unit.stage_conversation(after, before=before, events=events)
            if then is not None:
                then(unit, before, after)
            return after

        result, committed = self._writer.execute(tenant, build)
        return as_committed(result, committed)

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
        def build(unit: UnitOfWork) -> Customer:
            try:
                before = self.store.get_customer(unit.tenant, customer_id)
            except NotFound:
                before = Customer(id=customer_id, version=1)
                after, events = command(before, unit.at)
                after = attrs.evolve(after, version=1)
            else:
                after, events = command(before, unit.at)
                if after is before:
                    return before
            unit.add(ChangeSet(customers=(after,), events=tuple(events)))
            return after

        return self._writer.execute(tenant, build)[0]

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
        route: bool | None = None,
        skills: Iterable[str] = (),
        group: str | None = None,
        vip: bool = False,
    ) -> Conversation:
        """Open a conversation for ``customer_id`` (created on first contact),
        starting its SLA clocks and timers.

        ``route``: queue it for assignment in the same commit (default: when
        the tenant's engine settings route conversations). The routing takes
        the conversation's channel, plan and priority, plus ``skills``,
        ``group`` and ``vip``; it goes to the best free agent or waits.
        ``ValidationError`` when routing is asked for but not set up, or when
        ``assignee`` is given too (an assigned conversation is not routed)."""
        require_tenant(tenant)
        route = self._routes(tenant, route, assignee is None)
        if route and assignee is not None:
            raise ValidationError("assignee", "a routed conversation gets its agent from routing")
        skills = v.check_names(skills, "skills")
        new_id = conversation_id if conversation_id is not None else self._new_id()

        def build(unit: UnitOfWork) -> Conversation:
            unit.by = v.actor(by)
            unit.prefetch(
                conversations=() if conversation_id is None else (conversation_id,),
                customers=(customer_id,),
            )
            if conversation_id is not None and unit.stored_conversation(conversation_id):
                raise ConflictError(f"conversation {conversation_id!r} already exists")
            found = unit.customer(customer_id)
            new_customer: tuple[Customer, ...] = ()
            if found is None:
                customer = Customer(id=customer_id)
                new_customer = (customer,)
            else:
                customer = found
            conversation, events = commands.open_conversation(
                conversation_id=new_id,
                channel=channel,
                customer=customer,
                at=unit.at,
                by=by,
                priority=priority,
                assignee=assignee,
                room_tags=room_tags,
            )
            if route:
                unit.routes[conversation.id] = _routing(
                    conversation, conversation.opened_at, skills=skills, group=group, vip=vip
                )
            unit.stage_conversation(
                conversation, before=None, events=events, customers=new_customer
            )
            return conversation

        result, committed = self._writer.execute(tenant, build)
        return as_committed(result, committed)

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
        cancels the auto-close timer, fulfils or starts SLA clocks, re-arms
        triggers; under an engine that routes, a counted agent reply answers
        the conversation's assignment (its no-answer timer is cancelled).

        ``at`` later than now by more than ``MESSAGE_CLOCK_SKEW`` is a
        ``ValidationError`` (field ``at``)."""

        def run(c: Conversation, now: datetime) -> tuple[Conversation, list[Event]]:
            instant = now if at is None else ensure_aware(at, "at")
            if instant > now + MESSAGE_CLOCK_SKEW:
                raise ValidationError(
                    "at", f"{instant.isoformat()} is in the future (now is {now.isoformat()})"
                )
            return commands.record_message(
                c, author_kind, at=instant, automatic=automatic, author_id=author_id
            )

        return self._change(
            tenant, conversation_id, run,
            by=author_id if author_id is not None else getattr(author_kind, "value", None),
        )

    def assign(
        self, tenant: str, conversation_id: str, assignee: str | None, *, by: str
    ) -> Conversation:
        """Set (or clear) the assignee."""
        return self._change(
            tenant, conversation_id,
            lambda c, now: commands.assign(c, assignee, at=now, by=by),
            by=by,
        )

    def set_waiting(
        self, tenant: str, conversation_id: str, waiting: bool, *, by: str
    ) -> Conversation:
        """Enter or leave waiting (on the customer or a third party): SLA clocks pause."""
        return self._change(
            tenant, conversation_id,
            lambda c, now: commands.set_waiting(c, waiting, at=now, by=by),
            by=by,
        )

    def set_priority(
        self, tenant: str, conversation_id: str, priority: Priority, *, by: str
    ) -> Conversation:
        """Change the priority (running SLA clocks keep their targets)."""
        return self._change(
            tenant, conversation_id,
            lambda c, now: commands.set_priority(c, priority, at=now, by=by), by=by,
        )

    def add_room_tag(self, tenant: str, conversation_id: str, tag: str, *, by: str) -> Conversation:
        """Tag this conversation only."""
        return self._change(
            tenant, conversation_id,
            lambda c, now: commands.add_room_tag(c, tag, at=now, by=by),
            by=by,
        )

    def remove_room_tag(
        self, tenant: str, conversation_id: str, tag: str, *, by: str
    ) -> Conversation:
        """Remove a room tag."""
        return self._change(
            tenant, conversation_id,
            lambda c, now: commands.remove_room_tag(c, tag, at=now, by=by),
            by=by,
        )

    def close(
        self, tenant: str, conversation_id: str, *, by: str, reason: str | None = None
    ) -> Conversation:
        """Close by hand: fulfils resolution, cancels the conversation's timers."""
        return self._change(
            tenant, conversation_id,
            lambda c, now: commands.close(c, at=now, by=by, reason=reason),
            by=by,
        )

    def reopen(
        self,
        tenant: str,
        conversation_id: str,
        *,
        by: str,
        reason: str | None = None,
        route: bool | None = None,
        skills: Iterable[str] = (),
        group: str | None = None,
        vip: bool = False,
    ) -> Conversation:
        """Reopen: the resolution clock resumes with the time it had consumed.

        ``route``: send it back through assignment in the same commit
        (default: when the tenant's engine settings route conversations). Its
        routing was finished when it closed, so it arrives again, now, with the
        conversation's channel, plan and priority plus ``skills``, ``group``
        and ``vip``: it goes to the best free agent (not necessarily the one
        it had) or waits, and its assignee follows. ``route=False`` keeps the
        assignee and leaves it unrouted."""
        route = self._routes(tenant, route, True)
        skills = v.check_names(skills, "skills")

        def then(unit: UnitOfWork, before: Conversation, after: Conversation) -> None:
            if route and not before.open and after.open:
                unit.routes[after.id] = _routing(
                    after, unit.at, skills=skills, group=group, vip=vip
                )

        return self._change(
            tenant, conversation_id,
            lambda c, now: commands.reopen(c, at=now, by=by, reason=reason),
            by=by,
            then=then,
        )

    def _routes(self, tenant: str, route: object, by_default: bool) -> bool:
        """Whether a call that takes ``route`` routes: ``None`` means when the
        tenant's engine settings route (and ``by_default``); ``ValidationError``
        for anything but a bool or ``None``, or routing asked for without them."""
        routes = self._routing(tenant) if self._routing is not None else False
        if route is None:
            return routes and by_default
        if not isinstance(route, bool):
            raise ValidationError("route", "expected True, False or None")
        if route and not routes:
            raise ValidationError(
                "route", "routing needs an engine whose tenant settings set assignment"
            )
        return route

    # -- timers ---------------------------------------------------------------------

    def timer_handlers(self) -> dict[str, TimerHandler]:
        """Handlers for a hand-built ``TimerWorker``: auto-close, SLA and
        trigger timers (each returns its fire's changes with this service's
        reactors applied)."""
        return settled(self._writer, self.unit_timer_handlers())

    def unit_timer_handlers(self) -> dict[str, UnitTimerHandler]:
        """The same handlers, staging on the fire's unit of work (a
        ``cxflow.Session`` wires these: the engine's reactors follow them)."""
        return {
            autoclose.AUTOCLOSE_TIMER_KIND: self._on_autoclose,
            SLA_TIMER_KIND: self._on_sla,
            TRIGGER_TIMER_KIND: self._on_trigger,
        }

    def _on_autoclose(self, unit: UnitOfWork, timer: Timer) -> None:
        policy = self.settings(unit.tenant).autoclose
        conversation = unit.stored_conversation(timer.subject_id)
        if policy is None or conversation is None:
            return
        due = autoclose.due(policy, conversation)
        if due is None or not autoclose.still_due(policy, conversation, due.rule, unit.at):
            return
        closed, events = autoclose.close_by_rule(policy, conversation, due.rule, at=unit.at)
        unit.stage_conversation(closed, before=conversation, events=events)

    def _on_sla(self, unit: UnitOfWork, timer: Timer) -> None:
        policy = self.settings(unit.tenant).sla
        conversation = unit.stored_conversation(timer.subject_id)
        if policy is None or conversation is None:
            return
        for clock in conversation.sla:
            if sla_timer_id(clock.metric, conversation.id) != timer.id:
                continue
            fired = sla_reactor.fire(
                policy, conversation.sla, clock.metric, unit.at,
                subject=sla_reactor.CONVERSATION, subject_id=conversation.id,
            )
            if fired is not None:
                updated = open_copy(
                    conversation, sla=fired[0], updated_at=unit.at,
                    version=conversation.version + 1,
                )
                unit.stage_conversation(updated, before=conversation, events=fired[1])
            return

    def _on_trigger(self, unit: UnitOfWork, timer: Timer) -> None:
        conversation = unit.stored_conversation(timer.subject_id)
        if conversation is None:
            return
        for trigger in self.settings(unit.tenant).triggers:
            if trigger_timer_id(trigger.id, conversation.id) != timer.id:
                continue
            deadline = trigger.deadline(conversation)
            if deadline is None or deadline > unit.at:
                return
            anchor = trigger.anchor(conversation)
            assert anchor is not None
            unit.emit(
                [
                    TimeTriggerFired(
                        trigger_id=trigger.id,
                        action=trigger.action.kind.value,
                        target=trigger.action.target,
                        note=trigger.action.note,
                        since=anchor,
                        at=unit.at,
                        by="cxflow",
                        conversation_id=conversation.id,
                        customer_id=conversation.customer_id,
                    )
                ]
            )
            return

