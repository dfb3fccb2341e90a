"""End-to-end harness: a real Kubernetes API server for the tests, the operator as a subprocess.

One control plane serves the whole test session (`trailkeeper.localkube`: etcd and kube-apiserver
built from released Kubernetes, RBAC on), or an existing cluster named by `TRAILKEEPER_KUBECONFIG`.
Each test gets a :class:`Cluster` view of it that starts and ends with no trailkeeper object, event or
peering left from another test. The operator is the real `trailkeeper run` process, logged in as the
ServiceAccount the chart installs, bound to the ClusterRoles the chart renders (deploy/operator/rbac.yaml
is that render): a verb missing there fails a test here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import requests
import yaml

from trailkeeper.localkube.control_plane import LocalControlPlane, free_port
from trailkeeper.localkube.tools import find_tools

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
GROUP_PATH = "/apis/trailkeeper.io/v1alpha1"
PLURALS = {"Trail": "trails", "LogRetention": "logretentions"}
CRD_FILES = [*sorted((ROOT / "crds").glob("*.yaml")), ROOT / "deploy" / "crds" / "kopf-peering.yaml"]
OPERATOR_RBAC = ROOT / "deploy" / "operator" / "rbac.yaml"
OPERATOR_NAMESPACE = "trailkeeper"
OPERATOR_ACCOUNT = "trailkeeper"
EXISTING_CLUSTER_ENV = "TRAILKEEPER_KUBECONFIG"


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


class ApiError(AssertionError):
    def __init__(self, method: str, path: str, response: requests.Response) -> None:
        super().__init__(f"{method} {path}: {response.status_code} {response.text[:2000]}")
        self.status = response.status_code
        self.body: dict[str, Any] = response.json() if response.content.startswith(b"{") else {}


@dataclass
class KubeAccess:
    """How the tests reach the session's API server: as the admin, and as the operator's ServiceAccount."""

    url: str
    session: requests.Session  # the admin's
    admin_kubeconfig: Path
    operator_kubeconfig: Path
    kubectl: Path
    audit_log: Path | None = None  # the API server's audit log, when asked for (local control plane only)
    # How a ServiceAccount's kubeconfig reaches the API server: its address and CA as a client sees them.
    server: str = ""
    ca: dict[str, str] = field(default_factory=dict)

    def request(
        self, method: str, path: str, body: Any = None, *, content_type: str = "application/json"
    ) -> Any:
        response = self.session.request(
            method,
            self.url + path,
            data=None if body is None else json.dumps(body),
            headers={"Content-Type": content_type},
            timeout=15,
            # Per request: requests prefers REQUESTS_CA_BUNDLE from the environment to a session's CA.
            verify=self.session.verify,
        )
        if response.status_code >= 400:
            raise ApiError(method, path, response)
        return response.json() if response.content else None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The admin's TLS identity, for clients other than requests (None when the URL is plain HTTP)."""
        if not self.url.startswith("https:"):
            return None
        context = ssl.create_default_context(cafile=str(self.session.verify))
        certificate, key = self.session.cert  # type: ignore[misc]
        context.load_cert_chain(certificate, key)
        return context

    def ensure_namespace(self, name: str) -> None:
        response = self.session.get(
            f"{self.url}/api/v1/namespaces/{name}", timeout=15, verify=self.session.verify
        )
        if response.status_code == 404:
            with contextlib.suppress(ApiError):  # made by a racing caller meanwhile
                self.request(
                    "POST",
                    "/api/v1/namespaces",
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                )


def _create(access: KubeAccess, document: dict[str, Any]) -> None:
    """POST a manifest to its collection; one already there is replaced by server-side apply."""
    api_version, kind = document["apiVersion"], document["kind"]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    plural = {
        "CustomResourceDefinition": "customresourcedefinitions",
        "ClusterRole": "clusterroles",
        "ClusterRoleBinding": "clusterrolebindings",
        "Role": "roles",
        "RoleBinding": "rolebindings",
        "ServiceAccount": "serviceaccounts",
        "Namespace": "namespaces",
        "ClusterKopfPeering": "clusterkopfpeerings",
    }[kind]
    namespace = document["metadata"].get("namespace")
    collection = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
    access.request(
        "PATCH",
        f"{collection}/{document['metadata']['name']}?fieldManager=trailkeeper-tests&force=true",
        document,
        content_type="application/apply-patch+yaml",
    )


