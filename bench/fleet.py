"""The objects the bench applies, and the AWS calls a drift sweep over them cannot do without.

Every Trail has the shape of the latency case: two regions, a bucket per region, an SNS topic per region
(no subscriptions) and a LogRetention on its buckets. The fleet and the latency runs use the same shape,
so a figure of one can be read against the other.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

REGIONS = ("us-east-1", "eu-west-1")
# The operations the issue counts as the floor of a drift sweep: (service, operation).
DESCRIBE_TRAILS = ("cloudtrail", "DescribeTrails")
GET_TRAIL_STATUS = ("cloudtrail", "GetTrailStatus")
GET_EVENT_SELECTORS = ("cloudtrail", "GetEventSelectors")
GET_BUCKET_POLICY = ("s3", "GetBucketPolicy")
GET_BUCKET_LIFECYCLE = ("s3", "GetBucketLifecycleConfiguration")
GET_TOPIC_ATTRIBUTES = ("sns", "GetTopicAttributes")
LIST_SUBSCRIPTIONS = ("sns", "ListSubscriptionsByTopic")


def trail_spec(name: str, *, resync_seconds: int = 300) -> dict[str, Any]:
    """A Trail in both regions, a bucket per region, an SNS topic per region."""
    return {
        "regions": list(REGIONS),
        "destination": {"bucket": f"bench-{name}-{{region}}"},
        "notifications": {"topicName": f"bench-{name}"},
        "resyncSeconds": resync_seconds,
    }


def retention_spec(trail: str, *, resync_seconds: int = 300) -> dict[str, Any]:
    """A LogRetention on every bucket of the Trail `trail`."""
    return {
        "trailRef": {"name": trail},
        "transitions": [{"days": 90, "storageClass": "GLACIER"}],
        "expirationDays": 400,
        "resyncSeconds": resync_seconds,
    }


@dataclass(frozen=True)
class FleetShape:
    """How many of each AWS thing a fleet of `trails` bench Trails (with their LogRetentions) holds."""

    trails: int
    regions: int = len(REGIONS)
    accounts: int = 1

    @property
    def region_trails(self) -> int:
        return self.trails * self.regions

    @property
    def buckets(self) -> int:
        return self.trails * self.regions  # "{region}" in the bucket name: one bucket per region

    @property
    def topics(self) -> int:
        return self.trails * self.regions

    def minimum_sweep_calls(self) -> Counter[tuple[str, str]]:
        """The fewest reads one drift check of every object needs: one DescribeTrails per region and
        account for all trails; per trail and region its status and selectors; per bucket its policy
        and (kept by a LogRetention) its lifecycle; per topic its attributes and subscription list."""
        return Counter(
            {
                DESCRIBE_TRAILS: self.regions * self.accounts,
                GET_TRAIL_STATUS: self.region_trails,
                GET_EVENT_SELECTORS: self.region_trails,
                GET_BUCKET_POLICY: self.buckets,
                GET_BUCKET_LIFECYCLE: self.buckets,
                GET_TOPIC_ATTRIBUTES: self.topics,
                LIST_SUBSCRIPTIONS: self.topics,
            }
        )


def trail_name(index: int) -> str:
    return f"fleet-{index:03d}"
