"""The tick loop: a background thread that fires cxflow's timers.

Auto-close, the no-answer timers of assignment and SLA clocks are durable
timers in cxflow's tables; nothing happens when they fall due until a worker
calls ``session.tick(tenant)``. Here that worker is a thread of the web
process, started and stopped by the application's lifespan. Several
processes may each run one: cxflow leases every timer it claims, so each
fire happens once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from cxflow.timers import TimerFire

__all__ = ["Ticker"]

log = logging.getLogger("helpdesk.ticker")


class Ticker:
    """Calls ``tick()`` every ``every`` seconds on a daemon thread until stopped.

    ``tick`` returns the fires of one pass by tenant. An exception in a pass is
    logged and the loop goes on (the timer whose handler failed is claimed
    again once its lease ends). ``passes`` counts the finished passes, and
    ``wait_for_passes`` lets a caller (a test) wait for the loop to move.
    """

    def __init__(
        self, tick: Callable[[], Mapping[str, list[TimerFire]]], every: float
    ) -> None:
        if every <= 0:
            raise ValueError("every must be a positive number of seconds")
        self._tick = tick
        self.every = every
        self.passes = 0
        self._stopping = threading.Event()
        self._moved = threading.Condition()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the ticker runs already")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="cxflow-ticker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop and wait for its current pass to finish."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the tick loop did not stop within %s s", timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait_for_passes(self, count: int, timeout: float) -> bool:
        """Wait until ``passes`` reaches ``count``; False if ``timeout`` ran out."""
        with self._moved:
            return self._moved.wait_for(lambda: self.passes >= count, timeout)

    def _run(self) -> None:
        while not self._stopping.wait(self.every):
            try:
                fired = self._tick()
            except Exception:
                log.exception("tick pass failed")
            else:
                for tenant, fires in fired.items():
                    if fires:
                        log.info("tenant %s: %d timer(s) fired", tenant, len(fires))
            with self._moved:
                self.passes += 1
                self._moved.notify_all()
