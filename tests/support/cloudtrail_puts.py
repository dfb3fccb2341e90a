"""CloudTrail's put calls as AWS answers them, in front of moto, which differs:

* PutInsightSelectors replaces the trail's Insights types (moto 5.2 appends to the list, so a type could
  never be removed);
* PutEventSelectors with basic selectors leaves only those in force (moto keeps the advanced selectors an
  earlier put left, and GetEventSelectors then answers both kinds, which AWS never does).

Before moto sees such a put, the front clears in moto's backend what AWS's put replaces; moto's own
handling of the request then leaves the state AWS would hold. ``faults.moto_app`` serves moto behind it,
so every test, the bench and the sandbox meet these semantics.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from support.faults import WSGIApp, _account_of, _buffer_body, _credential_scope, identify_request


class CloudTrailPutsFront:
    """WSGI middleware: make moto's PutInsightSelectors / PutEventSelectors replace, as AWS's do."""

    def __init__(self, app: WSGIApp) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if "CloudTrail_" in environ.get("HTTP_X_AMZ_TARGET", ""):
            service, operation = identify_request(environ)
            if service == "cloudtrail" and operation in ("PutInsightSelectors", "PutEventSelectors"):
                _clear_replaced(environ, operation)
        return self._app(environ, start_response)


def _clear_replaced(environ: dict[str, Any], operation: str) -> None:
    body = json.loads(_buffer_body(environ) or b"{}")
    trail = _trail(environ, str(body.get("TrailName", "")))
    if trail is None:
        return  # moto answers TrailNotFoundException itself
    if operation == "PutInsightSelectors":
        trail.insight_selectors = []
    elif body.get("EventSelectors"):
        trail.advanced_event_selectors = []


def _trail(environ: dict[str, Any], name_or_arn: str) -> Any:
    from moto.cloudtrail.exceptions import TrailNameTooShort, TrailNotFoundException
    from moto.cloudtrail.models import cloudtrail_backends

    region = _credential_scope(environ)[1]
    backend = cloudtrail_backends[_account_of(environ)][region]
    try:
        return backend.get_trail(name_or_arn)
    except (TrailNotFoundException, TrailNameTooShort):
        return None  # moto answers the error for the request itself
