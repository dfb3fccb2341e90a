"""The bucket policy holds exactly the statements the CloudTrail User Guide documents; parliament agrees.

The statements every trail needs are shared by the Trails of a bucket (core.bucket_share, tested on its own
in test_bucket_share); here one Trail's whole policy is checked, its own statements beside the shared ones."""

from __future__ import annotations

import json
import re
from typing import Any

import parliament
import pytest

from trailkeeper.core.bucket_policy import desired_bucket_statements
from trailkeeper.core.bucket_share import (
    ACL_CHECK_SID,
    DENY_INSECURE_TRANSPORT_SID,
    BucketShare,
    desired_bucket_policy,
    is_shared_sid,
    write_sid,
)
from trailkeeper.core.naming import (
    PURPOSE_BUCKET_ACL_CHECK,
    PURPOSE_BUCKET_WRITE,
    PURPOSE_DENY_INSECURE_TRANSPORT,
    PURPOSE_ORGANIZATION_WRITE,
    PURPOSE_SOURCE_ACCOUNTS_ACL_CHECK,
    PURPOSE_SOURCE_ACCOUNTS_WRITE,
    is_trailkeeper_sid,
    owner_sids,
    statement_sid,
)

OWNER = "security/audit"
ACCOUNT = "123456789012"
TRAIL_E = "arn:aws:cloudtrail:us-east-1:123456789012:trail/audit"
TRAIL_W = "arn:aws:cloudtrail:eu-west-1:123456789012:trail/audit"


def statements(**overrides: Any) -> list[dict[str, Any]]:
    arguments: dict[str, Any] = {
        "owner": OWNER,
        "bucket": "acme-audit",
        "key_prefix": "",
        "account_id": ACCOUNT,
        "trail_arns": [TRAIL_W, TRAIL_E],
        "source_accounts": [],
        "organization_id": None,
    }
    arguments.update(overrides)
    share = BucketShare(
        arguments.pop("bucket"),
        arguments.pop("key_prefix"),
        arguments.pop("account_id"),
        "audit",
        arguments.pop("partition", "aws"),
    )
    policy = desired_bucket_policy(share=share, **arguments)
    return list(policy["Statement"])


