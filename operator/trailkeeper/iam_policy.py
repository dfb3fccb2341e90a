"""The least-privilege IAM policy the operator's own credentials need.

:data:`REQUIRED_OPERATIONS` lists every AWS API operation (botocore's names) the operator calls: read from
the AWS clients the reconcilers use (``aws/trails.py``, ``aws/buckets.py``, ``aws/topics.py``), the
sessions (``aws/session.py``: STS), the reconcilers themselves (KMS alias resolution) and the compliance
observation (``aws/account_state.py``: EC2 regions, bucket ACLs). Each operation maps to the
IAM actions it needs -- usually ``service:Operation``, but S3 names most of its actions differently, and
some operations need more than one action (the Service Authorization Reference's "dependent actions").
:func:`iam_policy_document` grants exactly those actions, on the narrowest resources AWS lets a policy
name for them.

``tests/test_iam_policy.py`` keeps this honest: it records the operations the code really calls across
the test suite and fails when the policy misses one or grants one nothing calls.

Deliberately not here: ``GetTrail``/``ListTrails`` (DescribeTrails answers both);
``TopicClient.set_tags``' ``TagResource``/``UntagResource`` as operations (no reconcile path calls it:
topic tags are only written by CreateTopic); organization trails (``iam:CreateServiceLinkedRole``,
``organizations:*``: trailkeeper never sets ``IsOrganizationTrail``); and every KMS key-policy
permission: KMS keys and their policies are the user's, the operator only reads which key an alias names.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "NO_PERMISSION_OPERATIONS",
    "REQUIRED_OPERATIONS",
    "actions_for",
    "iam_policy_document",
    "policy_actions",
    "render_iam_policy",
]

REQUIRED_OPERATIONS: Final[dict[str, set[str]]] = {
    "cloudtrail": {
        "DescribeTrails",
        "GetTrailStatus",
        "GetEventSelectors",
        "GetInsightSelectors",
        "ListTags",
        "CreateTrail",
        "UpdateTrail",
        "DeleteTrail",
        "StartLogging",
        "StopLogging",
        "PutEventSelectors",
        "PutInsightSelectors",
        # AddTags for the spec's tags; RemoveTags only for keys a spec change dropped (others' stay).
        "AddTags",
        "RemoveTags",
    },
    "s3": {
        "HeadBucket",
        "GetBucketLocation",
        "GetBucketTagging",
        "GetBucketVersioning",
        "GetBucketEncryption",
        "GetPublicAccessBlock",
        "GetBucketPolicy",
        "GetBucketLifecycleConfiguration",
        "GetBucketLogging",
        # The compliance observation: whether an ACL grant makes the bucket public.
        "GetBucketAcl",
        "ListObjectVersions",
        "CreateBucket",
        "PutBucketTagging",
        "PutPublicAccessBlock",
        "PutBucketVersioning",
        "PutBucketEncryption",
        "PutBucketPolicy",
        "DeleteBucketPolicy",
        "PutBucketLifecycleConfiguration",
        "DeleteBucketLifecycle",
        "DeleteBucket",
    },
    "sns": {
        "GetTopicAttributes",
        "ListSubscriptionsByTopic",
        "GetSubscriptionAttributes",
        "ListTagsForResource",
        "CreateTopic",
        "SetTopicAttributes",
        "DeleteTopic",
        "Subscribe",
        "SetSubscriptionAttributes",
        "Unsubscribe",
        # spec.tags follow on the topics trailkeeper made.
        "TagResource",
        "UntagResource",
    },
    "sts": {"GetCallerIdentity", "AssumeRole"},
    # A Trail's kmsKeyId given as an alias is resolved to the key ARN CloudTrail reports.
    "kms": {"DescribeKey"},
    # The compliance observation: which regions the account has enabled (CIS 3.1 coverage).
    "ec2": {"DescribeRegions"},
    # The compliance observation: the account-level Block Public Access (CIS 3.3, TK-BUCKET-BPA).
    "s3control": {"GetPublicAccessBlock"},
    # The Monitoring section: its observation (filters on the trails' log groups, alarms) and what a
    # Trail with spec.monitoring makes (aws/monitoring.py): the log group, filters, alarms, delivery role.
    "logs": {
        "DescribeMetricFilters",
        "DescribeLogGroups",
        "ListTagsForResource",
        "CreateLogGroup",
        "PutRetentionPolicy",
        "DeleteRetentionPolicy",
        "PutMetricFilter",
        "DeleteMetricFilter",
    },
    "cloudwatch": {"DescribeAlarms", "ListTagsForResource", "PutMetricAlarm", "DeleteAlarms"},
    "iam": {
        "GetRole",
        "GetRolePolicy",
        "CreateRole",
        "UpdateAssumeRolePolicy",
        "PutRolePolicy",
        "DeleteRolePolicy",
        "DeleteRole",
    },
}

# Any authenticated principal may call these; no policy can allow or deny them.
NO_PERMISSION_OPERATIONS: Final[frozenset[tuple[str, str]]] = frozenset({("sts", "GetCallerIdentity")})

# Operations whose IAM actions are not just "<service>:<Operation>".
_ACTIONS: Final[Mapping[tuple[str, str], tuple[str, ...]]] = {
    # S3 names its actions after the resource they touch, not after the API operation.
    ("s3", "HeadBucket"): ("s3:ListBucket",),
    ("s3", "GetBucketEncryption"): ("s3:GetEncryptionConfiguration",),
    ("s3", "PutBucketEncryption"): ("s3:PutEncryptionConfiguration",),
    ("s3", "GetPublicAccessBlock"): ("s3:GetBucketPublicAccessBlock",),
    ("s3", "PutPublicAccessBlock"): ("s3:PutBucketPublicAccessBlock",),
    ("s3", "GetBucketLifecycleConfiguration"): ("s3:GetLifecycleConfiguration",),
    ("s3", "PutBucketLifecycleConfiguration"): ("s3:PutLifecycleConfiguration",),
    # There is no s3:DeleteLifecycleConfiguration: removing the configuration is a put.
    ("s3", "DeleteBucketLifecycle"): ("s3:PutLifecycleConfiguration",),
    ("s3", "ListObjectVersions"): ("s3:ListBucketVersions",),
    ("s3control", "GetPublicAccessBlock"): ("s3:GetAccountPublicAccessBlock",),
    # CreateTrail's TagsList is authorized as AddTags too (a dependent action). Both calls may name a
    # CloudWatch Logs role for CloudTrail to assume, which the caller must be allowed to pass.
    ("cloudtrail", "CreateTrail"): ("cloudtrail:CreateTrail", "cloudtrail:AddTags", "iam:PassRole"),
    ("cloudtrail", "UpdateTrail"): ("cloudtrail:UpdateTrail", "iam:PassRole"),
    # "To be able to tag a topic on creation, you must have the sns:CreateTopic and sns:TagResource
    # permissions" (SNS API reference, CreateTopic).
    ("sns", "CreateTopic"): ("sns:CreateTopic", "sns:TagResource"),
    # Tagged at creation, which needs the service's tagging action too (CloudWatch Logs API reference,
    # CreateLogGroup; CloudWatch, PutMetricAlarm; IAM, CreateRole).
    ("logs", "CreateLogGroup"): ("logs:CreateLogGroup", "logs:TagResource"),
    ("cloudwatch", "PutMetricAlarm"): ("cloudwatch:PutMetricAlarm", "cloudwatch:TagResource"),
    ("iam", "CreateRole"): ("iam:CreateRole", "iam:TagRole"),
}


def actions_for(service: str, operation: str) -> frozenset[str]:
    """The IAM actions one API operation needs; empty for those that need none.

    Raises KeyError for an operation not in :data:`REQUIRED_OPERATIONS`: guessing ``service:Operation``
    would be wrong for most of S3, and a call the policy does not know of must be looked at, not granted.
    """
    if operation not in REQUIRED_OPERATIONS.get(service, set()):
        raise KeyError(f"{service}:{operation} is not an operation trailkeeper is known to call")
    if (service, operation) in NO_PERMISSION_OPERATIONS:
        return frozenset()
    return frozenset(_ACTIONS.get((service, operation), (f"{service}:{operation}",)))


def policy_actions() -> frozenset[str]:
    """Every IAM action the policy grants."""
    return frozenset(
        action
        for service, operations in REQUIRED_OPERATIONS.items()
        for operation in operations
        for action in actions_for(service, operation)
    )


@dataclass(frozen=True)
class _Grant:
    """One statement: actions on a resource pattern (``{partition}`` filled in), maybe conditional."""

    sid: str
    resource: str
    condition: Mapping[str, Any] = field(default_factory=dict)


_TRAILS = _Grant("CloudTrailTrails", "arn:{partition}:cloudtrail:*:*:trail/*")
# DescribeTrails supports no resource-level permissions: AWS requires "*".
_CLOUDTRAIL_ANY = _Grant("CloudTrailDescribe", "*")
_BUCKETS = _Grant("S3Buckets", "arn:{partition}:s3:::*")
_TOPICS = _Grant("SnsTopics", "arn:{partition}:sns:*:*:*")
# The subscription calls take a subscription ARN, which is no IAM resource type: AWS requires "*".
_SUBSCRIPTIONS = _Grant("SnsSubscriptions", "*")
_ASSUME_ROLES = _Grant("StsAssumeTrailAccountRoles", "arn:{partition}:iam::*:role/*")
_KEYS = _Grant("KmsResolveKeyAliases", "arn:{partition}:kms:*:*:key/*")
# DescribeRegions supports no resource-level permissions either.
_EC2_ANY = _Grant("Ec2DescribeRegions", "*")
# Nor does s3:GetAccountPublicAccessBlock (the account is the resource).
_S3_ACCOUNT = _Grant("S3AccountPublicAccessBlock", "*")
_LOG_GROUPS = _Grant("LogsLogGroups", "arn:{partition}:logs:*:*:log-group:*")
# DescribeLogGroups is listed against "*" only (the log groups it answers are not its resource).
_LOGS_ANY = _Grant("LogsDescribeLogGroups", "*")
_ALARMS = _Grant("CloudWatchAlarms", "arn:{partition}:cloudwatch:*:*:alarm:*")
# The delivery roles trailkeeper makes are all named trailkeeper-cloudtrail-<trail name>; a role the
# spec names (monitoring.roleArn) is only passed, never read or changed.
_DELIVERY_ROLES = _Grant("IamDeliveryRoles", "arn:{partition}:iam::*:role/trailkeeper-cloudtrail-*")
# Only CloudTrail may be handed a role (its CloudWatch Logs delivery role), nothing else.
_PASS_ROLE = _Grant(
    "PassCloudWatchLogsRoleToCloudTrail",
    "arn:{partition}:iam::*:role/*",
    {"StringEquals": {"iam:PassedToService": "cloudtrail.amazonaws.com"}},
)

# Statement order in the document; a grant without actions is left out.
_GRANTS: Final[tuple[_Grant, ...]] = (
    _TRAILS,
    _CLOUDTRAIL_ANY,
    _BUCKETS,
    _TOPICS,
    _SUBSCRIPTIONS,
    _ASSUME_ROLES,
    _KEYS,
    _EC2_ANY,
    _S3_ACCOUNT,
    _LOG_GROUPS,
    _LOGS_ANY,
    _ALARMS,
    _DELIVERY_ROLES,
    _PASS_ROLE,
)
_GRANT_OF_ACTION: Final[Mapping[str, _Grant]] = {
    "cloudtrail:DescribeTrails": _CLOUDTRAIL_ANY,
    "sns:GetSubscriptionAttributes": _SUBSCRIPTIONS,
    "sns:SetSubscriptionAttributes": _SUBSCRIPTIONS,
    "sns:Unsubscribe": _SUBSCRIPTIONS,
    "iam:PassRole": _PASS_ROLE,
    "s3:GetAccountPublicAccessBlock": _S3_ACCOUNT,
    "logs:DescribeLogGroups": _LOGS_ANY,
}
_GRANT_OF_SERVICE: Final[Mapping[str, _Grant]] = {
    "cloudtrail": _TRAILS,
    "s3": _BUCKETS,
    "sns": _TOPICS,
    "sts": _ASSUME_ROLES,
    "kms": _KEYS,
    "ec2": _EC2_ANY,
    "logs": _LOG_GROUPS,
    "cloudwatch": _ALARMS,
    "iam": _DELIVERY_ROLES,
}


def _grant_of(action: str) -> _Grant:
    grant = _GRANT_OF_ACTION.get(action) or _GRANT_OF_SERVICE.get(action.split(":", 1)[0])
    if grant is None:
        raise KeyError(f"no resource scope is defined for {action}")
    return grant


def iam_policy_document(partition: str = "aws") -> dict[str, Any]:
    """The identity policy to attach to the operator's role (or user), one statement per resource scope.

    ``partition`` is ``aws``, ``aws-cn`` or ``aws-us-gov``. Cross-account Trails additionally need the
    same policy (minus ``sts:AssumeRole``) on the role they name, whose trust policy must let the
    operator's principal assume it.
    """
    actions_of: dict[str, set[str]] = {}
    for action in policy_actions():
        actions_of.setdefault(_grant_of(action).sid, set()).add(action)
    statements: list[dict[str, Any]] = []
    for grant in _GRANTS:
        actions = actions_of.get(grant.sid)
        if not actions:
            continue
        statement: dict[str, Any] = {
            "Sid": grant.sid,
            "Effect": "Allow",
            "Action": sorted(actions),
            "Resource": grant.resource.format(partition=partition),
        }
        if grant.condition:
            # A copy: whoever gets the document may edit it without touching the grant.
            statement["Condition"] = copy.deepcopy(dict(grant.condition))
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def render_iam_policy(partition: str = "aws") -> str:
    """The policy as indented JSON, for ``trailkeeper iam-policy``."""
    return json.dumps(iam_policy_document(partition), indent=2) + "\n"
