"""The storage adapter contract suite (requires pytest).

Base classes of small, one-behaviour tests that every adapter of
``cxflow.storage.protocols`` passes by subclassing, as the in-memory
reference adapter does::

    from cxflow.testing import FullStoreContract

    class TestMyStore(FullStoreContract):
        def make_store(self):
            return MyStore(...)

The classes are deliberately not named ``Test*``, so pytest collects them only
through your subclass. Each tier has its own class; ``StoreContract``
combines those of ``Store`` (what ``cxflow.TaskService`` needs),
``FullStoreContract`` every tier of ``FullStore``, and ``EveryTierContract``
adds ``AssignmentStore``:

- ``FlowStoreContract``: flow versions, latest/specific reads, ordering;
- ``TaskStoreContract``: task snapshots, copies, version rules;
- ``TaskQueryContract``: every filter, sort order and page of ``TaskQuery``,
  checked against hand-written expectations and ``TaskQuery.apply``;
- ``EventOutboxContract``: positions, order, ``after``/``limit``;
- ``ChangeWriterContract``: atomicity and optimistic concurrency of ``commit``;
- ``TenantIsolationContract``: tenant required on every method, tenants
  invisible to each other;
- ``ConversationStoreContract``: conversations and customers: snapshots,
  copies, version rules, atomicity, ``ConversationQuery`` / ``CustomerQuery``
  semantics (room and customer tags included), tenants;
- ``TimerStoreContract``: timers: snapshots, version rules, and
  ``claim_timers`` (order, limit, leases, fencing, validation, tenants);
- ``FullStoreContract``: all of the above, plus atomicity of commits that
  mix every kind of record;
- ``AssignmentStoreContract``: agents, routing records and the routing
  version: snapshots, copies, version rules, finished routings, the routing
  version fence, atomicity with tasks and events, tenants (needs the tiers of
  ``Store`` too);
- ``EveryTierContract``: ``FullStoreContract`` and ``AssignmentStoreContract``,
  plus commits that mix assignment records with every other kind.

Every class seeds its data through ``ChangeWriter.commit``, so the adapter
must implement that tier as well as the one under test.

What a subclass provides:

- ``make_store`` (required): a **new, empty** store on every call (a fresh
  database, schema or key prefix per test);
- ``dispose_store`` (optional): release what ``make_store`` took (close
  connections, drop the schema);
- ``tenant`` / ``other_tenant`` (optional): the two tenant ids the tests use.

All data is built with the pure commands of ``cxflow.tasks.commands`` and
the models' own transitions at fixed instants: no clock reads, no sleeps.

The suite lives in one module per tier (``cxflow.testing.contract.tasks``,
``.conversations``, ``.timers``, ``.assignment``, ...); the rules every
record kind shares (versions, copies, tenants, aware datetimes) are written
once, in ``cxflow.testing.contract.records``, and run for each tier's kinds.
Import the classes from here or from ``cxflow.testing``.
"""

from cxflow.testing.contract.assignment import AssignmentStoreContract
from cxflow.testing.contract.commits import ChangeWriterContract
from cxflow.testing.contract.conversations import ConversationStoreContract
from cxflow.testing.contract.flows import FlowStoreContract
from cxflow.testing.contract.outbox import EventOutboxContract
from cxflow.testing.contract.records import RecordKindContract
from cxflow.testing.contract.tasks import TaskQueryContract, TaskStoreContract
from cxflow.testing.contract.tenants import TenantIsolationContract
from cxflow.testing.contract.timers import TimerStoreContract
from cxflow.testing.contract.whole import EveryTierContract, FullStoreContract, StoreContract

__all__ = [
    "AssignmentStoreContract",
    "ChangeWriterContract",
    "ConversationStoreContract",
    "EventOutboxContract",
    "EveryTierContract",
    "FlowStoreContract",
    "FullStoreContract",
    "RecordKindContract",
    "StoreContract",
    "TaskQueryContract",
    "TaskStoreContract",
    "TenantIsolationContract",
    "TimerStoreContract",
]
