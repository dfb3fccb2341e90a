"""moto as the CIS controls meet it on AWS: MFA Delete kept, CloudWatch Logs deliveries reported.

moto takes PutBucketVersioning's `MfaDelete` and forgets it: GetBucketVersioning never has `MFADelete`,
so CIS-2.1.3 cannot pass against moto, whatever the bucket owner does. :class:`MfaDeleteFront` keeps what
a PutBucketVersioning made with the `x-amz-mfa` header (how the root user turns it on, the only way
AWS allows) set, and adds it to GetBucketVersioning answers, as S3 does. With the
:class:`~support.cloudwatch_delivery.CloudWatchDeliveryFront` (trails with a log group have delivered),
an account can pass every CIS CloudTrail and Monitoring control, as it can on AWS.

`serve_cis_moto` serves that in this process; `operator_against` runs the operator against it.
Test-only: the operator has no code for these moto gaps.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from support.cloudwatch_delivery import CloudWatchDeliveryFront
from support.cluster import Cluster, OperatorProcess
from support.faults import FaultInjector, WSGIApp, _buffer_body, identify_request, moto_app
from support.limits import LimitsFront
from support.moto_server import InProcessMotoServer

_MFA_DELETE = re.compile(rb"<MfaDelete>\s*(Enabled|Disabled)\s*</MfaDelete>")


class MfaDeleteFront:
    """WSGI middleware in front of moto: MFA Delete set by PutBucketVersioning is kept and answered."""

    def __init__(self, app: WSGIApp) -> None:
        self._app = app
        self._mfa_delete: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/moto-api/reset"):
            with self._lock:
                self._mfa_delete.clear()
        if path.startswith("/moto-api") or "versioning" not in parse_qs(
            environ.get("QUERY_STRING", ""), keep_blank_values=True
        ):
            return self._app(environ, start_response)
        bucket = path.strip("/").split("/", 1)[0]
        operation = identify_request(environ)[1]
        if operation == "PutBucketVersioning":
            found = _MFA_DELETE.search(_buffer_body(environ))
            # AWS refuses MfaDelete without the root user's MFA device in x-amz-mfa; moto ignores both.
            if found and environ.get("HTTP_X_AMZ_MFA"):
                with self._lock:
                    self._mfa_delete[bucket] = found.group(1).decode()
            return self._app(environ, start_response)
        if operation != "GetBucketVersioning":
            return self._app(environ, start_response)
        with self._lock:
            state = self._mfa_delete.get(bucket)
        if state is None:
            return self._app(environ, start_response)
        answer: dict[str, Any] = {}

        def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            answer["status"], answer["headers"] = status, headers

        body = b"".join(self._app(environ, keep))
        if answer["status"].startswith("200"):
            body = body.replace(
                b"</VersioningConfiguration>",
                f"<MfaDelete>{state}</MfaDelete></VersioningConfiguration>".encode(),
            )
        headers = [(k, v) for k, v in answer["headers"] if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(answer["status"], headers)
        return [body]


@contextmanager
def serve_cis_moto() -> Iterator[InProcessMotoServer]:
    """moto behind AWS's limits, MFA Delete kept and CloudWatch Logs deliveries 5 minutes old."""
    app = LimitsFront(MfaDeleteFront(CloudWatchDeliveryFront(moto_app())))
    with InProcessMotoServer(FaultInjector(app)) as server:
        yield server


@contextmanager
def operator_against(cluster: Cluster, server: InProcessMotoServer, log: Path) -> Iterator[OperatorProcess]:
    """`trailkeeper run` against the API server and `server`, freshly reset."""
    server.reset()
    # Compliance evaluated every 5 s, in proportion to the tests' 0.05 resync scale (300 s by default):
    # a change pass that could not evaluate (a failure on a loaded machine) is made up for at once.
    with OperatorProcess(cluster.kubeconfig, server.url, log, "--compliance-interval", "5") as process:
        yield process
