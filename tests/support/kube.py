"""The emulated Kubernetes API in tests: a small HTTP client, polling, and kopf run in-process.

``SandboxAPI`` (``trailkeeper.kube.emulator``) serves the API; ``KubeClient`` talks to it over
real HTTP, ``eventually`` polls for what an asynchronous actor (kopf) does, and ``kopf_operator``
runs a kopf registry as a task of the test's event loop until the block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar, overload

import aiohttp
import kopf

T = TypeVar("T")

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"

# A small custom kind for the tests: namespaced, a status subresource, printer columns of every
# kind the project's own CRDs use (plain field, list, [*], filter, date).
WIDGET_GROUP = "example.trailkeeper.io"
WIDGETS = f"/apis/{WIDGET_GROUP}/v1"
WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{WIDGET_GROUP}"},
    "spec": {
        "group": WIDGET_GROUP,
        "scope": "Namespaced",
        "names": {
            "kind": "Widget",
            "listKind": "WidgetList",
            "plural": "widgets",
            "singular": "widget",
            "shortNames": ["wdg"],
            "categories": ["example"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Colours", "type": "string", "jsonPath": ".spec.colours"},
                    {"name": "Parts", "type": "string", "jsonPath": ".status.parts[*].name"},
                    {
                        "name": "Ready",
                        "type": "string",
                        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                    },
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}


def widget(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{WIDGET_GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec or {"size": 1},
    }


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    body: Any


class KubeClient:
    """Plain HTTP to the emulated API, so tests see what any client would."""

    def __init__(self, url: str) -> None:
        self._session = aiohttp.ClientSession(url)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._session.close()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        patch: str = "merge",
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        all_headers = {"Content-Type": PATCH_TYPES[patch] if method == "PATCH" else "application/json"}
        all_headers.update(headers or {})
        async with self._session.request(
            method, path, json=body, params=params, headers=all_headers
        ) as response:
            return Answer(response.status, await response.json(content_type=None))

    async def get(self, path: str, **options: Any) -> Answer:
        return await self.call("GET", path, **options)

    async def post(self, path: str, body: Any, **options: Any) -> Answer:
        return await self.call("POST", path, body, **options)

    async def patch(self, path: str, body: Any, **options: Any) -> Answer:
        return await self.call("PATCH", path, body, **options)

    async def put(self, path: str, body: Any, **options: Any) -> Answer:
        return await self.call("PUT", path, body, **options)

    async def delete(self, path: str, body: Any = None, **options: Any) -> Answer:
        return await self.call("DELETE", path, body, **options)

    @contextlib.asynccontextmanager
    async def watch(
        self, path: str, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[WatchStream]:
        query = {"watch": "true", **(params or {})}
        async with self._session.get(path, params=query, headers=headers) as response:
            yield WatchStream(response)


class WatchStream:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self, timeout: float = 2.0) -> dict[str, Any] | None:
        """The next event, or None when the server ended the stream."""
        line = await asyncio.wait_for(self.response.content.readline(), timeout)
        if not line:
            return None
        event: dict[str, Any] = json.loads(line)
        return event


@overload
async def eventually(
    check: Callable[[], Awaitable[T | None]], *, timeout: float = ..., interval: float = ..., what: str = ...
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T | None], *, timeout: float = ..., interval: float = ..., what: str = ...
) -> T: ...


async def eventually(
    check: Callable[[], Any],
    *,
    timeout: float = 3.0,
    interval: float = 0.01,
    what: str = "the condition",
) -> Any:
    """Poll ``check`` until it returns something truthy; that value is returned."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def kopf_operator(
    registry: kopf.OperatorRegistry,
    *,
    clusterwide: bool = True,
    namespaces: Collection[str] = (),
    timeout: float = 5.0,
) -> AsyncIterator[None]:
    """Run kopf (standalone: no peering) in this event loop while the block runs."""
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        kopf.operator(
            registry=registry,
            standalone=True,
            clusterwide=clusterwide,
            namespaces=namespaces,
            stop_flag=stop,
            ready_flag=ready,
        )
    )
    readiness = asyncio.create_task(ready.wait())
    try:
        await asyncio.wait({task, readiness}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # raises what stopped the operator
            raise AssertionError("the operator stopped before it was ready")
        if not ready.is_set():
            raise AssertionError(f"the operator was not ready within {timeout} s")
        yield
    finally:
        readiness.cancel()
        stop.set()
        await asyncio.wait_for(task, timeout)
