"""``AssignmentSettings``: a tenant's routing configuration (a pure value)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import attrs

from cxflow import _validate as v
from cxflow.assignment.model import Agent, QueuePolicy, Routing
from cxflow.assignment.scheduler import Scheduler
from cxflow.assignment.strategies import LeastLoad, Strategy
from cxflow.errors import ValidationError

__all__ = ["AssignmentSettings"]


def _strategy(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Strategy):
        raise ValidationError(attribute.name, "expected a Strategy (name, rank and describe)")


def _group_strategies(
    _inst: Any, attribute: attrs.Attribute[Any], value: Any
) -> None:
    if not isinstance(value, dict):
        raise ValidationError(attribute.name, "expected a mapping of group to Strategy")
    for group, strategy in value.items():
        v.check_name(group, f"{attribute.name} key")
        if not isinstance(strategy, Strategy):
            raise ValidationError(f"{attribute.name}[{group}]", "expected a Strategy")


def _no_answer_after(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, timedelta) or not (
        timedelta(seconds=10) <= value <= timedelta(days=1)
    ):
        raise ValidationError(
            attribute.name,
            f"expected None or a duration from 10 seconds to 1 day, got {v.shown(value)}",
        )


@attrs.frozen(kw_only=True)
class AssignmentSettings:
    """A tenant's routing: the default ``strategy``, strategies of single
    groups (``group_strategies``), the queue ``policy``, and
    ``no_answer_after``: how long an assignee may leave a conversation
    unanswered before it goes back to the queue (``None``: forever).

    ``sync_conversations``: when true and the store also keeps conversations
    (``ConversationStore``), every change of holder sets the conversation's
    ``assignee`` in the same commit, with a ``conversation.assigned`` event.
    Routed conversations without a conversation record are left alone. It
    costs one more read per decision."""

    strategy: Strategy = attrs.field(factory=LeastLoad, validator=_strategy)
    group_strategies: dict[str, Strategy] = attrs.field(
        factory=dict, converter=v.to_dict, validator=_group_strategies
    )
    policy: QueuePolicy = attrs.field(factory=QueuePolicy, validator=v.instance_of(QueuePolicy))
    no_answer_after: timedelta | None = attrs.field(default=None, validator=_no_answer_after)
    sync_conversations: bool = attrs.field(default=False, validator=v.boolean)

    def new_scheduler(
        self, agents: Iterable[Agent] = (), routings: Iterable[Routing] = ()
    ) -> Scheduler:
        """A scheduler with these settings, restored from ``agents`` and ``routings``."""
        return Scheduler.restore(
            agents,
            routings,
            strategy=self.strategy,
            group_strategies=self.group_strategies,
            policy=self.policy,
        )
