"""The objects the bench applies, and the AWS calls a drift sweep over them cannot do without.

The latency runs apply one Trail of a fixed shape in the operator's own account: two regions, a bucket
per region, an SNS topic per region (no subscriptions) and a LogRetention on its buckets (`trail_spec`).

The fleet is an organization (`Organization`): AWS allows 5 trails per region per account, and the quota
cannot be raised, so a fleet grows by accounts. Each member account has one Trail delivering into a
central bucket (`createBucket: false`) with an SNS topic per region of its trails; half the members are
region-scoped over the fleet's regions, half `multiRegion` (one trail, homed in the first region). Per
100 members one log-archive account's Trail owns the central bucket and grants them
(`destination.sourceAccounts`), and a LogRetention keeps the bucket's lifecycle. Every object acts in its
account through `spec.account.roleArn` (moto's STS AssumeRole into another account's role ARN returns
credentials that act as that account); the operator's tenancy policy allows those roles by prefix.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

REGIONS = ("us-east-1", "eu-west-1")
# AWS's 17 regions enabled by default (no opt-in), the two of REGIONS first: a fleet of n regions uses
# the first n.
DEFAULT_REGIONS = (
    *REGIONS,
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
)
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
# The organization's member accounts are indexes 0 on; its log-archive accounts ARCHIVE_ACCOUNTS on.
ARCHIVE_ACCOUNTS = 500
# Member accounts per central bucket: their grants take about 9.3 KB of S3's 20 KB policy limit.
MEMBERS_PER_ARCHIVE = 100


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


def trail_name(index: int) -> str:
    return f"fleet-{index:03d}"


Key = tuple[str, str, str]  # kind, namespace, name (as bench.watch)


@dataclass(frozen=True)
class FleetTrail:
    """One Trail of the organization: its account, the regions of its trails (one for a multiRegion
    Trail: its home), and the central bucket it delivers to (it owns it if `archive`)."""

    name: str
    account: str
    regions: tuple[str, ...]
    multi_region: bool
    bucket: str
    archive: bool
    # An archive Trail's granted member accounts; empty for a member.
    members: tuple[str, ...] = ()

    @property
    def topic(self) -> str | None:
        return None if self.archive else f"bench-{self.name}"

    def trail_arn(self, region: str) -> str:
        return f"arn:aws:cloudtrail:{region}:{self.account}:trail/{self.name}"


def archive_name(index: int) -> str:
    return f"archive-{index:02d}"


def central_bucket(index: int) -> str:
    return f"bench-central-{index:02d}"


@dataclass(frozen=True)
class Organization:
    """`members` member accounts with one Trail each, over the first `regions` of DEFAULT_REGIONS, and a
    log-archive account (its Trail owning the central bucket, a LogRetention on it) per 100 members."""

    members: int
    regions: int = len(REGIONS)

    @property
    def region_names(self) -> tuple[str, ...]:
        assert 1 <= self.regions <= len(DEFAULT_REGIONS)
        return DEFAULT_REGIONS[: self.regions]

    @property
    def archives(self) -> list[FleetTrail]:
        home = self.region_names[:1]
        found = []
        for k in range(-(-self.members // MEMBERS_PER_ARCHIVE)):
            granted = range(k * MEMBERS_PER_ARCHIVE, min(self.members, (k + 1) * MEMBERS_PER_ARCHIVE))
            members = tuple(account_id(i) for i in granted)
            account = account_id(ARCHIVE_ACCOUNTS + k)
            found.append(FleetTrail(archive_name(k), account, home, True, central_bucket(k), True, members))
        return found

    @property
    def member_trails(self) -> list[FleetTrail]:
        found = []
        for i in range(self.members):
            multi = i % 2 == 1  # half region-scoped, half multiRegion
            regions = self.region_names[:1] if multi else self.region_names
            bucket = central_bucket(i // MEMBERS_PER_ARCHIVE)
            found.append(FleetTrail(trail_name(i), account_id(i), regions, multi, bucket, False))
        return found

    @property
    def trails(self) -> list[FleetTrail]:
        return self.archives + self.member_trails

    @property
    def accounts(self) -> dict[str, str]:
        """Each Trail's account (name -> account); one Trail per account."""
        return {t.name: t.account for t in self.trails}

    def keys(self) -> list[Key]:
        """Every object: a Trail per account, and a LogRetention of each archive Trail's name."""
        keys: list[Key] = [("Trail", "default", t.name) for t in self.trails]
        return keys + [("LogRetention", "default", t.name) for t in self.archives]

    def manifests(self, resync_seconds: int) -> list[tuple[str, str, dict[str, Any]]]:
        """(kind, name, spec) of every object, the archives' first (their buckets must exist for a member
        to be Ready; the members retry until then)."""
        found: list[tuple[str, str, dict[str, Any]]] = []
        for t in self.trails:
            spec: dict[str, Any] = {
                "regions": list(t.regions),
                "multiRegion": t.multi_region,
                "destination": (
                    {"bucket": t.bucket, "sourceAccounts": list(t.members)}
                    if t.archive
                    else {"bucket": t.bucket, "createBucket": False}
                ),
                "resyncSeconds": resync_seconds,
                **_account_fields(t.account, delete=False),
            }
            if t.topic is not None:
                spec["notifications"] = {"topicName": t.topic}
            found.append(("Trail", t.name, spec))
            if t.archive:
                retention = retention_spec(t.name, resync_seconds=resync_seconds, account=t.account)
                found.append(("LogRetention", t.name, retention))
        return found

    def describe_trails(self) -> int:
        """One DescribeTrails per account and region it has a trail in (a multiRegion trail's: its home)."""
        return sum(len(t.regions) for t in self.trails)

    def object_minimum(self) -> dict[Key, Counter[tuple[str, str]]]:
        """Each object's own reads in one drift check: per trail-region its status and selectors; per topic
        its attributes and subscriptions; the archive Trail its bucket's policy, its LogRetention the
        lifecycle. A member reads nothing of the central bucket: it is another account's."""
        found: dict[Key, Counter[tuple[str, str]]] = {}
        for t in self.trails:
            reads: Counter[tuple[str, str]] = Counter()
            for op in (GET_TRAIL_STATUS, GET_EVENT_SELECTORS):
                reads[op] += len(t.regions)
            if t.topic is not None:
                for op in (GET_TOPIC_ATTRIBUTES, LIST_SUBSCRIPTIONS):
                    reads[op] += len(t.regions)
            if t.archive:
                reads[GET_BUCKET_POLICY] += 1
                found[("LogRetention", "default", t.name)] = Counter({GET_BUCKET_LIFECYCLE: 1})
            found[("Trail", "default", t.name)] = reads
        return found

    def minimum_sweep_calls(self) -> Counter[tuple[str, str]]:
        """The fewest reads one drift check of every object needs (see object_minimum), with one
        DescribeTrails per account and region for all its trails."""
        total: Counter[tuple[str, str]] = Counter({DESCRIBE_TRAILS: self.describe_trails()})
        for reads in self.object_minimum().values():
            total += reads
        return total
