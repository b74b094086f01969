"""``TimerWorker.tick``: the one entry point hosts call to fire due timers.

Call ``tick(tenant)`` from whatever already runs periodically — cron, a worker
loop, Celery beat — as often as the precision you want (deadlines are exact;
the tick only decides how soon after its deadline a timer is acted on). Any
number of workers may tick the same tenant: each claims due timers with a
lease, and a timer's fire is committed together with its effects at the
claimed version + 1, so it fires once even when a worker pauses past its
lease (its commit then fails and the next claim fires it instead).

Each fire runs as one unit of work (``cxflow.app.unit``): the fired timer,
the ``timer.fired`` event and the handler's effects are staged, the
writer's reactors add what follows (under a ``cxflow.Engine``: an
auto-closed conversation frees its agent's slot), and all of it commits once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

import attrs

from cxflow import _validate as v
from cxflow.app.unit import EventSink, UnitOfWork, Writer, WritesThrough
from cxflow.clock import Clock
from cxflow.errors import ConflictError, NotFound, ValidationError
from cxflow.events import TimerFired
from cxflow.storage.protocols import ChangeSet, FullStore, require_tenant
from cxflow.timers.model import Timer, TimerFire

__all__ = ["TimerHandler", "TimerWorker", "UnitTimerHandler", "settled"]

log = logging.getLogger("cxflow.timers")

TimerHandler = Callable[[str, Timer, datetime], ChangeSet]
"""Acts on a fired timer: ``(tenant, timer, at) -> the changes to commit`` with
the fire (records at their next versions and events). Must not write itself,
and should return an empty change set when the situation went stale."""

UnitTimerHandler = Callable[[UnitOfWork, Timer], None]
"""Acts on a fired timer by staging its effects on the fire's unit of work
(``unit.at`` is the fire's instant)."""


def settled(writer: Writer, handlers: Mapping[str, UnitTimerHandler]) -> dict[str, TimerHandler]:
    """``handlers`` in the classic shape, for a worker with a writer of its
    own: each stages on a scratch unit (with the fire staged), ``writer``'s
    reactors follow, and the result is returned without the fired timer
    version (the worker writes that one itself)."""

    def classic(handler: UnitTimerHandler) -> TimerHandler:
        def run(tenant: str, timer: Timer, at: datetime) -> ChangeSet:
            fired = timer.fired(at)

            def stage(unit: UnitOfWork) -> None:
                unit.add(ChangeSet(timers=(fired,)))
                handler(unit, timer)

            changes = writer.react(tenant, at, stage)
            return attrs.evolve(changes, timers=tuple(t for t in changes.timers if t is not fired))

        return run

    return {kind: classic(handler) for kind, handler in handlers.items()}


def _on_unit(handler: TimerHandler) -> UnitTimerHandler:
    def run(unit: UnitOfWork, timer: Timer) -> None:
        unit.add(handler(unit.tenant, timer, unit.at))

    return run


class TimerWorker(WritesThrough):
    """Claims and fires due timers of a tenant, dispatching by ``Timer.kind``.

    ``handlers`` maps kinds to :data:`TimerHandler` callables (built by hand:
    merge ``ConversationService.timer_handlers``, ``TaskService.timer_handlers``
    and ``AssignmentService.timer_handlers``; a ``cxflow.Session`` builds a
    worker that knows every kind its engine plans).

    A timer of a kind this worker has no handler for is **not** fired: it is
    left claimed, a warning is logged on the ``cxflow.timers`` logger, and
    once the lease ends it is due again for a worker that knows its kind.
    """

    def __init__(
        self,
        store: FullStore,
        clock: Clock | None = None,
        sink: EventSink | None = None,
        *,
        worker_id: str,
        handlers: Mapping[str, TimerHandler] | None = None,
        lease: timedelta = timedelta(minutes=1),
        writer: Writer | None = None,
        unit_handlers: Mapping[str, UnitTimerHandler] | None = None,
    ) -> None:
        self.store = store
        self._use_writer(store, clock, sink, writer)
        self.worker_id = v.actor(worker_id)
        if not isinstance(lease, timedelta) or lease <= timedelta(0):
            raise ValidationError("lease", "a lease must be a positive duration")
        self.lease = lease
        self.handlers: dict[str, UnitTimerHandler] = {
            kind: _on_unit(handler) for kind, handler in (handlers or {}).items()
        }
        self.handlers.update(unit_handlers or {})

    @property
    def kinds(self) -> frozenset[str]:
        """The timer kinds this worker fires."""
        return frozenset(self.handlers)

    def tick(self, tenant: str, *, limit: int = 100) -> list[TimerFire]:
        """Fire up to ``limit`` timers of ``tenant`` due now, in deadline order;
        return the fires committed by this call.

        One timer's trouble never strands the rest of the claimed batch:

        - a fire whose commit loses a race (its lease was taken over, or its
          subject changed meanwhile) is skipped: its timer is fired by a
          later tick;
        - a handler (or reactor) raising ``NotFound`` means the timer's
          subject vanished (a conversation closed and its routing finished
          while the timer was handled): the timer is obsolete, so it is
          **cancelled** (its cycle ends without a fire, nothing else is
          written), a warning is logged on ``cxflow.timers``, and the batch
          goes on;
        - any other exception stops the batch: the timers of the batch not
          yet fired are **released** (written pending again at the same
          deadline and cycle, without a lease, so any worker claims them at
          once), then the exception propagates to the caller. The fires
          committed before it stand; the failing timer keeps its lease and
          is claimed again once the lease expires (a timer that always fails
          is retried once per lease, not in a loop).
        """
        tenant = require_tenant(tenant)
        now = self._writer.now()
        claimed = self.store.claim_timers(
            tenant, now, worker=self.worker_id, lease=self.lease, limit=limit
        )
        fired: list[TimerFire] = []
        for index, timer in enumerate(claimed):
            handler = self.handlers.get(timer.kind)
            if handler is None:
                log.warning(
                    "tenant %r: no handler for timer %r of kind %r; left for a worker "
                    "that knows the kind (due again when the lease ends)",
                    tenant, timer.id, timer.kind,
                )
                continue
            try:
                if self._fire(tenant, timer, handler, now):
                    fired.append(timer.fire())
            except NotFound as exc:
                self._cancel_obsolete(tenant, timer, exc)
            except Exception:
                self._release(tenant, claimed[index + 1 :])
                raise
        return fired

    def _fire(self, tenant: str, timer: Timer, handler: UnitTimerHandler, at: datetime) -> bool:
        def build(unit: UnitOfWork) -> None:
            unit.at = at  # the instant the timer was claimed at
            unit.add(
                ChangeSet(
                    timers=(timer.fired(at),),
                    events=(
                        TimerFired(
                            timer_id=timer.id,
                            kind=timer.kind,
                            subject_id=timer.subject_id,
                            cycle=timer.cycle,
                            deadline=timer.deadline,
                            handled=True,
                            at=at,
                            by=self.worker_id,
                        ),
                    ),
                )
            )
            handler(unit, timer)

        try:
            self._writer.execute(tenant, build, retry=False)
        except ConflictError as exc:
            log.debug("tenant %r: fire of %r lost a race: %s", tenant, timer.id, exc)
            return False
        return True

    def _cancel_obsolete(self, tenant: str, timer: Timer, cause: NotFound) -> None:
        """Cancel ``timer`` (as claimed) because its fire needs a record that
        is gone; a conflict means someone else already wrote it: leave it."""
        log.warning(
            "tenant %r: timer %r of kind %r is obsolete (%s); cancelled",
            tenant, timer.id, timer.kind, cause,
        )

        def build(unit: UnitOfWork) -> None:
            unit.add(ChangeSet(timers=(timer.cancelled(),)))

        try:
            self._writer.execute(tenant, build, retry=False)
        except ConflictError as exc:
            log.debug("tenant %r: cancel of %r lost a race: %s", tenant, timer.id, exc)

    def _release(self, tenant: str, timers: Sequence[Timer]) -> None:
        """Drop this worker's lease on ``timers`` (claimed, not fired) so they
        are due again at once. Best effort: a timer another worker took over
        meanwhile is left to it, and a failure to release is logged, never
        raised (the caller is already raising the error that stopped the batch;
        the leases then simply run out)."""
        if not timers:
            return
        released = [timer.rescheduled(timer.deadline) for timer in timers]
        try:
            self.store.commit(tenant, ChangeSet(timers=tuple(released)))
        except ConflictError:
            for timer in released:  # one was taken over: release the others one by one
                try:
                    self.store.commit(tenant, ChangeSet(timers=(timer,)))
                except ConflictError:
                    continue
                except Exception:
                    log.exception("tenant %r: could not release timer %r", tenant, timer.id)
                    return
        except Exception:
            log.exception(
                "tenant %r: could not release %d claimed timers; they are due again "
                "when their leases end", tenant, len(released),
            )
            return
        log.info(
            "tenant %r: released %d claimed timers after a failed fire", tenant, len(released)
        )
