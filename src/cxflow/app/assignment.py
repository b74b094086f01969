"""``AssignmentService``: the scheduler of every tenant, kept durable in a store.

Each call runs one ``Scheduler`` operation on the tenant's in-memory
scheduler, then commits what changed in one atomic write: the agents and
routing records touched (read from the store and written at their next
version), the events, the no-answer timers, and the tenant's **routing
version** + 1. The routing version is the fence that keeps several host
processes honest: a process whose scheduler is behind (another process
committed since) sees a different stored version and rebuilds its scheduler
from the store before deciding; two processes deciding from the same state
race on the version, and the loser rebuilds and runs the call again. So
capacity is never exceeded and no conversation is held twice, however many
processes route one tenant.

A scheduler rebuilt from the store (``Scheduler.restore``) takes the same
decisions as the one that wrote it.

Every call runs as one unit of work (``cxflow.app.unit``), and
``AssignmentService.stage`` lets other writes of the same unit (a
conversation opened, closed or answered, under a ``cxflow.Engine``) change
assignment in their own commit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import Protocol, cast, runtime_checkable

import attrs

from cxflow import _validate as v
from cxflow._records import replace_trusted
from cxflow.app.unit import EventSink, UnitOfWork, Writer, WritesThrough, trusted_changes
from cxflow.app.worker import TimerHandler
from cxflow.assignment.model import Agent, Presence, Routing
from cxflow.assignment.scheduler import Decision, Explanation, Scheduler
from cxflow.assignment.settings import AssignmentSettings
from cxflow.clock import Clock, duration_us, from_epoch_us
from cxflow.conversations import commands as conversation_commands
from cxflow.errors import ConflictError, CxflowError, NotFound, ValidationError
from cxflow.events import (
    AgentAssigned,
    AgentChanged,
    AssignmentFinished,
    ConversationQueued,
    Event,
)
from cxflow.storage.protocols import (
    AssignmentStore,
    ChangeSet,
    ChangeWriter,
    ConversationStore,
    HostTransaction,
    TimerStore,
    provides,
    require_tenant,
)
from cxflow.timers.model import Timer, plan_timer, subject_timer_id

__all__ = [
    "NO_ANSWER_TIMER_KIND",
    "AssignmentBackend",
    "AssignmentService",
    "AssignmentSettings",
    "no_answer_timer_id",
]

NO_ANSWER_TIMER_KIND = "assignment.no_answer"
"""The ``Timer.kind`` of the timers that take back unanswered conversations."""

log = logging.getLogger("cxflow.assignment")

_DEFAULT_SETTINGS = AssignmentSettings()


def no_answer_timer_id(conversation_id: str) -> str:
    """The id of a conversation's no-answer timer."""
    return subject_timer_id(NO_ANSWER_TIMER_KIND, conversation_id)


@runtime_checkable
class AssignmentBackend(AssignmentStore, ChangeWriter, Protocol):
    """What ``AssignmentService`` needs of a store (``TimerStore`` too when
    ``AssignmentSettings.no_answer_after`` is set)."""


@attrs.define
class _Tenant:
    """A tenant's scheduler, the routing version it reflects, and the routing
    records and agent versions stored at that version (every write of either
    moves the version, so while it matches the store's they are the store's)."""

    scheduler: Scheduler
    version: int
    settings: AssignmentSettings
    routings: dict[str, Routing]
    agent_versions: dict[str, int]

    def written(self, changes: ChangeSet) -> None:
        """Bring the records in line with ``changes``, just committed."""
        for routing in changes.routings:
            self.routings[routing.conversation_id] = routing
        for conversation_id in changes.finished_routings:
            self.routings.pop(conversation_id, None)
        for agent in changes.agents:
            self.agent_versions[agent.id] = agent.version
        if changes.routing_version is not None:
            self.version = changes.routing_version


LOCK_TIMEOUT = 30.0
"""Seconds a unit waits for another transaction to release a tenant's
scheduler before it fails with ``ConflictError``."""


