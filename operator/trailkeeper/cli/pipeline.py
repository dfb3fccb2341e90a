"""`apply` and `diff`: one reconcile of manifests straight against AWS, without a cluster."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial

from trailkeeper.api.logretention import LogRetentionSpec
from trailkeeper.api.manifests import Manifest
from trailkeeper.api.trail import TrailSpec
from trailkeeper.aws.errors import classify
from trailkeeper.aws.session import AwsSessions
from trailkeeper.cli.shared_policies import SharedPolicyWrite, shared_buckets
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
from trailkeeper.reconcile.verified_write import Confirmations


@dataclass
class ObjectResult:
    ref: str
    diffs: list[FieldDiff] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    failures: list[RegionFailure] = field(default_factory=list)


def _followed(manifest: Manifest) -> tuple[str, str] | None:
    """The (namespace, name) of the Trail a LogRetention's trailRef names; None for a bucket given."""
    spec = manifest.spec
    if not isinstance(spec, LogRetentionSpec) or spec.bucket is not None or spec.trail_ref is None:
        return None
    return manifest.namespace, spec.trail_ref.name


def _retention_targets(
    manifest: Manifest, manifests: list[Manifest]
) -> list[RetentionTarget] | RegionFailure:
    spec = manifest.spec
    assert isinstance(spec, LogRetentionSpec)
    followed = _followed(manifest)
    if followed is None:
        return targets_of_spec(spec)
    for other in manifests:
        if other.kind == "Trail" and (other.namespace, other.name) == followed:
            assert isinstance(other.spec, TrailSpec)
            return targets_of_trail(other.spec, spec.prefix)
    return RegionFailure(
        "TrailNotFound",
        f"trailRef {followed[1]!r}: no Trail of that name in the given manifests (pass its file too)",
    )


@dataclass(frozen=True)
class RunOptions:
    act: bool
    force_adopt: bool = False


# Objects reconciled at a time. Most of a paced run is spent waiting for the limiter's next slot in some
# account and region, so there are more threads than cores: each account and region's quota stays busy.
WORKERS = 32


def _run_one(
    manifest: Manifest, manifests: list[Manifest], sessions: AwsSessions, shared: Shared, run: RunOptions
) -> ObjectResult:
    result = ObjectResult(manifest.ref)
    try:
        if isinstance(manifest.spec, TrailSpec):
            request = TrailRequest(
                manifest.namespace, manifest.name, manifest.spec, act=run.act, force_adopt=run.force_adopt
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
                    manifest.namespace, manifest.name, manifest.spec, tuple(targets), act=run.act
                )
                outcome = reconcile_log_retention(retention, sessions, shared)
                result.diffs, result.changes = outcome.diffs, outcome.changes
                result.failures = outcome.failures
    except AWS_ERRORS as error:
        result.failures = [RegionFailure.from_aws(classify(error))]
    return result


def _after(trail: Future[ObjectResult] | None, run_one: Callable[[], ObjectResult]) -> ObjectResult:
    """`run_one()` once the pass of `trail` (if any in the run) is done, whatever its outcome: a
    LogRetention whose Trail failed reports its own failure (its bucket missing), as it always did."""
    if trail is not None:
        wait([trail])
    return run_one()


def run_manifests(
    manifests: list[Manifest], sessions: AwsSessions, *, act: bool, force_adopt: bool = False
) -> Iterator[ObjectResult]:
    """Reconcile (act) or only compare (not act) every manifest, Trails first (retention follows them);
    the results in that order.

    The objects run side by side, and each Trail's regions too, so work for different accounts and
    regions never waits for another's pacing. Reads are shared as the operator's sweep shares them: every
    manifest of the run reads through the one read layer of `sessions` (aws/reads.py); a `diff` is one
    snapshot, each read asked once for the whole run (aws/read_memo.py); an `apply` writes each shared
    bucket's policy once (cli/shared_policies.py).

    No cluster is there to say whether the Trail an owner tag names still exists: an owned trail is
    taken over only with `force_adopt` (and `adopt: true` in its manifest)."""
    run = RunOptions(act, force_adopt)
    ordered = sorted(manifests, key=lambda m: (m.kind != "Trail", m.namespace, m.name))
    trails = [m for m in ordered if m.kind == "Trail"]
    with ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(WORKERS, thread_name_prefix="object"))
        regions = stack.enter_context(ThreadPoolExecutor(2 * WORKERS, thread_name_prefix="region"))
        shared = Shared(cache=sessions.reads, region_pool=regions)
        if not act:
            stack.enter_context(sessions.memo.everywhere(math.inf))
        done: dict[str, list[Change]] = {}
        confirmations = Confirmations(shared.write_policy)
        if act:
            writer = SharedPolicyWrite(sessions, shared, confirmations, force_adopt)
            for changes in pool.map(writer.write, shared_buckets(trails)):
                for ref, made in changes.items():
                    done.setdefault(ref, []).extend(made)
        passes = [pool.submit(_run_one, m, manifests, sessions, shared, run) for m in trails]
        by_trail = {(m.namespace, m.name): future for m, future in zip(trails, passes, strict=True)}
        # A LogRetention starts as soon as its Trail's pass is done (its bucket is in place), not after every
        # Trail's: its confirming read then waits while the other Trails' writes are still being paced.
        followers = stack.enter_context(ThreadPoolExecutor(WORKERS, thread_name_prefix="retention"))
        for m in ordered[len(trails) :]:
            followed = _followed(m)
            after = by_trail.get(followed) if followed else None
            run_one = partial(_run_one, m, manifests, sessions, shared, run)
            passes.append(followers.submit(_after, after, run_one))
        results = [future.result() for future in passes]
        # The confirming reads of the shared policies written before the passes (one wait for all).
        for refs, failure in confirmations.confirm():
            for result in results:
                if result.ref in refs:
                    result.failures.append(failure)
    for result in results:
        result.changes[:0] = done.get(result.ref, [])
        yield result
