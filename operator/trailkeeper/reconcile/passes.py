"""One handler invocation's work for a Trail or LogRetention, from raw body to status and Events.

The kopf handlers call these and only post what they return: everything here is testable without kopf.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Literal, ParamSpec

from trailkeeper.api.logretention import LogRetentionSpec, LogRetentionStatus
from trailkeeper.api.manifests import parse_spec
from trailkeeper.api.tenancy import TenancyPolicy
from trailkeeper.api.trail import TrailSpec, TrailStatus, trail_name_problem
from trailkeeper.aws.account_state import enabled_regions
from trailkeeper.aws.errors import classify
from trailkeeper.aws.session import AwsSessions
from trailkeeper.core.drift import FieldDiff
from trailkeeper.core.ownership import OwnerLiveness, unknown_liveness
from trailkeeper.core.shared_subscriptions import without_shared
from trailkeeper.core.tenancy import trail_refusal
from trailkeeper.reconcile.compliance import ComplianceReport, ComplianceSettings, PassEvaluation
from trailkeeper.reconcile.errors import AWS_ERRORS, RegionFailure
from trailkeeper.reconcile.logretention import (
    RetentionOutcome,
    RetentionRequest,
    RetentionTarget,
    delete_log_retention,
    reconcile_log_retention,
    targets_of_spec,
    targets_of_trail,
)
from trailkeeper.reconcile.shared import Change, Shared
from trailkeeper.reconcile.status import (
    ConditionState,
    PassSummary,
    conditions_for,
    drift_entries,
    failure_conditions,
    invalid_spec_conditions,
    merge_conditions,
    now_iso,
    with_compliant_placeholder,
    written,
)
from trailkeeper.reconcile.tenancy_gate import retention_gate
from trailkeeper.reconcile.trail import (
    TrailOutcome,
    TrailRequest,
    account_ref,
    delete_trail,
    reconcile_trail,
    removed_monitoring,
    removed_subscriptions,
    removed_topic,
)

Trigger = Literal["create", "update", "resume", "timer"]
_BACKOFF_SECONDS = 5.0
# Waiting for another object rather than for AWS (a LogRetention applied with its Trail finds neither the
# Trail nor its bucket yet): the first retry comes soon, and backs off from there like any other.
_WAIT_SECONDS = 0.25
_WAITING_FOR = frozenset({"TrailNotFound", "NoSuchBucket"})


# How many items an Event names before it says "and N more".
_LISTED = 8


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str
    # About a state that lasts across passes (a failure being retried, drift left alone): posted when it
    # starts or its message changes, not again at every retry.
    lasting: bool = False


@dataclass
class PassReport:
    """What a handler must do after a pass: write `status`, post `events`, maybe retry."""

    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    retry_after: float | None = None  # a retryable failure: run again after this many seconds
    invalid: str | None = None  # the spec is invalid: do not retry until it changes
    changes: int = 0
    drift: int = 0
    compliance_failed: int | None = None


@dataclass(frozen=True)
class Tenancy:
    """What the cluster says of a Trail beyond its spec: the admins' policy (None: none given; a string:
    why it could not be read, which refuses every Trail) and whether the Trails owner tags name exist."""

    policy: TenancyPolicy | str | None = None
    owner_alive: OwnerLiveness = unknown_liveness
    # The labels of the object's namespace, which rules with a namespaceSelector match (None: none).
    labels: Mapping[str, str] | None = None
    # The specs of the other live Trails naming a topic (core/shared_subscriptions.py).
    topic_users: Callable[[str], list[Any]] = lambda _topic: []


NO_TENANCY = Tenancy()


@dataclass(frozen=True)
class ObjectRef:
    namespace: str
    name: str
    uid: str
    generation: int | None


P = ParamSpec("P")


def _status_as(
    model: type[TrailStatus | LogRetentionStatus],
) -> Callable[[Callable[P, PassReport]], Callable[P, PassReport]]:
    """A pass whose report's status is written as `model` holds it (reconcile/status.py `written`)."""

    def decorate(run: Callable[P, PassReport]) -> Callable[P, PassReport]:
        @functools.wraps(run)
        def checked(*args: P.args, **kwargs: P.kwargs) -> PassReport:
            report = run(*args, **kwargs)
            report.status = written(model, report.status)
            return report

        return checked

    return decorate


