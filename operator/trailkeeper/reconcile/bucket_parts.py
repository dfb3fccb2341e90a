"""The bucket's parts: the bucket itself, its settings, its tags and its policy (reconcile/parts.py seam).

All four work from one read of the bucket, made by ``BucketPart.observe`` under the bucket's lock; the
others are given it and observe against their own desired state. Only a bucket this Trail created has
its settings and tags managed; the policy's trailkeeper statements are managed in any bucket.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from trailkeeper.aws.buckets import (
    ALL_PARTS,
    FOREIGN_BUCKET_MAX_AGE,
    PART_HEAD,
    PART_LIFECYCLE,
    PART_LOGGING,
    PART_POLICY,
    PART_TAGS,
    PART_VERSIONING,
    BucketClient,
    ObservedBucket,
    foreign_bucket_key,
)
from trailkeeper.core.bucket_policy import desired_bucket_statements
from trailkeeper.core.bucket_share import (
    BUCKET_POLICY_MAX_BYTES,
    add_share,
    has_share,
    policy_bytes,
    remove_share,
    share_diffs,
    too_large_message,
)
from trailkeeper.core.drift import FieldDiff, Fix, diff_statements, diff_tags
from trailkeeper.core.merge import merge_statements, owner_statements, remove_owner_statements
from trailkeeper.core.naming import OWNER_TAG
from trailkeeper.core.observed_trail import ObservedTrail
from trailkeeper.core.tags import tag_change
from trailkeeper.reconcile.errors import RegionFailure
from trailkeeper.reconcile.parts import Observation, PassContext, foreign_owned, run_part
from trailkeeper.reconcile.shared import Change
from trailkeeper.reconcile.verified_write import SharedDocument

Statements = list[dict[str, Any]]
Policy = dict[str, Any] | None
_PUBLIC_ACCESS_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


# What a change pass compares of a bucket: all but its access logging, which is CIS 3.6's (the compliance
# observation reads it) and no part of a spec. No HeadBucket either: the first part read answers
# NoSuchBucket, or 403 for another account's bucket, as HeadBucket would.
_PASS_PARTS = frozenset(ALL_PARTS) - {PART_LOGGING, PART_HEAD}
# What releasing a bucket needs: whether it is there and the caller's, its policy and its owner tag.
_RELEASE_PARTS = frozenset({PART_HEAD, PART_POLICY, PART_TAGS})


def _foreign_key(context: PassContext, bucket: str) -> tuple[str, ...]:
    return foreign_bucket_key(context.account_id, bucket)


def _not_readable(bucket: str, account_id: str) -> str:
    return (
        f"bucket {bucket} belongs to another account (or account {account_id} may not read it); "
        "to deliver into another account's bucket set destination.createBucket: false and have the "
        f"bucket's Trail list {account_id} in its destination.sourceAccounts"
    )


@dataclass
class BucketPart:
    """The bucket: made when missing (if the spec lets trailkeeper create it). Another account's bucket
    (S3 answers 403 to every read of it) is used as it is when the spec does not ask to create it: its
    policy and settings are its owner's, and CreateTrail tells whether its policy lets this account in."""

    context: PassContext
    client: BucketClient
    home: str

    def observe(self, bucket: str) -> Observation[str, ObservedBucket]:
        context = self.context
        resource = f"bucket/{bucket}"
        uses_existing = not context.spec.destination.create_bucket
        if (
            uses_existing
            and not context.deep
            and context.shared.cache.peek(_foreign_key(context, bucket), FOREIGN_BUCKET_MAX_AGE)
        ):
            foreign = ObservedBucket(name=bucket, region=self.home, exists=True, owned_by_caller=False)
            return Observation(resource, True, bucket, foreign)
        parts = _PASS_PARTS if context.deep else {PART_POLICY, PART_TAGS}
        observed = self.client.observe(bucket, parts=parts)
        if not observed.exists:
            if not context.spec.destination.create_bucket:
                raise RegionFailure(
                    "NoSuchBucket", f"bucket {bucket} does not exist and createBucket is false"
                )
            missing = [FieldDiff(resource, "Exists", "true", "false", Fix.CREATE)]
            return Observation(resource, False, bucket, observed, missing)
        if not observed.owned_by_caller:
            if not uses_existing:
                raise RegionFailure("AccessDenied", _not_readable(bucket, context.account_id))
            context.shared.cache.put(_foreign_key(context, bucket), True)
            return Observation(resource, True, bucket, observed)
        diffs = []
        if context.deep and self._interrupted_creation(observed):
            diffs.append(FieldDiff(resource, f"Tags.{OWNER_TAG}", context.owner, "None", Fix.FINISH_CREATION))
        return Observation(resource, True, bucket, observed, diffs)

    def apply(self, observation: Observation[str, ObservedBucket]) -> list[Change]:
        bucket, context = observation.desired, self.context
        fixes = {d.fix for d in observation.diffs}
        if Fix.CREATE in fixes:
            kms_key_id = context.spec.destination.kms_key_id
            self.client.create(bucket, region=self.home, kms_key_id=kms_key_id, tags=context.tags())
            return [Change(observation.resource, f"created in {self.home}")]
        if Fix.FINISH_CREATION in fixes:
            self.client.put_tags(bucket, context.tags())
            return [Change(observation.resource, "finished an interrupted creation: tagged")]
        return []

    def _interrupted_creation(self, observed: ObservedBucket) -> bool:
        """Whether `observed` is a bucket this Trail's pass created and was stopped before tagging.

        CreateBucket cannot tag, so a kill between it and PutBucketTagging leaves a blank bucket. One that
        the spec asks trailkeeper to create, with no tags, policy, versioning, lifecycle rule or object, is
        taken as that creation and finished; any trace of use makes it someone else's bucket.
        """
        return (
            self.context.spec.destination.create_bucket
            and {PART_TAGS, PART_POLICY, PART_VERSIONING, PART_LIFECYCLE} <= observed.parts_read
            and not observed.tags
            and observed.policy is None
            and observed.versioning is None
            and not observed.lifecycle_rules
            and self.client.is_empty(observed.name)
        )


