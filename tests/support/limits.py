"""AWS's hard limits in front of moto, which checks none of them.

A WSGI middleware refusing what AWS refuses, with AWS's own error codes and messages, so that a test
behind it fails where AWS would fail:

* CloudTrail: at most 5 trails per region per account, a multi-region trail counting in every region
  ("Quotas in AWS CloudTrail": not adjustable) -> ``MaximumNumberOfTrailsExceededException``
  "User: <account> already has 5 trails in <region>.";
* CloudTrail event selectors: 5 per trail, 250 data resources across a trail's selectors, 500 condition
  values across its advanced selectors (same page) -> ``InvalidEventSelectorsException``;
* tags: 50 per trail, bucket and topic -> CloudTrail ``TagsLimitExceededException``, S3 ``BadRequest``,
  SNS ``TagLimitExceeded``;
* an S3 bucket policy of more than 20 KB (S3 User Guide, "Bucket policies and user policies") ->
  ``PolicyTooLarge``; an SNS topic policy of more than 30 KB or 100 statements (SNS Developer Guide,
  "Policy quotas") -> ``InvalidParameter``.

A policy's size is counted as AWS counts it: the document without the whitespace between JSON tokens.
``refused`` lists every refusal, for tests that check the product never ran into one.

Behind it sits :class:`~support.bucket_access.BucketAccessFront` (``access``): another account's bucket
refused with AccessDenied, and a trail whose bucket policy does not let CloudTrail deliver refused with
InsufficientS3BucketPolicyException, as AWS does.

    front = LimitsFront(moto_app())
    server = InProcessMotoServer(FaultInjector(front))
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from support.bucket_access import BucketAccessFront
from support.faults import (
    WSGIApp,
    _account_of,
    _buffer_body,
    _credential_scope,
    _error_response,
    identify_request,
)
from support.records import Refusals

TRAILS_PER_REGION = 5
EVENT_SELECTORS_PER_TRAIL = 5
DATA_RESOURCES_PER_TRAIL = 250
ADVANCED_CONDITION_VALUES_PER_TRAIL = 500
TAGS_PER_RESOURCE = 50
BUCKET_POLICY_BYTES = 20 * 1024
TOPIC_POLICY_BYTES = 30 * 1024
TOPIC_POLICY_STATEMENTS = 100

_CONDITION_OPERATORS = ("Equals", "StartsWith", "EndsWith", "NotEquals", "NotStartsWith", "NotEndsWith")


@dataclass(frozen=True)
class Refusal:
    service: str
    operation: str
    code: str
    message: str


@dataclass(frozen=True)
class _Refuse(Exception):
    code: str
    message: str


def policy_size(text: str) -> int:
    """Bytes of a policy document as AWS meters it: compact JSON, UTF-8 (the raw text if not JSON)."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return len(text.encode("utf-8"))
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


class LimitsFront(Refusals[Refusal]):
    """WSGI middleware: refuse a request beyond one of AWS's hard limits, pass everything else to ``app``."""

    def __init__(self, app: WSGIApp) -> None:
        super().__init__()
        self.access = BucketAccessFront(app)
        self._app: WSGIApp = self.access
        # Counting trails and creating one must not interleave, or two creates could both take the last slot.
        self._create_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return self._app(environ, start_response)
        service, operation = identify_request(environ)
        check = _CHECKS.get((service, operation))
        if check is None:
            return self._app(environ, start_response)
        with self._create_lock if operation == "CreateTrail" else _NO_LOCK:
            try:
                check(environ)
            except _Refuse as refusal:
                self.refuse(Refusal(service, operation, refusal.code, refusal.message))
                status = 400
                return _error_response(
                    environ, start_response, service, status, refusal.code, refusal.message
                )
            return list(self._app(environ, start_response))


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


_NO_LOCK = _NoLock()


# -- CloudTrail ---------------------------------------------------------------------------------------


