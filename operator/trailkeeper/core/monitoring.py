"""The CIS Monitoring section: log metric filters on the trail's CloudWatch Logs group, each with an alarm.

CIS AWS Foundations v1.5.0 to v5.0.0 number these 4.1 to 4.15; v6.0.0 and v7.0.0 moved the section to 5
(5.1 to 5.15). Each recommendation's audit asks for a metric filter with the pattern it prints on the
log group of an active multi-region trail, an alarm on the filter's metric, and an SNS topic in the
alarm's actions with at least one subscriber. The patterns below are the ones the benchmark prints; where
versions print different patterns, each is kept and a filter matching any of them satisfies the control
(a filter made to an older version's text still satisfies that version). trailkeeper creates the
newest. Sources: the AuditProcedure/RemediationProcedure texts in Prowler's maps of the benchmark
(prowler/compliance/aws/cis_<version>_aws.json), which drop the double quotes the benchmark prints;
comparison ignores whitespace and double quotes, which CloudWatch Logs' filter syntax treats alike for
these values.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

# Versions of the benchmark the ids are given for, oldest first.
CIS_VERSIONS: tuple[str, ...] = ("1.5", "2.0", "3.0", "4.0", "5.0", "6.0", "7.0")
_SECTION_4 = ("1.5", "2.0", "3.0", "4.0", "5.0")
_SECTION_5 = ("6.0", "7.0")

# The alarm the CIS remediation creates: the sum over 5 minutes reaches 1.
ALARM_PERIOD_SECONDS = 300
ALARM_THRESHOLD = 1.0
ALARM_STATISTIC = "Sum"
ALARM_COMPARISON = "GreaterThanOrEqualToThreshold"
ALARM_EVALUATION_PERIODS = 1
# Names trailkeeper gives its filters and alarms begin with this, then a hash of their owner (see
# `name_prefix`): a filter or alarm without its owner's prefix is not that owner's, and is never changed
# or deleted by it (whatever its pattern). Metric filters take no tags, so the name is their only mark.
NAME_PREFIX = "trailkeeper-"
_OWNER_HASH_CHARS = 16


@dataclass(frozen=True)
class MetricFilterControl:
    """One Monitoring recommendation: its number (v1.5 numbering), the patterns the benchmark gives
    (newest first; the first is what trailkeeper creates) and the versions each pattern is printed in."""

    number: str
    slug: str
    name: str
    patterns: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def id(self) -> str:
        return f"CIS-{self.number}"

    @property
    def cis(self) -> dict[str, str]:
        minor = self.number.split(".", 1)[1]
        return {**dict.fromkeys(_SECTION_4, f"4.{minor}"), **dict.fromkeys(_SECTION_5, f"5.{minor}")}

    @property
    def pattern(self) -> str:
        return self.patterns[0][0]

    @property
    def metric_name(self) -> str:
        return f"{self.slug.replace('-', '_')}_metric"

    def matching_versions(self, pattern: str) -> tuple[str, ...] | None:
        """The benchmark versions whose pattern `pattern` is (None: none of them)."""
        seen = normalize_pattern(pattern)
        for candidate, versions in self.patterns:
            if normalize_pattern(candidate) == seen:
                return versions
        return None


def name_prefix(owner: str) -> str:
    """`trailkeeper-<hash>-`: how the names of an owner's filters and alarms begin. Two Trails never
    share one, so each finds (and deletes) exactly its own on a log group others use too."""
    digest = hashlib.sha256(owner.encode("utf-8")).hexdigest()[:_OWNER_HASH_CHARS]
    return f"{NAME_PREFIX}{digest}-"


def normalize_pattern(pattern: str) -> str:
    """A filter pattern without whitespace and double quotes: CIS's own texts differ in both only."""
    return re.sub(r'[\s"]', "", pattern)


_ALL = CIS_VERSIONS


def _c(number: str, slug: str, name: str, *patterns: tuple[str, tuple[str, ...]]) -> MetricFilterControl:
    return MetricFilterControl(number, slug, name, patterns)


