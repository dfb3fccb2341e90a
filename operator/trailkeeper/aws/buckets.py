"""S3 buckets that receive CloudTrail log files: observe / create / settings / policy / lifecycle / delete.

A ``BucketClient`` is bound to the S3 client of a bucket's region. Every mutating method is idempotent
and ``observe`` never mutates. Settings (public access block, versioning, default encryption) are only
ever written on buckets this client creates, or that carry trailkeeper's owner tag; a bucket someone else
made keeps its settings, and only the policy statements and lifecycle rules the caller merged are put.

The policy and lifecycle calls take the bucket as a keyword, and default to the bucket this client last
observed or created, so a caller that observes one bucket and then writes to it need not repeat it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from trailkeeper.api.trail import OWNER_TAG_KEY
from trailkeeper.aws.errors import AwsError, AwsFailure, error_code, json_document

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PART_HEAD = "head"
PART_TAGS = "tags"
PART_VERSIONING = "versioning"
PART_ENCRYPTION = "encryption"
PART_PUBLIC_ACCESS_BLOCK = "public_access_block"
PART_POLICY = "policy"
PART_LIFECYCLE = "lifecycle"
PART_LOGGING = "logging"
# In the order observe reads them: the HeadBucket first, since it tells whether the rest can be read.
ALL_PARTS: tuple[str, ...] = (
    PART_HEAD,
    PART_TAGS,
    PART_VERSIONING,
    PART_ENCRYPTION,
    PART_PUBLIC_ACCESS_BLOCK,
    PART_POLICY,
    PART_LIFECYCLE,
    PART_LOGGING,
)
# A bucket's owner changes only when it is deleted and made again under its (global) name: that a bucket is
# another account's, once learnt, holds for an hour in the read layer (aws/reads.py), as the enabled regions
# do, so neither drift checks nor compliance observations of a member account call S3 for the central bucket.
FOREIGN_BUCKET_MAX_AGE = 3600.0


def foreign_bucket_key(account_id: str, bucket: str) -> tuple[str, str, str]:
    """The read layer's key of "`bucket` is not `account_id`'s" (S3 answered 403 to its reads)."""
    return ("foreign-bucket", account_id, bucket)


# What ensure_settings must have seen to decide what drifted.
_SETTINGS_PARTS = frozenset({PART_TAGS, PART_VERSIONING, PART_ENCRYPTION, PART_PUBLIC_ACCESS_BLOCK})

PUBLIC_ACCESS_BLOCK_ALL: Mapping[str, bool] = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}

_NO_SUCH_BUCKET = frozenset({"NoSuchBucket", "404", "NotFound"})
# S3 answers a read of another account's bucket with 403 (405 for the bucket-owner-only policy calls).
_NOT_OWNED_STATUS = frozenset({403, 405})
# "Not configured" answers of each part read, which observe reports as the part's empty value.
_NOT_CONFIGURED = frozenset(
    {
        "NoSuchTagSet",
        "NoSuchTagSetError",
        "ServerSideEncryptionConfigurationNotFoundError",
        "NoSuchPublicAccessBlockConfiguration",
        "NoSuchBucketPolicy",
        "NoSuchLifecycleConfiguration",
    }
)
US_EAST_1 = "us-east-1"


class BucketOwnedElsewhereError(AwsError):
    """The bucket name is taken by another account (S3 bucket names are global).

    Classified as S3's ``BucketAlreadyExists``: only another name can fix it.
    """

    def __init__(self, bucket: str, operation: str) -> None:
        message = f"bucket {bucket} already exists and belongs to another account"
        super().__init__(
            AwsFailure(
                code="BucketAlreadyExists",
                message=message,
                operation=operation,
                retryable=False,
                kind="invalid",
            )
        )
        self.bucket = bucket


class BucketNotOwnedError(AwsError):
    """A settings change was asked of a bucket trailkeeper did not create (it has no owner tag)."""

    def __init__(self, bucket: str) -> None:
        message = (
            f"bucket {bucket} was not created by trailkeeper (no {OWNER_TAG_KEY} tag): "
            "its settings are left to its owner"
        )
        super().__init__(
            AwsFailure(code="Conflict", message=message, operation=None, retryable=False, kind="conflict")
        )
        self.bucket = bucket


