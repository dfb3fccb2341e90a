"""`trailkeeper sandbox` (what `make run` runs), and kubectl driving it as a user would: the kubectl built
with the API server, validation on."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cluster import eventually
from support.moto_server import free_port
from trailkeeper.localkube.tools import find_tools

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).parent.parent
KUBECTL = str(find_tools().kubectl)


def sandbox_command(tmp_path: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "trailkeeper",
        "sandbox",
        "--port",
        str(free_port()),
        "--aws-port",
        str(free_port()),
        "--kubeconfig",
        str(tmp_path / "kubeconfig"),
        *extra,
    ]


def test_sandbox_applies_the_examples_and_they_reach_ready(tmp_path: Path) -> None:
    done = subprocess.run(
        sandbox_command(tmp_path, "--exit-when-ready"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Applied 4 objects from examples/ with kubectl" in out
    for name in (
        "Trail default/audit:",
        "Trail default/audit-basic:",
        "Trail default/central-audit:",
        "LogRetention default/audit-retention:",
    ):
        line = next(line for line in out.splitlines() if name in line)
        assert ": True Reconciled" in line, line
    assert f"export KUBECONFIG={tmp_path / 'kubeconfig'} PATH=" in out
    assert "Traceback" not in done.stderr
    for line in readme_transcript():
        assert line in out.splitlines(), f"the README shows a line `make run` no longer prints: {line!r}"


def readme_transcript() -> list[str]:
    """The stable lines of the README's `make run` output: not those naming ports or paths of one run,
    kopf's retry line (timing) or the last line (this test stops once everything is Ready)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("Its output (after the tools are built):\n\n```text\n", 1)[1].split("```", 1)[0]
    unstable = ("127.0.0.1", "export KUBECONFIG", "failed temporarily", "Running; Ctrl-C")
    lines = [line for line in block.splitlines() if line.strip() and not any(u in line for u in unstable)]
    assert len(lines) > 15
    return lines


@pytest.fixture
def running_sandbox(tmp_path: Path) -> Iterator[dict[str, str]]:
    log = (tmp_path / "sandbox.log").open("w")
    process = subprocess.Popen(
        sandbox_command(tmp_path, "--no-examples"), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        eventually(
            lambda: "Running; Ctrl-C stops it." in (tmp_path / "sandbox.log").read_text(),
            timeout=60,
            what="the sandbox coming up",
        )
        yield {**os.environ, "KUBECONFIG": str(tmp_path / "kubeconfig")}
    finally:
        process.terminate()
        process.wait(20)
        log.close()


def kubectl(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [KUBECTL, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


MANIFEST = """\
apiVersion: trailkeeper.io/v1alpha1
kind: Trail
metadata: {name: from-kubectl}
spec:
  regions: [us-east-1, eu-west-1]
  destination: {bucket: "kubectl-{region}"}
  deletionPolicy: Delete
---
apiVersion: trailkeeper.io/v1alpha1
kind: LogRetention
metadata: {name: from-kubectl}
spec:
  trailRef: {name: from-kubectl}
  expirationDays: 365
"""


def test_kubectl_apply_get_describe_delete(running_sandbox: dict[str, str]) -> None:
    env = running_sandbox
    applied = kubectl(env, "apply", "-f", "-", stdin=MANIFEST)
    assert "trail.trailkeeper.io/from-kubectl created" in applied

    def ready_row() -> str | None:
        rows = kubectl(env, "get", "trails").splitlines()
        row = next((r for r in rows if r.startswith("from-kubectl")), "")
        return row if " True " in row else None

    row = eventually(ready_row, timeout=30, what="READY True in kubectl get trails")
    header = kubectl(env, "get", "trl").splitlines()[0].split()
    assert header == ["NAME", "REGIONS", "LOGGING", "DRIFT", "READY", "AGE"]
    assert '["us-east-1","eu-west-1"]' in row and "true" in row
    eventually(
        lambda: " True " in kubectl(env, "get", "lret", "from-kubectl"),
        timeout=30,
        what="the LogRetention Ready",
    )
    retention_header = kubectl(env, "get", "logretentions").splitlines()[0].split()
    assert retention_header == ["NAME", "BUCKET", "EXPIRE", "DRIFT", "READY", "AGE"]
    assert "365" in kubectl(env, "get", "logretentions")
    described = kubectl(env, "describe", "trail", "from-kubectl")
    assert "2 of 2 trails logging" in described
    assert "arn:aws:cloudtrail:eu-west-1:123456789012:trail/from-kubectl" in described
    category = kubectl(env, "get", "trailkeeper")
    assert "trail.trailkeeper.io/from-kubectl" in category
    started = time.monotonic()
    kubectl(env, "delete", "logretention", "from-kubectl")
    kubectl(env, "delete", "trail", "from-kubectl")
    assert time.monotonic() - started < 60
    assert "from-kubectl" not in kubectl(env, "get", "trails")


def start_sandbox(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    log = (tmp_path / "sandbox.log").open("wb")
    process = subprocess.Popen(
        sandbox_command(tmp_path, *extra), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    eventually(
        lambda: "Running; Ctrl-C stops it." in (tmp_path / "sandbox.log").read_text(),
        timeout=90,
        what="the sandbox coming up",
    )
    return process, {**os.environ, "KUBECONFIG": str(tmp_path / "kubeconfig")}


def test_explain_server_side_apply_and_diff_work_against_the_examples(tmp_path: Path) -> None:
    process, env = start_sandbox(tmp_path)
    try:
        explained = kubectl(env, "explain", "trail.spec.destination")
        assert "bucket" in explained and "createBucket" in explained
        assert "DESCRIPTION" in explained and len(explained.splitlines()) > 20
        assert "region" in kubectl(env, "explain", "trail.spec.regions").lower()
        assert "trailRef" in kubectl(env, "explain", "logretention.spec")
        applied = kubectl(env, "apply", "--server-side", "-f", "examples/")
        assert applied.count("serverside-applied") == 4, applied
        done = subprocess.run(
            [KUBECTL, "diff", "-f", "examples/"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert (done.returncode, done.stdout) == (0, ""), done.stdout + done.stderr
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(20)


def test_ctrl_c_stops_the_sandbox_and_its_programs_within_two_seconds(tmp_path: Path) -> None:
    process, _ = start_sandbox(tmp_path, "--no-examples")
    children = subprocess.run(
        ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert len(children) >= 2, "etcd and kube-apiserver"
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.wait(10)
    assert time.monotonic() - started < 2.0
    assert process.returncode == 0
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_a_taken_port_fails_at_once_naming_the_port_and_the_flag(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [*sandbox_command(tmp_path), "--port", str(port)]
        started = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
    elapsed = time.monotonic() - started
    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 is taken; choose another with --port N" in done.stderr
    assert "Traceback" not in done.stderr
    assert elapsed < 5  # the check itself comes before anything starts; the rest is Python starting
