"""The Trail kind: region-scoped CloudTrail trails, their bucket, SNS topic and selectors."""

from __future__ import annotations

import ipaddress
import json
import re
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AfterValidator, Field, StrictBool, field_validator, model_validator

from trailkeeper.api.common import (
    ORGANIZATION_ID_PATTERN,
    AccountId,
    AccountRef,
    BucketTemplate,
    Condition,
    DeletionPolicy,
    DriftEntry,
    DriftPolicy,
    Model,
    Phase,
    Region,
    ResyncSeconds,
    S3Prefix,
    bucket_for_region,
    bucket_name_problem,
)

OWNER_TAG_KEY = "trailkeeper.io/owner"


def trail_name_problem(name: str) -> str | None:
    """Why `name` is not a valid CloudTrail trail name, or None (CloudTrail CreateTrail `Name` rules)."""
    if not 3 <= len(name) <= 128:
        return "must be 3 to 128 characters long"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]", name):
        return (
            "may hold only letters, digits, '.', '_' and '-', and must begin and end with a letter or digit"
        )
    if re.search(r"[._-]{2}", name):
        return "must not have adjacent periods, underscores or dashes (like 'my-_trail' or 'my--trail')"
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return None
    return "must not be formatted as an IP address"


def _check_trail_name(value: str) -> str:
    problem = trail_name_problem(value)
    if problem:
        raise ValueError(f"{value!r} is not a valid trail name: {problem}")
    return value


TrailName = Annotated[
    str,
    Field(min_length=3, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]$"),
    AfterValidator(_check_trail_name),
]


class Destination(Model):
    """Where the trails deliver log files."""

    bucket: BucketTemplate
    create_bucket: StrictBool = True
    key_prefix: S3Prefix = ""
    kms_key_id: Annotated[
        str | None, Field(min_length=1, max_length=2048, pattern=r"^[A-Za-z0-9:/_.=+@-]+$")
    ] = None
    source_accounts: Annotated[list[AccountId], Field(max_length=200)] = []
    organization_id: Annotated[str | None, Field(pattern=ORGANIZATION_ID_PATTERN)] = None

    @field_validator("source_accounts")
    @classmethod
    def _unique_accounts(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("account ids must be unique")
        return value


class Protocol(StrEnum):
    SQS = "sqs"
    EMAIL = "email"
    EMAIL_JSON = "email-json"
    HTTP = "http"
    HTTPS = "https"
    LAMBDA = "lambda"
    SMS = "sms"
    FIREHOSE = "firehose"


_ENDPOINT_PATTERNS: dict[str, tuple[str, str]] = {
    "sqs": (r"^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]{1,80}$", "an SQS queue ARN"),
    "lambda": (
        r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9$_-]+)?$",
        "a Lambda function ARN",
    ),
    "firehose": (
        r"^arn:aws[a-z-]*:firehose:[a-z0-9-]+:[0-9]{12}:deliverystream/[A-Za-z0-9_.-]{1,64}$",
        "a Firehose delivery stream ARN",
    ),
    "email": (r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "an email address"),
    "email-json": (r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "an email address"),
    "http": (r"^http://[^\s]+$", "an http:// URL"),
    "https": (r"^https://[^\s]+$", "an https:// URL"),
    "sms": (r"^\+?[0-9]{6,15}$", "a phone number in E.164 form"),
}


class Subscription(Model):
    protocol: Protocol
    endpoint: Annotated[str, Field(min_length=1, max_length=2048)]
    raw_message_delivery: StrictBool = False
    filter_policy: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _endpoint_fits_protocol(self) -> Self:
        pattern, what = _ENDPOINT_PATTERNS[str(self.protocol)]
        if not re.match(pattern, self.endpoint):
            raise ValueError(f"endpoint {self.endpoint!r} must be {what} for protocol {self.protocol}")
        if self.raw_message_delivery and str(self.protocol) not in ("sqs", "http", "https", "firehose"):
            raise ValueError("rawMessageDelivery applies only to sqs, http, https and firehose subscriptions")
        if self.filter_policy is not None and len(json.dumps(self.filter_policy)) > 256 * 1024:
            raise ValueError("filterPolicy must be at most 256 KiB of JSON")
        return self

    @property
    def key(self) -> tuple[str, str]:
        """Subscriptions are reconciled as a set keyed by (protocol, endpoint)."""
        return (str(self.protocol), self.endpoint)


