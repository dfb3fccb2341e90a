"""`trailkeeper audit` against moto, over trails made directly with boto3 (not by trailkeeper)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner, Result

from support.moto_server import MotoServer
from test_account_state import HOME, OTHER, AwsSetup
from trailkeeper.cli.audit import EXIT_FAILED_CONTROLS, WIDTH, audit

COMPLIANT_TABLE = """\

Account-wide
  PASS  CIS-3.1   multi-region coverage (v3.0: 3.1)
        multi-region trail us-east-1/org-audit is logging read and write management events

Trail org-audit  (home us-east-1, multi-region)
  arn:aws:cloudtrail:us-east-1:123456789012:trail/org-audit
  PASS  CIS-3.2   log file validation (v3.0: 3.2)
        validation on for us-east-1/org-audit
  PASS  CIS-3.3   log bucket not publicly accessible (not in v3.0)
        public access blocked, no public grant on acme-audit
  PASS  CIS-3.4   CloudWatch Logs integration (not in v3.0)
        delivering to CloudWatch Logs: us-east-1/org-audit
  PASS  CIS-3.6   log bucket access logging (v3.0: 3.4)
        access logging on for acme-audit
  PASS  CIS-3.7   log encryption with KMS (v3.0: 3.5)
        SSE-KMS on us-east-1/org-audit
  PASS  CIS-3.10  S3 object-level write events (v3.0: 3.8)
        S3 object-level write events for all buckets recorded by us-east-1/org-audit
  PASS  CIS-3.11  S3 object-level read events (v3.0: 3.9)
        S3 object-level read events for all buckets recorded by us-east-1/org-audit

8 of 8 controls passed
"""

LEGACY_ROWS = """\
Trail legacy  (home eu-west-1, regional)
  arn:aws:cloudtrail:eu-west-1:123456789012:trail/legacy
  FAIL  CIS-3.2   log file validation (v3.0: 3.2)
        eu-west-1/legacy: validation off
  FAIL  CIS-3.3   log bucket not publicly accessible (not in v3.0)
        legacy-logs: no public access block, policy statement PublicRead allows anyone, ACL grants
        public access
  FAIL  CIS-3.4   CloudWatch Logs integration (not in v3.0)
        eu-west-1/legacy: no CloudWatch Logs log group
  FAIL  CIS-3.6   log bucket access logging (v3.0: 3.4)
        legacy-logs: access logging off
  FAIL  CIS-3.7   log encryption with KMS (v3.0: 3.5)
        eu-west-1/legacy: no KMS key (SSE-S3)
  FAIL  CIS-3.10  S3 object-level write events (v3.0: 3.8)
        no logging trail records S3 object-level write events for all buckets
  FAIL  CIS-3.11  S3 object-level read events (v3.0: 3.9)
        no logging trail records S3 object-level read events for all buckets
