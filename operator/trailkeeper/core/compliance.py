"""CIS AWS Foundations Benchmark CloudTrail controls, evaluated over what AWS holds (not over the spec).

The spec says what a Trail should be; compliance is about what the account actually has, including
trails and bucket settings trailkeeper does not own. The reconciler observes AWS into the `Observed*`
dataclasses below and `evaluate` turns them into one `ControlResult` per control, which becomes
`status.compliance` and the `Compliant` condition.

Control ids use the numbering of CIS AWS Foundations Benchmark v1.5.0 / v2.0.0 (identical in section 3,
"Logging"); each title carries the number the same recommendation has in v3.0.0, or says it is not
in v3.0.0. v3.0.0 dropped "the S3 bucket used to store CloudTrail logs is not publicly accessible"
(v2.0.0 3.3) and "CloudTrail trails are integrated with CloudWatch Logs" (v2.0.0 3.4) and moved AWS
Config to 3.3, so the later recommendations shift down; AWS Security Hub's CIS v3.0.0 standard likewise
keeps only CloudTrail.1, .2, .4 and .7 of the CloudTrail controls.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from trailkeeper.api.trail import ComplianceResult

# --------------------------------------------------------------------------------------------------
# Observed state: what the aws/ layer read, in the shapes of the AWS APIs it came from.
# --------------------------------------------------------------------------------------------------


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
    bucket has none); `policy` is the parsed bucket policy (None when there is none).
    """

    name: str
    public_access_block: Mapping[str, bool] | None = None
    policy: Mapping[str, Any] | None = None
    logging_enabled: bool = False
    acl_grants_public: bool = False


@dataclass(frozen=True, kw_only=True)
class ObservedAccountState:
    """Every trail seen in every enabled region of one account, and the buckets they deliver to."""

    account_id: str
    enabled_regions: frozenset[str]
    trails: Sequence[ObservedTrailState]
    buckets: Mapping[str, ObservedBucketState]


@dataclass(frozen=True)
class ControlResult:
    """The outcome of one control: `control` in v1.5/v2.0 numbering, `cis_v3` its v3.0 number (None
    when v3.0 has no such recommendation), and one line of what was seen."""

    control: str
    cis_v3: str | None
    title: str
    passed: bool
    detail: str


# --------------------------------------------------------------------------------------------------
# The controls
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Control:
    id: str
    v3: str | None
    name: str

    @property
    def title(self) -> str:
        note = f"v3.0: {self.v3.removeprefix('CIS-')}" if self.v3 else "not in v3.0"
        return f"{self.name} ({note})"

    def result(self, passed: bool, detail: str) -> ControlResult:
        return ControlResult(self.id, self.v3, self.title, passed, _one_line(detail))


# CIS v2.0.0 "3.1 Ensure CloudTrail is enabled in all regions" (v3.0.0 3.1; Security Hub CloudTrail.1
# "…at least one multi-Region trail that includes read and write management events"; Prowler
# cloudtrail_multi_region_enabled and cloudtrail_multi_region_enabled_logging_management_events).
CIS_3_1 = _Control("CIS-3.1", "CIS-3.1", "multi-region coverage")
# "3.2 Ensure CloudTrail log file validation is enabled" (v3.0.0 3.2; CloudTrail.4;
# Prowler cloudtrail_log_file_validation_enabled).
CIS_3_2 = _Control("CIS-3.2", "CIS-3.2", "log file validation")
# "3.3 Ensure the S3 bucket used to store CloudTrail logs is not publicly accessible" (removed in
# v3.0.0; CloudTrail.6; Prowler cloudtrail_logs_s3_bucket_is_not_publicly_accessible).
CIS_3_3 = _Control("CIS-3.3", None, "log bucket not publicly accessible")
# "3.4 Ensure CloudTrail trails are integrated with CloudWatch Logs" (removed in v3.0.0; CloudTrail.5;
# Prowler cloudtrail_cloudwatch_logging_enabled).
CIS_3_4 = _Control("CIS-3.4", None, "CloudWatch Logs integration")
# "3.6 Ensure S3 bucket access logging is enabled on the CloudTrail S3 bucket" (v3.0.0 3.4;
# CloudTrail.7; Prowler cloudtrail_logs_s3_bucket_access_logging_enabled).
CIS_3_6 = _Control("CIS-3.6", "CIS-3.4", "log bucket access logging")
# "3.7 Ensure CloudTrail logs are encrypted at rest using KMS CMKs" (v3.0.0 3.5; CloudTrail.2;
# Prowler cloudtrail_kms_encryption_enabled).
CIS_3_7 = _Control("CIS-3.7", "CIS-3.5", "log encryption with KMS")
# "3.10 / 3.11 Ensure that Object-level logging for write / read events is enabled for S3 bucket"
# (v3.0.0 3.8 / 3.9; Prowler cloudtrail_s3_dataevents_write_enabled / _read_enabled).
CIS_3_10 = _Control("CIS-3.10", "CIS-3.8", "S3 object-level write events")
CIS_3_11 = _Control("CIS-3.11", "CIS-3.9", "S3 object-level read events")

