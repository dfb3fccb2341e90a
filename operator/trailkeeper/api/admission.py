"""What a real API server checks at admission beyond each field's own schema: CEL rules and list types.

Each rule restates a check of the models' validators, so `kubectl apply` refuses what `trailkeeper plan`
refuses, naming the field. Rules use standard CEL (and, for the selector totals, the Kubernetes list
library's sum()); every list or string a rule walks has maxItems/maxLength in the schema, so the API
server's cost estimate stays bounded.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from trailkeeper.api.logretention import _THIRTY_DAY_CLASSES, _WATERFALL, LogRetentionSpec
from trailkeeper.api.selector_limits import (
    CONDITION_VALUES_MESSAGE,
    CONDITION_VALUES_RULE,
    DATA_RESOURCES_MESSAGE,
    DATA_RESOURCES_RULE,
)
from trailkeeper.api.trail import (
    _ENDPOINT_PATTERNS,
    MONITORING_WITH_CLOUD_WATCH_LOGS,
    MONITORING_WITHOUT_TOPIC,
    RESERVED_TAG_PREFIX,
    TrailSpec,
)

Rule = dict[str, str]


@dataclass(frozen=True)
class Admission:
    """The rules of one kind. Paths start at the object (`spec.regions`); `[]` steps into list items."""

    rules: tuple[tuple[str, Rule], ...] = ()
    # Lists of unique scalars: the API server refuses a duplicate (x-kubernetes-list-type: set).
    sets: tuple[str, ...] = ()
    # Lists of objects unique by these keys (x-kubernetes-list-type: map); also how server-side apply
    # merges them.
    maps: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _rule(rule: str, message: str, field_path: str = "", reason: str = "") -> Rule:
    found = {"rule": rule, "message": message}
    if field_path:
        found["fieldPath"] = field_path
    if reason:
        found["reason"] = reason
    return found


def _pairs(max_items: int, condition: str) -> str:
    """`condition` on every neighbouring pair `$a`, `$b` of a list of at most `max_items` items.

    Standard CEL's macros have no index variable, so the pairs are written out.
    """
    return " && ".join(
        f"(size(self) <= {i} || {condition.replace('$a', f'self[{i - 1}]').replace('$b', f'self[{i}]')})"
        for i in range(1, max_items)
    )


def _max_items(model: type[TrailSpec] | type[LogRetentionSpec], field: str) -> int:
    schema = model.model_json_schema(by_alias=True)["properties"][field]
    return int(schema["maxItems"])


# ---------------------------------------------------------------------------------------------------
# Shared: S3 bucket names (common.bucket_name_problem). Length and characters are the field's pattern.
# ---------------------------------------------------------------------------------------------------

# A dotted quad as ipaddress.IPv4Address reads one: 0 to 255, no leading zeros.
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = f"^{_OCTET}[.]{_OCTET}[.]{_OCTET}[.]{_OCTET}$"


def _bucket_rules(path: str) -> list[tuple[str, Rule]]:
    prefixes = ("xn--", "sthree-", "amzn-s3-demo-")
    suffixes = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
    return [
        (
            path,
            _rule(
                "!self.matches('[.][.]|[.]-|-[.]')",
                "bucket name must not have two adjacent periods or a period next to a hyphen",
            ),
        ),
        (
            path,
            _rule(
                f"!self.matches('{_IPV4}')",
                "bucket name must not be formatted as an IP address",
            ),
        ),
        (
            path,
            _rule(
                " && ".join(f"!self.startsWith('{p}')" for p in prefixes)
                + " && "
                + " && ".join(f"!self.endsWith('{s}')" for s in suffixes),
                f"bucket name must not start with {', '.join(prefixes)} nor end with {', '.join(suffixes)}",
            ),
        ),
    ]


# ---------------------------------------------------------------------------------------------------
# Trail
# ---------------------------------------------------------------------------------------------------

# trailName defaults to metadata.name, so the name the trails carry is immutable whether it is written
# out or defaulted; a rule at the root can see both (and metadata.name cannot change anyway).
_EFFECTIVE_NAME = "(has({o}.spec.trailName) ? {o}.spec.trailName : {o}.metadata.name)"

_AWS_PREFIXES = ["".join(chars) + ":" for chars in itertools.product("aA", "wW", "sS")]

_OPERATORS = ("equals", "startsWith", "endsWith", "notEquals", "notStartsWith", "notEndsWith")


def _endpoint_rules() -> list[tuple[str, Rule]]:
    by_form: dict[tuple[str, str], list[str]] = {}
    for protocol, form in _ENDPOINT_PATTERNS.items():
        by_form.setdefault(form, []).append(protocol)
    found = []
    for (pattern, what), protocols in by_form.items():
        quoted = ", ".join(f"'{p}'" for p in protocols)
        escaped = pattern.replace("\\", "\\\\")
        found.append(
            (
                "spec.notifications.subscriptions[]",
                _rule(
                    f"!(self.protocol in [{quoted}]) || self.endpoint.matches('{escaped}')",
                    f"endpoint must be {what} for protocol {' or '.join(protocols)}",
                    ".endpoint",
                ),
            )
        )
    return found


def _trail() -> Admission:
    rules = [
        *_trail_name_rules(),
        *_trail_delivery_rules(),
        *_trail_notification_rules(),
        *_trail_tag_rules(),
        *_trail_monitoring_rules(),
        ("spec.eventSelectors", _rule(DATA_RESOURCES_RULE, DATA_RESOURCES_MESSAGE)),
        ("spec.advancedEventSelectors", _rule(CONDITION_VALUES_RULE, CONDITION_VALUES_MESSAGE)),
    ]
    return Admission(
        rules=tuple(rules),
        sets=("spec.regions", "spec.insights", "spec.destination.sourceAccounts"),
        maps=(("spec.notifications.subscriptions", ("protocol", "endpoint")),),
    )


def _trail_monitoring_rules() -> list[tuple[str, Rule]]:
    """spec.monitoring sets the trails' CloudWatch Logs delivery, and its alarms need a topic."""
    return [
        (
            "spec",
            _rule(
                "!has(self.monitoring) || !has(self.cloudWatchLogs)",
                MONITORING_WITH_CLOUD_WATCH_LOGS,
                ".cloudWatchLogs",
            ),
        ),
        (
            "spec",
            _rule(
                "!has(self.monitoring) || has(self.notifications) || has(self.monitoring.alarmTopicArn)",
                MONITORING_WITHOUT_TOPIC,
                ".monitoring",
            ),
        ),
    ]


