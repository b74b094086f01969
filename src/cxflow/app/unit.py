"""The unit of work: cxflow's single write path.

Every public operation that changes state runs as one ``UnitOfWork``:

1. **build**: the operation loads what it needs (through the unit, which
   remembers what it read) and runs a pure command, staging the new records
   and events on the unit;
2. **react**: the reactors run in their fixed order over what was staged and
   add what follows from it in the same commit (assignment sync today; the
   rules engine will be one more);
3. **commit** once: records, timers and events in one ``ChangeWriter.commit``;
4. **publish** the events to the sink, after the commit.

A commit that loses an optimistic-concurrency race is retried from step 1 on
fresh reads, under the one ``RetryPolicy``. A ``ConflictError`` raised while
building (a caller's own stale ``expected_version``) is never retried.

A ``UnitOfWork`` lives for one attempt of one call, on one thread; a
``Writer`` lives as long as the store it writes to (a session).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any, Protocol, TypeVar, cast

from cxflow import _validate as v
from cxflow._records import open_copy, replace_trusted
from cxflow.app.records import RecordCache
from cxflow.app.retry import RetryPolicy
from cxflow.assignment.model import Routing
from cxflow.clock import Clock, SystemClock, ensure_aware
from cxflow.conversations.model import Conversation, Customer
from cxflow.errors import ConflictError, CxflowError, NotFound, ValidationError
from cxflow.events import Envelope, Event
from cxflow.flows.model import Flow
from cxflow.storage.protocols import (
    MAX_BATCH,
    BatchReads,
    ChangeSet,
    ChangeWriter,
    ConversationStore,
    HostTransaction,
    RecordKey,
    RecordScope,
    TaskStore,
    TimerStore,
    UnitScope,
    provides,
    require_tenant,
)
from cxflow.tasks.model import Task
from cxflow.timers.model import Timer, plan_timer

__all__ = ["EventSink", "Reactor", "UnitOfWork", "Writer", "WritesThrough", "as_committed"]

log = logging.getLogger("cxflow.engine")

T = TypeVar("T")
_Snap = TypeVar("_Snap", Task, Conversation)


class EventSink(Protocol):
    """Receives events after they are committed (in commit order)."""

    def publish(self, tenant: str, events: Sequence[Event]) -> None:
        """Handle ``events`` of ``tenant``. Exceptions propagate to the caller of
        the service method, after the commit (the outbox still has the events)."""
        ...


Reactor = Callable[["UnitOfWork"], None]
"""Adds to a unit of work what follows from what it staged (same commit). A
reactor with a true ``needs_commit`` attribute acts beyond the unit (it must
see the unit through to its end) and is not run where nothing commits
(``Writer.react``)."""

_NO_CHANGES = ChangeSet()

_PARTS = (
    "flows", "customers", "timers", "agents", "routings", "finished_routings", "cursors"
)
_KIND_PARTS = {"flow": "flows", "customer": "customers", "timer": "timers", "agent": "agents"}
"""An event's subject kind -> the part of a unit that writes such records."""


