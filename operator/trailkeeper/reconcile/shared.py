"""What reconciles of different objects share within one process: per-resource locks and a read cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from trailkeeper.reconcile.verified_write import WritePolicy


class KeyedLocks:
    """One lock per key (a bucket, a topic).

    A bucket has one policy and one lifecycle configuration that several Trails and LogRetentions may
    edit; read-modify-write of it must be serialized or one writer's statements are lost.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield


SHARED_READ_SHARE = 0.5


class ReadCache:
    """Shared reads (DescribeTrails, ListTags of one account and region) reused for a while.

    A drift sweep over many Trails in one region needs one DescribeTrails, not one per Trail; the sweep's
    checks are spread over the resync period, so each caller says how old a read it takes (`max_age`; a
    drift check half its period, a change pass 2 s; `ttl` for callers that do not say). Entries are dropped
    at once when anything in their scope is changed: a reconcile never acts on a read older than its own
    writes.
    """

    def __init__(self, ttl: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._loading: dict[tuple[str, ...], threading.Lock] = {}

    def _current(self, key: tuple[str, ...], max_age: float | None) -> tuple[float, Any] | None:
        entry = self._entries.get(key)
        limit = self._ttl if max_age is None else max_age
        return entry if entry is not None and self._clock() - entry[0] < limit else None

    def get(self, key: tuple[str, ...], load: Callable[[], Any], *, max_age: float | None = None) -> Any:
        with self._lock:
            entry = self._current(key, max_age)
            if entry is not None:
                return entry[1]
            loading = self._loading.setdefault(key, threading.Lock())
        # One loader per key at a time: concurrent reconciles wait for the first read instead of repeating it.
        with loading:
            with self._lock:
                entry = self._current(key, max_age)
                if entry is not None:
                    return entry[1]
            value = load()
            with self._lock:
                self._entries[key] = (self._clock(), value)
            return value

    def invalidate(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._entries.pop(key, None)


@dataclass
class Shared:
    """Process-wide state handed to every reconcile."""

    locks: KeyedLocks = field(default_factory=KeyedLocks)
    cache: ReadCache = field(default_factory=ReadCache)
    # The operator's --resync-scale: an object's drift-check period is resyncSeconds times this.
    resync_scale: float = 1.0
    # How writes of shared documents (policies, lifecycle configurations) re-read and check.
    write_policy: WritePolicy = field(default_factory=WritePolicy)

    def shared_read_age(self, resync_seconds: int) -> float:
        """How old a read shared within a sweep a drift check may take: half its period, so that it never
        takes its own previous check's read, and drift is seen within one and a half periods."""
        return SHARED_READ_SHARE * resync_seconds * self.resync_scale


@dataclass(frozen=True)
class Change:
    """One mutating action taken on AWS, as printed by `apply` and put in Events."""

    resource: str
    action: str

    def __str__(self) -> str:
        return f"{self.resource}: {self.action}"
