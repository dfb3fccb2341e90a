"""Hostile and malformed manifests, through the CRD schema and through the live operator.

The corpus in bad_inputs/ holds one object per file, each headed by what must become of it:

    # expect: spec.destination.keyPrefix   the field (or name) the rejection or the status must name
    # crd: rejects | cel | accepts | api     the generated CRD schema rejects it / one of its CEL rules does /
                                            it is schema-valid / the API server itself refuses it (its name)
    # status: InvalidSpec | Conflict | ...   the Ready=False reason the operator gives it when applied

Every one of them is sent to a real API server, all at once beside a few good objects: those the schema or
its CEL rules refuse are answered 422 naming the field, and nothing of them is stored; those it admits reach
the operator, which gives each a clear status naming the field, makes nothing in AWS, and keeps serving the
good objects.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from support.cluster import ApiError, Cluster, OperatorProcess, eventually
from support.faults_e2e import client, moto_state
from test_crds import spec_schema
from trailkeeper.api.crd import KINDS, crd
from trailkeeper.api.manifests import parse_spec
from trailkeeper.core.bucket_share import BucketShare, has_share
from trailkeeper.core.merge import owner_statements
from trailkeeper.core.naming import OWNER_TAG

CORPUS = sorted((Path(__file__).parent / "bad_inputs").glob("*.yaml"))
GROUP_PATH = "/apis/trailkeeper.io/v1alpha1"
REGIONS = ("us-east-1", "eu-west-1")

# Good objects applied beside the bad ones: each must reach Ready and stay served.
GOOD: dict[str, tuple[str, dict[str, Any]]] = {
    "good-single": (
        "Trail",
        {"regions": ["us-east-1"], "destination": {"bucket": "good-single-logs"}, "resyncSeconds": 30},
    ),
    "good-owner": (
        "Trail",
        {
            "regions": ["us-east-1"],
            "destination": {"bucket": "good-owner-logs"},
            "notifications": {"topicName": "good-owner-topic"},
            "resyncSeconds": 30,
        },
    ),
    "good-two-regions": (
        "Trail",
        {"regions": list(REGIONS), "destination": {"bucket": "good-two-{region}"}, "resyncSeconds": 30},
    ),
    "good-retention": ("LogRetention", {"trailRef": {"name": "good-single"}, "expirationDays": 400}),
}
GOOD_BUCKETS = {"good-single-logs", "good-owner-logs", "good-two-us-east-1", "good-two-eu-west-1"}
# Made outside trailkeeper before the operator starts: a Trail of that name must not take it over.
FOREIGN_TRAIL, FOREIGN_BUCKET = "legacy-trail", "legacy-bucket"


@dataclass(frozen=True)
class BadInput:
    path: Path
    body: Any
    expect: str
    crd: str
    status: str

    @classmethod
    def load(cls, path: Path) -> BadInput:
        text = path.read_text(encoding="utf-8")
        header = dict(
            line[2:].split(": ", 1) for line in text.splitlines() if line.startswith("# ") and ": " in line
        )
        body = yaml.safe_load(text)
        return cls(path, body, header["expect"], header["crd"], header["status"])

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.body["metadata"].get("namespace") or "default")

    @property
    def collection(self) -> str:
        plural = "trails" if self.kind == "Trail" else "logretentions"
        return f"{GROUP_PATH}/namespaces/{self.namespace}/{plural}"


BAD = [BadInput.load(path) for path in CORPUS]


def error_path(error: jsonschema.ValidationError) -> list[str]:
    """The fields a schema error names, written like the operator writes them (``spec.regions[0]``)."""
    base = ""
    for part in error.absolute_path:
        base += f"[{part}]" if isinstance(part, int) else (f".{part}" if base else str(part))
    if error.validator == "required":
        instance = error.instance if isinstance(error.instance, dict) else {}
        missing = [str(p) for p in error.validator_value if p not in instance]
        return [f"{base}.{p}" if base else p for p in missing]
    return [base]


def names(path: str, expected: str) -> bool:
    return path == expected or path.startswith((f"{expected}.", f"{expected}["))


def cel_messages(kind: str) -> list[str]:
    """Every CEL rule the CRD carries for `kind`, each as "<where it sits> <fieldPath> <message>"."""
    info = next(i for i in KINDS if i.kind == kind)
    spec = crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    found: list[str] = []

    def walk(schema: dict[str, Any], where: str) -> None:
        for rule in schema.get("x-kubernetes-validations") or []:
            found.append(f"{where} {rule.get('fieldPath', '')} {rule['message']}")
        for name, sub in (schema.get("properties") or {}).items():
            walk(sub, f"{where}.{name}")
        if isinstance(schema.get("items"), dict):
            walk(schema["items"], f"{where}[]")
        if isinstance(schema.get("additionalProperties"), dict):
            walk(schema["additionalProperties"], f"{where}.*")

    walk(spec, "spec")
    return found


# ---------------------------------------------------------------------------------------------
# The corpus and the CRD schema
# ---------------------------------------------------------------------------------------------


def test_the_corpus_holds_at_least_forty_hostile_manifests_of_every_sort() -> None:
    assert len(BAD) >= 40
    sorts = {bad.path.stem.split("-")[0] for bad in BAD}
    assert sorts >= {"type", "missing", "huge", "long", "unicode", "prefix", "conflict", "cel", "retention"}
    assert {bad.crd for bad in BAD} == {"rejects", "cel", "accepts", "api"}
    longest = max(len(yaml.safe_dump(bad.body)) for bad in BAD if bad.path.stem.startswith("long-"))
    assert longest > 10_000


@pytest.mark.parametrize("bad", BAD, ids=lambda b: b.path.stem)
def test_the_crd_schema_rejects_or_admits_each_bad_input_as_declared(bad: BadInput) -> None:
    validator = jsonschema.Draft202012Validator(spec_schema(bad.kind))
    errors = list(validator.iter_errors(bad.body))
    if bad.crd == "rejects":
        named = [path for error in errors for path in error_path(error)]
        assert any(names(path, bad.expect) for path in named), f"schema errors name {named}"
    else:
        assert errors == [], [e.message[:200] for e in errors]
    if bad.crd == "cel":
        field = re.sub(r"\[\d+\]", "", bad.expect.split(".")[-1])
        assert any(field in message for message in cel_messages(bad.kind)), cel_messages(bad.kind)


# Values of the wrong type that pydantic's lax mode turns into the right one.
COERCIBLE = {"logging": "yes", "logFileValidation": 0, "adopt": "on", "resyncSeconds": "300"}


@pytest.mark.parametrize(("field", "value"), COERCIBLE.items(), ids=list(COERCIBLE))
def test_the_models_refuse_a_value_the_crd_refuses_for_its_type(field: str, value: Any) -> None:
    body = {
        "apiVersion": "trailkeeper.io/v1alpha1",
        "kind": "Trail",
        "metadata": {"name": "coerced"},
        "spec": {"regions": ["us-east-1"], "destination": {"bucket": "coerced-logs"}, field: value},
    }
    errors = list(jsonschema.Draft202012Validator(spec_schema("Trail")).iter_errors(body))
    assert [".".join(map(str, e.absolute_path)) for e in errors] == [f"spec.{field}"]
    assert isinstance(parse_spec("Trail", body["spec"]), list), f"{field}: {value!r} accepted"


# ---------------------------------------------------------------------------------------------
# The live operator
# ---------------------------------------------------------------------------------------------


def prepare(cluster: Cluster, endpoint: str, good: dict[str, tuple[str, dict[str, Any]]]) -> None:
    """A second namespace, a trail made outside trailkeeper, and the `good` objects, Ready."""
    cluster.use_namespace("team-b")
    client("s3", endpoint).create_bucket(Bucket=FOREIGN_BUCKET)
    client("cloudtrail", endpoint).create_trail(Name=FOREIGN_TRAIL, S3BucketName=FOREIGN_BUCKET)
    # Trails first: a LogRetention applied before its Trail waits out a retry delay.
    for kind in ("Trail", "LogRetention"):
        for name, (of_kind, spec) in good.items():
            if of_kind == kind:
                cluster.apply(kind, name, spec)
        for name, (of_kind, _) in good.items():
            if of_kind == kind:
                cluster.wait_condition(kind, name, "Ready", "True", timeout=30)


def post(cluster: Cluster, bad: BadInput) -> tuple[int, set[str]]:
    """The API server's answer: its status code and the fields its refusal names."""
    try:
        cluster.request("POST", bad.collection, bad.body)
    except ApiError as refused:
        causes = (refused.body.get("details") or {}).get("causes") or []
        return refused.status, {str(c.get("field")) for c in causes}
    return 201, set()


