"""CloudTrail's request quotas in front of moto (tests/support/quota.py), and trailkeeper behind it:
`apply` and `diff` over several Trails finish, and no throttle reaches their output."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.faults import FaultInjector, moto_app
from support.limits import LimitsFront
from support.moto_server import InProcessMotoServer
from support.quota import QuotaFront, category


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def request(operation: str, account: str = "111111111111", region: str = "us-east-1") -> dict[str, Any]:
    return {
        "PATH_INFO": "/",
        "HTTP_AUTHORIZATION": (
            f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/{region}/cloudtrail/aws4_request"
        ),
        "HTTP_X_AMZ_TARGET": f"com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.{operation}",
        "HTTP_X_MOTO_ACCOUNT_ID": account,
        "CONTENT_TYPE": "application/x-amz-json-1.1",
    }


def passing_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [])
    return [b"{}"]


def statuses(front: QuotaFront, environ: dict[str, Any], times: int) -> list[str]:
    found: list[str] = []
    for _ in range(times):
        b"".join(front(dict(environ), lambda status, headers, exc_info=None: found.append(status)))
    return found


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ("DescribeTrails", "read"),
        ("GetEventSelectors", "read"),
        ("ListTags", "read"),
        ("LookupEvents", "lookupevents"),
        ("CreateTrail", "write"),
        ("PutEventSelectors", "write"),
        ("AddTags", "write"),
        ("StartLogging", "write"),
    ],
)
def test_each_operation_counts_against_its_documented_category(operation: str, expected: str) -> None:
    assert category(operation) == expected


def test_reads_beyond_ten_a_second_are_throttled_and_refill_with_time() -> None:
    clock = Clock()
    front = QuotaFront(passing_app, clock=clock)
    answers = statuses(front, request("DescribeTrails"), 12)
    assert answers.count("200 OK") == 10 and len(front.throttled) == 2
    # Every get/describe/list of the account and region shares the 10.
    assert statuses(front, request("GetTrailStatus"), 1) == ["400 Bad Request"]
    clock.now = 0.5
    assert statuses(front, request("GetEventSelectors"), 6).count("200 OK") == 5


def test_writes_are_one_a_second_and_separate_from_reads() -> None:
    clock = Clock()
    front = QuotaFront(passing_app, clock=clock)
    assert statuses(front, request("CreateTrail"), 2) == ["200 OK", "400 Bad Request"]
    assert statuses(front, request("DescribeTrails"), 1) == ["200 OK"]
    clock.now = 1.0
    assert statuses(front, request("StartLogging"), 1) == ["200 OK"]


def test_other_accounts_and_regions_have_their_own_quota() -> None:
    front = QuotaFront(passing_app, clock=Clock())
    assert statuses(front, request("CreateTrail"), 1) == ["200 OK"]
    assert statuses(front, request("CreateTrail", account="222222222222"), 1) == ["200 OK"]
    assert statuses(front, request("CreateTrail", region="eu-west-1"), 1) == ["200 OK"]
    assert statuses(front, request("CreateTrail"), 1) == ["400 Bad Request"]


# -- trailkeeper behind the quota front ----------------------------------------------------------------

REGIONS = ["us-east-1", "eu-west-1"]
TRAILS = 4


@pytest.fixture
def quota_moto(aws_test_environment: None) -> Iterator[tuple[InProcessMotoServer, QuotaFront]]:
    front = QuotaFront(LimitsFront(moto_app()))
    with InProcessMotoServer(FaultInjector(front)) as server:
        yield server, front


def run_cli(command: str, manifests: Path, endpoint: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint}
    return subprocess.run(
        [sys.executable, "-m", "trailkeeper", command, "-f", str(manifests)],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_apply_and_diff_over_several_trails_finish_behind_the_quota_and_show_no_throttle(
    quota_moto: tuple[InProcessMotoServer, QuotaFront], tmp_path: Path
) -> None:
    server, front = quota_moto
    manifests = tmp_path / "trails.yaml"
    manifests.write_text(
        yaml.safe_dump_all(
            {
                "apiVersion": "trailkeeper.io/v1alpha1",
                "kind": "Trail",
                "metadata": {"name": f"quota-{i}", "namespace": "default"},
                "spec": {"regions": REGIONS, "destination": {"bucket": "quota-shared-{region}"}},
            }
            for i in range(TRAILS)
        ),
        encoding="utf-8",
    )
    applied = run_cli("apply", manifests, server.url)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    diffed = run_cli("diff", manifests, server.url)
    assert diffed.returncode == 0, diffed.stdout + diffed.stderr
    for result in (applied, diffed):
        output = result.stdout + result.stderr
        assert "Throttl" not in output and "Rate exceeded" not in output
    # The front saw every CloudTrail call: each trail made, in both regions.
    assert front.passed >= TRAILS * len(REGIONS) * 3
