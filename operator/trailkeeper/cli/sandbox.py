"""`trailkeeper sandbox`: a real local Kubernetes API server, a local moto AWS and the operator.

etcd and kube-apiserver come from `make kube-tools` (see `trailkeeper.localkube`); the examples are
applied with the same kubectl, validation on, exactly as a user would apply them. kubectl works against
the kubeconfig it writes, the AWS CLI or boto3 against the moto endpoint it prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from trailkeeper.api.crd import KINDS, crd
from trailkeeper.kube.config import GROUP, VERSION, OperatorConfig
from trailkeeper.kube.process import run_operator
from trailkeeper.localkube.client import KubeHttp
from trailkeeper.localkube.control_plane import (
    ControlPlane,
    ControlPlaneError,
    LocalControlPlane,
    check_port_free,
)
from trailkeeper.localkube.tools import KUBE_VERSION, KubeToolsMissing, find_tools

READY_TIMEOUT = 90.0


@dataclass(frozen=True)
class SandboxOptions:
    kubeconfig: Path
    port: int
    aws_port: int
    examples: Path | None
    resync_scale: float
    exit_when_ready: bool = False


def _condition(item: dict[str, Any], kind: str) -> dict[str, Any]:
    for condition in (item.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return {}


def _list(api: KubeHttp, plural: str) -> list[dict[str, Any]]:
    items = api.request("GET", f"/apis/{GROUP}/{VERSION}/{plural}").get("items") or []
    return [i for i in items if isinstance(i, dict)]


async def _wait_and_report(api: KubeHttp, expected: int) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        items = await asyncio.to_thread(lambda: _list(api, "trails") + _list(api, "logretentions"))
        if len(items) >= expected and all(_condition(i, "Ready").get("status") == "True" for i in items):
            break
        await asyncio.sleep(0.5)
    all_ready = True
    for item in items:
        ready = _condition(item, "Ready")
        all_ready &= ready.get("status") == "True"
        name = f"{item.get('kind', '?')} {item['metadata'].get('namespace')}/{item['metadata']['name']}"
        click.echo(
            f"  {name}: {ready.get('status', 'Unknown')} {ready.get('reason', '')}"
            f" — {ready.get('message', '')}"
        )
        for region in (item.get("status") or {}).get("regions") or []:
            click.echo(
                f"      {region.get('region')}: {region.get('trailArn')} logging={region.get('isLogging')}"
            )
        for bucket in (item.get("status") or {}).get("buckets") or []:
            click.echo(f"      {bucket.get('bucket')} ({bucket.get('region')}): rule {bucket.get('ruleId')}")
    return all_ready


def _start_moto(port: int) -> Any:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as error:  # the sandbox needs the test backends, not the operator
        raise click.ClickException("the sandbox needs moto: pip install 'trailkeeper[sandbox]'") from error
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server


def _install_crds(api: KubeHttp) -> None:
    for info in KINDS:
        api.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd(info))
    deadline = time.monotonic() + 30
    for info in KINDS:
        # Established, then its storage answers (a new CRD's first answers are 429 for a moment).
        while True:
            answer = api.request("GET", f"/apis/{GROUP}/{VERSION}/{info.plural}", ok_statuses=(404, 429))
            if answer is not None and answer.get("kind", "").endswith("List"):
                break
            if time.monotonic() > deadline:
                raise click.ClickException(f"the API server did not serve {info.plural} within 30 s")
            time.sleep(0.2)


def _apply_examples(plane: ControlPlane, kubeconfig: Path, directory: Path) -> int:
    """`kubectl apply -f <dir>`, as a user runs it (validation on); the number of objects applied."""
    done = subprocess.run(
        [str(plane.tools.kubectl), "--kubeconfig", str(kubeconfig), "apply", "-f", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    for line in done.stderr.splitlines():
        click.echo(f"kubectl: {line}", err=True)
    if done.returncode != 0:
        raise click.ClickException(f"kubectl apply -f {directory} failed (exit {done.returncode})")
    return sum(1 for line in done.stdout.splitlines() if line.strip())


def _shown(path: Path) -> str:
    """A path as a user at this shell would type it: relative to here, or under $HOME, else absolute."""
    resolved = path.resolve()
    for base, shown in ((Path.cwd(), ""), (Path.home(), "$HOME/")):
        with contextlib.suppress(ValueError):
            relative = resolved.relative_to(base)
            return f"{shown}{relative}"
    return str(resolved)


def _print_how_to(kubeconfig: Path, plane: ControlPlane, aws_url: str) -> None:
    kubectl_dir = _shown(plane.tools.kubectl.parent)
    click.echo("\nLook at it with kubectl (the one built with the API server, or one a minor version off):")
    click.echo(f'  export KUBECONFIG={_shown(kubeconfig)} PATH="{kubectl_dir}:$PATH"')
    click.echo("  kubectl get trails,logretentions -o wide")
    click.echo("  kubectl explain trail.spec.destination")
    click.echo("  kubectl apply --server-side -f examples/")
    click.echo("  kubectl diff -f examples/")
    click.echo("And at AWS (moto takes any credentials, but boto3 wants some):")
    click.echo("  export AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox AWS_REGION=us-east-1")
    click.echo(f"  aws --endpoint-url {aws_url} cloudtrail describe-trails")
    click.echo(f"  {_shown(Path(_command()))} diff -f examples/ --aws-endpoint-url {aws_url}")


async def _operate(options: SandboxOptions, plane: ControlPlane, aws_url: str) -> int:
    api = plane.admin()
    await asyncio.to_thread(_install_crds, api)
    kubeconfig = options.kubeconfig
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    kubeconfig.write_bytes(plane.kubeconfig.read_bytes())
    kubeconfig.chmod(0o600)
    click.echo(f"Kubernetes API:            {plane.url} (kube-apiserver {KUBE_VERSION})")
    click.echo(f"AWS (moto):                {aws_url}")
    applied = 0
    if options.examples is not None and options.examples.is_dir():
        applied = await asyncio.to_thread(_apply_examples, plane, kubeconfig, options.examples)
        click.echo(f"Applied {applied} objects from {options.examples}/ with kubectl; reconciling…")
    from trailkeeper.cli.operate import make_runtime

    # The operator logs in as kubectl does: through the kubeconfig.
    os.environ["KUBECONFIG"] = str(kubeconfig.resolve())
    config = OperatorConfig(peering=None, resync_scale=options.resync_scale)
    runtime = make_runtime(config, endpoint_url=aws_url, region="us-east-1", rate_limited=False)
    started = asyncio.Event()
    operator = asyncio.create_task(run_operator(runtime, ready_flag=started))
    await asyncio.wait({operator, asyncio.create_task(started.wait())}, return_when=asyncio.FIRST_COMPLETED)
    # kopf takes SIGINT/SIGTERM for a graceful stop that gives each task up to 5 s; the sandbox takes
    # them back and cancels the operator instead, so Ctrl-C ends everything within a second or two.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    all_ready = await _wait_and_report(api, applied) if applied else True
    _print_how_to(kubeconfig, plane, aws_url)
    if not options.exit_when_ready:
        click.echo("\nRunning; Ctrl-C stops it.")
        await asyncio.wait({operator, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
    operator.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await operator
    return 0 if all_ready else 1


def run_sandbox(options: SandboxOptions) -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # a log file or a pipe sees each line as it comes
    try:
        check_port_free(options.port, "--port")
        check_port_free(options.aws_port, "--aws-port")
        tools = find_tools()
    except (ControlPlaneError, KubeToolsMissing) as error:
        raise click.ClickException(str(error)) from None
    aws_url = f"http://127.0.0.1:{options.aws_port}"
    # moto accepts any credentials; set harmless ones so nothing reaches for real ones.
    for key, value in (
        ("AWS_ACCESS_KEY_ID", "sandbox"),
        ("AWS_SECRET_ACCESS_KEY", "sandbox"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ[key] = value
    moto = _start_moto(options.aws_port)
    workdir = options.kubeconfig.parent / "control-plane"
    try:
        with LocalControlPlane(workdir, tools=tools, port=options.port, progress=click.echo) as plane:
            return asyncio.run(_operate(options, plane, aws_url))
    except ControlPlaneError as error:
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:
        return 0
    finally:
        moto.stop()
        sys.stdout.flush()


def _command() -> str:
    """How to call trailkeeper again from this shell: as it was called (`.venv/bin/trailkeeper` after
    `make run`), or by the name on PATH."""
    called = Path(sys.argv[0])
    return str(called) if called.name == "trailkeeper" and called.exists() else "trailkeeper"
