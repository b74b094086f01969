"""The record-kind registry: what a store keeps, named once.

A ``RecordKind`` names one kind of versioned record: the ``ChangeSet`` part
that writes it, its class, the attribute that keys it within a tenant, the
attribute that holds its version, and how an in-memory store keeps it (shared
as it is when immutable, else copied in and out). Every kind follows the
same rules (``cxflow.storage.protocols``): scoped by tenant, version *n*
written only over *n - 1* (1: the key must be new), several versions of one
record in one change set applied in order.

cxflow's stores are driven by the registry: ``MemoryStore.commit`` and
``SqlStore.commit`` write every registered kind, ``RecordStore`` reads any of
them, ``SqlStore`` keeps a kind registered by a host in a table of its own
(``cxflow_kind_<part>``: tenant, key, version and the JSON;
``cxflow.storage.sql.schema.kind_table``), and
``cxflow.testing.RecordKindContract`` runs the shared rules over every kind.
So adding a kind is one ``register_kind`` (before the stores' schemas are
created and the contract suite is collected) plus the kind's own behaviour
tests. Its records reach a store through ``ChangeSet(records={part: ...})``.

Flows are not a kind of this registry: a store keeps every version of a
flow, not the latest one (``FlowStore``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from cxflow import _validate as v
from cxflow._records import open_copy, replace_trusted
from cxflow.assignment.model import Agent, Routing
from cxflow.conversations.model import Conversation, ConversationState, Customer
from cxflow.cursors import Cursor
from cxflow.errors import ValidationError
from cxflow.tasks.model import Task
from cxflow.timers.model import Timer

__all__ = [
    "BUILT_IN_PARTS",
    "RECORD_KINDS",
    "RecordKind",
    "kind_named",
    "kinds",
    "register_kind",
]


_SNAKE_CASE = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _snake_case(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A kind's name and part become SQL table names: 1-40 characters of
    lower-case ASCII letters, digits and ``_``, starting with a letter."""
    if not isinstance(value, str) or _SNAKE_CASE.fullmatch(value) is None:
        raise ValidationError(
            attribute.name,
            f"expected 1-40 of a-z, 0-9 and _ starting with a letter, got {v.shown(value)}",
        )


@attrs.frozen(kw_only=True)
class RecordKind:
    """One kind of versioned record (see the module docstring).

    Every kind is scoped by tenant: its key is unique within one tenant, and
    every read and write names the tenant.

    - ``name``: the kind in errors (``NotFound("task", ...)``,
      ``ConflictError("task 't1': ...")``) and in ``RecordStore`` reads;
    - ``part``: the ``ChangeSet`` part that writes it (``"tasks"``);
    - ``record``: its attrs class (the converter stores it);
    - ``key``, ``version``: the attributes holding its id and version;
    - ``copy``: how an in-memory store copies one in and out (``None``: the
      record is immutable and kept as it is);
    - ``example``: a valid record of the kind at version 1 with the given id,
      for the contract suite.
    """

    name: str = attrs.field(validator=_snake_case)
    part: str = attrs.field(validator=_snake_case)
    record: type = attrs.field(validator=v.instance_of(type))
    key: str = "id"
    version: str = "version"
    copy: Callable[[Any], Any] | None = None
    example: Callable[[str], Any]

    def __attrs_post_init__(self) -> None:
        if not attrs.has(self.record):
            raise ValidationError("record", "expected an attrs class")
        names = {field.name for field in attrs.fields(self.record)}
        for field_name in ("key", "version"):
            if getattr(self, field_name) not in names:
                raise ValidationError(
                    field_name, f"{self.record.__name__} has no field {getattr(self, field_name)!r}"
                )

    def key_of(self, record: Any) -> str:
        """The id of ``record`` within its tenant."""
        found: str = getattr(record, self.key)
        return found

    def version_of(self, record: Any) -> int:
        """The version of ``record``."""
        found: int = getattr(record, self.version)
        return found

    def kept(self, record: Any) -> Any:
        """What an in-memory store keeps of ``record`` (and hands back)."""
        return record if self.copy is None else self.copy(record)


