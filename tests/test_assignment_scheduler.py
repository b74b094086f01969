"""Scheduler unit tests: one behaviour each (strategies, eligibility, queue
order, draining, presence, no-answer, manual assignment, errors, explain,
restore). The random comparison against the reference model is in
``test_assignment_properties.py``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from cxflow.assignment import (
    Agent,
    AgentState,
    Decision,
    Explanation,
    IndexedStrategy,
    LeastLoad,
    Need,
    Presence,
    QueuePolicy,
    RoundRobin,
    Routing,
    Scheduler,
    SkillBased,
    Strategy,
)
from cxflow.assignment.scheduler import queue_key
from cxflow.errors import ConflictError, NotFound, ValidationError
from cxflow.priority import Priority
from cxflow.serialization import from_dict, to_dict

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
ONLINE, AWAY, OFFLINE = Presence.ONLINE, Presence.AWAY, Presence.OFFLINE


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def agent(agent_id: str, **fields: Any) -> Agent:
    fields.setdefault("presence", ONLINE)
    return Agent(id=agent_id, **fields)


def conversation(cid: str, arrived: float = 0, **fields: Any) -> Routing:
    fields.setdefault("channel", "chat")
    return Routing(conversation_id=cid, arrived_at=at(arrived), **fields)


def given(scheduler: Scheduler, *agents: Agent, when: float = 0) -> Scheduler:
    for one in agents:
        scheduler.put_agent(one, at=at(when))
    return scheduler


def arrive(scheduler: Scheduler, *cids: str, when: float = 0, **fields: Any) -> list[Decision]:
    """Conversations arriving one by one (second ``when`` + index), same fields."""
    decisions = []
    for n, cid in enumerate(cids):
        decisions += scheduler.arrive(conversation(cid, when + n, **fields), at=at(when + n))
    return decisions


def pairs(decisions: list[Decision]) -> list[tuple[str, str | None]]:
    return [(d.conversation_id, d.agent_id) for d in decisions]


def holders(scheduler: Scheduler, *cids: str) -> list[str | None]:
    return [scheduler.holder(cid) for cid in cids]


# -- round robin ------------------------------------------------------------------------


def test_round_robin_rotates_over_the_agents() -> None:
    scheduler = given(Scheduler(strategy=RoundRobin()), *(agent(a, capacity=9) for a in "abc"))
    decisions = arrive(scheduler, *(f"c{n}" for n in range(7)))
    assert [d.agent_id for d in decisions] == list("abcabca")
    assert all(d.reason == "auto" for d in decisions)


def test_round_robin_skips_full_agents_and_resumes_the_rotation() -> None:
    scheduler = given(
        Scheduler(strategy=RoundRobin()),
        agent("a", capacity=9),
        agent("b", capacity=1),
        agent("c", capacity=9),
    )
    decisions = arrive(scheduler, *(f"c{n}" for n in range(6)))
    assert [d.agent_id for d in decisions] == list("abcaca")


def test_an_agent_returning_online_does_not_jump_the_rotation() -> None:
    scheduler = given(
        Scheduler(strategy=RoundRobin()), *(agent(a, capacity=9) for a in "abc")
    )
    scheduler.set_presence("a", OFFLINE, at=at(0))
    assert [d.agent_id for d in arrive(scheduler, "c1", "c2", "c3", "c4")] == list("bcbc")
    scheduler.set_presence("a", ONLINE, at=at(10))
    # a takes the current turn: it goes after b, who waited longest, not before everyone
    assert scheduler.agent_state("a").turn == 4
    assert [d.agent_id for d in arrive(scheduler, "c5", "c6", "c7", when=20)] == list("bac")


# -- least load -------------------------------------------------------------------------


def test_least_load_prefers_the_lowest_load_relative_to_capacity() -> None:
    scheduler = given(
        Scheduler(strategy=LeastLoad()), agent("a", capacity=2), agent("b", capacity=4)
    )
    arrive(scheduler, "c1", "c2")  # a (ids break the tie), then b (a is at 1/2)
    assert holders(scheduler, "c1", "c2") == ["a", "b"]
    # a at 1/2, b at 1/4: b; then both at 1/2: the one idle longest (a, since second 0)
    assert pairs(arrive(scheduler, "c3", "c4", when=10)) == [("c3", "b"), ("c4", "a")]


def test_least_load_breaks_equal_loads_by_the_longest_idle() -> None:
    scheduler = given(Scheduler(strategy=LeastLoad()), agent("b", capacity=2))
    given(scheduler, agent("a", capacity=2), when=30)
    assert pairs(arrive(scheduler, "c1", when=60)) == [("c1", "b")]
    assert pairs(arrive(scheduler, "c2", "c3", when=90)) == [("c2", "a"), ("c3", "b")]
    assert scheduler.agent_state("b").idle_us > scheduler.agent_state("a").idle_us


# -- skill based ------------------------------------------------------------------------


def skilled_team(strategy: Strategy) -> Scheduler:
    return given(
        Scheduler(strategy=strategy),
        agent("junior", capacity=3, skills={"tech": 1, "billing": 2}),
        agent("senior", capacity=3, skills={"tech": 4, "billing": 5}),
        agent("expert", capacity=3, skills={"tech": 5}),
    )


def test_skill_based_picks_the_highest_proficiency_in_the_primary_skill() -> None:
    scheduler = skilled_team(SkillBased())
    assert pairs(arrive(scheduler, "c1", skills=("tech",))) == [("c1", "expert")]
    # the primary (first) skill decides; every skill is still required
    assert pairs(arrive(scheduler, "c2", skills=("tech", "billing"), when=1)) == [
        ("c2", "senior")
    ]
    assert pairs(arrive(scheduler, "c3", skills=("billing", "tech"), when=2)) == [
        ("c3", "senior")
    ]


def test_skill_based_keeps_giving_to_the_expert_while_it_has_room() -> None:
    scheduler = skilled_team(SkillBased())
    decisions = arrive(scheduler, "c1", "c2", "c3", "c4", skills=("tech",))
    assert [d.agent_id for d in decisions] == ["expert", "expert", "expert", "senior"]


def test_skill_based_without_skills_ranks_on_load() -> None:
    scheduler = skilled_team(SkillBased())
    assert [d.agent_id for d in arrive(scheduler, "c1", "c2", "c3")] == [
        "expert", "junior", "senior"
    ]


def test_spread_prefers_lower_load_over_proficiency_so_juniors_get_hard_ones() -> None:
    scheduler = skilled_team(SkillBased(spread=True))
    decisions = arrive(scheduler, "c1", "c2", "c3", "c4", skills=("tech",))
    # equal loads: proficiency breaks the tie; then the least loaded, junior included
    assert [d.agent_id for d in decisions] == ["expert", "senior", "junior", "expert"]


def test_spread_still_requires_every_skill() -> None:
    scheduler = skilled_team(SkillBased(spread=True))
    decisions = arrive(scheduler, "c1", "c2", "c3", skills=("billing", "tech"))
    assert [d.agent_id for d in decisions] == ["senior", "junior", "senior"]


# -- eligibility ------------------------------------------------------------------------


def test_a_conversation_goes_only_to_agents_with_every_required_skill() -> None:
    scheduler = given(
        Scheduler(),
        agent("a", skills={"tech": 5}),
        agent("b", capacity=5, skills={"tech": 1, "billing": 1}),
    )
    arrive(scheduler, "c1", skills=("tech", "billing"))
    assert scheduler.holder("c1") == "b"
    assert arrive(scheduler, "c2", skills=("legal",), when=1) == []
    assert scheduler.waiting() == ["c2"]


def test_a_conversation_of_a_group_goes_only_to_its_members() -> None:
    scheduler = given(
        Scheduler(), agent("a", capacity=5), agent("b", capacity=5, groups=("vip",))
    )
    assert pairs(arrive(scheduler, "c1", "c2", group="vip")) == [("c1", "b"), ("c2", "b")]
    assert arrive(scheduler, "c3", group="night", when=5) == []


def test_channel_capacity_caps_one_channel_below_the_total() -> None:
    scheduler = given(Scheduler(), agent("a", capacity=3, channel_capacity={"chat": 1}))
    assert pairs(arrive(scheduler, "c1", "c2")) == [("c1", "a")]
    assert scheduler.waiting() == ["c2"]
    assert pairs(arrive(scheduler, "e1", channel="email", when=5)) == [("e1", "a")]
    scheduler.close("c1", at=at(10))
    assert scheduler.holder("c2") == "a"
    assert scheduler.agent_state("a").channel_load == {"chat": 1, "email": 1}


def test_channel_capacity_zero_means_never_that_channel() -> None:
    scheduler = given(Scheduler(), agent("a", capacity=3, channel_capacity={"voice": 0}))
    assert arrive(scheduler, "v1", channel="voice") == []
    assert pairs(arrive(scheduler, "c1", when=1)) == [("c1", "a")]
    with pytest.raises(ValidationError, match="takes no voice"):
        scheduler.assign("v1", "a", at=at(2), overflow=True)


def test_capacity_zero_takes_nothing() -> None:
    scheduler = given(Scheduler(), agent("a", capacity=0))
    assert arrive(scheduler, "c1") == []
    assert scheduler.waiting_count == 1


# -- group strategies -------------------------------------------------------------------


def test_a_group_strategy_ranks_that_group_and_the_default_the_rest() -> None:
    scheduler = given(
        Scheduler(strategy=LeastLoad(), group_strategies={"tech-team": SkillBased()}),
        agent("junior", capacity=5, skills={"tech": 1}, groups=("tech-team",)),
        agent("expert", capacity=5, skills={"tech": 5}, groups=("tech-team",)),
    )
    grouped = arrive(scheduler, "g1", "g2", skills=("tech",), group="tech-team")
    assert [d.agent_id for d in grouped] == ["expert", "expert"]
    ungrouped = arrive(scheduler, "u1", "u2", skills=("tech",), when=10)
    assert [d.agent_id for d in ungrouped] == ["junior", "junior"]
    assert scheduler.explain("g1").strategy == "skill-based"
    assert scheduler.explain("u1").strategy == "least-load"


def test_a_group_without_its_own_strategy_uses_the_default() -> None:
    scheduler = given(
        Scheduler(strategy=RoundRobin(), group_strategies={"other": SkillBased()}),
        agent("a", capacity=5, skills={"tech": 1}, groups=("vip",)),
        agent("b", capacity=5, skills={"tech": 5}, groups=("vip",)),
    )
    decisions = arrive(scheduler, "c1", "c2", "c3", skills=("tech",), group="vip")
    assert [d.agent_id for d in decisions] == ["a", "b", "a"]


# -- queue order ------------------------------------------------------------------------


def test_the_queue_serves_by_level_then_arrival() -> None:
    scheduler = Scheduler(policy=QueuePolicy(aging=None))
    arrive(scheduler, "smb-1", plan="smb")
    arrive(scheduler, "ent-1", plan="enterprise", when=10)
    arrive(scheduler, "smb-2", plan="smb", when=20)
    arrive(scheduler, "high", plan="smb", priority=Priority.HIGH, when=30)
    arrive(scheduler, "ent-2", plan="enterprise", when=40)
    arrive(scheduler, "vip", vip=True, when=50)  # unknown plan (3) - 1
    expected = ["ent-1", "ent-2", "high", "smb-1", "smb-2", "vip"]
    assert scheduler.waiting() == expected
    decisions = scheduler.put_agent(agent("a", capacity=10), at=at(60))
    assert [d.conversation_id for d in decisions] == expected


def test_aging_lets_a_long_waiting_lower_tier_go_first() -> None:
    scheduler = Scheduler(policy=QueuePolicy(aging=timedelta(minutes=10)))
    arrive(scheduler, "smb", plan="smb")
    arrive(scheduler, "ent-early", plan="enterprise", when=19 * 60)
    arrive(scheduler, "ent-late", plan="enterprise", when=21 * 60)
    assert scheduler.waiting() == ["ent-early", "smb", "ent-late"]


def test_equal_order_keys_are_served_in_queue_key_order_in_every_process() -> None:
    policy = QueuePolicy()
    ids = ("c3", "c1", "c2", "c5", "c4")
    expected = sorted(ids, key=lambda cid: queue_key(policy, conversation(cid)))
    for order in (ids, tuple(reversed(ids))):  # arrival order does not matter
        scheduler = Scheduler(policy=policy)
        for cid in order:
            scheduler.arrive(conversation(cid), at=at(0))
        assert scheduler.waiting() == expected
        decisions = scheduler.put_agent(agent("a", capacity=5), at=at(1))
        assert [d.conversation_id for d in decisions] == expected
    # the tie-break is a stable hash (BLAKE2b, 8 bytes), not Python's per-process hash()
    key = queue_key(policy, conversation("c1"))
    assert divmod(key, 2**64) == (policy.order_key(conversation("c1")), 0x43F000A36F6D744E)


def test_a_free_agent_takes_the_first_conversation_it_can_not_the_first_overall() -> None:
    scheduler = Scheduler()
    arrive(scheduler, "legal", skills=("legal",))
    arrive(scheduler, "plain", when=1)
    assert pairs(scheduler.put_agent(agent("a"), at=at(2))) == [("plain", "a")]
    assert scheduler.waiting() == ["legal"]


# -- draining ---------------------------------------------------------------------------


def test_closing_drains_the_queue_in_order() -> None:
    scheduler = given(Scheduler(), agent("a"))
    arrive(scheduler, "c1", "c2", "c3")
    assert scheduler.waiting() == ["c2", "c3"]
    assert pairs(scheduler.close("c1", at=at(10))) == [("c2", "a")]
    assert pairs(scheduler.close("c2", at=at(20))) == [("c3", "a")]
    assert scheduler.close("c3", at=at(30)) == []
    assert scheduler.waiting_count == 0


def test_closing_a_waiting_conversation_assigns_nothing() -> None:
    scheduler = given(Scheduler(), agent("a"))
    arrive(scheduler, "c1", "c2", "c3")
    assert scheduler.close("c2", at=at(10)) == []
    assert scheduler.waiting() == ["c3"]
    with pytest.raises(NotFound):
        scheduler.holder("c2")


def test_a_capacity_increase_drains_the_queue() -> None:
    scheduler = given(Scheduler(), agent("a"))
    arrive(scheduler, "c1", "c2", "c3", "c4")
    decisions = scheduler.put_agent(agent("a", capacity=3), at=at(10))
    assert pairs(decisions) == [("c2", "a"), ("c3", "a")]
    assert scheduler.waiting() == ["c4"]


def test_a_capacity_decrease_keeps_the_conversations_but_takes_no_more() -> None:
    scheduler = given(Scheduler(), agent("a", capacity=3))
    arrive(scheduler, "c1", "c2", "c3")
    assert scheduler.put_agent(agent("a", capacity=1), at=at(10)) == []
    assert scheduler.held_by("a") == {"c1", "c2", "c3"}
    arrive(scheduler, "c4", when=20)
    assert scheduler.close("c1", at=at(30)) == []
    assert scheduler.close("c2", at=at(31)) == []
    assert pairs(scheduler.close("c3", at=at(32))) == [("c4", "a")]


def test_new_skills_drain_the_conversations_that_need_them() -> None:
    scheduler = given(Scheduler(), agent("a", capacity=3, skills={"tech": 2}))
    arrive(scheduler, "b1", "b2", skills=("billing",))
    arrive(scheduler, "t1", skills=("tech", "billing"), when=5)
    decisions = scheduler.put_agent(
        agent("a", capacity=3, skills={"tech": 2, "billing": 1}), at=at(10)
    )
    assert pairs(decisions) == [("b1", "a"), ("b2", "a"), ("t1", "a")]


def test_joining_a_group_drains_its_conversations() -> None:
    scheduler = given(Scheduler(), agent("a", capacity=2))
    arrive(scheduler, "g1", group="vip")
    assert pairs(scheduler.put_agent(agent("a", capacity=2, groups=("vip",)), at=at(5))) == [
        ("g1", "a")
    ]


def test_a_long_queue_with_many_removals_still_drains_in_order() -> None:
    scheduler = Scheduler()
    cids = [f"c{n:03d}" for n in range(300)]
    arrive(scheduler, *cids)
    for cid in cids[1::3] + cids[2::3][:60]:  # leave stale heap entries behind the top
        scheduler.close(cid, at=at(400))
    given(scheduler, agent("a", presence=AWAY, capacity=2))
    for cid in cids[3:30:3]:  # and take some out by hand
        scheduler.assign(cid, "a", at=at(401), overflow=True)
    for cid in cids[6:30:6]:  # and put some of those back
        scheduler.requeue(cid, at=at(402))
    expected = sorted(
        set(cids) - set(cids[1::3]) - set(cids[2::3][:60]) - set(cids[3:30:3]) | set(cids[6:30:6])
    )
    assert scheduler.waiting() == expected
    assert scheduler.waiting_count == len(expected)
    decisions = scheduler.put_agent(agent("a", capacity=1000), at=at(500))
    assert [d.conversation_id for d in decisions] == expected


# -- presence ---------------------------------------------------------------------------


def test_an_agent_coming_online_takes_waiting_conversations() -> None:
    scheduler = given(Scheduler(), agent("a", presence=OFFLINE, capacity=2))
    arrive(scheduler, "c1", "c2", "c3")
    assert pairs(scheduler.set_presence("a", ONLINE, at=at(10))) == [("c1", "a"), ("c2", "a")]


def test_away_keeps_the_conversations_but_takes_no_new_ones() -> None:
    scheduler = given(Scheduler(), agent("a", capacity=2))
    arrive(scheduler, "c1")
    assert scheduler.set_presence("a", AWAY, at=at(5)) == []
    assert scheduler.holder("c1") == "a"
    assert arrive(scheduler, "c2", when=10) == []
    assert scheduler.close("c1", at=at(15)) == []
    assert pairs(scheduler.set_presence("a", ONLINE, at=at(20))) == [("c2", "a")]


def test_going_offline_requeues_ahead_of_newer_conversations() -> None:
    scheduler = given(Scheduler(), agent("a"), agent("b"))
    arrive(scheduler, "c1", "c2", "c3")  # c1 -> a, c2 -> b, c3 waits
    decisions = scheduler.set_presence("a", OFFLINE, at=at(10))
    assert decisions == [Decision("c1", None, "agent_offline", "a")]
    assert scheduler.waiting() == ["c1", "c3"]
    assert scheduler.declined("c1") == ("a",)
    assert scheduler.held_by("a") == frozenset()
    assert pairs(scheduler.close("c2", at=at(20))) == [("c1", "b")]


def test_going_offline_hands_the_conversations_to_free_colleagues_at_once() -> None:
    scheduler = given(Scheduler(), agent("a", capacity=2), agent("b", presence=AWAY, capacity=2))
    arrive(scheduler, "c1", "c2")
    scheduler.set_presence("b", ONLINE, at=at(5))
    decisions = scheduler.set_presence("a", OFFLINE, at=at(10))
    assert decisions == [
        Decision("c1", None, "agent_offline", "a"),
        Decision("c2", None, "agent_offline", "a"),
        Decision("c1", "b", "auto"),
        Decision("c2", "b", "auto"),
    ]


def test_a_conversation_goes_back_to_who_went_offline_only_if_nobody_else_can() -> None:
    scheduler = given(Scheduler(), agent("a"), agent("b"))
    arrive(scheduler, "c1", "c2")  # a holds c1, b holds c2
    scheduler.set_presence("a", OFFLINE, at=at(10))
    assert scheduler.waiting() == ["c1"]
    # a comes back and nobody else is free: a takes its conversation again
    assert pairs(scheduler.set_presence("a", ONLINE, at=at(20))) == [("c1", "a")]
    scheduler.set_presence("a", OFFLINE, at=at(30))
    arrive(scheduler, "c3", when=40)
    scheduler.close("c2", at=at(50))  # b takes c1, which a declined twice
    assert scheduler.holder("c1") == "b"
    assert scheduler.declined("c1") == ("a",)


def test_a_declined_agent_ranks_behind_everyone_else() -> None:
    scheduler = given(
        Scheduler(strategy=LeastLoad()), agent("a", capacity=4), agent("b", capacity=4)
    )
    arrive(scheduler, "c1", "c2", "c3")  # a: c1, c3; b: c2
    scheduler.set_presence("a", OFFLINE, at=at(10))  # c1 and c3 go to b
    scheduler.set_presence("a", ONLINE, at=at(20))
    scheduler.close("c1", at=at(30))
    scheduler.close("c3", at=at(31))
    scheduler.arrive(conversation("x", 40, declined=("a",)), at=at(40))
    # a is idle and empty, b holds c2: least load says a, but a declined x
    assert scheduler.holder("x") == "b"


# -- no answer and requeue --------------------------------------------------------------


def test_no_answer_offers_the_conversation_to_someone_else_first() -> None:
    scheduler = given(
        Scheduler(strategy=LeastLoad()), agent("a", capacity=2), agent("b", capacity=2)
    )
    arrive(scheduler, "c1", "c2")  # a: c1, b: c2
    decisions = scheduler.no_answer("c1", "a", at=at(10))
    # a is now emptier than b, but declined c1
    assert decisions == [Decision("c1", None, "no_answer", "a"), Decision("c1", "b", "auto")]
    assert scheduler.declined("c1") == ("a",)


def test_no_answer_returns_to_the_same_agent_when_nobody_else_can_take_it() -> None:
    scheduler = given(Scheduler(), agent("a"), agent("b", skills={"tech": 1}))
    arrive(scheduler, "c1", skills=("tech",))
    decisions = scheduler.no_answer("c1", "b", at=at(10))
    assert decisions == [Decision("c1", None, "no_answer", "b"), Decision("c1", "b", "auto")]


def test_no_answer_from_an_agent_who_no_longer_holds_it_does_nothing() -> None:
    scheduler = given(Scheduler(), agent("a"), agent("b"))
    arrive(scheduler, "c1")
    assert scheduler.no_answer("c1", "b", at=at(10)) == []
    assert scheduler.no_answer("c1", "nobody", at=at(10)) == []
    scheduler.set_presence("a", AWAY, at=at(11))
    arrive(scheduler, "c2", when=12)  # goes to b
    scheduler.no_answer("c1", "a", at=at(20))  # c1 waits: b is full
    assert scheduler.no_answer("c1", "a", at=at(30)) == []
    assert scheduler.waiting() == ["c1"]
    assert scheduler.declined("c1") == ("a",)


def test_requeue_does_not_decline() -> None:
    scheduler = given(Scheduler(strategy=LeastLoad()), agent("a"), agent("b", capacity=2))
    arrive(scheduler, "c1", "c2")  # a: c1 (ids), b: c2
    decisions = scheduler.requeue("c1", at=at(10))
    assert decisions == [Decision("c1", None, "unassigned", "a"), Decision("c1", "a", "auto")]
    assert scheduler.declined("c1") == ()


def test_requeue_keeps_the_arrival_and_a_custom_reason() -> None:
    scheduler = given(Scheduler(), agent("a", presence=AWAY))
    arrive(scheduler, "c1", "c2")
    scheduler.assign("c2", "a", at=at(5))
    decisions = scheduler.requeue("c2", at=at(10), reason="moved")
    assert decisions == [Decision("c2", None, "moved", "a")]
    assert scheduler.waiting() == ["c1", "c2"]


def test_requeue_of_a_waiting_conversation_is_refused() -> None:
    scheduler = Scheduler()
    arrive(scheduler, "c1")
    with pytest.raises(ValidationError, match="already waiting"):
        scheduler.requeue("c1", at=at(1))


# -- manual assignment ------------------------------------------------------------------


def test_a_manual_assignment_skips_the_queue_order() -> None:
    scheduler = given(Scheduler(), agent("a", presence=AWAY))
    arrive(scheduler, "c1", "c2")
    decisions = scheduler.assign("c2", "a", at=at(10))
    assert decisions == [Decision("c2", "a", "manual")]
    assert scheduler.waiting() == ["c1"]
    assert not scheduler.overflow("c2")


def test_a_manual_assignment_to_a_full_agent_needs_overflow() -> None:
    scheduler = given(Scheduler(), agent("a"))
    arrive(scheduler, "c1", "c2")
    with pytest.raises(ValidationError, match="overflow=True") as excinfo:
        scheduler.assign("c2", "a", at=at(10))
    assert excinfo.value.field == "agent_id"
    assert scheduler.waiting() == ["c2"]
    decisions = scheduler.assign("c2", "a", at=at(10), overflow=True)
    assert decisions == [Decision("c2", "a", "manual", None, True)]
    assert scheduler.overflow("c2")
    assert scheduler.overflow_total == 1
    assert scheduler.agent_state("a").load == 2


def test_a_full_channel_also_needs_overflow() -> None:
    scheduler = given(Scheduler(), agent("a", capacity=5, channel_capacity={"chat": 1}))
    arrive(scheduler, "c1", "c2")
    with pytest.raises(ValidationError, match="at capacity on chat"):
        scheduler.assign("c2", "a", at=at(10))
    assert scheduler.assign("c2", "a", at=at(10), overflow=True)[0].overflow


def test_overflow_with_room_is_not_counted() -> None:
    scheduler = given(Scheduler(), agent("a", presence=AWAY, capacity=2))
    arrive(scheduler, "c1")
    assert scheduler.assign("c1", "a", at=at(1), overflow=True) == [
        Decision("c1", "a", "manual")
    ]
    assert scheduler.overflow_total == 0


def test_closing_an_overflow_conversation_leaves_the_agent_full() -> None:
    scheduler = given(Scheduler(), agent("a"))
    arrive(scheduler, "c1", "c2", "c3")
    scheduler.assign("c2", "a", at=at(5), overflow=True)
    assert scheduler.close("c1", at=at(10)) == []  # a holds c2: still at 1/1
    assert pairs(scheduler.close("c2", at=at(20))) == [("c3", "a")]


@pytest.mark.parametrize(("profile", "reason"), [
    ({"presence": OFFLINE}, "offline"),
    ({"skills": {"billing": 3}}, "missing skill tech"),
    ({"skills": {"tech": 3}, "groups": ()}, "not in group vip"),
])
def test_a_manual_assignment_to_an_unqualified_agent_is_refused(
    profile: dict[str, Any], reason: str
) -> None:
    fields = {"skills": {"tech": 3}, "groups": ("vip",), "capacity": 5, **profile}
    scheduler = given(Scheduler(), agent("a", **fields))
    scheduler.arrive(conversation("c1", skills=("tech",), group="vip"), at=at(0))
    if profile.get("presence") is None:  # a qualified agent would have taken it
        assert scheduler.waiting() == ["c1"]
    with pytest.raises(ValidationError, match=reason):
        scheduler.assign("c1", "a", at=at(1), overflow=True)
    assert scheduler.waiting() == ["c1"]
    assert scheduler.overflow_total == 0


def test_a_transfer_frees_the_previous_agent_who_takes_the_next() -> None:
    scheduler = given(Scheduler(), agent("a"), agent("b", presence=AWAY))
    arrive(scheduler, "c1", "c2")
    decisions = scheduler.assign("c1", "b", at=at(10))
    assert decisions == [Decision("c1", "b", "transfer", "a"), Decision("c2", "a", "auto")]
    assert scheduler.held_by("b") == {"c1"}


def test_a_transfer_to_the_holder_is_refused() -> None:
    scheduler = given(Scheduler(), agent("a"))
    arrive(scheduler, "c1")
    with pytest.raises(ValidationError, match="already holds"):
        scheduler.assign("c1", "a", at=at(1), overflow=True)


def test_a_manual_assignment_takes_a_round_robin_turn() -> None:
    scheduler = given(Scheduler(strategy=RoundRobin()), *(agent(a, capacity=5) for a in "abc"))
    scheduler.set_presence("a", AWAY, at=at(0))
    arrive(scheduler, "m")  # to b
    scheduler.set_presence("a", ONLINE, at=at(1))
    scheduler.assign("m", "a", at=at(2))  # a's turn is now the latest: c (0), b (1), a (2)
    assert [d.agent_id for d in arrive(scheduler, "c1", "c2", "c3", when=10)] == list("cba")


# -- errors -----------------------------------------------------------------------------


def populated() -> Scheduler:
    scheduler = given(Scheduler(), agent("a"))
    arrive(scheduler, "c1")
    return scheduler


@pytest.mark.parametrize("call", [
    lambda s: s.close("nope", at=at(1)),
    lambda s: s.requeue("nope", at=at(1)),
    lambda s: s.no_answer("nope", "a", at=at(1)),
    lambda s: s.assign("nope", "a", at=at(1)),
    lambda s: s.assign("c1", "nobody", at=at(1)),
    lambda s: s.set_presence("nobody", ONLINE, at=at(1)),
    lambda s: s.explain("nope"),
    lambda s: s.holder("nope"),
    lambda s: s.declined("nope"),
    lambda s: s.overflow("nope"),
    lambda s: s.agent_state("nobody"),
    lambda s: s.held_by("nobody"),
    lambda s: s.agent_record("nobody"),
])
def test_unknown_ids_are_not_found(call: Callable[[Scheduler], object]) -> None:
    scheduler = populated()
    with pytest.raises(NotFound):
        call(scheduler)
    assert scheduler.holder("c1") == "a"


def test_not_found_names_the_kind() -> None:
    scheduler = populated()
    with pytest.raises(NotFound) as excinfo:
        scheduler.close("nope", at=at(1))
    assert (excinfo.value.kind, excinfo.value.id) == ("routing", "nope")
    with pytest.raises(NotFound) as agent_info:
        scheduler.set_presence("nobody", ONLINE, at=at(1))
    assert (agent_info.value.kind, agent_info.value.id) == ("agent", "nobody")


def test_a_duplicate_arrival_is_a_conflict() -> None:
    scheduler = populated()
    with pytest.raises(ConflictError):
        scheduler.arrive(conversation("c1"), at=at(1))
    assert scheduler.agent_state("a").load == 1


def test_an_arrival_must_be_waiting() -> None:
    with pytest.raises(ValidationError):
        Scheduler().arrive(conversation("c1", agent="a", assigned_at=T0), at=at(1))


def test_a_closed_conversation_may_arrive_again() -> None:
    scheduler = populated()
    scheduler.close("c1", at=at(1))
    assert pairs(scheduler.arrive(conversation("c1", 2), at=at(2))) == [("c1", "a")]


NAIVE = datetime(2024, 5, 1, 9, 0)


@pytest.mark.parametrize("call", [
    lambda s: s.put_agent(agent("b"), at=NAIVE),
    lambda s: s.set_presence("a", AWAY, at=NAIVE),
    lambda s: s.arrive(conversation("c2"), at=NAIVE),
    lambda s: s.close("c1", at=NAIVE),
    lambda s: s.requeue("c1", at=NAIVE),
    lambda s: s.no_answer("c1", "a", at=NAIVE),
    lambda s: s.no_answer("c1", "someone-else", at=NAIVE),
    lambda s: s.assign("c1", "b", at=NAIVE),
])
def test_a_naive_instant_is_refused_and_changes_nothing(
    call: Callable[[Scheduler], object],
) -> None:
    scheduler = populated()
    given(scheduler, agent("b", presence=AWAY))
    with pytest.raises(ValidationError) as excinfo:
        call(scheduler)
    assert excinfo.value.field == "at"
    assert scheduler.holder("c1") == "a"
    assert [s.id for s in scheduler.agents()] == ["a", "b"]
    assert scheduler.agent_state("b").agent.presence is AWAY


@pytest.mark.parametrize(("call", "field"), [
    (lambda: Scheduler(strategy=object()), "strategy"),  # type: ignore[arg-type]
    (lambda: Scheduler(group_strategies={"vip": "round-robin"}), "strategy"),  # type: ignore[dict-item]
    (lambda: Scheduler(policy={}), "policy"),  # type: ignore[arg-type]
    (lambda: Scheduler().put_agent("a", at=T0), "agent"),  # type: ignore[arg-type]
    (lambda: Scheduler().arrive("c1", at=T0), "routing"),  # type: ignore[arg-type]
    (lambda: populated().set_presence("a", "away", at=T0), "presence"),  # type: ignore[arg-type]
    (lambda: populated().assign("c1", "a", at=T0, overflow=1), "overflow"),  # type: ignore[arg-type]
])
def test_bad_arguments_are_validation_errors(call: Callable[[], object], field: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        call()
    assert excinfo.value.field == field


# -- explain ----------------------------------------------------------------------------


def explained_team() -> Scheduler:
    return given(
        Scheduler(strategy=LeastLoad()),
        agent("busy", skills={"tech": 3}, groups=("vip",)),
        agent("gone", presence=OFFLINE, skills={"tech": 3}, groups=("vip",)),
        agent("novice", capacity=3, groups=("vip",)),
        agent("outsider", capacity=3, skills={"tech": 5}),
        agent("no-chat", capacity=3, channel_capacity={"chat": 0}, skills={"tech": 1},
              groups=("vip",)),
        agent("chat-full", capacity=3, channel_capacity={"chat": 1}, skills={"tech": 1},
              groups=("vip",)),
    )


def test_explain_a_waiting_conversation_lists_why_each_agent_is_ruled_out() -> None:
    scheduler = explained_team()
    arrive(scheduler, "first", skills=("tech",), group="vip")  # -> busy (ids break the tie)
    arrive(scheduler, "second", skills=("tech",), group="vip", when=1)  # -> chat-full
    arrive(scheduler, "third", skills=("tech",), group="vip", when=2)
    assert holders(scheduler, "first", "second") == ["busy", "chat-full"]
    explanation = scheduler.explain("third")
    assert isinstance(explanation, Explanation)
    assert (explanation.state, explanation.holder, explanation.winner) == ("waiting", None, None)
    assert explanation.need == Need("chat", "vip", ("tech",))
    assert explanation.strategy == "least-load"
    assert explanation.ahead == 0
    reasons = {c.agent_id: c.reasons for c in explanation.candidates}
    assert not any(c.eligible for c in explanation.candidates)
    assert reasons == {
        "busy": ("at capacity (1/1)",),
        "chat-full": ("at capacity on chat (1/1)",),
        "gone": ("offline",),
        "no-chat": ("takes no chat conversations",),
        "novice": ("missing skill tech",),
        "outsider": ("not in group vip",),
    }
    assert [c.agent_id for c in explanation.candidates] == sorted(reasons)
    assert "no free agent can take it" in explanation.summary
    assert "1 at capacity on chat, 1 missing skill tech" in explanation.summary


def test_explain_an_assigned_conversation_names_the_holder_and_the_runner_up() -> None:
    scheduler = given(
        Scheduler(strategy=LeastLoad()),
        agent("a", capacity=2),
        agent("b", capacity=4),
        agent("c", presence=AWAY),
    )
    arrive(scheduler, "c1")
    explanation = scheduler.explain("c1")
    assert (explanation.state, explanation.holder, explanation.winner) == ("assigned", "a", "a")
    eligible = [c.agent_id for c in explanation.candidates if c.eligible]
    assert eligible == ["a", "b"]
    first = explanation.candidates[0]
    assert first.rank == (0.0, scheduler.agent_state("a").idle_us - 0)  # its own load taken off
    assert first.rank_text is not None
    assert first.rank_text.startswith("load ratio 0")
    assert explanation.summary.startswith("a holds it: least-load ranks it first")
    assert "next is b" in explanation.summary
    assert explanation.candidates[-1].reasons == ("away",)


def test_explain_ranks_the_last_assignment_as_it_was_taken() -> None:
    scheduler = given(Scheduler(strategy=RoundRobin()), agent("a", capacity=2), agent("b"))
    arrive(scheduler, "c1")
    # a's turn moved on when it took c1; the explanation ranks the turn it had
    explanation = scheduler.explain("c1")
    assert explanation.winner == "a"
    assert explanation.summary.startswith("a holds it: round-robin ranks it first")
    assert scheduler.agent_state("a").turn == 1  # and leaves the state as it was


def test_explain_says_when_the_holder_is_not_the_strategys_choice() -> None:
    scheduler = given(Scheduler(strategy=LeastLoad()), agent("a", capacity=2), agent("b"))
    arrive(scheduler, "c1", "c2")  # a: c1, b: c2
    scheduler.assign("c1", "b", at=at(5), overflow=True)
    explanation = scheduler.explain("c1")
    assert explanation.holder == "b"
    assert explanation.winner == "a"
    assert "a person's choice" in explanation.summary


def test_explain_marks_declined_agents_and_ranks_them_last() -> None:
    scheduler = given(
        Scheduler(strategy=LeastLoad()), agent("a", capacity=2), agent("b", capacity=4)
    )
    arrive(scheduler, "c1")  # a
    scheduler.no_answer("c1", "a", at=at(5))  # -> b
    explanation = scheduler.explain("c1")
    eligible = [(c.agent_id, c.declined) for c in explanation.candidates if c.eligible]
    assert eligible == [("b", False), ("a", True)]
    assert explanation.winner == "b"


def test_explain_counts_the_conversations_ahead_in_queue_order() -> None:
    scheduler = Scheduler()
    arrive(scheduler, "c2", "c3")
    scheduler.arrive(conversation("c1", 0), at=at(5))  # same order key as c2
    arrive(scheduler, "vip", plan="enterprise", when=10)
    order = scheduler.waiting()
    assert order[0] == "vip"
    assert set(order[1:3]) == {"c1", "c2"}  # the tie goes by queue_key
    assert [scheduler.explain(cid).ahead for cid in order] == [0, 1, 2, 3]
    assert "no agents" in scheduler.explain("c1").summary


def test_explain_does_not_change_the_state() -> None:
    scheduler = given(Scheduler(), agent("a", capacity=2), agent("b"))
    arrive(scheduler, "c1", "c2", "c3")
    before = [(s.id, s.load, dict(s.channel_load)) for s in scheduler.agents()]
    for cid in ("c1", "c2", "c3"):
        scheduler.explain(cid)
    assert [(s.id, s.load, dict(s.channel_load)) for s in scheduler.agents()] == before


# -- restore ----------------------------------------------------------------------------


def routing_records(scheduler: Scheduler, arrivals: dict[str, Routing]) -> list[Routing]:
    records = []
    for cid, routing in arrivals.items():
        try:
            holder = scheduler.holder(cid)
        except NotFound:
            continue
        records.append(
            attrs.evolve(
                routing,
                agent=holder,
                assigned_at=None if holder is None else at(0),
                overflow=scheduler.overflow(cid),
                declined=scheduler.declined(cid),
            )
        )
    return records


def test_a_restored_scheduler_makes_the_same_decisions() -> None:
    make = {
        "strategy": RoundRobin(),
        "group_strategies": {"vip": SkillBased(spread=True)},
        "policy": QueuePolicy(aging=timedelta(minutes=2)),
    }
    live = Scheduler(**make)
    team = [
        agent("a", capacity=2, skills={"tech": 2}, groups=("vip",)),
        agent("b", capacity=1, skills={"tech": 5}),
        agent("c", capacity=3, channel_capacity={"email": 1}, groups=("vip",),
              skills={"tech": 1}),
    ]
    given(live, *team)
    arrivals: dict[str, Routing] = {}
    for n in range(12):
        fields: dict[str, Any] = {}
        if n % 3 == 0:
            fields["group"] = "vip"
        if n % 4 == 1:
            fields["channel"] = "email"
        if n % 5 == 2:
            fields["skills"] = ("tech",)
        routing = conversation(f"c{n:02d}", n * 30, plan=("smb", "enterprise")[n % 2], **fields)
        arrivals[routing.conversation_id] = routing
        live.arrive(routing, at=at(n * 30))
    live.set_presence("b", OFFLINE, at=at(400))
    live.no_answer("c00", live.holder("c00") or "a", at=at(410))
    live.assign("c11", "c", at=at(420), overflow=True)
    live.close("c01", at=at(430))

    restored = Scheduler.restore(
        [live.agent_record(s.id) for s in live.agents()],
        routing_records(live, arrivals),
        **make,
    )
    assert restored.waiting() == live.waiting()

    def script(s: Scheduler) -> list[list[Decision]]:
        return [
            s.set_presence("b", ONLINE, at=at(500)),
            s.close("c00", at=at(510)),
            s.arrive(conversation("late", 520, group="vip"), at=at(520)),
            s.requeue("c11", at=at(530)),
            s.put_agent(agent("d", capacity=2), at=at(540)),
            s.close(s.held_by("a") and sorted(s.held_by("a"))[0], at=at(550)),
            s.set_presence("c", OFFLINE, at=at(560)),
        ]

    assert script(restored) == script(live)
    for state in live.agents():
        assert restored.held_by(state.id) == state.held
        assert restored.agent_record(state.id) == live.agent_record(state.id)


def test_restore_places_assigned_conversations_whatever_the_capacity() -> None:
    restored = Scheduler.restore(
        [agent("a", turn=3, idle_since=at(5))],
        [
            conversation("c1", agent="a", assigned_at=at(1)),
            conversation("c2", 1, agent="a", assigned_at=at(2), overflow=True),
            conversation("c3", 2),
        ],
    )
    assert restored.held_by("a") == {"c1", "c2"}
    assert restored.overflow("c2")
    assert restored.waiting() == ["c3"]
    assert restored.agent_state("a").turn == 3
    assert pairs(restored.close("c1", at=at(10))) == []
    assert pairs(restored.close("c2", at=at(11))) == [("c3", "a")]
    assert restored.agent_state("a").turn == 4


def test_restore_refuses_a_conversation_held_by_an_unknown_agent() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Scheduler.restore([], [conversation("c1", agent="ghost", assigned_at=at(1))])
    assert excinfo.value.field == "routings"


def test_restore_refuses_duplicate_records() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Scheduler.restore([agent("a"), agent("a")], [])
    assert excinfo.value.field == "agents"
    with pytest.raises(ValidationError) as excinfo:
        Scheduler.restore([], [conversation("c1"), conversation("c1", 5)])
    assert excinfo.value.field == "routings"


def test_agent_record_carries_the_turn_and_idle_instant() -> None:
    scheduler = given(Scheduler(), agent("a", capacity=2))
    assert scheduler.agent_record("a").turn == 0
    arrive(scheduler, "c1", when=30)
    record = scheduler.agent_record("a")
    assert (record.turn, record.idle_since) == (1, at(30))
    assert record.capacity == 2


# -- custom strategies ------------------------------------------------------------------


@attrs.frozen
class Alphabetical:
    """Rank-only: the agent whose id sorts last wins."""

    name: str = "reverse-alphabetical"

    def rank(self, agent: AgentState, need: Need) -> tuple[Any, ...]:
        return (tuple(-ord(ch) for ch in agent.id),)

    def describe(self, rank: tuple[Any, ...]) -> str:
        return "by name"


def test_a_rank_only_strategy_works_through_the_scan_path() -> None:
    strategy = Alphabetical()
    assert isinstance(strategy, Strategy)
    assert not isinstance(strategy, IndexedStrategy)
    scheduler = given(Scheduler(strategy=strategy), *(agent(a, capacity=2) for a in "abc"))
    assert [d.agent_id for d in arrive(scheduler, *(f"c{n}" for n in range(7)))] == list(
        "ccbbaa"
    )
    assert scheduler.waiting() == ["c6"]
    assert pairs(scheduler.close("c2", at=at(10))) == [("c6", "b")]
    assert scheduler.explain("c6").candidates[0].rank_text == "by name"


def test_a_rank_only_strategy_as_a_group_strategy() -> None:
    scheduler = given(
        Scheduler(strategy=LeastLoad(), group_strategies={"vip": Alphabetical()}),
        *(agent(a, capacity=3, groups=("vip",)) for a in "abc"),
    )
    assert [d.agent_id for d in arrive(scheduler, "v1", "v2", group="vip")] == ["c", "c"]
    assert [d.agent_id for d in arrive(scheduler, "u1", "u2", when=5)] == ["a", "b"]


def test_a_rank_only_strategy_respects_declines() -> None:
    scheduler = given(Scheduler(strategy=Alphabetical()), agent("a"), agent("b"))
    arrive(scheduler, "c1")
    assert pairs(scheduler.no_answer("c1", "b", at=at(1))) == [("c1", None), ("c1", "a")]


# -- serialization of decisions ----------------------------------------------------------


def test_every_kind_of_decision_the_scheduler_makes_round_trips_through_json() -> None:
    scheduler = given(Scheduler(), agent("a"), agent("b", presence=AWAY, capacity=2))
    made = arrive(scheduler, "c1", "c2")  # "auto" (the hot path's tuple.__new__)
    made += scheduler.assign("c2", "b", at=at(5))  # "manual"
    made += scheduler.assign("c2", "a", at=at(6), overflow=True)  # "transfer", overflow
    made += scheduler.no_answer("c1", "a", at=at(7))  # back to the queue
    made += scheduler.set_presence("a", OFFLINE, at=at(8))  # "agent_offline"
    assert {d.reason for d in made} >= {"auto", "manual", "transfer", "no_answer", "agent_offline"}
    assert any(d.overflow for d in made)
    for decision in made:
        data = json.loads(json.dumps(to_dict(decision)))
        assert set(data) == set(Decision._fields)
        assert from_dict(Decision, data) == decision
