"""List and board views of tasks.

``TaskQuery`` defines which tasks match and in what order, once, for every
adapter: an adapter may translate it to SQL, but must return what
``TaskQuery.matches`` and ``TaskQuery.sort_key`` define.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import attrs

from cxflow import _validate as v
from cxflow.errors import ValidationError
from cxflow.flows.model import Flow, Status
from cxflow.priority import to_optional_priority
from cxflow.tasks.model import Priority, Task

__all__ = ["Board", "BoardColumn", "Page", "TaskQuery", "TaskSort", "board_order", "build_board"]

MAX_PAGE_SIZE = 1000
MAX_OFFSET = 1_000_000_000
"""The largest ``TaskQuery.offset`` (every SQL engine takes it as an integer)."""


class TaskSort(enum.Enum):
    """Sort orders of the list view (ties broken by task id).

    ``TaskQuery.descending`` reverses an order, except that tasks without a
    due date stay after those with one (within each priority for
    ``PRIORITY``): a descending due-date list starts with the latest due date,
    not with the tasks that have none."""

    PRIORITY = "priority"
    """High first, then earliest due date (no due date last), then oldest.
    Descending: low first, then latest due date (no due date still last),
    then newest."""
    DUE_AT = "due_at"
    """Earliest due date first; tasks without a due date last (oldest first).
    Descending: latest due date first; tasks without one still last (newest
    first)."""
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    TITLE = "title"


def _to_sort(value: TaskSort | str) -> TaskSort:
    """Converter: a ``TaskSort`` or its value; anything else is left for the validator."""
    result: Any = v.to_enum(TaskSort)(value)
    return result  # type: ignore[no-any-return]


def _optional_bool(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, bool):
        raise ValidationError(attribute.name, f"expected true, false or None, got {v.shown(value)}")


def _due_key(task: Task, descending: bool = False) -> tuple[bool, datetime]:
    """(after the dated ones, due date or creation) for a sort that is
    ``reverse=descending``: tasks without a due date sort last either way."""
    if task.due_at is None:
        return (not descending, task.created_at)
    return (descending, task.due_at)


def board_order(task: Task) -> tuple[Any, ...]:
    """The board's column order: priority, due date (none last), creation, id."""
    return (task.priority.rank, _due_key(task), task.created_at, task.id)


