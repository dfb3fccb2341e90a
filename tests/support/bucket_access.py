"""Who may use a bucket, as AWS decides it, in front of moto (which lets any account use any bucket).

A WSGI middleware (``LimitsFront`` wraps every moto in it) that answers as AWS answers:

* an S3 call on a bucket, or an object in it, from an account that does not own the bucket is refused
  with 403 ``AccessDenied`` "Access Denied" in S3's XML error format (a HEAD with no body, and with the
  ``x-amz-bucket-region`` header S3 sends on a 403). The bucket policies trailkeeper and the CloudTrail
  User Guide write grant only the CloudTrail service principal, never another account, so no grant to an
  account's principal is evaluated here. CreateBucket of a taken name is moto's (BucketAlreadyExists).
* CloudTrail CreateTrail and UpdateTrail (when it names a bucket) check the bucket's policy, as CloudTrail
  does ("Amazon S3 bucket policy for CloudTrail"): it must allow ``cloudtrail.amazonaws.com``
  ``s3:GetBucketAcl`` on the bucket and ``s3:PutObject`` on the log path of the trail
  (``<bucket>/<prefix/>AWSLogs/<account>/``, or ``AWSLogs/<org id>/<account>/`` for an organization trail),
  under its conditions with CloudTrail's request context (``aws:SourceArn`` the trail's ARN,
  ``aws:SourceAccount`` its account, ``s3:x-amz-acl`` bucket-owner-full-control, over TLS); an explicit
  Deny that matches wins. Otherwise ``InsufficientS3BucketPolicyException`` "Incorrect S3 bucket policy is
  detected for bucket: <bucket>" (HTTP 400), AWS's words. An invalid trail name or a missing bucket is
  left to moto, which answers those first as AWS does. By default only a trail delivering into another
  account's bucket is checked: many tests stage a foreign trail on a bare bucket of their own account,
  which AWS would refuse; ``check_own_account=True`` checks every trail.

The calling account is moto's: the ``x-moto-account-id`` header, else the account the SigV4 access key
belongs to (STS AssumeRole into another account's role hands out keys moto maps to that account).
``refused`` lists every refusal (S3 calls of non-owners among them), for tests.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from support.faults import (
    WSGIApp,
    _account_of,
    _buffer_body,
    _credential_scope,
    _error_response,
    identify_request,
)
from support.records import Refusals

CLOUDTRAIL_PRINCIPAL = "cloudtrail.amazonaws.com"
_TRAIL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,126}[A-Za-z0-9]$")
_CHECKED_TRAIL_CALLS = frozenset({"CreateTrail", "UpdateTrail"})
# A Condition operator and how it compares one policy value with the context's.
_OPERATORS: Mapping[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda want, have: want == have,
    "StringEqualsIgnoreCase": lambda want, have: want.lower() == have.lower(),
    "StringLike": lambda want, have: _glob(want).fullmatch(have) is not None,
    "ArnEquals": lambda want, have: want == have,
    "ArnLike": lambda want, have: _glob(want).fullmatch(have) is not None,
    "Bool": lambda want, have: want.lower() == have.lower(),
}


@dataclass(frozen=True)
class AccessRefusal:
    service: str
    operation: str
    account: str
    bucket: str
    code: str


def _glob(pattern: str) -> re.Pattern[str]:
    """An IAM wildcard pattern (``*`` any run, ``?`` one character) as a regular expression."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern))


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def bucket_owner(bucket: str) -> str | None:
    """The account that owns `bucket` in moto, None when no account does."""
    from moto.s3.models import s3_backends

    entry = s3_backends.bucket_accounts.get(bucket)
    return entry[1] if entry else None


def _moto_bucket(bucket: str) -> Any:
    """moto's bucket object, None when there is none."""
    from moto.s3.models import s3_backends

    entry = s3_backends.bucket_accounts.get(bucket)
    if entry is None:
        return None
    partition, owner = entry
    return s3_backends[owner][partition].buckets.get(bucket)


def _bucket_of(path: str) -> str | None:
    segments = [s for s in path.split("/") if s]
    return segments[0] if segments else None


def _bucket_region(bucket: str) -> str | None:
    found = _moto_bucket(bucket)
    return str(found.region_name) if found is not None else None


class BucketAccessFront(Refusals[AccessRefusal]):
    """WSGI middleware: refuse S3 calls on another account's bucket, and trails whose bucket policy does not
    let CloudTrail deliver; pass everything else to ``app``."""

    def __init__(self, app: WSGIApp, *, check_own_account: bool = False) -> None:
        super().__init__()
        self._app = app
        self.check_own_account = check_own_account

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/moto-api") or not environ.get("HTTP_AUTHORIZATION"):
            return self._app(environ, start_response)
        service, operation = identify_request(environ)
        if service == "s3" and operation not in ("CreateBucket", "ListBuckets"):
            bucket = _bucket_of(path)
            owner = bucket_owner(bucket) if bucket else None
            caller = _account_of(environ)
            if bucket and owner and owner != caller:
                self.refuse(AccessRefusal(service, operation, caller, bucket, "AccessDenied"))
                return _access_denied(environ, start_response, _bucket_region(bucket))
        if service == "cloudtrail" and operation in _CHECKED_TRAIL_CALLS:
            bucket = _insufficient_bucket(environ, self.check_own_account)
            if bucket is not None:
                code = "InsufficientS3BucketPolicyException"
                self.refuse(AccessRefusal(service, operation, _account_of(environ), bucket, code))
                message = f"Incorrect S3 bucket policy is detected for bucket: {bucket}"
                return _error_response(environ, start_response, service, 400, code, message)
        return self._app(environ, start_response)


