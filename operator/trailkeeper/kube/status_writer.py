"""Writing an object's status from inside a drift-check timer, retried.

kopf applies a handler's `patch` only after the handler returns and does not retry a refused status
write; a timer whose write fails is not started again for that object. So drift checks write their status
themselves, as a JSON merge patch (no resourceVersion, so a retry of the same patch is always right), and
retry what an API server answers when it is busy or another writer came first. (Change handlers keep
kopf's patch: see `kube/handlers.py` `_write_status`.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from trailkeeper.kube.config import GROUP, VERSION

log = logging.getLogger(__name__)

# 409: another writer came first; 429: the API server's priority and fairness; 5xx: it is unwell.
RETRIED_STATUSES = frozenset({409, 429, 500, 502, 503, 504})
MERGE_PATCH = "application/merge-patch+json"


class StatusWriteError(Exception):
    """The status could not be written after every attempt (or was refused for good)."""


class StatusWriter:
    """Merge-patches `/status` of our objects; one instance per operator, shared by the handler threads."""

    def __init__(
        self,
        api: Any,
        *,
        attempts: int = 6,
        first_delay: float = 0.1,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api = api  # a kubernetes.client.CustomObjectsApi, or anything with its patch method
        self.attempts = attempts
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.sleep = sleep

    @classmethod
    def connect(cls, server_url: str | None) -> StatusWriter:
        """Reach the same API server kopf logs in to: `server_url` (no credentials), else the kubernetes
        client's own discovery (in-cluster service account, else KUBECONFIG)."""
        configuration = kubernetes.client.Configuration()
        if server_url is not None:
            configuration.host = server_url
            configuration.verify_ssl = False
        else:
            try:
                kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            except kubernetes.config.ConfigException:
                kubernetes.config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        client = kubernetes.client.ApiClient(configuration)
        return cls(kubernetes.client.CustomObjectsApi(client))

    def write(self, plural: str, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Merge `status` into the object's status; an object that is gone is not an error."""
        delay = self.first_delay
        for attempt in range(1, self.attempts + 1):
            try:
                self.api.patch_namespaced_custom_object_status(
                    GROUP,
                    VERSION,
                    namespace,
                    plural,
                    name,
                    {"status": dict(status)},
                    _content_type=MERGE_PATCH,
                )
                return
            except ApiException as error:
                if error.status == 404:
                    return
                if error.status not in RETRIED_STATUSES:
                    raise StatusWriteError(
                        f"status of {namespace}/{name} refused: {_reason(error)}"
                    ) from error
                last = f"{error.status} {_reason(error)}"
            except HTTPError as error:
                last = f"{type(error).__name__}: {error}"
            if attempt < self.attempts:
                log.info("status of %s/%s not written (%s); retrying in %.1f s", namespace, name, last, delay)
                self.sleep(delay)
                delay = min(delay * 2, self.max_delay)
        raise StatusWriteError(
            f"status of {namespace}/{name} not written after {self.attempts} tries: {last}"
        )


def _reason(error: ApiException) -> str:
    return str(error.reason or "").strip() or "no reason given"
