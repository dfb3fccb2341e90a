"""spec.monitoring against moto over HTTP: the delivery role, the log group, the CIS metric filters and
their alarms are made and wired into the trail, a steady state changes nothing, drift is corrected (or
only reported), and foreign filters and alarms on the same group are never touched."""

from __future__ import annotations

from typing import Any

from trailkeeper.api.trail import TrailSpec
from trailkeeper.aws.session import AwsSessions
from trailkeeper.core.monitoring import METRIC_FILTER_CONTROLS, name_prefix, normalize_pattern
from trailkeeper.core.monitoring_desired import ROLE_POLICY_NAME
from trailkeeper.core.naming import OWNER_TAG
from trailkeeper.reconcile.shared import Shared
from trailkeeper.reconcile.trail import TrailRequest, delete_trail, reconcile_trail, removed_monitoring

ACCOUNT = "123456789012"
OWNER = "security/audit"
PREFIX = name_prefix(OWNER)
GROUP = "aws-cloudtrail-logs/audit"
ROLE = "trailkeeper-cloudtrail-audit"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:alarms"


def spec(**overrides: Any) -> TrailSpec:
    body: dict[str, Any] = {
        "regions": ["us-east-1"],
        "multiRegion": True,
        "destination": {"bucket": "acme-audit"},
        "notifications": {
            "topicName": "alarms",
            "subscriptions": [{"protocol": "email", "endpoint": "sec@example.com"}],
        },
        "monitoring": {},
        "deletionPolicy": "Delete",
    }
    body.update(overrides)
    return TrailSpec.model_validate(body)


def request(trail_spec: TrailSpec, **kwargs: Any) -> TrailRequest:
    return TrailRequest(namespace="security", name="audit", spec=trail_spec, **kwargs)


def mutating(aws: AwsSessions) -> list[str]:
    assert aws.recorder is not None
    return [f"{c.service}:{c.operation}" for c in aws.recorder.snapshot() if c.mutating]


def filters(aws: AwsSessions, group: str = GROUP) -> dict[str, dict[str, Any]]:
    found = aws.client("logs", "us-east-1").describe_metric_filters(logGroupName=group)["metricFilters"]
    return {f["filterName"]: f for f in found}


def alarms(aws: AwsSessions) -> dict[str, dict[str, Any]]:
    found = aws.client("cloudwatch", "us-east-1").describe_alarms()["MetricAlarms"]
    return {a["AlarmName"]: a for a in found}


def put_foreign(aws: AwsSessions, group: str = GROUP) -> None:
    """Someone else's filter and alarm on the same group, with a CIS pattern."""
    aws.client("logs", "us-east-1").put_metric_filter(
        logGroupName=group,
        filterName="platform-root-usage",
        filterPattern=METRIC_FILTER_CONTROLS[2].pattern,
        metricTransformations=[{"metricName": "root", "metricNamespace": "Platform", "metricValue": "1"}],
    )
    aws.client("cloudwatch", "us-east-1").put_metric_alarm(
        AlarmName="platform-root-usage",
        MetricName="root",
        Namespace="Platform",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )


