"""The rules every record kind shares, written once (``cxflow.storage.kinds``).

``RecordRules`` runs them for the kinds a class names in ``record_kinds``
(collected over its bases: ``TaskStoreContract`` names ``task``,
``ConversationStoreContract`` ``conversation`` and ``customer``, and so on),
reading each kind through its own tier (``get_task``, ``get_timer``, ...):

- versions: version 1 only for a new key, *n* only over *n - 1*, several
  versions of one record in one commit applied in order, a conflict writing
  nothing of its commit;
- reads: what was written reads back equal, an unknown key is ``NotFound``
  naming the kind, instants come back aware and in UTC;
- copies: changing a record in place, the one written or the one read,
  never changes the store;
- tenants: a tenant is required, and a tenant's records are invisible to
  another tenant and independent of the same key there.

``RecordKindContract`` runs the same rules over **every** registered kind,
read through ``RecordStore`` (``get_record`` / ``list_records``), plus that
tier's own behaviour: the contract of a store that keeps kinds registered by
a host.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, cast

import attrs
import pytest

from cxflow.errors import ConflictError, NotFound, ValidationError
from cxflow.storage.kinds import BUILT_IN_PARTS, RecordKind, kinds
from cxflow.storage.protocols import (
    AssignmentStore,
    ChangeSet,
    ConversationStore,
    CursorStore,
    RecordStore,
    TaskStore,
    TimerStore,
    provides,
)
from cxflow.testing.contract._base import BAD_TENANT_IDS, BAD_TENANTS, _StoreFactory

__all__ = ["RecordKindContract", "RecordRules"]

_TIER_READS: dict[str, tuple[type, str]] = {
    "task": (TaskStore, "get_task"),
    "customer": (ConversationStore, "get_customer"),
    "conversation": (ConversationStore, "get_conversation"),
    "timer": (TimerStore, "get_timer"),
    "agent": (AssignmentStore, "get_agent"),
    "routing": (AssignmentStore, "get_routing"),
    "cursor": (CursorStore, "get_cursor"),
}
"""The tier and read method of each built-in kind."""

_OWN: Any = object()
"""The default tenant of ``RecordRules.read``: ``tenant`` (``None`` is a bad tenant)."""

_SEOUL = timezone(timedelta(hours=9))

ORDERED_KEYS = ["b", "A", "a-2", "\u00e9", "B", "a", "Z", "10", "9"]
"""Keys listed in code-point order (``sorted``), whatever the database collation."""


def at_version(kind: RecordKind, record: Any, version: int) -> Any:
    """``record`` at ``version`` (nothing else changed)."""
    return attrs.evolve(record, **{kind.version: version})


def instants(value: object) -> Iterator[datetime]:
    """Every datetime in ``value``: its attrs fields, tuples, lists and dict
    values, at any depth."""
    if isinstance(value, datetime):
        yield value
    elif attrs.has(type(value)):
        for field in attrs.fields(cast(Any, type(value))):
            yield from instants(getattr(value, field.name))
    elif isinstance(value, (tuple, list, set, frozenset)):
        for item in value:
            yield from instants(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from instants(item)


def _in_seoul(record: Any) -> Any:
    """``record`` with each of its top-level instants at +09:00 (the same instants)."""
    changes = {
        field.name: getattr(record, field.name).astimezone(_SEOUL)
        for field in attrs.fields(type(record))
        if isinstance(getattr(record, field.name), datetime)
    }
    return attrs.evolve(record, **changes) if changes else record


def change_in_place(kind: RecordKind, record: Any) -> bool:
    """Change ``record`` in place as a caller could: set its version when the
    class is not frozen, else empty its first non-empty dict, list or set.
    False when the record cannot be changed (it is immutable)."""
    try:
        setattr(record, kind.version, kind.version_of(record) + 100)
        return True
    except attrs.exceptions.FrozenInstanceError:
        pass
    for field in attrs.fields(type(record)):
        value = getattr(record, field.name)
        if isinstance(value, (dict, list, set)) and value:
            value.clear()
            return True
    return False


def _changeable(kind: RecordKind) -> bool:
    """Whether a record of ``kind`` can be changed in place (else its copy
    tests have nothing to check)."""
    return change_in_place(kind, kind.example("r-1"))


def _for_kinds(test: Callable[..., None], which: Callable[[RecordKind], bool]) -> None:
    """Run ``test`` only for the kinds ``which`` holds for."""
    test.record_kinds_that = which  # type: ignore[attr-defined]


class RecordRules(_StoreFactory):
    """The shared rules, for every kind in ``record_kinds`` (see the module)."""

    record_kinds: ClassVar[tuple[str, ...]] = ()
    """Kinds whose shared rules this class runs; a class runs those of its
    bases too."""
    every_registered_kind: ClassVar[bool] = False
    """Run the rules for every registered kind, read through ``RecordStore``."""

    @classmethod
    def checked_kinds(cls) -> list[RecordKind]:
        """The kinds this class checks, in registration order."""
        names = {name for base in cls.__mro__ for name in vars(base).get("record_kinds", ())}
        every = any(vars(base).get("every_registered_kind", False) for base in cls.__mro__)
        return [kind for kind in kinds() if every or kind.name in names]

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Parametrize every test taking ``record_kind`` over ``checked_kinds``."""
        if "record_kind" in metafunc.fixturenames:
            found = self.checked_kinds()
            wants = getattr(metafunc.function, "record_kinds_that", None)
            if wants is not None:
                found = [kind for kind in found if wants(kind)]
            if not found:
                skip = pytest.mark.skip(reason="no kind of this class has anything to check here")
                metafunc.parametrize("record_kind", [pytest.param(None, marks=skip)], ids=["none"])
                return
            metafunc.parametrize("record_kind", found, ids=[kind.name for kind in found])

    def read(self, store: Any, kind: RecordKind, key: str, tenant: object = _OWN) -> Any:
        """The record ``key`` of ``kind`` of ``tenant`` (by default ``self.tenant``),
        through its tier (or ``RecordStore``)."""
        tenant = self.tenant if tenant is _OWN else tenant
        tier = _TIER_READS.get(kind.name)
        if tier is None or kind.part not in BUILT_IN_PARTS or type(self).every_registered_kind:
            return store.get_record(tenant, kind.name, key)
        return getattr(store, tier[1])(tenant, key)

    def write(self, store: Any, kind: RecordKind, *records: Any, tenant: str | None = None) -> None:
        """Commit ``records`` of ``kind`` in one change set."""
        changes = (
            ChangeSet(**cast(dict[str, Any], {kind.part: records}))
            if kind.part in BUILT_IN_PARTS
            else ChangeSet(records={kind.part: records})
        )
        store.commit(self.tenant if tenant is None else tenant, changes)

    def assert_absent(self, store: Any, kind: RecordKind, key: str) -> None:
        with pytest.raises(NotFound):
            self.read(store, kind, key)

    # -- reads ---------------------------------------------------------------------------

    def test_written_record_reads_back_equal(self, store: Any, record_kind: RecordKind) -> None:
        record = record_kind.example("r-1")
        self.write(store, record_kind, record)
        assert self.read(store, record_kind, "r-1") == record

    def test_read_returns_the_latest_version(self, store: Any, record_kind: RecordKind) -> None:
        v1 = record_kind.example("r-1")
        self.write(store, record_kind, v1)
        self.write(store, record_kind, at_version(record_kind, v1, 2))
        assert self.read(store, record_kind, "r-1") == at_version(record_kind, v1, 2)

    def test_unknown_key_is_not_found_naming_the_kind(
        self, store: Any, record_kind: RecordKind
    ) -> None:
        self.write(store, record_kind, record_kind.example("other"))
        with pytest.raises(NotFound) as info:
            self.read(store, record_kind, "r-1")
        assert (info.value.kind, info.value.id) == (record_kind.name, "r-1")
        assert isinstance(info.value, LookupError)

    def test_returned_instants_are_aware_utc(self, store: Any, record_kind: RecordKind) -> None:
        self.write(store, record_kind, _in_seoul(record_kind.example("r-1")))
        for instant in instants(self.read(store, record_kind, "r-1")):
            assert instant.utcoffset() == timedelta(0)

    # -- versions ------------------------------------------------------------------------

    def test_v1_over_a_stored_record_conflicts(self, store: Any, record_kind: RecordKind) -> None:
        record = record_kind.example("r-1")
        self.write(store, record_kind, record)
        with pytest.raises(ConflictError):
            self.write(store, record_kind, record_kind.example("r-1"))
        assert self.read(store, record_kind, "r-1") == record

    def test_new_record_at_v2_conflicts(self, store: Any, record_kind: RecordKind) -> None:
        with pytest.raises(ConflictError):
            self.write(store, record_kind, at_version(record_kind, record_kind.example("r-1"), 2))
        self.assert_absent(store, record_kind, "r-1")

    def test_skipping_a_version_conflicts(self, store: Any, record_kind: RecordKind) -> None:
        v1 = record_kind.example("r-1")
        self.write(store, record_kind, v1)
        with pytest.raises(ConflictError):
            self.write(store, record_kind, at_version(record_kind, v1, 3))
        assert self.read(store, record_kind, "r-1") == v1

    def test_rewriting_the_stored_version_conflicts(
        self, store: Any, record_kind: RecordKind
    ) -> None:
        v1 = record_kind.example("r-1")
        v2 = at_version(record_kind, v1, 2)
        self.write(store, record_kind, v1)
        self.write(store, record_kind, v2)
        with pytest.raises(ConflictError):  # a stale writer that also read v1
            self.write(store, record_kind, at_version(record_kind, v1, 2))
        assert self.read(store, record_kind, "r-1") == v2

    def test_consecutive_versions_in_one_commit_are_written(
        self, store: Any, record_kind: RecordKind
    ) -> None:
        v1 = record_kind.example("r-1")
        self.write(store, record_kind, v1, at_version(record_kind, v1, 2))
        assert self.read(store, record_kind, "r-1") == at_version(record_kind, v1, 2)

    def test_same_v1_twice_in_one_commit_conflicts(
        self, store: Any, record_kind: RecordKind
    ) -> None:
        with pytest.raises(ConflictError):
            self.write(store, record_kind, record_kind.example("r-1"), record_kind.example("r-1"))
        self.assert_absent(store, record_kind, "r-1")

    def test_a_conflict_writes_nothing_of_its_commit(
        self, store: Any, record_kind: RecordKind
    ) -> None:
        stale = at_version(record_kind, record_kind.example("r-2"), 2)
        with pytest.raises(ConflictError):
            self.write(store, record_kind, record_kind.example("r-1"), stale)
        self.assert_absent(store, record_kind, "r-1")

    def test_a_record_of_another_class_is_refused_writing_nothing(
        self, store: Any, record_kind: RecordKind
    ) -> None:
        with pytest.raises(ValidationError):
            self.write(store, record_kind, record_kind.example("r-1"), object())
        self.assert_absent(store, record_kind, "r-1")

    # -- copies --------------------------------------------------------------------------

    def test_changing_the_written_record_leaves_the_store(
        self, store: Any, record_kind: RecordKind
    ) -> None:
        written = record_kind.example("r-1")
        self.write(store, record_kind, written)
        assert change_in_place(record_kind, written)
        assert self.read(store, record_kind, "r-1") == record_kind.example("r-1")

    def test_changing_a_returned_record_leaves_the_store(
        self, store: Any, record_kind: RecordKind
    ) -> None:
        self.write(store, record_kind, record_kind.example("r-1"))
        assert change_in_place(record_kind, self.read(store, record_kind, "r-1"))
        assert self.read(store, record_kind, "r-1") == record_kind.example("r-1")

    _for_kinds(test_changing_the_written_record_leaves_the_store, _changeable)
    _for_kinds(test_changing_a_returned_record_leaves_the_store, _changeable)

    # -- tenants -------------------------------------------------------------------------

    @pytest.mark.parametrize("bad_tenant", BAD_TENANTS, ids=BAD_TENANT_IDS)
    def test_read_without_a_valid_tenant_is_a_validation_error(
        self, store: Any, record_kind: RecordKind, bad_tenant: Any
    ) -> None:
        with pytest.raises(ValidationError):
            self.read(store, record_kind, "r-1", tenant=bad_tenant)

    def test_record_of_another_tenant_is_not_found(
        self, store: Any, record_kind: RecordKind
    ) -> None:
        self.write(store, record_kind, record_kind.example("r-1"), tenant=self.other_tenant)
        self.assert_absent(store, record_kind, "r-1")

    def test_same_key_in_two_tenants_is_independent(
        self, store: Any, record_kind: RecordKind
    ) -> None:
        v1 = record_kind.example("r-1")
        self.write(store, record_kind, v1)
        self.write(store, record_kind, v1, tenant=self.other_tenant)
        self.write(store, record_kind, at_version(record_kind, v1, 2))
        assert self.read(store, record_kind, "r-1", tenant=self.other_tenant) == v1
        assert self.read(store, record_kind, "r-1") == at_version(record_kind, v1, 2)


