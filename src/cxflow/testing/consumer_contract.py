"""The contract of the cursor tier and of consumers on it.

- ``CursorStoreContract``: ``CursorStore.get_cursor`` and ``ChangeSet.cursors``
  (versions, copies, tenants, refusals);
- ``ConsumerContract``: a ``cxflow.Consumer`` on the store handles every event
  exactly once, whatever point it is killed at, and two consumers of one name
  never both commit a batch.

Subclass them next to ``EveryTierContract`` for a store with the cursor tier
(cxflow's stores do), implementing ``make_store``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import attrs
import pytest

from cxflow.app.consumers import Batch, Consumer
from cxflow.clock import TestClock
from cxflow.cursors import Cursor
from cxflow.errors import ConflictError, NotFound, ValidationError
from cxflow.events import CustomerTagAdded, Envelope, Event
from cxflow.storage.protocols import (
    ChangeSet,
    ChangeWriter,
    CursorStore,
    EventOutbox,
    StoredEvent,
)
from cxflow.testing.contract._base import _flow_saved, _StoreFactory
from cxflow.testing.contract.records import RecordRules
from cxflow.testing.fixtures import T0, sample_customer

__all__ = ["ConsumerContract", "CursorStoreContract"]


class _CursorTiers(EventOutbox, CursorStore, ChangeWriter, Protocol):
    """What these contracts need of a store."""


class CursorStoreContract(RecordRules):
    """``CursorStore`` and ``ChangeSet.cursors``."""

    record_kinds: ClassVar[tuple[str, ...]] = ("cursor",)

    def test_store_satisfies_cursor_store_protocol(self, store: _CursorTiers) -> None:
        assert isinstance(store, CursorStore)

    def test_a_refused_cursor_writes_nothing_else(self, store: _CursorTiers) -> None:
        first = Cursor(name="stats", position=1)
        store.commit(self.tenant, ChangeSet(cursors=(first,)))
        with pytest.raises(ConflictError):
            store.commit(
                self.tenant,
                ChangeSet(cursors=(first.advanced(5), first.advanced(6)), events=(_flow_saved(1),)),
            )
        assert store.read_events(self.tenant) == []
        assert store.get_cursor(self.tenant, "stats") == first

    def test_cursors_are_per_tenant_and_per_name(self, store: _CursorTiers) -> None:
        store.commit(self.tenant, ChangeSet(cursors=(Cursor(name="stats", position=7),)))
        store.commit(self.other_tenant, ChangeSet(cursors=(Cursor(name="stats", position=2),)))
        store.commit(self.tenant, ChangeSet(cursors=(Cursor(name="relay", position=1),)))
        assert store.get_cursor(self.tenant, "stats").position == 7
        assert store.get_cursor(self.other_tenant, "stats").position == 2
        with pytest.raises(NotFound):
            store.get_cursor(self.other_tenant, "relay")

    @pytest.mark.parametrize("name", ["", " ", "a\x00b", 7, None, "x" * 201])
    def test_a_bad_name_is_refused(self, store: _CursorTiers, name: Any) -> None:
        with pytest.raises(ValidationError) as refused:
            store.get_cursor(self.tenant, name)
        assert refused.value.field == "name"

    @pytest.mark.parametrize("tenant", ["", 3, None])
    def test_a_bad_tenant_is_refused(self, store: _CursorTiers, tenant: Any) -> None:
        with pytest.raises(ValidationError) as refused:
            store.get_cursor(tenant, "stats")
        assert refused.value.field == "tenant"

    def test_something_else_among_cursors_is_refused_with_nothing_written(
        self, store: _CursorTiers
    ) -> None:
        changes = attrs.evolve(ChangeSet(events=(_flow_saved(1),)), cursors=("stats",))
        with pytest.raises(ValidationError) as refused:
            store.commit(self.tenant, changes)
        assert refused.value.field == "cursors"
        assert store.read_events(self.tenant) == []


class _Killed(BaseException):
    """A consumer's process dying: nothing in cxflow catches it."""


class _Dying:
    """``store`` whose ``commit`` dies on the ``arm``-th call from now: before
    writing (``after=False``) or right after (``after=True``)."""

    def __init__(self, store: _CursorTiers) -> None:
        self.store = store
        self.countdown: int | None = None
        self.after = False

    def arm(self, commits: int, *, after: bool) -> None:
        self.countdown, self.after = commits, after

    def read_events(self, tenant: str, after: int = 0, limit: int = 100) -> list[StoredEvent]:
        return self.store.read_events(tenant, after=after, limit=limit)

    def get_cursor(self, tenant: str, name: str) -> Cursor:
        return self.store.get_cursor(tenant, name)

    def commit(self, tenant: str, changes: ChangeSet) -> None:
        if self.countdown is not None:
            self.countdown -= 1
            if self.countdown == 0:
                self.countdown = None
                if self.after:
                    self.store.commit(tenant, changes)
                raise _Killed()
        self.store.commit(tenant, changes)


