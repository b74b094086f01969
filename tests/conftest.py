"""Shared fixtures: a fixed instant, a test clock, a recording sink, a service.

Keep this file small; helpers specific to one test module live in that module.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from cxflow import MemoryStore, TaskService, TestClock
from cxflow.events import Event

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
"""The instant every test clock starts at."""


class RecordingSink:
    """An event sink that remembers what it was given, in order."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, tuple[Event, ...]]] = []

    def publish(self, tenant: str, events: Sequence[Event]) -> None:
        self.batches.append((tenant, tuple(events)))

    @property
    def events(self) -> list[Event]:
        """Every published event, flattened, in publish order."""
        return [event for _tenant, batch in self.batches for event in batch]


@pytest.fixture
def clock() -> TestClock:
    return TestClock(T0)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def service(store: MemoryStore, clock: TestClock, sink: RecordingSink) -> TaskService:
    ids = iter(f"task-{n}" for n in range(1, 1_000_000))
    return TaskService(store, clock, sink, new_id=lambda: next(ids))
