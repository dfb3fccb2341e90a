"""What a Trail's `spec.monitoring` becomes in AWS, and how what AWS holds differs from it.

Per home region of the Trail's trails: a CloudWatch Logs group the trail delivers to, and on it the CIS
metric filters with their alarms; once per Trail: the IAM role CloudTrail delivers through (unless the
spec names one). `spec.monitoring` decides the trails' CloudWatchLogsLogGroupArn and
CloudWatchLogsRoleArn; `spec.cloudWatchLogs` cannot be given with it (the API model refuses both).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from trailkeeper.api.trail import TrailSpec
from trailkeeper.core.drift import FieldDiff, Fix, render
from trailkeeper.core.monitoring import (
    DesiredMetricFilter,
    alarm_differences,
    default_log_group_name,
    default_role_name,
    delivery_role_policy,
    delivery_trust_policy,
    desired_metric_filters,
    filter_differences,
    log_group_arn,
    name_prefix,
)
from trailkeeper.core.policy_document import documents_equal
from trailkeeper.core.trail_settings import DesiredTrail, topic_arn, trail_arn

# The delivery role's one inline policy.
ROLE_POLICY_NAME = "trailkeeper-cloudtrail-delivery"


@dataclass(frozen=True)
class DesiredLogGroup:
    """One region's log group and what goes on it."""

    region: str
    name: str
    arn: str  # as CloudTrail takes it, `…:log-group:<name>:*`
    create: bool
    retention_days: int | None
    filters: tuple[DesiredMetricFilter, ...]


@dataclass(frozen=True)
class DesiredRole:
    """The delivery role trailkeeper makes (None in DesiredMonitoring when the spec names its own)."""

    name: str
    trust_policy: dict[str, Any]
    role_policy: dict[str, Any]


@dataclass(frozen=True)
class DesiredMonitoring:
    prefix: str  # of the owner's filter and alarm names
    role_arn: str
    role: DesiredRole | None
    groups: dict[str, DesiredLogGroup]  # by region

    def wire(self, trails: Mapping[str, DesiredTrail]) -> dict[str, DesiredTrail]:
        """The trails delivering to their region's log group through the delivery role."""
        return {
            region: dataclasses.replace(
                trail,
                cloud_watch_logs_log_group_arn=self.groups[region].arn,
                cloud_watch_logs_role_arn=self.role_arn,
            )
            for region, trail in trails.items()
        }


def desired_monitoring(
    spec: TrailSpec, *, trail_name: str, owner: str, account_id: str, partition: str
) -> DesiredMonitoring | None:
    """What `spec.monitoring` asks for (None: nothing). The alarms notify monitoring.alarmTopicArn, or
    else the Trail's notifications topic in the log group's region."""
    monitoring = spec.monitoring
    if monitoring is None:
        return None
    regions = spec.regions[:1] if spec.multi_region else list(spec.regions)
    group_name = monitoring.log_group_name or default_log_group_name(trail_name)
    prefix = name_prefix(owner)
    groups: dict[str, DesiredLogGroup] = {}
    for region in regions:
        if monitoring.alarm_topic_arn is not None:
            topic = monitoring.alarm_topic_arn
        else:
            assert spec.notifications is not None  # the model requires one of them
            topic = topic_arn(partition, region, account_id, spec.notifications.topic_name)
        filters = desired_metric_filters(group_name, monitoring.metric_namespace, topic, prefix)
        groups[region] = DesiredLogGroup(
            region=region,
            name=group_name,
            arn=log_group_arn(partition, region, account_id, group_name),
            create=monitoring.create_log_group,
            retention_days=monitoring.retention_days,
            filters=tuple(filters),
        )
    role: DesiredRole | None = None
    role_arn = monitoring.role_arn
    if role_arn is None:
        name = default_role_name(trail_name)
        role = DesiredRole(
            name=name,
            trust_policy=delivery_trust_policy(
                account_id, [trail_arn(partition, r, account_id, trail_name) for r in regions]
            ),
            role_policy=delivery_role_policy(partition, account_id, [(r, group_name) for r in regions]),
        )
        role_arn = f"arn:{partition}:iam::{account_id}:role/{name}"
    return DesiredMonitoring(prefix=prefix, role_arn=role_arn, role=role, groups=groups)


