"""The trail part: one region's trail, its status, event and insight selectors and tags (reconcile/parts.py
seam), with what comes before it (the claim: is the trail of this name ours to manage, the KMS key) and
its deletion.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from botocore.exceptions import ClientError

from trailkeeper.aws.errors import UnexpectedAnswerError, error_code
from trailkeeper.aws.reads import CHANGE_READ_MAX_AGE
from trailkeeper.aws.trails import POLICY_RETRY_DELAYS, TrailClient
from trailkeeper.core.drift import FieldDiff, Fix, diff_tags, diff_trail
from trailkeeper.core.naming import OWNER_TAG
from trailkeeper.core.observed_trail import ObservedTrail
from trailkeeper.core.ownership import OwnerLiveness, takeover_problem
from trailkeeper.core.tags import tag_change
from trailkeeper.core.trail_limit import TRAIL_LIMIT, trail_limit_problem
from trailkeeper.core.trail_settings import DesiredTrail
from trailkeeper.reconcile.errors import RegionFailure
from trailkeeper.reconcile.parts import Observation, PassContext, apply_tags
from trailkeeper.reconcile.shared import Change

# CloudTrail's answer when the bucket's policy does not let it deliver this trail's logs.
BUCKET_POLICY_REFUSED = "InsufficientS3BucketPolicyException"
# The reason of a trail into another account's bucket whose policy does not let this account in.
BUCKET_NOT_GRANTED = "BucketNotGranted"


def trail_client(context: PassContext, region: str, *, policy_retries: bool = True) -> TrailClient:
    """The CloudTrail client of `region`; `policy_retries` False: a bucket policy CloudTrail does not accept
    fails at once (it is not one this pass wrote and that may still be propagating)."""
    delays = POLICY_RETRY_DELAYS if policy_retries else ()
    return TrailClient(
        context.client("cloudtrail", region),
        region,
        context.account_id,
        context.partition,
        policy_retry_delays=delays,
    )


def not_granted(context: PassContext, bucket: str) -> RegionFailure:
    """Why a trail of this account cannot deliver into `bucket`, another account's, and what to do."""
    account, prefix = context.account_id, context.spec.destination.key_prefix
    path = f"{prefix}/AWSLogs/{account}/" if prefix else f"AWSLogs/{account}/"
    return RegionFailure(
        BUCKET_NOT_GRANTED,
        f"bucket {bucket} belongs to another account and its policy does not let CloudTrail write "
        f"account {account}'s logs ({path}): add {account} to destination.sourceAccounts of the Trail "
        f"that owns {bucket} (with keyPrefix {prefix!r}), or have the bucket's owner grant it; "
        "trailkeeper never writes another account's bucket policy",
        # Waits for the bucket's owner: tried again, as a Trail waiting for another object is.
        retryable=True,
    )


def _trails_key(context: PassContext, region: str) -> tuple[str, ...]:
    return ("describe-trails", context.account_id, region)


def _tags_key(context: PassContext, region: str) -> tuple[str, ...]:
    return ("trail-tags", context.account_id, region)


def forget_trails(context: PassContext, region: str) -> None:
    """Drop the shared reads of `region`'s trails after changing one of them."""
    context.shared.cache.invalidate(_trails_key(context, region))
    context.shared.cache.invalidate(_tags_key(context, region))


def observe_trail(
    context: PassContext, client: TrailClient, region: str, want_insights: bool
) -> ObservedTrail | None:
    """The trail of this Trail's name in `region`. A change pass acts on reads at most a couple of seconds
    old (those of a burst of changes are shared), with its own ListTags; a drift check takes the sweep's
    shared reads, tags included (those up to `Shared.tag_read_age` old), and so does a pass that does not
    act (`trailkeeper diff`: the region's tags batched 20 trails a call, whatever number of manifests read
    them)."""
    cache, shared, resync = context.shared.cache, context.shared, context.spec.resync_seconds
    max_age = CHANGE_READ_MAX_AGE if context.deep else shared.shared_read_age(resync)
    described = cache.get(_trails_key(context, region), client.list_names, max_age=max_age)
    # A trail missing from the kept tags (made since) is read on its own by `observe`.
    tags_age = max_age if context.deep else shared.tag_read_age(resync)
    tags = (
        None
        if context.deep and context.act
        else cache.get(_tags_key(context, region), lambda: client.tags_by_arn(described), max_age=tags_age)
    )
    return client.observe(
        context.trail_name, described=described, tags_by_arn=tags, want_insights=want_insights
    )