def _trail_name_rules() -> list[tuple[str, Rule]]:
    """The rules of a Trail's name and its whole spec."""
    return [
        (
            "",
            _rule(
                f"{_EFFECTIVE_NAME.format(o='self')} == {_EFFECTIVE_NAME.format(o='oldSelf')}",
                "trailName is immutable: the trails keep the name they were made with "
                "(metadata.name when trailName is unset)",
                ".spec.trailName",
            ),
        ),
        (
            "spec",
            _rule(
                "!has(self.multiRegion) || !self.multiRegion || size(self.regions) == 1",
                "a multiRegion trail has exactly one (home) region in regions",
                ".regions",
            ),
        ),
        (
            "spec",
            _rule(
                "!has(self.globalServiceEventsRegion) || self.globalServiceEventsRegion in self.regions",
                "globalServiceEventsRegion must be one of regions",
                ".globalServiceEventsRegion",
            ),
        ),
        (
            "spec",
            _rule(
                "!has(self.eventSelectors) || !has(self.advancedEventSelectors) "
                "|| size(self.eventSelectors) == 0 || size(self.advancedEventSelectors) == 0",
                "eventSelectors and advancedEventSelectors are mutually exclusive: give one of them",
                ".advancedEventSelectors",
            ),
        ),
        (
            "spec.trailName",
            _rule(
                "!self.matches('[._-][._-]')",
                "trailName must not have adjacent periods, underscores or dashes (like 'my-_trail')",
            ),
        ),
        (
            "spec.trailName",
            _rule(f"!self.matches('{_IPV4}')", "trailName must not be formatted as an IP address"),
        ),
        *_bucket_rules("spec.destination.bucket"),
    ]


def _trail_delivery_rules() -> list[tuple[str, Rule]]:
    """The rules of where a Trail's trails deliver: bucket, key prefix, subscriptions, selectors."""
    return [
        (
            "spec.destination.bucket",
            _rule(
                "self.matches('^([a-z0-9.-]|[{]region[}])+$')",
                "bucket may hold braces only in the placeholder {region}",
            ),
        ),
        (
            # The schema's maxLength leaves room for {region} to become a region name; without it the
            # bucket name itself is at most 63 characters.
            "spec.destination.bucket",
            _rule(
                "self.contains('{region}') || size(self) <= 63",
                "bucket name must be 3 to 63 characters long",
            ),
        ),
        (
            "spec.destination.keyPrefix",
            _rule(
                "self == '' || self.matches('^[^/]+(/[^/]+)*$')",
                "keyPrefix must not begin or end with '/' nor contain an empty segment ('//')",
            ),
        ),
        (
            "spec.destination.keyPrefix",
            _rule(
                "!self.matches('(^|/)([.]|[.][.]|AWSLogs)(/|$)')",
                "keyPrefix must not contain '.', '..' or 'AWSLogs' segments: CloudTrail adds AWSLogs/ itself",
            ),
        ),
        (
            "spec.destination.keyPrefix",
            _rule(
                "!self.matches('[*?$\\\\\\\\{}\\\\x00-\\\\x1f\\\\x7f]')",
                "keyPrefix must not contain wildcards, '$', '\\', braces or control characters",
            ),
        ),
        *_endpoint_rules(),
    ]


