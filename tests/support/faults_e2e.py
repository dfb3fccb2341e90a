"""Faults for the end-to-end harness: a region outage in front of moto, API conflicts in the cluster.

* :class:`RegionalFaultInjector` is a :class:`~support.faults.FaultInjector` that also keeps rules per
  AWS region. The region of a request is read from its SigV4 credential scope
  (``Credential=<key>/<date>/<region>/<service>/aws4_request``), which every boto3 call carries, so
  "eu-west-1 answers 503 to everything" is ``injector.region("eu-west-1").add(FaultRule(...))``.
* :class:`FaultyCluster` is the :class:`~support.cluster.EmulatedCluster` with a handle on its
  :class:`~trailkeeper.kube.emulator.KubeEmulator`, so kmock reactions (``emu[criteria][:n] << 409``)
  can be added from the test thread while the operator runs.
* :func:`moto_state` reads what moto holds (trails, buckets, policies, topics) in every region.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import boto3
import kmock
from botocore.exceptions import ClientError

from support.cluster import EmulatedCluster
from support.faults import FaultHit, FaultInjector, WSGIApp
from trailkeeper.kube.emulator import KubeEmulator

T = TypeVar("T")

_SCOPE_REGION = re.compile(r"Credential=[^/,]+/\d{8}/([^/,]+)/[^/,]+/aws4_request")


def request_region(environ: dict[str, Any]) -> str | None:
    """The region a request is signed for (its SigV4 credential scope), or None when unsigned."""
    match = _SCOPE_REGION.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else None


class RegionalFaultInjector(FaultInjector):
    """A fault injector with rules for every region and, through :meth:`region`, for one region.

    A request signed for a region with rules of its own meets those first; whatever they let through
    meets the rules for every region, then moto.
    """

    def __init__(self, app: WSGIApp | None = None, *, seed: int | None = None) -> None:
        super().__init__(app, seed=seed)
        self._regional: dict[str, FaultInjector] = {}
        self._regional_lock = threading.Lock()

    def region(self, name: str) -> FaultInjector:
        """The injector of the requests signed for region ``name`` (made on first use)."""
        with self._regional_lock:
            injector = self._regional.get(name)
            if injector is None:
                injector = self._regional[name] = FaultInjector(self._everywhere)
            return injector

    def _everywhere(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return FaultInjector.__call__(self, environ, start_response)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._regional_lock:
            regional = self._regional.get(request_region(environ) or "")
        if regional is None:
            return super().__call__(environ, start_response)
        return regional(environ, start_response)

    def clear(self) -> None:
        super().clear()
        with self._regional_lock:
            self._regional.clear()

    @property
    def all_hits(self) -> list[FaultHit]:
        """Faults injected by the rules for every region and by those of each region."""
        with self._regional_lock:
            regional = list(self._regional.values())
        return self.hits + [hit for injector in regional for hit in injector.hits]


class FaultyCluster(EmulatedCluster):
    """The emulated cluster, with its emulator at hand for kmock fault reactions.

    ``request_history`` bounds the requests the emulator remembers: kmock matches every request against
    every reaction by filtering the remembered ones, so a long history makes each request slower. A small
    one suits a test that sends many objects and counts no requests; a slice reaction (``[:n]``) needs the
    requests it answered to stay remembered, so keep the default when using one.
    """

    def __init__(self, kubeconfig: Path, *, request_history: int = 10_000) -> None:
        super().__init__(kubeconfig, request_history=request_history)

    @property
    def emulator(self) -> KubeEmulator:
        assert self.api is not None, "the cluster is not running"
        return self.api.emulator

    def on_loop(self, action: Callable[[KubeEmulator], T]) -> T:
        """Run ``action(emulator)`` on the emulator's event loop (the DSL is not thread-safe)."""
        assert self._loop is not None

        async def call() -> T:
            return action(self.emulator)

        coroutine: Awaitable[T] = call()
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)  # type: ignore[arg-type]

    def conflict_status_patches(self, plural: str, name: str, count: int) -> Callable[[], int]:
        """Answer the next ``count`` PATCHes of the status of ``<plural>/<name>`` (in any namespace) with
        409 Conflict, as an API server does when another writer changed the object first. Returns how many
        were answered so far.

        kmock slices count the matching requests since the emulator started; the request id criterion
        makes them count from now on (ids grow with the remembered requests: keep the default history).
        """
        resource = kmock.resource("trailkeeper.io", "v1alpha1", plural)
        status = {
            "apiVersion": "v1",
            "kind": "Status",
            "status": "Failure",
            "reason": "Conflict",
            "code": 409,
            "message": f"Operation cannot be fulfilled on {plural}.trailkeeper.io: "
            "the object has been modified; please apply your changes to the latest version and try again",
        }

        def install(emulator: KubeEmulator) -> Any:
            first = len(emulator._requests)
            view = emulator[kmock.action.UPDATE, resource, kmock.name(name), kmock.subresource("status")]
            return view[lambda request: request.id >= first][:count] << 409 << status

        reaction = self.on_loop(install)
        return lambda: self.on_loop(lambda _: len(list(reaction)))