METRIC_FILTER_CONTROLS: tuple[MetricFilterControl, ...] = (
    _c(
        "4.1",
        "unauthorized-api-calls",
        "unauthorized API calls monitored",
        (
            '{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") && '
            '($.sourceIPAddress!="delivery.logs.amazonaws.com") && ($.eventName!="HeadBucket") }',
            ("4.0", "5.0", "6.0", "7.0"),
        ),
        (
            '{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") || '
            '($.sourceIPAddress!="delivery.logs.amazonaws.com") || ($.eventName!="HeadBucket") }',
            ("1.5", "2.0", "3.0"),
        ),
    ),
    _c(
        "4.2",
        "console-signin-without-mfa",
        "console sign-in without MFA monitored",
        ('{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") }', _ALL),
        (
            '{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && '
            '($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }',
            _ALL,
        ),
    ),
    _c(
        "4.3",
        "root-account-usage",
        "root account usage monitored",
        (
            '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && '
            '$.eventType != "AwsServiceEvent" }',
            _ALL,
        ),
    ),
    _c(
        "4.4",
        "iam-policy-changes",
        "IAM policy changes monitored",
        (
            "{($.eventName=DeleteGroupPolicy)||($.eventName=DeleteRolePolicy)||($.eventName=DeleteUserPolicy)"
            "||($.eventName=PutGroupPolicy)||($.eventName=PutRolePolicy)||($.eventName=PutUserPolicy)"
            "||($.eventName=CreatePolicy)||($.eventName=DeletePolicy)||($.eventName=CreatePolicyVersion)"
            "||($.eventName=DeletePolicyVersion)||($.eventName=AttachRolePolicy)||($.eventName=DetachRolePolicy)"
            "||($.eventName=AttachUserPolicy)||($.eventName=DetachUserPolicy)||($.eventName=AttachGroupPolicy)"
            "||($.eventName=DetachGroupPolicy)}",
            _ALL,
        ),
    ),
    _c(
        "4.5",
        "cloudtrail-config-changes",
        "CloudTrail configuration changes monitored",
        (
            "{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) || "
            "($.eventName = StartLogging) || ($.eventName = StopLogging) }",
            _ALL,
        ),
    ),
    _c(
        "4.6",
        "console-auth-failures",
        "console authentication failures monitored",
        ('{ ($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication") }', _ALL),
    ),
    _c(
        "4.7",
        "disable-or-delete-cmk",
        "disabling or scheduled deletion of customer-created CMKs monitored",
        (
            "{($.eventSource = kms.amazonaws.com) && "
            "(($.eventName=DisableKey)||($.eventName=ScheduleKeyDeletion)) }",
            _ALL,
        ),
    ),
    _c(
        "4.8",
        "s3-bucket-policy-changes",
        "S3 bucket policy changes monitored",
        (
            "{ ($.eventSource = s3.amazonaws.com) && (($.eventName = PutBucketAcl) || "
            "($.eventName = PutBucketPolicy) || ($.eventName = PutBucketCors) || "
            "($.eventName = PutBucketLifecycle) || ($.eventName = PutBucketReplication) || "
            "($.eventName = DeleteBucketPolicy) || ($.eventName = DeleteBucketCors) || "
            "($.eventName = DeleteBucketLifecycle) || ($.eventName = DeleteBucketReplication)) }",
            _ALL,
        ),
    ),
    _c(
        "4.9",
        "aws-config-changes",
        "AWS Config configuration changes monitored",
        (
            "{ ($.eventSource = config.amazonaws.com) && (($.eventName=StopConfigurationRecorder)||"
            "($.eventName=DeleteDeliveryChannel)||($.eventName=PutDeliveryChannel)||"
            "($.eventName=PutConfigurationRecorder)) }",
            _ALL,
        ),
    ),
    _c(
        "4.10",
        "security-group-changes",
        "security group changes monitored",
        (
            "{ ($.eventName = AuthorizeSecurityGroupIngress) || "
            "($.eventName = AuthorizeSecurityGroupEgress) || "
            "($.eventName = RevokeSecurityGroupIngress) || ($.eventName = RevokeSecurityGroupEgress) || "
            "($.eventName = CreateSecurityGroup) || ($.eventName = DeleteSecurityGroup) || "
            "($.eventName = ModifySecurityGroupRules) }",
            ("5.0", "6.0", "7.0"),
        ),
        (
            "{ ($.eventName = AuthorizeSecurityGroupIngress) || "
            "($.eventName = AuthorizeSecurityGroupEgress) || "
            "($.eventName = RevokeSecurityGroupIngress) || ($.eventName = RevokeSecurityGroupEgress) || "
            "($.eventName = CreateSecurityGroup) || ($.eventName = DeleteSecurityGroup) }",
            ("1.5", "2.0", "3.0", "4.0"),
        ),
    ),
    _c(
        "4.11",
        "nacl-changes",
        "network ACL changes monitored",
        (
            "{ ($.eventName = CreateNetworkAcl) || ($.eventName = CreateNetworkAclEntry) || "
            "($.eventName = DeleteNetworkAcl) || ($.eventName = DeleteNetworkAclEntry) || "
            "($.eventName = ReplaceNetworkAclEntry) || ($.eventName = ReplaceNetworkAclAssociation) }",
            _ALL,
        ),
    ),
    _c(
        "4.12",
        "network-gateway-changes",
        "network gateway changes monitored",
        (
            "{ ($.eventName = CreateCustomerGateway) || ($.eventName = DeleteCustomerGateway) || "
            "($.eventName = AttachInternetGateway) || ($.eventName = CreateInternetGateway) || "
            "($.eventName = DeleteInternetGateway) || ($.eventName = DetachInternetGateway) }",
            _ALL,
        ),
    ),
    _c(
        "4.13",
        "route-table-changes",
        "route table changes monitored",
        (
            "{($.eventSource = ec2.amazonaws.com) && ($.eventName = CreateRoute) || "
            "($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || "
            "($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || "
            "($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable) }",
            ("3.0", "4.0", "5.0", "6.0", "7.0"),
        ),
        (
            "{ ($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) || "
            "($.eventName = ReplaceRoute) || "
            "($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || "
            "($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable) }",
            ("1.5", "2.0"),
        ),
    ),
    _c(
        "4.14",
        "vpc-changes",
        "VPC changes monitored",
        (
            "{ ($.eventName = CreateVpc) || ($.eventName = DeleteVpc) || "
            "($.eventName = ModifyVpcAttribute) || "
            "($.eventName = AcceptVpcPeeringConnection) || ($.eventName = CreateVpcPeeringConnection) || "
            "($.eventName = DeleteVpcPeeringConnection) || ($.eventName = RejectVpcPeeringConnection) || "
            "($.eventName = AttachClassicLinkVpc) || ($.eventName = DetachClassicLinkVpc) || "
            "($.eventName = DisableVpcClassicLink) || ($.eventName = EnableVpcClassicLink) }",
            _ALL,
        ),
    ),
    _c(
        "4.15",
        "organizations-changes",
        "AWS Organizations changes monitored",
        (
            '{ ($.eventSource = organizations.amazonaws.com) && (($.eventName = "AcceptHandshake") || '
            '($.eventName = "AttachPolicy") || ($.eventName = "CreateAccount") || '
            '($.eventName = "CreateOrganizationalUnit") || ($.eventName = "CreatePolicy") || '
            '($.eventName = "DeclineHandshake") || ($.eventName = "DeleteOrganization") || '
            '($.eventName = "DeleteOrganizationalUnit") || ($.eventName = "DeletePolicy") || '
            '($.eventName = "DetachPolicy") || ($.eventName = "DisablePolicyType") || '
            '($.eventName = "EnablePolicyType") || ($.eventName = "InviteAccountToOrganization") || '
            '($.eventName = "LeaveOrganization") || ($.eventName = "MoveAccount") || '
            '($.eventName = "RemoveAccountFromOrganization") || ($.eventName = "UpdatePolicy") || '
            '($.eventName = "UpdateOrganizationalUnit")) }',
            _ALL,
        ),
    ),
)


