"""The LogRetention kind: S3 lifecycle rules (storage-class transitions, expiry) on a trail's bucket(s)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, Strict, model_validator

from trailkeeper.api.common import (
    DEFAULT_RESYNC_SECONDS,
    AccountRef,
    BucketName,
    Condition,
    DeletionPolicy,
    DriftPolicy,
    Model,
    ObjectRef,
    ObjectStatus,
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
    """Days after object creation when objects move to `storageClass`, 0 to 100000. At least 30 for
    `STANDARD_IA` and `ONEZONE_IA`, and 30 more than the previous transition when that one went to
    `STANDARD_IA` or `ONEZONE_IA`.
    """
    storage_class: StorageClass
    """S3 storage class to move objects to. Each transition must go further down S3's lifecycle waterfall
    `STANDARD_IA` → `INTELLIGENT_TIERING` → `ONEZONE_IA` → `GLACIER_IR` → `GLACIER` → `DEEP_ARCHIVE` than
    the one before.
    """


_Days = Annotated[int, Strict(), Field(ge=1, le=100000)]


class LogRetentionSpec(Model):
    """Desired state: the bucket(s) and key prefix of the lifecycle rule, its transitions and expiry."""

    trail_ref: ObjectRef | None = None
    """A Trail in the same namespace (a reference holds only a name, so a LogRetention never follows another
    namespace's Trail): the rule goes on each of its buckets (one per region with `{region}`), below its
    key prefix. When the Trail's buckets change, the rule follows them and is taken off the old
    ones. Give exactly one of `trailRef` and `bucket`.
    """
    bucket: BucketName | None = None
    """An explicit S3 bucket instead of `trailRef`, following the S3 bucket naming rules: 3 to 63 lowercase
    letters, digits, `.` and `-`, beginning and ending with a letter or digit; no `..`, `.-` or `-.`; not
    an IPv4 address; no prefix `xn--`, `sthree-` or `amzn-s3-demo-`; no suffix `-s3alias`, `--ol-s3`,
    `.mrap`, `--x-s3` or `--table-s3`. Give exactly one of `trailRef` and `bucket`.
    """
    region: Region | None = None
    """AWS region of `bucket`, e.g. `eu-west-1`; only together with `bucket` (a Trail's buckets are in its
    regions). Unset: looked up with GetBucketLocation.
    """
    prefix: Annotated[str | None, Field(max_length=1024, pattern=r"^[^/][^*?]*$|^$")] = None
    """Key prefix the lifecycle rule applies to, at most 1024 characters, not beginning with `/`, without `*`
    or `?`. Unset: `<keyPrefix>/AWSLogs/` of the Trail (`AWSLogs/` without a key prefix); with `bucket`,
    `AWSLogs/`.
    """
    transitions: Annotated[list[Transition], Field(max_length=6)] = []
    """Storage-class transitions, at most 6, in strictly ascending order of `days`, each to a class further
    down S3's lifecycle waterfall than the one before.
    """
    expiration_days: _Days | None = None
    """Days after creation when objects expire (are deleted), 1 to 100000; later than every transition. Unset:
    objects never expire.
    """
    noncurrent_version_expiration_days: _Days | None = None
    """Days after which noncurrent object versions expire, 1 to 100000 (buckets trailkeeper creates are
    versioned). Unset: kept.
    """
    abort_incomplete_multipart_upload_days: _Days | None = None
    """Days after which incomplete multipart uploads are aborted and their parts deleted, 1 to 100000. Unset:
    kept.
    """
    account: AccountRef = AccountRef()
    """Cross-account access: with `roleArn` set, every AWS call made for this object goes through STS
    AssumeRole into that role. Unset or empty: the operator's own credentials.
    """
    drift_policy: DriftPolicy = DriftPolicy.CORRECT
    """What a periodic drift check does when AWS differs from the spec. `Correct`: put AWS back to the spec
    and report the difference with `corrected: true`. `Report`: change nothing, list the difference in
    `status.drift` with `Drifted=True` and `Ready=False` (reason `Drifted`). A spec change is always
    applied, whatever the policy.
    """
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN
    """What deleting the LogRetention does in AWS. `Retain`: nothing, the lifecycle rule stays. `Delete`:
    removes only this object's own lifecycle rule from each bucket in `status.buckets`; other rules are
    left alone.
    """
    resync_seconds: ResyncSeconds = DEFAULT_RESYNC_SECONDS
    """Period of the periodic drift check, in seconds, 30 to 86400. Each object's period is spread by ±10 %
    with a stable hash of its uid so objects with the same period do not all check at once; the operator's
    `--resync-scale` multiplies it.
    """

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
    """Bucket name."""
    region: str | None = None
    """Region of the bucket."""
    rule_id: str | None = None
    """ID of the lifecycle rule: `trailkeeper-<namespace>-<name>`, cut and ended with a hash when longer than
    S3's 255 characters.
    """
    error: str | None = None
    """Why this bucket did not reach the spec (`<AWS error code>: <message>`); null when it did."""


class LogRetentionStatus(ObjectStatus):
    """Observed state, written by the operator only: the buckets the rule is kept on, drift and conditions."""

    conditions: list[Condition] = []
    """Kubernetes-convention conditions `Ready`, `Reconciling` and `Stalled` (kstatus: Stalled True when only
    a person can move it on, Reconciling True while a failure is retried), `Synced` and `Drifted`. Reasons:
    `Reconciled`, `InvalidSpec`, `TrailNotFound`, `TrailInvalid`, `NoSuchBucket`, `Drifted` (Ready);
    `NoDrift`, `DriftCorrected`, `DriftDetected` (Drifted); otherwise the AWS error code that stopped the
    pass. docs/operations.md explains each.
    """
    buckets: list[BucketStatus] = []
    """One entry per bucket the lifecycle rule is kept on."""
