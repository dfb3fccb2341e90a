"""The CloudTrail trails a Trail spec becomes: one per region (or one multi-region trail), in boto3 terms."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from trailkeeper.api.trail import AdvancedEventSelector, EventSelector, FieldSelector, TrailSpec
from trailkeeper.core.tags import desired_tags

# What CloudTrail records when a trail has no selectors of its own (CloudTrail User Guide, "Logging
# management events": a new trail logs all read and write management events). Stating it keeps a trail
# whose selectors someone changed by hand from looking correct.
DEFAULT_EVENT_SELECTORS: tuple[dict[str, Any], ...] = (
    {
        "ReadWriteType": "All",
        "IncludeManagementEvents": True,
        "DataResources": [],
        "ExcludeManagementEventSources": [],
    },
)

# Region name prefixes of the partitions other than "aws" (botocore's endpoint data, partitions.json).
_PARTITION_PREFIXES = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-iso-", "aws-iso"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-isof-", "aws-iso-f"),
)


def partition_for_region(region: str) -> str:
    """The ARN partition a region belongs to."""
    for prefix, partition in _PARTITION_PREFIXES:
        if region.startswith(prefix):
            return partition
    return "aws"


def trail_arn(partition: str, region: str, account_id: str, name: str) -> str:
    return f"arn:{partition}:cloudtrail:{region}:{account_id}:trail/{name}"


def topic_arn(partition: str, region: str, account_id: str, topic_name: str) -> str:
    return f"arn:{partition}:sns:{region}:{account_id}:{topic_name}"


# Every setting UpdateTrail takes, in the order CreateTrail's are listed (tags have calls of their own).
_UPDATE_TRAIL_KEYS = (
    "Name",
    "S3BucketName",
    "S3KeyPrefix",
    "SnsTopicName",
    "IncludeGlobalServiceEvents",
    "IsMultiRegionTrail",
    "EnableLogFileValidation",
    "CloudWatchLogsLogGroupArn",
    "CloudWatchLogsRoleArn",
    "KmsKeyId",
)


@dataclass(frozen=True)
class DesiredTrail:
    """One trail as the spec wants it, in its home region. Selector fields hold boto3's shapes."""

    region: str
    name: str
    bucket: str
    key_prefix: str | None
    include_global_service_events: bool
    is_multi_region: bool
    log_file_validation: bool
    kms_key_id: str | None
    sns_topic_name: str | None
    cloud_watch_logs_log_group_arn: str | None
    cloud_watch_logs_role_arn: str | None
    logging: bool
    event_selectors: list[dict[str, Any]] | None
    advanced_event_selectors: list[dict[str, Any]] | None
    insight_selectors: list[dict[str, Any]]
    tags: dict[str, str]

    def arn(self, partition: str, account_id: str) -> str:
        return trail_arn(partition, self.region, account_id, self.name)

    def tags_list(self) -> list[dict[str, str]]:
        """The tags in CloudTrail's `TagsList` shape, sorted by key."""
        return [{"Key": key, "Value": self.tags[key]} for key in sorted(self.tags)]

    def create_trail_parameters(self) -> dict[str, Any]:
        """The keyword arguments of `cloudtrail.create_trail` (settings left unset are left out)."""
        parameters: dict[str, Any] = {
            "Name": self.name,
            "S3BucketName": self.bucket,
            "S3KeyPrefix": self.key_prefix,
            "SnsTopicName": self.sns_topic_name,
            "IncludeGlobalServiceEvents": self.include_global_service_events,
            "IsMultiRegionTrail": self.is_multi_region,
            "EnableLogFileValidation": self.log_file_validation,
            "CloudWatchLogsLogGroupArn": self.cloud_watch_logs_log_group_arn,
            "CloudWatchLogsRoleArn": self.cloud_watch_logs_role_arn,
            "KmsKeyId": self.kms_key_id,
            "TagsList": self.tags_list(),
        }
        return {key: value for key, value in parameters.items() if value is not None}

    def update_trail_parameters(self) -> dict[str, Any]:
        """The keyword arguments of `cloudtrail.update_trail`, putting every setting back to the spec.

        UpdateTrail leaves a setting it is not given as it was, so unset optional settings are given as
        empty strings, which clears them (no key prefix, no topic, no KMS key, no CloudWatch Logs).
        """
        given = self.create_trail_parameters()
        return {key: given.get(key, "") for key in _UPDATE_TRAIL_KEYS}

    def event_selector_parameters(self) -> dict[str, Any]:
        """The selector argument of `cloudtrail.put_event_selectors` (with `TrailName` still to add)."""
        if self.advanced_event_selectors is not None:
            return {"AdvancedEventSelectors": self.advanced_event_selectors}
        return {"EventSelectors": self.event_selectors or copy.deepcopy(list(DEFAULT_EVENT_SELECTORS))}


