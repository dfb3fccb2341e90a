"""Tenancy and ownership below the operator: the policy's rules, its file, the takeover rule, role sessions.

The reconciler tests run against moto over HTTP; a refused Trail's pass is shown to make no AWS call by
the sessions' own call recorder (every request goes through it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trailkeeper.api.tenancy import TenancyPolicy
from trailkeeper.api.trail import TrailSpec
from trailkeeper.aws.session import AccountRef, AwsSessions, role_session_name
from trailkeeper.cli.main import DIFF_SESSION_NAME
from trailkeeper.core.naming import OWNER_TAG
from trailkeeper.core.ownership import takeover_problem, unknown_liveness
from trailkeeper.core.tenancy import trail_refusal
from trailkeeper.reconcile.passes import ObjectRef, Tenancy, trail_deletion, trail_pass
from trailkeeper.reconcile.shared import Shared
from trailkeeper.reconcile.tenancy_file import TenancyFile, parse_policy
from trailkeeper.reconcile.trail import TrailRequest, delete_trail, reconcile_trail

OTHER = "222222222222"
ROLE = f"arn:aws:iam::{OTHER}:role/trailkeeper"


def spec(**overrides: Any) -> TrailSpec:
    body: dict[str, Any] = {"regions": ["us-east-1"], "destination": {"bucket": "team-b-audit"}}
    body.update(overrides)
    return TrailSpec.model_validate(body)


POLICY = TenancyPolicy.model_validate(
    {
        "rules": [
            {
                "name": "team-b",
                "namespaces": ["team-b", "team-b-*"],
                "ownAccount": False,
                "accounts": [OTHER],
                "buckets": ["team-b-*"],
                "trailNames": ["team-b-*", "audit"],
                "allowDelete": False,
            },
            {"name": "platform", "namespaces": ["*"], "roleArns": ["arn:aws:iam::333333333333:role/tk-*"]},
        ]
    }
)


# -- the policy's rules ---------------------------------------------------------------------------------


def test_no_policy_is_todays_single_account_install() -> None:
    empty = TenancyPolicy()
    assert trail_refusal(empty, "any", "audit", spec()) is None
    refusal = trail_refusal(empty, "any", "audit", spec(account={"roleArn": ROLE}))
    assert refusal is not None
    assert refusal.startswith("tenancy rule 'default' (namespace any): role ") and "no role" in refusal


@pytest.mark.parametrize(
    ("namespace", "overrides", "expected"),
    [
        (
            "team-b",
            {
                "account": {"roleArn": ROLE},
            },
            None,
        ),
        ("team-b-dev", {"account": {"roleArn": ROLE}, "deletionPolicy": "Delete"}, "Delete is not allowed"),
        ("team-b", {}, "the operator's own account is not allowed"),
        (
            "team-b",
            {"account": {"roleArn": ROLE}, "destination": {"bucket": "a-logs"}},
            "bucket a-logs is not allowed (allowed: team-b-*)",
        ),
        (
            "team-b",
            {"account": {"roleArn": ROLE}, "trailName": "org-trail"},
            "trail name org-trail is not allowed",
        ),
        (
            "team-b",
            {
                "account": {"roleArn": "arn:aws:iam::333333333333:role/tk-x"},
            },
            "role arn:aws:iam::333333333333:role/tk-x is not allowed (allowed: 222222222222)",
        ),
        ("team-a", {"account": {"roleArn": "arn:aws:iam::333333333333:role/tk-x"}}, None),
        ("team-a", {"account": {"roleArn": ROLE}}, "rule 'platform' (namespace team-a): role"),
        ("team-a", {"destination": {"bucket": "a-{region}"}}, None),
    ],
)
def test_the_first_matching_rule_decides_and_is_named(
    namespace: str, overrides: dict[str, Any], expected: str | None
) -> None:
    refusal = trail_refusal(POLICY, namespace, "audit", spec(**overrides))
    if expected is None:
        assert refusal is None
    else:
        assert refusal is not None and expected in refusal, refusal


def test_the_policy_file_is_read_again_when_it_changes_and_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / "tenancy.yaml"
    source = TenancyFile(path)
    assert "No such file" in str(source.current())
    path.write_text("rules:\n- name: all\n  namespaces: ['*']\n  allowDelete: false\n", encoding="utf-8")
    policy = source.current()
    assert isinstance(policy, TenancyPolicy) and policy.rules[0].allow_delete is False
    path.write_text("rules:\n- name: all\n  namespace: ['*']\n", encoding="utf-8")
    assert str(source.current()).startswith("invalid: rules.0.namespace: Extra inputs are not permitted")
    assert parse_policy("rules: [") != parse_policy("{}")
    assert isinstance(parse_policy(""), TenancyPolicy)


# -- a refused Trail makes no AWS call ---------------------------------------------------------------------


def refused_pass(aws: AwsSessions, tenancy: TenancyPolicy | str) -> dict[str, Any]:
    ref = ObjectRef("team-b", "audit", "uid-1", 1)
    report = trail_pass(
        ref, spec().model_dump(by_alias=True), {}, aws, Shared(), trigger="create", tenancy=Tenancy(tenancy)
    )
    assert report.retry_after is None
    assert [(e.type, e.reason) for e in report.events] == [("Warning", "Forbidden")]
    ready = next(c for c in report.status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Forbidden")
    return dict(ready)


def test_a_refused_trail_is_forbidden_naming_the_rule_with_zero_aws_calls(aws: AwsSessions) -> None:
    assert aws.recorder is not None
    ready = refused_pass(aws, POLICY)
    assert ready["message"] == (
        "tenancy rule 'team-b' (namespace team-b): "
        "the operator's own account is not allowed; set account.roleArn"
    )
    assert list(aws.recorder.snapshot()) == []
    # The same Trail, allowed (the default rule), does reach AWS: the recorder sees its calls.
    ref = ObjectRef("team-b", "audit", "uid-1", 1)
    trail_pass(
        ref,
        spec().model_dump(by_alias=True),
        {},
        aws,
        Shared(),
        trigger="create",
        tenancy=Tenancy(TenancyPolicy()),
    )
    assert any(c.operation == "CreateTrail" for c in aws.recorder.snapshot())


def test_an_unreadable_policy_refuses_every_trail_with_zero_aws_calls(aws: AwsSessions) -> None:
    assert aws.recorder is not None
    ready = refused_pass(aws, "invalid: rules.0.name: Field required")
    assert "the tenancy policy cannot be read" in ready["message"]
    assert list(aws.recorder.snapshot()) == []


def test_a_refused_deletion_retains_everything_with_zero_aws_calls(aws: AwsSessions) -> None:
    assert aws.recorder is not None
    ref = ObjectRef("team-b", "audit", "uid-1", 1)
    body = spec(deletionPolicy="Delete").model_dump(by_alias=True)
    report = trail_deletion(ref, body, aws, Shared(), tenancy=Tenancy(POLICY))
    assert [(e.reason, e.message.split(",")[0]) for e in report.events] == [
        ("Forbidden", "deleted; AWS resources retained")
    ]
    assert list(aws.recorder.snapshot()) == []


# -- ownership ------------------------------------------------------------------------------------------


def alive(*owners: str) -> Any:
    return lambda owner: owner in owners


@pytest.mark.parametrize(
    ("owner", "adopt", "liveness", "force", "expected"),
    [
        ("b/me", False, unknown_liveness, False, None),
        (None, False, unknown_liveness, False, "not made by trailkeeper; adopt: true takes over"),
        (None, True, unknown_liveness, False, None),
        ("a/owner", True, alive("a/owner"), False, "owned by the Trail a/owner, which exists"),
        ("a/owner", True, alive("a/owner"), True, "owned by the Trail a/owner, which exists"),
        ("a/owner", False, alive(), False, "which no longer exists; adopt: true takes it over"),
        ("a/owner", True, alive(), False, None),
        ("a/owner", True, unknown_liveness, False, "takes it over only with --force-adopt"),
        ("a/owner", False, unknown_liveness, True, "takes it over only with --force-adopt"),
        ("a/owner", True, unknown_liveness, True, None),
    ],
)
def test_takeover_rule(
    owner: str | None, adopt: bool, liveness: Any, force: bool, expected: str | None
) -> None:
    problem = takeover_problem("trail x in r", owner, "b/me", adopt=adopt, alive=liveness, force=force)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem
        if "which exists" in expected:
            assert "adopt" not in problem  # never an invitation to take a live Trail's trail


def owned_trail(aws: AwsSessions, owner: str) -> str:
    aws.client("s3", "us-east-1").create_bucket(Bucket="a-logs")
    cloudtrail = aws.client("cloudtrail", "us-east-1")
    arn = cloudtrail.create_trail(
        Name="audit", S3BucketName="a-logs", TagsList=[{"Key": OWNER_TAG, "Value": owner}]
    )["TrailARN"]
    cloudtrail.start_logging(Name="audit")
    return str(arn)


def test_a_live_owners_trail_is_neither_adopted_nor_shown_as_ours(aws: AwsSessions) -> None:
    owned_trail(aws, "team-a/audit")
    request = TrailRequest("team-b", "audit", spec(adopt=True), owner_alive=alive("team-a/audit"))
    outcome = reconcile_trail(request, aws, Shared())
    assert [f.code for f in outcome.failures] == ["Conflict"]
    assert "owned by the Trail team-a/audit, which exists" in outcome.failures[0].message
    # The conflicting region shows no trail and no logging of the other Trail's.
    assert (outcome.regions[0].trail_arn, outcome.regions[0].is_logging) == (None, None)
    assert aws.client("cloudtrail", "us-east-1").get_trail(Name="audit")["Trail"]["S3BucketName"] == "a-logs"
    assert outcome.changes == []
    # Its deletion (Delete) leaves the other Trail's trail too.
    delete_trail(TrailRequest("team-b", "audit", spec()), aws, Shared())
    assert aws.client("cloudtrail", "us-east-1").get_trail(Name="audit")["Trail"]["Name"] == "audit"


def test_a_gone_owners_trail_is_adopted_and_retagged(aws: AwsSessions) -> None:
    arn = owned_trail(aws, "team-a/audit")
    request = TrailRequest("team-b", "audit", spec(adopt=True), owner_alive=alive())
    assert reconcile_trail(request, aws, Shared()).failures == []
    cloudtrail = aws.client("cloudtrail", "us-east-1")
    assert cloudtrail.get_trail(Name="audit")["Trail"]["S3BucketName"] == "team-b-audit"
    tags = cloudtrail.list_tags(ResourceIdList=[arn])["ResourceTagList"][0]["TagsList"]
    assert {"Key": OWNER_TAG, "Value": "team-b/audit"} in tags


# -- role sessions ---------------------------------------------------------------------------------------


def test_role_session_names_carry_the_trail_within_awss_limits() -> None:
    assert role_session_name("team-b", "audit") == "tk@team-b.audit"
    long = role_session_name("n" * 63, "x" * 253)
    assert len(long) == 64 and long.startswith("tk@" + "n" * 40)
    assert long != role_session_name("n" * 63, "x" * 252)
    assert role_session_name("n" * 63, "x" * 253) == long


def test_each_trail_assumes_its_role_under_its_own_session_name(aws: AwsSessions) -> None:
    role = AccountRef(ROLE, external_id="s3cr3t", session_name=role_session_name("team-b", "audit"))
    arn = aws.client("sts", None, role).get_caller_identity()["Arn"]
    assert arn == f"arn:aws:sts::{OTHER}:assumed-role/trailkeeper/tk@team-b.audit"
    assert aws.client("sts", None, role) is aws.client("sts", None, role)
    with pytest.raises(ValueError, match="session name"):
        AccountRef(ROLE, session_name="a/b")


# -- the command line: two namespaces, one trail name ------------------------------------------------------


def manifest(path: Path, namespace: str, bucket: str, *, adopt: bool = False, delete: bool = False) -> Path:
    lines = [
        "apiVersion: trailkeeper.io/v1alpha1",
        "kind: Trail",
        f"metadata: {{name: audit, namespace: {namespace}}}",
        "spec:",
        "  regions: [us-east-1]",
        f"  destination: {{bucket: {bucket}}}",
        f"  adopt: {str(adopt).lower()}",
        f"  deletionPolicy: {'Delete' if delete else 'Retain'}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_cli(command: str, endpoint: str, *args: str) -> Any:
    from click.testing import CliRunner

    from trailkeeper.cli.main import cli

    return CliRunner().invoke(cli, [command, *args, "--aws-endpoint-url", endpoint], catch_exceptions=False)


def test_the_cli_never_takes_another_namespaces_trail_without_force_adopt(
    aws: AwsSessions, moto_endpoint: str, tmp_path: Path
) -> None:
    cloudtrail = aws.client("cloudtrail", "us-east-1")
    first = run_cli("apply", moto_endpoint, "-f", str(manifest(tmp_path / "a.yaml", "team-a", "a-logs")))
    assert first.exit_code == 0, first.output
    for adopt in (False, True):
        b = manifest(tmp_path / "b.yaml", "team-b", "b-logs", adopt=adopt)
        refused = run_cli("apply", moto_endpoint, "-f", str(b))
        assert refused.exit_code == 1
        assert "is owned by team-a/audit; the command line cannot see whether that Trail still exists" in (
            refused.output
        )
        assert cloudtrail.get_trail(Name="audit")["Trail"]["S3BucketName"] == "a-logs"
    # Without adopt: true in the manifest, --force-adopt alone takes nothing.
    b = manifest(tmp_path / "b.yaml", "team-b", "b-logs")
    assert run_cli("apply", moto_endpoint, "-f", str(b), "--force-adopt").exit_code == 1
    b = manifest(tmp_path / "b.yaml", "team-b", "b-logs", adopt=True)
    taken = run_cli("apply", moto_endpoint, "-f", str(b), "--force-adopt")
    assert taken.exit_code == 0, taken.output
    assert cloudtrail.get_trail(Name="audit")["Trail"]["S3BucketName"] == "b-logs"


def test_apply_assumes_a_role_per_trail_and_diff_once_for_all(
    aws: AwsSessions, moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`apply` writes each Trail's part under the Trail's own session name; `diff`'s reads each serve
    every Trail of the account, so it assumes the role once, under its own."""
    documents = [
        f"""\
apiVersion: trailkeeper.io/v1alpha1
kind: Trail
metadata: {{name: {name}, namespace: team-b}}
spec:
  regions: [us-east-1]
  destination: {{bucket: team-b-audit}}
  account: {{roleArn: "{ROLE}"}}
"""
        for name in ("audit", "audit-2")
    ]
    path = tmp_path / "team-b.yaml"
    path.write_text("---\n".join(documents), encoding="utf-8")
    assumed: list[str] = []
    real = AwsSessions._assume_role

    def spy(self: AwsSessions, account: AccountRef) -> dict[str, str]:
        assumed.append(account.session_name)
        return real(self, account)

    monkeypatch.setattr(AwsSessions, "_assume_role", spy)

    applied = run_cli("apply", moto_endpoint, "-f", str(path))
    assert applied.exit_code == 0, applied.output
    assert sorted(assumed) == ["tk@team-b.audit", "tk@team-b.audit-2"]
    assumed.clear()
    diffed = run_cli("diff", moto_endpoint, "-f", str(path))
    assert diffed.exit_code == 0, diffed.output
    assert assumed == [DIFF_SESSION_NAME]
