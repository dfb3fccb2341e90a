"""etcd and kube-apiserver on free loopback ports, authentication and RBAC on, torn down cleanly.

`LocalControlPlane` is a context manager: it makes the PKI, starts etcd, then kube-apiserver, waits
for `/readyz`, writes an admin kubeconfig and, on leaving (also after a failure), stops both
programs and removes their data. The programs run in sessions of their own, so a Ctrl-C meant for
the caller reaches them only through `stop()`, in order; on Linux they are also told to die with the
process that started them, so a killed test run leaves nothing behind.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from trailkeeper.localkube.client import KubeHttp
from trailkeeper.localkube.kubeconfig import write_kubeconfig
from trailkeeper.localkube.pki import Pki, make_pki
from trailkeeper.localkube.tools import KubeTools, find_tools

START_TIMEOUT = 90.0
STOP_TIMEOUT = 5.0
# The data is thrown away: a short grace, then SIGKILL (kube-apiserver's own graceful stop takes >1 s).
STOP_GRACE = 0.5
SERVICE_CIDR = "10.0.0.0/24"


class ControlPlaneError(RuntimeError):
    """The control plane could not start; the message says why (with the program's last log lines)."""


class PortInUse(ControlPlaneError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_port_free(port: int, flag: str) -> None:
    """Fail at once, naming the port and the flag that changes it, when something listens there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers themselves bind (Go sets it too): a port held only by closed connections
        # in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise PortInUse(f"port {port} on 127.0.0.1 is taken; choose another with {flag} N") from None


# Looked up once here: the child between fork and exec must do as little as possible.
_LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the thread that started it ends (Linux prctl). Start the
    control plane from a thread that lives as long as it should, as the tests and the sandbox do."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass(frozen=True)
class ControlPlane:
    """A running control plane: where it is and how to reach it as the admin."""

    url: str
    kubeconfig: Path
    pki: Pki
    tools: KubeTools

    def admin(self, timeout: float = 10.0) -> KubeHttp:
        return KubeHttp(
            self.url,
            self.pki.ca_cert,
            client_cert=self.pki.admin_cert,
            client_key=self.pki.admin_key,
            timeout=timeout,
        )


class _Program:
    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.name = name
        self.log = log
        self._out: IO[bytes] = log.open("ab")
        self.process = subprocess.Popen(
            args,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 (one foreign call, no lock taken)
        )

    def failed(self) -> str | None:
        if self.process.poll() is None:
            return None
        return f"{self.name} exited with {self.process.returncode}:\n{self.tail()}"

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        self._out.close()


class LocalControlPlane:
    """Start with `with LocalControlPlane(workdir) as cp:`; `cp` is a :class:`ControlPlane`."""

    def __init__(
        self,
        workdir: Path,
        *,
        tools: KubeTools | None = None,
        port: int | None = None,
        port_flag: str = "--port",
        progress: Callable[[str], None] | None = None,
        keep_data: bool = False,
        audit_log: bool = False,
    ) -> None:
        self.workdir = workdir
        self.tools = tools
        self.port = port
        self.port_flag = port_flag
        self.progress = progress or (lambda _message: None)
        self.keep_data = keep_data
        # One JSON line per request (metadata only) in workdir/audit.log: who asked what, for measuring
        # what the operator costs the API server.
        self.audit_log = self.workdir / "audit.log" if audit_log else None
        self._programs: list[_Program] = []

    def start(self) -> ControlPlane:
        if self.port is not None:
            check_port_free(self.port, self.port_flag)
        tools = self.tools or find_tools()
        self.workdir.mkdir(parents=True, exist_ok=True)
        pki = make_pki(self.workdir / "pki")
        try:
            etcd_url = self._start_etcd(tools)
            url = self._start_apiserver(tools, pki, etcd_url)
        except BaseException:
            self.stop()
            raise
        kubeconfig = write_kubeconfig(
            self.workdir / "admin.kubeconfig",
            url,
            pki.ca_cert,
            user="trailkeeper-admin",
            client_cert=pki.admin_cert,
            client_key=pki.admin_key,
        )
        return ControlPlane(url=url, kubeconfig=kubeconfig, pki=pki, tools=tools)

    def _start_etcd(self, tools: KubeTools) -> str:
        client, peer = free_port(), free_port()
        url = f"http://127.0.0.1:{client}"
        data = self.workdir / "etcd-data"
        shutil.rmtree(data, ignore_errors=True)
        args = [
            str(tools.etcd),
            "--name=trailkeeper",
            f"--data-dir={data}",
            f"--listen-client-urls={url}",
            f"--advertise-client-urls={url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=trailkeeper=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync",  # a throw-away store: durability buys nothing, fsync costs seconds
            "--log-level=warn",
        ]
        self.progress(f"starting etcd on {url}")
        etcd = _Program("etcd", args, self.workdir / "etcd.log")
        self._programs.append(etcd)
        self._wait(etcd, lambda: _etcd_healthy(url))
        return url

    def _start_apiserver(self, tools: KubeTools, pki: Pki, etcd_url: str) -> str:
        port = self.port if self.port is not None else free_port()
        url = f"https://127.0.0.1:{port}"
        args = [
            str(tools.kube_apiserver),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={pki.server_cert}",
            f"--tls-private-key-file={pki.server_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=RBAC",
            f"--service-account-key-file={pki.sa_public}",
            f"--service-account-signing-key-file={pki.sa_private}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # No nodes and no pods here: the endpoint of the `kubernetes` Service would point at
            # loopback, which the API server refuses to publish.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--v=0",
            *self._audit_args(),
        ]
        self.progress(f"starting kube-apiserver on {url}")
        apiserver = _Program("kube-apiserver", args, self.workdir / "kube-apiserver.log")
        self._programs.append(apiserver)
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        self._wait(apiserver, lambda: _readyz(url, context))
        return url

    def _audit_args(self) -> list[str]:
        if self.audit_log is None:
            return []
        policy = self.workdir / "audit-policy.yaml"
        policy.write_text(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\n"
            "omitStages: [RequestReceived, ResponseStarted]\nrules:\n- level: Metadata\n",
            encoding="utf-8",
        )
        return [
            f"--audit-policy-file={policy}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
            "--audit-log-mode=batch",
            "--audit-log-batch-max-wait=1s",
        ]

    def _wait(self, program: _Program, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            failure = program.failed()
            if failure:
                raise ControlPlaneError(failure)
            if ready():
                return
            time.sleep(0.1)
        raise ControlPlaneError(
            f"{program.name} was not ready within {START_TIMEOUT:.0f} s; its log ends:\n{program.tail()}"
        )

    def stop(self) -> None:
        """Stop the API server first, then etcd; remove the data unless told to keep it."""
        while self._programs:
            self._programs.pop().stop()
        if not self.keep_data:
            shutil.rmtree(self.workdir / "etcd-data", ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalControlPlane({self.workdir})"


def _etcd_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return bool(json.loads(response.read()).get("health") == "true")
    except (OSError, ValueError):
        return False


def _readyz(url: str, context: ssl.SSLContext) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", context=context, timeout=2) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError:
        return False
    except OSError:
        return False