@dataclass(frozen=True)
class BucketSettings:
    """What trailkeeper keeps on a bucket it created: its public-access block, versioning, encryption."""

    sse_algorithm: str
    kms_key_id: str | None


@dataclass
class BucketSettingsPart:
    context: PassContext
    client: BucketClient
    read: ObservedBucket

    def observe(self, desired: BucketSettings) -> Observation[BucketSettings, ObservedBucket]:
        observed = self.read
        resource = f"bucket/{observed.name}"
        diffs: list[FieldDiff] = []
        restore = Fix.RESTORE_BUCKET_SETTINGS
        block = observed.public_access_block or {}
        for flag in _PUBLIC_ACCESS_FLAGS:
            if block.get(flag) is not True:
                flag_now = str(block.get(flag)).lower()
                diffs.append(FieldDiff(resource, f"PublicAccessBlock.{flag}", "true", flag_now, restore))
        if observed.versioning != "Enabled":
            diffs.append(FieldDiff(resource, "Versioning", "Enabled", str(observed.versioning), restore))
        have = (observed.encryption or {}).get("SSEAlgorithm")
        if have != desired.sse_algorithm:
            diffs.append(
                FieldDiff(resource, "Encryption.SSEAlgorithm", desired.sse_algorithm, str(have), restore)
            )
        return Observation(resource, True, desired, observed, diffs)

    def apply(self, observation: Observation[BucketSettings, ObservedBucket]) -> list[Change]:
        kms_key_id = observation.desired.kms_key_id
        corrected = self.client.ensure_settings(observation.observed, kms_key_id=kms_key_id)
        restored = corrected or [d.field for d in observation.diffs]
        return [Change(observation.resource, "restored " + ", ".join(restored))]


@dataclass
class BucketTagsPart:
    """The spec's tags on a bucket this Trail created; others' tags stay (core/tags.py)."""

    context: PassContext
    client: BucketClient
    read: ObservedBucket

    def observe(self, desired: dict[str, str]) -> Observation[dict[str, str], dict[str, str]]:
        resource = f"bucket/{self.read.name}"
        diffs = diff_tags(resource, desired, self.read.tags, self.context.removed_tags)
        return Observation(resource, True, desired, self.read.tags, diffs)

    def apply(self, observation: Observation[dict[str, str], dict[str, str]]) -> list[Change]:
        # PutBucketTagging replaces the whole set: the merged set, others' tags in it, in one call.
        change = tag_change(observation.desired, observation.observed, self.context.removed_tags)
        self.client.put_tags(self.read.name, change.merged)
        return [Change(observation.resource, "set tags")]


@dataclass
class BucketPolicyPart:
    """This Trail's statements (and its share of the shared ones) in the bucket's policy."""

    context: PassContext
    client: BucketClient
    bucket: str
    current: dict[str, Any] | None
    regions: list[str]
    # Whether this Trail's trail exists (and is its own) in every region delivering here: see add_share.
    claimed: bool = True

    def observe(self, desired: Statements) -> Observation[Statements, Policy]:
        resource = f"bucket-policy/{self.bucket}"
        context = self.context
        diffs = diff_statements(resource, desired, self.current, owner=context.owner)
        diffs += share_diffs(resource, self.current, context.share(self.bucket))
        return Observation(resource, self.current is not None, desired, self.current, diffs)

    def apply(self, observation: Observation[Statements, Policy]) -> list[Change]:
        document = bucket_policy(
            self.context, self.client, self.bucket, observation.desired, move=self.claimed
        )
        self.context.write_later(document, self.current, f"s3:{self.bucket}", self.regions)
        return [Change(observation.resource, "put trailkeeper statements")]