class UnitOfWork:
    """One attempt of one call: what it read, what it stages, and what must
    happen once it commits or fails. Not thread-safe; never reused."""

    def __init__(
        self,
        tenant: str,
        at: datetime,
        store: object,
        records: RecordCache | None = None,
        scope: object = None,
        *,
        read_cache: bool = True,
        timers: TimerStore | None = None,
        correlation_id: str | None = None,
    ) -> None:
        self.tenant = tenant
        self.at = at
        """The call's instant: every command of the unit uses this one."""
        self.store = store
        self._records = records
        """The engine's snapshots, when this unit keeps what it reads and writes."""
        self._scope = scope
        self._read_cache = read_cache
        """Whether it may also start from them (not on a rerun on fresh reads)."""
        self._cached: dict[tuple[type, str], int] = {}
        """The snapshots this unit took from the cache: their versions."""
        self.routes: dict[str, Routing] = {}
        """Conversations to start routing in this commit (by conversation id)."""
        self.by = "cxflow"
        """Who the call acts for (set by the service; reactors act as them)."""
        self.routing_staged = False
        """True once assignment staged its changes (``AssignmentService.stage``)."""
        self._timers = timers
        """Where ``plan_timer`` reads current timers (``None``: no timers kept)."""
        self._parts: dict[str, list[Any]] = {name: [] for name in _PARTS}
        self._extension: dict[str, list[Any]] = {}
        """The records of kinds registered later (``ChangeSet.records``) by part."""
        self._tasks: dict[str, Task] = {}
        self._stored_tasks: dict[str, Task | None] = {}
        self._conversations: dict[str, Conversation] = {}
        self._stored: dict[str, Conversation | None] = {}
        self._customers: dict[str, Customer | None] = {}
        self._events: list[Event] = []
        self.command_id = os.urandom(16).hex()
        """This attempt's id: the causation of the events it commits (``Envelope``)."""
        self.correlation_id = correlation_id if correlation_id is not None else self.command_id
        self._causes: dict[int, Event] = {}
        """``id(event)`` -> the event it was emitted in reaction to (``emit``)."""
        self._reactions_from: int | None = None
        """Where the reactors' events start in ``_events`` (``Writer``)."""
        self._routing_version: int | None = None
        self._sole: ChangeSet | None = None
        """The one change set staged, while nothing else is (``change_set``
        then returns it as it is instead of building a copy)."""
        self._fresh = True
        self._on_written: list[Callable[[], None]] = []
        self._on_commit: list[Callable[[], None]] = []
        self._on_abort: list[Callable[[], None]] = []
        self._on_finish: list[Callable[[], None]] = []

    # -- reading ------------------------------------------------------------------

    def task(self, task_id: str) -> Task:
        """The task as stored before this unit (maybe from the engine's cache:
        see ``cxflow.app.records``); ``NotFound`` when it is not stored. A bad
        id is the ``ValidationError`` a store's read raises (field ``task_id``)."""
        if type(task_id) is str:  # else the store's read refuses it
            stored = self._stored_tasks.get(task_id)
            if stored is not None:
                return stored
        found = self._cached_snapshot(Task, task_id)
        if found is None:
            found = cast(TaskStore, self.store).get_task(self.tenant, task_id)
            self._keep(found)
        self._stored_tasks[task_id] = found
        return found

    def stored_task(self, task_id: str) -> Task | None:
        """The task as stored before this unit; ``None`` for one this unit
        creates (or that is not stored)."""
        if type(task_id) is str and task_id in self._stored_tasks:
            return self._stored_tasks[task_id]
        try:
            return self.task(task_id)
        except NotFound:
            self._stored_tasks[task_id] = None
            return None

    @property
    def staged_tasks(self) -> list[Task]:
        """Tasks this unit writes, in the order first staged."""
        return list(self._tasks.values())

    def staged_flow(self, flow_id: str, version: int) -> Flow | None:
        """The flow version this unit writes, if it writes ``flow_id`` at ``version``."""
        for flow in self._parts["flows"]:
            if flow.id == flow_id and flow.version == version:
                assert isinstance(flow, Flow)
                return flow
        return None

    def stored_conversation(self, conversation_id: str) -> Conversation | None:
        """The conversation as stored before this unit (``None``: not stored, or
        the store keeps no conversations); read once per unit, maybe from the
        engine's cache (see ``cxflow.app.records``). A bad id is the
        ``ValidationError`` a store's read raises (field ``conversation_id``)."""
        if type(conversation_id) is str and conversation_id in self._stored:
            return self._stored[conversation_id]
        conversation_id = v.check_id(conversation_id, "conversation_id")
        if conversation_id not in self._stored:
            found = self._cached_snapshot(Conversation, conversation_id)
            if found is None and provides(self.store, ConversationStore):
                store = cast(ConversationStore, self.store)
                try:
                    found = store.get_conversation(self.tenant, conversation_id)
                except NotFound:
                    found = None
                if found is not None:
                    self._keep(found)
            self._stored[conversation_id] = found
        return self._stored[conversation_id]

    def customer(self, customer_id: str) -> Customer | None:
        """The customer as stored (``None``: not stored), read once per unit."""
        if type(customer_id) is str and customer_id in self._customers:
            return self._customers[customer_id]
        try:
            found: Customer | None = cast(ConversationStore, self.store).get_customer(
                self.tenant, customer_id
            )
        except NotFound:
            found = None
        self._customers[customer_id] = found
        return found

    def prefetch(
        self, *, conversations: Sequence[str] = (), customers: Sequence[str] = ()
    ) -> None:
        """Read the conversations and customers this unit is about to need
        together: one round trip on a store with ``BatchReads`` (else left to
        the single reads). Conversations the engine's cache holds are taken
        from it instead (see ``stored_conversation``)."""
        if not provides(self.store, BatchReads):
            return
        keys: list[RecordKey] = []
        for conversation_id in conversations:
            if type(conversation_id) is not str or conversation_id in self._stored:
                continue  # a bad id is left for the single read to refuse
            cached = self._cached_snapshot(Conversation, conversation_id)
            if cached is not None:
                self._stored[conversation_id] = cached
            else:
                keys.append(("conversation", conversation_id))
        keys += [
            ("customer", c) for c in customers if type(c) is str and c not in self._customers
        ]
        found: dict[RecordKey, Any] = {}
        store = cast(BatchReads, self.store)
        for start in range(0, len(keys), MAX_BATCH):
            found.update(store.get_records(self.tenant, keys[start : start + MAX_BATCH]))
        for kind, record_id in keys:
            record = found.get((kind, record_id))
            if kind == "customer":
                self._customers[record_id] = record
            else:
                self._stored[record_id] = record
                if record is not None:
                    self._keep(record)

    def _cached_snapshot(self, kind: type[_Snap], record_id: str) -> _Snap | None:
        if self._records is None or not self._read_cache or not isinstance(record_id, str):
            return None  # a bad id is the store's to refuse
        found = self._records.get(self._scope, self.tenant, kind, record_id)
        if found is not None:
            self._cached[(kind, record_id)] = found.version
        return found

    def _keep(self, record: Task | Conversation) -> None:
        if self._records is not None:
            self._records.put(self._scope, self.tenant, record)

    @property
    def keeps_snapshots(self) -> bool:
        """Whether this unit keeps what it reads and writes in the engine's cache."""
        return self._records is not None

    @property
    def used_cache(self) -> bool:
        """Whether this unit took any snapshot from the engine's cache."""
        return bool(self._cached)

    def unfenced(self, changes: ChangeSet) -> bool:
        """Whether a snapshot this unit took from the cache is not written by
        ``changes`` at its next version (so no version check would catch a
        stale one)."""
        if not self._cached:
            return False
        written: dict[tuple[type, str], int] = {(Task, t.id): t.version for t in changes.tasks}
        written.update({(Conversation, c.id): c.version for c in changes.conversations})
        return any(written.get(key) != version + 1 for key, version in self._cached.items())

    def need_fresh_reads(self) -> None:
        """Make sure what this unit read is the store's before it acts on
        something no version check undoes (the in-memory assignment
        scheduler): if it started from cached snapshots, the attempt is
        abandoned here and the writer runs it again on fresh reads."""
        if self._cached:
            raise _Unfenced()

    def forget_cached(self) -> None:
        """Drop every snapshot this unit took from the cache (one proved stale)."""
        if self._records is not None:
            for kind, record_id in self._cached:
                self._records.drop(self._scope, self.tenant, kind, record_id)

    def remember(self, changes: ChangeSet) -> None:
        """Keep the tasks and conversations of ``changes``, now durable."""
        for task in changes.tasks:
            self._keep(task)
        for conversation in changes.conversations:
            self._keep(conversation)

    def conversation(self, conversation_id: str) -> Conversation | None:
        """The conversation as this unit leaves it: staged, else stored."""
        staged = self._conversations.get(conversation_id)
        return staged if staged is not None else self.stored_conversation(conversation_id)

    @property
    def staged_conversations(self) -> list[Conversation]:
        """Conversations this unit writes, in the order first staged."""
        return list(self._conversations.values())

    def staged_routing(self, conversation_id: str) -> Routing | None:
        """The last routing record of ``conversation_id`` staged by this unit."""
        for routing in reversed(self._parts["routings"]):
            if routing.conversation_id == conversation_id:
                assert isinstance(routing, Routing)
                return routing
        return None

    # -- staging ------------------------------------------------------------------

    def seen(self, conversation: Conversation) -> None:
        """Record ``conversation`` as read from the store (saves a second read)."""
        self._stored.setdefault(conversation.id, conversation)

    def stage_task(
        self, after: Task, *, before: Task | None, events: Iterable[Event] = ()
    ) -> None:
        """Stage the task snapshot ``after`` of a change from ``before`` (the
        stored snapshot; ``None``: this unit creates it) and its ``events``.
        The reactors compare the two (``stored_task`` reads ``before`` back)."""
        self._stored_tasks.setdefault(after.id, before)
        self.put_task(after)
        self._events.extend(events)

    def stage_conversation(
        self,
        after: Conversation,
        *,
        before: Conversation | None,
        events: Iterable[Event] = (),
        customers: Sequence[Customer] = (),
    ) -> None:
        """Stage the conversation snapshot ``after`` of a change from ``before``
        (``None``: this unit opens it), its ``events`` and any new
        ``customers``; see ``stage_task``."""
        self._stored.setdefault(after.id, before)
        self.put_conversation(after)
        if customers:
            self._parts["customers"].extend(customers)
        self._events.extend(events)

    def put_task(self, task: Task) -> Task:
        """Stage ``task``; like ``put_conversation``, one snapshot per task."""
        self._sole = None
        self._fresh = False
        return _put(self._tasks, task)

    def put_conversation(self, conversation: Conversation) -> Conversation:
        """Stage ``conversation``. A unit writes each conversation once: a later
        snapshot of one already staged replaces it at the staged version.
        Returns the snapshot as it will be written."""
        self._sole = None
        self._fresh = False
        return _put(self._conversations, conversation)

    def plan_timer(
        self, timer_id: str, *, kind: str, subject_id: str, deadline: datetime | None
    ) -> None:
        """Stage what makes ``timer_id`` fire at ``deadline`` (``None``: not at
        all), from its latest version staged by this unit, else stored (see
        ``cxflow.timers.model.plan_timer``). Nothing, when the store keeps no
        timers."""
        if self._timers is None:
            return
        current: Timer | None = None
        for staged in reversed(self._parts["timers"]):
            if staged.id == timer_id:
                current = staged
                break
        else:
            try:
                current = self._timers.get_timer(self.tenant, timer_id)
            except NotFound:
                current = None
        change = plan_timer(
            current, timer_id=timer_id, kind=kind, subject_id=subject_id, deadline=deadline
        )
        if change is not None:
            self._sole = None
            self._fresh = False
            self._parts["timers"].append(change)

    def add(self, changes: ChangeSet) -> None:
        """Stage everything in ``changes`` (after what is staged already)."""
        self._sole = changes if self._fresh and len(changes.conversations) <= 1 else None
        self._fresh = False
        for name in _PARTS:
            values = getattr(changes, name)
            if values:
                self._parts[name].extend(values)
        for task in changes.tasks:
            _put(self._tasks, task)
        for conversation in changes.conversations:
            _put(self._conversations, conversation)
        if changes.routing_version is not None:
            if self._routing_version is not None:
                # Not a race (a ConflictError would be retried): two writers of
                # one unit both moved the fence.
                raise ValidationError("changes", "one unit of work moves the routing version once")
            self._routing_version = changes.routing_version
        for part, records in changes.records.items():
            self._extension.setdefault(part, []).extend(records)
        self._events.extend(changes.events)

    def emit(self, events: Iterable[Event], *, caused_by: Event | None = None) -> None:
        """Stage ``events`` (appended to the outbox in order). ``caused_by``:
        the event they react to (their ``Envelope.causation_id``), staged by
        this unit or read from the log; by default, the command, or for a
        reactor's events the last event staged before the reactors ran about
        the same subject."""
        self._sole = None
        self._fresh = False
        if caused_by is None:
            self._events.extend(events)
            return
        for event in events:
            self._causes[id(event)] = caused_by
            self._events.append(event)

    def start_reactions(self) -> None:
        """Mark where the reactors' events start (see ``emit``)."""
        self._reactions_from = len(self._events)

    def on_written(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` right after the store accepted the commit (it may
        still wait for the host's transaction; see ``on_commit``)."""
        self._on_written.append(callback)

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the commit is durable: right after it, or, when
        the store wrote inside the host's transaction (``HostTransaction``),
        when the host commits."""
        self._on_commit.append(callback)

    def on_abort(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when this attempt fails, whatever the reason, or the
        host's transaction it wrote in rolls back."""
        self._on_abort.append(callback)

    def on_finish(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this attempt ends, committed or not (before the
        host's transaction ends)."""
        self._on_finish.append(callback)

    def change_set(self) -> ChangeSet:
        """Everything staged, as one change set, every event in it carrying its
        ``Envelope``."""
        if self._sole is not None:
            sole = self._sole
            if not sole.events or all(e.envelope is not None for e in sole.events):
                return sole
            return replace_trusted(sole, events=self._enveloped(sole.events))
        parts = self._parts
        return trusted_changes(
            flows=tuple(parts["flows"]),
            tasks=tuple(self._tasks.values()),
            conversations=tuple(self._conversations.values()),
            customers=tuple(parts["customers"]),
            timers=tuple(parts["timers"]),
            agents=tuple(parts["agents"]),
            routings=tuple(parts["routings"]),
            finished_routings=tuple(parts["finished_routings"]),
            cursors=tuple(parts["cursors"]),
            records=(
                MappingProxyType({part: tuple(rows) for part, rows in self._extension.items()})
                if self._extension else _NO_CHANGES.records
            ),
            routing_version=self._routing_version,
            events=self._enveloped(self._events),
        )

    def _enveloped(self, events: Sequence[Event]) -> tuple[Event, ...]:
        """``events``, each without an envelope replaced by a copy with its own
        (see ``Envelope``); ids number the events of this commit from 1."""
        command = self.command_id
        correlation = self.correlation_id
        reactions_from = self._reactions_from
        if reactions_from is None or reactions_from >= len(events):
            reactions_from = len(events)
            follows = False  # no reactor's events: no causes to look up by subject
        else:
            follows = True
        causes = self._causes
        last_about: dict[tuple[str, str], str] = {}
        """Subject -> the id of the last event about it before the reactors'."""
        ids: dict[int, str] = {}
        stamped: list[Event] = []
        new = object.__new__
        make = tuple.__new__
        version_of = self._written_version
        for number, event in enumerate(events, 1):
            envelope = event.envelope
            subject = event.subject_key()
            if envelope is None:
                if causes and id(event) in causes:
                    cause = causes[id(event)]
                    causation = (
                        cause.envelope.id if cause.envelope is not None
                        else ids.get(id(cause), command)
                    )
                elif follows and number > reactions_from:
                    causation = last_about.get(subject, command)
                else:
                    causation = command
                envelope = make(Envelope, (
                    f"{command}.{number}", *subject, version_of(subject), causation, correlation,
                ))
                if causes:
                    ids[id(event)] = envelope.id
                copy = new(type(event))  # open_copy, inlined: one per event committed
                state = copy.__dict__
                state.update(event.__dict__)
                state["envelope"] = envelope
                event = copy
            if follows and number <= reactions_from:
                last_about[subject] = envelope.id
            stamped.append(event)
        return tuple(stamped)

    def _written_version(self, subject: tuple[str, str]) -> int | None:
        """The version this unit writes of the record ``subject`` names (``None``:
        it does not write it)."""
        kind, record_id = subject
        if kind == "task":
            task = self._tasks.get(record_id)
            return None if task is None else task.version
        if kind == "conversation":
            conversation = self._conversations.get(record_id)
            return None if conversation is None else conversation.version
        part = _KIND_PARTS.get(kind)
        if part is None:
            return None
        for record in reversed(self._parts[part]):
            if record.id == record_id:
                version: int = record.version
                return version
        return None

    def _written(self) -> None:
        for callback in self._on_written:
            callback()

    def _committed(self) -> None:
        for callback in self._on_commit:
            callback()

    def _aborted(self) -> None:
        for callback in self._on_abort:
            callback()

    def _end(self, committed: bool, outcome: HostTransaction | None) -> None:
        try:
            if not committed:
                self._aborted()
            elif outcome is None or not outcome.on_outcome(self._committed, self._aborted):
                self._committed()
        finally:
            for callback in self._on_finish:
                callback()


def trusted_changes(**parts: Any) -> ChangeSet:
    """A ``ChangeSet`` of ``parts`` built without the constructor's converters:
    only for tuples of records this package built or validated (a hot path
    builds one per call)."""
    return replace_trusted(_NO_CHANGES, **parts)


def as_committed(record: _Snap, changes: ChangeSet) -> _Snap:
    """``record`` as ``changes`` wrote it: the unit's reactors may have changed
    the snapshot its command returned (SLA clocks, an assignee)."""
    written: tuple[_Snap, ...] = (
        changes.tasks if isinstance(record, Task) else changes.conversations  # type: ignore[assignment]
    )
    for found in written:
        if found.id == record.id:
            return found
    return record


def _put(staged: dict[str, _Snap], record: _Snap) -> _Snap:
    """Stage ``record`` in ``staged``: a later snapshot of one staged already
    replaces it at the staged version (one write per record and unit)."""
    found = staged.get(record.id)
    if found is not None and record.version != found.version:
        record = open_copy(record, version=found.version)
    staged[record.id] = record
    return record


class _RaceLost(Exception):
    """Internal: the unit's commit (or a reactor) lost a race; run it again."""


class _Unfenced(Exception):
    """Internal: the unit would commit without fencing a cached snapshot it
    read, or act on one where no fence undoes it; run it again on fresh reads."""


class Writer:
    """Runs units of work against one store: build, react, commit once,
    publish; lost races are retried under ``retry``.

    Lives as long as its store (one per session); use it from one thread.
    """

    def __init__(
        self,
        store: ChangeWriter,
        clock: Clock,
        sink: EventSink | None = None,
        *,
        retry: RetryPolicy | None = None,
        reactors: Sequence[Reactor] = (),
        records: RecordCache | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.sink = sink
        self.retry = retry if retry is not None else RetryPolicy()
        self.reactors = tuple(reactors)
        self._records = records if provides(store, RecordScope) else None
        # Checked once: a runtime protocol check costs tens of microseconds.
        self._outcome = cast(HostTransaction, store) if provides(store, HostTransaction) else None
        self._unit_scope = (
            cast(UnitScope, store).unit_scope if provides(store, UnitScope) else None
        )
        self._timers = cast(TimerStore, store) if provides(store, TimerStore) else None
        self.correlation_id: str | None = None
        """The correlation id of every event this writer commits (``Envelope``);
        ``None``: each call's own command id."""

    def now(self) -> datetime:
        """The clock's instant (aware UTC; ``ValidationError`` otherwise)."""
        return ensure_aware(self.clock.now(), "clock.now()")

    def execute(
        self,
        tenant: str,
        build: Callable[[UnitOfWork], T],
        *,
        retry: bool = True,
    ) -> tuple[T, ChangeSet]:
        """Run ``build`` in a unit of work, then the reactors, then commit once
        and publish. Returns what ``build`` returned and what was committed.

        A race lost in the commit or a reactor reruns everything (``retry``
        false: raise ``ConflictError`` at once). Any other error, and every
        ``ConflictError`` raised by ``build`` itself, propagates with nothing
        written."""
        tenant = require_tenant(tenant)
        attempts = self.retry.attempts if retry else 1
        attempt = 1
        cached = True
        while True:
            unit = self._unit(tenant, cached)
            try:
                value, changes = self._attempt(unit, build)
            except _Unfenced:
                cached = False  # the same attempt again, on fresh reads
                continue
            except _RaceLost as lost:
                if unit.used_cache:  # maybe a stale snapshot, not a race: at once, fresh
                    unit.forget_cached()
                    cached = False
                    continue
                conflict = lost.__cause__
                assert isinstance(conflict, ConflictError)
                if attempt == attempts:
                    if retry:
                        log.warning(
                            "tenant %r: gave up after %d attempts: %s", tenant, attempts, conflict
                        )
                    raise conflict from None
                log.debug("tenant %r: lost a race (attempt %d): %s", tenant, attempt, conflict)
                self.retry.backoff(attempt)
                attempt += 1
                continue
            except CxflowError:
                if not unit.used_cache:
                    raise
                cached = False  # refused on a snapshot that may be stale: check it
                continue
            if self.sink is not None and changes.events:
                self.sink.publish(tenant, changes.events)
            return value, changes

    def _unit(self, tenant: str, cached: bool) -> UnitOfWork:
        """A unit for one attempt: it keeps snapshots in the engine's cache when
        the store names a database to cache for, and starts from them when
        ``cached``."""
        scope = None
        if self._records is not None:
            scope = cast(RecordScope, self.store).record_scope()
        records = self._records if scope is not None else None
        return UnitOfWork(
            tenant, self.now(), self.store, records, scope, read_cache=cached,
            timers=self._timers, correlation_id=self.correlation_id,
        )

    def react(self, tenant: str, at: datetime, stage: Callable[[UnitOfWork], None]) -> ChangeSet:
        """What a unit at ``at`` would commit after ``stage`` and this writer's
        reactors, without committing it (reads go to the store; no snapshot
        cache). For handlers that return their changes instead of staging them
        (``cxflow.app.worker.TimerHandler``). Reactors marked
        ``needs_commit`` (assignment, whose decisions change the in-memory
        scheduler and hold its lock until the commit) are left out."""
        unit = UnitOfWork(
            require_tenant(tenant), at, self.store, timers=self._timers,
            correlation_id=self.correlation_id,
        )
        stage(unit)
        unit.start_reactions()
        for reactor in self.reactors:
            if not getattr(reactor, "needs_commit", False):
                reactor(unit)
        return unit.change_set()

    def _attempt(
        self, unit: UnitOfWork, build: Callable[[UnitOfWork], T]
    ) -> tuple[T, ChangeSet]:
        if self._unit_scope is None:
            return self._run_unit(unit, build)
        with self._unit_scope():  # one connection for the unit's reads and commit
            return self._run_unit(unit, build)

    def _run_unit(
        self, unit: UnitOfWork, build: Callable[[UnitOfWork], T]
    ) -> tuple[T, ChangeSet]:
        committed = False
        try:
            value = build(unit)
            try:
                unit.start_reactions()
                for reactor in self.reactors:
                    reactor(unit)
                changes = unit.change_set()
                if unit.unfenced(changes):
                    raise _Unfenced()
                if changes:
                    self.store.commit(unit.tenant, changes)
            except ConflictError as exc:
                raise _RaceLost() from exc
            committed = True
            if unit.keeps_snapshots:
                unit.on_commit(lambda: unit.remember(changes))
            unit._written()
        finally:
            unit._end(committed, self._outcome)
        return value, changes


class WritesThrough:
    """Base of the services: every write goes through ``self._writer``, whose
    clock and sink they expose. Built by hand, a service gets a writer of its
    own, with the timekeeping reactors its records need and no assignment; a
    ``cxflow.Session`` passes the engine's."""

    _writer: Writer

    def _use_writer(
        self, store: ChangeWriter, clock: Clock | None, sink: EventSink | None,
        writer: Writer | None, *, reactors: Callable[[], Sequence[Reactor]] = tuple,
    ) -> None:
        """Write through ``writer``, or, built by hand, a writer of this
        service's own running ``reactors()`` (the ones its records need)."""
        if writer is None:
            writer = Writer(
                store, clock if clock is not None else SystemClock(), sink, reactors=reactors()
            )
        self._writer = writer

    @property
    def clock(self) -> Clock:
        """The clock every change reads its instant from."""
        return self._writer.clock

    @property
    def sink(self) -> EventSink | None:
        """Where committed events are published (``None``: nowhere)."""
        return self._writer.sink
