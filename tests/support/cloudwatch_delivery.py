"""CloudWatch Logs delivery times in GetTrailStatus answers, which moto never gives.

AWS answers GetTrailStatus of a trail wired to a CloudWatch Logs group with
``LatestCloudWatchLogsDeliveryTime``, the time CloudTrail last delivered to the group; CIS 3.4 asks for
it to be at most a day old. moto has no delivery, so it never sets the field. This WSGI middleware
fills it into moto's answer for every trail that has a log group: by default as a delivery made
``age`` ago, or as each trail's own age (``set_age``), or leaves it out (age None: not delivered yet).
A trail without a log group keeps moto's answer as it is, as on AWS.

    front = CloudWatchDeliveryFront(moto_app())
    front.set_age("audit-trail", timedelta(days=3))  # a stale delivery
    server = InProcessMotoServer(FaultInjector(front))
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from support.faults import WSGIApp, _account_of, _buffer_body, _credential_scope, identify_request

DEFAULT_AGE = timedelta(minutes=5)


class CloudWatchDeliveryFront:
    """WSGI middleware in front of moto: GetTrailStatus answers carry a CloudWatch Logs delivery time."""

    def __init__(self, app: WSGIApp, *, age: timedelta | None = DEFAULT_AGE) -> None:
        self._app = app
        self._default_age = age
        self._ages: dict[str, timedelta | None] = {}
        self._lock = threading.Lock()

    def set_age(self, trail: str, age: timedelta | None) -> None:
        """The delivery of the trail of this name or ARN was `age` ago (None: it has not delivered yet)."""
        with self._lock:
            self._ages[trail] = age

    def clear(self) -> None:
        """Forget every trail's own age; the default applies again."""
        with self._lock:
            self._ages.clear()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return self._app(environ, start_response)
        if identify_request(environ) != ("cloudtrail", "GetTrailStatus"):
            return self._app(environ, start_response)
        name = str(json.loads(_buffer_body(environ) or b"{}").get("Name", ""))
        answer: dict[str, Any] = {}

        def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            answer["status"], answer["headers"] = status, headers

        body = b"".join(self._app(environ, keep))
        if answer["status"].startswith("200"):
            body = self._with_delivery(environ, name, body)
        headers = [(k, v) for k, v in answer["headers"] if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(answer["status"], headers)
        return [body]

    def _with_delivery(self, environ: dict[str, Any], name: str, body: bytes) -> bytes:
        trail = _find_trail(environ, name)
        if trail is None or not trail.cw_log_group_arn:
            return body
        with self._lock:
            age = self._ages.get(trail.trail_name, self._ages.get(trail.arn, self._default_age))
        if age is None:
            return body
        status = json.loads(body)
        status["LatestCloudWatchLogsDeliveryTime"] = (datetime.now(UTC) - age).timestamp()
        return json.dumps(status).encode()


def _find_trail(environ: dict[str, Any], name: str) -> Any:
    """The moto trail GetTrailStatus answered for, looked up as moto does (shadow trails included)."""
    from moto.cloudtrail.models import cloudtrail_backends

    region = _credential_scope(environ)[1]
    backend = cloudtrail_backends[_account_of(environ)][region]
    for trail in backend.describe_trails(include_shadow_trails=True):
        if name in (trail.trail_name, trail.arn):
            return trail
    return None