def desired_statements(context: PassContext, bucket: str, regions: list[str]) -> list[dict[str, Any]]:
    destination = context.spec.destination
    return desired_bucket_statements(
        owner=context.owner,
        bucket=bucket,
        key_prefix=destination.key_prefix,
        account_id=context.account_id,
        trail_arns=[context.arn(r) for r in regions],
        source_accounts=list(destination.source_accounts),
        organization_id=destination.organization_id,
        partition=context.partition,
    )


def reconcile_bucket(context: PassContext, bucket: str, regions: list[str], claimed: bool = True) -> bool:
    """The bucket of `regions` (it lives in the first), under its lock: one read, then each part.
    `claimed`: this Trail's trail exists in each of `regions` (see BucketPolicyPart). True when the bucket
    is another account's, used as it is: nothing of it is read further or written."""
    home = regions[0]
    client = BucketClient(context.client("s3", home), home)
    with context.shared.locks.hold(f"s3:{bucket}"):
        seen = run_part(context, BucketPart(context, client, home), bucket)
        if seen.exists and not seen.observed.owned_by_caller:
            return True
        read: ObservedBucket | None = seen.observed if seen.exists else None
        if read is not None and {d.fix for d in seen.diffs} == {Fix.FINISH_CREATION} and context.act:
            read = dataclasses.replace(read, tags=context.tags())
        if read is not None and read.tags.get(OWNER_TAG) == context.owner:
            if context.deep:
                kms = context.spec.destination.kms_key_id
                settings = BucketSettings("aws:kms" if kms else "AES256", kms)
                run_part(context, BucketSettingsPart(context, client, read), settings)
            run_part(context, BucketTagsPart(context, client, read), context.tags())
        policy = BucketPolicyPart(context, client, bucket, read.policy if read else None, regions, claimed)
        run_part(context, policy, desired_statements(context, bucket, regions))
    return False


def bucket_policy(
    context: PassContext,
    client: BucketClient,
    bucket: str,
    desired: list[dict[str, Any]] | None,
    move: bool = True,
    keep_share: bool = False,
) -> SharedDocument[dict[str, Any] | None]:
    """The bucket's policy as a shared document: this owner's statements become `desired` (None: none of
    them), every other statement is kept as read. `move`: this Trail's trail is its own (see add_share);
    `keep_share`: a removal leaves the shared statements' entries as they are."""
    owner = context.owner
    resource = f"bucket-policy/{bucket}"
    share = context.share(bucket)

    def merge(policy: dict[str, Any] | None) -> dict[str, Any] | None:
        if desired is None:
            kept = remove_owner_statements(policy, owner)
            return kept if keep_share else remove_share(kept, share, anywhere=move)
        merged = add_share(merge_statements(policy, owner, desired), share, move=move)
        # Refused before the write: S3 would refuse it, and retrying cannot help.
        if policy_bytes(merged) > BUCKET_POLICY_MAX_BYTES:
            raise RegionFailure("PolicyTooLarge", too_large_message(bucket, policy_bytes(merged)))
        return merged

    def holds(policy: dict[str, Any] | None) -> bool:
        if desired is None:
            return not owner_statements(policy, owner) and (
                keep_share or not has_share(policy, share, anywhere=move)
            )
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


def release_bucket(
    context: PassContext, bucket: str, home: str, rival: ObservedTrail | None = None, delete: bool = True
) -> None:
    """Deletion: our statements out of the bucket's policy, and (with `delete`) the bucket itself when it
    is ours, empty and no other owner still writes to it.

    `rival`: a trail of this Trail's name that another owner holds. Its grant is an entry of the same
    trail ARN: under another prefix it stays (only this Trail's prefix is cleared), and when it delivers
    here under this Trail's prefix the entry there is the rival's and stays too."""
    client = BucketClient(context.client("s3", home), home)
    share = context.share(bucket)
    keep_share = rival is not None and (rival.s3_bucket, rival.s3_key_prefix or "") == (
        bucket,
        share.key_prefix,
    )
    document = bucket_policy(context, client, bucket, None, move=rival is None, keep_share=keep_share)
    with context.shared.locks.hold(f"s3:{bucket}"):
        observed = client.observe(bucket, parts=_RELEASE_PARTS)
        if not observed.exists or not observed.owned_by_caller:
            return
        remaining = observed.policy
        if not document.holds(observed.policy):
            remaining = document.merge(observed.policy)
            context.write(document, observed.policy)
            context.changed(f"bucket-policy/{bucket}", "removed trailkeeper statements")
        if delete and observed.tags.get(OWNER_TAG) == context.owner and not foreign_owned(remaining):
            if client.delete_if_empty(bucket):
                context.changed(f"bucket/{bucket}", "deleted (empty)")
            else:
                context.changed(f"bucket/{bucket}", "kept: it holds log files")
