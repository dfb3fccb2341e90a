"""End to end behind CloudTrail's request quotas (tests/support/quota.py): the operator brings several
Trails to Ready, and no throttle reaches a status or an Event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cluster import Cluster, OperatorProcess
from support.faults import FaultInjector, moto_app
from support.limits import LimitsFront
from support.moto_server import InProcessMotoServer
from support.quota import QuotaFront

pytestmark = pytest.mark.e2e

REGIONS = ["us-east-1", "eu-west-1"]
NAMES = [f"paced-{i}" for i in range(4)]


@pytest.fixture
def quota_front() -> Iterator[tuple[InProcessMotoServer, QuotaFront]]:
    front = QuotaFront(LimitsFront(moto_app()))
    with InProcessMotoServer(FaultInjector(front)) as server:
        yield server, front


def test_trails_reach_ready_behind_the_quota_with_no_throttle_in_status_or_events(
    cluster: Cluster, quota_front: tuple[InProcessMotoServer, QuotaFront], tmp_path: Path
) -> None:
    server, front = quota_front
    operator = OperatorProcess(cluster.kubeconfig, server.url, tmp_path / "operator.log")
    # Paced as in production: the tests' harness turns the limiter off, since moto alone never throttles.
    operator.args.remove("--no-rate-limit")
    with operator:
        for name in NAMES:
            spec = {
                "regions": REGIONS,
                "destination": {"bucket": f"paced-{name}-{{region}}"},
                "resyncSeconds": 30,
            }
            cluster.apply("Trail", name, spec)
        for name in NAMES:
            cluster.wait_condition("Trail", name, "Ready", "True", timeout=120)
    seen = json.dumps([cluster.status("Trail", n) for n in NAMES] + [cluster.events(n) for n in NAMES])
    where = seen.find("Throttl")
    assert "Throttl" not in seen and "Rate exceeded" not in seen, seen[max(0, where - 600) : where + 300]
    # Every trail was made behind the front: 2 regions x (create, selectors, start logging) at least.
    assert front.passed >= len(NAMES) * len(REGIONS) * 3
