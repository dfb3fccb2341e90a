"""Whether the tenancy policy lets a Trail or LogRetention be reconciled: decided before any AWS call."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from trailkeeper.api.common import DeletionPolicy
from trailkeeper.api.logretention import LogRetentionSpec
from trailkeeper.api.tenancy import TenancyPolicy, TenancyRule, matches
from trailkeeper.api.trail import TrailSpec

_ROLE_ACCOUNT = re.compile(r"^arn:[^:]+:iam::([0-9]{12}):role/")


def role_account(role_arn: str | None) -> str | None:
    """The 12-digit account of a role ARN (None: no role, or not a role ARN)."""
    match = _ROLE_ACCOUNT.match(role_arn or "")
    return match.group(1) if match else None


def trail_refusal(
    policy: TenancyPolicy,
    namespace: str,
    name: str,
    spec: TrailSpec,
    labels: Mapping[str, str] | None = None,
) -> str | None:
    """Why the policy refuses the Trail `namespace/name` of `spec` (naming the rule), or None.

    `labels` are the namespace's labels, which rules with a `namespaceSelector` match."""
    rule = policy.rule_for(namespace, labels)
    problem = (
        _account_problem(rule, spec.account.role_arn)
        or _names_problem(rule.buckets, "bucket", sorted({spec.bucket_for(r) for r in spec.regions}))
        or _names_problem(rule.trail_names, "trail name", [spec.effective_trail_name(name)])
        or _delete_problem(rule, spec.deletion_policy)
    )
    return f"tenancy rule {rule.name!r} (namespace {namespace}): {problem}" if problem else None


def retention_refusal(
    policy: TenancyPolicy,
    namespace: str,
    spec: LogRetentionSpec,
    buckets: Iterable[str],
    labels: Mapping[str, str] | None = None,
) -> str | None:
    """Why the policy refuses a LogRetention of `spec` putting its rule on `buckets` (its `bucket`, or its
    Trail's), naming the rule; or None. A lifecycle rule may expire another team's logs: it is held to the
    same accounts, roles, buckets and Delete as a Trail of its namespace."""
    rule = policy.rule_for(namespace, labels)
    problem = (
        _account_problem(rule, spec.account.role_arn)
        or _names_problem(rule.buckets, "bucket", sorted(set(buckets)))
        or _delete_problem(rule, spec.deletion_policy)
    )
    return f"tenancy rule {rule.name!r} (namespace {namespace}): {problem}" if problem else None


def _delete_problem(rule: TenancyRule, deletion_policy: str) -> str | None:
    if deletion_policy == DeletionPolicy.DELETE and not rule.allow_delete:
        return "deletionPolicy Delete is not allowed (use Retain)"
    return None


def _account_problem(rule: TenancyRule, role_arn: str | None) -> str | None:
    if role_arn is None:
        return None if rule.own_account else "the operator's own account is not allowed; set account.roleArn"
    if role_account(role_arn) in rule.accounts:
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
