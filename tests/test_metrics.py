"""Prometheus metrics: what each feed changes, what the HTTP endpoint serves, and real AWS calls counted."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from support.faults import FaultInjector, FaultRule
from support.moto_server import InProcessMotoServer, MakeAws
from trailkeeper.aws.calls import AwsCall
from trailkeeper.metrics import Metrics, is_throttle, outcome_of
from trailkeeper.reconcile.passes import PassReport


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


def value(metrics: Metrics, sample: str, /, **labels: str) -> float:
    """A sample's value, 0.0 when the series does not exist (yet, or any more)."""
    found = metrics.registry.get_sample_value(sample, labels)
    return 0.0 if found is None else found


def has_series(metrics: Metrics, sample: str, /, **labels: str) -> bool:
    return metrics.registry.get_sample_value(sample, labels) is not None


def call(operation: str = "DescribeTrails", outcome: str = "ok", seconds: float = 0.02) -> AwsCall:
    return AwsCall(
        service="cloudtrail",
        operation=operation,
        region="us-east-1",
        account="default",
        outcome=outcome,
        seconds=seconds,
        mutating=False,
    )


# -- reconcile passes -------------------------------------------------------------------------------


def test_observe_pass_counts_times_and_sets_the_object_gauges(metrics: Metrics) -> None:
    metrics.observe_pass("Trail", "security", "audit", 1.5, "drift", drift=3, logging_regions=2)
    metrics.observe_pass("Trail", "security", "audit", 0.5, "ok", drift=0, logging_regions=2)

    assert value(metrics, "trailkeeper_reconcile_total", kind="Trail", outcome="drift") == 1
    assert value(metrics, "trailkeeper_reconcile_total", kind="Trail", outcome="ok") == 1
    assert value(metrics, "trailkeeper_reconcile_duration_seconds_count", kind="Trail", outcome="drift") == 1
    assert value(metrics, "trailkeeper_reconcile_duration_seconds_sum", kind="Trail", outcome="drift") == 1.5
    assert value(metrics, "trailkeeper_drift", kind="Trail", namespace="security", name="audit") == 0
    assert value(metrics, "trailkeeper_trails_logging", namespace="security", name="audit") == 2


def test_drift_gauge_holds_the_last_check(metrics: Metrics) -> None:
    metrics.observe_pass("LogRetention", "security", "keep", 0.1, "drift", drift=2, logging_regions=None)
    labels = {"kind": "LogRetention", "namespace": "security", "name": "keep"}
    assert value(metrics, "trailkeeper_drift", **labels) == 2
    metrics.observe_pass("LogRetention", "security", "keep", 0.1, "ok", drift=0, logging_regions=None)
    assert value(metrics, "trailkeeper_drift", **labels) == 0


def test_logging_gauge_is_left_alone_when_a_pass_does_not_know(metrics: Metrics) -> None:
    metrics.observe_pass("Trail", "security", "audit", 0.1, "ok", drift=0, logging_regions=2)
    metrics.observe_pass("Trail", "security", "audit", 0.1, "error", drift=0, logging_regions=None)
    assert value(metrics, "trailkeeper_trails_logging", namespace="security", name="audit") == 2
    metrics.observe_pass("LogRetention", "security", "keep", 0.1, "ok", drift=0, logging_regions=None)
    assert not has_series(metrics, "trailkeeper_trails_logging", namespace="security", name="keep")


@pytest.mark.parametrize(("kind", "outcome"), [("Bucket", "ok"), ("Trail", "failed"), ("trail", "ok")])
def test_unknown_kind_or_outcome_is_refused(metrics: Metrics, kind: str, outcome: str) -> None:
    with pytest.raises(ValueError):
        metrics.observe_pass(kind, "security", "audit", 0.1, outcome, drift=0, logging_regions=None)
    assert metrics.registry.get_sample_value("trailkeeper_reconcile_total", {"kind": kind}) is None


