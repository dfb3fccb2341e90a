"""What a test front refused, kept for the tests to read."""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class Records(Generic[T]):
    """A list appended to by the front's request threads and read by the test's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[T] = []

    def add(self, item: T) -> None:
        with self._lock:
            self._items.append(item)

    def all(self) -> list[T]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class Refusals(Generic[T]):
    """What a front refused, for the tests to read (`refused`) and clear between them."""

    def __init__(self) -> None:
        self._refused = Records[T]()

    def refuse(self, item: T) -> None:
        self._refused.add(item)

    @property
    def refused(self) -> list[T]:
        return self._refused.all()

    def clear(self) -> None:
        self._refused.clear()
