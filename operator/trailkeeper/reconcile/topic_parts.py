"""The topic's parts: the topic with its tags, its policy, its subscriptions (reconcile/parts.py seam).

One read of the topic (``TopicPart.observe``, under the topic's lock) serves all three. Tags are managed
only on a topic this Trail created; statements and subscriptions of others are never touched.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from trailkeeper.api.trail import Subscription
from trailkeeper.aws.topics import ObservedSubscription, ObservedTopic, TopicClient
from trailkeeper.core.drift import FieldDiff, Fix, diff_statements, diff_tags
from trailkeeper.core.merge import merge_statements, owner_statements, remove_owner_statements
from trailkeeper.core.naming import OWNER_TAG
from trailkeeper.core.tags import tag_change
from trailkeeper.core.topic_policy import desired_topic_statements
from trailkeeper.reconcile.parts import Observation, PassContext, apply_tags, foreign_owned, run_part
from trailkeeper.reconcile.shared import Change
from trailkeeper.reconcile.verified_write import SharedDocument

Statements = list[dict[str, Any]]
Policy = dict[str, Any] | None


def _empty_policy() -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": []}


@dataclass
class TopicPart:
    """The topic: made when missing; on a topic this Trail created, the spec's tags (others' stay)."""

    context: PassContext
    client: TopicClient
    region: str

    def observe(self, desired: str) -> Observation[str, ObservedTopic]:
        resource = f"topic/{self.region}"
        context = self.context
        observed = self.client.observe(desired, with_tags=context.deep)
        if observed.exists and not context.deep:
            # A drift check compares tags it may keep up to Shared.tag_read_age (a tag write drops them).
            observed = dataclasses.replace(
                observed,
                tags=context.shared.cache.get(
                    topic_tags_key(observed.arn),
                    lambda: self.client.tags(observed.arn),
                    max_age=context.shared.tag_read_age(context.spec.resync_seconds),
                ),
            )
        if not observed.exists:
            missing = [FieldDiff(resource, "Exists", "true", "false", Fix.CREATE)]
            return Observation(resource, False, desired, observed, missing)
        diffs = []
        if observed.tags.get(OWNER_TAG) == self.context.owner:
            diffs = diff_tags(resource, self.context.tags(), observed.tags, self.context.removed_tags)
        return Observation(resource, True, desired, observed, diffs)

    def apply(self, observation: Observation[str, ObservedTopic]) -> list[Change]:
        name, observed, context = observation.desired, observation.observed, self.context
        if not observation.exists:
            self.client.create(name, context.tags())
            return [Change(observation.resource, f"created topic {name}")]
        if not context.deep:
            # A drift check may have compared kept tags: nothing is written on a kept read of the owner.
            observed = dataclasses.replace(observed, tags=self.client.tags(observed.arn))
            if observed.tags.get(OWNER_TAG) != context.owner:
                context.shared.cache.put(topic_tags_key(observed.arn), observed.tags)
                return []
        change = tag_change(context.tags(), observed.tags, context.removed_tags)
        context.shared.cache.invalidate(topic_tags_key(observed.arn))
        apply_tags(lambda want, have: self.client.set_tags(observed.arn, want, have), change, observed.tags)
        return [Change(observation.resource, "set tags")]


def topic_tags_key(arn: str) -> tuple[str, str]:
    """The read layer's key of a topic's tags."""
    return ("topic-tags", arn)


@dataclass
class TopicPolicyPart:
    """This Trail's statements in the topic's policy."""

    context: PassContext
    client: TopicClient
    region: str
    arn: str
    current: Policy

    def observe(self, desired: Statements) -> Observation[Statements, Policy]:
        resource = f"topic-policy/{self.region}"
        diffs = diff_statements(resource, desired, self.current, owner=self.context.owner)
        return Observation(resource, self.current is not None, desired, self.current, diffs)

    def apply(self, observation: Observation[Statements, Policy]) -> list[Change]:
        document = topic_policy(self.context, self.client, self.region, self.arn, observation.desired)
        self.context.write_later(document, self.current, f"sns:{self.arn}", [self.region])
        return [Change(observation.resource, "put trailkeeper statements")]


@dataclass(frozen=True)
class SubscriptionStep:
    """One subscription to make, update or remove, with the diffs that call for it."""

    fix: Fix
    label: str
    wanted: Subscription | None
    have: ObservedSubscription | None
    diffs: tuple[FieldDiff, ...]


@dataclass
class SubscriptionsPart:
    """The spec's subscriptions on the topic, and those the previous spec had and this one dropped."""

    context: PassContext
    client: TopicClient
    region: str
    topic: ObservedTopic

    def observe(self, desired: list[Subscription]) -> Observation[list[Subscription], list[SubscriptionStep]]:
        resource = f"subscription/{self.region}"
        existing = {(s.protocol, s.endpoint): s for s in self.topic.subscriptions}
        steps = [step for sub in desired if (step := _step(resource, sub, existing.get(sub.key)))]
        wanted_keys = {s.key for s in desired}
        for key in self.context.removed_subscriptions:
            have = existing.get(key)
            if key not in wanted_keys and have is not None:
                label = f"{key[0]}:{key[1]}"
                gone = FieldDiff(resource, label, "absent", "subscribed", Fix.UNSUBSCRIBE)
                steps.append(SubscriptionStep(Fix.UNSUBSCRIBE, label, None, have, (gone,)))
        diffs = [d for step in steps for d in step.diffs]
        return Observation(resource, True, desired, steps, diffs)

    def apply(self, observation: Observation[list[Subscription], list[SubscriptionStep]]) -> list[Change]:
        changes = []
        for step in observation.observed:
            if step.fix == Fix.SUBSCRIBE and step.wanted is not None:
                sub = step.wanted
                self.client.subscribe(
                    self.topic.arn, sub.key[0], sub.key[1], sub.raw_message_delivery, sub.filter_policy
                )
                changes.append(Change(observation.resource, f"subscribed {step.label}"))
            elif step.fix == Fix.UPDATE_SUBSCRIPTION and step.wanted is not None and step.have is not None:
                sub = step.wanted
                self.client.update_subscription(step.have.arn, sub.raw_message_delivery, sub.filter_policy)
                changes.append(Change(observation.resource, f"updated {step.label}"))
            elif step.fix == Fix.UNSUBSCRIBE and step.have is not None:
                self.client.unsubscribe(step.have.arn)
                changes.append(Change(observation.resource, f"unsubscribed {step.label}"))
        return changes