def install_crds(access: KubeAccess) -> None:
    names = []
    for path in CRD_FILES:
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document:
                _create(access, document)
                names.append(document["metadata"]["name"])
    for name in names:
        eventually(partial(_serves, access, name), timeout=30, what=f"CRD {name} established and served")


def _serves(access: KubeAccess, crd_name: str) -> bool:
    """Established, and its storage answers a list (a new CRD's storage first answers 429 for a moment)."""
    crd = access.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd_name}")
    conditions = (crd.get("status") or {}).get("conditions") or []
    if not any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
        return False
    spec = crd["spec"]
    version = next(v["name"] for v in spec["versions"] if v.get("served"))
    try:
        access.request("GET", f"/apis/{spec['group']}/{version}/{spec['names']['plural']}")
    except ApiError as error:
        if error.status == 429:
            return False
        raise
    return True


def install_operator_identity(access: KubeAccess, server: str, ca: dict[str, str]) -> Path:
    """The chart's ServiceAccount and RBAC, and a kubeconfig holding a token of that ServiceAccount."""
    access.ensure_namespace(OPERATOR_NAMESPACE)
    _create(
        access,
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": OPERATOR_ACCOUNT, "namespace": OPERATOR_NAMESPACE},
        },
    )
    for document in yaml.safe_load_all(OPERATOR_RBAC.read_text(encoding="utf-8")):
        if document:
            _create(access, document)
    path = access.admin_kubeconfig.parent / "operator.kubeconfig"
    return service_account_kubeconfig(access, OPERATOR_NAMESPACE, OPERATOR_ACCOUNT, path, server, ca)


def service_account_kubeconfig(
    access: KubeAccess, namespace: str, account: str, path: Path, server: str, ca: dict[str, str]
) -> Path:
    """A kubeconfig holding a fresh token of ServiceAccount `namespace/account` (TokenRequest), for
    `server` trusted through `ca` (`certificate-authority` or `certificate-authority-data`)."""
    token = access.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 86400},
        },
    )["status"]["token"]
    user = f"system:serviceaccount:{namespace}:{account}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "tests", "cluster": {"server": server, **ca}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {"name": "tests", "context": {"cluster": "tests", "user": user, "namespace": "default"}}
        ],
        "current-context": "tests",
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@contextlib.contextmanager
def kube_access(workdir: Path, *, audit_log: bool = False) -> Iterator[KubeAccess]:
    """The session's API server: an existing cluster (`TRAILKEEPER_KUBECONFIG`) or a local control plane.

    Never skips: without the programs the error says how to get them (`make kube-tools`).
    """
    existing = os.environ.get(EXISTING_CLUSTER_ENV)
    if existing:
        with _existing_cluster(Path(existing), workdir) as access:
            yield access
        return
    control_plane = LocalControlPlane(workdir / "control-plane", audit_log=audit_log)
    with control_plane as plane:
        session = requests.Session()
        session.cert = (str(plane.pki.admin_cert), str(plane.pki.admin_key))
        session.verify = str(plane.pki.ca_cert)
        access = KubeAccess(
            plane.url,
            session,
            plane.kubeconfig,
            plane.kubeconfig,
            plane.tools.kubectl,
            control_plane.audit_log,
        )
        install_crds(access)
        access.server, access.ca = plane.url, {"certificate-authority": str(plane.pki.ca_cert)}
        access.operator_kubeconfig = install_operator_identity(access, access.server, access.ca)
        try:
            yield access
        finally:
            session.close()


