"""Field types and validators shared by both kinds: regions, accounts, bucket names, enums."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

from botocore.loaders import Loader, create_loader
from botocore.regions import EndpointResolver
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict
from pydantic.alias_generators import to_camel

# The shape of every AWS region name across partitions (aws, aws-cn, aws-us-gov, iso…). The CRD carries
# this pattern; the models additionally check the name against botocore's endpoint data.
REGION_PATTERN = r"^[a-z]{2,4}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$"
ACCOUNT_ID_PATTERN = r"^[0-9]{12}$"
ORGANIZATION_ID_PATTERN = r"^o-[a-z0-9]{10,32}$"
ROLE_ARN_PATTERN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$"
REGION_PLACEHOLDER = "{region}"


class Model(BaseModel):
    """Base of every API model: camelCase on the wire, unknown fields rejected (a typo is an error)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=True,
        validate_default=True,
        # A field's docstring is its description in the CRD (`kubectl explain`) and in the reference.
        use_attribute_docstrings=True,
    )


@functools.cache
def botocore_loader() -> Loader:
    """botocore's loader of its data files (endpoints, service models), one per process: the region check
    below and every AWS session (aws/session.py) share what it parsed, the endpoint data (0.03 s) included."""
    return create_loader()


@functools.cache
def known_regions() -> frozenset[str]:
    """Every region botocore knows for CloudTrail, in every partition (read from local endpoint data)."""
    resolver = EndpointResolver(botocore_loader().load_data("endpoints"))
    return frozenset(
        region
        for partition in resolver.get_available_partitions()
        for region in resolver.get_available_endpoints("cloudtrail", partition)
    )


def _check_region(value: str) -> str:
    if value not in known_regions():
        raise ValueError(f"{value!r} is not an AWS region CloudTrail is available in")
    return value


# maxLength bounds what the CRD's CEL rules compare (the longest region name today has 15 characters).
Region = Annotated[str, Field(max_length=32, pattern=REGION_PATTERN), AfterValidator(_check_region)]
AccountId = Annotated[str, Field(pattern=ACCOUNT_ID_PATTERN)]


def bucket_name_problem(name: str) -> str | None:
    """Why `name` is not a valid S3 general-purpose bucket name, or None.

    The rules of the S3 user guide, "General purpose bucket naming rules".
    """
    if not 3 <= len(name) <= 63:
        return "must be 3 to 63 characters long"
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", name):
        return (
            "may hold only lowercase letters, digits, '.' and '-', "
            "and must begin and end with a letter or digit"
        )
    if ".." in name or ".-" in name or "-." in name:
        return "must not have two adjacent periods or a period next to a hyphen"
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        return "must not be formatted as an IP address"
    for prefix in ("xn--", "sthree-", "amzn-s3-demo-"):
        if name.startswith(prefix):
            return f"must not start with {prefix!r}"
    for suffix in ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"):
        if name.endswith(suffix):
            return f"must not end with {suffix!r}"
    return None


def bucket_for_region(template: str, region: str) -> str:
    """The bucket a region's trail delivers to: `{region}` in the template replaced by the region."""
    return template.replace(REGION_PLACEHOLDER, region)


def _check_bucket_template(value: str) -> str:
    # The placeholder stands for a region; check the name with the longest region name in its place
    # so that every substitution is known to be valid (region-specific checks happen on the spec).
    longest = max(known_regions(), key=len) if REGION_PLACEHOLDER in value else ""
    problem = bucket_name_problem(bucket_for_region(value, longest))
    if problem:
        raise ValueError(f"{value!r} is not a valid S3 bucket name: {problem}")
    return value


BucketTemplate = Annotated[
    str,
    Field(min_length=3, max_length=63 + 8, pattern=r"^[a-z0-9{][a-z0-9.{}-]*[a-z0-9}]$"),
    AfterValidator(_check_bucket_template),
]


def _check_bucket(value: str) -> str:
    problem = bucket_name_problem(value)
    if problem:
        raise ValueError(f"{value!r} is not a valid S3 bucket name: {problem}")
    return value


BucketName = Annotated[
    str,
    Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$"),
    AfterValidator(_check_bucket),
]


