"""Storage adapter protocols: what a host implements to keep cxflow's records.

The tiers are small so a host implements only what it uses:

- ``FlowStore``: read flow versions;
- ``TaskStore``: read tasks and query them;
- ``EventOutbox``: read the events appended by commits;
- ``ConversationStore``: read conversations and customers;
- ``TimerStore``: read timers and claim due ones with a lease;
- ``AssignmentStore``: read agents, routing records and the tenant's routing
  version;
- ``CursorStore``: read the cursors of the log's consumers (optional: what
  ``cxflow.app.consumers.Consumer`` needs);
- ``RecordStore``: read the records of any registered kind
  (``cxflow.storage.kinds``; optional);
- ``ChangeWriter``: the single write entry point, ``ChangeWriter.commit``,
  which applies a ``ChangeSet`` atomically.

``Store`` is the four tiers ``cxflow.TaskService`` needs; ``FullStore`` adds
conversations and timers; ``AssignmentStore`` stands alone for
``cxflow.assignment.AssignmentService``. Rules every adapter follows (the contract suite in
``cxflow.testing`` checks each):

- **Tenant scope.** Every method takes the tenant first. An empty or non-string
  tenant raises ``ValidationError`` before any I/O (fail closed).
  Records of one tenant are invisible to every other: reading another tenant's
  id raises ``NotFound`` exactly as if it did not exist.
- **Copies.** Changing what a caller passed in or got back never changes
  stored state. Frozen records (flows, customers, timers, routings, events)
  are immutable and may be shared as they are; ``Task`` and ``Conversation``
  allow attribute assignment and ``Agent`` holds dicts, so those are copied.
- **Optimistic concurrency.** A record at ``version`` *n* may be written only
  over the stored version *n - 1* (or, for *n = 1*, when no record exists).
  Anything else raises ``ConflictError``.
- **Atomicity.** A commit applies entirely or not at all.
- **Errors.** Driver errors are translated into ``StorageError``
  (``raise StorageError(...) from exc``); unknown ids raise
  ``NotFound``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import attrs

from cxflow import _validate as v
from cxflow.assignment.model import Agent, Routing
from cxflow.conversations.model import Conversation, Customer
from cxflow.conversations.query import ConversationQuery, CustomerQuery
from cxflow.cursors import Cursor
from cxflow.errors import ValidationError
from cxflow.events import Event
from cxflow.flows.model import Flow
from cxflow.storage.kinds import BUILT_IN_PARTS, kinds
from cxflow.tasks.model import Task
from cxflow.tasks.query import Page, TaskQuery
from cxflow.timers.model import Timer

__all__ = [
    "BATCH_KINDS",
    "MAX_BATCH",
    "AssignmentStore",
    "BatchReads",
    "ChangeSet",
    "ConversationStore",
    "CursorStore",
    "FullStore",
    "HostTransaction",
    "TimerStore",
    "ChangeWriter",
    "EventOutbox",
    "FlowStore",
    "Store",
    "RecordScope",
    "RecordStore",
    "StoredEvent",
    "TaskStore",
    "UnitScope",
    "RecordKey",
    "check_record_keys",
    "provides",
    "require_tenant",
]


def require_tenant(tenant: object) -> str:
    """Return ``tenant`` if it is a valid tenant (``cxflow._validate.check_tenant``:
    non-blank text of at most ``MAX_TENANT`` characters, no control characters
    or lone surrogates); else raise ``ValidationError`` (field ``tenant``).
    Adapters call this first."""
    return v.check_tenant(tenant)


_PROVIDES: dict[tuple[type, type], bool] = {}


def provides(store: object, tier: type) -> bool:
    """Whether ``store`` implements the protocol ``tier``, decided once per
    store class (a runtime protocol ``isinstance`` costs tens of microseconds,
    and cxflow asks on every session). A store must define its tiers'
    methods on its class, not per instance."""
    key = (type(store), tier)
    found = _PROVIDES.get(key)
    if found is None:
        found = _PROVIDES[key] = isinstance(store, tier)
    return found


_NO_RECORDS: Mapping[str, tuple[Any, ...]] = MappingProxyType({})


def _extension_parts(value: object) -> Mapping[str, tuple[Any, ...]]:
    """``ChangeSet.records`` as a read-only mapping of registered parts to
    tuples; ``ValidationError`` (field ``records``) for anything else."""
    if not isinstance(value, Mapping):
        raise ValidationError("records", "expected a mapping of part -> records")
    if not value:
        return _NO_RECORDS  # every ChangeSet built without records: nothing to look up
    parts: dict[str, tuple[Any, ...]] = {}
    registered = {kind.part for kind in kinds()}
    items: list[tuple[object, object]] = list(value.items())
    for part, records in items:
        if part in BUILT_IN_PARTS or part not in registered:
            raise ValidationError(
                "records", f"{v.shown(part)} is not the part of a kind registered later "
                "(built-in parts have ChangeSet fields of their own)"
            )
        if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Iterable):
            raise ValidationError("records", f"expected a sequence of the records of {part!r}")
        converted = tuple(records)
        if converted:
            parts[str(part)] = converted
    return MappingProxyType(parts)


@attrs.frozen(kw_only=True)
class ChangeSet:
    """Records to write in one atomic commit.

    - ``flows``: flow versions to add; version *n* requires stored latest *n - 1*.
    - ``tasks``: task snapshots to write; version *n* requires stored *n - 1*
      (version 1: the id must be new).
    - ``conversations``, ``customers``, ``timers``: the same version rule as tasks.
    - ``agents``, ``routings``: the same version rule as tasks.
    - ``finished_routings``: conversation ids whose routing records are
      deleted (after the ``routings`` above are written); each must be stored.
    - ``cursors``: consumer cursors; the same version rule as tasks (keyed by
      name).
    - ``records``: the records of kinds registered after these
      (``cxflow.storage.kinds``), by part; the same version rule.
    - ``routing_version``: when set to *n*, the tenant's stored routing
      version must be *n - 1* (0 when the tenant has none) and becomes *n*.
      Every scheduler decision writes it, so two processes routing the same
      tenant cannot both commit decisions taken from the same state.
    - ``events``: appended to the outbox in this order, each as given
      (with its ``Event.envelope``, ``None`` or not).

    A change set is empty (false) only when every part is: one that only
    sets ``routing_version`` is not, and its commit advances the fence.

    Records with the same id apply in order, so one set may carry a task at
    v1 and v2 (create then change), but not v1 twice.
    """

    flows: tuple[Flow, ...] = attrs.field(default=(), converter=v.to_tuple)
    tasks: tuple[Task, ...] = attrs.field(default=(), converter=v.to_tuple)
    conversations: tuple[Conversation, ...] = attrs.field(default=(), converter=v.to_tuple)
    customers: tuple[Customer, ...] = attrs.field(default=(), converter=v.to_tuple)
    timers: tuple[Timer, ...] = attrs.field(default=(), converter=v.to_tuple)
    agents: tuple[Agent, ...] = attrs.field(default=(), converter=v.to_tuple)
    routings: tuple[Routing, ...] = attrs.field(default=(), converter=v.to_tuple)
    finished_routings: tuple[str, ...] = attrs.field(default=(), converter=v.to_tuple)
    cursors: tuple[Cursor, ...] = attrs.field(default=(), converter=v.to_tuple)
    records: Mapping[str, tuple[Any, ...]] = attrs.field(
        factory=dict, converter=_extension_parts, hash=False
    )
    routing_version: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(v.positive_int)
    )
    events: tuple[Event, ...] = attrs.field(default=(), converter=v.to_tuple)

    def __bool__(self) -> bool:
        return bool(
            self.flows
            or self.tasks
            or self.conversations
            or self.customers
            or self.timers
            or self.agents
            or self.routings
            or self.finished_routings
            or self.cursors
            or self.routing_version is not None
            or self.events
            or any(self.records.values())
        )

    def part(self, name: str) -> tuple[Any, ...]:
        """The records of part ``name`` (``"tasks"``, or a kind registered
        later: ``records[name]``); ``()`` when it has none."""
        if name in BUILT_IN_PARTS:
            found: tuple[Any, ...] = getattr(self, name)
            return found
        return self.records.get(name, ())


@attrs.frozen(kw_only=True)
class StoredEvent:
    """An event in the outbox with its position (1, 2, 3, ... per tenant)."""

    position: int
    event: Event


@runtime_checkable
class FlowStore(Protocol):
    """Reads flow versions."""

    def get_flow(self, tenant: str, flow_id: str, version: int | None = None) -> Flow:
        """Return flow ``flow_id`` at ``version`` (default: the latest version).

        Raises ``NotFound`` (kind ``"flow"``) when the flow or that
        version does not exist for ``tenant``.
        """
        ...

    def list_flows(self, tenant: str) -> list[Flow]:
        """Return the latest version of every flow of ``tenant``, ordered by id."""
        ...

    def list_flow_versions(self, tenant: str, flow_id: str) -> list[Flow]:
        """Return every version of ``flow_id``, oldest first.

        Raises ``NotFound`` when the flow does not exist.
        """
        ...


@runtime_checkable
class TaskStore(Protocol):
    """Reads tasks."""

    def get_task(self, tenant: str, task_id: str) -> Task:
        """Return the current snapshot of task ``task_id``.

        Raises ``NotFound`` (kind ``"task"``) when it does not
        exist for ``tenant``. Soft-deleted tasks are returned (``deleted`` is true).
        """
        ...

    def query_tasks(self, tenant: str, query: TaskQuery) -> Page:
        """Return the page of tasks matching ``query``.

        Matching and ordering are defined by ``TaskQuery.matches`` and
        ``TaskQuery.sort_key``; ties are broken by task id, so paging is
        stable. ``Page.total`` counts every match, not just the page.
        """
        ...


@runtime_checkable
class EventOutbox(Protocol):
    """Reads the events appended by commits."""

    def read_events(self, tenant: str, after: int = 0, limit: int = 100) -> list[StoredEvent]:
        """Return up to ``limit`` events of ``tenant`` with position > ``after``,
        in position order. Positions start at 1 and increase by one per event,
        in commit order, without gaps.

        ``after`` must be an integer >= 0 and ``limit`` an integer >= 1 (``bool``
        is not an integer here); otherwise ``ValidationError`` with
        ``field`` ``"after"`` or ``"limit"``."""
        ...


@runtime_checkable
class ConversationStore(Protocol):
    """Reads conversations and customers."""

    def get_conversation(self, tenant: str, conversation_id: str) -> Conversation:
        """Return conversation ``conversation_id``; ``NotFound`` (kind
        ``"conversation"``) when it does not exist for ``tenant``."""
        ...

    def query_conversations(self, tenant: str, query: ConversationQuery) -> list[Conversation]:
        """Return the conversations matching ``query``, as ``query.apply`` defines
        (ordered by ``opened_at`` then id, at most ``query.limit``). A ``query``
        that is not a ``ConversationQuery`` is a ``ValidationError``."""
        ...

    def get_customer(self, tenant: str, customer_id: str) -> Customer:
        """Return customer ``customer_id``; ``NotFound`` (kind ``"customer"``)."""
        ...

    def query_customers(self, tenant: str, query: CustomerQuery) -> list[Customer]:
        """Return the customers matching ``query``, as ``query.apply`` defines.
        A ``query`` that is not a ``CustomerQuery`` is a ``ValidationError``."""
        ...


@runtime_checkable
class TimerStore(Protocol):
    """Reads timers and claims due ones for a worker."""

    def get_timer(self, tenant: str, timer_id: str) -> Timer:
        """Return timer ``timer_id``; ``NotFound`` (kind ``"timer"``)."""
        ...

    def claim_timers(
        self, tenant: str, at: datetime, *, worker: str, lease: timedelta, limit: int = 100
    ) -> list[Timer]:
        """Claim up to ``limit`` timers due at ``at`` for ``worker``, in deadline
        order (ties by id), and return them as claimed.

        Due means ``Timer.is_due(at)``: pending, deadline reached, and no lease
        or an expired one. Each returned timer was written atomically as
        ``timer.claimed(worker, at, lease)`` (version + 1), so two workers
        never hold the same timer at once: concurrent claims skip each other's
        timers (PostgreSQL: ``FOR UPDATE SKIP LOCKED``).

        Arguments are checked after the tenant, each refusal a
        ``ValidationError`` naming it (``cxflow.storage.memory.check_claim_arguments``
        does all four): ``worker`` a name (non-blank text of at most 200
        characters, no control characters); ``lease`` a ``timedelta`` above
        zero and at most 3,650 days; ``limit`` an ``int`` (not ``bool``) from
        1 to ``cxflow.storage.memory.MAX_CLAIM`` (1000); ``at`` an aware datetime (naive is refused)
        from year 1 to 9000.
        """
        ...


@runtime_checkable
class AssignmentStore(Protocol):
    """Reads what the assignment scheduler keeps: agents, one routing record per
    open routed conversation (waiting or assigned), and the tenant's routing
    version (see ``ChangeSet.routing_version``)."""

    def get_agent(self, tenant: str, agent_id: str) -> Agent:
        """Return agent ``agent_id``; ``NotFound`` (kind ``"agent"``) when it
        does not exist for ``tenant``."""
        ...

    def list_agents(self, tenant: str) -> list[Agent]:
        """Return every agent of ``tenant``, ordered by id."""
        ...

    def get_routing(self, tenant: str, conversation_id: str) -> Routing:
        """Return the routing record of ``conversation_id``; ``NotFound`` (kind
        ``"routing"``) when there is none for ``tenant`` (never routed, or
        finished)."""
        ...

    def list_routings(self, tenant: str) -> list[Routing]:
        """Return every routing record of ``tenant`` (waiting and assigned),
        ordered by conversation id."""
        ...

    def routing_version(self, tenant: str) -> int:
        """Return the tenant's routing version: 0 until the first commit that
        sets ``ChangeSet.routing_version``."""
        ...


@runtime_checkable
class CursorStore(Protocol):
    """Reads the cursors of the log's consumers (written by ``ChangeSet.cursors``)."""

    def get_cursor(self, tenant: str, name: str) -> Cursor:
        """Return the cursor of consumer ``name``; ``NotFound`` (kind ``"cursor"``)
        when it has none for ``tenant``. A bad name is a ``ValidationError``
        (field ``name``)."""
        ...