def _invalid(kind: str, problems: list[Any], ref: ObjectRef, status: Mapping[str, Any]) -> PassReport:
    message = "; ".join(str(p) for p in problems)
    now = now_iso()
    conditions = invalid_spec_conditions(message)
    if kind == "Trail":
        conditions = with_compliant_placeholder(conditions, status.get("conditions"))
    return PassReport(
        status={
            "observedGeneration": ref.generation,
            "phase": "Error",
            "conditions": merge_conditions(status.get("conditions"), conditions, now, ref.generation),
            "lastSyncTime": now,
        },
        events=[
            Event(
                "Warning",
                "InvalidSpec",
                f"{kind} spec is invalid, nothing sent to AWS: {message}",
                lasting=True,
            )
        ],
        invalid=message,
    )


def plain(value: Any) -> Any:
    """A spec as stored: a mapping becomes a dict; anything else (a list, a string, null) is kept for the
    models to refuse by name, since an API server without the CRD's schema stores whatever it is sent."""
    return dict(value) if isinstance(value, Mapping) else value


def parse_trail(spec_body: Any, name: str) -> TrailSpec | list[Any]:
    parsed = parse_spec("Trail", plain(spec_body))
    if isinstance(parsed, list):
        return parsed
    assert isinstance(parsed, TrailSpec)
    if parsed.trail_name is None and (reason := trail_name_problem(name)):
        return [f"metadata.name: is used as the trail name and {reason}"]
    return parsed


def _old_trail(old_spec_body: Mapping[str, Any] | None, name: str) -> TrailSpec | None:
    if not old_spec_body:
        return None
    parsed = parse_trail(old_spec_body, name)
    return parsed if isinstance(parsed, TrailSpec) else None


def _is_drift_check(status: Mapping[str, Any], generation: int | None) -> bool:
    """The spec is unchanged since the last pass that reached AWS: any difference now is drift."""
    return status.get("observedGeneration") == generation and status.get("phase") in ("Ready", "Drifted")


def listing(items: list[str], limit: int = _LISTED) -> str:
    """Items joined with "; ", the first `limit` of them and "(and N more)" for the rest."""
    shown = "; ".join(items[:limit])
    return f"{shown} (and {len(items) - limit} more)" if len(items) > limit else shown


def _diff_text(diff: FieldDiff) -> str:
    return f"{diff.resource} {diff.field} (spec {diff.desired}, AWS {diff.actual})"


def _change_events(
    changes: list[Change], diffs: list[FieldDiff], drift_check: bool, acted: bool, trigger: Trigger
) -> list[Event]:
    """Events naming what was created, started, put back or found different; cut with "and N more"."""
    if drift_check and diffs:
        fields = listing([_diff_text(d) for d in diffs])
        if acted:
            done = listing([str(c) for c in changes])
            return [
                Event(
                    "Warning",
                    "DriftCorrected",
                    f"{len(diffs)} difference(s) put back: {done}. Found: {fields}",
                )
            ]
        return [
            Event(
                "Warning",
                "DriftDetected",
                f"{len(diffs)} difference(s) from the spec, not corrected (driftPolicy Report): {fields}",
                lasting=True,
            )
        ]
    if changes:
        reason = "Created" if trigger == "create" else "Updated"
        return [Event("Normal", reason, listing([str(c) for c in changes]))]
    return []


def _failure_events(failures: list[tuple[str, RegionFailure]]) -> list[Event]:
    """One Warning per kind of failure, its reason the failure's own (TrailNotFound, AccessDenied,
    Conflict...), naming the regions or buckets it stopped."""
    by_code: dict[tuple[str, str], list[str]] = {}
    for where, failure in failures:
        by_code.setdefault((failure.code, failure.message), []).append(where)
    return [
        Event("Warning", code, f"{listing(places, 5)}: {message}", lasting=True)
        for (code, message), places in by_code.items()
    ]