def test_compliance_gauge_is_set(metrics: Metrics) -> None:
    metrics.set_compliance("security", "audit", 2)
    assert value(metrics, "trailkeeper_compliance_failed", namespace="security", name="audit") == 2


def test_forget_removes_only_that_objects_series(metrics: Metrics) -> None:
    for name in ("audit", "other"):
        metrics.observe_pass("Trail", "security", name, 0.1, "drift", drift=1, logging_regions=1)
        metrics.set_compliance("security", name, 1)
    metrics.observe_pass("LogRetention", "security", "audit", 0.1, "drift", drift=4, logging_regions=None)

    metrics.forget("Trail", "security", "audit")

    assert not has_series(metrics, "trailkeeper_drift", kind="Trail", namespace="security", name="audit")
    assert not has_series(metrics, "trailkeeper_trails_logging", namespace="security", name="audit")
    assert not has_series(metrics, "trailkeeper_compliance_failed", namespace="security", name="audit")
    # A LogRetention of the same name and the other Trail keep theirs; the pass counters are not per object.
    assert value(metrics, "trailkeeper_drift", kind="LogRetention", namespace="security", name="audit") == 4
    assert value(metrics, "trailkeeper_drift", kind="Trail", namespace="security", name="other") == 1
    assert value(metrics, "trailkeeper_compliance_failed", namespace="security", name="other") == 1
    assert value(metrics, "trailkeeper_reconcile_total", kind="Trail", outcome="drift") == 2


def test_forget_of_an_object_never_observed_is_harmless(metrics: Metrics) -> None:
    metrics.forget("Trail", "security", "never-seen")
    metrics.forget("LogRetention", "security", "never-seen")


def test_each_metrics_object_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.on_aws_call(call())
    assert value(
        first, "trailkeeper_aws_calls_total", service="cloudtrail", operation="DescribeTrails", outcome="ok"
    )
    assert not has_series(
        second, "trailkeeper_aws_calls_total", service="cloudtrail", operation="DescribeTrails", outcome="ok"
    )


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        (PassReport(status={"phase": "Ready"}), "ok"),
        (PassReport(status={"phase": "Drifted"}, drift=2), "drift"),
        (PassReport(status={"phase": "Error"}), "error"),
        (PassReport(status={"phase": "Ready"}, retry_after=5.0), "error"),
        (PassReport(status={"phase": "Error"}, invalid="spec.regions: required"), "invalid"),
    ],
)
def test_outcome_of_a_pass_report(report: PassReport, expected: str) -> None:
    assert outcome_of(report) == expected


# -- AWS calls --------------------------------------------------------------------------------------


def test_aws_call_is_counted_by_outcome_and_timed(metrics: Metrics) -> None:
    metrics.on_aws_call(call(seconds=0.25))
    metrics.on_aws_call(call(outcome="TrailNotFoundException", seconds=0.05))

    base = {"service": "cloudtrail", "operation": "DescribeTrails"}
    assert value(metrics, "trailkeeper_aws_calls_total", outcome="ok", **base) == 1
    assert value(metrics, "trailkeeper_aws_calls_total", outcome="TrailNotFoundException", **base) == 1
    assert value(metrics, "trailkeeper_aws_call_duration_seconds_count", **base) == 2
    assert value(metrics, "trailkeeper_aws_call_duration_seconds_sum", **base) == pytest.approx(0.30)
    assert value(metrics, "trailkeeper_aws_throttles_total", **base) == 0


@pytest.mark.parametrize(
    "outcome",
    ["ThrottlingException", "Throttling", "SlowDown", "RequestLimitExceeded", "429", "RateLimitTimeoutError"],
)
def test_throttled_outcomes_count_as_throttles(metrics: Metrics, outcome: str) -> None:
    metrics.on_aws_call(call(outcome=outcome))
    assert (
        value(metrics, "trailkeeper_aws_throttles_total", service="cloudtrail", operation="DescribeTrails")
        == 1
    )


@pytest.mark.parametrize("outcome", ["ok", "AccessDenied", "InternalError", "404", "TrailNotFoundException"])
def test_other_outcomes_are_not_throttles(outcome: str) -> None:
    assert not is_throttle(outcome)