@dataclass(frozen=True)
class ObservedBucket:
    """A bucket as S3 answers for it.

    Parts not read (see ``parts_read``) hold their empty value, as do parts the bucket has no
    configuration for: ``None``, ``{}`` or ``[]``. ``encryption`` is the default-encryption rule
    flattened: ``SSEAlgorithm``, ``KMSMasterKeyID`` and ``BucketKeyEnabled`` as far as S3 reports them.
    """

    name: str
    region: str
    exists: bool
    owned_by_caller: bool
    tags: dict[str, str] = field(default_factory=dict)
    versioning: str | None = None
    encryption: dict[str, Any] | None = None
    public_access_block: dict[str, bool] | None = None
    policy: dict[str, Any] | None = None
    lifecycle_rules: list[dict[str, Any]] = field(default_factory=list)
    logging_enabled: bool = False
    parts_read: frozenset[str] = frozenset()


def _status(error: ClientError) -> int | None:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def _is_no_such_bucket(error: ClientError) -> bool:
    return error_code(error) in _NO_SUCH_BUCKET or (
        _status(error) == 404 and error_code(error) not in _NOT_CONFIGURED
    )


def _is_not_owned(error: ClientError) -> bool:
    return _status(error) in _NOT_OWNED_STATUS


def region_of_location(location: str | None) -> str:
    """The region a GetBucketLocation ``LocationConstraint`` names: none means us-east-1, and "EU" is
    the legacy name of eu-west-1."""
    if not location:
        return US_EAST_1
    if location == "EU":
        return "eu-west-1"
    return location


def desired_encryption(kms_key_id: str | None) -> dict[str, Any]:
    """The default-encryption rule of a bucket trailkeeper creates: SSE-KMS with the S3 Bucket Key (fewer
    KMS requests for the many small log files) when a key is given, else SSE-S3."""
    if kms_key_id:
        return {
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key_id},
            "BucketKeyEnabled": True,
        }
    return {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}


def _same_key(desired: str, actual: str | None) -> bool:
    """A key ARN and the key id (or alias) it ends with name the same key."""
    if not actual:
        return False
    return (
        desired == actual or actual.endswith(("/" + desired, ":" + desired)) or desired.endswith("/" + actual)
    )


def encryption_matches(actual: Mapping[str, Any] | None, kms_key_id: str | None) -> bool:
    """Whether an observed (flattened) encryption rule is the one ``desired_encryption`` puts."""
    if actual is None:
        return False
    if not kms_key_id:
        return actual.get("SSEAlgorithm") == "AES256"
    return (
        actual.get("SSEAlgorithm") == "aws:kms"
        and _same_key(kms_key_id, actual.get("KMSMasterKeyID"))
        and actual.get("BucketKeyEnabled") is True
    )