class Notifications(Model):
    topic_name: Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_-]{1,256}$")]
    subscriptions: Annotated[list[Subscription], Field(max_length=100)] = []

    @field_validator("subscriptions")
    @classmethod
    def _unique_subscriptions(cls, value: list[Subscription]) -> list[Subscription]:
        keys = [s.key for s in value]
        if len(set(keys)) != len(keys):
            raise ValueError("each (protocol, endpoint) pair may appear only once")
        return value


class ReadWriteType(StrEnum):
    ALL = "All"
    READ_ONLY = "ReadOnly"
    WRITE_ONLY = "WriteOnly"


class DataResource(Model):
    type: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^AWS::[A-Za-z0-9]+::[A-Za-z0-9]+$")]
    values: Annotated[list[Annotated[str, Field(min_length=1, max_length=2048)]], Field(max_length=250)] = []


class EventSelector(Model):
    read_write_type: ReadWriteType = ReadWriteType.ALL
    include_management_events: StrictBool = True
    exclude_management_event_sources: Annotated[list[str], Field(max_length=10)] = []
    data_resources: Annotated[list[DataResource], Field(max_length=250)] = []


_SelectorValue = Annotated[str, Field(min_length=1, max_length=2048)]


class FieldSelector(Model):
    field: Annotated[str, Field(min_length=1, max_length=1000, pattern=r"^[\w|\d|\.|_]+$")]
    equals: list[_SelectorValue] | None = None
    starts_with: list[_SelectorValue] | None = None
    ends_with: list[_SelectorValue] | None = None
    not_equals: list[_SelectorValue] | None = None
    not_starts_with: list[_SelectorValue] | None = None
    not_ends_with: list[_SelectorValue] | None = None

    @model_validator(mode="after")
    def _has_an_operator(self) -> Self:
        operators = (
            self.equals,
            self.starts_with,
            self.ends_with,
            self.not_equals,
            self.not_starts_with,
            self.not_ends_with,
        )
        if not any(operators):
            raise ValueError(
                f"field selector on {self.field!r} needs at least one non-empty operator "
                "(equals, startsWith, endsWith, notEquals, notStartsWith, notEndsWith)"
            )
        return self


class AdvancedEventSelector(Model):
    name: Annotated[str | None, Field(max_length=1000)] = None
    field_selectors: Annotated[list[FieldSelector], Field(min_length=1, max_length=50)]


class Insight(StrEnum):
    API_CALL_RATE = "ApiCallRateInsight"
    API_ERROR_RATE = "ApiErrorRateInsight"