_AT = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)
"""The instant of the examples."""


def _agent_copy(agent: Agent) -> Agent:
    """A copy of ``agent`` with its own ``skills`` and ``channel_capacity``
    dicts (its other fields are immutable); built without re-validating."""
    return replace_trusted(
        agent, skills=dict(agent.skills), channel_capacity=dict(agent.channel_capacity)
    )


def _example_task(record_id: str) -> Task:
    return Task(id=record_id, flow_id="support", flow_version=1, title="Refund",
                status="new", created_at=_AT, updated_at=_AT, created_by="ana",
                due_at=_AT + timedelta(days=1), watchers=("bo",))


def _example_conversation(record_id: str) -> Conversation:
    return Conversation(id=record_id, customer_id="cust-1", channel="chat", opened_at=_AT,
                        updated_at=_AT, last_customer_message_at=_AT, room_tags=["vip"],
                        state=ConversationState.CLOSED, closed_at=_AT)


def _example_timer(record_id: str) -> Timer:
    return Timer(id=record_id, kind="autoclose", subject_id="conv-1", deadline=_AT)


def _example_routing(record_id: str) -> Routing:
    return Routing(conversation_id=record_id, channel="chat", arrived_at=_AT, agent="ana",
                   assigned_at=_AT, declined=("bo",))


RECORD_KINDS: dict[str, RecordKind] = {}
"""Every registered kind by name, in registration order (the order a commit
writes them in)."""

BUILT_IN_PARTS = ("tasks", "customers", "conversations", "timers", "agents", "routings",
                  "cursors")
"""The parts that are ``ChangeSet`` fields of their own; a kind registered
later is written through ``ChangeSet.records``."""

_RESERVED = frozenset({"flows", "finished_routings", "routing_version", "events", "records"})


def register_kind(kind: RecordKind) -> RecordKind:
    """Add ``kind`` to the registry; ``ValidationError`` when its name or part
    is taken (or is one of the other ``ChangeSet`` fields)."""
    if not isinstance(kind, RecordKind):
        raise ValidationError("kind", "expected a RecordKind")
    if kind.name in RECORD_KINDS or kind.name == "flow":
        raise ValidationError("name", f"a record kind {kind.name!r} is registered already")
    if kind.part in _RESERVED or any(k.part == kind.part for k in RECORD_KINDS.values()):
        raise ValidationError("part", f"the ChangeSet part {kind.part!r} is taken")
    RECORD_KINDS[kind.name] = kind
    return kind


def kinds() -> tuple[RecordKind, ...]:
    """Every registered kind, in registration order."""
    return tuple(RECORD_KINDS.values())


def kind_named(name: object) -> RecordKind:
    """The registered kind ``name``; ``ValidationError`` (field ``kind``) otherwise."""
    found = RECORD_KINDS.get(name) if isinstance(name, str) else None
    if found is None:
        raise ValidationError(
            "kind", f"{v.shown(name)} is not a registered record kind ({', '.join(RECORD_KINDS)})"
        )
    return found


for _kind in (
    RecordKind(name="task", part="tasks", record=Task, copy=open_copy, example=_example_task),
    RecordKind(name="customer", part="customers", record=Customer,
               example=lambda record_id: Customer(id=record_id, tags=("vip",))),
    RecordKind(name="conversation", part="conversations", record=Conversation, copy=open_copy,
               example=_example_conversation),
    RecordKind(name="timer", part="timers", record=Timer, example=_example_timer),
    RecordKind(name="agent", part="agents", record=Agent, copy=_agent_copy,
               example=lambda record_id: Agent(id=record_id, capacity=3, idle_since=_AT,
                                               skills={"billing": 4},
                                               channel_capacity={"chat": 2})),
    RecordKind(name="routing", part="routings", record=Routing, key="conversation_id",
               example=_example_routing),
    RecordKind(name="cursor", part="cursors", record=Cursor, key="name",
               example=lambda record_id: Cursor(name=record_id, position=3)),
):
    register_kind(_kind)
