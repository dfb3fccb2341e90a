"""`trailkeeper run`: the operator against a real cluster (KUBECONFIG or in-cluster credentials)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import kopf

from trailkeeper.aws.calls import CallRecorder
from trailkeeper.aws.ratelimit import RateLimiter
from trailkeeper.aws.session import AwsSessions
from trailkeeper.kube.config import OperatorConfig, Runtime
from trailkeeper.kube.process import run_operator
from trailkeeper.reconcile.tenancy_file import TenancyFile


def configure_logging(level: str, log_format: str) -> None:
    kopf.configure(
        verbose=level.upper() == "DEBUG",
        quiet=level.upper() in ("WARNING", "ERROR"),
        log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.PLAIN,
    )
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def make_runtime(
    config: OperatorConfig, *, endpoint_url: str | None, region: str | None, rate_limited: bool = True
) -> Runtime:
    # Without a limit only for local emulators: AWS's CloudTrail quotas (1 TPS for writes) would make a
    # sandbox or a test fleet wait for nothing.
    limiter = RateLimiter.from_env() if rate_limited else RateLimiter.disabled()
    sessions = AwsSessions(
        endpoint_url=endpoint_url, default_region=region, recorder=CallRecorder(), rate_limiter=limiter
    )
    tenancy = TenancyFile(Path(config.tenancy_policy)) if config.tenancy_policy else None
    return Runtime(config=config, sessions=sessions, tenancy=tenancy)


def run(config: OperatorConfig, *, endpoint_url: str | None, region: str | None, rate_limited: bool) -> None:
    runtime = make_runtime(config, endpoint_url=endpoint_url, region=region, rate_limited=rate_limited)
    asyncio.run(run_operator(runtime))
