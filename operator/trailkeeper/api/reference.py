"""docs/api-reference.md, generated from the models: `python -m trailkeeper.api.reference`.

Field paths, types, defaults, required-ness and constraints come from the CRD schema the models generate
(`api.crd.crd`), so they cannot drift from what the API server and the models enforce. What a schema cannot
say -- what a field does, the checks done in validator functions, the rules across fields -- is written
here, next to the generator, and `tests/test_api_reference.py` fails when a field has no description, a
description names a field that no longer exists, or docs/api-reference.md differs from `render_reference()`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from trailkeeper.api.common import (
    ACCOUNT_ID_PATTERN,
    ORGANIZATION_ID_PATTERN,
    REGION_PATTERN,
    ROLE_ARN_PATTERN,
)
from trailkeeper.api.crd import GROUP, KINDS, VERSION, KindInfo, crd
from trailkeeper.api.logretention import _THIRTY_DAY_CLASSES, _WATERFALL
from trailkeeper.api.trail import _ENDPOINT_PATTERNS, OWNER_TAG_KEY

__all__ = ["DESCRIPTIONS", "Row", "field_paths", "main", "render_reference", "rows"]

GENERATED_NOTE = (
    "<!-- Generated from the pydantic models by"
    " `python -m trailkeeper.api.reference > docs/api-reference.md`; do not edit by hand."
    " tests/test_api_reference.py fails when this file and the models differ. -->"
)

# --------------------------------------------------------------------------------------------------
# What each field means. Keys are "<Kind>:<path>" for one kind, or "<path>" for a field both kinds share.
# --------------------------------------------------------------------------------------------------

_BUCKET_RULES = (
    "S3 general purpose bucket naming rules: 3 to 63 lowercase letters, digits, `.` and `-`, beginning and "
    "ending with a letter or digit; no `..`, `.-` or `-.`; not an IPv4 address; no prefix `xn--`, "
    "`sthree-` or `amzn-s3-demo-`; no suffix `-s3alias`, `--ol-s3`, `.mrap`, `--x-s3` or `--table-s3`"
)

_SHARED: dict[str, str] = {
    "spec.account": (
        "Cross-account access: with `roleArn` set, every AWS call made for this object goes through STS "
        "AssumeRole into that role (session name `trailkeeper`); the credentials are refreshed before they "
        "expire. Unset: the operator's own credentials."
    ),
    "spec.account.roleArn": "IAM role to assume for every AWS call of this object.",
    "spec.account.externalId": "External id passed to AssumeRole, when the role's trust policy requires one.",
    "spec.driftPolicy": (
        "What a periodic drift check does with a difference between AWS and the spec. `Correct`: put AWS "
        "back to the spec and report the difference with `corrected: true`. `Report`: change nothing, "
        "report the difference in `status.drift` with `Drifted=True` and `Ready=False` (reason `Drifted`). "
        "A spec change is always applied, whatever the policy."
    ),
    "spec.resyncSeconds": (
        "Period of the drift check, in seconds. Each object's period is spread by ±10 % with a stable "
        "hash of its uid, so objects with the same period do not all check at once; the operator's "
        "`--resync-scale` multiplies it."
    ),
    "status.observedGeneration": "`metadata.generation` of the spec the last pass worked on.",
    "status.phase": (
        "Summary of the last pass: `Pending` before the first, `Ready`, `Drifted` (a difference left "
        "uncorrected by `driftPolicy: Report`), `Error` (invalid spec or a failure in some region or "
        "bucket), `Deleting` (deletion under way)."
    ),
    "status.conditions[].type": "Condition type.",
    "status.conditions[].status": "`True`, `False` or `Unknown`.",
    "status.conditions[].message": "Human-readable detail.",
    "status.conditions[].lastTransitionTime": "When `status` last changed (RFC 3339, UTC).",
    "status.conditions[].observedGeneration": "`metadata.generation` the condition was computed for.",
    "status.drift": (
        "The differences the last drift check found, `[]` when none. A drift check is a pass over an "
        "unchanged spec; the pass that applies a spec change reports its changes as Events instead."
    ),
    "status.drift[].desired": "What the spec asks for, as short stable text (`(none)` for nothing).",
    "status.drift[].actual": "What AWS holds, in the same form.",
    "status.drift[].detectedAt": (
        "When the difference was first seen; kept across checks while it persists uncorrected."
    ),
    "status.drift[].corrected": "`true` when this pass put the value back to the spec.",
    "status.lastSyncTime": "End of the last pass (RFC 3339, UTC).",
    "status.lastDriftCheckTime": "End of the last drift check (RFC 3339, UTC).",
    "status.lastComplianceCheckTime": "End of the last evaluation of the CIS controls (RFC 3339, UTC).",
}

_TRAIL: dict[str, str] = {
    "spec.trailName": (
        "Name of the trail in every region. Unset: `metadata.name`, which must then obey the same rules. "
        "CloudTrail's name rules: 3 to 128 letters, digits, `.`, `_` and `-`, beginning and ending with a "
        "letter or digit, no two of `.`, `_`, `-` next to each other, not an IPv4 address. Immutable once "
        "the trails are made."
    ),
    "spec.regions": (
        "Regions to keep a trail in: one region-scoped trail per entry, all named `trailName` (with "
        "`multiRegion`, the single home region). Each must be a region botocore's endpoint data lists for "
        "CloudTrail. No duplicates. A region removed from the list has its trail deleted with "
        "`deletionPolicy: Delete` and left alone with `Retain`."
    ),
    "spec.multiRegion": (
        "`true`: one multi-region trail in `regions[0]` instead of one trail per region; `regions` must "
        "then hold exactly one entry."
    ),
    "spec.globalServiceEventsRegion": (
        "The one region whose trail gets `IncludeGlobalServiceEvents=true`, so events of global services "
        "(IAM, STS, CloudFront) are recorded once, not once per region. Must be one of `regions`. A "
        "multi-region trail always includes them."
    ),
    "spec.logging": (
        "`true`: the trails log (StartLogging; a trail made through the API does not log until started). "
        "`false`: StopLogging."
    ),
    "spec.logFileValidation": "Log file integrity validation (digest files).",
    "spec.destination": "Where the trails deliver log files.",
    "spec.destination.bucket": (
        "Bucket the trails deliver to. `{region}` in the name is replaced by each trail's region, giving "
        "one bucket per region (`acme-audit-{region}`); without it all regions share one bucket, which "
        "lives in the first region delivering to it. Every resulting name must follow the "
        f"{_BUCKET_RULES}. trailkeeper adds its own statements to the bucket policy and leaves the others."
    ),
    "spec.destination.createBucket": (
        "Create the bucket when it is missing, in its region, with all four public-access blocks on, "
        "versioning on and default encryption (SSE-S3, or SSE-KMS with `kmsKeyId`), tagged "
        f"`{OWNER_TAG_KEY}`. Those settings of a bucket trailkeeper created are restored on every pass "
        "that is not a periodic drift check. `false` and the bucket is missing: `Ready=False`, reason "
        "`NoSuchBucket`."
    ),
    "spec.destination.keyPrefix": (
        "Key prefix of the log files: CloudTrail writes below `<keyPrefix>/AWSLogs/<account-id>/`. No "
        "leading or trailing `/`, no empty, `.` or `..` segment, no `AWSLogs` segment (CloudTrail adds it), "
        "no `*`, `?`, `$`, `\\`, braces or control characters."
    ),
    "spec.destination.kmsKeyId": (
        "KMS key for the log files (key id, key ARN, alias name or alias ARN), and the default encryption "
        "key of a bucket trailkeeper creates. An alias is resolved to its key ARN (kms:DescribeKey) before "
        "it is compared with the key ARN CloudTrail reports."
    ),
    "spec.destination.sourceAccounts": (
        "Further account ids whose trails may write into the bucket (multi-account aggregation): the "
        "bucket policy gets a write path `AWSLogs/<account-id>/*` for each, limited by `aws:SourceAccount`. "
        "No duplicates."
    ),
    "spec.destination.organizationId": (
        "AWS Organizations id: adds the organization write path `AWSLogs/<org-id>/*` to the bucket policy."
    ),
    "spec.notifications": (
        "SNS notification of each log file delivery. Unset: no topic. Removing it (or renaming the topic) "
        "takes trailkeeper's statements and the spec's subscriptions off the old topic."
    ),
    "spec.notifications.topicName": (
        "Topic name, created in each region when missing (tagged with the owner tag). trailkeeper adds a "
        "statement letting CloudTrail publish, limited to these trails by `aws:SourceArn`."
    ),
    "spec.notifications.subscriptions": (
        "Subscriptions, reconciled as a set keyed by (`protocol`, `endpoint`): each is created when "
        "missing; one removed from the spec is unsubscribed; subscriptions trailkeeper was never asked "
        "for are left alone. Each (protocol, endpoint) pair at most once."
    ),
    "spec.notifications.subscriptions[].protocol": "SNS protocol.",
    "spec.notifications.subscriptions[].endpoint": (
        "Endpoint, in the form its protocol takes (see the rules below the table)."
    ),
    "spec.notifications.subscriptions[].rawMessageDelivery": (
        "SNS raw message delivery; only for `sqs`, `http`, `https` and `firehose`."
    ),
    "spec.notifications.subscriptions[].filterPolicy": "SNS filter policy, a JSON object of at most 256 KiB.",
    "spec.eventSelectors": (
        "Basic event selectors. Mutually exclusive with `advancedEventSelectors`. Neither given: every "
        "read and write management event, no data events (written out explicitly, so a hand-made change "
        "shows as drift)."
    ),
    "spec.eventSelectors[].readWriteType": "Which management and data events to record.",
    "spec.eventSelectors[].includeManagementEvents": "Record management events.",
    "spec.eventSelectors[].excludeManagementEventSources": (
        "Event sources to leave out of management events (e.g. `kms.amazonaws.com`)."
    ),
    "spec.eventSelectors[].dataResources": "Data events to record.",
    "spec.eventSelectors[].dataResources[].type": "Resource type, e.g. `AWS::S3::Object`.",
    "spec.eventSelectors[].dataResources[].values": (
        "ARNs or ARN prefixes, e.g. `arn:aws:s3` for every bucket."
    ),
    "spec.advancedEventSelectors": "Advanced event selectors. Mutually exclusive with `eventSelectors`.",
    "spec.advancedEventSelectors[].name": "Name of the selector.",
    "spec.advancedEventSelectors[].fieldSelectors": (
        "Conditions, all of which an event must meet; each needs at least one non-empty operator."
    ),
    "spec.advancedEventSelectors[].fieldSelectors[].field": (
        "Event record field: `eventCategory`, `eventSource`, `eventName`, `readOnly`, `resources.type`, "
        "`resources.ARN`, …"
    ),
    "spec.advancedEventSelectors[].fieldSelectors[].equals": "Values the field must equal.",
    "spec.advancedEventSelectors[].fieldSelectors[].startsWith": "Prefixes the field must start with.",
    "spec.advancedEventSelectors[].fieldSelectors[].endsWith": "Suffixes the field must end with.",
    "spec.advancedEventSelectors[].fieldSelectors[].notEquals": "Values the field must not equal.",
    "spec.advancedEventSelectors[].fieldSelectors[].notStartsWith": "Prefixes the field must not start with.",
    "spec.advancedEventSelectors[].fieldSelectors[].notEndsWith": "Suffixes the field must not end with.",
    "spec.insights": "CloudTrail Insights types to enable; `[]` turns Insights off. No duplicates.",
    "spec.cloudWatchLogs": "Delivery to CloudWatch Logs: both ARNs or neither.",
    "spec.cloudWatchLogs.logGroupArn": (
        "Log group ARN; with or without the trailing `:*` it is the same group."
    ),
    "spec.cloudWatchLogs.roleArn": "Role CloudTrail assumes to write to the log group.",
    "spec.tags": (
        "Tags on the trails, on buckets and topics trailkeeper creates. Keys: 1 to 128 letters, digits, "
        f"spaces and `_.:/=+-@`; not `{OWNER_TAG_KEY}` (trailkeeper sets it) and not beginning with `aws:`. "
        "Only these keys are compared: tags others add are left alone."
    ),
    "spec.adopt": (
        "`true`: take over an existing trail of the same name that trailkeeper did not make (or that "
        f"another Trail owns), and set its `{OWNER_TAG_KEY}` tag. `false`: such a trail is never modified "
        "and the Trail reports `Ready=False`, reason `Conflict`."
    ),
    "spec.deletionPolicy": (
        "What deleting the Trail does in AWS. `Retain`: nothing. `Delete`: deletes the trails that carry "
        "its owner tag, removes its own bucket and topic policy statements and the spec's subscriptions, "
        "deletes a topic it created when no other subscription and no other Trail's statement remains on "
        "it, and a bucket it created when no other Trail's statement remains and it holds no object or "
        "object version. Also applies to regions removed from `regions`."
    ),
    "status.conditions": (
        "Kubernetes-convention conditions `Ready`, `Synced`, `Drifted` and `Compliant`; docs/operations.md "
        "lists every reason."
    ),
    "status.conditions[].reason": (
        "`Reconciled`, `InvalidSpec`, `Conflict`, `NoSuchBucket`, `Drifted` (Ready); `NoDrift`, "
        "`DriftCorrected`, `DriftDetected` (Drifted); `AllControlsPassed`, `ControlsFailed`, `NotEvaluated` "
        "(Compliant); otherwise the AWS error code that stopped the pass, e.g. `AccessDenied`."
    ),
    "status.drift[].resource": (
        "What differs: `trail/<region>`, `bucket/<bucket>`, `bucket-policy/<bucket>`, `topic/<region>`, "
        "`topic-policy/<region>` or `subscription/<region>`."
    ),
    "status.drift[].field": (
        "The field in AWS's terms: `Exists`, `IsLogging`, `S3BucketName`, `EventSelectors`, "
        "`InsightSelectors`, `Tags[<key>]`, `Statement[<Sid>]`, `PublicAccessBlock.<flag>`, `Versioning`, "
        "`<protocol>:<endpoint>`, …"
    ),
    "status.regions": "One entry per trail (per region; one with `multiRegion`).",
    "status.regions[].region": "Region of the trail.",
    "status.regions[].trailArn": "ARN of the trail.",
    "status.regions[].isLogging": "Whether the trail logs, as observed (or as just set).",
    "status.regions[].bucket": "Bucket the trail delivers to.",
    "status.regions[].topicArn": "ARN of the SNS topic, with `notifications`.",
    "status.regions[].latestDeliveryError": "CloudTrail's `LatestDeliveryError` for the trail, if any.",
    "status.regions[].error": "Why this region did not reach the spec (`<code>: <message>`), else null.",
    "status.compliance": (
        "CIS AWS Foundations Benchmark CloudTrail controls, evaluated over what AWS holds; summarized by "
        "the `Compliant` condition."
    ),
    "status.compliance[].control": (
        "Control id in v1.5.0/v2.0.0 numbering: `CIS-3.1`, `CIS-3.2`, `CIS-3.3`, `CIS-3.4`, `CIS-3.6`, "
        "`CIS-3.7`, `CIS-3.10`, `CIS-3.11`."
    ),
    "status.compliance[].title": "What the control checks, with its v3.0.0 number.",
    "status.compliance[].passed": "Whether the control passed.",
    "status.compliance[].detail": "Which trails or buckets passed or failed, and why.",
    "status.trailName": "Name the trails were made with; a later `trailName` must equal it.",
    "status.accountId": "AWS account the trails are in.",
}

_LOG_RETENTION: dict[str, str] = {
    "spec.trailRef": (
        "A Trail in the same namespace: the rule goes on each of its buckets (one per region with "
        "`{region}`), below its key prefix. When the Trail's buckets change, the rule follows them and is "
        "taken off the old ones. Exactly one of `trailRef` and `bucket`."
    ),
    "spec.trailRef.name": "`metadata.name` of the Trail.",
    "spec.bucket": (
        f"An explicit bucket instead of `trailRef`; {_BUCKET_RULES}. Exactly one of `trailRef` and `bucket`."
    ),
    "spec.region": (
        "Region of `bucket`; only together with `bucket`. Unset: looked up with GetBucketLocation."
    ),
    "spec.prefix": (
        "Key prefix the rule applies to. Unset: `<keyPrefix>/AWSLogs/` of the Trail (`AWSLogs/` without a "
        "key prefix); with `bucket`, `AWSLogs/`."
    ),
    "spec.transitions": (
        "Storage-class transitions, in ascending order of `days`, each to a class further down S3's "
        "lifecycle waterfall than the one before."
    ),
    "spec.transitions[].days": "Days after object creation.",
    "spec.transitions[].storageClass": "Storage class to move objects to.",
    "spec.expirationDays": "Days after creation when objects expire; later than every transition.",
    "spec.noncurrentVersionExpirationDays": (
        "Days after which noncurrent object versions expire (buckets trailkeeper creates are versioned)."
    ),
    "spec.abortIncompleteMultipartUploadDays": "Days after which incomplete multipart uploads are aborted.",
    "spec.deletionPolicy": (
        "What deleting the LogRetention does in AWS. `Retain`: nothing. `Delete`: removes only this "
        "object's own lifecycle rule from each bucket in `status.buckets`."
    ),
    "status.conditions": (
        "Kubernetes-convention conditions `Ready`, `Synced` and `Drifted`; docs/operations.md lists every "
        "reason."
    ),
    "status.conditions[].reason": (
        "`Reconciled`, `InvalidSpec`, `TrailNotFound`, `TrailInvalid`, `NoSuchBucket`, `Drifted` (Ready); "
        "`NoDrift`, `DriftCorrected`, `DriftDetected` (Drifted); otherwise the AWS error code that stopped "
        "the pass."
    ),
    "status.drift[].resource": "What differs: `lifecycle/<bucket>`.",
    "status.drift[].field": "`LifecycleRule[<rule ID>]`.",
    "status.buckets": "One entry per bucket the rule is kept on.",
    "status.buckets[].bucket": "Bucket name.",
    "status.buckets[].region": "Region of the bucket.",
    "status.buckets[].ruleId": (
        "ID of the lifecycle rule: `trailkeeper-<namespace>-<name>`, cut and ended with a hash when longer "
        "than S3's 255 characters."
    ),
    "status.buckets[].error": "Why this bucket did not reach the spec (`<code>: <message>`), else null.",
}

DESCRIPTIONS: dict[str, str] = {
    **_SHARED,
    **{f"Trail:{path}": text for path, text in _TRAIL.items()},
    **{f"LogRetention:{path}": text for path, text in _LOG_RETENTION.items()},
}

# Defaults computed at reconcile time rather than written into the schema.
_COMPUTED_DEFAULTS: dict[str, str] = {
    "Trail:spec.trailName": "`metadata.name`",
    "Trail:spec.globalServiceEventsRegion": "`regions[0]`",
    "LogRetention:spec.prefix": "see description",
    "LogRetention:spec.region": "looked up",
}

# Patterns said in words; any other pattern is shown as it is.
_PATTERN_WORDS: dict[str, str] = {
    REGION_PATTERN: "an AWS region name such as `us-east-1`, known to botocore for CloudTrail",
    ACCOUNT_ID_PATTERN: "12 digits",
    ORGANIZATION_ID_PATTERN: "`o-` and 10 to 32 lowercase letters or digits",
    ROLE_ARN_PATTERN: "an IAM role ARN, `arn:<partition>:iam::<12 digits>:role/<path and name>`",
}


def _description(kind: str, path: str) -> str:
    return DESCRIPTIONS.get(f"{kind}:{path}") or DESCRIPTIONS.get(path, "")


# --------------------------------------------------------------------------------------------------
# Walking the schema
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One field of one kind, as the reference table shows it."""

    kind: str
    path: str
    type: str
    required: bool
    default: str
    description: str
    constraints: tuple[str, ...]