def _json_body(environ: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(_buffer_body(environ) or b"{}")
    return body if isinstance(body, dict) else {}


def _cloudtrail_backends(environ: Mapping[str, Any]) -> Any:
    from moto.cloudtrail.models import cloudtrail_backends

    return cloudtrail_backends[_account_of(environ)]


def _check_create_trail(environ: dict[str, Any]) -> None:
    body = _json_body(environ)
    _check_tag_count(len(body.get("TagsList") or []), "trail")
    region = _credential_scope(environ)[1]
    account = _account_of(environ)
    for name, count in _trails_per_region(environ, region).items():
        # A multi-region trail takes a slot in every region (its shadow trails count there).
        if (name == region or body.get("IsMultiRegionTrail")) and count >= TRAILS_PER_REGION:
            raise _Refuse(
                "MaximumNumberOfTrailsExceededException",
                f"User: {account} already has {TRAILS_PER_REGION} trails in {name}.",
            )


def _trails_per_region(environ: Mapping[str, Any], region: str) -> dict[str, int]:
    """Trails each region of the account holds, shadows of multi-region trails included; `region` and
    every region with a trail homed in it are listed (any other region holds the multi-region ones)."""
    backends = _cloudtrail_backends(environ)
    homed: dict[str, int] = {region: 0}
    multi = 0
    for name in list(backends.keys()):
        for trail in backends[name].trails.values():
            if trail.is_multi_region:
                multi += 1
            else:
                homed[name] = homed.get(name, 0) + 1
        homed.setdefault(name, 0)
    return {name: count + multi for name, count in homed.items()}


def _check_add_tags(environ: dict[str, Any]) -> None:
    body = _json_body(environ)
    arn = str(body.get("ResourceId", ""))
    region = _credential_scope(environ)[1]
    backend = _cloudtrail_backends(environ)[region]
    try:
        listed = backend.list_tags([arn])
    except Exception:  # an unknown trail: moto answers that itself
        return
    have = {t["Key"] for item in listed for t in item.get("TagsList") or []}
    new = {t.get("Key") for t in body.get("TagsList") or []}
    _check_tag_count(len(have | new), "trail")


def _check_tag_count(count: int, kind: str) -> None:
    if count > TAGS_PER_RESOURCE:
        raise _Refuse(
            "TagsLimitExceededException",
            f"The number of tags per {kind} has exceeded the permitted amount. "
            f"Currently, the limit is {TAGS_PER_RESOURCE}.",
        )


def _check_event_selectors(environ: dict[str, Any]) -> None:
    body = _json_body(environ)
    selectors = body.get("EventSelectors") or []
    if len(selectors) > EVENT_SELECTORS_PER_TRAIL:
        raise _Refuse(
            "InvalidEventSelectorsException",
            f"You have exceeded the maximum number of event selectors ({EVENT_SELECTORS_PER_TRAIL}) "
            "allowed for a trail.",
        )
    resources = sum(len(r.get("Values") or []) for s in selectors for r in s.get("DataResources") or [])
    if resources > DATA_RESOURCES_PER_TRAIL:
        raise _Refuse(
            "InvalidEventSelectorsException",
            f"You have exceeded the maximum number of data resources ({DATA_RESOURCES_PER_TRAIL}) "
            f"across all event selectors of a trail: {resources}.",
        )
    values = sum(
        len(field.get(operator) or [])
        for selector in body.get("AdvancedEventSelectors") or []
        for field in selector.get("FieldSelectors") or []
        for operator in _CONDITION_OPERATORS
    )
    if values > ADVANCED_CONDITION_VALUES_PER_TRAIL:
        raise _Refuse(
            "InvalidEventSelectorsException",
            f"You have exceeded the maximum number of condition values "
            f"({ADVANCED_CONDITION_VALUES_PER_TRAIL}) across all advanced event selectors of a trail: "
            f"{values}.",
        )


# -- S3 -------------------------------------------------------------------------------------------------

_TAG_ELEMENT = re.compile(rb"<Tag>")


def _check_bucket_policy(environ: dict[str, Any]) -> None:
    size = policy_size(_buffer_body(environ).decode("utf-8", "replace"))
    if size > BUCKET_POLICY_BYTES:
        raise _Refuse("PolicyTooLarge", "Policy exceeds the maximum allowed document size.")


def _check_bucket_tagging(environ: dict[str, Any]) -> None:
    if len(_TAG_ELEMENT.findall(_buffer_body(environ))) > TAGS_PER_RESOURCE:
        raise _Refuse("BadRequest", f"Bucket tag count cannot be greater than {TAGS_PER_RESOURCE}")


# -- SNS (query protocol: form-encoded parameters) --------------------------------------------------


def _form(environ: dict[str, Any]) -> dict[str, str]:
    form = parse_qs(_buffer_body(environ).decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in form.items()}


def _check_topic_policy_text(text: str) -> None:
    size = policy_size(text)
    if size > TOPIC_POLICY_BYTES:
        raise _Refuse(
            "InvalidParameter",
            f"Invalid parameter: Policy Error: the policy is {size} bytes, over the limit of "
            f"{TOPIC_POLICY_BYTES}",
        )
    try:
        statements = json.loads(text).get("Statement") or []
    except (json.JSONDecodeError, AttributeError):
        return
    if isinstance(statements, list) and len(statements) > TOPIC_POLICY_STATEMENTS:
        raise _Refuse(
            "InvalidParameter",
            f"Invalid parameter: Policy Error: more than {TOPIC_POLICY_STATEMENTS} statements",
        )


def _check_set_topic_attributes(environ: dict[str, Any]) -> None:
    form = _form(environ)
    if form.get("AttributeName") == "Policy":
        _check_topic_policy_text(form.get("AttributeValue", ""))


def _check_create_topic(environ: dict[str, Any]) -> None:
    form = _form(environ)
    tags = [key for key in form if re.fullmatch(r"Tags\.member\.\d+\.Key", key)]
    if len(tags) > TAGS_PER_RESOURCE:
        raise _Refuse("TagLimitExceeded", "Could not complete request: tag quota of per resource exceeded")
    for key, value in form.items():
        match = re.fullmatch(r"Attributes\.entry\.(\d+)\.key", key)
        if match and value == "Policy":
            _check_topic_policy_text(form.get(f"Attributes.entry.{match.group(1)}.value", ""))


_CHECKS: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {
    ("cloudtrail", "CreateTrail"): _check_create_trail,
    ("cloudtrail", "AddTags"): _check_add_tags,
    ("cloudtrail", "PutEventSelectors"): _check_event_selectors,
    ("s3", "PutBucketPolicy"): _check_bucket_policy,
    ("s3", "PutBucketTagging"): _check_bucket_tagging,
    ("sns", "SetTopicAttributes"): _check_set_topic_attributes,
    ("sns", "CreateTopic"): _check_create_topic,
}
