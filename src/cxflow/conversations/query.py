"""Finding conversations and customers (room tags, customer tags, state)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from cxflow import _validate as v
from cxflow.conversations.model import Conversation, ConversationState, Customer
from cxflow.errors import ValidationError

__all__ = ["ConversationQuery", "CustomerQuery"]

MAX_RESULTS = 1000


def _check_limit(limit: object) -> None:
    if type(limit) is not int or not 1 <= limit <= MAX_RESULTS:
        raise ValidationError("limit", f"must be an integer from 1 to {MAX_RESULTS}")


def _to_state(value: ConversationState | str | None) -> ConversationState | None:
    """Converter: a state or its value; anything else is left for the check below."""
    result: Any = v.to_enum(ConversationState)(value)
    return result  # type: ignore[no-any-return]


@attrs.frozen(kw_only=True)
class ConversationQuery:
    """Filters for conversations; ``None`` means "any". Results are ordered by
    ``opened_at`` then id and capped at ``limit``."""

    customer_id: str | None = attrs.field(default=None, validator=v.optional_filter)
    state: ConversationState | None = attrs.field(default=None, converter=_to_state)
    """A ``ConversationState`` or its value (``"open"``)."""
    channel: str | None = attrs.field(default=None, validator=v.optional_filter)
    assignee: str | None = attrs.field(default=None, validator=v.optional_filter)
    room_tag: str | None = attrs.field(default=None, validator=v.optional_filter)
    limit: int = 100

    def __attrs_post_init__(self) -> None:
        if self.state is not None and not isinstance(self.state, ConversationState):
            raise ValidationError("state", f"expected a ConversationState, got {self.state!r}")
        _check_limit(self.limit)

    def matches(self, conversation: Conversation) -> bool:
        """True when ``conversation`` passes every filter."""
        return (
            (self.customer_id is None or conversation.customer_id == self.customer_id)
            and (self.state is None or conversation.state is self.state)
            and (self.channel is None or conversation.channel == self.channel)
            and (self.assignee is None or conversation.assignee == self.assignee)
            and (self.room_tag is None or self.room_tag in conversation.room_tags)
        )

    def apply(self, conversations: Iterable[Conversation]) -> list[Conversation]:
        """Filter, order and cap (the reference semantics adapters match)."""
        found = sorted(
            (c for c in conversations if self.matches(c)), key=lambda c: (c.opened_at, c.id)
        )
        return found[: self.limit]


@attrs.frozen(kw_only=True)
class CustomerQuery:
    """Customers carrying ``tag`` (or all), ordered by id, capped at ``limit``."""

    tag: str | None = attrs.field(default=None, validator=v.optional_filter)
    limit: int = 100

    def __attrs_post_init__(self) -> None:
        _check_limit(self.limit)

    def matches(self, customer: Customer) -> bool:
        """True when ``customer`` passes the filter."""
        return self.tag is None or self.tag in customer.tags

    def apply(self, customers: Iterable[Customer]) -> list[Customer]:
        """Filter, order and cap (the reference semantics adapters match)."""
        return sorted((c for c in customers if self.matches(c)), key=lambda c: c.id)[: self.limit]
