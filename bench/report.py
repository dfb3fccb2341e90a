"""The bench's results: one table for people, the same figures as JSON for tools."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.scenarios import FleetResult, LatencyResult, SweepResult, describe_trails_count


@dataclass(frozen=True)
class Target:
    metric: str
    target: str
    limit: float
    measured: float
    at_most: bool = True  # the measured figure must be <= limit (else >=)

    @property
    def met(self) -> bool:
        if math.isnan(self.measured):
            return False
        return self.measured <= self.limit if self.at_most else self.measured >= self.limit


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _with_compliance(sweep: SweepResult) -> float:
    """The whole sweep against its minimum: the drift reads, plus the CIS-only reads when compliance
    observations fell in the window."""
    if sweep.ratio_to_minimum_with_compliance is not None:
        return sweep.ratio_to_minimum_with_compliance
    return sweep.ratio_to_minimum


def _averaged(sweep: SweepResult) -> float:
    """The sweep averaged over the tag-check cadence, against the same minimum as `_with_compliance`."""
    if sweep.averaged_calls is None:
        return math.nan
    return sweep.averaged_calls / (sweep.minimum_with_compliance or sweep.minimum)


def targets(latency: LatencyResult, fleet: FleetResult) -> list[Target]:
    burst, sweep, overhead = fleet.burst, fleet.sweep, fleet.overhead
    return [
        Target("apply->Ready p50 (s)", "<= 0.5 s", 0.5, latency.all_ready_p50),
        Target(f"{burst.trails} Trails Ready (s)", "<= 300 s", 300.0, burst.trails_ready_seconds),
        Target("  vs raw boto3 (x)", "<= 1.5", 1.5, burst.ratio_to_floor),
        Target("operator peak RSS (MB)", "<= 300 MB", 300.0, burst.peak_rss_mb),
        Target("sweep calls / minimum, tag checks averaged", "<= 1.05", 1.05, _averaged(sweep)),
        Target("  this sweep (incl. CIS reads) / minimum", "<= 1.05", 1.05, _with_compliance(sweep)),
        Target("sweep mutating calls", "0", 0.0, float(sweep.mutating_calls)),
        Target("overhead ratio, drift pass in-process", "<= 1.5", 1.5, overhead.drift_pass.ratio),
        Target("overhead ratio, create pass in-process", "<= 1.5", 1.5, overhead.create_pass.ratio),
        Target("overhead ratio, operator, burst", "<= 1.5", 1.5, _nan(burst.metrics_ratio)),
        Target("overhead ratio, operator, sweep", "<= 1.5", 1.5, _nan(overhead.metrics_ratio)),
    ]


def machine() -> dict[str, Any]:
    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "?"

    return {
        "cpus": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "moto": version("moto"),
        "kopf": version("kopf"),
        "boto3": version("boto3"),
    }


def as_json(
    config_mode: str,
    latency: LatencyResult,
    fleet: FleetResult,
    started: str,
    seconds: float,
    load: dict[str, float],
) -> dict[str, Any]:
    return {
        "mode": config_mode,
        "started_at": started,
        "duration_seconds": round(seconds, 1),
        "machine": {**machine(), **load},
        "latency": dataclasses.asdict(latency),
        "burst": dataclasses.asdict(fleet.burst),
        "sweep": dataclasses.asdict(fleet.sweep),
        "overhead": dataclasses.asdict(fleet.overhead),
        "targets": [{**dataclasses.asdict(t), "met": t.met} for t in targets(latency, fleet)],
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    # NaN is not JSON; a figure that could not be measured is null.
    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    path.parent.mkdir(parents=True, exist_ok=True)  # .bench/ is made on a first quick run
    path.write_text(json.dumps(clean(document), indent=2) + "\n", encoding="utf-8")


def _s(value: float) -> str:
    return f"{value:.2f} s"


def _x(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.2f}x"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def _per_object(requests: dict[str, int], objects: int) -> str:
    total = sum(requests.values())
    return f"{total / objects:.1f}" if objects and total else "n/a"


def _verbs(requests: dict[str, int]) -> str:
    return ", ".join(f"{verb} {count}" for verb, count in sorted(requests.items())) or "no audit log"


def render(mode: str, latency: LatencyResult, fleet: FleetResult, host: dict[str, Any]) -> str:
    burst, sweep, overhead = fleet.burst, fleet.sweep, fleet.overhead
    figures = [
        [
            f"apply->Ready p50 / p95, Trail+LogRetention ({latency.runs} runs)",
            f"{_s(latency.all_ready_p50)} / {_s(latency.all_ready_p95)}",
            f"raw boto3 writes {_s(latency.floor_p50)}",
            _x(latency.ratio_p50_to_floor),
        ],
        [
            "  of which the Trail alone, p50 / p95",
            f"{_s(latency.trail_ready_p50)} / {_s(latency.trail_ready_p95)}",
            "",
            "",
        ],
        ["  first apply after start (not in p50)", _s(latency.cold_all_ready), "", ""],
        [
            f"burst of {burst.trails} Trails (+{burst.objects - burst.trails} LogRetentions) "
            f"in {burst.accounts} accounts: all Trails Ready",
            _s(burst.trails_ready_seconds),
            f"raw boto3, 16 threads {_s(burst.floor_seconds)}",
            _x(burst.ratio_to_floor),
        ],
        ["  all objects Ready", _s(burst.all_ready_seconds), "", ""],
        [
            "operator peak RSS (VmHWM)",
            f"{burst.peak_rss_mb:.0f} MB",
            f"idle {burst.idle_rss_mb:.0f} MB",
            _x(burst.peak_rss_mb / burst.idle_rss_mb if burst.idle_rss_mb else None),
        ],
        ["  LogRetention create passes retried (Trail not done)", str(burst.retention_retries), "0", ""],
        [
            "  API server requests by the operator, per object",
            _per_object(burst.api_requests, burst.objects),
            _verbs(burst.api_requests),
            "",
        ],
        ["  watches opened (first ones and restarts)", str(burst.api_requests.get("watch", 0)), "", ""],
        [
            "  operator's own histograms over the burst",
            "not served" if burst.metrics_reconciles is None else f"{burst.metrics_reconciles:.0f} passes",
            "16 at a time, 2 cores",
            _x(burst.metrics_ratio),
        ],
        [
            "first sweep after the burst: AWS calls (first CIS checks)",
            "n/a" if sweep.first_sweep_calls is None else str(sweep.first_sweep_calls),
            "",
            "",
        ],
        [
            f"steady-state drift sweep: AWS calls ({sweep.objects} objects)",
            str(sweep.calls),
            f"minimum {sweep.minimum}",
            _x(sweep.ratio_to_minimum),
        ],
        [
            f"  with {sweep.compliance_observations} compliance observation(s): CIS-only reads",
            "n/a" if sweep.compliance_only_calls is None else str(sweep.compliance_only_calls),
            "1 ACL, logging, access block per bucket",
            "",
        ],
        [
            f"  averaged over the tag checks (1 sweep in {sweep.tag_check_every} reads tags: "
            f"{sweep.first_sweep_tag_reads} in the first)",
            "n/a" if sweep.averaged_calls is None else f"{sweep.averaged_calls:.0f}",
            f"minimum {sweep.minimum_with_compliance or sweep.minimum}",
            _x(_averaged(sweep)),
        ],
        [
            "  whole sweep vs minimum incl. CIS-only reads",
            str(sweep.calls),
            f"minimum {sweep.minimum_with_compliance or sweep.minimum}",
            _x(_with_compliance(sweep)),
        ],
        [
            "  less the CIS-only reads (shared reads once)",
            "n/a" if sweep.drift_only_calls is None else str(sweep.drift_only_calls),
            f"minimum {sweep.minimum}",
            _x(sweep.drift_only_ratio_to_minimum),
        ],
        ["  mutating calls in the sweep", str(sweep.mutating_calls), "0", ""],
        [
            "  API server requests by the operator, per object",
            _per_object(sweep.api_requests, sweep.objects),
            _verbs(sweep.api_requests),
            "",
        ],
        [
            "  watches opened in the sweep",
            str(sweep.api_requests.get("watch", 0)),
            # kopf asks the API server to end each watch after 60 s (kube/process.py), and opens it again.
            f"{sweep.window_seconds / 60:.1f} renewals per watched kind",
            "",
        ],
        [
            "  DescribeTrails in the sweep",
            str(describe_trails_count(sweep)),
            f"minimum {sweep.minimum_by_operation.get('cloudtrail:DescribeTrails', 0)} "
            "(one per account and region)",
            "",
        ],
        [
            "overhead: drift pass wall / AWS time",
            f"{_s(overhead.drift_pass.wall_seconds)} / {_s(overhead.drift_pass.aws_seconds)}",
            f"{overhead.drift_pass.passes} passes, in-process",
            _x(overhead.drift_pass.ratio),
        ],
        [
            "overhead: create pass wall / AWS time",
            f"{_s(overhead.create_pass.wall_seconds)} / {_s(overhead.create_pass.aws_seconds)}",
            f"{overhead.create_pass.passes} passes, in-process",
            _x(overhead.create_pass.ratio),
        ],
        [
            "  a new account: AssumeRole and its clients (timed apart)",
            _s(overhead.account_setup_seconds),
            "",
            "",
        ],
        [
            "  drift sweep in-process vs raw boto3 minimum reads",
            _s(overhead.drift_pass.wall_seconds),
            f"raw boto3 {_s(overhead.sweep_floor_seconds)}",
            _x(overhead.drift_sweep_ratio_to_floor),
        ],
        [
            "  operator's own histograms over the sweep window",
            "not served"
            if overhead.metrics_ratio is None or overhead.metrics_seconds_per_reconcile is None
            else (
                f"{overhead.metrics_reconciles:.0f} passes, "
                f"{overhead.metrics_seconds_per_reconcile:.3f} s each"
            ),
            "16 at a time, 2 cores",
            _x(overhead.metrics_ratio),
        ],
    ]
    checks = [
        [t.metric, t.target, f"{t.measured:.2f}", "met" if t.met else "MISSED"]
        for t in targets(latency, fleet)
    ]
    compliance = sweep.compliance_observation_calls
    operations = [
        [
            op,
            str(n),
            str(sweep.minimum_by_operation.get(op, 0)),
            f"{n - sweep.minimum_by_operation.get(op, 0):+d}",
            str((sweep.compliance_observations or 0) * compliance.get(op, 0)),
            str(sweep.drift_only_by_operation.get(op, 0)) if sweep.drift_only_calls is not None else "n/a",
        ]
        for op, n in sorted(
            {**dict.fromkeys(sweep.minimum_by_operation, 0), **sweep.calls_by_operation}.items()
        )
    ]
    window = (
        f"sweep window {sweep.window_seconds:.1f} s, checks spread over {sweep.check_spread_seconds:.1f} s, "
        f"period {sweep.resync_period_seconds:.0f} s; {sweep.checked_once} objects checked once, "
        f"{sweep.checked_twice} twice "
        f"({'one clean sweep' if sweep.valid else 'the minimum counts the second checks too'})"
    )
    return "\n\n".join(
        [
            f"trailkeeper bench ({mode}) on {host['cpus']} CPUs; other processes used "
            f"{host['other_cpu_share']:.0%} of the machine meanwhile",
            _table(["figure", "measured", "baseline (same run)", "ratio"], figures),
            _table(["target", "goal", "measured", "result"], checks),
            _table(
                ["sweep calls by operation", "measured", "minimum", "excess", "compliance", "drift checks"],
                operations,
            ),
            window,
        ]
    )
