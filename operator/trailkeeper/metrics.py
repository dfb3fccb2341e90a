"""Prometheus metrics of the operator: reconcile passes, AWS calls, drift and logging per object.

Everything lives in one :class:`Metrics` object with its own ``CollectorRegistry``, never in
prometheus_client's global registry: the operator makes one at start-up and passes it down, and each
test makes a fresh one, so no test sees another's counts and nothing is registered twice.

AWS calls reach it as a :class:`~trailkeeper.aws.calls.CallRecorder` listener
(``recorder.add_listener(metrics.on_aws_call)``): the recorder sees every call of every client, so no
caller has to remember to count its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server

from trailkeeper.aws.calls import AwsCall
from trailkeeper.aws.errors import THROTTLED_CODES
from trailkeeper.aws.ratelimit import RateLimitTimeoutError

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from trailkeeper.reconcile.passes import PassReport

__all__ = [
    "KINDS",
    "OUTCOMES",
    "THROTTLE_OUTCOMES",
    "Kind",
    "Metrics",
    "Outcome",
    "is_throttle",
    "outcome_of",
]

Kind = Literal["Trail", "LogRetention"]
Outcome = Literal["ok", "drift", "error", "invalid"]
KINDS: Final[frozenset[str]] = frozenset({"Trail", "LogRetention"})
OUTCOMES: Final[frozenset[str]] = frozenset({"ok", "drift", "error", "invalid"})

# The outcomes of a recorded call (see AwsCall.outcome) that mean AWS, or our own client-side limiter,
# refused for rate: the error taxonomy's throttling codes, a bare HTTP 429 (a response without a body
# carries only its status as code) and a rate-limit token that never came.
THROTTLE_OUTCOMES: Final[frozenset[str]] = THROTTLED_CODES | {"429", RateLimitTimeoutError.__name__}

# A pass over many regions with policy-propagation retries takes tens of seconds; the default
# prometheus buckets stop at 10 s and would put every slow pass in +Inf.
RECONCILE_BUCKETS: Final[tuple[float, ...]] = (
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)
# One AWS call with botocore's retries inside it: milliseconds usually, up to read-timeout when AWS stalls.
AWS_CALL_BUCKETS: Final[tuple[float, ...]] = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def is_throttle(outcome: str) -> bool:
    """Whether a recorded call's outcome says it was throttled."""
    return outcome in THROTTLE_OUTCOMES


def outcome_of(report: PassReport) -> Outcome:
    """The metrics outcome of one handler pass: invalid spec, failure, drift found, or all well."""
    if report.invalid is not None:
        return "invalid"
    if report.retry_after is not None or report.status.get("phase") == "Error":
        return "error"
    if report.drift:
        return "drift"
    return "ok"


class Metrics:
    """The operator's metrics, in a registry of their own.

    Label values for kind and outcome are checked: a typo would otherwise create a new series that no
    dashboard or alert looks at.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.reconcile_total = Counter(
            "trailkeeper_reconcile",
            "Reconcile passes, by kind and outcome (ok, drift, error, invalid).",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.reconcile_duration = Histogram(
            "trailkeeper_reconcile_duration_seconds",
            "Wall-clock time of a reconcile pass, AWS calls included.",
            ["kind", "outcome"],
            buckets=RECONCILE_BUCKETS,
            registry=self.registry,
        )
        self.aws_calls_total = Counter(
            "trailkeeper_aws_calls",
            "AWS API calls, by service, operation and outcome (ok or the AWS error code).",
            ["service", "operation", "outcome"],
            registry=self.registry,
        )
        self.aws_call_duration = Histogram(
            "trailkeeper_aws_call_duration_seconds",
            "Time spent in AWS per API call, botocore retries included, rate-limit waits excluded.",
            ["service", "operation"],
            buckets=AWS_CALL_BUCKETS,
            registry=self.registry,
        )
        self.aws_throttles_total = Counter(
            "trailkeeper_aws_throttles",
            "AWS API calls refused for rate (by AWS or by the operator's own rate limiter).",
            ["service", "operation"],
            registry=self.registry,
        )
        self.drift = Gauge(
            "trailkeeper_drift",
            "Differences between AWS and the spec found by the object's last check.",
            ["kind", "namespace", "name"],
            registry=self.registry,
        )
        self.trails_logging = Gauge(
            "trailkeeper_trails_logging",
            "Regions in which the Trail's trails are logging, as of its last pass.",
            ["namespace", "name"],
            registry=self.registry,
        )
        self.compliance_failed = Gauge(
            "trailkeeper_compliance_failed",
            "CIS CloudTrail controls the Trail's account fails, as of its last compliance check.",
            ["namespace", "name"],
            registry=self.registry,
        )

    # -- feeding --------------------------------------------------------------------------------

    def observe_pass(
        self,
        kind: str,
        namespace: str,
        name: str,
        seconds: float,
        outcome: str,
        drift: int,
        logging_regions: int | None,
    ) -> None:
        """Record one reconcile pass of an object.

        ``drift`` is the number of differences the pass found; ``logging_regions`` the number of regions
        logging (Trails; None leaves the gauge as it was, which is what a LogRetention or a pass that
        never reached CloudTrail should do).
        """
        _check(kind, KINDS, "kind")
        _check(outcome, OUTCOMES, "outcome")
        self.reconcile_total.labels(kind, outcome).inc()
        self.reconcile_duration.labels(kind, outcome).observe(max(seconds, 0.0))
        self.drift.labels(kind, namespace, name).set(drift)
        if logging_regions is not None:
            self.trails_logging.labels(namespace, name).set(logging_regions)

    def set_compliance(self, namespace: str, name: str, failed: int) -> None:
        """The number of compliance controls a Trail's account fails, after each compliance check."""
        self.compliance_failed.labels(namespace, name).set(failed)

    def on_aws_call(self, call: AwsCall) -> None:
        """CallRecorder listener: count and time one AWS call."""
        self.aws_calls_total.labels(call.service, call.operation, call.outcome).inc()
        self.aws_call_duration.labels(call.service, call.operation).observe(call.seconds)
        if is_throttle(call.outcome):
            self.aws_throttles_total.labels(call.service, call.operation).inc()

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """Drop an object's own series once it is deleted, so a gone Trail does not keep reporting the
        drift or logging it had last (and its labels do not pile up in a long-running operator)."""
        _check(kind, KINDS, "kind")
        # remove() of a series that was never set is a no-op: a Trail deleted before its first pass.
        self.drift.remove(kind, namespace, name)
        if kind == "Trail":
            self.trails_logging.remove(namespace, name)
            self.compliance_failed.remove(namespace, name)

    # -- exposing -------------------------------------------------------------------------------

    def render(self) -> bytes:
        """The metrics in the Prometheus text format."""
        return generate_latest(self.registry)

    def serve(self, port: int, addr: str = "0.0.0.0") -> WSGIServer:
        """Serve ``/metrics`` (any path, in fact) from a daemon thread; ``port`` 0 picks a free one
        (``server.server_port`` tells which). Stop it with ``server.shutdown(); server.server_close()``."""
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        return server


def _check(value: str, allowed: Iterable[str], label: str) -> None:
    if value not in allowed:
        raise ValueError(f"{label} must be one of {sorted(allowed)}, not {value!r}")