def ready(cluster: Cluster, bad: BadInput) -> dict[str, Any]:
    return cluster.condition(bad.kind, bad.name, "Ready", bad.namespace)


def settled(cluster: Cluster, bad: BadInput) -> bool:
    condition = ready(cluster, bad)
    return condition.get("status") == "False" and condition.get("reason") == bad.status


def wait_settled(cluster: Cluster, bads: list[BadInput], timeout: float) -> list[str]:
    """Wait until every one of `bads` has its expected Ready=False status; those still without one."""
    unsettled: list[str] = []

    def all_settled() -> bool:
        unsettled[:] = [b.path.stem for b in bads if not settled(cluster, b)]
        return not unsettled

    with contextlib.suppress(AssertionError):
        eventually(all_settled, timeout=timeout, what="a clear Ready=False status of every bad input")
    return unsettled


def assert_names_the_field(cluster: Cluster, bad: BadInput) -> None:
    message = str(ready(cluster, bad)["message"])
    assert bad.expect in message, f"{bad.path.stem}: {message[:300]}"
    assert cluster.status(bad.kind, bad.name, bad.namespace)["phase"] == "Error"


@pytest.mark.e2e
def test_every_bad_input_ends_in_a_clear_status_and_the_good_objects_keep_being_served(
    cluster: Cluster, operator: OperatorProcess, moto_endpoint: str
) -> None:
    prepare(cluster, moto_endpoint, GOOD)
    batch = BAD

    answers = {bad.path.stem: post(cluster, bad) for bad in batch}

    refused = {bad.path.stem for bad in batch if bad.crd != "accepts"}
    assert {stem for stem, (code, _) in answers.items() if code != 201} == refused
    for bad in batch:
        code, fields = answers[bad.path.stem]
        if bad.path.stem in refused:
            assert code == 422, (bad.path.stem, code)
            assert any(names(field, bad.expect) for field in fields), (bad.path.stem, fields)
            assert cluster.get(bad.kind, bad.name, bad.namespace) is None
    applied = [bad for bad in batch if bad.crd == "accepts"]
    assert wait_settled(cluster, applied, timeout=30) == []
    for bad in applied:
        assert_names_the_field(cluster, bad)

    # The good objects are still served: Ready, and a change to one is carried out.
    for name, (kind, _) in GOOD.items():
        assert cluster.condition(kind, name, "Ready")["status"] == "True", (name, cluster.status(kind, name))
    cluster.patch_spec("Trail", "good-single", {"tags": {"served": "after-the-bad-batch"}})
    eventually(
        lambda: cluster.status("Trail", "good-single").get("observedGeneration") == 2,
        what="the change to a good object handled",
    )
    # Conflicts name the trail and who holds it; only a trail with no owner may be adopted, and a live
    # Trail's trail is never offered for the taking.
    conflicts = [bad for bad in batch if bad.status == "Conflict"]
    messages = {bad.path.stem: str(ready(cluster, bad)["message"]) for bad in conflicts}
    assert "not made by trailkeeper; adopt: true takes over" in messages["conflict-foreign-trail"]
    for stem in ("conflict-other-namespace", "conflict-same-trail-name"):
        assert "owned by the Trail default/good-owner, which exists" in messages[stem], messages[stem]
        assert "adopt" not in messages[stem]
    assert operator.process is not None and operator.process.poll() is None, "the operator died"
    assert "Traceback" not in operator.output()

    # AWS holds the good objects' resources and the foreign trail, and nothing of any bad object.
    state = moto_state(moto_endpoint, REGIONS)
    assert state.trail_keys() == sorted(
        [
            ("good-owner", "us-east-1"),
            ("good-single", "us-east-1"),
            ("good-two-regions", "eu-west-1"),
            ("good-two-regions", "us-east-1"),
            (FOREIGN_TRAIL, "us-east-1"),
        ]
    )
    single = next(t for t in state.trails if t.name == "good-single")
    assert single.tags.get("served") == "after-the-bad-batch"
    assert set(state.buckets) == GOOD_BUCKETS | {FOREIGN_BUCKET}
    assert [arn.rsplit(":", 1)[-1] for arn in state.topics] == ["good-owner-topic"]
    # A Conflict makes nothing: the trails keep their owners, and no bucket grants a conflicting Trail
    # anything (checked by meaning: the shared statements list every Trail's entries together).
    owners = {(t.name, t.region): t.tags.get(OWNER_TAG) for t in state.trails}
    assert owners[("good-owner", "us-east-1")] == "default/good-owner"
    assert owners[(FOREIGN_TRAIL, "us-east-1")] is None
    assert state.buckets[FOREIGN_BUCKET] is None, "the foreign bucket's policy is untouched"
    for bad in conflicts:
        for bucket, policy in state.buckets.items():
            assert not granted(policy, bucket, bad.namespace, bad.name, bad.body["spec"]), (bad.name, bucket)


# moto's account, which every Trail here records.
ACCOUNT = "123456789012"


def share_of(bucket: str, name: str, spec: dict[str, Any]) -> BucketShare:
    """What a Trail adds to a bucket's shared statements: its trail entry under its path pattern."""
    prefix = str(spec["destination"].get("keyPrefix") or "")
    return BucketShare(bucket, prefix, ACCOUNT, str(spec.get("trailName") or name))


GOOD_SHARES = {
    share_of(spec["destination"]["bucket"].replace("{region}", region), name, spec)
    for name, (kind, spec) in GOOD.items()
    if kind == "Trail"
    for region in spec["regions"]
}


def granted(
    policy: dict[str, Any] | None, bucket: str, namespace: str, name: str, spec: dict[str, Any]
) -> bool:
    """Whether `policy` grants the Trail anything: a statement of its own (sourceAccounts, organization),
    or its trail entry in the shared statements where no good Trail needs the same entry."""
    if owner_statements(policy, f"{namespace}/{name}"):
        return True
    share = share_of(bucket, name, spec)
    return share not in GOOD_SHARES and has_share(policy, share)
