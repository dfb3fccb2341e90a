"""moto's server behind the tests' fronts, as a program: ``python -m support.fronted_moto HOST PORT``.

What ``python -m moto.server`` serves, wrapped in :class:`~support.limits.LimitsFront` so that every test
talking to the session's moto (the end-to-end tests among them) meets AWS's hard limits. Run with the
tests directory on ``PYTHONPATH`` (``moto_server.MotoServer`` does).
"""

from __future__ import annotations

import sys

from support.faults import WSGIApp, moto_app
from support.limits import LimitsFront


def fronted_app() -> WSGIApp:
    return LimitsFront(moto_app())


def main(argv: list[str]) -> None:
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    host, port = argv[0], int(argv[1])
    server = make_server(host, port, fronted_app(), threaded=True, request_handler=MotoRequestHandler)
    print(f"serving moto behind the limits front on http://{host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
