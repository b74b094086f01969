"""The host's database: its SQLAlchemy engine, its own tables, and the
per-request transactions that cxflow writes in.

The helpdesk keeps its own records (tickets and their messages) in tables of
its own, next to cxflow's. A request that writes opens **one** transaction,
writes its rows, hands the same connection to cxflow (``SqlStore(conn)``), and
commits once: the ticket and the conversation cxflow routed for it become
durable together, or neither does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import sqlalchemy as sa

from cxflow.storage.sql import WRITE_TRANSACTION, SqlStore, sqlite_engine

__all__ = ["DEFAULT_DATABASE_URL", "Database", "messages", "metadata", "tickets", "utc"]

DEFAULT_DATABASE_URL = "sqlite:///helpdesk.db"
"""A SQLite file in the working directory."""

metadata = sa.MetaData()

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("tenant", sa.String(200), primary_key=True),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("subject", sa.String(500), nullable=False),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("channel", sa.String(50), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
"""One row per conversation: what the helpdesk itself knows of it. Its state
(open, closed, who holds it) is cxflow's, read through the engine."""

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("tenant", sa.String(200), primary_key=True),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("ticket_id", sa.String(64), nullable=False),
    sa.Column("author_kind", sa.String(20), nullable=False),
    sa.Column("author_id", sa.String(200)),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["tenant", "ticket_id"], ["tickets.tenant", "tickets.id"]),
    sa.Index("ix_messages_ticket", "tenant", "ticket_id"),
)
"""The text of every message; cxflow is told that a message was written."""


class Database:
    """The host's engine, its write-transaction variant and its schema.

    ``url`` is a SQLAlchemy URL: ``sqlite:///path.db`` (the default, a file),
    or ``postgresql+psycopg://user@host/db``. ``connections``: the size of the
    connection pool.
    """

    def __init__(self, url: str = DEFAULT_DATABASE_URL, *, connections: int = 20) -> None:
        parsed = sa.make_url(url)
        self.connections = connections
        if parsed.get_backend_name() == "sqlite":
            # BEGIN IMMEDIATE for write transactions, a busy timeout, WAL.
            if parsed.database in (None, "", ":memory:"):  # one shared connection:
                self.engine = sqlite_engine(None, busy_timeout=30)  # a demo, one request at a time
                self.connections = 3
            else:
                self.engine = sqlite_engine(
                    parsed.database, busy_timeout=30, pool_size=connections, max_overflow=0
                )
        else:
            self.engine = sa.create_engine(
                url, pool_size=connections, max_overflow=0, pool_pre_ping=True
            )
        # On SQLite a transaction begun here takes the write lock at BEGIN, so
        # concurrent writing requests queue instead of failing with "database is
        # locked"; on PostgreSQL the options change nothing.
        self.writer = self.engine.execution_options(**WRITE_TRANSACTION)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def create_schema(self) -> None:
        """Create (or upgrade) cxflow's tables and the host's own."""
        SqlStore(self.engine).create_schema()
        metadata.create_all(self.engine)

    @contextmanager
    def write_transaction(self) -> Iterator[sa.Connection]:
        """One writing request's transaction: committed when the block ends
        without an exception, rolled back otherwise."""
        with self.writer.begin() as conn:
            yield conn

    @contextmanager
    def read_transaction(self) -> Iterator[sa.Connection]:
        """One reading request's transaction (deferred on SQLite: it does not
        wait for writers, thanks to WAL)."""
        with self.engine.begin() as conn:
            yield conn

    def active_tenants(self) -> list[str]:
        """The tenants the tick loop serves: every tenant with a ticket (their
        conversations are what cxflow keeps timers for here)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(tickets.c.tenant).distinct().order_by(tickets.c.tenant))
            return [row.tenant for row in rows]

    def dispose(self) -> None:
        self.engine.dispose()


def utc(value: datetime) -> datetime:
    """``value`` as aware UTC (SQLite hands back naive datetimes)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
