"""``EventOutbox``: positions, order, ``after`` and ``limit``."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from cxflow.errors import ValidationError
from cxflow.events import Envelope, Event, FlowSaved
from cxflow.storage.protocols import (
    EventOutbox,
    Store,
    StoredEvent,
)
from cxflow.tasks import commands
from cxflow.testing.contract._base import (
    _flow_saved,
    _refuse_assignment,
    _StoreFactory,
)
from cxflow.testing.fixtures import (
    T0,
    sample_flow,
    sample_task_history,
)

# -- outbox -----------------------------------------------------------------------------


class EventOutboxContract(_StoreFactory):
    """``EventOutbox``: positions, order, paging."""

    def test_store_satisfies_event_outbox_protocol(self, store: Store) -> None:
        assert isinstance(store, EventOutbox)

    def test_outbox_of_new_tenant_is_empty(self, store: Store) -> None:
        assert store.read_events(self.tenant) == []

    def test_first_event_has_position_1(self, store: Store) -> None:
        self.commit(store, events=(_flow_saved(1),))
        assert [e.position for e in store.read_events(self.tenant)] == [1]

    def test_positions_are_contiguous_across_commits(self, store: Store) -> None:
        self.commit(store, events=(_flow_saved(1), _flow_saved(2)))
        self.commit(store, events=(_flow_saved(3),))
        self.commit(store, events=(_flow_saved(4), _flow_saved(5), _flow_saved(6)))
        assert [e.position for e in store.read_events(self.tenant)] == [1, 2, 3, 4, 5, 6]

    def test_events_are_in_commit_order(self, store: Store) -> None:
        # Instants deliberately out of order: the outbox keeps commit order.
        first = (_flow_saved(5), _flow_saved(1))
        second = (_flow_saved(3), _flow_saved(9), _flow_saved(2))
        self.commit(store, events=first)
        self.commit(store, events=second)
        assert [e.event for e in store.read_events(self.tenant)] == [*first, *second]

    def test_committed_events_read_back_equal(self, store: Store) -> None:
        # One event of every shape the commands emit, plus a flow edit with relocations.
        events: list[Event] = [
            FlowSaved(flow_id="support", version=2, relocated=(("old", "new"),), at=T0, by="ana")
        ]
        events += [event for _task, task_events in sample_task_history() for event in task_events]
        self.commit(store, events=tuple(events))
        stored = [e.event for e in self.all_events(store)]
        assert stored == events
        assert [type(e) for e in stored] == [type(e) for e in events]

    def test_an_events_envelope_reads_back_equal(self, store: Store) -> None:
        envelope = Envelope(
            id="c0ffee.1", subject_kind="flow", subject_id="support", subject_version=2,
            causation_id="c0ffee", correlation_id="request-7",
        )
        event = attrs.evolve(_flow_saved(1), envelope=envelope)
        self.commit(store, events=(event, _flow_saved(2)))
        first, second = (e.event for e in store.read_events(self.tenant))
        assert first.envelope == envelope
        assert second.envelope is None  # committed around the engine: none given

    def test_events_of_a_task_commit_are_appended(self, store: Store) -> None:
        task, events = commands.create_task(
            flow=sample_flow(), task_id="task-1", title="Hello", by="ana", at=T0
        )
        self.commit(store, tasks=(task,), events=tuple(events))
        assert [e.event for e in store.read_events(self.tenant)] == events

    def test_read_after_skips_earlier_positions(self, store: Store) -> None:
        events = tuple(_flow_saved(n) for n in range(1, 6))
        self.commit(store, events=events)
        got = store.read_events(self.tenant, after=2)
        assert [e.position for e in got] == [3, 4, 5]
        assert [e.event for e in got] == list(events[2:])

    def test_read_limit_caps_the_batch(self, store: Store) -> None:
        self.commit(store, events=tuple(_flow_saved(n) for n in range(1, 6)))
        got = store.read_events(self.tenant, after=1, limit=2)
        assert [e.position for e in got] == [2, 3]

    def test_read_after_last_position_is_empty(self, store: Store) -> None:
        self.commit(store, events=tuple(_flow_saved(n) for n in range(1, 4)))
        assert store.read_events(self.tenant, after=3) == []
        assert store.read_events(self.tenant, after=50) == []

    def test_default_limit_is_100(self, store: Store) -> None:
        self.commit(store, events=tuple(_flow_saved(n) for n in range(1, 131)))
        got = store.read_events(self.tenant)
        assert [e.position for e in got] == list(range(1, 101))

    def test_paging_with_after_reads_every_event_once(self, store: Store) -> None:
        events = tuple(_flow_saved(n) for n in range(1, 12))
        self.commit(store, events=events[:4])
        self.commit(store, events=events[4:])
        seen: list[StoredEvent] = []
        after = 0
        while batch := store.read_events(self.tenant, after=after, limit=3):
            seen.extend(batch)
            assert batch[-1].position > after, "read_events(after=n) returned position <= n"
            after = batch[-1].position
        assert [e.position for e in seen] == list(range(1, 12))
        assert [e.event for e in seen] == list(events)

    def test_read_is_repeatable(self, store: Store) -> None:
        self.commit(store, events=tuple(_flow_saved(n) for n in range(1, 4)))
        assert store.read_events(self.tenant) == store.read_events(self.tenant)

    def test_changing_returned_event_does_not_change_stored_event(self, store: Store) -> None:
        self.commit(store, events=(_flow_saved(1),))
        (stored,) = store.read_events(self.tenant)
        _refuse_assignment(stored.event, "by", "intruder")
        assert store.read_events(self.tenant)[0].event == _flow_saved(1)

    def test_changing_committed_event_does_not_change_stored_event(self, store: Store) -> None:
        event = _flow_saved(1)
        self.commit(store, events=(event,))
        _refuse_assignment(event, "by", "intruder")
        assert store.read_events(self.tenant)[0].event == _flow_saved(1)

    @pytest.mark.parametrize("after", [-1, -10, "1", 1.5, None])
    def test_invalid_after_raises_validation_error(self, store: Store, after: Any) -> None:
        with pytest.raises(ValidationError) as info:
            store.read_events(self.tenant, after=after)
        assert info.value.field == "after"

    @pytest.mark.parametrize("limit", [0, -1, "10", 2.5, None])
    def test_invalid_limit_raises_validation_error(self, store: Store, limit: Any) -> None:
        with pytest.raises(ValidationError) as info:
            store.read_events(self.tenant, limit=limit)
        assert info.value.field == "limit"