def _retry_after(failures: list[RegionFailure]) -> float | None:
    retryable = [f for f in failures if f.retryable]
    if not retryable:
        return None
    return _WAIT_SECONDS if all(f.code in _WAITING_FOR for f in retryable) else _BACKOFF_SECONDS


@_status_as(TrailStatus)
def trail_pass(
    ref: ObjectRef,
    spec_body: Any,
    status: Mapping[str, Any],
    sessions: AwsSessions,
    shared: Shared,
    *,
    trigger: Trigger,
    old_spec_body: Mapping[str, Any] | None = None,
    compliance: ComplianceSettings | None = None,
    tenancy: Tenancy = NO_TENANCY,
) -> PassReport:
    """One pass of a Trail (create, update, resume or drift check); its status as TrailStatus holds it."""
    spec = parse_trail(spec_body, ref.name)
    if isinstance(spec, list):
        return _invalid("Trail", spec, ref, status)
    if refusal := _refusal(tenancy, ref, spec):
        return _whole_failure(ref, status, RegionFailure("Forbidden", refusal), now_iso(), trail=True)
    recorded_name = status.get("trailName")
    if recorded_name and recorded_name != spec.effective_trail_name(ref.name):
        return _invalid(
            "Trail", [f"spec.trailName: is immutable (the trails are named {recorded_name!r})"], ref, status
        )
    old = _old_trail(old_spec_body, ref.name)
    drift_check = _is_drift_check(status, ref.generation)
    act = not (drift_check and spec.drift_policy == "Report")
    request = TrailRequest(
        namespace=ref.namespace,
        name=ref.name,
        spec=spec,
        act=act,
        deep=trigger != "timer",
        removed_regions=tuple(r for r in (old.regions if old else []) if r not in spec.regions),
        removed_subscriptions=removed_subscriptions(old, spec),
        removed_tags=tuple(key for key in (old.tags if old else {}) if key not in spec.tags),
        removed_topic=removed_topic(old, spec),
        removed_monitoring=removed_monitoring(old, spec),
        owner_alive=tenancy.owner_alive,
    )
    now = now_iso()
    evaluation = PassEvaluation(spec, status, sessions, compliance, timer=trigger == "timer")
    try:
        # A drift check reads afresh and leaves its answers (aws/read_memo.py) for the compliance
        # observation, which may take them up to one compliance interval old, as it keeps its own that long.
        with sessions.memo.scope(0.0) if trigger == "timer" else nullcontext():
            outcome = reconcile_trail(request, sessions, shared, evaluation)
    except AWS_ERRORS as error:
        # Before any region was reached (STS, credentials): the whole object waits and retries.
        failure = RegionFailure.from_aws(classify(error))
        return _whole_failure(ref, status, failure, now, trail=True)
    report = _trail_report(ref, spec, status, outcome, drift_check, act, trigger, now)
    if evaluation.result is not None and not outcome.failures:
        _add_compliance(report, evaluation.result, ref, now)
    return report


def _refusal(tenancy: Tenancy, ref: ObjectRef, spec: TrailSpec) -> str | None:
    """Why the policy refuses the Trail (it is then Forbidden, before any AWS call), or None."""
    if isinstance(tenancy.policy, str):
        return f"the tenancy policy cannot be read, so no Trail is served: {tenancy.policy}"
    if not tenancy.policy:
        return None
    return trail_refusal(tenancy.policy, ref.namespace, ref.name, spec, tenancy.labels)


def _add_compliance(report: PassReport, result: ComplianceReport, ref: ObjectRef, now: str) -> None:
    """status.compliance, the Compliant condition, and an Event for each control that flipped."""
    report.status["compliance"] = result.entries
    report.status["lastComplianceCheckTime"] = now
    report.status["conditions"] = merge_conditions(
        report.status["conditions"], [result.condition], now, ref.generation
    )
    report.compliance_failed = sum(1 for entry in result.entries if not entry.get("passed"))
    for control, passed in result.flips:
        detail = next((e.get("detail", "") for e in result.entries if e.get("control") == control), "")
        if passed:
            report.events.append(Event("Normal", "ControlPassed", f"{control} now passes: {detail}"))
        else:
            report.events.append(Event("Warning", "ControlFailed", f"{control} now fails: {detail}"))


