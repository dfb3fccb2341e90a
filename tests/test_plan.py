"""`plan` shows, offline, the AWS documents each manifest becomes."""

from __future__ import annotations

from typing import Any

import yaml

from trailkeeper.api.logretention import LogRetentionSpec
from trailkeeper.api.manifests import Manifest
from trailkeeper.api.trail import TrailSpec
from trailkeeper.core.bucket_share import BucketShare, desired_bucket_policy
from trailkeeper.core.plan import PLACEHOLDER_ACCOUNT_ID, plan_manifest, plan_manifests, render_plan
from trailkeeper.core.topic_policy import desired_topic_policy

ACCOUNT = PLACEHOLDER_ACCOUNT_ID
ARN_E = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/audit"
ARN_W = f"arn:aws:cloudtrail:eu-west-1:{ACCOUNT}:trail/audit"


def manifest(kind: str, name: str, spec: dict[str, Any], namespace: str = "security") -> Manifest:
    model = TrailSpec if kind == "Trail" else LogRetentionSpec
    body = {"apiVersion": "trailkeeper.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    return Manifest("examples/audit.yaml", kind, namespace, name, model.model_validate(spec), body)


TRAIL = manifest(
    "Trail",
    "audit",
    {
        "regions": ["us-east-1", "eu-west-1"],
        "globalServiceEventsRegion": "eu-west-1",
        "destination": {"bucket": "acme-audit-{region}", "keyPrefix": "ct"},
        "notifications": {
            "topicName": "audit-deliveries",
            "subscriptions": [
                {
                    "protocol": "sqs",
                    "endpoint": f"arn:aws:sqs:us-east-1:{ACCOUNT}:audit-q",
                    "rawMessageDelivery": True,
                    "filterPolicy": {"eventType": ["delivery"]},
                },
                {"protocol": "email", "endpoint": "sec@example.com"},
            ],
        },
        "tags": {"team": "sec"},
    },
)


def test_a_two_region_trail_with_sns_plans_two_trails_two_buckets_two_topics() -> None:
    plan = plan_manifest(TRAIL)
    assert plan["kind"] == "Trail"
    assert plan["accountId"] == "123456789012 (placeholder; plan is offline)"
    assert [(t["region"], t["trailArn"]) for t in plan["trails"]] == [
        ("us-east-1", ARN_E),
        ("eu-west-1", ARN_W),
    ]
    east, west = plan["trails"]
    assert east["createTrail"]["IncludeGlobalServiceEvents"] is False
    assert west["createTrail"]["IncludeGlobalServiceEvents"] is True
    assert east["createTrail"]["S3BucketName"] == "acme-audit-us-east-1"
    assert east["createTrail"]["SnsTopicName"] == "audit-deliveries"
    assert east["logging"] == "StartLogging"
    assert east["putEventSelectors"]["EventSelectors"][0]["ReadWriteType"] == "All"
    assert east["putInsightSelectors"] == {"InsightSelectors": []}


def test_each_bucket_gets_the_policy_of_the_trails_delivering_into_it() -> None:
    plan = plan_manifest(TRAIL)
    assert [(b["bucket"], b["deliveringTrails"]) for b in plan["buckets"]] == [
        ("acme-audit-us-east-1", [ARN_E]),
        ("acme-audit-eu-west-1", [ARN_W]),
    ]
    for bucket, region_arn in zip(plan["buckets"], [ARN_E, ARN_W], strict=True):
        assert bucket["policy"] == desired_bucket_policy(
            owner="security/audit",
            share=BucketShare(bucket["bucket"], "ct", ACCOUNT, region_arn.rsplit("/", 1)[-1]),
            trail_arns=[region_arn],
            source_accounts=[],
            organization_id=None,
        )
        assert bucket["createIfMissing"]["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        }


def test_each_region_gets_a_topic_with_its_policy_and_subscriptions() -> None:
    plan = plan_manifest(TRAIL)
    topics = plan["topics"]
    assert [(t["region"], t["topicArn"]) for t in topics] == [
        ("us-east-1", f"arn:aws:sns:us-east-1:{ACCOUNT}:audit-deliveries"),
        ("eu-west-1", f"arn:aws:sns:eu-west-1:{ACCOUNT}:audit-deliveries"),
    ]
    assert topics[1]["policy"] == desired_topic_policy(
        owner="security/audit", topic_arn=topics[1]["topicArn"], trail_arns=[ARN_W]
    )
    assert topics[0]["subscriptions"] == [
        {
            "Protocol": "sqs",
            "Endpoint": f"arn:aws:sqs:us-east-1:{ACCOUNT}:audit-q",
            "Attributes": {"RawMessageDelivery": "true", "FilterPolicy": '{"eventType": ["delivery"]}'},
        },
        {"Protocol": "email", "Endpoint": "sec@example.com"},
    ]


def test_a_shared_bucket_has_one_policy_naming_every_trail() -> None:
    shared = manifest(
        "Trail", "audit", {"regions": ["us-east-1", "eu-west-1"], "destination": {"bucket": "acme"}}
    )
    (bucket,) = plan_manifest(shared)["buckets"]
    assert bucket["deliveringTrails"] == [ARN_E, ARN_W]
    assert bucket["createIfMissing"]["region"] == "us-east-1"
    assert plan_manifest(shared)["topics"] == []


def test_a_real_account_id_is_not_called_a_placeholder() -> None:
    plan = plan_manifest(TRAIL, account_id="210987654321")
    assert plan["accountId"] == "210987654321"
    assert plan["trails"][0]["trailArn"] == "arn:aws:cloudtrail:us-east-1:210987654321:trail/audit"


def test_a_retention_on_a_named_bucket_plans_its_rule() -> None:
    retention = manifest(
        "LogRetention", "keep", {"bucket": "acme-logs", "region": "eu-west-1", "expirationDays": 400}
    )
    plan = plan_manifest(retention)
    assert plan["ruleId"] == "trailkeeper-security-keep"
    assert plan["buckets"] == [
        {
            "bucket": "acme-logs",
            "region": "eu-west-1",
            "rule": {
                "ID": "trailkeeper-security-keep",
                "Status": "Enabled",
                "Filter": {"Prefix": "AWSLogs/"},
                "Expiration": {"Days": 400},
            },
        }
    ]


def test_a_retention_with_trail_ref_resolves_the_trails_buckets_and_prefix() -> None:
    retention = manifest("LogRetention", "keep", {"trailRef": {"name": "audit"}, "expirationDays": 400})
    plans = plan_manifests([TRAIL, retention])
    buckets = plans[1]["buckets"]
    assert [(b["bucket"], b["region"]) for b in buckets] == [
        ("acme-audit-us-east-1", "us-east-1"),
        ("acme-audit-eu-west-1", "eu-west-1"),
    ]
    assert {b["rule"]["Filter"]["Prefix"] for b in buckets} == {"ct/AWSLogs/"}


def test_a_retention_whose_trail_is_not_planned_says_where_the_bucket_comes_from() -> None:
    retention = manifest("LogRetention", "keep", {"trailRef": {"name": "elsewhere"}, "expirationDays": 400})
    other_namespace = manifest("Trail", "elsewhere", TRAIL.body["spec"], namespace="other")
    plan = plan_manifests([other_namespace, retention])[1]
    assert plan["buckets"] == "the bucket(s) of Trail security/elsewhere (not among the planned manifests)"
    assert plan["rule"]["ID"] == "trailkeeper-security-keep"


def test_render_plan_is_stable_readable_yaml() -> None:
    retention = manifest("LogRetention", "keep", {"trailRef": {"name": "audit"}, "expirationDays": 400})
    text = render_plan([TRAIL, retention])
    assert text == render_plan([TRAIL, retention])
    assert text.startswith("# trailkeeper plan")
    assert "123456789012 in ARNs is a placeholder" in text
    assert "&id" not in text and "*id" not in text  # no YAML anchors: every document is self-contained
    documents = list(yaml.safe_load_all(text))
    assert documents == plan_manifests([TRAIL, retention])
    assert list(documents[0])[:4] == ["kind", "namespace", "name", "file"]
