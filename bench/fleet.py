"""The objects the bench applies, and the AWS calls a drift sweep over them cannot do without.

Every Trail has the shape of the latency case: two regions, a bucket per region, an SNS topic per region
(no subscriptions) and a LogRetention on its buckets. The fleet and the latency runs use the same shape,
so a figure of one can be read against the other.

AWS allows 5 trails per region per account, and the quota cannot be raised: a fleet grows by accounts.
The fleet's Trails are spread over accounts (`trails_per_account` each, at most 5), each Trail and its
LogRetention acting in its account through `spec.account.roleArn` (moto's STS AssumeRole into another
account's role ARN returns credentials that act as that account); the operator's tenancy policy allows
those roles by prefix.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
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

# moto's default account: the operator's own credentials, and the latency runs'.
OWN_ACCOUNT = "123456789012"
ROLE_NAME = "trailkeeper-bench"
# The fleet's accounts are FIRST_ACCOUNT + n (n < 1000): one role prefix in the tenancy policy allows all.
FIRST_ACCOUNT = 100_000_000_000
ROLE_PREFIX = "arn:aws:iam::100000000*"
TRAILS_PER_REGION = 5  # AWS's limit per account, not adjustable


def account_id(index: int) -> str:
    return str(FIRST_ACCOUNT + index)


def role_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:role/{ROLE_NAME}"


def spread(names: Sequence[str], per_account: int, first: int = 0) -> dict[str, str]:
    """Each name's account: `per_account` names to an account, from account index `first` on."""
    assert 1 <= per_account <= TRAILS_PER_REGION, "AWS allows 5 trails per region per account"
    return {name: account_id(first + i // per_account) for i, name in enumerate(names)}


def tenancy_policy() -> str:
    """The operator's tenancy policy for the bench (YAML): its own account, and the fleet's roles."""
    return f"""rules:
- name: bench
  namespaces: ["*"]
  ownAccount: true
  roleArns: ["{ROLE_PREFIX}"]
"""


def _account_fields(account: str | None, delete: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if account is not None and account != OWN_ACCOUNT:
        fields["account"] = {"roleArn": role_arn(account)}
    if delete:
        fields["deletionPolicy"] = "Delete"
    return fields


def trail_spec(
    name: str, *, resync_seconds: int = 300, account: str | None = None, delete: bool = False
) -> dict[str, Any]:
    """A Trail in both regions, a bucket per region, an SNS topic per region; in `account` (None: the
    operator's own), removed from AWS when the object is deleted if `delete`."""
    return {
        "regions": list(REGIONS),
        "destination": {"bucket": f"bench-{name}-{{region}}"},
        "notifications": {"topicName": f"bench-{name}"},
        "resyncSeconds": resync_seconds,
        **_account_fields(account, delete),
    }


def retention_spec(
    trail: str, *, resync_seconds: int = 300, account: str | None = None, delete: bool = False
) -> dict[str, Any]:
    """A LogRetention on every bucket of the Trail `trail` (acting in the same account)."""
    return {
        "trailRef": {"name": trail},
        "transitions": [{"days": 90, "storageClass": "GLACIER"}],
        "expirationDays": 400,
        "resyncSeconds": resync_seconds,
        **_account_fields(account, delete),
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
