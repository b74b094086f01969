"""Shared parts of the contract suite: the store factory every class
subclasses, tenants, instants and small record helpers."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import attrs
import pytest

from cxflow.assignment.model import Agent, Routing
from cxflow.conversations.model import (
    Conversation,
    Customer,
)
from cxflow.events import Event, FlowSaved
from cxflow.flows.model import Flow
from cxflow.storage.protocols import (
    ChangeSet,
    Store,
    StoredEvent,
)
from cxflow.tasks.model import Task
from cxflow.testing.fixtures import (
    T0,
)
from cxflow.timers.model import Timer

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)

BAD_TENANTS: list[object] = [None, "", "   ", 5]
BAD_TENANT_IDS = ["none", "empty", "blank", "int"]


def _flow_saved(number: int) -> FlowSaved:
    """A distinct event per ``number`` (its instant and flow id differ)."""
    return FlowSaved(
        flow_id=f"flow-{number}",
        version=1,
        at=T0 + number * MINUTE,
        by="tester",
    )


def _refuse_assignment(record: object, name: str, value: object) -> None:
    """Frozen records are immutable: a store may share them with its callers
    (changing one with ``object.__setattr__`` is outside the contract)."""
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(record, name, value)


class _StoreFactory(abc.ABC):
    """The store factory and helpers every contract class shares."""

    tenant: str = "acme"
    """The tenant most tests write to."""
    other_tenant: str = "globex"
    """A second tenant, for isolation tests."""

    @abc.abstractmethod
    def make_store(self) -> Store:
        """Return a new, empty store of the adapter under test."""

    def dispose_store(self, store: Store) -> None:  # noqa: B027 - optional hook
        """Release what ``make_store`` acquired (default: nothing)."""

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        """A fresh store for one test."""
        store = self.make_store()
        try:
            yield store
        finally:
            self.dispose_store(store)

    def commit(
        self,
        store: Store,
        *,
        flows: tuple[Flow, ...] = (),
        tasks: tuple[Task, ...] = (),
        conversations: tuple[Conversation, ...] = (),
        customers: tuple[Customer, ...] = (),
        timers: tuple[Timer, ...] = (),
        agents: tuple[Agent, ...] = (),
        routings: tuple[Routing, ...] = (),
        finished_routings: tuple[str, ...] = (),
        routing_version: int | None = None,
        events: tuple[Event, ...] = (),
        tenant: str | None = None,
    ) -> None:
        """Commit one change set for ``tenant`` (default ``tenant``)."""
        store.commit(
            self.tenant if tenant is None else tenant,
            ChangeSet(
                flows=flows,
                tasks=tasks,
                conversations=conversations,
                customers=customers,
                timers=timers,
                agents=agents,
                routings=routings,
                finished_routings=finished_routings,
                routing_version=routing_version,
                events=events,
            ),
        )

    def all_events(self, store: Store, tenant: str | None = None) -> list[StoredEvent]:
        """Every event in the outbox of ``tenant`` (paging through it)."""
        found: list[StoredEvent] = []
        after = 0
        while batch := store.read_events(self.tenant if tenant is None else tenant, after, 100):
            found.extend(batch)
            assert batch[-1].position > after, "read_events(after=n) returned position <= n"
            after = batch[-1].position
        return found




def _next(record: Any, **changes: Any) -> Any:
    """The next version of a conversation or customer with ``changes``."""
    return attrs.evolve(record, version=record.version + 1, **changes)
