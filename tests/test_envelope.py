"""The event envelope: what the engine records about every event it commits
(id, subject and its version, causation, correlation), on the memory store.
The adapters' part (storing it and reading it back) is in the contract suite."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cxflow import (
    Agent,
    AssignmentSettings,
    AuthorKind,
    Engine,
    MemoryStore,
    Presence,
    TaskService,
    TenantSettings,
    TestClock,
    ValidationError,
    default_flow,
)
from cxflow.app.unit import Writer
from cxflow.events import (
    AgentAssigned,
    AssignmentFinished,
    ConversationClosed,
    Envelope,
    Event,
    TaskCreated,
)
from cxflow.storage.protocols import StoredEvent
from cxflow.testing.fixtures import RecordingSink

TENANT = "acme"
START = datetime(2026, 5, 11, 9, 0, tzinfo=UTC)
ROUTED = TenantSettings(assignment=AssignmentSettings())


def routed_day(correlation_id: str | None = None) -> tuple[MemoryStore, RecordingSink]:
    """A routed conversation opened, answered and closed, and a task on a flow."""
    store, sink = MemoryStore(), RecordingSink()
    engine = Engine(settings=ROUTED, clock=TestClock(START), sink=sink)
    s = engine.session(store, correlation_id=correlation_id)
    s.assignment.save_agent(TENANT, Agent(id="mina", presence=Presence.ONLINE), by="mina")
    s.conversations.open_conversation(
        TENANT, customer_id="u1", channel="chat", by="widget", conversation_id="c1"
    )
    s.conversations.record_message(TENANT, "c1", AuthorKind.AGENT, author_id="mina")
    s.conversations.close(TENANT, "c1", by="mina")
    s.tasks.create_flow(TENANT, default_flow("delivery_inquiry", flow_id="f1"), by="admin")
    s.tasks.create_task(TENANT, flow_id="f1", title="Call back", by="mina", task_id="t1")
    return store, sink


def logged(store: MemoryStore) -> list[StoredEvent]:
    return store.read_events(TENANT, limit=1000)


def envelope(event: Event) -> Envelope:
    assert event.envelope is not None, f"{event.type} has no envelope"
    return event.envelope


def test_every_committed_event_has_an_envelope_with_a_unique_id() -> None:
    store, _ = routed_day()
    ids = [envelope(stored.event).id for stored in logged(store)]
    assert len(ids) > 10
    assert len(set(ids)) == len(ids)
    assert all(0 < len(found) <= 48 for found in ids)


def test_the_subject_is_the_record_the_event_is_about() -> None:
    store, _ = routed_day()
    for stored in logged(store):
        env = envelope(stored.event)
        assert (env.subject_kind, env.subject_id) == stored.event.subject_key()


def test_the_subject_version_is_the_version_the_same_commit_wrote() -> None:
    store, _ = routed_day()
    for stored in logged(store):
        env = envelope(stored.event)
        if env.subject_kind == "task":
            assert env.subject_version == 1  # created, not changed since
        if env.subject_kind == "flow":
            assert env.subject_version == 1
    closed = [s.event for s in logged(store) if isinstance(s.event, ConversationClosed)]
    assert envelope(closed[0]).subject_version == store.get_conversation(TENANT, "c1").version


def test_a_subject_the_commit_did_not_write_has_no_version() -> None:
    store = MemoryStore()
    service = TaskService(store, TestClock(START))
    service.create_flow(TENANT, default_flow("delivery_inquiry", flow_id="f1"), by="admin")
    service.create_task(TENANT, flow_id="f1", title="Call back", by="mina", task_id="t1")
    writer = Writer(store, TestClock(START))

    def emit_only(unit):  # type: ignore[no-untyped-def]
        unit.emit([TaskCreated(at=START, by="x", task_id="t1", flow_id="f1", flow_version=1,
                               status="new", priority="normal")])

    _, changes = writer.execute(TENANT, emit_only)
    assert envelope(changes.events[0]).subject_version is None


def test_events_of_one_call_share_its_command_as_cause_and_correlation() -> None:
    store = MemoryStore()
    service = TaskService(store, TestClock(START))
    service.create_flow(TENANT, default_flow("delivery_inquiry", flow_id="f1"), by="admin")
    service.create_task(TENANT, flow_id="f1", title="Call back", by="mina", task_id="t1")
    created = [envelope(s.event) for s in logged(store)][1:]  # the task's commit
    assert len(created) >= 2  # task.created and its to-dos
    assert {env.causation_id for env in created} == {created[0].correlation_id}
    assert all(env.id.startswith(env.causation_id + ".") for env in created)
    first_call = envelope(logged(store)[0].event)
    assert first_call.correlation_id != created[0].correlation_id


def test_a_hosts_correlation_id_is_on_every_event_of_its_session() -> None:
    store, _ = routed_day(correlation_id="req-42")
    assert {envelope(s.event).correlation_id for s in logged(store)} == {"req-42"}
    causes = {envelope(s.event).causation_id for s in logged(store)}
    assert "req-42" not in causes  # the causes are the calls, not the request


@pytest.mark.parametrize("bad", ["", " ", "a\x00b", 42, "x" * 201])
def test_a_bad_correlation_id_is_refused(bad: object) -> None:
    engine = Engine(settings=ROUTED, clock=TestClock(START))
    with pytest.raises(ValidationError) as refused:
        engine.session(MemoryStore(), correlation_id=bad)  # type: ignore[arg-type]
    assert refused.value.field == "correlation_id"


def test_a_reactors_event_is_caused_by_the_event_it_reacts_to() -> None:
    store, _ = routed_day()
    events = [s.event for s in logged(store)]
    closed = next(e for e in events if isinstance(e, ConversationClosed))
    finished = next(e for e in events if isinstance(e, AssignmentFinished))
    assert envelope(finished).causation_id == envelope(closed).id
    assert envelope(finished).correlation_id == envelope(closed).correlation_id


def test_an_event_emitted_in_reaction_to_a_logged_one_names_it_as_its_cause() -> None:
    store, _ = routed_day()
    assigned = next(s.event for s in logged(store) if isinstance(s.event, AgentAssigned))
    writer = Writer(store, TestClock(START))
    note = TaskCreated(at=START, by="x", task_id="t9", flow_id="f1", flow_version=1,
                       status="new", priority="normal")
    _, changes = writer.execute(TENANT, lambda unit: unit.emit([note], caused_by=assigned))
    assert envelope(changes.events[0]).causation_id == envelope(assigned).id


def test_the_sink_gets_the_events_as_stored_with_their_envelopes() -> None:
    store, sink = routed_day()
    published = sink.events(TENANT)
    assert [envelope(e) for e in published] == [envelope(s.event) for s in logged(store)]


def test_the_envelope_is_not_part_of_what_happened() -> None:
    store, _ = routed_day()
    stored = logged(store)[0].event
    bare = type(stored)(**{
        name: getattr(stored, name) for name in stored.__dict__ if name != "envelope"
    })
    assert bare.envelope is None
    assert bare == stored
    assert hash(bare) == hash(stored)


def _note(task_id: str = "t9") -> TaskCreated:
    return TaskCreated(at=START, by="x", task_id=task_id, flow_id="f1", flow_version=1,
                       status="new", priority="normal")


def test_an_emitted_event_is_copied_and_left_as_it_was() -> None:
    """An event a caller keeps (``emit``) is not changed by the commit."""
    note = _note()
    writer = Writer(MemoryStore(), TestClock(START))
    _, changes = writer.execute(TENANT, lambda unit: unit.emit([note]))
    assert note.envelope is None
    assert changes.events[0] == note
    assert changes.events[0].envelope is not None


def test_an_event_staged_twice_in_one_unit_gets_two_envelopes() -> None:
    """``stage_task`` events are stamped in place, but never one object twice."""
    from cxflow.testing import sample_task

    note = _note("task-1")
    writer = Writer(MemoryStore(), TestClock(START))

    def stage(unit: Any) -> None:
        unit.stage_task(sample_task(), before=None, events=[note, note])

    _, changes = writer.execute(TENANT, stage)
    first, second = (envelope(event) for event in changes.events)
    assert first.id != second.id
    assert {first.id, second.id} == {e.envelope.id for e in changes.events}


def test_events_of_two_commits_never_share_an_id() -> None:
    """Every call's commands build fresh events: ids differ across commits."""
    store, _ = routed_day()
    ids = [envelope(stored.event).id for stored in logged(store)]
    assert len(ids) == len(set(ids))
