"""The read layer: answers of AWS reads kept for a while, under one freshness rule.

The freshness rule. Every reader says how old an answer it may take (``max_age``), by what it does with it:

- a change pass acts on what it reads: at most ``CHANGE_READ_MAX_AGE`` (2 s; the reads of a burst of
  changes are shared, nothing older is acted on);
- a drift check only compares: at most half its period (``Shared.shared_read_age``), so it never takes its
  own previous check's answer and drift is seen within one and a half periods;
- the compliance observation of an account: at most its interval (it is a verdict kept that long anyway);
- the account's enabled regions: an hour (they change by an administrator's hand, rarely).

A write drops at once every answer it can change (``invalidate`` for one key, ``forget`` for every key
under a prefix: an account's service, a region's trails), so nothing is ever read past one's own writes.
Loads are single-flight: readers of one key at the same time wait for the first read instead of repeating
it. Keys are tuples whose first item names the kind of read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

Key = tuple[Any, ...]

CHANGE_READ_MAX_AGE = 2.0


class Reads:
    """Thread-safe; shared by every reconcile of a process (or every manifest of a CLI run)."""

    def __init__(self, ttl: float = CHANGE_READ_MAX_AGE, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[Key, tuple[float, Any]] = {}
        self._loading: dict[Key, threading.Lock] = {}

    def _current(self, key: Key, max_age: float | None) -> tuple[float, Any] | None:
        entry = self._entries.get(key)
        limit = self._ttl if max_age is None else max_age
        return entry if entry is not None and self._clock() - entry[0] < limit else None

    def peek(self, key: Key, max_age: float | None = None) -> tuple[float, Any] | None:
        """(when stored, answer) of `key` if no older than `max_age` (None: the default ttl)."""
        with self._lock:
            return self._current(key, max_age)

    def put(self, key: Key, value: Any) -> None:
        with self._lock:
            self._entries[key] = (self._clock(), value)

    def loader(self, key: Key) -> threading.Lock:
        """The one lock loads of `key` take (single flight)."""
        with self._lock:
            return self._loading.setdefault(key, threading.Lock())

    def get(self, key: Key, load: Callable[[], Any], *, max_age: float | None = None) -> Any:
        """The answer of `key` no older than `max_age`, loaded (once, for every reader waiting) if none."""
        entry = self.peek(key, max_age)
        if entry is not None:
            return entry[1]
        with self.loader(key):
            entry = self.peek(key, max_age)
            if entry is not None:
                return entry[1]
            value = load()
            self.put(key, value)
            return value

    def invalidate(self, key: Key) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def forget(self, prefix: Key) -> None:
        """Drop every answer whose key starts with `prefix`."""
        with self._lock:
            for key in [k for k in self._entries if k[: len(prefix)] == prefix]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
