"""The seam every AWS part of a Trail has, and what the parts of one pass share.

A part (a bucket, its settings, its tags, its policy; a topic with its policy; its subscriptions; a trail)
is managed by one small class, as crossplane-runtime's ``ExternalClient`` and ACK's resource managers are:

- ``observe(desired) -> Observation``: reads only, and returns whether the part exists, what AWS holds
  (typed), and the differences the pure core finds, each naming as ``core.drift.Fix`` the change that
  puts it back (ACK's typed ``Delta``);
- ``apply(observation) -> list[Change]``: makes the changes the observation's diffs name, nothing else.

The reconciler (reconcile/trail.py) is a loop over parts: ``run_part`` observes, reports the diffs and
applies them only when the pass acts (a Report-only drift check and ``trailkeeper diff`` never do).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from trailkeeper.api.trail import TrailSpec
from trailkeeper.aws.session import AccountRef, AwsSessions
from trailkeeper.core.bucket_share import BucketShare, is_shared_sid
from trailkeeper.core.drift import FieldDiff
from trailkeeper.core.naming import is_trailkeeper_sid
from trailkeeper.core.tags import TagChange, desired_tags
from trailkeeper.core.trail_settings import trail_arn
from trailkeeper.reconcile.shared import Change, Shared
from trailkeeper.reconcile.verified_write import Confirmations, SharedDocument, write_verified

D = TypeVar("D")
Obs = TypeVar("Obs")


@dataclass(frozen=True)
class Observation(Generic[D, Obs]):
    """What one part's observe found: whether it exists, what AWS holds, how it differs from `desired`."""

    resource: str
    exists: bool
    desired: D
    observed: Obs
    diffs: list[FieldDiff] = field(default_factory=list)


class Part(Protocol[D, Obs]):
    def observe(self, desired: D) -> Observation[D, Obs]: ...

    def apply(self, observation: Observation[D, Obs]) -> list[Change]: ...


@dataclass
class PassContext:
    """What the parts of one Trail pass share: who acts, where, with which tags, and the pass's writes."""

    namespace: str
    owner: str
    trail_name: str
    spec: TrailSpec
    sessions: AwsSessions
    shared: Shared
    account: AccountRef | None
    account_id: str
    partition: str
    act: bool
    deep: bool
    removed_tags: tuple[str, ...]
    removed_subscriptions: tuple[tuple[str, str], ...]
    confirmations: Confirmations
    diffs: list[FieldDiff] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    def report(self, diffs: list[FieldDiff]) -> bool:
        """Record `diffs`; whether to act on them."""
        self.diffs.extend(diffs)
        return bool(diffs) and self.act

    def changed(self, resource: str, action: str) -> None:
        self.changes.append(Change(resource, action))

    def tags(self) -> dict[str, str]:
        return desired_tags(self.spec.tags, self.owner)

    def arn(self, region: str) -> str:
        return trail_arn(self.partition, region, self.account_id, self.trail_name)

    def share(self, bucket: str) -> BucketShare:
        """This Trail's part in the bucket's shared statements."""
        key_prefix = self.spec.destination.key_prefix
        return BucketShare(bucket, key_prefix, self.account_id, self.trail_name, self.partition)

    def client(self, service: str, region: str) -> Any:
        return self.sessions.client(service, region, self.account)

    def write(self, document: SharedDocument[Any], observed: Any) -> None:
        write_verified(document, observed, self.shared.write_policy)

    def write_later(
        self, document: SharedDocument[Any], observed: Any, lock: str, regions: list[str]
    ) -> None:
        """Write `document` now and leave its confirming read to the end of the pass, under the lock
        `lock`; a loss found then fails `regions`."""

        def later(written: SharedDocument[Any]) -> None:
            self.confirmations.add(written, tuple(regions), lambda: self.shared.locks.hold(lock))

        write_verified(document, observed, self.shared.write_policy, later=later)


class Pass(Protocol):
    """What `run_part` needs of a pass: a Trail's PassContext, or a LogRetention's pass."""

    changes: list[Change]

    def report(self, diffs: list[FieldDiff]) -> bool: ...


def run_part(context: Pass, part: Part[D, Obs], desired: D) -> Observation[D, Obs]:
    """Observe one part, report its diffs, and apply them when the pass acts."""
    observation = part.observe(desired)
    if context.report(observation.diffs):
        context.changes.extend(part.apply(observation))
    return observation


def foreign_owned(policy: dict[str, Any] | None) -> bool:
    """Whether another trailkeeper object still has statements in a policy (its bucket/topic is in use)."""
    statements = (policy or {}).get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    sids = [s.get("Sid") for s in statements if isinstance(s, dict)]
    return any(is_trailkeeper_sid(sid) or is_shared_sid(sid) for sid in sids)


def apply_tags(
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
