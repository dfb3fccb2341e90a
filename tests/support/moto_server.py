"""moto as a real HTTP endpoint for the tests.

``MotoServer`` runs moto's server in a subprocess, behind :class:`~support.limits.LimitsFront` (AWS's
hard limits), so the code under test talks to it over HTTP exactly as it would to AWS, and moto's
in-memory state lives outside the test process.
``InProcessMotoServer`` serves moto's WSGI app from a thread of the test process, behind a
:class:`~support.faults.FaultInjector`, for tests that need throttles, errors or dropped
connections (moto has no fault injection of its own).

Both answer ``reset()`` (moto's ``POST /moto-api/reset``, about a millisecond) between tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Self

from support.faults import FaultInjector, WSGIApp

if TYPE_CHECKING:
    from trailkeeper.aws.session import AwsSessions

HOST = "127.0.0.1"
_TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT = 30.0
TEST_REGION = "us-east-1"
# The account moto acts in for credentials it did not hand out through STS.
MOTO_DEFAULT_ACCOUNT = "123456789012"

# The type of conftest's ``make_aws`` fixture: ``make_aws(endpoint_url, **AwsSessions options)``.
MakeAws = Callable[..., "AwsSessions"]


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def is_ready(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def reset_moto(url: str) -> None:
    """Forget every resource in every account and region."""
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != 200:
            raise RuntimeError(f"moto reset answered {response.status}")


class _Server:
    url: str

    def reset(self) -> None:
        reset_moto(self.url)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class MotoServer(_Server):
    """moto's server behind the limits front (``support.fronted_moto``) on a free port of 127.0.0.1."""

    def __init__(self, host: str = HOST, port: int | None = None) -> None:
        self.host = host
        self.port = port
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        # A free port can be taken between probing and binding; a second port almost never is.
        attempts = 1 if self.port else 3
        for _ in range(attempts):
            port = self.port or free_port(self.host)
            if self._start_on(port):
                return
        raise RuntimeError(f"moto server did not start:\n{self._log_tail()}")

    def _start_on(self, port: int) -> bool:
        self.stop()
        # Lives as long as the process (closed in stop()); read back when the server fails.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115
        env = dict(os.environ)
        # The server must not pick up a developer's real AWS settings, nor be told to proxy.
        env.pop("AWS_ENDPOINT_URL", None)
        # moto behind the tests' fronts (AWS's hard limits), importable from the tests directory.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_TESTS_DIR, env.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "support.fronted_moto", self.host, str(port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        url = f"http://{self.host}:{port}"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            if is_ready(url, timeout=0.5):
                self.port = port
                self.url = url
                return True
            time.sleep(0.05)
        return False

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()[-4000:].decode("utf-8", "replace")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self._log is not None and process is not None:
            self._log.close()
            self._log = None


class InProcessMotoServer(_Server):
    """moto's WSGI app, wrapped by a fault injector, served by werkzeug from a thread."""

    def __init__(self, injector: FaultInjector | None = None, host: str = HOST) -> None:
        self.injector = injector if injector is not None else FaultInjector()
        self.host = host
        self.url = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):
            """Without a line on stderr for every request."""

            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                return None

        app: WSGIApp = self.injector
        self._server = make_server(self.host, 0, app, threaded=True, request_handler=QuietHandler)
        self.url = f"http://{self.host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-faults", daemon=True)
        self._thread.start()
        # moto keeps its backends in this process: another server's AWS would still be there.
        self.reset()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
