"""An in-process timer queue: pending timers ordered by deadline.

``TimerQueue`` is for hosts that run their timers in one process (and is the
hot structure behind timer benchmarks). It holds ids, deadlines and cycles
only, never the timers' payloads; time is passed in, never read.

Cycles follow ``cxflow.timers.model.Timer``: scheduling a timer that is not
pending (new, fired or cancelled) starts a new cycle (``1`` for an id the
queue has never seen); moving a pending timer keeps its cycle. Each cycle
fires at most once, so ``(timer_id, cycle)`` is the dedupe key of a fire.

Layout (the reason it is small and fast): every pending timer takes one
**slot** (an entry in two flat arrays, reused once free) and one heap entry,
a single ``int`` key::

    key = (deadline_us + OFFSET) << 63 | seq << 28 | slot

so the heap compares plain integers, orders by deadline then by scheduling
order (``seq``), and a popped key leads straight to its slot. One dict maps
each id to its live key while pending (``>= 0``) or to ``-cycle`` after.
Cancelling or moving leaves the old key in the heap (lazy deletion); a popped
key whose id no longer maps to it is dropped, and the heap is compacted when
stale keys outnumber live ones, so it never holds more than about twice the
pending timers. Instants are integer microseconds inside; deadlines come back
as aware UTC datetimes.

Limits: ``2**28`` timers pending at once (one more raises ``CxflowError``);
``seq`` is renumbered in place (O(n log n)) once every ``2**35`` schedules.
"""

from __future__ import annotations

from array import array
from datetime import UTC, datetime, timedelta
from heapq import heapify, heappop, heappush
from typing import NamedTuple

from cxflow.clock import ensure_aware
from cxflow.errors import CxflowError, ValidationError

