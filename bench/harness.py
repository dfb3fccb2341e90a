"""One stage of the bench: moto behind the call counter, a real Kubernetes API server, the real operator.

The operator is ``trailkeeper run`` in a subprocess, started by the end-to-end tests' own harness
(``tests/support/cluster.py``), so the bench measures the process a user runs, over HTTP to both APIs.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.aws_counter import CallCount, CountingMoto
from bench.paths import aws_environment, subprocess_env, use_test_support
from bench.watch import ObjectWatcher

use_test_support()

from support.cluster import (  # noqa: E402
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    Cluster,
    OperatorProcess,
    kube_access,
)

OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def memory_kib(pid: int, field: str) -> int | None:
    """A ``/proc/<pid>/status`` memory field in KiB: VmHWM is the peak resident set, VmRSS the current."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        # The command name (field 2) may hold spaces: count fields after its closing parenthesis.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def operator_calls(counts: list[CallCount]) -> Counter[tuple[str, str]]:
    return Counter({(c.service, c.operation): c.count for c in counts if c.caller == "operator"})


def calls_between(before: list[CallCount], after: list[CallCount]) -> Counter[tuple[str, str]]:
    """The operator's calls made between two snapshots, by (service, operation)."""
    delta = operator_calls(after)
    delta.subtract(operator_calls(before))
    return +delta


@dataclass(frozen=True)
class MetricsSample:
    """Sums of the operator's own histograms, when its metrics endpoint serves them."""

    reconcile_seconds: float
    reconciles: float
    aws_seconds: float
    aws_calls: float


def scrape_metrics(port: int) -> MetricsSample | None:
    """The reconcile and AWS-call histograms of ``--metrics-port``; None when nothing (or not them) is
    served there: the operator's metrics are optional to this bench."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    if "trailkeeper_reconcile_duration_seconds_count" not in sums:
        return None
    return MetricsSample(
        reconcile_seconds=sums.get("trailkeeper_reconcile_duration_seconds_sum", 0.0),
        reconciles=sums["trailkeeper_reconcile_duration_seconds_count"],
        aws_seconds=sums.get("trailkeeper_aws_call_duration_seconds_sum", 0.0),
        aws_calls=sums.get("trailkeeper_aws_call_duration_seconds_count", 0.0),
    )


@functools.cache
def run_options(operator_src: Path | None = None) -> frozenset[str]:
    """The long options `trailkeeper run` accepts: the bench passes an optional one only when the
    operator it runs has it (a patched copy under --operator-src may predate it)."""
    help_text = subprocess.run(
        [sys.executable, "-m", "trailkeeper", "run", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**subprocess_env(), **_operator_env(operator_src)},
    ).stdout
    return frozenset(re.findall(r"(--[a-z][a-z-]+)", help_text))


class Stage:
    """A fresh emulated cluster and operator process against the (shared) counting moto server."""

    def __init__(
        self,
        moto: CountingMoto,
        workdir: Path,
        name: str,
        *,
        resync_scale: float,
        operator_src: Path | None = None,
        metrics_port: int | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.moto = moto
        self.workdir = workdir
        self.name = name
        self.resync_scale = resync_scale
        self.operator_src = operator_src
        self.metrics_port = metrics_port
        self.extra_args = extra_args
        self.log = workdir / f"{name}-operator.log"
        self.cluster: Cluster | None = None
        self.audit_log: Path | None = None
        self.operator: OperatorProcess | None = None
        self.watcher: ObjectWatcher | None = None

    @contextmanager
    def running(self) -> Iterator[Stage]:
        with ExitStack() as stack:
            access = stack.enter_context(kube_access(self.workdir / f"{self.name}-kube", audit_log=True))
            self.audit_log = access.audit_log
            self.cluster = stack.enter_context(Cluster(access))
            extra = list(self.extra_args)
            if self.metrics_port:
                extra += ["--metrics-port", str(self.metrics_port)]
            # The harness appends to its log; a kept log directory must not mix two runs.
            self.log.unlink(missing_ok=True)
            operator = OperatorProcess(
                self.cluster.kubeconfig, self.moto.url, self.log, *extra, resync_scale=self.resync_scale
            )
            operator.env = {**operator.env, **_operator_env(self.operator_src)}
            self.operator = stack.enter_context(operator)
            self.watcher = stack.enter_context(ObjectWatcher(access.url, access.ssl_context()))
            yield self

    @property
    def pid(self) -> int:
        assert self.operator is not None and self.operator.process is not None
        return self.operator.process.pid

    def apply(self, kind: str, name: str, spec: dict[str, Any]) -> None:
        assert self.cluster is not None
        self.cluster.apply(kind, name, spec)

    def delete(self, kind: str, name: str) -> None:
        assert self.cluster is not None
        self.cluster.delete(kind, name)

    def gone(self, kind: str, name: str) -> bool:
        """Whether the object is gone from the API server (its finalizer removed, its AWS side deleted)."""
        assert self.cluster is not None
        return self.cluster.get(kind, name) is None

    def list_objects(self, kind: str) -> list[dict[str, Any]]:
        assert self.cluster is not None
        items: list[dict[str, Any]] = self.cluster.request("GET", self.cluster.path(kind)).get("items") or []
        return items

    def api_requests(self) -> Counter[str]:
        """The operator's requests to the API server so far, by verb (`watch` counts each watch opened:
        the first of each kind and every restart), from the API server's audit log."""
        counts: Counter[str] = Counter()
        if self.audit_log is None or not self.audit_log.exists():
            return counts
        with self.audit_log.open(encoding="utf-8") as log:
            for line in log:
                event = json.loads(line)
                if (event.get("user") or {}).get("username") == OPERATOR_USER:
                    counts[str(event.get("verb"))] += 1
        return counts

    def kill_operator(self) -> None:
        """SIGKILL: nothing of a graceful stop is measured, and kopf waits seconds for its timers."""
        if self.operator is not None:
            self.operator.kill()

    def log_lines(self, text: str) -> int:
        """How many lines of the operator's log so far contain `text`."""
        if not self.log.exists():
            return 0
        with self.log.open(encoding="utf-8", errors="replace") as log:
            return sum(1 for line in log if text in line)


