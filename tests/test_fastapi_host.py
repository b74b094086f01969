"""The FastAPI host example (``examples/fastapi_host``) as a client sees it.

Every test drives the application through ``fastapi.testclient.TestClient``
on a SQLite file, and again on PostgreSQL when ``CXFLOW_TEST_POSTGRES_URL`` is
set (in a database of its own, created and dropped here). Time is a
``TestClock``; ticks are called by the test, except where the background tick
loop itself is under test. Nothing is asserted on wall-clock time.
"""

from __future__ import annotations

import os
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the FastAPI host example needs fastapi (the 'test' extra)")
pytest.importorskip("sqlalchemy", reason="the FastAPI host example needs the 'sql' extra")

import sqlalchemy as sa
from fastapi.testclient import TestClient

from cxflow import (
    Agent,
    AssignmentSettings,
    ConflictError,
    ConversationQuery,
    Engine,
    Presence,
    RetryPolicy,
    TenantSettings,
    TestClock,
)
from cxflow.storage.sql import SqlStore

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the example is a package of the repository, not of cxflow
    sys.path.insert(0, str(ROOT))

from examples.fastapi_host.app import create_app  # noqa: E402
from examples.fastapi_host.database import messages, tickets  # noqa: E402

POSTGRES_URL = os.environ.get("CXFLOW_TEST_POSTGRES_URL")
TENANT = "acme"
Json = dict[str, Any]


# -- databases -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[sa.Engine]:
    """An autocommit engine on the test server's maintenance connection."""
    if not POSTGRES_URL:
        pytest.skip("CXFLOW_TEST_POSTGRES_URL is not set")
    engine = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", pool_size=1)
    yield engine
    engine.dispose()


@contextmanager
def postgres_database(server: sa.Engine) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards (the
    shared test database is left to the other tests)."""
    name = f"cxflow_fastapi_host_{uuid.uuid4().hex[:12]}"
    with server.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL database of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'helpdesk.db'}"
        return
    with postgres_database(request.getfixturevalue("postgres_server")) as url:
        yield url


@pytest.fixture
def client_for(database_url: str, clock: TestClock) -> Iterator[Callable[..., TestClient]]:
    """Start the application (its lifespan runs) on the test's database and clock."""
    clients: list[TestClient] = []

    def start(**options: Any) -> TestClient:
        options.setdefault("tick_every", None)
        client = TestClient(create_app(database_url, clock=clock, **options))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture
def client(client_for: Callable[..., TestClient]) -> TestClient:
    return client_for()


# -- helpers ---------------------------------------------------------------------------


def ok(response: Any, status: int = 200) -> Json:
    assert response.status_code == status, response.text
    body: Json = response.json()
    return body


def put_agent(client: TestClient, agent_id: str, capacity: int = 1, **extra: Any) -> Json:
    body = {"presence": "online", "capacity": capacity, **extra}
    return ok(client.put(f"/tenants/{TENANT}/agents/{agent_id}", json=body))


def open_conversation(client: TestClient, customer: str, **extra: Any) -> Json:
    body = {"subject": f"Order of {customer}", "customer_id": customer, **extra}
    return ok(client.post(f"/tenants/{TENANT}/conversations", json=body), 201)


def message(
    client: TestClient, cid: str, author: str, body: str, author_id: str | None = None
) -> Any:
    return client.post(
        f"/tenants/{TENANT}/conversations/{cid}/messages",
        json={"author": author, "author_id": author_id, "body": body},
    )


def conversation(client: TestClient, cid: str) -> Json:
    return ok(client.get(f"/tenants/{TENANT}/conversations/{cid}"))


def all_events(client: TestClient, page: int = 7) -> list[Json]:
    """The tenant's whole outbox, read page by page as a relay does."""
    events: list[Json] = []
    after = 0
    while True:
        body = ok(client.get(f"/tenants/{TENANT}/events", params={"after": after, "limit": page}))
        if not body["events"]:
            assert body["last_position"] == after
            return events
        events += body["events"]
        after = body["last_position"]


