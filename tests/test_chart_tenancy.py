"""The chart's tenancy value: rendered into a ConfigMap the operator reads as its policy, mounted so that
an edit reaches the running pod."""

from __future__ import annotations

from typing import Any

import yaml

from test_chart import VALUE_SETS, by_kind, render_chart
from trailkeeper.reconcile.tenancy_file import parse_policy


def deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(by_kind(docs, "Deployment")[0])


def test_no_rules_renders_no_policy_and_no_flag() -> None:
    docs = render_chart({})
    assert not [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-tenancy")]
    container = deployment(docs)["spec"]["template"]["spec"]["containers"][0]
    assert not [a for a in container["args"] if a.startswith("--tenancy-policy")]


def test_rules_become_the_policy_the_operator_reads_from_a_directory_mount() -> None:
    values = VALUE_SETS["everything"]
    docs = render_chart(values)
    (config,) = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-tenancy")]
    policy = parse_policy(config["data"]["policy.yaml"])
    assert not isinstance(policy, str), policy
    assert [r.name for r in policy.rules] == ["security", "audit"]
    assert policy.rule_for("audit-eu").allow_delete is False
    assert yaml.safe_load(config["data"]["policy.yaml"]) == {"rules": values["tenancy"]["rules"]}
    pod = deployment(docs)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert "--tenancy-policy=/etc/trailkeeper/tenancy/policy.yaml" in container["args"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "tenancy"]
    assert mount == {"name": "tenancy", "mountPath": "/etc/trailkeeper/tenancy", "readOnly": True}
    (volume,) = [v for v in pod["volumes"] if v["name"] == "tenancy"]
    assert volume["configMap"]["name"] == config["metadata"]["name"]
