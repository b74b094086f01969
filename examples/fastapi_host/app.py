"""The helpdesk's FastAPI application: cxflow wired into a web backend.

- One ``cxflow.Engine`` per process, built in the lifespan, next to the
  host's SQLAlchemy engine (``Database``).
- One transaction per request (the ``write_tx`` / ``read_tx``
  dependencies): the host writes its rows and cxflow writes its records on the
  same connection, and the request commits once, before its response is sent.
- Sync ``def`` endpoints: FastAPI runs them in its thread pool, so requests
  run concurrently; each builds its own ``Session``, the engine is shared.
- A tick loop (``Ticker``) fires the timers: auto-close, no-answer.
- cxflow's errors become HTTP answers: ``ValidationError`` 422 (with the field
  and the reason), ``NotFound`` 404, ``ConflictError`` 409, ``StorageError``
  503.

Run it with ``uvicorn examples.fastapi_host.app:app`` (see README.md).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

import anyio
import attrs
import sqlalchemy as sa
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from cxflow import (
    Agent,
    AssignmentSettings,
    AuthorKind,
    AutoClosePolicy,
    Clock,
    ConflictError,
    Conversation,
    ConversationSettings,
    Engine,
    NotFound,
    Session,
    StorageError,
    TenantSettings,
    ValidationError,
)
from cxflow.serialization import event_to_dict
from cxflow.storage.sql import SqlStore
from cxflow.timers import TimerFire

from .database import DEFAULT_DATABASE_URL, Database, messages, tickets, utc
from .schemas import (
    AgentIn,
    AgentOut,
    CloseIn,
    ConversationIn,
    ConversationOut,
    ErrorOut,
    EventOut,
    EventsOut,
    MessageIn,
    PresenceIn,
)
from .ticker import Ticker

__all__ = ["STANDARD_SETTINGS", "Helpdesk", "Tx", "app", "create_app"]

STANDARD_SETTINGS = TenantSettings(
    conversations=ConversationSettings(
        # Close a conversation the customer left: 30 minutes without an answer
        # from them after an agent's reply.
        autoclose=AutoClosePolicy(customer_silence=timedelta(minutes=30)),
    ),
    # Route every new conversation to the least-loaded free agent; take it
    # back if its agent has not answered within 5 minutes.
    assignment=AssignmentSettings(no_answer_after=timedelta(minutes=5)),
)


def tenant_settings(tenant: str) -> TenantSettings:
    """Every tenant's settings (a real host reads its tenants table, cached)."""
    return STANDARD_SETTINGS


