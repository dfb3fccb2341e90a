"""The API of trailkeeper's two kinds as pydantic models: the one source of the CRDs and defaults."""

from trailkeeper.api.logretention import LogRetentionSpec, LogRetentionStatus
from trailkeeper.api.trail import OWNER_TAG_KEY as OWNER_TAG
from trailkeeper.api.trail import TrailSpec, TrailStatus

GROUP = "trailkeeper.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

__all__ = [
    "API_VERSION",
    "GROUP",
    "OWNER_TAG",
    "VERSION",
    "LogRetentionSpec",
    "LogRetentionStatus",
    "TrailSpec",
    "TrailStatus",
]
