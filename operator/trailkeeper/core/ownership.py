"""Whose a trail (or other tagged resource) is, and whether a Trail may take it over.

The owner tag names the Trail that made or adopted a resource. A resource of a live Trail is never
taken by another one, whatever its spec says: `adopt: true` takes over only a resource with no owner
tag, or one whose owner no longer exists. Whether an owner lives is asked of the cluster by the caller
(`OwnerLiveness`); the command line cannot see a cluster, answers "unknown", and takes such a resource
only when told to (`--force-adopt`).
"""

from __future__ import annotations

from collections.abc import Callable

# Whether the Trail an owner tag names exists: True, False, or None when the caller cannot tell.
OwnerLiveness = Callable[[str], bool | None]


def unknown_liveness(owner: str) -> bool | None:
    """The command line's answer: it sees no cluster."""
    return None


def takeover_problem(
    what: str, owner: str | None, me: str, *, adopt: bool, alive: OwnerLiveness, force: bool = False
) -> str | None:
    """Why the resource `what` (tagged `owner`) is not `me`'s to manage, or None when it is.

    The message names the owner and never invites taking a live Trail's resource.
    """
    if owner == me:
        return None
    if owner is None:
        return (
            None if adopt else f"{what} is not made by trailkeeper; adopt: true takes over one with no owner"
        )
    state = alive(owner)
    if state is True:
        return (
            f"{what} is owned by the Trail {owner}, which exists: a resource of a live Trail is never taken "
            "over (choose another name)"
        )
    if state is False:
        return (
            None
            if adopt
            else f"{what} is owned by the Trail {owner}, which no longer exists; adopt: true takes it over"
        )
    if adopt and force:
        return None
    return (
        f"{what} is owned by {owner}; the command line cannot see whether that Trail still exists and "
        "takes it over only with --force-adopt (and adopt: true), when you know it is gone"
    )
