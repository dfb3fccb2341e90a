"""Client-side token buckets that keep the operator under AWS's API rate quotas.

Throttling is recovered by retries, but every throttled attempt still costs a request against
the same quota and delays every other Trail in the account. Pacing requests before they leave
keeps a large fleet of Trails (hundreds, resynced every few minutes) from throttling itself.

Buckets are kept per ``(account, region, limit key)`` because that is how AWS meters these
quotas: an account's CloudTrail calls in eu-west-1 do not count against us-east-1.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from trailkeeper.aws.calls import is_mutating

ENV_PREFIX = "TRAILKEEPER_AWS_RATE_"
_UNLIMITED_WORDS = frozenset({"off", "none", "unlimited", "0"})


@dataclass(frozen=True)
class Rate:
    """``per_second`` tokens are added to a bucket holding at most ``burst``."""

    per_second: float
    burst: float

    def __post_init__(self) -> None:
        if self.per_second <= 0:
            raise ValueError(f"rate must be positive, got {self.per_second}")
        if self.burst < 1:
            # A bucket that can never hold one whole token would block forever.
            raise ValueError(f"burst must be at least 1, got {self.burst}")

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        """``"rate"`` or ``"rate:burst"``; ``"off"``/``"0"`` means unlimited (``None``).

        Without a burst, one second's worth of tokens (at least 1) may be spent at once.
        """
        text = text.strip()
        if text.lower() in _UNLIMITED_WORDS:
            return None
        rate_text, _, burst_text = text.partition(":")
        per_second = float(rate_text)
        burst = float(burst_text) if burst_text else max(1.0, per_second)
        return cls(per_second, burst)


# Limit keys are matched most specific first: "service:operation", then "service:read" /
# "service:write" (see calls.is_mutating), then "service", then the fallback. All lower case.
#
# CloudTrail: "Quotas in AWS CloudTrail" (awscloudtrail/latest/userguide/WhatIsCloudTrail-Limits)
# documents, per account per region and not adjustable: get/describe/list APIs 10 TPS,
# LookupEvents 2 TPS, ListInsightsMetricData 1 TPS, all other APIs (CreateTrail, UpdateTrail,
# StartLogging, StopLogging, PutEventSelectors, PutInsightSelectors, AddTags, ...) 1 TPS.
# Shared, not per API: the guide gives one row, "Get, describe, and list APIs", for the whole
# category and names the APIs it meters apart (LookupEvents, ListInsightsMetricData) in rows of
# their own; nothing there says per API. So one read bucket serves every get/describe/list call of
# an account and region, and one write bucket every other call: safe under either reading.
# The rates below are exactly those, with no burst beyond one second's worth (AWS documents
# none): a write burst of 2 ran one request ahead of a 1 TPS meter for the whole of an apply,
# and every retry of the throttled one was throttled again (tests/support/quota.py).
#
# EC2 ("Request throttling for the Amazon EC2 API"): non-mutating actions such as
# DescribeRegions have a bucket of 100 refilled at 20 per second; we stay at that refill rate.
#
# S3 bucket-configuration calls and SNS topic calls document no control-plane quota anywhere
# near what the operator sends, and STS allows far more than a handful of AssumeRole /
# GetCallerIdentity a minute; their limits only smooth out bursts from a mass resync.
DEFAULT_RATES: Mapping[str, Rate | None] = {
    "cloudtrail:read": Rate(10.0, 10.0),
    "cloudtrail:write": Rate(1.0, 1.0),
    "cloudtrail:lookupevents": Rate(2.0, 2.0),
    "cloudtrail:listinsightsmetricdata": Rate(1.0, 1.0),
    "ec2": Rate(20.0, 100.0),
    "s3": Rate(50.0, 100.0),
    "sns": Rate(30.0, 60.0),
    "sts": Rate(20.0, 40.0),
}
# Services not listed above (KMS, CloudWatch Logs, IAM lookups) get this.
DEFAULT_FALLBACK = Rate(10.0, 20.0)


class RateLimitTimeoutError(TimeoutError):
    """The wait for a token would exceed the caller's timeout; no token was taken."""

    def __init__(self, key: tuple[str, str, str], wait: float, timeout: float) -> None:
        super().__init__(
            f"rate limit {key[2]} for account {key[0]} in {key[1]}: "
            f"next slot in {wait:.2f}s exceeds the {timeout:.2f}s timeout"
        )
        self.key = key
        self.wait = wait
        self.timeout = timeout


class _Bucket:
    """Token bucket whose balance may go negative: a negative balance is the queue of
    callers that already reserved a future token and are sleeping until it arrives. This
    keeps the lock held only for arithmetic, never while sleeping, and serves callers in
    arrival order."""

    __slots__ = ("rate", "tokens", "updated")

    def __init__(self, rate: Rate, now: float) -> None:
        self.rate = rate
        self.tokens = rate.burst
        self.updated = now

    def reserve(self, now: float) -> float:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.rate.burst, self.tokens + elapsed * self.rate.per_second)
        self.updated = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate.per_second

    def cancel(self) -> None:
        self.tokens += 1.0


class RateLimiter:
    """Blocking token-bucket limiter keyed by (account, region, limit key)."""

    def __init__(
        self,
        rates: Mapping[str, Rate | None] | None = None,
        *,
        fallback: Rate | None = DEFAULT_FALLBACK,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rates = {k.lower(): v for k, v in (DEFAULT_RATES if rates is None else rates).items()}
        self._fallback = fallback
        self._enabled = enabled
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}

    @classmethod
    def disabled(cls) -> RateLimiter:
        """A limiter that never waits (tests, the local sandbox)."""
        return cls({}, fallback=None, enabled=False)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> RateLimiter:
        """The defaults, overridden by ``TRAILKEEPER_AWS_RATE_<KEY>=rate[:burst]``.

        ``<KEY>`` is a service (``CLOUDTRAIL``), a service and class or operation
        (``CLOUDTRAIL_WRITE``, ``CLOUDTRAIL_LOOKUPEVENTS``) or ``DEFAULT`` for unlisted services.
        A service-level variable replaces the built-in finer limits of that service, since
        whoever sets it means the whole service. ``off`` or ``0`` lifts a limit.
        """
        env = os.environ if environ is None else environ
        rates: dict[str, Rate | None] = dict(DEFAULT_RATES)
        fallback: Rate | None = DEFAULT_FALLBACK
        overrides: dict[str, Rate | None] = {}
        for name, value in env.items():
            if not name.startswith(ENV_PREFIX):
                continue
            suffix = name[len(ENV_PREFIX) :].lower()
            try:
                rate = Rate.parse(value)
            except ValueError as exc:
                raise ValueError(f"{name}={value!r}: expected rate[:burst] or off ({exc})") from exc
            if suffix == "default":
                fallback = rate
            else:
                service, _, finer = suffix.partition("_")
                overrides[f"{service}:{finer}" if finer else service] = rate
        for key in overrides:
            if ":" not in key:
                for finer in [k for k in rates if k.startswith(f"{key}:")]:
                    del rates[finer]
        rates.update(overrides)
        return cls(rates, fallback=fallback, clock=clock, sleep=sleep)

    @property
    def enabled(self) -> bool:
        return self._enabled

    def limit_for(self, service: str, operation: str | None = None) -> tuple[str, Rate | None]:
        """The limit key and rate that govern a call; rate ``None`` means unlimited."""
        service = service.lower()
        candidates = []
        if operation:
            candidates.append(f"{service}:{operation.lower()}")
            candidates.append(f"{service}:{'write' if is_mutating(operation) else 'read'}")
        candidates.append(service)
        for key in candidates:
            if key in self._rates:
                return key, self._rates[key]
        return service, self._fallback

    def acquire(
        self,
        account: str,
        region: str,
        service: str,
        operation: str | None = None,
        *,
        timeout: float | None = None,
    ) -> float:
        """Take one token, sleeping until one is available; returns the seconds waited.

        Raises :class:`RateLimitTimeoutError` (taking nothing) when the wait would exceed ``timeout``.
        """
        if not self._enabled:
            return 0.0
        limit_key, rate = self.limit_for(service, operation)
        if rate is None:
            return 0.0
        key = (account, region, limit_key)
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(rate, now)
            wait = bucket.reserve(now)
            if timeout is not None and wait > timeout:
                bucket.cancel()
                raise RateLimitTimeoutError(key, wait, timeout)
        if wait > 0:
            self._sleep(wait)
        return wait
