"""The limits front refuses what AWS refuses, with AWS's codes, in the moto every end-to-end test uses."""

from __future__ import annotations

import json
from typing import Any

import botocore.exceptions
import pytest

from support.limits import BUCKET_POLICY_BYTES, TOPIC_POLICY_BYTES, policy_size
from trailkeeper.aws.session import AwsSessions

REGION = "us-east-1"
BUCKET = "limits-logs"


def _code(error: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def _bucket(aws: AwsSessions) -> Any:
    s3 = aws.client("s3", REGION)
    s3.create_bucket(Bucket=BUCKET)
    return s3


def test_a_sixth_trail_in_a_region_is_refused_and_a_multi_region_one_counts_everywhere(
    aws: AwsSessions,
) -> None:
    _bucket(aws)
    east = aws.client("cloudtrail", REGION)
    west = aws.client("cloudtrail", "us-west-2")
    east.create_trail(Name="everywhere", S3BucketName=BUCKET, IsMultiRegionTrail=True)
    for index in range(4):
        west.create_trail(Name=f"west-{index}", S3BucketName=BUCKET)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        west.create_trail(Name="west-5", S3BucketName=BUCKET)
    assert _code(refused) == "MaximumNumberOfTrailsExceededException"
    assert "already has 5 trails in us-west-2" in str(refused.value)
    # us-east-1 holds one trail: four more fit, and a multi-region one no longer does (us-west-2 is full).
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        east.create_trail(Name="second-everywhere", S3BucketName=BUCKET, IsMultiRegionTrail=True)
    assert _code(refused) == "MaximumNumberOfTrailsExceededException"
    east.create_trail(Name="east-2", S3BucketName=BUCKET)


def test_event_selectors_beyond_the_trail_limits_are_refused(aws: AwsSessions) -> None:
    _bucket(aws)
    trails = aws.client("cloudtrail", REGION)
    trails.create_trail(Name="selected", S3BucketName=BUCKET)
    selector = {"ReadWriteType": "All", "IncludeManagementEvents": True}
    trails.put_event_selectors(TrailName="selected", EventSelectors=[selector] * 5)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        trails.put_event_selectors(TrailName="selected", EventSelectors=[selector] * 6)
    assert _code(refused) == "InvalidEventSelectorsException"
    data = [f"arn:aws:s3:::bucket-{i}/" for i in range(251)]
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        trails.put_event_selectors(
            TrailName="selected",
            EventSelectors=[{**selector, "DataResources": [{"Type": "AWS::S3::Object", "Values": data}]}],
        )
    assert "250" in str(refused.value)
    conditions = [
        {"Field": "eventCategory", "Equals": ["Data"]},
        {"Field": "resources.ARN", "StartsWith": [f"arn:aws:s3:::b-{i}/" for i in range(500)]},
    ]
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        trails.put_event_selectors(
            TrailName="selected", AdvancedEventSelectors=[{"Name": "many", "FieldSelectors": conditions}]
        )
    assert _code(refused) == "InvalidEventSelectorsException" and "500" in str(refused.value)


def test_more_than_fifty_tags_are_refused_on_trails_and_buckets(aws: AwsSessions) -> None:
    s3 = _bucket(aws)
    trails = aws.client("cloudtrail", REGION)
    tags = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    arn = trails.create_trail(Name="tagged", S3BucketName=BUCKET, TagsList=tags)["TrailARN"]
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        trails.add_tags(ResourceId=arn, TagsList=[{"Key": "one-more", "Value": "v"}])
    assert _code(refused) == "TagsLimitExceededException"
    trails.add_tags(ResourceId=arn, TagsList=[{"Key": "k0", "Value": "replaced"}])  # a key it has
    s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": tags})
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": [*tags, {"Key": "x", "Value": "v"}]})
    assert _code(refused) == "BadRequest"


def _policy(statements: int, resource: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": f"S{i}",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:GetBucketAcl",
                "Resource": resource,
            }
            for i in range(statements)
        ],
    }


def test_a_bucket_policy_over_20_kb_is_refused_counted_without_whitespace(aws: AwsSessions) -> None:
    s3 = _bucket(aws)
    resource = f"arn:aws:s3:::{BUCKET}"
    fits = _policy(1, resource)
    while policy_size(json.dumps(_policy(len(fits["Statement"]) + 1, resource))) <= BUCKET_POLICY_BYTES:
        fits = _policy(len(fits["Statement"]) + 1, resource)
    # Indented, the text is far above 20 KB; compact, it fits: AWS does not count the whitespace.
    assert len(json.dumps(fits, indent=4)) > BUCKET_POLICY_BYTES
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(fits, indent=4))
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(_policy(len(fits["Statement"]) + 1, resource)))
    assert _code(refused) == "PolicyTooLarge"


def test_a_topic_policy_over_30_kb_is_refused(aws: AwsSessions) -> None:
    sns = aws.client("sns", REGION)
    arn = sns.create_topic(Name="limits")["TopicArn"]
    big = _policy(99, arn)
    big["Statement"][0]["Condition"] = {"StringEquals": {"aws:SourceArn": ["x" * 100] * 320}}
    assert policy_size(json.dumps(big)) > TOPIC_POLICY_BYTES
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        sns.set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(big))
    assert _code(refused) == "InvalidParameter"
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        sns.set_topic_attributes(
            TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(_policy(101, arn))
        )
    assert _code(refused) == "InvalidParameter"
    sns.set_topic_attributes(
        TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(_policy(100, arn))
    )
