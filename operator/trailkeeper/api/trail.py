"""The Trail kind: region-scoped CloudTrail trails, their bucket, SNS topic and selectors."""

from __future__ import annotations

import ipaddress
import json
import re
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AfterValidator, Field, StrictBool, field_validator, model_validator

from trailkeeper.api.common import (
    DEFAULT_RESYNC_SECONDS,
    ORGANIZATION_ID_PATTERN,
    ROLE_ARN_PATTERN,
    SMS_PATTERN,
    AccountId,
    AccountRef,
    BucketTemplate,
    Condition,
    DeletionPolicy,
    DriftPolicy,
    Model,
    ObjectStatus,
    Region,
    ResyncSeconds,
    S3Prefix,
    bucket_for_region,
    bucket_name_problem,
    endpoint_problem,
)
from trailkeeper.api.selector_limits import ADVANCED_CONDITION_VALUES_PER_TRAIL, selector_limit_problems

OWNER_TAG_KEY = "trailkeeper.io/owner"
# Which of a resource's tag keys trailkeeper set (core/tags.py), so that it removes only those.
MANAGED_TAGS_KEY = "trailkeeper.io/tags"
# Keys trailkeeper sets itself; a spec may not use them. AWS allows 50 tags per resource: with these two,
# a spec holds at most 48.
RESERVED_TAG_PREFIX = "trailkeeper.io/"
MAX_SPEC_TAGS = 48


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
    """S3 bucket the trails deliver to. `{region}` in the name is replaced by each trail's region, giving one
    bucket per region (`acme-audit-{region}`); without it all regions share one bucket, which lives in the
    first region delivering to it. Every resulting name must follow the S3 bucket naming rules: 3 to 63
    lowercase letters, digits, `.` and `-`, beginning and ending with a letter or digit; no `..`, `.-` or
    `-.`; not an IPv4 address; no prefix `xn--`, `sthree-` or `amzn-s3-demo-`; no suffix `-s3alias`,
    `--ol-s3`, `.mrap`, `--x-s3` or `--table-s3`. trailkeeper adds its own statements to the bucket policy
    and leaves the others alone.
    """
    create_bucket: StrictBool = True
    """`true`: create the bucket when it is missing, in its region, with all four public-access blocks on,
    versioning on and default encryption (SSE-S3, or SSE-KMS with `kmsKeyId`), tagged
    `trailkeeper.io/owner`; those settings of a bucket trailkeeper created are restored on every pass that
    is not a periodic drift check. `false`: the bucket must exist; when it is missing the Trail reports
    `Ready=False`, reason `NoSuchBucket`.
    """
    key_prefix: S3Prefix = ""
    """S3 key prefix of the log files: CloudTrail writes below `<keyPrefix>/AWSLogs/<account-id>/`. At most
    200 characters; no leading or trailing `/`, no empty, `.` or `..` segment, no `AWSLogs` segment
    (CloudTrail adds it), no `*`, `?`, `$`, `\\`, braces or control characters. Empty: the logs start at
    `AWSLogs/`.
    """
    kms_key_id: Annotated[
        str | None, Field(min_length=1, max_length=2048, pattern=r"^[A-Za-z0-9:/_.=+@-]+$")
    ] = None
    """KMS key that encrypts the log files (SSE-KMS), as key id, key ARN, alias name (`alias/…`) or alias ARN;
    it is also the default encryption key of a bucket trailkeeper creates. An alias is resolved to its key
    ARN before it is compared with what CloudTrail reports. Unset: SSE-S3.
    """
    source_accounts: Annotated[list[AccountId], Field(max_length=200)] = []
    """Further 12-digit AWS account ids whose trails may write into the bucket (multi-account aggregation):
    the bucket policy gets a write path `AWSLogs/<account-id>/*` for each, limited by `aws:SourceAccount`.
    At most 200, no duplicates.
    """
    organization_id: Annotated[str | None, Field(pattern=ORGANIZATION_ID_PATTERN)] = None
    """AWS Organizations id (`o-` and 10 to 32 lowercase letters or digits): adds the organization trail's
    write path `AWSLogs/<org-id>/*` to the bucket policy.
    """

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
    "sms": (rf"^{SMS_PATTERN}$", "a phone number in E.164 form"),
}