def _trail_notification_rules() -> list[tuple[str, Rule]]:
    """The rules of a Trail's subscriptions, advanced event selectors and CloudWatch Logs."""
    return [
        (
            "spec.notifications.subscriptions[]",
            _rule(
                "!has(self.rawMessageDelivery) || !self.rawMessageDelivery "
                "|| self.protocol in ['sqs', 'http', 'https', 'firehose']",
                "rawMessageDelivery applies only to sqs, http, https and firehose subscriptions",
                ".rawMessageDelivery",
            ),
        ),
        (
            "spec.advancedEventSelectors[].fieldSelectors[]",
            _rule(
                " || ".join(f"(has(self.{op}) && size(self.{op}) > 0)" for op in _OPERATORS),
                "a field selector needs at least one non-empty operator "
                "(equals, startsWith, endsWith, notEquals, notStartsWith, notEndsWith)",
            ),
        ),
        (
            "spec.cloudWatchLogs",
            _rule(
                "has(self.logGroupArn) == has(self.roleArn)",
                "logGroupArn and roleArn must be given together (both or neither)",
            ),
        ),
    ]


def _trail_tag_rules() -> list[tuple[str, Rule]]:
    """The rules of a Trail's tags: trailkeeper's own keys are reserved, as are AWS's prefixes."""
    return [
        (
            "spec.tags",
            _rule(
                f"!self.exists(k, k.startsWith('{RESERVED_TAG_PREFIX}'))",
                f"tag keys beginning with {RESERVED_TAG_PREFIX} are reserved: trailkeeper sets them",
            ),
        ),
        (
            "spec.tags",
            _rule(
                "self.all(k, size(k) >= 1 && size(k) <= 128 && !("
                + " || ".join(f"k.startsWith('{p}')" for p in _AWS_PREFIXES)
                + "))",
                "tag keys are 1 to 128 characters and must not begin with 'aws:' (reserved by AWS)",
            ),
        ),
    ]


# ---------------------------------------------------------------------------------------------------
# LogRetention
# ---------------------------------------------------------------------------------------------------


def _log_retention() -> Admission:
    actions = ("expirationDays", "noncurrentVersionExpirationDays", "abortIncompleteMultipartUploadDays")
    rules: list[tuple[str, Rule]] = [
        (
            "spec",
            _rule(
                "has(self.trailRef) != has(self.bucket)",
                "give exactly one of trailRef and bucket",
                ".trailRef",
                "FieldValueRequired",
            ),
        ),
        (
            "spec",
            _rule(
                "!has(self.region) || has(self.bucket)",
                "region applies only with bucket (a trailRef's regions come from the Trail)",
                ".region",
                "FieldValueForbidden",
            ),
        ),
        (
            "spec",
            _rule(
                "(has(self.transitions) && size(self.transitions) > 0) || "
                + " || ".join(f"has(self.{a})" for a in actions),
                "give at least one of transitions, expirationDays, noncurrentVersionExpirationDays, "
                "abortIncompleteMultipartUploadDays (S3 rejects a rule with no action)",
                ".transitions",
                "FieldValueRequired",
            ),
        ),
        (
            "spec",
            _rule(
                "!has(self.expirationDays) || !has(self.transitions) "
                "|| self.transitions.all(t, t.days < self.expirationDays)",
                "expirationDays must be later than every transition",
                ".expirationDays",
            ),
        ),
        *_transition_rules(),
        *_bucket_rules("spec.bucket"),
    ]
    return Admission(rules=tuple(rules))


def _transition_rules() -> list[tuple[str, Rule]]:
    """The rules of a LogRetention's storage class transitions."""
    transitions = _max_items(LogRetentionSpec, "transitions")
    waterfall = "{" + ", ".join(f"'{c}': {i}" for i, c in enumerate(_WATERFALL)) + "}"
    thirty = "[" + ", ".join(f"'{c}'" for c in sorted(_THIRTY_DAY_CLASSES)) + "]"
    return [
        (
            "spec.transitions",
            _rule(
                _pairs(transitions, "$a.days < $b.days"),
                "transitions must be in strictly ascending order of days",
            ),
        ),
        (
            "spec.transitions",
            _rule(
                _pairs(transitions, f"{waterfall}[$a.storageClass] < {waterfall}[$b.storageClass]"),
                "each transition must go further down S3's lifecycle waterfall than the one before: "
                + " → ".join(_WATERFALL),
            ),
        ),
        (
            "spec.transitions",
            _rule(
                _pairs(transitions, f"!($a.storageClass in {thirty}) || $b.days - $a.days >= 30"),
                "objects must stay 30 days in STANDARD_IA or ONEZONE_IA before the next transition",
            ),
        ),
        (
            "spec.transitions[]",
            _rule(
                f"!(self.storageClass in {thirty}) || self.days >= 30",
                "S3 requires at least 30 days before a transition to STANDARD_IA or ONEZONE_IA",
                ".days",
            ),
        ),
    ]


TRAIL_ADMISSION = _trail()
LOG_RETENTION_ADMISSION = _log_retention()