class TenantLock:
    """A tenant's scheduler lock, held by a *transaction*, not a thread.

    ``acquire(owner)`` waits until no other owner holds it; the same owner may
    acquire again (several units of one host transaction). Any thread may
    release for its owner: a web framework may commit the host's transaction
    on another thread than the one that ran the call.
    """

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._owner: object | None = None
        self._depth = 0

    def acquire(self, owner: object, timeout: float = LOCK_TIMEOUT) -> None:
        """Hold the lock for ``owner``; ``ConflictError`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._ready:
            while self._owner is not None and self._owner is not owner:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ConflictError(
                        "the tenant's assignment is held by another transaction "
                        f"for more than {timeout:g} s"
                    )
                self._ready.wait(left)
            self._owner = owner
            self._depth += 1

    def release(self, owner: object) -> None:
        """Give back one hold of ``owner``."""
        with self._ready:
            if self._owner is not owner or self._depth == 0:
                raise RuntimeError("released a tenant lock its owner does not hold")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._ready.notify_all()


class SchedulerCache:
    """The in-memory schedulers of every tenant, with one lock per tenant.

    Process lifetime: one per ``cxflow.Engine`` (or per hand-built service),
    shared by every session and thread. A unit of work holds its tenant's
    lock from the moment it touches the scheduler until its commit is
    durable (or fails): until the host commits, when the unit wrote inside
    the host's transaction. Transactions of one process therefore take turns
    on a tenant's scheduler instead of racing on its routing version; other
    tenants are not held up. A thread must not hold two transactions on one
    tenant at once (the second would wait for the first).
    """

    def __init__(self) -> None:
        self._tenants: dict[str, _Tenant] = {}
        self._locks: dict[str, TenantLock] = {}
        self._guard = threading.Lock()

    def lock(self, tenant: str) -> TenantLock:
        """The lock of ``tenant`` (created on first use)."""
        with self._guard:
            found = self._locks.get(tenant)
            if found is None:
                found = self._locks[tenant] = TenantLock()
            return found

    def get(self, tenant: str) -> _Tenant | None:
        """The cached state of ``tenant`` (hold its lock)."""
        return self._tenants.get(tenant)

    def put(self, tenant: str, state: _Tenant) -> None:
        """Cache ``state`` for ``tenant`` (hold its lock)."""
        self._tenants[tenant] = state

    def drop(self, tenant: str) -> None:
        """Forget ``tenant``'s scheduler: the next unit rebuilds it from the store."""
        self._tenants.pop(tenant, None)


@attrs.define
class _Work:
    """One call's changes, gathered while the scheduler runs, then committed."""

    tenant: str
    scheduler: Scheduler
    settings: AssignmentSettings
    at: datetime
    by: str
    decisions: list[Decision] = attrs.Factory(list)
    events: list[Event] = attrs.Factory(list)
    agents: set[str] = attrs.Factory(set)
    new_routings: dict[str, Routing] = attrs.Factory(dict)
    finished: list[str] = attrs.Factory(list)
    answered: set[str] = attrs.Factory(set)


_Op = Callable[[_Work], None]