def _check_s3_prefix(value: str) -> str:
    if value.startswith("/") or value.endswith("/"):
        raise ValueError("must not begin or end with '/'")
    if "//" in value:
        raise ValueError("must not contain an empty path segment ('//')")
    segments = value.split("/")
    if any(segment in (".", "..") for segment in segments):
        raise ValueError("must not contain '.' or '..' path segments")
    # CloudTrail writes below <prefix>/AWSLogs/<account>/; a prefix that itself holds an AWSLogs segment
    # would make this trail's write path overlap another writer's, which the bucket policy must not allow.
    if "AWSLogs" in segments:
        raise ValueError("must not contain an 'AWSLogs' segment: CloudTrail adds AWSLogs/ itself")
    if any(ch in value for ch in "*?$\\{}") or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError("must not contain wildcards, '$', '\\', braces or control characters")
    return value


S3Prefix = Annotated[str, Field(max_length=200), AfterValidator(_check_s3_prefix)]


class DriftPolicy(StrEnum):
    CORRECT = "Correct"
    REPORT = "Report"


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class Phase(StrEnum):
    PENDING = "Pending"
    READY = "Ready"
    DRIFTED = "Drifted"
    ERROR = "Error"
    DELETING = "Deleting"


class AccountRef(Model):
    """Cross-account access: every AWS call of the resource goes through STS AssumeRole into this role."""

    role_arn: Annotated[str | None, Field(pattern=ROLE_ARN_PATTERN)] = None
    """IAM role to assume for every AWS call made for this object (STS AssumeRole, session name
    `tk@<namespace>.<name>` cut to 64 characters; reads that serve all the objects of an account are made
    as `trailkeeper` (the compliance observation) and `trailkeeper-diff` (a `trailkeeper diff`); the
    credentials are cached and refreshed before they expire), as
    `arn:<partition>:iam::<12-digit account>:role/<path/name>`. The cluster's tenancy policy says which
    roles a namespace may use. Unset: the operator's own credentials and account.
    """
    external_id: Annotated[str | None, Field(min_length=2, max_length=1224, pattern=r"^[\w+=,.@:/-]+$")] = (
        None
    )
    """External id passed to AssumeRole when the role's trust policy requires one (`sts:ExternalId`
    condition): 2 to 1224 letters, digits and `_+=,.@:/-`. Used only with `roleArn`.
    """


class ObjectRef(Model):
    name: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]
    """`metadata.name` of the referenced object, in the same namespace: 1 to 253 lowercase letters, digits,
    `-` and `.`, beginning and ending with a letter or digit.
    """


class Condition(Model):
    """A Kubernetes-convention condition."""

    type: str
    """Condition type: `Ready` (everything matches the spec), `Reconciling` (a failure is being retried),
    `Stalled` (only a change of the spec or of AWS moves it on), `Synced` (the last pass reached AWS and
    finished), `Drifted` (AWS differed from the spec at the last drift check) or, for a Trail, `Compliant`
    (CIS CloudTrail controls).
    """
    status: str
    """`True`, `False` or `Unknown`."""
    reason: str = ""
    """Why the condition has its status, one CamelCase word; the object's `status.conditions` lists the
    reasons, docs/operations.md explains each.
    """
    message: str = ""
    """Human-readable detail of the reason, e.g. which region or bucket failed and the AWS error."""
    last_transition_time: str | None = None
    """When `status` last changed (RFC 3339, UTC)."""
    observed_generation: int | None = None
    """`metadata.generation` the condition was computed for; lower than the object's generation means the
    condition predates the latest spec change.
    """


class DriftEntry(Model):
    """One difference between the spec and what AWS holds."""

    resource: str
    """What differs. Trail: `trail/<region>`, `bucket/<bucket>`, `bucket-policy/<bucket>`, `topic/<region>`,
    `topic-policy/<region>` or `subscription/<region>`. LogRetention: `lifecycle/<bucket>`.
    """
    field: str
    """The differing field in AWS's terms, e.g. `Exists`, `IsLogging`, `S3BucketName`, `EventSelectors`,
    `InsightSelectors`, `Tags[<key>]`, `Statement[<Sid>]`, `PublicAccessBlock.<flag>`, `Versioning`,
    `<protocol>:<endpoint>` (Trail) or `LifecycleRule[<rule ID>]` (LogRetention).
    """
    desired: str
    """What the spec asks for, as short stable text (`(none)` for nothing)."""
    actual: str
    """What AWS holds, in the same form as `desired`."""
    detected_at: str | None = None
    """When the difference was first seen (RFC 3339, UTC); kept across checks while it persists uncorrected.
    """
    corrected: bool = False
    """`true` when this check put AWS back to the spec (`driftPolicy: Correct`); `false` when it was only
    reported.
    """


