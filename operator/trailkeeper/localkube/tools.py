"""Where the Kubernetes programs come from: `KUBEBUILDER_ASSETS`, else `make kube-tools`'s build cache."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

KUBE_VERSION = "v1.37.2"
PROGRAMS = ("etcd", "kube-apiserver", "kubectl")
ASSETS_ENV = "KUBEBUILDER_ASSETS"  # the setup-envtest convention: a folder holding the three programs


class KubeToolsMissing(RuntimeError):
    """No etcd/kube-apiserver/kubectl to run; the message says how to get them."""


def cache_dir() -> Path:
    """The build cache, keyed by version (the last line `make kube-tools` prints)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "trailkeeper" / f"kube-{KUBE_VERSION}"


@dataclass(frozen=True)
class KubeTools:
    etcd: Path
    kube_apiserver: Path
    kubectl: Path

    @classmethod
    def in_dir(cls, directory: Path) -> KubeTools:
        return cls(directory / "etcd", directory / "kube-apiserver", directory / "kubectl")

    def missing(self) -> list[Path]:
        return [p for p in (self.etcd, self.kube_apiserver, self.kubectl) if not os.access(p, os.X_OK)]


def find_tools() -> KubeTools:
    """The programs from `KUBEBUILDER_ASSETS` when it is set, else from the build cache."""
    assets = os.environ.get(ASSETS_ENV)
    where = Path(assets) if assets else cache_dir()
    tools = KubeTools.in_dir(where)
    missing = tools.missing()
    if missing:
        names = ", ".join(p.name for p in missing)
        source = f"{ASSETS_ENV}={assets}" if assets else f"the build cache {where}"
        raise KubeToolsMissing(
            f"no {names} in {source}. Build them once with `make kube-tools` (Go 1.26 or later and the Go "
            f"module proxy; about 7 minutes on 2 cores), or set {ASSETS_ENV} to a folder holding etcd, "
            "kube-apiserver and kubectl (as setup-envtest installs them), or set TRAILKEEPER_KUBECONFIG to "
            "the kubeconfig of a cluster to use instead (kind, k3d, a development EKS)."
        )
    return tools
