"""Default flow templates, ready to use or to copy and edit.

Each template is a plain ``Flow`` (version 1) built from the
customer-service workflows of seed 002: exchange/return, delivery inquiry, B2B
partnership inquiry, product feedback loop, order issue and onboarding. Every
template:

- has at most ``MAX_STATUSES`` statuses, all enabled;
- starts in a ``NOT_STARTED`` status and allows any move (board drag and drop);
- has a ``WAITING`` status where the task waits on the customer or a third party
  (courier, warehouse, product team, partner), so SLA clocks pause there;
- ends in a successful and an unsuccessful completed status;
- carries to-do templates, the important ones required before completion.

Materials (return policies, partner decks, guides) are tenant-specific and left
out; add them with ``Flow.revise``.

>>> flow = default_flow("exchange_return", flow_id="returns-eu", name="EU returns")
>>> flow.initial_status.key
'received'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from cxflow import _validate as v
from cxflow.errors import ValidationError
from cxflow.flows.model import Flow, Status, StatusKind, TodoTemplate

__all__ = [
    "DEFAULT_TEMPLATES",
    "b2b_partnership",
    "default_flow",
    "delivery_inquiry",
    "exchange_return",
    "onboarding",
    "order_issue",
    "product_feedback",
]

_NOT_STARTED = StatusKind.NOT_STARTED
_IN_PROGRESS = StatusKind.IN_PROGRESS
_WAITING = StatusKind.WAITING
_SUCCESS = StatusKind.COMPLETED_SUCCESS
_FAILURE = StatusKind.COMPLETED_FAILURE


def _todo(text: str, *, required: bool = False) -> TodoTemplate:
    return TodoTemplate(text=text, required=required)


def _status(key: str, label: str, kind: StatusKind, *todos: TodoTemplate) -> Status:
    return Status(key=key, label=label, kind=kind, todos=todos)


def _build(
    template: str,
    *,
    flow_id: str | None,
    name: str | None,
    default_name: str,
    description: str,
    statuses: tuple[Status, ...],
) -> Flow:
    return Flow(
        id=template if flow_id is None else flow_id,
        name=default_name if name is None else name,
        description=description,
        statuses=statuses,
    )


def exchange_return(*, flow_id: str | None = None, name: str | None = None) -> Flow:
    """Exchange or return of a product: check eligibility, collect, inspect, resolve."""
    return _build(
        "exchange_return",
        flow_id=flow_id,
        name=name,
        default_name="Exchange / return",
        description="A customer asks to exchange or return a product.",
        statuses=(
            _status(
                "received",
                "Request received",
                _NOT_STARTED,
                _todo("Confirm the order number and the item", required=True),
            ),
            _status(
                "reviewing",
                "Checking eligibility",
                _IN_PROGRESS,
                _todo("Check the return window and policy", required=True),
                _todo("Ask for photos of the item if it is damaged"),
            ),
            _status(
                "awaiting_item",
                "Waiting for the returned item",
                _WAITING,
                _todo("Send the return label or book the pickup", required=True),
                _todo("Share the courier tracking number with the customer"),
            ),
            _status(
                "inspecting",
                "Inspecting the returned item",
                _IN_PROGRESS,
                _todo("Inspect the item's condition", required=True),
            ),
            _status(
                "resolving",
                "Sending replacement or refund",
                _IN_PROGRESS,
                _todo("Ship the replacement or issue the refund", required=True),
                _todo("Tell the customer what was done"),
            ),
            _status("completed", "Exchanged / refunded", _SUCCESS),
            _status("rejected", "Rejected", _FAILURE),
        ),
    )


def delivery_inquiry(*, flow_id: str | None = None, name: str | None = None) -> Flow:
    """Where is my order: look up the shipment, chase the courier, confirm delivery."""
    return _build(
        "delivery_inquiry",
        flow_id=flow_id,
        name=name,
        default_name="Delivery inquiry",
        description="A customer asks where an order is or when it will arrive.",
        statuses=(
            _status(
                "received",
                "Inquiry received",
                _NOT_STARTED,
                _todo("Find the order and its tracking number", required=True),
            ),
            _status(
                "tracking",
                "Checking the shipment",
                _IN_PROGRESS,
                _todo("Check the shipment status with the courier's tracking", required=True),
                _todo("Send the tracking link to the customer"),
            ),
            _status(
                "waiting_courier",
                "Waiting on the courier",
                _WAITING,
                _todo("Open an inquiry with the courier or warehouse", required=True),
            ),
            _status(
                "waiting_customer",
                "Waiting for the customer to confirm",
                _WAITING,
                _todo("Ask the customer to confirm receipt"),
            ),
            _status("delivered", "Delivered", _SUCCESS),
            _status(
                "not_delivered",
                "Lost / not delivered",
                _FAILURE,
                _todo("Hand over to the order issue flow (reship or refund)"),
            ),
        ),
    )


def b2b_partnership(*, flow_id: str | None = None, name: str | None = None) -> Flow:
    """B2B partnership or wholesale inquiry: qualify, hand to the partnerships team."""
    return _build(
        "b2b_partnership",
        flow_id=flow_id,
        name=name,
        default_name="B2B partnership inquiry",
        description="A company asks about a partnership, wholesale or a business account.",
        statuses=(
            _status(
                "received",
                "Inquiry received",
                _NOT_STARTED,
                _todo("Record the company name and a contact person", required=True),
            ),
            _status(
                "qualifying",
                "Qualifying",
                _IN_PROGRESS,
                _todo("Identify the kind of partnership and the company's size", required=True),
                _todo("Check for an existing account or earlier inquiries"),
            ),
            _status(
                "forwarded",
                "With the partnerships team",
                _IN_PROGRESS,
                _todo("Assign an owner in the partnerships team", required=True),
                _todo("Send the partner introduction materials"),
            ),
            _status(
                "waiting_partner",
                "Waiting on the partner",
                _WAITING,
                _todo("Follow up if the partner has not answered within a week"),
            ),
            _status(
                "meeting",
                "Meeting / proposal",
                _IN_PROGRESS,
                _todo("Hold the meeting and record the outcome", required=True),
            ),
            _status("agreed", "Partnership agreed", _SUCCESS),
            _status("declined", "Declined", _FAILURE),
        ),
    )


def product_feedback(*, flow_id: str | None = None, name: str | None = None) -> Flow:
    """Product feedback loop: thank, file a ticket, product team decides, follow up."""
    return _build(
        "product_feedback",
        flow_id=flow_id,
        name=name,
        default_name="Product feedback loop",
        description="A customer reports a bug, a problem with a product or an idea.",
        statuses=(
            _status(
                "received",
                "Feedback received",
                _NOT_STARTED,
                _todo("Thank the customer for the feedback", required=True),
            ),
            _status(
                "filed",
                "Ticket filed",
                _IN_PROGRESS,
                _todo("Open a ticket describing the problem", required=True),
                _todo("Assign the ticket to the product team", required=True),
            ),
            _status(
                "product_review",
                "With the product team",
                _WAITING,
                _todo("Ask the product team for an update if there is none"),
            ),
            _status(
                "follow_up",
                "Following up with the customer",
                _IN_PROGRESS,
                _todo("Tell the customer what the product team decided", required=True),
            ),
            _status("resolved", "Fixed / shipped", _SUCCESS),
            _status("shelved", "Filed for later", _FAILURE),
        ),
    )


def order_issue(*, flow_id: str | None = None, name: str | None = None) -> Flow:
    """Wrong, missing or damaged order: investigate with finance and the warehouse, fix."""
    return _build(
        "order_issue",
        flow_id=flow_id,
        name=name,
        default_name="Order issue",
        description="An order arrived wrong, incomplete, damaged, or was billed wrongly.",
        statuses=(
            _status(
                "received",
                "Issue reported",
                _NOT_STARTED,
                _todo("Confirm the order number and what went wrong", required=True),
            ),
            _status(
                "investigating",
                "Investigating",
                _IN_PROGRESS,
                _todo("Check the invoice and payment with finance", required=True),
                _todo("Check stock and the packing record with the warehouse"),
            ),
            _status(
                "waiting_customer",
                "Waiting for the customer",
                _WAITING,
                _todo("Ask for photos or the missing details"),
            ),
            _status(
                "waiting_warehouse",
                "Waiting on the warehouse",
                _WAITING,
                _todo("Request a reshipment or correction from the warehouse"),
            ),
            _status(
                "fixing",
                "Fixing the order",
                _IN_PROGRESS,
                _todo("Reship, correct the invoice or refund", required=True),
                _todo("Send the new tracking number to the customer"),
            ),
            _status("resolved", "Resolved", _SUCCESS),
            _status("cancelled", "Cancelled / unresolved", _FAILURE),
        ),
    )


def onboarding(*, flow_id: str | None = None, name: str | None = None) -> Flow:
    """Onboarding a new customer: setup e-mail, setup call, training, check-in."""
    return _build(
        "onboarding",
        flow_id=flow_id,
        name=name,
        default_name="Onboarding",
        description="A new customer has bought the product and needs to get started.",
        statuses=(
            _status(
                "purchased",
                "New customer",
                _NOT_STARTED,
                _todo("Send the setup e-mail with useful resources", required=True),
            ),
            _status(
                "monitoring",
                "Monitoring first activity",
                _IN_PROGRESS,
                _todo("Reach out if the customer has not taken the first step"),
            ),
            _status(
                "setup_call",
                "Setup call",
                _IN_PROGRESS,
                _todo("Agree on goals and milestones with the customer", required=True),
            ),
            _status(
                "waiting_customer",
                "Waiting on the customer",
                _WAITING,
                _todo("Send guides or videos for the next step"),
            ),
            _status(
                "training",
                "Implementation and training",
                _IN_PROGRESS,
                _todo("Run the training session", required=True),
                _todo("Ask for feedback on the onboarding"),
            ),
            _status("onboarded", "Onboarded", _SUCCESS),
            _status("not_activated", "Did not activate", _FAILURE),
        ),
    )


DEFAULT_TEMPLATES: Mapping[str, Callable[..., Flow]] = MappingProxyType(
    {
        "exchange_return": exchange_return,
        "delivery_inquiry": delivery_inquiry,
        "b2b_partnership": b2b_partnership,
        "product_feedback": product_feedback,
        "order_issue": order_issue,
        "onboarding": onboarding,
    }
)
"""Template name -> builder taking keyword-only ``flow_id`` and ``name``."""


def default_flow(template: str, *, flow_id: str | None = None, name: str | None = None) -> Flow:
    """Build the default flow ``template``, optionally with its own id and name.

    Raises ``ValidationError`` (field ``template``) for an unknown
    template, naming the known ones.
    """
    builder = DEFAULT_TEMPLATES.get(template) if isinstance(template, str) else None
    if builder is None:
        known = ", ".join(sorted(DEFAULT_TEMPLATES))
        raise ValidationError("template", f"unknown template {v.shown(template)}; known: {known}")
    return builder(flow_id=flow_id, name=name)
