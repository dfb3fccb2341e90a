"""The Argo CD health check (deploy/argocd/health.lua), run by a Lua interpreter on the objects the
operator's passes leave behind for every outcome."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lupa import LuaRuntime

from support.outcomes import every_outcome
from trailkeeper.aws.session import AwsSessions

HEALTH_LUA = Path(__file__).resolve().parent.parent / "deploy" / "argocd" / "health.lua"


def health(obj: dict[str, Any]) -> tuple[str, str]:
    """What Argo CD shows for `obj`: the script runs with the object as the global `obj`."""
    lua = LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(HEALTH_LUA.read_text(encoding="utf-8"))
    return str(result["status"]), str(result["message"])


@pytest.fixture(scope="module")
def outcomes(moto_server: Any, moto_endpoint: str) -> dict[str, dict[str, Any]]:
    moto_server.reset()
    sessions = AwsSessions(endpoint_url=moto_endpoint, default_region="us-east-1", max_attempts=1)
    try:
        return every_outcome(sessions)
    finally:
        sessions.close()


@pytest.mark.parametrize(
    ("outcome", "expected", "in_message"),
    [
        ("ready", "Healthy", "1 of 1 trail logging"),
        ("drifted", "Degraded", "Drifted: 1 difference(s)"),
        ("conflict", "Degraded", "Conflict: trail taken in us-east-1"),
        ("invalid-spec", "Degraded", "InvalidSpec: spec.destination.bucket"),
        ("error", "Degraded", "TrailNotFound: Trail missing not found"),
        ("deleting", "Progressing", "deleting"),
        ("spec-changed", "Progressing", "not acted on the latest spec"),
    ],
)
def test_health_of_each_outcome(
    outcomes: dict[str, dict[str, Any]], outcome: str, expected: str, in_message: str
) -> None:
    status, message = health(outcomes[outcome])
    assert status == expected
    assert in_message in message


def test_an_object_the_operator_has_not_seen_is_progressing() -> None:
    obj = {"metadata": {"name": "new", "generation": 1}, "spec": {}}
    assert health(obj) == ("Progressing", "waiting for the operator's first pass")
