"""A trail as one region of CloudTrail shows it: what aws/trails.py reads and core/drift.py compares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ObservedTrail:
    """A trail as one region sees it.

    For a shadow (``is_shadow``) only what that region can answer is read: the settings from
    DescribeTrails and the status from GetTrailStatus (by ARN). Tags and selectors can only be read in
    the home region, so a shadow has ``tags == {}``, no selectors and no insight selectors here.

    Optional strings AWS reports as "" (a cleared key prefix, topic, key or log group) are ``None``.
    ``insight_selectors`` holds each selector once, in the order first seen.
    """

    name: str
    arn: str
    region: str
    home_region: str | None
    is_shadow: bool
    s3_bucket: str | None
    s3_key_prefix: str | None
    sns_topic_name: str | None
    sns_topic_arn: str | None
    include_global_service_events: bool
    is_multi_region: bool
    is_organization_trail: bool
    log_file_validation: bool
    kms_key_id: str | None
    cloud_watch_logs_log_group_arn: str | None
    cloud_watch_logs_role_arn: str | None
    is_logging: bool
    latest_delivery_error: str | None
    event_selectors: list[dict[str, Any]] | None
    advanced_event_selectors: list[dict[str, Any]] | None
    insight_selectors: list[dict[str, Any]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
