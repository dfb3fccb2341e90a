"""CloudTrail trails: observe / create / update / delete, for one region of one account.

A ``TrailClient`` is bound to the CloudTrail client of one region. It only ever mutates a trail whose
home region (and owning account) is that region (and account): the replica a multi-region or
organization trail shows in every other region -- its *shadow* -- is observed like any trail but every
mutating method refuses it with :class:`ShadowTrailError` before calling AWS (AWS itself answers
``InvalidHomeRegionException``; moto answers ``TrailNotFoundException`` or silently does nothing).

Each mutating method is idempotent. ``observe`` never mutates.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from botocore.exceptions import ClientError

from trailkeeper.api.trail import OWNER_TAG_KEY
from trailkeeper.aws.errors import AwsError, AwsFailure, UnexpectedAnswerError, error_code
from trailkeeper.core.observed_trail import ObservedTrail
from trailkeeper.core.trail_settings import DEFAULT_EVENT_SELECTORS

if TYPE_CHECKING:
    from mypy_boto3_cloudtrail import CloudTrailClient

T = TypeVar("T")

# CloudTrail checks the bucket and topic policies on CreateTrail/UpdateTrail. The operator writes those
# policies moments before, and until they have propagated AWS answers these: worth a brief retry.
# (InsufficientEncryptionPolicyException is left out: trailkeeper never writes KMS key policies, so
# there is nothing to wait for.)
POLICY_PROPAGATION_CODES = frozenset(
    {"InsufficientS3BucketPolicyException", "InsufficientSnsTopicPolicyException"}
)
# Waits between the five tries: about 7.5 s in all, which covers S3/SNS policy propagation in practice.
POLICY_RETRY_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)

_TRAIL_NOT_FOUND = "TrailNotFoundException"
# GetInsightSelectors on a trail without Insights: AWS answers this error, moto an empty answer.
_INSIGHTS_NOT_ENABLED = frozenset({"InsightNotEnabledException"})


class ShadowTrailError(AwsError):
    """A mutation was asked of a trail that is only a shadow in this region (or of another account).

    Classified as AWS itself answers such a call: ``InvalidHomeRegionException``, not retryable.
    """

    def __init__(self, name: str, region: str, arn: str, home_region: str | None) -> None:
        message = (
            f"trail {name} in {region} is a shadow of {arn} (home region {home_region or 'unknown'}); "
            f"it can only be changed from its home region and account"
        )
        super().__init__(
            AwsFailure(
                code="InvalidHomeRegionException",
                message=message,
                operation=None,
                retryable=False,
                kind="invalid",
            )
        )
        self.name = name
        self.region = region
        self.arn = arn
        self.home_region = home_region


class TrailNameTakenError(AwsError):
    """CreateTrail found the name taken in this region by a trail that does not carry the creator's owner
    tag: another owner's trail (or one trailkeeper did not make) made since the caller last looked.

    Classified as a conflict: nothing was written to that trail, and the caller decides, as for any trail
    it finds, whether it may manage it.
    """

    def __init__(self, name: str, region: str, owner: str | None) -> None:
        who = f"owned by {owner}" if owner else "not made by trailkeeper"
        super().__init__(
            AwsFailure(
                code="Conflict",
                message=f"trail {name} in {region} was created meanwhile and is {who}",
                operation="CreateTrail",
                retryable=False,
                kind="conflict",
            )
        )
        self.name = name
        self.region = region
        self.owner = owner


class DesiredTrailSettings(Protocol):
    """The attributes of ``core.trail_settings.DesiredTrail`` this client reads (boto3 shapes)."""

    @property
    def region(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def bucket(self) -> str: ...
    @property
    def key_prefix(self) -> str | None: ...
    @property
    def include_global_service_events(self) -> bool: ...
    @property
    def is_multi_region(self) -> bool: ...
    @property
    def log_file_validation(self) -> bool: ...
    @property
    def kms_key_id(self) -> str | None: ...
    @property
    def sns_topic_name(self) -> str | None: ...
    @property
    def cloud_watch_logs_log_group_arn(self) -> str | None: ...
    @property
    def cloud_watch_logs_role_arn(self) -> str | None: ...
    @property
    def logging(self) -> bool: ...
    @property
    def event_selectors(self) -> Sequence[Mapping[str, Any]] | None: ...
    @property
    def advanced_event_selectors(self) -> Sequence[Mapping[str, Any]] | None: ...
    @property
    def insight_selectors(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def tags(self) -> Mapping[str, str]: ...


# ListTags takes at most 20 trail ARNs at a time.
_LIST_TAGS_BATCH = 20


def _text(value: Any) -> str | None:
    return str(value) if value else None


def _arn_parts(arn: str) -> tuple[str, str]:
    """(region, account) of a trail ARN ``arn:<partition>:cloudtrail:<region>:<account>:trail/<name>``."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return "", ""
    return parts[3], parts[4]