def assert_outbox_sound(events: list[Json], capacity: dict[str, int]) -> None:
    """Positions run 1..N once each, no event appears twice, and replaying the
    assignment events never puts an agent above capacity."""
    assert [e["position"] for e in events] == list(range(1, len(events) + 1))
    payloads = [repr(sorted(e["event"].items())) for e in events]
    assert len(set(payloads)) == len(payloads), "an event is in the outbox twice"
    held: Counter[str] = Counter()
    holder: dict[str, str] = {}
    for item in events:
        event = item["event"]
        cid = event.get("conversation_id")
        if item["type"] == "assignment.assigned":
            if cid in holder:
                held[holder.pop(cid)] -= 1
            holder[cid] = event["agent_id"]
            held[event["agent_id"]] += 1
            agent = event["agent_id"]
            assert held[agent] <= capacity[agent], f"{agent} over capacity at {item['position']}"
        elif item["type"] in ("assignment.queued", "assignment.finished") and cid in holder:
            held[holder.pop(cid)] -= 1
    assert all(count >= 0 for count in held.values())


def types(events: list[Json]) -> Counter[str]:
    return Counter(e["type"] for e in events)


# -- the scenario ----------------------------------------------------------------------


def test_a_support_day_end_to_end(client: TestClient, clock: TestClock) -> None:
    helpdesk = client.app.state.helpdesk  # type: ignore[attr-defined]
    # Mina comes online with one slot.
    assert put_agent(client, "mina")["holding"] == []

    # A customer writes in: the ticket opens and is routed to mina at once.
    first = open_conversation(client, "cust-1", first_message="Where is my parcel?")
    assert (first["state"], first["assignee"], first["message_count"]) == ("open", "mina", 1)
    # A second customer waits: mina is full.
    second = open_conversation(client, "cust-2", first_message="I want a refund")
    assert second["assignee"] is None
    assert ok(client.get(f"/tenants/{TENANT}/agents/mina"))["holding"] == [first["id"]]

    # Mina replies; the customer then stays silent.
    clock.advance(minutes=1)
    replied = ok(message(client, first["id"], "agent", "It left the depot today.", "mina"))
    assert replied["message_count"] == 2
    clock.advance(minutes=29)
    assert helpdesk.tick() == {TENANT: []}  # not yet: 30 minutes of silence
    assert conversation(client, first["id"])["state"] == "open"

    # 30 minutes after mina's reply, the tick auto-closes it; her slot frees
    # and the waiting conversation goes to her, in the same commit.
    clock.advance(minutes=1)
    fired = helpdesk.tick()[TENANT]
    assert [fire.kind for fire in fired] == ["autoclose"]
    closed = conversation(client, first["id"])
    assert (closed["state"], closed["close_reason"]) == ("closed", "autoclose:customer_silence")
    assert conversation(client, second["id"])["assignee"] == "mina"
    assert ok(client.get(f"/tenants/{TENANT}/agents/mina"))["holding"] == [second["id"]]

    # Nothing fires twice.
    assert helpdesk.tick() == {TENANT: []}

    events = all_events(client)
    assert_outbox_sound(events, {"mina": 1})
    counts = types(events)
    assert counts["conversation.opened"] == 2
    assert counts["conversation.message_recorded"] == 3
    assert counts["assignment.assigned"] == 2
    assert counts["conversation.closed"] == 1
    assert counts["assignment.finished"] == 1
    assert counts["timer.fired"] == 1
    assigned = [e["event"]["conversation_id"] for e in events if e["type"] == "assignment.assigned"]
    assert assigned == [first["id"], second["id"]]


def test_an_unanswered_conversation_goes_to_another_agent(
    client: TestClient, clock: TestClock
) -> None:
    put_agent(client, "mina")
    opened = open_conversation(client, "cust-1", first_message="Hello?")
    assert opened["assignee"] == "mina"
    put_agent(client, "bob")
    clock.advance(minutes=5)  # mina never answers
    fired = client.app.state.helpdesk.tick()[TENANT]  # type: ignore[attr-defined]
    assert [fire.kind for fire in fired] == ["assignment.no_answer"]
    assert conversation(client, opened["id"])["assignee"] == "bob"
    assert_outbox_sound(all_events(client), {"mina": 1, "bob": 1})