def test_first_pass_makes_role_group_filters_and_alarms_and_wires_the_trail(aws: AwsSessions) -> None:
    outcome = reconcile_trail(request(spec()), aws, Shared())
    assert outcome.failures == []

    trail = aws.client("cloudtrail", "us-east-1").get_trail(Name="audit")["Trail"]
    assert trail["CloudWatchLogsLogGroupArn"] == f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{GROUP}:*"
    assert trail["CloudWatchLogsRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"

    iam = aws.client("iam", "us-east-1")
    role = iam.get_role(RoleName=ROLE)["Role"]
    assert {t["Key"]: t["Value"] for t in role["Tags"]}[OWNER_TAG] == OWNER
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert trust["Condition"]["ArnLike"]["aws:SourceArn"] == [
        f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/audit"
    ]
    (grant,) = iam.get_role_policy(RoleName=ROLE, PolicyName=ROLE_POLICY_NAME)["PolicyDocument"]["Statement"]
    assert sorted(grant["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert grant["Resource"] == [f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{GROUP}:log-stream:*"]

    made = filters(aws)
    assert len(made) == len(METRIC_FILTER_CONTROLS) == 15
    for control in METRIC_FILTER_CONTROLS:
        made_filter = made[f"{PREFIX}{control.slug}"]
        # The pattern as CIS prints it, character for character.
        assert made_filter["filterPattern"] == control.pattern
        assert made_filter["metricTransformations"][0]["metricNamespace"] == "CISBenchmark"
        alarm = alarms(aws)[f"{PREFIX}{control.slug}-alarm"]
        assert alarm["AlarmActions"] == [TOPIC]
        assert alarm["MetricName"] == made_filter["metricTransformations"][0]["metricName"]
        assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Sum", 300, 1.0)


def test_second_pass_on_unchanged_aws_makes_no_mutating_call(aws: AwsSessions) -> None:
    reconcile_trail(request(spec(monitoring={"retentionDays": 365})), aws, Shared())
    assert aws.recorder is not None
    aws.recorder.reset()
    outcome = reconcile_trail(request(spec(monitoring={"retentionDays": 365})), aws, Shared())
    assert outcome.failures == [] and outcome.diffs == []
    assert mutating(aws) == []


def test_drift_of_filters_alarms_role_and_retention_is_corrected(aws: AwsSessions) -> None:
    trail_spec = spec(monitoring={"retentionDays": 365})
    reconcile_trail(request(trail_spec), aws, Shared())
    logs, iam = aws.client("logs", "us-east-1"), aws.client("iam", "us-east-1")
    logs.delete_metric_filter(logGroupName=GROUP, filterName=f"{PREFIX}root-account-usage")
    logs.put_retention_policy(logGroupName=GROUP, retentionInDays=7)
    aws.client("cloudwatch", "us-east-1").delete_alarms(AlarmNames=[f"{PREFIX}vpc-changes-alarm"])
    iam.put_role_policy(
        RoleName=ROLE,
        PolicyName=ROLE_POLICY_NAME,
        PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"logs:*","Resource":"*"}]}',
    )

    outcome = reconcile_trail(request(trail_spec), aws, Shared())
    assert outcome.failures == []
    assert {d.resource for d in outcome.diffs} == {
        f"metric-filter/us-east-1/{PREFIX}root-account-usage",
        f"metric-alarm/us-east-1/{PREFIX}vpc-changes-alarm",
        f"log-group/us-east-1/{GROUP}",
        f"role/{ROLE}",
    }
    assert f"{PREFIX}root-account-usage" in filters(aws)
    assert f"{PREFIX}vpc-changes-alarm" in alarms(aws)
    assert logs.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"][0]["retentionInDays"] == 365
    document = iam.get_role_policy(RoleName=ROLE, PolicyName=ROLE_POLICY_NAME)["PolicyDocument"]
    assert document["Statement"][0]["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]


def test_a_report_only_check_lists_the_drift_and_changes_nothing(aws: AwsSessions) -> None:
    reconcile_trail(request(spec()), aws, Shared())
    logs = aws.client("logs", "us-east-1")
    logs.put_metric_filter(
        logGroupName=GROUP,
        filterName=f"{PREFIX}root-account-usage",
        filterPattern='{ $.userIdentity.type = "Root" }',
        metricTransformations=[
            {"metricName": "root_account_usage_metric", "metricNamespace": "CISBenchmark", "metricValue": "1"}
        ],
    )
    assert aws.recorder is not None
    aws.recorder.reset()

    outcome = reconcile_trail(request(spec(driftPolicy="Report"), act=False), aws, Shared())
    (diff,) = outcome.diffs
    assert (diff.resource, diff.field) == (
        f"metric-filter/us-east-1/{PREFIX}root-account-usage",
        "filterPattern",
    )
    assert mutating(aws) == []
    pattern = filters(aws)[f"{PREFIX}root-account-usage"]["filterPattern"]
    assert normalize_pattern(pattern) == normalize_pattern('{ $.userIdentity.type = "Root" }')


def test_foreign_filters_and_alarms_on_the_group_are_left_alone_and_survive_deletion(
    aws: AwsSessions,
) -> None:
    aws.client("logs", "us-east-1").create_log_group(logGroupName="shared-trail-logs")
    put_foreign(aws, "shared-trail-logs")
    trail_spec = spec(monitoring={"logGroupName": "shared-trail-logs", "createLogGroup": False})
    assert reconcile_trail(request(trail_spec), aws, Shared()).failures == []
    assert len(filters(aws, "shared-trail-logs")) == 16
    # Their filter has a CIS pattern on the same group: still not ours, and no difference.
    assert reconcile_trail(request(trail_spec), aws, Shared()).diffs == []

    deleted = delete_trail(request(trail_spec), aws, Shared())
    assert deleted.failures == []
    assert list(filters(aws, "shared-trail-logs")) == ["platform-root-usage"]
    assert list(alarms(aws)) == ["platform-root-usage"]
    # The group was not ours: it stays; our role goes once the trail is gone.
    assert aws.client("logs", "us-east-1").describe_log_groups()["logGroups"]
    iam = aws.client("iam", "us-east-1")
    assert ROLE not in [r["RoleName"] for r in iam.list_roles()["Roles"]]


def test_a_role_of_the_same_name_made_by_someone_else_is_a_conflict(aws: AwsSessions) -> None:
    aws.client("iam", "us-east-1").create_role(
        RoleName=ROLE, AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[]}'
    )
    outcome = reconcile_trail(request(spec()), aws, Shared())
    (failure,) = outcome.failures
    assert failure.code == "Conflict" and "monitoring.roleArn" in failure.message
    # Nothing was wired to a role that is not ours, and no trail was made to deliver through it.
    assert aws.client("cloudtrail", "us-east-1").describe_trails()["trailList"] == []


