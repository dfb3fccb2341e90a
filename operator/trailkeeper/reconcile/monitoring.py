"""The Monitoring part of a Trail's reconcile: the delivery role, the log group per region, and on it the
CIS metric filters and their alarms, each a part on the seam of reconcile/parts.py.

What is the Trail's own: the role and the log group by their owner tag (a group that someone else made is
used, never changed), alarms by owner tag too, and metric filters (which take no tags) by the owner's name
prefix. Filters and alarms of others on the same group are never read. ``MonitoringPart`` orders them in
a pass: the role and group before the trail (``deliver``), the filters and alarms after it (``alarms``),
and takes the owner's filters, alarms and role away on deletion or when the spec drops its monitoring
(``delete``, ``delete_role``); the log group always stays, it holds the trail's events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trailkeeper.aws.monitoring import (
    AlarmClient,
    LogGroupClient,
    ObservedLogGroup,
    ObservedRole,
    RoleClient,
)
from trailkeeper.core.drift import FieldDiff, Fix, render
from trailkeeper.core.monitoring_desired import (
    ROLE_POLICY_NAME,
    DesiredLogGroup,
    DesiredMonitoring,
    DesiredRole,
    NamedDifferences,
    diff_alarms,
    diff_filters,
    diff_role_policies,
)
from trailkeeper.core.naming import OWNER_TAG
from trailkeeper.reconcile.errors import RegionFailure
from trailkeeper.reconcile.parts import Observation, PassContext, run_part
from trailkeeper.reconcile.shared import Change


def _missing(resource: str) -> list[FieldDiff]:
    return [FieldDiff(resource, "Exists", "true", "false", Fix.CREATE)]


@dataclass
class RolePart:
    """The delivery role trailkeeper makes: created when missing, its two policies kept as desired."""

    context: PassContext
    client: RoleClient

    def observe(self, desired: DesiredRole) -> Observation[DesiredRole, ObservedRole]:
        resource = f"role/{desired.name}"
        observed = self.client.observe(desired.name, ROLE_POLICY_NAME)
        if not observed.exists:
            return Observation(resource, False, desired, observed, _missing(resource))
        if observed.tags.get(OWNER_TAG) != self.context.owner:
            raise RegionFailure(
                "Conflict",
                f"IAM role {desired.name} exists and is not this Trail's (its {OWNER_TAG} tag differs); "
                "name a role for CloudTrail in spec.monitoring.roleArn",
            )
        diffs = diff_role_policies(desired, observed.trust_policy, observed.inline_policy)
        return Observation(resource, True, desired, observed, diffs)

    def apply(self, observation: Observation[DesiredRole, ObservedRole]) -> list[Change]:
        role, client = observation.desired, self.client
        if not observation.exists:
            client.create(role.name, role.trust_policy, self.context.tags())
            client.put_inline_policy(role.name, ROLE_POLICY_NAME, role.role_policy)
            return [Change(observation.resource, "created the CloudTrail delivery role")]
        fixes = {d.fix for d in observation.diffs}
        if Fix.PUT_TRUST_POLICY in fixes:
            client.put_trust_policy(role.name, role.trust_policy)
        if Fix.PUT_ROLE_POLICIES in fixes:
            client.put_inline_policy(role.name, ROLE_POLICY_NAME, role.role_policy)
        fields = sorted({d.field for d in observation.diffs})
        return [Change(observation.resource, "put " + ", ".join(fields))]


@dataclass
class LogGroupPart:
    """A region's log group: created when missing (if the spec lets it), its retention kept on ours."""

    context: PassContext
    client: LogGroupClient

    def observe(self, desired: DesiredLogGroup) -> Observation[DesiredLogGroup, ObservedLogGroup]:
        resource = f"log-group/{desired.region}/{desired.name}"
        observed = self.client.observe(desired.name)
        if not observed.exists:
            if not desired.create:
                raise RegionFailure(
                    "LogGroupNotFound",
                    f"log group {desired.name} does not exist in {desired.region} and "
                    "monitoring.createLogGroup is false",
                    retryable=True,
                )
            return Observation(resource, False, desired, observed, _missing(resource))
        diffs: list[FieldDiff] = []
        # The retention of a group someone else made is theirs.
        mine = observed.tags.get(OWNER_TAG) == self.context.owner
        if mine and observed.retention_days != desired.retention_days:
            wanted, actual = render(desired.retention_days), render(observed.retention_days)
            diffs.append(FieldDiff(resource, "retentionInDays", wanted, actual, Fix.PUT_RETENTION))
        return Observation(resource, True, desired, observed, diffs)

    def apply(self, observation: Observation[DesiredLogGroup, ObservedLogGroup]) -> list[Change]:
        group = observation.desired
        if not observation.exists:
            self.client.create(group.name, self.context.tags())
            if group.retention_days is not None:
                self.client.set_retention(group.name, group.retention_days)
            return [Change(observation.resource, "created log group")]
        self.client.set_retention(group.name, group.retention_days)
        return [Change(observation.resource, f"set retention to {render(group.retention_days)} days")]


@dataclass(frozen=True)
class ObservedAlarms:
    """The owner's filters on a group and alarms in its region (by name), and how they differ."""

    filters: dict[str, dict[str, Any]]
    alarms: dict[str, dict[str, Any]]
    filter_steps: NamedDifferences
    alarm_steps: NamedDifferences


