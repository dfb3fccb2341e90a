"""Shared pytest fixtures, grouped by the backend they provide.

Sections: test environment · moto over HTTP · AWS sessions · fault injection · the operator process.
Add new fixtures to the section of their backend, or start a new section below.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.cis_moto import operator_against, serve_cis_moto
from support.cluster import Cluster, KubeAccess, OperatorProcess, kube_access
from support.faults import FaultInjector
from support.moto_server import TEST_REGION, InProcessMotoServer, MakeAws, MotoServer
from trailkeeper.aws.calls import CallRecorder
from trailkeeper.aws.ratelimit import RateLimiter
from trailkeeper.aws.session import AwsSessions

# ---------------------------------------------------------------------------------------------
# Test environment
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def aws_test_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fake credentials and a fixed region for the whole session, and nothing of the developer's
    own AWS setup (profiles, config files, endpoint, instance metadata) leaking into a test."""
    empty = tmp_path_factory.mktemp("aws-config") / "none"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", TEST_REGION)
        mp.setenv("AWS_REGION", TEST_REGION)
        mp.setenv("AWS_CONFIG_FILE", str(empty))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        yield


# ---------------------------------------------------------------------------------------------
# moto over HTTP (a subprocess, one per test session, reset before each test that uses it)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_server(aws_test_environment: None) -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="session")
def moto_endpoint(moto_server: MotoServer) -> str:
    """URL of the session's moto server, e.g. ``http://127.0.0.1:40123``."""
    return moto_server.url


# ---------------------------------------------------------------------------------------------
# AWS sessions
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def make_aws() -> Iterator[MakeAws]:
    """Factory of :class:`AwsSessions` for tests: ``make_aws(endpoint_url, **overrides)``.

    Defaults: region us-east-1, no rate limiting, a fresh CallRecorder (``.recorder``) and
    botocore retries off (``max_attempts=1``), so every recorded call is one HTTP request and a
    moto 500 (an operation it does not implement) fails at once instead of after backoffs.
    """
    made: list[AwsSessions] = []

    def make(endpoint_url: str, **overrides: Any) -> AwsSessions:
        options: dict[str, Any] = {
            "default_region": TEST_REGION,
            "rate_limiter": RateLimiter.disabled(),
            "recorder": CallRecorder(),
            "max_attempts": 1,
        }
        options.update(overrides)
        sessions = AwsSessions(endpoint_url=endpoint_url, **options)
        made.append(sessions)
        return sessions

    yield make
    for sessions in made:
        sessions.close()


@pytest.fixture
def aws(moto_endpoint: str, moto_server: MotoServer, make_aws: MakeAws) -> AwsSessions:
    """AwsSessions against a freshly reset moto (see ``make_aws`` for its settings).
    ``aws.recorder`` holds the calls the test made."""
    moto_server.reset()
    return make_aws(moto_endpoint)


# ---------------------------------------------------------------------------------------------
# Fault injection (moto in-process behind support.faults.FaultInjector)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def faulty_moto(aws_test_environment: None) -> Iterator[InProcessMotoServer]:
    with InProcessMotoServer() as server:
        yield server


@pytest.fixture
def fault_injector(faulty_moto: InProcessMotoServer) -> Iterator[FaultInjector]:
    """The injector in front of the in-process moto, with no rules, hits or seen requests."""
    faulty_moto.injector.clear()
    yield faulty_moto.injector
    faulty_moto.injector.clear()


@pytest.fixture
def faulty_aws(
    faulty_moto: InProcessMotoServer, fault_injector: FaultInjector, make_aws: MakeAws
) -> AwsSessions:
    """AwsSessions against the fault-injecting moto (reset), with botocore's standard retries
    (5 attempts) on, so tests see what survives injected faults; add rules via
    ``fault_injector``. Use ``make_aws(faulty_moto.url, max_attempts=1)`` to see raw faults."""
    faulty_moto.reset()
    return make_aws(faulty_moto.url, max_attempts=5)


# ---------------------------------------------------------------------------------------------
# The Kubernetes API server (one per session) and the operator process (end-to-end tests)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeAccess]:
    """The session's real API server (see support.cluster.kube_access), CRDs and operator RBAC installed."""
    with kube_access(tmp_path_factory.mktemp("kube")) as access:
        yield access


@pytest.fixture
def cluster(kube: KubeAccess) -> Iterator[Cluster]:
    """The API server with no trailkeeper object, event or peering left from another test."""
    with Cluster(kube) as view:
        yield view


@pytest.fixture(scope="module")
def cis_moto() -> Iterator[InProcessMotoServer]:
    """moto in-process behind the fronts the CIS controls need (support/cis_moto.py)."""
    with serve_cis_moto() as server:
        yield server


@pytest.fixture
def cis_operator(
    cluster: Cluster, cis_moto: InProcessMotoServer, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """`trailkeeper run` against the API server and a freshly reset `cis_moto`."""
    with operator_against(cluster, cis_moto, tmp_path / "operator.log") as process:
        yield process


@pytest.fixture
def operator(
    cluster: Cluster, moto_server: MotoServer, moto_endpoint: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """`trailkeeper run` against the API server and a freshly reset moto."""
    moto_server.reset()
    with OperatorProcess(cluster.kubeconfig, moto_endpoint, tmp_path / "operator.log") as process:
        yield process
