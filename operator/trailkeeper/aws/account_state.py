"""What an account's CloudTrail trails and their delivery buckets are, read for the CIS evaluator.

`core.compliance.evaluate` is pure: it judges an `ObservedAccountState` (core/observed_account.py), which
this module fills in without knowing the judge. It reads
only (DescribeRegions, DescribeTrails, GetTrailStatus, GetEventSelectors, five S3 bucket reads, the
account's Block Public Access through s3control, and for the Monitoring section DescribeMetricFilters,
DescribeAlarms and ListSubscriptionsByTopic), each at most once per region, trail, bucket, log group or
topic. `observe_account` reads every trail of every enabled region and every bucket they deliver to;
`trailkeeper audit` and the operator's compliance evaluation both call it, and judge its result alike.

"Every region" means the account's enabled regions: the list the caller gives, else EC2 DescribeRegions
(remembered per account in an `EnabledRegionsCache`), else -- when that call is denied or fails -- the
regions where trails were seen, with a note saying so. What could not be read is never guessed to
comply: it is left out or recorded so that its controls fail, and a note says why.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from trailkeeper.aws.buckets import (
    FOREIGN_BUCKET_MAX_AGE,
    PART_LOGGING,
    PART_POLICY,
    PART_PUBLIC_ACCESS_BLOCK,
    BucketClient,
    foreign_bucket_key,
)
from trailkeeper.aws.errors import AwsError, AwsFailure, classify, error_code
from trailkeeper.aws.ratelimit import RateLimitTimeoutError
from trailkeeper.aws.reads import Reads
from trailkeeper.aws.session import AccountRef, AwsSessions
from trailkeeper.core.observed_account import (
    ObservedAccountState,
    ObservedBucketState,
    ObservedMonitoring,
    ObservedTrailState,
    log_group_of,
)
from trailkeeper.core.trail_settings import partition_for_region

__all__ = [
    "REGIONS_TTL_SECONDS",
    "AccountObservation",
    "EnabledRegionsCache",
    "RegionsSource",
    "enabled_regions",
    "observe_account",
]

# How long a DescribeRegions answer (or its denial) is trusted: regions are opted in or out rarely, and
# the operator would otherwise ask once per Trail per drift check.
REGIONS_TTL_SECONDS = 3600.0
# DescribeRegions's opt-in statuses of a region the account can use.
_ENABLED_OPT_IN = ("opt-in-not-required", "opted-in")
# Where the enabled regions came from: the caller's list, DescribeRegions, or the regions trails were
# seen in (DescribeRegions denied or failed).
RegionsSource = Literal["given", "described", "seen"]

_PUBLIC_GRANTEES = frozenset(
    {
        "http://acs.amazonaws.com/groups/global/AllUsers",
        "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
    }
)
_TRAIL_NOT_FOUND = "TrailNotFoundException"
# s3control GetPublicAccessBlock of an account that never set one.
_NO_ACCOUNT_BLOCK = "NoSuchPublicAccessBlockConfiguration"
# Everything a boto3 call made through AwsSessions may raise about AWS (the rate limiter's timeout
# included); whatever this module does not handle leaves it as an AwsError.
_AWS_ERRORS = (ClientError, BotoCoreError, AwsError, RateLimitTimeoutError)


@dataclass(frozen=True)
class AccountObservation:
    """An observed account, with what could not be read and what was assumed instead (`notes`).

    `trail_arns` are the trails the observation is about (every trail seen), the set to pass to
    `evaluate(state, trail_arns=...)`.
    """

    state: ObservedAccountState
    notes: tuple[str, ...]
    trail_arns: frozenset[str]
    regions_source: RegionsSource


@dataclass(frozen=True)
class _RegionsAnswer:
    regions: frozenset[str] | None  # None: DescribeRegions could not be used
    note: str = ""
    denied: bool = False


class EnabledRegionsCache:
    """DescribeRegions answers per account id, each kept for `ttl_seconds`; safe to share between threads.

    One instance lives as long as the operator and is passed to every observation, so one DescribeRegions
    per account per hour is made however many Trails there are. A denial is kept as long as an answer:
    a missing permission does not come back by itself, and asking again would only fill CloudTrail (the
    account's own audit log) with AccessDenied events.
    """

    def __init__(
        self,
        ttl_seconds: float = REGIONS_TTL_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
        reads: Reads | None = None,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        # Kept in the read layer (aws/reads.py), an hour being how old an answer of these may be.
        self._reads = reads if reads is not None else Reads(ttl_seconds, clock)

    def get(self, account_id: str) -> _RegionsAnswer | None:
        entry = self._reads.peek(("enabled-regions", account_id), self.ttl_seconds)
        return entry[1] if entry is not None else None

    def put(self, account_id: str, answer: _RegionsAnswer) -> None:
        self._reads.put(("enabled-regions", account_id), answer)

    def clear(self) -> None:
        self._reads.forget(("enabled-regions",))


# --------------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------------


def observe_account(
    sessions: AwsSessions,
    account: AccountRef | None,
    *,
    regions: Sequence[str] | None = None,
    bucket_region: str | None = None,
    region_cache: EnabledRegionsCache | None = None,
    monitoring: bool = True,
) -> AccountObservation:
    """Every trail in every enabled region of the account, every bucket they deliver to, the account's
    Block Public Access and (`monitoring`) the metric filters, alarms and topics of the trails' log groups.

    `regions` are the enabled regions to check (DescribeRegions otherwise). `bucket_region` is where S3
    calls go (default: each trail's home region; botocore follows S3's redirect when a bucket is
    elsewhere). Raises AwsError for failures that are not denials (throttling after retries, outages).
    """
    observer = _Observer(sessions, account, bucket_region, monitoring=monitoring)
    enabled, source = observer.enabled_regions(regions, region_cache)
    listed = observer.list_trails(sorted(enabled) if enabled is not None else observer.fallback_regions(()))
    if enabled is None:
        enabled = observer.seen_regions(listed)
    for trail in listed.values():
        observer.read(trail)
    return observer.result(listed, enabled, source, about=set(listed))


def enabled_regions(
    sessions: AwsSessions,
    account: AccountRef | None,
    *,
    given: Sequence[str] | None = None,
    region_cache: EnabledRegionsCache | None = None,
) -> frozenset[str] | None:
    """The account's enabled regions (`given`, else EC2 DescribeRegions); None when they cannot be read."""
    enabled, _ = _Observer(sessions, account, None).enabled_regions(given, region_cache)
    return enabled


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


@dataclass
class _ListedTrail:
    """One trail (one ARN) as DescribeTrails listed it, in every region that listed it."""

    arn: str
    name: str
    home_region: str
    owner: str
    entries: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def settings(self) -> Mapping[str, Any]:
        """The listing of its home region when seen there (a shadow has the same settings)."""
        return self.entries.get(self.home_region) or next(iter(self.entries.values()))


@dataclass(frozen=True)
class _TrailReads:
    """What GetTrailStatus and GetEventSelectors said of a trail (read once, for all its copies)."""

    is_logging: bool
    cloud_watch_delivery: datetime | None
    event_selectors: list[dict[str, Any]] | None
    advanced_event_selectors: list[dict[str, Any]] | None


def _arn_parts(arn: str) -> tuple[str, str]:
    """(region, account) of ``arn:<partition>:cloudtrail:<region>:<account>:trail/<name>``."""
    parts = arn.split(":", 5)
    return (parts[3], parts[4]) if len(parts) == 6 else ("", "")


def _event_selectors(
    response: Mapping[str, Any],
) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]] | None]:
    basic = [dict(s) for s in response.get("EventSelectors") or []] or None
    advanced = [dict(s) for s in response.get("AdvancedEventSelectors") or []] or None
    # Neither (moto, for a trail that never had selectors put) is CloudTrail's default: all management
    # events, which is what the evaluator takes None for.
    return basic, advanced


