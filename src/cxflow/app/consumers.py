"""Consumers: following a tenant's event log from a durable cursor.

A ``Consumer`` hands the events of a tenant's outbox, in position order and in
batches, to a host's handler. Each batch is one unit of work (the engine's
single write path, ``cxflow.app.unit``): the handler stages what the events
mean through the ``Batch`` (records, events), and the consumer stages its
cursor at the batch's last position; the reactors run and everything commits
at once. So:

- **exactly once for what the handler writes through cxflow.** A consumer
  that dies before the commit wrote nothing, cursor included, and the next run
  hands it the same batch again; one that dies after it resumes after the
  batch. Two consumers of one name (in one process or many) both read the
  cursor at version *n*; only one commit can write version *n + 1*, and the
  other's batch is discarded whole and run again from the new cursor;
- **at least once for anything else the handler does** (a webhook, a
  message to a queue): it may run again for a batch that did not commit, so
  make such effects idempotent, keyed by ``Envelope.id``.

The cursor is a record of the store (``cxflow.cursors.Cursor``, the store's
``CursorStore`` tier). ``reset`` rewinds it to 0 so a projection can be
rebuilt from the whole log.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import cast

from cxflow import _validate as v
from cxflow.app.unit import EventSink, UnitOfWork, Writer, WritesThrough
from cxflow.clock import Clock
from cxflow.cursors import Cursor
from cxflow.errors import ConflictError, NotFound, ValidationError
from cxflow.events import Event
from cxflow.storage.protocols import (
    ChangeSet,
    ChangeWriter,
    CursorStore,
    EventOutbox,
    StoredEvent,
    provides,
    require_tenant,
)

__all__ = ["MAX_BATCH_SIZE", "Batch", "Consumer", "Handler"]

MAX_BATCH_SIZE = 10_000
"""The most events one batch takes."""


class Batch:
    """One batch of a consumer: the events to handle and what to commit with
    the cursor. Lives for one attempt; not thread-safe."""

    def __init__(self, unit: UnitOfWork, events: list[StoredEvent], after: int) -> None:
        self._unit = unit
        self.events = events
        """The events, in position order (at least one)."""
        self.after = after
        """The cursor's position before the batch (0: the log's start, so a
        projection is being built or rebuilt from nothing)."""

    @property
    def tenant(self) -> str:
        """The tenant whose log this is."""
        return self._unit.tenant

    @property
    def at(self) -> datetime:
        """The batch's instant (the engine's clock): every record it writes uses it."""
        return self._unit.at

    @property
    def unit(self) -> UnitOfWork:
        """The unit of work the batch commits with (its reads see the store as
        it was before the batch)."""
        return self._unit

    def stage(self, changes: ChangeSet) -> None:
        """Commit ``changes`` with the cursor (their versions are checked as in
        any commit: a conflict discards the batch and runs it again)."""
        if not isinstance(changes, ChangeSet):
            raise ValidationError("changes", "expected a ChangeSet")
        self._unit.add(changes)

    def emit(self, events: Iterable[Event], *, caused_by: Event) -> None:
        """Append ``events`` to the log with the cursor, caused by the consumed
        event ``caused_by`` (their ``Envelope.causation_id``)."""
        if not isinstance(caused_by, Event):
            raise ValidationError("caused_by", "expected the Event they react to")
        staged = list(events)
        for event in staged:
            if not isinstance(event, Event):
                raise ValidationError("events", f"expected events, got {type(event).__name__}")
        self._unit.emit(staged, caused_by=caused_by)


Handler = Callable[[Batch], None]
"""What a consumer does with a batch: stage through it what the events mean.
An exception discards the batch (nothing is committed, the cursor stays) and
propagates to the caller of ``Consumer.run_once``."""


class Consumer(WritesThrough):
    """Consumer ``name`` of the log of any tenant of ``store`` (see the module
    docstring): ``run_once`` handles one batch, ``run`` catches up, ``follow``
    keeps following. Built by hand it writes through a writer of its own;
    ``cxflow.Session.consumer`` passes the engine's, whose reactors then see
    what the handler writes. Use one from one thread."""

    def __init__(
        self,
        store: object,
        name: str,
        handler: Handler,
        *,
        batch_size: int = 500,
        clock: Clock | None = None,
        sink: EventSink | None = None,
        writer: Writer | None = None,
    ) -> None:
        for tier in (EventOutbox, CursorStore, ChangeWriter):
            if not provides(store, tier):
                raise ValidationError(
                    "store", "expected a store with the EventOutbox, CursorStore and "
                    "ChangeWriter tiers"
                )
        if not callable(handler):
            raise ValidationError("handler", "expected a callable taking a Batch")
        self.name = v.check_id(name, "name")
        self.handler = handler
        self.batch_size = v.check_int(batch_size, "batch_size", 1, MAX_BATCH_SIZE)
        self._outbox = cast(EventOutbox, store)
        self._cursors = cast(CursorStore, store)
        self._use_writer(cast(ChangeWriter, store), clock, sink, writer)

    def cursor(self, tenant: str) -> Cursor | None:
        """The stored cursor of this consumer for ``tenant`` (``None``: it has
        not committed a batch there)."""
        try:
            return self._cursors.get_cursor(require_tenant(tenant), self.name)
        except NotFound:
            return None

    def position(self, tenant: str) -> int:
        """The position of the last event of ``tenant`` this consumer handled (0: none)."""
        cursor = self.cursor(tenant)
        return 0 if cursor is None else cursor.position

    def run_once(self, tenant: str) -> int:
        """Handle the next batch of ``tenant``'s events (up to ``batch_size``)
        and commit it with the cursor; return how many events it held (0: the
        consumer is caught up, and nothing was written).

        A batch that lost its cursor to another consumer of the same name is
        run again from where that one left off, so a caller never sees that
        race; any other ``ConflictError`` propagates, with nothing written."""
        tenant = require_tenant(tenant)
        while True:
            before = self.position(tenant)
            try:
                handled, _ = self._writer.execute(tenant, self._batch)
            except ConflictError:
                if self.position(tenant) != before:
                    continue  # another consumer of this name took the batch
                raise
            return handled

    def run(self, tenant: str, *, max_batches: int | None = None) -> int:
        """Handle batches of ``tenant`` until the consumer is caught up (or
        ``max_batches`` were handled); return how many events they held."""
        if max_batches is not None:
            v.check_int(max_batches, "max_batches", 1)
        handled = batches = 0
        while max_batches is None or batches < max_batches:
            count = self.run_once(tenant)
            if count == 0:
                break
            handled += count
            batches += 1
        return handled

    def follow(
        self,
        tenants: Sequence[str] | Callable[[], Iterable[str]],
        *,
        stop: threading.Event,
        interval: float = 1.0,
        between: Callable[[], None] | None = None,
    ) -> None:
        """Keep every one of ``tenants`` (or the ones the callable returns on
        each pass) caught up until ``stop`` is set: a pass runs each tenant,
        then ``between`` (say, the host's ``session.tick`` of its tenants);
        when a pass handled nothing it waits ``interval`` seconds or until
        ``stop`` is set. Errors propagate and end the loop."""
        if not isinstance(stop, threading.Event):
            raise ValidationError("stop", "expected a threading.Event")
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval < 0:
            raise ValidationError("interval", "expected a number of seconds >= 0")
        while not stop.is_set():
            current = tenants() if callable(tenants) else tenants
            handled = sum(self.run(tenant) for tenant in current)
            if between is not None:
                between()
            if not handled:
                stop.wait(interval)

    def reset(self, tenant: str, *, changes: ChangeSet | None = None) -> None:
        """Rewind the cursor of ``tenant`` to 0 (the next ``run`` hands the
        handler the whole log again, with ``Batch.after`` 0), committing
        ``changes`` with it: the projection's records cleared, say. Nothing to
        rewind when the consumer has no cursor; ``changes`` are committed
        anyway."""
        if changes is not None and not isinstance(changes, ChangeSet):
            raise ValidationError("changes", "expected a ChangeSet")

        def build(unit: UnitOfWork) -> None:
            cursor = self.cursor(unit.tenant)
            if changes is not None:
                unit.add(changes)
            if cursor is not None and cursor.position != 0:
                unit.add(ChangeSet(cursors=(cursor.advanced(0),)))

        self._writer.execute(tenant, build)

    def _batch(self, unit: UnitOfWork) -> int:
        cursor = self.cursor(unit.tenant)
        after = 0 if cursor is None else cursor.position
        events = self._outbox.read_events(unit.tenant, after=after, limit=self.batch_size)
        if not events:
            return 0
        self.handler(Batch(unit, events, after))
        last = events[-1].position
        written = (
            Cursor(name=self.name, position=last) if cursor is None else cursor.advanced(last)
        )
        unit.add(ChangeSet(cursors=(written,)))
        return len(events)
