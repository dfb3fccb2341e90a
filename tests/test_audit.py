"""`trailkeeper audit` against moto, over trails made directly with boto3 (not by trailkeeper)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from support.moto_server import MotoServer
from support.s3control_front import s3control_on_endpoint_host
from test_account_state import HOME, OTHER, AwsSetup
from trailkeeper.cli.audit import EXIT_FAILED_CONTROLS, WIDTH, audit


@pytest.fixture(autouse=True)
def _s3control_on_moto() -> Iterator[None]:
    with s3control_on_endpoint_host():
        yield


@pytest.fixture
def setup(moto_server: MotoServer, moto_endpoint: str) -> AwsSetup:
    moto_server.reset()
    return AwsSetup(moto_endpoint)


def run_audit(setup: AwsSetup, *args: str) -> Result:
    return CliRunner().invoke(audit, ["--aws-endpoint-url", setup.endpoint, *args])


ACCOUNT_CONTROLS = 2 + 15  # CIS-3.1, TK-REGIONS and the Monitoring section
TRAIL_CONTROLS = 10


def verdicts(result: Result) -> dict[tuple[str | None, str], str]:
    return {(e["trail"], e["control"]): e["state"] for e in json.loads(result.stdout)}


def test_table_marks_each_verdict_and_says_how_to_fix_what_did_not_pass(setup: AwsSetup) -> None:
    setup.compliant()

    result = run_audit(setup, "--regions", HOME)

    # moto never delivers to CloudWatch Logs (CIS-3.4 stays Unknown) and the account has no metric
    # filters: the gate does not pass.
    assert result.exit_code == EXIT_FAILED_CONTROLS, result.output
    assert result.stdout.startswith("Account 123456789012: 1 region given, 1 trail\n\nAccount-wide\n")
    lines = result.stdout.splitlines()
    assert (
        "  PASS  CIS-3.1   multi-region trail logging all management events (CIS 1.5-5.0 3.1, 6.0-7.0 4.1)"
        in lines
    )
    assert "  UNKN  CIS-3.4   trails delivering to CloudWatch Logs (CIS 1.5-2.0 3.4)" in lines
    assert "        us-east-1/org-audit: no delivery to CloudWatch Logs yet" in lines
    assert any(line.startswith("  FAIL  CIS-4.1   unauthorized API calls monitored") for line in lines)
    assert (
        "        fix: Only the account's root user can enable MFA Delete (PutBucketVersioning with MFA, from"
        in lines
    )
    assert max(len(line) for line in lines) <= WIDTH
    assert result.stdout.endswith(
        f"10 of {ACCOUNT_CONTROLS + TRAIL_CONTROLS} controls passed; 16 failed; 1 unknown\n"
    )


def test_failing_trail_prints_each_failed_control_and_exits_3(setup: AwsSetup) -> None:
    setup.compliant()
    setup.non_compliant()

    result = run_audit(setup, "--format", "json", "--regions", f"{HOME},{OTHER}")

    assert result.exit_code == EXIT_FAILED_CONTROLS, result.output
    seen = verdicts(result)
    legacy = {control for (trail, control), state in seen.items() if trail == "legacy" and state == "Fail"}
    assert legacy == {
        "CIS-2.1.3",
        "TK-BUCKET-VERSIONING",
        "CIS-3.2",
        "CIS-3.3",
        "TK-BUCKET-BPA",
        "CIS-3.4",
        "CIS-3.6",
        "CIS-3.7",
        "CIS-3.10",
        "CIS-3.11",
    }
    org = {control for (trail, control), state in seen.items() if trail == "org-audit" and state != "Pass"}
    # moto keeps no MFADelete and never delivers to CloudWatch Logs.
    assert org == {"CIS-2.1.3", "CIS-3.4"}
    assert seen[(None, "CIS-3.1")] == "Pass"


def test_json_lists_every_control_of_every_trail(setup: AwsSetup) -> None:
    setup.compliant()
    setup.non_compliant()

    result = run_audit(setup, "--format", "json", "--regions", HOME, "--regions", OTHER)

    entries = json.loads(result.stdout)
    assert entries[0] == {
        "trail": None,
        "trailArn": None,
        "homeRegion": None,
        "control": "CIS-3.1",
        "title": "multi-region trail logging all management events (CIS 1.5-5.0 3.1, 6.0-7.0 4.1)",
        "passed": True,
        "state": "Pass",
        "cis": {
            "1.5": "3.1",
            "2.0": "3.1",
            "3.0": "3.1",
            "4.0": "3.1",
            "5.0": "3.1",
            "6.0": "4.1",
            "7.0": "4.1",
        },
        "benchmark": "CIS 1.5-5.0 3.1, 6.0-7.0 4.1",
        "detail": "multi-region trail us-east-1/org-audit is logging read and write management events",
        "remediation": entries[0]["remediation"],
    }
    assert len(entries) == ACCOUNT_CONTROLS + 2 * TRAIL_CONTROLS
    assert [e["control"] for e in entries if e["trail"] is None][:3] == ["CIS-3.1", "TK-REGIONS", "CIS-4.1"]
    assert all(e["cis"] == {} for e in entries if e["control"].startswith("TK-"))


def test_junit_has_a_failure_per_failed_control_and_skips_the_unknown(setup: AwsSetup) -> None:
    setup.compliant()
    setup.non_compliant()

    result = run_audit(setup, "--format", "junit", "--regions", f"{HOME},{OTHER}")

    assert result.exit_code == EXIT_FAILED_CONTROLS
    root = ET.fromstring(result.stdout)
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "trailkeeper-cis"
    cases = suite.findall("testcase")
    failed = [c for c in cases if c.find("failure") is not None]
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert suite.get("tests") == str(len(cases)) == str(ACCOUNT_CONTROLS + 2 * TRAIL_CONTROLS)
    assert suite.get("failures") == str(len(failed)) and suite.get("skipped") == str(len(skipped)) == "1"
    validation = next(c for c in failed if str(c.get("name")).startswith("CIS-3.2 "))
    failure = validation.find("failure")
    assert failure is not None and failure.get("message") == "eu-west-1/legacy: validation off"


def test_regions_limit_the_coverage_required(setup: AwsSetup) -> None:
    setup.trail("regional", bucket=setup.bucket("regional-logs"))

    covered = run_audit(setup, "--regions", HOME)
    wider = run_audit(setup, "--regions", f"{HOME}, {OTHER}")

    assert "  PASS  TK-REGIONS " in covered.stdout
    # A region-scoped trail is never CIS 3.1, which asks for a multi-region trail.
    assert "  FAIL  CIS-3.1 " in covered.stdout
    assert "  FAIL  TK-REGIONS " in wider.stdout
    assert f"no logging trail with read and write management events in {OTHER}" in wider.stdout


def test_account_without_trails_fails_the_account_controls(setup: AwsSetup) -> None:
    result = run_audit(setup, "--regions", HOME, "--format", "json")

    assert result.exit_code == EXIT_FAILED_CONTROLS
    entries = json.loads(result.stdout)
    assert len(entries) == ACCOUNT_CONTROLS
    assert all(e["trail"] is None and e["state"] == "Fail" for e in entries)
    assert entries[0]["detail"] == "no trail in the account"


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
