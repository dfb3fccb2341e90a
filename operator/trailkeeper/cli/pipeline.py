"""`apply` and `diff`: one reconcile of manifests straight against AWS, without a cluster."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from trailkeeper.api.logretention import LogRetentionSpec
from trailkeeper.api.manifests import Manifest
from trailkeeper.api.trail import TrailSpec
from trailkeeper.aws.errors import classify
from trailkeeper.aws.session import AwsSessions
from trailkeeper.core.drift import FieldDiff
from trailkeeper.reconcile.errors import AWS_ERRORS, RegionFailure
from trailkeeper.reconcile.logretention import (
    RetentionRequest,
    RetentionTarget,
    reconcile_log_retention,
    targets_of_spec,
    targets_of_trail,
)
from trailkeeper.reconcile.shared import Change, Shared
from trailkeeper.reconcile.trail import TrailRequest, reconcile_trail


@dataclass
class ObjectResult:
    ref: str
    diffs: list[FieldDiff] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    failures: list[RegionFailure] = field(default_factory=list)


def _retention_targets(
    manifest: Manifest, manifests: list[Manifest]
) -> list[RetentionTarget] | RegionFailure:
    spec = manifest.spec
    assert isinstance(spec, LogRetentionSpec)
    if spec.bucket is not None:
        return targets_of_spec(spec)
    assert spec.trail_ref is not None
    for other in manifests:
        if (
            other.kind == "Trail"
            and other.namespace == manifest.namespace
            and other.name == spec.trail_ref.name
        ):
            assert isinstance(other.spec, TrailSpec)
            return targets_of_trail(other.spec, spec.prefix)
    return RegionFailure(
        "TrailNotFound",
        f"trailRef {spec.trail_ref.name!r}: no Trail of that name in the given manifests (pass its file too)",
    )


def run_manifests(
    manifests: list[Manifest], sessions: AwsSessions, *, act: bool, force_adopt: bool = False
) -> Iterator[ObjectResult]:
    """Reconcile (act) or only compare (not act) every manifest, Trails first (retention follows them).

    No cluster is there to say whether the Trail an owner tag names still exists: an owned trail is
    taken over only with `force_adopt` (and `adopt: true` in its manifest)."""
    # Every manifest of the run reads through the one read layer of `sessions` (aws/reads.py).
    shared = Shared(cache=sessions.reads)
    ordered = sorted(manifests, key=lambda m: (m.kind != "Trail", m.namespace, m.name))
    for manifest in ordered:
        result = ObjectResult(manifest.ref)
        try:
            if isinstance(manifest.spec, TrailSpec):
                request = TrailRequest(
                    manifest.namespace, manifest.name, manifest.spec, act=act, force_adopt=force_adopt
                )
                trail_outcome = reconcile_trail(request, sessions, shared)
                result.diffs, result.changes = trail_outcome.diffs, trail_outcome.changes
                result.failures = trail_outcome.failures
            else:
                targets = _retention_targets(manifest, manifests)
                if isinstance(targets, RegionFailure):
                    result.failures = [targets]
                else:
                    retention = RetentionRequest(
                        manifest.namespace, manifest.name, manifest.spec, tuple(targets), act=act
                    )
                    outcome = reconcile_log_retention(retention, sessions, shared)
                    result.diffs, result.changes, result.failures = (
                        outcome.diffs,
                        outcome.changes,
                        outcome.failures,
                    )
        except AWS_ERRORS as error:
            result.failures = [RegionFailure.from_aws(classify(error))]
        yield result