class Helpdesk:
    """What the process holds for its whole life: the host's database, the
    cxflow engine and the tick loop."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock | None = None,
        settings: TenantSettings | Callable[[str], TenantSettings] = tenant_settings,
        worker_id: str | None = None,
        tick_batch: int = 100,
    ) -> None:
        self.db = db
        self.cx = Engine(
            settings=settings,
            clock=clock,  # None: the real time
            worker_id=worker_id or f"{socket.gethostname()}-{os.getpid()}",
        )
        self.tick_batch = tick_batch
        self.ticker: Ticker | None = None
        # Requests may hold every connection but two: the tick loop's (cxflow
        # takes one connection at a time through the engine) and a spare.
        self.request_slots = anyio.Semaphore(max(1, db.connections - 2))

    def tick_tenant(self, tenant: str) -> list[TimerFire]:
        """Fire the due timers of ``tenant``.

        The session is on a store bound to the engine, not to one
        transaction: cxflow commits each claim and each fire on its own, so a
        failing handler does not undo the fires before it, and on SQLite the
        write lock is held for one fire at a time, not for the whole batch.
        """
        session = self.cx.session(SqlStore(self.db.engine))
        fired: list[TimerFire] = []
        for _ in range(10):  # a bounded number of full batches per pass
            batch = session.tick(tenant, limit=self.tick_batch)
            fired += batch
            if len(batch) < self.tick_batch:
                break
        return fired

    def tick(self) -> dict[str, list[TimerFire]]:
        """One pass of the tick loop: every active tenant, in turn."""
        return {tenant: self.tick_tenant(tenant) for tenant in self.db.active_tenants()}


# -- the request's transaction ---------------------------------------------------------


@attrs.frozen
class Tx:
    """One request's transaction: the connection the host writes its rows on,
    and the cxflow session bound to it."""

    conn: sa.Connection
    cx: Session


def _helpdesk(request: Request) -> Helpdesk:
    helpdesk: Helpdesk = request.app.state.helpdesk
    return helpdesk


async def _connection_slot(
    helpdesk: Annotated[Helpdesk, Depends(_helpdesk)],
) -> AsyncIterator[None]:
    """Wait, on the event loop, until the pool has a connection for this request.

    FastAPI enters a sync dependency in one worker thread and runs the
    endpoint in another. Without this slot, a burst of requests larger than
    the pool fills every worker thread with requests waiting for a
    connection, while the requests that hold one wait for a thread to run
    their endpoint: nothing moves until the pool's timeout. Waiting here holds
    no thread.
    """
    async with helpdesk.request_slots:
        yield


Slot = Annotated[None, Depends(_connection_slot, scope="function")]


def write_tx(helpdesk: Annotated[Helpdesk, Depends(_helpdesk)], _slot: Slot) -> Iterator[Tx]:
    """A writing request's transaction (on SQLite: ``BEGIN IMMEDIATE``). It
    commits when the endpoint returns and rolls back when it raises: the
    host's rows and cxflow's records together."""
    with helpdesk.db.write_transaction() as conn:
        yield Tx(conn, helpdesk.cx.session(SqlStore(conn)))


def read_tx(helpdesk: Annotated[Helpdesk, Depends(_helpdesk)], _slot: Slot) -> Iterator[Tx]:
    """A reading request's transaction: it does not queue behind writers."""
    with helpdesk.db.read_transaction() as conn:
        yield Tx(conn, helpdesk.cx.session(SqlStore(conn)))


# scope="function": the transaction ends (commits) before the response is sent,
# so a client never sees a success whose commit then failed.
WriteTx = Annotated[Tx, Depends(write_tx, scope="function")]
ReadTx = Annotated[Tx, Depends(read_tx, scope="function")]


# -- answers -----------------------------------------------------------------------------


def _agent_out(tx: Tx, tenant: str, agent_id: str) -> AgentOut:
    agent = tx.cx.assignment.get_agent(tenant, agent_id)
    holding = sorted(
        routing.conversation_id
        for routing in tx.cx.store.list_routings(tenant)
        if routing.agent == agent_id
    )
    return AgentOut(
        id=agent.id,
        presence=agent.presence,
        capacity=agent.capacity,
        version=agent.version,
        holding=holding,
    )


def _ticket(tx: Tx, tenant: str, ticket_id: str) -> sa.Row[Any]:
    row = tx.conn.execute(
        sa.select(tickets).where(tickets.c.tenant == tenant, tickets.c.id == ticket_id)
    ).one_or_none()
    if row is None:
        raise NotFound("ticket", ticket_id)
    return row


def _conversation_out(ticket: sa.Row[Any], conversation: Conversation) -> ConversationOut:
    return ConversationOut(
        id=ticket.id,
        subject=ticket.subject,
        customer_id=ticket.customer_id,
        channel=ticket.channel,
        created_at=utc(ticket.created_at),
        state=conversation.state,
        assignee=conversation.assignee,
        priority=conversation.priority,
        message_count=conversation.message_count,
        closed_at=conversation.closed_at,
        close_reason=conversation.close_reason,
        version=conversation.version,
    )


