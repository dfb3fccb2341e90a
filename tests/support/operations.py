"""Which AWS operations a boto3 client calls, for tests that prove a read makes no write."""

from __future__ import annotations

from typing import Any

from trailkeeper.aws.calls import is_mutating


def record_operations(client: Any) -> list[str]:
    """The operation names the client calls from now on (botocore's before-call event)."""
    operations: list[str] = []

    def before_call(model: Any, **_: Any) -> None:
        operations.append(model.name)

    client.meta.events.register("before-call", before_call)
    return operations


def mutating(operations: list[str]) -> list[str]:
    return [name for name in operations if is_mutating(name)]