def _whole_failure(
    ref: ObjectRef, status: Mapping[str, Any], failure: RegionFailure, now: str, *, trail: bool
) -> PassReport:
    """A failure before any region or bucket was reached (STS, credentials, the LogRetention's Trail)."""
    conditions = failure_conditions(failure)
    if trail:
        conditions = with_compliant_placeholder(conditions, status.get("conditions"))
    return PassReport(
        status={
            "observedGeneration": ref.generation,
            "phase": "Error",
            "conditions": merge_conditions(status.get("conditions"), conditions, now, ref.generation),
            "lastSyncTime": now,
        },
        events=[Event("Warning", failure.code, failure.message, lasting=True)],
        retry_after=_retry_after([failure]),
    )


def _trail_report(
    ref: ObjectRef,
    spec: TrailSpec,
    status: Mapping[str, Any],
    outcome: TrailOutcome,
    drift_check: bool,
    act: bool,
    trigger: Trigger,
    now: str,
) -> PassReport:
    failures = outcome.failures
    logging = [r for r in outcome.regions if r.is_logging]
    what = "trail" if len(outcome.regions) == 1 else "trails"
    ready_message = (
        f"{len(logging)} of {len(outcome.regions)} {what} logging"
        if spec.logging
        else f"{len(outcome.regions)} {what} in place, logging off by spec"
    )
    summary = PassSummary(outcome.diffs, failures, drift_check, act, ready_message)
    conditions, phase = conditions_for(summary)
    conditions = with_compliant_placeholder(conditions, status.get("conditions"))
    fields = {
        "regionCount": len(spec.regions),
        "regions": [
            {
                "region": r.region,
                "trailArn": r.trail_arn,
                "isLogging": r.is_logging,
                "bucket": r.bucket,
                "topicArn": r.topic_arn,
                "latestDeliveryError": r.latest_delivery_error,
                "error": str(r.failure) if r.failure else None,
            }
            for r in outcome.regions
        ],
        "trailName": outcome.trail_name,
        "accountId": outcome.account_id,
    }
    failed = [(r.region, r.failure) for r in outcome.regions if r.failure]
    checked = PassChecked(drift_check, act, trigger, now)
    return _report(ref, status, conditions, phase, fields, outcome.diffs, outcome.changes, failed, checked)


@dataclass(frozen=True)
class PassChecked:
    """How a pass looked at AWS: a drift check or a change pass, acting or only reporting, and when."""

    drift_check: bool
    act: bool
    trigger: Trigger
    now: str


def _report(
    ref: ObjectRef,
    status: Mapping[str, Any],
    conditions: list[ConditionState],
    phase: str,
    fields: dict[str, Any],
    diffs: list[FieldDiff],
    changes: list[Change],
    failed: list[tuple[str, RegionFailure]],
    checked: PassChecked,
) -> PassReport:
    """The status body and Events of a pass, whichever kind: what both kinds write, and `fields`, the
    kind's own (its regions or buckets)."""
    now = checked.now
    drift = drift_entries(diffs, status.get("drift"), now, checked.act) if checked.drift_check else []
    body: dict[str, Any] = {
        "observedGeneration": ref.generation,
        "phase": phase,
        "conditions": merge_conditions(status.get("conditions"), conditions, now, ref.generation),
        **fields,
        "drift": drift,
        "lastSyncTime": now,
    }
    if checked.trigger == "timer" or checked.drift_check:
        body["lastDriftCheckTime"] = now
    events = _change_events(changes, diffs, checked.drift_check, checked.act, checked.trigger)
    events += _failure_events(failed)
    retry = _retry_after([failure for _, failure in failed])
    return PassReport(body, events, retry, changes=len(changes), drift=len(drift))