@dataclass(frozen=True)
class Claim:
    """Who may take over a trail found under this Trail's name."""

    adopt: bool
    owner_alive: OwnerLiveness
    force: bool


def claim(context: PassContext, region: str, who: Claim, want_insights: bool) -> ObservedTrail | None:
    """Observe the trail of this name in `region`; raise Conflict if it is not ours to manage, TrailLimit
    if there is none and the region has no room for it."""
    client = trail_client(context, region)
    observed = observe_trail(context, client, region, want_insights)
    if observed is None:
        # The DescribeTrails answer just read (any age will do: a change in the region drops it).
        described = context.shared.cache.get(
            _trails_key(context, region), client.list_names, max_age=math.inf
        )
        if problem := trail_limit_problem(described, context.account_id, region, context.trail_name):
            raise RegionFailure(TRAIL_LIMIT, problem)
        return None
    check_owner(context, region, observed, who)
    return observed


def check_owner(context: PassContext, region: str, observed: ObservedTrail, who: Claim) -> None:
    """Raise Conflict unless the trail `observed` is this Trail's to manage."""
    if observed.is_shadow:
        raise RegionFailure(
            "Conflict", f"{region} holds a shadow of the multi-region trail {observed.arn} of the same name"
        )
    problem = takeover_problem(
        f"trail {observed.name} in {region}",
        observed.tags.get(OWNER_TAG),
        context.owner,
        adopt=who.adopt,
        alive=who.owner_alive,
        force=who.force,
    )
    if problem:
        raise RegionFailure("Conflict", problem)


def resolve_kms(context: PassContext, region: str) -> str | None:
    """Look the spec's KMS key up in `region` before anything is made there: a key or alias that does not
    exist fails the region now, not after a bucket was created with it as default encryption. The key
    ARN an alias names (CloudTrail reports the ARN, which is compared), else None.

    An alias is looked up on every pass; a key id or ARN only on change passes, so a drift check makes no
    KMS call for it.
    """
    key = context.spec.destination.kms_key_id
    if not key:
        return None
    alias = key.startswith("alias/") or ":alias/" in key
    if not (alias or context.deep):
        return None
    try:
        metadata = context.client("kms", region).describe_key(KeyId=key).get("KeyMetadata") or {}
    except ClientError as error:
        if error_code(error) == "NotFoundException":
            raise RegionFailure(
                "KmsKeyNotFound", f"KMS key {key} does not exist in {region}; nothing was made with it"
            ) from error
        raise
    if not metadata.get("Arn"):
        raise UnexpectedAnswerError("DescribeKey", f"it holds no key ARN for {key}")
    return str(metadata["Arn"]) if alias else None


