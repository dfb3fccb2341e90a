"""A record of every AWS API call the operator makes.

Tests read it to prove a steady-state pass is free of mutating calls, the IAM-policy test reads
which operations the code really uses, and metrics and benchmarks read counts and durations.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

# Operations that only read, by name prefix. CloudTrail's LookupEvents reads events without
# the usual verb; STS AssumeRole hands out credentials but changes nothing in the account, so
# counting it as a write would make every cross-account steady state look like it mutates.
_READ_PREFIXES = ("Describe", "Get", "List", "Head")
_READ_OPERATIONS = frozenset({"LookupEvents", "AssumeRole"})


def is_mutating(operation_name: str) -> bool:
    """Whether an API operation (botocore's model name, e.g. ``CreateTrail``) may change AWS."""
    if operation_name in _READ_OPERATIONS:
        return False
    return not operation_name.startswith(_READ_PREFIXES)


OUTCOME_OK = "ok"


@dataclass(frozen=True)
class AwsCall:
    """One API call as its caller saw it, retries included.

    ``outcome`` is ``"ok"`` or the error code (AWS's, or the exception class name when no
    response came back). ``seconds`` is time spent in AWS; ``waited`` is time spent in the
    client-side rate limiter before the call went out.
    """

    service: str
    operation: str
    region: str
    account: str
    outcome: str
    seconds: float
    mutating: bool
    waited: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == OUTCOME_OK


CallListener = Callable[[AwsCall], None]


class CallRecorder:
    """Thread-safe log of :class:`AwsCall`.

    Keeps at most ``max_calls`` (oldest dropped) so a long-running operator does not grow
    without bound; listeners see every call regardless, which is what metrics should use.
    """

    def __init__(self, max_calls: int | None = 100_000) -> None:
        self._lock = threading.Lock()
        self._calls: deque[AwsCall] = deque(maxlen=max_calls)
        self._listeners: list[CallListener] = []

    def record(self, call: AwsCall) -> None:
        with self._lock:
            self._calls.append(call)
            listeners = list(self._listeners)
        # Outside the lock: a slow or re-entrant listener must not block other recording threads.
        for listener in listeners:
            listener(call)

    def add_listener(self, listener: CallListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def snapshot(self) -> tuple[AwsCall, ...]:
        with self._lock:
            return tuple(self._calls)

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()

    def counts(self) -> Counter[tuple[str, str]]:
        """Number of calls per ``(service, operation)``; absent keys count 0."""
        return Counter((c.service, c.operation) for c in self.snapshot())

    def operations(self) -> set[tuple[str, str]]:
        """The distinct ``(service, operation)`` pairs called."""
        return {(c.service, c.operation) for c in self.snapshot()}

    def mutating_calls(self) -> list[AwsCall]:
        return [c for c in self.snapshot() if c.mutating]

    def errors(self) -> list[AwsCall]:
        return [c for c in self.snapshot() if not c.ok]

    def total_seconds(self) -> float:
        return sum(c.seconds for c in self.snapshot())

    def __len__(self) -> int:
        with self._lock:
            return len(self._calls)
