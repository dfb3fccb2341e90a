"""Writing an object's status from inside a drift-check timer, retried.

kopf applies a handler's `patch` only after the handler returns and does not retry a refused status
write; a timer whose write fails is not started again for that object. So drift checks write their status
themselves, as a JSON merge patch (no resourceVersion, so a retry of the same patch is always right), and
retry what an API server answers when it is busy or another writer came first. (Change handlers keep
kopf's patch: see `kube/handlers.py` `_write_status`.)

The patch goes through kopf's own API client: the same aiohttp session and login as every other request
of the operator (kopf logs in again on a 401), so the operator needs no second Kubernetes client.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
import kopf
from kopf._cogs.clients import api as kopf_api
from kopf._cogs.clients import errors as kopf_errors

from trailkeeper.kube.config import GROUP, VERSION

log = logging.getLogger(__name__)

# 409: another writer came first; 429: the API server's priority and fairness; 5xx: it is unwell.
RETRIED_STATUSES = frozenset({409, 429, 500, 502, 503, 504})
MERGE_PATCH = "application/merge-patch+json"


class StatusWriteError(Exception):
    """The status could not be written after every attempt (or was refused for good)."""


class StatusApi(Protocol):
    """What the writer needs of an API client: one merge patch of an object's /status.

    Raises kopf's API errors (`kopf._cogs.clients.errors.APIError` and its kinds) for an HTTP error, and
    aiohttp's or the built-in errors for a connection that failed or timed out."""

    def patch_status(self, plural: str, namespace: str, name: str, body: Mapping[str, Any]) -> None: ...


def status_url(plural: str, namespace: str, name: str) -> str:
    return (
        f"/apis/{GROUP}/{VERSION}/namespaces/{quote(namespace, safe='')}/{plural}/{quote(name, safe='')}"
        "/status"
    )


class KopfStatusApi:
    """Status patches through kopf's API client, run on the operator's event loop.

    kopf's client lives on that loop, and its credentials are found through a context variable that
    kopf copies into each sync handler's thread; the handler thread hands the request to the loop
    (taking its context along) and waits for the answer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, timeout: float = 60.0) -> None:
        self.loop = loop
        self.timeout = timeout
        self.settings = kopf.OperatorSettings()
        # The writer retries with its own delays; kopf's client answers each attempt once.
        self.settings.networking.error_backoffs = ()
        self.settings.networking.request_timeout = timeout

    def patch_status(self, plural: str, namespace: str, name: str, body: Mapping[str, Any]) -> None:
        if self._on_loop_thread():
            raise RuntimeError("the status writer waits for the event loop; call it from a handler thread")
        request = kopf_api.patch(
            url=status_url(plural, namespace, name),
            headers={"Content-Type": MERGE_PATCH},
            payload=dict(body),
            settings=self.settings,
            logger=log,
        )
        future = asyncio.run_coroutine_threadsafe(request, self.loop)
        try:
            future.result(self.timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no answer within {self.timeout:g} s") from None

    def _on_loop_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False


class StatusWriter:
    """Merge-patches `/status` of our objects; one instance per operator, shared by the handler threads."""

    def __init__(
        self,
        api: StatusApi,
        *,
        attempts: int = 6,
        first_delay: float = 0.1,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api = api
        self.attempts = attempts
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.sleep = sleep

    @classmethod
    def connect(cls) -> StatusWriter:
        """A writer using the API connection of the operator about to run on the current event loop
        (whichever login kopf uses: the service account, a kubeconfig or a test server)."""
        return cls(KopfStatusApi(asyncio.get_running_loop()))

    def write(self, plural: str, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Merge `status` into the object's status; an object that is gone is not an error."""
        delay = self.first_delay
        for attempt in range(1, self.attempts + 1):
            try:
                self.api.patch_status(plural, namespace, name, {"status": dict(status)})
                return
            except kopf_errors.APIError as error:
                if error.status == 404:
                    return
                if error.status not in RETRIED_STATUSES:
                    raise StatusWriteError(
                        f"status of {namespace}/{name} refused: {_reason(error)}"
                    ) from error
                last = f"{error.status} {_reason(error)}"
            except (aiohttp.ClientError, TimeoutError) as error:
                last = f"{type(error).__name__}: {error}"
            if attempt < self.attempts:
                log.info("status of %s/%s not written (%s); retrying in %.1f s", namespace, name, last, delay)
                self.sleep(delay)
                delay = min(delay * 2, self.max_delay)
        raise StatusWriteError(
            f"status of {namespace}/{name} not written after {self.attempts} tries: {last}"
        )


def _reason(error: kopf_errors.APIError) -> str:
    """The API server's message (a Status object's), else the HTTP status alone."""
    return str(error.message or "").strip() or f"HTTP {error.status}, no reason given"
