"""The service: how hosts use flows and tasks.

``TaskService`` is a thin shell around the pure core. Each call runs as one
unit of work (``cxflow.app.unit``): it loads records from the ``Store``, runs
a command from ``cxflow.tasks.commands`` at the unit's instant and stages the
new snapshot and its events; the writer's reactors sync its SLA clock and
plan its SLA and overdue timers (``cxflow.app.reactors``), the writer commits
it all in one atomic write, then publishes the events to the sink. Hosts
that want their own orchestration can call the core directly.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import attrs

from cxflow._validate import actor, check_free_text, check_id
from cxflow.app.reactors import sla as sla_reactor
from cxflow.app.reactors import timekeeping
from cxflow.app.reactors.overdue import OVERDUE_TIMER_KIND, overdue_timer_id
from cxflow.app.reactors.sla import TASK_SLA_TIMER_KIND, task_sla_timer_id
from cxflow.app.records import RecordCache
from cxflow.app.unit import EventSink, UnitOfWork, Writer, WritesThrough, as_committed
from cxflow.app.worker import TimerHandler, UnitTimerHandler, settled
from cxflow.clock import Clock
from cxflow.errors import ConflictError, NotFound, ValidationError
from cxflow.events import Event, FlowSaved
from cxflow.flows.experiments import FlowExperiment
from cxflow.flows.model import Flow, Material
from cxflow.storage.protocols import (
    ChangeSet,
    RecordScope,
    Store,
    provides,
    require_tenant,
)
from cxflow.tasks import commands
from cxflow.tasks.model import Priority, Task
from cxflow.tasks.query import MAX_PAGE_SIZE, Board, Page, TaskQuery, build_board
from cxflow.timers.model import Timer
from cxflow.timers.sla import SlaPolicy

__all__ = [
    "OVERDUE_TIMER_KIND",
    "TASK_SLA_TIMER_KIND",
    "TaskService",
    "overdue_timer_id",
    "task_sla_timer_id",
]


def _relocations(relocate: object) -> dict[str, str]:
    """``edit_flow``'s ``relocate``: ``None`` or a mapping of status keys to
    status keys, as a new dict; ``ValidationError`` (field ``relocate``) else."""
    if relocate is None:
        return {}
    if not isinstance(relocate, Mapping):
        raise ValidationError(
            "relocate", f"expected a mapping of status keys, got {type(relocate).__name__}"
        )
    for source, target in relocate.items():
        check_free_text(source, "relocate")
        check_free_text(target, f"relocate[{source!r}]")
    return dict(relocate)


_FLOW_CACHE_SIZE = 1024
"""Flow versions kept by one service (least recently used dropped first)."""


def _new_id() -> str:
    return uuid.uuid4().hex


class TaskService(WritesThrough):
    """Flows and tasks for a host, built from a store, a clock and an event sink.

    Every method takes the tenant first. ``expected_version`` (optional on
    every task change) makes a call fail with ``ConflictError`` when the task
    changed since the caller read it.

    Every change runs as one unit of work through ``writer`` (see
    ``cxflow.app.unit``): a commit that loses a race with another writer is
    run again on fresh reads, so ``ConflictError`` reaches the caller only for
    its own stale ``expected_version`` (or when the retries run out).

    Flow versions are immutable once stored, so the service caches those it
    reads. A service bound to a host's transaction (``SqlStore(connection)``)
    should live no longer than that transaction: after a rollback it could
    otherwise keep a flow version the database no longer has.

    Built by hand, a service has a writer of its own with no reactors; a
    ``cxflow.Session`` builds it with the engine's shared writer instead.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock | None = None,
        sink: EventSink | None = None,
        new_id: Callable[[], str] = _new_id,
        sla: SlaPolicy | Callable[[str], SlaPolicy | None] | None = None,
        *,
        writer: Writer | None = None,
        records: RecordCache | None = None,
    ) -> None:
        self.store = store
        self._sla = sla
        # Flow versions: shared by the sessions of an engine on one database
        # (``RecordScope``), else kept by this service alone.
        scope = cast(RecordScope, store).record_scope() if provides(store, RecordScope) else None
        self._flows = (
            records if records is not None and scope is not None else RecordCache(_FLOW_CACHE_SIZE)
        )
        self._flow_scope = scope
        self._use_writer(
            store, clock, sink, writer,
            reactors=lambda: timekeeping(task_sla=self.sla_policy, flow=self._flow),
        )
        self._new_id = new_id

    # -- plumbing ------------------------------------------------------------------

    def _now(self) -> datetime:
        return self._writer.now()

    def _change(
        self,
        tenant: str,
        task_id: str,
        expected_version: int | None,
        command: Callable[[Task, datetime], tuple[Task, list[Event]]],
    ) -> Task:
        def build(unit: UnitOfWork) -> Task:
            task = unit.task(task_id)
            if expected_version is not None and task.version != expected_version:
                raise ConflictError(
                    f"task {task_id!r} is at v{task.version}, caller expected v{expected_version}"
                )
            updated, events = command(task, unit.at)
            if updated is task:
                unit.emit(events)
                return updated
            unit.stage_task(updated, before=task, events=events)
            return updated

        return as_committed(*self._writer.execute(tenant, build))

    def sla_policy(self, tenant: str) -> SlaPolicy | None:
        """The task SLA policy in force for ``tenant`` (``None``: no task SLA)."""
        return self._sla(tenant) if callable(self._sla) else self._sla

    def timer_handlers(self) -> dict[str, TimerHandler]:
        """Handlers for a hand-built ``TimerWorker``: the overdue marker at the
        first instant after a task's due date, and the task SLA's warning and
        breach (each returns its fire's changes with this service's reactors
        applied)."""
        return settled(self._writer, self.unit_timer_handlers())

    def unit_timer_handlers(self) -> dict[str, UnitTimerHandler]:
        """The same handlers, staging on the fire's unit of work (a
        ``cxflow.Session`` wires these: the engine's reactors follow them)."""
        return {OVERDUE_TIMER_KIND: self._on_overdue, TASK_SLA_TIMER_KIND: self._on_sla}

    def _on_sla(self, unit: UnitOfWork, timer: Timer) -> None:
        policy = self.sla_policy(unit.tenant)
        task = unit.stored_task(timer.subject_id)
        if policy is None or task is None or not task.sla:
            return
        fired = sla_reactor.fire(
            policy, task.sla, task.sla[0].metric, unit.at,
            subject=sla_reactor.TASK, subject_id=task.id,
        )
        if fired is not None:
            updated = commands.evolve_task(task, unit.at, sla=fired[0])
            unit.stage_task(updated, before=task, events=fired[1])

    def _on_overdue(self, unit: UnitOfWork, timer: Timer) -> None:
        task = unit.stored_task(timer.subject_id)
        if task is None:
            return
        updated, events = commands.raise_overdue(task, at=unit.at)
        if events:
            unit.stage_task(updated, before=task, events=events)

    def _flow(self, tenant: str, flow_id: str, version: int) -> Flow:
        """Flow ``flow_id`` at ``version``. Stored flow versions never change,
        so they are cached per (tenant, flow, version), bounded in size: in the
        engine's cache for every session on one database (``RecordScope``),
        else per service."""
        found = self._flows.flow(self._flow_scope, tenant, flow_id, version)
        if found is None:
            found = self.store.get_flow(tenant, flow_id, version)
            self._flows.put_flow(self._flow_scope, tenant, found)
        return found

    def _all_tasks(self, tenant: str, query: TaskQuery) -> Iterator[Task]:
        offset = 0
        while True:
            page = self.store.query_tasks(
                tenant, attrs.evolve(query, offset=offset, limit=MAX_PAGE_SIZE)
            )
            yield from page.items
            if not page.has_more or not page.items:
                return
            offset += len(page.items)

    # -- flows ---------------------------------------------------------------------

    def create_flow(self, tenant: str, flow: Flow, *, by: str) -> Flow:
        """Store a new flow (``flow.version`` must be 1); ConflictError if the id exists."""
        require_tenant(tenant)
        if not isinstance(flow, Flow):
            raise ValidationError("flow", "expected a Flow")
        if flow.version != 1:
            raise ValidationError("version", "a new flow starts at version 1; use edit_flow")
        by = actor(by)

        def build(unit: UnitOfWork) -> None:
            event = FlowSaved(flow_id=flow.id, version=1, at=unit.at, by=by)
            unit.add(ChangeSet(flows=(flow,), events=(event,)))

        self._writer.execute(tenant, build, retry=False)  # a duplicate id is no race
        return flow

    def edit_flow(
        self,
        tenant: str,
        flow: Flow,
        *,
        by: str,
        relocate: Mapping[str, str] | None = None,
    ) -> Flow:
        """Store ``flow`` as the next version of its flow and carry every live task
        onto it, atomically.

        Live tasks whose status is removed or disabled in ``flow`` move to
        ``relocate[status]`` (an enabled status of ``flow``), recorded in their
        history. If such tasks exist and ``relocate`` does not name a target for
        their status, nothing is written and ``ValidationError``
        (field ``relocate``) says which statuses need one. Soft-deleted tasks
        keep the version they were deleted on.
        """
        require_tenant(tenant)
        if not isinstance(flow, Flow):
            raise ValidationError("flow", "expected a Flow")
        by = actor(by)
        relocate = _relocations(relocate)

        def build(unit: UnitOfWork) -> None:
            current = self.store.get_flow(tenant, flow.id)
            if flow.version != current.version + 1:
                raise ConflictError(
                    f"flow {flow.id!r} is at v{current.version}; an edit must be "
                    f"v{current.version + 1}, got v{flow.version}"
                )
            for source, target in relocate.items():
                if not flow.has_status(target) or not flow.status(target).enabled:
                    raise ValidationError(
                        f"relocate[{source!r}]", f"{target!r} is not an enabled status of the edit"
                    )
            now = unit.at
            moved: list[tuple[Task, Task, list[Event]]] = []
            stranded: dict[str, int] = {}
            live = TaskQuery(flow_id=flow.id, deleted=False)
            for task in self._all_tasks(tenant, live):
                keeps_status = flow.has_status(task.status) and flow.status(task.status).enabled
                if keeps_status:
                    updated, task_events = commands.relocate_task(task, flow, None, by=by, at=now)
                elif task.status in relocate:
                    updated, task_events = commands.relocate_task(
                        task, flow, relocate[task.status], by=by, at=now
                    )
                else:
                    stranded[task.status] = stranded.get(task.status, 0) + 1
                    continue
                moved.append((task, updated, task_events))
            if stranded:
                detail = ", ".join(f"{key!r} ({n} task(s))" for key, n in sorted(stranded.items()))
                raise ValidationError(
                    "relocate",
                    f"live tasks sit in statuses removed or disabled by this edit: {detail}; "
                    "name the status each moves to",
                )
            used = tuple(sorted((s, t) for s, t in relocate.items()))
            saved = FlowSaved(flow_id=flow.id, version=flow.version, relocated=used, at=now, by=by)
            unit.add(ChangeSet(flows=(flow,), events=(saved,)))
            for before, after, task_events in moved:
                unit.stage_task(after, before=before, events=task_events)

        self._writer.execute(tenant, build)
        return flow

    def get_flow(self, tenant: str, flow_id: str, version: int | None = None) -> Flow:
        """Flow ``flow_id`` at ``version`` (default latest); NotFound if missing."""
        return self.store.get_flow(tenant, flow_id, version)

    def list_flows(self, tenant: str) -> list[Flow]:
        """The latest version of every flow of ``tenant``."""
        return self.store.list_flows(tenant)

    # -- tasks ---------------------------------------------------------------------

    def create_task(
        self,
        tenant: str,
        *,
        flow_id: str,
        title: str,
        by: str,
        task_id: str | None = None,
        description: str = "",
        priority: Priority = Priority.NORMAL,
        due_at: datetime | None = None,
        assignee: str | None = None,
        conversation_id: str | None = None,
        watchers: Sequence[str] = (),
        status: str | None = None,
        task_type: str | None = None,
    ) -> Task:
        """Create a task on the latest version of ``flow_id``.

        ``task_id`` defaults to a new random id; an existing id raises
        ``ConflictError``.
        """
        new_id = task_id if task_id is not None else self._new_id()

        def build(unit: UnitOfWork) -> Task:
            flow = self.store.get_flow(unit.tenant, flow_id)
            task, events = commands.create_task(
                flow=flow,
                task_id=new_id,
                title=title,
                by=by,
                at=unit.at,
                description=description,
                priority=priority,
                due_at=due_at,
                assignee=assignee,
                conversation_id=conversation_id,
                watchers=watchers,
                status=status,
                task_type=task_type,
            )
            if task_id is not None and self._task_exists(unit.tenant, task_id):
                raise ConflictError(f"task {task_id!r} already exists")
            unit.stage_task(task, before=None, events=events)
            return task

        return as_committed(*self._writer.execute(tenant, build))

    def _task_exists(self, tenant: str, task_id: str) -> bool:
        try:
            self.store.get_task(tenant, task_id)
        except NotFound:
            return False
        return True

    def create_task_in_experiment(
        self,
        tenant: str,
        experiment: FlowExperiment,
        *,
        title: str,
        by: str,
        task_id: str | None = None,
        **fields: Any,
    ) -> Task:
        """Create a task of ``experiment.task_type`` on the flow the experiment
        chooses for its id (deterministic per id). Other fields as in
        ``create_task``."""
        if not isinstance(experiment, FlowExperiment):
            raise ValidationError("experiment", "expected a FlowExperiment")
        for name in ("flow_id", "task_type"):
            if name in fields:
                raise ValidationError(name, "set by the experiment; do not pass it")
        task_id = check_id(task_id if task_id is not None else self._new_id(), "task_id")
        return self.create_task(
            tenant,
            flow_id=experiment.choose(task_id),
            title=title,
            by=by,
            task_id=task_id,
            task_type=experiment.task_type,
            **fields,
        )

    def get_task(self, tenant: str, task_id: str) -> Task:
        """The task ``task_id`` (deleted ones too); NotFound if missing."""
        return self.store.get_task(tenant, task_id)

    def move_task(
        self,
        tenant: str,
        task_id: str,
        target: str,
        *,
        by: str,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Task:
        """Move a task to status ``target`` (the board's drag and drop).

        Raises ``MoveRefused`` when its flow version does not allow it.
        """

        def run(task: Task, now: datetime) -> tuple[Task, list[Event]]:
            flow = self._flow(tenant, task.flow_id, task.flow_version)
            return commands.move_task(task, flow, target, by=by, at=now, reason=reason)

        return self._change(tenant, task_id, expected_version, run)

    def update_task(
        self,
        tenant: str,
        task_id: str,
        *,
        by: str,
        expected_version: int | None = None,
        **changes: Any,
    ) -> Task:
        """Change title, description, priority, due_at, assignee or conversation_id."""
        unknown = set(changes) - {
            "title", "description", "priority", "due_at", "assignee", "conversation_id"
        }
        if unknown:
            raise ValidationError(sorted(unknown)[0], "not a field update_task can change")
        return self._change(
            tenant,
            task_id,
            expected_version,
            lambda task, now: commands.update_task(task, by=by, at=now, **changes),
        )

    def add_comment(
        self, tenant: str, task_id: str, body: str, *, by: str,
        expected_version: int | None = None,
    ) -> Task:
        """Comment on a task as ``by``."""
        return self._change(
            tenant, task_id, expected_version,
            lambda task, now: commands.add_comment(task, body, by=by, at=now),
        )

    def add_watcher(self, tenant: str, task_id: str, watcher: str, *, by: str) -> Task:
        """Add a watcher (no-op if already watching)."""
        return self._change(
            tenant, task_id, None,
            lambda task, now: commands.add_watcher(task, watcher, by=by, at=now),
        )

    def remove_watcher(self, tenant: str, task_id: str, watcher: str, *, by: str) -> Task:
        """Remove a watcher (no-op if not watching)."""
        return self._change(
            tenant, task_id, None,
            lambda task, now: commands.remove_watcher(task, watcher, by=by, at=now),
        )

    def add_todo(
        self, tenant: str, task_id: str, text: str, *, by: str, required: bool = False
    ) -> Task:
        """Add an ad hoc to-do."""
        return self._change(
            tenant, task_id, None,
            lambda task, now: commands.add_todo(task, text, by=by, at=now, required=required),
        )

    def check_todo(self, tenant: str, task_id: str, todo_id: str, *, by: str) -> Task:
        """Check a to-do (who and when are recorded); NotFound for an unknown to-do."""
        return self._change(
            tenant, task_id, None,
            lambda task, now: commands.check_todo(task, todo_id, by=by, at=now),
        )

    def uncheck_todo(self, tenant: str, task_id: str, todo_id: str, *, by: str) -> Task:
        """Uncheck a to-do."""
        return self._change(
            tenant, task_id, None,
            lambda task, now: commands.uncheck_todo(task, todo_id, by=by, at=now),
        )

    def add_attachment(
        self, tenant: str, task_id: str, attachment: Material, *, by: str
    ) -> Task:
        """Attach a file reference to a task."""
        return self._change(
            tenant, task_id, None,
            lambda task, now: commands.add_attachment(task, attachment, by=by, at=now),
        )

    def send_material(self, tenant: str, task_id: str, name: str, *, by: str) -> Task:
        """Record the intent to send material ``name`` (flow or current status)
        into the task's conversation (event ``task.material_send_requested``)."""

        def run(task: Task, now: datetime) -> tuple[Task, list[Event]]:
            flow = self._flow(tenant, task.flow_id, task.flow_version)
            return commands.request_material(task, flow, name, by=by, at=now)

        return self._change(tenant, task_id, None, run)

    def delete_task(
        self, tenant: str, task_id: str, *, by: str, expected_version: int | None = None
    ) -> Task:
        """Soft-delete a task (no-op if deleted)."""
        return self._change(
            tenant, task_id, expected_version,
            lambda task, now: commands.delete_task(task, by=by, at=now),
        )

    def restore_task(
        self,
        tenant: str,
        task_id: str,
        *,
        by: str,
        status: str | None = None,
        expected_version: int | None = None,
    ) -> Task:
        """Restore a soft-deleted task onto the latest version of its flow
        (no-op if live).

        It keeps its status if that is still enabled; if the flow was edited
        since and the status is disabled or removed, nothing is written and
        ``ValidationError`` (field ``status``) asks for ``status``, an enabled
        status to restore it into. See ``commands.restore_task``.
        """

        def run(task: Task, now: datetime) -> tuple[Task, list[Event]]:
            if task.deleted_at is None:
                return task, []
            latest = self.store.get_flow(tenant, task.flow_id)
            return commands.restore_task(task, latest, by=by, at=now, status=status)

        return self._change(tenant, task_id, expected_version, run)

    def raise_overdue(self, tenant: str) -> list[Task]:
        """Raise the overdue marker (and event) on every live task past its due
        date now; each marker is raised once, also when several workers call this
        concurrently. Returns the tasks marked by this call."""
        require_tenant(tenant)
        now = self._now()
        marked: list[Task] = []
        for due in list(self._all_tasks(tenant, TaskQuery(overdue=True, at=now))):

            def build(unit: UnitOfWork, task_id: str = due.id) -> Task | None:
                task = self.store.get_task(unit.tenant, task_id)
                updated, events = commands.raise_overdue(task, at=now)
                if not events:
                    return None  # marked meanwhile (another worker) or no longer due
                unit.stage_task(updated, before=task, events=events)
                return updated

            updated, committed = self._writer.execute(tenant, build)
            if updated is not None:
                marked.append(as_committed(updated, committed))
        return marked

    # -- views ---------------------------------------------------------------------

    def list_tasks(self, tenant: str, query: TaskQuery | None = None) -> Page:
        """One page of the list view (default: live tasks, priority order, 50)."""
        return self.store.query_tasks(tenant, query if query is not None else TaskQuery())

    def board(self, tenant: str, flow_id: str) -> Board:
        """The board of the latest version of ``flow_id``: its live tasks grouped
        by enabled status, each column by priority then due date."""
        flow = self.store.get_flow(tenant, flow_id)
        return build_board(flow, self._all_tasks(tenant, TaskQuery(flow_id=flow_id)))