CONTROLS: tuple[_Control, ...] = (CIS_3_1, CIS_3_2, CIS_3_3, CIS_3_4, CIS_3_6, CIS_3_7, CIS_3_10, CIS_3_11)
CONTROL_IDS: tuple[str, ...] = tuple(c.id for c in CONTROLS)
_BY_ID = {c.id: c for c in CONTROLS}

# The CIS audit of 3.4 asks for a LatestCloudWatchLogsDeliveryTime about a day old at most.
CLOUDWATCH_DELIVERY_MAX_AGE = timedelta(hours=24)

_READ = "read"
_WRITE = "write"
_BOTH = frozenset({_READ, _WRITE})
_NONE: frozenset[str] = frozenset()
_S3_OBJECT = "AWS::S3::Object"
# "All buckets" in a basic selector's DataResources values (CIS remediation: ["arn:aws:s3"]; the
# CloudTrail docs also use "arn:aws:s3:::"), in any partition.
_ALL_BUCKETS = re.compile(r"^arn:aws[a-z-]*:s3(:::)?$")
_POSITIVE_OPS = ("Equals", "StartsWith", "EndsWith")
_NEGATIVE_OPS = ("NotEquals", "NotStartsWith", "NotEndsWith")
_PUBLIC_ACCESS_BLOCK_FLAGS = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)
_MAX_DETAIL = 400
_MAX_LISTED = 6


def evaluate(
    account: ObservedAccountState, *, trail_arns: set[str] | None = None, now: datetime | None = None
) -> list[ControlResult]:
    """Every control over the observed account, in benchmark order.

    `trail_arns` narrows the trail-specific controls (validation, bucket, CloudWatch, KMS, S3 object
    events) to the trails of one Trail resource; CIS-3.1 is about the whole account and always looks at
    every trail in it. `now` is the time CloudWatch delivery ages are measured against (default: now).
    """
    now = _aware(now or datetime.now(UTC))
    distinct = _distinct_trails(account.trails)
    if trail_arns is None:
        scoped = distinct
        none_seen = "no trail in the account"
        required = set(account.enabled_regions) or _regions_of(distinct, account.enabled_regions)
    else:
        scoped = [t for t in distinct if t.arn in trail_arns]
        none_seen = "none of this resource's trails was observed"
        required = _regions_of(scoped, account.enabled_regions)
    buckets = sorted({t.s3_bucket for t in scoped if t.s3_bucket})
    return [
        _check_all_regions(account.enabled_regions, distinct),
        _check_each_trail(
            CIS_3_2,
            scoped,
            none_seen,
            problem_of=lambda t: None if t.log_file_validation else "validation off",
            passed_text="validation on for",
        ),
        _check_buckets(
            CIS_3_3,
            buckets,
            account.buckets,
            none_seen,
            problems_of=_public_access_problems,
            passed_text="public access blocked, no public grant on",
        ),
        _check_each_trail(
            CIS_3_4,
            scoped,
            none_seen,
            problem_of=lambda t: _cloudwatch_problem(t, now),
            passed_text="delivering to CloudWatch Logs:",
        ),
        _check_buckets(
            CIS_3_6,
            buckets,
            account.buckets,
            none_seen,
            problems_of=lambda b: [] if b.logging_enabled else ["access logging off"],
            passed_text="access logging on for",
        ),
        _check_each_trail(
            CIS_3_7,
            scoped,
            none_seen,
            problem_of=lambda t: None if t.kms_key_id else "no KMS key (SSE-S3)",
            passed_text="SSE-KMS on",
        ),
        _check_s3_objects(CIS_3_10, _WRITE, scoped, required, none_seen),
        _check_s3_objects(CIS_3_11, _READ, scoped, required, none_seen),
    ]


