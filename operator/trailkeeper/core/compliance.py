"""CIS AWS Foundations Benchmark controls over the CloudTrail logs, evaluated over what AWS holds.

The spec says what a Trail should be; compliance is about what the account actually has, including
trails, buckets and alarms trailkeeper does not own. The aws/ layer observes AWS into the `Observed*`
dataclasses of core/observed_account.py and `evaluate` turns them into one `ControlResult` per control,
which becomes `status.compliance`, the `Compliant` condition and the rows of `trailkeeper audit`.

Each CIS control follows its benchmark's audit procedure and carries its number in every version of the
benchmark that has it (`cis`, from Prowler's maps prowler/compliance/aws/cis_<version>_aws.json); its id
is its number in v1.5.0. Where trailkeeper judges more strictly than the benchmark text (Block Public
Access on the log bucket, every enabled region covered), that judgement is a `TK-` control of its own,
never a CIS id. docs/compliance.md gives each control's rule and its source.

A control passes (True), fails (False) or cannot be decided yet (None, Unknown): CIS-3.4 before a trail's
first delivery to CloudWatch Logs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from trailkeeper.api.trail import ComplianceResult
from trailkeeper.core.monitoring import METRIC_FILTER_CONTROLS, MetricFilterControl
from trailkeeper.core.observed_account import (
    ObservedAccountState,
    ObservedBucketState,
    ObservedMonitoring,
    ObservedTrailState,
    log_group_of,
)


@dataclass(frozen=True)
class ControlResult:
    """The outcome of one control: `passed` True, False or None (Unknown), one line of what was seen,
    the control's number per CIS version (`cis`, empty for TK- controls) and what fixes it."""

    control: str
    title: str
    passed: bool | None
    detail: str
    cis: Mapping[str, str] = field(default_factory=dict)
    remediation: str = ""

    @property
    def state(self) -> str:
        return {True: "Pass", False: "Fail", None: "Unknown"}[self.passed]


# --------------------------------------------------------------------------------------------------
# The controls
# --------------------------------------------------------------------------------------------------

_VERSIONS = ("1.5", "2.0", "3.0", "4.0", "5.0", "6.0", "7.0")


def _numbers(*numbers: str | None) -> dict[str, str]:
    """A control's number in v1.5 … v7.0, in that order (None: not in that version)."""
    return {v: n for v, n in zip(_VERSIONS, numbers, strict=True) if n is not None}


def versions_text(cis: Mapping[str, str]) -> str:
    """ "CIS 1.5-5.0 3.1, 6.0-7.0 4.1": versions with the same number grouped (they are consecutive)."""
    if not cis:
        return "trailkeeper"
    groups: list[tuple[list[str], str]] = []
    for version in _VERSIONS:
        number = cis.get(version)
        if number is None:
            continue
        if groups and groups[-1][1] == number:
            groups[-1][0].append(version)
        else:
            groups.append(([version], number))
    parts = [f"{vs[0]}-{vs[-1]} {n}" if len(vs) > 1 else f"{vs[0]} {n}" for vs, n in groups]
    return "CIS " + ", ".join(parts)


@dataclass(frozen=True)
class Control:
    id: str
    name: str
    cis: Mapping[str, str]
    remediation: str

    @property
    def title(self) -> str:
        return f"{self.name} ({versions_text(self.cis)})"

    def result(self, passed: bool | None, detail: str) -> ControlResult:
        return ControlResult(self.id, self.title, passed, _one_line(detail), dict(self.cis), self.remediation)


