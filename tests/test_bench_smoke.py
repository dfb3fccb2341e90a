"""The quick benchmark runs end to end and writes every figure (`make bench`; skipped by `make test`).

Only the presence and the kind of each figure are checked: speed and memory are what the bench reports,
never what a test asserts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from numbers import Real
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent

FIGURES: dict[str, tuple[str, ...]] = {
    "latency": (
        "runs",
        "trail_ready_p50",
        "trail_ready_p95",
        "all_ready_p50",
        "all_ready_p95",
        "cold_all_ready",
        "floor_p50",
        "ratio_p50_to_floor",
        "calls_per_apply",
        "mutating_calls_per_apply",
    ),
    "burst": (
        "trails",
        "objects",
        "accounts",
        "trails_ready_seconds",
        "all_ready_seconds",
        "floor_seconds",
        "ratio_to_floor",
        "peak_rss_mb",
        "idle_rss_mb",
        "operator_cpu_seconds",
        "calls",
        "mutating_calls",
    ),
    "sweep": (
        "objects",
        "resync_period_seconds",
        "window_seconds",
        "checked_once",
        "checked_twice",
        "calls",
        "minimum",
        "ratio_to_minimum",
        "mutating_calls",
    ),
    "overhead": ("sweep_floor_seconds", "drift_sweep_ratio_to_floor", "create_ratio_to_floor"),
}
PASS_FIGURES = ("passes", "wall_seconds", "aws_seconds", "ratio", "calls", "mutating_calls")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    output = tmp_path_factory.mktemp("bench") / "results.json"
    subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output)],
        cwd=REPO,
        check=True,
        timeout=600,
    )
    document: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    return document


def _number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def test_quick_bench_writes_every_figure_as_a_number(results: dict[str, Any]) -> None:
    assert results["mode"] == "quick"
    missing = [
        f"{section}.{name}"
        for section, names in FIGURES.items()
        for name in names
        if not _number(results[section].get(name))
    ]
    assert missing == []
    for kind in ("drift_pass", "create_pass"):
        assert all(_number(results["overhead"][kind][name]) for name in PASS_FIGURES), kind


def test_quick_bench_counts_sweep_calls_by_operation_against_the_minimum(results: dict[str, Any]) -> None:
    sweep = results["sweep"]
    assert set(sweep["minimum_by_operation"]) == {
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetTrailStatus",
        "cloudtrail:GetEventSelectors",
        "s3:GetBucketPolicy",
        "s3:GetBucketLifecycleConfiguration",
        "sns:GetTopicAttributes",
        "sns:ListSubscriptionsByTopic",
    }
    assert sum(sweep["calls_by_operation"].values()) == sweep["calls"]
    # An organization: one Trail per account (AWS allows 5 per region each), at least one DescribeTrails
    # per account; the central buckets' policies are read by their archive Trails only, one LogRetention
    # on each (a member reads nothing of another account's bucket).
    burst = results["burst"]
    assert burst["accounts"] == burst["trails"]
    assert sweep["minimum_by_operation"]["cloudtrail:DescribeTrails"] > burst["accounts"]
    assert sweep["minimum_by_operation"]["s3:GetBucketPolicy"] == burst["objects"] - burst["trails"]
    assert isinstance(sweep["valid"], bool)


def test_quick_bench_averages_the_sweep_over_the_tag_checks(results: dict[str, Any]) -> None:
    sweep = results["sweep"]
    tag_reads = ("cloudtrail:ListTags", "sns:ListTagsForResource")
    # The first sweep after the burst reads every trail-region's and topic's tags; the steady one keeps them.
    assert sweep["first_sweep_tag_reads"] > 0
    assert sweep["tag_check_every"] >= 1
    own = sum(sweep["calls_by_operation"].get(op, 0) for op in tag_reads)
    expected = sweep["calls"] - own + sweep["first_sweep_tag_reads"] / sweep["tag_check_every"]
    assert sweep["averaged_calls"] == pytest.approx(expected)


def test_quick_bench_judges_every_target_and_describes_the_machine(results: dict[str, Any]) -> None:
    assert {t["metric"] for t in results["targets"]} >= {
        "apply->Ready p50 (s)",
        "operator peak RSS (MB)",
        "  vs raw boto3 (x)",
        "sweep calls / minimum, tag checks averaged",
        "sweep mutating calls",
    }
    assert all(isinstance(t["met"], bool) for t in results["targets"])
    assert results["machine"]["cpus"] >= 1
    assert _number(results["machine"]["other_cpu_share"])
