"""Two Trails sharing one SNS subscription (one topic, one endpoint): deleting either keeps it while the
other's spec still wants it; deleting the last one removes it. Against moto through the whole deletion
pass, and the rule itself below it."""

from __future__ import annotations

from typing import Any

import pytest

from trailkeeper.api.trail import TrailSpec
from trailkeeper.aws.session import AwsSessions
from trailkeeper.core.shared_subscriptions import shared_keys, without_shared
from trailkeeper.kube.topic_users import topic_users, trails_by_topic
from trailkeeper.reconcile.passes import ObjectRef, Tenancy, trail_deletion, trail_pass
from trailkeeper.reconcile.shared import Shared

HOOK = {"protocol": "https", "endpoint": "https://hooks.example.com/ct"}
OTHER_HOOK = {"protocol": "https", "endpoint": "https://pager.example.com/ct"}


def body(bucket: str, subscriptions: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "regions": ["us-east-1"],
        "destination": {"bucket": bucket},
        "notifications": {"topicName": "deliveries", "subscriptions": subscriptions},
        "deletionPolicy": "Delete",
        **extra,
    }


def spec(bucket: str, subscriptions: list[dict[str, Any]], **extra: Any) -> TrailSpec:
    return TrailSpec.model_validate(body(bucket, subscriptions, **extra))


KEY = ("https", "https://hooks.example.com/ct")


@pytest.mark.parametrize(
    ("other", "kept"),
    [
        (spec("b-logs", [HOOK]), {KEY}),
        (spec("b-logs", [HOOK, OTHER_HOOK]), {KEY}),
        (spec("b-logs", [OTHER_HOOK]), set()),
        # Another topic, or no region in common: another SNS topic altogether.
        (spec("b-logs", [HOOK], notifications={"topicName": "other", "subscriptions": [HOOK]}), set()),
        (spec("b-logs", [HOOK], regions=["eu-west-1"]), set()),
        (spec("b-logs", [HOOK], regions=["eu-west-1", "us-east-1"]), {KEY}),
        # A role's account differs from the operator's own, which is not known: kept rather than lost.
        (spec("b-logs", [HOOK], account={"roleArn": "arn:aws:iam::222222222222:role/tk"}), {KEY}),
    ],
)
def test_a_subscription_is_shared_with_a_trail_wanting_it_on_the_same_topic(
    other: TrailSpec, kept: set[tuple[str, str]]
) -> None:
    assert shared_keys(spec("a-logs", [HOOK]), [other]) == kept


def test_two_roles_in_two_accounts_never_share_a_topic() -> None:
    mine = spec("a-logs", [HOOK], account={"roleArn": "arn:aws:iam::111111111111:role/tk"})
    theirs = spec("b-logs", [HOOK], account={"roleArn": "arn:aws:iam::222222222222:role/tk"})
    assert shared_keys(mine, [theirs]) == frozenset()
    same = spec("b-logs", [HOOK], account={"roleArn": "arn:aws:iam::111111111111:role/other"})
    assert shared_keys(mine, [same]) == {KEY}


def test_a_deletion_lets_go_only_of_the_subscriptions_no_one_else_wants() -> None:
    mine = spec("a-logs", [HOOK, OTHER_HOOK])
    left = without_shared(mine, [body("b-logs", [HOOK]), {"not": "a spec"}])
    assert left.notifications is not None
    assert [s.endpoint for s in left.notifications.subscriptions] == [OTHER_HOOK["endpoint"]]
    assert without_shared(mine, []) == mine


def test_the_index_holds_live_trails_by_topic_and_leaves_out_the_one_asking() -> None:
    live = trails_by_topic(namespace="b", name="t", body={"spec": body("b-logs", [HOOK])}, meta={})
    assert live is not None and list(live) == ["deliveries"]
    deleting = {"deletionTimestamp": "2030-01-01T00:00:00Z"}
    assert (
        trails_by_topic(namespace="b", name="t", body={"spec": body("b-logs", [HOOK])}, meta=deleting) is None
    )
    assert trails_by_topic(namespace="b", name="t", body={"spec": {"regions": []}}, meta={}) is None
    assert trails_by_topic(namespace="b", name="t", body={"spec": "garbage"}, meta={}) is None
    index = {"deliveries": [live["deliveries"], ("a", "t", body("a-logs", [HOOK]))]}
    users = topic_users({"trails_by_topic": index}, "a", "t")
    assert users("deliveries") == [body("b-logs", [HOOK])]
    assert users("other") == []


def subscriptions(aws: AwsSessions) -> list[str]:
    sns = aws.client("sns", "us-east-1")
    arn = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":deliveries"))
    return sorted(s["Endpoint"] for s in sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"])


def test_deleting_one_of_two_trails_keeps_the_subscription_the_other_wants(aws: AwsSessions) -> None:
    specs = {"a": body("a-logs", [HOOK, OTHER_HOOK]), "b": body("b-logs", [HOOK])}
    for name, spec_body in specs.items():
        ref = ObjectRef(name, f"audit-{name}", f"uid-{name}", 1)
        report = trail_pass(ref, spec_body, {}, aws, Shared(), trigger="create")
        assert report.status["phase"] == "Ready", report.status
    # SNS keeps one subscription per endpoint: the two Trails share the first one.
    assert subscriptions(aws) == [HOOK["endpoint"], OTHER_HOOK["endpoint"]]
    live_b = Tenancy(topic_users=lambda topic: [specs["b"]] if topic == "deliveries" else [])
    report = trail_deletion(ObjectRef("a", "audit-a", "uid-a", 1), specs["a"], aws, Shared(), tenancy=live_b)
    assert report.retry_after is None, report.events
    assert subscriptions(aws) == [HOOK["endpoint"]]
    # The last Trail wanting it goes: so does the subscription.
    trail_deletion(ObjectRef("b", "audit-b", "uid-b", 1), specs["b"], aws, Shared())
    assert subscriptions(aws) == []
