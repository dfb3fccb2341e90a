"""moto over HTTP behind a WSGI middleware that counts every AWS request by operation and caller.

The operator is a separate process, so its calls are counted where they arrive: at moto. The server
runs in a subprocess of its own (``python -m bench.aws_counter``), so moto's work does not share a GIL
with the emulated Kubernetes API in the bench process; the bench reads the counts over HTTP:

* ``GET  /bench-api/calls``        every (caller, service, operation) seen: count and moto's own seconds
* ``POST /bench-api/calls/reset``  start counting afresh
* ``POST /moto-api/reset``         moto's own: forget every resource
* ``GET  /bench-api/quota``        with ``--quota``: CloudTrail requests let through per (account, region,
  category) and the number throttled (tests/support/quota.py in front of moto)

A request is the operator's when its User-Agent carries ``trailkeeper/`` (``AwsSessions`` adds it to
every client); anything else (the bench's raw boto3 floor) is counted as ``other``. Behind the counter,
moto answers behind the tests' limits front (``tests/support/limits.py``): AWS's hard limits (5 trails per
region per account, policy sizes, tags, selectors) are enforced as AWS enforces them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from bench.paths import REPO, subprocess_env

CALLS_PATH = "/bench-api/calls"
RESET_PATH = "/bench-api/calls/reset"
QUOTA_PATH = "/bench-api/quota"
OPERATOR_AGENT = "trailkeeper/"
START_TIMEOUT = 30.0

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class CallCount:
    """Requests of one operation from one caller: how many, and the seconds moto spent answering them."""

    caller: str  # "operator" | "other"
    service: str
    operation: str
    count: int
    seconds: float


class CountingApp:
    """WSGI middleware: count each request by (caller, service, operation), then let moto answer it."""

    def __init__(self, app: WSGIApp, quota: Any = None) -> None:
        # The operation parser of the fault injector knows every protocol moto speaks (JSON target,
        # query Action, S3 REST shapes from botocore's model): one parser for tests and bench.
        from support.faults import identify_request

        self._app = app
        self._quota = quota  # a support.quota.QuotaFront inside `app`, or None
        self._identify = identify_request
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], list[float]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == CALLS_PATH:
            return self._answer(start_response, self.snapshot())
        if path == RESET_PATH:
            with self._lock:
                self._counts.clear()
            if self._quota is not None:
                self._quota.clear()
            return self._answer(start_response, [])
        if path == QUOTA_PATH and self._quota is not None:
            passed = [[*key, n] for key, n in sorted(self._quota.passed_by().items())]
            return self._answer(start_response, {"passed": passed, "throttled": len(self._quota.throttled)})
        if path.startswith("/moto-api"):
            return self._app(environ, start_response)
        service, operation = self._identify(environ)
        caller = "operator" if OPERATOR_AGENT in environ.get("HTTP_USER_AGENT", "") else "other"
        started = time.perf_counter()
        try:
            # moto answers with a list (it never streams), so the time to return is its service time.
            return self._app(environ, start_response)
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                entry = self._counts.setdefault((caller, service, operation), [0, 0.0])
                entry[0] += 1
                entry[1] += elapsed

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"caller": c, "service": s, "operation": o, "count": int(n), "seconds": t}
                for (c, s, o), (n, t) in sorted(self._counts.items())
            ]

    @staticmethod
    def _answer(start_response: Callable[..., Any], body: Any) -> Iterable[bytes]:
        data = json.dumps(body).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


def serve(host: str, port: int, quota: bool = False) -> None:
    """Serve moto behind the counter until killed (and behind CloudTrail's request quotas if `quota`);
    print the URL as the first line of stdout."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    from support.faults import moto_app
    from support.limits import LimitsFront
    from support.quota import QuotaFront

    class QuietHandler(MotoRequestHandler):
        """No line on stderr for each of thousands of requests."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            return None

    limited: WSGIApp = LimitsFront(moto_app())
    front = QuotaFront(limited) if quota else None
    app = CountingApp(front or limited, quota=front)
    server = make_server(host, port, app, threaded=True, request_handler=QuietHandler)
    print(f"http://{host}:{server.server_port}", flush=True)
    server.serve_forever()


class CountingMoto:
    """The counting moto server as a subprocess, and a client of its counts."""

    def __init__(self, log: Path, host: str = "127.0.0.1", *, quota: bool = False) -> None:
        self.host = host
        self.log = log
        self.quota = quota
        self.url = ""
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Self:
        env = subprocess_env()
        # moto must not forward to a developer's endpoint.
        env.pop("AWS_ENDPOINT_URL", None)
        with self.log.open("w") as err:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    *("-m", "bench.aws_counter", "--host", self.host, "--port", "0"),
                    *(["--quota"] if self.quota else []),
                ],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("http://"):
            self.close()
            raise RuntimeError(f"the counting moto server did not start; see {self.log}")
        self.url = line
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                self.counts()
                return self
            except OSError:
                time.sleep(0.05)
        self.close()
        raise RuntimeError("the counting moto server did not answer")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def _post(self, path: str) -> None:
        request = urllib.request.Request(self.url + path, method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def reset_aws(self) -> None:
        """Forget every AWS resource (moto's reset) and every count."""
        self._post("/moto-api/reset")
        self._post(RESET_PATH)

    def reset_counts(self) -> None:
        self._post(RESET_PATH)

    def quota_counts(self) -> tuple[dict[tuple[str, str, str], int], int]:
        """With the quota front: CloudTrail requests let through per (account, region, category), and how
        many were throttled, since the last reset."""
        with urllib.request.urlopen(self.url + QUOTA_PATH, timeout=30) as response:
            body = json.loads(response.read())
        return {(a, r, c): int(n) for a, r, c, n in body["passed"]}, int(body["throttled"])

    def counts(self) -> list[CallCount]:
        with urllib.request.urlopen(self.url + CALLS_PATH, timeout=30) as response:
            rows = json.loads(response.read())
        return [CallCount(**row) for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description="moto behind a request counter")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--quota", action="store_true", help="CloudTrail's request quotas in front of moto")
    args = parser.parse_args()
    # Not inherited from the environment: a stray setting would send moto's own calls elsewhere.
    os.environ.pop("AWS_ENDPOINT_URL", None)
    serve(args.host, args.port, args.quota)


if __name__ == "__main__":
    main()
