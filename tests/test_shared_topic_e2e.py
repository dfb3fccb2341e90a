"""End to end: two Trails subscribing one endpoint on one topic share SNS's single subscription; deleting
one (deletionPolicy Delete) keeps it for the other, deleting the last one removes it. Real API server and
operator (its index of live Trails by topic), against moto."""

from __future__ import annotations

from typing import Any

import pytest

from support.cluster import Cluster, OperatorProcess, eventually
from test_tenancy_e2e import aws, spec

pytestmark = pytest.mark.e2e

HOOK = {"protocol": "https", "endpoint": "https://hooks.example.com/ct"}
PAGER = {"protocol": "https", "endpoint": "https://pager.example.com/ct"}


def subscribed(endpoint: str) -> dict[str, str]:
    """Endpoint -> subscription ARN on the shared topic (a new ARN: it was unsubscribed and made again,
    which for a real endpoint means confirming it again)."""
    sns = aws("sns", endpoint)
    arns = [t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":shared-topic")]
    listed = [s for arn in arns for s in sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]]
    return {s["Endpoint"]: s["SubscriptionArn"] for s in listed}


def notified(bucket: str, trail_name: str, *subscriptions: dict[str, Any]) -> dict[str, Any]:
    notifications = {"topicName": "shared-topic", "subscriptions": list(subscriptions)}
    return spec(bucket, trailName=trail_name, notifications=notifications, deletionPolicy="Delete")


def test_a_subscription_two_trails_share_stays_until_the_last_one_goes(
    cluster: Cluster, operator: OperatorProcess, moto_endpoint: str
) -> None:
    cluster.apply("Trail", "audit", notified("a-logs", "audit-a", HOOK), namespace="team-a")
    cluster.wait_condition("Trail", "audit", "Ready", "True", namespace="team-a")
    cluster.apply("Trail", "audit", notified("b-logs", "audit-b", HOOK, PAGER), namespace="team-b")
    cluster.wait_condition("Trail", "audit", "Ready", "True", namespace="team-b")
    before = subscribed(moto_endpoint)
    assert sorted(before) == sorted([HOOK["endpoint"], PAGER["endpoint"]])  # one each: SNS shares HOOK's
    cluster.delete("Trail", "audit", namespace="team-b")
    eventually(lambda: cluster.get("Trail", "audit", "team-b") is None, what="team-b's Trail gone")
    # Only the subscription no other Trail wants went; the shared one is the very same, never unsubscribed
    # (team-a's drift checks would make it again, under a new ARN).
    assert subscribed(moto_endpoint) == {HOOK["endpoint"]: before[HOOK["endpoint"]]}
    assert cluster.condition("Trail", "audit", "Ready", "team-a")["status"] == "True"
    cluster.delete("Trail", "audit", namespace="team-a")
    eventually(lambda: cluster.get("Trail", "audit", "team-a") is None, what="team-a's Trail gone")
    assert subscribed(moto_endpoint) == {}
