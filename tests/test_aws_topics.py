"""TopicClient against moto over HTTP, and against botocore's Stubber for what moto never answers."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber

from support.operations import mutating, record_operations
from trailkeeper.aws.session import AwsSessions
from trailkeeper.aws.topics import TopicClient

ACCOUNT = "123456789012"
REGION = "us-east-1"
NAME = "trail-deliveries"
ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:{NAME}"
OWNER = {"trailkeeper.io/owner": "security/audit"}
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:audit-q"
OTHER_QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:other-q"
FILTER = {"eventSource": ["aws:cloudtrail"]}
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "AWSCloudTrailSNSPolicy",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "SNS:Publish",
            "Resource": ARN,
        }
    ],
}


@pytest.fixture
def topics(aws: AwsSessions) -> TopicClient:
    return TopicClient(aws.client("sns", REGION), REGION, ACCOUNT)


def test_topic_arn_is_built_from_region_account_and_partition(aws: AwsSessions) -> None:
    china = TopicClient(aws.client("sns", "cn-north-1"), "cn-north-1", ACCOUNT, "aws-cn")

    assert china.topic_arn(NAME) == f"arn:aws-cn:sns:cn-north-1:{ACCOUNT}:{NAME}"


def test_create_then_observe_shows_the_topic_its_tags_and_default_policy(topics: TopicClient) -> None:
    arn = topics.create(NAME, {**OWNER, "team": "security"})

    observed = topics.observe(NAME)

    assert arn == ARN == observed.arn
    assert observed.exists
    assert observed.tags == {**OWNER, "team": "security"}
    assert observed.subscriptions == []
    # A topic nobody set a policy on has SNS's default one, and observe reports it as it is.
    assert observed.policy is not None and observed.policy["Statement"]


def test_create_twice_leaves_the_topic_alone(topics: TopicClient) -> None:
    topics.create(NAME, OWNER)
    operations = record_operations(topics.client)

    assert topics.create(NAME, {"other": "tags"}) == ARN

    assert mutating(operations) == []
    assert topics.observe(NAME).tags == OWNER


def test_observe_of_a_missing_topic_says_it_does_not_exist(topics: TopicClient) -> None:
    observed = topics.observe("absent")

    assert not observed.exists
    assert (observed.policy, observed.tags, observed.subscriptions) == (None, {}, [])


def test_observe_makes_no_mutating_call(topics: TopicClient) -> None:
    topics.create(NAME, OWNER)
    topics.subscribe(ARN, "sqs", QUEUE, True, FILTER)
    operations = record_operations(topics.client)

    topics.observe(NAME)

    assert mutating(operations) == []
    assert sorted(set(operations)) == [
        "GetSubscriptionAttributes",
        "GetTopicAttributes",
        "ListSubscriptionsByTopic",
        "ListTagsForResource",
    ]


def test_put_policy_replaces_the_topic_policy(topics: TopicClient) -> None:
    topics.create(NAME, OWNER)

    topics.put_policy(ARN, POLICY)

    assert topics.observe(NAME).policy == POLICY


def test_set_tags_writes_only_the_differences(topics: TopicClient) -> None:
    topics.create(NAME, {**OWNER, "old": "x"})
    operations = record_operations(topics.client)

    topics.set_tags(ARN, {**OWNER, "old": "x"}, {**OWNER, "old": "x"})
    assert operations == []
    topics.set_tags(ARN, {**OWNER, "new": "y"}, {**OWNER, "old": "x"})

    assert operations == ["TagResource", "UntagResource"]
    assert topics.observe(NAME).tags == {**OWNER, "new": "y"}


# -- subscriptions ------------------------------------------------------------------------------------


def test_subscribe_with_raw_delivery_and_filter_policy_is_observed(topics: TopicClient) -> None:
    topics.create(NAME, OWNER)

    sub_arn = topics.subscribe(ARN, "sqs", QUEUE, True, FILTER)
    (observed,) = topics.observe(NAME).subscriptions

    assert sub_arn.startswith(ARN + ":")
    assert (observed.arn, observed.protocol, observed.endpoint) == (sub_arn, "sqs", QUEUE)
    assert observed.raw_message_delivery is True
    assert observed.filter_policy == FILTER
    assert observed.key == ("sqs", QUEUE)


def test_subscribe_twice_keeps_one_subscription(topics: TopicClient) -> None:
    topics.create(NAME, OWNER)

    first = topics.subscribe(ARN, "sqs", QUEUE, False, None)
    second = topics.subscribe(ARN, "sqs", QUEUE, False, None)

    assert first == second
    assert len(topics.observe(NAME).subscriptions) == 1


def test_subscribe_and_unsubscribe_change_the_set_of_subscriptions(topics: TopicClient) -> None:
    topics.create(NAME, OWNER)
    keep = topics.subscribe(ARN, "sqs", QUEUE, False, None)
    drop = topics.subscribe(ARN, "sqs", OTHER_QUEUE, False, None)
    topics.subscribe(ARN, "email", "audit@example.com", False, None)

    topics.unsubscribe(drop)
    topics.unsubscribe(drop)

    observed = topics.observe(NAME).subscriptions
    assert {s.key for s in observed} == {("sqs", QUEUE), ("email", "audit@example.com")}
    assert keep in {s.arn for s in observed}


def test_update_subscription_sets_and_removes_attributes(topics: TopicClient) -> None:
    topics.create(NAME, OWNER)
    sub_arn = topics.subscribe(ARN, "sqs", QUEUE, False, None)

    topics.update_subscription(sub_arn, True, FILTER)
    updated = topics.observe(NAME).subscriptions[0]
    topics.update_subscription(sub_arn, False, None)
    cleared = topics.observe(NAME).subscriptions[0]

    assert (updated.raw_message_delivery, updated.filter_policy) == (True, FILTER)
    assert (cleared.raw_message_delivery, cleared.filter_policy) == (False, None)


def test_update_subscription_with_the_current_attributes_writes_nothing(topics: TopicClient) -> None:
    topics.create(NAME, OWNER)
    sub_arn = topics.subscribe(ARN, "sqs", QUEUE, True, FILTER)
    operations = record_operations(topics.client)

    topics.update_subscription(sub_arn, True, FILTER)

    assert mutating(operations) == []


def test_delete_topic_twice_is_harmless(topics: TopicClient) -> None:
    topics.create(NAME, OWNER)
    topics.subscribe(ARN, "sqs", QUEUE, False, None)

    topics.delete_topic(ARN)
    topics.delete_topic(ARN)

    assert not topics.observe(NAME).exists


# -- what moto never answers: botocore Stubber --------------------------------------------------------


@pytest.fixture
def stubbed() -> Iterator[tuple[TopicClient, Stubber]]:
    client = boto3.client(
        "sns", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stubber:
        yield TopicClient(client, REGION, ACCOUNT), stubber
        stubber.assert_no_pending_responses()


def test_subscribe_with_other_attributes_than_the_existing_subscription_updates_it(
    stubbed: tuple[TopicClient, Stubber],
) -> None:
    # AWS refuses a Subscribe for an existing (protocol, endpoint) whose attributes differ.
    topics, stubber = stubbed
    sub_arn = f"{ARN}:0f0e0d0c"
    stubber.add_client_error(
        "subscribe", "InvalidParameter", "Subscription already exists with different attributes"
    )
    listed = {
        "SubscriptionArn": sub_arn,
        "Protocol": "sqs",
        "Endpoint": QUEUE,
        "TopicArn": ARN,
        "Owner": ACCOUNT,
    }
    stubber.add_response("list_subscriptions_by_topic", {"Subscriptions": [listed]})
    stubber.add_response("get_subscription_attributes", {"Attributes": {"RawMessageDelivery": "false"}})
    stubber.add_response("get_subscription_attributes", {"Attributes": {"RawMessageDelivery": "false"}})
    stubber.add_response(
        "set_subscription_attributes",
        {},
        {"SubscriptionArn": sub_arn, "AttributeName": "RawMessageDelivery", "AttributeValue": "true"},
    )

    assert topics.subscribe(ARN, "sqs", QUEUE, True, None) == sub_arn


def test_a_pending_subscription_is_observed_without_attributes_and_not_unsubscribed(
    stubbed: tuple[TopicClient, Stubber],
) -> None:
    topics, stubber = stubbed
    pending = {"SubscriptionArn": "PendingConfirmation", "Protocol": "email", "Endpoint": "a@example.com"}
    stubber.add_response("get_topic_attributes", {"Attributes": {"TopicArn": ARN}})
    stubber.add_response("list_subscriptions_by_topic", {"Subscriptions": [pending]})
    stubber.add_response("list_tags_for_resource", {"Tags": []})

    (observed,) = topics.observe(NAME).subscriptions
    topics.unsubscribe(observed.arn)

    assert observed.pending and observed.key == ("email", "a@example.com")
