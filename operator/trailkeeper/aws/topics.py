"""SNS topics CloudTrail notifies of log file deliveries, and their subscriptions.

A ``TopicClient`` is bound to the SNS client of one region and account. Every mutating method is
idempotent and ``observe`` never mutates. Subscriptions are handled one at a time by ARN; which of them
to add, change or remove (a set keyed by protocol and endpoint) is the caller's decision.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from trailkeeper.aws.errors import UnexpectedAnswerError, error_code, json_document

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

_NOT_FOUND = frozenset({"NotFound", "NotFoundException", "ResourceNotFound", "ResourceNotFoundException"})
# Subscriptions still waiting for their endpoint to confirm (email, http) have no ARN yet: SNS lists them
# with this in place of one, and no call accepts it.
PENDING_CONFIRMATION = "PendingConfirmation"


@dataclass(frozen=True)
class ObservedSubscription:
    """One subscription of a topic. ``filter_policy`` is None when it has none (SNS reports a removed
    one as "" or "{}")."""

    arn: str
    protocol: str
    endpoint: str
    raw_message_delivery: bool = False
    filter_policy: dict[str, Any] | None = None

    @property
    def key(self) -> tuple[str, str]:
        """What a Trail's subscriptions are keyed by: (protocol, endpoint)."""
        return (self.protocol, self.endpoint)

    @property
    def pending(self) -> bool:
        return not self.arn.startswith("arn:")


@dataclass(frozen=True)
class ObservedTopic:
    """A topic as SNS answers for it; ``exists`` False means none of that name. ``policy`` is whatever
    policy the topic has, SNS's default one included."""

    arn: str
    exists: bool
    policy: dict[str, Any] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    subscriptions: list[ObservedSubscription] = field(default_factory=list)


def _filter_policy(text: str | None) -> dict[str, Any] | None:
    policy = json_document(text, "GetSubscriptionAttributes", "the subscription's FilterPolicy")
    # "{}" is how a filter policy is removed (SetSubscriptionAttributes); it filters nothing.
    return policy or None


def _policy(text: str | None, arn: str) -> dict[str, Any] | None:
    return json_document(text, "GetTopicAttributes", f"the Policy of {arn}")


def _attributes(response: Mapping[str, Any], operation: str) -> Mapping[str, Any]:
    attributes = response.get("Attributes")
    if not isinstance(attributes, Mapping):
        raise UnexpectedAnswerError(operation, "it holds no Attributes map")
    return attributes


def _flag(value: str | None) -> bool:
    return (value or "").lower() == "true"