# -- differences --------------------------------------------------------------------------------------


def diff_role_policies(
    role: DesiredRole, trust: Mapping[str, Any] | None, inline: Mapping[str, Any] | None
) -> list[FieldDiff]:
    """The delivery role's trust and inline policy against the desired ones, compared by meaning."""
    resource = f"role/{role.name}"
    diffs: list[FieldDiff] = []
    for field, desired, actual, fix in (
        ("AssumeRolePolicyDocument", role.trust_policy, trust, Fix.PUT_TRUST_POLICY),
        (f"RolePolicy[{ROLE_POLICY_NAME}]", role.role_policy, inline, Fix.PUT_ROLE_POLICIES),
    ):
        if actual is None or not documents_equal(desired, actual):
            diffs.append(FieldDiff(resource, field, render(desired), render(actual), fix))
    return diffs


@dataclass(frozen=True)
class NamedDifferences:
    """How the owner's filters (or alarms) of one region differ: the differences, the names to put (by
    the desired definition), and the owner's names the spec no longer asks for (to delete)."""

    diffs: list[FieldDiff]
    put: list[str]
    stale: list[str]


def diff_filters(group: DesiredLogGroup, observed: Mapping[str, Mapping[str, Any]]) -> NamedDifferences:
    """The owner's filters on the group (`observed`, by name) against the desired ones."""
    return _diff_named(
        group,
        observed,
        _NamedKind(
            "metric-filter",
            "filter_name",
            lambda d: d.put_metric_filter_request(),
            filter_differences,
            Fix.PUT_METRIC_FILTER,
            Fix.DELETE_METRIC_FILTER,
        ),
    )


def diff_alarms(group: DesiredLogGroup, observed: Mapping[str, Mapping[str, Any]]) -> NamedDifferences:
    """The owner's alarms in the region against the desired ones."""
    return _diff_named(
        group,
        observed,
        _NamedKind(
            "metric-alarm",
            "alarm_name",
            lambda d: d.put_metric_alarm_request({}),
            alarm_differences,
            Fix.PUT_METRIC_ALARM,
            Fix.DELETE_METRIC_ALARM,
        ),
    )


@dataclass(frozen=True)
class _NamedKind:
    """What differs between filters and alarms when comparing them: their resource prefix, the attribute
    naming each, its desired request, its comparison and the two fixes."""

    prefix: str
    attribute: str
    request: Callable[[DesiredMetricFilter], Mapping[str, Any]]
    differences: Callable[[DesiredMetricFilter, dict[str, Any] | None], list[str]]
    put_fix: Fix
    delete_fix: Fix


def _diff_named(
    group: DesiredLogGroup, observed: Mapping[str, Mapping[str, Any]], kind: _NamedKind
) -> NamedDifferences:
    diffs: list[FieldDiff] = []
    put: list[str] = []
    for desired in group.filters:
        name = str(getattr(desired, kind.attribute))
        seen = observed.get(name)
        resource = f"{kind.prefix}/{group.region}/{name}"
        wanted = kind.request(desired)
        fields = kind.differences(desired, dict(seen) if seen is not None else None)
        put += [name] if fields else []
        for field in fields:
            diffs.append(
                FieldDiff(
                    resource,
                    field,
                    render(wanted.get(field, "true")),
                    render(seen.get(field) if seen is not None else "false"),
                    kind.put_fix,
                )
            )
    stale = _stale(group.filters, kind.attribute, observed)
    diffs += [_gone(f"{kind.prefix}/{group.region}/{n}", kind.delete_fix) for n in stale]
    return NamedDifferences(diffs, sorted(put), stale)


def _stale(
    filters: tuple[DesiredMetricFilter, ...], attribute: str, observed: Mapping[str, object]
) -> list[str]:
    wanted = {getattr(f, attribute) for f in filters}
    return sorted(name for name in observed if name not in wanted)


def _gone(resource: str, fix: Fix) -> FieldDiff:
    return FieldDiff(resource, "Exists", "false", "true", fix)
