"""Fuzz every service method of an ``Engine`` session (tasks, conversations,
assignment, tick) with random and hostile arguments, on memory, SQLite and
PostgreSQL at once. For each call:

(a) only ``CxflowError`` subclasses escape;
(b) a refused call leaves the store's readable state byte-identical;
(c) what was accepted reads back equal, and every store answers alike: the
    same result (or error class and field) and the same state afterwards.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fuzzkit import (
    HEAVY,
    Arg,
    Outcome,
    StoreFactory,
    agree,
    draw_args,
    probe,
    snapshot,
    tolerating_known_gaps,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxflow import (
    Agent,
    AssignmentSettings,
    AuthorKind,
    AutoClosePolicy,
    Conversation,
    ConversationQuery,
    ConversationSettings,
    Customer,
    CustomerQuery,
    Engine,
    Flow,
    FlowExperiment,
    FlowVariant,
    Material,
    Presence,
    Priority,
    Routing,
    Task,
    TaskQuery,
    TenantSettings,
    TestClock,
)
from cxflow.app.engine import Session
from cxflow.serialization import to_dict
from cxflow.testing import sample_flow

SETTINGS = settings(
    HEAVY,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

START = datetime(2026, 5, 11, 9, 0, tzinfo=UTC)
TENANT_SETTINGS = TenantSettings(
    assignment=AssignmentSettings(no_answer_after=timedelta(minutes=2)),
    conversations=ConversationSettings(
        autoclose=AutoClosePolicy(customer_silence=timedelta(minutes=10))
    ),
)

_flow = sample_flow()
_statuses = [status.key for status in _flow.statuses]

VALID: dict[str, st.SearchStrategy[Any]] = {
    "tenant": st.sampled_from(["acme", "acme", "globex"]),
    "flow_id": st.sampled_from(["support", "other"]),
    "task_id": st.sampled_from(["task-1", "task-2", None]),
    "conversation_id": st.sampled_from(["conv-1", "conv-2", None]),
    "customer_id": st.sampled_from(["cust-1", "cust-2"]),
    "agent_id": st.sampled_from(["ana", "joon"]),
    "todo_id": st.sampled_from(["todo-1", "x"]),
    "by": st.sampled_from(["mina", "ana"]),
    "title": st.text(min_size=1, max_size=20),
    "description": st.text(max_size=20),
    "body": st.text(min_size=1, max_size=20),
    "text": st.text(min_size=1, max_size=20),
    "reason": st.none() | st.text(min_size=1, max_size=20),
    "name": st.sampled_from(["Guide", "x"]),
    "target": st.sampled_from(_statuses),
    "status": st.none() | st.sampled_from(_statuses),
    "priority": st.sampled_from(list(Priority)),
    "due_at": st.none() | st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    "at": st.none() | st.just(START + timedelta(minutes=3)),
    "assignee": st.none() | st.sampled_from(["ana", "joon"]),
    "watcher": st.sampled_from(["ana", "joon"]),
    "watchers": st.lists(st.sampled_from(["ana", "joon"]), max_size=2).map(tuple),
    "task_type": st.none() | st.sampled_from(["bug"]),
    "expected_version": st.none() | st.integers(1, 4),
    "version": st.none() | st.integers(1, 3),
    "required": st.booleans(),
    "waiting": st.booleans(),
    "vip": st.booleans(),
    "automatic": st.booleans(),
    "overflow": st.booleans(),
    "route": st.none() | st.booleans(),
    "channel": st.sampled_from(["chat", "email"]),
    "tag": st.sampled_from(["vip", "billing"]),
    "plan": st.none() | st.sampled_from(["smb", "enterprise"]),
    "room_tags": st.lists(st.sampled_from(["vip", "billing"]), max_size=2).map(tuple),
    "skills": st.lists(st.sampled_from(["billing"]), max_size=1).map(tuple),
    "group": st.none() | st.just("tier2"),
    "author_kind": st.sampled_from(list(AuthorKind)),
    "author_id": st.none() | st.just("ana"),
    "presence": st.sampled_from(list(Presence)),
    "flow": st.sampled_from([_flow, _flow.revise(name="Support v2"), sample_flow("other")]),
    "relocate": st.none() | st.just({"new": "doing"}),
    "query": st.none() | st.sampled_from([TaskQuery(), TaskQuery(assignee="ana")]),
    "conversation_query": st.none() | st.just(ConversationQuery(assignee="ana")),
    "customer_query": st.none() | st.just(CustomerQuery(tag="vip")),
    "attachment": st.just(Material(name="Log", uri="https://x.test/l", media_type="text/plain")),
    "agent": st.sampled_from([
        Agent(id="joon", presence=Presence.ONLINE), Agent(id="ana", capacity=1)
    ]),
    "routing": st.just(Routing(conversation_id="conv-9", channel="chat", arrived_at=START)),
    "experiment": st.just(FlowExperiment(
        task_type="bug",
        variants=(FlowVariant(flow_id="support", weight=1), FlowVariant(flow_id="other", weight=1)),
    )),
    "limit": st.integers(1, 10),
}
"""Plausible values per parameter name (each call also draws hostile ones)."""

_T = ["tenant"]
ENTRIES: dict[str, list[str]] = {
    "tasks.create_flow": [*_T, "flow", "by"],
    "tasks.edit_flow": [*_T, "flow", "by", "relocate"],
    "tasks.get_flow": [*_T, "flow_id", "version"],
    "tasks.list_flows": _T,
    "tasks.create_task": [*_T, "flow_id", "title", "by", "task_id", "description", "priority",
                          "due_at", "assignee", "conversation_id", "watchers", "status",
                          "task_type"],
    "tasks.create_task_in_experiment": [*_T, "experiment", "title", "by", "task_id"],
    "tasks.get_task": [*_T, "task_id"],
    "tasks.list_tasks": [*_T, "query"],
    "tasks.board": [*_T, "flow_id"],
    "tasks.move_task": [*_T, "task_id", "target", "by", "reason", "expected_version"],
    "tasks.update_task": [*_T, "task_id", "by", "expected_version", "title", "description",
                          "priority", "due_at", "assignee"],
    "tasks.add_comment": [*_T, "task_id", "body", "by", "expected_version"],
    "tasks.add_todo": [*_T, "task_id", "text", "by", "required"],
    "tasks.check_todo": [*_T, "task_id", "todo_id", "by"],
    "tasks.uncheck_todo": [*_T, "task_id", "todo_id", "by"],
    "tasks.add_watcher": [*_T, "task_id", "watcher", "by"],
    "tasks.remove_watcher": [*_T, "task_id", "watcher", "by"],
    "tasks.add_attachment": [*_T, "task_id", "attachment", "by"],
    "tasks.send_material": [*_T, "task_id", "name", "by"],
    "tasks.delete_task": [*_T, "task_id", "by", "expected_version"],
    "tasks.restore_task": [*_T, "task_id", "by", "status", "expected_version"],
    "tasks.raise_overdue": _T,
    "tasks.sla_policy": _T,
    "conversations.open_conversation": [*_T, "customer_id", "channel", "by", "conversation_id",
                                        "priority", "assignee", "room_tags", "route", "skills",
                                        "group", "vip"],
    "conversations.get_conversation": [*_T, "conversation_id"],
    "conversations.get_customer": [*_T, "customer_id"],
    "conversations.query_conversations": [*_T, "conversation_query"],
    "conversations.query_customers": [*_T, "customer_query"],
    "conversations.record_message": [*_T, "conversation_id", "author_kind", "at", "automatic",
                                     "author_id"],
    "conversations.assign": [*_T, "conversation_id", "assignee", "by"],
    "conversations.close": [*_T, "conversation_id", "by", "reason"],
    "conversations.reopen": [*_T, "conversation_id", "by", "reason", "route", "skills",
                             "group", "vip"],
    "conversations.set_priority": [*_T, "conversation_id", "priority", "by"],
    "conversations.set_waiting": [*_T, "conversation_id", "waiting", "by"],
    "conversations.add_room_tag": [*_T, "conversation_id", "tag", "by"],
    "conversations.remove_room_tag": [*_T, "conversation_id", "tag", "by"],
    "conversations.add_customer_tag": [*_T, "customer_id", "tag", "by"],
    "conversations.remove_customer_tag": [*_T, "customer_id", "tag", "by"],
    "conversations.set_customer_plan": [*_T, "customer_id", "plan", "by"],
    "conversations.settings": _T,
    "assignment.save_agent": [*_T, "agent", "by", "expected_version"],
    "assignment.set_presence": [*_T, "agent_id", "presence", "by"],
    "assignment.get_agent": [*_T, "agent_id"],
    "assignment.get_routing": [*_T, "conversation_id"],
    "assignment.route": [*_T, "routing", "by"],
    "assignment.assign": [*_T, "conversation_id", "agent_id", "by", "overflow"],
    "assignment.answered": [*_T, "conversation_id", "by"],
    "assignment.requeue": [*_T, "conversation_id", "by"],
    "assignment.close": [*_T, "conversation_id", "by"],
    "assignment.explain": [*_T, "conversation_id"],
    "assignment.settings": _T,
    "session.tick": [*_T, "limit"],
}
"""Entry point -> its parameters (passed by keyword, under the service's names)."""

_RENAMED = {"conversation_query": "query", "customer_query": "query"}


def _session(store: Any) -> Session:
    ids = itertools.count(1)
    engine = Engine(
        settings=TENANT_SETTINGS, clock=TestClock(START), worker_id="fuzz",
        new_id=lambda: f"id-{next(ids)}",
    )
    session = engine.session(store)
    session.tasks.create_flow("acme", _flow, by="lead")
    session.tasks.create_task("acme", flow_id="support", title="Printer", by="mina",
                              task_id="task-1", assignee="ana")
    session.assignment.save_agent("acme", Agent(id="ana", presence=Presence.ONLINE), by="ana")
    session.conversations.open_conversation(
        "acme", customer_id="cust-1", channel="chat", by="widget", conversation_id="conv-1"
    )
    clock = engine.clock
    assert isinstance(clock, TestClock)
    clock.advance(minutes=3)  # the no-answer timer is due: tick has work
    return session


def _call(session: Session, entry: str, args: dict[str, Arg]) -> Any:
    service, method = entry.split(".")
    target: Callable[..., Any] = getattr(
        session if service == "session" else getattr(session, service), method
    )
    return target(**{_RENAMED.get(name, name): value.value for name, value in args.items()})


def _reads_back(session: Session, tenant: str, value: Any) -> None:
    """(c) a record a call returned is what the store now holds."""
    store = session.store
    if isinstance(value, Task):
        assert store.get_task(tenant, value.id) == value
    elif isinstance(value, Conversation):
        assert store.get_conversation(tenant, value.id) == value
    elif isinstance(value, Customer):
        assert store.get_customer(tenant, value.id) == value
    elif isinstance(value, Flow):
        assert store.get_flow(tenant, value.id, value.version) == value
    elif isinstance(value, Agent):
        assert store.get_agent(tenant, value.id) == value


def _normalised(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_normalised(item) for item in value]
    if value is None or isinstance(value, int | str | bool):
        return value
    try:
        return to_dict(value)
    except Exception:
        return repr(value)


@pytest.mark.parametrize("entry", sorted(ENTRIES))
@SETTINGS
@given(data=st.data())
@tolerating_known_gaps
def test_service_calls_refuse_cleanly_and_alike_on_every_store(
    store_factories: list[StoreFactory], entry: str, data: st.DataObject
) -> None:
    args = draw_args(data, VALID, ENTRIES[entry])
    tenant = args["tenant"].value
    outcomes: dict[str, Outcome] = {}
    states: dict[str, Any] = {}
    before: Any = None
    for factory in store_factories:
        session = _session(factory.fresh())
        if before is None:  # seeded alike: the first store's state is every store's
            before = snapshot(session.store)
        outcome = probe(entry, factory.name, lambda s=session: _call(s, entry, args))
        after = snapshot(session.store)  # (also: everything written reads back)
        if outcome.refused:
            assert after == before, f"refused {entry} changed {factory.name}"
        else:
            _reads_back(session, tenant, outcome.value)
        outcomes[factory.name] = outcome
        states[factory.name] = (_normalised(outcome.value), after)
    kinds = {name: outcome.kind for name, outcome in outcomes.items()}
    agree(entry, kinds)
    first = next(iter(states.values()))
    assert all(state == first for state in states.values()), f"stores differ after {entry}"
