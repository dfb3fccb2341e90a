"""Fault injection in front of moto: throttles, server errors, latency and dropped connections.

moto answers every request it can, at once; real AWS throttles, fails and stalls. This WSGI
middleware sits in front of moto's app and, for the requests that match a :class:`FaultRule`,
answers what AWS would answer instead (in each protocol's own error format, so botocore parses
it, classifies it and retries it exactly as it would a real one):

* ``throttle``: CloudTrail and other JSON services ``ThrottlingException`` (400), S3 ``SlowDown``
  (503), EC2 ``RequestLimitExceeded`` (503), SNS/STS/IAM query-protocol ``Throttling`` (400);
* ``error``: HTTP 500/503 with the protocol's internal-error code;
* ``delay``: sleep, then let moto answer;
* ``reset``: read the request, answer nothing, and reset the TCP connection;
* ``garble``: let moto answer, then send its status with a mangled body (half of it, then bytes no
  parser takes), as a broken proxy or a truncated read would.

Besides the rules, the front makes moto behave as AWS does where trailkeeper's correctness depends on it:
a CreateTrail of a name the region already holds answers ``TrailAlreadyExistsException`` (moto overwrites
the trail), and ``add_write_latency`` delays every mutating call by a random time, so that writers racing
on one document overlap as they do against AWS.

The operation is found from the request itself: ``X-Amz-Target`` (JSON protocols), the
``Action`` form/query parameter (query protocols: SNS, STS, IAM, EC2), and for S3 the method,
path depth (root, bucket, object) and query keys, matched against botocore's own S3 model.
S3 requests are expected path-style (``AwsSessions`` uses path style for custom endpoints).

    injector = FaultInjector()
    injector.add(FaultRule.throttle("cloudtrail", "CreateTrail", count=1))
    # ... serve `injector` (see moto_server.InProcessMotoServer), make calls ...
    assert injector.hits[0].operation == "CreateTrail"
"""

from __future__ import annotations

import functools
import io
import json
import random
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import botocore.session

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
FaultAction = Literal["throttle", "error", "delay", "reset", "garble"]

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,]+/\d{8}/[^/,]+/([^/,]+)/aws4_request")


@dataclass
class FaultRule:
    """Inject ``action`` into requests matching ``service`` and ``operation`` (``None``: any).

    ``count`` faults are injected (``None``: no limit); each matching request is hit with
    ``probability``. ``delay`` seconds are slept before acting (the whole point of ``delay``).
    """

    action: FaultAction
    service: str | None = None
    operation: str | None = None
    count: int | None = 1
    probability: float = 1.0
    status: int = 500
    delay: float = 0.0
    # What a garbled answer ends in after the first half of the real body.
    garbage: bytes = b"\x00<<garbled \xff}"
    injected: int = field(default=0, init=False)

    @classmethod
    def throttle(
        cls,
        service: str | None,
        operation: str | None = None,
        *,
        count: int | None = 1,
        probability: float = 1.0,
    ) -> FaultRule:
        return cls("throttle", service, operation, count=count, probability=probability)

    @classmethod
    def server_error(
        cls,
        service: str | None,
        operation: str | None = None,
        *,
        status: int = 500,
        count: int | None = 1,
        probability: float = 1.0,
    ) -> FaultRule:
        return cls("error", service, operation, count=count, probability=probability, status=status)

    @classmethod
    def slow(
        cls, service: str | None, operation: str | None = None, *, seconds: float, count: int | None = 1
    ) -> FaultRule:
        return cls("delay", service, operation, count=count, delay=seconds)

    @classmethod
    def reset(cls, service: str | None, operation: str | None = None, *, count: int | None = 1) -> FaultRule:
        return cls("reset", service, operation, count=count)

    @classmethod
    def garble(
        cls,
        service: str | None,
        operation: str | None = None,
        *,
        count: int | None = 1,
        garbage: bytes = b"\x00<<garbled \xff}",
    ) -> FaultRule:
        """The real answer cut in half and ended with ``garbage`` (by default not even UTF-8)."""
        return cls("garble", service, operation, count=count, garbage=garbage)

    def matches(self, service: str, operation: str) -> bool:
        if self.service is not None and self.service != service:
            return False
        if self.operation is not None and self.operation != operation:
            return False
        return self.count is None or self.injected < self.count


