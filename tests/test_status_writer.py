"""The status writer's retries, over a stand-in for the API client (the live 409s are in test_faults_e2e)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ProtocolError

from trailkeeper.kube.status_writer import MERGE_PATCH, StatusWriteError, StatusWriter


class Answers:
    """Answers each patch with the next of `outcomes` (an exception to raise, or None for success)."""

    def __init__(self, *outcomes: Exception | None) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[Any, ...]] = []

    def patch_namespaced_custom_object_status(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((*args, kwargs.get("_content_type")))
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome


def writer(api: Answers, sleeps: list[float]) -> StatusWriter:
    return StatusWriter(api, attempts=4, first_delay=0.1, max_delay=0.3, sleep=sleeps.append)


def test_a_conflict_is_retried_with_growing_delays_until_the_write_goes_through() -> None:
    api, sleeps = Answers(ApiException(status=409), ApiException(status=409), None), []
    writer(api, sleeps).write("trails", "team-a", "audit", {"phase": "Ready"})
    assert len(api.calls) == 3
    assert sleeps == [0.1, 0.2]
    assert api.calls[-1] == (
        "trailkeeper.io",
        "v1alpha1",
        "team-a",
        "trails",
        "audit",
        {"status": {"phase": "Ready"}},
        MERGE_PATCH,
    )


def test_busy_servers_and_dropped_connections_are_retried_and_the_last_reason_reported() -> None:
    api, sleeps = (
        Answers(ApiException(status=503), ProtocolError("reset"), *[ApiException(status=429)] * 2),
        [],
    )
    with pytest.raises(StatusWriteError, match="after 4 tries: 429"):
        writer(api, sleeps).write("logretentions", "default", "keep", {"phase": "Ready"})
    assert sleeps == [0.1, 0.2, 0.3]


def test_a_refusal_that_a_retry_cannot_fix_is_reported_at_once() -> None:
    api, sleeps = Answers(ApiException(status=422, reason="Unprocessable Entity")), []
    with pytest.raises(StatusWriteError, match="refused: Unprocessable Entity"):
        writer(api, sleeps).write("trails", "default", "audit", {"phase": "Ready"})
    assert len(api.calls) == 1 and sleeps == []


def test_an_object_deleted_meanwhile_is_not_an_error() -> None:
    api, sleeps = Answers(ApiException(status=404)), []
    writer(api, sleeps).write("trails", "default", "gone", {"phase": "Deleting"})
    assert len(api.calls) == 1
