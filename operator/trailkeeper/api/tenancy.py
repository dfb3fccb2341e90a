"""The tenancy policy: which AWS a namespace's Trails may reach, kept by cluster admins.

Read by the operator from a file (the chart renders its `tenancy` value into a ConfigMap mounted in the
pod); tenants, who may create Trails in their namespace, cannot change it. Rules are tried in order and
the first whose `namespaces` and `namespaceSelector` match a Trail's namespace (its name and its labels)
decides; a namespace no rule matches gets `DEFAULT_RULE`, which is today's single-account install: the
operator's own account, and no role. The same rule applies to a LogRetention of that namespace.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, model_validator

from trailkeeper.api.common import Model

# A name, or a prefix ending in `*` (`*` alone: every one).
PATTERN = r"^[A-Za-z0-9+=,.@_/:-]*\*?$"


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class SelectorRequirement(Model):
    """One requirement on a namespace label, as in a Kubernetes label selector."""

    key: Annotated[str, Field(min_length=1, max_length=317)]
    """The label's key."""
    operator: SelectorOperator
    """`In`, `NotIn`, `Exists` or `DoesNotExist`."""
    values: list[str] = []
    """The values for `In` and `NotIn` (at least one); empty for `Exists` and `DoesNotExist`."""

    @model_validator(mode="after")
    def _values_fit_operator(self) -> Self:
        wants_values = self.operator in (SelectorOperator.IN, SelectorOperator.NOT_IN)
        if wants_values and not self.values:
            raise ValueError(f"values must not be empty for operator {self.operator}")
        if not wants_values and self.values:
            raise ValueError(f"values must be empty for operator {self.operator}")
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        # Kubernetes semantics: NotIn and DoesNotExist also match a namespace without the label.
        if self.operator == SelectorOperator.EXISTS:
            return self.key in labels
        if self.operator == SelectorOperator.DOES_NOT_EXIST:
            return self.key not in labels
        inside = self.key in labels and labels[self.key] in self.values
        return inside if self.operator == SelectorOperator.IN else not inside


class LabelSelector(Model):
    """A Kubernetes label selector on namespace labels: every `matchLabels` pair and every
    `matchExpressions` requirement must hold; an empty selector matches every namespace."""

    match_labels: dict[str, str] = {}
    """Labels the namespace must carry, with these values."""
    match_expressions: list[SelectorRequirement] = []
    """Requirements the namespace's labels must meet."""

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(key) == value for key, value in self.match_labels.items()) and all(
            requirement.matches(labels) for requirement in self.match_expressions
        )


class TenancyRule(Model):
    """What the Trails of the namespaces a rule matches may use."""

    name: Annotated[str, Field(min_length=1, max_length=63)]
    """Name of the rule, quoted in a refused Trail's condition and Event."""
    namespaces: (
        Annotated[list[Annotated[str, Field(min_length=1, pattern=PATTERN)]], Field(min_length=1)] | None
    ) = None
    """Namespaces the rule applies to: names, or prefixes ending in `*` (`team-*`; `*` alone: all)."""
    namespace_selector: LabelSelector | None = None
    """Labels the namespaces the rule applies to carry (Kubernetes label selector semantics). With
    `namespaces` as well, a namespace must match both. At least one of the two is given."""
    own_account: bool = True
    """Whether a Trail or LogRetention may leave `account.roleArn` unset and act with the operator's own
    credentials."""
    accounts: list[Annotated[str, Field(pattern=r"^[0-9]{12}$")]] = []
    """12-digit AWS accounts whose roles a Trail or LogRetention may assume (`account.roleArn` of any role
    in them)."""
    role_arns: list[Annotated[str, Field(min_length=1, pattern=PATTERN)]] = []
    """Role ARNs a Trail may assume, or prefixes ending in `*`; beside `accounts`, either one allows."""
    buckets: list[Annotated[str, Field(min_length=1, pattern=PATTERN)]] | None = None
    """Buckets a Trail may deliver to or create, and a LogRetention may put its lifecycle rule on (its
    `bucket`, or its Trail's buckets): names or prefixes ending in `*`. Unset: any bucket."""
    trail_names: list[Annotated[str, Field(min_length=1, pattern=PATTERN)]] | None = None
    """Trail names (`trailName`, or the object's name) a Trail may manage, or prefixes ending in `*`.
    Unset: any name."""
    allow_delete: bool = True
    """Whether `deletionPolicy: Delete` is allowed, for Trails and LogRetentions (refused: use Retain)."""

    @model_validator(mode="after")
    def _names_some_namespaces(self) -> Self:
        if self.namespaces is None and self.namespace_selector is None:
            raise ValueError("give namespaces, namespaceSelector or both")
        return self

    def applies_to(self, namespace: str, labels: Mapping[str, str]) -> bool:
        by_name = self.namespaces is None or any(matches(p, namespace) for p in self.namespaces)
        return by_name and (self.namespace_selector is None or self.namespace_selector.matches(labels))


DEFAULT_RULE = TenancyRule(name="default", namespaces=["*"])


class TenancyPolicy(Model):
    """The whole policy: its rules, tried in order."""

    rules: list[TenancyRule] = []
    """Rules, first match wins; a namespace none matches gets the built-in `default` rule (the operator's
    own account, no role, any bucket and trail name, Delete allowed)."""

    def rule_for(self, namespace: str, labels: Mapping[str, str] | None = None) -> TenancyRule:
        """The rule for `namespace`, whose labels are `labels` (None: it has none)."""
        for rule in self.rules:
            if rule.applies_to(namespace, labels or {}):
                return rule
        return DEFAULT_RULE


def matches(pattern: str, value: str) -> bool:
    """A name matches itself; a pattern ending in `*` matches every value with the prefix before it."""
    return value.startswith(pattern[:-1]) if pattern.endswith("*") else value == pattern
