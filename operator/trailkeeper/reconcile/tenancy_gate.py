"""The tenancy policy in front of a LogRetention's pass: refused before any AWS call, like a Trail.

A lifecycle rule can expire log files, so a LogRetention reaching a bucket its namespace may not use
(named by `bucket`, or the buckets of the Trail it follows) could erase another team's audit record.
"""

from __future__ import annotations

from collections.abc import Mapping

from trailkeeper.api.logretention import LogRetentionSpec
from trailkeeper.api.tenancy import TenancyPolicy
from trailkeeper.core.tenancy import retention_refusal
from trailkeeper.reconcile.errors import RegionFailure
from trailkeeper.reconcile.logretention import RetentionTarget

# The policy as the operator holds it: None when none is given, a string saying why it cannot be read.
HeldPolicy = TenancyPolicy | str | None


def unreadable(policy: HeldPolicy, kind: str) -> str | None:
    """The refusal of every object while the policy cannot be read (fail closed), or None."""
    if isinstance(policy, str):
        return f"the tenancy policy cannot be read, so no {kind} is served: {policy}"
    return None


def retention_gate(
    policy: HeldPolicy,
    labels: Mapping[str, str] | None,
    namespace: str,
    spec: LogRetentionSpec,
    targets: list[RetentionTarget] | tuple[RetentionTarget, ...] | RegionFailure,
) -> RegionFailure | None:
    """The Forbidden failure of a LogRetention the policy refuses, or None.

    With no buckets known yet (its Trail not found), the role and deletionPolicy are still checked."""
    if policy is None:
        return None
    refusal = unreadable(policy, "LogRetention")
    if refusal is None and isinstance(policy, TenancyPolicy):
        buckets = [] if isinstance(targets, RegionFailure) else [t.bucket for t in targets]
        refusal = retention_refusal(policy, namespace, spec, buckets, labels)
    return RegionFailure("Forbidden", refusal) if refusal else None
