"""Engines configured for cxflow: SQLite locking, PostgreSQL URLs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from cxflow.errors import ValidationError

__all__ = ["WRITE_TRANSACTION", "configure_sqlite", "sqlite_engine"]

_WRITE_OPTION = "cxflow_write"

WRITE_TRANSACTION: Mapping[str, Any] = MappingProxyType({_WRITE_OPTION: True})
"""SQLAlchemy execution options for a transaction that will write.

On an engine set up by ``configure_sqlite``, a transaction begun on a
connection carrying them starts with ``BEGIN IMMEDIATE``: it takes the
database's write lock up front, so concurrent writers queue (up to the busy
timeout) instead of failing with "database is locked" when a transaction that
has read tries to write. A host that hands cxflow its own SQLite transaction
opens it this way::

    writer = engine.execution_options(**WRITE_TRANSACTION)
    with writer.begin() as conn:
        store = SqlStore(conn)

Writers then run one at a time, from ``BEGIN`` to commit. On other engines
(PostgreSQL) the options change nothing. cxflow's own write transactions
always carry them."""


_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


def configure_sqlite(
    engine: sa.Engine, *, busy_timeout: float = 30.0, synchronous: str = "NORMAL"
) -> sa.Engine:
    """Make a SQLite engine safe for cxflow's writes from several processes.

    - The driver's own implicit transactions are switched off; SQLAlchemy's
      ``begin`` emits ``BEGIN IMMEDIATE`` on connections carrying
      ``WRITE_TRANSACTION`` (cxflow's writes, and host transactions opened
      with it: the write lock is taken up front, so two writers queue instead
      of deadlocking on lock upgrade), none on connections in ``AUTOCOMMIT``
      (cxflow's reads: each is one statement), and a deferred ``BEGIN``
      otherwise;
    - ``busy_timeout`` (seconds): how long a writer waits for the lock before
      the call fails with ``StorageError``;
    - WAL journal for file databases, so reads do not block on writers;
    - ``synchronous`` (``PRAGMA synchronous``): ``"NORMAL"`` by default, what
      SQLite recommends with WAL: a commit survives a crash of the process,
      and the log is synced at checkpoints, not at every commit, so a commit
      of the last moments may be lost if the machine loses power (the
      database is never corrupted). ``"FULL"`` syncs on every commit: durable
      across power loss, at the price of one sync per write (about 1 ms on
      the machine of ``benchmarks/results/service.md``).

    Returns ``engine``. Call it once, before the engine's first connection.
    """
    if engine.dialect.name != "sqlite":
        raise ValidationError(
            "engine", f"configure_sqlite() needs a SQLite engine, got {engine.dialect.name}"
        )
    _check_synchronous(synchronous)
    timeout_ms = int(busy_timeout * 1000)

    @sa.event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def on_begin(connection: sa.Connection) -> None:
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return  # each statement commits on its own (cxflow's one-statement reads)
        immediate = options.get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _check_synchronous(synchronous: object) -> None:
    if synchronous not in _SYNCHRONOUS:
        raise ValidationError("synchronous", f"must be one of {', '.join(_SYNCHRONOUS)}")


def sqlite_engine(
    path: str | os.PathLike[str] | None = None,
    *,
    busy_timeout: float = 30.0,
    synchronous: str = "NORMAL",
    **kwargs: Any,
) -> sa.Engine:
    """A SQLite engine configured by ``configure_sqlite``.

    ``path`` is the database file; ``None`` gives a private in-memory database
    shared by every use of this engine (one connection, so it lives as long as
    the engine). ``busy_timeout`` and ``synchronous``: see ``configure_sqlite``.
    Extra keyword arguments go to ``sqlalchemy.create_engine``.
    """
    _check_synchronous(synchronous)  # before an engine exists
    if path is None:
        engine = sa.create_engine(
            "sqlite://",
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
            **kwargs,
        )
    else:
        engine = sa.create_engine(
            f"sqlite:///{os.fspath(path)}", connect_args={"timeout": busy_timeout}, **kwargs
        )
    return configure_sqlite(engine, busy_timeout=busy_timeout, synchronous=synchronous)
