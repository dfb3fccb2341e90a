"""`python -m bench.dependents [--runs N] [--output FILE]`: how long a LogRetention lags its Trail.

"LogRetention Ready after its Trail Ready", in both orders of apply: the Trail and then its LogRetention
at once (as `kubectl apply -f dir/` does), and the LogRetention first, applied until it reports
TrailNotFound, and then its Trail. The operator runs at production resync (`--resync-scale 1`): only the
notification of the waiting LogRetentions makes it fast, not a quick timer. Runs against the same API
server and moto as the end-to-end tests; goal: p50 <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.paths import aws_environment, use_test_support

ORDERS = ("trail-first", "retention-first")


def _ready(cluster: Any, kind: str, name: str) -> bool:
    conditions = cluster.status(kind, name).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _reason(cluster: Any, kind: str, name: str) -> str | None:
    conditions = cluster.status(kind, name).get("conditions") or []
    return next((c.get("reason") for c in conditions if c["type"] == "Ready"), None)


def one_run(cluster: Any, order: str, run: int, timeout: float = 60.0) -> float:
    """Seconds from the Trail's Ready to its LogRetention's (polled every 20 ms)."""
    trail, retention = f"dep-{order}-{run:02d}", f"dep-{order}-{run:02d}-keep"
    trail_spec = {"regions": ["us-east-1"], "destination": {"bucket": f"bench-{trail}"}}
    retention_spec = {"trailRef": {"name": trail}, "expirationDays": 400}
    if order == "trail-first":
        cluster.apply("Trail", trail, trail_spec)
        cluster.apply("LogRetention", retention, retention_spec)
    else:
        cluster.apply("LogRetention", retention, retention_spec)
        deadline = time.monotonic() + timeout
        while _reason(cluster, "LogRetention", retention) != "TrailNotFound":
            if time.monotonic() > deadline:
                raise RuntimeError(f"{retention}: no TrailNotFound within {timeout} s")
            time.sleep(0.05)
        cluster.apply("Trail", trail, trail_spec)
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < 2:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{order} run {run}: not Ready within {timeout} s ({seen})")
        for kind, name in (("Trail", trail), ("LogRetention", retention)):
            if kind not in seen and _ready(cluster, kind, name):
                seen[kind] = time.monotonic()
        time.sleep(0.02)
    return seen["LogRetention"] - seen["Trail"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dependents", description=__doc__)
    parser.add_argument("--runs", type=int, default=20, help="runs per order")
    parser.add_argument("--output", type=Path, default=Path(".bench") / "dependents.json")
    args = parser.parse_args(argv)
    os.environ.update(aws_environment())
    use_test_support()
    from support.cluster import Cluster, OperatorProcess, kube_access
    from support.moto_server import MotoServer

    lags: dict[str, list[float]] = {order: [] for order in ORDERS}
    with tempfile.TemporaryDirectory(prefix="trailkeeper-bench-") as scratch:
        work = Path(scratch)
        with kube_access(work) as access, Cluster(access) as cluster, MotoServer() as moto:
            operator = OperatorProcess(cluster.kubeconfig, moto.url, work / "operator.log", resync_scale=1.0)
            with operator:
                for run in range(args.runs):
                    for order in ORDERS:
                        lags[order].append(one_run(cluster, order, run))
    document: dict[str, Any] = {"runs": args.runs, "orders": {}}
    for order, values in lags.items():
        summary = {"p50": statistics.median(values), "p95": percentile(values, 95), "max": max(values)}
        document["orders"][order] = {**summary, "lags": values}
        print(
            f"LogRetention Ready after its Trail Ready, {order:15s} over {len(values)} runs: "
            f"p50 {summary['p50']:.2f} s, p95 {summary['p95']:.2f} s, max {summary['max']:.2f} s"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
