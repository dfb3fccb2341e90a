"""Kubeconfig files for a local control plane: the admin's (client certificate) or a token's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def write_kubeconfig(
    path: Path,
    server: str,
    ca_cert: Path,
    *,
    user: str,
    client_cert: Path | None = None,
    client_key: Path | None = None,
    token: str | None = None,
    namespace: str = "default",
) -> Path:
    """One cluster, one user, one context named `trailkeeper`; credential paths are made absolute."""
    credentials: dict[str, Any] = {}
    if client_cert is not None and client_key is not None:
        credentials = {
            "client-certificate": str(client_cert.resolve()),
            "client-key": str(client_key.resolve()),
        }
    if token is not None:
        credentials["token"] = token
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "trailkeeper",
                "cluster": {"server": server, "certificate-authority": str(ca_cert.resolve())},
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [
            {
                "name": "trailkeeper",
                "context": {"cluster": "trailkeeper", "user": user, "namespace": namespace},
            }
        ],
        "current-context": "trailkeeper",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)
    return path