@attrs.frozen(kw_only=True)
class TaskQuery:
    """Filters, order and page of the list view.

    Text filters are checked by ``check_filter`` (text a store can compare:
    a value no record holds matches nothing); ``priority`` and ``sort`` take
    a member or its value. ``None`` means "any" for every filter except ``deleted``, whose default
    ``False`` hides soft-deleted tasks (``True``: only deleted; ``None``: both).
    The ``overdue`` filter needs ``at``, the instant it is evaluated for.
    ``descending`` reverses the ``sort`` order, keeping tasks without a due
    date last (see ``TaskSort``).
    """

    flow_id: str | None = attrs.field(default=None, validator=v.optional_filter)
    statuses: tuple[str, ...] | None = attrs.field(
        default=None, converter=v.optional_tuple
    )
    assignee: str | None = attrs.field(default=None, validator=v.optional_filter)
    priority: Priority | None = attrs.field(
        default=None, converter=to_optional_priority, validator=v.optional_enum_of(Priority)
    )
    """A ``Priority`` or its value (``"high"``)."""
    conversation_id: str | None = attrs.field(default=None, validator=v.optional_filter)
    overdue: bool | None = attrs.field(default=None, validator=_optional_bool)
    at: datetime | None = attrs.field(
        default=None, converter=v.optional_to_utc, validator=v.optional_aware
    )
    deleted: bool | None = attrs.field(default=False, validator=_optional_bool)
    sort: TaskSort = attrs.field(
        default=TaskSort.PRIORITY, converter=_to_sort, validator=v.enum_of(TaskSort)
    )
    """A ``TaskSort`` or its value (``"due_at"``)."""
    descending: bool = attrs.field(default=False, validator=v.boolean)
    offset: int = attrs.field(default=0, validator=v.int_between(0, MAX_OFFSET))
    limit: int = 50

    def __attrs_post_init__(self) -> None:
        if self.statuses is not None and (
            not isinstance(self.statuses, tuple)
            or not all(isinstance(key, str) for key in self.statuses)
        ):
            raise ValidationError("statuses", "expected a list of status keys or None")
        if self.statuses is not None:
            for index, key in enumerate(self.statuses):
                v.check_filter(key, f"statuses[{index}]")
        if self.overdue is not None and self.at is None:
            raise ValidationError("at", "the overdue filter needs the instant to evaluate it at")
        if type(self.limit) is not int or not 1 <= self.limit <= MAX_PAGE_SIZE:
            raise ValidationError("limit", f"must be an integer from 1 to {MAX_PAGE_SIZE}")

    def matches(self, task: Task) -> bool:
        """True when ``task`` passes every filter."""
        if self.deleted is not None and task.deleted != self.deleted:
            return False
        if self.flow_id is not None and task.flow_id != self.flow_id:
            return False
        if self.statuses is not None and task.status not in self.statuses:
            return False
        if self.assignee is not None and task.assignee != self.assignee:
            return False
        if self.priority is not None and task.priority is not self.priority:
            return False
        if self.conversation_id is not None and task.conversation_id != self.conversation_id:
            return False
        if self.overdue is not None:
            assert self.at is not None
            if task.is_overdue(self.at) != self.overdue:
                return False
        return True

    def sort_key(self, task: Task) -> tuple[Any, ...]:
        """The key ``apply`` sorts by, with ``reverse=self.descending``. It
        depends on ``descending`` only to keep tasks without a due date last."""
        match self.sort:
            case TaskSort.PRIORITY:
                return (
                    task.priority.rank, _due_key(task, self.descending), task.created_at, task.id
                )
            case TaskSort.DUE_AT:
                return (_due_key(task, self.descending), task.id)
            case TaskSort.CREATED_AT:
                return (task.created_at, task.id)
            case TaskSort.UPDATED_AT:
                return (task.updated_at, task.id)
            case TaskSort.TITLE:
                return (task.title.casefold(), task.id)
        raise AssertionError(self.sort)  # pragma: no cover

    def apply(self, tasks: Iterable[Task]) -> Page:
        """Filter, sort and page ``tasks`` (the reference implementation adapters match)."""
        found = sorted(
            (t for t in tasks if self.matches(t)), key=self.sort_key, reverse=self.descending
        )
        return Page(
            items=tuple(found[self.offset : self.offset + self.limit]),
            total=len(found),
            offset=self.offset,
            limit=self.limit,
        )


@attrs.frozen(kw_only=True)
class Page:
    """One page of a list view: ``items`` and the ``total`` number of matches."""

    items: tuple[Task, ...]
    total: int
    offset: int
    limit: int

    @property
    def has_more(self) -> bool:
        """True when matches remain after this page."""
        return self.offset + len(self.items) < self.total


@attrs.frozen(kw_only=True)
class BoardColumn:
    """The tasks sitting in one enabled status, in board order."""

    status: Status
    tasks: tuple[Task, ...]


@attrs.frozen(kw_only=True)
class Board:
    """A flow's board: one column per enabled status, in the flow's order."""

    flow: Flow
    columns: tuple[BoardColumn, ...]

    def column(self, key: str) -> BoardColumn:
        """The column of status ``key``; ``ValidationError`` when not on the board."""
        for column in self.columns:
            if column.status.key == key:
                return column
        raise ValidationError("status", f"{key!r} is not an enabled status of {self.flow.id!r}")


def build_board(flow: Flow, tasks: Iterable[Task]) -> Board:
    """Group the live tasks of ``flow`` by enabled status, each column in
    ``board_order``. Tasks of other flows, deleted tasks and tasks in a status
    that is not enabled in ``flow`` are left out."""
    grouped: dict[str, list[Task]] = {s.key: [] for s in flow.statuses if s.enabled}
    for task in tasks:
        if task.flow_id == flow.id and not task.deleted and task.status in grouped:
            grouped[task.status].append(task)
    return Board(
        flow=flow,
        columns=tuple(
            BoardColumn(status=s, tasks=tuple(sorted(grouped[s.key], key=board_order)))
            for s in flow.statuses
            if s.enabled
        ),
    )