"""


@pytest.fixture
def setup(moto_server: MotoServer, moto_endpoint: str) -> AwsSetup:
    moto_server.reset()
    return AwsSetup(moto_endpoint)


def run_audit(setup: AwsSetup, *args: str) -> Result:
    return CliRunner().invoke(audit, ["--aws-endpoint-url", setup.endpoint, *args])


def test_compliant_account_prints_every_control_passed_and_exits_0(setup: AwsSetup) -> None:
    setup.compliant()

    result = run_audit(setup)

    assert result.exit_code == 0, result.output
    header, rest = result.stdout.split("\n", 1)
    assert header.startswith("Account 123456789012: ")
    assert header.endswith(" regions enabled, 1 trail")
    assert rest == COMPLIANT_TABLE
    assert result.stderr == ""


def test_failing_trail_prints_each_failed_control_and_exits_3(setup: AwsSetup) -> None:
    setup.compliant()
    setup.non_compliant()

    result = run_audit(setup, "--regions", f"{HOME},{OTHER}")

    assert result.exit_code == EXIT_FAILED_CONTROLS, result.output
    assert result.stdout.startswith("Account 123456789012: 2 regions given, 2 trails\n")
    assert LEGACY_ROWS in result.stdout
    assert result.stdout.endswith("\n8 of 15 controls passed; 7 failed\n")
    assert max(len(line) for line in result.stdout.splitlines()) <= WIDTH


def test_json_lists_every_control_of_every_trail(setup: AwsSetup) -> None:
    setup.compliant()
    setup.non_compliant()

    result = run_audit(setup, "--format", "json", "--regions", HOME, "--regions", OTHER)

    assert result.exit_code == EXIT_FAILED_CONTROLS
    entries = json.loads(result.stdout)
    assert entries[0] == {
        "trail": None,
        "trailArn": None,
        "homeRegion": None,
        "control": "CIS-3.1",
        "title": "multi-region coverage (v3.0: 3.1)",
        "passed": True,
        "detail": "multi-region trail us-east-1/org-audit is logging read and write management events",
    }
    assert len(entries) == 15
    assert {e["trail"] for e in entries if not e["passed"]} == {"legacy"}
    assert all(e["passed"] for e in entries if e["trail"] == "org-audit")
    assert set(entries[1]) == {"trail", "trailArn", "homeRegion", "control", "title", "passed", "detail"}


def test_junit_has_one_suite_and_a_failure_per_failed_control(setup: AwsSetup) -> None:
    setup.compliant()
    setup.non_compliant()

    result = run_audit(setup, "--format", "junit", "--regions", f"{HOME},{OTHER}")

    assert result.exit_code == EXIT_FAILED_CONTROLS
    root = ET.fromstring(result.stdout)
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "trailkeeper-cis"
    cases = suite.findall("testcase")
    failed = [c for c in cases if c.find("failure") is not None]
    assert (suite.get("tests"), suite.get("failures")) == ("15", "7")
    assert len(cases) == 15 and len(failed) == 7
    assert {c.get("classname") for c in failed} == {"eu-west-1/legacy"}
    validation = next(c for c in failed if str(c.get("name")).startswith("CIS-3.2 "))
    failure = validation.find("failure")
    assert failure is not None and failure.get("message") == "eu-west-1/legacy: validation off"


def test_junit_of_a_compliant_account_has_no_failure(setup: AwsSetup) -> None:
    setup.compliant()

    result = run_audit(setup, "--format", "junit", "--regions", HOME)

    assert result.exit_code == 0
    suite = ET.fromstring(result.stdout).find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    assert suite.findall("testcase/failure") == []


def test_regions_limit_the_coverage_required(setup: AwsSetup) -> None:
    setup.trail("regional", bucket=setup.bucket("regional-logs"))

    covered = run_audit(setup, "--regions", HOME)
    wider = run_audit(setup, "--regions", f"{HOME}, {OTHER}")

    assert covered.exit_code == 0, covered.output
    assert "  PASS  CIS-3.1 " in covered.stdout
    assert wider.exit_code == EXIT_FAILED_CONTROLS
    assert "  FAIL  CIS-3.1 " in wider.stdout
    assert f"no logging trail with read and write management events in {OTHER}" in wider.stdout


def test_account_without_trails_fails_coverage(setup: AwsSetup) -> None:
    result = run_audit(setup, "--regions", HOME, "--format", "json")

    assert result.exit_code == EXIT_FAILED_CONTROLS
    assert json.loads(result.stdout) == [
        {
            "trail": None,
            "trailArn": None,
            "homeRegion": None,
            "control": "CIS-3.1",
            "title": "multi-region coverage (v3.0: 3.1)",
            "passed": False,
            "detail": "no trail in the account",
        }
    ]


def test_role_arn_audits_the_account_of_the_role(setup: AwsSetup) -> None:
    setup.compliant()

    result = run_audit(setup, "--regions", HOME, "--role-arn", "arn:aws:iam::111111111111:role/auditor")

    assert result.exit_code == EXIT_FAILED_CONTROLS
    assert result.stdout.startswith("Account 111111111111: 1 region given, 0 trails\n")
    assert "no trail in the account" in result.stdout


def test_missing_credentials_exit_1_with_a_message_and_no_traceback(
    setup: AwsSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    result = run_audit(setup, "--regions", HOME)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert "NoCredentialsError" in result.stderr
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--regions", "us-east-1,mars-1"], "'mars-1' is not an AWS region name"),
        (["--role-arn", "arn:aws:iam::1:user/x"], "not an IAM role ARN"),
        (["--external-id", "x"], "--external-id needs --role-arn"),
        (["--format", "yaml"], "'yaml' is not one of"),
    ],
)
def test_bad_options_are_usage_errors(setup: AwsSetup, args: list[str], message: str) -> None:
    result = run_audit(setup, *args)

    assert result.exit_code == 2
    assert message in result.stderr