def compliance_condition(results: Sequence[ControlResult]) -> tuple[str, str, str]:
    """The `Compliant` condition's (status, reason, message) for a set of results."""
    if not results:
        return ("Unknown", "NotEvaluated", "no controls evaluated")
    failed = [r for r in results if not r.passed]
    if not failed:
        return ("True", "AllControlsPassed", f"{len(results)} of {len(results)} controls passed")
    names = ", ".join(
        f"{r.control} {_BY_ID[r.control].name if r.control in _BY_ID else r.title}" for r in failed
    )
    return ("False", "ControlsFailed", f"failed: {names}")


def flipped(
    previous: Sequence[Mapping[str, Any]] | None, current: Sequence[ControlResult]
) -> list[tuple[str, bool]]:
    """Controls whose `passed` changed since `previous` (status.compliance as stored), with the new value.

    A control with no previous result has not flipped: the first evaluation is not a change to report.
    """
    before = {
        str(entry["control"]): entry["passed"]
        for entry in previous or ()
        if "control" in entry and isinstance(entry.get("passed"), bool)
    }
    return [(r.control, r.passed) for r in current if r.control in before and before[r.control] != r.passed]


def to_status(results: Sequence[ControlResult]) -> list[dict[str, Any]]:
    """The results as `status.compliance` entries (camelCase, the `ComplianceResult` shape)."""
    return [
        ComplianceResult(control=r.control, title=r.title, passed=r.passed, detail=r.detail).model_dump(
            by_alias=True
        )
        for r in results
    ]


# --------------------------------------------------------------------------------------------------
# Trails
# --------------------------------------------------------------------------------------------------


def _distinct_trails(trails: Iterable[ObservedTrailState]) -> list[ObservedTrailState]:
    """One entry per ARN, the home-region copy when it was seen: a multi-region trail's shadows are the
    same trail and must not count as more coverage (or more failures) than the trail itself."""
    chosen: dict[str, ObservedTrailState] = {}
    for trail in trails:
        current = chosen.get(trail.arn)
        if current is None or (current.is_shadow and not trail.is_shadow):
            chosen[trail.arn] = trail
    return [chosen[arn] for arn in sorted(chosen)]


def _label(trail: ObservedTrailState) -> str:
    # Region-scoped trails of one Trail share a name, so the region is what tells them apart.
    return f"{trail.home_region}/{trail.name}"


def _regions_of(trails: Iterable[ObservedTrailState], enabled: frozenset[str]) -> set[str]:
    regions: set[str] = set()
    for trail in trails:
        if trail.is_multi_region:
            regions |= enabled or {trail.home_region}
        else:
            regions.add(trail.home_region)
    return regions


def _rw_kinds(read_write_type: object) -> frozenset[str]:
    if read_write_type in (None, "All"):  # omitted means All in PutEventSelectors
        return _BOTH
    return {"ReadOnly": frozenset({_READ}), "WriteOnly": frozenset({_WRITE})}.get(str(read_write_type), _NONE)


def _values(field_selector: Mapping[str, Any], operator: str) -> list[str]:
    return [str(v) for v in field_selector.get(operator) or ()]


def _readonly_kinds(field_selector: Mapping[str, Any]) -> frozenset[str]:
    kinds = set(_BOTH)
    meaning = {"true": _READ, "false": _WRITE}
    equals = _values(field_selector, "Equals")
    if equals:
        kinds &= {meaning[v.lower()] for v in equals if v.lower() in meaning}
    for value in _values(field_selector, "NotEquals"):
        kinds.discard(meaning.get(value.lower(), ""))
    return frozenset(kinds)


def _only_excludes(field_selector: Mapping[str, Any]) -> bool:
    return not any(_values(field_selector, op) for op in _POSITIVE_OPS)


def _arn_filter_keeps_all_buckets(field_selector: Mapping[str, Any]) -> bool:
    if _values(field_selector, "Equals") or _values(field_selector, "EndsWith"):
        return False
    if not all(_ALL_BUCKETS.match(v) for v in _values(field_selector, "StartsWith")):
        return False
    # Excluding single buckets (usually the trail's own, so its log writes do not log themselves) still
    # records every other bucket; excluding the all-buckets prefix records none.
    return not any(_ALL_BUCKETS.match(v) for op in _NEGATIVE_OPS for v in _values(field_selector, op))


