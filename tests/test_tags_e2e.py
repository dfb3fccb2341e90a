"""End to end: a change of spec.tags reaches the bucket and topic the Trail made; a foreign tag stays."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from support.cluster import Cluster, OperatorProcess, eventually
from trailkeeper.core.tags import desired_tags

pytestmark = pytest.mark.e2e

BUCKET = "e2e-tagged-audit"
TOPIC = "e2e-tagged-topic"


def aws(service: str, endpoint: str) -> Any:
    return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint)  # type: ignore[call-overload]


def bucket_tags(endpoint: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in aws("s3", endpoint).get_bucket_tagging(Bucket=BUCKET)["TagSet"]}


def topic_tags(endpoint: str) -> dict[str, str]:
    sns = aws("sns", endpoint)
    arn = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(f":{TOPIC}"))
    return {t["Key"]: t["Value"] for t in sns.list_tags_for_resource(ResourceArn=arn)["Tags"]}


def test_a_spec_tags_change_reaches_bucket_and_topic_and_a_foreign_bucket_tag_stays(
    cluster: Cluster, operator: OperatorProcess, moto_endpoint: str
) -> None:
    first = {"team": "audit", "cost-center": "42"}
    cluster.apply(
        "Trail",
        "tagged",
        {
            "regions": ["us-east-1"],
            "destination": {"bucket": BUCKET},
            "notifications": {"topicName": TOPIC},
            "tags": first,
        },
    )
    cluster.wait_condition("Trail", "tagged", "Ready", "True")
    ours = desired_tags(first, "default/tagged")
    assert bucket_tags(moto_endpoint) == topic_tags(moto_endpoint) == ours
    # Someone else tags the bucket.
    tag_set: Any = [{"Key": k, "Value": v} for k, v in {**ours, "backup": "daily"}.items()]
    aws("s3", moto_endpoint).put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": tag_set})

    cluster.patch_spec("Trail", "tagged", {"tags": {"team": "platform", "cost-center": None, "env": "prod"}})

    changed = desired_tags({"team": "platform", "env": "prod"}, "default/tagged")
    eventually(lambda: topic_tags(moto_endpoint) == changed, what="the topic's tags following the spec")
    eventually(
        lambda: bucket_tags(moto_endpoint) == {**changed, "backup": "daily"},
        what="the bucket's tags following the spec, the foreign tag kept",
    )

    def ready_at_generation_2() -> bool:
        status = cluster.status("Trail", "tagged")
        return status.get("observedGeneration") == 2 and status.get("phase") == "Ready"

    eventually(ready_at_generation_2, what="the update reaching Ready")