class RecordKindContract(RecordRules):
    """``RecordStore`` and the shared rules over every registered kind: the
    contract of a store that keeps kinds registered by a host (run it after
    they are registered)."""

    every_registered_kind: ClassVar[bool] = True

    def test_store_satisfies_record_store_protocol(self, store: Any) -> None:
        assert isinstance(store, RecordStore)

    def test_list_records_orders_by_key(self, store: Any, record_kind: RecordKind) -> None:
        self.write(store, record_kind, *(record_kind.example(key) for key in ORDERED_KEYS))
        listed = store.list_records(self.tenant, record_kind.name)
        assert [record_kind.key_of(record) for record in listed] == sorted(ORDERED_KEYS)
        assert listed == [record_kind.example(key) for key in sorted(ORDERED_KEYS)]

    def test_list_records_of_a_new_tenant_is_empty(
        self, store: Any, record_kind: RecordKind
    ) -> None:
        self.write(store, record_kind, record_kind.example("r-1"), tenant=self.other_tenant)
        assert store.list_records(self.tenant, record_kind.name) == []

    def test_the_tier_reads_what_get_record_reads(
        self, store: Any, record_kind: RecordKind
    ) -> None:
        tier = _TIER_READS[record_kind.name]
        if not provides(store, tier[0]):
            pytest.skip(f"the store has no {tier[0].__name__} tier")
        self.write(store, record_kind, record_kind.example("r-1"))
        assert getattr(store, tier[1])(self.tenant, "r-1") == store.get_record(
            self.tenant, record_kind.name, "r-1"
        )

    _for_kinds(
        test_the_tier_reads_what_get_record_reads,
        lambda kind: kind.name in _TIER_READS and kind.part in BUILT_IN_PARTS,
    )

    @pytest.mark.parametrize("kind_name", ["", "nonesuch", None, 3])
    def test_an_unknown_kind_is_a_validation_error(self, store: Any, kind_name: Any) -> None:
        with pytest.raises(ValidationError) as info:
            store.get_record(self.tenant, kind_name, "r-1")
        assert info.value.field == "kind"
        with pytest.raises(ValidationError):
            store.list_records(self.tenant, kind_name)

    @pytest.mark.parametrize("record_id", ["", "   ", None, 7])
    def test_a_bad_record_id_is_a_validation_error(self, store: Any, record_id: Any) -> None:
        with pytest.raises(ValidationError) as info:
            store.get_record(self.tenant, "task", record_id)
        assert info.value.field == "record_id"

    @pytest.mark.parametrize("bad_tenant", BAD_TENANTS, ids=BAD_TENANT_IDS)
    def test_list_records_without_a_valid_tenant_is_a_validation_error(
        self, store: Any, bad_tenant: Any
    ) -> None:
        with pytest.raises(ValidationError):
            store.list_records(bad_tenant, "task")


