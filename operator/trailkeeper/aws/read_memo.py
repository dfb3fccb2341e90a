"""Answers of a few read calls, shared between the drift checks and the compliance observation.

A drift check reads its trails' status and event selectors and its bucket's policy; the compliance
observation of the account, made on one drift check per interval, reads the same of every trail. The drift
checks always ask AWS (they must see drift within their period) and leave their answers here; the
observation takes those younger than its interval (it keeps its own result that long anyway), and asks
AWS only for the rest. Answers are kept and given only inside a `scope`; any write through a client of the
same account and service forgets that service's answers at once, so nothing is read past its own writes.
The answers are kept in the read layer (aws/reads.py) under its freshness rule.

A `trailkeeper diff` run is one snapshot: every read of any Trail of the run (a shared bucket's settings, a
shared topic's attributes, a region's trails) is asked once, whatever number of manifests use it
(`everywhere(every_read=True)`, the scope of every thread of the run). It writes nothing, so nothing is
ever confirmed past it; an `apply` takes no such scope (its confirming reads must reach AWS).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from trailkeeper.aws.reads import Reads

# The reads both askers make, by (service, operation). Everything else always goes to AWS.
MEMOIZED = frozenset(
    {
        ("cloudtrail", "DescribeTrails"),
        ("cloudtrail", "GetTrailStatus"),
        ("cloudtrail", "GetEventSelectors"),
        ("s3", "GetBucketPolicy"),
    }
)

# Never kept, even by an every-read scope: credentials and the caller's identity are per session.
NEVER = frozenset({"sts"})

Key = tuple[str, str, str, str, str, str, str]


@dataclass(frozen=True)
class _Scope:
    max_age: float
    every_read: bool  # every read call, not only those in MEMOIZED


class ReadMemo:
    """Thread-safe; a scope (and its maximum age) is per thread, as each pass runs in one thread, unless set
    for every thread with `everywhere`."""

    def __init__(self, reads: Reads | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._reads = reads if reads is not None else Reads(clock=clock)
        self._local = threading.local()
        self._everywhere: _Scope | None = None

    @contextmanager
    def scope(self, max_age: float, *, every_read: bool = False) -> Iterator[None]:
        """Within this block (in this thread), reads in MEMOIZED (every read with `every_read`) are kept,
        and take answers up to `max_age` seconds old (0: always ask AWS, and keep the answer for others)."""
        previous = getattr(self._local, "scope", None)
        self._local.scope = _Scope(max_age, every_read)
        try:
            yield
        finally:
            self._local.scope = previous

    @contextmanager
    def everywhere(self, max_age: float, *, every_read: bool = True) -> Iterator[None]:
        """As `scope`, for every thread that has no scope of its own (a CLI run's worker threads)."""
        previous, self._everywhere = self._everywhere, _Scope(max_age, every_read)
        try:
            yield
        finally:
            self._everywhere = previous

    def _scope(self) -> _Scope | None:
        scope: _Scope | None = getattr(self._local, "scope", None)
        return scope if scope is not None else self._everywhere

    def key(
        self, account: str, service: str, region: str, operation: str, request: dict[str, Any]
    ) -> Key | None:
        """The key of a read call's answer; None when it is not kept (no scope, or not one it keeps)."""
        scope = self._scope()
        if scope is None or service in NEVER:
            return None
        if not scope.every_read and (service, operation) not in MEMOIZED:
            return None
        body = request.get("body")
        text = body.decode() if isinstance(body, bytes) else str(body or "")
        # The full URL: S3 names the bucket in the host name (virtual-hosted style), not in the path. The
        # region too: with one endpoint for every region (a proxy, moto) the URL does not name it.
        where = str(request.get("url") or f"{request.get('url_path', '')}?{request.get('query_string', '')}")
        return ("call", account, service, region, operation, where, text)

    def lookup(self, key: Key) -> tuple[Any, dict[str, Any]] | None:
        scope = self._scope()
        if scope is None:
            return None
        entry = self._reads.peek(key, scope.max_age)
        if entry is None:
            return None
        http_response, parsed = entry[1]
        # Callers may change what they are given: each gets its own copy.
        return http_response, copy.deepcopy(parsed)

    def store(self, key: Key, http_response: Any, parsed: dict[str, Any]) -> None:
        if self._scope() is None:
            return
        self._reads.put(key, (http_response, copy.deepcopy(parsed)))

    def forget(self, account: str, service: str) -> None:
        """A write in `account` through `service`: none of that service's answers holds any more."""
        self._reads.forget(("call", account, service))
