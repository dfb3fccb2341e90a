"""Objects as the operator leaves them after each kind of outcome, made by the real passes against moto.

The status tests and the Argo CD health check tests read the same objects: what they check is what the
operator writes, not a hand-written imitation of it.
"""

from __future__ import annotations

from typing import Any

from trailkeeper.aws.session import AwsSessions
from trailkeeper.reconcile.compliance import ComplianceSettings
from trailkeeper.reconcile.passes import ObjectRef, PassReport, Trigger, retention_pass, trail_pass
from trailkeeper.reconcile.shared import Shared

REGION = "us-east-1"


def trail_spec(name: str, **overrides: Any) -> dict[str, Any]:
    return {"regions": [REGION], "destination": {"bucket": f"outcome-{name}"}, **overrides}


class Outcomes:
    """Runs passes the way the handlers do, keeping each object's status between them."""

    def __init__(self, aws: AwsSessions) -> None:
        self.aws = aws
        self.shared = Shared()
        self.compliance = ComplianceSettings(enabled_regions=(REGION,))
        self.statuses: dict[str, dict[str, Any]] = {}
        self.specs: dict[str, Any] = {}
        self.generations: dict[str, int] = {}

    def _ref(self, name: str) -> ObjectRef:
        return ObjectRef("default", name, f"uid-{name}", self.generations.setdefault(name, 1))

    def trail(self, name: str, spec: Any, trigger: Trigger = "create") -> PassReport:
        self.specs[name] = spec
        report = trail_pass(
            self._ref(name),
            spec,
            self.statuses.get(name, {}),
            self.aws,
            self.shared,
            trigger=trigger,
            compliance=self.compliance,
        )
        self.statuses[name] = {**self.statuses.get(name, {}), **report.status}
        return report

    def retention(
        self, name: str, spec: Any, trail_spec_body: Any, trigger: Trigger = "create"
    ) -> PassReport:
        self.specs[name] = spec
        report = retention_pass(
            self._ref(name),
            spec,
            self.statuses.get(name, {}),
            self.aws,
            self.shared,
            trigger=trigger,
            trail_spec_body=trail_spec_body,
        )
        self.statuses[name] = {**self.statuses.get(name, {}), **report.status}
        return report

    def body(self, kind: str, name: str) -> dict[str, Any]:
        """The object as the API server would hold it: metadata, spec and the status written so far."""
        return {
            "apiVersion": "trailkeeper.io/v1alpha1",
            "kind": kind,
            "metadata": {
                "name": name,
                "namespace": "default",
                "uid": f"uid-{name}",
                "generation": self.generations.get(name, 1),
            },
            "spec": self.specs.get(name),
            "status": self.statuses.get(name, {}),
        }


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def every_outcome(aws: AwsSessions) -> dict[str, dict[str, Any]]:
    """One object per outcome a person may meet: name of the outcome -> the object with its status."""
    runs = Outcomes(aws)
    bodies: dict[str, dict[str, Any]] = {}

    runs.trail("ready", trail_spec("ready"))
    bodies["ready"] = runs.body("Trail", "ready")

    runs.trail("report", trail_spec("report", driftPolicy="Report"))
    aws.client("cloudtrail", REGION).stop_logging(Name="report")
    runs.trail("report", runs.specs["report"], trigger="timer")
    bodies["drifted"] = runs.body("Trail", "report")

    # A trail of the same name that trailkeeper did not make: never touched without adopt.
    s3 = aws.client("s3", REGION)
    s3.create_bucket(Bucket="someone-elses")
    aws.client("cloudtrail", REGION).create_trail(Name="taken", S3BucketName="someone-elses")
    runs.trail("taken", trail_spec("taken"))
    bodies["conflict"] = runs.body("Trail", "taken")

    runs.trail("invalid", {"regions": ["us-east-1"], "destination": {"bucket": "Not_A_Bucket"}})
    bodies["invalid-spec"] = runs.body("Trail", "invalid")

    runs.retention("orphan", {"trailRef": {"name": "missing"}, "expirationDays": 400}, None)
    bodies["error"] = runs.body("LogRetention", "orphan")

    deleting = runs.body("Trail", "ready")
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    bodies["deleting"] = deleting

    changed = runs.body("Trail", "ready")
    changed["metadata"]["generation"] = 2  # a spec change the operator has not acted on yet
    bodies["spec-changed"] = changed
    return bodies
