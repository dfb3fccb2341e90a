"""Reconcile one Trail: its buckets and bucket policies, SNS topics and subscriptions, and trails per region.

Every pass observes AWS afresh, computes the differences from the spec with the pure core, and acts only
when there is a difference (and only when asked to act: a Report-only drift check and `trailkeeper diff`
observe and report). One failing region does not stop the others; its error is kept in its outcome.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from trailkeeper.api.common import AccountRef as AccountSpec
from trailkeeper.api.common import DeletionPolicy
from trailkeeper.api.trail import Subscription, TrailSpec
from trailkeeper.aws.buckets import (
    PART_LIFECYCLE,
    PART_POLICY,
    PART_TAGS,
    PART_VERSIONING,
    BucketClient,
    ObservedBucket,
)
from trailkeeper.aws.errors import UnexpectedAnswerError, classify, error_code
from trailkeeper.aws.session import ROLE_SESSION_NAME, AccountRef, AwsSessions, role_session_name
from trailkeeper.aws.topics import ObservedTopic, TopicClient
from trailkeeper.aws.trails import TrailClient, TrailNameTakenError
from trailkeeper.core.bucket_policy import desired_bucket_statements
from trailkeeper.core.bucket_share import (
    BUCKET_POLICY_MAX_BYTES,
    BucketShare,
    add_share,
    has_share,
    is_shared_sid,
    policy_bytes,
    remove_share,
    share_diffs,
    too_large_message,
)
from trailkeeper.core.drift import FieldDiff, Fix, diff_statements, diff_tags, diff_trail
from trailkeeper.core.merge import merge_statements, owner_statements, remove_owner_statements
from trailkeeper.core.monitoring_desired import desired_monitoring
from trailkeeper.core.naming import OWNER_TAG, is_trailkeeper_sid, owner_key
from trailkeeper.core.observed_trail import ObservedTrail
from trailkeeper.core.ownership import OwnerLiveness, takeover_problem, unknown_liveness
from trailkeeper.core.tags import TagChange, desired_tags, tag_change
from trailkeeper.core.topic_policy import desired_topic_statements
from trailkeeper.core.trail_limit import TRAIL_LIMIT, trail_limit_problem
from trailkeeper.core.trail_settings import DesiredTrail, desired_trails, trail_arn
from trailkeeper.core.trail_settings import partition_for_region as partition_of
from trailkeeper.reconcile.errors import AWS_ERRORS, RegionFailure
from trailkeeper.reconcile.monitoring import MonitoringPart
from trailkeeper.reconcile.shared import Change, Shared
from trailkeeper.reconcile.verified_write import Confirmations, SharedDocument, write_verified

T = TypeVar("T")

# How old a shared read a change pass may act on (seconds).
CHANGE_READ_MAX_AGE = 2.0


def account_ref(spec: AccountSpec, session_name: str = ROLE_SESSION_NAME) -> AccountRef | None:
    return AccountRef(spec.role_arn, spec.external_id, session_name) if spec.role_arn else None


@dataclass(frozen=True)
class TrailRequest:
    """One reconcile of a Trail: the spec, and what the previous spec had that this one dropped."""

    namespace: str
    name: str
    spec: TrailSpec
    act: bool = True
    # Deep: also read bucket settings (encryption, versioning, public-access block) of buckets trailkeeper
    # created. A periodic drift check reads only what the documents it owns need.
    deep: bool = True
    removed_regions: tuple[str, ...] = ()
    # Other regions a deletion also looks in for a trail of this Trail: a pass stopped before kopf recorded
    # it may have made one in a region the spec dropped since, and no spec remembers that region.
    sweep_regions: tuple[str, ...] = ()
    removed_subscriptions: tuple[tuple[str, str], ...] = ()
    # Tag keys the previous spec had and this one dropped: taken off the trails (no other key ever is).
    removed_tags: tuple[str, ...] = ()
    removed_topic: str | None = None
    # Whether the Trail an owner tag names exists (the operator asks its index of Trails; the command
    # line cannot tell) and whether the command line was told to take over owned trails anyway.
    owner_alive: OwnerLiveness = unknown_liveness
    force_adopt: bool = False

    @property
    def owner(self) -> str:
        return owner_key(self.namespace, self.name)

    @property
    def trail_name(self) -> str:
        return self.spec.effective_trail_name(self.name)


@dataclass
class RegionOutcome:
    region: str
    trail_arn: str | None = None
    is_logging: bool | None = None
    bucket: str | None = None
    topic_arn: str | None = None
    latest_delivery_error: str | None = None
    failure: RegionFailure | None = None


@dataclass
class TrailOutcome:
    account_id: str
    trail_name: str
    regions: list[RegionOutcome]
    diffs: list[FieldDiff] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    @property
    def failures(self) -> list[RegionFailure]:
        return [r.failure for r in self.regions if r.failure is not None]

    @property
    def conflicts(self) -> list[RegionFailure]:
        return [f for f in self.failures if f.code == "Conflict"]


def _guard(outcome: RegionOutcome, step: Callable[[], T]) -> T | None:
    """Run one region's step; an AWS error becomes that region's failure instead of stopping the others."""
    try:
        return step()
    except RegionFailure as failure:
        outcome.failure = failure
    except AWS_ERRORS as error:
        outcome.failure = RegionFailure.from_aws(classify(error))
    return None


class TrailReconciler:
    """One pass over one Trail. Construct, call `run()` (or `delete()`), read the outcome."""

    def __init__(self, request: TrailRequest, sessions: AwsSessions, shared: Shared) -> None:
        self.request = request
        self.spec = request.spec
        self.sessions = sessions
        self.shared = shared
        self.account = account_ref(self.spec.account, role_session_name(request.namespace, request.name))
        self.account_id = sessions.account_id(self.account)
        self.partition = partition_of(self.spec.regions[0])
        self.desired = {
            d.region: d for d in desired_trails(self.spec, name=request.trail_name, owner=request.owner)
        }
        self.monitoring = monitoring_part(self)
        if self.monitoring is not None:
            self.desired = self.monitoring.desired.wire(self.desired)
        self.outcome = TrailOutcome(
            account_id=self.account_id,
            trail_name=request.trail_name,
            regions=[RegionOutcome(region=r, bucket=self.spec.bucket_for(r)) for r in self.desired],
        )
        self._observed: dict[str, ObservedTrail | None] = {}
        # The key ARN an alias in the spec names, per region (looked up before anything is made there).
        self._kms_arns: dict[str, str] = {}
        # The shared documents this pass wrote, confirmed together at its end (verified_write.py).
        self.confirmations = Confirmations(shared.write_policy)

    # -- helpers ------------------------------------------------------------------------------------------

    def _diff(self, diffs: list[FieldDiff]) -> bool:
        self.outcome.diffs.extend(diffs)
        return bool(diffs) and self.request.act

    def _changed(self, resource: str, action: str) -> None:
        self.outcome.changes.append(Change(resource, action))

    def _arn(self, region: str) -> str:
        return trail_arn(self.partition, region, self.account_id, self.request.trail_name)

    def _tags(self) -> dict[str, str]:
        return desired_tags(self.spec.tags, self.request.owner)

    def _buckets(self) -> dict[str, list[str]]:
        """Each bucket and the regions delivering to it; a shared bucket lives in the first of them."""
        buckets: dict[str, list[str]] = {}
        for region in self.desired:
            buckets.setdefault(self.spec.bucket_for(region), []).append(region)
        return buckets

    # -- the pass -----------------------------------------------------------------------------------------

    def run(self, meanwhile: Callable[[TrailOutcome], None] | None = None) -> TrailOutcome:
        """The pass; `meanwhile` (the compliance evaluation) runs once AWS is in place, while the shared
        documents written settle, before they are confirmed."""
        by_region = {r.region: r for r in self.outcome.regions}
        # Trails of this name owned by someone else are found first: nothing (bucket, topic, policy
        # statement) is made for a region that ends in Conflict.
        for region, outcome in by_region.items():
            _guard(outcome, lambda r=region, o=outcome: self._claim(r, o))  # type: ignore[misc]
            if outcome.failure is None:
                _guard(outcome, lambda r=region: self._resolve_kms(r))  # type: ignore[misc]
        for bucket, all_regions in self._buckets().items():
            regions = [r for r in all_regions if by_region[r].failure is None]
            if not regions:
                continue
            probe = RegionOutcome(region=regions[0])
            _guard(probe, lambda b=bucket, rs=regions: self._reconcile_bucket(b, rs))  # type: ignore[misc]
            if probe.failure is not None:
                # A trail cannot deliver without its bucket: those regions stop here, the others go on.
                for region in regions:
                    by_region[region].failure = probe.failure
        for region, outcome in by_region.items():
            if outcome.failure is not None:
                continue
            if self.spec.notifications is not None:
                outcome.topic_arn = _guard(outcome, lambda r=region: self._reconcile_topic(r))  # type: ignore[misc]
                if outcome.failure is not None:
                    continue
            if self.request.removed_topic:
                _guard(outcome, lambda r=region: self._release_topic(r, self.request.removed_topic or ""))  # type: ignore[misc]
            if self.monitoring is not None:
                _guard(outcome, lambda r=region: self.monitoring.deliver(r))  # type: ignore[misc]
                if outcome.failure is not None:
                    continue
            _guard(outcome, lambda r=region, o=outcome: self._reconcile_trail(r, o))  # type: ignore[misc]
            if self.monitoring is not None and outcome.failure is None:
                _guard(outcome, lambda r=region: self.monitoring.alarms(r))  # type: ignore[misc]
        for region in self.request.removed_regions:
            if region not in self.desired and self.spec.deletion_policy == DeletionPolicy.DELETE:
                removed = RegionOutcome(region=region)
                _guard(removed, lambda r=region: self._delete_trail(r))  # type: ignore[misc]
        if meanwhile is not None:
            meanwhile(self.outcome)
        self._confirm_writes(by_region)
        return self.outcome

    def _confirm_writes(self, by_region: dict[str, RegionOutcome]) -> None:
        """The confirming reads of the shared documents this pass wrote: a region whose bucket or topic
        policy another writer undid (and every attempt to put it back failed) fails with LostUpdate."""
        for regions, failure in self.confirmations.confirm():
            for region in regions:
                if by_region[region].failure is None:
                    by_region[region].failure = failure

    # -- buckets ------------------------------------------------------------------------------------------

    def _bucket_client(self, region: str) -> BucketClient:
        return BucketClient(self.sessions.client("s3", region, self.account), region)

    def _reconcile_bucket(self, bucket: str, regions: list[str]) -> None:
        home = regions[0]
        client = self._bucket_client(home)
        resource = f"bucket/{bucket}"
        with self.shared.locks.hold(f"s3:{bucket}"):
            parts = None if self.request.deep else {PART_POLICY, PART_TAGS}
            observed = client.observe(bucket, parts=parts)
            if not observed.exists:
                if not self.spec.destination.create_bucket:
                    raise RegionFailure(
                        "NoSuchBucket", f"bucket {bucket} does not exist and createBucket is false"
                    )
                if self._diff([FieldDiff(resource, "Exists", "true", "false", Fix.CREATE)]):
                    client.create(
                        bucket, region=home, kms_key_id=self.spec.destination.kms_key_id, tags=self._tags()
                    )
                    self._changed(resource, f"created in {home}")
                current_policy: dict[str, Any] | None = None
            else:
                if not observed.owned_by_caller:
                    raise RegionFailure("AccessDenied", f"bucket {bucket} belongs to another account")
                if self.request.deep and self._interrupted_creation(client, observed):
                    client.put_tags(bucket, self._tags())
                    self._changed(resource, "finished an interrupted creation: tagged")
                    observed = dataclasses.replace(observed, tags=self._tags())
                if self.request.deep and observed.tags.get(OWNER_TAG) == self.request.owner:
                    self._reconcile_bucket_settings(client, observed)
                if observed.tags.get(OWNER_TAG) == self.request.owner:
                    self._reconcile_bucket_tags(client, observed)
                current_policy = observed.policy
            desired = desired_bucket_statements(
                owner=self.request.owner,
                bucket=bucket,
                key_prefix=self.spec.destination.key_prefix,
                account_id=self.account_id,
                trail_arns=[self._arn(r) for r in regions],
                source_accounts=list(self.spec.destination.source_accounts),
                organization_id=self.spec.destination.organization_id,
                partition=self.partition,
            )
            diffs = diff_statements(
                f"bucket-policy/{bucket}", desired, current_policy, owner=self.request.owner
            ) + share_diffs(f"bucket-policy/{bucket}", current_policy, self._share(bucket))
            if self._diff(diffs):
                self._write_later(
                    self._bucket_policy(client, bucket, desired), current_policy, f"s3:{bucket}", regions
                )
                self._changed(f"bucket-policy/{bucket}", "put trailkeeper statements")

    def _share(self, bucket: str) -> BucketShare:
        """This Trail's part in the bucket's shared statements."""
        key_prefix = self.spec.destination.key_prefix
        return BucketShare(bucket, key_prefix, self.account_id, self.request.trail_name, self.partition)

    def _write(self, document: SharedDocument[Any], observed: Any) -> None:
        write_verified(document, observed, self.shared.write_policy)

    def _write_later(
        self, document: SharedDocument[Any], observed: Any, lock: str, regions: list[str]
    ) -> None:
        """Write `document` now and leave its confirming read to the end of the pass (`_confirm_writes`),
        under the lock `lock`; a loss found then fails `regions`."""

        def later(written: SharedDocument[Any]) -> None:
            self.confirmations.add(written, tuple(regions), lambda: self.shared.locks.hold(lock))

        write_verified(document, observed, self.shared.write_policy, later=later)

    def _bucket_policy(
        self, client: BucketClient, bucket: str, desired: list[dict[str, Any]] | None
    ) -> SharedDocument[dict[str, Any] | None]:
        """The bucket's policy as a shared document: this owner's statements become `desired` (None:
        none of them), every other statement is kept as read."""
        owner = self.request.owner
        resource = f"bucket-policy/{bucket}"
        share = self._share(bucket)

        def merge(policy: dict[str, Any] | None) -> dict[str, Any] | None:
            if desired is None:
                return remove_share(remove_owner_statements(policy, owner), share)
            merged = add_share(merge_statements(policy, owner, desired), share)
            # Refused before the write: S3 would refuse it, and retrying cannot help.
            if policy_bytes(merged) > BUCKET_POLICY_MAX_BYTES:
                raise RegionFailure("PolicyTooLarge", too_large_message(bucket, policy_bytes(merged)))
            return merged

        def holds(policy: dict[str, Any] | None) -> bool:
            if desired is None:
                return not owner_statements(policy, owner) and not has_share(policy, share)
            return not diff_statements(resource, desired, policy, owner=owner) + share_diffs(
                resource, policy, share
            )

        return SharedDocument(
            resource=resource,
            read=lambda: client.observe(bucket, parts={PART_POLICY}).policy,
            merge=merge,
            write=lambda policy: client.put_policy(policy, bucket=bucket),
            holds=holds,
        )

    def _topic_policy(
        self, client: TopicClient, region: str, arn: str, desired: list[dict[str, Any]] | None
    ) -> SharedDocument[dict[str, Any] | None]:
        """The topic's policy as a shared document (see _bucket_policy); an emptied one is written with no
        statements, since a topic always has a policy."""
        owner = self.request.owner
        resource = f"topic-policy/{region}"

        def merge(policy: dict[str, Any] | None) -> dict[str, Any] | None:
            merged = (
                remove_owner_statements(policy, owner)
                if desired is None
                else merge_statements(policy, owner, desired)
            )
            return merged or {"Version": "2012-10-17", "Statement": []}

        def holds(policy: dict[str, Any] | None) -> bool:
            if desired is None:
                return not owner_statements(policy, owner)
            return not diff_statements(resource, desired, policy, owner=owner)

        def write(policy: dict[str, Any] | None) -> None:
            client.put_policy(arn, policy or {"Version": "2012-10-17", "Statement": []})

        return SharedDocument(
            resource=resource, read=lambda: client.read_policy(arn), merge=merge, write=write, holds=holds
        )

    def _interrupted_creation(self, client: BucketClient, observed: ObservedBucket) -> bool:
        """Whether `observed` is a bucket this Trail's pass created and was stopped before tagging.

        CreateBucket cannot tag, so a kill between it and PutBucketTagging leaves a blank bucket. One that
        the spec asks trailkeeper to create, with no tags, policy, versioning, lifecycle rule or object, is
        taken as that creation and finished; any trace of use makes it someone else's bucket.
        """
        return (
            self.spec.destination.create_bucket
            and {PART_TAGS, PART_POLICY, PART_VERSIONING, PART_LIFECYCLE} <= observed.parts_read
            and not observed.tags
            and observed.policy is None
            and observed.versioning is None
            and not observed.lifecycle_rules
            and client.is_empty(observed.name)
        )

    def _reconcile_bucket_tags(self, client: BucketClient, observed: ObservedBucket) -> None:
        """The spec's tags on a bucket this Trail created; others' tags stay (core/tags.py)."""
        resource = f"bucket/{observed.name}"
        removed = self.request.removed_tags
        if self._diff(diff_tags(resource, self._tags(), observed.tags, removed)):
            # PutBucketTagging replaces the whole set: the merged set, others' tags in it, in one call.
            client.put_tags(observed.name, tag_change(self._tags(), observed.tags, removed).merged)
            self._changed(resource, "set tags")

    def _reconcile_bucket_settings(self, client: BucketClient, observed: ObservedBucket) -> None:
        """Settings of a bucket trailkeeper created (never anyone else's): blocks, versioning, encryption."""
        resource = f"bucket/{observed.name}"
        diffs: list[FieldDiff] = []
        restore = Fix.RESTORE_BUCKET_SETTINGS
        block = observed.public_access_block or {}
        for flag in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"):
            if block.get(flag) is not True:
                flag_now = str(block.get(flag)).lower()
                diffs.append(FieldDiff(resource, f"PublicAccessBlock.{flag}", "true", flag_now, restore))
        if observed.versioning != "Enabled":
            diffs.append(FieldDiff(resource, "Versioning", "Enabled", str(observed.versioning), restore))
        want = "aws:kms" if self.spec.destination.kms_key_id else "AES256"
        have = (observed.encryption or {}).get("SSEAlgorithm")
        if have != want:
            diffs.append(FieldDiff(resource, "Encryption.SSEAlgorithm", want, str(have), restore))
        if self._diff(diffs):
            corrected = client.ensure_settings(observed, kms_key_id=self.spec.destination.kms_key_id)
            self._changed(resource, "restored " + ", ".join(corrected or [d.field for d in diffs]))

    # -- topics -------------------------------------------------------------------------------------------

    def _topic_client(self, region: str) -> TopicClient:
        return TopicClient(
            self.sessions.client("sns", region, self.account), region, self.account_id, self.partition
        )

    def _reconcile_topic(self, region: str) -> str:
        assert self.spec.notifications is not None
        name = self.spec.notifications.topic_name
        client = self._topic_client(region)
        arn = client.topic_arn(name)
        resource = f"topic/{region}"
        with self.shared.locks.hold(f"sns:{arn}"):
            observed = client.observe(name)
            if not observed.exists:
                if not self._diff([FieldDiff(resource, "Exists", "true", "false", Fix.CREATE)]):
                    return arn
                arn = client.create(name, self._tags())
                self._changed(resource, f"created topic {name}")
                observed = client.observe(name, with_tags=False)
            elif observed.tags.get(OWNER_TAG) == self.request.owner:
                self._reconcile_topic_tags(client, region, observed)
            desired = desired_topic_statements(
                owner=self.request.owner, topic_arn=arn, trail_arns=[self._arn(region)]
            )
            diffs = diff_statements(
                f"topic-policy/{region}", desired, observed.policy, owner=self.request.owner
            )
            if self._diff(diffs):
                document = self._topic_policy(client, region, arn, desired)
                self._write_later(document, observed.policy, f"sns:{arn}", [region])
                self._changed(f"topic-policy/{region}", "put trailkeeper statements")
            self._reconcile_subscriptions(client, region, observed, self.spec.notifications.subscriptions)
        return arn

    def _reconcile_topic_tags(self, client: TopicClient, region: str, observed: ObservedTopic) -> None:
        """The spec's tags on a topic this Trail created; others' tags stay (core/tags.py)."""
        resource = f"topic/{region}"
        removed = self.request.removed_tags
        if self._diff(diff_tags(resource, self._tags(), observed.tags, removed)):
            change = tag_change(self._tags(), observed.tags, removed)
            _apply_tags(lambda want, have: client.set_tags(observed.arn, want, have), change, observed.tags)
            self._changed(resource, "set tags")

    def _reconcile_subscriptions(
        self, client: TopicClient, region: str, observed: ObservedTopic, wanted: list[Subscription]
    ) -> None:
        resource = f"subscription/{region}"
        existing = {(s.protocol, s.endpoint): s for s in observed.subscriptions}
        for sub in wanted:
            key = sub.key
            label = f"{key[0]}:{key[1]}"
            have = existing.get(key)
            if have is None:
                if self._diff([FieldDiff(resource, label, "subscribed", "absent", Fix.SUBSCRIBE)]):
                    client.subscribe(
                        observed.arn, key[0], key[1], sub.raw_message_delivery, sub.filter_policy
                    )
                    self._changed(resource, f"subscribed {label}")
                continue
            diffs = []
            if have.raw_message_delivery != sub.raw_message_delivery:
                diffs.append(
                    FieldDiff(
                        resource,
                        f"{label}.RawMessageDelivery",
                        str(sub.raw_message_delivery).lower(),
                        str(have.raw_message_delivery).lower(),
                        Fix.UPDATE_SUBSCRIPTION,
                    )
                )
            if (have.filter_policy or None) != (sub.filter_policy or None):
                diffs.append(
                    FieldDiff(
                        resource,
                        f"{label}.FilterPolicy",
                        str(sub.filter_policy),
                        str(have.filter_policy),
                        Fix.UPDATE_SUBSCRIPTION,
                    )
                )
            if self._diff(diffs):
                client.update_subscription(have.arn, sub.raw_message_delivery, sub.filter_policy)
                self._changed(resource, f"updated {label}")
        wanted_keys = {s.key for s in wanted}
        for key in self.request.removed_subscriptions:
            have = existing.get(key)
            if key in wanted_keys or have is None:
                continue
            label = f"{key[0]}:{key[1]}"
            if self._diff([FieldDiff(resource, label, "absent", "subscribed", Fix.UNSUBSCRIBE)]):
                client.unsubscribe(have.arn)
                self._changed(resource, f"unsubscribed {label}")

    def _release_topic(self, region: str, name: str) -> None:
        """Notifications were removed or renamed: take our statements and subscriptions off the old topic."""
        client = self._topic_client(region)
        arn = client.topic_arn(name)
        with self.shared.locks.hold(f"sns:{arn}"):
            observed = client.observe(name)
            if not observed.exists:
                return
            if owner_statements(observed.policy, self.request.owner) and self.request.act:
                self._write(self._topic_policy(client, region, arn, None), observed.policy)
                self._changed(f"topic-policy/{region}", f"removed trailkeeper statements from {name}")
            keys = set(self.request.removed_subscriptions)
            for sub in observed.subscriptions:
                if (sub.protocol, sub.endpoint) in keys and self.request.act:
                    client.unsubscribe(sub.arn)
                    self._changed(f"subscription/{region}", f"unsubscribed {sub.protocol}:{sub.endpoint}")

    # -- trails -------------------------------------------------------------------------------------------

    def _trail_client(self, region: str) -> TrailClient:
        return TrailClient(
            self.sessions.client("cloudtrail", region, self.account), region, self.account_id, self.partition
        )

    def _observe_trail(self, client: TrailClient, region: str) -> ObservedTrail | None:
        # A change pass acts on reads at most a couple of seconds old (those of a burst of changes are
        # shared), with its own ListTags; a drift check takes the sweep's shared reads, tags included.
        deep = self.request.deep
        max_age = CHANGE_READ_MAX_AGE if deep else self.shared.shared_read_age(self.spec.resync_seconds)
        described = self.shared.cache.get(self._trails_key(region), client.list_names, max_age=max_age)
        tags = (
            None
            if deep
            else self.shared.cache.get(
                self._tags_key(region), lambda: client.tags_by_arn(described), max_age=max_age
            )
        )
        return client.observe(
            self.request.trail_name,
            described=described,
            tags_by_arn=tags,
            want_insights=bool(self.desired[region].insight_selectors) if region in self.desired else True,
        )

    def _trails_key(self, region: str) -> tuple[str, ...]:
        return ("describe-trails", self.account_id, region)

    def _tags_key(self, region: str) -> tuple[str, ...]:
        return ("trail-tags", self.account_id, region)

    def _forget_trails(self, region: str) -> None:
        """Drop the shared reads of `region`'s trails after changing one of them."""
        self.shared.cache.invalidate(self._trails_key(region))
        self.shared.cache.invalidate(self._tags_key(region))

    def _resolve_kms(self, region: str) -> None:
        """Look the spec's KMS key up in `region` before anything is made there: a key or alias that does
        not exist fails the region now, not after a bucket was created with it as default encryption.

        An alias is looked up on every pass (CloudTrail reports the key ARN, which is compared); a key id or
        ARN only on change passes, so a drift check makes no KMS call for it.
        """
        key = self.spec.destination.kms_key_id
        if not key:
            return
        alias = key.startswith("alias/") or ":alias/" in key
        if not (alias or self.request.deep):
            return
        kms = self.sessions.client("kms", region, self.account)
        try:
            metadata = kms.describe_key(KeyId=key).get("KeyMetadata") or {}
        except ClientError as error:
            if error_code(error) == "NotFoundException":
                raise RegionFailure(
                    "KmsKeyNotFound", f"KMS key {key} does not exist in {region}; nothing was made with it"
                ) from error
            raise
        if not metadata.get("Arn"):
            raise UnexpectedAnswerError("DescribeKey", f"it holds no key ARN for {key}")
        if alias:
            self._kms_arns[region] = str(metadata["Arn"])

    def _resolve_kms_alias(self, desired: DesiredTrail) -> DesiredTrail:
        """CloudTrail reports the key ARN; an alias in the spec is resolved to it before comparing, or every
        pass would see a difference and rewrite the trail."""
        arn = self._kms_arns.get(desired.region)
        return dataclasses.replace(desired, kms_key_id=arn) if arn and desired.kms_key_id else desired

    def _claim(self, region: str, outcome: RegionOutcome) -> None:
        """Observe the trail of this name in `region`; raise Conflict if it is not ours to manage."""
        client = self._trail_client(region)
        observed = self._observe_trail(client, region)
        self._observed[region] = observed
        if observed is None:
            # The DescribeTrails answer just read (any age will do: a change in the region drops it).
            described = self.shared.cache.get(self._trails_key(region), client.list_names, max_age=math.inf)
            if problem := trail_limit_problem(described, self.account_id, region, self.request.trail_name):
                raise RegionFailure(TRAIL_LIMIT, problem)
            return
        # Checked first: a trail in conflict is another Trail's, and its ARN and logging are not ours to show.
        self._check_owner(region, observed)
        outcome.trail_arn = observed.arn
        outcome.latest_delivery_error = observed.latest_delivery_error
        outcome.is_logging = observed.is_logging

    def _check_owner(self, region: str, observed: ObservedTrail) -> None:
        """Raise Conflict unless the trail `observed` is this Trail's to manage."""
        if observed.is_shadow:
            raise RegionFailure(
                "Conflict",
                f"{region} holds a shadow of the multi-region trail {observed.arn} of the same name",
            )
        problem = takeover_problem(
            f"trail {observed.name} in {region}",
            observed.tags.get(OWNER_TAG),
            self.request.owner,
            adopt=self.spec.adopt,
            alive=self.request.owner_alive,
            force=self.request.force_adopt,
        )
        if problem:
            raise RegionFailure("Conflict", problem)

    def _reconcile_trail(self, region: str, outcome: RegionOutcome) -> None:
        desired = self._resolve_kms_alias(self.desired[region])
        client = self._trail_client(region)
        resource = f"trail/{region}"
        # Observed by _claim in this pass, before the bucket and topic were put in place.
        observed = self._observed[region]
        if observed is None:
            outcome.trail_arn = self._arn(region)
            if not self._diff([FieldDiff(resource, "Exists", "true", "false", Fix.CREATE)]):
                return
            try:
                self._create_trail(client, desired, resource)
                outcome.is_logging = desired.logging
                return
            except TrailNameTakenError:
                # Made by another writer since _claim looked: checked like any trail found there.
                self._forget_trails(region)
                observed = client.observe(self.request.trail_name)
                if observed is None:
                    raise
                outcome.trail_arn = None
                self._check_owner(region, observed)
                outcome.trail_arn = observed.arn
        removed = self.request.removed_tags
        diffs = [d for d in diff_trail(desired, observed, resource=resource) if d.fix != Fix.SET_TAGS]
        diffs += diff_tags(resource, desired.tags, observed.tags, removed)
        if not self._diff(diffs):
            return
        fixes = {d.fix for d in diffs}
        if Fix.UPDATE_TRAIL in fixes:
            client.update_settings(desired)
            settings = sorted({d.field for d in diffs if d.fix == Fix.UPDATE_TRAIL})
            self._changed(resource, "updated " + ", ".join(settings))
        if Fix.PUT_EVENT_SELECTORS in fixes:
            client.put_event_selectors(desired)
            self._changed(resource, "put event selectors")
        if Fix.PUT_INSIGHT_SELECTORS in fixes:
            client.put_insight_selectors(desired.name, list(desired.insight_selectors))
            self._changed(resource, "put insight selectors")
        if Fix.SET_TAGS in fixes:
            # Only our keys are compared: tags others put on the trail are theirs and stay.
            change = tag_change(desired.tags, observed.tags, removed)
            _apply_tags(lambda want, have: client.set_tags(observed.arn, want, have), change, observed.tags)
            self._changed(resource, "set tags")
        if Fix.SET_LOGGING in fixes:
            client.set_logging(desired.name, desired.logging)
            self._changed(resource, "started logging" if desired.logging else "stopped logging")
        outcome.is_logging = desired.logging
        self._forget_trails(region)

    def _create_trail(self, client: TrailClient, desired: DesiredTrail, resource: str) -> None:
        # One creator of a name per account and region in this process; across processes CloudTrail's own
        # TrailAlreadyExistsException decides, and create() checks whose the existing trail is.
        with self.shared.locks.hold(f"cloudtrail:{self.account_id}:{desired.region}:{desired.name}"):
            client.create(desired)
        self._forget_trails(desired.region)
        self._changed(resource, f"created trail {desired.name}")
        client.put_event_selectors(desired)
        if desired.insight_selectors:
            client.put_insight_selectors(desired.name, list(desired.insight_selectors))
        if desired.logging:
            # A trail made through the API does not log until StartLogging.
            client.set_logging(desired.name, True)
            self._changed(resource, "started logging")

    def _delete_trail(self, region: str) -> None:
        client = self._trail_client(region)
        observed = self._observe_trail(client, region)
        if observed is None or observed.is_shadow or observed.tags.get(OWNER_TAG) != self.request.owner:
            return
        if self.request.act:
            client.delete(observed.name)
            self._forget_trails(region)
            self._changed(f"trail/{region}", f"deleted trail {observed.name}")

    # -- deletion -----------------------------------------------------------------------------------------

    def delete(self) -> TrailOutcome:
        """deletionPolicy Delete: remove the trails, our statements and subscriptions, and our empty buckets.

        Never a bucket that holds objects, nor one another owner still writes to.
        """
        if self.spec.deletion_policy != DeletionPolicy.DELETE:
            return self.outcome
        by_region = {r.region: r for r in self.outcome.regions}
        for region, outcome in by_region.items():
            _guard(outcome, lambda r=region: self._delete_trail(r))  # type: ignore[misc]
            if self.spec.notifications is not None and outcome.failure is None:
                _guard(outcome, lambda r=region: self._delete_topic(r))  # type: ignore[misc]
            if self.monitoring is not None and outcome.failure is None:
                _guard(outcome, lambda r=region: self.monitoring.delete(r))  # type: ignore[misc]
        if self.monitoring is not None and not self.outcome.failures:
            _guard(self.outcome.regions[0], self.monitoring.delete_role)
        for region in sorted(set(self.request.sweep_regions) - set(by_region)):
            swept = RegionOutcome(region=region)
            _guard(swept, lambda r=region: self._delete_trail(r))  # type: ignore[misc]
            if swept.failure is not None:
                self.outcome.regions.append(swept)  # holds the deletion until that region answers
        for bucket, regions in self._buckets().items():
            _guard(by_region[regions[0]], lambda b=bucket, rs=regions: self._release_bucket(b, rs[0]))  # type: ignore[misc]
        return self.outcome

    def _delete_topic(self, region: str) -> None:
        assert self.spec.notifications is not None
        client = self._topic_client(region)
        name = self.spec.notifications.topic_name
        arn = client.topic_arn(name)
        with self.shared.locks.hold(f"sns:{arn}"):
            observed = client.observe(name)
            if not observed.exists:
                return
            ours = {s.key for s in self.spec.notifications.subscriptions}
            for sub in observed.subscriptions:
                if (sub.protocol, sub.endpoint) in ours:
                    client.unsubscribe(sub.arn)
                    self._changed(f"subscription/{region}", f"unsubscribed {sub.protocol}:{sub.endpoint}")
            remaining = remove_owner_statements(observed.policy, self.request.owner)
            others_left = len(observed.subscriptions) > len(
                [s for s in observed.subscriptions if (s.protocol, s.endpoint) in ours]
            )
            if (
                observed.tags.get(OWNER_TAG) == self.request.owner
                and not others_left
                and not _foreign_owned(remaining)
            ):
                client.delete_topic(arn)
                self._changed(f"topic/{region}", f"deleted topic {name}")
            elif owner_statements(observed.policy, self.request.owner):
                self._write(self._topic_policy(client, region, arn, None), observed.policy)
                self._changed(f"topic-policy/{region}", "removed trailkeeper statements")

    def _release_bucket(self, bucket: str, home: str) -> None:
        client = self._bucket_client(home)
        with self.shared.locks.hold(f"s3:{bucket}"):
            observed = client.observe(bucket)
            if not observed.exists or not observed.owned_by_caller:
                return
            share = self._share(bucket)
            if owner_statements(observed.policy, self.request.owner) or has_share(observed.policy, share):
                remaining = remove_share(remove_owner_statements(observed.policy, self.request.owner), share)
                self._write(self._bucket_policy(client, bucket, None), observed.policy)
                self._changed(f"bucket-policy/{bucket}", "removed trailkeeper statements")
            else:
                remaining = observed.policy
            if observed.tags.get(OWNER_TAG) == self.request.owner and not _foreign_owned(remaining):
                if client.delete_if_empty(bucket):
                    self._changed(f"bucket/{bucket}", "deleted (empty)")
                else:
                    self._changed(f"bucket/{bucket}", "kept: it holds log files")


def _apply_tags(
    set_tags: Callable[[Mapping[str, str], Mapping[str, str]], None],
    change: TagChange,
    actual: Mapping[str, str],
) -> None:
    """A tag change through a client's `set_tags(desired, actual)` (which adds the keys `desired` has
    and removes those only `actual` has): the removals first, then the rest with the record, so a pass
    stopped in between never leaves a key of ours the record does not name."""
    if change.remove:
        set_tags({}, {key: actual[key] for key in change.remove})
    if change.put:
        set_tags(change.put, {})


def _foreign_owned(policy: dict[str, Any] | None) -> bool:
    """Whether another trailkeeper object still has statements in a policy (its bucket/topic is in use)."""
    statements = (policy or {}).get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    sids = [s.get("Sid") for s in statements if isinstance(s, dict)]
    return any(is_trailkeeper_sid(sid) or is_shared_sid(sid) for sid in sids)


def monitoring_part(reconciler: TrailReconciler) -> MonitoringPart | None:
    """The Monitoring part of the pass, when the spec asks for one."""
    request = reconciler.request
    desired = desired_monitoring(
        reconciler.spec,
        trail_name=request.trail_name,
        owner=request.owner,
        account_id=reconciler.account_id,
        partition=reconciler.partition,
    )
    if desired is None:
        return None
    return MonitoringPart(
        desired,
        reconciler.sessions,
        reconciler.account,
        reconciler.spec.regions[0],
        request.owner,
        reconciler._tags(),
        reconciler._diff,
        reconciler._changed,
    )


def reconcile_trail(
    request: TrailRequest,
    sessions: AwsSessions,
    shared: Shared,
    meanwhile: Callable[[TrailOutcome], None] | None = None,
) -> TrailOutcome:
    return TrailReconciler(request, sessions, shared).run(meanwhile)


def delete_trail(request: TrailRequest, sessions: AwsSessions, shared: Shared) -> TrailOutcome:
    return TrailReconciler(request, sessions, shared).delete()


def removed_subscriptions(old: TrailSpec | None, new: TrailSpec) -> tuple[tuple[str, str], ...]:
    """Subscriptions the previous spec had and this one does not (they were ours: we may remove them)."""
    if old is None or old.notifications is None:
        return ()
    keep = {s.key for s in new.notifications.subscriptions} if new.notifications else set()
    return tuple(s.key for s in old.notifications.subscriptions if s.key not in keep)


def removed_topic(old: TrailSpec | None, new: TrailSpec) -> str | None:
    if old is None or old.notifications is None:
        return None
    if new.notifications is not None and new.notifications.topic_name == old.notifications.topic_name:
        return None
    return old.notifications.topic_name