def _advanced_kinds(
    selector: Mapping[str, Any], *, category: str, resource_type: str | None
) -> tuple[frozenset[str], bool]:
    """Which of read/write this advanced selector records in full for `category` (and `resource_type`),
    and whether it selects that category/type but only a part of it (a narrowing filter)."""
    field_selectors: Sequence[Mapping[str, Any]] = selector.get("FieldSelectors") or ()
    by_field: dict[str, list[Mapping[str, Any]]] = {}
    for field_selector in field_selectors:
        by_field.setdefault(str(field_selector.get("Field")), []).append(field_selector)
    categories = [v for fs in by_field.get("eventCategory", ()) for v in _values(fs, "Equals")]
    if category not in categories:
        return _NONE, False
    if resource_type is not None:
        types = [v for fs in by_field.get("resources.type", ()) for v in _values(fs, "Equals")]
        if resource_type not in types:
            return _NONE, False
    kinds = set(_BOTH)
    for field, selectors in by_field.items():
        for field_selector in selectors:
            if field in ("eventCategory", "resources.type"):
                continue
            if field == "readOnly":
                kinds &= _readonly_kinds(field_selector)
            elif field == "eventSource" and resource_type is None and _only_excludes(field_selector):
                # The advanced form of ExcludeManagementEventSources (KMS, RDS Data API): CIS 3.1 asks for
                # ReadWriteType All and IncludeManagementEvents, and tolerates these exclusions.
                continue
            elif field == "resources.ARN" and resource_type is not None:
                if not _arn_filter_keeps_all_buckets(field_selector):
                    return _NONE, True
            else:
                # eventName, userIdentity.arn, … keep only some of the events: not "all" of them.
                return _NONE, True
    return frozenset(kinds), False


def _uses_default_selectors(trail: ObservedTrailState) -> bool:
    return trail.event_selectors is None and trail.advanced_event_selectors is None


def _management_kinds(trail: ObservedTrailState) -> frozenset[str]:
    if _uses_default_selectors(trail):
        return _BOTH
    kinds: set[str] = set()
    for selector in trail.event_selectors or ():
        if selector.get("IncludeManagementEvents", True):
            kinds |= _rw_kinds(selector.get("ReadWriteType"))
    for selector in trail.advanced_event_selectors or ():
        kinds |= _advanced_kinds(selector, category="Management", resource_type=None)[0]
    return frozenset(kinds)


def _s3_object_kinds(trail: ObservedTrailState) -> tuple[frozenset[str], bool]:
    """Read/write S3 object-level events recorded for all buckets, and whether some selector records
    them for only some buckets or events."""
    kinds: set[str] = set()
    partial = False
    for selector in trail.event_selectors or ():
        selector_kinds = _rw_kinds(selector.get("ReadWriteType"))
        for resource in selector.get("DataResources") or ():
            if resource.get("Type") != _S3_OBJECT:
                continue
            values = [str(v) for v in resource.get("Values") or ()]
            if any(_ALL_BUCKETS.match(v) for v in values):
                kinds |= selector_kinds
            elif values:
                partial = True
    for selector in trail.advanced_event_selectors or ():
        selector_kinds, narrowed = _advanced_kinds(selector, category="Data", resource_type=_S3_OBJECT)
        kinds |= selector_kinds
        partial = partial or narrowed
    return frozenset(kinds), partial


def _describe_management(kinds: frozenset[str]) -> str:
    if not kinds:
        return "records no management events"
    if kinds == _BOTH:
        return "records read and write management events"
    return f"records {next(iter(kinds))} management events only"


