"""Races with the real operator process: against a CLI apply, and across a peering handover.

Both run the operator as the end-to-end tests do (``trailkeeper run`` against a real kube-apiserver, as the
chart's ServiceAccount) and reach moto through the race suite's fault front, which delays every write by
50-200 ms, so writes in flight overlap. Each run uses a bucket of its own; its objects are deleted after it
is counted (``deletionPolicy: Retain``) and its trails are removed straight from moto (AWS allows 5 per
region and account), so the operator carries one run's objects at a time.

- ``operator-and-cli``: the operator reconciles a Trail and a LogRetention while a `trailkeeper apply`
  process applies another pair on the same bucket; the CLI starts first and the objects reach the API server
  at a random moment of its run.
- ``peering-handover``: two replicas in one kopf peering; the active one is SIGKILLed at a random moment
  after two Trails and their LogRetentions on one bucket are applied (its writes in flight still land), the
  standby takes over when the peering's lifetime runs out, and a new standby is started for the next run.

Counted after each run, for each object that reported success (Ready, or an exit status of 0): its entries
missing from the bucket's shared statements and its lifecycle rule missing from the bucket.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import ClientError

from bench.paths import subprocess_env, use_test_support

use_test_support()

from support.cluster import Cluster, OperatorProcess, eventually, kube_access  # noqa: E402

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account: the operator's and the CLI's
PEERING = "trailkeeper"
LIFETIME = 4  # seconds a replica's keep-alive counts: how long the standby waits after the active died
READY_TIMEOUT = 90.0


def _manifest(kind: str, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "trailkeeper.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _trail_spec(bucket: str) -> dict[str, Any]:
    return {"regions": [REGION], "destination": {"bucket": bucket}}


def _retention_spec(trail: str) -> dict[str, Any]:
    return {"trailRef": {"name": trail}, "expirationDays": 400}


class LiveRaces:
    def __init__(self, url: str, observer: Any, workdir: Path, rng: random.Random) -> None:
        self.url = url
        self.observer = observer
        self.workdir = workdir
        self.rng = rng
        # What each object that did not become Ready showed instead, for the report.
        self.notes: list[str] = []

    # -- what a run left ----------------------------------------------------------------------------

    def _policy(self, bucket: str) -> dict[str, Any] | None:
        try:
            text = self.observer.client("s3", REGION).get_bucket_policy(Bucket=bucket)["Policy"]
        except ClientError:  # no bucket or no policy
            return None
        return dict(json.loads(text))

    def _rule_ids(self, bucket: str) -> set[str]:
        try:
            s3 = self.observer.client("s3", REGION)
            rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        except ClientError:  # no configuration: no rules
            return set()
        return {str(rule["ID"]) for rule in rules}

    def _losses(self, bucket: str, succeeded: list[tuple[str, str, str]]) -> dict[str, int]:
        """Lost entries and rules of the (namespace, Trail, LogRetention) triples that reported success."""
        from trailkeeper.core.bucket_share import BucketShare, missing_entries
        from trailkeeper.core.naming import lifecycle_rule_id

        policy, rules = self._policy(bucket), self._rule_ids(bucket)
        entries = sum(
            len(missing_entries(policy, BucketShare(bucket, "", ACCOUNT, t))) for _, t, _ in succeeded
        )
        lost_rules = sum(lifecycle_rule_id(ns, r) not in rules for ns, _, r in succeeded)
        return {"lost_own_statements": entries, "lost_own_rules": lost_rules}

    def _clear_trails(self) -> None:
        """AWS allows 5 trails per region and account: a run's trails go once it is counted (its objects
        keep `deletionPolicy: Retain`, so deleting them afterwards makes no AWS call)."""
        cloudtrail = self.observer.client("cloudtrail", REGION)
        for trail in cloudtrail.describe_trails(includeShadowTrails=False)["trailList"]:
            cloudtrail.delete_trail(Name=trail["Name"])

    def _ready(self, cluster: Cluster, kind: str, name: str, timeout: float = READY_TIMEOUT) -> bool:
        try:
            cluster.wait_condition(kind, name, "Ready", "True", timeout=timeout)
        except AssertionError:
            status = (cluster.get(kind, name) or {}).get("status") or {}
            ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
            self.notes.append(f"{kind} {name}: {json.dumps(ready or status)[:400]}")
            return False
        return True

    # -- the operator and a CLI apply at once --------------------------------------------------------

    def operator_and_cli(self, cluster: Cluster, run: int) -> dict[str, int]:
        bucket = f"race-op-cli-{run}"
        path = self.workdir / f"op-cli-{run}.yaml"
        path.write_text(
            yaml.safe_dump_all(
                [
                    _manifest("Trail", "team-cli", f"cli-{run}", _trail_spec(bucket)),
                    _manifest("LogRetention", "team-cli", "keep", _retention_spec(f"cli-{run}")),
                ]
            ),
            encoding="utf-8",
        )
        cli = subprocess.Popen(
            [sys.executable, "-m", "trailkeeper", "apply", "-f", str(path)],
            env={**subprocess_env(), "AWS_ENDPOINT_URL": self.url},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        # The CLI takes about 1.5 s to start; the operator answers a new object within a fraction of that.
        time.sleep(self.rng.uniform(0.5, 2.5))
        name = f"op-{run}"
        cluster.apply("Trail", name, _trail_spec(bucket))
        cluster.apply("LogRetention", name, _retention_spec(name))
        code = cli.wait(timeout=180)
        errors = cli.stderr.read() if cli.stderr else ""
        ready = self._ready(cluster, "Trail", name) and self._ready(cluster, "LogRetention", name)
        succeeded = ([("default", name, name)] if ready else []) + (
            [("team-cli", f"cli-{run}", "keep")] if code == 0 else []
        )
        result = {
            **self._losses(bucket, succeeded),
            "failed_applies": int(code != 0),
            "not_ready": int(not ready),
            "tracebacks": int("Traceback" in errors),
        }
        self._clear_trails()
        cluster.delete("LogRetention", name)
        cluster.delete("Trail", name)
        return result

    # -- two replicas across a peering handover ------------------------------------------------------

    def _replica(self, cluster: Cluster, priority: int) -> OperatorProcess:
        return OperatorProcess(
            cluster.kubeconfig,
            self.url,
            self.workdir / f"replica-{priority}.log",
            "--priority",
            str(priority),
            "--peering-lifetime",
            str(LIFETIME),
            peering=PEERING,
        )

    def _peers(self, cluster: Cluster) -> list[int]:
        peering = cluster.request("GET", f"/apis/kopf.dev/v1/clusterkopfpeerings/{PEERING}")
        return sorted(int(peer["priority"]) for peer in (peering.get("status") or {}).values())

    def peering_handover(self, cluster: Cluster, runs: int) -> Iterator[dict[str, int]]:
        """One result per run; the replicas live across runs (each run kills the active one)."""
        cluster.request(
            "POST",
            "/apis/kopf.dev/v1/clusterkopfpeerings",
            {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": PEERING}},
        )
        priority = 1000
        active = self._replica(cluster, priority).start()
        eventually(lambda: self._peers(cluster) == [priority], timeout=30, what="the first replica")
        standby = self._replica(cluster, priority - 1).start()
        replicas = [active, standby]
        try:
            for run in range(runs):
                yield self._handover_run(cluster, run, active)
                active, priority = standby, priority - 1
                standby = self._replica(cluster, priority - 1).start()
                replicas.append(standby)
        finally:
            for replica in replicas:
                replica.kill()

    def _handover_run(self, cluster: Cluster, run: int, active: OperatorProcess) -> dict[str, int]:
        bucket = f"race-handover-{run}"
        names = [f"handover-{run}-{side}" for side in ("a", "b")]
        for name in names:
            cluster.apply("Trail", name, _trail_spec(bucket))
            cluster.apply("LogRetention", name, _retention_spec(name))
        time.sleep(self.rng.uniform(0.0, 1.5))
        active.kill()
        ready = {
            name: self._ready(cluster, "Trail", name, LIFETIME + READY_TIMEOUT)
            and self._ready(cluster, "LogRetention", name)
            for name in names
        }
        result = {
            **self._losses(bucket, [("default", name, name) for name in names if ready[name]]),
            "not_ready": sum(not r for r in ready.values()),
            "tracebacks": int("Traceback" in active.output()),
        }
        self._clear_trails()
        for name in names:
            cluster.delete("LogRetention", name)
            cluster.delete("Trail", name)
        return result


@contextmanager
def live_cluster(workdir: Path) -> Iterator[Cluster]:
    """A local API server with trailkeeper's CRDs, for the live scenarios."""
    with ExitStack() as stack:
        access = stack.enter_context(kube_access(workdir / "kube"))
        yield stack.enter_context(Cluster(access))


def operator_process(cluster: Cluster, url: str, log: Path) -> OperatorProcess:
    """One standalone operator at production pacing of drift checks (they stay out of the runs)."""
    return OperatorProcess(cluster.kubeconfig, url, log, resync_scale=1.0)
