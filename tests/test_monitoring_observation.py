"""The Monitoring section's controls over what moto holds: filters with the CIS patterns, their alarms and
a subscribed topic pass; a missing step fails with what is missing; foreign filters do not count."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from support.cis_monitoring import GROUP, MONITORING_IDS, make_monitoring
from support.moto_server import MotoServer
from support.s3control_front import s3control_on_endpoint_host
from trailkeeper.aws.account_state import observe_account
from trailkeeper.aws.session import AwsSessions
from trailkeeper.core.compliance import evaluate

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _s3control_on_moto() -> Iterator[None]:
    with s3control_on_endpoint_host():
        yield


@pytest.fixture
def client(moto_server: MotoServer, moto_endpoint: str) -> Callable[[str], Any]:
    moto_server.reset()
    make: Callable[..., Any] = boto3.client
    return lambda service: make(service, region_name=REGION, endpoint_url=moto_endpoint)


def monitoring_results(aws: AwsSessions) -> dict[str, Any]:
    observation = observe_account(aws, None, regions=[REGION])
    return {r.control: r for r in evaluate(observation.state) if r.control in MONITORING_IDS}


def test_filters_alarms_and_a_subscribed_topic_pass_every_monitoring_control(
    aws: AwsSessions, client: Callable[[str], Any]
) -> None:
    make_monitoring(client, REGION, bucket="cis-logs")

    results = monitoring_results(aws)

    assert sorted(results) == sorted(MONITORING_IDS)
    assert all(r.passed for r in results.values()), [r.detail for r in results.values() if not r.passed]
    assert "alarm trailkeeper-unauthorized-api-calls-alarm" in results["CIS-4.1"].detail
    assert results["CIS-4.1"].cis["7.0"] == "5.1"


def test_a_topic_without_subscribers_fails_with_the_alarm_named(
    aws: AwsSessions, client: Callable[[str], Any]
) -> None:
    make_monitoring(client, REGION, bucket="cis-logs", subscribe=False)

    results = monitoring_results(aws)

    assert not results["CIS-4.3"].passed
    assert "alarm trailkeeper-root-account-usage-alarm notifies no SNS topic" in results["CIS-4.3"].detail


def test_a_filter_with_another_pattern_does_not_count(aws: AwsSessions, client: Callable[[str], Any]) -> None:
    make_monitoring(client, REGION, bucket="cis-logs")
    logs = client("logs")
    logs.delete_metric_filter(logGroupName=GROUP, filterName="trailkeeper-root-account-usage")
    logs.put_metric_filter(
        logGroupName=GROUP,
        filterName="trailkeeper-root-account-usage",
        filterPattern='{ $.userIdentity.type = "Root" }',
        metricTransformations=[
            {"metricName": "root_account_usage_metric", "metricNamespace": "CISBenchmark", "metricValue": "1"}
        ],
    )

    results = monitoring_results(aws)

    assert not results["CIS-4.3"].passed
    assert results["CIS-4.3"].detail == f"{REGION}/{GROUP}: no metric filter with the CIS pattern"
    assert results["CIS-4.4"].passed


def test_a_stopped_trail_fails_every_monitoring_control(
    aws: AwsSessions, client: Callable[[str], Any]
) -> None:
    make_monitoring(client, REGION, bucket="cis-logs")
    client("cloudtrail").stop_logging(Name="cis-audit")

    results = monitoring_results(aws)

    assert not any(r.passed for r in results.values())
    assert results["CIS-4.1"].detail == "no logging multi-region trail recording all management events"