EFFECTS = "effects"
"""The customer the effect events of the contract's handler are about."""


def _relay(seen: list[int] | None = None) -> Callable[[Batch], None]:
    """A handler whose effect of each source event is one event in the log
    (no record whose version would catch a second apply): only the cursor
    keeps it from happening twice."""

    def handle(batch: Batch) -> None:
        for stored in batch.events:
            event = stored.event
            if isinstance(event, CustomerTagAdded) and event.customer_id == EFFECTS:
                continue
            if seen is not None:
                seen.append(stored.position)
            effect = CustomerTagAdded(
                at=batch.at, by="relay", customer_id=EFFECTS, tag=f"p{stored.position}"
            )
            batch.emit([effect], caused_by=event)

    return handle


class ConsumerContract(_StoreFactory):
    """A ``cxflow.Consumer`` on the store: exactly-once effects for what it
    commits, whatever point it dies at; one batch per cursor version."""

    def source(self, store: _CursorTiers, count: int) -> list[Event]:
        """Append ``count`` source events, a few per commit."""
        events: list[Event] = [_flow_saved(n) for n in range(1, count + 1)]
        for start in range(0, count, 7):
            store.commit(self.tenant, ChangeSet(events=tuple(events[start : start + 7])))
        return events

    def consumer(
        self, store: object, handler: Callable[[Batch], None] | None = None, *,
        name: str = "relay", batch_size: int = 10,
    ) -> Consumer:
        return Consumer(
            store, name, handler or _relay(), batch_size=batch_size, clock=TestClock(T0)
        )

    def effects(self, store: _CursorTiers) -> Counter[str]:
        """How many effect events each source position got."""
        return Counter(
            stored.event.tag
            for stored in store.read_events(self.tenant, limit=100_000)
            if isinstance(stored.event, CustomerTagAdded) and stored.event.customer_id == EFFECTS
        )

    def assert_exactly_once(self, store: _CursorTiers, count: int) -> None:
        effects = self.effects(store)
        assert set(effects) == {f"p{n}" for n in range(1, count + 1)}
        assert set(effects.values()) == {1}

    def test_every_event_is_handled_once_in_position_order(self, store: _CursorTiers) -> None:
        self.source(store, 25)
        seen: list[int] = []
        consumer = self.consumer(store, _relay(seen))
        handled = consumer.run(self.tenant)
        assert seen == list(range(1, 26))
        self.assert_exactly_once(store, 25)
        assert handled == 25 + 25  # the sources, then the effects themselves
        assert consumer.position(self.tenant) == 50

    def test_batches_hold_at_most_batch_size_events(self, store: _CursorTiers) -> None:
        self.source(store, 25)
        sizes: list[int] = []
        consumer = self.consumer(store, lambda batch: sizes.append(len(batch.events)))
        assert consumer.run(self.tenant) == 25
        assert sizes == [10, 10, 5]
        assert store.get_cursor(self.tenant, "relay").version == 3

    def test_a_caught_up_consumer_writes_nothing(self, store: _CursorTiers) -> None:
        self.source(store, 3)
        consumer = self.consumer(store, lambda batch: None)
        consumer.run(self.tenant)
        cursor = store.get_cursor(self.tenant, "relay")
        assert consumer.run_once(self.tenant) == 0
        assert store.get_cursor(self.tenant, "relay") == cursor

    def test_an_empty_log_has_nothing_to_consume(self, store: _CursorTiers) -> None:
        consumer = self.consumer(store)
        assert consumer.run(self.tenant) == 0
        assert consumer.cursor(self.tenant) is None
        assert consumer.position(self.tenant) == 0

    def test_a_failing_handler_commits_nothing_and_the_batch_runs_again(
        self, store: _CursorTiers
    ) -> None:
        self.source(store, 12)
        relay = _relay()
        calls: list[int] = []

        def flaky(batch: Batch) -> None:
            relay(batch)
            calls.append(batch.after)
            if len(calls) == 1:
                raise RuntimeError("the host's handler failed")

        consumer = self.consumer(store, flaky)
        with pytest.raises(RuntimeError):
            consumer.run(self.tenant)
        assert consumer.cursor(self.tenant) is None
        assert self.effects(store) == Counter()
        consumer.run(self.tenant)
        assert calls[:2] == [0, 0]  # the same batch again
        self.assert_exactly_once(store, 12)

    @pytest.mark.parametrize("after", [False, True], ids=["before-commit", "after-commit"])
    def test_a_consumer_killed_at_its_commit_is_restarted_exactly_once(
        self, store: _CursorTiers, after: bool
    ) -> None:
        self.source(store, 30)
        dying = _Dying(store)
        dying.arm(2, after=after)
        with pytest.raises(_Killed):
            self.consumer(dying).run(self.tenant)
        self.consumer(store).run(self.tenant)  # a new process, on the same store
        self.assert_exactly_once(store, 30)

    def test_consumers_killed_at_random_points_still_apply_each_event_once(
        self, store: _CursorTiers
    ) -> None:
        self.source(store, 60)
        rnd = random.Random(11)
        dying = _Dying(store)
        for _ in range(40):
            dying.arm(rnd.randint(1, 3), after=rnd.random() < 0.5)
            try:
                self.consumer(dying, batch_size=rnd.randint(1, 9)).run(self.tenant)
            except _Killed:
                continue
        dying.countdown = None
        self.consumer(dying).run(self.tenant)
        self.assert_exactly_once(store, 60)

    def test_two_consumers_of_one_name_never_both_commit_a_batch(
        self, store: _CursorTiers
    ) -> None:
        self.source(store, 20)
        rival = self.consumer(store)
        relay = _relay()
        raced: list[int] = []

        def racing(batch: Batch) -> None:
            relay(batch)
            if not raced:  # the rival takes this very batch first
                raced.append(rival.run_once(self.tenant))

        first = self.consumer(store, racing)
        first.run(self.tenant)
        assert raced == [10]
        self.assert_exactly_once(store, 20)

    def test_consumers_of_different_names_keep_their_own_cursors(
        self, store: _CursorTiers
    ) -> None:
        self.source(store, 8)
        self.consumer(store, lambda batch: None, name="stats").run(self.tenant)
        relay = self.consumer(store, name="relay")
        assert relay.position(self.tenant) == 0
        relay.run(self.tenant)
        assert store.get_cursor(self.tenant, "stats").position == 8
        self.assert_exactly_once(store, 8)

    def test_cursors_are_per_tenant(self, store: _CursorTiers) -> None:
        self.source(store, 4)
        store.commit(self.other_tenant, ChangeSet(events=(_flow_saved(1),)))
        consumer = self.consumer(store, lambda batch: None)
        consumer.run(self.tenant)
        assert consumer.position(self.other_tenant) == 0
        assert consumer.run(self.other_tenant) == 1

    def test_a_reset_hands_the_whole_log_over_again(self, store: _CursorTiers) -> None:
        self.source(store, 5)
        starts: list[int] = []
        consumer = self.consumer(store, lambda batch: starts.append(batch.after), batch_size=3)
        consumer.run(self.tenant)
        consumer.reset(self.tenant, changes=ChangeSet(customers=(sample_customer(),)))
        assert consumer.position(self.tenant) == 0
        consumer.run(self.tenant)
        assert starts == [0, 3, 0, 3]

    def test_an_effect_names_the_consumed_event_as_its_cause(self, store: _CursorTiers) -> None:
        source = attrs.evolve(_flow_saved(1), envelope=None)
        store.commit(self.tenant, ChangeSet(events=(source,)))
        self.consumer(store).run(self.tenant)
        effect = store.read_events(self.tenant, after=1)[0].event
        assert effect.envelope is not None
        # A source committed without an envelope has no id to name: the batch is the cause.
        assert effect.envelope.causation_id == effect.envelope.id.rsplit(".", 1)[0]

    def test_an_effect_of_an_enveloped_event_names_its_id(self, store: _CursorTiers) -> None:
        envelope = Envelope("feed.1", "flow", "support", 1, "feed", "feed")
        store.commit(
            self.tenant, ChangeSet(events=(attrs.evolve(_flow_saved(1), envelope=envelope),))
        )
        self.consumer(store).run(self.tenant)
        effect = store.read_events(self.tenant, after=1)[0].event
        assert effect.envelope is not None
        assert effect.envelope.causation_id == "feed.1"

    @pytest.mark.parametrize(
        ("field", "kwargs"),
        [
            ("name", {"name": ""}),
            ("batch_size", {"batch_size": 0}),
            ("batch_size", {"batch_size": True}),
            ("handler", {"handler": "print"}),
        ],
    )
    def test_bad_consumer_arguments_are_refused(
        self, store: _CursorTiers, field: str, kwargs: dict[str, Any]
    ) -> None:
        arguments: dict[str, Any] = {"name": "relay", "handler": _relay(), **kwargs}
        with pytest.raises(ValidationError) as refused:
            Consumer(store, arguments.pop("name"), arguments.pop("handler"), **arguments)
        assert refused.value.field == field
