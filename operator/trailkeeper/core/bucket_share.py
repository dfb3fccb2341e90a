"""One bucket for many accounts' trails: the CloudTrail statements every Trail delivering into it shares.

The CloudTrail User Guide's "Setting bucket policy for multiple accounts" grants all accounts in one
statement per action: the write statement lists every account's `AWSLogs/<account>/*` path as its
Resource and every trail in its `aws:SourceArn` condition. Statements per Trail would not scale: S3 caps a
bucket policy at 20 KB (S3 User Guide, "Bucket policies and user policies"), which per-Trail statements
reach at about 40 Trails. Aggregated, a Trail adds about 130 bytes, and one bucket serves 100 accounts.

So every Trail delivering into a bucket takes part in these shared statements, each with a fixed Sid:
- `TrailkeeperAclCheck`: CloudTrail may read the bucket ACL on behalf of the listed accounts
  (`aws:SourceAccount`, the confused-deputy key the IAM guide names for service principals);
- `TrailkeeperWrite<hash of the key prefix>`, one per path pattern: CloudTrail may write the listed
  accounts' log paths, for the listed trails only (`aws:SourceArn`, one entry per Trail:
  `arn:<partition>:cloudtrail:*:<account>:trail/<name>` covers that Trail's trail in every region);
- `TrailkeeperDenyInsecureTransport`: requests over plain HTTP are refused (S3 User Guide's
  `aws:SecureTransport` example, also a CIS ask), kept while any Trail uses the bucket.

A Trail's part (its :class:`BucketShare`) is its trail entry, and the account path and account entry that
entry needs. Merges work by meaning: a Trail adds its entries where missing, and removing a Trail takes
out its trail entry, then its account's path and account entry only when no other trail of that account
remains in the statement. Every other entry, and every other statement, is kept as read.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from trailkeeper.core.bucket_policy import (
    BUCKET_OWNER_FULL_CONTROL,
    CLOUDTRAIL_PRINCIPAL,
    bucket_arn,
    deny_insecure_transport,
    desired_bucket_statements,
    log_path_arn,
)
from trailkeeper.core.drift import NONE_TEXT, FieldDiff, Fix
from trailkeeper.core.merge import merge_statements
from trailkeeper.core.policy_document import CURRENT_VERSION, document_statements

ACL_CHECK_SID = "TrailkeeperAclCheck"
WRITE_SID_PREFIX = "TrailkeeperWrite"
DENY_INSECURE_TRANSPORT_SID = "TrailkeeperDenyInsecureTransport"
# S3: "Bucket policies are limited to 20 KB in size."
BUCKET_POLICY_MAX_BYTES = 20 * 1024

SOURCE_ARN = "aws:SourceArn"
SOURCE_ACCOUNT = "aws:SourceAccount"


def write_sid(key_prefix: str) -> str:
    """The Sid of the shared write statement of one path pattern (IAM: letters and digits only)."""
    return WRITE_SID_PREFIX + hashlib.sha256(f"prefix|{key_prefix}".encode()).hexdigest()[:16]


def is_shared_sid(sid: object) -> bool:
    return isinstance(sid, str) and (
        sid in (ACL_CHECK_SID, DENY_INSECURE_TRANSPORT_SID)
        or (sid.startswith(WRITE_SID_PREFIX) and len(sid) == len(WRITE_SID_PREFIX) + 16)
    )


@dataclass(frozen=True)
class BucketShare:
    """One Trail's part in a bucket's shared statements."""

    bucket: str
    key_prefix: str
    account_id: str
    trail_name: str
    partition: str = "aws"

    @property
    def source_arn(self) -> str:
        return f"arn:{self.partition}:cloudtrail:*:{self.account_id}:trail/{self.trail_name}"

    @property
    def log_path(self) -> str:
        return log_path_arn(self.bucket, self.key_prefix, self.account_id, self.partition)

    @property
    def write_sid(self) -> str:
        return write_sid(self.key_prefix)


def policy_bytes(policy: Mapping[str, Any] | None) -> int:
    """The size S3 meters: the document as compact JSON, in UTF-8."""
    if policy is None:
        return 0
    return len(json.dumps(policy, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in (value if isinstance(value, list | tuple) else [value])]


def _account_of_source(entry: str) -> str:
    # arn:<partition>:cloudtrail:<region or *>:<account>:trail/<name>
    parts = entry.split(":")
    return parts[4] if len(parts) > 5 else ""


def _condition_values(statement: Mapping[str, Any], operator: str, key: str) -> list[str]:
    condition = statement.get("Condition")
    block = condition.get(operator) if isinstance(condition, Mapping) else None
    return _values(block.get(key)) if isinstance(block, Mapping) else []


def _allow(sid: str, action: str, resource: Any, condition: dict[str, Any]) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": CLOUDTRAIL_PRINCIPAL},
        "Action": action,
        "Resource": resource,
        "Condition": condition,
    }


def acl_check_statement(bucket: str, accounts: Iterable[str], partition: str = "aws") -> dict[str, Any]:
    return _allow(
        ACL_CHECK_SID,
        "s3:GetBucketAcl",
        bucket_arn(bucket, partition),
        {"StringEquals": {SOURCE_ACCOUNT: sorted(set(accounts))}},
    )


def write_statement(key_prefix: str, paths: Iterable[str], sources: Iterable[str]) -> dict[str, Any]:
    return _allow(
        write_sid(key_prefix),
        "s3:PutObject",
        sorted(set(paths)),
        {
            "StringEquals": {"s3:x-amz-acl": BUCKET_OWNER_FULL_CONTROL},
            "ArnLike": {SOURCE_ARN: sorted(set(sources))},
        },
    )


def shared_statements(shares: Iterable[BucketShare]) -> list[dict[str, Any]]:
    """The shared statements of a bucket used by `shares` alone (all of one bucket and partition)."""
    policy: dict[str, Any] | None = None
    for share in shares:
        policy = add_share(policy, share)
    return document_statements(policy)


def _by_sid(statements: list[Any], sid: str) -> dict[str, Any] | None:
    for statement in statements:
        if isinstance(statement, Mapping) and statement.get("Sid") == sid:
            return dict(statement)
    return None


def _replace(statements: list[Any], sid: str, new: dict[str, Any] | None) -> list[Any]:
    """`statements` with the one of `sid` replaced by `new` in its place (added last; None: removed)."""
    out: list[Any] = []
    placed = False
    for statement in statements:
        if isinstance(statement, Mapping) and statement.get("Sid") == sid:
            if new is not None and not placed:
                out.append(new)
            placed = True
            continue
        out.append(statement)
    if not placed and new is not None:
        out.append(new)
    return out


def _with_statements(policy: Mapping[str, Any] | None, statements: list[Any]) -> dict[str, Any] | None:
    if not statements:
        return None
    if policy is None:
        return {"Version": CURRENT_VERSION, "Statement": statements}
    merged = {key: copy.deepcopy(value) for key, value in policy.items()}
    merged["Statement"] = statements
    return merged


def _accounts_in_writes(statements: list[Any]) -> set[str]:
    return {
        _account_of_source(entry)
        for statement in statements
        if isinstance(statement, Mapping) and str(statement.get("Sid", "")).startswith(WRITE_SID_PREFIX)
        for entry in _condition_values(statement, "ArnLike", SOURCE_ARN)
    }


def add_share(policy: Mapping[str, Any] | None, share: BucketShare, *, move: bool = True) -> dict[str, Any]:
    """`policy` with `share`'s entries in the shared statements; every other entry and statement kept.

    With `move`, the share's trail entry also leaves another prefix's write statement (the Trail moved its
    key prefix). Only a Trail whose trail exists and is its own may move: before CreateTrail decides, a
    trail entry of the same name and account may be another Trail's (one `trailName` in two namespaces),
    and taking it out would take that Trail's grant away.
    """
    statements = list(copy.deepcopy(document_statements(policy)))
    if move:
        statements = _drop_source(statements, share, keep_sid=share.write_sid)
    write = _by_sid(statements, share.write_sid) or {}
    paths = [*_values(write.get("Resource")), share.log_path]
    sources = [*_condition_values(write, "ArnLike", SOURCE_ARN), share.source_arn]
    statements = _replace(statements, share.write_sid, write_statement(share.key_prefix, paths, sources))
    acl = _by_sid(statements, ACL_CHECK_SID) or {}
    accounts = [*_condition_values(acl, "StringEquals", SOURCE_ACCOUNT), share.account_id]
    statements = _replace(
        statements, ACL_CHECK_SID, acl_check_statement(share.bucket, accounts, share.partition)
    )
    deny = deny_insecure_transport(DENY_INSECURE_TRANSPORT_SID, bucket_arn(share.bucket, share.partition))
    statements = _replace(statements, DENY_INSECURE_TRANSPORT_SID, deny)
    result = _with_statements(policy, statements)
    assert result is not None  # it holds the share's statements
    return result


def _drop_source(
    statements: list[Any], share: BucketShare, *, keep_sid: str | None = None, only_sid: str | None = None
) -> list[Any]:
    """The write statements (but `keep_sid`'s; only `only_sid`'s when given) without the share's trail
    entry, each losing the share's account path when no trail of that account is left in it; a statement
    left with no trail goes."""
    out: list[Any] = []
    for statement in statements:
        sid = statement.get("Sid") if isinstance(statement, Mapping) else None
        skipped = sid == keep_sid or (only_sid is not None and sid != only_sid)
        if not is_shared_sid(sid) or not str(sid).startswith(WRITE_SID_PREFIX) or skipped:
            out.append(statement)
            continue
        sources = _condition_values(statement, "ArnLike", SOURCE_ARN)
        if share.source_arn not in sources:
            out.append(statement)
            continue
        left = [s for s in sources if s != share.source_arn]
        if not left:
            continue
        paths = _values(statement.get("Resource"))
        if share.account_id not in {_account_of_source(s) for s in left}:
            paths = [p for p in paths if f"/AWSLogs/{share.account_id}/" not in p]
        changed = copy.deepcopy(dict(statement))
        changed["Resource"] = sorted(set(paths))
        changed["Condition"]["ArnLike"][SOURCE_ARN] = sorted(set(left))
        out.append(changed)
    return out


def remove_share(
    policy: Mapping[str, Any] | None, share: BucketShare, *, anywhere: bool = True
) -> dict[str, Any] | None:
    """`policy` without `share`'s entries: the account's entry goes only with its last trail, the
    shared statements only with the last Trail. None when nothing is left at all.

    `anywhere` False takes the trail entry out of the share's own path pattern only: when a trail of the
    name is another Trail's, its entry under another prefix is that Trail's grant (see add_share).
    """
    only = None if anywhere else share.write_sid
    statements = _drop_source(list(copy.deepcopy(document_statements(policy))), share, only_sid=only)
    remaining_accounts = _accounts_in_writes(statements)
    acl = _by_sid(statements, ACL_CHECK_SID)
    if acl is not None and share.account_id not in remaining_accounts:
        accounts = [
            a for a in _condition_values(acl, "StringEquals", SOURCE_ACCOUNT) if a != share.account_id
        ]
        new_acl = acl_check_statement(share.bucket, accounts, share.partition) if accounts else None
        statements = _replace(statements, ACL_CHECK_SID, new_acl)
    if not remaining_accounts:
        statements = _replace(statements, DENY_INSECURE_TRANSPORT_SID, None)
    return _with_statements(policy, statements)


def has_share(policy: Mapping[str, Any] | None, share: BucketShare, *, anywhere: bool = True) -> bool:
    """Whether any of the share's trail entries is in the policy (under any path pattern; `anywhere`
    False: under its own)."""
    return any(
        share.source_arn in _condition_values(s, "ArnLike", SOURCE_ARN)
        for s in document_statements(policy)
        if isinstance(s, Mapping)
        and is_shared_sid(s.get("Sid"))
        and (anywhere or s.get("Sid") == share.write_sid)
    )


def missing_entries(policy: Mapping[str, Any] | None, share: BucketShare) -> list[tuple[str, str]]:
    """(Sid, what) of every entry or statement the share needs and the policy lacks or gets wrong."""
    statements = document_statements(policy)
    missing: list[tuple[str, str]] = []
    write = _by_sid(statements, share.write_sid)
    if write is None or not _same_shape(write, write_statement(share.key_prefix, [], [])):
        missing.append((share.write_sid, "the shared write statement"))
    else:
        if share.log_path not in _values(write.get("Resource")):
            missing.append((share.write_sid, share.log_path))
        if share.source_arn not in _condition_values(write, "ArnLike", SOURCE_ARN):
            missing.append((share.write_sid, share.source_arn))
    acl = _by_sid(statements, ACL_CHECK_SID)
    if acl is None or not _same_shape(acl, acl_check_statement(share.bucket, [], share.partition)):
        missing.append((ACL_CHECK_SID, "the shared ACL check statement"))
    elif share.account_id not in _condition_values(acl, "StringEquals", SOURCE_ACCOUNT):
        missing.append((ACL_CHECK_SID, share.account_id))
    deny = deny_insecure_transport(DENY_INSECURE_TRANSPORT_SID, bucket_arn(share.bucket, share.partition))
    found = _by_sid(statements, DENY_INSECURE_TRANSPORT_SID)
    if found is None or not _same_shape(found, deny):
        missing.append((DENY_INSECURE_TRANSPORT_SID, "the TLS-only deny"))
    return missing


def _same_shape(actual: Mapping[str, Any], expected: Mapping[str, Any]) -> bool:
    """Equal by meaning, but for the lists that entries are added to (write Resource, SourceArn and
    SourceAccount values), which are compared elsewhere entry by entry."""
    from trailkeeper.core.policy_document import statements_equal

    def hollow(statement: Mapping[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(dict(statement))
        if str(out.get("Sid", "")).startswith(WRITE_SID_PREFIX):
            out["Resource"] = []
        for block in (out.get("Condition") or {}).values():
            if isinstance(block, dict):
                for key in (SOURCE_ARN, SOURCE_ACCOUNT):
                    if key in block:
                        block[key] = []
        return out

    return statements_equal(hollow(actual), hollow(expected))


def desired_bucket_policy(
    *,
    owner: str,
    share: BucketShare,
    trail_arns: list[str],
    source_accounts: list[str],
    organization_id: str | None,
    existing: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole bucket policy: the owner's own statements merged into `existing` (an empty policy by
    default), and the share's entries in the shared statements."""
    owned = desired_bucket_statements(
        owner=owner,
        bucket=share.bucket,
        key_prefix=share.key_prefix,
        account_id=share.account_id,
        trail_arns=trail_arns,
        source_accounts=source_accounts,
        organization_id=organization_id,
        partition=share.partition,
    )
    return add_share(merge_statements(existing, owner, owned), share)


def share_diffs(resource: str, policy: Mapping[str, Any] | None, share: BucketShare) -> list[FieldDiff]:
    """One difference per entry or shared statement the share needs and the policy lacks."""
    return [
        FieldDiff(resource, f"Statement[{sid}]", what, NONE_TEXT, Fix.PUT_STATEMENTS)
        for sid, what in missing_entries(policy, share)
    ]


def too_large_message(bucket: str, size: int) -> str:
    """What to do when the shared statements outgrow S3's limit."""
    return (
        f"the policy of bucket {bucket} would be {size} bytes, over S3's limit of {BUCKET_POLICY_MAX_BYTES} "
        "(about 140 accounts share a bucket): deliver an AWS Organizations trail "
        "(spec.destination.organizationId, one path for every member account), or spread the accounts "
        "over more buckets"
    )