def _add_message(
    tx: Tx, tenant: str, ticket_id: str, author: AuthorKind, author_id: str | None, body: str
) -> None:
    tx.conn.execute(
        messages.insert().values(
            tenant=tenant,
            id=uuid.uuid4().hex,
            ticket_id=ticket_id,
            author_kind=author.value,
            author_id=author_id,
            body=body,
            created_at=tx.cx.engine.clock.now(),
        )
    )


def _error(status: int, body: ErrorOut, **headers: str) -> JSONResponse:
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


# -- the application --------------------------------------------------------------------


def create_app(
    database_url: str | None = None,
    *,
    clock: Clock | None = None,
    tick_every: float | None = 1.0,
    worker_id: str | None = None,
    connections: int = 20,
) -> FastAPI:
    """The helpdesk application.

    ``database_url``: SQLAlchemy URL (default: ``DATABASE_URL`` from the
    environment, else a SQLite file ``helpdesk.db``). ``clock``: cxflow's
    clock (a ``cxflow.TestClock`` in tests; default: the real time).
    ``tick_every``: seconds between passes of the tick loop; ``None`` runs no
    loop (tests call ``app.state.helpdesk.tick()`` themselves).
    ``connections``: the size of the connection pool; requests hold all but
    two at once (the others wait without holding a worker thread).
    """
    url = database_url or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(url, connections=connections)
        db.create_schema()  # like the host's own migrations, at every start
        helpdesk = Helpdesk(db, clock=clock, worker_id=worker_id)
        app.state.helpdesk = helpdesk
        if tick_every is not None:
            helpdesk.ticker = Ticker(helpdesk.tick, tick_every)
            helpdesk.ticker.start()
        try:
            yield
        finally:
            if helpdesk.ticker is not None:
                helpdesk.ticker.stop()
            db.dispose()

    app = FastAPI(title="cxflow helpdesk", lifespan=lifespan)

    @app.exception_handler(ValidationError)
    async def invalid(request: Request, exc: ValidationError) -> JSONResponse:
        return _error(
            422,
            ErrorOut(error="validation", message=str(exc), field=exc.field, reason=exc.reason),
        )

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return _error(404, ErrorOut(error="not_found", message=str(exc), kind=exc.kind, id=exc.id))

    @app.exception_handler(ConflictError)
    async def conflict(request: Request, exc: ConflictError) -> JSONResponse:
        return _error(409, ErrorOut(error="conflict", message=str(exc)))

    @app.exception_handler(StorageError)
    async def unavailable(request: Request, exc: StorageError) -> JSONResponse:
        # e.g. SQLite's busy timeout ran out, or the database is unreachable.
        return _error(503, ErrorOut(error="unavailable", message=str(exc)), **{"Retry-After": "1"})

    # -- agents ---------------------------------------------------------------------

    @app.put("/tenants/{tenant}/agents/{agent_id}")
    def save_agent(tenant: str, agent_id: str, body: AgentIn, tx: WriteTx) -> AgentOut:
        """Create or replace an agent's profile; an online agent with free
        slots takes waiting conversations in the same commit."""
        agent = Agent(
            id=agent_id,
            presence=body.presence,
            capacity=body.capacity,
            skills=body.skills,
            groups=tuple(body.groups),
        )
        tx.cx.assignment.save_agent(
            tenant, agent, by=body.by or agent_id, expected_version=body.expected_version
        )
        return _agent_out(tx, tenant, agent_id)

    @app.put("/tenants/{tenant}/agents/{agent_id}/presence")
    def set_presence(tenant: str, agent_id: str, body: PresenceIn, tx: WriteTx) -> AgentOut:
        """Online: takes waiting conversations; away: keeps its own, gets no
        new ones; offline: its conversations go back to the queue."""
        tx.cx.assignment.set_presence(tenant, agent_id, body.presence, by=body.by or agent_id)
        return _agent_out(tx, tenant, agent_id)

    @app.get("/tenants/{tenant}/agents/{agent_id}")
    def get_agent(tenant: str, agent_id: str, tx: ReadTx) -> AgentOut:
        return _agent_out(tx, tenant, agent_id)

    # -- conversations ---------------------------------------------------------------

    @app.post("/tenants/{tenant}/conversations", status_code=201)
    def open_conversation(tenant: str, body: ConversationIn, tx: WriteTx) -> ConversationOut:
        """Open a ticket: the host's row and cxflow's conversation, routed to
        a free agent or queued, in one transaction."""
        ticket_id = uuid.uuid4().hex
        tx.conn.execute(
            tickets.insert().values(
                tenant=tenant,
                id=ticket_id,
                subject=body.subject,
                customer_id=body.customer_id,
                channel=body.channel,
                created_at=tx.cx.engine.clock.now(),
            )
        )
        conversation = tx.cx.conversations.open_conversation(
            tenant,
            customer_id=body.customer_id,
            channel=body.channel,
            by=body.customer_id,
            conversation_id=ticket_id,
            priority=body.priority,
            skills=body.skills,
            vip=body.vip,
        )
        if body.first_message is not None:
            _add_message(
                tx, tenant, ticket_id, AuthorKind.CUSTOMER, body.customer_id, body.first_message
            )
            conversation = tx.cx.conversations.record_message(
                tenant, ticket_id, AuthorKind.CUSTOMER, author_id=body.customer_id
            )
        return _conversation_out(_ticket(tx, tenant, ticket_id), conversation)

    @app.post("/tenants/{tenant}/conversations/{ticket_id}/messages")
    def record_message(
        tenant: str, ticket_id: str, body: MessageIn, tx: WriteTx
    ) -> ConversationOut:
        """Store a message and tell cxflow about it: an agent's reply answers
        the assignment and starts the auto-close countdown; a customer's
        message stops it."""
        ticket = _ticket(tx, tenant, ticket_id)
        _add_message(tx, tenant, ticket_id, body.author, body.author_id, body.body)
        conversation = tx.cx.conversations.record_message(
            tenant, ticket_id, body.author, author_id=body.author_id
        )
        return _conversation_out(ticket, conversation)

    @app.post("/tenants/{tenant}/conversations/{ticket_id}/close")
    def close_conversation(
        tenant: str, ticket_id: str, body: CloseIn, tx: WriteTx
    ) -> ConversationOut:
        """Close by hand: the agent's slot frees and the queue moves up, in
        the same commit."""
        ticket = _ticket(tx, tenant, ticket_id)
        conversation = tx.cx.conversations.close(
            tenant, ticket_id, by=body.by, reason=body.reason
        )
        return _conversation_out(ticket, conversation)

    @app.get("/tenants/{tenant}/conversations/{ticket_id}")
    def get_conversation(tenant: str, ticket_id: str, tx: ReadTx) -> ConversationOut:
        ticket = _ticket(tx, tenant, ticket_id)
        return _conversation_out(ticket, tx.cx.conversations.get_conversation(tenant, ticket_id))

    # -- the outbox ------------------------------------------------------------------

    @app.get("/tenants/{tenant}/events")
    def read_events(
        tenant: str,
        tx: ReadTx,
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> EventsOut:
        """The tenant's events after position ``after``, oldest first: what a
        relay forwards to webhooks or a queue, each exactly once."""
        stored = tx.cx.store.read_events(tenant, after=after, limit=limit)
        return EventsOut(
            events=[
                EventOut(position=item.position, type=item.event.type,
                         event=event_to_dict(item.event))
                for item in stored
            ],
            last_position=stored[-1].position if stored else after,
        )

    return app


def _tick_every_from_env() -> float | None:
    value = os.environ.get("TICK_EVERY", "1")
    return float(value) if float(value) > 0 else None


app = create_app(tick_every=_tick_every_from_env())
"""The application for ``uvicorn examples.fastapi_host.app:app``: the
database from ``DATABASE_URL``, a tick pass every ``TICK_EVERY`` seconds
(default 1; 0 turns the loop off, for a process that leaves ticking to
another)."""
