"""An account as the aws/ layer observed it, for the judge (`core.compliance.evaluate`).

These shapes sit apart from the judge so that the reads (aws/account_state.py) need not import it: the
aws/ layer fills them in, the core judges them, and `trailkeeper audit` and the operator share both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, kw_only=True)
class ObservedTrailState:
    """One trail as DescribeTrails / GetTrailStatus / GetEventSelectors report it in one region.

    A multi-region trail is listed in every region; outside its home region that copy is a shadow
    (`is_shadow`) with the same ARN and settings, so the evaluation counts each ARN once.
    """

    name: str
    arn: str
    home_region: str
    region: str
    is_multi_region: bool
    is_organization_trail: bool
    is_logging: bool
    log_file_validation: bool
    include_global_service_events: bool
    s3_bucket: str
    s3_key_prefix: str | None = None
    kms_key_id: str | None = None
    cloud_watch_logs_log_group_arn: str | None = None
    latest_cloud_watch_logs_delivery_time: datetime | None = None
    # GetEventSelectors returns either EventSelectors or AdvancedEventSelectors (PascalCase keys, as
    # boto3 gives them). Both None means they were not read: taken as CloudTrail's default for a new
    # trail, all read and write management events and no data events.
    event_selectors: Sequence[Mapping[str, Any]] | None = None
    advanced_event_selectors: Sequence[Mapping[str, Any]] | None = None
    is_shadow: bool = False


@dataclass(frozen=True, kw_only=True)
class ObservedBucketState:
    """A delivery bucket's access settings.

    `public_access_block` is GetPublicAccessBlock's PublicAccessBlockConfiguration (None when the
    bucket has none); `policy` is the parsed bucket policy (None when there is none); `versioning` and
    `mfa_delete` are GetBucketVersioning's Status and MFADelete (None when never set).
    """

    name: str
    public_access_block: Mapping[str, bool] | None = None
    policy: Mapping[str, Any] | None = None
    logging_enabled: bool = False
    acl_grants_public: bool = False
    versioning: str | None = None
    mfa_delete: str | None = None


@dataclass(frozen=True, kw_only=True)
class ObservedMonitoring:
    """What the Monitoring section's audit reads, for the log groups of the account's trails.

    `metric_filters` maps "region/log-group" to DescribeMetricFilters' entries (a group absent from it
    was not read); `alarms` maps a region to DescribeAlarms' MetricAlarms; `subscribers` maps an SNS
    topic ARN to how many of its subscriptions are confirmed (SubscriptionArn is an ARN).
    """

    metric_filters: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    alarms: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    subscribers: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ObservedAccountState:
    """Every trail seen in every enabled region of one account, the buckets they deliver to, the
    account-level Block Public Access (s3control; None when it has none or it could not be read) and
    what the Monitoring section needs (None: not read, those controls are not evaluated)."""

    account_id: str
    enabled_regions: frozenset[str]
    trails: Sequence[ObservedTrailState]
    buckets: Mapping[str, ObservedBucketState]
    account_public_access_block: Mapping[str, bool] | None = None
    monitoring: ObservedMonitoring | None = None


def log_group_of(arn: str) -> tuple[str, str] | None:
    """(region, log group name) of a CloudWatchLogsLogGroupArn (``…:log-group:<name>:*``)."""
    parts = arn.split(":")
    if len(parts) < 7 or parts[2] != "logs" or parts[5] != "log-group":
        return None
    return parts[3], parts[6]
