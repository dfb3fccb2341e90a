"""Merging trailkeeper's own parts into configurations that others share: bucket/topic policies, lifecycle.

Like Cloud Custodian's SetPolicyStatement and Lifecycle actions: statements are keyed by Sid and lifecycle
rules by ID. A merge removes and adds only the owner's items; every other statement and rule is returned
exactly as it was and where it was, and the result is None (delete the configuration) only when nothing at
all is left. Merging the same desired items twice gives the same result as merging them once.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from trailkeeper.core.naming import owner_sids
from trailkeeper.core.policy_document import CURRENT_VERSION, canonical_json, document_statements


def _is_owned(statement: Any, sids: set[str]) -> bool:
    return isinstance(statement, Mapping) and statement.get("Sid") in sids


def merge_statements(
    existing: Mapping[str, Any] | None, owner: str, desired: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """`existing` with the owner's statements replaced by `desired`.

    The owner's statements are every statement whose Sid is one of `owner_sids(owner)`, desired or not.
    The desired statements take the place of the first one removed (or go last), so a policy that already
    holds them comes back unchanged, text included. `Version`, `Id` and any other top-level element are
    kept as they were: adding a Version to a document that had none could change the meaning of a
    foreign statement's policy variables. A new document gets Version 2012-10-17.
    """
    sids = owner_sids(owner)
    desired_sids = [statement.get("Sid") for statement in desired]
    foreign = [sid for sid in desired_sids if sid not in sids]
    if foreign:
        raise ValueError(f"desired statements must carry the owner's Sids; not the owner's: {foreign}")
    if len(set(desired_sids)) != len(desired_sids):
        raise ValueError("desired statements must have distinct Sids")

    kept: list[Any] = []
    insert_at: int | None = None
    for statement in document_statements(existing):
        if _is_owned(statement, sids):
            if insert_at is None:
                insert_at = len(kept)
            continue
        kept.append(copy.deepcopy(statement))
    if insert_at is None:
        insert_at = len(kept)
    statements = kept[:insert_at] + copy.deepcopy(desired) + kept[insert_at:]
    if not statements:
        return None
    if existing is None:
        return {"Version": CURRENT_VERSION, "Statement": statements}
    merged = {
        key: statements if key == "Statement" else copy.deepcopy(value) for key, value in existing.items()
    }
    merged.setdefault("Statement", statements)
    return merged


def remove_owner_statements(existing: Mapping[str, Any] | None, owner: str) -> dict[str, Any] | None:
    """`existing` without any of the owner's statements; None when nothing else is in it."""
    return merge_statements(existing, owner, [])


def owner_statements(existing: Mapping[str, Any] | None, owner: str) -> list[dict[str, Any]]:
    """The owner's statements in `existing`, in their order."""
    sids = owner_sids(owner)
    return [copy.deepcopy(dict(s)) for s in document_statements(existing) if _is_owned(s, sids)]


def merge_lifecycle_rules(
    existing: list[dict[str, Any]], rule_id: str, desired: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """`existing` rules with the rule `rule_id` replaced by `desired` (added last if absent; None removes).

    The rule keeps its position. An empty result means the caller deletes the lifecycle configuration
    (S3 refuses a configuration without rules).
    """
    if desired is not None and desired.get("ID") != rule_id:
        raise ValueError(f"the desired rule's ID {desired.get('ID')!r} is not {rule_id!r}")
    merged: list[dict[str, Any]] = []
    placed = False
    for rule in existing:
        if rule.get("ID") == rule_id:
            # S3 refuses two rules with one ID; should such a list come in, one of ours is left.
            if not placed and desired is not None:
                merged.append(copy.deepcopy(desired))
            placed = True
            continue
        merged.append(copy.deepcopy(rule))
    if not placed and desired is not None:
        merged.append(copy.deepcopy(desired))
    return merged


# Lifecycle rules by meaning --------------------------------------------------------------------------


def _without_empties(value: Any) -> Any:
    """Drop the None, [] and {} members S3 omits when it hands a configuration back."""
    if isinstance(value, Mapping):
        cleaned = {str(k): _without_empties(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v not in (None, [], {})}
    if isinstance(value, list | tuple):
        return [_without_empties(v) for v in value]
    return value


def _canonical_filter(filter_: Any, legacy_prefix: Any) -> tuple[str, frozenset[tuple[str, str]], str, str]:
    """(prefix, tags, size greater than, size less than) of a filter in any of S3's spellings.

    A missing Filter, `Filter: {}`, `Filter: {Prefix: ""}` and the legacy rule-level `Prefix` all name
    the same objects (S3 User Guide, "Lifecycle configuration elements": Filter).
    """
    conditions: dict[str, Any] = {}
    if isinstance(filter_, Mapping):
        conditions.update(filter_)
        conjunction = conditions.pop("And", None)
        if isinstance(conjunction, Mapping):
            conditions.update({k: v for k, v in conjunction.items() if k != "Tags"})
            tags = list(conjunction.get("Tags") or [])
        else:
            tags = []
        tag = conditions.pop("Tag", None)
        if tag:
            tags.append(tag)
    else:
        tags = []
    prefix = conditions.get("Prefix")
    if prefix is None:
        prefix = legacy_prefix
    tag_set = frozenset((str(t.get("Key")), str(t.get("Value"))) for t in tags if isinstance(t, Mapping))
    greater = conditions.get("ObjectSizeGreaterThan")
    less = conditions.get("ObjectSizeLessThan")
    return (
        str(prefix or ""),
        tag_set,
        "" if greater is None else str(greater),
        "" if less is None else str(less),
    )


def _list_field(rule: dict[str, Any], plural: str, singular: str) -> frozenset[str]:
    items = list(rule.pop(plural, None) or [])
    single = rule.pop(singular, None)
    if single:
        items.append(single)
    return frozenset(canonical_json(_without_empties(item)) for item in items)


def canonical_lifecycle_rule(rule: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A lifecycle rule in one spelling (hashable): see `lifecycle_rules_equal`."""
    remaining: dict[str, Any] = dict(_without_empties(dict(rule)))
    parts: dict[str, Any] = {
        "Filter": _canonical_filter(remaining.pop("Filter", None), remaining.pop("Prefix", None)),
        "Transitions": _list_field(remaining, "Transitions", "Transition"),
        "NoncurrentVersionTransitions": _list_field(
            remaining, "NoncurrentVersionTransitions", "NoncurrentVersionTransition"
        ),
    }
    expiration = remaining.pop("Expiration", None)
    if isinstance(expiration, Mapping):
        # ExpiredObjectDeleteMarker false is the same as leaving it out.
        expiration = {
            k: v for k, v in expiration.items() if not (k == "ExpiredObjectDeleteMarker" and v is False)
        }
    if expiration:
        parts["Expiration"] = canonical_json(expiration)
    for key, value in remaining.items():
        parts[key] = canonical_json(value)
    return tuple(sorted(parts.items()))


def lifecycle_rules_equal(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Whether two lifecycle rules mean the same.

    Equal regardless of key order, of members S3 leaves out when empty, of the order of transitions, of
    `Transition` vs `Transitions` (and the noncurrent ones), and of the filter's spelling (a legacy
    rule-level `Prefix`, `Filter: {Prefix}`, `Filter: {And: {Prefix}}`).
    """
    if a is None or b is None:
        return a is None and b is None
    return canonical_lifecycle_rule(a) == canonical_lifecycle_rule(b)
