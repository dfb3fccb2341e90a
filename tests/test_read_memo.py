"""Shared read answers (aws/read_memo.py) through real clients against moto: what is shared, for how long,
per region, and what a write forgets."""

from __future__ import annotations

import boto3
import pytest

from trailkeeper.aws.session import AwsSessions

BUCKETS = {"us-east-1": "memo-logs-east", "eu-west-1": "memo-logs-west"}


@pytest.fixture
def trails(aws: AwsSessions) -> AwsSessions:
    """One trail named `memo` in each of two regions, made directly (not through the recorder)."""
    for region, bucket in BUCKETS.items():
        s3 = boto3.client("s3", region_name=region, endpoint_url=aws.endpoint_url)
        location = (
            {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        s3.create_bucket(Bucket=bucket, **location)
        cloudtrail = boto3.client("cloudtrail", region_name=region, endpoint_url=aws.endpoint_url)
        cloudtrail.create_trail(Name="memo", S3BucketName=bucket)
    return aws


def sent(aws: AwsSessions, operation: str) -> int:
    assert aws.recorder is not None
    return aws.recorder.counts()[("cloudtrail", operation)]


def test_outside_a_scope_every_read_goes_to_aws(trails: AwsSessions) -> None:
    client = trails.client("cloudtrail", "us-east-1")
    for _ in range(3):
        client.get_trail_status(Name="memo")
    assert sent(trails, "GetTrailStatus") == 3


def test_within_a_scope_a_read_is_answered_once_and_each_caller_gets_its_own_copy(
    trails: AwsSessions,
) -> None:
    client = trails.client("cloudtrail", "us-east-1")
    with trails.memo.scope(60.0):
        first = client.describe_trails(includeShadowTrails=True)
        first["trailList"].clear()
        second = client.describe_trails(includeShadowTrails=True)
    assert sent(trails, "DescribeTrails") == 1
    assert [t["Name"] for t in second["trailList"]] == ["memo"]
    # A read the memo does not hold is always sent.
    with trails.memo.scope(60.0):
        client.list_trails()
        client.list_trails()
    assert sent(trails, "ListTrails") == 2


def test_the_same_request_in_another_region_is_another_question(trails: AwsSessions) -> None:
    with trails.memo.scope(60.0):
        east = trails.client("cloudtrail", "us-east-1").describe_trails(includeShadowTrails=True)
        west = trails.client("cloudtrail", "eu-west-1").describe_trails(includeShadowTrails=True)
    assert sent(trails, "DescribeTrails") == 2
    assert east["trailList"][0]["S3BucketName"] == BUCKETS["us-east-1"]
    assert west["trailList"][0]["S3BucketName"] == BUCKETS["eu-west-1"]


def test_a_write_forgets_the_answers_of_its_service_and_an_old_answer_is_not_taken(
    trails: AwsSessions,
) -> None:
    client = trails.client("cloudtrail", "us-east-1")
    with trails.memo.scope(60.0):
        assert client.get_trail_status(Name="memo")["IsLogging"] is False
        client.start_logging(Name="memo")
        assert client.get_trail_status(Name="memo")["IsLogging"] is True
    assert sent(trails, "GetTrailStatus") == 2
    with trails.memo.scope(0.0):
        client.get_trail_status(Name="memo")
    assert sent(trails, "GetTrailStatus") == 3
