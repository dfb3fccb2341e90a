"""The order of a CLI run's passes (cli/pipeline.py): a LogRetention runs once its own Trail's pass is done,
not after every Trail's, and the results still come Trails first, in the manifests' order."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from trailkeeper.api.manifests import Manifest, load_manifests
from trailkeeper.aws.session import AwsSessions
from trailkeeper.cli import pipeline
from trailkeeper.cli.pipeline import ObjectResult, run_manifests

MANIFESTS = """\
apiVersion: trailkeeper.io/v1alpha1
kind: Trail
metadata: {name: quick, namespace: security}
spec: {regions: [us-east-1], destination: {bucket: acme-quick}}
---
apiVersion: trailkeeper.io/v1alpha1
kind: Trail
metadata: {name: slow, namespace: security}
spec: {regions: [us-east-1], destination: {bucket: acme-slow}}
---
apiVersion: trailkeeper.io/v1alpha1
kind: LogRetention
metadata: {name: keep-quick, namespace: security}
spec: {trailRef: {name: quick}, expirationDays: 400}
---
apiVersion: trailkeeper.io/v1alpha1
kind: LogRetention
metadata: {name: keep-slow, namespace: security}
spec: {trailRef: {name: slow}, expirationDays: 400}
"""


def test_a_log_retention_runs_when_its_own_trail_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MANIFESTS, encoding="utf-8")
    manifests, problems = load_manifests([path])
    assert problems == []
    slow_may_finish = threading.Event()
    events: list[str] = []

    def fake_run_one(manifest: Manifest, *_: Any) -> ObjectResult:
        events.append(f"start {manifest.name}")
        if manifest.name == "slow":
            # Held until the quick Trail's LogRetention has run: the run would hang if it waited for all.
            assert slow_may_finish.wait(10)
        if manifest.name == "keep-quick":
            slow_may_finish.set()
        if manifest.name == "keep-slow":
            time.sleep(0.05)
        events.append(f"end {manifest.name}")
        return ObjectResult(manifest.ref)

    monkeypatch.setattr(pipeline, "_run_one", fake_run_one)

    results = list(run_manifests(manifests, AwsSessions(), act=False))

    assert [r.ref for r in results] == [m.ref for m in manifests]
    assert events.index("end keep-quick") < events.index("end slow")
    # A LogRetention never starts before its own Trail's pass is done.
    assert events.index("end slow") < events.index("start keep-slow")
    assert events.index("end quick") < events.index("start keep-quick")
