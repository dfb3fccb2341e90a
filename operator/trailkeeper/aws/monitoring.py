"""The AWS parts of the CIS Monitoring section: CloudWatch Logs groups and metric filters, CloudWatch
alarms, and the IAM role CloudTrail delivers to CloudWatch Logs through.

Each client is bound to one boto3 client (of one region and account; IAM is global). `observe`-style
methods only read; every mutating method is idempotent. Which filters and alarms are whose is the
caller's decision: these clients read them by name prefix and never list what lies outside it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from trailkeeper.aws.errors import error_code

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_logs import CloudWatchLogsClient

_GROUP_NOT_FOUND = "ResourceNotFoundException"
_ROLE_NOT_FOUND = "NoSuchEntity"
# DeleteAlarms takes at most 100 names per call.
_DELETE_ALARMS_BATCH = 100


def _tag_map(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in tags or () if "Key" in t}


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": tags[key]} for key in sorted(tags)]


@dataclass(frozen=True)
class ObservedLogGroup:
    name: str
    exists: bool
    retention_days: int | None = None
    tags: dict[str, str] = field(default_factory=dict)


class LogGroupClient:
    """CloudWatch Logs groups and their metric filters in one region."""

    def __init__(self, client: CloudWatchLogsClient, region: str) -> None:
        self.client = client
        self.region = region

    def observe(self, name: str) -> ObservedLogGroup:
        """The group called `name` (DescribeLogGroups by prefix, then ListTagsForResource)."""
        pages = self.client.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name)
        for page in pages:
            for group in page.get("logGroups", []):
                if group.get("logGroupName") != name:
                    continue
                arn = str(group.get("arn", "")).removesuffix(":*")
                tags = self.client.list_tags_for_resource(resourceArn=arn).get("tags", {})
                return ObservedLogGroup(name, True, group.get("retentionInDays"), dict(tags))
        return ObservedLogGroup(name, False)

    def create(self, name: str, tags: Mapping[str, str]) -> None:
        """Create the group, tagged (one call, so it is never seen untagged); one that exists is kept."""
        try:
            self.client.create_log_group(logGroupName=name, tags=dict(tags))
        except ClientError as error:
            if error_code(error) != "ResourceAlreadyExistsException":
                raise

    def set_retention(self, name: str, days: int | None) -> None:
        if days is None:
            self.client.delete_retention_policy(logGroupName=name)
        else:
            self.client.put_retention_policy(logGroupName=name, retentionInDays=days)

    def metric_filters(self, group: str, prefix: str) -> dict[str, dict[str, Any]]:
        """The group's filters whose names begin with `prefix`, by name; none when the group is gone."""
        try:
            pages = self.client.get_paginator("describe_metric_filters").paginate(
                logGroupName=group, filterNamePrefix=prefix
            )
            found = [dict(f) for page in pages for f in page.get("metricFilters", [])]
        except ClientError as error:
            if error_code(error) == _GROUP_NOT_FOUND:
                return {}
            raise
        return {str(f["filterName"]): f for f in found if str(f.get("filterName", "")).startswith(prefix)}

    def put_metric_filter(self, request: Mapping[str, Any]) -> None:
        self.client.put_metric_filter(**request)

    def delete_metric_filter(self, group: str, name: str) -> None:
        try:
            self.client.delete_metric_filter(logGroupName=group, filterName=name)
        except ClientError as error:
            if error_code(error) != _GROUP_NOT_FOUND:
                raise


class AlarmClient:
    """CloudWatch metric alarms in one region."""

    def __init__(self, client: CloudWatchClient, region: str) -> None:
        self.client = client
        self.region = region

    def alarms(self, prefix: str) -> dict[str, dict[str, Any]]:
        """The metric alarms whose names begin with `prefix`, by name."""
        pages = self.client.get_paginator("describe_alarms").paginate(
            AlarmNamePrefix=prefix, AlarmTypes=["MetricAlarm"]
        )
        found = [dict(a) for page in pages for a in page.get("MetricAlarms", [])]
        return {str(a["AlarmName"]): a for a in found if str(a.get("AlarmName", "")).startswith(prefix)}

    def tags(self, alarm_arn: str) -> dict[str, str]:
        return _tag_map(self.client.list_tags_for_resource(ResourceARN=alarm_arn).get("Tags"))

    def put(self, request: Mapping[str, Any]) -> None:
        """PutMetricAlarm: creates, or replaces every setting of an alarm of that name (its tags are
        set only when it is created)."""
        self.client.put_metric_alarm(**request)

    def delete(self, names: Iterable[str]) -> None:
        """DeleteAlarms; names that do not exist are ignored by CloudWatch."""
        ordered = sorted(names)
        for start in range(0, len(ordered), _DELETE_ALARMS_BATCH):
            self.client.delete_alarms(AlarmNames=ordered[start : start + _DELETE_ALARMS_BATCH])


@dataclass(frozen=True)
class ObservedRole:
    name: str
    exists: bool
    arn: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    trust_policy: dict[str, Any] | None = None
    # The inline policy of the name asked for (None: none of that name).
    inline_policy: dict[str, Any] | None = None


def _document(value: Any) -> dict[str, Any] | None:
    """A policy document as botocore hands IAM's back (decoded to a dict), or as text."""
    if value is None:
        return None
    if isinstance(value, str):
        parsed = json.loads(value)
        return parsed if isinstance(parsed, dict) else None
    return dict(value)


class RoleClient:
    """IAM roles (global: the client's region only picks the partition's endpoint)."""

    def __init__(self, client: IAMClient) -> None:
        self.client = client

    def observe(self, name: str, policy_name: str) -> ObservedRole:
        """GetRole (with its tags and trust policy) and GetRolePolicy of `policy_name`."""
        try:
            role = self.client.get_role(RoleName=name)["Role"]
        except ClientError as error:
            if error_code(error) == _ROLE_NOT_FOUND:
                return ObservedRole(name, False)
            raise
        try:
            inline = self.client.get_role_policy(RoleName=name, PolicyName=policy_name)
            document = _document(inline.get("PolicyDocument"))
        except ClientError as error:
            if error_code(error) != _ROLE_NOT_FOUND:
                raise
            document = None
        return ObservedRole(
            name,
            True,
            arn=role.get("Arn"),
            tags=_tag_map(role.get("Tags")),
            trust_policy=_document(role.get("AssumeRolePolicyDocument")),
            inline_policy=document,
        )

    def create(self, name: str, trust_policy: Mapping[str, Any], tags: Mapping[str, str]) -> None:
        """CreateRole with its trust policy and tags in one call."""
        self.client.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(trust_policy),
            Description="CloudTrail delivery to CloudWatch Logs (trailkeeper)",
            Tags=_tag_list(tags),  # type: ignore[arg-type]
        )

    def put_trust_policy(self, name: str, trust_policy: Mapping[str, Any]) -> None:
        self.client.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust_policy))

    def put_inline_policy(self, name: str, policy_name: str, document: Mapping[str, Any]) -> None:
        self.client.put_role_policy(
            RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document)
        )

    def delete(self, name: str, policy_name: str) -> None:
        """The inline policy, then the role (IAM refuses to delete a role that still has one)."""
        try:
            self.client.delete_role_policy(RoleName=name, PolicyName=policy_name)
        except ClientError as error:
            if error_code(error) != _ROLE_NOT_FOUND:
                raise
        try:
            self.client.delete_role(RoleName=name)
        except ClientError as error:
            if error_code(error) != _ROLE_NOT_FOUND:
                raise
