"""Tasks: the aggregate, its pure commands and its list/board views."""

from cxflow.tasks.model import Comment, Priority, StatusChange, Task, Todo
from cxflow.tasks.query import Board, BoardColumn, Page, TaskQuery, TaskSort, build_board

__all__ = [
    "Board",
    "BoardColumn",
    "Comment",
    "Page",
    "Priority",
    "StatusChange",
    "Task",
    "TaskQuery",
    "TaskSort",
    "Todo",
    "build_board",
]