class _Observer:
    """The reads of one observation, and the notes of what they could not read."""

    def __init__(
        self,
        sessions: AwsSessions,
        account: AccountRef | None,
        bucket_region: str | None,
        *,
        monitoring: bool = False,
    ) -> None:
        self.sessions = sessions
        self.monitoring = monitoring
        self.account = account
        self.bucket_region = bucket_region
        self.notes: list[str] = []
        self.reads: dict[str, _TrailReads] = {}
        self.gone: set[str] = set()
        self.denied_regions: set[str] = set()
        self.described_regions: list[str] = []
        try:
            self.account_id = sessions.account_id(account)
        except _AWS_ERRORS as error:
            _raise_aws_error(error, "GetCallerIdentity")

    # -- regions ----------------------------------------------------------------------------------

    def enabled_regions(
        self, given: Sequence[str] | None, cache: EnabledRegionsCache | None
    ) -> tuple[frozenset[str] | None, RegionsSource]:
        """The enabled regions and where they came from; None when they must be taken from the trails."""
        if given:
            return frozenset(given), "given"
        answer = cache.get(self.account_id) if cache is not None else None
        if answer is None:
            answer = self._describe_regions()
            # A throttle or an outage is asked again next time; a denial is kept (see the cache).
            if cache is not None and (answer.regions is not None or answer.denied):
                cache.put(self.account_id, answer)
        if answer.regions is None:
            self.notes.append(answer.note)
            return None, "seen"
        return answer.regions, "described"

    def _describe_regions(self) -> _RegionsAnswer:
        default_region = self.sessions.default_region
        try:
            response = self.sessions.client("ec2", None, self.account).describe_regions(
                AllRegions=False, Filters=[{"Name": "opt-in-status", "Values": list(_ENABLED_OPT_IN)}]
            )
        except _AWS_ERRORS as error:
            failure = classify(error, "DescribeRegions")
            denied = failure.kind == "access-denied" and not failure.retryable
            return _RegionsAnswer(
                None,
                f"EC2 DescribeRegions {'was denied' if denied else 'failed'} ({failure.code}): enabled "
                "regions taken as those where trails were seen; give the regions to check all of them",
                denied=denied,
            )
        # The filter is applied here too: moto ignores it and answers regions not opted in.
        partition = partition_for_region(default_region or "")
        regions = frozenset(
            str(r["RegionName"])
            for r in response.get("Regions", [])
            if r.get("RegionName")
            and r.get("OptInStatus", _ENABLED_OPT_IN[0]) in _ENABLED_OPT_IN
            and partition_for_region(str(r["RegionName"])) == partition
        )
        return _RegionsAnswer(regions)

    def fallback_regions(self, extra: Iterable[str]) -> list[str]:
        """Where to list trails when the enabled regions are unknown: the default region (calls go there,
        so it is enabled) and the regions the caller names."""
        regions = set(extra)
        if self.sessions.default_region:
            regions.add(self.sessions.default_region)
        return sorted(regions)

    def seen_regions(self, listed: Mapping[str, _ListedTrail]) -> frozenset[str]:
        """The regions known to be enabled without DescribeRegions: those listed without a denial, and
        every home region of a trail seen (a multi-region trail's shadow names its home)."""
        seen = {r for r in self.described_regions if r not in self.denied_regions}
        seen |= {t.home_region for t in listed.values() if t.home_region}
        return frozenset(seen)

    # -- trails -----------------------------------------------------------------------------------

    def list_trails(self, regions: Sequence[str]) -> dict[str, _ListedTrail]:
        """DescribeTrails (shadows included) once in each region, by ARN."""
        listed: dict[str, _ListedTrail] = {}
        self.described_regions = list(regions)
        for region in regions:
            try:
                response = self.sessions.client("cloudtrail", region, self.account).describe_trails(
                    includeShadowTrails=True
                )
            except _AWS_ERRORS as error:
                failure = classify(error, "DescribeTrails")
                if failure.kind != "access-denied" or failure.retryable:
                    _raise_aws_error(error, "DescribeTrails")
                self.denied_regions.add(region)
                self.notes.append(f"{region}: trails not listed ({failure.code}); no trail counted there")
                continue
            for raw in response.get("trailList", []):
                arn = str(raw.get("TrailARN") or "")
                if not arn:
                    continue
                arn_region, owner = _arn_parts(arn)
                trail = listed.get(arn)
                if trail is None:
                    # Not every answer has HomeRegion (moto's GetTrail has none); the ARN names it too.
                    home = str(raw.get("HomeRegion") or arn_region or region)
                    trail = listed[arn] = _ListedTrail(arn, str(raw.get("Name") or ""), home, owner)
                trail.entries[region] = raw
        return listed

    def read(self, trail: _ListedTrail) -> None:
        """GetTrailStatus and GetEventSelectors once for the trail, from its home region."""
        if trail.arn in self.reads or trail.arn in self.gone:
            return
        own = trail.owner in ("", self.account_id)
        # Another account's trail (an organization trail seen from a member account) can only be asked
        # about where this account sees it.
        region = trail.home_region if own or trail.home_region in trail.entries else next(iter(trail.entries))
        client = self.sessions.client("cloudtrail", region, self.account)
        label = f"{trail.home_region}/{trail.name}"
        try:
            status: Mapping[str, Any] = client.get_trail_status(Name=trail.arn)
        except _AWS_ERRORS as error:
            if isinstance(error, ClientError) and error_code(error) == _TRAIL_NOT_FOUND:
                # Deleted between DescribeTrails and now: it no longer exists.
                self._gone(trail, label)
                return
            failure = self._denied_or_raise(error, "GetTrailStatus")
            self.notes.append(f"{label}: status not readable ({failure.code}); counted as not logging")
            status = {}
        try:
            basic, advanced = _event_selectors(client.get_event_selectors(TrailName=trail.arn))
        except _AWS_ERRORS as error:
            if own and isinstance(error, ClientError) and error_code(error) == _TRAIL_NOT_FOUND:
                self._gone(trail, label)
                return
            failure = self._denied_or_raise(error, "GetEventSelectors", also_not_found=not own)
            # Unknown selectors cannot be shown to record anything: an empty list, not CloudTrail's default.
            self.notes.append(
                f"{label}: event selectors not readable ({failure.code}); counted as recording no events"
            )
            basic, advanced = [], None
        self.reads[trail.arn] = _TrailReads(
            is_logging=bool(status.get("IsLogging")),
            cloud_watch_delivery=status.get("LatestCloudWatchLogsDeliveryTime"),
            event_selectors=basic,
            advanced_event_selectors=advanced,
        )

    def _gone(self, trail: _ListedTrail, label: str) -> None:
        self.gone.add(trail.arn)
        self.notes.append(f"{label}: listed but not found when read (deleted meanwhile); left out")

    def _denied_or_raise(
        self, error: BaseException, operation: str, *, also_not_found: bool = False
    ) -> AwsFailure:
        """The failure of a read this observation can do without (a denial, or for another account's
        trail a not-found or an invalid request); anything else is raised as an AwsError."""
        failure = classify(error, operation)
        tolerated = {"access-denied"} | ({"not-found", "invalid"} if also_not_found else set())
        if failure.kind in tolerated and not failure.retryable:
            return failure
        _raise_aws_error(error, operation)

    # -- buckets ----------------------------------------------------------------------------------

    def observe_buckets(self, trails: Iterable[_ListedTrail]) -> dict[str, ObservedBucketState]:
        regions: dict[str, str] = {}
        for trail in trails:
            bucket = str(trail.settings.get("S3BucketName") or "")
            if bucket:
                regions.setdefault(bucket, self.bucket_region or trail.home_region)
        observed: dict[str, ObservedBucketState] = {}
        for bucket, region in sorted(regions.items()):
            state = self._observe_bucket(bucket, region)
            if state is not None:
                observed[bucket] = state
        return observed

    def _observe_bucket(self, bucket: str, region: str) -> ObservedBucketState | None:
        """PublicAccessBlock, policy, logging and ACL of the bucket; None (with a note) when it cannot be
        read, which the evaluator reports as "not observed" rather than guessing."""
        s3 = self.sessions.client("s3", region, self.account)
        parts = {PART_PUBLIC_ACCESS_BLOCK, PART_POLICY, PART_LOGGING}
        foreign = foreign_bucket_key(self.account_id, bucket)
        if self.sessions.reads.peek(foreign, FOREIGN_BUCKET_MAX_AGE):
            self.notes.append(f"bucket {bucket}: not readable (another account's)")
            return None
        try:
            seen = BucketClient(s3, region).observe(bucket, parts=parts)
            if not seen.exists:
                self.notes.append(f"bucket {bucket}: does not exist")
                return None
            if not seen.owned_by_caller:
                self.sessions.reads.put(foreign, True)
                self.notes.append(f"bucket {bucket}: not readable (another account's, or access denied)")
                return None
            grants = s3.get_bucket_acl(Bucket=bucket).get("Grants", [])
            versioning = s3.get_bucket_versioning(Bucket=bucket)
        except json.JSONDecodeError:
            self.notes.append(f"bucket {bucket}: its policy is not valid JSON")
            return None
        except _AWS_ERRORS as error:
            # Whichever S3 read failed: a ClientError names its own operation.
            failure = classify(error)
            if failure.kind in ("access-denied", "not-found") and not failure.retryable:
                self.notes.append(f"bucket {bucket}: not readable ({failure})")
                return None
            _raise_aws_error(error, None)
        public = any(
            grant.get("Grantee", {}).get("Type") == "Group"
            and grant.get("Grantee", {}).get("URI") in _PUBLIC_GRANTEES
            for grant in grants
        )
        return ObservedBucketState(
            name=bucket,
            public_access_block=seen.public_access_block,
            policy=seen.policy,
            logging_enabled=seen.logging_enabled,
            acl_grants_public=public,
            versioning=versioning.get("Status"),
            mfa_delete=versioning.get("MFADelete"),
        )

    def account_public_access_block(self) -> Mapping[str, bool] | None:
        """The account-level Block Public Access (s3control GetPublicAccessBlock); None when the account
        has none, or (with a note) when it cannot be read."""
        client = self.sessions.client("s3control", self.sessions.default_region, self.account)
        try:
            response = client.get_public_access_block(AccountId=self.account_id)
        except _AWS_ERRORS as error:
            if isinstance(error, ClientError) and error_code(error) == _NO_ACCOUNT_BLOCK:
                return None
            # Whatever the failure, the account block is taken as off: it can only turn verdicts to
            # pass, so not knowing it makes them stricter, never wrongly passing.
            failure = classify(error, "GetPublicAccessBlock")
            self.notes.append(f"account Block Public Access not readable ({failure.code}); taken as off")
            return None
        config = response.get("PublicAccessBlockConfiguration") or {}
        return {str(key): bool(value) for key, value in config.items()}

    # -- the Monitoring section ---------------------------------------------------------------------

    def observe_monitoring(self, trails: Iterable[_ListedTrail]) -> ObservedMonitoring:
        """DescribeMetricFilters of each log group a trail delivers to, DescribeAlarms in each region
        holding one, and ListSubscriptionsByTopic of each SNS topic an alarm on a filter's metric notifies."""
        groups: set[tuple[str, str]] = set()
        for trail in trails:
            where = log_group_of(str(trail.settings.get("CloudWatchLogsLogGroupArn") or ""))
            if where is not None:
                groups.add(where)
        filters: dict[str, list[dict[str, Any]]] = {}
        for region, group in sorted(groups):
            logs = self.sessions.client("logs", region, self.account)
            try:
                pages = logs.get_paginator("describe_metric_filters").paginate(logGroupName=group)
                filters[f"{region}/{group}"] = [
                    dict(f) for page in pages for f in page.get("metricFilters", [])
                ]
            except _AWS_ERRORS as error:
                if isinstance(error, ClientError) and error_code(error) == "ResourceNotFoundException":
                    self.notes.append(f"log group {region}/{group}: does not exist")
                    filters[f"{region}/{group}"] = []
                    continue
                failure = self._denied_or_raise(error, "DescribeMetricFilters")
                self.notes.append(f"log group {region}/{group}: metric filters not readable ({failure.code})")
        metrics = {
            (region, str(t.get("metricName")), str(t.get("metricNamespace")))
            for key, entries in filters.items()
            for region in [key.split("/", 1)[0]]
            for entry in entries
            for t in entry.get("metricTransformations") or ()
        }
        alarms: dict[str, list[dict[str, Any]]] = {}
        for region in sorted({region for region, _, _ in metrics}):
            cloudwatch = self.sessions.client("cloudwatch", region, self.account)
            try:
                pages = cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"])
                found = [dict(a) for page in pages for a in page.get("MetricAlarms", [])]
            except _AWS_ERRORS as error:
                failure = self._denied_or_raise(error, "DescribeAlarms")
                self.notes.append(f"{region}: alarms not readable ({failure.code})")
                continue
            alarms[region] = [
                a for a in found if (region, str(a.get("MetricName")), str(a.get("Namespace"))) in metrics
            ]
        topics = sorted(
            {
                str(t)
                for entries in alarms.values()
                for a in entries
                for t in a.get("AlarmActions") or ()
                if ":sns:" in str(t)
            }
        )
        return ObservedMonitoring(
            metric_filters=filters, alarms=alarms, subscribers=self._subscribers(topics)
        )

    def _subscribers(self, topics: Sequence[str]) -> dict[str, int]:
        """Confirmed subscriptions per topic: those whose SubscriptionArn is an ARN (the CIS audit's
        test; a pending one reads "PendingConfirmation")."""
        counts: dict[str, int] = {}
        for topic in topics:
            region = topic.split(":")[3]
            sns = self.sessions.client("sns", region, self.account)
            try:
                pages = sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
                subscriptions = [s for page in pages for s in page.get("Subscriptions", [])]
            except _AWS_ERRORS as error:
                failure = self._denied_or_raise(error, "ListSubscriptionsByTopic", also_not_found=True)
                self.notes.append(f"topic {topic}: subscriptions not readable ({failure.code})")
                continue
            counts[topic] = sum(
                1 for s in subscriptions if str(s.get("SubscriptionArn", "")).startswith("arn:")
            )
        return counts

    # -- result -----------------------------------------------------------------------------------

    def state(
        self,
        listed: Mapping[str, _ListedTrail],
        enabled: frozenset[str],
        buckets: Mapping[str, ObservedBucketState] | None = None,
        account_block: Mapping[str, bool] | None = None,
        monitoring: ObservedMonitoring | None = None,
    ) -> ObservedAccountState:
        """The account as read so far: every copy (home and shadows) of each trail whose reads are done."""
        trails: list[ObservedTrailState] = []
        for arn, trail in sorted(listed.items()):
            reads = self.reads.get(arn)
            if reads is None:
                continue
            settings = trail.settings
            for region in sorted(trail.entries):
                trails.append(
                    ObservedTrailState(
                        name=trail.name,
                        arn=arn,
                        home_region=trail.home_region,
                        region=region,
                        is_multi_region=bool(settings.get("IsMultiRegionTrail")),
                        is_organization_trail=bool(settings.get("IsOrganizationTrail")),
                        is_logging=reads.is_logging,
                        log_file_validation=bool(settings.get("LogFileValidationEnabled")),
                        include_global_service_events=bool(settings.get("IncludeGlobalServiceEvents")),
                        s3_bucket=str(settings.get("S3BucketName") or ""),
                        s3_key_prefix=settings.get("S3KeyPrefix") or None,
                        kms_key_id=settings.get("KmsKeyId") or None,
                        cloud_watch_logs_log_group_arn=settings.get("CloudWatchLogsLogGroupArn") or None,
                        latest_cloud_watch_logs_delivery_time=reads.cloud_watch_delivery,
                        event_selectors=reads.event_selectors,
                        advanced_event_selectors=reads.advanced_event_selectors,
                        is_shadow=region != trail.home_region or trail.owner not in ("", self.account_id),
                    )
                )
        return ObservedAccountState(
            account_id=self.account_id,
            enabled_regions=enabled,
            trails=trails,
            buckets=dict(buckets or {}),
            account_public_access_block=account_block,
            monitoring=monitoring,
        )

    def result(
        self,
        listed: Mapping[str, _ListedTrail],
        enabled: frozenset[str],
        source: RegionsSource,
        *,
        about: set[str],
    ) -> AccountObservation:
        present = {arn for arn in about if arn in self.reads}
        buckets = self.observe_buckets(listed[arn] for arn in sorted(present))
        account_block = self.account_public_access_block() if buckets else None
        monitoring = None
        if self.monitoring:
            monitoring = self.observe_monitoring(listed[arn] for arn in sorted(listed) if arn in self.reads)
        return AccountObservation(
            state=self.state(listed, enabled, buckets, account_block, monitoring),
            notes=tuple(self.notes),
            trail_arns=frozenset(present),
            regions_source=source,
        )


def _raise_aws_error(error: BaseException, operation: str | None) -> NoReturn:
    """Raise `error` as the AwsError that callers of the aws/ layer catch."""
    if isinstance(error, AwsError):
        raise error
    raise AwsError.from_exception(error, operation) from error