class CloudWatchLogs(Model):
    """CloudWatch Logs delivery: both ARNs or neither."""

    log_group_arn: Annotated[
        str | None, Field(pattern=r"^arn:aws[a-z-]*:logs:[a-z0-9-]+:[0-9]{12}:log-group:.+$")
    ] = None
    role_arn: Annotated[str | None, Field(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$")] = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> Self:
        if (self.log_group_arn is None) != (self.role_arn is None):
            raise ValueError("logGroupArn and roleArn must be given together (both or neither)")
        return self


_TagKey = Annotated[str, Field(min_length=1, max_length=128)]
_TagValue = Annotated[str, Field(max_length=256)]


class TrailSpec(Model):
    """What the user asks for (api.md, Trail.spec)."""

    trail_name: TrailName | None = None
    regions: Annotated[list[Region], Field(min_length=1, max_length=40)]
    multi_region: StrictBool = False
    global_service_events_region: Region | None = None
    logging: StrictBool = True
    log_file_validation: StrictBool = True
    destination: Destination
    notifications: Notifications | None = None
    event_selectors: Annotated[list[EventSelector], Field(max_length=5)] = []
    advanced_event_selectors: Annotated[list[AdvancedEventSelector], Field(max_length=500)] = []
    insights: Annotated[list[Insight], Field(max_length=2)] = []
    cloud_watch_logs: CloudWatchLogs | None = None
    tags: Annotated[dict[_TagKey, _TagValue], Field(max_length=49)] = {}
    account: AccountRef = AccountRef()
    adopt: StrictBool = False
    drift_policy: DriftPolicy = DriftPolicy.CORRECT
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN
    resync_seconds: ResyncSeconds = 300

    @field_validator("regions")
    @classmethod
    def _unique_regions(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("regions must be unique")
        return value

    @field_validator("insights")
    @classmethod
    def _unique_insights(cls, value: list[Insight]) -> list[Insight]:
        if len(set(value)) != len(value):
            raise ValueError("insight types must be unique")
        return value

    @field_validator("tags")
    @classmethod
    def _tags_not_reserved(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key == OWNER_TAG_KEY:
                raise ValueError(f"tag key {key!r} is reserved: trailkeeper sets it to mark ownership")
            if key.lower().startswith("aws:"):
                raise ValueError(f"tag key {key!r} must not begin with 'aws:' (reserved by AWS)")
            if not re.fullmatch(r"[\w .:/=+@-]+", key):
                raise ValueError(f"tag key {key!r} may hold only letters, digits, spaces and _.:/=+-@")
        return value

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Self:
        if self.multi_region and len(self.regions) != 1:
            raise ValueError("regions: a multiRegion trail has exactly one (home) region")
        if (
            self.global_service_events_region is not None
            and self.global_service_events_region not in self.regions
        ):
            raise ValueError(
                f"globalServiceEventsRegion: {self.global_service_events_region!r} must be one of regions"
            )
        if self.event_selectors and self.advanced_event_selectors:
            raise ValueError(
                "advancedEventSelectors: eventSelectors and advancedEventSelectors "
                "are mutually exclusive: give one of them"
            )
        for region in self.regions:
            problem = bucket_name_problem(bucket_for_region(self.destination.bucket, region))
            if problem:
                raise ValueError(f"destination.bucket: for region {region} the bucket name {problem}")
        return self

    def effective_trail_name(self, metadata_name: str) -> str:
        return self.trail_name or metadata_name

    @property
    def effective_global_region(self) -> str:
        return self.global_service_events_region or self.regions[0]

    def bucket_for(self, region: str) -> str:
        return bucket_for_region(self.destination.bucket, region)


class RegionStatus(Model):
    region: str
    trail_arn: str | None = None
    is_logging: bool | None = None
    bucket: str | None = None
    topic_arn: str | None = None
    latest_delivery_error: str | None = None
    error: str | None = None


class ComplianceResult(Model):
    control: str
    title: str
    passed: bool
    detail: str = ""


class TrailStatus(Model):
    """What the operator reports (api.md, Trail.status)."""

    observed_generation: int | None = None
    phase: Phase = Phase.PENDING
    # Ready, Reconciling and Stalled (kstatus), Synced, Drifted, and Compliant (Unknown until evaluated).
    conditions: list[Condition] = []
    # How many regions spec.regions lists (a column of `kubectl get -o wide`: JSONPath cannot count).
    region_count: int | None = None
    regions: list[RegionStatus] = []
    drift: list[DriftEntry] = []
    compliance: list[ComplianceResult] = []
    trail_name: str | None = None
    account_id: str | None = None
    last_sync_time: str | None = None
    last_drift_check_time: str | None = None
    last_compliance_check_time: str | None = None