@_status_as(TrailStatus)
def trail_deletion(
    ref: ObjectRef,
    spec_body: Any,
    sessions: AwsSessions,
    shared: Shared,
    compliance: ComplianceSettings | None = None,
    tenancy: Tenancy = NO_TENANCY,
) -> PassReport:
    """A Trail being deleted: its report (deletionPolicy Delete takes off what it made)."""
    spec = parse_trail(spec_body, ref.name)
    if isinstance(spec, list) or spec.deletion_policy == "Retain":
        # Nothing was (or may be) made from an invalid spec; Retain leaves AWS as it is.
        return PassReport(status={}, events=[Event("Normal", "Retained", "deleted; AWS resources retained")])
    if refusal := _refusal(tenancy, ref, spec):
        # The policy no longer lets this Trail reach AWS: its deletion makes no call either.
        message = f"deleted; AWS resources retained, since {refusal}"
        return PassReport(status={}, events=[Event("Warning", "Forbidden", message)])
    if spec.notifications is not None:
        # A subscription another live Trail wants on the same topic is theirs too: it stays.
        spec = without_shared(spec, tenancy.topic_users(spec.notifications.topic_name))
    try:
        request = TrailRequest(
            namespace=ref.namespace,
            name=ref.name,
            spec=spec,
            sweep_regions=_sweep_regions(spec, sessions, compliance),
        )
        outcome = delete_trail(request, sessions, shared)
    except AWS_ERRORS as error:
        failure = RegionFailure.from_aws(classify(error))
        return PassReport(
            status={"phase": "Deleting"},
            events=[Event("Warning", failure.code, failure.message, lasting=True)],
            retry_after=_BACKOFF_SECONDS,
        )
    events = [Event("Normal", "Deleted", listing([str(c) for c in outcome.changes]) or "nothing to delete")]
    failures = outcome.failures
    events += _failure_events([(r.region, r.failure) for r in outcome.regions if r.failure])
    return PassReport(
        status={"phase": "Deleting"}, events=events, retry_after=_BACKOFF_SECONDS if failures else None
    )


def _sweep_regions(
    spec: TrailSpec, sessions: AwsSessions, compliance: ComplianceSettings | None
) -> tuple[str, ...]:
    """The account's enabled regions, for a deletion to look for trails outside the spec's regions."""
    if compliance is None:
        return ()
    regions = enabled_regions(
        sessions,
        account_ref(spec.account),
        given=compliance.enabled_regions,
        region_cache=compliance.region_cache,
    )
    return tuple(sorted(regions or ()))


# -- LogRetention --------------------------------------------------------------------------------------------


def retention_targets(
    spec: LogRetentionSpec,
    trail_spec_body: Mapping[str, Any] | None,
) -> list[RetentionTarget] | RegionFailure:
    if spec.bucket is not None:
        return targets_of_spec(spec)
    assert spec.trail_ref is not None
    if trail_spec_body is None:
        return RegionFailure(
            "TrailNotFound", f"Trail {spec.trail_ref.name} not found in this namespace", retryable=True
        )
    trail = parse_trail(trail_spec_body, spec.trail_ref.name)
    if isinstance(trail, list):
        return RegionFailure(
            "TrailInvalid", f"Trail {spec.trail_ref.name} has an invalid spec", retryable=True
        )
    return targets_of_trail(trail, spec.prefix)