def test_closing_by_hand_frees_the_slot_for_the_queue(client: TestClient) -> None:
    put_agent(client, "mina")
    first = open_conversation(client, "cust-1")
    second = open_conversation(client, "cust-2")
    closed = ok(client.post(
        f"/tenants/{TENANT}/conversations/{first['id']}/close",
        json={"by": "mina", "reason": "solved"},
    ))
    assert (closed["state"], closed["close_reason"]) == ("closed", "solved")
    assert conversation(client, second["id"])["assignee"] == "mina"


def test_presence_moves_conversations(client: TestClient) -> None:
    put_agent(client, "mina", presence="offline")
    waiting = open_conversation(client, "cust-1")
    assert waiting["assignee"] is None
    online = ok(client.put(f"/tenants/{TENANT}/agents/mina/presence", json={"presence": "online"}))
    assert online["holding"] == [waiting["id"]]
    offline = ok(
        client.put(f"/tenants/{TENANT}/agents/mina/presence", json={"presence": "offline"})
    )
    assert offline["holding"] == []
    assert conversation(client, waiting["id"])["assignee"] is None


# -- errors ----------------------------------------------------------------------------


def test_cxflow_errors_become_http_answers(client: TestClient) -> None:
    bad_skill = client.put(
        f"/tenants/{TENANT}/agents/mina", json={"presence": "online", "skills": {"de": 9}}
    )
    assert bad_skill.status_code == 422
    assert bad_skill.json()["field"] == "skills[de]"
    assert "1 to 5" in bad_skill.json()["reason"]

    missing = client.get(f"/tenants/{TENANT}/agents/nobody")
    assert missing.status_code == 404
    assert (missing.json()["kind"], missing.json()["id"]) == ("agent", "nobody")
    assert message(client, "no-such-ticket", "customer", "hi").status_code == 404

    created = put_agent(client, "mina", expected_version=0)
    stale = client.put(
        f"/tenants/{TENANT}/agents/mina",
        json={"presence": "away", "expected_version": created["version"] - 1},
    )
    assert stale.status_code == 409
    assert stale.json()["error"] == "conflict"
    fresh = ok(client.put(
        f"/tenants/{TENANT}/agents/mina",
        json={"presence": "away", "expected_version": created["version"]},
    ))
    assert fresh["presence"] == "away"


def test_a_refused_cxflow_call_rolls_back_the_hosts_rows(
    client: TestClient, database_url: str
) -> None:
    """The ticket row is written before cxflow refuses the conversation: the
    request's transaction rolls back both."""
    refused = client.post(
        f"/tenants/{TENANT}/conversations",
        json={"subject": "Broken", "customer_id": "cust-1", "channel": " chat"},
    )
    assert refused.status_code == 422
    assert refused.json()["field"] == "channel"
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(tickets)).scalar() == 0
        assert SqlStore(engine).read_events(TENANT) == []
    finally:
        engine.dispose()


# -- the tick loop ---------------------------------------------------------------------


def test_the_background_tick_loop_closes_silent_conversations(
    client_for: Callable[..., TestClient], clock: TestClock
) -> None:
    client = client_for(tick_every=0.01)
    ticker = client.app.state.helpdesk.ticker  # type: ignore[attr-defined]
    assert ticker.running
    put_agent(client, "mina")
    opened = open_conversation(client, "cust-1", first_message="Hi")
    ok(message(client, opened["id"], "agent", "Hello!", "mina"))
    clock.advance(minutes=31)
    # Two passes that started after the clock moved: the first may have begun before.
    assert ticker.wait_for_passes(ticker.passes + 2, timeout=60)
    assert conversation(client, opened["id"])["state"] == "closed"
    client.__exit__(None, None, None)  # the lifespan ends: the loop stops
    assert not ticker.running