def _step(resource: str, sub: Subscription, have: ObservedSubscription | None) -> SubscriptionStep | None:
    label = f"{sub.key[0]}:{sub.key[1]}"
    if have is None:
        missing = FieldDiff(resource, label, "subscribed", "absent", Fix.SUBSCRIBE)
        return SubscriptionStep(Fix.SUBSCRIBE, label, sub, None, (missing,))
    diffs = []
    if have.raw_message_delivery != sub.raw_message_delivery:
        raw, raw_now = str(sub.raw_message_delivery).lower(), str(have.raw_message_delivery).lower()
        diffs.append(
            FieldDiff(resource, f"{label}.RawMessageDelivery", raw, raw_now, Fix.UPDATE_SUBSCRIPTION)
        )
    if (have.filter_policy or None) != (sub.filter_policy or None):
        wanted, now = str(sub.filter_policy), str(have.filter_policy)
        diffs.append(FieldDiff(resource, f"{label}.FilterPolicy", wanted, now, Fix.UPDATE_SUBSCRIPTION))
    return SubscriptionStep(Fix.UPDATE_SUBSCRIPTION, label, sub, have, tuple(diffs)) if diffs else None


def topic_client(context: PassContext, region: str) -> TopicClient:
    return TopicClient(context.client("sns", region), region, context.account_id, context.partition)


def reconcile_topic(context: PassContext, region: str) -> str:
    """The topic of `region` with its policy and subscriptions, under its lock; its ARN."""
    notifications = context.spec.notifications
    assert notifications is not None
    client = topic_client(context, region)
    arn = client.topic_arn(notifications.topic_name)
    with context.shared.locks.hold(f"sns:{arn}"):
        seen = run_part(context, TopicPart(context, client, region), notifications.topic_name)
        observed = seen.observed
        if not seen.exists:
            if not context.act:
                return arn
            observed = client.observe(notifications.topic_name, with_tags=False)
        desired = desired_topic_statements(
            owner=context.owner, topic_arn=arn, trail_arns=[context.arn(region)]
        )
        run_part(context, TopicPolicyPart(context, client, region, arn, observed.policy), desired)
        run_part(context, SubscriptionsPart(context, client, region, observed), notifications.subscriptions)
    return arn


def topic_policy(
    context: PassContext, client: TopicClient, region: str, arn: str, desired: Statements | None
) -> SharedDocument[Policy]:
    """The topic's policy as a shared document (see bucket_parts.bucket_policy); an emptied one is
    written with no statements, since a topic always has a policy."""
    owner = context.owner
    resource = f"topic-policy/{region}"

    def merge(policy: Policy) -> Policy:
        if desired is None:
            return remove_owner_statements(policy, owner) or _empty_policy()
        return merge_statements(policy, owner, desired) or _empty_policy()

    def holds(policy: Policy) -> bool:
        if desired is None:
            return not owner_statements(policy, owner)
        return not diff_statements(resource, desired, policy, owner=owner)

    def write(policy: Policy) -> None:
        client.put_policy(arn, policy or _empty_policy())

    return SharedDocument(
        resource=resource, read=lambda: client.read_policy(arn), merge=merge, write=write, holds=holds
    )


def release_topic(context: PassContext, region: str, name: str) -> None:
    """Notifications were removed or renamed: take our statements and subscriptions off the old topic."""
    client = topic_client(context, region)
    arn = client.topic_arn(name)
    with context.shared.locks.hold(f"sns:{arn}"):
        observed = client.observe(name)
        if not observed.exists:
            return
        if owner_statements(observed.policy, context.owner) and context.act:
            context.write(topic_policy(context, client, region, arn, None), observed.policy)
            context.changed(f"topic-policy/{region}", f"removed trailkeeper statements from {name}")
        keys = set(context.removed_subscriptions)
        for sub in observed.subscriptions:
            if (sub.protocol, sub.endpoint) in keys and context.act:
                client.unsubscribe(sub.arn)
                context.changed(f"subscription/{region}", f"unsubscribed {sub.protocol}:{sub.endpoint}")


def delete_topic(context: PassContext, region: str) -> None:
    """Deletion: our subscriptions and statements off the topic, and the topic when ours and unused."""
    notifications = context.spec.notifications
    assert notifications is not None
    client = topic_client(context, region)
    name = notifications.topic_name
    arn = client.topic_arn(name)
    with context.shared.locks.hold(f"sns:{arn}"):
        observed = client.observe(name)
        if not observed.exists:
            return
        ours = {s.key for s in notifications.subscriptions}
        mine = [sub for sub in observed.subscriptions if (sub.protocol, sub.endpoint) in ours]
        for sub in mine:
            client.unsubscribe(sub.arn)
            context.changed(f"subscription/{region}", f"unsubscribed {sub.protocol}:{sub.endpoint}")
        remaining = remove_owner_statements(observed.policy, context.owner)
        others_left = len(observed.subscriptions) > len(mine)
        if observed.tags.get(OWNER_TAG) == context.owner and not others_left and not foreign_owned(remaining):
            client.delete_topic(arn)
            context.changed(f"topic/{region}", f"deleted topic {name}")
        elif owner_statements(observed.policy, context.owner):
            context.write(topic_policy(context, client, region, arn, None), observed.policy)
            context.changed(f"topic-policy/{region}", "removed trailkeeper statements")