def event_selector_shape(selector: EventSelector) -> dict[str, Any]:
    return {
        "ReadWriteType": str(selector.read_write_type),
        "IncludeManagementEvents": selector.include_management_events,
        "DataResources": [{"Type": r.type, "Values": list(r.values)} for r in selector.data_resources],
        "ExcludeManagementEventSources": list(selector.exclude_management_event_sources),
    }


_FIELD_OPERATORS = (
    ("equals", "Equals"),
    ("starts_with", "StartsWith"),
    ("ends_with", "EndsWith"),
    ("not_equals", "NotEquals"),
    ("not_starts_with", "NotStartsWith"),
    ("not_ends_with", "NotEndsWith"),
)


def field_selector_shape(selector: FieldSelector) -> dict[str, Any]:
    shape: dict[str, Any] = {"Field": selector.field}
    for attribute, key in _FIELD_OPERATORS:
        values: list[str] | None = getattr(selector, attribute)
        # CloudTrail requires at least one value in an operator it is given; an empty one means "none".
        if values:
            shape[key] = list(values)
    return shape


def advanced_event_selector_shape(selector: AdvancedEventSelector) -> dict[str, Any]:
    shape: dict[str, Any] = {}
    if selector.name is not None:
        shape["Name"] = selector.name
    shape["FieldSelectors"] = [field_selector_shape(f) for f in selector.field_selectors]
    return shape


def _selectors(spec: TrailSpec) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]] | None]:
    if spec.advanced_event_selectors:
        return None, [advanced_event_selector_shape(s) for s in spec.advanced_event_selectors]
    if spec.event_selectors:
        return [event_selector_shape(s) for s in spec.event_selectors], None
    return copy.deepcopy(list(DEFAULT_EVENT_SELECTORS)), None


def desired_trails(spec: TrailSpec, *, name: str, owner: str) -> list[DesiredTrail]:
    """The trails of a Trail named `name` (its metadata.name; spec.trailName wins), owned by `owner`.

    Region-scoped: one trail per region, and only the trail in globalServiceEventsRegion records global
    service events (IAM, STS, CloudFront), so they are recorded once, not once per region. multiRegion:
    one trail in regions[0], which CloudTrail requires to include global service events.
    """
    trail_name = spec.effective_trail_name(name)
    regions = spec.regions[:1] if spec.multi_region else list(spec.regions)
    global_region = spec.effective_global_region
    event_selectors, advanced_event_selectors = _selectors(spec)
    cloud_watch = spec.cloud_watch_logs
    trails: list[DesiredTrail] = []
    for region in regions:
        trails.append(
            DesiredTrail(
                region=region,
                name=trail_name,
                bucket=spec.bucket_for(region),
                key_prefix=spec.destination.key_prefix or None,
                include_global_service_events=spec.multi_region or region == global_region,
                is_multi_region=spec.multi_region,
                log_file_validation=spec.log_file_validation,
                kms_key_id=spec.destination.kms_key_id,
                sns_topic_name=spec.notifications.topic_name if spec.notifications else None,
                cloud_watch_logs_log_group_arn=cloud_watch.log_group_arn if cloud_watch else None,
                cloud_watch_logs_role_arn=cloud_watch.role_arn if cloud_watch else None,
                logging=spec.logging,
                # Each trail gets its own copies: the lists are mutable and must not be shared.
                event_selectors=copy.deepcopy(event_selectors),
                advanced_event_selectors=copy.deepcopy(advanced_event_selectors),
                insight_selectors=[{"InsightType": str(insight)} for insight in spec.insights],
                tags=desired_tags(spec.tags, owner),
            )
        )
    return trails


def trails_by_bucket(trails: list[DesiredTrail]) -> dict[str, list[DesiredTrail]]:
    """The trails grouped by the bucket they deliver to, in the order the buckets first appear.

    A bucket's policy must name every trail delivering into it, so bucket policies are built per group.
    """
    groups: dict[str, list[DesiredTrail]] = {}
    for trail in trails:
        groups.setdefault(trail.bucket, []).append(trail)
    return groups