@runtime_checkable
class RecordStore(Protocol):
    """Reads the records of any registered kind (``cxflow.storage.kinds``): how
    a kind registered by a host is read back, and how the contract suite
    checks every kind alike."""

    def get_record(self, tenant: str, kind: str, record_id: str) -> Any:
        """The record ``record_id`` of kind ``kind``; ``NotFound`` (that kind)
        when it has none for ``tenant``. An unknown kind is a
        ``ValidationError`` (field ``kind``), a bad id one with field
        ``record_id``."""
        ...

    def list_records(self, tenant: str, kind: str) -> list[Any]:
        """Every record of kind ``kind`` of ``tenant``, ordered by key (code
        point order)."""
        ...


@runtime_checkable
class ChangeWriter(Protocol):
    """The single write entry point."""

    def commit(self, tenant: str, changes: ChangeSet) -> None:
        """Apply ``changes`` atomically for ``tenant``.

        Raises ``ConflictError`` when any flow, task, conversation, customer,
        timer, agent, routing or cursor version does not follow the stored one (see the
        module rules), including a duplicate id at version 1; when a finished
        routing is not stored; or when ``routing_version`` does not follow the
        stored one. It then writes nothing. An empty change set is a no-op.
        """
        ...


@runtime_checkable
class HostTransaction(Protocol):
    """Optional tier of a store that can write inside a transaction its caller
    owns (``SqlStore`` on a host's ``Connection``): such a commit is durable
    only once the host commits. cxflow uses it to keep in-memory state (the
    assignment schedulers) in line with what the database really keeps."""

    def transaction_owner(self) -> object | None:
        """The caller's open transaction a ``commit`` would now write in (any
        object that identifies it; ``SqlStore``: the ``Connection``), or
        ``None`` when a commit would be durable at once."""
        ...

    def on_outcome(self, committed: Callable[[], None], discarded: Callable[[], None]) -> bool:
        """After a ``commit``: if it wrote inside a transaction the caller owns,
        arrange for ``committed`` to run once that transaction commits, or
        ``discarded`` once it, or a savepoint around the write, rolls back, and
        return True. Return False when the commit is durable already (the
        callbacks are not kept)."""
        ...


