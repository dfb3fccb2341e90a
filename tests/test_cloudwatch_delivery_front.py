"""The moto front that answers GetTrailStatus with a CloudWatch Logs delivery time, as AWS does for a trail
wired to a log group; and CIS-3.4 judged on it by `trailkeeper audit`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from support.cloudwatch_delivery import CloudWatchDeliveryFront
from support.faults import FaultInjector, moto_app
from support.moto_server import MOTO_DEFAULT_ACCOUNT, TEST_REGION, InProcessMotoServer
from support.s3control_front import s3control_on_endpoint_host
from trailkeeper.cli.audit import audit

GROUP_ARN = f"arn:aws:logs:{TEST_REGION}:{MOTO_DEFAULT_ACCOUNT}:log-group:trail-logs:*"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[CloudWatchDeliveryFront, str]]:
    front = CloudWatchDeliveryFront(moto_app())
    with InProcessMotoServer(FaultInjector(front)) as server:
        yield front, server.url


@pytest.fixture
def front(served: tuple[CloudWatchDeliveryFront, str]) -> CloudWatchDeliveryFront:
    served[0].clear()
    return served[0]


@pytest.fixture
def cloudtrail(served: tuple[CloudWatchDeliveryFront, str]) -> Any:
    url = served[1]
    boto3.client("s3", region_name=TEST_REGION, endpoint_url=url).create_bucket(Bucket="delivery-logs")
    client = boto3.client("cloudtrail", region_name=TEST_REGION, endpoint_url=url)
    yield client
    for trail in client.describe_trails()["trailList"]:
        client.delete_trail(Name=trail["Name"])


def _trail(cloudtrail: Any, name: str, *, group: bool = True) -> None:
    extra = {"CloudWatchLogsLogGroupArn": GROUP_ARN, "CloudWatchLogsRoleArn": "arn:aws:iam::1:role/r"}
    cloudtrail.create_trail(
        Name=name, S3BucketName="delivery-logs", IsMultiRegionTrail=True, **(extra if group else {})
    )
    cloudtrail.start_logging(Name=name)


def test_a_trail_with_a_log_group_has_delivered_recently(
    front: CloudWatchDeliveryFront, cloudtrail: Any
) -> None:
    _trail(cloudtrail, "with-group")
    delivered = cloudtrail.get_trail_status(Name="with-group")["LatestCloudWatchLogsDeliveryTime"]
    assert timedelta(minutes=4) < datetime.now(UTC) - delivered < timedelta(minutes=6)


def test_each_trail_can_have_its_own_age_or_none(front: CloudWatchDeliveryFront, cloudtrail: Any) -> None:
    _trail(cloudtrail, "stale")
    _trail(cloudtrail, "fresh-one")
    front.set_age("stale", timedelta(days=3))
    front.set_age("fresh-one", None)
    stale = cloudtrail.get_trail_status(Name="stale")["LatestCloudWatchLogsDeliveryTime"]
    assert datetime.now(UTC) - stale > timedelta(days=2)
    assert "LatestCloudWatchLogsDeliveryTime" not in cloudtrail.get_trail_status(Name="fresh-one")


def test_a_trail_without_a_log_group_keeps_moto_answer(
    front: CloudWatchDeliveryFront, cloudtrail: Any
) -> None:
    _trail(cloudtrail, "no-group", group=False)
    status = cloudtrail.get_trail_status(Name="no-group")
    assert status["IsLogging"] is True
    assert "LatestCloudWatchLogsDeliveryTime" not in status


@pytest.mark.parametrize(
    ("age", "state"), [(timedelta(minutes=5), "Pass"), (timedelta(days=3), "Fail"), (None, "Unknown")]
)
def test_audit_judges_cis_3_4_by_the_delivery_age(
    served: tuple[CloudWatchDeliveryFront, str],
    front: CloudWatchDeliveryFront,
    cloudtrail: Any,
    age: timedelta | None,
    state: str,
) -> None:
    _trail(cloudtrail, "judged")
    front.set_age("judged", age)
    with s3control_on_endpoint_host():
        result = CliRunner().invoke(
            audit, ["--aws-endpoint-url", served[1], "--regions", TEST_REGION, "--format", "json"]
        )
    verdicts = {e["control"]: e["state"] for e in json.loads(result.stdout) if e["trail"] == "judged"}
    assert verdicts["CIS-3.4"] == state
