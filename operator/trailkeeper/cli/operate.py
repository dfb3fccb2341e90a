"""`trailkeeper run`: the operator against a real cluster (KUBECONFIG or in-cluster credentials)."""

from __future__ import annotations

import asyncio
import logging

import kopf

from trailkeeper.aws.calls import CallRecorder
from trailkeeper.aws.session import AwsSessions
from trailkeeper.kube.config import OperatorConfig, Runtime
from trailkeeper.kube.process import run_operator


def configure_logging(level: str, log_format: str) -> None:
    kopf.configure(
        verbose=level.upper() == "DEBUG",
        quiet=level.upper() in ("WARNING", "ERROR"),
        log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.PLAIN,
    )
    logging.getLogger("botocore").setLevel(logging.WARNING)


def make_runtime(config: OperatorConfig, *, endpoint_url: str | None, region: str | None) -> Runtime:
    sessions = AwsSessions(endpoint_url=endpoint_url, default_region=region, recorder=CallRecorder())
    return Runtime(config=config, sessions=sessions)


def run(config: OperatorConfig, *, endpoint_url: str | None, region: str | None) -> None:
    runtime = make_runtime(config, endpoint_url=endpoint_url, region=region)
    asyncio.run(run_operator(runtime))