def test_an_alarm_of_our_name_without_our_owner_tag_is_not_replaced(aws: AwsSessions) -> None:
    name = f"{PREFIX}vpc-changes-alarm"
    aws.client("cloudwatch", "us-east-1").put_metric_alarm(
        AlarmName=name,
        MetricName="other",
        Namespace="Other",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=5.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    outcome = reconcile_trail(request(spec()), aws, Shared())
    (failure,) = outcome.failures
    assert failure.code == "Conflict" and name in failure.message
    assert alarms(aws)[name]["Namespace"] == "Other"
    assert len(alarms(aws)) == 15


def test_a_missing_group_that_must_exist_fails_the_region_without_making_it(aws: AwsSessions) -> None:
    outcome = reconcile_trail(
        request(spec(monitoring={"logGroupName": "absent", "createLogGroup": False})), aws, Shared()
    )
    (failure,) = outcome.failures
    assert failure.code == "LogGroupNotFound" and failure.retryable
    assert aws.client("logs", "us-east-1").describe_log_groups()["logGroups"] == []


def test_a_named_role_and_alarm_topic_are_used_as_given(aws: AwsSessions) -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/platform-cloudtrail"
    other_topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:security-alarms"
    outcome = reconcile_trail(
        request(spec(notifications=None, monitoring={"roleArn": role, "alarmTopicArn": other_topic})),
        aws,
        Shared(),
    )
    assert outcome.failures == []
    assert aws.client("iam", "us-east-1").list_roles()["Roles"] == []
    trail = aws.client("cloudtrail", "us-east-1").get_trail(Name="audit")["Trail"]
    assert trail["CloudWatchLogsRoleArn"] == role
    assert {a["AlarmActions"][0] for a in alarms(aws).values()} == {other_topic}


def test_dropping_monitoring_from_a_live_trail_removes_its_filters_alarms_and_role(aws: AwsSessions) -> None:
    put_foreign(aws)
    with_monitoring = spec()
    assert reconcile_trail(request(with_monitoring), aws, Shared()).failures == []
    without = spec(monitoring=None)
    update = request(without, removed_monitoring=removed_monitoring(with_monitoring, without))
    outcome = reconcile_trail(update, aws, Shared())
    assert outcome.failures == []

    trail = aws.client("cloudtrail", "us-east-1").get_trail(Name="audit")["Trail"]
    assert not trail.get("CloudWatchLogsLogGroupArn") and not trail.get("CloudWatchLogsRoleArn")
    # Only the foreign filter and alarm remain; the log group (it holds the events) stays.
    assert list(filters(aws)) == ["platform-root-usage"]
    assert list(alarms(aws)) == ["platform-root-usage"]
    assert aws.client("iam", "us-east-1").list_roles()["Roles"] == []
    groups = aws.client("logs", "us-east-1").describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == [GROUP]
    # The next pass has nothing left to do.
    assert aws.recorder is not None
    aws.recorder.reset()
    assert reconcile_trail(request(without), aws, Shared()).diffs == []
    assert mutating(aws) == []


def test_a_retained_trail_keeps_its_monitoring_when_the_spec_drops_it(aws: AwsSessions) -> None:
    with_monitoring = spec(deletionPolicy="Retain")
    reconcile_trail(request(with_monitoring), aws, Shared())
    without = spec(deletionPolicy="Retain", monitoring=None)
    update = request(without, removed_monitoring=removed_monitoring(with_monitoring, without))
    assert reconcile_trail(update, aws, Shared()).failures == []
    assert len(filters(aws)) == len(alarms(aws)) == 15
    assert [r["RoleName"] for r in aws.client("iam", "us-east-1").list_roles()["Roles"]] == [ROLE]