# -- concurrency -----------------------------------------------------------------------

THREADS = 20
AGENTS = {"mina": 2, "bob": 2, "ana": 2}


def run_at_once(work: Callable[[int], list[tuple[str, Any]]]) -> list[tuple[str, Any]]:
    """Run ``work(i)`` for i in 0..THREADS-1 on THREADS threads released
    together; return every (request, response) they made."""
    barrier = threading.Barrier(THREADS)

    def one(index: int) -> list[tuple[str, Any]]:
        barrier.wait()
        return work(index)

    with ThreadPoolExecutor(THREADS) as pool:
        return [pair for pairs in pool.map(one, range(THREADS)) for pair in pairs]


def test_more_requests_than_connections_wait_for_one(
    client_for: Callable[..., TestClient],
) -> None:
    """50 requests at once on 4 connections: more requests wait for a
    connection than FastAPI has worker threads (40), yet every one is served,
    since none holds a worker thread while it waits. (One tenant each: the
    requests of one tenant queue on the tenant's lock, see the test below.)"""
    client = client_for(connections=4)
    many = 50
    barrier = threading.Barrier(many)

    def one(index: int) -> int:
        barrier.wait()
        response = client.post(
            f"/tenants/t{index}/conversations",
            json={"subject": f"Order {index}", "customer_id": f"cust-{index}"},
        )
        return response.status_code

    with ThreadPoolExecutor(many) as pool:
        statuses = list(pool.map(one, range(many)))
    assert statuses == [201] * many
    ticked = client.app.state.helpdesk.tick()  # type: ignore[attr-defined]
    assert sorted(ticked) == sorted(f"t{index}" for index in range(many))


def test_concurrent_requests_lose_nothing(client: TestClient, database_url: str) -> None:
    for agent_id, capacity in AGENTS.items():
        put_agent(client, agent_id, capacity)
    slots = sum(AGENTS.values())

    # 20 customers write in at the same instant: 20 requests, each writing a
    # ticket and a message row and two cxflow calls in one transaction.
    def open_one(index: int) -> list[tuple[str, Any]]:
        response = client.post(
            f"/tenants/{TENANT}/conversations",
            json={"subject": f"Order {index}", "customer_id": f"cust-{index}",
                  "first_message": f"Where is order {index}?"},
        )
        return [("open", response)]

    opened = run_at_once(open_one)
    failures = [(what, r.status_code, r.text) for what, r in opened if r.status_code != 201]
    assert failures == []
    conversations = [r.json() for _, r in opened]
    assert len({c["id"] for c in conversations}) == THREADS
    assigned = [c for c in conversations if c["assignee"] is not None]
    assert len(assigned) == slots
    assert max(Counter(c["assignee"] for c in assigned).values()) <= 2

    # At once again: every held conversation gets its agent's reply and is
    # closed (each close hands the slot to a waiting one); every waiting
    # customer writes again; and everyone reads their conversation.
    def follow_up(index: int) -> list[tuple[str, Any]]:
        mine = conversations[index]
        done: list[tuple[str, Any]] = []
        if mine["assignee"] is not None:
            done.append(("reply", message(client, mine["id"], "agent", "On it.", mine["assignee"])))
            done.append(("close", client.post(
                f"/tenants/{TENANT}/conversations/{mine['id']}/close",
                json={"by": mine["assignee"], "reason": "solved"},
            )))
        else:
            done.append(("nudge", message(client, mine["id"], "customer", "Anyone there?")))
        done.append(("read", client.get(f"/tenants/{TENANT}/conversations/{mine['id']}")))
        done.append(("outbox", client.get(f"/tenants/{TENANT}/events", params={"limit": 50})))
        return done

    followed = run_at_once(follow_up)
    failures = [(what, r.status_code, r.text) for what, r in followed if r.status_code != 200]
    assert failures == []
    requests = len(opened) + len(followed)
    assert requests == THREADS + slots * 2 + (THREADS - slots) + THREADS * 2

    # Every host row is there, and cxflow's records agree with them.
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            ticket_ids = set(conn.execute(sa.select(tickets.c.id)).scalars())
            per_ticket = Counter(conn.execute(sa.select(messages.c.ticket_id)).scalars())
        store = SqlStore(engine)
        stored = {c.id: c for c in store.query_conversations(TENANT, ConversationQuery())}
        routings = store.list_routings(TENANT)
        events = all_events(client, page=100)
    finally:
        engine.dispose()
    assert ticket_ids == {c["id"] for c in conversations} == set(stored)
    assert sum(per_ticket.values()) == THREADS + slots + (THREADS - slots)
    assert {cid: c.message_count for cid, c in stored.items()} == dict(per_ticket)
    closed = {c["id"] for c in assigned}
    assert {cid for cid, c in stored.items() if not c.open} == closed
    # The six freed slots went to six waiting conversations; the rest still wait.
    held = Counter(r.agent for r in routings if r.agent is not None)
    assert held == Counter(AGENTS)
    assert len(routings) == THREADS - slots
    for routing in routings:
        assert stored[routing.conversation_id].assignee == routing.agent

    # Each event once; capacity never exceeded at any position of the outbox.
    assert_outbox_sound(events, AGENTS)
    counts = types(events)
    assert counts["conversation.opened"] == THREADS
    assert counts["conversation.closed"] == slots
    assert counts["conversation.message_recorded"] == sum(per_ticket.values())
    assert counts["assignment.assigned"] == 2 * slots
    assert counts["assignment.finished"] == slots
    opened_ids = [
        e["event"]["conversation_id"] for e in events if e["type"] == "conversation.opened"
    ]
    assert sorted(opened_ids) == sorted(ticket_ids)