class ObjectStatus(Model):
    """What the status of both kinds holds; each adds its conditions and what it keeps in AWS."""

    observed_generation: int | None = None
    """`metadata.generation` of the spec the last pass worked on; lower than `metadata.generation` while a
    change is being applied.
    """
    phase: Phase = Phase.PENDING
    """Summary of the last pass: `Pending` before the first, `Ready`, `Drifted` (a difference left uncorrected
    by `driftPolicy: Report`), `Error` (invalid spec, or a failure in some region or bucket; see the
    conditions), `Deleting` (deletion under way).
    """
    drift: list[DriftEntry] = []
    """The differences between the spec and AWS the last drift check found, `[]` when none. A drift check is a
    pass over an unchanged spec; the pass that applies a spec change reports its changes as Events instead.
    """
    last_sync_time: str | None = None
    """End of the last pass (RFC 3339, UTC)."""
    last_drift_check_time: str | None = None
    """End of the last periodic drift check (RFC 3339, UTC)."""


MIN_RESYNC_SECONDS = 30
DEFAULT_RESYNC_SECONDS = 300
ResyncSeconds = Annotated[int, Strict(), Field(ge=MIN_RESYNC_SECONDS, le=86400)]


def resync_seconds_of(spec: Any) -> int:
    """The resyncSeconds of a stored spec (a Trail's or a LogRetention's), without validating the rest of
    it: the default when unset or out of bounds (the models refuse such a spec by name)."""
    value = spec.get("resyncSeconds") if isinstance(spec, Mapping) else None
    valid = isinstance(value, int) and not isinstance(value, bool) and value >= MIN_RESYNC_SECONDS
    return value if valid and isinstance(value, int) else DEFAULT_RESYNC_SECONDS


# -- subscription endpoints ------------------------------------------------------------------------------
# Each is matched in full (re.fullmatch: `$` alone would let a trailing newline through).

# RFC 5321 dot-atom local part; a domain of DNS labels ending in an alphabetic top-level label.
_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
_DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# E.164: a '+', a country code that does not begin with 0, at most 15 digits in all; SNS sends SMS only
# to numbers in this form, and no country's numbers are shorter than 7 digits with their code.
SMS_PATTERN = r"\+[1-9][0-9]{6,14}"
# Printable ASCII without spaces: what a URL sent to SNS may hold once percent-encoded.
_URL_CHARS = re.compile(r"[!-~]+")


def _host_problem(host: str) -> str | None:
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return "has an invalid IPv6 address"
        return None
    if len(host) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in host.split(".")):
        return "has no valid host name"
    return None


def url_problem(url: str, scheme: str) -> str | None:
    """Why `url` is not a `scheme` URL SNS can deliver to (valid host, port 1-65535), or None."""
    from urllib.parse import urlsplit

    if not _URL_CHARS.fullmatch(url):
        return "may hold only printable ASCII without spaces (percent-encode the rest)"
    try:
        parts = urlsplit(url)
    except ValueError:  # a bracketed host that is no IP address
        return "has an invalid IPv6 address"
    if parts.scheme != scheme or not url.startswith(f"{scheme}://"):
        return f"must begin with {scheme}://"
    host = parts.netloc.rpartition("@")[2]
    if ":" in host and not host.endswith("]"):
        host, _, port = host.rpartition(":")
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            return "has a port outside 1-65535"
    return _host_problem(host)


def endpoint_problem(protocol: str, endpoint: str) -> str | None:
    """Why `endpoint` is not one SNS accepts for `protocol` beyond its pattern, or None."""
    if protocol in ("email", "email-json") and (len(endpoint) > 254 or not _EMAIL.fullmatch(endpoint)):
        return "is not a plain email address (local@domain, no display name)"
    if protocol in ("http", "https"):
        return url_problem(endpoint, protocol)
    return None