def _kind_schema(info: KindInfo) -> dict[str, Any]:
    schema = crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    assert isinstance(schema, dict)
    return schema


def _walk(
    node: Mapping[str, Any], path: str, required: bool
) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    yield path, node, required
    if node.get("type") == "object" and "properties" in node:
        needed = set(node.get("required") or [])
        for name, child in node["properties"].items():
            yield from _walk(child, f"{path}.{name}", name in needed)
    items = node.get("items")
    if node.get("type") == "array" and isinstance(items, Mapping) and "properties" in items:
        needed = set(items.get("required") or [])
        for name, child in items["properties"].items():
            yield from _walk(child, f"{path}[].{name}", name in needed)


def field_paths(info: KindInfo) -> list[str]:
    """Every field path of a kind below `spec` and `status`, in schema order."""
    schema = _kind_schema(info)
    return [
        path for part in ("spec", "status") for path, _, _ in _walk(schema[part], part, False) if path != part
    ]


def _type(node: Mapping[str, Any]) -> str:
    kind = node.get("type")
    if "enum" in node:
        return "string (enum)"
    if kind == "array":
        items = node.get("items") or {}
        inner = _type(items)
        return "list of objects" if inner == "object" else f"list of {inner}"
    if kind == "object":
        if node.get("x-kubernetes-preserve-unknown-fields"):
            return "JSON object"
        if isinstance(node.get("additionalProperties"), Mapping):
            return f"map of string to {_type(node['additionalProperties'])}"
        return "object"
    return str(kind)


