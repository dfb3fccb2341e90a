"""What the tenancy policy needs of the cluster: each namespace's labels, and when a verdict may change.

Rules may pick namespaces by label (`namespaceSelector`), so the operator indexes namespaces (list and
watch, nothing else) and judges each pass with its namespace's current labels. A namespace relabelled,
or the policy file edited, changes what the policy says of objects whose spec did not change: their
timers notice it at the next tick (`TenancyInputs.moved`) and run a pass then, not at the next resync.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from trailkeeper.reconcile.passes import Tenancy

NAMESPACES = ("", "v1", "namespaces")
INDEX = "namespace_labels"


def namespace_labels(name: Any, body: Any, **_: Any) -> dict[str, dict[str, str]]:
    """kopf index: namespace name -> its labels."""
    meta = body.get("metadata") or {}
    return {str(name): {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}}


def labels_in(kwargs: Mapping[str, Any], namespace: str) -> dict[str, str] | None:
    """The labels of `namespace` from the index kopf hands every handler (None: not known)."""
    index = kwargs.get(INDEX)
    found = list(index.get(namespace, [])) if index is not None else []
    return dict(found[0]) if found else None


class TenancyInputs:
    """Per object (uid), what its last pass was judged by: the policy and its namespace's labels."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[Any, Any]] = {}

    @staticmethod
    def _key(tenancy: Tenancy) -> tuple[Any, Any]:
        # Without a policy, labels decide nothing: a relabelled namespace is no reason for a pass.
        return (tenancy.policy, tenancy.labels if tenancy.policy is not None else None)

    def record(self, uid: str, tenancy: Tenancy) -> None:
        with self._lock:
            self._seen[uid] = self._key(tenancy)

    def moved(self, uid: str, tenancy: Tenancy) -> bool:
        """Whether the policy or the labels differ from those of the object's last pass (never before a
        first pass: the change handlers run that one)."""
        with self._lock:
            seen = self._seen.get(uid)
        return seen is not None and seen != self._key(tenancy)

    def forget(self, uid: str) -> None:
        with self._lock:
            self._seen.pop(uid, None)
