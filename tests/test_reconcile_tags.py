"""spec.tags on the buckets and topics a Trail created, against moto: they follow the spec, others' stay."""

from __future__ import annotations

from typing import Any

from trailkeeper.api.trail import MANAGED_TAGS_KEY, OWNER_TAG_KEY, TrailSpec
from trailkeeper.aws.session import AwsSessions
from trailkeeper.core.tags import managed_record
from trailkeeper.reconcile.shared import Shared
from trailkeeper.reconcile.trail import TrailRequest, reconcile_trail

ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "acme-audit"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:audit-deliveries"
TRAIL_ARN = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/audit"


def spec(tags: dict[str, str], **overrides: Any) -> TrailSpec:
    body: dict[str, Any] = {
        "regions": [REGION],
        "destination": {"bucket": BUCKET},
        "notifications": {"topicName": "audit-deliveries"},
        "tags": tags,
    }
    body.update(overrides)
    return TrailSpec.model_validate(body)


def request(trail_spec: TrailSpec, **kwargs: Any) -> TrailRequest:
    return TrailRequest(namespace="security", name="audit", spec=trail_spec, **kwargs)


def bucket_tags(aws: AwsSessions) -> dict[str, str]:
    tag_set = aws.client("s3", REGION).get_bucket_tagging(Bucket=BUCKET)["TagSet"]
    return {t["Key"]: t["Value"] for t in tag_set}


def topic_tags(aws: AwsSessions) -> dict[str, str]:
    tags = aws.client("sns", REGION).list_tags_for_resource(ResourceArn=TOPIC_ARN)["Tags"]
    return {t["Key"]: t["Value"] for t in tags}


def trail_tags(aws: AwsSessions) -> dict[str, str]:
    listed = aws.client("cloudtrail", REGION).list_tags(ResourceIdList=[TRAIL_ARN])["ResourceTagList"]
    return {t["Key"]: t["Value"] for t in listed[0]["TagsList"]}


def ours(tags: dict[str, str]) -> dict[str, str]:
    return {**tags, OWNER_TAG_KEY: "security/audit", MANAGED_TAGS_KEY: managed_record(tags)}


def add_foreign_tags(aws: AwsSessions) -> None:
    s3 = aws.client("s3", REGION)
    tag_set: Any = [{"Key": k, "Value": v} for k, v in {**bucket_tags(aws), "backup": "daily"}.items()]
    s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": tag_set})
    aws.client("sns", REGION).tag_resource(ResourceArn=TOPIC_ARN, Tags=[{"Key": "backup", "Value": "daily"}])
    aws.client("cloudtrail", REGION).add_tags(
        ResourceId=TRAIL_ARN, TagsList=[{"Key": "backup", "Value": "daily"}]
    )


def test_a_spec_tags_change_reaches_trail_bucket_and_topic_and_foreign_tags_stay(aws: AwsSessions) -> None:
    first = {"team": "audit", "cost-center": "42"}
    assert reconcile_trail(request(spec(first)), aws, Shared()).failures == []
    assert bucket_tags(aws) == topic_tags(aws) == trail_tags(aws) == ours(first)
    add_foreign_tags(aws)

    # No hint of the previous spec: the record on each resource says which keys were trailkeeper's.
    changed = {"team": "platform", "env": "prod"}
    outcome = reconcile_trail(request(spec(changed)), aws, Shared())

    assert outcome.failures == []
    expected = {**ours(changed), "backup": "daily"}
    assert bucket_tags(aws) == topic_tags(aws) == trail_tags(aws) == expected
    changes = {(c.resource, c.action) for c in outcome.changes}
    assert {
        ("bucket/acme-audit", "set tags"),
        (f"topic/{REGION}", "set tags"),
        (f"trail/{REGION}", "set tags"),
    } <= changes
    # Steady: nothing more to set.
    assert reconcile_trail(request(spec(changed)), aws, Shared()).diffs == []


def test_a_drift_check_under_report_lists_bucket_and_topic_tag_drift_and_changes_nothing(
    aws: AwsSessions,
) -> None:
    tags = {"team": "audit"}
    reconcile_trail(request(spec(tags)), aws, Shared())
    aws.client("s3", REGION).put_bucket_tagging(
        Bucket=BUCKET,
        Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in {**ours(tags), "team": "hand-edit"}.items()]},
    )
    aws.client("sns", REGION).untag_resource(ResourceArn=TOPIC_ARN, TagKeys=["team"])

    reported = reconcile_trail(request(spec(tags), act=False, deep=False), aws, Shared())

    found = {(d.resource, d.field, d.desired, d.actual) for d in reported.diffs}
    assert found == {
        ("bucket/acme-audit", "Tags[team]", "audit", "hand-edit"),
        (f"topic/{REGION}", "Tags[team]", "audit", "(none)"),
    }
    assert bucket_tags(aws)["team"] == "hand-edit" and "team" not in topic_tags(aws)

    corrected = reconcile_trail(request(spec(tags), deep=False), aws, Shared())

    assert {(d.resource, d.field) for d in corrected.diffs} == {(r, f) for r, f, _, _ in found}
    assert bucket_tags(aws) == topic_tags(aws) == ours(tags)


def test_a_bucket_the_trail_did_not_create_is_never_tagged(aws: AwsSessions) -> None:
    aws.client("s3", REGION).create_bucket(Bucket=BUCKET)
    foreign: Any = [{"Key": "owner", "Value": "data-team"}]
    aws.client("s3", REGION).put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": foreign})

    outcome = reconcile_trail(request(spec({"team": "audit"})), aws, Shared())

    assert outcome.failures == []
    assert bucket_tags(aws) == {"owner": "data-team"}
    assert not [d for d in outcome.diffs if d.resource == f"bucket/{BUCKET}"]
