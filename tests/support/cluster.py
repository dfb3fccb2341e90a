"""End-to-end harness: the emulated Kubernetes API in a background thread, the operator as a subprocess.

The operator is the real `trailkeeper run` process (kopf), talking over HTTP to the emulated API and to
moto, exactly as it would to a cluster and AWS. Tests drive the API with plain HTTP like kubectl does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import requests

from trailkeeper.api.crd import KINDS, crd
from trailkeeper.kube.emulator import KubeEmulator, SandboxAPI, write_kubeconfig

T = TypeVar("T")
GROUP_PATH = "/apis/trailkeeper.io/v1alpha1"
PLURALS = {"Trail": "trails", "LogRetention": "logretentions"}


def eventually(
    check: Callable[[], T | None],
    *,
    timeout: float = 20.0,
    interval: float = 0.1,
    what: str = "the condition",
) -> T:
    """Poll until `check` returns something truthy, and return it."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} did not happen within {timeout} s (last: {last!r})")


class EmulatedCluster:
    """The emulated API serving on a free port, with trailkeeper's CRDs applied."""

    def __init__(self, kubeconfig: Path, *, request_history: int | None = None) -> None:
        self.kubeconfig = kubeconfig
        # How many requests the emulator remembers (None: kmock's default). kmock matches every request
        # against every reaction by filtering the remembered ones, so a long history slows each request.
        self.request_history = request_history
        self.api: SandboxAPI | None = None
        self.url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="emulated-api", daemon=True)
        self.http = requests.Session()

    def _run(self) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            history = self.request_history
            emulator = KubeEmulator(request_history=history) if history is not None else None
            async with SandboxAPI(emulator=emulator) as api:
                self.api = api
                self.url = api.url
                self._ready.set()
                await self._stop.wait()

        asyncio.run(serve())

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the emulated API did not start")
        write_kubeconfig(self.kubeconfig, self.url)
        for info in KINDS:
            self.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd(info))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self.http.close()

    def request(self, method: str, path: str, body: Any = None, *, patch: bool = False) -> Any:
        headers = {"Content-Type": "application/merge-patch+json" if patch else "application/json"}
        response = self.http.request(method, self.url + path, json=body, headers=headers, timeout=10)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    # -- objects of our kinds ------------------------------------------------------------------------

    def path(self, kind: str, name: str | None = None, namespace: str = "default") -> str:
        base = f"{GROUP_PATH}/namespaces/{namespace}/{PLURALS[kind]}"
        return f"{base}/{name}" if name else base

    def apply(self, kind: str, name: str, spec: dict[str, Any], namespace: str = "default") -> None:
        body = {
            "apiVersion": "trailkeeper.io/v1alpha1",
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
        self.request("POST", self.path(kind, namespace=namespace), body)

    def patch_spec(self, kind: str, name: str, spec: dict[str, Any], namespace: str = "default") -> None:
        self.request("PATCH", self.path(kind, name, namespace), {"spec": spec}, patch=True)

    def get(self, kind: str, name: str, namespace: str = "default") -> dict[str, Any] | None:
        response = self.http.get(self.url + self.path(kind, name, namespace), timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def delete(self, kind: str, name: str, namespace: str = "default") -> None:
        self.request("DELETE", self.path(kind, name, namespace))

    def status(self, kind: str, name: str, namespace: str = "default") -> dict[str, Any]:
        obj = self.get(kind, name, namespace) or {}
        return dict(obj.get("status") or {})

    def condition(self, kind: str, name: str, type_: str, namespace: str = "default") -> dict[str, Any]:
        for condition in self.status(kind, name, namespace).get("conditions") or []:
            if condition.get("type") == type_:
                return dict(condition)
        return {}

    def wait_condition(
        self,
        kind: str,
        name: str,
        type_: str,
        status: str,
        *,
        reason: str | None = None,
        timeout: float = 20.0,
        namespace: str = "default",
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            found = self.condition(kind, name, type_, namespace)
            if found.get("status") == status and (reason is None or found.get("reason") == reason):
                return found
            return None

        return eventually(check, timeout=timeout, what=f"{kind} {name} {type_}={status} {reason or ''}")

    def events(self, name: str, namespace: str = "default") -> list[dict[str, Any]]:
        items = self.request("GET", f"/api/v1/namespaces/{namespace}/events").get("items") or []
        return [e for e in items if (e.get("involvedObject") or {}).get("name") == name]


class OperatorProcess:
    """`trailkeeper run` in a subprocess against the emulated API and a moto endpoint."""

    def __init__(
        self,
        kubeconfig: Path,
        aws_endpoint: str,
        log: Path,
        *extra: str,
        resync_scale: float = 0.05,
        peering: str | None = None,
    ) -> None:
        self.args = [
            sys.executable,
            "-m",
            "trailkeeper",
            "run",
            *(["--peering", peering] if peering else ["--standalone"]),
            "-A",
            "--resync-scale",
            str(resync_scale),
            "--aws-endpoint-url",
            aws_endpoint,
            "--aws-region",
            "us-east-1",
            "--log-level",
            "INFO",
            "--no-rate-limit",
            # CIS-3.1 coverage of the regions the tests use, not of every region moto knows.
            "--compliance-regions",
            "us-east-1,eu-west-1",
            *extra,
        ]
        self.env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if exc is not None:
            sys.stderr.write("---- operator log (tail) ----\n" + self.output()[-6000:])
