"""`trailkeeper sandbox`: an emulated Kubernetes API, a local moto AWS and the operator, in one process.

For trying trailkeeper without a cluster or an AWS account: kubectl works against the emulated API
(the kubeconfig it writes), the AWS CLI or boto3 against the moto endpoint it prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import click

from trailkeeper.api.crd import KINDS, crd
from trailkeeper.api.manifests import load_manifests
from trailkeeper.kube.config import GROUP, VERSION, OperatorConfig
from trailkeeper.kube.process import run_operator

READY_TIMEOUT = 90.0


@dataclass(frozen=True)
class SandboxOptions:
    kubeconfig: Path
    port: int
    aws_port: int
    examples: Path | None
    resync_scale: float
    exit_when_ready: bool = False


class ApiClient:
    """The few calls the sandbox makes to the emulated API (kubectl does the rest for the user)."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def create(self, path: str, body: dict[str, Any]) -> None:
        async with self.session.post(f"{self.url}{path}", json=body) as response:
            if response.status == 409:
                return  # already there: the sandbox was pointed at objects it made before
            if response.status >= 400:
                raise click.ClickException(f"POST {path}: {response.status} {await response.text()}")

    async def list(self, plural: str) -> list[dict[str, Any]]:
        async with self.session.get(f"{self.url}/apis/{GROUP}/{VERSION}/{plural}") as response:
            response.raise_for_status()
            items = (await response.json()).get("items") or []
            return [i for i in items if isinstance(i, dict)]


def _plural(kind: str) -> str:
    return next(info.plural for info in KINDS if info.kind == kind)


async def _apply_examples(api: ApiClient, directory: Path) -> list[tuple[str, str]]:
    manifests, problems = load_manifests([directory])
    for problem in problems:
        click.echo(f"skipped: {problem}", err=True)
    applied = []
    for manifest in manifests:
        namespace = manifest.namespace
        body = {**manifest.body, "metadata": {**manifest.body["metadata"], "namespace": namespace}}
        await api.create(f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{_plural(manifest.kind)}", body)
        applied.append((manifest.kind, manifest.name))
    return applied


def _condition(item: dict[str, Any], kind: str) -> dict[str, Any]:
    for condition in (item.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return {}


async def _wait_and_report(api: ApiClient, expected: int) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        items = await api.list("trails") + await api.list("logretentions")
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


async def _serve(options: SandboxOptions) -> int:
    from trailkeeper.kube.emulator import SandboxAPI, write_kubeconfig

    aws_url = f"http://127.0.0.1:{options.aws_port}"
    # moto accepts any credentials; set harmless ones so nothing reaches for real ones.
    for key, value in (
        ("AWS_ACCESS_KEY_ID", "sandbox"),
        ("AWS_SECRET_ACCESS_KEY", "sandbox"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ[key] = value
    moto = _start_moto(options.aws_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        async with SandboxAPI(port=options.port) as server, aiohttp.ClientSession() as http:
            api = ApiClient(http, server.url)
            for info in KINDS:
                await api.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd(info))
            options.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
            write_kubeconfig(options.kubeconfig, server.url)
            from trailkeeper.cli.operate import make_runtime

            config = OperatorConfig(peering=None, resync_scale=options.resync_scale)
            runtime = make_runtime(config, endpoint_url=aws_url, region="us-east-1", rate_limited=False)
            ready = asyncio.Event()
            operator = asyncio.create_task(
                run_operator(runtime, server_url=server.url, stop_flag=stop, ready_flag=ready)
            )
            await asyncio.wait_for(ready.wait(), timeout=30)
            click.echo(f"Kubernetes API (emulated): {server.url}")
            click.echo(f"AWS (moto):                {aws_url}")
            applied: list[tuple[str, str]] = []
            if options.examples is not None and options.examples.is_dir():
                applied = await _apply_examples(api, options.examples)
                click.echo(f"Applied {len(applied)} objects from {options.examples}/; reconciling…")
            all_ready = await _wait_and_report(api, len(applied)) if applied else True
            kubeconfig = options.kubeconfig.resolve()
            click.echo(
                "\nLook at it with kubectl (the emulated API serves no OpenAPI, hence --validate=false):"
            )
            click.echo(f"  export KUBECONFIG={kubeconfig}")
            click.echo("  kubectl get trails,logretentions")
            click.echo("  kubectl describe trail audit")
            click.echo("  kubectl apply --validate=false -f examples/")
            click.echo("And at AWS (moto takes any credentials, but boto3 wants some):")
            click.echo(
                "  export AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox AWS_REGION=us-east-1"
            )
            click.echo(f"  aws --endpoint-url {aws_url} cloudtrail describe-trails")
            click.echo(f"  {_command()} diff -f examples/ --aws-endpoint-url {aws_url}")
            if options.exit_when_ready:
                stop.set()
            else:
                click.echo("\nRunning; Ctrl-C stops it.")
            await operator
            return 0 if all_ready else 1
    finally:
        moto.stop()


def run_sandbox(options: SandboxOptions) -> int:
    try:
        return asyncio.run(_serve(options))
    except KeyboardInterrupt:
        return 0
    finally:
        sys.stdout.flush()


def _command() -> str:
    """How to call trailkeeper again from this shell: as it was called (`.venv/bin/trailkeeper` after
    `make run`), or by the name on PATH."""
    called = Path(sys.argv[0])
    return str(called) if called.name == "trailkeeper" and called.exists() else "trailkeeper"