@contextlib.contextmanager
def _existing_cluster(kubeconfig: Path, workdir: Path) -> Iterator[KubeAccess]:
    """A cluster of the user's (kind, k3d, a development EKS): reached through `kubectl proxy`, which
    handles whatever credentials the kubeconfig holds; the operator gets a ServiceAccount token."""
    kubectl = Path(shutil.which("kubectl") or find_tools().kubectl)
    view = json.loads(
        subprocess.run(
            [
                str(kubectl),
                "--kubeconfig",
                str(kubeconfig),
                "config",
                "view",
                "--raw",
                "--minify",
                "-o",
                "json",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    cluster = view["clusters"][0]["cluster"]
    ca = {k: v for k, v in cluster.items() if k in ("certificate-authority", "certificate-authority-data")}
    port = free_port()
    proxy = subprocess.Popen(
        [str(kubectl), "--kubeconfig", str(kubeconfig), "proxy", f"--port={port}", "--address=127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    session = requests.Session()
    try:
        url = f"http://127.0.0.1:{port}"
        eventually(lambda: _answers(session, url), timeout=20, what="kubectl proxy")
        workdir.mkdir(parents=True, exist_ok=True)
        admin = workdir / "admin.kubeconfig"
        shutil.copyfile(kubeconfig, admin)
        access = KubeAccess(url, session, admin, admin, kubectl)
        install_crds(access)
        access.server, access.ca = cluster["server"], ca
        access.operator_kubeconfig = install_operator_identity(access, access.server, access.ca)
        yield access
    finally:
        session.close()
        proxy.terminate()
        proxy.wait(10)


def _answers(session: requests.Session, url: str) -> bool:
    try:
        return session.get(f"{url}/readyz", timeout=2).ok
    except requests.RequestException:
        return False


class Cluster:
    """One test's view of the session's API server, with trailkeeper's CRDs installed.

    ``kubeconfig`` is the operator's (its ServiceAccount); ``admin_kubeconfig`` is for kubectl.
    ``clean()`` removes every trailkeeper object (finalizers dropped first: the operator may be gone),
    the events of the namespaces used and the peering objects, so the next test starts from nothing.
    """

    def __init__(self, access: KubeAccess) -> None:
        self.access = access
        self.url = access.url
        self.kubeconfig = access.operator_kubeconfig
        self.admin_kubeconfig = access.admin_kubeconfig
        self.kubectl = access.kubectl
        self.namespaces = {"default"}

    def __enter__(self) -> Self:
        self.clean()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.clean()

    def request(self, method: str, path: str, body: Any = None, *, patch: bool = False) -> Any:
        content_type = "application/merge-patch+json" if patch else "application/json"
        return self.access.request(method, path, body, content_type=content_type)

    # -- objects of our kinds ------------------------------------------------------------------------

    def path(self, kind: str, name: str | None = None, namespace: str = "default") -> str:
        base = f"{GROUP_PATH}/namespaces/{namespace}/{PLURALS[kind]}"
        return f"{base}/{name}" if name else base

    def body(self, kind: str, name: str, spec: Any, namespace: str = "default") -> dict[str, Any]:
        return {
            "apiVersion": "trailkeeper.io/v1alpha1",
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }

    def apply(self, kind: str, name: str, spec: Any, namespace: str = "default") -> None:
        self.use_namespace(namespace)
        self.request("POST", self.path(kind, namespace=namespace), self.body(kind, name, spec, namespace))

    def use_namespace(self, namespace: str) -> None:
        if namespace not in self.namespaces:
            self.access.ensure_namespace(namespace)
            self.namespaces.add(namespace)

    def patch_spec(self, kind: str, name: str, spec: dict[str, Any], namespace: str = "default") -> None:
        self.request("PATCH", self.path(kind, name, namespace), {"spec": spec}, patch=True)

    def get(self, kind: str, name: str, namespace: str = "default") -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self.request("GET", self.path(kind, name, namespace))
        except ApiError as error:
            if error.status == 404:
                return None
            raise
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

    def kubectl_run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """kubectl as the admin, validation on (its default)."""
        return subprocess.run(
            [str(self.kubectl), "--kubeconfig", str(self.admin_kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    # -- a clean slate -------------------------------------------------------------------------------

    def clean(self) -> None:
        for plural in PLURALS.values():
            for item in self.request("GET", f"{GROUP_PATH}/{plural}").get("items") or []:
                meta = item["metadata"]
                path = f"{GROUP_PATH}/namespaces/{meta['namespace']}/{plural}/{meta['name']}"
                self.namespaces.add(meta["namespace"])
                with contextlib.suppress(ApiError):
                    self.request("PATCH", path, {"metadata": {"finalizers": None}}, patch=True)
                with contextlib.suppress(ApiError):
                    self.request("DELETE", path)

        def gone() -> bool:
            return not any(self.request("GET", f"{GROUP_PATH}/{p}").get("items") for p in PLURALS.values())

        eventually(gone, timeout=20, what="every trailkeeper object deleted")
        for namespace in self.namespaces:
            self.request("DELETE", f"/api/v1/namespaces/{namespace}/events")
        self.request("DELETE", "/apis/kopf.dev/v1/clusterkopfpeerings")


class OperatorProcess:
    """`trailkeeper run` in a subprocess against the API server (as the operator's ServiceAccount)
    and a moto endpoint."""

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