def _operator_env(operator_src: Path | None) -> dict[str, str]:
    """What the operator's environment gets on top of the harness's own (which sets KUBECONFIG)."""
    path = subprocess_env()["PYTHONPATH"]
    if operator_src is not None:
        # A patched copy of operator/ first on the path: measure a proposed change before it is applied.
        path = os.pathsep.join([str(operator_src), path])
    return {**aws_environment(), "PYTHONPATH": path}


def _busy_jiffies() -> int:
    """CPU time all processes of the machine have used (the first line of /proc/stat), in clock ticks."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq + steal


def _own_jiffies() -> int:
    """CPU time of this process and of its children that have been waited for (moto, the operators)."""
    with open("/proc/self/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15])


@dataclass
class MachineLoad:
    """How much of the machine others used while the bench ran: its figures are only as good as that."""

    started_busy: int = 0
    started_own: int = 0
    started_at: float = 0.0

    def start(self) -> None:
        self.started_busy, self.started_own = _busy_jiffies(), _own_jiffies()
        self.started_at = time.monotonic()

    def finish(self) -> dict[str, float]:
        """Call after every child has exited: a child's CPU counts as the bench's once it is reaped."""
        wall = time.monotonic() - self.started_at
        busy = (_busy_jiffies() - self.started_busy) / CLOCK_TICKS
        own = (_own_jiffies() - self.started_own) / CLOCK_TICKS
        cpus = len(os.sched_getaffinity(0))
        return {
            "wall_seconds": round(wall, 1),
            "bench_cpu_seconds": round(own, 1),
            "other_cpu_seconds": round(max(0.0, busy - own), 1),
            "other_cpu_share": round(max(0.0, busy - own) / (wall * cpus), 3) if wall else 0.0,
        }
