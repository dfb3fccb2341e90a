"""End to end: a Trail with spec.monitoring, run by the real operator against a real API server and moto,
makes an account that passes the CIS Monitoring controls in `trailkeeper audit`; its deletion removes
its own filters and alarms and leaves another's."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from support.cluster import Cluster, OperatorProcess, eventually
from support.moto_server import InProcessMotoServer
from support.s3control_front import s3control_on_endpoint_host
from trailkeeper.cli.audit import audit
from trailkeeper.core.monitoring import METRIC_FILTER_CONTROLS

pytestmark = pytest.mark.e2e


MONITORED = {
    "regions": ["us-east-1"],
    "multiRegion": True,
    "destination": {"bucket": "e2e-monitored"},
    "notifications": {
        "topicName": "e2e-alarms",
        "subscriptions": [{"protocol": "email", "endpoint": "security@example.com"}],
    },
    "monitoring": {"retentionDays": 365},
    "deletionPolicy": "Delete",
    "resyncSeconds": 30,
}
GROUP = "aws-cloudtrail-logs/audit"
MONITORING_IDS = {c.id for c in METRIC_FILTER_CONTROLS}


def aws(service: str, endpoint: str) -> Any:
    return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint)  # type: ignore[call-overload]


def audit_verdicts(endpoint: str) -> dict[str, str]:
    with s3control_on_endpoint_host():
        result = CliRunner().invoke(
            audit, ["--aws-endpoint-url", endpoint, "--regions", "us-east-1", "--format", "json"]
        )
    assert result.exit_code in (0, 3), result.output
    verdicts: dict[str, str] = {}
    for entry in json.loads(result.stdout):
        # An account control is one row; a control per trail, one row per trail (one trail here).
        verdicts[entry["control"]] = entry["state"]
    return verdicts


def test_a_trail_with_monitoring_passes_the_cis_monitoring_controls_in_audit(
    cluster: Cluster, cis_operator: OperatorProcess, cis_moto: InProcessMotoServer
) -> None:
    cluster.apply("Trail", "audit", MONITORED)
    cluster.wait_condition("Trail", "audit", "Ready", "True", timeout=60)

    verdicts = audit_verdicts(cis_moto.url)
    assert {control: verdicts[control] for control in MONITORING_IDS} == dict.fromkeys(MONITORING_IDS, "Pass")
    assert verdicts["CIS-3.1"] == verdicts["CIS-3.4"] == "Pass"
    # The one the operator cannot do: only the root user can turn on MFA Delete.
    assert verdicts["CIS-2.1.3"] == "Fail"

    # status.compliance reports the Monitoring section for a Trail that makes it.
    def reported() -> dict[str, Any]:
        entries = {c["control"]: c["passed"] for c in cluster.status("Trail", "audit").get("compliance", [])}
        return {control: entries.get(control) for control in MONITORING_IDS | {"CIS-3.4"}}

    eventually(lambda: set(reported().values()) == {True}, what="the Monitoring controls passed in status")


def test_deleting_the_trail_removes_its_filters_and_alarms_and_keeps_anothers(
    cluster: Cluster, cis_operator: OperatorProcess, cis_moto: InProcessMotoServer
) -> None:
    cluster.apply("Trail", "audit", MONITORED)
    cluster.wait_condition("Trail", "audit", "Ready", "True", timeout=60)
    logs, cloudwatch = aws("logs", cis_moto.url), aws("cloudwatch", cis_moto.url)
    logs.put_metric_filter(
        logGroupName=GROUP,
        filterName="platform-console-logins",
        filterPattern='{ $.eventName = "ConsoleLogin" }',
        metricTransformations=[{"metricName": "logins", "metricNamespace": "Platform", "metricValue": "1"}],
    )
    cloudwatch.put_metric_alarm(
        AlarmName="platform-console-logins",
        MetricName="logins",
        Namespace="Platform",
        Statistic="Sum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    assert len(logs.describe_metric_filters(logGroupName=GROUP)["metricFilters"]) == 16

    cluster.delete("Trail", "audit")

    def left() -> tuple[list[str], list[str]]:
        return (
            [f["filterName"] for f in logs.describe_metric_filters(logGroupName=GROUP)["metricFilters"]],
            [a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]],
        )

    eventually(
        lambda: left() == (["platform-console-logins"], ["platform-console-logins"]),
        what="only the foreign filter and alarm left",
        timeout=60,
    )
    assert aws("cloudtrail", cis_moto.url).describe_trails()["trailList"] == []
    # The group holds the trail's events: a Trail's deletion never destroys them.
    assert [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]] == [GROUP]