class Subscription(Model):
    protocol: Protocol
    """SNS protocol of the subscription; it decides the form of `endpoint`."""
    endpoint: Annotated[str, Field(min_length=1, max_length=2048)]
    """Where SNS delivers, in the form the protocol takes: `sqs` an SQS queue ARN, `lambda` a Lambda function
    ARN, `firehose` a Firehose delivery stream ARN, `email`/`email-json` an email address, `http` an
    `http://` URL, `https` an `https://` URL, `sms` a phone number in E.164 form (`+` and 6 to 15 digits).
    At most 2048 characters.
    """
    raw_message_delivery: StrictBool = False
    """SNS raw message delivery (the message without the SNS JSON envelope); `true` only for `sqs`, `http`,
    `https` and `firehose`.
    """
    filter_policy: dict[str, Any] | None = None
    """SNS filter policy: a JSON object of at most 256 KiB that decides which notifications reach this
    endpoint. Unset: all of them.
    """

    @model_validator(mode="after")
    def _endpoint_fits_protocol(self) -> Self:
        pattern, what = _ENDPOINT_PATTERNS[str(self.protocol)]
        problem = endpoint_problem(str(self.protocol), self.endpoint)
        if not re.fullmatch(pattern, self.endpoint) or problem:
            why = f" ({problem})" if problem else ""
            raise ValueError(f"endpoint {self.endpoint!r} must be {what} for protocol {self.protocol}{why}")
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
    """Name of the SNS topic, 1 to 256 letters, digits, `_` and `-`; created in each region when missing
    (tagged with the owner tag). trailkeeper adds a statement to its policy letting CloudTrail publish,
    limited to these trails by `aws:SourceArn`.
    """
    subscriptions: Annotated[list[Subscription], Field(max_length=100)] = []
    """Subscriptions on the topic, reconciled as a set keyed by (`protocol`, `endpoint`): each is created when
    missing and one removed from the spec is unsubscribed; subscriptions trailkeeper was never asked for
    are left alone. At most 100; each (protocol, endpoint) pair at most once.
    """

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
    """Resource type of the data events, `AWS::<service>::<resource>`, e.g. `AWS::S3::Object` or
    `AWS::Lambda::Function`.
    """
    values: Annotated[list[Annotated[str, Field(min_length=1, max_length=2048)]], Field(max_length=250)] = []
    """ARNs or ARN prefixes of the resources, e.g. `arn:aws:s3` for every bucket or `arn:aws:s3:::acme-data/`
    for one; at most 250. Empty: every resource of the type.
    """


class EventSelector(Model):
    read_write_type: ReadWriteType = ReadWriteType.ALL
    """Which management and data events to record: `All`, `ReadOnly` (only read-only API calls) or `WriteOnly`
    (only calls that change something).
    """
    include_management_events: StrictBool = True
    """Record management (control-plane) events."""
    exclude_management_event_sources: Annotated[
        list[Annotated[str, Field(max_length=128)]], Field(max_length=10)
    ] = []
    """Event sources to leave out of the management events, e.g. `kms.amazonaws.com` or
    `rdsdata.amazonaws.com`; at most 10.
    """
    data_resources: Annotated[list[DataResource], Field(max_length=250)] = []
    """Data events to record (object- or function-level activity); at most 250. Empty: no data events."""


_SelectorValue = Annotated[str, Field(min_length=1, max_length=2048)]
# AWS allows 500 condition values in all of a trail's advanced selectors; one operator can hold no more.
_SelectorValues = Annotated[list[_SelectorValue], Field(max_length=ADVANCED_CONDITION_VALUES_PER_TRAIL)]


class FieldSelector(Model):
    field: Annotated[str, Field(min_length=1, max_length=1000, pattern=r"^[\w|\d|\.|_]+$")]
    """Field of the event record the condition tests, e.g. `eventCategory`, `eventSource`, `eventName`,
    `readOnly`, `resources.type` or `resources.ARN`; letters, digits, `.` and `_`.
    """
    equals: _SelectorValues | None = None
    """Values the field must equal (any of them)."""
    starts_with: _SelectorValues | None = None
    """Prefixes the field must start with (any of them)."""
    ends_with: _SelectorValues | None = None
    """Suffixes the field must end with (any of them)."""
    not_equals: _SelectorValues | None = None
    """Values the field must not equal."""
    not_starts_with: _SelectorValues | None = None
    """Prefixes the field must not start with."""
    not_ends_with: _SelectorValues | None = None
    """Suffixes the field must not end with."""

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
    """Descriptive name of the selector, at most 1000 characters."""
    field_selectors: Annotated[list[FieldSelector], Field(min_length=1, max_length=50)]
    """Conditions an event must all meet to be recorded, 1 to 50; each needs at least one non-empty operator.
    """


class Insight(StrEnum):
    API_CALL_RATE = "ApiCallRateInsight"
    API_ERROR_RATE = "ApiErrorRateInsight"