def _check_all_regions(enabled: frozenset[str], distinct: Sequence[ObservedTrailState]) -> ControlResult:
    """CIS 3.1: a logging multi-region trail with read+write management events, or (what trailkeeper's
    region-scoped Trails build) logging trails with them in every enabled region, one of which records
    the global service events (IAM, STS, CloudFront) that CIS wants a multi-region trail for."""
    if not distinct:
        return CIS_3_1.result(False, "no trail in the account")

    def qualifies(trail: ObservedTrailState) -> bool:
        return trail.is_logging and _management_kinds(trail) == _BOTH

    multi = [t for t in distinct if t.is_multi_region]
    for trail in multi:
        if qualifies(trail):
            return CIS_3_1.result(
                True, f"multi-region trail {_label(trail)} is logging read and write management events"
            )
    reasons = [
        f"multi-region {_label(t)}: "
        + ("not logging" if not t.is_logging else _describe_management(_management_kinds(t)))
        for t in multi
    ]
    regional = [t for t in distinct if not t.is_multi_region and qualifies(t)]
    if not enabled:
        return CIS_3_1.result(
            False, "; ".join(["enabled regions unknown and no multi-region trail qualifies", *reasons])
        )
    uncovered = sorted(enabled - {t.home_region for t in regional})
    problems: list[str] = []
    if uncovered:
        problems.append(f"no logging trail with read and write management events in {_join(uncovered)}")
    elif not any(t.include_global_service_events for t in regional):
        problems.append("no covering trail records global service events")
    if problems:
        return CIS_3_1.result(False, "; ".join(problems + reasons))
    return CIS_3_1.result(
        True,
        f"region-scoped trails log read and write management events in all {len(enabled)} enabled regions",
    )


def _check_each_trail(
    control: _Control,
    scoped: Sequence[ObservedTrailState],
    none_seen: str,
    *,
    problem_of: Callable[[ObservedTrailState], str | None],
    passed_text: str,
) -> ControlResult:
    if not scoped:
        return control.result(False, none_seen)
    problems = [(t, p) for t in scoped if (p := problem_of(t)) is not None]
    if problems:
        return control.result(False, "; ".join(f"{_label(t)}: {p}" for t, p in problems))
    return control.result(True, f"{passed_text} {_join([_label(t) for t in scoped])}")


