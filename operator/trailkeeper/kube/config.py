"""Settings of the operator process (from the command line), and what its handlers share."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

# The API group and version, named here too for the modules that start the operator.
from trailkeeper.api import GROUP as GROUP  # noqa: PLC0414 (re-exported)
from trailkeeper.api import VERSION as VERSION  # noqa: PLC0414 (re-exported)
from trailkeeper.api.tenancy import TenancyPolicy
from trailkeeper.aws.account_state import EnabledRegionsCache
from trailkeeper.aws.session import AwsSessions
from trailkeeper.kube.dependents import DependentRuns
from trailkeeper.kube.tenancy_view import TenancyInputs
from trailkeeper.metrics import Metrics
from trailkeeper.reconcile.compliance import ComplianceSettings
from trailkeeper.reconcile.shared import TAG_CHECK_EVERY, KeyedLocks, Shared
from trailkeeper.reconcile.tenancy_file import TenancyFile

if TYPE_CHECKING:
    from trailkeeper.kube.status_writer import StatusWriter

FINALIZER = "trailkeeper.io/finalizer"
# kopf's record of the last spec its change handlers finished with (the diff base), in our group.
LAST_HANDLED = f"{GROUP}/last-handled-configuration"


@dataclass(frozen=True)
class OperatorConfig:
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    # Multiplies every object's resyncSeconds. 1 in production; demos and end-to-end tests shorten the
    # drift-check period with it without breaking the API's lower bound of 30 s.
    resync_scale: float = 1.0
    # A drift check compares tags afresh once in this many (Shared.tag_read_age).
    tag_check_every: int = TAG_CHECK_EVERY
    max_workers: int = 16
    peering: str | None = "trailkeeper"  # None: standalone, no peering
    # Of the replicas in one peering, the one of the highest priority runs; the others pause until its
    # keep-alive (renewed within `peering_lifetime` seconds) lapses.
    priority: int = 1
    peering_lifetime: int = 60
    liveness_url: str | None = None
    metrics_port: int | None = None
    # The regions CIS-3.1 requires coverage of; empty: the account's enabled regions (EC2 DescribeRegions).
    compliance_regions: tuple[str, ...] = ()
    compliance_interval: float = 300.0
    # The tenancy policy's file (the chart's ConfigMap); None: the built-in default rule for every namespace.
    tenancy_policy: str | None = None

    @property
    def tick_seconds(self) -> float:
        """How often each object's timer wakes to see whether its (jittered) drift check is due."""
        return max(0.5, min(10.0, 30 * self.resync_scale / 4))


def jittered_period(resync_seconds: int, scale: float, uid: str) -> float:
    """The object's drift-check period, spread ±10 % by a stable hash of its uid.

    A fleet of objects with one resyncSeconds would otherwise all sweep in the same second.
    """
    fraction = int(hashlib.sha256(uid.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return resync_seconds * scale * (0.9 + 0.2 * fraction)


@dataclass
class Runtime:
    """What every handler of one operator process shares."""

    config: OperatorConfig
    sessions: AwsSessions
    shared: Shared = field(default_factory=Shared)
    # One pass at a time per object: the timer and a change handler must not reconcile it together.
    object_locks: KeyedLocks = field(default_factory=KeyedLocks)
    metrics: Metrics = field(default_factory=Metrics)
    compliance: ComplianceSettings = field(default_factory=ComplianceSettings)
    # Set when the operator starts; without one (tests of the handlers alone) kopf's patch carries status.
    status_writer: StatusWriter | None = None
    # Objects whose change handlers are done but whose status is not written yet, since when (monotonic).
    unwritten_since: dict[str, float] = field(default_factory=dict)
    # LogRetentions waiting on a Trail run as soon as a pass of that Trail ends (kube/dependents.py).
    dependents: DependentRuns = field(default_factory=DependentRuns)
    # Per object (uid): the lasting Events (a failure being retried, drift left alone) its last pass
    # posted, as (reason, message). The next pass posts only those that are new.
    lasting_events: dict[str, frozenset[tuple[str, str]]] = field(default_factory=dict)
    # The cluster admins' tenancy policy, read again when its file changes (None: no file given).
    tenancy: TenancyFile | None = None
    # Per object: the policy and namespace labels its last pass was judged by (kube/tenancy_view.py).
    tenancy_inputs: TenancyInputs = field(default_factory=TenancyInputs)

    def tenancy_policy(self) -> TenancyPolicy | str | None:
        return self.tenancy.current() if self.tenancy is not None else None

    def __post_init__(self) -> None:
        # Drift checks take shared reads up to half their (scaled) period old (Shared.shared_read_age).
        self.shared.resync_scale = self.config.resync_scale
        self.shared.tag_check_every = self.config.tag_check_every
        self.compliance.enabled_regions = self.config.compliance_regions or None
        self.compliance.interval_seconds = self.config.compliance_interval
        # One read layer for the process (aws/reads.py): shared reads, compliance observations, regions.
        self.shared.cache = self.compliance.reads = self.sessions.reads
        self.compliance.region_cache = EnabledRegionsCache(reads=self.sessions.reads)
        if self.sessions.recorder is not None:
            self.sessions.recorder.add_listener(self.metrics.on_aws_call)