def test_calls_through_real_sessions_reach_the_counter(moto_endpoint: str, make_aws: MakeAws) -> None:
    metrics = Metrics()
    sessions = make_aws(moto_endpoint)
    assert sessions.recorder is not None
    sessions.recorder.add_listener(metrics.on_aws_call)

    sessions.client("sts").get_caller_identity()
    with pytest.raises(ClientError):
        sessions.client("cloudtrail").get_trail_status(Name="no-such-trail-for-metrics")

    sts = {"service": "sts", "operation": "GetCallerIdentity"}
    assert value(metrics, "trailkeeper_aws_calls_total", outcome="ok", **sts) == 1
    assert value(metrics, "trailkeeper_aws_call_duration_seconds_count", **sts) == 1
    assert value(metrics, "trailkeeper_aws_call_duration_seconds_sum", **sts) > 0
    assert (
        value(
            metrics,
            "trailkeeper_aws_calls_total",
            service="cloudtrail",
            operation="GetTrailStatus",
            outcome="TrailNotFoundException",
        )
        == 1
    )


def test_a_throttle_from_aws_reaches_the_throttle_counter(
    faulty_moto: InProcessMotoServer, fault_injector: FaultInjector, make_aws: MakeAws
) -> None:
    metrics = Metrics()
    sessions = make_aws(faulty_moto.url, max_attempts=1)
    assert sessions.recorder is not None
    sessions.recorder.add_listener(metrics.on_aws_call)
    fault_injector.add(FaultRule.throttle("cloudtrail", "DescribeTrails", count=1))

    with pytest.raises(ClientError):
        sessions.client("cloudtrail").describe_trails()
    sessions.client("cloudtrail").describe_trails()

    labels = {"service": "cloudtrail", "operation": "DescribeTrails"}
    assert value(metrics, "trailkeeper_aws_throttles_total", **labels) == 1
    assert value(metrics, "trailkeeper_aws_calls_total", outcome="ThrottlingException", **labels) == 1
    assert value(metrics, "trailkeeper_aws_calls_total", outcome="ok", **labels) == 1


# -- exposition -------------------------------------------------------------------------------------


@pytest.fixture
def served(metrics: Metrics) -> Iterator[str]:
    server = metrics.serve(0, addr="127.0.0.1")
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def test_http_endpoint_serves_parsable_metrics(metrics: Metrics, served: str) -> None:
    metrics.observe_pass("Trail", "security", "audit", 0.3, "ok", drift=0, logging_regions=2)
    metrics.on_aws_call(call())

    with urllib.request.urlopen(served, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()

    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert {
        "trailkeeper_reconcile",
        "trailkeeper_reconcile_duration_seconds",
        "trailkeeper_aws_calls",
        "trailkeeper_aws_call_duration_seconds",
        "trailkeeper_aws_throttles",
        "trailkeeper_drift",
        "trailkeeper_trails_logging",
        "trailkeeper_compliance_failed",
    } <= set(families)
    assert families["trailkeeper_reconcile"].type == "counter"
    assert families["trailkeeper_reconcile_duration_seconds"].type == "histogram"
    assert families["trailkeeper_drift"].type == "gauge"
    logging = [s for s in families["trailkeeper_trails_logging"].samples if s.labels.get("name") == "audit"]
    assert [s.value for s in logging] == [2.0]
    # Only this registry: nothing of prometheus_client's global one (process and platform collectors).
    assert not any(name.startswith(("process_", "python_")) for name in families)


def test_render_is_the_same_text_format(metrics: Metrics) -> None:
    metrics.on_aws_call(call())
    families = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    samples = [
        s for s in families["trailkeeper_aws_calls"].samples if s.name == "trailkeeper_aws_calls_total"
    ]
    assert [(s.labels, s.value) for s in samples] == [
        ({"service": "cloudtrail", "operation": "DescribeTrails", "outcome": "ok"}, 1.0)
    ]