CIS_3_1 = Control(
    "CIS-3.1",
    "multi-region trail logging all management events",
    _numbers("3.1", "3.1", "3.1", "3.1", "3.1", "4.1", "4.1"),
    "Have a trail with IsMultiRegionTrail true, logging, with an event selector for read and write "
    "management events (a Trail with multiRegion: true).",
)
TK_REGIONS = Control(
    "TK-REGIONS",
    "every enabled region covered by logging trails",
    {},
    "Cover each enabled region with a logging trail recording read and write management events, one "
    "of them recording global service events (or use a multi-region trail).",
)
CIS_3_2 = Control(
    "CIS-3.2",
    "log file validation",
    _numbers("3.2", "3.2", "3.2", "3.2", "3.2", "4.2", "4.2"),
    "Set logFileValidation: true (UpdateTrail --enable-log-file-validation).",
)
CIS_3_3 = Control(
    "CIS-3.3",
    "log bucket not publicly accessible",
    _numbers("3.3", "3.3", None, None, None, None, None),
    "Remove ACL grants to AllUsers and AuthenticatedUsers and bucket policy statements allowing "
    'Principal "*", or turn on Block Public Access (bucket or account).',
)
TK_BUCKET_BPA = Control(
    "TK-BUCKET-BPA",
    "Block Public Access in effect on the log bucket",
    {},
    "Turn on all four Block Public Access settings on the bucket (PutPublicAccessBlock) or the account "
    "(s3control PutPublicAccessBlock).",
)
CIS_3_4 = Control(
    "CIS-3.4",
    "trails delivering to CloudWatch Logs",
    _numbers("3.4", "3.4", None, None, None, None, None),
    "Set spec.monitoring (or cloudWatchLogs) and keep the trail logging; delivery must be at most a day old.",
)
CIS_3_6 = Control(
    "CIS-3.6",
    "log bucket access logging",
    _numbers("3.6", "3.6", "3.4", "3.4", "3.4", "4.4", "4.4"),
    "Turn on server access logging on the log bucket (PutBucketLogging), to another bucket.",
)
CIS_3_7 = Control(
    "CIS-3.7",
    "log encryption with KMS",
    _numbers("3.7", "3.7", "3.5", "3.5", "3.5", "4.5", "4.5"),
    "Set destination.kmsKeyId to a KMS key CloudTrail may use.",
)
CIS_3_10 = Control(
    "CIS-3.10",
    "S3 object-level write events",
    _numbers("3.10", "3.10", "3.8", "3.8", "3.8", "4.8", "4.8"),
    "Add an event selector recording write (or all) AWS::S3::Object data events for all buckets.",
)
CIS_3_11 = Control(
    "CIS-3.11",
    "S3 object-level read events",
    _numbers("3.11", "3.11", "3.9", "3.9", "3.9", "4.9", "4.9"),
    "Add an event selector recording read (or all) AWS::S3::Object data events for all buckets.",
)
CIS_MFA_DELETE = Control(
    "CIS-2.1.3",
    "MFA Delete on the log bucket",
    _numbers("2.1.3", "2.1.2", "2.1.2", "2.1.2", "2.1.2", "3.1.2", "3.1.2"),
    "Only the account's root user can enable MFA Delete (PutBucketVersioning with MFA, from the CLI or "
    "API with the root user's MFA device); trailkeeper cannot, and does not try.",
)
TK_BUCKET_VERSIONING = Control(
    "TK-BUCKET-VERSIONING",
    "versioning on the log bucket",
    {},
    "Enable versioning on the log bucket (PutBucketVersioning Status=Enabled); MFA Delete needs it.",
)


def _monitoring_control(spec: MetricFilterControl) -> Control:
    return Control(
        spec.id,
        spec.name,
        spec.cis,
        "Set spec.monitoring on a multi-region Trail: trailkeeper creates the metric filter "
        f"(trailkeeper-<hash>-{spec.slug}) and its alarm; the alarm's SNS topic needs a confirmed "
        "subscription.",
    )


MONITORING_CONTROLS: tuple[Control, ...] = tuple(_monitoring_control(c) for c in METRIC_FILTER_CONTROLS)
_METRIC_FILTER_OF = dict(zip((c.id for c in MONITORING_CONTROLS), METRIC_FILTER_CONTROLS, strict=True))

