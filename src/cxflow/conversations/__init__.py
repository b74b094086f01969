"""Conversations and customers: message bookkeeping, tags and auto-close.

The service (``ConversationService``) is exported from ``cxflow``; this package
holds the pure core, so storage adapters can import it without cycles.
"""

from cxflow.conversations.autoclose import (
    AutoCloseDue,
    AutoClosePolicy,
    AutoCloseRule,
    AutoCloseSetting,
)
from cxflow.conversations.model import AuthorKind, Conversation, ConversationState, Customer
from cxflow.conversations.query import ConversationQuery, CustomerQuery
from cxflow.conversations.settings import ConversationSettings

__all__ = [
    "AuthorKind",
    "AutoCloseDue",
    "AutoClosePolicy",
    "AutoCloseRule",
    "AutoCloseSetting",
    "Conversation",
    "ConversationQuery",
    "ConversationSettings",
    "ConversationState",
    "Customer",
    "CustomerQuery",
]