def _access_denied(
    environ: Mapping[str, Any], start_response: Callable[..., Any], region: str | None
) -> Iterable[bytes]:
    request_id = uuid.uuid4().hex[:16].upper()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied'
        f"</Message><RequestId>{request_id}</RequestId></Error>"
    ).encode()
    headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    if region:
        headers.append(("x-amz-bucket-region", region))
    if environ.get("REQUEST_METHOD") == "HEAD":
        body = b""
    headers.append(("Content-Length", str(len(body))))
    start_response("403 Forbidden", headers)
    return [body]


# -- CloudTrail's bucket policy check ----------------------------------------------------------------


def _insufficient_bucket(environ: dict[str, Any], check_own_account: bool) -> str | None:
    """The bucket a CreateTrail/UpdateTrail names when its policy does not let CloudTrail deliver the
    trail's logs; None when it does, or when the call is for moto to refuse (bad name, no bucket)."""
    body = json.loads(_buffer_body(environ) or b"{}")
    if not isinstance(body, dict):
        return None
    bucket, name = str(body.get("S3BucketName") or ""), str(body.get("Name") or "")
    name = name.rsplit("trail/", 1)[-1] if name.startswith("arn:") else name
    owner = bucket_owner(bucket) if bucket else None
    if owner is None or not _TRAIL_NAME.fullmatch(name):
        return None
    account, region = _account_of(environ), _credential_scope(environ)[1]
    if owner == account and not check_own_account:
        return None
    prefix = body.get("S3KeyPrefix")
    if prefix is None and "S3KeyPrefix" not in body:
        prefix = _current_prefix(account, region, name)
    paths = [f"AWSLogs/{account}/"]
    if body.get("IsOrganizationTrail"):
        paths += [f"AWSLogs/{org}/{account}/" for org in _organization_ids(account)]
    context = {
        "aws:SourceArn": f"arn:aws:cloudtrail:{region}:{account}:trail/{name}",
        "aws:SourceAccount": account,
        "aws:SecureTransport": "true",
    }
    policy = _bucket_policy(bucket)
    lead = f"{prefix}/" if prefix else ""
    acl = allows(policy, "s3:GetBucketAcl", f"arn:aws:s3:::{bucket}", context)
    write_context = {**context, "s3:x-amz-acl": "bucket-owner-full-control"}
    written = any(
        allows(
            policy, "s3:PutObject", f"arn:aws:s3:::{bucket}/{lead}{path}CloudTrail/x.json.gz", write_context
        )
        for path in paths
    )
    return None if acl and written else bucket


def _current_prefix(account: str, region: str, name: str) -> str | None:
    from moto.cloudtrail.models import cloudtrail_backends

    trail = cloudtrail_backends[account][region].trails.get(name)
    return getattr(trail, "s3_key_prefix", None) if trail is not None else None


def _organization_ids(account: str) -> list[str]:
    from moto.organizations.models import organizations_backends

    org = getattr(organizations_backends[account]["aws"], "org", None)
    return [str(org.id)] if org is not None else []


def _bucket_policy(bucket: str) -> dict[str, Any]:
    found = _moto_bucket(bucket)
    if found is None or not found.policy:
        return {}
    try:
        document = json.loads(found.policy)
    except (ValueError, UnicodeDecodeError):
        return {}
    return document if isinstance(document, dict) else {}


def allows(policy: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str]) -> bool:
    """Whether `policy` lets the CloudTrail service principal do `action` on `resource` in `context`: an
    Allow statement matches, and no Deny does."""
    matching = [s for s in _listed(policy.get("Statement") or []) if _matches(s, action, resource, context)]
    return any(s.get("Effect") == "Allow" for s in matching) and not any(
        s.get("Effect") == "Deny" for s in matching
    )


def _matches(statement: Any, action: str, resource: str, context: Mapping[str, str]) -> bool:
    if not isinstance(statement, Mapping):
        return False
    return (
        _principal_matches(statement.get("Principal"))
        and any(
            _glob(str(a).lower()).fullmatch(action.lower()) for a in _listed(statement.get("Action") or [])
        )
        and any(_glob(str(r)).fullmatch(resource) for r in _listed(statement.get("Resource") or []))
        and _conditions_hold(statement.get("Condition") or {}, context)
    )


def _principal_matches(principal: Any) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    return CLOUDTRAIL_PRINCIPAL in _listed(principal.get("Service") or []) or "*" in _listed(
        principal.get("AWS") or []
    )


def _conditions_hold(condition: Any, context: Mapping[str, str]) -> bool:
    """Every operator's every key holds (any of its values); an unknown operator or a key the context does
    not have does not."""
    if not isinstance(condition, Mapping):
        return False
    for operator, block in condition.items():
        compare = _OPERATORS.get(str(operator))
        if compare is None or not isinstance(block, Mapping):
            return False
        for key, values in block.items():
            have = context.get(str(key))
            if have is None or not any(compare(str(v), have) for v in _listed(values)):
                return False
    return True
