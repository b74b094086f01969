"""Auto-close: close a conversation after a silence, per tenant policy (pure).

Two rules, each on or off with its own duration ``after`` (T):

- ``AGENT_SILENCE`` ("agent did not answer"): the customer spoke last and no
  agent replied within T of the customer's last message;
- ``CUSTOMER_SILENCE`` ("customer did not answer"): an agent spoke last and the
  customer stayed silent for T after the agent's last reply.

"Spoke" means a counted message (see :mod:`cxflow.conversations.commands`):
bot, system and automatic messages (greetings, auto-replies) neither start,
move nor stop these timers, and never count as an agent answer. T runs from
10 minutes to 6 days 23 hours 50 minutes in 10-minute steps.

At most one rule applies at a time (the one the last speaker selects), so a
conversation needs one timer, :func:`autoclose_timer_id`. A host (or the
service) keeps it in step with :func:`due` after every change to the
conversation or the policy: schedule or move it to ``due(...).deadline``, or
cancel it when ``due`` is ``None``. When it fires, :func:`still_due` re-checks
the situation and :func:`close_by_rule` closes.

Waiting status, assignee and business hours do not affect auto-close.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import attrs

from cxflow import _validate as v
from cxflow.conversations.commands import _close
from cxflow.conversations.model import AuthorKind, Conversation, ConversationState
from cxflow.errors import ValidationError
from cxflow.events import CloseMessageRequested, Event, SurveyRequested
from cxflow.timers.model import subject_timer_id

__all__ = [
    "AUTOCLOSE_TIMER_KIND",
    "MAX_AFTER",
    "MIN_AFTER",
    "STEP",
    "AutoCloseDue",
    "AutoClosePolicy",
    "AutoCloseRule",
    "AutoCloseSetting",
    "autoclose_timer_id",
    "check_after",
    "close_by_rule",
    "due",
    "still_due",
]

MIN_AFTER = timedelta(minutes=10)
"""The shortest allowed T."""
MAX_AFTER = timedelta(days=6, hours=23, minutes=50)
"""The longest allowed T."""
STEP = timedelta(minutes=10)
"""T is a whole multiple of this."""

AUTOCLOSE_TIMER_KIND = "autoclose"
"""The ``Timer.kind`` of auto-close timers."""

_RANGE = "from 10 minutes to 6 days 23 hours 50 minutes, in 10-minute steps"


class AutoCloseRule(enum.Enum):
    """Which silence closes the conversation."""

    AGENT_SILENCE = "agent_silence"
    """The customer spoke last; no agent answered within T."""
    CUSTOMER_SILENCE = "customer_silence"
    """An agent spoke last; the customer stayed silent for T."""


def check_after(value: object, field: str) -> timedelta:
    """Return ``value`` if it is an allowed T, else raise ``ValidationError`` naming
    ``field`` and the allowed range."""
    if not isinstance(value, timedelta):
        raise ValidationError(
            field, f"expected a duration (timedelta) {_RANGE}, got {type(value).__name__}"
        )
    if not MIN_AFTER <= value <= MAX_AFTER or value % STEP:
        raise ValidationError(field, f"{value} is not allowed; choose a duration {_RANGE}")
    return value


def _after(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    check_after(value, attribute.name)


@attrs.frozen(kw_only=True)
class AutoCloseSetting:
    """One rule's setting: on or off, and its T (kept while off)."""

    enabled: bool = attrs.field(default=False, validator=v.boolean)
    after: timedelta = attrs.field(default=timedelta(days=1), validator=_after)


def _setting(value: AutoCloseSetting | timedelta | None, field: str) -> AutoCloseSetting:
    if value is None:
        return AutoCloseSetting()
    if isinstance(value, AutoCloseSetting):
        return value
    return AutoCloseSetting(enabled=True, after=check_after(value, f"{field}.after"))


def _agent_silence(value: AutoCloseSetting | timedelta | None) -> AutoCloseSetting:
    return _setting(value, "agent_silence")


def _customer_silence(value: AutoCloseSetting | timedelta | None) -> AutoCloseSetting:
    return _setting(value, "customer_silence")


@attrs.frozen(kw_only=True)
class AutoClosePolicy:
    """A tenant's auto-close settings.

    ``agent_silence`` and ``customer_silence`` take an ``AutoCloseSetting``, a
    ``timedelta`` (the rule on, with that T) or ``None`` (off). A bad T given as
    a ``timedelta`` is reported on ``"agent_silence.after"`` /
    ``"customer_silence.after"``.
    """

    agent_silence: AutoCloseSetting = attrs.field(
        factory=AutoCloseSetting, converter=_agent_silence
    )
    customer_silence: AutoCloseSetting = attrs.field(
        factory=AutoCloseSetting, converter=_customer_silence
    )
    send_close_message: bool = attrs.field(default=True, validator=v.boolean)
    """Emit a close-message intent on every auto-close."""
    survey_enabled: bool = attrs.field(default=False, validator=v.boolean)
    """Emit a satisfaction-survey intent on every auto-close."""

    def setting(self, rule: AutoCloseRule) -> AutoCloseSetting:
        """The setting of ``rule``."""
        if rule is AutoCloseRule.AGENT_SILENCE:
            return self.agent_silence
        if rule is AutoCloseRule.CUSTOMER_SILENCE:
            return self.customer_silence
        raise ValidationError("rule", f"expected an AutoCloseRule, got {rule!r}")


