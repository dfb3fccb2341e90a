"""s3control against moto: botocore sends s3control requests to ``<account id>.<endpoint host>``, which
does not resolve for 127.0.0.1. A ``before-send`` hook on every client made inside puts the request back
on the endpoint's own host; moto reads the account from the ``x-amz-account-id`` header anyway.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import botocore.session
import pytest

_ACCOUNT_HOST = re.compile(r"^(https?://)\d{12}\.")


def _rewrite(request: Any, **_: Any) -> None:
    request.url = _ACCOUNT_HOST.sub(r"\1", request.url)


@contextmanager
def s3control_on_endpoint_host() -> Iterator[None]:
    """Every botocore client created while inside sends s3control requests to the endpoint's host."""
    original = botocore.session.Session.create_client

    @functools.wraps(original)
    def create_client(session: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = original(session, *args, **kwargs)
        client.meta.events.register("before-send.s3-control", _rewrite)
        return client

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session.Session, "create_client", create_client)
        yield