@dataclass(frozen=True)
class FaultHit:
    service: str
    operation: str
    action: FaultAction
    status: int | None


@dataclass(frozen=True)
class SeenRequest:
    service: str
    operation: str


def moto_app() -> WSGIApp:
    """moto's own server application, as ``moto_server`` serves it, with CloudTrail's puts replacing as
    AWS's do (cloudtrail_puts.py; imported here: it uses us)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from support.cloudtrail_puts import CloudTrailPutsFront

    app: WSGIApp = CloudTrailPutsFront(DomainDispatcherApplication(create_backend_app))
    return app


class FaultInjector:
    """WSGI middleware: inject the faults of its rules, pass everything else to ``app``."""

    def __init__(self, app: WSGIApp | None = None, *, seed: int | None = None) -> None:
        if app is None:
            # By default moto as every test meets it: behind AWS's hard limits (imported here: it uses us).
            from support.limits import LimitsFront

            app = LimitsFront(moto_app())
        self._app = app
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._hits: list[FaultHit] = []
        self._seen: list[SeenRequest] = []
        self._random = random.Random(seed)
        # (low, high) seconds every mutating call waits before moto sees it; None: no added latency.
        self._write_latency: tuple[float, float] | None = None
        # CreateTrail's existence check and moto's create must not interleave, or both would "win".
        self._create_trail_lock = threading.Lock()
        # (service, operation, callback, times left): run before moto sees a matching request.
        self._hooks: list[list[Any]] = []

    # -- control ---------------------------------------------------------------------------

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def add_write_latency(self, low: float = 0.05, high: float = 0.2) -> None:
        """Delay every mutating call (not Get/List/Describe/Head…) by a uniform random ``low``..``high`` s."""
        with self._lock:
            self._write_latency = (low, high)

    def before(
        self, service: str, operation: str, callback: Callable[[], None], *, count: int | None = 1
    ) -> None:
        """Run ``callback`` when a matching request arrives, before moto answers it (``count`` times; None:
        always): another writer acting in the middle of a call sequence. It may call moto itself."""
        with self._lock:
            self._hooks.append([service, operation, callback, count])

    def clear(self) -> None:
        """Drop all rules, hooks and the write latency, and forget hits and seen requests."""
        with self._lock:
            self._hooks.clear()
            self._write_latency = None
            self._rules.clear()
            self._hits.clear()
            self._seen.clear()

    @property
    def hits(self) -> list[FaultHit]:
        with self._lock:
            return list(self._hits)

    @property
    def seen(self) -> list[SeenRequest]:
        """Every request that came through, faulted or not (moto's own API excluded)."""
        with self._lock:
            return list(self._seen)

    # -- WSGI ------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return self._app(environ, start_response)
        service, operation = identify_request(environ)
        self._write_wait(operation)
        self._run_hooks(service, operation)
        rule = self._pick(service, operation)
        if rule is None:
            return self._as_aws(environ, start_response, service, operation)
        if rule.delay:
            time.sleep(rule.delay)
        if rule.action == "delay":
            return self._as_aws(environ, start_response, service, operation)
        if rule.action == "garble":
            return _garbled(self._as_aws, environ, start_response, service, operation, rule.garbage)
        if rule.action == "reset":
            _reset_connection(environ)
        status, code = _fault_status_and_code(rule, service)
        return _error_response(environ, start_response, service, status, code)

    def _run_hooks(self, service: str, operation: str) -> None:
        due: list[Callable[[], None]] = []
        with self._lock:
            for hook in self._hooks:
                if hook[0] == service and hook[1] == operation and (hook[3] is None or hook[3] > 0):
                    hook[3] = None if hook[3] is None else hook[3] - 1
                    due.append(hook[2])
        for callback in due:
            callback()

    def _write_wait(self, operation: str) -> None:
        with self._lock:
            latency = self._write_latency
            wait = self._random.uniform(*latency) if latency and not is_read_operation(operation) else 0.0
        if wait:
            time.sleep(wait)

    def _as_aws(
        self, environ: dict[str, Any], start_response: Callable[..., Any], service: str, operation: str
    ) -> Iterable[bytes]:
        """moto's answer, except where moto departs from AWS in a way trailkeeper relies on."""
        if service != "cloudtrail" or operation != "CreateTrail":
            return self._app(environ, start_response)
        name = str(json.loads(_buffer_body(environ) or b"{}").get("Name", ""))
        with self._create_trail_lock:
            if _trail_exists(environ, name):
                message = f"Trail {name} already exists for customer: {_account_of(environ)}"
                return _error_response(
                    environ, start_response, service, 400, "TrailAlreadyExistsException", message
                )
            return list(self._app(environ, start_response))

    def _pick(self, service: str, operation: str) -> FaultRule | None:
        with self._lock:
            self._seen.append(SeenRequest(service, operation))
            for rule in self._rules:
                if not rule.matches(service, operation):
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                rule.injected += 1
                status = (
                    None
                    if rule.action in ("delay", "reset", "garble")
                    else _fault_status_and_code(rule, service)[0]
                )
                self._hits.append(FaultHit(service, operation, rule.action, status))
                return rule
        return None


# -- identifying the operation ---------------------------------------------------------------

_READ_PREFIXES = ("Get", "List", "Describe", "Head", "Lookup")


def is_read_operation(operation: str) -> bool:
    return operation.startswith(_READ_PREFIXES)


def _credential_scope(environ: Mapping[str, Any]) -> tuple[str, str]:
    """(access key, region) of a SigV4-signed request; "" for what it does not carry."""
    match = re.search(r"Credential=([^/,]+)/\d{8}/([^/,]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    return (match.group(1), match.group(2)) if match else ("", "")


def _account_of(environ: Mapping[str, Any]) -> str:
    """The account moto acts in for this request: its header, else the one the access key belongs to."""
    from moto.iam.models import get_account_id_from

    return str(environ.get("HTTP_X_MOTO_ACCOUNT_ID") or get_account_id_from(_credential_scope(environ)[0]))


def _trail_exists(environ: Mapping[str, Any], name: str) -> bool:
    from moto.cloudtrail.models import cloudtrail_backends

    region = _credential_scope(environ)[1]
    return name in cloudtrail_backends[_account_of(environ)][region].trails


def identify_request(environ: dict[str, Any]) -> tuple[str, str]:
    """``(signing service, operation)`` of a request, ``"?"`` for what cannot be told."""
    match = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = match.group(1) if match else "?"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return service, target.rsplit(".", 1)[-1]
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if "Action" in query:
        return service, query["Action"][0]
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        form = parse_qs(_buffer_body(environ).decode("utf-8", "replace"))
        if "Action" in form:
            return service, form["Action"][0]
    if service == "s3":
        method = environ.get("REQUEST_METHOD", "GET")
        return service, s3_operation(method, environ.get("PATH_INFO", "/"), query, _request_headers(environ))
    return service, "?"


def _buffer_body(environ: dict[str, Any]) -> bytes:
    """Read the body and put an equivalent stream back for moto."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


@dataclass(frozen=True)
class _S3Route:
    operation: str
    method: str
    level: str  # "root" | "bucket" | "object"
    query_keys: frozenset[str]
    headers: frozenset[str]

    @property
    def specificity(self) -> int:
        return len(self.query_keys) + len(self.headers)


def _level(path: str) -> str:
    segments = [s for s in path.split("/") if s]
    return "root" if not segments else "bucket" if len(segments) == 1 else "object"


@functools.cache
def _s3_routes() -> tuple[_S3Route, ...]:
    """S3's operations by HTTP shape, from botocore's model (deprecated aliases left out).

    A route needs the query keys of its URI and its required query-string and header
    parameters: that is what tells UploadPart (``?partNumber&uploadId``) or CopyObject
    (``x-amz-copy-source``) from PutObject, which share method and path.
    """
    model = botocore.session.get_session().get_service_model("s3")
    routes = []
    for name in model.operation_names:
        operation = model.operation_model(name)
        if operation.deprecated:
            continue
        path, _, query = operation.http["requestUri"].partition("?")
        keys = {part.split("=", 1)[0] for part in query.split("&") if part}
        headers = set()
        shape = operation.input_shape
        if shape is not None:
            for member in shape.required_members:
                serialization = shape.members[member].serialization
                if serialization.get("location") == "querystring":
                    keys.add(serialization["name"])
                elif serialization.get("location") == "header":
                    headers.add(serialization["name"].lower())
        routes.append(
            _S3Route(name, operation.http["method"], _level(path), frozenset(keys), frozenset(headers))
        )
    return tuple(sorted(routes, key=lambda r: r.operation))


def s3_operation(method: str, path: str, query: Mapping[str, Any], headers: Iterable[str] = ()) -> str:
    """The S3 operation of a path-style request: the most specific route whose query keys and
    required headers (lower case names) the request carries."""
    level = _level(path)
    present = {h.lower() for h in headers}
    best: _S3Route | None = None
    for route in _s3_routes():
        if route.method != method or route.level != level:
            continue
        if not (route.query_keys <= query.keys() and route.headers <= present):
            continue
        if best is None or route.specificity > best.specificity:
            best = route
    return best.operation if best else "?"


def _request_headers(environ: Mapping[str, Any]) -> list[str]:
    return [key[5:].replace("_", "-").lower() for key in environ if key.startswith("HTTP_")]


# -- answering -------------------------------------------------------------------------------

_THROTTLE = {"s3": (503, "SlowDown"), "ec2": (503, "RequestLimitExceeded")}
_QUERY_THROTTLE = (400, "Throttling")
_JSON_THROTTLE = (400, "ThrottlingException")


def _fault_status_and_code(rule: FaultRule, service: str) -> tuple[int, str]:
    if rule.action == "throttle":
        return _THROTTLE.get(service, _QUERY_THROTTLE if service in _QUERY_SERVICES else _JSON_THROTTLE)
    if rule.action == "reset":
        return 500, "ConnectionReset"
    if service == "s3":
        return rule.status, "ServiceUnavailable" if rule.status == 503 else "InternalError"
    return rule.status, "ServiceUnavailable" if rule.status == 503 else "InternalFailure"


# Services speaking the query protocol (XML errors in <ErrorResponse>); EC2 has its own shape.
_QUERY_SERVICES = frozenset({"sns", "sts", "iam", "sqs", "cloudformation", "elasticloadbalancing"})

_REASONS = {400: "Bad Request", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


def _garbled(
    app: Callable[[dict[str, Any], Callable[..., Any], str, str], Iterable[bytes]],
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    service: str,
    operation: str,
    garbage: bytes,
) -> Iterable[bytes]:
    """The answer of ``app`` with the same status and a body cut in half and ended with ``garbage``."""
    answer: dict[str, Any] = {}

    def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer["status"], answer["headers"] = status, headers

    real = b"".join(app(environ, keep, service, operation))
    body = real[: len(real) // 2] + garbage
    headers = [(k, v) for k, v in answer["headers"] if k.lower() != "content-length"]
    headers.append(("Content-Length", str(len(body))))
    start_response(answer["status"], headers)
    return [body]


def _error_response(
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    service: str,
    status: int,
    code: str,
    message: str | None = None,
) -> Iterable[bytes]:
    request_id = str(uuid.uuid4())
    if message is None:
        message = "Rate exceeded" if status in (400, 429) or "Throttl" in code else "Injected fault"
    if code == "SlowDown":
        message = "Please reduce your request rate."
    if environ.get("HTTP_X_AMZ_TARGET"):
        content_type = environ.get("CONTENT_TYPE") or "application/x-amz-json-1.1"
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = [("Content-Type", content_type), ("x-amzn-RequestId", request_id)]
    elif service == "s3":
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message><RequestId>{request_id}</RequestId></Error>"
        ).encode()
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    elif service == "ec2":
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    else:
        fault_type = "Receiver" if status >= 500 else "Sender"
        body = (
            f'<ErrorResponse xmlns="https://{service}.amazonaws.com/doc/"><Error><Type>{fault_type}</Type>'
            f"<Code>{code}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    headers.append(("Content-Length", str(len(body))))
    start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
    return [body]


def _reset_connection(environ: dict[str, Any]) -> None:
    """Drop the connection without a byte of answer.

    Shutting the socket down ends it at once for both sides (the client reads end-of-stream
    where it waited for a status line; SO_LINGER 0 turns the final close into a TCP RST), and
    werkzeug's server, reading end-of-stream too, stops serving the connection instead of
    waiting for a next request on it. Raising ConnectionResetError is how a WSGI app tells
    werkzeug the client is gone: it then writes nothing.
    """
    _buffer_body(environ)  # consume the request so the client is waiting for an answer
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    raise ConnectionResetError("fault injector: connection reset")