def unique_selectors(selectors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each selector once, first occurrence kept: a selector set has no duplicates in AWS, and moto's
    appending PutInsightSelectors would otherwise show the same type twice."""
    seen: set[str] = set()
    unique: list[dict[str, Any]] = []
    for selector in selectors:
        key = json.dumps(selector, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            unique.append(dict(selector))
    return unique


def _same_selector_set(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> bool:
    def keys(selectors: Sequence[Mapping[str, Any]]) -> set[str]:
        return {json.dumps(s, sort_keys=True, default=str) for s in selectors}

    return keys(a) == keys(b)


class TrailClient:
    """CloudTrail trails of one region and account.

    :param client: the CloudTrail client of ``region`` (acting in ``account_id``); never created here.
    :param sleep: how to wait between the policy-propagation retries (tests pass a recorder).
    :param policy_retry_delays: the waits between those retries; their number + 1 is the number of tries.
    """

    def __init__(
        self,
        client: CloudTrailClient,
        region: str,
        account_id: str,
        partition: str = "aws",
        *,
        sleep: Callable[[float], None] = time.sleep,
        policy_retry_delays: Sequence[float] = POLICY_RETRY_DELAYS,
    ) -> None:
        self.client = client
        self.region = region
        self.account_id = account_id
        self.partition = partition
        self._sleep = sleep
        self._policy_retry_delays = tuple(policy_retry_delays)
        # What this client learnt of each name's home (a client lives for one reconcile pass), so the
        # home-region guard of a mutation need not describe the trails again: ARN and home region of
        # shadows, names of trails whose home is here.
        self._shadows: dict[str, tuple[str, str | None]] = {}
        self._homes: set[str] = set()

    def arn_for(self, name: str) -> str:
        """The ARN a trail of this name has when this region is its home."""
        return f"arn:{self.partition}:cloudtrail:{self.region}:{self.account_id}:trail/{name}"

    # -- observe ----------------------------------------------------------------------------------

    def list_names(self) -> dict[str, dict[str, Any]]:
        """Every trail this region sees, shadows included, by name (one DescribeTrails).

        When a name appears twice (a trail of this region and a shadow from elsewhere), this region's
        own trail wins: it is the one that can be changed here.
        """
        response = self.client.describe_trails(includeShadowTrails=True)
        if not isinstance(response.get("trailList"), list):
            # AWS always answers the list, empty or not; a body botocore could not read parses as {}.
            raise UnexpectedAnswerError("DescribeTrails", "it holds no trailList")
        trails: dict[str, dict[str, Any]] = {}
        for raw in response.get("trailList", []):
            entry: dict[str, Any] = dict(raw)
            name = str(entry.get("Name", ""))
            if not name:
                continue
            if name in trails and not self._is_shadow(entry):
                trails[name] = entry
            trails.setdefault(name, entry)
        return trails

    def _is_shadow(self, raw: Mapping[str, Any]) -> bool:
        arn = str(raw.get("TrailARN", ""))
        arn_region, arn_account = _arn_parts(arn)
        home = str(raw.get("HomeRegion") or arn_region)
        return home != self.region or (bool(arn_account) and arn_account != self.account_id)

    def tags_by_arn(self, described: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
        """The tags of every trail of this region in a :meth:`list_names` result, by ARN: one ListTags per
        20 trails (its limit) instead of one per trail. A batch that fails (a trail deleted meanwhile) is
        left out, and :meth:`observe` reads those trails one by one."""
        arns = sorted(
            str(raw["TrailARN"])
            for raw in described.values()
            if raw.get("TrailARN") and not self._is_shadow(raw)
        )
        found: dict[str, dict[str, str]] = {}
        for start in range(0, len(arns), _LIST_TAGS_BATCH):
            batch = arns[start : start + _LIST_TAGS_BATCH]
            try:
                response = self.client.list_tags(ResourceIdList=batch)
            except ClientError:
                continue
            for resource in response.get("ResourceTagList", []):
                arn = str(resource.get("ResourceId", ""))
                found[arn] = {t["Key"]: t.get("Value", "") for t in resource.get("TagsList", [])}
            for arn in batch:
                found.setdefault(arn, {})
        return found

    def observe(
        self,
        name: str,
        *,
        described: Mapping[str, Mapping[str, Any]] | None = None,
        tags_by_arn: Mapping[str, Mapping[str, str]] | None = None,
        want_insights: bool = True,
    ) -> ObservedTrail | None:
        """The trail called ``name`` as this region sees it, or None when there is none.

        ``described`` is a :meth:`list_names` result to reuse (one DescribeTrails for many trails), and
        ``tags_by_arn`` a :meth:`tags_by_arn` one. Reads only: DescribeTrails (unless given),
        GetTrailStatus and, for a trail of this region, GetEventSelectors, GetInsightSelectors (skipped
        when neither DescribeTrails's ``HasInsightSelectors`` nor ``want_insights`` asks for it) and
        ListTags (unless given).
        """
        trails = described if described is not None else self.list_names()
        raw = trails.get(name)
        if raw is None:
            self._learn(name, None)
            return None
        arn = str(raw.get("TrailARN") or self.arn_for(name))
        shadow = self._is_shadow(raw)
        try:
            # By ARN: the only form GetTrailStatus accepts for a shadow trail.
            status = self.client.get_trail_status(Name=arn)
            if not isinstance(status.get("IsLogging"), bool):
                raise UnexpectedAnswerError("GetTrailStatus", f"it holds no IsLogging for {arn}")
            selectors: tuple[list[dict[str, Any]] | None, list[dict[str, Any]] | None] = (None, None)
            insights: list[dict[str, Any]] = []
            tags: dict[str, str] = {}
            if not shadow:
                selectors = self._event_selectors(arn)
                if want_insights or raw.get("HasInsightSelectors", True):
                    insights = self._insight_selectors(arn)
                known = (tags_by_arn or {}).get(arn)
                tags = dict(known) if known is not None else self.tags(arn)
        except ClientError as error:
            # Deleted between DescribeTrails and the reads that follow: it is gone.
            if error_code(error) == _TRAIL_NOT_FOUND:
                self._learn(name, None)
                return None
            raise
        observed = self._observed(name, arn, raw, shadow, status, selectors, insights, tags)
        self._learn(name, observed)
        return observed

    def _observed(
        self,
        name: str,
        arn: str,
        raw: Mapping[str, Any],
        shadow: bool,
        status: Mapping[str, Any],
        selectors: tuple[list[dict[str, Any]] | None, list[dict[str, Any]] | None],
        insights: list[dict[str, Any]],
        tags: dict[str, str],
    ) -> ObservedTrail:
        """The reads of one trail (DescribeTrails entry, status, selectors, tags) as one observation."""
        return ObservedTrail(
            name=name,
            arn=arn,
            region=self.region,
            home_region=_text(raw.get("HomeRegion")) or (_arn_parts(arn)[0] or None),
            is_shadow=shadow,
            s3_bucket=_text(raw.get("S3BucketName")),
            s3_key_prefix=_text(raw.get("S3KeyPrefix")),
            sns_topic_name=_text(raw.get("SnsTopicName")),
            sns_topic_arn=_text(raw.get("SnsTopicARN")),
            include_global_service_events=bool(raw.get("IncludeGlobalServiceEvents")),
            is_multi_region=bool(raw.get("IsMultiRegionTrail")),
            is_organization_trail=bool(raw.get("IsOrganizationTrail")),
            log_file_validation=bool(raw.get("LogFileValidationEnabled")),
            kms_key_id=_text(raw.get("KmsKeyId")),
            cloud_watch_logs_log_group_arn=_text(raw.get("CloudWatchLogsLogGroupArn")),
            cloud_watch_logs_role_arn=_text(raw.get("CloudWatchLogsRoleArn")),
            is_logging=bool(status.get("IsLogging")),
            latest_delivery_error=_text(status.get("LatestDeliveryError")),
            event_selectors=selectors[0],
            advanced_event_selectors=selectors[1],
            insight_selectors=insights,
            tags=tags,
        )

    def _learn(self, name: str, observed: ObservedTrail | None) -> None:
        self._homes.discard(name)
        self._shadows.pop(name, None)
        if observed is None:
            return
        if observed.is_shadow:
            self._shadows[name] = (observed.arn, observed.home_region)
        else:
            self._homes.add(name)

    def _event_selectors(self, arn: str) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]] | None]:
        response = self.client.get_event_selectors(TrailName=arn)
        basic = [dict(s) for s in response.get("EventSelectors") or []] or None
        advanced = [dict(s) for s in response.get("AdvancedEventSelectors") or []] or None
        return basic, advanced

    def _insight_selectors(self, arn: str) -> list[dict[str, Any]]:
        try:
            response = self.client.get_insight_selectors(TrailName=arn)
        except ClientError as error:
            if error_code(error) in _INSIGHTS_NOT_ENABLED:
                return []
            raise
        return unique_selectors(response.get("InsightSelectors") or [])

    def tags(self, arn: str) -> dict[str, str]:
        """The trail's tags (one ListTags)."""
        response = self.client.list_tags(ResourceIdList=[arn])
        tags: dict[str, str] = {}
        for resource in response.get("ResourceTagList", []):
            if resource.get("ResourceId") == arn:
                tags.update({t["Key"]: t.get("Value", "") for t in resource.get("TagsList", [])})
        return tags

    # -- guards -----------------------------------------------------------------------------------

    def _require_home(self, name: str) -> bool:
        """Raise ShadowTrailError when ``name`` is a shadow here; False when there is no such trail.

        Uses what this client already learnt of the trail (observed or created it), else one
        DescribeTrails.
        """
        if name in self._homes:
            return True
        if name in self._shadows:
            arn, home = self._shadows[name]
            raise ShadowTrailError(name, self.region, arn, home)
        raw = self.list_names().get(name)
        if raw is None:
            return False
        if self._is_shadow(raw):
            arn = str(raw.get("TrailARN", ""))
            self._shadows[name] = (arn, _text(raw.get("HomeRegion")) or _arn_parts(arn)[0] or None)
            return self._require_home(name)
        self._homes.add(name)
        return True

    def _require_region(self, desired: DesiredTrailSettings) -> None:
        if desired.region != self.region:
            raise ValueError(
                f"trail {desired.name} belongs in {desired.region}, this client is for {self.region}"
            )

    def _with_policy_retry(self, call: Callable[[], T]) -> T:
        """``call()``, tried again after a short wait while CloudTrail does not yet see a policy."""
        for delay in self._policy_retry_delays:
            try:
                return call()
            except ClientError as error:
                if error_code(error) not in POLICY_PROPAGATION_CODES:
                    raise
            self._sleep(delay)
        return call()

    # -- create / update --------------------------------------------------------------------------

    def create(self, desired: DesiredTrailSettings) -> str:
        """Create the trail with its settings and tags; its ARN.

        Event selectors, insight selectors and logging are separate calls (``put_event_selectors``,
        ``put_insight_selectors``, ``set_logging``): a trail made through the API does not log until
        started. A trail of that name already in this region (found by DescribeTrails, or by CreateTrail
        answering ``TrailAlreadyExistsException``) is left exactly as it is: when it carries the owner tag
        ``desired.tags`` gives, it is this owner's earlier creation and its ARN is returned, so calling
        ``create`` twice is harmless; otherwise :class:`TrailNameTakenError`. A shadow of that name raises
        :class:`ShadowTrailError`, since CloudTrail keeps one trail per name and region.
        """
        self._require_region(desired)
        existing = self.list_names().get(desired.name)
        if existing is not None:
            if self._is_shadow(existing):
                arn = str(existing.get("TrailARN", ""))
                raise ShadowTrailError(desired.name, self.region, arn, _text(existing.get("HomeRegion")))
            return self._taken(desired, str(existing.get("TrailARN") or self.arn_for(desired.name)))
        parameters: dict[str, Any] = {
            "Name": desired.name,
            "S3BucketName": desired.bucket,
            "IncludeGlobalServiceEvents": desired.include_global_service_events,
            "IsMultiRegionTrail": desired.is_multi_region,
            "EnableLogFileValidation": desired.log_file_validation,
            "TagsList": [{"Key": k, "Value": v} for k, v in sorted(desired.tags.items())],
        }
        optional = {
            "S3KeyPrefix": desired.key_prefix,
            "SnsTopicName": desired.sns_topic_name,
            "KmsKeyId": desired.kms_key_id,
            "CloudWatchLogsLogGroupArn": desired.cloud_watch_logs_log_group_arn,
            "CloudWatchLogsRoleArn": desired.cloud_watch_logs_role_arn,
        }
        parameters.update({key: value for key, value in optional.items() if value})
        try:
            response = self._with_policy_retry(lambda: self.client.create_trail(**parameters))
        except ClientError as error:
            # Made by another writer between DescribeTrails and CreateTrail: whose it is decides.
            if error_code(error) != "TrailAlreadyExistsException":
                raise
            return self._taken(desired, self.arn_for(desired.name))
        self._created(desired.name)
        return str(response.get("TrailARN") or self.arn_for(desired.name))

    def _taken(self, desired: DesiredTrailSettings, arn: str) -> str:
        """The ARN of the trail found under the desired name when it carries the desired owner tag."""
        owner = self.tags(arn).get(OWNER_TAG_KEY)
        if owner is None or owner != desired.tags.get(OWNER_TAG_KEY):
            raise TrailNameTakenError(desired.name, self.region, owner)
        self._created(desired.name)
        return arn

    def _created(self, name: str) -> None:
        self._shadows.pop(name, None)
        self._homes.add(name)

    def update_settings(self, desired: DesiredTrailSettings) -> None:
        """UpdateTrail with every setting of ``desired`` (not tags, selectors or logging).

        Settings the desired trail leaves unset are sent as "", which is how UpdateTrail clears them (no
        key prefix, no topic, no KMS key, no CloudWatch Logs); a setting it is not given it leaves as is.
        """
        self._require_region(desired)
        self._require_home(desired.name)
        parameters: dict[str, Any] = {
            "Name": desired.name,
            "S3BucketName": desired.bucket,
            "S3KeyPrefix": desired.key_prefix or "",
            "SnsTopicName": desired.sns_topic_name or "",
            "IncludeGlobalServiceEvents": desired.include_global_service_events,
            "IsMultiRegionTrail": desired.is_multi_region,
            "EnableLogFileValidation": desired.log_file_validation,
            "KmsKeyId": desired.kms_key_id or "",
            "CloudWatchLogsLogGroupArn": desired.cloud_watch_logs_log_group_arn or "",
            "CloudWatchLogsRoleArn": desired.cloud_watch_logs_role_arn or "",
        }
        self._with_policy_retry(lambda: self.client.update_trail(**parameters))

    def put_event_selectors(self, desired: DesiredTrailSettings) -> None:
        """PutEventSelectors with the desired basic selectors or the advanced ones, never both.

        Advanced selectors win when given (non-empty). No selectors at all puts CloudTrail's default
        (all management events), which is what "no selectors of its own" means for a trail.
        """
        self._require_region(desired)
        self._require_home(desired.name)
        if desired.advanced_event_selectors:
            advanced: Any = [dict(s) for s in desired.advanced_event_selectors]
            self.client.put_event_selectors(TrailName=desired.name, AdvancedEventSelectors=advanced)
        else:
            basic: Any = [dict(s) for s in (desired.event_selectors or DEFAULT_EVENT_SELECTORS)]
            self.client.put_event_selectors(TrailName=desired.name, EventSelectors=basic)

    def put_insight_selectors(self, name: str, insight_selectors: Sequence[Mapping[str, Any]]) -> None:
        """Make the trail's Insights selectors exactly ``insight_selectors`` ([] turns Insights off).

        Reads the current set first and puts only when it differs (PutInsightSelectors replaces the set).
        """
        trail = name
        self._require_home(trail)
        wanted = unique_selectors(insight_selectors)
        arn = self.arn_for(trail)
        if _same_selector_set(self._insight_selectors(arn), wanted):
            return
        selectors: Any = wanted
        self.client.put_insight_selectors(TrailName=trail, InsightSelectors=selectors)

    def set_logging(self, name: str, logging: bool) -> None:
        """StartLogging or StopLogging (both are no-ops on a trail already in that state)."""
        self._require_home(name)
        if logging:
            self.client.start_logging(Name=name)
        else:
            self.client.stop_logging(Name=name)

    def set_tags(self, arn: str, desired: Mapping[str, str], actual: Mapping[str, str]) -> None:
        """AddTags for keys missing or different, RemoveTags for keys not desired; nothing when equal.

        ``aws:``-prefixed keys belong to AWS and are never removed. Tags can only be changed from the
        trail's home region, which its ARN names.
        """
        arn_region, arn_account = _arn_parts(arn)
        if arn_region != self.region or arn_account != self.account_id:
            raise ShadowTrailError(arn.rsplit("/", 1)[-1], self.region, arn, arn_region or None)
        add = [{"Key": k, "Value": v} for k, v in sorted(desired.items()) if actual.get(k) != v]
        remove = [{"Key": k} for k in sorted(actual) if k not in desired and not k.startswith("aws:")]
        if add:
            added: Any = add
            self.client.add_tags(ResourceId=arn, TagsList=added)
        if remove:
            removed: Any = remove
            self.client.remove_tags(ResourceId=arn, TagsList=removed)

    # -- delete -----------------------------------------------------------------------------------

    def delete(self, name: str) -> None:
        """Delete the trail by name (moto ignores a delete by ARN); a trail that is not there is success.

        Refuses a shadow with :class:`ShadowTrailError`: deleting it here would mean deleting the
        multi-region trail of another region.
        """
        if not self._require_home(name):
            return
        try:
            self.client.delete_trail(Name=name)
        except ClientError as error:
            if error_code(error) != _TRAIL_NOT_FOUND:
                raise
        self._learn(name, None)
