"""``ConversationStore``: conversations and customers: snapshots, copies,
atomicity, ``ConversationQuery`` / ``CustomerQuery`` semantics (room and
customer tags included)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta, timezone
from typing import Any, ClassVar

import pytest

from cxflow.conversations.model import (
    AuthorKind,
    Conversation,
    ConversationState,
    Customer,
)
from cxflow.conversations.query import ConversationQuery, CustomerQuery
from cxflow.errors import ConflictError, NotFound, ValidationError
from cxflow.storage.protocols import (
    ChangeSet,
    ConversationStore,
    FullStore,
)
from cxflow.tasks.model import Priority
from cxflow.testing.contract._base import (
    BAD_TENANT_IDS,
    BAD_TENANTS,
    HOUR,
    MINUTE,
    _flow_saved,
    _next,
    _refuse_assignment,
)
from cxflow.testing.contract.records import RecordRules
from cxflow.testing.fixtures import (
    T0,
    sample_conversation,
    sample_customer,
)

# -- conversations and customers --------------------------------------------------------




ODD_TAGS: list[str] = [
    " spaced ",
    "\u00fcn\u00ef\u00a9\u00f8d\u00e9 \U0001f680",
    "x" * 200,
    "\ud55c\uad6d\uc5b4 \ud0dc\uadf8",
    '"quoted"',
    "%",
    "_",
    "it's",
]
"""Tags are names (any non-blank text up to 200 characters without control
characters): each must be stored and matched exactly (no wildcards, no
trimming, no case folding)."""


def _conversation_dataset() -> tuple[list[Conversation], dict[str, Conversation]]:
    """Conversation snapshots to commit in order, and the latest snapshot by id.

    id   customer  channel   state   assignee  room tags         opened
    c01  cu-a      web       open    ana       vip, billing      +0h
    c02  cu-b      telegram  open    bo        billing           +1h
    c03  cu-a      web       closed  ana       -                 +2h
    C11  cu-c      email     open    -         -                 +3h
    c04  cu-c      email     open    -         vip               +3h
    c05  cu-b      web       open    ana       refund, vip       +3h
    c06  cu-a      telegram  closed  bo        billing, vip      +5h
    c07  cu-c      web       open    -         VIP               +6h
    c08  cu-b      web       open    cy (v2)   spam (v2; v1 vip) +7h
    c09  cu-a      web       closed  - (v2)    billing           +8h
    c10  cu-c      email     open    ana       billing, billing  -1h

    Times are hours after ``T0``. c08 was assigned to ana and tagged vip at v1;
    c09 was open at v1. Ordered by (opened, id) in code-point order:
    c10, c01, c02, c03, C11, c04, c05, c06, c07, c08, c09.
    """
    closed, open_ = ConversationState.CLOSED, ConversationState.OPEN

    def new(
        conv_id: str, customer: str, channel: str, state: ConversationState,
        assignee: str | None, tags: tuple[str, ...], opened: int,
    ) -> Conversation:
        return sample_conversation(
            conv_id, at=T0 + opened * HOUR, customer_id=customer, channel=channel,
            state=state, assignee=assignee, room_tags=tags,
            closed_at=T0 + (opened + 1) * HOUR if state is closed else None,
        )

    snapshots = [
        new("c01", "cu-a", "web", open_, "ana", ("vip", "billing"), 0),
        new("c02", "cu-b", "telegram", open_, "bo", ("billing",), 1),
        new("c03", "cu-a", "web", closed, "ana", (), 2),
        new("C11", "cu-c", "email", open_, None, (), 3),
        new("c04", "cu-c", "email", open_, None, ("vip",), 3),
        new("c05", "cu-b", "web", open_, "ana", ("refund", "vip"), 3),
        new("c06", "cu-a", "telegram", closed, "bo", ("billing", "vip"), 5),
        new("c07", "cu-c", "web", open_, None, ("VIP",), 6),
        new("c08", "cu-b", "web", open_, "ana", ("vip",), 7),
        new("c09", "cu-a", "web", open_, "bo", ("billing",), 8),
        new("c10", "cu-c", "email", open_, "ana", ("billing", "billing"), -1),
    ]
    latest = {conv.id: conv for conv in snapshots}
    for changed in (
        _next(latest["c08"], assignee="cy", room_tags=("spam",), updated_at=T0 + 9 * HOUR),
        _next(latest["c09"], assignee=None, state=closed, closed_at=T0 + 9 * HOUR,
              close_reason="solved", updated_at=T0 + 9 * HOUR),
    ):
        snapshots.append(changed)
        latest[changed.id] = changed
    return snapshots, latest


ALL_CONVERSATION_IDS = ["c10", "c01", "c02", "c03", "C11", "c04", "c05", "c06", "c07", "c08",
                        "c09"]

_OPEN, _CLOSED = ConversationState.OPEN, ConversationState.CLOSED

# (test id, query, expected ids in order)
CONVERSATION_CASES: list[tuple[str, ConversationQuery, list[str]]] = [
    ("all", ConversationQuery(), ALL_CONVERSATION_IDS),
    ("customer", ConversationQuery(customer_id="cu-a"), ["c01", "c03", "c06", "c09"]),
    ("unknown-customer", ConversationQuery(customer_id="cu-z"), []),
    ("open", ConversationQuery(state=_OPEN),
     ["c10", "c01", "c02", "C11", "c04", "c05", "c07", "c08"]),
    ("closed-of-latest-snapshot", ConversationQuery(state=_CLOSED), ["c03", "c06", "c09"]),
    ("channel", ConversationQuery(channel="telegram"), ["c02", "c06"]),
    ("assignee", ConversationQuery(assignee="ana"), ["c10", "c01", "c03", "c05"]),
    ("assignee-of-latest-snapshot", ConversationQuery(assignee="cy"), ["c08"]),
    ("room-tag", ConversationQuery(room_tag="vip"), ["c01", "c04", "c05", "c06"]),
    ("room-tag-is-case-sensitive", ConversationQuery(room_tag="VIP"), ["c07"]),
    ("room-tag-listed-twice", ConversationQuery(room_tag="billing"),
     ["c10", "c01", "c02", "c06", "c09"]),
    ("room-tag-of-latest-snapshot", ConversationQuery(room_tag="spam"), ["c08"]),
    ("unknown-room-tag", ConversationQuery(room_tag="nope"), []),
    ("open-with-room-tag", ConversationQuery(state=_OPEN, room_tag="vip"),
     ["c01", "c04", "c05"]),
    ("customer-channel-state", ConversationQuery(customer_id="cu-a", channel="web",
                                                 state=_CLOSED), ["c03", "c09"]),
    ("assignee-with-room-tag", ConversationQuery(assignee="ana", room_tag="billing"),
     ["c10", "c01"]),
    ("limit", ConversationQuery(limit=3), ["c10", "c01", "c02"]),
    ("limit-splits-opened-tie", ConversationQuery(limit=5), ["c10", "c01", "c02", "c03", "C11"]),
    ("limit-with-room-tag", ConversationQuery(room_tag="vip", limit=2), ["c01", "c04"]),
    ("limit-one", ConversationQuery(state=_CLOSED, limit=1), ["c03"]),
]


def _customer_dataset() -> tuple[list[Customer], dict[str, Customer]]:
    """Customer snapshots to commit in order, and the latest snapshot by id.

    id    plan        tags
    cu-a  enterprise  vip, de
    cu-b  -           -
    cu-c  -           churn (v2; v1 vip)
    cu-d  -           VIP
    cu-e  basic       de, de
    Zed   -           new
    """
    snapshots = [
        sample_customer("cu-a", plan="enterprise", tags=("vip", "de")),
        sample_customer("cu-b"),
        sample_customer("cu-c", tags=("vip",)),
        sample_customer("cu-d", tags=("VIP",)),
        sample_customer("cu-e", plan="basic", tags=("de", "de")),
        sample_customer("Zed", tags=("new",)),
    ]
    latest = {customer.id: customer for customer in snapshots}
    changed = _next(latest["cu-c"], tags=("churn",))
    snapshots.append(changed)
    latest[changed.id] = changed
    return snapshots, latest


# Code-point order: "Zed" sorts before "cu-a".
CUSTOMER_CASES: list[tuple[str, CustomerQuery, list[str]]] = [
    ("all", CustomerQuery(), ["Zed", "cu-a", "cu-b", "cu-c", "cu-d", "cu-e"]),
    ("tag", CustomerQuery(tag="vip"), ["cu-a"]),
    ("tag-is-case-sensitive", CustomerQuery(tag="VIP"), ["cu-d"]),
    ("tag-listed-twice", CustomerQuery(tag="de"), ["cu-a", "cu-e"]),
    ("tag-of-latest-snapshot", CustomerQuery(tag="churn"), ["cu-c"]),
    ("unknown-tag", CustomerQuery(tag="nope"), []),
    ("limit", CustomerQuery(limit=2), ["Zed", "cu-a"]),
    ("limit-with-tag", CustomerQuery(tag="de", limit=1), ["cu-a"]),
]


def _conversation_tenant_calls() -> list[tuple[str, Callable[[FullStore, Any], object]]]:
    return [
        ("get_conversation", lambda s, t: s.get_conversation(t, "conv-1")),
        ("query_conversations", lambda s, t: s.query_conversations(t, ConversationQuery())),
        ("query_conversations_by_tag",
         lambda s, t: s.query_conversations(t, ConversationQuery(room_tag="vip"))),
        ("get_customer", lambda s, t: s.get_customer(t, "cust-1")),
        ("query_customers", lambda s, t: s.query_customers(t, CustomerQuery())),
        ("query_customers_by_tag", lambda s, t: s.query_customers(t, CustomerQuery(tag="vip"))),
        ("commit_conversation",
         lambda s, t: s.commit(t, ChangeSet(conversations=(sample_conversation("x"),)))),
        ("commit_customer", lambda s, t: s.commit(t, ChangeSet(customers=(sample_customer("x"),)))),
    ]


CONVERSATION_TENANT_CALLS = _conversation_tenant_calls()


class ConversationStoreContract(RecordRules):
    """``ConversationStore``: conversations and customers, their version rules,
    queries and tenants. ``make_store`` must return a store with this tier and
    ``ChangeWriter``."""

    record_kinds: ClassVar[tuple[str, ...]] = ("conversation", "customer")

    # -- reads and copies ------------------------------------------------------------

    def test_store_satisfies_conversation_store_protocol(self, store: FullStore) -> None:
        assert isinstance(store, ConversationStore)

    def test_committed_conversation_reads_back_equal(self, store: FullStore) -> None:
        plus_two = timezone(timedelta(hours=2))
        conv = sample_conversation(
            "conv-1",
            at=(T0 + timedelta(microseconds=123456)).astimezone(plus_two),
            plan="enterprise",
            priority=Priority.HIGH,
            assignee="ana",
            waiting=True,
            room_tags=("vip", "\u017c\u00f3\u0142\u0107 \U0001f69a"),
            last_speaker=AuthorKind.AGENT,
            last_customer_message_at=T0 + MINUTE,
            last_agent_reply_at=T0 + 2 * MINUTE,
            first_agent_reply_at=T0 + 2 * MINUTE,
            message_count=7,
            reopen_count=2,
        )
        self.commit(store, conversations=(conv,))
        assert store.get_conversation(self.tenant, "conv-1") == conv

    def test_committed_closed_conversation_reads_back_equal(self, store: FullStore) -> None:
        conv = sample_conversation(
            state=ConversationState.CLOSED, closed_at=T0 + HOUR, close_reason="auto",
            last_speaker=AuthorKind.CUSTOMER,
        )
        self.commit(store, conversations=(conv,))
        assert store.get_conversation(self.tenant, "conv-1") == conv

    def test_get_conversation_returns_latest_snapshot(self, store: FullStore) -> None:
        v1 = sample_conversation()
        v2 = _next(v1, room_tags=("vip",), message_count=1)
        self.commit(store, conversations=(v1,))
        self.commit(store, conversations=(v2,))
        assert store.get_conversation(self.tenant, "conv-1") == v2

    def test_changing_returned_conversation_does_not_change_stored(
        self, store: FullStore
    ) -> None:
        self.commit(store, conversations=(sample_conversation(),))
        returned = store.get_conversation(self.tenant, "conv-1")
        returned.assignee = "intruder"
        returned.version = 99
        assert store.get_conversation(self.tenant, "conv-1") == sample_conversation()

    def test_changing_queried_conversation_does_not_change_stored(
        self, store: FullStore
    ) -> None:
        self.commit(store, conversations=(sample_conversation(),))
        (returned,) = store.query_conversations(self.tenant, ConversationQuery())
        returned.assignee = "intruder"
        assert store.query_conversations(self.tenant, ConversationQuery()) == [
            sample_conversation()
        ]

    def test_committed_customer_reads_back_equal(self, store: FullStore) -> None:
        customer = sample_customer(plan="enterprise", tags=("vip", "\u00df\u4e2d"))
        self.commit(store, customers=(customer,))
        assert store.get_customer(self.tenant, "cust-1") == customer

    def test_get_customer_returns_latest_snapshot(self, store: FullStore) -> None:
        v1 = sample_customer()
        v2 = _next(v1, plan="basic", tags=("vip",))
        self.commit(store, customers=(v1,))
        self.commit(store, customers=(v2,))
        assert store.get_customer(self.tenant, "cust-1") == v2

    def test_changing_returned_customer_does_not_change_stored(self, store: FullStore) -> None:
        self.commit(store, customers=(sample_customer(tags=("vip",)),))
        returned = store.get_customer(self.tenant, "cust-1")
        _refuse_assignment(returned, "tags", ("intruder",))
        (queried,) = store.query_customers(self.tenant, CustomerQuery())
        _refuse_assignment(queried, "plan", "intruder")
        assert store.get_customer(self.tenant, "cust-1") == sample_customer(tags=("vip",))

    # -- version rules ---------------------------------------------------------------

    def test_stale_conversation_write_conflicts(self, store: FullStore) -> None:
        v1 = sample_conversation()
        self.commit(store, conversations=(v1,))
        winner = _next(v1, assignee="ana")
        self.commit(store, conversations=(winner,))
        with pytest.raises(ConflictError):
            self.commit(store, conversations=(_next(v1, assignee="bo"),))
        assert store.get_conversation(self.tenant, "conv-1") == winner

    def test_stale_conversation_write_keeps_stored_room_tags(self, store: FullStore) -> None:
        v1 = sample_conversation(room_tags=("vip",))
        self.commit(store, conversations=(v1,))
        self.commit(store, conversations=(_next(v1, message_count=1),))
        with pytest.raises(ConflictError):
            self.commit(store, conversations=(_next(v1, room_tags=("spam",)),))
        assert store.query_conversations(self.tenant, ConversationQuery(room_tag="spam")) == []
        assert [c.id for c in store.query_conversations(
            self.tenant, ConversationQuery(room_tag="vip")
        )] == ["conv-1"]

    # -- atomicity -------------------------------------------------------------------

    def test_commit_writes_conversation_customer_and_events_together(
        self, store: FullStore
    ) -> None:
        conv, customer = sample_conversation(), sample_customer()
        self.commit(store, conversations=(conv,), customers=(customer,),
                    events=(_flow_saved(1),))
        assert store.get_conversation(self.tenant, conv.id) == conv
        assert store.get_customer(self.tenant, customer.id) == customer
        assert [e.event for e in store.read_events(self.tenant)] == [_flow_saved(1)]

    def test_conflicting_conversation_aborts_other_conversation(self, store: FullStore) -> None:
        self.commit(store, conversations=(sample_conversation("old"),))
        with pytest.raises(ConflictError):
            self.commit(store, conversations=(sample_conversation("new"),
                                              sample_conversation("old")))
        with pytest.raises(NotFound):
            store.get_conversation(self.tenant, "new")

    def test_conflicting_conversation_aborts_customer_and_events(
        self, store: FullStore
    ) -> None:
        self.commit(store, conversations=(sample_conversation(),))
        with pytest.raises(ConflictError):
            self.commit(store, conversations=(sample_conversation(),),
                        customers=(sample_customer(),), events=(_flow_saved(1),))
        with pytest.raises(NotFound):
            store.get_customer(self.tenant, "cust-1")
        assert store.read_events(self.tenant) == []

    def test_conflicting_customer_aborts_conversation_update(self, store: FullStore) -> None:
        conv = sample_conversation(room_tags=("vip",))
        self.commit(store, conversations=(conv,), customers=(sample_customer(),))
        with pytest.raises(ConflictError):
            self.commit(store, conversations=(_next(conv, room_tags=("spam",)),),
                        customers=(sample_customer(plan="basic"),))
        assert store.get_conversation(self.tenant, "conv-1") == conv
        assert store.query_conversations(self.tenant, ConversationQuery(room_tag="spam")) == []

    def test_conflicting_customer_aborts_other_customer_tags(self, store: FullStore) -> None:
        a, b = sample_customer("a", tags=("vip",)), sample_customer("b")
        self.commit(store, customers=(a, b))
        with pytest.raises(ConflictError):
            self.commit(store, customers=(_next(a, tags=("churn",)), sample_customer("b")))
        assert store.query_customers(self.tenant, CustomerQuery(tag="churn")) == []
        assert store.query_customers(self.tenant, CustomerQuery(tag="vip")) == [a]

    # -- conversation queries --------------------------------------------------------

    @pytest.fixture
    def conversations(self, store: FullStore) -> dict[str, Conversation]:
        """Commit the conversation dataset (one snapshot per commit); return the
        latest snapshot of every conversation by id."""
        snapshots, latest = _conversation_dataset()
        for snapshot in snapshots:
            self.commit(store, conversations=(snapshot,))
        return latest

    def conversation_ids(self, store: FullStore, query: ConversationQuery) -> list[str]:
        """The ids of the conversations ``query`` returns, in order."""
        return [c.id for c in store.query_conversations(self.tenant, query)]

    @pytest.mark.parametrize(
        ("query", "expected"),
        [case[1:] for case in CONVERSATION_CASES],
        ids=[case[0] for case in CONVERSATION_CASES],
    )
    def test_conversation_query_returns_expected_ids_in_order(
        self, store: FullStore, conversations: dict[str, Conversation],
        query: ConversationQuery, expected: list[str],
    ) -> None:
        assert self.conversation_ids(store, query) == expected

    @pytest.mark.parametrize(
        "query", [case[1] for case in CONVERSATION_CASES],
        ids=[case[0] for case in CONVERSATION_CASES],
    )
    def test_conversation_query_matches_reference_semantics(
        self, store: FullStore, conversations: dict[str, Conversation], query: ConversationQuery
    ) -> None:
        got = store.query_conversations(self.tenant, query)
        assert got == query.apply(conversations.values())

    def test_conversation_query_returns_full_latest_snapshots(
        self, store: FullStore, conversations: dict[str, Conversation]
    ) -> None:
        got = store.query_conversations(self.tenant, ConversationQuery())
        assert {c.id: c for c in got} == conversations

    def test_conversation_query_of_empty_store_is_empty(self, store: FullStore) -> None:
        assert store.query_conversations(self.tenant, ConversationQuery()) == []
        assert store.query_conversations(self.tenant, ConversationQuery(room_tag="vip")) == []

    def test_conversation_query_sees_changes_after_commit(
        self, store: FullStore, conversations: dict[str, Conversation]
    ) -> None:
        changed = _next(conversations["c04"], room_tags=("spam", "refund"), assignee="cy")
        self.commit(store, conversations=(changed,))
        assert self.conversation_ids(store, ConversationQuery(room_tag="vip")) == [
            "c01", "c05", "c06"
        ]
        assert self.conversation_ids(store, ConversationQuery(room_tag="refund")) == [
            "c04", "c05"
        ]
        assert self.conversation_ids(store, ConversationQuery(assignee="cy")) == ["c04", "c08"]

    def test_conversation_with_removed_room_tags_matches_no_tag(
        self, store: FullStore, conversations: dict[str, Conversation]
    ) -> None:
        self.commit(store, conversations=(_next(conversations["c01"], room_tags=()),))
        assert "c01" not in self.conversation_ids(store, ConversationQuery(room_tag="vip"))
        assert "c01" not in self.conversation_ids(store, ConversationQuery(room_tag="billing"))

    @pytest.mark.parametrize("tag", ODD_TAGS, ids=[f"tag{i}" for i in range(len(ODD_TAGS))])
    def test_odd_room_tag_is_stored_and_matched_exactly(
        self, store: FullStore, tag: str
    ) -> None:
        conv = sample_conversation("odd", room_tags=(tag, "plain"))
        self.commit(store, conversations=(conv, sample_conversation("other",
                                                                   room_tags=("plain",))))
        assert store.get_conversation(self.tenant, "odd") == conv
        assert store.query_conversations(self.tenant, ConversationQuery(room_tag=tag)) == [conv]
        for near in {tag + "x", tag[:-1], tag.upper() if tag.upper() != tag else "X" + tag}:
            if near not in conv.room_tags:
                assert store.query_conversations(
                    self.tenant, ConversationQuery(room_tag=near)
                ) == [], near

    def test_many_random_conversation_queries_match_reference_semantics(
        self, store: FullStore, conversations: dict[str, Conversation]
    ) -> None:
        rng = random.Random(20240102)

        def pick(options: list[Any]) -> Any:
            return options[rng.randrange(len(options))]

        for _ in range(150):
            query = ConversationQuery(
                customer_id=pick([None, None, "cu-a", "cu-b", "cu-c", "cu-z"]),
                state=pick([None, None, *ConversationState]),
                channel=pick([None, None, "web", "email", "telegram"]),
                assignee=pick([None, None, "ana", "bo", "cy"]),
                room_tag=pick([None, None, "vip", "VIP", "billing", "spam", "refund"]),
                limit=pick([1, 2, 5, 100]),
            )
            got = store.query_conversations(self.tenant, query)
            assert got == query.apply(conversations.values()), query

    # -- customer queries ------------------------------------------------------------

    @pytest.fixture
    def customers(self, store: FullStore) -> dict[str, Customer]:
        """Commit the customer dataset (one snapshot per commit); return the latest
        snapshot of every customer by id."""
        snapshots, latest = _customer_dataset()
        for snapshot in snapshots:
            self.commit(store, customers=(snapshot,))
        return latest

    @pytest.mark.parametrize(
        ("query", "expected"),
        [case[1:] for case in CUSTOMER_CASES],
        ids=[case[0] for case in CUSTOMER_CASES],
    )
    def test_customer_query_returns_expected_ids_in_order(
        self, store: FullStore, customers: dict[str, Customer],
        query: CustomerQuery, expected: list[str],
    ) -> None:
        assert [c.id for c in store.query_customers(self.tenant, query)] == expected

    @pytest.mark.parametrize(
        "query", [case[1] for case in CUSTOMER_CASES], ids=[case[0] for case in CUSTOMER_CASES]
    )
    def test_customer_query_matches_reference_semantics(
        self, store: FullStore, customers: dict[str, Customer], query: CustomerQuery
    ) -> None:
        assert store.query_customers(self.tenant, query) == query.apply(customers.values())

    def test_customer_query_returns_full_latest_snapshots(
        self, store: FullStore, customers: dict[str, Customer]
    ) -> None:
        got = store.query_customers(self.tenant, CustomerQuery())
        assert {c.id: c for c in got} == customers

    def test_customer_query_of_empty_store_is_empty(self, store: FullStore) -> None:
        assert store.query_customers(self.tenant, CustomerQuery()) == []
        assert store.query_customers(self.tenant, CustomerQuery(tag="vip")) == []

    def test_customer_query_sees_tag_changes_after_commit(
        self, store: FullStore, customers: dict[str, Customer]
    ) -> None:
        self.commit(store, customers=(_next(customers["cu-a"], tags=("churn",)),))
        assert [c.id for c in store.query_customers(self.tenant, CustomerQuery(tag="vip"))] == []
        assert [c.id for c in store.query_customers(
            self.tenant, CustomerQuery(tag="churn")
        )] == ["cu-a", "cu-c"]

    @pytest.mark.parametrize("tag", ODD_TAGS, ids=[f"tag{i}" for i in range(len(ODD_TAGS))])
    def test_odd_customer_tag_is_stored_and_matched_exactly(
        self, store: FullStore, tag: str
    ) -> None:
        customer = sample_customer("odd", tags=(tag,))
        self.commit(store, customers=(customer, sample_customer("other", tags=("plain",))))
        assert store.get_customer(self.tenant, "odd") == customer
        assert store.query_customers(self.tenant, CustomerQuery(tag=tag)) == [customer]
        assert store.query_customers(self.tenant, CustomerQuery(tag=tag + "x")) == []

    # -- tenants ---------------------------------------------------------------------

    @pytest.mark.parametrize("bad_tenant", BAD_TENANTS, ids=BAD_TENANT_IDS)
    @pytest.mark.parametrize(
        "call", [c[1] for c in CONVERSATION_TENANT_CALLS],
        ids=[c[0] for c in CONVERSATION_TENANT_CALLS],
    )
    def test_conversation_method_without_valid_tenant_raises_validation_error(
        self, store: FullStore, call: Callable[[FullStore, Any], object], bad_tenant: object
    ) -> None:
        # Seed records that a missing tenant check might reach instead of failing.
        self.commit(store, conversations=(sample_conversation(room_tags=("vip",)),),
                    customers=(sample_customer(tags=("vip",)),))
        with pytest.raises(ValidationError) as info:
            call(store, bad_tenant)
        assert info.value.field == "tenant"

    @pytest.mark.parametrize("bad_tenant", BAD_TENANTS, ids=BAD_TENANT_IDS)
    def test_commit_rejected_for_bad_tenant_leaves_no_conversation(
        self, store: FullStore, bad_tenant: object
    ) -> None:
        changes = ChangeSet(conversations=(sample_conversation(),), customers=(sample_customer(),))
        with pytest.raises(ValidationError):
            store.commit(bad_tenant, changes)  # type: ignore[arg-type]
        for tenant in (self.tenant, str(bad_tenant), str(bad_tenant).strip()):
            if tenant.strip():
                assert store.query_conversations(tenant, ConversationQuery()) == []
                assert store.query_customers(tenant, CustomerQuery()) == []

    def test_conversation_query_leaves_out_other_tenant(self, store: FullStore) -> None:
        self.commit(store, conversations=(sample_conversation("mine", room_tags=("vip",)),))
        self.commit(store, conversations=(sample_conversation("theirs", room_tags=("vip",)),),
                    tenant=self.other_tenant)
        for query in (ConversationQuery(), ConversationQuery(room_tag="vip")):
            assert self.conversation_ids(store, query) == ["mine"]

    def test_room_tags_of_same_id_in_other_tenant_do_not_match(self, store: FullStore) -> None:
        self.commit(store, conversations=(sample_conversation(room_tags=("mine",)),))
        self.commit(store, conversations=(sample_conversation(room_tags=("theirs",)),),
                    tenant=self.other_tenant)
        assert self.conversation_ids(store, ConversationQuery(room_tag="theirs")) == []
        assert self.conversation_ids(store, ConversationQuery(room_tag="mine")) == ["conv-1"]

    def test_customer_query_leaves_out_other_tenant(self, store: FullStore) -> None:
        self.commit(store, customers=(sample_customer("mine", tags=("vip",)),))
        self.commit(store, customers=(sample_customer("theirs", tags=("vip",)),
                                      sample_customer("mine", tags=("churn",))),
                    tenant=self.other_tenant)
        for query in (CustomerQuery(), CustomerQuery(tag="vip")):
            assert [c.id for c in store.query_customers(self.tenant, query)] == ["mine"]
        assert store.query_customers(self.tenant, CustomerQuery(tag="churn")) == []