class BucketClient:
    """S3 buckets through the S3 client of their region (``client`` is never created here)."""

    def __init__(self, client: S3Client, region: str, bucket: str | None = None) -> None:
        self.client = client
        self.region = region
        # The bucket put_policy / put_lifecycle act on when not told: the one given here, else the one
        # this client last observed or created.
        self.bucket = bucket

    def _target(self, bucket: str | None) -> str:
        target = bucket or self.bucket
        if not target:
            raise ValueError("no bucket given and none observed by this client")
        return target

    # -- observe ----------------------------------------------------------------------------------

    def observe(self, bucket: str, *, parts: Iterable[str] | None = None) -> ObservedBucket:
        """The bucket's state; reads only.

        ``parts`` (names in :data:`ALL_PARTS`) limits the reads to those parts, one call each: a drift
        sweep that needs only the policy passes ``{"policy"}``. Without "head" the bucket's region is
        taken to be this client's, and existence and ownership are learnt from the part reads (S3 answers
        NoSuchBucket, or 403/405 for another account's bucket). Reading stops at the first answer saying
        the bucket is missing or not the caller's.
        """
        wanted = set(ALL_PARTS if parts is None else parts)
        unknown = wanted - set(ALL_PARTS)
        if unknown:
            raise ValueError(f"unknown bucket parts {sorted(unknown)}; known: {list(ALL_PARTS)}")
        self.bucket = bucket
        values: dict[str, Any] = {}
        region = self.region
        read: set[str] = set()
        for part in (p for p in ALL_PARTS if p in wanted):
            try:
                if part == PART_HEAD:
                    exists, named = self._head(bucket)
                    if not exists:
                        return self._absent(bucket, read | {part})
                    region = named or region
                else:
                    values.update(self._read_part(bucket, part))
            except ClientError as error:
                if _is_no_such_bucket(error):
                    return self._absent(bucket, read | {part})
                if _is_not_owned(error):
                    return ObservedBucket(
                        name=bucket,
                        region=self._header_region(error) or region,
                        exists=True,
                        owned_by_caller=False,
                        parts_read=frozenset(read | {part}),
                    )
                raise
            read.add(part)
        return ObservedBucket(
            name=bucket,
            region=region,
            exists=True,
            owned_by_caller=True,
            parts_read=frozenset(read),
            **values,
        )

    def _absent(self, bucket: str, read: set[str]) -> ObservedBucket:
        return ObservedBucket(
            name=bucket, region=self.region, exists=False, owned_by_caller=False, parts_read=frozenset(read)
        )

    @staticmethod
    def _header_region(error: ClientError) -> str | None:
        headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        region = headers.get("x-amz-bucket-region")
        return str(region) if region else None

    def _head(self, bucket: str) -> tuple[bool, str | None]:
        """HeadBucket: whether the bucket exists and the region S3 names for it (None when it names
        none); ClientError 403 when it is another account's."""
        try:
            response = self.client.head_bucket(Bucket=bucket)
        except ClientError as error:
            if _is_no_such_bucket(error):
                return False, None
            raise
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        region = response.get("BucketRegion") or headers.get("x-amz-bucket-region")
        return True, str(region) if region else None

    def _read_part(self, bucket: str, part: str) -> dict[str, Any]:
        """The ObservedBucket fields one part read gives; the empty value when S3 says "not configured"."""
        try:
            return self._read_part_raw(bucket, part)
        except ClientError as error:
            if error_code(error) in _NOT_CONFIGURED:
                return {}
            raise

    def _read_part_raw(self, bucket: str, part: str) -> dict[str, Any]:
        if part == PART_TAGS:
            tag_set = self.client.get_bucket_tagging(Bucket=bucket).get("TagSet", [])
            return {"tags": {t["Key"]: t["Value"] for t in tag_set}}
        if part == PART_VERSIONING:
            return {"versioning": self.client.get_bucket_versioning(Bucket=bucket).get("Status")}
        if part == PART_ENCRYPTION:
            configuration = self.client.get_bucket_encryption(Bucket=bucket)[
                "ServerSideEncryptionConfiguration"
            ]
            encryption_rules = configuration.get("Rules", [])
            if not encryption_rules:
                return {}
            rule = encryption_rules[0]
            flat: dict[str, Any] = dict(rule.get("ApplyServerSideEncryptionByDefault", {}))
            if "BucketKeyEnabled" in rule:
                flat["BucketKeyEnabled"] = rule["BucketKeyEnabled"]
            return {"encryption": flat}
        if part == PART_PUBLIC_ACCESS_BLOCK:
            block = self.client.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
            return {"public_access_block": {k: bool(v) for k, v in block.items()}}
        if part == PART_POLICY:
            text = self.client.get_bucket_policy(Bucket=bucket).get("Policy")
            return {"policy": json_document(text, "GetBucketPolicy", f"the policy of bucket {bucket}")}
        if part == PART_LIFECYCLE:
            rules = self.client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
            return {"lifecycle_rules": [dict(r) for r in rules]}
        if part == PART_LOGGING:
            return {"logging_enabled": "LoggingEnabled" in self.client.get_bucket_logging(Bucket=bucket)}
        raise ValueError(f"unknown bucket part {part!r}")

    def region_of(self, bucket: str) -> str | None:
        """Where the bucket lives, None when it does not exist.

        HeadBucket's ``x-amz-bucket-region`` answers for any bucket (S3 sends it with a 403 too); only
        when absent does GetBucketLocation tell, whose empty answer means us-east-1.
        """
        try:
            exists, region = self._head(bucket)
        except ClientError as error:
            exists, region = True, self._header_region(error)
            if region is None:
                raise
        if not exists:
            return None
        if region:
            return region
        try:
            location = self.client.get_bucket_location(Bucket=bucket).get("LocationConstraint")
        except ClientError as error:
            if _is_no_such_bucket(error):
                return None
            raise
        return region_of_location(location)

    # -- create / settings ------------------------------------------------------------------------

    def create(self, bucket: str, *, region: str, kms_key_id: str | None, tags: Mapping[str, str]) -> bool:
        """Create the bucket in ``region`` as trailkeeper makes them; True when this call created it.

        Tags first (the owner tag marks the bucket as trailkeeper's even if a later step fails, so the
        next pass's ``ensure_settings`` finishes it), then all four public-access blocks, versioning and
        default encryption. A bucket that already exists in this account is left exactly as it is (False;
        no mutating call): its settings are ``ensure_settings``'s to correct, and only when it carries the
        owner tag. A bucket of another account raises :class:`BucketOwnedElsewhereError`.
        """
        self.bucket = bucket
        try:
            exists, _ = self._head(bucket)
        except ClientError as error:
            if _is_not_owned(error):
                raise BucketOwnedElsewhereError(bucket, "HeadBucket") from error
            raise
        if exists:
            return False
        parameters: dict[str, Any] = {"Bucket": bucket}
        # us-east-1 is S3's default location and rejects being named as a LocationConstraint.
        if region != US_EAST_1:
            parameters["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self.client.create_bucket(**parameters)
        except ClientError as error:
            code = error_code(error)
            if code == "BucketAlreadyOwnedByYou":
                return False
            if code == "BucketAlreadyExists":
                raise BucketOwnedElsewhereError(bucket, "CreateBucket") from error
            raise
        if tags:
            self.put_tags(bucket, tags)
        self._put_public_access_block(bucket)
        self._put_versioning(bucket)
        self._put_encryption(bucket, kms_key_id)
        return True

    def put_tags(self, bucket: str, tags: Mapping[str, str]) -> None:
        """Replace the bucket's tag set (only ever on a bucket trailkeeper creates)."""
        tag_set: Any = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
        self.client.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set})

    def _put_public_access_block(self, bucket: str) -> None:
        configuration: Any = dict(PUBLIC_ACCESS_BLOCK_ALL)
        self.client.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=configuration)

    def _put_versioning(self, bucket: str) -> None:
        self.client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    def _put_encryption(self, bucket: str, kms_key_id: str | None) -> None:
        configuration: Any = {"Rules": [desired_encryption(kms_key_id)]}
        self.client.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=configuration)

    def ensure_settings(self, observed: ObservedBucket, *, kms_key_id: str | None) -> list[str]:
        """Put back the public-access block, versioning and encryption of a bucket trailkeeper created.

        Writes only what drifted, and returns the names of the settings it wrote ("PublicAccessBlock",
        "Versioning", "Encryption"); [] when nothing had drifted. ``observed`` must hold the tags,
        versioning, encryption and public-access-block parts. A bucket without the owner tag raises
        :class:`BucketNotOwnedError`: its settings are its owner's.
        """
        missing = _SETTINGS_PARTS - observed.parts_read
        if missing:
            raise ValueError(f"ensure_settings needs the bucket parts {sorted(missing)} observed")
        if not observed.exists or not observed.owned_by_caller:
            return []
        if OWNER_TAG_KEY not in observed.tags:
            raise BucketNotOwnedError(observed.name)
        self.bucket = observed.name
        corrected: list[str] = []
        if any((observed.public_access_block or {}).get(k) is not True for k in PUBLIC_ACCESS_BLOCK_ALL):
            self._put_public_access_block(observed.name)
            corrected.append("PublicAccessBlock")
        if observed.versioning != "Enabled":
            self._put_versioning(observed.name)
            corrected.append("Versioning")
        if not encryption_matches(observed.encryption, kms_key_id):
            self._put_encryption(observed.name, kms_key_id)
            corrected.append("Encryption")
        return corrected

    # -- policy / lifecycle -----------------------------------------------------------------------

    def put_policy(self, document: Mapping[str, Any] | None, *, bucket: str | None = None) -> None:
        """PutBucketPolicy with ``document``; None deletes the policy (nothing left in it)."""
        target = self._target(bucket)
        if document is None:
            self.client.delete_bucket_policy(Bucket=target)
        else:
            self.client.put_bucket_policy(Bucket=target, Policy=json.dumps(document))

    def put_lifecycle(self, rules: Sequence[Mapping[str, Any]], *, bucket: str | None = None) -> None:
        """PutBucketLifecycleConfiguration with exactly ``rules``; [] deletes the configuration (S3
        rejects an empty one)."""
        target = self._target(bucket)
        if not rules:
            self.client.delete_bucket_lifecycle(Bucket=target)
            return
        configuration: Any = {"Rules": [dict(r) for r in rules]}
        self.client.put_bucket_lifecycle_configuration(Bucket=target, LifecycleConfiguration=configuration)

    # -- delete -----------------------------------------------------------------------------------

    def is_empty(self, bucket: str) -> bool:
        """Whether the bucket holds no object, no old version and no delete marker (a versioned bucket
        keeps every overwritten or deleted log file as a version, which ListObjectsV2 does not show).
        A bucket that does not exist is empty."""
        try:
            response = self.client.list_object_versions(Bucket=bucket, MaxKeys=1)
        except ClientError as error:
            if _is_no_such_bucket(error):
                return True
            raise
        return not (response.get("Versions") or response.get("DeleteMarkers"))

    def delete_if_empty(self, bucket: str) -> bool:
        """Delete the bucket when it is empty; True when it is gone (deleted now or before), False when it
        was kept because it holds objects or versions. Never deletes anything inside a bucket."""
        if not self.is_empty(bucket):
            return False
        try:
            self.client.delete_bucket(Bucket=bucket)
        except ClientError as error:
            if _is_no_such_bucket(error):
                return True
            # A log file written between the check and the delete: the bucket stays.
            if error_code(error) == "BucketNotEmpty":
                return False
            raise
        return True
