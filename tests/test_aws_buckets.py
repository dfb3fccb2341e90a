"""BucketClient against moto over HTTP, and against botocore's Stubber for other accounts' buckets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from support.operations import mutating, record_operations
from trailkeeper.aws.buckets import (
    PUBLIC_ACCESS_BLOCK_ALL,
    BucketClient,
    BucketNotOwnedError,
    BucketOwnedElsewhereError,
)
from trailkeeper.aws.errors import classify
from trailkeeper.aws.session import AwsSessions

HOME = "us-east-1"
EU = "eu-west-1"
BUCKET = "trailkeeper-test-logs"
OWNER = {"trailkeeper.io/owner": "security/audit"}
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/0b1c2d3e-1111-2222-3333-444455556666"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "AWSCloudTrailAclCheck",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:GetBucketAcl",
            "Resource": f"arn:aws:s3:::{BUCKET}",
        }
    ],
}
EXPIRE_RULE = {
    "ID": "trailkeeper-security-audit",
    "Status": "Enabled",
    "Filter": {"Prefix": "AWSLogs/"},
    "Expiration": {"Days": 365},
}


@pytest.fixture
def buckets(aws: AwsSessions) -> BucketClient:
    return BucketClient(aws.client("s3", HOME), HOME)


@pytest.fixture
def eu_buckets(aws: AwsSessions) -> BucketClient:
    return BucketClient(aws.client("s3", EU), EU)


# -- create -------------------------------------------------------------------------------------------


def test_create_in_us_east_1_has_no_location_constraint(buckets: BucketClient) -> None:
    assert buckets.create(BUCKET, region=HOME, kms_key_id=None, tags=OWNER) is True

    assert buckets.client.get_bucket_location(Bucket=BUCKET).get("LocationConstraint") is None
    assert buckets.region_of(BUCKET) == HOME


def test_create_in_eu_west_1_names_its_location(eu_buckets: BucketClient, buckets: BucketClient) -> None:
    eu_buckets.create(BUCKET, region=EU, kms_key_id=None, tags=OWNER)

    assert eu_buckets.client.get_bucket_location(Bucket=BUCKET)["LocationConstraint"] == EU
    # Asked through a client of another region, the bucket still reports where it lives.
    assert buckets.region_of(BUCKET) == EU
    assert eu_buckets.observe(BUCKET).region == EU


def test_create_blocks_public_access_enables_versioning_encrypts_and_tags(buckets: BucketClient) -> None:
    buckets.create(BUCKET, region=HOME, kms_key_id=None, tags={**OWNER, "team": "security"})

    observed = buckets.observe(BUCKET)

    assert observed.exists and observed.owned_by_caller
    assert observed.public_access_block == dict(PUBLIC_ACCESS_BLOCK_ALL)
    assert observed.versioning == "Enabled"
    assert observed.encryption is not None
    assert observed.encryption["SSEAlgorithm"] == "AES256"
    assert not observed.encryption.get("BucketKeyEnabled")
    assert observed.tags == {**OWNER, "team": "security"}
    assert observed.policy is None
    assert observed.lifecycle_rules == []
    assert observed.logging_enabled is False


def test_create_with_a_kms_key_uses_sse_kms_with_the_bucket_key(buckets: BucketClient) -> None:
    buckets.create(BUCKET, region=HOME, kms_key_id=KMS_KEY, tags=OWNER)

    observed = buckets.observe(BUCKET, parts={"encryption"})

    assert observed.encryption == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": KMS_KEY,
        "BucketKeyEnabled": True,
    }


@pytest.mark.parametrize("region", [HOME, EU])
def test_create_twice_leaves_the_bucket_alone(aws: AwsSessions, region: str) -> None:
    buckets = BucketClient(aws.client("s3", region), region)
    buckets.create(BUCKET, region=region, kms_key_id=None, tags=OWNER)
    operations = record_operations(buckets.client)

    assert buckets.create(BUCKET, region=region, kms_key_id=KMS_KEY, tags={"other": "tags"}) is False

    assert mutating(operations) == []
    assert buckets.observe(BUCKET).tags == OWNER


# -- observe ------------------------------------------------------------------------------------------


def test_observe_makes_no_mutating_call(buckets: BucketClient) -> None:
    buckets.create(BUCKET, region=HOME, kms_key_id=None, tags=OWNER)
    buckets.put_policy(POLICY, bucket=BUCKET)
    buckets.put_lifecycle([EXPIRE_RULE], bucket=BUCKET)
    operations = record_operations(buckets.client)

    observed = buckets.observe(BUCKET)

    assert observed.policy == POLICY
    assert mutating(operations) == []
    assert sorted(operations) == [
        "GetBucketEncryption",
        "GetBucketLifecycleConfiguration",
        "GetBucketLogging",
        "GetBucketPolicy",
        "GetBucketTagging",
        "GetBucketVersioning",
        "GetPublicAccessBlock",
        "HeadBucket",
    ]


@pytest.mark.parametrize(
    ("part", "operation"), [("policy", "GetBucketPolicy"), ("lifecycle", "GetBucketLifecycleConfiguration")]
)
def test_observe_of_one_part_makes_one_call(buckets: BucketClient, part: str, operation: str) -> None:
    buckets.create(BUCKET, region=HOME, kms_key_id=None, tags=OWNER)
    operations = record_operations(buckets.client)

    observed = buckets.observe(BUCKET, parts={part})

    assert operations == [operation]
    assert observed.exists and observed.owned_by_caller
    assert observed.parts_read == frozenset({part})


@pytest.mark.parametrize("parts", [None, {"policy"}, {"lifecycle"}])
def test_observe_of_a_missing_bucket_says_it_does_not_exist(
    buckets: BucketClient, parts: set[str] | None
) -> None:
    observed = buckets.observe("trailkeeper-no-such-bucket", parts=parts)

    assert not observed.exists
    assert buckets.region_of("trailkeeper-no-such-bucket") is None


def test_observe_rejects_unknown_parts(buckets: BucketClient) -> None:
    with pytest.raises(ValueError, match="unknown bucket parts"):
        buckets.observe(BUCKET, parts={"acl"})


# -- policy / lifecycle -------------------------------------------------------------------------------


def test_put_policy_round_trips_and_none_deletes_it(buckets: BucketClient) -> None:
    buckets.create(BUCKET, region=HOME, kms_key_id=None, tags=OWNER)

    buckets.put_policy(POLICY)
    written = buckets.observe(BUCKET, parts={"policy"}).policy
    buckets.put_policy(None)
    deleted = buckets.observe(BUCKET, parts={"policy"}).policy

    assert (written, deleted) == (POLICY, None)


def test_put_policy_acts_on_the_bucket_last_observed(aws: AwsSessions) -> None:
    s3 = aws.client("s3", HOME)
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket="trailkeeper-other-logs")
    buckets = BucketClient(s3, HOME)
    buckets.observe("trailkeeper-other-logs", parts={"policy"})

    buckets.put_policy(POLICY)

    assert buckets.observe("trailkeeper-other-logs", parts={"policy"}).policy == POLICY
    assert buckets.observe(BUCKET, parts={"policy"}).policy is None


def test_put_policy_without_any_bucket_is_refused(aws: AwsSessions) -> None:
    with pytest.raises(ValueError, match="no bucket"):
        BucketClient(aws.client("s3", HOME), HOME).put_policy(POLICY)


def test_put_lifecycle_round_trips_and_empty_deletes_it(buckets: BucketClient) -> None:
    buckets.create(BUCKET, region=HOME, kms_key_id=None, tags=OWNER)
    noncurrent = {
        "ID": "someone-else",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
    }

    buckets.put_lifecycle([EXPIRE_RULE, noncurrent], bucket=BUCKET)
    written = buckets.observe(BUCKET, parts={"lifecycle"}).lifecycle_rules
    buckets.put_lifecycle([], bucket=BUCKET)
    deleted = buckets.observe(BUCKET, parts={"lifecycle"}).lifecycle_rules

    assert {r["ID"]: r.get("Expiration") for r in written} == {
        "trailkeeper-security-audit": {"Days": 365},
        "someone-else": None,
    }
    assert deleted == []


# -- settings of buckets trailkeeper made -------------------------------------------------------------


def test_ensure_settings_puts_back_only_what_drifted(buckets: BucketClient) -> None:
    buckets.create(BUCKET, region=HOME, kms_key_id=KMS_KEY, tags=OWNER)
    s3 = buckets.client
    s3.put_public_access_block(
        Bucket=BUCKET,
        PublicAccessBlockConfiguration={**PUBLIC_ACCESS_BLOCK_ALL, "RestrictPublicBuckets": False},  # type: ignore[typeddict-item]
    )
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})

    corrected = buckets.ensure_settings(buckets.observe(BUCKET), kms_key_id=KMS_KEY)
    observed = buckets.observe(BUCKET)
    operations = record_operations(s3)
    again = buckets.ensure_settings(observed, kms_key_id=KMS_KEY)

    assert corrected == ["PublicAccessBlock", "Versioning"]
    assert observed.public_access_block == dict(PUBLIC_ACCESS_BLOCK_ALL)
    assert observed.versioning == "Enabled"
    assert (again, operations) == ([], [])


def test_ensure_settings_switches_encryption_to_the_desired_key(buckets: BucketClient) -> None:
    buckets.create(BUCKET, region=HOME, kms_key_id=None, tags=OWNER)

    corrected = buckets.ensure_settings(buckets.observe(BUCKET), kms_key_id=KMS_KEY)

    assert corrected == ["Encryption"]
    assert buckets.observe(BUCKET, parts={"encryption"}).encryption == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": KMS_KEY,
        "BucketKeyEnabled": True,
    }


def test_ensure_settings_refuses_a_bucket_without_the_owner_tag(buckets: BucketClient) -> None:
    buckets.client.create_bucket(Bucket=BUCKET)
    operations = record_operations(buckets.client)

    with pytest.raises(BucketNotOwnedError):
        buckets.ensure_settings(buckets.observe(BUCKET), kms_key_id=None)

    assert mutating(operations) == []


def test_ensure_settings_needs_the_settings_observed(buckets: BucketClient) -> None:
    buckets.create(BUCKET, region=HOME, kms_key_id=None, tags=OWNER)

    with pytest.raises(ValueError, match="needs the bucket parts"):
        buckets.ensure_settings(buckets.observe(BUCKET, parts={"policy"}), kms_key_id=None)


# -- emptiness and delete -----------------------------------------------------------------------------


def test_a_bucket_holding_objects_is_not_deleted(buckets: BucketClient) -> None:
    buckets.create(BUCKET, region=HOME, kms_key_id=None, tags=OWNER)
    buckets.client.put_object(Bucket=BUCKET, Key="AWSLogs/123456789012/CloudTrail/log.json.gz", Body=b"{}")

    assert buckets.is_empty(BUCKET) is False
    assert buckets.delete_if_empty(BUCKET) is False
    assert buckets.observe(BUCKET, parts={"head"}).exists


def test_a_versioned_bucket_holding_only_old_versions_is_not_deleted(buckets: BucketClient) -> None:
    buckets.create(BUCKET, region=HOME, kms_key_id=None, tags=OWNER)
    s3 = buckets.client
    s3.put_object(Bucket=BUCKET, Key="log.json.gz", Body=b"{}")
    # A delete in a versioned bucket leaves the version and a delete marker: ListObjects shows nothing.
    s3.delete_object(Bucket=BUCKET, Key="log.json.gz")
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0

    assert buckets.delete_if_empty(BUCKET) is False
    assert buckets.observe(BUCKET, parts={"head"}).exists


def test_an_empty_bucket_is_deleted_and_a_missing_one_is_success(buckets: BucketClient) -> None:
    buckets.create(BUCKET, region=HOME, kms_key_id=None, tags=OWNER)

    assert buckets.delete_if_empty(BUCKET) is True
    assert buckets.delete_if_empty(BUCKET) is True
    assert not buckets.observe(BUCKET).exists


# -- another account's bucket: moto serves every account's bucket to everyone, so stub S3's 403 ----------


@pytest.fixture
def stubbed() -> Iterator[tuple[BucketClient, Stubber]]:
    client = boto3.client(
        "s3", region_name=HOME, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stubber:
        yield BucketClient(client, HOME), stubber
        stubber.assert_no_pending_responses()


def _forbidden(region: str) -> dict[str, Any]:
    return {"HTTPHeaders": {"x-amz-bucket-region": region}}


def test_a_bucket_of_another_account_is_observed_as_not_owned(stubbed: tuple[BucketClient, Stubber]) -> None:
    buckets, stubber = stubbed
    stubber.add_client_error("head_bucket", "403", "Forbidden", 403, response_meta=_forbidden(EU))

    observed = buckets.observe(BUCKET)

    assert observed.exists and not observed.owned_by_caller
    assert observed.region == EU
    assert observed.parts_read == frozenset({"head"})


def test_a_policy_read_refused_by_another_account_is_not_owned(stubbed: tuple[BucketClient, Stubber]) -> None:
    buckets, stubber = stubbed
    stubber.add_client_error("get_bucket_policy", "MethodNotAllowed", http_status_code=405)

    observed = buckets.observe(BUCKET, parts={"policy"})

    assert observed.exists and not observed.owned_by_caller and observed.policy is None


def test_the_region_of_another_accounts_bucket_comes_from_the_403(
    stubbed: tuple[BucketClient, Stubber],
) -> None:
    buckets, stubber = stubbed
    stubber.add_client_error("head_bucket", "403", "Forbidden", 403, response_meta=_forbidden(EU))

    assert buckets.region_of(BUCKET) == EU


def test_create_of_a_name_taken_by_another_account_raises(stubbed: tuple[BucketClient, Stubber]) -> None:
    buckets, stubber = stubbed
    stubber.add_client_error("head_bucket", "404", "Not Found", 404)
    stubber.add_client_error("create_bucket", "BucketAlreadyExists", http_status_code=409)

    with pytest.raises(BucketOwnedElsewhereError) as raised:
        buckets.create(BUCKET, region=HOME, kms_key_id=None, tags=OWNER)

    failure = classify(raised.value)
    assert (failure.code, failure.kind, failure.retryable) == ("BucketAlreadyExists", "invalid", False)


def test_create_racing_another_create_of_ours_is_success(stubbed: tuple[BucketClient, Stubber]) -> None:
    buckets, stubber = stubbed
    stubber.add_client_error("head_bucket", "404", "Not Found", 404)
    stubber.add_client_error("create_bucket", "BucketAlreadyOwnedByYou", http_status_code=409)

    assert buckets.create(BUCKET, region=HOME, kms_key_id=None, tags=OWNER) is False
