"""The S3 lifecycle rule a LogRetention becomes, in the PutBucketLifecycleConfiguration shape."""

from __future__ import annotations

from typing import Any

from trailkeeper.api.logretention import LogRetentionSpec


def default_prefix(key_prefix: str) -> str:
    """Where CloudTrail writes in a bucket: `<keyPrefix>/AWSLogs/`, or `AWSLogs/` without a key prefix."""
    return f"{key_prefix}/AWSLogs/" if key_prefix else "AWSLogs/"


def effective_prefix(spec: LogRetentionSpec, key_prefix: str = "") -> str:
    """The spec's prefix, or the default below the Trail's key prefix when the spec names none."""
    return spec.prefix if spec.prefix is not None else default_prefix(key_prefix)


def desired_lifecycle_rule(*, rule_id: str, prefix: str, spec: LogRetentionSpec) -> dict[str, Any]:
    """One enabled rule for the objects under `prefix`.

    Actions the spec leaves out are left out of the rule: S3 refuses empty action elements, and hands
    back only what it was given.
    """
    rule: dict[str, Any] = {
        "ID": rule_id,
        "Status": "Enabled",
        # Filter.Prefix, not the legacy rule-level Prefix (S3 User Guide, "Lifecycle configuration elements").
        "Filter": {"Prefix": prefix},
    }
    if spec.transitions:
        rule["Transitions"] = [
            {"Days": transition.days, "StorageClass": str(transition.storage_class)}
            for transition in spec.transitions
        ]
    if spec.expiration_days is not None:
        rule["Expiration"] = {"Days": spec.expiration_days}
    if spec.noncurrent_version_expiration_days is not None:
        # CloudTrail buckets trailkeeper creates are versioned: without this, "expired" log files would
        # stay as noncurrent versions and keep costing storage.
        rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": spec.noncurrent_version_expiration_days}
    if spec.abort_incomplete_multipart_upload_days is not None:
        rule["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": spec.abort_incomplete_multipart_upload_days
        }
    return rule