@runtime_checkable
class UnitScope(Protocol):
    """Optional tier of a store that can hold what one unit of work reads and
    commits with (``SqlStore`` on PostgreSQL: one pooled connection, in
    autocommit), instead of getting it anew for every call."""

    def unit_scope(self) -> AbstractContextManager[None]:
        """A context in which the store's reads and ``commit`` share what it
        holds; released when the context ends, however it ends. Entered by
        one thread, never nested."""
        ...


@runtime_checkable
class RecordScope(Protocol):
    """Optional tier of a store whose records another object of the same
    process may read from a cache (``cxflow.app.records``): the engine's
    write paths then skip the read of the task or conversation they change,
    leaving the store's version checks to catch a stale snapshot."""

    def record_scope(self) -> object | None:
        """What identifies the database this store reads and writes (equal for
        every store on it; ``SqlStore``: its ``Engine``), or ``None`` when
        reads must go to the store (a commit would not be durable at once:
        inside a host's transaction)."""
        ...


RecordKey = tuple[str, str]
"""``(kind, id)`` of one record for ``BatchReads``: kind ``"task"``,
``"conversation"`` or ``"customer"``."""

BATCH_KINDS = ("task", "conversation", "customer")
"""The record kinds ``BatchReads.get_records`` reads."""
MAX_BATCH = 100
"""The most keys one ``BatchReads.get_records`` call takes."""


