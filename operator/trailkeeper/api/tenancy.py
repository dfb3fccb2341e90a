"""The tenancy policy: which AWS a namespace's Trails may reach, kept by cluster admins.

Read by the operator from a file (the chart renders its `tenancy` value into a ConfigMap mounted in the
pod); tenants, who may create Trails in their namespace, cannot change it. Rules are tried in order and
the first whose `namespaces` match a Trail's namespace decides; a namespace no rule matches gets
`DEFAULT_RULE`, which is today's single-account install: the operator's own account, and no role.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from trailkeeper.api.common import Model

# A name, or a prefix ending in `*` (`*` alone: every one).
PATTERN = r"^[A-Za-z0-9+=,.@_/:-]*\*?$"


class TenancyRule(Model):
    """What the Trails of the namespaces a rule matches may use."""

    name: Annotated[str, Field(min_length=1, max_length=63)]
    """Name of the rule, quoted in a refused Trail's condition and Event."""
    namespaces: Annotated[list[Annotated[str, Field(min_length=1, pattern=PATTERN)]], Field(min_length=1)]
    """Namespaces the rule applies to: names, or prefixes ending in `*` (`team-*`; `*` alone: all)."""
    own_account: bool = True
    """Whether a Trail may leave `account.roleArn` unset and act with the operator's own credentials."""
    accounts: list[Annotated[str, Field(pattern=r"^[0-9]{12}$")]] = []
    """12-digit AWS accounts whose roles a Trail may assume (`account.roleArn` of any role in them)."""
    role_arns: list[Annotated[str, Field(min_length=1, pattern=PATTERN)]] = []
    """Role ARNs a Trail may assume, or prefixes ending in `*`; beside `accounts`, either one allows."""
    buckets: list[Annotated[str, Field(min_length=1, pattern=PATTERN)]] | None = None
    """Buckets a Trail may deliver to or create: names or prefixes ending in `*`. Unset: any bucket."""
    trail_names: list[Annotated[str, Field(min_length=1, pattern=PATTERN)]] | None = None
    """Trail names (`trailName`, or the object's name) a Trail may manage, or prefixes ending in `*`.
    Unset: any name."""
    allow_delete: bool = True
    """Whether `deletionPolicy: Delete` is allowed (a Trail refused it must use Retain)."""


DEFAULT_RULE = TenancyRule(name="default", namespaces=["*"])


class TenancyPolicy(Model):
    """The whole policy: its rules, tried in order."""

    rules: list[TenancyRule] = []
    """Rules, first match wins; a namespace none matches gets the built-in `default` rule (the operator's
    own account, no role, any bucket and trail name, Delete allowed)."""

    def rule_for(self, namespace: str) -> TenancyRule:
        for rule in self.rules:
            if any(matches(pattern, namespace) for pattern in rule.namespaces):
                return rule
        return DEFAULT_RULE


def matches(pattern: str, value: str) -> bool:
    """A name matches itself; a pattern ending in `*` matches every value with the prefix before it."""
    return value.startswith(pattern[:-1]) if pattern.endswith("*") else value == pattern
