"""The `applied` scenario: an account whose whole CloudTrail and Monitoring setup is made by
`trailkeeper apply` of one Trail manifest, the reconcile the operator runs, against the cross-check's moto.

Only three things are done by hand, each the job of someone trailkeeper is not:
- the KMS key the manifest names (trailkeeper uses a key, it does not make one);
- server access logging on the log bucket, to a bucket of the owner's (no Trail field sets it);
- MFA Delete on the log bucket: only the root user can enable it, with its MFA device
  (PutBucketVersioning with `x-amz-mfa`), which moto keeps only behind the tests' MfaDeleteFront.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from bench.crosscheck.scenarios import ACCESS_LOG_BUCKET, ACCOUNT, BUCKET, HOME, TRAIL, ClientFactory

KEY_ALIAS = "alias/crosscheck-trail-logs"
ALARM_TOPIC = "crosscheck-cis-alarms"
# What the root user's MFA device gives (serial and code); the front only asks that the header is there.
ROOT_MFA = f"arn:aws:iam::{ACCOUNT}:mfa/root-account-mfa-device 123456"


def manifest() -> dict[str, Any]:
    """A Trail with spec.monitoring: one logging multi-region trail with log file validation, KMS, read
    and write management events and S3 data events, its own bucket, and the CIS filters and alarms on
    its log group, notifying its topic, which has one subscription."""
    return {
        "apiVersion": "trailkeeper.io/v1alpha1",
        "kind": "Trail",
        "metadata": {"name": "crosscheck", "namespace": "security"},
        "spec": {
            "trailName": TRAIL,
            "regions": [HOME],
            "multiRegion": True,
            "logFileValidation": True,
            "destination": {"bucket": BUCKET, "kmsKeyId": KEY_ALIAS},
            "notifications": {
                "topicName": ALARM_TOPIC,
                "subscriptions": [{"protocol": "email", "endpoint": "security@example.com"}],
            },
            "eventSelectors": [
                {
                    "readWriteType": "All",
                    "includeManagementEvents": True,
                    "dataResources": [{"type": "AWS::S3::Object", "values": ["arn:aws:s3"]}],
                }
            ],
            "monitoring": {"retentionDays": 365},
        },
    }


def build(client: ClientFactory, apply: list[str], workdir: Path, env: dict[str, str]) -> list[str]:
    """Make the account: the key, `apply` (the `trailkeeper apply` command line, without `-f`) of the
    manifest, then the bucket owner's steps. Returns the log buckets."""
    kms = client("kms", HOME)
    key = kms.create_key(Description="crosscheck trail logs")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=KEY_ALIAS, TargetKeyId=key)

    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "trail.json"
    path.write_text(json.dumps(manifest(), indent=2))
    done = subprocess.run([*apply, "-f", str(path)], env=env, capture_output=True, text=True, check=False)
    (workdir / "apply.out").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"trailkeeper apply exited {done.returncode}: {done.stdout}{done.stderr}")

    _bucket_owner_steps(client("s3", HOME))
    return [BUCKET]


def _bucket_owner_steps(s3: Any) -> None:
    # Server access logging, to a bucket the owner keeps (S3's log delivery writes through its policy).
    s3.create_bucket(Bucket=ACCESS_LOG_BUCKET)
    statement = {
        "Sid": "S3ServerAccessLogs",
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{ACCESS_LOG_BUCKET}/trail/*",
        "Condition": {
            "ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{BUCKET}"},
            "StringEquals": {"aws:SourceAccount": ACCOUNT},
        },
    }
    s3.put_bucket_policy(
        Bucket=ACCESS_LOG_BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    )
    s3.put_bucket_logging(
        Bucket=BUCKET,
        BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": ACCESS_LOG_BUCKET, "TargetPrefix": "trail/"}},
    )
    # MFA Delete: the root user, with its MFA device. Versioning is already on (trailkeeper's bucket).
    s3.put_bucket_versioning(
        Bucket=BUCKET, MFA=ROOT_MFA, VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"}
    )