@dataclass
class TrailPart:
    """One region's trail: made when missing (then its selectors put and logging started), else its
    settings, selectors, insights, tags (ours only) and logging put back where they differ."""

    context: PassContext
    client: TrailClient
    region: str
    # Observed by the claim in this pass, before the bucket and topic were put in place.
    observed: ObservedTrail | None

    def observe(self, desired: DesiredTrail) -> Observation[DesiredTrail, ObservedTrail | None]:
        resource = f"trail/{self.region}"
        observed = self.observed
        if observed is None:
            missing = [FieldDiff(resource, "Exists", "true", "false", Fix.CREATE)]
            return Observation(resource, False, desired, None, missing)
        removed = self.context.removed_tags
        diffs = [d for d in diff_trail(desired, observed, resource=resource) if d.fix != Fix.SET_TAGS]
        diffs += diff_tags(resource, desired.tags, observed.tags, removed)
        return Observation(resource, True, desired, observed, diffs)

    def apply(self, observation: Observation[DesiredTrail, ObservedTrail | None]) -> list[Change]:
        desired, observed = observation.desired, observation.observed
        if observed is None:
            return self._create(desired, observation.resource)
        if not self.context.deep:
            observed = self._owned_now(observed)
        fixes = {d.fix for d in observation.diffs}
        changes = []
        if Fix.UPDATE_TRAIL in fixes:
            self.client.update_settings(desired)
            settings = sorted({d.field for d in observation.diffs if d.fix == Fix.UPDATE_TRAIL})
            changes.append("updated " + ", ".join(settings))
        if Fix.PUT_EVENT_SELECTORS in fixes:
            self.client.put_event_selectors(desired)
            changes.append("put event selectors")
        if Fix.PUT_INSIGHT_SELECTORS in fixes:
            self.client.put_insight_selectors(desired.name, list(desired.insight_selectors))
            changes.append("put insight selectors")
        if Fix.SET_TAGS in fixes:
            # Only our keys are compared: tags others put on the trail are theirs and stay.
            change = tag_change(desired.tags, observed.tags, self.context.removed_tags)
            apply_tags(
                lambda want, have: self.client.set_tags(observed.arn, want, have), change, observed.tags
            )
            changes.append("set tags")
        if Fix.SET_LOGGING in fixes:
            self.client.set_logging(desired.name, desired.logging)
            changes.append("started logging" if desired.logging else "stopped logging")
        forget_trails(self.context, self.region)
        return [Change(observation.resource, action) for action in changes]

    def _owned_now(self, observed: ObservedTrail) -> ObservedTrail:
        """`observed` with its tags read afresh, before a drift check corrects the trail: it compared tags
        it may have kept (Shared.tag_read_age), and nothing is written on a kept read of the owner."""
        tags = self.client.tags(observed.arn)
        if (owner := tags.get(OWNER_TAG)) not in (None, self.context.owner):
            # The kept tags were wrong: the next check reads them afresh (and finds the owner at its claim).
            self.context.shared.cache.invalidate(_tags_key(self.context, self.region))
            raise RegionFailure(
                "Conflict", f"trail {observed.name} in {self.region} is now owned by {owner}; left as it is"
            )
        return dataclasses.replace(observed, tags=tags)

    def _create(self, desired: DesiredTrail, resource: str) -> list[Change]:
        context = self.context
        # One creator of a name per account and region in this process; across processes CloudTrail's own
        # TrailAlreadyExistsException decides, and create() checks whose the existing trail is.
        with context.shared.locks.hold(f"cloudtrail:{context.account_id}:{desired.region}:{desired.name}"):
            self.client.create(desired)
        forget_trails(context, desired.region)
        changes = [Change(resource, f"created trail {desired.name}")]
        self.client.put_event_selectors(desired)
        if desired.insight_selectors:
            self.client.put_insight_selectors(desired.name, list(desired.insight_selectors))
        if desired.logging:
            # A trail made through the API does not log until StartLogging.
            self.client.set_logging(desired.name, True)
            changes.append(Change(resource, "started logging"))
        return changes


def with_kms_arn(desired: DesiredTrail, kms_arn: str | None) -> DesiredTrail:
    """CloudTrail reports the key ARN; an alias in the spec is resolved to it before comparing, or every
    pass would see a difference and rewrite the trail."""
    return dataclasses.replace(desired, kms_key_id=kms_arn) if kms_arn and desired.kms_key_id else desired


def delete_trail_in(context: PassContext, region: str, want_insights: bool) -> ObservedTrail | None:
    """Delete this Trail's trail in `region` (never a shadow, never another owner's); the trail of this
    name when another owner holds it (its grants in a shared bucket are not ours to take out)."""
    client = trail_client(context, region)
    observed = observe_trail(context, client, region, want_insights)
    if observed is None or observed.is_shadow:
        return None
    if observed.tags.get(OWNER_TAG) != context.owner:
        return observed
    if context.act:
        client.delete(observed.name)
        forget_trails(context, region)
        context.changed(f"trail/{region}", f"deleted trail {observed.name}")
    return None