class AutoCloseDue(NamedTuple):
    """The rule whose timer should be pending, and its deadline (aware UTC)."""

    rule: AutoCloseRule
    deadline: datetime


def _policy(value: object) -> AutoClosePolicy:
    if not isinstance(value, AutoClosePolicy):
        raise ValidationError("policy", f"expected an AutoClosePolicy, got {type(value).__name__}")
    return value


def _rule(value: object) -> AutoCloseRule:
    return v.check_enum(value, AutoCloseRule, "rule")


def due(policy: AutoClosePolicy, conversation: Conversation) -> AutoCloseDue | None:
    """Which rule's timer should be pending now, and its deadline; ``None`` when
    none should (closed conversation, nobody counted spoke since it (re)opened,
    or the relevant rule is off).

    The deadline is the last speaker's last counted message + that rule's T: the
    customer's last message for ``AGENT_SILENCE``, the agent's last reply for
    ``CUSTOMER_SILENCE``. It may already be past (e.g. after a policy change):
    the timer is then due at once.
    """
    _policy(policy)
    if conversation.state is not ConversationState.OPEN:
        return None
    speaker = conversation.last_speaker
    if speaker is AuthorKind.CUSTOMER:
        setting, since = policy.agent_silence, conversation.last_customer_message_at
        rule = AutoCloseRule.AGENT_SILENCE
    elif speaker is AuthorKind.AGENT:
        setting, since = policy.customer_silence, conversation.last_agent_reply_at
        rule = AutoCloseRule.CUSTOMER_SILENCE
    else:
        return None
    if not setting.enabled or since is None:
        return None
    return AutoCloseDue(rule, since + setting.after)


def still_due(
    policy: AutoClosePolicy, conversation: Conversation, rule: AutoCloseRule, at: datetime
) -> bool:
    """At fire time ``at``: is ``rule`` still the pending rule and its deadline
    reached? A fire for a stale situation (someone spoke since, the rule was
    switched off or shortened the other way, the conversation closed) must not
    close."""
    at = v.check_instant(at, "at")
    rule = _rule(rule)
    current = due(policy, conversation)
    return current is not None and current.rule is rule and current.deadline <= at


def autoclose_timer_id(conversation_id: str) -> str:
    """The id of a conversation's one auto-close timer: ``"autoclose:<id>"``.

    Timer ids are at most ``MAX_ID`` (200) characters: for a conversation id too long for
    that, ``"autoclose:#<sha256 of the id>"`` (still one stable id per
    conversation).
    """
    return subject_timer_id(AUTOCLOSE_TIMER_KIND, v.check_id(conversation_id, "conversation_id"))


def close_by_rule(
    policy: AutoClosePolicy,
    conversation: Conversation,
    rule: AutoCloseRule,
    *,
    at: datetime,
    by: str = "cxflow",
) -> tuple[Conversation, list[Event]]:
    """Close ``conversation`` by ``rule`` at ``at``; no-op when already closed.

    It does not re-check the situation: call :func:`still_due` first. Events, in
    order:

    - ``ConversationClosed`` with ``reason="autoclose:<rule value>"`` and
      ``rule``; ``no_agent_reply=True`` when the rule is ``AGENT_SILENCE`` and no
      human agent ever replied in this conversation;
    - ``CloseMessageRequested`` unless ``policy.send_close_message`` is off;
      ``deliver=False`` (and ``no_agent_reply=True``) in the no-agent-reply
      case: agents see it, the customer is not sent it (seed: KakaoTalk
      channel rooms nobody answered are not billed and get no close message);
    - ``SurveyRequested`` when ``policy.survey_enabled``, with the same
      ``deliver``.
    """
    _policy(policy)
    rule = _rule(rule)
    at = v.check_instant(at, "at")
    by = v.actor(by)
    if conversation.state is not ConversationState.OPEN:
        return conversation, []
    no_agent_reply = rule is AutoCloseRule.AGENT_SILENCE and not conversation.agent_ever_replied
    closed, events = _close(
        conversation,
        at=at,
        by=by,
        reason=f"autoclose:{rule.value}",
        rule=rule.value,
        no_agent_reply=no_agent_reply,
    )
    base: dict[str, Any] = {
        "at": at,
        "by": by,
        "conversation_id": conversation.id,
        "customer_id": conversation.customer_id,
        "rule": rule.value,
        "deliver": not no_agent_reply,
    }
    if policy.send_close_message:
        events.append(CloseMessageRequested(no_agent_reply=no_agent_reply, **base))
    if policy.survey_enabled:
        events.append(SurveyRequested(**base))
    return closed, events
