"""When each object became Ready and when it did each drift check, from watch streams of the emulated API.

One streaming watch per kind instead of polling every object: the bench process also serves the
emulated API, so polling hundreds of objects would take CPU from the server the operator talks to.
The time of an event is when it arrived here (``time.monotonic()``), a few milliseconds after the
operator's status write.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

GROUP_PATH = "/apis/trailkeeper.io/v1alpha1"
PLURALS = {"Trail": "trails", "LogRetention": "logretentions"}

Key = tuple[str, str, str]  # kind, namespace, name


@dataclass
class ObjectTimeline:
    """What the bench saw of one object."""

    ready_at: float | None = None
    phase: str | None = None
    # (arrival time, status.lastDriftCheckTime) each time that value changed.
    drift_checks: list[tuple[float, str]] = field(default_factory=list)
    last_drift_check: str | None = None


def _ready(status: dict[str, Any]) -> bool:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


class ObjectWatcher:
    """Follows every Trail and LogRetention of the API at `url` until closed."""

    def __init__(self, url: str, context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._context = context if parts.scheme == "https" else None
        self._lock = threading.Condition()
        self._objects: dict[Key, ObjectTimeline] = {}
        self._connections: list[http.client.HTTPConnection] = []
        self._threads = [
            threading.Thread(target=self._follow, args=(kind,), name=f"watch-{kind}", daemon=True)
            for kind in PLURALS
        ]
        self._closed = False

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections = list(self._connections)
        for connection in connections:
            # Closing the socket ends the blocking readline of the watch thread.
            if connection.sock is not None:
                connection.sock.close()

    def _follow(self, kind: str) -> None:
        resource_version = ""
        while not self._closed:
            connection = (
                http.client.HTTPSConnection(self._host, self._port, timeout=None, context=self._context)
                if self._context is not None
                else http.client.HTTPConnection(self._host, self._port, timeout=None)
            )
            with self._lock:
                self._connections.append(connection)
            path = f"{GROUP_PATH}/{PLURALS[kind]}?watch=true"
            if resource_version:
                path += f"&resourceVersion={resource_version}"
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                while True:
                    line = response.readline()
                    if not line:
                        break
                    if line.strip():
                        resource_version = self._on_event(kind, json.loads(line)) or resource_version
            except (OSError, http.client.HTTPException, ValueError):
                if self._closed:
                    return
                time.sleep(0.1)
            finally:
                connection.close()

    def _on_event(self, kind: str, event: dict[str, Any]) -> str | None:
        now = time.monotonic()
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        if event.get("type") == "ERROR" or not meta.get("name"):
            return None
        key = (kind, str(meta.get("namespace") or "default"), str(meta["name"]))
        status = obj.get("status") or {}
        with self._lock:
            timeline = self._objects.setdefault(key, ObjectTimeline())
            timeline.phase = status.get("phase")
            if timeline.ready_at is None and _ready(status):
                timeline.ready_at = now
            checked = status.get("lastDriftCheckTime")
            if checked and checked != timeline.last_drift_check:
                timeline.last_drift_check = checked
                timeline.drift_checks.append((now, str(checked)))
            self._lock.notify_all()
        version = meta.get("resourceVersion")
        return str(version) if version else None

    # -- reading --------------------------------------------------------------------------------------

    def timeline(self, key: Key) -> ObjectTimeline:
        with self._lock:
            found = self._objects.get(key, ObjectTimeline())
            return ObjectTimeline(
                found.ready_at, found.phase, list(found.drift_checks), found.last_drift_check
            )

    def timelines(self, keys: Iterable[Key]) -> dict[Key, ObjectTimeline]:
        return {key: self.timeline(key) for key in keys}

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until `predicate` (called with the lock held, after each event) is true."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(min(remaining, 1.0))
            return True

    def all_ready(self, keys: Iterable[Key]) -> bool:
        """For use inside `wait_for`: every key has been seen Ready."""
        return all((found := self._objects.get(key)) is not None and found.ready_at for key in keys)

    def checked_since(self, keys: Iterable[Key], since: float) -> bool:
        """For use inside `wait_for`: every key did a drift check after `since`."""
        for key in keys:
            found = self._objects.get(key)
            if found is None or not any(at > since for at, _ in found.drift_checks):
                return False
        return True
