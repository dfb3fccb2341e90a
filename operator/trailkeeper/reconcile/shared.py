"""What reconciles of different objects share within one process: per-resource locks and a read cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


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


class ReadCache:
    """Shared reads (DescribeTrails of one account and region) reused for a short while.

    A drift sweep over many Trails in one region needs one DescribeTrails, not one per Trail. Entries
    expire after `ttl` seconds and are dropped at once when anything in their scope is changed, so a
    reconcile never acts on a read older than its own writes.
    """

    def __init__(self, ttl: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._loading: dict[tuple[str, ...], threading.Lock] = {}

    def get(self, key: tuple[str, ...], load: Callable[[], Any]) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and self._clock() - entry[0] < self._ttl:
                return entry[1]
            loading = self._loading.setdefault(key, threading.Lock())
        # One loader per key at a time: concurrent reconciles wait for the first read instead of repeating it.
        with loading:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and self._clock() - entry[0] < self._ttl:
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


@dataclass(frozen=True)
class Change:
    """One mutating action taken on AWS, as printed by `apply` and put in Events."""

    resource: str
    action: str

    def __str__(self) -> str:
        return f"{self.resource}: {self.action}"
