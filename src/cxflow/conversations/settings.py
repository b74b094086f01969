"""``ConversationSettings``: a tenant's conversation automation (a pure value)."""

from __future__ import annotations

import attrs

from cxflow import _validate as v
from cxflow.conversations import autoclose
from cxflow.errors import ValidationError
from cxflow.timers.sla import SlaPolicy
from cxflow.timers.triggers import TimeTrigger

__all__ = ["ConversationSettings"]


@attrs.frozen(kw_only=True)
class ConversationSettings:
    """A tenant's automation: auto-close policy, SLA policy and time triggers
    (each optional). Anything else in a slot (``sla="gold"``) is a
    ``ValidationError`` at construction."""

    autoclose: autoclose.AutoClosePolicy | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(v.instance_of(autoclose.AutoClosePolicy)),
    )
    sla: SlaPolicy | None = attrs.field(
        default=None, validator=attrs.validators.optional(v.instance_of(SlaPolicy))
    )
    triggers: tuple[TimeTrigger, ...] = attrs.field(
        default=(), converter=v.to_tuple, validator=v.tuple_of(TimeTrigger)
    )

    def __attrs_post_init__(self) -> None:
        ids = [trigger.id for trigger in self.triggers]
        if len(set(ids)) != len(ids):
            raise ValidationError("triggers", "trigger ids must be unique")
