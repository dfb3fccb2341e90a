"""The bucket access front answers as AWS does: another account's bucket is refused with AccessDenied, and a
trail whose bucket policy does not let CloudTrail deliver is refused with InsufficientS3BucketPolicy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest

from support.bucket_access import allows
from support.faults import FaultInjector, moto_app
from support.limits import LimitsFront
from support.moto_server import InProcessMotoServer, MakeAws
from trailkeeper.aws.session import AccountRef, AwsSessions

REGION = "us-east-1"
CENTRAL = "central-org-logs"
OWNER = "123456789012"
MEMBER = "200000000001"
STRANGER = "200000000002"
MEMBER_ROLE = AccountRef(f"arn:aws:iam::{MEMBER}:role/member")


def _code(error: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def documented_policy(accounts: list[str], prefix: str = "") -> dict[str, Any]:
    """The CloudTrail User Guide's "Setting bucket policy for multiple accounts"."""
    lead = f"{prefix}/" if prefix else ""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:GetBucketAcl",
                "Resource": f"arn:aws:s3:::{CENTRAL}",
            },
            {
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": [f"arn:aws:s3:::{CENTRAL}/{lead}AWSLogs/{a}/*" for a in accounts],
                "Condition": {
                    "StringEquals": {
                        "s3:x-amz-acl": "bucket-owner-full-control",
                        "aws:SourceAccount": accounts,
                    }
                },
            },
        ],
    }


def _central(aws: AwsSessions, policy: dict[str, Any] | None) -> Any:
    s3 = aws.client("s3", REGION)
    s3.create_bucket(Bucket=CENTRAL)
    if policy is not None:
        s3.put_bucket_policy(Bucket=CENTRAL, Policy=json.dumps(policy))
    return s3


def test_another_accounts_bucket_is_refused_with_access_denied_and_its_owner_is_served(
    aws: AwsSessions,
) -> None:
    owner = _central(aws, documented_policy([OWNER, MEMBER]))
    member = aws.client("s3", REGION, MEMBER_ROLE)
    reads = [
        lambda: member.get_bucket_policy(Bucket=CENTRAL),
        lambda: member.get_bucket_tagging(Bucket=CENTRAL),
        lambda: member.get_bucket_versioning(Bucket=CENTRAL),
        lambda: member.get_public_access_block(Bucket=CENTRAL),
        lambda: member.put_bucket_policy(Bucket=CENTRAL, Policy="{}"),
        lambda: member.put_object(Bucket=CENTRAL, Key="AWSLogs/x", Body=b"x"),
    ]
    for call in reads:
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            call()
        assert _code(refused) == "AccessDenied"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(botocore.exceptions.ClientError) as head:
        member.head_bucket(Bucket=CENTRAL)
    assert head.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert head.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == REGION
    # The policy the member tried to write is not there; the owner still reads and writes its bucket.
    assert json.loads(owner.get_bucket_policy(Bucket=CENTRAL)["Policy"]) == documented_policy([OWNER, MEMBER])
    owner.put_bucket_versioning(Bucket=CENTRAL, VersioningConfiguration={"Status": "Enabled"})


@pytest.fixture
def checked_aws(make_aws: MakeAws) -> Iterator[AwsSessions]:
    """A moto whose front checks trails into their own account's bucket too (off by default, see the
    front: many tests stage foreign trails on bare buckets)."""
    front = LimitsFront(moto_app())
    front.access.check_own_account = True
    with InProcessMotoServer(FaultInjector(front)) as server:
        yield make_aws(server.url)


def test_a_trail_needs_a_bucket_policy_granting_its_account_path(checked_aws: AwsSessions) -> None:
    aws = checked_aws
    _central(aws, None)
    own = aws.client("cloudtrail", REGION)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        own.create_trail(Name="bare", S3BucketName=CENTRAL)
    assert _code(refused) == "InsufficientS3BucketPolicyException"
    assert f"Incorrect S3 bucket policy is detected for bucket: {CENTRAL}" in str(refused.value)
    aws.client("s3", REGION).put_bucket_policy(Bucket=CENTRAL, Policy=json.dumps(documented_policy([OWNER])))
    own.create_trail(Name="granted", S3BucketName=CENTRAL)
    member = aws.client("cloudtrail", REGION, MEMBER_ROLE)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        member.create_trail(Name="member", S3BucketName=CENTRAL)
    assert _code(refused) == "InsufficientS3BucketPolicyException"
    aws.client("s3", REGION).put_bucket_policy(
        Bucket=CENTRAL, Policy=json.dumps(documented_policy([OWNER, MEMBER]))
    )
    member.create_trail(Name="member", S3BucketName=CENTRAL)
    # The grant is for the unprefixed path: a prefix moves the trail's logs outside it.
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        member.update_trail(Name="member", S3BucketName=CENTRAL, S3KeyPrefix="team")
    assert _code(refused) == "InsufficientS3BucketPolicyException"


def test_conditions_and_denies_are_evaluated_with_cloudtrails_request_context() -> None:
    context = {"aws:SourceAccount": MEMBER, "aws:SourceArn": f"arn:aws:cloudtrail:{REGION}:{MEMBER}:trail/t"}
    resource = f"arn:aws:s3:::{CENTRAL}/AWSLogs/{MEMBER}/CloudTrail/x.json.gz"
    write = documented_policy([MEMBER])
    with_acl = {**context, "s3:x-amz-acl": "bucket-owner-full-control"}
    assert allows(write, "s3:PutObject", resource, with_acl)
    assert not allows(write, "s3:PutObject", resource, context)
    assert not allows(write, "s3:PutObject", resource, {**with_acl, "aws:SourceAccount": STRANGER})
    by_arn = json.loads(json.dumps(write))
    by_arn["Statement"][1]["Condition"] = {
        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudtrail:*:{MEMBER}:trail/*"}
    }
    assert allows(by_arn, "s3:PutObject", resource, with_acl)
    deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": f"arn:aws:s3:::{CENTRAL}/*"}
    by_arn["Statement"].append(deny)
    assert not allows(by_arn, "s3:PutObject", resource, with_acl)


def test_by_default_only_a_trail_into_another_accounts_bucket_is_checked(aws: AwsSessions) -> None:
    _central(aws, None)
    aws.client("cloudtrail", REGION).create_trail(Name="bare", S3BucketName=CENTRAL)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        aws.client("cloudtrail", REGION, MEMBER_ROLE).create_trail(Name="member", S3BucketName=CENTRAL)
    assert _code(refused) == "InsufficientS3BucketPolicyException"
