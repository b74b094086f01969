"""Shared fixtures: a fixed instant, a test clock, a recording sink, a service;
and the hypothesis profiles.

Keep this file small; helpers specific to one test module live in that module.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from hypothesis import settings

from cxflow import MemoryStore, TaskService, TestClock
from cxflow.events import Event
from cxflow.storage.kinds import register_kind
from note_kind import NOTE_KIND

# A record kind of the tests' own, registered as a host registers one: before
# any store is built, so every store and the contract suite keep it too.
register_kind(NOTE_KIND)

# Hypothesis profiles. ``dev`` (the default) is quick: 10 examples per property.
# ``ci`` (when CI=true, as .ci/run sets it) runs 100, on top of hypothesis's
# built-in ci profile (derandomized, no deadline, no example database).
# CXFLOW_HYPOTHESIS_PROFILE=ci (or dev) picks one explicitly. Modules that
# deliberately run more examples for a key property ask for a multiple of the
# profile's count (``2 * settings.default.max_examples``), so both profiles
# scale them.
settings.register_profile("dev", max_examples=10)
settings.register_profile("ci", settings.get_profile("ci"), max_examples=100)
HYPOTHESIS_PROFILE = os.environ.get("CXFLOW_HYPOTHESIS_PROFILE") or (
    "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"
)
settings.load_profile(HYPOTHESIS_PROFILE)


def pytest_report_header() -> str:
    return f"hypothesis profile: {HYPOTHESIS_PROFILE!r} (CXFLOW_HYPOTHESIS_PROFILE, or CI=true)"


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