def _previous_targets(status: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    return [(b.get("bucket", ""), b.get("region")) for b in status.get("buckets") or [] if b.get("bucket")]


def retention_targets_changed(
    spec_body: Any, status: Mapping[str, Any], trail_spec_body: Mapping[str, Any] | None
) -> bool:
    """Whether the buckets the LogRetention should keep differ from those in its status (its Trail moved)."""
    parsed = parse_spec("LogRetention", plain(spec_body))
    if isinstance(parsed, list):
        return False
    assert isinstance(parsed, LogRetentionSpec)
    targets = retention_targets(parsed, trail_spec_body)
    if isinstance(targets, RegionFailure):
        return status.get("phase") != "Error"
    return sorted(t.bucket for t in targets) != sorted(b for b, _ in _previous_targets(status))


@_status_as(LogRetentionStatus)
def retention_pass(
    ref: ObjectRef,
    spec_body: Any,
    status: Mapping[str, Any],
    sessions: AwsSessions,
    shared: Shared,
    *,
    trigger: Trigger,
    trail_spec_body: Mapping[str, Any] | None,
    tenancy: Tenancy = NO_TENANCY,
) -> PassReport:
    """One pass of a LogRetention: its report, status as LogRetentionStatus holds it."""
    parsed = parse_spec("LogRetention", plain(spec_body))
    if isinstance(parsed, list):
        return _invalid("LogRetention", parsed, ref, status)
    assert isinstance(parsed, LogRetentionSpec)
    now = now_iso()
    targets = retention_targets(parsed, trail_spec_body)
    if refused := retention_gate(tenancy.policy, tenancy.labels, ref.namespace, parsed, targets):
        return _whole_failure(ref, status, refused, now, trail=False)
    if isinstance(targets, RegionFailure):
        return _whole_failure(ref, status, targets, now, trail=False)
    current = {t.bucket for t in targets}
    removed = tuple(
        RetentionTarget(bucket, region, "")
        for bucket, region in _previous_targets(status)
        if bucket not in current
    )
    drift_check = _is_drift_check(status, ref.generation) and not removed and trigger == "timer"
    act = not (drift_check and parsed.drift_policy == "Report")
    request = RetentionRequest(ref.namespace, ref.name, parsed, tuple(targets), act, removed)
    try:
        outcome = reconcile_log_retention(request, sessions, shared)
    except AWS_ERRORS as error:
        return _whole_failure(ref, status, RegionFailure.from_aws(classify(error)), now, trail=False)
    return _retention_report(ref, status, outcome, drift_check, act, trigger, now)


def _retention_report(
    ref: ObjectRef,
    status: Mapping[str, Any],
    outcome: RetentionOutcome,
    drift_check: bool,
    act: bool,
    trigger: Trigger,
    now: str,
) -> PassReport:
    failures = outcome.failures
    ok = len(outcome.buckets) - len(failures)
    summary = PassSummary(
        outcome.diffs, failures, drift_check, act, f"lifecycle rule in place on {ok} bucket(s)"
    )
    conditions, phase = conditions_for(summary)
    fields = {
        "buckets": [
            {
                "bucket": b.bucket,
                "region": b.region,
                "ruleId": b.rule_id,
                "error": str(b.failure) if b.failure else None,
            }
            for b in outcome.buckets
        ],
    }
    failed = [(b.bucket, b.failure) for b in outcome.buckets if b.failure]
    checked = PassChecked(drift_check, act, trigger, now)
    return _report(ref, status, conditions, phase, fields, outcome.diffs, outcome.changes, failed, checked)


@_status_as(LogRetentionStatus)
def retention_deletion(
    ref: ObjectRef,
    spec_body: Any,
    status: Mapping[str, Any],
    sessions: AwsSessions,
    shared: Shared,
    trail_spec_body: Mapping[str, Any] | None,
    tenancy: Tenancy = NO_TENANCY,
) -> PassReport:
    """A LogRetention being deleted: its report (deletionPolicy Delete takes its rule off)."""
    parsed = parse_spec("LogRetention", plain(spec_body))
    if (
        isinstance(parsed, list)
        or not isinstance(parsed, LogRetentionSpec)
        or parsed.deletion_policy == "Retain"
    ):
        return PassReport(
            status={}, events=[Event("Normal", "Retained", "deleted; lifecycle rules retained")]
        )
    # The buckets the rule was put on are those in status (the Trail may be gone already).
    targets = tuple(RetentionTarget(bucket, region, "") for bucket, region in _previous_targets(status))
    if refused := retention_gate(tenancy.policy, tenancy.labels, ref.namespace, parsed, targets):
        message = f"deleted; lifecycle rules retained, since {refused.message}"
        return PassReport(status={}, events=[Event("Warning", "Forbidden", message)])
    request = RetentionRequest(ref.namespace, ref.name, parsed, targets)
    outcome = delete_log_retention(request, sessions, shared)
    failures = outcome.failures
    events = [Event("Normal", "Deleted", listing([str(c) for c in outcome.changes]) or "nothing to delete")]
    events += _failure_events([(b.bucket, b.failure) for b in outcome.buckets if b.failure])
    return PassReport(
        status={"phase": "Deleting"},
        events=events,
        # Any failure holds the finalizer: letting the object go would leave our rule behind unexplained.
        retry_after=_BACKOFF_SECONDS if failures else None,
    )
