"""Testing helpers for hosts and storage adapter authors (public API; requires pytest).

- ``FullStoreContract``, ``StoreContract`` and the per-tier contract
  classes: the conformance suite every storage adapter passes by
  subclassing, as cxflow's own ``MemoryStore`` does::

      from cxflow.testing import FullStoreContract

      class TestMyStore(FullStoreContract):
          def make_store(self):
              return MyStore(...)  # a new, empty store per call

  ``FullStoreContract`` checks every tier of ``FullStore``;
  ``StoreContract`` checks the tiers of ``Store`` that ``TaskService``
  needs; ``EveryTierContract`` adds ``AssignmentStore`` to
  ``FullStoreContract``. Optionally override ``dispose_store(self, store)`` to clean up
  after each test, and ``tenant`` / ``other_tenant`` to choose the tenant
  ids. Adapters implementing only some tiers subclass just those classes
  (``FlowStoreContract``, ``TaskStoreContract``,
  ``ConversationStoreContract``, ``TimerStoreContract``,
  ``AssignmentStoreContract``, ...); every class seeds its data through
  ``commit``. See ``cxflow.testing.contract``.
- ``RecordKindContract``: ``RecordStore`` and the rules every record kind
  shares (versions, copies, tenants, aware instants), run over every kind
  registered in ``cxflow.storage.kinds``, a host's own kinds included
  (``cxflow.testing.contract.records``; the tier classes above run the same
  rules for their own kinds).
- ``CursorStoreContract`` and ``ConsumerContract``: the optional cursor
  tier (``CursorStore``) and exactly-once consumers on it
  (``cxflow.testing.consumer_contract``); subclass them too for a store
  that has the tier.
- ``TestClock``: a frozen clock that moves only when told to.
- ``RecordingSink``: an event sink that keeps ``(tenant, event)`` pairs.
- ``sample_flow``, ``sample_task``, ``sample_task_history``,
  ``sample_conversation``, ``sample_customer``, ``sample_timer`` and
  ``T0``: deterministic test data at fixed instants.

This package imports pytest; install it with the ``test`` extra.
"""

import pytest

# Plain asserts in the contract classes get pytest's detailed failure messages.
pytest.register_assert_rewrite("cxflow.testing.contract", "cxflow.testing.consumer_contract")

from cxflow.clock import TestClock  # noqa: E402
from cxflow.testing.consumer_contract import (  # noqa: E402
    ConsumerContract,
    CursorStoreContract,
)
from cxflow.testing.contract import (  # noqa: E402
    AssignmentStoreContract,
    ChangeWriterContract,
    ConversationStoreContract,
    EventOutboxContract,
    EveryTierContract,
    FlowStoreContract,
    FullStoreContract,
    RecordKindContract,
    StoreContract,
    TaskQueryContract,
    TaskStoreContract,
    TenantIsolationContract,
    TimerStoreContract,
)
from cxflow.testing.fixtures import (  # noqa: E402
    T0,
    RecordingSink,
    sample_conversation,
    sample_customer,
    sample_flow,
    sample_task,
    sample_task_history,
    sample_timer,
)

__all__ = [
    "T0",
    "AssignmentStoreContract",
    "ChangeWriterContract",
    "ConsumerContract",
    "ConversationStoreContract",
    "CursorStoreContract",
    "EventOutboxContract",
    "EveryTierContract",
    "FlowStoreContract",
    "FullStoreContract",
    "RecordKindContract",
    "RecordingSink",
    "StoreContract",
    "TaskQueryContract",
    "TaskStoreContract",
    "TenantIsolationContract",
    "TestClock",
    "TimerStoreContract",
    "sample_conversation",
    "sample_customer",
    "sample_flow",
    "sample_task",
    "sample_task_history",
    "sample_timer",
]
