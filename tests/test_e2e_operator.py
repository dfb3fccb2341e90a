"""End to end: the real operator process (kopf) against a real Kubernetes API server and moto over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from support.cluster import ApiError, Cluster, OperatorProcess, eventually
from support.moto_server import InProcessMotoServer, MotoServer, free_port
from trailkeeper.core.tags import desired_tags

pytestmark = pytest.mark.e2e


TRAIL = {
    "regions": ["us-east-1"],
    "destination": {"bucket": "e2e-audit"},
    "resyncSeconds": 30,
}


def aws(service: str, endpoint: str, region: str = "us-east-1") -> Any:
    return boto3.client(service, region_name=region, endpoint_url=endpoint)  # type: ignore[call-overload]


def trail_names(endpoint: str, region: str = "us-east-1") -> list[str]:
    return sorted(
        t["Name"]
        for t in aws("cloudtrail", endpoint, region).describe_trails()["trailList"]
        if t.get("HomeRegion", region) == region and f":{region}:" in t["TrailARN"]
    )


def test_create_reaches_ready_with_aws_in_the_spec_state(
    cluster: Cluster, operator: OperatorProcess, moto_endpoint: str
) -> None:
    cluster.apply(
        "Trail",
        "audit",
        {**TRAIL, "regions": ["us-east-1", "eu-west-1"], "destination": {"bucket": "e2e-{region}"}},
    )
    ready = cluster.wait_condition("Trail", "audit", "Ready", "True")
    assert ready["message"] == "2 of 2 trails logging"
    status = cluster.status("Trail", "audit")
    assert status["phase"] == "Ready"
    assert status["observedGeneration"] == 1
    assert [r["region"] for r in status["regions"]] == ["us-east-1", "eu-west-1"]
    assert status["regions"][1]["trailArn"] == "arn:aws:cloudtrail:eu-west-1:123456789012:trail/audit"
    for region in ("us-east-1", "eu-west-1"):
        assert aws("cloudtrail", moto_endpoint, region).get_trail_status(Name="audit")["IsLogging"] is True
    assert {c["type"] for c in status["conditions"]} >= {"Ready", "Synced", "Drifted"}
    reasons = [e["reason"] for e in cluster.events("audit")]
    assert "Created" in reasons


def test_spec_update_is_followed_in_aws(
    cluster: Cluster, operator: OperatorProcess, moto_endpoint: str
) -> None:
    cluster.apply(
        "Trail",
        "audit",
        {
            **TRAIL,
            "notifications": {
                "topicName": "e2e-topic",
                "subscriptions": [{"protocol": "email", "endpoint": "a@example.com"}],
            },
            "tags": {"team": "audit", "cost-center": "42"},
        },
    )
    cluster.wait_condition("Trail", "audit", "Ready", "True")
    cluster.patch_spec(
        "Trail",
        "audit",
        {
            "regions": ["us-east-1", "eu-west-1"],
            "eventSelectors": [{"readWriteType": "WriteOnly", "includeManagementEvents": True}],
            "notifications": None,
            "tags": {"cost-center": None},
        },
    )

    def followed() -> bool:
        status = cluster.status("Trail", "audit")
        return status.get("observedGeneration") == 2 and status.get("phase") == "Ready"

    eventually(followed, what="the update reaching Ready")
    assert trail_names(moto_endpoint, "eu-west-1") == ["audit"]
    selectors = aws("cloudtrail", moto_endpoint).get_event_selectors(TrailName="audit")["EventSelectors"]
    assert selectors[0]["ReadWriteType"] == "WriteOnly"
    trail = aws("cloudtrail", moto_endpoint).get_trail(Name="audit")["Trail"]
    assert not trail.get("SnsTopicName")
    sns = aws("sns", moto_endpoint)
    topic = sns.list_topics()["Topics"][0]["TopicArn"]
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
    tag_list = aws("cloudtrail", moto_endpoint).list_tags(ResourceIdList=[trail["TrailARN"]])[
        "ResourceTagList"
    ]
    assert {t["Key"]: t["Value"] for t in tag_list[0]["TagsList"]} == desired_tags(
        {"team": "audit"}, "default/audit"
    )


def test_out_of_band_drift_is_reported_and_corrected(
    cluster: Cluster, operator: OperatorProcess, moto_endpoint: str
) -> None:
    cluster.apply(
        "Trail",
        "audit",
        {
            **TRAIL,
            "notifications": {
                "topicName": "e2e-topic",
                "subscriptions": [{"protocol": "email", "endpoint": "a@example.com"}],
            },
        },
    )
    cluster.apply(
        "LogRetention", "keep", {"trailRef": {"name": "audit"}, "expirationDays": 400, "resyncSeconds": 30}
    )
    cluster.wait_condition("Trail", "audit", "Ready", "True")
    cluster.wait_condition("LogRetention", "keep", "Ready", "True")
    cloudtrail, s3, sns = (aws(s, moto_endpoint) for s in ("cloudtrail", "s3", "sns"))
    cloudtrail.stop_logging(Name="audit")
    policy = json.loads(s3.get_bucket_policy(Bucket="e2e-audit")["Policy"])
    removed = policy["Statement"].pop(0)["Sid"]
    s3.put_bucket_policy(Bucket="e2e-audit", Policy=json.dumps(policy))
    s3.delete_bucket_lifecycle(Bucket="e2e-audit")
    topic = sns.list_topics()["Topics"][0]["TopicArn"]
    for sub in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])

    def corrected_trail() -> list[dict[str, Any]] | None:
        drift = cluster.status("Trail", "audit").get("drift") or []
        return drift if {d["field"] for d in drift} >= {"IsLogging", f"Statement[{removed}]"} else None

    drift = eventually(corrected_trail, timeout=15, what="the trail drift in status")
    assert all(d["corrected"] for d in drift)
    assert any(d["resource"] == "subscription/us-east-1" for d in drift)
    assert cluster.condition("Trail", "audit", "Drifted")["reason"] == "DriftCorrected"
    eventually(lambda: cloudtrail.get_trail_status(Name="audit")["IsLogging"], what="logging restarted")
    eventually(lambda: sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"], what="resubscribed")

    def rule_drift_seen() -> bool:
        # In status until the next check finds none (a second or two here, which a loaded machine can spend
        # in the waits above), and in the DriftCorrected Event for good.
        events = [e for e in cluster.events("keep") if e["reason"] == "DriftCorrected"]
        return bool(cluster.status("LogRetention", "keep").get("drift")) or any(
            "lifecycle/e2e-audit" in e.get("message", "") for e in events
        )

    eventually(rule_drift_seen, timeout=15, what="rule drift")
    rules = eventually(
        lambda: (
            s3.get_bucket_lifecycle_configuration(Bucket="e2e-audit")["Rules"] if _has_lifecycle(s3) else None
        ),
        what="lifecycle rule restored",
    )
    assert rules[0]["ID"] == "trailkeeper-default-keep"
    assert "DriftCorrected" in [e["reason"] for e in cluster.events("audit")]


def _has_lifecycle(s3: Any) -> bool:
    try:
        s3.get_bucket_lifecycle_configuration(Bucket="e2e-audit")
    except s3.exceptions.ClientError:
        return False
    return True


def test_report_policy_only_reports_drift(
    cluster: Cluster, operator: OperatorProcess, moto_endpoint: str
) -> None:
    cluster.apply("Trail", "audit", {**TRAIL, "driftPolicy": "Report"})
    cluster.wait_condition("Trail", "audit", "Ready", "True")
    cloudtrail = aws("cloudtrail", moto_endpoint)
    cloudtrail.stop_logging(Name="audit")
    drifted = cluster.wait_condition("Trail", "audit", "Drifted", "True", reason="DriftDetected", timeout=15)
    assert "not corrected" in drifted["message"]
    status = cluster.status("Trail", "audit")
    assert status["phase"] == "Drifted"
    assert status["drift"] == [
        {
            **status["drift"][0],
            "resource": "trail/us-east-1",
            "field": "IsLogging",
            "desired": "true",
            "actual": "false",
            "corrected": False,
        }
    ]
    assert cluster.condition("Trail", "audit", "Ready")["status"] == "False"
    assert cloudtrail.get_trail_status(Name="audit")["IsLogging"] is False


def test_delete_with_retain_and_with_delete(
    cluster: Cluster, operator: OperatorProcess, moto_endpoint: str
) -> None:
    cluster.apply("Trail", "kept", {**TRAIL, "destination": {"bucket": "e2e-kept"}})
    cluster.apply(
        "Trail", "gone", {**TRAIL, "destination": {"bucket": "e2e-gone"}, "deletionPolicy": "Delete"}
    )
    cluster.wait_condition("Trail", "kept", "Ready", "True")
    cluster.wait_condition("Trail", "gone", "Ready", "True")
    cluster.delete("Trail", "kept")
    cluster.delete("Trail", "gone")
    eventually(
        lambda: cluster.get("Trail", "kept") is None and cluster.get("Trail", "gone") is None,
        what="both objects gone (finalizer released)",
    )
    assert trail_names(moto_endpoint) == ["kept"]
    buckets = {b["Name"] for b in aws("s3", moto_endpoint).list_buckets()["Buckets"]}
    assert buckets == {"e2e-kept"}, "the empty bucket trailkeeper made for 'gone' is deleted too"


def test_the_api_server_refuses_a_spec_the_schema_refuses_naming_the_field(cluster: Cluster) -> None:
    with pytest.raises(ApiError) as refused:
        cluster.apply("Trail", "bad", {"regions": ["us-east-1"], "destination": {"bucket": "Not_A_Bucket"}})
    assert refused.value.status == 422
    causes = refused.value.body["details"]["causes"]
    assert {c["field"] for c in causes} == {"spec.destination.bucket"}
    assert cluster.get("Trail", "bad") is None


def test_invalid_spec_past_admission_reports_the_field_and_calls_no_aws(
    cluster: Cluster, operator: OperatorProcess, moto_endpoint: str
) -> None:
    # Which regions exist is the operator's knowledge (botocore's list), not the schema's.
    cluster.apply("Trail", "bad", {"regions": ["us-nowhere-1"], "destination": {"bucket": "e2e-bad"}})
    cluster.apply("Trail", "good", TRAIL)
    ready = cluster.wait_condition("Trail", "bad", "Ready", "False", reason="InvalidSpec")
    assert "spec.regions[0]" in ready["message"]
    cluster.wait_condition("Trail", "good", "Ready", "True")
    assert trail_names(moto_endpoint) == ["good"]
    assert "InvalidSpec" in [e["reason"] for e in cluster.events("bad")]
    cluster.patch_spec("Trail", "bad", {"regions": ["us-east-1"]})
    cluster.wait_condition("Trail", "bad", "Ready", "True")


FLEET_REGIONS = ("us-east-1", "eu-west-1", "us-west-2", "ap-southeast-1")


def test_twenty_trails_at_once_all_reach_ready(
    cluster: Cluster, operator: OperatorProcess, moto_endpoint: str
) -> None:
    # AWS allows 5 trails per region and account (the limits front in front of moto says so too).
    names = {f"fleet-{i:02d}": FLEET_REGIONS[i % 4] for i in range(20)}
    for name, region in names.items():
        spec = {**TRAIL, "regions": [region], "destination": {"bucket": f"e2e-{name}"}}
        cluster.apply("Trail", name, spec)
    for name in names:
        cluster.wait_condition("Trail", name, "Ready", "True", timeout=60)
    for region in FLEET_REGIONS:
        assert trail_names(moto_endpoint, region) == sorted(n for n, r in names.items() if r == region)


def test_restart_between_create_trail_and_start_logging_converges(
    cluster: Cluster, operator: OperatorProcess, moto_endpoint: str, tmp_path: Path
) -> None:
    # The state a crash between CreateTrail and StartLogging leaves: the trail exists, tagged as ours,
    # but does not log. The operator is killed first, then started again over that state.
    operator.kill()
    cluster.apply("Trail", "audit", TRAIL)
    s3 = aws("s3", moto_endpoint)
    s3.create_bucket(Bucket="e2e-audit")
    aws("cloudtrail", moto_endpoint).create_trail(
        Name="audit",
        S3BucketName="e2e-audit",
        TagsList=[{"Key": "trailkeeper.io/owner", "Value": "default/audit"}],
    )
    with OperatorProcess(cluster.kubeconfig, moto_endpoint, tmp_path / "restarted.log"):
        cluster.wait_condition("Trail", "audit", "Ready", "True")
    assert trail_names(moto_endpoint) == ["audit"]
    assert aws("cloudtrail", moto_endpoint).get_trail_status(Name="audit")["IsLogging"] is True


def _rule_ids(s3: Any, bucket: str) -> list[str]:
    try:
        return [r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]]
    except s3.exceptions.ClientError:
        return []


def test_log_retention_waits_for_its_trail_and_follows_a_bucket_change(
    cluster: Cluster, operator: OperatorProcess, moto_endpoint: str
) -> None:
    cluster.apply("LogRetention", "keep", {"trailRef": {"name": "audit"}, "expirationDays": 400})
    missing = cluster.wait_condition("LogRetention", "keep", "Ready", "False", reason="TrailNotFound")
    assert "audit" in missing["message"]
    cluster.apply("Trail", "audit", TRAIL)
    cluster.wait_condition("LogRetention", "keep", "Ready", "True", timeout=30)
    s3 = aws("s3", moto_endpoint)
    assert _rule_ids(s3, "e2e-audit") == ["trailkeeper-default-keep"]
    cluster.patch_spec("Trail", "audit", {"destination": {"bucket": "e2e-moved"}})
    eventually(
        lambda: _rule_ids(s3, "e2e-moved") == ["trailkeeper-default-keep"],
        timeout=30,
        what="the rule on the Trail's new bucket",
    )
    eventually(lambda: _rule_ids(s3, "e2e-audit") == [], what="the rule taken off the old bucket")
    eventually(
        lambda: [b["bucket"] for b in cluster.status("LogRetention", "keep")["buckets"]] == ["e2e-moved"],
        what="the status naming the new bucket only",
    )


def test_compliance_is_reported_and_flips_when_the_spec_is_fixed(
    cluster: Cluster, cis_operator: OperatorProcess, cis_moto: InProcessMotoServer
) -> None:
    # moto as AWS is for these controls: MFA Delete kept, CloudWatch Logs deliveries (support/cis_moto.py).
    moto_endpoint = cis_moto.url
    cluster.apply("Trail", "audit", {**TRAIL, "multiRegion": True})
    cluster.wait_condition("Trail", "audit", "Compliant", "False", timeout=60)
    entries = {c["control"]: c for c in cluster.status("Trail", "audit")["compliance"]}
    failed = sorted(control for control, entry in entries.items() if entry["passed"] is not True)
    assert failed == ["CIS-2.1.3", "CIS-3.10", "CIS-3.11", "CIS-3.4", "CIS-3.6", "CIS-3.7"]
    assert all(entries[c]["passed"] is False for c in failed)
    passed = {"CIS-3.1", "CIS-3.2", "CIS-3.3", "TK-REGIONS", "TK-BUCKET-BPA", "TK-BUCKET-VERSIONING"}
    assert {c for c, entry in entries.items() if entry["passed"] is True} == passed
    # A Trail without spec.monitoring does not report the account's Monitoring section.
    assert not any(c.startswith("CIS-4.") for c in entries)
    message = cluster.condition("Trail", "audit", "Compliant")["message"]
    assert "CIS-3.7" in message and "CIS-2.1.3" in message

    # The fixes: server access logging and MFA Delete on the bucket (the bucket owner's job; MFA Delete
    # only the root user can turn on), then the spec.
    s3 = aws("s3", moto_endpoint)
    s3.put_bucket_versioning(
        Bucket="e2e-audit",
        MFA="arn:aws:iam::123456789012:mfa/root-account-mfa-device 123456",
        VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"},
    )
    s3.create_bucket(Bucket="e2e-access-logs")
    s3.put_bucket_policy(
        Bucket="e2e-access-logs",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "logging.s3.amazonaws.com"},
                        "Action": "s3:PutObject",
                        "Resource": "arn:aws:s3:::e2e-access-logs/*",
                    }
                ],
            }
        ),
    )
    s3.put_bucket_logging(
        Bucket="e2e-audit",
        BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": "e2e-access-logs", "TargetPrefix": "audit/"}},
    )
    key = aws("kms", moto_endpoint).create_key()["KeyMetadata"]["Arn"]
    group = aws("logs", moto_endpoint)
    group.create_log_group(logGroupName="cloudtrail")
    group_arn = "arn:aws:logs:us-east-1:123456789012:log-group:cloudtrail:*"
    cluster.patch_spec(
        "Trail",
        "audit",
        {
            "destination": {"bucket": "e2e-audit", "kmsKeyId": key},
            "cloudWatchLogs": {"logGroupArn": group_arn, "roleArn": "arn:aws:iam::123456789012:role/ct-logs"},
            "eventSelectors": [
                {
                    "readWriteType": "All",
                    "includeManagementEvents": True,
                    "dataResources": [{"type": "AWS::S3::Object", "values": ["arn:aws:s3"]}],
                }
            ],
        },
    )
    compliant = cluster.wait_condition("Trail", "audit", "Compliant", "True", timeout=60)
    assert compliant["reason"] == "AllControlsPassed"
    entries = {c["control"]: c for c in cluster.status("Trail", "audit")["compliance"]}
    assert {c for c, entry in entries.items() if entry["passed"] is True} == passed | set(failed)
    reasons = [e["reason"] for e in cluster.events("audit")]
    assert "ControlPassed" in reasons


def test_metrics_endpoint_counts_reconciles_and_aws_calls(
    cluster: Cluster, moto_server: MotoServer, moto_endpoint: str, tmp_path: Path
) -> None:
    moto_server.reset()
    port = free_port()
    log = tmp_path / "metrics-operator.log"
    with OperatorProcess(cluster.kubeconfig, moto_endpoint, log, "--metrics-port", str(port)):
        cluster.apply("Trail", "audit", TRAIL)
        cluster.wait_condition("Trail", "audit", "Ready", "True")

        def scrape() -> dict[str, float] | None:
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except requests.ConnectionError:
                return None
            values: dict[str, float] = {}
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    values[sample.name] = values.get(sample.name, 0.0) + sample.value
            return values if values.get("trailkeeper_reconcile_total") else None

        values = eventually(scrape, what="non-zero reconcile counters on /metrics")
    assert values["trailkeeper_aws_calls_total"] > 0
    assert values["trailkeeper_trails_logging"] == 1
