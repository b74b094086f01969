"""Fuzz the store reads (and ``claim_timers`` / ``commit``) on memory, SQLite
and PostgreSQL with hostile arguments: only ``CxflowError`` escapes, every
store answers alike (the same result, or the same error class and field),
and a refused call leaves the store's readable state byte-identical."""

from __future__ import annotations

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
    ChangeSet,
    ConversationQuery,
    CustomerQuery,
    Page,
    Routing,
    StoredEvent,
    TaskQuery,
)
from cxflow.events import FlowSaved
from cxflow.serialization import event_to_dict, to_dict
from cxflow.testing import (
    T0,
    sample_conversation,
    sample_customer,
    sample_flow,
    sample_task,
    sample_timer,
)

SETTINGS = settings(
    HEAVY,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

tenants = st.sampled_from(["acme", "globex", "nobody"])
ids = st.sampled_from(["support", "task-1", "conv-1", "cust-1", "timer-1", "ana", "x"])
ints = st.integers(min_value=-2, max_value=200)
instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(8999, 1, 1), timezones=st.just(UTC)
)
leases = st.timedeltas(min_value=timedelta(seconds=-1), max_value=timedelta(days=400))
texts = st.sampled_from(["ana", "web", "vip", "support", "new", "x"])


def _seed(store: Any) -> None:
    flow = sample_flow()
    store.commit(
        "acme",
        ChangeSet(
            flows=(flow,),
            tasks=(sample_task(flow),),
            customers=(sample_customer(tags=("vip",)),),
            conversations=(sample_conversation(room_tags=("vip",)),),
            timers=(sample_timer(),),
            agents=(Agent(id="ana"),),
            routings=(Routing(conversation_id="conv-1", channel="web", arrived_at=T0),),
            routing_version=1,
            events=(FlowSaved(flow_id="support", version=1, at=T0, by="tester"),),
        ),
    )


def _query(make: Callable[..., Any], **fields: Arg) -> Any:
    return make(**{name: value.value for name, value in fields.items()})


_Read = tuple[dict[str, st.SearchStrategy[Any]], Callable[[Any, dict[str, Arg]], Any]]
READS: dict[str, _Read] = {
    "get_flow": ({"t": tenants, "id": ids, "v": st.none() | st.integers(-1, 3)},
                 lambda s, a: s.get_flow(a["t"].value, a["id"].value, a["v"].value)),
    "list_flows": ({"t": tenants}, lambda s, a: s.list_flows(a["t"].value)),
    "list_flow_versions": ({"t": tenants, "id": ids},
                           lambda s, a: s.list_flow_versions(a["t"].value, a["id"].value)),
    "get_task": ({"t": tenants, "id": ids}, lambda s, a: s.get_task(a["t"].value, a["id"].value)),
    "query_tasks": (
        {"t": tenants, "flow_id": ids, "assignee": texts, "offset": ints, "limit": ints},
        lambda s, a: s.query_tasks(a["t"].value, _query(
            TaskQuery, flow_id=a["flow_id"], assignee=a["assignee"], offset=a["offset"],
            limit=a["limit"], deleted=Arg("None", None),
        )),
    ),
    "read_events": ({"t": tenants, "after": ints, "limit": ints},
                    lambda s, a: s.read_events(a["t"].value, a["after"].value, a["limit"].value)),
    "get_conversation": ({"t": tenants, "id": ids},
                         lambda s, a: s.get_conversation(a["t"].value, a["id"].value)),
    "query_conversations": (
        {"t": tenants, "customer_id": ids, "channel": texts, "room_tag": texts, "limit": ints},
        lambda s, a: s.query_conversations(a["t"].value, _query(
            ConversationQuery, customer_id=a["customer_id"], channel=a["channel"],
            room_tag=a["room_tag"], limit=a["limit"],
        )),
    ),
    "get_customer": ({"t": tenants, "id": ids},
                     lambda s, a: s.get_customer(a["t"].value, a["id"].value)),
    "query_customers": (
        {"t": tenants, "tag": texts, "limit": ints},
        lambda s, a: s.query_customers(
            a["t"].value, _query(CustomerQuery, tag=a["tag"], limit=a["limit"])
        ),
    ),
    "get_timer": ({"t": tenants, "id": ids}, lambda s, a: s.get_timer(a["t"].value, a["id"].value)),
    "claim_timers": (
        {"t": tenants, "at": instants, "worker": texts, "lease": leases, "limit": ints},
        lambda s, a: s.claim_timers(
            a["t"].value, a["at"].value, worker=a["worker"].value, lease=a["lease"].value,
            limit=a["limit"].value,
        ),
    ),
    "get_agent": ({"t": tenants, "id": ids}, lambda s, a: s.get_agent(a["t"].value, a["id"].value)),
    "list_agents": ({"t": tenants}, lambda s, a: s.list_agents(a["t"].value)),
    "get_routing": ({"t": tenants, "id": ids},
                    lambda s, a: s.get_routing(a["t"].value, a["id"].value)),
    "list_routings": ({"t": tenants}, lambda s, a: s.list_routings(a["t"].value)),
    "routing_version": ({"t": tenants}, lambda s, a: s.routing_version(a["t"].value)),
    "commit": (
        {"t": tenants, "version": st.none() | st.integers(1, 3)},
        lambda s, a: s.commit(a["t"].value, ChangeSet(
            tasks=(sample_task(task_id="new"),), routing_version=a["version"].value,
        )),
    ),
}
"""Entry point -> (argument strategies, call(store, args))."""

WRITES = {"claim_timers", "commit"}


def normalised(value: Any) -> Any:
    """A JSON-ready form of a read's result, to compare across stores."""
    if isinstance(value, Page):
        return {"items": [to_dict(t) for t in value.items], "total": value.total}
    if isinstance(value, StoredEvent):
        return (value.position, event_to_dict(value.event))
    if isinstance(value, list):
        return [normalised(item) for item in value]
    if value is None or isinstance(value, int | str):
        return value
    return to_dict(value)


@pytest.mark.parametrize("entry", sorted(READS))
@SETTINGS
@given(data=st.data())
@tolerating_known_gaps
def test_store_entry_points_refuse_alike_and_change_nothing_when_refused(
    store_factories: list[StoreFactory], entry: str, data: st.DataObject
) -> None:
    strategies, call = READS[entry]
    args = draw_args(data, strategies, list(strategies))
    outcomes: dict[str, Outcome] = {}
    results: dict[str, Any] = {}
    before: Any = None
    for factory in store_factories:
        store = factory.fresh()
        _seed(store)
        if before is None:  # seeded alike: the first store's state is every store's
            before = snapshot(store)
        outcome = probe(entry, factory.name, lambda s=store: call(s, args))
        after = snapshot(store)
        if outcome.refused or entry not in WRITES:
            assert after == before, f"{entry} on {factory.name} changed the store"
        outcomes[factory.name] = outcome
        results[factory.name] = (
            normalised(outcome.value) if outcome.error is None else None, after
        )
    kinds = {name: outcome.kind for name, outcome in outcomes.items()}
    agree(entry, kinds)
    values = list(results.values())
    assert all(value == values[0] for value in values), f"stores read {entry} differently"