class TopicClient:
    """SNS topics of one region and account (``client`` is never created here)."""

    def __init__(self, client: SNSClient, region: str, account_id: str, partition: str = "aws") -> None:
        self.client = client
        self.region = region
        self.account_id = account_id
        self.partition = partition

    def topic_arn(self, name: str) -> str:
        return f"arn:{self.partition}:sns:{self.region}:{self.account_id}:{name}"

    # -- observe ----------------------------------------------------------------------------------

    def observe(self, name: str, *, with_tags: bool = True) -> ObservedTopic:
        """The topic called ``name``; reads only (GetTopicAttributes, ListSubscriptionsByTopic,
        GetSubscriptionAttributes per confirmed subscription, ListTagsForResource unless not `with_tags`:
        then `tags` is empty)."""
        arn = self.topic_arn(name)
        try:
            attributes = _attributes(self.client.get_topic_attributes(TopicArn=arn), "GetTopicAttributes")
            subscriptions = self._subscriptions(arn)
            tags = self.tags(arn) if with_tags else {}
        except ClientError as error:
            # Deleted before or while it was read: it is not there.
            if error_code(error) in _NOT_FOUND:
                return ObservedTopic(arn=arn, exists=False)
            raise
        return ObservedTopic(
            arn=arn,
            exists=True,
            policy=_policy(attributes.get("Policy"), arn),
            tags=tags,
            subscriptions=subscriptions,
        )

    def read_policy(self, arn: str) -> dict[str, Any] | None:
        """The topic's access policy alone (one GetTopicAttributes); None when it has none or is gone."""
        try:
            attributes = _attributes(self.client.get_topic_attributes(TopicArn=arn), "GetTopicAttributes")
        except ClientError as error:
            if error_code(error) in _NOT_FOUND:
                return None
            raise
        return _policy(attributes.get("Policy"), arn)

    def _subscriptions(self, arn: str) -> list[ObservedSubscription]:
        found: list[ObservedSubscription] = []
        for page in self.client.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=arn):
            for listed in page.get("Subscriptions", []):
                subscription = self._subscription(
                    listed.get("SubscriptionArn", ""), listed.get("Protocol", ""), listed.get("Endpoint", "")
                )
                if subscription is not None:
                    found.append(subscription)
        return found

    def _subscription(self, arn: str, protocol: str, endpoint: str) -> ObservedSubscription | None:
        if not arn.startswith("arn:"):
            return ObservedSubscription(arn=arn or PENDING_CONFIRMATION, protocol=protocol, endpoint=endpoint)
        try:
            attributes = _attributes(
                self.client.get_subscription_attributes(SubscriptionArn=arn), "GetSubscriptionAttributes"
            )
        except ClientError as error:
            # Unsubscribed between the listing and this read.
            if error_code(error) in _NOT_FOUND:
                return None
            raise
        return ObservedSubscription(
            arn=arn,
            protocol=protocol,
            endpoint=endpoint,
            raw_message_delivery=_flag(attributes.get("RawMessageDelivery")),
            filter_policy=_filter_policy(attributes.get("FilterPolicy")),
        )

    def tags(self, arn: str) -> dict[str, str]:
        """The topic's tags (one ListTagsForResource)."""
        tags = self.client.list_tags_for_resource(ResourceArn=arn).get("Tags", [])
        return {t["Key"]: t["Value"] for t in tags}

    def _exists(self, arn: str) -> bool:
        try:
            self.client.get_topic_attributes(TopicArn=arn)
        except ClientError as error:
            if error_code(error) in _NOT_FOUND:
                return False
            raise
        return True

    # -- topic ------------------------------------------------------------------------------------

    def create(self, name: str, tags: Mapping[str, str]) -> str:
        """Create the topic with ``tags``; its ARN. A topic of that name is left as it is (AWS refuses a
        CreateTopic whose tags differ from an existing topic's), so calling it twice is harmless."""
        arn = self.topic_arn(name)
        if self._exists(arn):
            return arn
        tag_list: Any = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
        response = self.client.create_topic(Name=name, Tags=tag_list)
        return str(response.get("TopicArn") or arn)

    def put_policy(self, arn: str, document: Mapping[str, Any]) -> None:
        """SetTopicAttributes Policy: the topic's whole access policy."""
        self.client.set_topic_attributes(
            TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(document)
        )

    def set_tags(self, arn: str, desired: Mapping[str, str], actual: Mapping[str, str]) -> None:
        """TagResource for keys missing or different, UntagResource for keys not desired (``aws:`` keys
        are AWS's and stay); no call when equal."""
        add: Any = [{"Key": k, "Value": v} for k, v in sorted(desired.items()) if actual.get(k) != v]
        remove = [k for k in sorted(actual) if k not in desired and not k.startswith("aws:")]
        if add:
            self.client.tag_resource(ResourceArn=arn, Tags=add)
        if remove:
            self.client.untag_resource(ResourceArn=arn, TagKeys=remove)

    def delete_topic(self, arn: str) -> None:
        """DeleteTopic (its subscriptions go with it); a topic that is not there is success."""
        try:
            self.client.delete_topic(TopicArn=arn)
        except ClientError as error:
            if error_code(error) not in _NOT_FOUND:
                raise

    # -- subscriptions ----------------------------------------------------------------------------

    def subscribe(
        self,
        arn: str,
        protocol: str,
        endpoint: str,
        raw_message_delivery: bool,
        filter_policy: Mapping[str, Any] | None,
    ) -> str:
        """Subscribe ``endpoint``; the subscription's ARN ("PendingConfirmation" until an email or http
        endpoint confirms).

        SNS answers an identical Subscribe with the existing subscription, and refuses one whose
        attributes differ (InvalidParameter); then the existing subscription is updated instead, so
        calling it again with other attributes is harmless too.
        """
        attributes: dict[str, str] = {}
        # Only sent when set: SNS accepts RawMessageDelivery only for the protocols it applies to.
        if raw_message_delivery:
            attributes["RawMessageDelivery"] = "true"
        if filter_policy:
            attributes["FilterPolicy"] = json.dumps(filter_policy)
        try:
            response = self.client.subscribe(
                TopicArn=arn,
                Protocol=protocol,
                Endpoint=endpoint,
                Attributes=attributes,
                ReturnSubscriptionArn=True,
            )
        except ClientError as error:
            if error_code(error) != "InvalidParameter":
                raise
            existing = self._find(arn, protocol, endpoint)
            if existing is None or existing.pending:
                raise
            self.update_subscription(existing.arn, raw_message_delivery, filter_policy)
            return existing.arn
        return str(response.get("SubscriptionArn") or PENDING_CONFIRMATION)

    def _find(self, arn: str, protocol: str, endpoint: str) -> ObservedSubscription | None:
        for subscription in self._subscriptions(arn):
            if subscription.key == (protocol, endpoint):
                return subscription
        return None

    def update_subscription(
        self, sub_arn: str, raw_message_delivery: bool, filter_policy: Mapping[str, Any] | None
    ) -> None:
        """Set RawMessageDelivery and FilterPolicy to these values, writing only those that differ."""
        attributes = _attributes(
            self.client.get_subscription_attributes(SubscriptionArn=sub_arn), "GetSubscriptionAttributes"
        )
        if _flag(attributes.get("RawMessageDelivery")) != raw_message_delivery:
            self.client.set_subscription_attributes(
                SubscriptionArn=sub_arn,
                AttributeName="RawMessageDelivery",
                AttributeValue="true" if raw_message_delivery else "false",
            )
        if _filter_policy(attributes.get("FilterPolicy")) != (dict(filter_policy) if filter_policy else None):
            self.client.set_subscription_attributes(
                SubscriptionArn=sub_arn,
                AttributeName="FilterPolicy",
                # "{}" is how SNS removes a filter policy.
                AttributeValue=json.dumps(filter_policy) if filter_policy else "{}",
            )

    def unsubscribe(self, sub_arn: str) -> None:
        """Unsubscribe; one already gone is success. A pending subscription has no ARN to unsubscribe
        (SNS deletes it after three days unconfirmed), so it is left alone."""
        if not sub_arn.startswith("arn:"):
            return
        try:
            self.client.unsubscribe(SubscriptionArn=sub_arn)
        except ClientError as error:
            if error_code(error) not in _NOT_FOUND:
                raise
