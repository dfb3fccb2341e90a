"""CloudTrail's request quotas in front of moto, which never throttles.

"Quotas in AWS CloudTrail" (CloudTrail User Guide) documents, per account and region, not adjustable:
get, describe and list APIs 10 TPS (LookupEvents and ListInsightsMetricData excepted), LookupEvents 2 TPS,
ListInsightsMetricData 1 TPS, all other APIs 1 TPS. The guide meters these by category, one row for
all get/describe/list calls, and names the APIs it meters apart; so this front keeps one bucket per
account, region and category, as the operator's limiter does (aws/ratelimit.py). A request beyond its
bucket is answered `ThrottlingException` "Rate exceeded" in CloudTrail's JSON format, before moto sees it.

Each bucket refills at the documented rate and holds at most one second of it (AWS documents no
burst), with 50 ms of arrival jitter forgiven. ``throttled`` lists what was refused, for tests that
check that no throttle reached a status; ``passed_by`` counts what went through, for floors.

    front = QuotaFront(LimitsFront(moto_app()))
    server = InProcessMotoServer(FaultInjector(front))
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from support.faults import WSGIApp, _account_of, _credential_scope, _error_response, identify_request

# Requests per second per account and region, by category.
RATES = {"read": 10.0, "lookupevents": 2.0, "listinsightsmetricdata": 1.0, "write": 1.0}
_READ_PREFIXES = ("Get", "Describe", "List")
# A request paced exactly at the rate may arrive this much early (scheduling, the loopback), and is not
# refused for it: the front meters arrivals, the client departures.
JITTER_SECONDS = 0.05


def category(operation: str) -> str:
    """The quota a CloudTrail operation counts against."""
    if operation.lower() in RATES:
        return operation.lower()
    return "read" if operation.startswith(_READ_PREFIXES) else "write"


@dataclass(frozen=True)
class Throttle:
    account: str
    region: str
    operation: str


class QuotaFront:
    """WSGI middleware: CloudTrail requests beyond the documented rates are throttled; the rest pass."""

    def __init__(self, app: WSGIApp, clock: Callable[[], float] = time.monotonic) -> None:
        self._app = app
        self._clock = clock
        self._lock = threading.Lock()
        # (account, region, category) -> (tokens, when last refilled)
        self._buckets: dict[tuple[str, str, str], tuple[float, float]] = {}
        self._throttled: list[Throttle] = []
        self._passed: Counter[tuple[str, str, str]] = Counter()

    @property
    def throttled(self) -> list[Throttle]:
        with self._lock:
            return list(self._throttled)

    @property
    def passed(self) -> int:
        """CloudTrail requests let through."""
        with self._lock:
            return sum(self._passed.values())

    def passed_by(self) -> Counter[tuple[str, str, str]]:
        """CloudTrail requests let through by (account, region, category): the floor of a run is its
        busiest bucket's count over that bucket's rate."""
        with self._lock:
            return Counter(self._passed)

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()
            self._throttled.clear()
            self._passed.clear()

    def _take(self, key: tuple[str, str, str]) -> bool:
        rate = RATES[key[2]]
        now = self._clock()
        with self._lock:
            tokens, updated = self._buckets.get(key, (rate, now))
            tokens = min(rate, tokens + (now - updated) * rate)
            if tokens + JITTER_SECONDS * rate < 1.0:
                self._buckets[key] = (tokens, now)
                self._throttled.append(Throttle(*key[:2], key[2]))
                return False
            self._buckets[key] = (tokens - 1.0, now)
            self._passed[key] += 1
            return True

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return self._app(environ, start_response)
        service, operation = identify_request(environ)
        if service != "cloudtrail":
            return self._app(environ, start_response)
        key = (_account_of(environ), _credential_scope(environ)[1], category(operation))
        if self._take(key):
            return self._app(environ, start_response)
        return _error_response(environ, start_response, service, 400, "ThrottlingException", "Rate exceeded")
