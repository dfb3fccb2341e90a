"""The tenancy policy as the operator reads it: a YAML file (the chart mounts its ConfigMap there).

Read again whenever the file changes (the kubelet swaps a mounted ConfigMap's files in place), so an
admin's edit applies at each Trail's next pass without a restart. A file that cannot be read or parsed
fails closed: every Trail is refused, naming the problem, until it is fixed.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import yaml
from pydantic import ValidationError

from trailkeeper.api.tenancy import TenancyPolicy


def parse_policy(text: str) -> TenancyPolicy | str:
    """The policy in `text`, or why it is not one."""
    try:
        document = yaml.safe_load(text)
        return TenancyPolicy.model_validate(document or {})
    except yaml.YAMLError as error:
        return f"not YAML: {error}"
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in error.errors()
        )
        return f"invalid: {problems}"


class TenancyFile:
    """The policy in `path`, parsed again when the file's identity, size or time changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int, int] | None = None
        self._policy: TenancyPolicy | str = "not read yet"

    def current(self) -> TenancyPolicy | str:
        try:
            stat = os.stat(self.path)
        except OSError as error:
            return f"{self.path}: {error.strerror}"
        seen = (stat.st_ino, stat.st_dev, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if seen != self._seen:
                try:
                    text = self.path.read_text(encoding="utf-8")
                except OSError as error:
                    return f"{self.path}: {error.strerror}"
                self._policy = parse_policy(text)
                self._seen = seen
            return self._policy
