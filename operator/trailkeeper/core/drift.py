"""Differences between what the spec wants and what AWS holds, compared by meaning, field by field.

A difference names the resource (`trail/us-east-1`, `bucket/acme-audit`, …), the field in AWS's terms
(`IsLogging`, `Statement[Trailkeeper…]`, `LifecycleRule[…]`) and both values rendered as short stable
text, which is what status.drift shows. Values that AWS spells differently but that mean the same (an
omitted empty list, a list in another order, a log group ARN with or without its `:*`) are not drift.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from trailkeeper.core.merge import lifecycle_rules_equal
from trailkeeper.core.naming import owner_sids
from trailkeeper.core.observed_trail import ObservedTrail
from trailkeeper.core.policy_document import canonical_json, document_statements, statements_equal
from trailkeeper.core.tags import dropped_keys
from trailkeeper.core.trail_settings import DesiredTrail

NONE_TEXT = "(none)"


class Fix(StrEnum):
    """The change that puts a difference back: what the manager of the part it belongs to does for it
    (reconcile/parts.py). Set where the difference is found, never worked out from its rendered text."""

    CREATE = "create"  # the resource is missing: make it
    FINISH_CREATION = "finish-creation"  # a bucket made by a pass stopped before tagging it: tag it
    PUT_STATEMENTS = "put-statements"  # a policy lacks (or holds stale) statements of the owner
    RESTORE_BUCKET_SETTINGS = "restore-bucket-settings"  # public access block, versioning, encryption
    UPDATE_TRAIL = "update-trail"  # an UpdateTrail setting
    PUT_EVENT_SELECTORS = "put-event-selectors"
    PUT_INSIGHT_SELECTORS = "put-insight-selectors"
    SET_TAGS = "set-tags"
    SET_LOGGING = "set-logging"
    SUBSCRIBE = "subscribe"
    UPDATE_SUBSCRIPTION = "update-subscription"
    UNSUBSCRIBE = "unsubscribe"
    PUT_LIFECYCLE_RULE = "put-lifecycle-rule"
    REMOVE_LIFECYCLE_RULE = "remove-lifecycle-rule"
    # The Monitoring section (reconcile/monitoring.py)
    PUT_METRIC_FILTER = "put-metric-filter"
    DELETE_METRIC_FILTER = "delete-metric-filter"  # one of the owner's the spec no longer asks for
    PUT_METRIC_ALARM = "put-metric-alarm"
    DELETE_METRIC_ALARM = "delete-metric-alarm"
    PUT_TRUST_POLICY = "put-trust-policy"  # the delivery role's trust policy
    PUT_ROLE_POLICIES = "put-role-policies"  # the delivery role's inline policy
    PUT_RETENTION = "put-retention"


@dataclass(frozen=True)
class FieldDiff:
    resource: str
    field: str
    desired: str
    actual: str
    fix: Fix


def _normalize(value: Any) -> Hashable:
    """One hashable spelling per meaning: empties are None, lists are sets, bools stay distinct from ints."""
    if value is None or value == "" or (isinstance(value, list | tuple | Mapping) and not value):
        return None
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, Mapping):
        items = frozenset((str(k), n) for k, v in value.items() if (n := _normalize(v)) is not None)
        return items or None
    if isinstance(value, list | tuple):
        return frozenset(_normalize(v) for v in value)
    if isinstance(value, int | float | str):
        return value
    return canonical_json(value)


def _sort_key(value: Any) -> str:
    return canonical_json(value)


def _ordered(value: Any) -> Any:
    """Lists sorted by their items' JSON, so the same set always renders as the same text."""
    if isinstance(value, Mapping):
        return {str(k): _ordered(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return sorted((_ordered(v) for v in value), key=_sort_key)
    return value


def render(value: Any) -> str:
    """A value as status.drift shows it: "(none)" for nothing, true/false, compact stable JSON."""
    if value is None or value == "" or (isinstance(value, list | tuple | Mapping) and not value):
        return NONE_TEXT
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return canonical_json(_ordered(value))


def values_equal(desired: Any, actual: Any) -> bool:
    """Whether two values mean the same, with lists as sets and empty values as absent."""
    return _normalize(desired) == _normalize(actual)


def diff_values(resource: str, field: str, desired: Any, actual: Any, fix: Fix) -> list[FieldDiff]:
    """No entry when `desired` and `actual` mean the same, else one naming both and what fixes it."""
    if values_equal(desired, actual):
        return []
    return [FieldDiff(resource, field, render(desired), render(actual), fix)]


def _log_group(arn: str | None) -> str | None:
    # CloudTrail hands the log group back as "…:log-group:<name>:*"; with or without it, it is one group.
    return arn.removesuffix(":*") if arn else arn


def _topic_name(actual: ObservedTrail) -> str | None:
    topic = actual.sns_topic_arn or actual.sns_topic_name
    return topic.rsplit(":", 1)[-1] if topic else None


def _key_id(key: str) -> str:
    return key.rsplit("/", 1)[-1] if key.startswith("arn:") else key


def kms_key_matches(desired: str | None, actual: str | None) -> bool:
    """Whether the trail's KMS key (CloudTrail reports a key ARN) is the one the spec names.

    A key ARN and the key's bare id match each other. An alias cannot be resolved offline: a caller whose
    spec names an alias resolves it first (kms:DescribeKey) and diffs `dataclasses.replace(desired,
    kms_key_id=<key ARN>)`, else the alias never equals the ARN and shows as drift.
    """
    if not desired or not actual:
        return not desired and not actual
    if desired == actual:
        return True
    if "alias/" in desired or "alias/" in actual:
        return False
    return _key_id(desired) == _key_id(actual)


def diff_trail(desired: DesiredTrail, actual: ObservedTrail, resource: str | None = None) -> list[FieldDiff]:
    """Every setting of an observed trail that differs from the desired one, each with its fix.

    Tags are compared as `diff_tags` does: tags others put on the trail are theirs.
    """
    where = resource or f"trail/{desired.region}"
    update = Fix.UPDATE_TRAIL
    compared: list[tuple[str, Any, Any, Fix]] = [
        ("S3BucketName", desired.bucket, actual.s3_bucket, update),
        ("S3KeyPrefix", desired.key_prefix, actual.s3_key_prefix, update),
        ("SnsTopicName", desired.sns_topic_name, _topic_name(actual), update),
        (
            "IncludeGlobalServiceEvents",
            desired.include_global_service_events,
            actual.include_global_service_events,
            update,
        ),
        ("IsMultiRegionTrail", desired.is_multi_region, actual.is_multi_region, update),
        ("LogFileValidationEnabled", desired.log_file_validation, actual.log_file_validation, update),
        (
            "CloudWatchLogsLogGroupArn",
            _log_group(desired.cloud_watch_logs_log_group_arn),
            _log_group(actual.cloud_watch_logs_log_group_arn),
            update,
        ),
        (
            "CloudWatchLogsRoleArn",
            desired.cloud_watch_logs_role_arn,
            actual.cloud_watch_logs_role_arn,
            update,
        ),
        ("IsLogging", desired.logging, actual.is_logging, Fix.SET_LOGGING),
    ]
    diffs = [d for field, want, have, fix in compared for d in diff_values(where, field, want, have, fix)]
    if not kms_key_matches(desired.kms_key_id, actual.kms_key_id):
        diffs.append(
            FieldDiff(where, "KmsKeyId", render(desired.kms_key_id), render(actual.kms_key_id), update)
        )
    selectors: list[tuple[str, Any, Any, Fix]] = [
        ("EventSelectors", desired.event_selectors, actual.event_selectors, Fix.PUT_EVENT_SELECTORS),
        (
            "AdvancedEventSelectors",
            desired.advanced_event_selectors,
            actual.advanced_event_selectors,
            Fix.PUT_EVENT_SELECTORS,
        ),
        ("InsightSelectors", desired.insight_selectors, actual.insight_selectors, Fix.PUT_INSIGHT_SELECTORS),
    ]
    diffs += [d for field, want, have, fix in selectors for d in diff_values(where, field, want, have, fix)]
    return diffs + diff_tags(where, desired.tags, actual.tags)


def diff_tags(
    resource: str, desired: Mapping[str, str], actual: Mapping[str, str], also_dropped: Iterable[str] = ()
) -> list[FieldDiff]:
    """One entry per desired tag missing or different, and one per key trailkeeper set earlier that the
    spec no longer has (core/tags.py `dropped_keys`); others' keys are never compared."""
    diffs: list[FieldDiff] = []
    for key in sorted(desired):
        diffs += diff_values(resource, f"Tags[{key}]", desired[key], actual.get(key), Fix.SET_TAGS)
    for key in dropped_keys(desired, actual, also_dropped):
        diffs.append(FieldDiff(resource, f"Tags[{key}]", NONE_TEXT, actual[key], Fix.SET_TAGS))
    return diffs


def diff_statements(
    resource: str,
    desired: list[dict[str, Any]],
    actual_document: Mapping[str, Any] | None,
    *,
    owner: str | None = None,
) -> list[FieldDiff]:
    """One entry per desired statement that is missing from the policy or differs from it (by Sid).

    With `owner`, also one per statement of the owner's that is in the policy but no longer desired (a
    purpose dropped from the spec, like sourceAccounts emptied), which a merge will remove.
    """
    actual_by_sid: dict[str, list[Mapping[str, Any]]] = {}
    for statement in document_statements(actual_document):
        if isinstance(statement, Mapping) and isinstance(statement.get("Sid"), str):
            actual_by_sid.setdefault(statement["Sid"], []).append(statement)
    diffs: list[FieldDiff] = []
    desired_sids: set[str] = set()
    for statement in desired:
        sid = str(statement.get("Sid"))
        desired_sids.add(sid)
        found = actual_by_sid.get(sid, [])
        if found and all(statements_equal(statement, other) for other in found):
            continue
        actual_text = NONE_TEXT if not found else render(found[0] if len(found) == 1 else list(found))
        diffs.append(
            FieldDiff(resource, f"Statement[{sid}]", render(statement), actual_text, Fix.PUT_STATEMENTS)
        )
    if owner is not None:
        for sid in sorted(owner_sids(owner) - desired_sids):
            for statement in actual_by_sid.get(sid, []):
                diffs.append(
                    FieldDiff(resource, f"Statement[{sid}]", NONE_TEXT, render(statement), Fix.PUT_STATEMENTS)
                )
    return diffs


def diff_lifecycle_rule(
    resource: str, desired_rule: Mapping[str, Any], actual_rules: Iterable[Mapping[str, Any]] | None
) -> list[FieldDiff]:
    """An entry when the bucket's rule with the desired rule's ID is missing or means something else."""
    rule_id = str(desired_rule.get("ID"))
    found = [rule for rule in actual_rules or [] if rule.get("ID") == rule_id]
    if found and all(lifecycle_rules_equal(desired_rule, rule) for rule in found):
        return []
    actual_text = NONE_TEXT if not found else render(found[0] if len(found) == 1 else found)
    return [
        FieldDiff(
            resource, f"LifecycleRule[{rule_id}]", render(desired_rule), actual_text, Fix.PUT_LIFECYCLE_RULE
        )
    ]


def to_drift_entries(diffs: Iterable[FieldDiff], detected_at: str, corrected: bool) -> list[dict[str, Any]]:
    """The differences as status.drift entries (api.md: resource, field, desired, actual, detectedAt,
    corrected)."""
    return [
        {
            "resource": diff.resource,
            "field": diff.field,
            "desired": diff.desired,
            "actual": diff.actual,
            "detectedAt": detected_at,
            "corrected": corrected,
        }
        for diff in diffs
    ]
