"""``TimerStore``: timers, and ``claim_timers`` (order, limit, leases,
fencing, validation, tenants)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

import pytest

from cxflow.errors import ConflictError, NotFound, ValidationError
from cxflow.storage.protocols import (
    ChangeSet,
    FullStore,
    TimerStore,
)
from cxflow.testing.contract._base import (
    BAD_TENANT_IDS,
    BAD_TENANTS,
    HOUR,
    MINUTE,
    _flow_saved,
    _refuse_assignment,
)
from cxflow.testing.contract.records import RecordRules
from cxflow.testing.fixtures import (
    T0,
    sample_timer,
)
from cxflow.timers.model import Timer, TimerState

# -- timers -----------------------------------------------------------------------------

LEASE = timedelta(seconds=30)
_MICRO = timedelta(microseconds=1)

BAD_WORKERS: list[object] = [None, "", "   ", 5]
BAD_LEASES: list[object] = [timedelta(0), -LEASE, 30, None]
BAD_CLAIM_LIMITS: list[object] = [0, -1, 1001, True, "5", 2.5, None]
BAD_INSTANTS: list[object] = [datetime(2024, 1, 1, 9, 0), "2024-01-01T09:00:00+00:00", None]


def _timer_tenant_calls() -> list[tuple[str, Callable[[FullStore, Any], object]]]:
    return [
        ("get_timer", lambda s, t: s.get_timer(t, "timer-1")),
        ("claim_timers", lambda s, t: s.claim_timers(t, T0 + HOUR, worker="w", lease=LEASE)),
        ("commit_timer", lambda s, t: s.commit(t, ChangeSet(timers=(sample_timer("x"),)))),
    ]


TIMER_TENANT_CALLS = _timer_tenant_calls()


class TimerStoreContract(RecordRules):
    """``TimerStore``: timers, their version rules, and claims with leases and
    fencing. ``make_store`` must return a store with this tier and
    ``ChangeWriter``."""

    record_kinds: ClassVar[tuple[str, ...]] = ("timer",)

    def claim(
        self, store: FullStore, at: datetime, worker: str = "w1", *,
        lease: timedelta = LEASE, limit: int = 100, tenant: str | None = None,
    ) -> list[Timer]:
        """``claim_timers`` for ``tenant`` (default ``tenant``)."""
        return store.claim_timers(
            self.tenant if tenant is None else tenant, at, worker=worker, lease=lease,
            limit=limit,
        )

    def claim_ids(self, store: FullStore, at: datetime, worker: str = "w1", **kw: Any) -> list[str]:
        """The ids ``claim`` returns, in order."""
        return [timer.id for timer in self.claim(store, at, worker, **kw)]

    # -- reads and copies ------------------------------------------------------------

    def test_store_satisfies_timer_store_protocol(self, store: FullStore) -> None:
        assert isinstance(store, TimerStore)

    def test_committed_timer_reads_back_equal(self, store: FullStore) -> None:
        plus_two = timezone(timedelta(hours=2))
        timer = sample_timer(
            kind="sla.breach", subject_id="conv-9",
            deadline=(T0 + timedelta(microseconds=654321)).astimezone(plus_two),
            cycle=3, lease_owner="worker \u00e9", lease_until=T0 + HOUR,
        )
        self.commit(store, timers=(timer,))
        assert store.get_timer(self.tenant, "timer-1") == timer

    def test_committed_fired_timer_reads_back_equal(self, store: FullStore) -> None:
        timer = sample_timer(state=TimerState.FIRED, fired_at=T0 + MINUTE, cycle=2)
        self.commit(store, timers=(timer,))
        assert store.get_timer(self.tenant, "timer-1") == timer

    def test_get_timer_returns_latest_snapshot(self, store: FullStore) -> None:
        v1 = sample_timer()
        v2 = v1.rescheduled(T0 + HOUR)
        self.commit(store, timers=(v1,))
        self.commit(store, timers=(v2,))
        assert store.get_timer(self.tenant, "timer-1") == v2

    def test_changing_returned_timer_does_not_change_stored(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        returned = store.get_timer(self.tenant, "timer-1")
        _refuse_assignment(returned, "deadline", T0 + HOUR)
        (claimed,) = self.claim(store, T0)
        _refuse_assignment(claimed, "lease_owner", "intruder")
        assert store.get_timer(self.tenant, "timer-1") == sample_timer().claimed("w1", T0, LEASE)

    # -- version rules ---------------------------------------------------------------

    def test_conflicting_timer_aborts_other_timer_and_events(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer("old"),))
        with pytest.raises(ConflictError):
            self.commit(store, timers=(sample_timer("new"), sample_timer("old")),
                        events=(_flow_saved(1),))
        with pytest.raises(NotFound):
            store.get_timer(self.tenant, "new")
        assert self.claim(store, T0 + HOUR) == [sample_timer("old").claimed("w1", T0 + HOUR,
                                                                            LEASE)]
        assert store.read_events(self.tenant) == []

    def test_conflicting_timer_aborts_reschedule_of_other_timer(self, store: FullStore) -> None:
        a, b = sample_timer("a"), sample_timer("b")
        self.commit(store, timers=(a, b))
        with pytest.raises(ConflictError):
            self.commit(store, timers=(a.rescheduled(T0 + HOUR), sample_timer("b")))
        assert store.get_timer(self.tenant, "a") == a
        assert self.claim_ids(store, T0) == ["a", "b"]

    # -- claims ----------------------------------------------------------------------

    def test_claim_of_empty_store_returns_nothing(self, store: FullStore) -> None:
        assert self.claim(store, T0) == []

    def test_claim_returns_due_timer_as_claimed(self, store: FullStore) -> None:
        timer = sample_timer()
        self.commit(store, timers=(timer,))
        assert self.claim(store, T0 + MINUTE, "w1") == [timer.claimed("w1", T0 + MINUTE, LEASE)]

    def test_claim_writes_the_next_version_with_the_lease(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        self.claim(store, T0 + MINUTE, "w1")
        stored = store.get_timer(self.tenant, "timer-1")
        assert stored.version == 2
        assert (stored.lease_owner, stored.lease_until) == ("w1", T0 + MINUTE + LEASE)
        assert stored.state is TimerState.PENDING
        assert stored == sample_timer().claimed("w1", T0 + MINUTE, LEASE)

    def test_claim_returns_lease_end_in_utc_for_offset_instant(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        at = (T0 + MINUTE).astimezone(timezone(timedelta(hours=-5)))
        (claimed,) = self.claim(store, at)
        assert claimed.lease_until == T0 + MINUTE + LEASE
        assert claimed.lease_until is not None
        assert claimed.lease_until.utcoffset() == timedelta(0)
        assert store.get_timer(self.tenant, "timer-1") == claimed

    def test_claim_orders_by_deadline(self, store: FullStore) -> None:
        deadlines = {"a": 5, "b": 1, "c": 4, "d": 2, "e": 3}
        self.commit(store, timers=tuple(
            sample_timer(i, deadline=T0 + m * MINUTE) for i, m in deadlines.items()
        ))
        assert self.claim_ids(store, T0 + HOUR) == ["b", "d", "e", "c", "a"]

    def test_claim_breaks_deadline_ties_by_id(self, store: FullStore) -> None:
        ids = ["t-b", "T-z", "t-a", "t-c"]
        self.commit(store, timers=tuple(sample_timer(i) for i in ids))
        # Code-point order: upper case sorts before lower case.
        assert self.claim_ids(store, T0) == ["T-z", "t-a", "t-b", "t-c"]

    def test_claim_takes_at_most_limit_earliest_first(self, store: FullStore) -> None:
        self.commit(store, timers=tuple(
            sample_timer(f"t{n}", deadline=T0 + (9 - n) * MINUTE) for n in range(10)
        ))
        assert self.claim_ids(store, T0 + HOUR, limit=3) == ["t9", "t8", "t7"]

    def test_claim_leaves_timers_beyond_limit_untouched(self, store: FullStore) -> None:
        timers = tuple(sample_timer(f"t{n}", deadline=T0 + n * MINUTE) for n in range(4))
        self.commit(store, timers=timers)
        self.claim(store, T0 + HOUR, limit=2)
        assert store.get_timer(self.tenant, "t2") == timers[2]
        assert store.get_timer(self.tenant, "t3") == timers[3]

    def test_next_claim_takes_the_remaining_timers(self, store: FullStore) -> None:
        self.commit(store, timers=tuple(
            sample_timer(f"t{n}", deadline=T0 + n * MINUTE) for n in range(5)
        ))
        assert self.claim_ids(store, T0 + HOUR, "w1", limit=2) == ["t0", "t1"]
        assert self.claim_ids(store, T0 + HOUR, "w2", limit=2) == ["t2", "t3"]
        assert self.claim_ids(store, T0 + HOUR, "w3", limit=2) == ["t4"]
        assert self.claim_ids(store, T0 + HOUR, "w4", limit=2) == []

    def test_claim_limit_counts_only_claimable_timers(self, store: FullStore) -> None:
        cancelled, fired = sample_timer("a"), sample_timer("b", deadline=T0 + MINUTE)
        leased = sample_timer("c", deadline=T0 + 2 * MINUTE)
        self.commit(store, timers=(cancelled, fired, leased,
                                   sample_timer("d", deadline=T0 + 3 * MINUTE)))
        self.commit(store, timers=(cancelled.cancelled(), fired.fired(T0 + MINUTE)))
        self.claim(store, T0 + 2 * MINUTE, "w0", lease=HOUR)
        assert self.claim_ids(store, T0 + 10 * MINUTE, limit=1) == ["d"]

    def test_claim_accepts_the_largest_limit(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        assert self.claim_ids(store, T0, limit=1000) == ["timer-1"]

    def test_default_claim_limit_is_100(self, store: FullStore) -> None:
        self.commit(store, timers=tuple(sample_timer(f"t{n:03}") for n in range(101)))
        got = store.claim_timers(self.tenant, T0, worker="w1", lease=LEASE)
        assert len(got) == 100
        assert self.claim_ids(store, T0, "w2") == ["t100"]

    def test_claim_skips_timer_not_yet_due(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer("now"), sample_timer("later",
                                                                     deadline=T0 + HOUR)))
        assert self.claim_ids(store, T0 + HOUR - _MICRO) == ["now"]
        assert store.get_timer(self.tenant, "later") == sample_timer("later",
                                                                   deadline=T0 + HOUR)

    def test_timer_is_due_exactly_at_its_deadline(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(deadline=T0 + _MICRO),))
        assert self.claim(store, T0) == []
        assert self.claim_ids(store, T0 + _MICRO) == ["timer-1"]

    def test_claim_with_nothing_due_changes_nothing(self, store: FullStore) -> None:
        timers = (sample_timer("a", deadline=T0 + HOUR), sample_timer("b").cancelled())
        self.commit(store, timers=(timers[0], sample_timer("b")))
        self.commit(store, timers=(timers[1],))
        assert self.claim(store, T0) == []
        assert [store.get_timer(self.tenant, t.id) for t in timers] == list(timers)

    def test_claim_skips_cancelled_timer(self, store: FullStore) -> None:
        v1 = sample_timer()
        self.commit(store, timers=(v1, v1.cancelled()))
        assert self.claim(store, T0 + HOUR) == []

    def test_claim_skips_fired_timer(self, store: FullStore) -> None:
        v1 = sample_timer()
        self.commit(store, timers=(v1, v1.fired(T0)))
        assert self.claim(store, T0 + HOUR) == []

    def test_leased_timer_is_not_claimed_before_the_lease_ends(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        self.claim(store, T0, "w1")
        assert self.claim(store, T0 + LEASE - _MICRO, "w2") == []
        assert self.claim(store, T0 + LEASE - _MICRO, "w1") == []
        assert store.get_timer(self.tenant, "timer-1").lease_owner == "w1"

    def test_lease_ends_exactly_at_lease_until(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        (first,) = self.claim(store, T0, "w1")
        assert self.claim(store, T0 + LEASE, "w2") == [first.claimed("w2", T0 + LEASE, LEASE)]

    def test_expired_lease_is_claimed_by_the_next_worker(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        self.claim(store, T0, "w1")
        (second,) = self.claim(store, T0 + 2 * LEASE, "w2")
        assert (second.version, second.lease_owner) == (3, "w2")
        assert second.lease_until == T0 + 3 * LEASE
        assert store.get_timer(self.tenant, "timer-1") == second

    def test_claim_takes_only_the_expired_lease_among_leased_timers(
        self, store: FullStore
    ) -> None:
        self.commit(store, timers=(sample_timer("a"), sample_timer("b")))
        self.claim(store, T0, "w1", limit=1, lease=MINUTE)
        self.claim(store, T0, "w2", limit=1, lease=HOUR)
        assert self.claim_ids(store, T0 + 2 * MINUTE, "w3") == ["a"]

    def test_fire_by_the_lease_holder_commits(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        (claimed,) = self.claim(store, T0, "w1")
        fired = claimed.fired(T0 + MINUTE)
        self.commit(store, timers=(fired,), events=(_flow_saved(1),))
        assert store.get_timer(self.tenant, "timer-1") == fired
        assert fired.version == 3
        assert [e.event for e in store.read_events(self.tenant)] == [_flow_saved(1)]

    def test_fire_by_an_earlier_holder_after_reclaim_conflicts(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        (stale,) = self.claim(store, T0, "w1")
        self.claim(store, T0 + LEASE, "w2")
        with pytest.raises(ConflictError):
            self.commit(store, timers=(stale.fired(T0 + LEASE + MINUTE),))

    def test_fenced_fire_writes_nothing(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        (stale,) = self.claim(store, T0, "w1")
        (current,) = self.claim(store, T0 + LEASE, "w2")
        with pytest.raises(ConflictError):
            self.commit(store, timers=(stale.fired(T0 + LEASE),), events=(_flow_saved(1),))
        assert store.get_timer(self.tenant, "timer-1") == current
        assert store.read_events(self.tenant) == []

    def test_new_holder_fires_after_the_fenced_one_failed(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        (stale,) = self.claim(store, T0, "w1")
        (current,) = self.claim(store, T0 + LEASE, "w2")
        with pytest.raises(ConflictError):
            self.commit(store, timers=(stale.fired(T0 + LEASE),))
        self.commit(store, timers=(current.fired(T0 + LEASE),), events=(_flow_saved(1),))
        assert store.get_timer(self.tenant, "timer-1").state is TimerState.FIRED
        assert [e.event for e in store.read_events(self.tenant)] == [_flow_saved(1)]

    def test_earlier_holder_cannot_fire_after_the_new_holder_fired(
        self, store: FullStore
    ) -> None:
        self.commit(store, timers=(sample_timer(),))
        (stale,) = self.claim(store, T0, "w1")
        (current,) = self.claim(store, T0 + LEASE, "w2")
        self.commit(store, timers=(current.fired(T0 + LEASE),))
        with pytest.raises(ConflictError):
            self.commit(store, timers=(stale.fired(T0 + LEASE),))

    def test_fired_timer_is_never_claimed_again(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        (claimed,) = self.claim(store, T0)
        self.commit(store, timers=(claimed.fired(T0),))
        assert self.claim(store, T0 + 10 * LEASE, "w2") == []

    def test_cancelled_claimed_timer_is_never_claimed_again(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        (claimed,) = self.claim(store, T0)
        self.commit(store, timers=(claimed.cancelled(),))
        assert self.claim(store, T0 + 10 * LEASE, "w2") == []

    def test_rescheduled_fired_timer_is_claimed_in_its_next_cycle(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        (claimed,) = self.claim(store, T0)
        fired = claimed.fired(T0)
        again = fired.rescheduled(T0 + HOUR)
        self.commit(store, timers=(fired,))
        self.commit(store, timers=(again,))
        assert self.claim(store, T0 + HOUR - _MICRO) == []
        (next_cycle,) = self.claim(store, T0 + HOUR, "w2")
        assert (next_cycle.cycle, next_cycle.version, next_cycle.lease_owner) == (2, 5, "w2")

    def test_rescheduling_a_claimed_timer_drops_its_lease(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        (claimed,) = self.claim(store, T0, lease=HOUR)
        self.commit(store, timers=(claimed.rescheduled(T0 + MINUTE),))
        assert self.claim_ids(store, T0 + MINUTE, "w2") == ["timer-1"]

    def test_claim_sees_a_deadline_moved_earlier(self, store: FullStore) -> None:
        v1 = sample_timer(deadline=T0 + HOUR)
        self.commit(store, timers=(v1,))
        self.commit(store, timers=(v1.rescheduled(T0),))
        assert self.claim_ids(store, T0) == ["timer-1"]

    def test_claim_sees_a_deadline_moved_later(self, store: FullStore) -> None:
        v1 = sample_timer()
        self.commit(store, timers=(v1,))
        self.commit(store, timers=(v1.rescheduled(T0 + HOUR),))
        assert self.claim(store, T0) == []

    # -- claim validation --------------------------------------------------------------

    @pytest.mark.parametrize("worker", BAD_WORKERS, ids=["none", "empty", "blank", "int"])
    def test_claim_without_valid_worker_raises_validation_error(
        self, store: FullStore, worker: Any
    ) -> None:
        self.commit(store, timers=(sample_timer(),))
        with pytest.raises(ValidationError) as info:
            store.claim_timers(self.tenant, T0, worker=worker, lease=LEASE)
        assert info.value.field == "worker"
        assert store.get_timer(self.tenant, "timer-1") == sample_timer()

    @pytest.mark.parametrize("lease", BAD_LEASES, ids=["zero", "negative", "int", "none"])
    def test_claim_without_positive_lease_raises_validation_error(
        self, store: FullStore, lease: Any
    ) -> None:
        self.commit(store, timers=(sample_timer(),))
        with pytest.raises(ValidationError) as info:
            store.claim_timers(self.tenant, T0, worker="w1", lease=lease)
        assert info.value.field == "lease"
        assert store.get_timer(self.tenant, "timer-1") == sample_timer()

    @pytest.mark.parametrize(
        "limit", BAD_CLAIM_LIMITS, ids=["zero", "negative", "1001", "bool", "str", "float", "none"]
    )
    def test_claim_with_invalid_limit_raises_validation_error(
        self, store: FullStore, limit: Any
    ) -> None:
        self.commit(store, timers=(sample_timer(),))
        with pytest.raises(ValidationError) as info:
            store.claim_timers(self.tenant, T0, worker="w1", lease=LEASE, limit=limit)
        assert info.value.field == "limit"
        assert store.get_timer(self.tenant, "timer-1") == sample_timer()

    @pytest.mark.parametrize("at", BAD_INSTANTS, ids=["naive", "str", "none"])
    def test_claim_at_naive_or_non_datetime_raises_validation_error(
        self, store: FullStore, at: Any
    ) -> None:
        self.commit(store, timers=(sample_timer(),))
        with pytest.raises(ValidationError):
            store.claim_timers(self.tenant, at, worker="w1", lease=LEASE)
        assert store.get_timer(self.tenant, "timer-1") == sample_timer()

    # -- tenants ---------------------------------------------------------------------

    @pytest.mark.parametrize("bad_tenant", BAD_TENANTS, ids=BAD_TENANT_IDS)
    @pytest.mark.parametrize(
        "call", [c[1] for c in TIMER_TENANT_CALLS], ids=[c[0] for c in TIMER_TENANT_CALLS]
    )
    def test_timer_method_without_valid_tenant_raises_validation_error(
        self, store: FullStore, call: Callable[[FullStore, Any], object], bad_tenant: object
    ) -> None:
        # Seed a due timer that a missing tenant check might claim instead of failing.
        self.commit(store, timers=(sample_timer(),))
        with pytest.raises(ValidationError) as info:
            call(store, bad_tenant)
        assert info.value.field == "tenant"
        assert store.get_timer(self.tenant, "timer-1") == sample_timer()

    @pytest.mark.parametrize("bad_tenant", BAD_TENANTS, ids=BAD_TENANT_IDS)
    def test_commit_rejected_for_bad_tenant_leaves_no_timer(
        self, store: FullStore, bad_tenant: object
    ) -> None:
        with pytest.raises(ValidationError):
            store.commit(bad_tenant, ChangeSet(timers=(sample_timer(),)))  # type: ignore[arg-type]
        for tenant in (self.tenant, str(bad_tenant), str(bad_tenant).strip()):
            if tenant.strip():
                with pytest.raises(NotFound):
                    store.get_timer(tenant, "timer-1")
                assert self.claim(store, T0 + HOUR, tenant=tenant) == []

    def test_claim_leaves_other_tenant_timers_alone(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer("mine"),))
        self.commit(store, timers=(sample_timer("theirs"),), tenant=self.other_tenant)
        assert self.claim_ids(store, T0 + HOUR) == ["mine"]
        assert store.get_timer(self.other_tenant, "theirs") == sample_timer("theirs")

    def test_claim_in_tenant_without_timers_returns_nothing(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),), tenant=self.other_tenant)
        assert self.claim(store, T0 + HOUR) == []

    def test_timer_conflict_in_one_tenant_leaves_other_tenant_untouched(
        self, store: FullStore
    ) -> None:
        self.commit(store, timers=(sample_timer(),))
        with pytest.raises(ConflictError):
            self.commit(store, timers=(sample_timer(),), events=(_flow_saved(1),))
        self.commit(store, timers=(sample_timer(),), tenant=self.other_tenant)
        assert store.read_events(self.other_tenant) == []