__all__ = ["QueuedFire", "TimerQueue"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_OFFSET = 1 << 56  # > |datetime.min| in microseconds: every key is >= 0
_SLOT_BITS = 28
_SEQ_BITS = 35
_SHIFT = _SLOT_BITS + _SEQ_BITS
_SLOT_MASK = (1 << _SLOT_BITS) - 1
_MAX_SLOTS = 1 << _SLOT_BITS
_COMPACT_MIN = 64  # never compact heaps with fewer stale keys than this


class QueuedFire(NamedTuple):
    """One fire of a queued timer. ``key`` is the dedupe key.

    Lighter than ``cxflow.timers.model.TimerFire``: the queue knows no
    ``kind`` or ``subject_id``, only what it was given.
    """

    timer_id: str
    cycle: int
    deadline: datetime
    """The deadline that was reached, an aware UTC datetime."""

    @property
    def key(self) -> tuple[str, int]:
        """``(timer id, cycle)``: unique per fire."""
        return (self.timer_id, self.cycle)


def _micros(value: object, field: str) -> int:
    """``value`` (an aware datetime) as integer microseconds since the epoch.

    Raises ``ValidationError`` naming ``field`` for naive datetimes and non-datetimes.
    """
    aware = value if isinstance(value, datetime) and value.tzinfo is UTC else None
    if aware is None:
        aware = ensure_aware(value, field)
    # datetime.__sub__, not "-": a subclass (pendulum) may return its own duration type
    return datetime.__sub__(aware, _EPOCH) // _MICROSECOND


def _instant(key: int) -> datetime:
    """The deadline a heap key encodes, as an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=(key >> _SHIFT) - _OFFSET)


class TimerQueue:
    """Pending timers by deadline, fired in deadline order (ties: scheduling order).

    Not thread-safe: one owner calls it (or guards it with a lock). Costs,
    with ``n`` heap entries: ``schedule`` and ``cancel`` O(log n) amortised
    (compaction is O(n) once per ~n stale keys), each fire O(log n).

    Memory: ids stay known after they fire or are cancelled, so that a later
    ``schedule`` starts the next cycle; ``forget`` drops that history for ids
    that will not come back.
    """

    __slots__ = (
        "_free",
        "_heap",
        "_pending",
        "_seq",
        "_seq_limit",
        "_slot_cycle",
        "_slot_id",
        "_stale",
        "_state",
    )

    def __init__(self) -> None:
        self._heap: list[int] = []
        self._state: dict[str, int] = {}
        """id -> live heap key (``>= 0``) while pending, else ``-cycle``."""
        self._slot_id: list[str | None] = []
        self._slot_cycle: array[int] = array("q")
        self._free: array[int] = array("q")
        self._seq = 0
        self._seq_limit = 1 << _SEQ_BITS
        self._stale = 0  # heap keys no longer live
        self._pending = 0

    # -- commands -----------------------------------------------------------------

    def schedule(self, timer_id: str, deadline: datetime) -> int:
        """Schedule ``timer_id`` at ``deadline``, or move it there; return its cycle.

        A timer that is not pending (new, fired or cancelled) starts a new cycle
        (``1`` for an id never seen); moving a pending timer keeps its cycle and
        puts it after the timers already scheduled for the same instant.

        Raises ``ValidationError`` for a naive ``deadline`` or an empty or
        non-``str`` ``timer_id`` (nothing changes).
        """
        if not isinstance(timer_id, str) or not timer_id:
            raise ValidationError("timer_id", f"expected a non-empty str, got {timer_id!r}")
        us = _micros(deadline, "deadline")
        if self._seq >= self._seq_limit:
            self._renumber()
        state = self._state
        current = state.get(timer_id)
        moved = False
        if current is not None and current >= 0:  # pending: same slot and cycle
            moved = True  # and the old key goes stale
            slot = current & _SLOT_MASK
            cycle = self._slot_cycle[slot]
            self._stale += 1
        else:
            cycle = 1 if current is None else 1 - current
            if self._free:
                slot = self._free.pop()
                self._slot_id[slot] = timer_id
                self._slot_cycle[slot] = cycle
            else:
                slot = len(self._slot_id)
                if slot >= _MAX_SLOTS:
                    raise CxflowError(f"timer queue full ({_MAX_SLOTS} pending timers)")
                self._slot_id.append(timer_id)
                self._slot_cycle.append(cycle)
            self._pending += 1
        key = (us + _OFFSET) << _SHIFT | self._seq << _SLOT_BITS | slot
        self._seq += 1
        state[timer_id] = key
        heappush(self._heap, key)
        if moved:
            self._maybe_compact()
        return cycle

    def cancel(self, timer_id: str) -> bool:
        """Cancel ``timer_id``'s pending cycle; return ``True`` if it was pending.

        The cycle ends without a fire; the next ``schedule`` starts a new one.
        Cancelling a timer that is not pending does nothing and returns ``False``.
        """
        current = self._state.get(timer_id)
        if current is None or current < 0:
            return False
        slot = current & _SLOT_MASK
        self._state[timer_id] = -self._slot_cycle[slot]
        self._slot_id[slot] = None
        self._free.append(slot)
        self._pending -= 1
        self._stale += 1
        self._maybe_compact()
        return True

    def fire_due(self, at: datetime, limit: int | None = None) -> list[QueuedFire]:
        """Fire every pending timer whose deadline is ``<= at``; return the fires.

        Fires come in deadline order (ties: scheduling order), each ends its
        timer's cycle, so firing the same instant again returns ``[]``. With
        ``limit``, fire at most that many (the earliest); the rest stay pending.

        Raises ``ValidationError`` for a naive ``at`` or a negative ``limit``.
        """
        bound = (_micros(at, "at") + 1 + _OFFSET) << _SHIFT
        if limit is None:
            remaining = self._pending
        elif isinstance(limit, int) and limit >= 0:
            remaining = limit
        else:
            raise ValidationError("limit", f"expected None or an int >= 0, got {limit!r}")
        # the hot loop: names bound locally, QueuedFire built with tuple.__new__ and
        # timedelta called positionally (each a few hundred ns less per fire)
        heap = self._heap
        state = self._state
        slot_id = self._slot_id
        slot_cycle = self._slot_cycle
        release = self._free.append
        pop = heappop
        new_fire = tuple.__new__
        fire_class = QueuedFire
        epoch, delta, shift, mask, offset = _EPOCH, timedelta, _SHIFT, _SLOT_MASK, _OFFSET
        fires: list[QueuedFire] = []
        append = fires.append
        stale = 0
        while remaining and heap and heap[0] < bound:
            key = pop(heap)
            slot = key & mask
            timer_id = slot_id[slot]
            if timer_id is None or state[timer_id] != key:
                stale += 1
                continue
            cycle = slot_cycle[slot]
            state[timer_id] = -cycle
            slot_id[slot] = None
            release(slot)
            append(
                new_fire(
                    fire_class, (timer_id, cycle, epoch + delta(0, 0, (key >> shift) - offset))
                )
            )
            remaining -= 1
        self._stale -= stale
        self._pending -= len(fires)
        return fires

    def forget(self, timer_id: str) -> bool:
        """Drop what the queue remembers of a timer that is not pending.

        Returns ``True`` if ``timer_id`` was known. A later ``schedule`` then
        starts again at cycle ``1``, so forget only ids that will not be reused
        (or whose earlier fires no consumer could confuse with new ones).
        Raises ``ValidationError`` if the timer is pending (cancel it first).
        """
        current = self._state.get(timer_id)
        if current is None:
            return False
        if current >= 0:
            raise ValidationError("timer_id", f"timer {timer_id!r} is pending; cancel it first")
        del self._state[timer_id]
        return True

    # -- queries --------------------------------------------------------------------

    def next_deadline(self) -> datetime | None:
        """The earliest pending deadline, or ``None`` when nothing is pending."""
        heap = self._heap
        while heap:
            key = heap[0]
            if self._live(key):
                return _instant(key)
            heappop(heap)
            self._stale -= 1
        return None

    def deadline_of(self, timer_id: str) -> datetime | None:
        """``timer_id``'s deadline while pending, else ``None``."""
        current = self._state.get(timer_id)
        if current is None or current < 0:
            return None
        return _instant(current)

    def cycle_of(self, timer_id: str) -> int | None:
        """``timer_id``'s current cycle (pending) or last one (fired or cancelled);
        ``None`` for an id the queue does not know."""
        current = self._state.get(timer_id)
        if current is None:
            return None
        if current < 0:
            return -current
        return self._slot_cycle[current & _SLOT_MASK]

    def __len__(self) -> int:
        """The number of pending timers."""
        return self._pending

    def __contains__(self, timer_id: object) -> bool:
        """``True`` while ``timer_id`` is pending."""
        current = self._state.get(timer_id) if isinstance(timer_id, str) else None
        return current is not None and current >= 0

    def __repr__(self) -> str:
        return f"<TimerQueue pending={self._pending} heap={len(self._heap)}>"

    # -- internals --------------------------------------------------------------------

    def _live(self, key: int) -> bool:
        timer_id = self._slot_id[key & _SLOT_MASK]
        return timer_id is not None and self._state[timer_id] == key

    def _maybe_compact(self) -> None:
        """Drop stale keys once they outnumber live ones (amortised O(1) per stale key)."""
        if self._stale >= _COMPACT_MIN and self._stale * 2 > len(self._heap):
            live = self._live
            heap = [key for key in self._heap if live(key)]
            heapify(heap)
            self._heap = heap
            self._stale = 0

    def _renumber(self) -> None:
        """Reassign ``seq`` 0..n-1 to the live keys, keeping their order (runs
        once per 2**35 schedules, so ``seq`` fits its bits)."""
        live = self._live
        keys = sorted(key for key in self._heap if live(key))
        state = self._state
        slot_id = self._slot_id
        heap: list[int] = []
        for seq, key in enumerate(keys):
            slot = key & _SLOT_MASK
            renumbered = (key >> _SHIFT) << _SHIFT | seq << _SLOT_BITS | slot
            state[slot_id[slot]] = renumbered  # type: ignore[index]
            heap.append(renumbered)  # ascending, so already a heap
        self._heap = heap
        self._stale = 0
        self._seq = len(keys)