class AssignmentService(WritesThrough):
    """Assignment for a host: agents, routed conversations, the scheduler's
    decisions, and the no-answer timers (see the module docstring).

    ``settings`` is one ``AssignmentSettings`` for every tenant, or a callable
    ``tenant -> AssignmentSettings`` read on every call. Settings that differ
    from the last call's (by ``==``) rebuild that tenant's scheduler from the
    store, so a callable should return the same value each time: strategies
    that are values (attrs or dataclasses, like the built-in ones) compare
    equal; instances of plain classes compare by identity.

    A service keeps its schedulers in a ``SchedulerCache`` (the engine's,
    shared by its sessions, or one of its own), where each tenant's scheduler
    is locked by the transaction using it. Use a service from one thread at
    a time, like a database session. Any number of services, in any number
    of processes, may share one store.

    Each call returns the scheduler's decisions, in order; the same changes
    reach the outbox and the sink as events: ``agent.changed``,
    ``assignment.queued``, ``assignment.assigned``, ``assignment.finished``.
    """

    def __init__(
        self,
        store: AssignmentBackend,
        clock: Clock | None = None,
        sink: EventSink | None = None,
        settings: AssignmentSettings | Callable[[str], AssignmentSettings] = (
            _DEFAULT_SETTINGS
        ),
        *,
        writer: Writer | None = None,
        schedulers: SchedulerCache | None = None,
        sync_conversations: bool = False,
    ) -> None:
        if not provides(store, AssignmentBackend):
            raise ValidationError("store", "expected a store with the AssignmentStore tier")
        self.store = store
        # Protocol isinstance checks are slow: decide once which tiers the store has.
        self._timer_store: TimerStore | None = (
            cast(TimerStore, store) if provides(store, TimerStore) else None
        )
        self._conversation_store: ConversationStore | None = (
            cast(ConversationStore, store) if provides(store, ConversationStore) else None
        )
        self._use_writer(store, clock, sink, writer)
        self._settings = settings
        self._schedulers = schedulers if schedulers is not None else SchedulerCache()
        self._sync_always = sync_conversations
        self._host: HostTransaction | None = (
            cast(HostTransaction, store) if provides(store, HostTransaction) else None
        )

    # -- reading ------------------------------------------------------------------

    def settings(self, tenant: str) -> AssignmentSettings:
        """The settings in force for ``tenant``."""
        found = self._settings(tenant) if callable(self._settings) else self._settings
        if not isinstance(found, AssignmentSettings):
            raise ValidationError("settings", "expected AssignmentSettings")
        if found.no_answer_after is not None and self._timer_store is None:
            raise ValidationError(
                "settings", "no_answer_after needs a store with the TimerStore tier"
            )
        return found

    def scheduler(self, tenant: str) -> Scheduler:
        """The tenant's scheduler, in line with the store (rebuilt when another
        process committed since). Read from it; change state only through this
        service, or the store will not know."""
        tenant = require_tenant(tenant)
        owner = self._owner()
        lock = self._schedulers.lock(tenant)
        lock.acquire(owner)
        try:
            return self._tenant(tenant)[0].scheduler
        finally:
            lock.release(owner)

    def _owner(self) -> object:
        """Who holds a tenant lock for this service's next call: the host's
        open transaction, or a new owner of its own."""
        if self._host is not None:
            owner = self._host.transaction_owner()
            if owner is not None:
                return owner
        return object()

    def get_agent(self, tenant: str, agent_id: str) -> Agent:
        """Agent ``agent_id`` as stored; ``NotFound`` (kind ``"agent"``)."""
        return self.store.get_agent(tenant, agent_id)

    def get_routing(self, tenant: str, conversation_id: str) -> Routing:
        """The routing record of ``conversation_id``; ``NotFound`` (kind ``"routing"``)."""
        return self.store.get_routing(tenant, conversation_id)

    def explain(self, tenant: str, conversation_id: str) -> Explanation:
        """Why ``conversation_id`` is where it is (see ``Scheduler.explain``)."""
        return self.scheduler(tenant).explain(conversation_id)

    # -- agents -------------------------------------------------------------------

    def save_agent(
        self, tenant: str, agent: Agent, *, by: str, expected_version: int | None = None
    ) -> list[Decision]:
        """Add an agent or change one's profile and presence.

        The stored record gets the next version (``agent.version`` is not
        read); its ``turn`` and ``idle_since`` stay the scheduler's. An
        agent's version moves with every assignment, so by default the last
        profile written wins; pass ``expected_version`` (0 for "must be new")
        to get ``ConflictError`` when the stored version differs. Returns the
        decisions the change caused (see ``Scheduler.put_agent``)."""
        if not isinstance(agent, Agent):
            raise ValidationError("agent", "expected an Agent")
        if expected_version is not None and (
            not isinstance(expected_version, int) or expected_version < 0
        ):
            raise ValidationError("expected_version", "expected None or an integer >= 0")

        def op(work: _Work) -> None:
            stored = self._stored_agent(work.tenant, agent.id)
            current = 0 if stored is None else stored.version
            if expected_version is not None and expected_version != current:
                raise ConflictError(
                    f"agent {agent.id!r} is at v{current}; expected v{expected_version}"
                )
            if stored is None:  # the scheduler keeps these; a new agent starts without
                new = attrs.evolve(agent, turn=0, idle_since=None, version=1)
            else:
                new = attrs.evolve(agent, turn=stored.turn, idle_since=stored.idle_since)
            work.events.append(_agent_changed(new, stored, work.at, work.by))
            work.agents.add(agent.id)
            work.decisions += work.scheduler.put_agent(new, at=work.at)

        return self._run(tenant, op, by=by)

    def set_presence(
        self, tenant: str, agent_id: str, presence: Presence, *, by: str
    ) -> list[Decision]:
        """Set an agent's presence (``NotFound`` if unknown): online agents take
        waiting conversations; away agents keep theirs but get no new ones;
        offline agents' conversations go back to the queue."""
        if not isinstance(presence, Presence):
            raise ValidationError("presence", "expected a Presence")

        def op(work: _Work) -> None:
            stored = self.store.get_agent(work.tenant, agent_id)
            if stored.presence is presence:
                return
            changed = attrs.evolve(stored, presence=presence)
            work.events.append(_agent_changed(changed, stored, work.at, work.by))
            work.agents.add(agent_id)
            work.decisions += work.scheduler.put_agent(changed, at=work.at)

        return self._run(tenant, op, by=by)

    # -- conversations ------------------------------------------------------------

    def route(self, tenant: str, routing: Routing, *, by: str) -> list[Decision]:
        """Start routing a conversation: ``routing`` is new (version 1, waiting;
        ``ConflictError`` if the conversation is already routed). It goes to
        the best free eligible agent, or waits in the queue."""
        if not isinstance(routing, Routing):
            raise ValidationError("routing", "expected a Routing")
        if routing.version != 1:
            raise ValidationError("version", "a new routing record has version 1")

        return self._run(tenant, lambda work: _arrive(work, routing), by=by)

    def close(self, tenant: str, conversation_id: str, *, by: str) -> list[Decision]:
        """The conversation closed: its routing record is deleted, its agent's
        slot frees and the queue drains into it. ``NotFound`` if not routed."""

        return self._run(tenant, lambda work: _finish(work, conversation_id), by=by)

    def assign(
        self, tenant: str, conversation_id: str, agent_id: str, *, by: str, overflow: bool = False
    ) -> list[Decision]:
        """A person assigns or transfers ``conversation_id`` to ``agent_id``;
        beyond capacity only with ``overflow=True`` (see ``Scheduler.assign``)."""

        def op(work: _Work) -> None:
            work.decisions += work.scheduler.assign(
                conversation_id, agent_id, at=work.at, overflow=overflow
            )

        return self._run(tenant, op, by=by)

    def requeue(self, tenant: str, conversation_id: str, *, by: str) -> list[Decision]:
        """A person sends ``conversation_id`` back to the queue (keeping its arrival)."""

        def op(work: _Work) -> None:
            work.decisions += work.scheduler.requeue(conversation_id, at=work.at)

        return self._run(tenant, op, by=by)

    def answered(self, tenant: str, conversation_id: str, *, by: str) -> Routing:
        """The assignee replied: the no-answer timer is cancelled. Returns the
        routing record. ``ValidationError`` when the conversation is waiting."""
        conversation_id = v.check_id(conversation_id, "conversation_id")

        def op(work: _Work) -> None:
            if work.scheduler.holder(conversation_id) is None:
                raise ValidationError("conversation_id", f"{conversation_id!r} is waiting")

        _, committed = self._run_committed(tenant, op, by=by, answered=(conversation_id,))
        for routing in committed.routings:
            if routing.conversation_id == conversation_id:
                return routing
        return self.store.get_routing(tenant, conversation_id)  # answered already

    # -- timers -------------------------------------------------------------------

    def timer_handlers(self) -> dict[str, TimerHandler]:
        """Handlers for a hand-built ``TimerWorker``: the no-answer timers.
        (A ``cxflow.Engine`` wires ``handle_no_answer`` into its worker.)"""
        return {NO_ANSWER_TIMER_KIND: self._on_no_answer}

    def _on_no_answer(self, tenant: str, timer: Timer, at: datetime) -> ChangeSet:
        """The classic handler shape: the return is committed here, through the
        routing-version fence, and the worker gets the timer's next cycle."""

        def build(unit: UnitOfWork) -> ChangeSet:
            staged = self._send_back_unanswered(unit, timer)
            return self._replan(unit.tenant, timer, at, staged)

        return self._writer.execute(tenant, build)[0]

    def handle_no_answer(self, unit: UnitOfWork, timer: Timer) -> None:
        """Timer handler on a unit of work (the worker stages the fire): send
        the unanswered conversation back to the queue and plan the timer's
        next cycle, all in the fire's commit. Exactly-once: the return happens
        only while the routing record still shows the unanswered assignment
        the timer was planned for."""
        staged = self._send_back_unanswered(unit, timer)
        unit.add(self._replan(unit.tenant, timer, unit.at, staged))

    def _send_back_unanswered(self, unit: UnitOfWork, timer: Timer) -> Routing | None:
        """Stage the return of ``timer``'s conversation if it is still
        unanswered; return its routing record as the unit leaves it (``None``
        when it is not routed)."""
        settings = self.settings(unit.tenant)
        try:
            routing = self.store.get_routing(unit.tenant, timer.subject_id)
        except NotFound:
            return None
        if not _still_unanswered(routing, settings, timer.deadline):
            return routing
        conversation_id = routing.conversation_id

        agent = routing.agent
        assert agent is not None

        def op(work: _Work) -> None:
            work.decisions += work.scheduler.no_answer(conversation_id, agent, at=work.at)

        self.stage(unit, op, by="cxflow", skip_timer=timer.id)
        return unit.staged_routing(conversation_id) or routing

    def _replan(
        self, tenant: str, timer: Timer, at: datetime, routing: Routing | None
    ) -> ChangeSet:
        """The timer's next version after the worker writes it fired: pending
        again for the conversation's current unanswered assignment, if any."""
        settings = self.settings(tenant)
        due = None
        if (
            routing is not None
            and settings.no_answer_after is not None
            and routing.assigned_at is not None
            and not routing.answered
        ):
            due = routing.assigned_at + settings.no_answer_after
        change = plan_timer(
            timer.fired(at),
            timer_id=timer.id,
            kind=timer.kind,
            subject_id=timer.subject_id,
            deadline=due,
        )
        return ChangeSet() if change is None else ChangeSet(timers=(change,))

    # -- plumbing -----------------------------------------------------------------

    def _stored_agent(self, tenant: str, agent_id: str) -> Agent | None:
        try:
            return self.store.get_agent(tenant, agent_id)
        except NotFound:
            return None

    def _tenant(self, tenant: str, *, optimistic: bool = False) -> tuple[_Tenant, bool]:
        """The tenant's scheduler (hold the tenant lock), and whether it is known
        to be in line with the store: always, unless ``optimistic``, which
        trusts a cached scheduler without reading the store's routing version
        (the caller must then check it: the fence of a commit does)."""
        settings = self.settings(tenant)
        state = self._schedulers.get(tenant)
        fits = state is not None and (
            state.settings is settings or state.settings == settings
        )
        if optimistic and fits:
            assert state is not None
            return state, False
        version = self.store.routing_version(tenant)
        if state is None or state.version != version or not fits:
            if state is not None:
                log.info(
                    "tenant %r: rebuilding the scheduler from the store (routing v%d, "
                    "cached v%d)", tenant, version, state.version,
                )
            agents = self.store.list_agents(tenant)
            routings = self.store.list_routings(tenant)
            state = _Tenant(
                settings.new_scheduler(agents, routings),
                version,
                settings,
                {routing.conversation_id: routing for routing in routings},
                {agent.id: agent.version for agent in agents},
            )
            self._schedulers.put(tenant, state)
        return state, True

    def _in_line(self, tenant: str, state: _Tenant) -> bool:
        """Whether the store's routing version is still the one ``state`` reflects."""
        return self.store.routing_version(tenant) == state.version

    def stage_conversation_changes(
        self,
        unit: UnitOfWork,
        *,
        routes: Iterable[Routing] = (),
        closed: Iterable[str] = (),
        answered: Iterable[str] = (),
        handoffs: Iterable[tuple[str, str | None]] = (),
    ) -> list[Decision]:
        """Stage on ``unit`` what conversation changes mean for assignment:
        ``routes`` start routing; ``closed`` conversations finish theirs (their
        agent's slot frees and the queue drains into it); ``answered`` ones
        have their no-answer timer cancelled; ``handoffs`` ``(conversation,
        agent or None)`` transfer or requeue by hand. Conversations that are
        not routed are left alone, and a route for one already routed is
        dropped. The reactor of ``cxflow.app.reactors`` calls this; the actor
        is ``unit.by``."""
        routes, closed, answered, handoffs = (
            list(routes), list(closed), list(answered), list(handoffs)
        )

        def op(work: _Work) -> None:
            scheduler = work.scheduler
            for routing in routes:
                if not _routed(scheduler, routing.conversation_id):  # reopened, still routed
                    _arrive(work, routing)
            for cid in closed:
                if _routed(scheduler, cid):
                    _finish(work, cid)
            for cid, agent in handoffs:
                if not _routed(scheduler, cid) or scheduler.holder(cid) == agent:
                    continue
                if agent is None:
                    work.decisions += scheduler.requeue(cid, at=work.at)
                else:
                    work.decisions += scheduler.assign(cid, agent, at=work.at)
            work.answered.update(
                cid for cid in answered
                if _routed(scheduler, cid) and scheduler.holder(cid) is not None
            )

        return self.stage(unit, op, by=unit.by)

    def _run(
        self,
        tenant: str,
        op: _Op,
        *,
        by: str,
        answered: Collection[str] = (),
    ) -> list[Decision]:
        """Run ``op`` on the tenant's scheduler in a unit of work of its own."""
        return self._run_committed(tenant, op, by=by, answered=answered)[0]

    def _run_committed(
        self,
        tenant: str,
        op: _Op,
        *,
        by: str,
        answered: Collection[str] = (),
    ) -> tuple[list[Decision], ChangeSet]:
        """``_run``, also returning what the unit committed."""
        by = v.actor(by)
        return self._writer.execute(
            tenant, lambda unit: self.stage(unit, op, by=by, answered=answered)
        )

    def stage(
        self,
        unit: UnitOfWork,
        op: _Op,
        *,
        by: str,
        answered: Collection[str] = (),
        skip_timer: str | None = None,
    ) -> list[Decision]:
        """Run ``op`` on the tenant's scheduler and stage on ``unit`` what makes
        the store match it: agents, routing records, no-answer timers, events,
        conversations' assignees, and the routing version + 1. Once per unit.

        The tenant's scheduler is locked (``SchedulerCache``) until the unit's
        changes are durable, which inside a host's transaction means until
        the host commits; later units of that transaction reuse it. If the
        unit fails, or the host's transaction rolls back, the scheduler is
        dropped and the next unit rebuilds it from the store."""
        if unit.routing_staged:
            raise ValidationError("unit", "one unit of work stages assignment once")
        # A decision changes the scheduler in memory, which a refused commit
        # cannot undo (it is rebuilt): decide on the store's snapshots only.
        unit.need_fresh_reads()
        unit.routing_staged = True
        tenant = unit.tenant
        owner = self._owner()
        lock = self._schedulers.lock(tenant)
        lock.acquire(owner)

        def discard() -> None:
            self._schedulers.drop(tenant)
            lock.release(owner)

        unit.on_commit(lambda: lock.release(owner))
        unit.on_abort(discard)
        # Outside a host's transaction the cached scheduler is trusted: a unit
        # that moves the routing version is checked by the commit's fence; one
        # that does not, or fails, reads the version to be sure.
        own = self._host is None or self._host.transaction_owner() is None
        state, current = self._tenant(tenant, optimistic=own)
        while True:
            work = _Work(tenant, state.scheduler, state.settings, unit.at, by)
            work.answered.update(answered)
            try:
                op(work)
                changes = self._changes(work, state, work.answered, skip_timer, unit)
            except CxflowError:
                if current or self._in_line(tenant, state):
                    raise
            else:
                if current or changes.routing_version is not None or self._in_line(
                    tenant, state
                ):
                    break
            log.info("tenant %r: the cached scheduler was behind the store", tenant)
            self._schedulers.drop(tenant)
            state, current = self._tenant(tenant)
        unit.add(changes)
        unit.on_written(lambda: state.written(changes))
        return work.decisions

    def _changes(
        self,
        work: _Work,
        state: _Tenant,
        answered: set[str],
        skip_timer: str | None,
        unit: UnitOfWork,
    ) -> ChangeSet:
        """The records, events and timers that make the store match the scheduler;
        ``version`` is the routing version they are written at. Conversations
        whose assignee changes are staged on ``unit`` directly."""
        scheduler = work.scheduler
        agents = set(work.agents)
        routed: dict[str, None] = {}
        assigned_now: set[str] = set()
        for decision in work.decisions:
            routed[decision.conversation_id] = None
            if decision.agent_id is not None:
                agents.add(decision.agent_id)
                assigned_now.add(decision.conversation_id)
            else:
                assigned_now.discard(decision.conversation_id)
            if decision.previous_agent is not None:
                agents.add(decision.previous_agent)
        for cid in answered:
            routed[cid] = None
        for cid in work.new_routings:
            routed.setdefault(cid, None)
        finished = set(work.finished)
        stored_routings: dict[str, Routing] = {}
        for cid in routed:
            if cid in finished:
                continue
            found = work.new_routings.get(cid) or state.routings.get(cid)
            if found is None:  # the scheduler knew it, the store no longer does
                raise ConflictError(f"routing {cid!r}: finished by a concurrent commit")
            stored_routings[cid] = found
        events = list(work.events)
        events += [self._decision_event(work, d, stored_routings) for d in work.decisions]
        routings: list[Routing] = []
        timers: list[Timer] = []
        for cid, stored in stored_routings.items():
            base = work.new_routings.get(cid)
            holder = scheduler.holder(cid)
            moved = cid in assigned_now or holder != stored.agent
            record = replace_trusted(
                stored,
                agent=holder,
                assigned_at=(
                    None if holder is None else work.at if moved else stored.assigned_at
                ),
                overflow=holder is not None and scheduler.overflow(cid),
                answered=holder is not None
                and (cid in answered or (not moved and stored.answered)),
                declined=scheduler.declined(cid),
                version=1 if base is not None else stored.version + 1,
            )
            routings.append(record)
            if work.settings.no_answer_after is not None and (
                moved or cid in answered or holder is None
            ):
                due = (
                    None
                    if holder is None or record.answered or record.assigned_at is None
                    else record.assigned_at + work.settings.no_answer_after
                )
                timers += self._plan_no_answer(work.tenant, cid, due, skip_timer)
        if work.settings.no_answer_after is not None:
            for cid in finished:
                timers += self._plan_no_answer(work.tenant, cid, None, skip_timer)
        if self._sync_always or (
            work.settings.sync_conversations and self._conversation_store is not None
        ):
            # One round trip for them all where the store batches reads.
            unit.prefetch(conversations=[record.conversation_id for record in routings])
            for record in routings:
                conversation = unit.conversation(record.conversation_id)
                if conversation is None:
                    continue
                updated, assigned = conversation_commands.assign(
                    conversation, record.agent, at=work.at, by=work.by
                )
                if updated is not conversation:
                    unit.put_conversation(updated)
                    events += assigned
        agent_records = []
        for agent_id in sorted(agents):
            stored_version = state.agent_versions.get(agent_id, 0)
            # Scheduler.agent_record, without validating the agent again.
            agent_state = scheduler.agent_state(agent_id)
            agent_records.append(
                replace_trusted(
                    agent_state.agent,
                    turn=agent_state.turn,
                    idle_since=from_epoch_us(agent_state.idle_us) if agent_state.idle_us else None,
                    version=stored_version + 1,
                )
            )
        moved = bool(agent_records or routings or work.finished)
        return trusted_changes(
            agents=tuple(agent_records),
            routings=tuple(routings),
            finished_routings=tuple(work.finished),
            timers=tuple(timers),
            events=tuple(events),
            # The fence moves only when assignment state does.
            routing_version=state.version + 1 if moved else None,
        )

    def _plan_no_answer(
        self, tenant: str, conversation_id: str, due: datetime | None, skip_timer: str | None
    ) -> list[Timer]:
        timer_id = no_answer_timer_id(conversation_id)
        if timer_id == skip_timer:
            return []
        assert self._timer_store is not None  # settings() refuses no_answer_after without it
        try:
            current: Timer | None = self._timer_store.get_timer(tenant, timer_id)
        except NotFound:
            current = None
        change = plan_timer(
            current,
            timer_id=timer_id,
            kind=NO_ANSWER_TIMER_KIND,
            subject_id=conversation_id,
            deadline=due,
        )
        return [] if change is None else [change]

    @staticmethod
    def _decision_event(
        work: _Work, decision: Decision, routings: dict[str, Routing]
    ) -> Event:
        routing = routings[decision.conversation_id]
        if decision.agent_id is None:
            return ConversationQueued(
                conversation_id=decision.conversation_id,
                channel=routing.channel,
                level=work.settings.policy.level(routing),
                arrived_at=routing.arrived_at,
                reason=decision.reason,
                previous_agent=decision.previous_agent,
                at=work.at,
                by=work.by,
            )
        auto = decision.reason == "auto"
        settings = work.settings
        strategy = settings.strategy
        if routing.group is not None:
            strategy = settings.group_strategies.get(routing.group, strategy)
        return AgentAssigned(
            conversation_id=decision.conversation_id,
            agent_id=decision.agent_id,
            reason=decision.reason,
            strategy=strategy.name if auto else None,
            previous_agent=decision.previous_agent,
            overflow=decision.overflow,
            waited_us=max(duration_us(work.at - routing.arrived_at), 0),
            at=work.at,
            by="cxflow" if auto else work.by,
        )


