"""The bucket policy statements CloudTrail needs to deliver log files, as AWS documents them.

Sources (AWS CloudTrail User Guide): "Amazon S3 bucket policy for CloudTrail", "Setting bucket policy for
multiple accounts", "Creating a trail for an organization with the AWS CLI" (its bucket policy), and for the
TLS-only statement the S3 User Guide's bucket policy examples (`aws:SecureTransport`), which the CIS AWS
Foundations Benchmark also asks of log buckets.

The statements every trail needs are shared by all Trails delivering into one bucket (core.bucket_share);
the grants only one Trail asks for (source accounts, an organization) carry the owner's Sid for their
purpose, so two Trails each keep their own and a merge never overwrites the other's.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from trailkeeper.core.naming import (
    PURPOSE_ORGANIZATION_WRITE,
    PURPOSE_SOURCE_ACCOUNTS_ACL_CHECK,
    PURPOSE_SOURCE_ACCOUNTS_WRITE,
    statement_sid,
)

# The CloudTrail service principal. The User Guide uses this name in every partition's examples.
CLOUDTRAIL_PRINCIPAL = "cloudtrail.amazonaws.com"
# CloudTrail writes every object with this canned ACL and the User Guide's write statement requires it,
# so the bucket owner keeps full control of log files written on behalf of any account.
BUCKET_OWNER_FULL_CONTROL = "bucket-owner-full-control"


def bucket_arn(bucket: str, partition: str = "aws") -> str:
    return f"arn:{partition}:s3:::{bucket}"


def log_path_arn(bucket: str, key_prefix: str, path_owner: str, partition: str = "aws") -> str:
    """The objects CloudTrail writes for one account or organization: `<bucket>/<prefix/>AWSLogs/<id>/*`."""
    prefix = f"{key_prefix}/" if key_prefix else ""
    return f"{bucket_arn(bucket, partition)}/{prefix}AWSLogs/{path_owner}/*"


def _sorted_unique(values: Iterable[str]) -> list[str]:
    # Stable text for equal inputs; the comparison itself is order-insensitive anyway. Each statement
    # gets its own copy of such a list (list(...)) so that no two statements share a mutable value.
    return sorted(set(values))


def _allow_cloudtrail(sid: str, action: str, resource: Any, condition: dict[str, Any]) -> dict[str, Any]:
    """A statement letting the CloudTrail service principal do `action` on `resource` under `condition`
    (a write adds the bucket-owner-full-control ACL CloudTrail puts on every log file)."""
    if action == "s3:PutObject":
        condition = {"s3:x-amz-acl": BUCKET_OWNER_FULL_CONTROL, **condition}
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": CLOUDTRAIL_PRINCIPAL},
        "Action": action,
        "Resource": resource,
        "Condition": {"StringEquals": condition},
    }


def deny_insecure_transport(sid: str, the_bucket: str) -> dict[str, Any]:
    """S3 User Guide, "Examples of Amazon S3 bucket policies" (aws:SecureTransport): refuse every request
    made over plain HTTP, from anyone, to the bucket and its objects. CloudTrail always uses TLS."""
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [the_bucket, f"{the_bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def desired_bucket_statements(
    *,
    owner: str,
    bucket: str,
    key_prefix: str,
    account_id: str,
    trail_arns: list[str],
    source_accounts: list[str],
    organization_id: str | None,
    partition: str = "aws",
) -> list[dict[str, Any]]:
    """The owner's own statements for a bucket that the trails `trail_arns` (of `account_id`) deliver
    into: the grants for `source_accounts` (those equal to `account_id` left out) and for an organization.
    The statements every trail needs (ACL check, write, TLS-only) are shared by all Trails using the
    bucket: see core.bucket_share."""
    arns = _sorted_unique(trail_arns)
    if not arns:
        raise ValueError("a CloudTrail bucket policy needs the ARN of at least one trail delivering into it")
    accounts = _sorted_unique(a for a in source_accounts if a != account_id)
    the_bucket = bucket_arn(bucket, partition)
    sid = functools.partial(statement_sid, owner)
    statements = []
    if accounts:
        # "Setting bucket policy for multiple accounts": one AWSLogs/<account>/* path per account whose
        # trails deliver here. Those trails are not ours and their ARNs are unknown, so instead of
        # aws:SourceArn the statements use aws:SourceAccount, the other global condition key the IAM
        # guide's "confused deputy problem" page names for service principals: CloudTrail may act only on
        # behalf of the listed accounts, never for a stranger who points a trail at this bucket.
        source = {"aws:SourceAccount": list(accounts)}
        paths = [log_path_arn(bucket, key_prefix, account, partition) for account in accounts]
        statements.append(
            _allow_cloudtrail(sid(PURPOSE_SOURCE_ACCOUNTS_ACL_CHECK), "s3:GetBucketAcl", the_bucket, source)
        )
        statements.append(
            _allow_cloudtrail(
                sid(PURPOSE_SOURCE_ACCOUNTS_WRITE),
                "s3:PutObject",
                paths,
                {"aws:SourceAccount": list(accounts)},
            )
        )
    if organization_id:
        # The organization trail bucket policy: member accounts' logs arrive under AWSLogs/<org id>/*
        # (beside the management account's AWSLogs/<account id>/* in the shared write statement),
        # written by the organization trail, named in aws:SourceArn.
        path = log_path_arn(bucket, key_prefix, organization_id, partition)
        statements.append(
            _allow_cloudtrail(
                sid(PURPOSE_ORGANIZATION_WRITE), "s3:PutObject", path, {"aws:SourceArn": list(arns)}
            )
        )
    return statements