def _cloudwatch_problem(trail: ObservedTrailState, now: datetime) -> str | None:
    if not trail.cloud_watch_logs_log_group_arn:
        return "no CloudWatch Logs log group"
    delivered = trail.latest_cloud_watch_logs_delivery_time
    # A trail that has not delivered yet (just configured) has no time: the configuration is what counts.
    if delivered is not None and now - _aware(delivered) > CLOUDWATCH_DELIVERY_MAX_AGE:
        hours = int((now - _aware(delivered)).total_seconds() // 3600)
        return f"last CloudWatch Logs delivery {hours} h ago"
    return None


def _check_s3_objects(
    control: _Control, kind: str, scoped: Sequence[ObservedTrailState], required: set[str], none_seen: str
) -> ControlResult:
    """CIS 3.10 / 3.11: S3 object-level events of `kind` recorded for all buckets, by logging trails,
    in every region in question (a region-scoped trail records only its own region's data events)."""
    if not scoped:
        return control.result(False, none_seen)
    covering: list[ObservedTrailState] = []
    notes: list[str] = []
    for trail in scoped:
        kinds, partial = _s3_object_kinds(trail)
        if kind in kinds and trail.is_logging:
            covering.append(trail)
        elif kind in kinds:
            notes.append(f"{_label(trail)} is not logging")
        elif partial:
            notes.append(f"{_label(trail)} records them for some buckets or events only")
    events = f"S3 object-level {kind} events"
    if any(t.is_multi_region for t in covering):
        uncovered: list[str] = []
    else:
        uncovered = sorted(required - {t.home_region for t in covering})
    if not covering:
        return control.result(
            False, "; ".join([f"no logging trail records {events} for all buckets", *notes])
        )
    if uncovered:
        return control.result(False, "; ".join([f"{events} not recorded in {_join(uncovered)}", *notes]))
    return control.result(
        True, f"{events} for all buckets recorded by {_join([_label(t) for t in covering])}"
    )


# --------------------------------------------------------------------------------------------------
# Buckets
# --------------------------------------------------------------------------------------------------


def _check_buckets(
    control: _Control,
    names: Sequence[str],
    observed: Mapping[str, ObservedBucketState],
    none_seen: str,
    *,
    problems_of: Callable[[ObservedBucketState], list[str]],
    passed_text: str,
) -> ControlResult:
    if not names:
        return control.result(False, none_seen)
    found: list[str] = []
    for name in names:
        bucket = observed.get(name)
        # A bucket that could not be read (another account's, or access denied) cannot be shown to
        # comply; saying it does would be a guess.
        problems = ["not observed"] if bucket is None else problems_of(bucket)
        if problems:
            found.append(f"{name}: {', '.join(problems)}")
    if found:
        return control.result(False, "; ".join(found))
    return control.result(True, f"{passed_text} {_join(list(names))}")


def _public_access_problems(bucket: ObservedBucketState) -> list[str]:
    problems: list[str] = []
    if bucket.public_access_block is None:
        problems.append("no public access block")
    else:
        off = [f for f in _PUBLIC_ACCESS_BLOCK_FLAGS if not bucket.public_access_block.get(f, False)]
        if off:
            problems.append(f"{'/'.join(off)} off")
    problems += [f"policy statement {sid} allows anyone" for sid in public_statements(bucket.policy)]
    if bucket.acl_grants_public:
        problems.append("ACL grants public access")
    return problems


# Condition keys that, with fixed values, pin down who may use an Allow to a principal "*": the S3 user
# guide's "The meaning of public" list (aws:SourceArn, aws:SourceVpc(e), aws:SourceOwner,
# aws:SourceAccount, aws:userid, aws:SourceIp) plus the organization/account keys CIS 3.3's remediation
# names (aws:PrincipalOrgID). Keys like aws:SecureTransport or aws:UserAgent say how, not who.
_RESTRICTING_KEYS = frozenset(
    key.lower()
    for key in (
        "aws:SourceArn",
        "aws:SourceAccount",
        "aws:SourceOwner",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:SourceOrgID",
        "aws:PrincipalOrgID",
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:userid",
    )
)
# Only operators that require the key to match: Not… operators, …IfExists (true when the key is
# absent) and ForAllValues: (true for an absent key) let requests without the key through.
_MATCHING_OPERATORS = frozenset(
    {"stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike"}
)
# Our own threshold for aws:SourceIp: a range wider than this is most of the internet, not a network
# anyone owns.
_MIN_PREFIX = {4: 8, 6: 32}


def public_statements(policy: Mapping[str, Any] | None) -> list[str]:
    """Sids (or "#index") of the Allow statements of a bucket policy that grant anyone access.

    A statement is public when its principal is "*" (or {"AWS": "*"}, or NotPrincipal) and no
    condition restricts who can use it. Deny statements never grant anything.
    """
    if not policy:
        return []
    statements = policy.get("Statement") or []
    if isinstance(statements, Mapping):
        statements = [statements]
    public: list[str] = []
    for index, statement in enumerate(statements):
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        # An Allow with NotPrincipal grants everyone except the listed principals.
        if not (_is_public_principal(statement.get("Principal")) or "NotPrincipal" in statement):
            continue
        if _restricts_who(statement.get("Condition")):
            continue
        public.append(str(statement.get("Sid") or f"#{index}"))
    return public


def _as_list(value: object) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [] if value is None else [str(value)]


def _is_public_principal(principal: object) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any("*" in _as_list(value) for value in principal.values())
    return False


def _restricts_who(condition: object) -> bool:
    """Whether one block of the condition (all must hold) limits the statement to known callers."""
    if not isinstance(condition, Mapping):
        return False
    for operator, entries in condition.items():
        op = str(operator).lower().removeprefix("foranyvalue:")
        if not isinstance(entries, Mapping):
            continue
        for key, value in entries.items():
            values = _as_list(value)
            if not values:
                continue
            name = str(key).lower()
            if name == "aws:sourceip":
                if op == "ipaddress" and all(_narrow_cidr(v) for v in values):
                    return True
            elif name in _RESTRICTING_KEYS and op in _MATCHING_OPERATORS and all(_fixed(v) for v in values):
                return True
    return False


def _fixed(value: str) -> bool:
    # "*" under StringLike matches anything; a value with something besides wildcards names someone.
    return value.strip("*?") != ""


def _narrow_cidr(value: str) -> bool:
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return network.prefixlen >= _MIN_PREFIX[network.version]


# --------------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------------


def _aware(moment: datetime) -> datetime:
    # boto3 returns aware datetimes; a naive one (from a test or a cache) is taken as UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _join(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown if len(items) <= _MAX_LISTED else f"{shown} (+{len(items) - _MAX_LISTED} more)"


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
