"""Reconcile one LogRetention: its own lifecycle rule on each target bucket, every other rule left alone.

The rule is a part on the seam of reconcile/parts.py (``LifecycleRulePart``: observe → typed diff →
apply), written as a shared document (reconcile/verified_write.py) and confirmed at the end of the pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trailkeeper.api.logretention import LogRetentionSpec
from trailkeeper.api.trail import TrailSpec
from trailkeeper.aws.buckets import PART_LIFECYCLE, BucketClient
from trailkeeper.aws.errors import classify
from trailkeeper.aws.session import AwsSessions, role_session_name
from trailkeeper.core.drift import FieldDiff, Fix, diff_lifecycle_rule
from trailkeeper.core.lifecycle import default_prefix, desired_lifecycle_rule
from trailkeeper.core.merge import merge_lifecycle_rules
from trailkeeper.core.naming import lifecycle_rule_id
from trailkeeper.reconcile.errors import AWS_ERRORS, RegionFailure
from trailkeeper.reconcile.parts import Observation, run_part
from trailkeeper.reconcile.shared import Change, Shared
from trailkeeper.reconcile.trail import account_ref
from trailkeeper.reconcile.verified_write import Confirmations, SharedDocument, write_verified


@dataclass(frozen=True)
class RetentionTarget:
    """A bucket a LogRetention keeps, its region (None: look it up) and the key prefix its rule covers."""

    bucket: str
    region: str | None
    prefix: str


def targets_of_trail(trail: TrailSpec, prefix: str | None) -> list[RetentionTarget]:
    """The buckets of a Trail (one per region with `{region}`), each in the first region delivering to it."""
    targets: dict[str, RetentionTarget] = {}
    rule_prefix = prefix if prefix is not None else default_prefix(trail.destination.key_prefix)
    for region in trail.regions:
        bucket = trail.bucket_for(region)
        targets.setdefault(bucket, RetentionTarget(bucket, region, rule_prefix))
    return list(targets.values())


def targets_of_spec(spec: LogRetentionSpec) -> list[RetentionTarget]:
    """Targets of a LogRetention that names its bucket itself."""
    assert spec.bucket is not None
    return [RetentionTarget(spec.bucket, spec.region, spec.prefix if spec.prefix is not None else "AWSLogs/")]


@dataclass(frozen=True)
class RetentionRequest:
    namespace: str
    name: str
    spec: LogRetentionSpec
    targets: tuple[RetentionTarget, ...]
    act: bool = True
    # Buckets the previous targets had and these don't (the Trail's bucket changed): take our rule off.
    removed_targets: tuple[RetentionTarget, ...] = ()

    @property
    def rule_id(self) -> str:
        return lifecycle_rule_id(self.namespace, self.name)


@dataclass
class BucketOutcome:
    bucket: str
    region: str | None
    rule_id: str
    failure: RegionFailure | None = None


@dataclass
class RetentionOutcome:
    buckets: list[BucketOutcome]
    diffs: list[FieldDiff] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    @property
    def failures(self) -> list[RegionFailure]:
        return [b.failure for b in self.buckets if b.failure is not None]


Rule = dict[str, Any] | None
Rules = list[dict[str, Any]]


@dataclass
class RetentionPass:
    """What the lifecycle parts of one LogRetention pass share (reconcile/parts.py's ``Pass``)."""

    shared: Shared
    act: bool
    confirmations: Confirmations
    diffs: list[FieldDiff]
    changes: list[Change]

    def report(self, diffs: list[FieldDiff]) -> bool:
        self.diffs.extend(diffs)
        return bool(diffs) and self.act


@dataclass
class LifecycleRulePart:
    """This LogRetention's rule in one bucket's lifecycle configuration (desired None: the rule absent);
    every other rule is left as it is. Observed and applied under the bucket's lock."""

    run: RetentionPass
    client: BucketClient
    bucket: str
    rule_id: str

    @property
    def resource(self) -> str:
        return f"lifecycle/{self.bucket}"

    def observe(self, desired: Rule) -> Observation[Rule, Rules]:
        observed = self.client.observe(self.bucket, parts={PART_LIFECYCLE})
        if not observed.exists and desired is not None:
            # Retryable: the Trail that delivers there may not have created it yet.
            raise RegionFailure("NoSuchBucket", f"bucket {self.bucket} does not exist", retryable=True)
        # A bucket that is gone holds no rule of ours: nothing to remove.
        rules = observed.lifecycle_rules if observed.exists else []
        diffs: list[FieldDiff] = []
        if desired is not None:
            diffs = diff_lifecycle_rule(self.resource, desired, rules)
        elif any(r.get("ID") == self.rule_id for r in rules):
            rule = f"Rule[{self.rule_id}]"
            diffs = [FieldDiff(self.resource, rule, "(none)", "present", Fix.REMOVE_LIFECYCLE_RULE)]
        return Observation(self.resource, observed.exists, desired, rules, diffs)

    def apply(self, observation: Observation[Rule, Rules]) -> list[Change]:
        run, bucket, lock = self.run, self.bucket, f"s3:{self.bucket}"
        write_verified(
            self._document(observation.desired),
            observation.observed,
            run.shared.write_policy,
            later=lambda document: run.confirmations.add(
                document, (bucket,), lambda: run.shared.locks.hold(lock)
            ),
        )
        put = observation.desired is not None
        action = f"put rule {self.rule_id}" if put else f"removed rule {self.rule_id}"
        return [Change(self.resource, action)]

    def _document(self, desired: Rule) -> SharedDocument[Rules]:
        """The lifecycle configuration as a shared document: this object's rule becomes `desired`
        (None: absent), every other rule is kept as read."""

        def holds(rules: Rules) -> bool:
            if desired is None:
                return not any(r.get("ID") == self.rule_id for r in rules)
            return not diff_lifecycle_rule(self.resource, desired, rules)

        return SharedDocument(
            resource=self.resource,
            read=lambda: self.client.observe(self.bucket, parts={PART_LIFECYCLE}).lifecycle_rules,
            merge=lambda rules: merge_lifecycle_rules(rules, self.rule_id, desired),
            write=lambda rules: self.client.put_lifecycle(rules, bucket=self.bucket),
            holds=holds,
        )


class RetentionReconciler:
    """One pass over one LogRetention: a loop over its buckets' lifecycle parts, one failure guard per
    bucket, the configurations written confirmed together at the end."""

    def __init__(self, request: RetentionRequest, sessions: AwsSessions, shared: Shared) -> None:
        self.request = request
        self.sessions = sessions
        self.shared = shared
        self.account = account_ref(request.spec.account, role_session_name(request.namespace, request.name))
        # The lifecycle configurations written, confirmed together once every bucket is done.
        self.confirmations = Confirmations(shared.write_policy)

    def _client(self, target: RetentionTarget) -> tuple[BucketClient, str]:
        region = target.region
        if region is None:
            # An explicit bucket without a region: ask S3 where it lives (any regional endpoint answers).
            home = self.sessions.default_region or "us-east-1"
            probe = BucketClient(self.sessions.client("s3", home, self.account), home)
            region = probe.region_of(target.bucket)
            if region is None:
                raise RegionFailure("NoSuchBucket", f"bucket {target.bucket} does not exist", retryable=True)
        return BucketClient(self.sessions.client("s3", region, self.account), region), region

    def _each(self, targets: tuple[RetentionTarget, ...], keep: bool) -> RetentionOutcome:
        outcome = RetentionOutcome(buckets=[])
        run = RetentionPass(self.shared, self.request.act, self.confirmations, outcome.diffs, outcome.changes)
        for target in targets:
            result = BucketOutcome(target.bucket, target.region, self.request.rule_id)
            outcome.buckets.append(result)
            try:
                self._bucket(run, target, result, keep)
            except RegionFailure as failure:
                result.failure = failure
            except AWS_ERRORS as error:
                result.failure = RegionFailure.from_aws(classify(error))
        for buckets, lost in self.confirmations.confirm():
            for result in outcome.buckets:
                if result.bucket in buckets and result.failure is None:
                    result.failure = lost
        return outcome

    def _bucket(self, run: RetentionPass, target: RetentionTarget, result: BucketOutcome, keep: bool) -> None:
        try:
            client, region = self._client(target)
        except RegionFailure:
            if not keep:
                return  # the bucket is gone, and our rule with it
            raise
        result.region = region
        rule_id = self.request.rule_id
        spec = self.request.spec
        desired = desired_lifecycle_rule(rule_id=rule_id, prefix=target.prefix, spec=spec) if keep else None
        with self.shared.locks.hold(f"s3:{target.bucket}"):
            run_part(run, LifecycleRulePart(run, client, target.bucket, rule_id), desired)

    def run(self) -> RetentionOutcome:
        outcome = self._each(self.request.targets, keep=True)
        if self.request.removed_targets and self.request.act:
            released = self._each(self.request.removed_targets, keep=False)
            outcome.changes.extend(released.changes)
        return outcome

    def delete(self) -> RetentionOutcome:
        """deletionPolicy Delete: remove only this object's own rule from each bucket."""
        return self._each(self.request.targets, keep=False)


def reconcile_log_retention(
    request: RetentionRequest, sessions: AwsSessions, shared: Shared
) -> RetentionOutcome:
    return RetentionReconciler(request, sessions, shared).run()


def delete_log_retention(
    request: RetentionRequest, sessions: AwsSessions, shared: Shared
) -> RetentionOutcome:
    return RetentionReconciler(request, sessions, shared).delete()
