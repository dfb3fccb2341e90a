"""Status and Events of every outcome: kstatus conditions, observedGeneration, Compliant, useful Events."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from support.outcomes import REGION, Outcomes, condition, every_outcome, trail_spec
from trailkeeper.api.logretention import LogRetentionStatus
from trailkeeper.api.trail import TrailStatus
from trailkeeper.aws.session import AwsSessions
from trailkeeper.kube.handlers import _new_events
from trailkeeper.reconcile.passes import Event, listing
from trailkeeper.reconcile.status import written


@pytest.fixture
def outcomes(aws: AwsSessions) -> dict[str, dict[str, Any]]:
    return every_outcome(aws)


def kstatus(status: dict[str, Any]) -> tuple[str, str, str]:
    return tuple(condition(status, t)["status"] for t in ("Ready", "Reconciling", "Stalled"))  # type: ignore[return-value]


def test_every_written_status_names_the_generation_it_was_computed_for(
    outcomes: dict[str, dict[str, Any]],
) -> None:
    for name, body in outcomes.items():
        status = body["status"]
        assert status["observedGeneration"] == 1, name
        assert {c["observedGeneration"] for c in status["conditions"]} == {1}, name


def test_conditions_follow_kstatus_for_each_outcome(outcomes: dict[str, dict[str, Any]]) -> None:
    expected = {
        "ready": ("True", "False", "False"),
        "drifted": ("False", "False", "True"),  # driftPolicy Report: only a person moves it on
        "conflict": ("False", "False", "True"),
        "invalid-spec": ("False", "False", "True"),
        "error": ("False", "True", "False"),  # its Trail may yet appear: retried by the operator
    }
    for name, triple in expected.items():
        assert kstatus(outcomes[name]["status"]) == triple, name
    assert condition(outcomes["error"]["status"], "Ready")["reason"] == "TrailNotFound"
    assert condition(outcomes["conflict"]["status"], "Stalled")["reason"] == "Conflict"
    assert condition(outcomes["drifted"]["status"], "Stalled")["reason"] == "Drifted"


def test_compliant_is_evaluated_in_the_create_pass_and_unknown_until_then(
    outcomes: dict[str, dict[str, Any]],
) -> None:
    ready = condition(outcomes["ready"]["status"], "Compliant")
    assert ready["status"] in ("True", "False")
    assert ready["reason"] != "NotEvaluated"
    assert outcomes["ready"]["status"]["compliance"]
    for name in ("conflict", "invalid-spec"):
        compliant = condition(outcomes[name]["status"], "Compliant")
        assert (compliant["status"], compliant["reason"]) == ("Unknown", "NotEvaluated"), name


def _nulls_in_list_items(value: Any, where: str = "status", in_list: bool = False) -> list[str]:
    """Where a null sits inside a list item (the API server drops those from the stored list)."""
    if value is None and in_list:
        return [where]
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _nulls_in_list_items(v, f"{where}.{k}", in_list)]
    if isinstance(value, list):
        return [n for i, v in enumerate(value) for n in _nulls_in_list_items(v, f"{where}[{i}]", True)]
    return []


def _with_retention(aws: AwsSessions, outcomes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    runs = Outcomes(aws)
    runs.trail("kept", trail_spec("kept"))
    runs.retention("kept-logs", {"trailRef": {"name": "kept"}, "expirationDays": 400}, runs.specs["kept"])
    return {**outcomes, "retention-ready": runs.body("LogRetention", "kept-logs")}


def test_no_status_list_item_holds_a_null(aws: AwsSessions, outcomes: dict[str, dict[str, Any]]) -> None:
    bodies = _with_retention(aws, outcomes)
    assert bodies["conflict"]["status"]["regions"][0].get("error")  # a region item with its fields unset
    for name, body in bodies.items():
        assert _nulls_in_list_items(body["status"]) == [], name


def test_written_status_round_trips_through_its_model(
    aws: AwsSessions, outcomes: dict[str, dict[str, Any]]
) -> None:
    for name, body in _with_retention(aws, outcomes).items():
        model = TrailStatus if body["kind"] == "Trail" else LogRetentionStatus
        status = body["status"]
        assert written(model, status) == status, name
        assert model.model_validate(status).model_dump(
            mode="json", by_alias=True, exclude_unset=True, exclude_none=True
        ) == {k: v for k, v in status.items() if v is not None}, name


def test_a_top_level_null_is_written_as_a_deletion() -> None:
    assert written(TrailStatus, {"phase": "Deleting", "trailName": None}) == {
        "phase": "Deleting",
        "trailName": None,
    }


def test_trail_status_counts_its_regions(aws: AwsSessions) -> None:
    runs = Outcomes(aws)
    runs.trail("two", trail_spec("two", regions=[REGION, "eu-west-1"]))
    assert runs.statuses["two"]["regionCount"] == 2


def test_created_event_names_what_was_created_and_started(aws: AwsSessions) -> None:
    report = Outcomes(aws).trail("named", trail_spec("named"))
    created = next(e for e in report.events if e.reason == "Created")
    assert "trail/us-east-1: created trail named" in created.message
    assert "trail/us-east-1: started logging" in created.message
    assert "bucket/outcome-named: created in us-east-1" in created.message


def test_drift_detected_event_lists_the_fields(aws: AwsSessions) -> None:
    runs = Outcomes(aws)
    runs.trail("report", trail_spec("report", driftPolicy="Report"))
    aws.client("cloudtrail", REGION).stop_logging(Name="report")
    report = runs.trail("report", runs.specs["report"], trigger="timer")
    (detected,) = [e for e in report.events if e.reason == "DriftDetected"]
    assert "trail/us-east-1 IsLogging (spec true, AWS false)" in detected.message


def test_failure_events_carry_what_happened_as_their_reason(aws: AwsSessions) -> None:
    runs = Outcomes(aws)
    report = runs.retention("orphan", {"trailRef": {"name": "missing"}, "expirationDays": 400}, None)
    assert [(e.type, e.reason) for e in report.events] == [("Warning", "TrailNotFound")]
    aws.client("s3", REGION).create_bucket(Bucket="someone-elses")
    aws.client("cloudtrail", REGION).create_trail(Name="taken", S3BucketName="someone-elses")
    conflict = runs.trail("taken", trail_spec("taken"))
    assert [e.reason for e in conflict.events] == ["Conflict"]
    assert conflict.events[0].message.startswith("us-east-1: trail taken in us-east-1 is not made by")


def test_long_lists_say_how_many_more() -> None:
    items = [f"change {n}" for n in range(11)]
    assert listing(items).endswith("change 7 (and 3 more)")
    assert listing(items[:8]) == "; ".join(items[:8])


def test_a_lasting_event_is_posted_once_until_it_clears_or_changes() -> None:
    runtime: Any = SimpleNamespace(lasting_events={})
    body = {"metadata": {"uid": "u1"}}
    missing = Event("Warning", "TrailNotFound", "Trail audit not found", lasting=True)
    created = Event("Normal", "Created", "lifecycle/b: put rule r")
    assert _new_events(runtime, body, [missing]) == [missing]
    assert _new_events(runtime, body, [missing]) == []
    assert _new_events(runtime, body, [missing]) == []
    assert _new_events(runtime, body, [created]) == [created]
    assert _new_events(runtime, body, [missing]) == [missing]
    other = Event("Warning", "TrailNotFound", "Trail other not found", lasting=True)
    assert _new_events(runtime, body, [other]) == [other]
    assert _new_events(runtime, {"metadata": {"uid": "u2"}}, [other]) == [other]
