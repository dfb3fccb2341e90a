"""Status of a Trail or LogRetention, recomputed from each pass's outcome (api.md status)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trailkeeper.api.logretention import LogRetentionStatus
from trailkeeper.api.trail import TrailStatus
from trailkeeper.core.drift import FieldDiff, to_drift_entries
from trailkeeper.reconcile.errors import RegionFailure


def written(model: type[TrailStatus | LogRetentionStatus], body: Mapping[str, Any]) -> dict[str, Any]:
    """The status a pass writes, as its model (the CRD's status schema) holds it: what the model refuses
    cannot be written, and nothing is written that the model does not know.

    Written as a JSON merge patch, a null deletes its key: a null a pass sets at the top level is meant so
    and kept, while nulls inside list items (a region without a topic) are left out, since the API server
    drops them from the stored list and the written status would differ from the stored one.
    """
    status = model.model_validate(body)
    patch = status.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)
    for name in status.model_fields_set:
        if getattr(status, name) is None:
            patch[model.model_fields[name].alias or name] = None
    return patch


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class ConditionState:
    type: str
    status: str
    reason: str
    message: str


def merge_conditions(
    previous: Sequence[Mapping[str, Any]] | None,
    current: Iterable[ConditionState],
    now: str,
    generation: int | None,
) -> list[dict[str, Any]]:
    """Kubernetes condition convention: lastTransitionTime changes only when a condition's status changes."""
    before = {c.get("type"): c for c in previous or [] if isinstance(c, Mapping)}
    merged: list[dict[str, Any]] = []
    for condition in current:
        old = before.get(condition.type)
        changed = old is None or old.get("status") != condition.status
        merged.append(
            {
                "type": condition.type,
                "status": condition.status,
                "reason": condition.reason,
                "message": condition.message,
                "lastTransitionTime": now if changed or not old else old.get("lastTransitionTime", now),
                "observedGeneration": generation,
            }
        )
    # Conditions this pass did not compute (Compliant, between compliance checks) are kept as they were.
    computed = {c["type"] for c in merged}
    merged.extend(dict(c) for t, c in before.items() if t not in computed)
    return merged


def drift_entries(
    diffs: Sequence[FieldDiff], previous: Sequence[Mapping[str, Any]] | None, now: str, corrected: bool
) -> list[dict[str, Any]]:
    """status.drift for this pass, keeping the first detectedAt of a difference that persists."""
    first_seen = {(d.get("resource"), d.get("field")): d.get("detectedAt") for d in previous or []}
    entries = to_drift_entries(diffs, now, corrected)
    for entry in entries:
        seen = first_seen.get((entry["resource"], entry["field"]))
        if seen and not corrected:
            entry["detectedAt"] = seen
    return entries


@dataclass(frozen=True)
class PassSummary:
    """What the status needs to know of one reconcile pass."""

    diffs: Sequence[FieldDiff]
    failures: Sequence[RegionFailure]
    is_drift_check: bool  # the spec is unchanged since the last successful pass: differences are drift
    acted: bool  # differences were put back (driftPolicy Correct, or a spec change)
    ready_message: str


def progress_conditions(
    failures: Sequence[RegionFailure], *, stalled_by: str | None = None
) -> list[ConditionState]:
    """kstatus's Reconciling and Stalled (the conditions Flux, kstatus and `kubectl wait` read).

    Stalled: nothing changes until a person does (a bad spec, a conflict, access refused, drift left as
    it is by driftPolicy Report). Reconciling: a failure this operator retries on its own (throttling, a
    Trail or bucket not there yet). Both False: the object is where its spec puts it.
    """
    permanent = [f for f in failures if not f.retryable]
    if stalled_by is not None:
        stalled = ConditionState("Stalled", "True", stalled_by, "waiting for a change of the spec or of AWS")
    elif permanent:
        first = permanent[0]
        stalled = ConditionState("Stalled", "True", first.code, first.message)
    else:
        stalled = ConditionState("Stalled", "False", "NotStalled", "nothing needs a person")
    if stalled.status == "False" and failures:
        first = failures[0]
        reconciling = ConditionState("Reconciling", "True", first.code, f"retrying: {first.message}")
    else:
        reconciling = ConditionState("Reconciling", "False", "Reconciled", "no pass pending")
    return [reconciling, stalled]


def conditions_for(summary: PassSummary) -> tuple[list[ConditionState], str]:
    """The Ready/Reconciling/Stalled/Synced/Drifted conditions and the phase of one pass."""
    failures = list(summary.failures)
    drift = list(summary.diffs) if summary.is_drift_check else []
    conflicts = [f for f in failures if f.code == "Conflict"]
    if failures:
        first = conflicts[0] if conflicts else failures[0]
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        synced = ConditionState("Synced", "False", first.code, f"{first.message}{more}")
    else:
        synced = ConditionState("Synced", "True", "Reconciled", "AWS reached and the pass finished")
    if drift and summary.acted:
        drifted = ConditionState(
            "Drifted", "True", "DriftCorrected", f"{len(drift)} difference(s) found and put back to the spec"
        )
    elif drift:
        drifted = ConditionState(
            "Drifted",
            "True",
            "DriftDetected",
            f"{len(drift)} difference(s) from the spec (driftPolicy Report: not corrected)",
        )
    else:
        drifted = ConditionState("Drifted", "False", "NoDrift", "AWS matches the spec")
    stalled_by = None
    if failures:
        first = conflicts[0] if conflicts else failures[0]
        ready = ConditionState("Ready", "False", first.code, first.message)
        phase = "Error"
    elif summary.diffs and not summary.acted:
        ready = ConditionState("Ready", "False", "Drifted", drifted.message)
        phase = "Drifted"
        stalled_by = "Drifted"
    else:
        ready = ConditionState("Ready", "True", "Reconciled", summary.ready_message)
        phase = "Ready"
    return [ready, *progress_conditions(failures, stalled_by=stalled_by), synced, drifted], phase


def failure_conditions(failure: RegionFailure) -> list[ConditionState]:
    """A failure that stopped the whole object before any region or bucket (STS, its Trail missing)."""
    return [
        ConditionState("Ready", "False", failure.code, failure.message),
        *progress_conditions([failure]),
        ConditionState("Synced", "False", failure.code, failure.message),
    ]


def invalid_spec_conditions(message: str) -> list[ConditionState]:
    return [
        ConditionState("Ready", "False", "InvalidSpec", message),
        *progress_conditions([], stalled_by="InvalidSpec"),
        ConditionState("Synced", "False", "InvalidSpec", "not sent to AWS: the spec is invalid"),
    ]


NOT_EVALUATED = ConditionState(
    "Compliant", "Unknown", "NotEvaluated", "the CIS controls are not evaluated yet"
)


def with_compliant_placeholder(
    conditions: list[ConditionState], previous: Sequence[Mapping[str, Any]] | None
) -> list[ConditionState]:
    """A Trail's Compliant condition is there from its first status on: Unknown until evaluated."""
    if any(isinstance(c, Mapping) and c.get("type") == "Compliant" for c in previous or []):
        return conditions
    return [*conditions, NOT_EVALUATED]
