"""The CIS CloudTrail controls of one Trail, over what AWS holds (not the spec), for its status.

Observing an account means listing trails in every enabled region and reading every trail's status and
selectors: far too much to repeat for each Trail of a fleet. One observation of the account is shared by
every Trail in it for a while (the compliance interval), and dropped as soon as a Trail changes AWS.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from trailkeeper.api.trail import TrailSpec
from trailkeeper.aws.account_state import AccountObservation, EnabledRegionsCache, observe_account
from trailkeeper.aws.errors import classify
from trailkeeper.aws.reads import Reads
from trailkeeper.aws.session import AwsSessions
from trailkeeper.core.compliance import (
    MONITORING_CONTROLS,
    compliance_condition,
    evaluate,
    flipped,
    to_status,
)
from trailkeeper.reconcile.errors import AWS_ERRORS
from trailkeeper.reconcile.status import ConditionState
from trailkeeper.reconcile.trail import TrailOutcome, account_ref


@dataclass
class ComplianceSettings:
    """How the operator evaluates compliance: which regions must be covered, and how often."""

    # The account's enabled regions; None: ask EC2 DescribeRegions (cached an hour per account).
    enabled_regions: tuple[str, ...] | None = None
    # Controls change rarely; once per interval per Trail is enough. A Trail that changed AWS is
    # evaluated again at its next drift check, over a fresh observation.
    interval_seconds: float = 300.0
    region_cache: EnabledRegionsCache = field(default_factory=EnabledRegionsCache)
    # The read layer the observations are kept in (aws/reads.py), under the interval as their maximum age.
    reads: Reads = field(default_factory=Reads)

    def invalidate(self, account_key: str) -> None:
        self.reads.invalidate(_observation_key(account_key))

    def observation(
        self, account_key: str, own_arns: set[str], load: Callable[[], AccountObservation]
    ) -> AccountObservation:
        """The shared observation of an account; a fresh one when it is old or misses the Trail's trails.

        One load per account at a time: concurrent Trails wait for it, not make N of their own -- unless
        an older observation already shows their trails, which they take instead of waiting (it is at
        most one interval older than the one being made).
        """
        key = _observation_key(account_key)
        cached = self._covering(key, own_arns, self.interval_seconds)
        if cached is not None:
            return cached
        older = self._covering(key, own_arns, math.inf)
        loading = self.reads.loader(key)
        if older is None:
            loading.acquire()
        elif not loading.acquire(blocking=False):
            return older
        try:
            cached = self._covering(key, own_arns, self.interval_seconds)
            if cached is not None:
                return cached
            fresh = load()
            self.reads.put(key, fresh)
            return fresh
        finally:
            loading.release()

    def _covering(
        self, key: tuple[str, str], own_arns: set[str], max_age: float
    ) -> AccountObservation | None:
        entry = self.reads.peek(key, max_age)
        if entry is None:
            return None
        observation: AccountObservation = entry[1]
        return observation if own_arns <= {trail.arn for trail in observation.state.trails} else None


def _observation_key(account_key: str) -> tuple[str, str]:
    return ("account-observation", account_key)


@dataclass(frozen=True)
class ComplianceReport:
    entries: list[dict[str, Any]]
    condition: ConditionState
    flips: list[tuple[str, bool]]


def account_key(spec: TrailSpec) -> str:
    return spec.account.role_arn or "(operator's own account)"


def is_due(status: Mapping[str, Any], settings: ComplianceSettings, now: datetime) -> bool:
    last = status.get("lastComplianceCheckTime")
    if not last or not status.get("compliance"):
        return True
    checked = datetime.fromisoformat(str(last).replace("Z", "+00:00"))
    return (now - checked).total_seconds() >= settings.interval_seconds


def evaluate_trail(
    spec: TrailSpec,
    own_arns: set[str],
    sessions: AwsSessions,
    settings: ComplianceSettings,
    previous: Sequence[Mapping[str, Any]] | None,
) -> ComplianceReport:
    def load() -> AccountObservation:
        return observe_account(
            sessions,
            account_ref(spec.account),
            regions=settings.enabled_regions,
            region_cache=settings.region_cache,
        )

    try:
        observation = settings.observation(account_key(spec), own_arns, load)
    except AWS_ERRORS as error:
        failure = classify(error)
        return ComplianceReport(
            entries=[dict(entry) for entry in previous or []],
            condition=ConditionState(
                "Compliant", "Unknown", failure.code, f"not evaluated: {failure.message}"
            ),
            flips=[],
        )
    results = evaluate(observation.state, trail_arns=own_arns)
    if spec.monitoring is None:
        # The Monitoring section is the account's; a Trail reports it only when it is asked to make it.
        monitoring_ids = {c.id for c in MONITORING_CONTROLS}
        results = [r for r in results if r.control not in monitoring_ids]
    status, reason, message = compliance_condition(results)
    # A control turning Unknown (a trail not delivered to yet) is no pass or failure to announce.
    flips = [(control, passed) for control, passed in flipped(previous, results) if passed is not None]
    return ComplianceReport(to_status(results), ConditionState("Compliant", status, reason, message), flips)


@dataclass
class PassEvaluation:
    """The compliance evaluation of one Trail pass, made by reconcile_trail once AWS is in place and
    while the shared documents it wrote settle (its `meanwhile`), so it costs the pass no time of its own.

    A create or spec change is evaluated in its own pass, so Compliant follows Ready at once; a drift
    check evaluates once per compliance interval, or when it changed AWS. `result` stays None when the
    pass was not to be (or could not be) evaluated.
    """

    spec: TrailSpec
    status: Mapping[str, Any]
    sessions: AwsSessions
    settings: ComplianceSettings | None
    timer: bool
    result: ComplianceReport | None = None

    def __call__(self, outcome: TrailOutcome) -> None:
        settings = self.settings
        if settings is None or outcome.failures:
            return
        if outcome.changes:
            # AWS changed: the shared observation is stale for this Trail's trails.
            settings.invalidate(account_key(self.spec))
        if self.timer and not outcome.changes and not is_due(self.status, settings, datetime.now(UTC)):
            return
        own = {r.trail_arn for r in outcome.regions if r.trail_arn}
        with self.sessions.memo.scope(settings.interval_seconds):
            self.result = evaluate_trail(
                self.spec, own, self.sessions, settings, self.status.get("compliance")
            )
