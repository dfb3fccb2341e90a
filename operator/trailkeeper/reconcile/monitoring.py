"""The Monitoring part of a Trail's reconcile: the delivery role, the log group per region, and on it the
CIS metric filters and their alarms.

Observe → diff → act like the other parts: each step reads AWS, reports its differences through the
reconciler's `diff` (which says whether to act: a Report-only drift check never does) and writes only
what differs. What is the Trail's own: the role and the log group by their owner tag (a group that
someone else made is used, never changed), alarms by owner tag too, and metric filters (which take no
tags) by the owner's name prefix. Filters and alarms of others on the same group are never read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from trailkeeper.aws.monitoring import AlarmClient, LogGroupClient, RoleClient
from trailkeeper.aws.session import AccountRef, AwsSessions
from trailkeeper.core.drift import FieldDiff, Fix, render
from trailkeeper.core.monitoring_desired import (
    ROLE_POLICY_NAME,
    DesiredLogGroup,
    DesiredMonitoring,
    alarm_names_of,
    diff_alarms,
    diff_filters,
    diff_role_policies,
    filter_names_of,
)
from trailkeeper.core.naming import OWNER_TAG
from trailkeeper.reconcile.errors import RegionFailure

# The reconciler's hooks: report differences (True: act on them) and record a change made.
Report = Callable[[list[FieldDiff]], bool]
Record = Callable[[str, str], None]


@dataclass
class MonitoringPart:
    desired: DesiredMonitoring
    sessions: AwsSessions
    account: AccountRef | None
    home_region: str  # where the IAM client is made (IAM is global; the region picks the partition)
    owner: str
    tags: dict[str, str]
    diff: Report
    changed: Record
    _role_failure: RegionFailure | None = None
    _role_done: bool = False

    def _logs(self, region: str) -> LogGroupClient:
        return LogGroupClient(self.sessions.client("logs", region, self.account), region)

    def _alarms(self, region: str) -> AlarmClient:
        return AlarmClient(self.sessions.client("cloudwatch", region, self.account), region)

    def _roles(self) -> RoleClient:
        return RoleClient(self.sessions.client("iam", self.home_region, self.account))

    # -- before the trail: what it delivers to and through --------------------------------------------

    def deliver(self, region: str) -> None:
        """The delivery role (once per pass) and this region's log group, so the trail can be wired."""
        if not self._role_done:
            self._role_done = True
            try:
                self._reconcile_role()
            except RegionFailure as failure:
                self._role_failure = failure
        if self._role_failure is not None:
            raise self._role_failure
        self._reconcile_group(self.desired.groups[region])

    def _reconcile_role(self) -> None:
        role = self.desired.role
        if role is None:
            return  # the spec names a role of its own: it is the user's to keep
        client = self._roles()
        observed = client.observe(role.name, ROLE_POLICY_NAME)
        resource = f"role/{role.name}"
        if not observed.exists:
            if self.diff([FieldDiff(resource, "Exists", "true", "false", Fix.CREATE)]):
                client.create(role.name, role.trust_policy, self.tags)
                client.put_inline_policy(role.name, ROLE_POLICY_NAME, role.role_policy)
                self.changed(resource, "created the CloudTrail delivery role")
            return
        if observed.tags.get(OWNER_TAG) != self.owner:
            raise RegionFailure(
                "Conflict",
                f"IAM role {role.name} exists and is not this Trail's (its {OWNER_TAG} tag differs); "
                "name a role for CloudTrail in spec.monitoring.roleArn",
            )
        diffs = diff_role_policies(role, observed.trust_policy, observed.inline_policy)
        if self.diff(diffs):
            fields = {d.field for d in diffs}
            if "AssumeRolePolicyDocument" in fields:
                client.put_trust_policy(role.name, role.trust_policy)
            if fields - {"AssumeRolePolicyDocument"}:
                client.put_inline_policy(role.name, ROLE_POLICY_NAME, role.role_policy)
            self.changed(resource, "put " + ", ".join(sorted(fields)))

    def _reconcile_group(self, group: DesiredLogGroup) -> None:
        client = self._logs(group.region)
        observed = client.observe(group.name)
        resource = f"log-group/{group.region}/{group.name}"
        if not observed.exists:
            if not group.create:
                raise RegionFailure(
                    "LogGroupNotFound",
                    f"log group {group.name} does not exist in {group.region} and "
                    "monitoring.createLogGroup is false",
                    retryable=True,
                )
            if self.diff([FieldDiff(resource, "Exists", "true", "false", Fix.CREATE)]):
                client.create(group.name, self.tags)
                if group.retention_days is not None:
                    client.set_retention(group.name, group.retention_days)
                self.changed(resource, "created log group")
            return
        # The retention of a group someone else made is theirs.
        if observed.tags.get(OWNER_TAG) == self.owner and observed.retention_days != group.retention_days:
            diff = FieldDiff(
                resource,
                "retentionInDays",
                render(group.retention_days),
                render(observed.retention_days),
                Fix.PUT_RETENTION,
            )
            if self.diff([diff]):
                client.set_retention(group.name, group.retention_days)
                self.changed(resource, f"set retention to {render(group.retention_days)} days")

    # -- after the trail: the filters and alarms -------------------------------------------------------

    def alarms(self, region: str) -> None:
        """The owner's metric filters on the region's log group, and their alarms."""
        group = self.desired.groups[region]
        logs, alarms = self._logs(region), self._alarms(region)
        filter_diffs, stale_filters = diff_filters(
            group, logs.metric_filters(group.name, self.desired.prefix)
        )
        observed_alarms = alarms.alarms(self.desired.prefix)
        alarm_diffs, stale_alarms = diff_alarms(group, observed_alarms)
        stale = [
            FieldDiff(f"metric-filter/{region}/{name}", "Exists", "false", "true", Fix.PUT_METRIC_FILTER)
            for name in stale_filters
        ] + [
            FieldDiff(f"metric-alarm/{region}/{name}", "Exists", "false", "true", Fix.PUT_METRIC_ALARM)
            for name in stale_alarms
        ]
        if not self.diff(filter_diffs + alarm_diffs + stale):
            return
        by_filter = {d.filter_name: d for d in group.filters}
        for name in sorted(filter_names_of(filter_diffs)):
            logs.put_metric_filter(by_filter[name].put_metric_filter_request())
        for name in stale_filters:
            logs.delete_metric_filter(group.name, name)
        by_alarm = {d.alarm_name: d for d in group.filters}
        foreign: list[str] = []
        for name in sorted(alarm_names_of(alarm_diffs) | set(stale_alarms)):
            existing = observed_alarms.get(name)
            # PutMetricAlarm replaces an alarm whole: one of that name that is not ours stays as it is.
            if existing is not None and not self._owns_alarm(alarms, existing):
                foreign.append(name)
            elif name in by_alarm:
                alarms.put(by_alarm[name].put_metric_alarm_request(self.tags))
            else:
                alarms.delete([name])
        self.changed(
            f"log-group/{region}/{group.name}",
            f"put {len(filter_names_of(filter_diffs))} metric filters and "
            f"{len(alarm_names_of(alarm_diffs)) - len(foreign)} alarms",
        )
        if foreign:
            raise RegionFailure("Conflict", f"alarms not this Trail's (owner tag): {', '.join(foreign)}")

    def _owns_alarm(self, client: AlarmClient, alarm: dict[str, object]) -> bool:
        return client.tags(str(alarm.get("AlarmArn", ""))).get(OWNER_TAG) == self.owner

    # -- deletion ---------------------------------------------------------------------------------------

    def delete(self, region: str) -> None:
        """The owner's filters and alarms in the region; the log group stays (it holds the trail's
        events, which a Trail's deletion never destroys)."""
        group = self.desired.groups[region]
        logs, alarms = self._logs(region), self._alarms(region)
        for name in sorted(logs.metric_filters(group.name, self.desired.prefix)):
            logs.delete_metric_filter(group.name, name)
            self.changed(f"metric-filter/{region}/{name}", "deleted")
        owned = [n for n, a in alarms.alarms(self.desired.prefix).items() if self._owns_alarm(alarms, a)]
        if owned:
            alarms.delete(owned)
            self.changed(f"log-group/{region}/{group.name}", f"deleted {len(owned)} alarms")

    def delete_role(self) -> None:
        """The delivery role trailkeeper made for this Trail, once no trail of it uses the role."""
        role = self.desired.role
        if role is None:
            return
        client = self._roles()
        observed = client.observe(role.name, ROLE_POLICY_NAME)
        if observed.exists and observed.tags.get(OWNER_TAG) == self.owner:
            client.delete(role.name, ROLE_POLICY_NAME)
            self.changed(f"role/{role.name}", "deleted the CloudTrail delivery role")
