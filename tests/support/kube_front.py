"""A fault front for the Kubernetes API: a plain-HTTP reverse proxy on loopback in front of the real API
server, which answers chosen requests itself (409 Conflict, as the API server does when another writer
changed the object first) and passes everything else through, watches streamed.

The operator logs in to the front with its own ServiceAccount token, which the front forwards: RBAC
is still the API server's.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import yaml
from aiohttp import web

from support.cluster import Cluster
from support.moto_server import free_port

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}


@dataclass
class Refusal:
    method: str
    path: re.Pattern[str]
    remaining: int
    answered: int = 0


class KubeFaultFront:
    def __init__(self, cluster: Cluster, workdir: Path) -> None:
        self.cluster = cluster
        self.upstream = cluster.url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.kubeconfig = workdir / "operator-via-front.kubeconfig"
        self._refusals: list[Refusal] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    def conflict_status_patches(self, plural: str, name: str, count: int) -> Callable[[], int]:
        """Answer the next ``count`` PATCHes of the status of ``<plural>/<name>`` (any namespace) with
        409 Conflict. Returns how many were answered so far."""
        refusal = Refusal(
            "PATCH",
            re.compile(rf"/apis/trailkeeper\.io/[^/]+/namespaces/[^/]+/{plural}/{name}/status$"),
            count,
        )
        with self._lock:
            self._refusals.append(refusal)
        return lambda: refusal.answered

    def _refuse(self, method: str, path: str) -> bool:
        with self._lock:
            for refusal in self._refusals:
                if refusal.remaining and refusal.method == method and refusal.path.search(path):
                    refusal.remaining -= 1
                    refusal.answered += 1
                    return True
        return False

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self._refuse(request.method, request.path):
            return web.json_response(
                {
                    "apiVersion": "v1",
                    "kind": "Status",
                    "status": "Failure",
                    "reason": "Conflict",
                    "code": 409,
                    "message": "Operation cannot be fulfilled: the object has been modified; "
                    "please apply your changes to the latest version and try again",
                },
                status=409,
            )
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        body = await request.read()
        async with self._session.request(
            request.method, self.upstream + request.rel_url.raw_path_qs, headers=headers, data=body or None
        ) as upstream:
            response = web.StreamResponse(status=upstream.status)
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_HEADERS:
                    response.headers[key] = value
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        context = ssl.create_default_context(cafile=self._ca())
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        self._session: aiohttp.ClientSession | None = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context), timeout=timeout, auto_decompress=False
        )
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()
            await self._session.close()

    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = yaml.safe_load(self.cluster.kubeconfig.read_text(encoding="utf-8"))
        return config

    def _ca(self) -> str:
        return str(self._config()["clusters"][0]["cluster"]["certificate-authority"])

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Kubernetes fault front did not start")
        config = self._config()
        config["clusters"][0]["cluster"] = {"server": self.url}
        self.kubeconfig.write_text(yaml.safe_dump(config), encoding="utf-8")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
