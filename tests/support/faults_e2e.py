"""Faults for the end-to-end harness: a region outage in front of moto, API conflicts in the cluster.

* :class:`RegionalFaultInjector` is a :class:`~support.faults.FaultInjector` that also keeps rules per
  AWS region. The region of a request is read from its SigV4 credential scope
  (``Credential=<key>/<date>/<region>/<service>/aws4_request``), which every boto3 call carries, so
  "eu-west-1 answers 503 to everything" is ``injector.region("eu-west-1").add(FaultRule(...))``.
* Faults of the Kubernetes API (409 Conflict on status writes) come from :mod:`support.kube_front`.
* :func:`moto_state` reads what moto holds (trails, buckets, policies, topics) in every region.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import boto3
from botocore.exceptions import ClientError

from support.faults import FaultHit, FaultInjector, WSGIApp

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