def _arrive(work: _Work, routing: Routing) -> None:
    work.events.append(
        ConversationQueued(
            conversation_id=routing.conversation_id,
            channel=routing.channel,
            level=work.settings.policy.level(routing),
            arrived_at=routing.arrived_at,
            at=work.at,
            by=work.by,
        )
    )
    work.new_routings[routing.conversation_id] = routing
    work.decisions += work.scheduler.arrive(routing, at=work.at)


def _finish(work: _Work, conversation_id: str) -> None:
    holder = work.scheduler.holder(conversation_id)
    work.events.append(
        AssignmentFinished(
            conversation_id=conversation_id, agent_id=holder, at=work.at, by=work.by
        )
    )
    work.finished.append(conversation_id)
    if holder is not None:
        work.agents.add(holder)
    work.decisions += work.scheduler.close(conversation_id, at=work.at)


def _routed(scheduler: Scheduler, conversation_id: str) -> bool:
    try:
        scheduler.holder(conversation_id)
    except NotFound:
        return False
    return True


def _still_unanswered(routing: Routing, settings: AssignmentSettings, deadline: datetime) -> bool:
    return (
        settings.no_answer_after is not None
        and routing.agent is not None
        and not routing.answered
        and routing.assigned_at is not None
        and routing.assigned_at + settings.no_answer_after == deadline
    )


def _agent_changed(agent: Agent, stored: Agent | None, at: datetime, by: str) -> AgentChanged:
    return AgentChanged(
        agent_id=agent.id,
        presence=agent.presence.value,
        previous_presence=None if stored is None else stored.presence.value,
        capacity=agent.capacity,
        skills=tuple(sorted(agent.skills.items())),
        groups=agent.groups,
        at=at,
        by=by,
    )
