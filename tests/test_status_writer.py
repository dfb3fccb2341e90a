"""The status writer: its retries over a stand-in for the API client, and its requests through kopf's own
client against a local HTTP server (the live 409s of a real operator are in test_faults_e2e)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import aiohttp.web
import pytest
from kopf._cogs.clients import auth
from kopf._cogs.clients.errors import APIError, APIServerError
from kopf._cogs.structs import credentials

from trailkeeper.kube.status_writer import MERGE_PATCH, KopfStatusApi, StatusWriteError, StatusWriter


def api_error(status: int, message: str | None = None) -> APIError:
    payload: Any = {"kind": "Status", "code": status, "message": message} if message else None
    return APIError(payload, status=status, headers={})


class Answers:
    """Answers each patch with the next of `outcomes` (an exception to raise, or None for success)."""

    def __init__(self, *outcomes: Exception | None) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, str, str, Mapping[str, Any]]] = []

    def patch_status(self, plural: str, namespace: str, name: str, body: Mapping[str, Any]) -> None:
        self.calls.append((plural, namespace, name, body))
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome


def writer(api: Answers, sleeps: list[float]) -> StatusWriter:
    return StatusWriter(api, attempts=4, first_delay=0.1, max_delay=0.3, sleep=sleeps.append)


def test_a_conflict_is_retried_with_growing_delays_until_the_write_goes_through() -> None:
    api, sleeps = Answers(api_error(409), api_error(409), None), []
    writer(api, sleeps).write("trails", "team-a", "audit", {"phase": "Ready"})
    assert len(api.calls) == 3
    assert sleeps == [0.1, 0.2]
    assert api.calls[-1] == ("trails", "team-a", "audit", {"status": {"phase": "Ready"}})


def test_busy_servers_and_dropped_connections_are_retried_and_the_last_reason_reported() -> None:
    api, sleeps = (
        Answers(
            APIServerError(None, status=503, headers={}),
            aiohttp.ServerDisconnectedError(),
            *[api_error(429, "too many requests, retry later")] * 2,
        ),
        [],
    )
    with pytest.raises(StatusWriteError, match="after 4 tries: 429 too many requests"):
        writer(api, sleeps).write("logretentions", "default", "keep", {"phase": "Ready"})
    assert sleeps == [0.1, 0.2, 0.3]


def test_a_refusal_that_a_retry_cannot_fix_is_reported_at_once() -> None:
    api, sleeps = Answers(api_error(422, 'Trail "audit" is invalid: status.phase: Unsupported value')), []
    with pytest.raises(StatusWriteError, match='refused: Trail "audit" is invalid'):
        writer(api, sleeps).write("trails", "default", "audit", {"phase": "Ready"})
    assert len(api.calls) == 1 and sleeps == []
    api = Answers(api_error(403))
    with pytest.raises(StatusWriteError, match="refused: HTTP 403, no reason given"):
        writer(api, []).write("trails", "default", "audit", {"phase": "Ready"})


def test_an_object_deleted_meanwhile_is_not_an_error() -> None:
    api, sleeps = Answers(api_error(404)), []
    writer(api, sleeps).write("trails", "default", "gone", {"phase": "Deleting"})
    assert len(api.calls) == 1


# --- through kopf's client ------------------------------------------------------------------------------


class StatusServer:
    """An HTTP server answering PATCHes of /status with queued answers, recording each request."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, Any]]] = []
        self.requests: list[tuple[str, str, str | None, Any]] = []

    async def handle(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        body = await request.json()
        self.requests.append(
            (request.method, request.path, request.headers.get("Authorization"), (request.content_type, body))
        )
        status, payload = self.answers.pop(0) if self.answers else (200, body)
        return aiohttp.web.json_response(payload, status=status)


@pytest.fixture
async def status_server() -> AsyncIterator[tuple[StatusServer, str]]:
    server = StatusServer()
    app = aiohttp.web.Application()
    app.router.add_route("PATCH", "/{tail:.*}", server.handle)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def logged_in_vault(url: str) -> credentials.Vault:
    """kopf's credential store as the operator holds it after a login, set for this context."""
    vault = credentials.Vault()
    await vault.populate({"test": credentials.ConnectionInfo(server=url, token="the-token")})
    auth.vault_var.set(vault)
    return vault


async def in_handler_thread(write: Any) -> None:
    """Run `write` as kopf runs a sync handler: in a thread, with a copy of the operator's context."""
    context = contextvars.copy_context()
    await asyncio.get_running_loop().run_in_executor(None, context.run, write)


async def test_the_status_goes_through_kopfs_client_with_kopfs_credentials(status_server):
    server, url = status_server
    vault = await logged_in_vault(url)
    status_writer = StatusWriter.connect()
    assert isinstance(status_writer.api, KopfStatusApi)
    try:
        await in_handler_thread(
            lambda: status_writer.write("trails", "team-a", "audit", {"phase": "Ready", "drift": []})
        )
    finally:
        await vault.close()
    assert server.requests == [
        (
            "PATCH",
            "/apis/trailkeeper.io/v1alpha1/namespaces/team-a/trails/audit/status",
            "Bearer the-token",
            (MERGE_PATCH, {"status": {"phase": "Ready", "drift": []}}),
        )
    ]


async def test_kopfs_client_answers_each_attempt_once_and_the_writer_retries(status_server):
    server, url = status_server
    server.answers = [
        (409, {"kind": "Status", "code": 409, "message": "the object has been modified"}),
        (503, {"kind": "Status", "code": 503, "message": "etcd leader changed"}),
        (200, {}),
    ]
    vault = await logged_in_vault(url)
    sleeps: list[float] = []
    status_writer = StatusWriter.connect()
    status_writer.sleep = sleeps.append
    try:
        await in_handler_thread(
            lambda: status_writer.write("logretentions", "ops", "keep", {"phase": "Ready"})
        )
        server.answers = [(422, {"kind": "Status", "code": 422, "message": "status.phase: Unsupported"})]
        with pytest.raises(StatusWriteError, match=r"refused: status\.phase: Unsupported"):
            await in_handler_thread(lambda: status_writer.write("trails", "ops", "audit", {"phase": "?"}))
    finally:
        await vault.close()
    assert len(server.requests) == 4
    assert sleeps == [0.1, 0.2]


async def test_the_writer_refuses_to_wait_on_the_loop_it_runs_on(status_server):
    _, url = status_server
    vault = await logged_in_vault(url)
    try:
        with pytest.raises(RuntimeError, match="handler thread"):
            StatusWriter.connect().write("trails", "default", "audit", {"phase": "Ready"})
    finally:
        await vault.close()


def test_connecting_needs_the_operators_event_loop():
    with pytest.raises(RuntimeError, match="no running event loop"):
        StatusWriter.connect()
