"""Subscriptions two Trails share: SNS keeps one subscription per (protocol, endpoint) on a topic.

Two Trails naming one topic and one endpoint get the same subscription (Subscribe answers the existing
ARN). Deleting either one must not unsubscribe what the other still wants: a confirmed email or HTTPS
subscription, once gone, needs its endpoint to confirm again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from trailkeeper.api.manifests import parse_spec
from trailkeeper.api.trail import TrailSpec
from trailkeeper.core.tenancy import role_account


def _may_share_topic(spec: TrailSpec, other: TrailSpec) -> bool:
    """Whether `other`'s topic may be the very topic of `spec`: the same name in a region both serve, and
    not two different accounts (an unknown account may be the same one: kept rather than lost)."""
    if spec.notifications is None or other.notifications is None:
        return False
    if spec.notifications.topic_name != other.notifications.topic_name:
        return False
    if not set(spec.regions) & set(other.regions):
        return False
    # A Trail without a role is in the operator's own account, which is not known here.
    mine, theirs = role_account(spec.account.role_arn), role_account(other.account.role_arn)
    return mine is None or theirs is None or mine == theirs


def shared_keys(spec: TrailSpec, others: Iterable[TrailSpec]) -> frozenset[tuple[str, str]]:
    """The (protocol, endpoint) keys of `spec`'s subscriptions that another live Trail's spec wants on
    the same topic."""
    if spec.notifications is None:
        return frozenset()
    mine = {s.key for s in spec.notifications.subscriptions}
    wanted: set[tuple[str, str]] = set()
    for other in others:
        if _may_share_topic(spec, other):
            assert other.notifications is not None
            wanted |= mine & {s.key for s in other.notifications.subscriptions}
    return frozenset(wanted)


def without_shared(spec: TrailSpec, other_bodies: Iterable[Any]) -> TrailSpec:
    """`spec` less the subscriptions other Trails (their raw specs; invalid ones ignored) still want on
    its topic: what a deletion of `spec` may unsubscribe."""
    others = [parsed for body in other_bodies if isinstance(parsed := parse_spec("Trail", body), TrailSpec)]
    keep = shared_keys(spec, others)
    if not keep or spec.notifications is None:
        return spec
    subscriptions = [s for s in spec.notifications.subscriptions if s.key not in keep]
    notifications = spec.notifications.model_copy(update={"subscriptions": subscriptions})
    return spec.model_copy(update={"notifications": notifications})
