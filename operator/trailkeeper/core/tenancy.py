"""Whether the tenancy policy lets a Trail be reconciled: decided before any AWS call."""

from __future__ import annotations

import re

from trailkeeper.api.common import DeletionPolicy
from trailkeeper.api.tenancy import TenancyPolicy, TenancyRule, matches
from trailkeeper.api.trail import TrailSpec

_ROLE_ACCOUNT = re.compile(r"^arn:[^:]+:iam::([0-9]{12}):role/")


def trail_refusal(policy: TenancyPolicy, namespace: str, name: str, spec: TrailSpec) -> str | None:
    """Why the policy refuses the Trail `namespace/name` of `spec` (naming the rule), or None."""
    rule = policy.rule_for(namespace)
    problem = (
        _account_problem(rule, spec.account.role_arn)
        or _names_problem(rule.buckets, "bucket", sorted({spec.bucket_for(r) for r in spec.regions}))
        or _names_problem(rule.trail_names, "trail name", [spec.effective_trail_name(name)])
    )
    if problem is None and spec.deletion_policy == DeletionPolicy.DELETE and not rule.allow_delete:
        problem = "deletionPolicy Delete is not allowed (use Retain)"
    return f"tenancy rule {rule.name!r} (namespace {namespace}): {problem}" if problem else None


def _account_problem(rule: TenancyRule, role_arn: str | None) -> str | None:
    if role_arn is None:
        return None if rule.own_account else "the operator's own account is not allowed; set account.roleArn"
    match = _ROLE_ACCOUNT.match(role_arn)
    if match and match.group(1) in rule.accounts:
        return None
    if any(matches(pattern, role_arn) for pattern in rule.role_arns):
        return None
    allowed = [*rule.accounts, *rule.role_arns]
    return f"role {role_arn} is not allowed (allowed: {', '.join(allowed) or 'no role'})"


def _names_problem(allowed: list[str] | None, what: str, names: list[str]) -> str | None:
    if allowed is None:
        return None
    refused = [n for n in names if not any(matches(pattern, n) for pattern in allowed)]
    if not refused:
        return None
    return f"{what} {', '.join(refused)} is not allowed (allowed: {', '.join(allowed) or 'none'})"
