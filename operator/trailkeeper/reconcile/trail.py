"""Reconcile one Trail: a loop over its AWS parts, with one failure guard per region.

The parts (reconcile/parts.py: observe(desired) -> Observation, apply(observation)) are the bucket, its
settings, tags and policy (bucket_parts.py), the topic with its policy and its subscriptions
(topic_parts.py), the trail (trail_part.py) and the Monitoring section (monitoring.py). Every pass
observes AWS afresh, the pure core computes the differences, and a part acts only when there is one and
the pass acts (a Report-only drift check and `trailkeeper diff` observe and report). One failing region
does not stop the others; its error is kept in its outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from botocore.exceptions import ClientError

from trailkeeper.api.common import AccountRef as AccountSpec
from trailkeeper.api.common import DeletionPolicy
from trailkeeper.api.trail import TrailSpec
from trailkeeper.aws.errors import classify, error_code
from trailkeeper.aws.session import ROLE_SESSION_NAME, AccountRef, AwsSessions, role_session_name
from trailkeeper.aws.trails import TrailNameTakenError
from trailkeeper.core.drift import FieldDiff
from trailkeeper.core.monitoring_desired import desired_monitoring
from trailkeeper.core.naming import owner_key
from trailkeeper.core.observed_trail import ObservedTrail
from trailkeeper.core.ownership import OwnerLiveness, unknown_liveness
from trailkeeper.core.trail_settings import DesiredTrail, desired_trails
from trailkeeper.core.trail_settings import partition_for_region as partition_of
from trailkeeper.reconcile.bucket_parts import reconcile_bucket, release_bucket
from trailkeeper.reconcile.errors import AWS_ERRORS, RegionFailure
from trailkeeper.reconcile.monitoring import MonitoringPart
from trailkeeper.reconcile.parts import PassContext, run_part
from trailkeeper.reconcile.shared import Change, Shared
from trailkeeper.reconcile.topic_parts import delete_topic, reconcile_topic, release_topic
from trailkeeper.reconcile.trail_part import (
    BUCKET_POLICY_REFUSED,
    Claim,
    TrailPart,
    check_owner,
    claim,
    delete_trail_in,
    forget_trails,
    not_granted,
    resolve_kms,
    trail_client,
    with_kms_arn,
)
from trailkeeper.reconcile.verified_write import Confirmations

T = TypeVar("T")


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
    # The previous spec, when it had a Monitoring section and this one has none: the owner's filters,
    # alarms and delivery role it made are taken away (deletionPolicy Delete), the log group kept.
    removed_monitoring: TrailSpec | None = None
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


def pass_context(request: TrailRequest, sessions: AwsSessions, shared: Shared) -> PassContext:
    spec = request.spec
    account = account_ref(spec.account, role_session_name(request.namespace, request.name))
    return PassContext(
        namespace=request.namespace,
        owner=request.owner,
        trail_name=request.trail_name,
        spec=spec,
        sessions=sessions,
        shared=shared,
        account=account,
        account_id=sessions.account_id(account),
        partition=partition_of(spec.regions[0]),
        act=request.act,
        deep=request.deep,
        removed_tags=request.removed_tags,
        removed_subscriptions=request.removed_subscriptions,
        confirmations=Confirmations(shared.write_policy),
    )


class TrailReconciler:
    """One pass over one Trail. Construct, call `run()` (or `delete()`), read the outcome."""

    def __init__(self, request: TrailRequest, sessions: AwsSessions, shared: Shared) -> None:
        self.request = request
        self.spec = request.spec
        self.context = context = pass_context(request, sessions, shared)
        self.desired = {
            d.region: d for d in desired_trails(self.spec, name=context.trail_name, owner=context.owner)
        }
        self.monitoring = monitoring_part(context)
        if self.monitoring is not None:
            self.desired = self.monitoring.desired.wire(self.desired)
        regions = [RegionOutcome(region=r, bucket=self.spec.bucket_for(r)) for r in self.desired]
        self.outcome = TrailOutcome(
            context.account_id, context.trail_name, regions, context.diffs, context.changes
        )
        self.by_region = {r.region: r for r in self.outcome.regions}
        self._claims: dict[str, ObservedTrail | None] = {}
        # Trails of this name another owner made after the claim looked (found at CreateTrail).
        self._rivals: dict[str, ObservedTrail] = {}
        self._kms_arns: dict[str, str | None] = {}
        # Buckets of another account the trails deliver into (nothing of them is read or written).
        self._foreign: set[str] = set()

    def _buckets(self) -> dict[str, list[str]]:
        """Each bucket and the regions delivering to it; a shared bucket lives in the first of them."""
        buckets: dict[str, list[str]] = {}
        for region in self.desired:
            buckets.setdefault(self.spec.bucket_for(region), []).append(region)
        return buckets

    def _insights(self, region: str) -> bool:
        return bool(self.desired[region].insight_selectors) if region in self.desired else True

    def run(self, meanwhile: Callable[[TrailOutcome], None] | None = None) -> TrailOutcome:
        """The pass; `meanwhile` (the compliance evaluation) runs once AWS is in place, while the shared
        documents written settle, before they are confirmed."""
        # Trails of this name owned by someone else are found first: nothing (bucket, topic, policy
        # statement) is made for a region that ends in Conflict.
        for region, outcome in self.by_region.items():
            _guard(outcome, partial(self._claim, region, outcome))
            if outcome.failure is None:
                self._kms_arns[region] = _guard(outcome, partial(resolve_kms, self.context, region))
        for bucket, all_regions in self._buckets().items():
            regions = [r for r in all_regions if self.by_region[r].failure is None]
            if not regions:
                continue
            probe = RegionOutcome(region=regions[0])
            claimed = all(self._claims.get(r) is not None for r in regions)
            if _guard(probe, partial(reconcile_bucket, self.context, bucket, regions, claimed)):
                self._foreign.add(bucket)
            # A trail cannot deliver without its bucket: those regions stop here, the others go on.
            for region in regions if probe.failure is not None else []:
                self.by_region[region].failure = probe.failure
        ready = [region for region, outcome in self.by_region.items() if outcome.failure is None]
        if self.monitoring is None:  # its delivery role is made by the first region, once per pass
            self.context.shared.each_region(
                lambda region: self._region(region, self.by_region[region]), ready
            )
        else:
            for region in ready:
                self._region(region, self.by_region[region])
        for region in self.request.removed_regions:
            if region not in self.desired and self.spec.deletion_policy == DeletionPolicy.DELETE:
                _guard(RegionOutcome(region=region), partial(delete_trail_in, self.context, region, True))
        self._withdraw()
        self._remove_monitoring()
        if meanwhile is not None:
            meanwhile(self.outcome)
        # The confirming reads of the shared documents this pass wrote: a region whose bucket or topic
        # policy another writer undid (and every attempt to put it back failed) fails with LostUpdate.
        for lost, failure in self.context.confirmations.confirm():
            for region in lost:
                if self.by_region[region].failure is None:
                    self.by_region[region].failure = failure
        return self.outcome

    def _withdraw(self) -> None:
        """Take back what this pass put in a bucket's policy for regions whose trail name another writer
        took meanwhile: the statements and the share entry were written for a trail this Trail does not
        have (and would otherwise stay, granting nothing anyone asked for)."""
        for bucket, regions in self._buckets().items():
            if not all(r in self._rivals for r in regions):
                continue
            self.context.confirmations.forget(tuple(regions))
            rival = self._rivals[regions[0]]
            _guard(
                RegionOutcome(region=regions[0]),
                partial(release_bucket, self.context, bucket, regions[0], rival, False),
            )

    def _region(self, region: str, outcome: RegionOutcome) -> None:
        """A region's parts after its bucket: topic, the old topic released, monitoring, trail, alarms."""
        context, monitoring = self.context, self.monitoring
        steps: list[Callable[[], object]] = []
        if self.spec.notifications is not None:
            steps.append(partial(self._topic, region, outcome))
        if self.request.removed_topic:
            steps.append(partial(release_topic, context, region, self.request.removed_topic))
        if monitoring is not None:
            steps.append(partial(monitoring.deliver, region))
        steps.append(partial(self._deliver, region, outcome))
        if monitoring is not None:
            steps.append(partial(monitoring.alarms, region))
        for step in steps:
            _guard(outcome, step)
            if outcome.failure is not None:
                return

    def _topic(self, region: str, outcome: RegionOutcome) -> None:
        outcome.topic_arn = reconcile_topic(self.context, region)

    def _claim(self, region: str, outcome: RegionOutcome) -> None:
        who = Claim(self.spec.adopt, self.request.owner_alive, self.request.force_adopt)
        observed = claim(self.context, region, who, self._insights(region))
        self._claims[region] = observed
        if observed is not None:
            # Checked first (in claim): a trail in conflict is another Trail's, its ARN not ours to show.
            outcome.trail_arn = observed.arn
            outcome.latest_delivery_error = observed.latest_delivery_error
            outcome.is_logging = observed.is_logging

    def _deliver(self, region: str, outcome: RegionOutcome) -> None:
        """The region's trail; into another account's bucket, a policy that does not let this account in
        is said as such (the bucket's owner must grant it), not as a policy still propagating."""
        try:
            self._trail(region, outcome)
        except ClientError as error:
            bucket = self.desired[region].bucket
            if bucket not in self._foreign or error_code(error) != BUCKET_POLICY_REFUSED:
                raise
            raise not_granted(self.context, bucket) from error

    def _trail(self, region: str, outcome: RegionOutcome) -> None:
        context = self.context
        desired: DesiredTrail = with_kms_arn(self.desired[region], self._kms_arns.get(region))
        # No policy propagation to wait for in another account's bucket: this pass wrote none.
        client = trail_client(context, region, policy_retries=desired.bucket not in self._foreign)
        observed = self._claims.get(region)
        if observed is None:
            outcome.trail_arn = context.arn(region)
        try:
            seen = run_part(context, TrailPart(context, client, region, observed), desired)
        except TrailNameTakenError:
            # Made by another writer since the claim looked: checked like any trail found there.
            forget_trails(context, region)
            found = client.observe(context.trail_name)
            if found is None:
                raise
            outcome.trail_arn = None
            try:
                check_owner(
                    context,
                    region,
                    found,
                    Claim(self.spec.adopt, self.request.owner_alive, self.request.force_adopt),
                )
            except RegionFailure:
                self._rivals[region] = found
                raise
            outcome.trail_arn = found.arn
            seen = run_part(context, TrailPart(context, client, region, found), desired)
        if seen.diffs and context.act:
            outcome.is_logging = desired.logging

    def _remove_monitoring(self) -> None:
        """The Monitoring the previous spec had, once the trails no longer deliver through it."""
        old = self.request.removed_monitoring
        if old is None or not self.context.act or self.spec.deletion_policy != DeletionPolicy.DELETE:
            return
        removed = monitoring_part(self.context, old)
        if removed is None or self.monitoring is not None:
            return
        failed = False
        for region in removed.desired.groups:
            outcome = self.by_region.get(region) or RegionOutcome(region=region)
            if outcome.failure is None:
                _guard(outcome, partial(removed.delete, region))
            failed = failed or outcome.failure is not None
        if not failed:  # a trail still wired to the role would stop delivering
            _guard(self.outcome.regions[0], removed.delete_role)

    def delete(self) -> TrailOutcome:
        """deletionPolicy Delete: remove the trails, our statements and subscriptions, and our empty buckets.

        Never a bucket that holds objects, nor one another owner still writes to.
        """
        if self.spec.deletion_policy != DeletionPolicy.DELETE:
            return self.outcome
        context, monitoring = self.context, self.monitoring
        rivals: dict[str, ObservedTrail] = {}
        for region, outcome in self.by_region.items():
            rival = _guard(outcome, partial(delete_trail_in, context, region, self._insights(region)))
            if rival is not None:
                rivals[region] = rival
            if self.spec.notifications is not None and outcome.failure is None:
                _guard(outcome, partial(delete_topic, context, region))
            if monitoring is not None and outcome.failure is None:
                _guard(outcome, partial(monitoring.delete, region))
        if monitoring is not None and not self.outcome.failures:
            _guard(self.outcome.regions[0], monitoring.delete_role)
        for region in sorted(set(self.request.sweep_regions) - set(self.by_region)):
            swept = RegionOutcome(region=region)
            _guard(swept, partial(delete_trail_in, context, region, True))
            if swept.failure is not None:
                self.outcome.regions.append(swept)  # holds the deletion until that region answers
        for bucket, regions in self._buckets().items():
            rival = next((rivals[r] for r in regions if r in rivals), None)
            _guard(self.by_region[regions[0]], partial(release_bucket, context, bucket, regions[0], rival))
        return self.outcome


def monitoring_part(context: PassContext, spec: TrailSpec | None = None) -> MonitoringPart | None:
    """The Monitoring part of the pass, when the spec (or the given earlier `spec`) asks for one."""
    spec = spec or context.spec
    desired = desired_monitoring(
        spec,
        trail_name=context.trail_name,
        owner=context.owner,
        account_id=context.account_id,
        partition=context.partition,
    )
    if desired is None:
        return None
    return MonitoringPart(desired, context, spec.regions[0])


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


def removed_monitoring(old: TrailSpec | None, new: TrailSpec) -> TrailSpec | None:
    """The previous spec when it had a Monitoring section and `new` has none."""
    return old if old is not None and old.monitoring is not None and new.monitoring is None else None


def removed_topic(old: TrailSpec | None, new: TrailSpec) -> str | None:
    if old is None or old.notifications is None:
        return None
    if new.notifications is not None and new.notifications.topic_name == old.notifications.topic_name:
        return None
    return old.notifications.topic_name
