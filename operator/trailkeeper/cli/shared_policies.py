"""`apply`: one policy write per shared bucket, whatever number of the run's Trails deliver to it.

Each Trail's pass writes its own statements into its bucket's policy (a verified read-modify-write). A
command line run knows every Trail at once: before the passes, the statements of all the run's Trails that
share a bucket (in one account) are merged and written as one document, so their passes find them in place
and write nothing. A Trail whose trail in a region is not its to manage (Conflict, TrailLimit) gets no
statement for that region, as its own pass would not make one. When anything here fails, it is left to
the passes, which write as they always do and report the failure themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trailkeeper.api.manifests import Manifest
from trailkeeper.api.trail import TrailSpec
from trailkeeper.aws.buckets import PART_POLICY, BucketClient
from trailkeeper.aws.session import AwsSessions
from trailkeeper.core.ownership import unknown_liveness
from trailkeeper.reconcile.bucket_parts import BucketPart, bucket_policy, desired_statements
from trailkeeper.reconcile.errors import AWS_ERRORS, RegionFailure
from trailkeeper.reconcile.parts import PassContext, run_part
from trailkeeper.reconcile.shared import Change, Shared
from trailkeeper.reconcile.trail import TrailRequest, pass_context
from trailkeeper.reconcile.trail_part import Claim, claim, resolve_kms
from trailkeeper.reconcile.verified_write import Confirmations, SharedDocument, write_verified

Policy = dict[str, Any] | None


@dataclass(frozen=True)
class Member:
    """A Trail of the run that delivers to the bucket, from `regions`."""

    manifest: Manifest
    regions: tuple[str, ...]

    @property
    def spec(self) -> TrailSpec:
        assert isinstance(self.manifest.spec, TrailSpec)
        return self.manifest.spec


def shared_buckets(trails: Sequence[Manifest]) -> list[list[Member]]:
    """The buckets two or more of `trails` deliver to, acting in the same account, with their Trails."""
    groups: dict[tuple[str | None, str | None, str], list[Member]] = {}
    for manifest in trails:
        spec = manifest.spec
        assert isinstance(spec, TrailSpec)
        by_bucket: dict[str, list[str]] = {}
        for region in spec.regions:
            by_bucket.setdefault(spec.bucket_for(region), []).append(region)
        for bucket, regions in by_bucket.items():
            key = (spec.account.role_arn, spec.account.external_id, bucket)
            groups.setdefault(key, []).append(Member(manifest, tuple(regions)))
    return [members for members in groups.values() if len(members) > 1]


@dataclass
class SharedPolicyWrite:
    """The one write of a shared bucket's policy; `changes` by object ref, `confirmations` to settle."""

    sessions: AwsSessions
    shared: Shared
    confirmations: Confirmations
    force_adopt: bool = False

    def write(self, members: Sequence[Member]) -> dict[str, list[Change]]:
        """Write the merged statements of `members` into their bucket's policy, when they are not all in
        place; the changes made, by object ref. Any failure leaves the work to the passes."""
        try:
            return self._write(members)
        except (RegionFailure, *AWS_ERRORS):
            return {}

    def _context(self, member: Member) -> PassContext:
        manifest = member.manifest
        request = TrailRequest(
            manifest.namespace, manifest.name, member.spec, act=True, force_adopt=self.force_adopt
        )
        return pass_context(request, self.sessions, self.shared)

    def _write(self, members: Sequence[Member]) -> dict[str, list[Change]]:
        contexts = [self._context(m) for m in members]
        first, home = contexts[0], members[0].regions[0]
        bucket = first.spec.bucket_for(home)
        client = BucketClient(first.client("s3", home), home)
        with self.shared.locks.hold(f"s3:{bucket}"):
            observed = client.observe(bucket, parts={PART_POLICY})
            every = [(c, list(m.regions), True) for c, m in zip(contexts, members, strict=True)]
            if observed.exists and _document(client, bucket, every).holds(observed.policy):
                return {}
            claims = [(c, self._claimed(c, m)) for c, m in zip(contexts, members, strict=True)]
            writers = [(c, regions, made) for c, (regions, made) in claims if regions]
            if not writers:
                return {}
            changes: dict[str, list[Change]] = {}
            if not observed.exists:
                maker = writers[0][0]
                resolve_kms(maker, home)
                run_part(maker, BucketPart(maker, client, home), bucket)
                changes[members[contexts.index(maker)].manifest.ref] = list(maker.changes)
            document = _document(client, bucket, writers)
            refs = tuple(members[contexts.index(context)].manifest.ref for context, _, _ in writers)

            def later(written: SharedDocument[Policy]) -> None:
                self.confirmations.add(written, refs, lambda: self.shared.locks.hold(f"s3:{bucket}"))

            write_verified(document, observed.policy, self.shared.write_policy, later=later)
        for ref in refs:
            changes.setdefault(ref, []).append(Change(document.resource, "put trailkeeper statements"))
        return changes

    def _claimed(self, context: PassContext, member: Member) -> tuple[list[str], bool]:
        """The member's regions whose trail is its to manage (the others get no statement), and whether
        its trail exists in each of them (only then may its share entry move, see add_share)."""
        who = Claim(member.spec.adopt, unknown_liveness, self.force_adopt)
        regions = []
        made = True
        for region in member.regions:
            try:
                found = claim(context, region, who, want_insights=True)
            except RegionFailure:
                continue
            regions.append(region)
            made = made and found is not None
        return regions, made


def _document(
    client: BucketClient, bucket: str, writers: Sequence[tuple[PassContext, list[str], bool]]
) -> SharedDocument[Policy]:
    """One document holding every writer's statements: each one's merge applied in turn, held when each
    one's part is. The third item of a writer: its trail exists in its regions (see add_share)."""
    documents = [
        bucket_policy(context, client, bucket, desired_statements(context, bucket, regions), move=made)
        for context, regions, made in writers
    ]

    def merge(policy: Policy) -> Policy:
        return functools.reduce(lambda current, document: document.merge(current), documents, policy)

    def holds(policy: Policy) -> bool:
        return all(document.holds(policy) for document in documents)

    return SharedDocument(documents[0].resource, documents[0].read, merge, documents[0].write, holds)
