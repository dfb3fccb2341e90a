"""Runs of the objects that wait on another one, started the moment it is reconciled.

A LogRetention applied before its Trail (or before the Trail's pass made its bucket) fails its first pass.
Retrying it on a backoff makes it lag its Trail by up to the backoff's ceiling; instead, the end of every
Trail pass notifies the LogRetentions that follow that Trail, and they run at once, off the Trail
handler's thread so that the Trail's own status is not held up.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)


class DependentRuns:
    """A small pool running one notification per key at a time; notifications for a key that is already
    queued (not yet started) are folded into that one run."""

    def __init__(self, workers: int = 4) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dependents")
        self._lock = threading.Lock()
        self._queued: set[Hashable] = set()

    def notify(self, key: Hashable, run: Callable[[], None]) -> bool:
        """Queue `run` for `key` unless one is queued already; whether this call queued it.

        `run` gets the caller's context: kopf finds its event queue there (`kopf.event`)."""
        with self._lock:
            if key in self._queued:
                return False
            self._queued.add(key)
        context = contextvars.copy_context()

        def task() -> None:
            with self._lock:
                # From here on a new notification queues a new run: it may carry a newer state.
                self._queued.discard(key)
            try:
                context.run(run)
            except Exception:
                # A background thread has no caller to raise to: the log is where this can be seen.
                log.exception("the objects waiting on %s were not reconciled", key)

        self._executor.submit(task)
        return True

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
