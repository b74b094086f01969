"""``TimerWorker.tick``: the one entry point hosts call to fire due timers.

Call ``tick(tenant)`` from whatever already runs periodically — cron, a worker
loop, Celery beat — as often as the precision you want (deadlines are exact;
the tick only decides how soon after its deadline a timer is acted on). Any
number of workers may tick the same tenant: each claims due timers with a
lease, and a timer's fire is committed together with its effects at the
claimed version + 1, so it fires once even when a worker pauses past its
lease (its commit then fails and the next claim fires it instead).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import attrs

from cxflow import _validate as v
from cxflow.clock import Clock, SystemClock, ensure_aware
from cxflow.errors import ConflictError, ValidationError
from cxflow.events import TimerFired
from cxflow.service import EventSink
from cxflow.storage.protocols import ChangeSet, FullStore, require_tenant
from cxflow.timers.model import Timer, TimerFire

__all__ = ["TimerHandler", "TimerWorker"]

TimerHandler = Callable[[str, Timer, datetime], ChangeSet]
"""Acts on a fired timer: ``(tenant, timer, at) -> the changes to commit`` with
the fire (records at their next versions and events). Must not write itself,
and should return an empty change set when the situation went stale."""


class TimerWorker:
    """Claims and fires due timers of a tenant, dispatching by ``Timer.kind``.

    ``handlers`` maps kinds to :data:`TimerHandler` callables (see
    ``ConversationService.timer_handlers`` and ``TaskService.timer_handlers``).
    A timer of a kind nobody handles is still marked fired, with a
    ``TimerFired`` event whose ``handled`` is false, so it cannot clog the queue.
    """

    def __init__(
        self,
        store: FullStore,
        clock: Clock | None = None,
        sink: EventSink | None = None,
        *,
        worker_id: str,
        handlers: Mapping[str, TimerHandler],
        lease: timedelta = timedelta(minutes=1),
    ) -> None:
        self.store = store
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.sink = sink
        self.worker_id = v.actor(worker_id)
        if not isinstance(lease, timedelta) or lease <= timedelta(0):
            raise ValidationError("lease", "a lease must be a positive duration")
        self.lease = lease
        self.handlers = dict(handlers)

    def tick(self, tenant: str, *, limit: int = 100) -> list[TimerFire]:
        """Fire up to ``limit`` timers of ``tenant`` due now, in deadline order;
        return the fires committed by this call. A fire whose commit loses a
        race (its lease was taken over, or its subject changed meanwhile) is
        skipped: its timer is fired by a later tick. An exception raised by a
        handler propagates to the caller; the fires committed before it stand,
        and the failing timer is claimed again once its lease expires."""
        tenant = require_tenant(tenant)
        now = ensure_aware(self.clock.now(), "clock.now()")
        claimed = self.store.claim_timers(
            tenant, now, worker=self.worker_id, lease=self.lease, limit=limit
        )
        fired: list[TimerFire] = []
        for timer in claimed:
            handler = self.handlers.get(timer.kind)
            effects = handler(tenant, timer, now) if handler is not None else ChangeSet()
            event = TimerFired(
                timer_id=timer.id,
                kind=timer.kind,
                subject_id=timer.subject_id,
                cycle=timer.cycle,
                deadline=timer.deadline,
                handled=handler is not None,
                at=now,
                by=self.worker_id,
            )
            changes = attrs.evolve(
                effects,
                timers=(timer.fired(now), *effects.timers),
                events=(event, *effects.events),
            )
            try:
                self.store.commit(tenant, changes)
            except ConflictError:
                continue
            if self.sink is not None:
                self.sink.publish(tenant, changes.events)
            fired.append(timer.fire())
        return fired