def _default(kind: str, path: str, node: Mapping[str, Any]) -> str:
    computed = _COMPUTED_DEFAULTS.get(f"{kind}:{path}")
    if computed:
        return computed
    if "default" not in node:
        return ""
    value = node["default"]
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if v is not None}
    return f"`{json.dumps(value, separators=(', ', ': '))}`"


def _range(low: Any, high: Any, unit: str = "") -> str | None:
    suffix = f" {unit}" if unit else ""
    if low is not None and high is not None:
        return f"{low} to {high}{suffix}"
    if high is not None:
        return f"at most {high}{suffix}"
    if low is not None:
        return f"at least {low}{suffix}"
    return None


def _scalar_constraints(node: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    if "enum" in node:
        found.append("one of " + ", ".join(f"`{value}`" for value in node["enum"]))
    length = _range(node.get("minLength"), node.get("maxLength"), "characters")
    if length:
        found.append(length)
    number = _range(node.get("minimum"), node.get("maximum"))
    if number:
        found.append(number)
    pattern = node.get("pattern")
    if pattern:
        found.append(_PATTERN_WORDS.get(pattern) or f"pattern `{pattern}`")
    return found


def _constraints(node: Mapping[str, Any]) -> list[str]:
    found = _scalar_constraints(node)
    if node.get("type") == "array":
        count = _range(node.get("minItems"), node.get("maxItems"), "items")
        if count:
            found.append(count)
        if node.get("x-kubernetes-list-type") == "set":
            found.append("no duplicates (a set)")
        items = node.get("items") or {}
        if items.get("type") != "object":
            found += [f"each: {text}" for text in _scalar_constraints(items)]
    if node.get("type") == "object" and isinstance(node.get("additionalProperties"), Mapping):
        count = _range(None, node.get("maxProperties"), "entries")
        if count:
            found.append(count)
        found += [f"each value: {text}" for text in _scalar_constraints(node["additionalProperties"])]
    for rule in node.get("x-kubernetes-validations") or []:
        found.append(f"{rule['message']} (checked at admission)")
    return found


def rows(info: KindInfo) -> list[Row]:
    """The reference rows of a kind: every spec and status field below the top level."""
    schema = _kind_schema(info)
    result: list[Row] = []
    for part in ("spec", "status"):
        for path, node, required in _walk(schema[part], part, False):
            if path == part:
                continue
            result.append(
                Row(
                    kind=info.kind,
                    path=path,
                    type=_type(node),
                    required=required and part == "spec",
                    default=_default(info.kind, path, node),
                    description=_description(info.kind, path),
                    constraints=tuple(_constraints(node)),
                )
            )
    return result


# --------------------------------------------------------------------------------------------------
# Rules no single field can state (the models' validators; the CRD's CEL rules)
# --------------------------------------------------------------------------------------------------


def _endpoint_forms() -> str:
    forms: dict[str, list[str]] = {}
    for protocol, (_, what) in _ENDPOINT_PATTERNS.items():
        forms.setdefault(what, []).append(f"`{protocol}`")
    return "; ".join(f"{' and '.join(protocols)}: {what}" for what, protocols in forms.items())


def _trail_rules() -> list[tuple[str, str]]:
    return [
        ("`multiRegion: true`", "`regions` holds exactly one region (the home region)."),
        ("`globalServiceEventsRegion`", "Must be one of `regions`."),
        (
            "`eventSelectors` / `advancedEventSelectors`",
            "Mutually exclusive: give one of them (or neither, for all management events).",
        ),
        (
            "`destination.bucket` with `{region}`",
            "The name with each region of `regions` put in must be a valid bucket name.",
        ),
        (
            "`trailName` unset",
            "`metadata.name` becomes the trail name and must obey the trail-name rules.",
        ),
        (
            "`trailName`",
            "Immutable: once the trails are named (`status.trailName`), a different name is refused "
            "with `InvalidSpec`.",
        ),
        ("`notifications.subscriptions[].endpoint`", f"Must fit the protocol: {_endpoint_forms()}."),
        (
            "`notifications.subscriptions[].rawMessageDelivery`",
            "`true` only for `sqs`, `http`, `https` and `firehose`.",
        ),
        (
            "`advancedEventSelectors[].fieldSelectors[]`",
            "At least one of `equals`, `startsWith`, `endsWith`, `notEquals`, `notStartsWith`, "
            "`notEndsWith` is non-empty.",
        ),
        ("`cloudWatchLogs`", "`logGroupArn` and `roleArn` both or neither."),
        (
            "`regions`, `insights`, `destination.sourceAccounts`, `notifications.subscriptions`",
            "No duplicates (subscriptions by `protocol` and `endpoint`).",
        ),
    ]


def _retention_rules() -> list[tuple[str, str]]:
    thirty = " and ".join(f"`{c}`" for c in sorted(_THIRTY_DAY_CLASSES))
    waterfall = " → ".join(f"`{c}`" for c in _WATERFALL)
    return [
        ("`trailRef` / `bucket`", "Exactly one of them."),
        ("`region`", "Only together with `bucket` (a Trail's buckets are in its regions)."),
        (
            "actions",
            "At least one of `transitions`, `expirationDays`, `noncurrentVersionExpirationDays`, "
            "`abortIncompleteMultipartUploadDays` (S3 refuses a rule without an action).",
        ),
        ("`transitions[].days`", "Strictly ascending."),
        (
            "`transitions[].storageClass`",
            f"Each class further down S3's waterfall than the one before: {waterfall}.",
        ),
        (
            f"transitions to {thirty}",
            "At least 30 days after creation, and objects stay 30 days in that class before the next "
            "transition.",
        ),
        ("`expirationDays`", "Later than the last transition's `days`."),
    ]


def _admission_rules(info: KindInfo) -> list[str]:
    found = [f"`{rule['rule']}` — {rule['message']}" for rule in info.spec_rules]
    found += [f"`{field}`: `{rule['rule']}` — {rule['message']}" for field, rule in info.field_rules]
    found += [f"`{field}` is a list of type `set`: duplicates are refused" for field in info.set_fields]
    return found


# --------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _field_table(table_rows: list[Row], *, spec: bool) -> list[str]:
    lines = (
        ["| Field | Type | Required | Default | Description |", "|---|---|---|---|---|"]
        if spec
        else ["| Field | Type | Description |", "|---|---|---|"]
    )
    for row in table_rows:
        text = row.description
        if row.constraints:
            text = f"{text} *Constraints:* {'; '.join(row.constraints)}.".strip()
        cells = [f"`{row.path}`", row.type]
        if spec:
            cells += ["yes" if row.required else "", row.default]
        cells.append(text)
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return lines


def _rule_table(rules: list[tuple[str, str]]) -> list[str]:
    lines = ["| Where | Rule |", "|---|---|"]
    lines += [f"| {_cell(where)} | {_cell(rule)} |" for where, rule in rules]
    return lines


def _columns(info: KindInfo) -> list[str]:
    lines = ["| Column | From |", "|---|---|"]
    for column in info.columns:
        lines.append(f"| {column['name'].upper()} | `{_cell(column['jsonPath'])}` |")
    return lines


def _kind_section(info: KindInfo, rules: list[tuple[str, str]]) -> list[str]:
    all_rows = rows(info)
    short = ", ".join(f"`{name}`" for name in info.short_names)
    lines = [
        f"## {info.kind}",
        "",
        f"`apiVersion: {GROUP}/{VERSION}`, `kind: {info.kind}`; resource `{info.plural}`, short name "
        f"{short}, namespaced.",
        "",
        "`kubectl get` columns:",
        "",
        *_columns(info),
        "",
        f"### {info.kind} spec",
        "",
        *_field_table([r for r in all_rows if r.path.startswith("spec.")], spec=True),
        "",
        f"### {info.kind} rules across fields",
        "",
        "Checked by the models: `trailkeeper plan`/`apply`/`diff` refuse the manifest (exit 1), the operator "
        "sets `Ready=False` with reason `InvalidSpec` and sends nothing to AWS.",
        "",
        *_rule_table(rules),
        "",
    ]
    admission = _admission_rules(info)
    if admission:
        lines += [
            "A real API server also enforces these at admission (CEL rules and list types in the CRD):",
            "",
            *[f"- {item}" for item in admission],
            "",
        ]
    lines += [
        f"### {info.kind} status",
        "",
        *_field_table([r for r in all_rows if r.path.startswith("status.")], spec=False),
        "",
    ]
    return lines


def render_reference() -> str:
    """docs/api-reference.md, as generated from the models."""
    rules = {"Trail": _trail_rules(), "LogRetention": _retention_rules()}
    lines = [
        "# API reference",
        "",
        GENERATED_NOTE,
        "",
        f"Group `{GROUP}`, version `{VERSION}`. Both kinds are namespaced and belong to the category "
        "`trailkeeper` (`kubectl get trailkeeper` lists both).",
        "",
        "Defaults are applied by the CRD schema and again by the models, so `trailkeeper plan` and the "
        "operator see the same values. Unknown fields are refused (a misspelt field is an error, not "
        "ignored). Paths use `[]` for the items of a list. A field with no default and not required is "
        "unset (null) when left out.",
        "",
        "Besides the spec, every manifest needs `apiVersion: trailkeeper.io/v1alpha1`, a `kind` of "
        "`Trail` or `LogRetention`, and a `metadata.name` that is a DNS-1123 name (lowercase letters, "
        "digits, `-`); `metadata.namespace` defaults to `default`.",
        "",
    ]
    for info in KINDS:
        lines += _kind_section(info, rules[info.kind])
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    sys.stdout.write(render_reference())


if __name__ == "__main__":
    main()