class CloudWatchLogs(Model):
    """CloudWatch Logs delivery: both ARNs or neither."""

    log_group_arn: Annotated[
        str | None, Field(pattern=r"^arn:aws[a-z-]*:logs:[a-z0-9-]+:[0-9]{12}:log-group:.+$")
    ] = None
    """ARN of the CloudWatch Logs log group, `arn:<partition>:logs:<region>:<account>:log-group:<name>`; with
    or without the trailing `:*` it is the same group. Only together with `roleArn`.
    """
    role_arn: Annotated[str | None, Field(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$")] = None
    """ARN of the IAM role CloudTrail assumes to write to the log group. Only together with `logGroupArn`."""

    @model_validator(mode="after")
    def _both_or_neither(self) -> Self:
        if (self.log_group_arn is None) != (self.role_arn is None):
            raise ValueError("logGroupArn and roleArn must be given together (both or neither)")
        return self


# The retention periods CloudWatch Logs PutRetentionPolicy accepts.
LOG_RETENTION_DAYS = (
    *(1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731),
    *(1096, 1827, 2192, 2557, 2922, 3288, 3653),
)


# spec.monitoring decides the trails' CloudWatchLogsLogGroupArn and CloudWatchLogsRoleArn; the two ways
# of saying it are never mixed (also checked by the API server, api/admission.py).
MONITORING_WITH_CLOUD_WATCH_LOGS = (
    "cloudWatchLogs: must be unset with monitoring, which sets the trails' CloudWatch Logs delivery (log "
    "group and role) itself; to deliver to an existing group through an existing role, name them in "
    "monitoring.logGroupName (with createLogGroup: false) and monitoring.roleArn"
)
MONITORING_WITHOUT_TOPIC = (
    "monitoring: the alarms need a topic: set notifications or monitoring.alarmTopicArn"
)


class Monitoring(Model):
    """The CIS Monitoring section made by the Trail: a CloudWatch Logs group its trails deliver to
    (through an IAM role), and on it the CIS metric filters, each with an alarm notifying an SNS topic."""

    log_group_name: Annotated[
        str | None, Field(min_length=1, max_length=512, pattern=r"^[\.\-_/#A-Za-z0-9]+$")
    ] = None
    """Log group the trails deliver to, in each trail's home region. Default:
    `aws-cloudtrail-logs/<trail name>`.
    """
    create_log_group: StrictBool = True
    """Create the log group when it does not exist (false: it must exist)."""
    retention_days: int | None = None
    """Retention in days of a log group trailkeeper creates, one of the values PutRetentionPolicy accepts.
    Default: never expire.
    """
    # Bounded, like every string a CEL rule walks (the API server's cost estimate).
    role_arn: Annotated[str | None, Field(max_length=600, pattern=ROLE_ARN_PATTERN)] = None
    """An existing role CloudTrail delivers through. Default: trailkeeper creates
    `trailkeeper-cloudtrail-<trail name>`, allowed only logs:CreateLogStream and logs:PutLogEvents on the
    log group.
    """
    alarm_topic_arn: Annotated[
        str | None,
        Field(max_length=340, pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$"),
    ] = None
    """SNS topic the alarms notify. Default: the Trail's notifications topic in the log group's region."""
    metric_namespace: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^:$][^:]*$")] = (
        "CISBenchmark"
    )
    """CloudWatch namespace of the metrics the filters publish."""

    @field_validator("retention_days")
    @classmethod
    def _known_retention(cls, value: int | None) -> int | None:
        if value is not None and value not in LOG_RETENTION_DAYS:
            raise ValueError(f"must be one of {', '.join(str(d) for d in LOG_RETENTION_DAYS)}")
        return value


_TagKey = Annotated[str, Field(min_length=1, max_length=128)]
_TagValue = Annotated[str, Field(max_length=256)]


class TrailSpec(Model):
    """Desired state: which trails, where they deliver, and what trailkeeper may do in AWS."""

    trail_name: TrailName | None = None
    """Name of the trail in every region. Unset: `metadata.name`, which must then obey the same rules.
    CloudTrail's rules: 3 to 128 letters, digits, `.`, `_` and `-`, beginning and ending with a letter or
    digit, no two of `.`, `_`, `-` next to each other, not an IPv4 address. Immutable: the API server
    refuses a change of the name (set or defaulted).
    """
    regions: Annotated[list[Region], Field(min_length=1, max_length=40)]
    """AWS regions to keep a trail in, e.g. `[us-east-1, eu-west-1]`: one region-scoped trail per entry, all
    named `trailName` (with `multiRegion`, the single home region). Each must be a region CloudTrail is
    available in; 1 to 40, no duplicates. A region removed from the list has its trail deleted with
    `deletionPolicy: Delete` and left alone with `Retain`.
    """
    multi_region: StrictBool = False
    """`true`: one multi-region trail in the home region `regions[0]` instead of one trail per region;
    `regions` must then hold exactly one entry.
    """
    global_service_events_region: Region | None = None
    """The one region whose trail gets `IncludeGlobalServiceEvents=true`, so events of global services (IAM,
    STS, CloudFront) are recorded once, not once per region. Must be one of `regions`. Unset: `regions[0]`.
    A multi-region trail always includes them.
    """
    logging: StrictBool = True
    """`true`: the trails log (StartLogging; a trail made through the API does not log until started).
    `false`: StopLogging, the trails stay but record nothing.
    """
    log_file_validation: StrictBool = True
    """Log file integrity validation: CloudTrail writes hourly digest files that prove the log files were not
    changed.
    """
    destination: Destination
    """Where the trails deliver log files: the S3 bucket, its key prefix and encryption, and who else may
    write to it.
    """
    notifications: Notifications | None = None
    """SNS notification of each log file delivery. Unset: no topic. Removing it (or renaming the topic) takes
    trailkeeper's statements and the spec's subscriptions off the old topic.
    """
    event_selectors: Annotated[list[EventSelector], Field(max_length=5)] = []
    """Basic event selectors, at most 5. Mutually exclusive with `advancedEventSelectors`. Neither given:
    every read and write management event and no data events (written out explicitly, so a hand-made change
    shows as drift).
    """
    advanced_event_selectors: Annotated[list[AdvancedEventSelector], Field(max_length=500)] = []
    """Advanced event selectors (field conditions on the event record), at most 500. Mutually exclusive with
    `eventSelectors`.
    """
    insights: Annotated[list[Insight], Field(max_length=2)] = []
    """CloudTrail Insights types to enable: `ApiCallRateInsight`, `ApiErrorRateInsight`; no duplicates. Empty:
    Insights off.
    """
    cloud_watch_logs: CloudWatchLogs | None = None
    """Also deliver the events to a CloudWatch Logs log group: give `logGroupArn` and `roleArn` together, or
    neither. Unset: no CloudWatch Logs delivery.
    """
    monitoring: Monitoring | None = None
    """The CIS Monitoring section (log metric filters and alarms) made by the Trail. It sets the trails'
    CloudWatch Logs delivery itself, so `cloudWatchLogs` must then be unset. Needs `notifications` or
    `monitoring.alarmTopicArn`.
    """
    tags: Annotated[dict[_TagKey, _TagValue], Field(max_length=MAX_SPEC_TAGS)] = {}
    """Tags on the trails and on the buckets and topics trailkeeper creates, kept equal to this map on every
    pass that changes the spec and, like any setting, on drift checks. At most 48: AWS allows 50 per
    resource and trailkeeper adds two, `trailkeeper.io/owner` and `trailkeeper.io/tags` (which of the
    keys it set, so it removes a key the spec dropped and no other). Tags others add are left alone. Keys:
    1 to 128 letters, digits, spaces and `_.:/=+-@`, not beginning with `trailkeeper.io/` or `aws:`;
    values at most 256 characters.
    """
    account: AccountRef = AccountRef()
    """Cross-account access: with `roleArn` set, every AWS call made for this object goes through STS
    AssumeRole into that role. Unset or empty: the operator's own credentials.
    """
    adopt: StrictBool = False
    """`true`: take over an existing trail of the same name that has no `trailkeeper.io/owner` tag, or whose
    tag names a Trail that no longer exists, and set the tag to this Trail. A trail of a Trail that exists
    (in any namespace) is never taken over. `false`, or a live owner: the trail is never modified and the
    Trail reports `Ready=False`, reason `Conflict`, naming the owner.
    """
    drift_policy: DriftPolicy = DriftPolicy.CORRECT
    """What a periodic drift check does when AWS differs from the spec. `Correct`: put AWS back to the spec
    and report the difference with `corrected: true`. `Report`: change nothing, list the difference in
    `status.drift` with `Drifted=True` and `Ready=False` (reason `Drifted`). A spec change is always
    applied, whatever the policy.
    """
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN
    """What deleting the Trail does in AWS. `Retain`: nothing. `Delete`: deletes the trails that carry its
    owner tag, removes its own bucket and topic policy statements and the spec's subscriptions, deletes a
    topic it created when no other subscription and no other Trail's statement remains on it, and a bucket
    it created when no other Trail's statement remains and it holds no object or object version. Also
    applies to regions removed from `regions`.
    """
    resync_seconds: ResyncSeconds = DEFAULT_RESYNC_SECONDS
    """Period of the periodic drift check, in seconds, 30 to 86400. Each object's period is spread by ±10 %
    with a stable hash of its uid so objects with the same period do not all check at once; the operator's
    `--resync-scale` multiplies it.
    """

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
            if key.startswith(RESERVED_TAG_PREFIX):
                raise ValueError(
                    f"tag key {key!r} is reserved: trailkeeper sets the {RESERVED_TAG_PREFIX} keys"
                )
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
        if self.monitoring is not None:
            if self.cloud_watch_logs is not None:
                raise ValueError(MONITORING_WITH_CLOUD_WATCH_LOGS)
            if self.monitoring.alarm_topic_arn is None and self.notifications is None:
                raise ValueError(MONITORING_WITHOUT_TOPIC)
        for region in self.regions:
            problem = bucket_name_problem(bucket_for_region(self.destination.bucket, region))
            if problem:
                raise ValueError(f"destination.bucket: for region {region} the bucket name {problem}")
        return self

    @model_validator(mode="after")
    def _selector_limits(self) -> Self:
        if problems := selector_limit_problems(self.event_selectors, self.advanced_event_selectors):
            raise ValueError("; ".join(problems))
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
    """Region of the trail."""
    trail_arn: str | None = None
    """ARN of the trail."""
    is_logging: bool | None = None
    """Whether the trail logs, as observed (or as just set)."""
    bucket: str | None = None
    """Bucket the trail delivers to."""
    topic_arn: str | None = None
    """ARN of the SNS topic, when `notifications` is set."""
    latest_delivery_error: str | None = None
    """CloudTrail's `LatestDeliveryError` for the trail (e.g. a bucket policy that refuses CloudTrail), if
    any.
    """
    error: str | None = None
    """Why this region did not reach the spec (`<AWS error code>: <message>`); null when it did."""


class ComplianceResult(Model):
    control: str
    """Control id: a CIS control's number in CIS v1.5.0 (`CIS-2.1.3`, `CIS-3.1` … `CIS-3.11`, `CIS-4.1` …
    `CIS-4.15`), or a trailkeeper control stricter than the benchmark text (`TK-…`). docs/compliance.md
    lists them.
    """
    title: str
    """What the control checks, with its number in each CIS version."""
    passed: bool | None = None
    """true: passed; false: failed; null: not decidable yet (Unknown), with the reason in `detail`."""
    detail: str = ""
    """Which trails or buckets passed or failed, and why."""
    cis: dict[str, str] = {}
    """The control's number in each CIS AWS Foundations Benchmark version that has it (version to number);
    empty for trailkeeper's own TK- controls.
    """
    remediation: str | None = None
    """What fixes the control when it does not pass."""


class TrailStatus(ObjectStatus):
    """Observed state, written by the operator only: the trails, drift, CIS compliance and conditions."""

    conditions: list[Condition] = []
    """Kubernetes-convention conditions `Ready`, `Reconciling` and `Stalled` (kstatus: Stalled True when only
    a person can move it on, Reconciling True while a failure is retried), `Synced`, `Drifted` and `Compliant`
    (`Unknown`/`NotEvaluated` from the first status until the controls are evaluated). Reasons: `Reconciled`,
    `InvalidSpec`, `Conflict`, `NoSuchBucket`, `Drifted` (Ready); `NoDrift`, `DriftCorrected`,
    `DriftDetected` (Drifted); `AllControlsPassed`, `ControlsFailed`, `NotEvaluated` (Compliant); otherwise
    the AWS error code that stopped the pass, e.g. `AccessDenied`. docs/operations.md explains each.
    """
    region_count: int | None = None
    """How many regions `spec.regions` lists (a column of `kubectl get -o wide`: JSONPath cannot count)."""
    regions: list[RegionStatus] = []
    """One entry per trail: per region, or the one multi-region trail."""
    compliance: list[ComplianceResult] = []
    """CIS AWS Foundations Benchmark CloudTrail controls, evaluated over what AWS holds; summarized by the
    `Compliant` condition.
    """
    trail_name: str | None = None
    """Name the trails were made with; the spec's `trailName` (or `metadata.name`) must keep equal to it."""
    account_id: str | None = None
    """AWS account the trails are in."""
    last_compliance_check_time: str | None = None
    """End of the last evaluation of the CIS controls (RFC 3339, UTC)."""
