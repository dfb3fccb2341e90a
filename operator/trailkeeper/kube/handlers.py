"""kopf handlers: parse what kopf hands over and delegate to `reconcile.passes` in a line or two.

Handlers are synchronous on purpose: boto3 blocks, and kopf runs synchronous handlers in its thread pool
(settings.execution.max_workers), so one slow region never blocks the event loop or other objects.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import kopf

from trailkeeper.api.common import resync_seconds_of
from trailkeeper.core.naming import owner_key
from trailkeeper.core.ownership import OwnerLiveness
from trailkeeper.kube.config import GROUP, LAST_HANDLED, VERSION, Runtime, jittered_period
from trailkeeper.kube.status_writer import StatusWriteError
from trailkeeper.kube.tenancy_view import INDEX, NAMESPACES, labels_in, namespace_labels
from trailkeeper.kube.topic_users import INDEX as TOPICS_INDEX
from trailkeeper.kube.topic_users import topic_users, trails_by_topic
from trailkeeper.metrics import outcome_of
from trailkeeper.reconcile.passes import (
    Event,
    ObjectRef,
    PassReport,
    Tenancy,
    Trigger,
    plain,
    retention_deletion,
    retention_pass,
    retention_targets_changed,
    trail_deletion,
    trail_pass,
)

log = logging.getLogger(__name__)

TRAILS = (GROUP, VERSION, "trails")
RETENTIONS = (GROUP, VERSION, "logretentions")


def _spec(body: Any) -> Any:
    """The spec as stored. kopf's `spec` argument is a mapping view that fails on a spec that is a list, a
    string or null (an API server without our CRD's schema stores any of them); the models refuse those by
    name instead."""
    return body.get("spec")


def _ref(meta: Mapping[str, Any]) -> ObjectRef:
    return ObjectRef(
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta["name"]),
        uid=str(meta.get("uid") or meta["name"]),
        generation=meta.get("generation"),
    )


MAX_RETRY_DELAY = 300.0


def _measure(runtime: Runtime, kind: str, ref: ObjectRef, started: float, report: PassReport) -> None:
    """Metrics of one pass (before a timer pass drops its retry: an error is an error either way)."""
    logging_regions = None
    if kind == "Trail" and "regions" in report.status:
        logging_regions = sum(1 for r in report.status["regions"] if r.get("isLogging"))
    runtime.metrics.observe_pass(
        kind,
        ref.namespace,
        ref.name,
        time.perf_counter() - started,
        outcome_of(report),
        report.drift,
        logging_regions,
    )
    if report.compliance_failed is not None:
        runtime.metrics.set_compliance(ref.namespace, ref.name, report.compliance_failed)


def _write_status(runtime: Runtime, body: Any, status: dict[str, Any], patch: Any, *, timer: bool) -> None:
    """A change handler's status goes in kopf's patch, applied after the handler returns: written during the
    handler, it would be seen before kopf records the handler done and, under load, run it again. If kopf's
    status write is refused, the drift-check timer notices and writes it (`_unwritten`).

    A drift check writes its status itself, retried: a timer whose kopf patch fails is not started again
    for that object, and drift would no longer be corrected."""
    writer = runtime.status_writer
    if writer is None or not timer:
        patch.status.update(status)
        return
    meta = body.get("metadata") or {}
    plural = "trails" if body.get("kind") == "Trail" else "logretentions"
    try:
        writer.write(plural, str(meta.get("namespace") or "default"), str(meta.get("name")), status)
    except StatusWriteError as error:
        # Runs again at the next tick: the time of this check was not recorded.
        log.warning("%s", error)


def _new_events(runtime: Runtime, body: Any, events: list[Event]) -> list[Event]:
    """The Events of a pass less the lasting ones its object's previous pass posted already: a failure
    retried ten times is one Event, posted again only when its message changes or after it cleared."""
    uid = str((body.get("metadata") or {}).get("uid") or "")
    lasting = frozenset((e.reason, e.message) for e in events if e.lasting)
    before = runtime.lasting_events.get(uid, frozenset())
    runtime.lasting_events[uid] = lasting
    return [e for e in events if not e.lasting or (e.reason, e.message) not in before]


def _post(
    runtime: Runtime, body: Any, report: PassReport, patch: Any, retry: int = 0, *, timer: bool = False
) -> None:
    """Write the status and Events of a pass; raise what makes kopf retry (backing off) or stop retrying."""
    if report.status:
        _write_status(runtime, body, report.status, patch, timer=timer)
    for event in _new_events(runtime, body, report.events):
        kopf.event(body, type=event.type, reason=event.reason, message=event.message[:1000])
    if report.invalid is not None:
        raise kopf.PermanentError(report.invalid)
    if report.retry_after is not None:
        delay = min(report.retry_after * 2 ** min(retry, 10), MAX_RETRY_DELAY)
        raise kopf.TemporaryError(
            f"not every region or bucket is in place; retrying in {delay:g} s", delay=delay
        )


def _is_ready(status: Mapping[str, Any]) -> bool:
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, Mapping)}
    return (conditions.get("Ready") or {}).get("status") == "True"


def _snapshot(body: Any) -> dict[str, Any]:
    """A plain copy of an object as a watch event showed it, for an index that outlives the event."""
    plain_body: dict[str, Any] = copy.deepcopy(
        {key: body.get(key) for key in ("apiVersion", "kind", "metadata", "spec", "status")}
    )
    return plain_body


def _unwritten(meta: Mapping[str, Any], spec: Any, status: Mapping[str, Any]) -> bool:
    """Whether the change handlers are done with the current spec but their status is not there (kopf's
    status write was refused): kopf's record of the last handled spec is the current one, and the status
    names an older generation or none."""
    if status.get("observedGeneration") == meta.get("generation"):
        return False
    recorded = (meta.get("annotations") or {}).get(LAST_HANDLED)
    if not recorded:
        return False
    try:
        handled = json.loads(recorded).get("spec")
    except (ValueError, AttributeError):
        return False
    return bool(handled == spec)


def _due(runtime: Runtime, meta: Mapping[str, Any], spec: Any, status: Mapping[str, Any]) -> bool:
    """Whether an object's drift check is due: its jittered resync period passed since the last check, or
    the status of its last change was lost."""
    uid = str(meta.get("uid", ""))
    if _unwritten(meta, spec, status):
        # kopf writes the object (its record of the handled spec) and then its status, in two calls: the
        # status is lost only if it is still missing a while later.
        first_seen = runtime.unwritten_since.setdefault(uid, time.monotonic())
        return time.monotonic() - first_seen >= 2 * runtime.config.tick_seconds
    runtime.unwritten_since.pop(uid, None)
    if status.get("observedGeneration") is None:
        return False  # the change handlers have not finished a first pass yet
    last = status.get("lastDriftCheckTime") or status.get("lastSyncTime")
    if not last:
        return True
    period = jittered_period(resync_seconds_of(spec), runtime.config.resync_scale, uid)
    elapsed = time.time() - _epoch(str(last))
    return elapsed >= period


def _epoch(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def _invalid_and_unchanged(meta: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = conditions.get("Ready") or {}
    return ready.get("reason") == "InvalidSpec" and status.get("observedGeneration") == meta.get("generation")


# -- Trails ----------------------------------------------------------------------------------------------
# Every handler finds the operator's Runtime in kopf's memo (kube/process.py puts it there).


def _run_trail(
    trigger: Trigger, body: Any, meta: Any, status: Any, memo: Any, kwargs: Mapping[str, Any], old: Any = None
) -> PassReport:
    runtime: Runtime = memo.runtime
    ref = _ref(meta)
    started = time.perf_counter()
    with runtime.object_locks.hold(ref.uid):
        report = trail_pass(
            ref,
            _spec(body),
            status,
            runtime.sessions,
            runtime.shared,
            trigger=trigger,
            # With field="spec", kopf hands over the old value of the spec itself, not the old body.
            old_spec_body=old if isinstance(old, Mapping) else None,
            compliance=runtime.compliance,
            tenancy=_tenancy(runtime, ref, kwargs),
        )
    _measure(runtime, "Trail", ref, started, report)
    _follow_trail(runtime, ref, report, kwargs)
    return report


def _tenancy(runtime: Runtime, ref: ObjectRef, kwargs: Mapping[str, Any]) -> Tenancy:
    """The policy, owners and namespace labels a pass of `ref` is judged by, recorded for its timer."""
    labels = labels_in(kwargs, ref.namespace)
    users = topic_users(kwargs, ref.namespace, ref.name)
    tenancy = Tenancy(runtime.tenancy_policy(), _liveness(kwargs["trail_specs"]), labels, users)
    runtime.tenancy_inputs.record(ref.uid, tenancy)
    return tenancy


def _tenancy_moved(runtime: Runtime, meta: Mapping[str, Any], kwargs: Mapping[str, Any]) -> bool:
    ref = _ref(meta)
    labels = labels_in(kwargs, ref.namespace)
    return runtime.tenancy_inputs.moved(ref.uid, Tenancy(runtime.tenancy_policy(), labels=labels))


def _liveness(trails: Any) -> OwnerLiveness:
    """Whether an owner tag names a Trail that exists, from the index of Trails (kopf fills it from the
    API server before any handler runs, and keeps it current from the watch)."""
    live = {owner_key(namespace, name) for namespace, name in trails}
    return lambda owner: owner in live


def trail_created(body: Any, meta: Any, status: Any, patch: Any, retry: int, memo: Any, **kw: Any) -> None:
    _post(memo.runtime, body, _run_trail("create", body, meta, status, memo, kw), patch, retry)


def trail_updated(
    body: Any, meta: Any, status: Any, patch: Any, retry: int, old: Any, memo: Any, **kw: Any
) -> None:
    _post(memo.runtime, body, _run_trail("update", body, meta, status, memo, kw, old), patch, retry)


def trail_resumed(body: Any, meta: Any, status: Any, patch: Any, retry: int, memo: Any, **kw: Any) -> None:
    _post(memo.runtime, body, _run_trail("resume", body, meta, status, memo, kw), patch, retry)


def trail_drift_check(body: Any, meta: Any, status: Any, patch: Any, memo: Any, **kw: Any) -> None:
    runtime: Runtime = memo.runtime
    if _invalid_and_unchanged(meta, status) or not (
        _due(runtime, meta, _spec(body), status) or _tenancy_moved(runtime, meta, kw)
    ):
        return
    report = _run_trail("timer", body, meta, status, memo, kw)
    report.retry_after = None  # the next tick retries; a timer error would only add noise
    _post(memo.runtime, body, report, patch, timer=True)


def trail_deleted(body: Any, meta: Any, patch: Any, retry: int, memo: Any, **kw: Any) -> None:
    runtime: Runtime = memo.runtime
    ref = _ref(meta)
    with runtime.object_locks.hold(ref.uid):
        report = trail_deletion(
            ref,
            _spec(body),
            runtime.sessions,
            runtime.shared,
            runtime.compliance,
            _tenancy(runtime, ref, kw),
        )
    if report.retry_after is None:
        runtime.metrics.forget("Trail", ref.namespace, ref.name)
        runtime.lasting_events.pop(ref.uid, None)
        runtime.tenancy_inputs.forget(ref.uid)
    _post(runtime, body, report, patch, retry)


# LogRetentions follow their Trail: an index of Trail specs by (namespace, name) gives them its buckets and
# prefix without an API call, and stays current as Trails change...
def trail_specs(namespace: Any, name: Any, body: Any, **_: Any) -> dict[tuple[str, str], Any]:
    return {(str(namespace or "default"), str(name)): plain(body.get("spec"))}


# ...and the other way round: the LogRetentions that follow each Trail, as their last watch event showed
# them, so that a Trail's pass can start theirs at once (kube/dependents.py).
def retentions_by_trail(namespace: Any, body: Any, **_: Any) -> dict[tuple[str, str], dict[str, Any]] | None:
    ref = _trail_ref(body.get("spec"))
    if ref is None or not ref.get("name"):
        return None
    return {(str(namespace or "default"), str(ref["name"])): _snapshot(body)}


def _trail_ref(spec: Any) -> Mapping[str, Any] | None:
    ref = spec.get("trailRef") if isinstance(spec, Mapping) else None
    return ref if isinstance(ref, Mapping) else None


def _trail_spec_for(spec: Any, meta: Mapping[str, Any], index: Any) -> Any:
    """The spec of the Trail a LogRetention follows (None: no Trail to follow, or a malformed reference
    the models refuse by name)."""
    ref = _trail_ref(spec)
    if ref is None:
        return None
    found = list(index.get((str(meta.get("namespace") or "default"), str(ref.get("name", ""))), []))
    return found[0] if found else None


def _follow_trail(runtime: Runtime, trail: ObjectRef, report: PassReport, kwargs: Mapping[str, Any]) -> None:
    """After a pass of `trail` (its buckets now made, or its spec now known): run every LogRetention
    following it that is not Ready, or whose buckets the Trail moved."""
    if report.invalid is not None or runtime.status_writer is None:
        return  # no buckets to wait for; or no writer for a status outside a handler (unit tests)
    key = (trail.namespace, trail.name)
    waiting, trails = kwargs["retentions_by_trail"], kwargs["trail_specs"]
    if list(waiting.get(key, [])):
        runtime.dependents.notify(key, lambda: _run_waiting(runtime, key, waiting, trails, kwargs))


def _run_waiting(
    runtime: Runtime, key: tuple[str, str], waiting: Any, trails: Any, kwargs: Mapping[str, Any]
) -> None:
    for body in list(waiting.get(key, [])):
        meta, status = body.get("metadata") or {}, body.get("status") or {}
        if meta.get("deletionTimestamp") or _invalid_and_unchanged(meta, status):
            continue
        trail = _trail_spec_for(body.get("spec"), meta, trails)
        if _is_ready(status) and not retention_targets_changed(body.get("spec"), status, trail):
            continue
        # Finishing what its own create (or a change) began: a change pass, not a drift check.
        trigger: Trigger = "update" if status.get("buckets") else "create"
        report = _run_retention(runtime, trigger, body, meta, status, trail, kwargs)
        # Its own handler keeps retrying on its backoff (and refuses a spec that became invalid): this
        # run only comes sooner.
        report.retry_after = report.invalid = None
        _post(runtime, body, report, None, timer=True)


# -- LogRetentions ----------------------------------------------------------------------------------------


def _run_retention(
    runtime: Runtime, trigger: Trigger, body: Any, meta: Any, status: Any, trail: Any, kw: Mapping[str, Any]
) -> PassReport:
    ref = _ref(meta)
    started = time.perf_counter()
    with runtime.object_locks.hold(ref.uid):
        report = retention_pass(
            ref,
            _spec(body),
            status,
            runtime.sessions,
            runtime.shared,
            trigger=trigger,
            trail_spec_body=trail,
            tenancy=_tenancy(runtime, ref, kw),
        )
    _measure(runtime, "LogRetention", ref, started, report)
    return report


def _on_retention(
    trigger: Trigger, body: Any, meta: Any, status: Any, patch: Any, memo: Any, kw: Any
) -> None:
    trail = _trail_spec_for(_spec(body), meta, kw["trail_specs"])
    report = _run_retention(memo.runtime, trigger, body, meta, status, trail, kw)
    _post(memo.runtime, body, report, patch, kw.get("retry", 0))


def retention_created(body: Any, meta: Any, status: Any, patch: Any, memo: Any, **kw: Any) -> None:
    _on_retention("create", body, meta, status, patch, memo, kw)


def retention_updated(body: Any, meta: Any, status: Any, patch: Any, memo: Any, **kw: Any) -> None:
    _on_retention("update", body, meta, status, patch, memo, kw)


def retention_resumed(body: Any, meta: Any, status: Any, patch: Any, memo: Any, **kw: Any) -> None:
    _on_retention("resume", body, meta, status, patch, memo, kw)


def retention_drift_check(body: Any, meta: Any, status: Any, patch: Any, memo: Any, **kw: Any) -> None:
    runtime: Runtime = memo.runtime
    spec = _spec(body)
    if _invalid_and_unchanged(meta, status):
        return
    if status.get("observedGeneration") is None and not _unwritten(meta, spec, status):
        return
    trail = _trail_spec_for(spec, meta, kw["trail_specs"])
    # A Trail that moved its buckets (or appeared, or vanished) is followed at once, not at resync.
    if not (
        retention_targets_changed(spec, status, trail)
        or _due(runtime, meta, spec, status)
        or _tenancy_moved(runtime, meta, kw)
    ):
        return
    report = _run_retention(runtime, "timer", body, meta, status, trail, kw)
    report.retry_after = None
    _post(runtime, body, report, patch, timer=True)


def retention_deleted(body: Any, meta: Any, status: Any, patch: Any, memo: Any, **kw: Any) -> None:
    runtime: Runtime = memo.runtime
    spec, ref = _spec(body), _ref(meta)
    trail = _trail_spec_for(spec, meta, kw["trail_specs"])
    with runtime.object_locks.hold(ref.uid):
        report = retention_deletion(
            ref, spec, status, runtime.sessions, runtime.shared, trail, _tenancy(runtime, ref, kw)
        )
    if report.retry_after is None:
        runtime.metrics.forget("LogRetention", ref.namespace, ref.name)
        runtime.lasting_events.pop(ref.uid, None)
        runtime.tenancy_inputs.forget(ref.uid)
    _post(runtime, body, report, patch, kw.get("retry", 0))


def register(registry: kopf.OperatorRegistry, tick: float) -> None:
    """Bind the handlers above to `registry`. Not done by decorators at import: the timers' tick follows
    the operator's --resync-scale, known only when it starts."""
    on, spec = kopf.on, "spec"
    on.create(*TRAILS, id="trail_created", registry=registry)(trail_created)
    on.update(*TRAILS, field=spec, id="trail_updated", registry=registry)(trail_updated)
    on.resume(*TRAILS, id="trail_resumed", registry=registry)(trail_resumed)
    kopf.timer(*TRAILS, interval=tick, sharp=False, id="trail_drift_check", registry=registry)(
        trail_drift_check
    )
    on.delete(*TRAILS, id="trail_deleted", registry=registry)(trail_deleted)
    kopf.index(*TRAILS, id="trail_specs", registry=registry)(trail_specs)
    on.create(*RETENTIONS, id="retention_created", registry=registry)(retention_created)
    on.update(*RETENTIONS, field=spec, id="retention_updated", registry=registry)(retention_updated)
    on.resume(*RETENTIONS, id="retention_resumed", registry=registry)(retention_resumed)
    kopf.timer(*RETENTIONS, interval=tick, sharp=False, id="retention_drift_check", registry=registry)(
        retention_drift_check
    )
    on.delete(*RETENTIONS, id="retention_deleted", registry=registry)(retention_deleted)
    kopf.index(*RETENTIONS, id="retentions_by_trail", registry=registry)(retentions_by_trail)
    # Namespace labels, for the tenancy rules that select namespaces by label (kube/tenancy_view.py).
    kopf.index(*NAMESPACES, id=INDEX, registry=registry)(namespace_labels)
    kopf.index(*TRAILS, id=TOPICS_INDEX, registry=registry)(trails_by_topic)
