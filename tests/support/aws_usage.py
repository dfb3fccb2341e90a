"""pytest plugin: which AWS operations the operator's code calls, collected over the whole test run.

Registered from ``conftest.py`` (``pytest_plugins = ["support.aws_usage"]``). From then on every botocore
client made in the test process gets a ``before-call`` event handler reporting to one session-wide
:class:`AwsUsage` -- the clients of the ``make_aws``/``aws`` fixtures' sessions, and those of sessions the
code under test makes itself (the CLI's, which have no CallRecorder) -- and ``tests/test_iam_policy.py``
runs after every other test, so it checks the IAM policy against everything the suite made the code do.

Which calls count: those trailkeeper's own code makes (the frame calling into boto3 is trailkeeper's),
entered through anything but a resource client (``aws/trails.py``, ``aws/buckets.py``, ``aws/topics.py``).
The reconcilers, the CLI, the compliance observation and the sessions are how the operator reaches AWS;
a test calling boto3 itself to set up or inspect moto needs no permission of the operator's, and neither
does a unit test of a client method no entry point uses (``TopicClient.set_tags``). Attempted calls
count, failed ones included: a call the code makes needs its permission even when AWS answers NotFound.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

import botocore.session
import pytest

if TYPE_CHECKING:
    from botocore.model import OperationModel

_OPERATOR = "trailkeeper."
# Libraries the entry points use; how a test drives them directly says nothing of what the operator calls.
_RESOURCE_CLIENTS = frozenset(
    {
        "trailkeeper.aws.trails",
        "trailkeeper.aws.buckets",
        "trailkeeper.aws.topics",
        "trailkeeper.aws.monitoring",
    }
)
_SDK = frozenset({"botocore", "boto3"})

Operation = tuple[str, str]


def _module(frame: FrameType) -> str:
    return str(frame.f_globals.get("__name__", ""))


def _sdk_caller(frame: FrameType | None) -> FrameType | None:
    """The frame that called into boto3/botocore, seen from inside a botocore event handler."""
    inside = False
    while frame is not None:
        if _module(frame).split(".", 1)[0] in _SDK:
            inside = True
        elif inside:
            return frame
        frame = frame.f_back
    return None


def on_operator_path(frame: FrameType | None) -> bool:
    """Whether the AWS call being handled was made by trailkeeper's code (not by a test, nor by a test's
    callback running inside it), entered elsewhere than through a resource client."""
    caller = _sdk_caller(frame)
    if caller is None or not _module(caller).startswith(_OPERATOR):
        return False
    entry = caller
    outer = caller.f_back
    while outer is not None:
        if _module(outer).startswith(_OPERATOR):
            entry = outer
        outer = outer.f_back
    return _module(entry) not in _RESOURCE_CLIENTS


class AwsUsage:
    """(service, operation) pairs called, thread-safe: the operator calls AWS from worker threads.

    The handler runs in the thread making the call, inside botocore's ``before-call`` event, so the
    stack it looks at is the stack of the code making the call.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._operator: set[Operation] = set()
        self._all: set[Operation] = set()

    def before_call(self, model: OperationModel, **_: Any) -> None:
        operation = (model.service_model.service_name, model.name)
        from_operator = on_operator_path(sys._getframe(1))
        with self._lock:
            self._all.add(operation)
            if from_operator:
                self._operator.add(operation)

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Watch every botocore client created while inside."""
        original = botocore.session.Session.create_client

        @functools.wraps(original)
        def create_client(session: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            client.meta.events.register("before-call", self.before_call)
            return client

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(botocore.session.Session, "create_client", create_client)
            yield

    @property
    def operator_operations(self) -> frozenset[Operation]:
        """Called on operator code paths: what its IAM policy must allow."""
        with self._lock:
            return frozenset(self._operator)

    @property
    def all_operations(self) -> frozenset[Operation]:
        """Every call seen, test set-up included (for diagnostics)."""
        with self._lock:
            return frozenset(self._all)


USAGE_KEY = pytest.StashKey[AwsUsage]()
_CLEANUP_KEY = pytest.StashKey[ExitStack]()
IAM_POLICY_TESTS = "test_iam_policy.py"


def pytest_configure(config: pytest.Config) -> None:
    usage = AwsUsage()
    cleanup = ExitStack()
    cleanup.enter_context(usage.watching())
    config.stash[USAGE_KEY] = usage
    config.stash[_CLEANUP_KEY] = cleanup


def pytest_unconfigure(config: pytest.Config) -> None:
    cleanup = config.stash.get(_CLEANUP_KEY, None)
    if cleanup is not None:
        cleanup.close()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The IAM policy tests last, after everything whose AWS calls they check (order kept otherwise)."""
    items.sort(key=lambda item: item.path.name == IAM_POLICY_TESTS)


@pytest.fixture(scope="session")
def aws_usage(pytestconfig: pytest.Config) -> AwsUsage:
    """The session's collector of AWS operations called on operator code paths."""
    return pytestconfig.stash[USAGE_KEY]