# ---------------------------------------------------------------------------------------------
# What moto holds
# ---------------------------------------------------------------------------------------------


def client(service: str, endpoint: str, region: str = "us-east-1") -> Any:
    return boto3.client(service, region_name=region, endpoint_url=endpoint)  # type: ignore[call-overload]


@dataclass
class TrailRecord:
    name: str
    region: str
    arn: str
    bucket: str
    tags: dict[str, str]
    is_logging: bool


@dataclass
class MotoState:
    """Trails (home region only, shadows left out), buckets with their policies and tags, and topics."""

    trails: list[TrailRecord] = field(default_factory=list)
    buckets: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    bucket_tags: dict[str, dict[str, str]] = field(default_factory=dict)
    topics: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    def trail_keys(self) -> list[tuple[str, str]]:
        return sorted((t.name, t.region) for t in self.trails)

    def statement_sids(self, bucket: str) -> set[str]:
        policy = self.buckets.get(bucket) or {}
        return {str(s.get("Sid")) for s in policy.get("Statement") or []}


def moto_state(endpoint: str, regions: Iterable[str]) -> MotoState:
    state = MotoState()
    for region in regions:
        cloudtrail = client("cloudtrail", endpoint, region)
        for trail in cloudtrail.describe_trails(includeShadowTrails=False)["trailList"]:
            if f":{region}:" not in trail["TrailARN"]:
                continue  # moto lists every region's trails from every region
            tags = cloudtrail.list_tags(ResourceIdList=[trail["TrailARN"]])["ResourceTagList"]
            tag_map = {t["Key"]: t["Value"] for item in tags for t in item.get("TagsList") or []}
            status = cloudtrail.get_trail_status(Name=trail["TrailARN"])
            state.trails.append(
                TrailRecord(
                    trail["Name"],
                    region,
                    trail["TrailARN"],
                    trail.get("S3BucketName", ""),
                    tag_map,
                    bool(status.get("IsLogging")),
                )
            )
        sns = client("sns", endpoint, region)
        for topic in sns.list_topics()["Topics"]:
            arn = topic["TopicArn"]
            policy = sns.get_topic_attributes(TopicArn=arn)["Attributes"].get("Policy")
            state.topics[arn] = json.loads(policy) if policy else None
    s3 = client("s3", endpoint)
    for bucket in s3.list_buckets()["Buckets"]:
        name = bucket["Name"]
        try:
            state.buckets[name] = json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])
        except ClientError:
            state.buckets[name] = None
        try:
            tag_set = s3.get_bucket_tagging(Bucket=name)["TagSet"]
        except ClientError:
            tag_set = []
        state.bucket_tags[name] = {t["Key"]: t["Value"] for t in tag_set}
    return state
