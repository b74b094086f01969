"""``Engine`` and ``Session``: one facade, two lifetimes.

A host builds **one** ``Engine`` per process, at start-up, next to its
database engine. It holds what lives as long as the process: the tenants'
settings, the clock, the event sink, the retry policy, the in-memory
assignment schedulers (with a lock per tenant) and the registered timer
handlers. It is thread-safe and keeps no connection.

Per transaction (one web request, one worker batch) the host opens a
``Session`` on a store bound to that transaction —
``engine.session(SqlStore(connection))``, or ``engine.session(memory_store)``.
The session is the single way in: ``session.tasks``, ``session.conversations``,
``session.assignment``, ``session.tick`` and ``session.consumer`` all write through one
``cxflow.app.unit.Writer`` whose reactors keep the services in step (a
conversation closed by any path frees its agent's slot in the same commit).
A session belongs to one thread and must not outlive its transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import attrs

from cxflow import _validate as v
from cxflow.app.assignment import (
    NO_ANSWER_TIMER_KIND,
    AssignmentBackend,
    AssignmentService,
    SchedulerCache,
)
from cxflow.app.consumers import Consumer, Handler
from cxflow.app.conversations import ConversationService
from cxflow.app.reactors import timekeeping
from cxflow.app.reactors.assignment import AssignmentSync
from cxflow.app.records import MAX_RECORDS, RecordCache
from cxflow.app.retry import RetryPolicy
from cxflow.app.tasks import TaskService
from cxflow.app.unit import EventSink, Writer
from cxflow.app.worker import TimerHandler, TimerWorker, UnitTimerHandler
from cxflow.assignment.settings import AssignmentSettings
from cxflow.clock import Clock, SystemClock
from cxflow.conversations.settings import ConversationSettings
from cxflow.errors import ValidationError
from cxflow.storage.protocols import FullStore, provides
from cxflow.timers.model import TimerFire
from cxflow.timers.sla import SlaPolicy

__all__ = ["Engine", "Session", "TenantSettings"]

_DEFAULT_ASSIGNMENT = AssignmentSettings()


@attrs.frozen(kw_only=True)
class TenantSettings:
    """Everything one tenant configures.

    - ``conversations``: auto-close, conversation SLA and time triggers;
    - ``assignment``: how conversations are routed; ``None`` (the default)
      means conversations are not routed unless a call asks for it;
    - ``task_sla``: the SLA policy of tasks (``None``: no task SLA).
    """

    conversations: ConversationSettings = attrs.field(
        factory=ConversationSettings, validator=v.instance_of(ConversationSettings)
    )
    assignment: AssignmentSettings | None = attrs.field(
        default=None, validator=attrs.validators.optional(v.instance_of(AssignmentSettings))
    )
    task_sla: SlaPolicy | None = attrs.field(
        default=None, validator=attrs.validators.optional(v.instance_of(SlaPolicy))
    )


class Engine:
    """cxflow for one process (see the module docstring). Thread-safe.

    ``settings`` is one ``TenantSettings`` for every tenant or a callable
    ``tenant -> TenantSettings``, read on every call (return equal values for
    an unchanged tenant: a changed ``assignment`` rebuilds that tenant's
    scheduler). ``timer_handlers`` adds the host's own timer kinds to the ones
    the engine plans. ``worker_id`` names this process's timer claims
    (default: a random id per engine). ``cached_records``: how many committed
    task and conversation snapshots the engine keeps for its write paths to
    start from (``cxflow.app.records``; the least recently used go first).
    """

    def __init__(
        self,
        *,
        settings: TenantSettings | Callable[[str], TenantSettings] = TenantSettings(),
        clock: Clock | None = None,
        sink: EventSink | None = None,
        retry: RetryPolicy | None = None,
        timer_handlers: Mapping[str, TimerHandler] | None = None,
        worker_id: str | None = None,
        lease: timedelta = timedelta(minutes=1),
        new_id: Callable[[], str] | None = None,
        cached_records: int = MAX_RECORDS,
    ) -> None:
        if not isinstance(settings, TenantSettings) and not callable(settings):
            raise ValidationError("settings", "expected TenantSettings or a callable")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ValidationError("retry", "expected a RetryPolicy")
        self._settings = settings
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.sink = sink
        self.retry = retry if retry is not None else RetryPolicy()
        self.worker_id = v.actor(worker_id if worker_id is not None else uuid.uuid4().hex)
        if not isinstance(lease, timedelta) or lease <= timedelta(0):
            raise ValidationError("lease", "a lease must be a positive duration")
        self.lease = lease
        self._host_handlers = dict(timer_handlers or {})
        self._new_id = new_id if new_id is not None else (lambda: uuid.uuid4().hex)
        self.schedulers = SchedulerCache()
        """The in-memory assignment schedulers, shared by every session."""
        self.records = RecordCache(v.check_int(cached_records, "cached_records", 1))
        """The committed task and conversation snapshots the write paths may
        start from (stores with ``RecordScope``; see ``cxflow.app.records``)."""

    def settings(self, tenant: str) -> TenantSettings:
        """The settings in force for ``tenant``."""
        found = self._settings(tenant) if callable(self._settings) else self._settings
        if not isinstance(found, TenantSettings):
            raise ValidationError("settings", "expected TenantSettings")
        return found

    def routes(self, tenant: str) -> bool:
        """Whether ``tenant`` routes its conversations (``settings.assignment`` set)."""
        return self.settings(tenant).assignment is not None

    def session(self, store: Any, *, correlation_id: str | None = None) -> Session:
        """A session on ``store`` (bound to the caller's transaction, if any).
        ``correlation_id`` (an id: a request id, say) becomes the
        ``Envelope.correlation_id`` of every event the session commits; by
        default each call's own command id."""
        return Session(self, store, correlation_id=correlation_id)


class Session:
    """cxflow for one transaction on one store (see the module docstring).

    Not thread-safe; cheap to build (no I/O). Usable as a context manager,
    which only marks its scope: cxflow commits every call itself (inside the
    host's transaction when the store is bound to one).
    """

    def __init__(self, engine: Engine, store: Any, *, correlation_id: str | None = None) -> None:
        if correlation_id is not None:
            correlation_id = v.check_id(correlation_id, "correlation_id")
        if not isinstance(engine, Engine):
            raise ValidationError("engine", "expected an Engine")
        if not provides(store, FullStore):
            raise ValidationError(
                "store", "expected a store with every tier (FullStore and AssignmentStore)"
            )
        if not provides(store, AssignmentBackend):
            raise ValidationError("store", "expected a store with the AssignmentStore tier")
        self.engine = engine
        self.store = store
        self.writer = Writer(
            store, engine.clock, engine.sink, retry=engine.retry, records=engine.records
        )
        self.writer.correlation_id = correlation_id
        self.assignment = AssignmentService(
            store,
            settings=lambda tenant: engine.settings(tenant).assignment or _DEFAULT_ASSIGNMENT,
            writer=self.writer,
            schedulers=engine.schedulers,
            sync_conversations=True,
        )
        self.tasks = TaskService(
            store,
            new_id=engine._new_id,
            sla=lambda tenant: engine.settings(tenant).task_sla,
            writer=self.writer,
            records=engine.records,
        )
        self.conversations = ConversationService(
            store,
            settings=lambda tenant: engine.settings(tenant).conversations,
            new_id=engine._new_id,
            writer=self.writer,
            routing=engine.routes,
        )
        self.writer.reactors = (
            *timekeeping(
                task_sla=self.tasks.sla_policy,
                flow=self.tasks._flow,
                conversations=lambda tenant: engine.settings(tenant).conversations,
            ),
            AssignmentSync(self.assignment, engine.routes),
        )
        unit_handlers: dict[str, UnitTimerHandler] = {
            kind: handler
            for kind, handler in {
                **self.tasks.unit_timer_handlers(),
                **self.conversations.unit_timer_handlers(),
            }.items()
            if kind not in engine._host_handlers  # the host's own handler wins
        }
        unit_handlers[NO_ANSWER_TIMER_KIND] = self.assignment.handle_no_answer
        self.worker = TimerWorker(
            store,
            worker_id=engine.worker_id,
            handlers=engine._host_handlers,
            lease=engine.lease,
            writer=self.writer,
            unit_handlers=unit_handlers,
        )

    def consumer(self, name: str, handler: Handler, *, batch_size: int = 500) -> Consumer:
        """Consumer ``name`` of the log (``cxflow.app.consumers``), writing
        through this session: what its handler stages commits with its cursor
        and passes the engine's reactors. The store needs the ``CursorStore``
        tier (cxflow's stores have it)."""
        return Consumer(
            self.store, name, handler, batch_size=batch_size, writer=self.writer
        )

    def tick(self, tenant: str, *, limit: int = 100) -> list[TimerFire]:
        """Fire up to ``limit`` due timers of ``tenant`` (every kind the engine
        plans, and the host's); see ``TimerWorker.tick``."""
        return self.worker.tick(tenant, limit=limit)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None