# -- a cxflow problem found while wiring the host ---------------------------------------


@pytest.fixture
def postgres_url(postgres_server: sa.Engine) -> Iterator[str]:
    with postgres_database(postgres_server) as url:
        yield url


def test_two_requests_of_one_process_queue_on_a_tenant_in_host_transactions(
    postgres_url: str, clock: TestClock
) -> None:
    """Request A opens a conversation (routed) and goes on working in its
    transaction; request B opens another for the same tenant meanwhile. With
    retries off, B must still succeed on its first attempt: it should wait for
    A's commit before it routes, as requests that let cxflow commit do."""
    engine = sa.create_engine(postgres_url, pool_size=3)
    try:
        SqlStore(engine).create_schema()
        cx = Engine(
            settings=TenantSettings(assignment=AssignmentSettings()),
            clock=clock,
            retry=RetryPolicy(attempts=1),
        )
        with engine.begin() as conn:
            cx.session(SqlStore(conn)).assignment.save_agent(
                TENANT, Agent(id="mina", capacity=2, presence=Presence.ONLINE), by="mina"
            )
        a_routed, a_may_commit = threading.Event(), threading.Event()
        results: dict[str, object] = {}

        def open_in_request(name: str) -> None:
            try:
                with engine.begin() as conn:
                    opened = cx.session(SqlStore(conn)).conversations.open_conversation(
                        TENANT, customer_id=f"cust-{name}", channel="chat", by="widget",
                        conversation_id=name,
                    )
                    results[name] = opened.assignee
                    if name == "a":
                        a_routed.set()
                        a_may_commit.wait(60)  # the host's own work, inside its transaction
            except ConflictError as exc:
                results[name] = exc

        first = threading.Thread(target=open_in_request, args=("a",))
        first.start()
        assert a_routed.wait(60)
        second = threading.Thread(target=open_in_request, args=("b",))
        second.start()
        # Let A commit once B waits on a row lock A holds (B should wait for A
        # on the tenant's lock in this process instead: then A commits once the
        # watch gives up).
        with engine.connect() as watcher:
            for _ in range(200):
                waiting = watcher.execute(sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )).scalar()
                if waiting:
                    break
                threading.Event().wait(0.01)
        a_may_commit.set()
        first.join(60)
        second.join(60)
        assert results == {"a": "mina", "b": "mina"}
    finally:
        engine.dispose()
