"""`trailkeeper apply` and `diff` against moto, as a GitOps pipeline would run them."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner, Result

from support.moto_server import MotoServer
from trailkeeper.cli.main import cli

MANIFESTS = """\
apiVersion: trailkeeper.io/v1alpha1
kind: Trail
metadata: {name: audit, namespace: security}
spec:
  regions: [us-east-1]
  destination: {bucket: acme-pipeline}
  notifications:
    topicName: deliveries
    subscriptions:
      - {protocol: email, endpoint: sec@example.com}
---
apiVersion: trailkeeper.io/v1alpha1
kind: LogRetention
metadata: {name: keep, namespace: security}
spec:
  trailRef: {name: audit}
  transitions: [{days: 90, storageClass: GLACIER}]
  expirationDays: 400
"""


@pytest.fixture
def manifests(tmp_path: Path, moto_server: MotoServer) -> Path:
    moto_server.reset()
    path = tmp_path / "audit.yaml"
    path.write_text(MANIFESTS, encoding="utf-8")
    return path


def invoke(*args: str, endpoint: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--aws-endpoint-url", endpoint], catch_exceptions=False)


def test_apply_twice_changes_nothing_the_second_time(manifests: Path, moto_endpoint: str) -> None:
    first = invoke("apply", "-f", str(manifests), endpoint=moto_endpoint)
    assert first.exit_code == 0, first.output
    assert "created trail audit" in first.output
    assert "put rule trailkeeper-security-keep" in first.output
    second = invoke("apply", "-f", str(manifests), endpoint=moto_endpoint)
    assert second.exit_code == 0
    assert second.output.splitlines() == [
        "Trail security/audit: no changes",
        "LogRetention security/keep: no changes",
    ]


def test_diff_names_each_out_of_band_change_and_is_clean_after_apply(
    manifests: Path, moto_endpoint: str
) -> None:
    assert invoke("apply", "-f", str(manifests), endpoint=moto_endpoint).exit_code == 0
    assert invoke("diff", "-f", str(manifests), endpoint=moto_endpoint).exit_code == 0
    cloudtrail = boto3.client("cloudtrail", region_name="us-east-1", endpoint_url=moto_endpoint)
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_endpoint)
    sns = boto3.client("sns", region_name="us-east-1", endpoint_url=moto_endpoint)
    cloudtrail.stop_logging(Name="audit")
    policy = json.loads(s3.get_bucket_policy(Bucket="acme-pipeline")["Policy"])
    removed = policy["Statement"].pop(0)
    s3.put_bucket_policy(Bucket="acme-pipeline", Policy=json.dumps(policy))
    s3.delete_bucket_lifecycle(Bucket="acme-pipeline")
    topic = sns.list_topics()["Topics"][0]["TopicArn"]
    for sub in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])

    drift = invoke("diff", "-f", str(manifests), endpoint=moto_endpoint)
    assert drift.exit_code == 2, drift.output
    assert "trail/us-east-1 IsLogging: desired true, actual false" in drift.output
    assert f"bucket-policy/acme-pipeline Statement[{removed['Sid']}]" in drift.output
    assert "lifecycle/acme-pipeline LifecycleRule[trailkeeper-security-keep]" in drift.output
    assert "subscription/us-east-1 email:sec@example.com: desired subscribed, actual absent" in drift.output

    fixed = invoke("apply", "-f", str(manifests), endpoint=moto_endpoint)
    assert fixed.exit_code == 0
    clean = invoke("diff", "-f", str(manifests), endpoint=moto_endpoint)
    assert clean.exit_code == 0, clean.output


def test_invalid_manifest_exits_1_and_sends_nothing(
    tmp_path: Path, moto_endpoint: str, moto_server: MotoServer
) -> None:
    moto_server.reset()
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: trailkeeper.io/v1alpha1\nkind: Trail\nmetadata: {name: bad}\n"
        "spec: {regions: [us-east-1], destination: {bucket: Bad_Bucket}}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["apply", "-f", str(bad), "--aws-endpoint-url", moto_endpoint])
    assert result.exit_code == 1
    assert f"{bad}: Trail default/bad: spec.destination.bucket:" in result.output
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_endpoint)
    assert s3.list_buckets()["Buckets"] == []
