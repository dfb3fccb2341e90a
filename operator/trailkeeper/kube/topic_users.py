"""Which live Trails name each SNS topic: a kopf index, so that a Trail's deletion keeps the subscriptions
another Trail still wants on the same topic (core/shared_subscriptions.py) without an API call.

A Trail being deleted (deletionTimestamp set) no longer counts: two Trails deleted together both let go.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

INDEX = "trails_by_topic"


def trails_by_topic(
    namespace: Any, name: Any, body: Any, meta: Any, **_: Any
) -> dict[str, tuple[str, str, Any]] | None:
    """kopf index: topic name -> (namespace, name, spec) of each live Trail naming it."""
    if meta.get("deletionTimestamp"):
        return None
    spec = body.get("spec")
    notifications = spec.get("notifications") if isinstance(spec, Mapping) else None
    topic = notifications.get("topicName") if isinstance(notifications, Mapping) else None
    if not isinstance(topic, str) or not topic:
        return None
    return {topic: (str(namespace or "default"), str(name), dict(spec))}


def topic_users(kwargs: Mapping[str, Any], namespace: str, name: str) -> Callable[[str], list[Any]]:
    """The specs of the live Trails other than `namespace/name` naming a topic, from kopf's index."""
    index = kwargs.get(INDEX)

    def users(topic: str) -> list[Any]:
        entries = list(index.get(topic, [])) if index is not None else []
        return [spec for ns, n, spec in entries if (ns, n) != (namespace, name)]

    return users
