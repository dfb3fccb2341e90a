"""Where the bench finds the repository's test support code, and the environment its subprocesses get."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
RESULTS = REPO / "bench" / "results.json"


def use_test_support() -> None:
    """Make ``support`` (tests/support: the emulated cluster and operator harness, moto helpers)
    importable, so the bench drives the operator exactly as the end-to-end tests do."""
    for path in (str(TESTS), str(REPO)):
        if path not in sys.path:
            sys.path.insert(0, path)


def aws_environment() -> dict[str, str]:
    """Fake credentials and a fixed region; none of a developer's own AWS configuration."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def subprocess_env() -> dict[str, str]:
    env = {**os.environ, **aws_environment()}
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env
