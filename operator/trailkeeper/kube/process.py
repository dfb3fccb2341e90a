"""The operator process: kopf settings, login, and running the handlers until stopped."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import kopf

from trailkeeper.kube.config import FINALIZER, GROUP, LAST_HANDLED, OperatorConfig, Runtime
from trailkeeper.kube.handlers import register
from trailkeeper.kube.status_writer import StatusWriter


def build_registry(runtime: Runtime, *, server_url: str | None = None) -> kopf.OperatorRegistry:
    """All handlers and settings of one operator; `server_url` logs in to that API without credentials."""
    registry = kopf.OperatorRegistry()
    config = runtime.config

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = FINALIZER
        # Progress and the last handled spec go into annotations in our own group, not kopf.zalando.org.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=GROUP, key=LAST_HANDLED.split("/", 1)[1]
        )
        settings.execution.max_workers = config.max_workers
        settings.posting.level = logging.INFO
        settings.watching.server_timeout = 60
        settings.watching.client_timeout = 70
        # One slow or failing object must not hold up the others: retries back off per object.
        settings.batching.error_delays = (1, 2, 5, 10, 20, 30, 60)
        if config.peering:
            settings.peering.name = config.peering
            # Mandatory: a replica starts paused and works only once the peering shows no live peer of
            # a higher priority (without the kopf.dev CRDs it stays paused, and says so).
            settings.peering.mandatory = True
            settings.peering.priority = config.priority
            settings.peering.lifetime = config.peering_lifetime

    if server_url is not None:

        @kopf.on.login(registry=registry)
        def login_to_server(**_: Any) -> kopf.ConnectionInfo:
            return kopf.ConnectionInfo(server=server_url, insecure=True, default_namespace="default")

    else:
        # kopf's own logins (no Kubernetes client library): the pod's service account in a cluster,
        # KUBECONFIG or ~/.kube/config outside one. A failing one is logged; kopf uses what the others got.
        for login in (kopf.login_with_service_account, kopf.login_with_kubeconfig):
            kopf.on.login(registry=registry, errors=kopf.ErrorsMode.IGNORED)(login)

    register(registry, config.tick_seconds)
    return registry


async def run_operator(
    runtime: Runtime,
    *,
    server_url: str | None = None,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
) -> None:
    """Run until `stop_flag` is set (or forever)."""
    config: OperatorConfig = runtime.config
    if runtime.status_writer is None:
        runtime.status_writer = StatusWriter.connect()
    registry = build_registry(runtime, server_url=server_url)
    metrics_server = runtime.metrics.serve(config.metrics_port) if config.metrics_port is not None else None
    try:
        await _run_kopf(registry, runtime, stop_flag, ready_flag)
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()


async def _run_kopf(
    registry: kopf.OperatorRegistry,
    runtime: Runtime,
    stop_flag: asyncio.Event | threading.Event | None,
    ready_flag: asyncio.Event | threading.Event | None,
) -> None:
    config = runtime.config
    await kopf.operator(
        # The handlers (kube/handlers.py) find the runtime in kopf's memo, one shared by every object.
        memo=kopf.Memo(runtime=runtime),
        registry=registry,
        clusterwide=not config.namespaces,
        namespaces=list(config.namespaces),
        standalone=config.peering is None,
        peering_name=config.peering,
        liveness_endpoint=config.liveness_url,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )
