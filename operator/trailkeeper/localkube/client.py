"""A small synchronous JSON client for a control plane (standard library only): enough to install CRDs and
RBAC, request service-account tokens and apply manifests. kubectl and kopf do everything else."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


class KubeApiError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path}: {status} {body[:500]}")
        self.status = status
        self.body = body


class KubeHttp:
    """Requests as one identity (a client certificate or a bearer token), verified against the CA."""

    def __init__(
        self,
        url: str,
        ca_cert: Path,
        *,
        client_cert: Path | None = None,
        client_key: Path | None = None,
        token: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.context = ssl.create_default_context(cafile=str(ca_cert))
        if client_cert is not None and client_key is not None:
            self.context.load_cert_chain(str(client_cert), str(client_key))
        self.token = token
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        ok_statuses: tuple[int, ...] = (),
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            text = error.read().decode(errors="replace")
            if error.code in ok_statuses:
                return json.loads(text) if text.startswith("{") else None
            raise KubeApiError(method, path, error.code, text) from None
        return json.loads(raw) if raw else None

    def create(self, path: str, body: dict[str, Any], *, exist_ok: bool = True) -> Any:
        """POST; an object that is already there counts as made when `exist_ok`."""
        return self.request("POST", path, body, ok_statuses=(409,) if exist_ok else ())

    def apply(self, path: str, body: dict[str, Any], *, field_manager: str, force: bool = False) -> Any:
        """Server-side apply of one object at its own path (`.../<plural>/<name>`)."""
        query = f"?fieldManager={field_manager}" + ("&force=true" if force else "")
        return self.request("PATCH", path + query, body, content_type="application/apply-patch+yaml")