# Benchmark order, each TK- control after the CIS control it is stricter than.
LOGGING_CONTROLS: tuple[Control, ...] = (
    CIS_MFA_DELETE,
    TK_BUCKET_VERSIONING,
    CIS_3_1,
    TK_REGIONS,
    CIS_3_2,
    CIS_3_3,
    TK_BUCKET_BPA,
    CIS_3_4,
    CIS_3_6,
    CIS_3_7,
    CIS_3_10,
    CIS_3_11,
)
CONTROLS: tuple[Control, ...] = LOGGING_CONTROLS + MONITORING_CONTROLS
CONTROL_IDS: tuple[str, ...] = tuple(c.id for c in CONTROLS)
# Controls about the whole account, not about particular trails.
ACCOUNT_CONTROL_IDS: frozenset[str] = frozenset(
    {CIS_3_1.id, TK_REGIONS.id} | {c.id for c in MONITORING_CONTROLS}
)
_BY_ID = {c.id: c for c in CONTROLS}

# The CIS audit of 3.4 asks for a LatestCloudWatchLogsDeliveryTime at most a day old.
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
PUBLIC_ACCESS_BLOCK_FLAGS = (
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

    `trail_arns` narrows the trail-specific controls (validation, buckets, CloudWatch, KMS, S3 object
    events) to the trails of one Trail resource; the account controls (CIS-3.1, TK-REGIONS and the
    Monitoring section) always look at every trail. The Monitoring section is evaluated only when it
    was observed (`account.monitoring`). `now` is the time delivery ages are measured against.
    """
    now = _aware(now or datetime.now(UTC))
    distinct = distinct_trails(account.trails)
    scoped, none_seen, required = _scope(account, distinct, trail_arns)
    buckets = sorted({t.s3_bucket for t in scoped if t.s3_bucket})
    account_block = account.account_public_access_block

    def on_buckets(
        control: Control, problems_of: Callable[[ObservedBucketState], list[str]], passed_text: str
    ) -> ControlResult:
        return _check_buckets(
            control, buckets, account.buckets, none_seen, problems_of=problems_of, passed_text=passed_text
        )

    def on_trails(
        control: Control, problem_of: Callable[[ObservedTrailState], str | None], passed_text: str
    ) -> ControlResult:
        return _check_each_trail(control, scoped, none_seen, problem_of=problem_of, passed_text=passed_text)

    results = [
        on_buckets(CIS_MFA_DELETE, _mfa_delete_problems, "MFA Delete on for"),
        on_buckets(TK_BUCKET_VERSIONING, _versioning_problems, "versioning on for"),
        _check_multi_region(distinct),
        _check_all_regions(account.enabled_regions, distinct),
        on_trails(
            CIS_3_2, lambda t: None if t.log_file_validation else "validation off", "validation on for"
        ),
        on_buckets(
            CIS_3_3,
            lambda b: _public_problems(b, account_block),
            "no public ACL grant or public policy statement in effect on",
        ),
        on_buckets(
            TK_BUCKET_BPA,
            lambda b: _block_problems(b, account_block),
            "all four Block Public Access settings in effect on",
        ),
        _check_cloudwatch(scoped, none_seen, now),
        on_buckets(
            CIS_3_6, lambda b: [] if b.logging_enabled else ["access logging off"], "access logging on for"
        ),
        on_trails(CIS_3_7, lambda t: None if t.kms_key_id else "no KMS key (SSE-S3)", "SSE-KMS on"),
        _check_s3_objects(CIS_3_10, _WRITE, scoped, required, none_seen),
        _check_s3_objects(CIS_3_11, _READ, scoped, required, none_seen),
    ]
    if account.monitoring is not None:
        results += [_check_metric_filter(c, distinct, account.monitoring) for c in MONITORING_CONTROLS]
    return results


def _scope(
    account: ObservedAccountState, distinct: list[ObservedTrailState], trail_arns: set[str] | None
) -> tuple[list[ObservedTrailState], str, set[str]]:
    """The trails the trail-specific controls judge, what to say when there are none, and the regions
    their S3 object events must cover."""
    if trail_arns is None:
        required = set(account.enabled_regions) or _regions_of(distinct, account.enabled_regions)
        return distinct, "no trail in the account", required
    scoped = [t for t in distinct if t.arn in trail_arns]
    return scoped, "none of this resource's trails was observed", _regions_of(scoped, account.enabled_regions)


def _versioning_problems(bucket: ObservedBucketState) -> list[str]:
    return [] if bucket.versioning == "Enabled" else [f"versioning {bucket.versioning or 'never enabled'}"]


def compliance_condition(results: Sequence[ControlResult]) -> tuple[str, str, str]:
    """The `Compliant` condition's (status, reason, message) for a set of results."""
    if not results:
        return ("Unknown", "NotEvaluated", "no controls evaluated")
    failed = [r for r in results if r.passed is False]
    unknown = [r for r in results if r.passed is None]
    if failed:
        return ("False", "ControlsFailed", f"failed: {_names(failed)}")
    if unknown:
        return ("Unknown", "ControlsUnknown", f"not decidable yet: {_names(unknown)}")
    return ("True", "AllControlsPassed", f"{len(results)} of {len(results)} controls passed")


def _names(results: Sequence[ControlResult]) -> str:
    return ", ".join(
        f"{r.control} {_BY_ID[r.control].name if r.control in _BY_ID else r.title}" for r in results
    )


def flipped(
    previous: Sequence[Mapping[str, Any]] | None, current: Sequence[ControlResult]
) -> list[tuple[str, bool | None]]:
    """Controls whose `passed` changed since `previous` (status.compliance as stored), with the new value.

    A control with no previous result has not flipped: the first evaluation is not a change to report.
    """
    before = {
        str(entry["control"]): entry["passed"]
        for entry in previous or ()
        if "control" in entry
        and "passed" in entry
        and (entry["passed"] is None or isinstance(entry["passed"], bool))
    }
    return [(r.control, r.passed) for r in current if r.control in before and before[r.control] != r.passed]


def to_status(results: Sequence[ControlResult]) -> list[dict[str, Any]]:
    """The results as `status.compliance` entries (camelCase, the `ComplianceResult` shape)."""
    return [
        ComplianceResult(
            control=r.control,
            title=r.title,
            passed=r.passed,
            detail=r.detail,
            cis=dict(r.cis),
            remediation=r.remediation or None,
        ).model_dump(by_alias=True)
        for r in results
    ]


# --------------------------------------------------------------------------------------------------
# Trails
# --------------------------------------------------------------------------------------------------


def distinct_trails(trails: Iterable[ObservedTrailState]) -> list[ObservedTrailState]:
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
    for name, selectors in by_field.items():
        for field_selector in selectors:
            if name in ("eventCategory", "resources.type"):
                continue
            if name == "readOnly":
                kinds &= _readonly_kinds(field_selector)
            elif name == "eventSource" and resource_type is None and _only_excludes(field_selector):
                # The advanced form of ExcludeManagementEventSources (KMS, RDS Data API): CIS 3.1 asks for
                # ReadWriteType All and IncludeManagementEvents, and tolerates these exclusions.
                continue
            elif name == "resources.ARN" and resource_type is not None:
                if not _arn_filter_keeps_all_buckets(field_selector):
                    return _NONE, True
            else:
                # eventName, userIdentity.arn, … keep only some of the events: not "all" of them.
                return _NONE, True
    return frozenset(kinds), False


def _uses_default_selectors(trail: ObservedTrailState) -> bool:
    return trail.event_selectors is None and trail.advanced_event_selectors is None


def _management_kinds(trail: ObservedTrailState) -> frozenset[str]:
    """Read/write management events recorded by the trail's selectors taken together."""
    if _uses_default_selectors(trail):
        return _BOTH
    kinds: set[str] = set()
    for selector in trail.event_selectors or ():
        if selector.get("IncludeManagementEvents", True):
            kinds |= _rw_kinds(selector.get("ReadWriteType"))
    for selector in trail.advanced_event_selectors or ():
        kinds |= _advanced_kinds(selector, category="Management", resource_type=None)[0]
    return frozenset(kinds)


def _one_selector_records_all_management(trail: ObservedTrailState) -> bool:
    """The CIS audit's wording: "at least one event selector for a trail with IncludeManagementEvents
    set to true and ReadWriteType set to All" (an advanced selector for the Management category that
    does not filter on readOnly is the same)."""
    if _uses_default_selectors(trail):
        return True
    basic = any(
        s.get("IncludeManagementEvents", True) and _rw_kinds(s.get("ReadWriteType")) == _BOTH
        for s in trail.event_selectors or ()
    )
    return basic or any(
        _advanced_kinds(s, category="Management", resource_type=None)[0] == _BOTH
        for s in trail.advanced_event_selectors or ()
    )


def qualifies_for_monitoring(trail: ObservedTrailState) -> bool:
    """What the CIS 3.1 and Monitoring audits ask of "the" trail: multi-region, logging, all management
    events."""
    return trail.is_multi_region and trail.is_logging and _one_selector_records_all_management(trail)


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


def _check_multi_region(distinct: Sequence[ObservedTrailState]) -> ControlResult:
    """CIS 3.1's audit: a trail with IsMultiRegionTrail true, IsLogging true and an event selector with
    IncludeManagementEvents true and ReadWriteType All."""
    if not distinct:
        return CIS_3_1.result(False, "no trail in the account")
    multi = [t for t in distinct if t.is_multi_region]
    for trail in multi:
        if qualifies_for_monitoring(trail):
            return CIS_3_1.result(
                True, f"multi-region trail {_label(trail)} is logging read and write management events"
            )
    if not multi:
        return CIS_3_1.result(False, "no multi-region trail (region-scoped trails: see TK-REGIONS)")
    reasons = [
        f"multi-region {_label(t)}: "
        + ("not logging" if not t.is_logging else "no one selector records all management events")
        for t in multi
    ]
    return CIS_3_1.result(False, "; ".join(reasons))


def _check_all_regions(enabled: frozenset[str], distinct: Sequence[ObservedTrailState]) -> ControlResult:
    """TK-REGIONS: a logging multi-region trail with read+write management events, or logging trails
    with them in every enabled region, one of which records the global service events (IAM, STS,
    CloudFront) -- what trailkeeper's region-scoped Trails build."""
    if not distinct:
        return TK_REGIONS.result(False, "no trail in the account")

    def qualifies(trail: ObservedTrailState) -> bool:
        return trail.is_logging and _management_kinds(trail) == _BOTH

    multi = [t for t in distinct if t.is_multi_region]
    for trail in multi:
        if qualifies(trail):
            return TK_REGIONS.result(
                True, f"multi-region trail {_label(trail)} is logging read and write management events"
            )
    reasons = [
        f"multi-region {_label(t)}: "
        + ("not logging" if not t.is_logging else _describe_management(_management_kinds(t)))
        for t in multi
    ]
    regional = [t for t in distinct if not t.is_multi_region and qualifies(t)]
    if not enabled:
        return TK_REGIONS.result(
            False, "; ".join(["enabled regions unknown and no multi-region trail qualifies", *reasons])
        )
    uncovered = sorted(enabled - {t.home_region for t in regional})
    problems: list[str] = []
    if uncovered:
        problems.append(f"no logging trail with read and write management events in {_join(uncovered)}")
    elif not any(t.include_global_service_events for t in regional):
        problems.append("no covering trail records global service events")
    if problems:
        return TK_REGIONS.result(False, "; ".join(problems + reasons))
    return TK_REGIONS.result(
        True,
        f"region-scoped trails log read and write management events in all {len(enabled)} enabled regions",
    )


def _check_each_trail(
    control: Control,
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


def _check_cloudwatch(scoped: Sequence[ObservedTrailState], none_seen: str, now: datetime) -> ControlResult:
    """CIS 3.4's audit: each trail has a CloudWatchLogsLogGroupArn and a LatestCloudWatchLogsDeliveryTime
    within the last day. A stopped trail delivers nothing, whatever its last time; a logging trail that
    has not delivered yet (just configured) cannot be judged: Unknown."""
    if not scoped:
        return CIS_3_4.result(False, none_seen)
    failed: list[str] = []
    waiting: list[str] = []
    for trail in scoped:
        delivered = trail.latest_cloud_watch_logs_delivery_time
        if not trail.cloud_watch_logs_log_group_arn:
            failed.append(f"{_label(trail)}: no CloudWatch Logs log group")
        elif not trail.is_logging:
            failed.append(f"{_label(trail)}: not logging (stopped), so nothing is delivered")
        elif delivered is None:
            waiting.append(f"{_label(trail)}: no delivery to CloudWatch Logs yet")
        elif now - _aware(delivered) > CLOUDWATCH_DELIVERY_MAX_AGE:
            hours = int((now - _aware(delivered)).total_seconds() // 3600)
            failed.append(f"{_label(trail)}: last CloudWatch Logs delivery {hours} h ago")
    if failed:
        return CIS_3_4.result(False, "; ".join(failed + waiting))
    if waiting:
        return CIS_3_4.result(None, "; ".join(waiting))
    return CIS_3_4.result(
        True, f"delivered to CloudWatch Logs within 24 h: {_join([_label(t) for t in scoped])}"
    )


def _check_s3_objects(
    control: Control, kind: str, scoped: Sequence[ObservedTrailState], required: set[str], none_seen: str
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
    control: Control,
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


def effective_public_access_block(
    bucket: Mapping[str, bool] | None, account: Mapping[str, bool] | None
) -> dict[str, bool]:
    """The Block Public Access settings S3 applies to a bucket: each flag on when it is on at the bucket
    or at the account ("Amazon S3 applies the most restrictive combination of the bucket-level and
    account-level settings", S3 user guide, Blocking public access to your Amazon S3 storage)."""
    return {
        flag: bool((bucket or {}).get(flag)) or bool((account or {}).get(flag))
        for flag in PUBLIC_ACCESS_BLOCK_FLAGS
    }


def _public_problems(bucket: ObservedBucketState, account: Mapping[str, bool] | None) -> list[str]:
    """CIS 3.3's audit: no ACL grant to AllUsers or AuthenticatedUsers, no policy statement with Effect
    Allow and Principal "*" (or {"AWS": "*"}). A grant S3 ignores (IgnorePublicAcls) or a policy S3
    restricts to the owner's account and AWS services (RestrictPublicBuckets), at bucket or account
    level, makes nothing public."""
    block = effective_public_access_block(bucket.public_access_block, account)
    problems: list[str] = []
    if bucket.acl_grants_public and not block["IgnorePublicAcls"]:
        problems.append("ACL grants AllUsers or AuthenticatedUsers")
    if not block["RestrictPublicBuckets"]:
        problems += [
            f'policy statement {sid} allows Principal "*"' for sid in public_statements(bucket.policy)
        ]
    return problems


def _block_problems(bucket: ObservedBucketState, account: Mapping[str, bool] | None) -> list[str]:
    block = effective_public_access_block(bucket.public_access_block, account)
    off = [flag for flag, on in block.items() if not on]
    if not off:
        return []
    where = "no Block Public Access on the bucket or the account" if len(off) == 4 else f"{'/'.join(off)} off"
    return [where]


def _mfa_delete_problems(bucket: ObservedBucketState) -> list[str]:
    if bucket.mfa_delete == "Enabled":
        return []
    return [f"MFA Delete off (versioning {bucket.versioning or 'never enabled'})"]


def public_statements(policy: Mapping[str, Any] | None) -> list[str]:
    """Sids (or "#index") of a bucket policy's statements with Effect Allow and Principal "*" or
    {"AWS": "*"}: the statements CIS 3.3's audit names, conditions or not."""
    if not policy:
        return []
    statements = policy.get("Statement") or []
    if isinstance(statements, Mapping):
        statements = [statements]
    public: list[str] = []
    for index, statement in enumerate(statements):
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        if _is_public_principal(statement.get("Principal")):
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
        return "*" in _as_list(principal.get("AWS"))
    return False


# --------------------------------------------------------------------------------------------------
# The Monitoring section
# --------------------------------------------------------------------------------------------------


def _check_metric_filter(
    control: Control, distinct: Sequence[ObservedTrailState], monitoring: ObservedMonitoring
) -> ControlResult:
    """A Monitoring recommendation's audit: the log group of an active multi-region trail with all
    management events has a metric filter with the pattern, an alarm on the filter's metric, and the
    alarm notifies an SNS topic with at least one confirmed subscription."""
    spec = _METRIC_FILTER_OF[control.id]
    candidates = [t for t in distinct if qualifies_for_monitoring(t)]
    if not candidates:
        return control.result(False, "no logging multi-region trail recording all management events")
    problems: list[str] = []
    for trail in candidates:
        where = log_group_of(trail.cloud_watch_logs_log_group_arn or "")
        if where is None:
            problems.append(f"{_label(trail)}: no CloudWatch Logs log group")
            continue
        region, group = where
        key = f"{region}/{group}"
        if key not in monitoring.metric_filters:
            problems.append(f"{key}: metric filters not observed")
            continue
        chain, problem = _filter_chain(spec, key, monitoring.metric_filters[key], monitoring, region)
        if chain is not None:
            return control.result(True, chain)
        problems.append(problem)
    return control.result(False, "; ".join(problems))


def _filter_chain(
    spec: MetricFilterControl,
    key: str,
    filters: Sequence[Mapping[str, Any]],
    monitoring: ObservedMonitoring,
    region: str,
) -> tuple[str | None, str]:
    """The passing chain (filter, alarm, topic) as text, or None and what is missing."""
    matching = [(f, v) for f in filters if (v := spec.matching_versions(str(f.get("filterPattern", ""))))]
    if not matching:
        return None, f"{key}: no metric filter with the CIS pattern"
    missing = f"{key}: no alarm on the metric of filter {matching[0][0].get('filterName')}"
    for metric_filter, versions in matching:
        for transformation in metric_filter.get("metricTransformations") or ():
            metric = (transformation.get("metricName"), transformation.get("metricNamespace"))
            alarms = [
                a
                for a in monitoring.alarms.get(region, ())
                if (a.get("MetricName"), a.get("Namespace")) == metric
            ]
            for alarm in alarms:
                topics = [str(t) for t in alarm.get("AlarmActions") or () if ":sns:" in str(t)]
                subscribed = [t for t in topics if monitoring.subscribers.get(t, 0) > 0]
                if subscribed:
                    since = versions[0] if len(versions) == 1 else f"{versions[0]}-{versions[-1]}"
                    return (
                        f"{key}: filter {metric_filter.get('filterName')} (pattern of CIS {since}) -> "
                        f"alarm {alarm.get('AlarmName')} -> topic {subscribed[0]} "
                        f"({monitoring.subscribers[subscribed[0]]} confirmed subscriptions)"
                    ), ""
                missing = (
                    f"{key}: alarm {alarm.get('AlarmName')} notifies no SNS topic with a confirmed "
                    "subscription"
                )
    return None, missing


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