@dataclass
class AlarmsPart:
    """The owner's CIS metric filters on a region's log group, and their alarms."""

    context: PassContext
    logs: LogGroupClient
    alarms: AlarmClient
    prefix: str  # of the owner's filter and alarm names

    def observe(self, desired: DesiredLogGroup) -> Observation[DesiredLogGroup, ObservedAlarms]:
        filters = self.logs.metric_filters(desired.name, self.prefix)
        alarms = self.alarms.alarms(self.prefix)
        observed = ObservedAlarms(
            filters, alarms, diff_filters(desired, filters), diff_alarms(desired, alarms)
        )
        diffs = observed.filter_steps.diffs + observed.alarm_steps.diffs
        return Observation(f"log-group/{desired.region}/{desired.name}", True, desired, observed, diffs)

    def apply(self, observation: Observation[DesiredLogGroup, ObservedAlarms]) -> list[Change]:
        group, observed = observation.desired, observation.observed
        by_filter = {d.filter_name: d for d in group.filters}
        for name in observed.filter_steps.put:
            self.logs.put_metric_filter(by_filter[name].put_metric_filter_request())
        for name in observed.filter_steps.stale:
            self.logs.delete_metric_filter(group.name, name)
        by_alarm = {d.alarm_name: d for d in group.filters}
        foreign: list[str] = []
        for name in sorted(set(observed.alarm_steps.put) | set(observed.alarm_steps.stale)):
            existing = observed.alarms.get(name)
            # PutMetricAlarm replaces an alarm whole: one of that name that is not ours stays as it is.
            if existing is not None and not owns_alarm(self.context, self.alarms, existing):
                foreign.append(name)
            elif name in by_alarm:
                self.alarms.put(by_alarm[name].put_metric_alarm_request(self.context.tags()))
            else:
                self.alarms.delete([name])
        put_filters, put_alarms = len(observed.filter_steps.put), len(observed.alarm_steps.put)
        change = Change(
            observation.resource, f"put {put_filters} metric filters and {put_alarms - len(foreign)} alarms"
        )
        if foreign:
            self.context.changes.append(change)  # what was put stays put though the region fails
            raise RegionFailure("Conflict", f"alarms not this Trail's (owner tag): {', '.join(foreign)}")
        return [change]


def owns_alarm(context: PassContext, client: AlarmClient, alarm: dict[str, Any]) -> bool:
    return client.tags(str(alarm.get("AlarmArn", ""))).get(OWNER_TAG) == context.owner


@dataclass
class MonitoringPart:
    """The Monitoring parts of one pass, in the order a trail needs them."""

    desired: DesiredMonitoring
    context: PassContext
    home_region: str  # where the IAM client is made (IAM is global; the region picks the partition)
    _role_failure: RegionFailure | None = None
    _role_done: bool = False

    def _logs(self, region: str) -> LogGroupClient:
        return LogGroupClient(self.context.client("logs", region), region)

    def _alarms(self, region: str) -> AlarmClient:
        return AlarmClient(self.context.client("cloudwatch", region), region)

    def _roles(self) -> RoleClient:
        return RoleClient(self.context.client("iam", self.home_region))

    def deliver(self, region: str) -> None:
        """The delivery role (once per pass) and this region's log group, so the trail can be wired."""
        if not self._role_done:
            self._role_done = True
            try:
                if self.desired.role is not None:  # else the spec names a role of its own: the user's
                    run_part(self.context, RolePart(self.context, self._roles()), self.desired.role)
            except RegionFailure as failure:
                self._role_failure = failure
        if self._role_failure is not None:
            raise self._role_failure
        run_part(self.context, LogGroupPart(self.context, self._logs(region)), self.desired.groups[region])

    def alarms(self, region: str) -> None:
        """After the trail: the owner's metric filters on the region's log group, and their alarms."""
        part = AlarmsPart(self.context, self._logs(region), self._alarms(region), self.desired.prefix)
        run_part(self.context, part, self.desired.groups[region])

    def delete(self, region: str) -> None:
        """The owner's filters and alarms in the region; the log group stays (it holds the trail's
        events, which a Trail's deletion never destroys)."""
        group = self.desired.groups[region]
        logs, alarms = self._logs(region), self._alarms(region)
        for name in sorted(logs.metric_filters(group.name, self.desired.prefix)):
            logs.delete_metric_filter(group.name, name)
            self.context.changed(f"metric-filter/{region}/{name}", "deleted")
        found = alarms.alarms(self.desired.prefix)
        owned = [n for n, a in found.items() if owns_alarm(self.context, alarms, a)]
        if owned:
            alarms.delete(owned)
            self.context.changed(f"log-group/{region}/{group.name}", f"deleted {len(owned)} alarms")

    def delete_role(self) -> None:
        """The delivery role trailkeeper made for this Trail, once no trail of it uses the role."""
        role = self.desired.role
        if role is None:
            return
        client = self._roles()
        observed = client.observe(role.name, ROLE_POLICY_NAME)
        if observed.exists and observed.tags.get(OWNER_TAG) == self.context.owner:
            client.delete(role.name, ROLE_POLICY_NAME)
            self.context.changed(f"role/{role.name}", "deleted the CloudTrail delivery role")
