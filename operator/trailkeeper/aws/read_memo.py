"""Answers of a few read calls, shared between the drift checks and the compliance observation.

A drift check reads its trails' status and event selectors and its bucket's policy; the compliance
observation of the account, made on one drift check per interval, reads the same of every trail. The drift
checks always ask AWS (they must see drift within their period) and leave their answers here; the
observation takes those younger than its interval (it keeps its own result that long anyway), and asks
AWS only for the rest. Answers are kept and given only inside a `scope`; any write through a client of the
same account and service forgets that service's answers at once, so nothing is read past its own writes.
The answers are kept in the read layer (aws/reads.py) under its freshness rule.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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

Key = tuple[str, str, str, str, str, str, str]


class ReadMemo:
    """Thread-safe; the scope (and its maximum age) is per thread, as each pass runs in one thread."""

    def __init__(self, reads: Reads | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._reads = reads if reads is not None else Reads(clock=clock)
        self._local = threading.local()

    @contextmanager
    def scope(self, max_age: float) -> Iterator[None]:
        """Within this block (in this thread), reads in MEMOIZED are kept, and take answers up to `max_age`
        seconds old (0: always ask AWS, and keep the answer for others)."""
        previous = getattr(self._local, "max_age", None)
        self._local.max_age = max_age
        try:
            yield
        finally:
            self._local.max_age = previous

    @staticmethod
    def key(account: str, service: str, region: str, operation: str, request: dict[str, Any]) -> Key | None:
        if (service, operation) not in MEMOIZED:
            return None
        body = request.get("body")
        text = body.decode() if isinstance(body, bytes) else str(body or "")
        # The full URL: S3 names the bucket in the host name (virtual-hosted style), not in the path. The
        # region too: with one endpoint for every region (a proxy, moto) the URL does not name it.
        where = str(request.get("url") or f"{request.get('url_path', '')}?{request.get('query_string', '')}")
        return ("call", account, service, region, operation, where, text)

    def lookup(self, key: Key) -> tuple[Any, dict[str, Any]] | None:
        max_age = getattr(self._local, "max_age", None)
        if max_age is None:
            return None
        entry = self._reads.peek(key, max_age)
        if entry is None:
            return None
        http_response, parsed = entry[1]
        # Callers may change what they are given: each gets its own copy.
        return http_response, copy.deepcopy(parsed)

    def store(self, key: Key, http_response: Any, parsed: dict[str, Any]) -> None:
        if getattr(self._local, "max_age", None) is None:
            return
        self._reads.put(key, (http_response, copy.deepcopy(parsed)))

    def forget(self, account: str, service: str) -> None:
        """A write in `account` through `service`: none of that service's answers holds any more."""
        self._reads.forget(("call", account, service))
