"""The LogRetention kind: S3 lifecycle rules (storage-class transitions, expiry) on a trail's bucket(s)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, Strict, model_validator

from trailkeeper.api.common import (
    AccountRef,
    BucketName,
    Condition,
    DeletionPolicy,
    DriftEntry,
    DriftPolicy,
    Model,
    ObjectRef,
    Phase,
    Region,
    ResyncSeconds,
)


class StorageClass(StrEnum):
    STANDARD_IA = "STANDARD_IA"
    INTELLIGENT_TIERING = "INTELLIGENT_TIERING"
    ONEZONE_IA = "ONEZONE_IA"
    GLACIER_IR = "GLACIER_IR"
    GLACIER = "GLACIER"
    DEEP_ARCHIVE = "DEEP_ARCHIVE"


# S3's lifecycle "waterfall": an object only moves down this list, never back up (S3 user guide,
# "Transitioning objects using Amazon S3 Lifecycle", supported transitions).
_WATERFALL = [c.value for c in StorageClass]
# S3 rejects a transition to these classes earlier than 30 days after creation, and requires 30 days in
# them before the next transition (S3 user guide, "Constraints and considerations for transitions").
_THIRTY_DAY_CLASSES = {StorageClass.STANDARD_IA.value, StorageClass.ONEZONE_IA.value}


class Transition(Model):
    days: Annotated[int, Strict(), Field(ge=0, le=100000)]
    storage_class: StorageClass


_Days = Annotated[int, Strict(), Field(ge=1, le=100000)]


class LogRetentionSpec(Model):
    """What the user asks for (api.md, LogRetention.spec)."""

    trail_ref: ObjectRef | None = None
    bucket: BucketName | None = None
    region: Region | None = None
    prefix: Annotated[str | None, Field(max_length=1024, pattern=r"^[^/][^*?]*$|^$")] = None
    transitions: Annotated[list[Transition], Field(max_length=6)] = []
    expiration_days: _Days | None = None
    noncurrent_version_expiration_days: _Days | None = None
    abort_incomplete_multipart_upload_days: _Days | None = None
    account: AccountRef = AccountRef()
    drift_policy: DriftPolicy = DriftPolicy.CORRECT
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN
    resync_seconds: ResyncSeconds = 300

    @model_validator(mode="after")
    def _rules(self) -> Self:
        if (self.trail_ref is None) == (self.bucket is None):
            raise ValueError("trailRef: give exactly one of trailRef and bucket")
        if self.region is not None and self.bucket is None:
            raise ValueError("region: applies only with bucket (a trailRef's regions come from the Trail)")
        if not (
            self.transitions
            or self.expiration_days
            or self.noncurrent_version_expiration_days
            or self.abort_incomplete_multipart_upload_days
        ):
            raise ValueError(
                "transitions: give at least one of transitions, expirationDays, "
                "noncurrentVersionExpirationDays, "
                "abortIncompleteMultipartUploadDays (S3 rejects a rule with no action)"
            )
        previous: Transition | None = None
        for index, transition in enumerate(self.transitions):
            where = f"transitions[{index}]"
            if transition.storage_class in _THIRTY_DAY_CLASSES and transition.days < 30:
                raise ValueError(
                    f"{where}.days: S3 requires at least 30 days before a transition to "
                    f"{transition.storage_class}"
                )
            if previous is not None:
                if transition.days <= previous.days:
                    raise ValueError(
                        f"{where}.days: transitions must be in ascending order of days "
                        f"({transition.days} follows {previous.days})"
                    )
                if _WATERFALL.index(transition.storage_class) <= _WATERFALL.index(previous.storage_class):
                    raise ValueError(
                        f"{where}.storageClass: S3 cannot move objects from "
                        f"{previous.storage_class} to {transition.storage_class}"
                    )
                if previous.storage_class in _THIRTY_DAY_CLASSES and transition.days - previous.days < 30:
                    raise ValueError(
                        f"{where}.days: objects must stay 30 days in {previous.storage_class} "
                        "before the next transition"
                    )
            previous = transition
        if self.expiration_days is not None and self.transitions:
            last = self.transitions[-1]
            if self.expiration_days <= last.days:
                raise ValueError(
                    f"expirationDays: {self.expiration_days} must be later than every transition "
                    f"(the last is at {last.days} days)"
                )
        return self


class BucketStatus(Model):
    bucket: str
    region: str | None = None
    rule_id: str | None = None
    error: str | None = None


class LogRetentionStatus(Model):
    observed_generation: int | None = None
    phase: Phase = Phase.PENDING
    conditions: list[Condition] = []
    buckets: list[BucketStatus] = []
    drift: list[DriftEntry] = []
    last_sync_time: str | None = None
    last_drift_check_time: str | None = None