def by_purpose(result: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    purposes = {
        statement_sid(OWNER, p): p
        for p in (
            PURPOSE_SOURCE_ACCOUNTS_ACL_CHECK,
            PURPOSE_SOURCE_ACCOUNTS_WRITE,
            PURPOSE_ORGANIZATION_WRITE,
        )
    }
    purposes[ACL_CHECK_SID] = PURPOSE_BUCKET_ACL_CHECK
    purposes[DENY_INSECURE_TRANSPORT_SID] = PURPOSE_DENY_INSECURE_TRANSPORT
    for statement in result:
        if str(statement["Sid"]).startswith("TrailkeeperWrite"):
            purposes[statement["Sid"]] = PURPOSE_BUCKET_WRITE
    return {purposes[s["Sid"]]: s for s in result}


def test_a_plain_bucket_gets_the_acl_check_the_write_and_the_tls_deny() -> None:
    result = by_purpose(statements())
    assert result == {
        PURPOSE_BUCKET_ACL_CHECK: {
            "Sid": ACL_CHECK_SID,
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:GetBucketAcl",
            "Resource": "arn:aws:s3:::acme-audit",
            "Condition": {"StringEquals": {"aws:SourceAccount": [ACCOUNT]}},
        },
        PURPOSE_BUCKET_WRITE: {
            "Sid": write_sid(""),
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": ["arn:aws:s3:::acme-audit/AWSLogs/123456789012/*"],
            "Condition": {
                "StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"},
                # The Trail's trail in every region it records (us-east-1 and eu-west-1 here).
                "ArnLike": {"aws:SourceArn": ["arn:aws:cloudtrail:*:123456789012:trail/audit"]},
            },
        },
        PURPOSE_DENY_INSECURE_TRANSPORT: {
            "Sid": DENY_INSECURE_TRANSPORT_SID,
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::acme-audit", "arn:aws:s3:::acme-audit/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    }


@pytest.mark.parametrize(
    ("key_prefix", "resource"),
    [
        ("", "arn:aws:s3:::acme-audit/AWSLogs/123456789012/*"),
        ("cloudtrail", "arn:aws:s3:::acme-audit/cloudtrail/AWSLogs/123456789012/*"),
        ("org/prod", "arn:aws:s3:::acme-audit/org/prod/AWSLogs/123456789012/*"),
    ],
)
def test_the_write_path_is_below_the_key_prefix(key_prefix: str, resource: str) -> None:
    assert by_purpose(statements(key_prefix=key_prefix))[PURPOSE_BUCKET_WRITE]["Resource"] == [resource]


def test_source_accounts_get_one_write_path_each_conditioned_on_their_account() -> None:
    result = by_purpose(
        statements(key_prefix="logs", source_accounts=["333333333333", "222222222222", ACCOUNT])
    )
    accounts = ["222222222222", "333333333333"]  # the bucket's own account is covered by the bucket write
    assert result[PURPOSE_SOURCE_ACCOUNTS_ACL_CHECK] == {
        "Sid": statement_sid(OWNER, PURPOSE_SOURCE_ACCOUNTS_ACL_CHECK),
        "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": "s3:GetBucketAcl",
        "Resource": "arn:aws:s3:::acme-audit",
        "Condition": {"StringEquals": {"aws:SourceAccount": accounts}},
    }
    assert result[PURPOSE_SOURCE_ACCOUNTS_WRITE] == {
        "Sid": statement_sid(OWNER, PURPOSE_SOURCE_ACCOUNTS_WRITE),
        "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": [
            "arn:aws:s3:::acme-audit/logs/AWSLogs/222222222222/*",
            "arn:aws:s3:::acme-audit/logs/AWSLogs/333333333333/*",
        ],
        "Condition": {
            "StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceAccount": accounts}
        },
    }


def test_only_the_own_account_in_source_accounts_adds_nothing() -> None:
    assert statements(source_accounts=[ACCOUNT]) == statements()


def test_an_organization_gets_its_write_path_conditioned_on_the_trails() -> None:
    result = by_purpose(statements(organization_id="o-abcdefghij"))
    assert result[PURPOSE_ORGANIZATION_WRITE] == {
        "Sid": statement_sid(OWNER, PURPOSE_ORGANIZATION_WRITE),
        "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::acme-audit/AWSLogs/o-abcdefghij/*",
        "Condition": {
            "StringEquals": {
                "s3:x-amz-acl": "bucket-owner-full-control",
                "aws:SourceArn": [TRAIL_W, TRAIL_E],
            }
        },
    }
    # The management account's own path stays granted beside the organization's.
    assert result[PURPOSE_BUCKET_WRITE]["Resource"] == ["arn:aws:s3:::acme-audit/AWSLogs/123456789012/*"]


@pytest.mark.parametrize(
    ("overrides", "count"),
    [
        ({}, 3),
        ({"source_accounts": ["222222222222"]}, 5),
        ({"organization_id": "o-abcdefghij"}, 4),
        ({"source_accounts": ["222222222222"], "organization_id": "o-abcdefghij"}, 6),
    ],
)
def test_statement_count(overrides: dict[str, Any], count: int) -> None:
    assert len(statements(**overrides)) == count


def test_every_write_requires_the_bucket_owner_full_control_acl_and_a_source_condition() -> None:
    result = statements(source_accounts=["222222222222"], organization_id="o-abcdefghij")
    for statement in result:
        if statement["Effect"] == "Allow":
            conditions = {key for block in statement["Condition"].values() for key in block}
            assert {"aws:SourceArn", "aws:SourceAccount"} & set(conditions), statement["Sid"]
            assert statement["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
        if statement["Action"] == "s3:PutObject":
            assert statement["Condition"]["StringEquals"]["s3:x-amz-acl"] == "bucket-owner-full-control"


def test_sids_are_the_owners_alphanumeric_and_distinct() -> None:
    result = statements(source_accounts=["222222222222"], organization_id="o-abcdefghij")
    sids = [s["Sid"] for s in result]
    assert len(set(sids)) == len(sids)
    assert {sid for sid in sids if not is_shared_sid(sid)} <= owner_sids(OWNER)
    assert all(re.fullmatch(r"[A-Za-z0-9]+", sid) for sid in sids)
    assert all(is_trailkeeper_sid(sid) or is_shared_sid(sid) for sid in sids)


def owned(**overrides: Any) -> list[dict[str, Any]]:
    arguments: dict[str, Any] = {
        "bucket": "acme-audit",
        "key_prefix": "",
        "account_id": ACCOUNT,
        "trail_arns": [TRAIL_E],
        "source_accounts": ["222222222222"],
        "organization_id": "o-abcdefghij",
        **overrides,
    }
    return desired_bucket_statements(**arguments)


def test_two_owners_of_one_bucket_have_disjoint_sids_for_their_own_statements() -> None:
    a = {s["Sid"] for s in owned(owner="security/audit")}
    b = {s["Sid"] for s in owned(owner="team-b/audit")}
    assert a and b and not a & b


def test_the_result_is_stable_whatever_the_order_of_the_inputs() -> None:
    one = statements(trail_arns=[TRAIL_E, TRAIL_W], source_accounts=["333333333333", "222222222222"])
    two = statements(trail_arns=[TRAIL_W, TRAIL_E, TRAIL_E], source_accounts=["222222222222", "333333333333"])
    assert json.dumps(one) == json.dumps(two)


def test_no_two_statements_share_a_mutable_value() -> None:
    result = statements(source_accounts=["222222222222"], organization_id="o-abcdefghij")
    result[0]["Condition"]["StringEquals"]["aws:SourceAccount"].append("changed")
    assert "changed" not in json.dumps(result[1:])


def test_other_partitions_use_their_arns() -> None:
    result = by_purpose(
        statements(partition="aws-cn", trail_arns=["arn:aws-cn:cloudtrail:cn-north-1:1:trail/t"])
    )
    assert result[PURPOSE_BUCKET_ACL_CHECK]["Resource"] == "arn:aws-cn:s3:::acme-audit"
    assert result[PURPOSE_BUCKET_WRITE]["Resource"] == ["arn:aws-cn:s3:::acme-audit/AWSLogs/123456789012/*"]


def test_a_policy_without_trails_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one trail"):
        owned(owner=OWNER, trail_arns=[])


def test_desired_bucket_policy_is_the_statements_in_a_2012_document() -> None:
    policy = desired_bucket_policy(
        owner=OWNER,
        share=BucketShare("acme-audit", "", ACCOUNT, "audit"),
        trail_arns=[TRAIL_E],
        source_accounts=[],
        organization_id=None,
    )
    assert policy == {"Version": "2012-10-17", "Statement": statements(trail_arns=[TRAIL_E])}


def findings(document: dict[str, Any]) -> list[tuple[str, str]]:
    result = parliament.analyze_policy_string(json.dumps(document), ignore_private_auditors=True)
    return [(f.issue, f.detail) for f in result.findings]


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"key_prefix": "org/prod"},
        {"source_accounts": ["222222222222", "333333333333"]},
        {"organization_id": "o-abcdefghij"},
        {"source_accounts": ["222222222222"], "organization_id": "o-abcdefghij", "key_prefix": "x"},
    ],
    ids=["plain", "prefix", "source-accounts", "organization", "everything"],
)
def test_every_generated_bucket_policy_passes_parliament(overrides: dict[str, Any]) -> None:
    assert findings({"Version": "2012-10-17", "Statement": statements(**overrides)}) == []


def test_parliament_would_flag_a_misspelt_action() -> None:
    # Shows the check above is live: parliament knows S3's actions and reports an unknown one.
    broken = statements()
    broken[1]["Action"] = "s3:PutObjekt"
    assert [issue for issue, _ in findings({"Version": "2012-10-17", "Statement": broken})] == [
        "UNKNOWN_ACTION"
    ]


def test_sids_are_the_same_in_every_process() -> None:
    # "Trailkeeper" + the first 16 hex digits of sha256("<owner>|<purpose>").
    assert statement_sid("security/audit", PURPOSE_BUCKET_WRITE) == "Trailkeeper4d58f28d3cb3c808"