@dataclass(frozen=True)
class DesiredMetricFilter:
    """One filter and its alarm as trailkeeper makes them (the CIS remediation's values)."""

    control: MetricFilterControl
    log_group: str
    namespace: str
    topic_arn: str
    prefix: str = NAME_PREFIX

    @property
    def filter_name(self) -> str:
        return f"{self.prefix}{self.control.slug}"

    @property
    def alarm_name(self) -> str:
        return f"{self.prefix}{self.control.slug}-alarm"

    def put_metric_filter_request(self) -> dict[str, Any]:
        return {
            "logGroupName": self.log_group,
            "filterName": self.filter_name,
            "filterPattern": self.control.pattern,
            "metricTransformations": [
                {
                    "metricName": self.control.metric_name,
                    "metricNamespace": self.namespace,
                    "metricValue": "1",
                }
            ],
        }

    def put_metric_alarm_request(self, tags: dict[str, str]) -> dict[str, Any]:
        return {
            "AlarmName": self.alarm_name,
            "AlarmDescription": f"{self.control.id} {self.control.name} (CIS AWS Foundations)",
            "MetricName": self.control.metric_name,
            "Namespace": self.namespace,
            "Statistic": ALARM_STATISTIC,
            "Period": ALARM_PERIOD_SECONDS,
            "EvaluationPeriods": ALARM_EVALUATION_PERIODS,
            "Threshold": ALARM_THRESHOLD,
            "ComparisonOperator": ALARM_COMPARISON,
            "AlarmActions": [self.topic_arn],
            "Tags": [{"Key": key, "Value": value} for key, value in sorted(tags.items())],
        }