@runtime_checkable
class BatchReads(Protocol):
    """Optional tier of a store that reads several records at once (``SqlStore``:
    one statement, so one round trip). The engine's write paths use it to load
    what one call needs together (opening a conversation: the conversation id
    it must not reuse and the customer)."""

    def get_records(self, tenant: str, keys: Sequence[RecordKey]) -> dict[RecordKey, Any]:
        """The stored record of each of ``keys`` that exists (one that does not
        is left out), as the single reads (``get_task``, ``get_conversation``,
        ``get_customer``) would return it. A kind outside ``BATCH_KINDS`` is a
        ``ValidationError`` (field ``keys``); a bad id the one its single read
        raises."""
        ...


def check_record_keys(keys: object) -> list[RecordKey]:
    """``BatchReads.get_records``'s ``keys`` as a list of ``(kind, id)`` pairs
    of a known kind; ``ValidationError`` (field ``keys``) otherwise. The ids
    are left for the store's reads to check."""
    if not isinstance(keys, Sequence) or isinstance(keys, str):
        raise ValidationError("keys", "expected a sequence of (kind, id) pairs")
    if len(keys) > MAX_BATCH:
        raise ValidationError("keys", f"at most {MAX_BATCH} keys per call")
    checked: list[RecordKey] = []
    for key in keys:
        if not isinstance(key, tuple) or len(key) != 2 or key[0] not in BATCH_KINDS:
            raise ValidationError("keys", f"expected (kind, id) pairs of {BATCH_KINDS}")
        checked.append(key)
    return checked


@runtime_checkable
class Store(FlowStore, TaskStore, EventOutbox, ChangeWriter, Protocol):
    """The tiers ``cxflow.TaskService`` needs."""


@runtime_checkable
class FullStore(Store, ConversationStore, TimerStore, Protocol):
    """Every tier: what the conversation, timer and SLA services need."""