def desired_metric_filters(
    log_group: str, namespace: str, topic_arn: str, prefix: str = NAME_PREFIX
) -> list[DesiredMetricFilter]:
    return [DesiredMetricFilter(c, log_group, namespace, topic_arn, prefix) for c in METRIC_FILTER_CONTROLS]


def filter_differences(desired: DesiredMetricFilter, observed: dict[str, Any] | None) -> list[str]:
    """Fields of an observed DescribeMetricFilters entry that differ from the desired filter."""
    if observed is None:
        return ["Exists"]
    found: list[str] = []
    if normalize_pattern(str(observed.get("filterPattern", ""))) != normalize_pattern(
        desired.control.pattern
    ):
        found.append("filterPattern")
    transformations = observed.get("metricTransformations") or [{}]
    first = transformations[0]
    if (
        first.get("metricName") != desired.control.metric_name
        or first.get("metricNamespace") != desired.namespace
    ):
        found.append("metricTransformations")
    return found


def alarm_differences(desired: DesiredMetricFilter, observed: dict[str, Any] | None) -> list[str]:
    """Fields of an observed DescribeAlarms MetricAlarms entry that differ from the desired alarm."""
    if observed is None:
        return ["Exists"]
    expected = desired.put_metric_alarm_request({})
    found = [
        key
        for key in (
            "MetricName",
            "Namespace",
            "Statistic",
            "Period",
            "EvaluationPeriods",
            "Threshold",
            "ComparisonOperator",
        )
        if observed.get(key) != expected[key]
    ]
    if desired.topic_arn not in (observed.get("AlarmActions") or []):
        found.append("AlarmActions")
    return found


# --------------------------------------------------------------------------------------------------
# The delivery role
# --------------------------------------------------------------------------------------------------


def log_group_arn(partition: str, region: str, account_id: str, name: str) -> str:
    """The ARN CloudTrail's CloudWatchLogsLogGroupArn takes (the log streams' wildcard included)."""
    return f"arn:{partition}:logs:{region}:{account_id}:log-group:{name}:*"


def default_log_group_name(trail_name: str) -> str:
    return f"aws-cloudtrail-logs/{trail_name}"


def default_role_name(trail_name: str) -> str:
    # IAM role names are at most 64 characters.
    return f"trailkeeper-cloudtrail-{trail_name}"[:64]


def delivery_trust_policy(account_id: str, trail_arns: list[str]) -> dict[str, Any]:
    """Who may assume the delivery role: CloudTrail, for this account's trails only (the confused
    deputy protection the CloudTrail user guide recommends, aws:SourceArn)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CloudTrailAssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": sorted(trail_arns)},
                },
            }
        ],
    }


def delivery_role_policy(partition: str, account_id: str, groups: list[tuple[str, str]]) -> dict[str, Any]:
    """What CloudTrail needs to deliver: create streams and put events in the given (region, group)
    log groups, nothing else (CloudTrail user guide, "Role policy document for CloudTrail to use
    CloudWatch Logs for monitoring")."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CloudTrailCreateLogStream",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": sorted(
                    f"arn:{partition}:logs:{region}:{account_id}:log-group:{group}:log-stream:*"
                    for region, group in groups
                ),
            }
        ],
    }
