"""The emulated Kubernetes API (trailkeeper.kube.emulator), over real HTTP, with kubectl and kopf."""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kopf
import pytest

from support.kube import (
    TABLE_ACCEPT,
    WIDGET_CRD,
    WIDGET_GROUP,
    WIDGETS,
    KubeClient,
    eventually,
    kopf_operator,
    widget,
)
from trailkeeper.kube.emulator import KubeEmulator, SandboxAPI, human_duration, login_to, write_kubeconfig

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
W1 = f"{WIDGETS}/namespaces/default/widgets/w1"
FINALIZER = f"{WIDGET_GROUP}/finalizer"


@pytest.fixture
async def api() -> AsyncIterator[SandboxAPI]:
    async with SandboxAPI() as served:
        yield served


@pytest.fixture
async def client(api: SandboxAPI) -> AsyncIterator[KubeClient]:
    async with KubeClient(api.url) as kube:
        yield kube


@pytest.fixture
async def widgets(client: KubeClient) -> str:
    """The Widget kind installed; returns the namespaced collection path in "default"."""
    answer = await client.post(CRDS, WIDGET_CRD)
    assert answer.status == 201, answer.body
    return f"{WIDGETS}/namespaces/default/widgets"


async def create_w1(client: KubeClient, widgets: str, **spec: Any) -> dict[str, Any]:
    answer = await client.post(widgets, widget("w1", **(spec or {"size": 1})))
    assert answer.status == 201, answer.body
    body: dict[str, Any] = answer.body
    return body


# ---------------------------------------------------------------------------------------------
# Object bookkeeping
# ---------------------------------------------------------------------------------------------


async def test_create_fills_in_server_metadata(client: KubeClient, widgets: str) -> None:
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    created = await create_w1(client, widgets, size=3)

    metadata = created["metadata"]
    assert metadata["resourceVersion"].isdigit()
    assert len(metadata["uid"]) == 36
    assert metadata["generation"] == 1
    created_at = datetime.datetime.fromisoformat(metadata["creationTimestamp"])
    assert before <= created_at <= datetime.datetime.now(datetime.UTC)
    assert (created["apiVersion"], created["kind"]) == (f"{WIDGET_GROUP}/v1", "Widget")
    assert (await client.get(W1)).body == created


async def test_every_write_gets_a_newer_resource_version(client: KubeClient, widgets: str) -> None:
    versions = [int((await create_w1(client, widgets))["metadata"]["resourceVersion"])]
    for path, patch in [
        (W1, {"spec": {"size": 2}}),
        (f"{W1}/status", {"status": {"phase": "Ready"}}),
        (W1, {"metadata": {"labels": {"tier": "gold"}}}),
    ]:
        answer = await client.patch(path, patch)
        assert answer.status == 200, answer.body
        versions.append(int(answer.body["metadata"]["resourceVersion"]))

    assert versions == sorted(set(versions))
    listed = await client.get(widgets)
    assert listed.body["metadata"]["resourceVersion"] == str(versions[-1])


async def test_status_and_metadata_writes_keep_the_generation_and_spec_writes_bump_it(
    client: KubeClient, widgets: str
) -> None:
    await create_w1(client, widgets)

    status = await client.patch(f"{W1}/status", {"status": {"phase": "Ready"}})
    labels = await client.patch(W1, {"metadata": {"labels": {"tier": "gold"}}})
    spec = await client.patch(W1, {"spec": {"size": 5}})

    assert status.body["metadata"]["generation"] == 1
    assert labels.body["metadata"]["generation"] == 1
    assert spec.body["metadata"]["generation"] == 2


async def test_status_subresource_separates_status_from_the_rest(client: KubeClient, widgets: str) -> None:
    created = await client.post(widgets, {**widget("w1"), "status": {"phase": "Forged"}})
    assert "status" not in created.body  # the status of a created object is the server's to set

    main = await client.patch(W1, {"spec": {"size": 2}, "status": {"phase": "Ignored"}})
    status = await client.patch(f"{W1}/status", {"spec": {"size": 9}, "status": {"phase": "Ready"}})

    assert "status" not in main.body
    assert status.body["spec"] == {"size": 2}
    assert status.body["status"] == {"phase": "Ready"}


async def test_a_write_that_changes_nothing_keeps_the_resource_version(
    client: KubeClient, widgets: str
) -> None:
    created = await create_w1(client, widgets, size=3)

    answer = await client.patch(W1, {"spec": {"size": 3}})

    assert answer.body["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_generate_name_makes_unique_names(client: KubeClient, widgets: str) -> None:
    body = {"metadata": {"generateName": "gadget-"}, "spec": {"size": 1}}

    names = {(await client.post(widgets, body)).body["metadata"]["name"] for _ in range(3)}

    assert len(names) == 3
    assert all(name.startswith("gadget-") and len(name) == len("gadget-") + 5 for name in names)


async def test_creating_an_existing_name_is_already_exists(client: KubeClient, widgets: str) -> None:
    await create_w1(client, widgets)

    answer = await client.post(widgets, widget("w1"))

    assert (answer.status, answer.body["reason"]) == (409, "AlreadyExists")


async def test_a_stale_resource_version_in_a_patch_is_a_conflict(client: KubeClient, widgets: str) -> None:
    created = await create_w1(client, widgets)
    await client.patch(W1, {"spec": {"size": 2}})

    stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "spec": {"size": 3}}
    answer = await client.patch(W1, stale)

    assert (answer.status, answer.body["reason"]) == (409, "Conflict")
    assert (await client.get(W1)).body["spec"] == {"size": 2}


async def test_a_failed_json_patch_test_answers_422_and_changes_nothing(
    client: KubeClient, widgets: str
) -> None:
    created = await create_w1(client, widgets)
    version = created["metadata"]["resourceVersion"]
    await client.patch(W1, {"spec": {"size": 2}})

    # What kopf sends to add its finalizer: a test of the resourceVersion it last saw, then the change.
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": version},
        {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]},
    ]
    failed = await client.patch(W1, ops, patch="json")
    current = (await client.get(W1)).body
    ops[0]["value"] = current["metadata"]["resourceVersion"]
    applied = await client.patch(W1, ops, patch="json")

    assert (failed.status, failed.body["reason"]) == (422, "Invalid")
    assert "finalizers" not in current["metadata"]
    assert applied.status == 200
    assert applied.body["metadata"]["finalizers"] == [FINALIZER]


async def test_put_replaces_the_object_and_needs_the_resource_version(
    client: KubeClient, widgets: str
) -> None:
    created = await create_w1(client, widgets, size=1, colour="red")
    replacement = widget("w1", size=7)

    unconditional = await client.put(W1, replacement)
    replacement["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    replaced = await client.put(W1, replacement)

    assert unconditional.status == 422
    assert replaced.status == 200
    assert replaced.body["spec"] == {"size": 7}
    assert replaced.body["metadata"]["uid"] == created["metadata"]["uid"]


async def test_dry_run_is_refused_rather_than_written(client: KubeClient, widgets: str) -> None:
    answer = await client.post(widgets, widget("w1"), params={"dryRun": "All"})

    assert answer.status == 400
    assert (await client.get(W1)).status == 404


# ---------------------------------------------------------------------------------------------
# Deletion
# ---------------------------------------------------------------------------------------------


async def test_delete_without_finalizers_removes_the_object(client: KubeClient, widgets: str) -> None:
    await create_w1(client, widgets)

    answer = await client.delete(W1)

    assert (answer.status, answer.body["kind"], answer.body["status"]) == (200, "Status", "Success")
    assert (await client.get(W1)).status == 404


async def test_delete_with_finalizers_waits_until_they_are_removed(client: KubeClient, widgets: str) -> None:
    await client.post(widgets, {**widget("w1"), "metadata": {"name": "w1", "finalizers": [FINALIZER]}})

    marked = await client.delete(W1)
    still_there = await client.get(W1)
    extra_finalizer = await client.patch(W1, {"metadata": {"finalizers": [FINALIZER, "late/one"]}})
    released = await client.patch(W1, {"metadata": {"finalizers": None}})

    assert marked.status == 200
    assert marked.body["metadata"]["deletionTimestamp"]
    assert marked.body["metadata"]["generation"] == 2  # the apiserver bumps it with the deletionTimestamp
    assert still_there.body["metadata"]["finalizers"] == [FINALIZER]
    assert extra_finalizer.status == 422
    assert released.status == 200
    assert (await client.get(W1)).status == 404


async def test_deleting_a_namespace_deletes_its_objects_first(client: KubeClient, widgets: str) -> None:
    await client.post("/api/v1/namespaces", {"metadata": {"name": "team"}})
    team_widgets = f"{WIDGETS}/namespaces/team/widgets"
    await client.post(
        team_widgets, {**widget("held", "team"), "metadata": {"name": "held", "finalizers": [FINALIZER]}}
    )
    await client.post(team_widgets, widget("free", "team"))

    terminating = await client.delete("/api/v1/namespaces/team")
    during = await client.get("/api/v1/namespaces/team")
    created_meanwhile = await client.post(team_widgets, widget("late", "team"))
    await client.patch(f"{team_widgets}/held", {"metadata": {"finalizers": []}})

    assert terminating.status == 200
    assert during.body["status"]["phase"] == "Terminating"
    assert (await client.get(f"{team_widgets}/free")).status == 404
    assert created_meanwhile.status == 403
    assert (await client.get("/api/v1/namespaces/team")).status == 404


async def test_namespaced_objects_need_an_existing_namespace(client: KubeClient, widgets: str) -> None:
    answer = await client.post(f"{WIDGETS}/namespaces/nowhere/widgets", widget("w1", "nowhere"))

    assert (answer.status, answer.body["message"]) == (404, 'namespaces "nowhere" not found')


async def test_deleting_a_crd_deletes_its_objects_and_then_its_kind(client: KubeClient, widgets: str) -> None:
    await client.post(widgets, {**widget("w1"), "metadata": {"name": "w1", "finalizers": [FINALIZER]}})
    crd = f"{CRDS}/widgets.{WIDGET_GROUP}"

    await client.delete(crd)
    held = (await client.get(crd)).body
    await client.patch(W1, {"metadata": {"finalizers": []}})

    assert "Terminating" in {condition["type"] for condition in held["status"]["conditions"]}
    assert (await client.get(crd)).status == 404
    assert (await client.get(widgets)).status == 404
    assert (await client.get(WIDGETS)).status == 404


# ---------------------------------------------------------------------------------------------
# Lists and watches
# ---------------------------------------------------------------------------------------------


async def test_lists_carry_kind_api_version_and_resource_version(client: KubeClient, widgets: str) -> None:
    await client.post("/api/v1/namespaces", {"metadata": {"name": "team"}})
    await create_w1(client, widgets)
    await client.post(f"{WIDGETS}/namespaces/team/widgets", widget("w2", "team"))

    in_default = (await client.get(widgets)).body
    everywhere = (await client.get(f"{WIDGETS}/widgets")).body

    assert (in_default["kind"], in_default["apiVersion"]) == ("WidgetList", f"{WIDGET_GROUP}/v1")
    assert in_default["metadata"]["resourceVersion"].isdigit()
    assert [item["metadata"]["name"] for item in in_default["items"]] == ["w1"]
    assert [item["metadata"]["name"] for item in everywhere["items"]] == ["w1", "w2"]


async def test_label_and_field_selectors_filter_lists(client: KubeClient, widgets: str) -> None:
    for name, tier in [("a", "gold"), ("b", "silver"), ("c", None)]:
        labels = {"tier": tier} if tier else {}
        await client.post(widgets, {**widget(name), "metadata": {"name": name, "labels": labels}})

    async def names(**params: str) -> list[str]:
        return [item["metadata"]["name"] for item in (await client.get(widgets, params=params)).body["items"]]

    assert await names(labelSelector="tier=gold") == ["a"]
    assert await names(labelSelector="tier!=gold") == ["b", "c"]
    assert await names(labelSelector="tier in (gold,silver)") == ["a", "b"]
    assert await names(labelSelector="!tier") == ["c"]
    assert await names(fieldSelector="metadata.name=b") == ["b"]


async def test_watch_streams_json_lines_of_each_change_with_the_written_object(
    client: KubeClient, widgets: str
) -> None:
    await create_w1(client, widgets)

    async with client.watch(widgets) as stream:
        assert stream.response.headers["Content-Type"].startswith("application/json")
        added = await stream.next()
        patched = (await client.patch(W1, {"spec": {"size": 2}})).body
        modified = await stream.next()
        await client.delete(W1)
        deleted = await stream.next()

    assert added is not None and modified is not None and deleted is not None
    assert (added["type"], added["object"]["metadata"]["name"]) == ("ADDED", "w1")
    assert modified["type"] == "MODIFIED"
    assert modified["object"] == patched
    assert deleted["type"] == "DELETED"
    assert int(deleted["object"]["metadata"]["resourceVersion"]) > int(patched["metadata"]["resourceVersion"])


async def test_watch_from_a_resource_version_sends_only_later_changes(
    client: KubeClient, widgets: str
) -> None:
    await create_w1(client, widgets)
    listed = (await client.get(widgets)).body
    await client.patch(W1, {"spec": {"size": 2}})

    params = {"resourceVersion": listed["metadata"]["resourceVersion"], "timeoutSeconds": "0.2"}
    async with client.watch(widgets, params) as stream:
        first = await stream.next()
        end = await stream.next()

    assert first is not None
    assert (first["type"], first["object"]["spec"]) == ("MODIFIED", {"size": 2})
    assert end is None  # timeoutSeconds ends the stream


async def test_watch_from_an_expired_resource_version_is_gone() -> None:
    async with SandboxAPI(emulator=KubeEmulator(watch_history=2)) as api, KubeClient(api.url) as client:
        namespaces = [
            (await client.post("/api/v1/namespaces", {"metadata": {"name": f"n{i}"}})).body for i in range(3)
        ]
        # The changes after this version start with the creation of n0, which is no longer kept.
        before_n0 = str(int(namespaces[0]["metadata"]["resourceVersion"]) - 1)

        async with client.watch("/api/v1/namespaces", {"resourceVersion": before_n0}) as stream:
            event = await stream.next()

    assert event is not None
    assert (event["type"], event["object"]["code"]) == ("ERROR", 410)


async def test_watch_selects_by_label_and_sees_objects_enter_and_leave(
    client: KubeClient, widgets: str
) -> None:
    await create_w1(client, widgets)

    async with client.watch(widgets, {"labelSelector": "tier=gold", "resourceVersion": "1"}) as stream:
        await client.patch(W1, {"metadata": {"labels": {"tier": "gold"}}})
        entered = await stream.next()
        await client.patch(W1, {"metadata": {"labels": {"tier": "tin"}}})
        left = await stream.next()

    assert entered is not None and left is not None
    assert (entered["type"], left["type"]) == ("ADDED", "DELETED")


# ---------------------------------------------------------------------------------------------
# Discovery and kubectl's tables
# ---------------------------------------------------------------------------------------------


async def test_a_crd_makes_its_kind_discoverable(client: KubeClient, widgets: str) -> None:
    groups = (await client.get("/apis")).body
    version = (await client.get(WIDGETS)).body
    crd = (await client.get(f"{CRDS}/widgets.{WIDGET_GROUP}")).body

    assert WIDGET_GROUP in {group["name"] for group in groups["groups"]}
    entries = {entry["name"]: entry for entry in version["resources"]}
    assert entries["widgets"]["kind"] == "Widget"
    assert entries["widgets"]["namespaced"] is True
    assert entries["widgets"]["shortNames"] == ["wdg"]
    assert entries["widgets"]["categories"] == ["example"]
    assert {"get", "list", "watch", "patch"} <= set(entries["widgets"]["verbs"])
    assert entries["widgets/status"]["shortNames"] == []  # or kubectl finds "wdg" ambiguous
    established = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert established["Established"] == "True"


async def test_core_discovery_names_the_core_group_version(client: KubeClient) -> None:
    core = (await client.get("/api/v1")).body

    assert core["groupVersion"] == "v1"
    assert "namespaces" in {entry["name"] for entry in core["resources"]}


async def test_tables_show_the_crd_printer_columns_as_the_apiserver_computes_them(
    client: KubeClient, widgets: str
) -> None:
    await create_w1(client, widgets, size=3, colours=["red", "blue"])
    status = {
        "parts": [{"name": "axle"}, {"name": "wheel"}],
        "conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}],
    }
    await client.patch(f"{W1}/status", {"status": status})
    await client.post(widgets, widget("w2", size=1))

    table = (await client.get(widgets, headers={"Accept": TABLE_ACCEPT})).body
    single = (await client.get(W1, headers={"Accept": TABLE_ACCEPT}, params={"includeObject": "Object"})).body

    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    headers = [column["name"] for column in table["columnDefinitions"]]
    assert headers == ["Name", "Size", "Colours", "Parts", "Ready", "Age"]
    # A string column of a list is its JSON; [*] and filters show only the first result;
    # missing values are null; dates are ages.
    # Ages are seconds old on a loaded machine; their form, not their value, is what is checked.
    assert table["rows"][0]["cells"][:5] == ["w1", 3, '["red","blue"]', "axle", "True"]
    assert table["rows"][1]["cells"][:5] == ["w2", 1, None, None, None]
    assert all(re.fullmatch(r"\d+s", row["cells"][5]) for row in table["rows"])
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert single["rows"][0]["object"]["spec"]["size"] == 3


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (119, "119s"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600 + 120, "3h2m"),
        (10 * 3600, "10h"),
        (3 * 86400 + 3600, "3d1h"),
        (30 * 86400, "30d"),
        (3 * 365 * 86400 + 86400, "3y1d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_ages_read_as_kubectl_shows_them(seconds: int, shown: str) -> None:
    assert human_duration(seconds) == shown


# ---------------------------------------------------------------------------------------------
# Loading manifests in-process
# ---------------------------------------------------------------------------------------------


async def test_apply_manifest_creates_then_merges(api: SandboxAPI) -> None:
    emulator = api.emulator
    emulator.apply_manifest(WIDGET_CRD)

    created = emulator.apply_manifest(widget("w1", size=1))
    updated = emulator.apply_manifest(widget("w1", size=2))

    assert created["metadata"]["generation"] == 1
    assert updated["metadata"]["generation"] == 2
    assert emulator.read_object(f"{WIDGET_GROUP}/v1/widgets", "default", "w1") == updated


# ---------------------------------------------------------------------------------------------
# kopf's logins, and kopf itself
# ---------------------------------------------------------------------------------------------


async def test_the_kubeconfig_logs_kopf_in(
    api: SandboxAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url, namespace="team")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    settings = kopf.OperatorSettings()
    logger = logging.getLogger("test")

    # kopf's own kubeconfig login, the one `trailkeeper run` uses outside a cluster.
    plain = kopf.login_with_kubeconfig(settings=settings, logger=logger)

    assert plain is not None
    assert (plain.server, plain.default_namespace) == (api.url, "team")
    assert (plain.token, plain.username) == (None, None)
    assert login_to(api.url).server == api.url


def widget_operator(url: str, seen_deleted: list[str]) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = FINALIZER
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=WIDGET_GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=WIDGET_GROUP, key="last-handled-configuration"
        )
        settings.watching.server_timeout = 1
        settings.watching.client_timeout = 2

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return login_to(url)

    @kopf.on.create(WIDGET_GROUP, "v1", "widgets", registry=registry)
    def create(body: kopf.Body, spec: kopf.Spec, patch: kopf.Patch, **_: Any) -> None:
        patch.status["phase"] = "Ready"
        patch.status["size"] = spec["size"]
        kopf.info(body, reason="Ready", message="the widget is ready")

    @kopf.on.delete(WIDGET_GROUP, "v1", "widgets", registry=registry)
    def delete(name: str, **_: Any) -> None:
        seen_deleted.append(name)

    return registry


def read_widget(api: SandboxAPI, namespace: str, name: str) -> dict[str, Any] | None:
    return api.emulator.read_object(f"{WIDGET_GROUP}/v1/widgets", namespace, name)


async def test_kopf_handles_create_and_delete_against_the_emulator(
    api: SandboxAPI, client: KubeClient
) -> None:
    deleted: list[str] = []
    await client.post(CRDS, WIDGET_CRD)

    async with kopf_operator(widget_operator(api.url, deleted)):
        created = (await client.post(f"{WIDGETS}/namespaces/default/widgets", widget("w1", size=3))).body

        def handled() -> dict[str, Any] | None:
            obj = read_widget(api, "default", "w1")
            return obj if obj and obj.get("status", {}).get("phase") == "Ready" else None

        async def events_about_w1() -> list[dict[str, Any]]:
            selector = f"involvedObject.uid={created['metadata']['uid']}"
            answer = await client.get("/api/v1/namespaces/default/events", params={"fieldSelector": selector})
            items: list[dict[str, Any]] = answer.body["items"]
            return items

        ready = await eventually(handled, what="the create handler's status")
        events = await eventually(events_about_w1, what="an event about the widget")
        await client.delete(W1)
        await eventually(lambda: read_widget(api, "default", "w1") is None, what="the deletion")

    assert ready["status"]["size"] == 3
    assert FINALIZER in ready["metadata"]["finalizers"]
    assert ready["metadata"]["generation"] == 1
    assert events[0]["metadata"]["name"].startswith("kopf-event-")  # kopf posts with generateName
    assert deleted == ["w1"]


async def test_kopf_serves_only_its_namespaces(api: SandboxAPI, client: KubeClient) -> None:
    for name in ("team-a", "team-b"):
        await client.post("/api/v1/namespaces", {"metadata": {"name": name}})
    await client.post(CRDS, WIDGET_CRD)

    async with kopf_operator(widget_operator(api.url, []), clusterwide=False, namespaces=["team-a"]):
        for namespace in ("team-b", "team-a"):
            await client.post(f"{WIDGETS}/namespaces/{namespace}/widgets", widget("w", namespace))
        await eventually(
            lambda: (read_widget(api, "team-a", "w") or {}).get("status"), what="handling in team-a"
        )

    ignored = read_widget(api, "team-b", "w")
    assert ignored is not None and "status" not in ignored


# ---------------------------------------------------------------------------------------------
# kubectl
# ---------------------------------------------------------------------------------------------

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


class Kubectl:
    """kubectl as a subprocess: the emulator runs in this event loop, so it must not block."""

    def __init__(self, url: str, home: Path) -> None:
        self.env = {
            **os.environ,
            "HOME": str(home),
            "KUBECONFIG": str(write_kubeconfig(home / "config", url)),
        }

    async def __call__(self, *args: str, stdin: str | None = None, ok: bool = True) -> str:
        assert KUBECTL is not None
        process = await asyncio.create_subprocess_exec(
            KUBECTL,
            *args,
            env=self.env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(stdin.encode() if stdin else None), 10)
        text = output.decode()
        assert (process.returncode == 0) == ok, f"kubectl {' '.join(args)}: {text}"
        return text


WIDGET_CRD_YAML = f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: widgets.{WIDGET_GROUP}}}
spec:
  group: {WIDGET_GROUP}
  scope: Namespaced
  names: {{kind: Widget, plural: widgets, singular: widget, shortNames: [wdg], categories: [example]}}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {{status: {{}}}}
    additionalPrinterColumns:
    - {{name: Size, type: integer, jsonPath: .spec.size}}
    - {{name: Age, type: date, jsonPath: .metadata.creationTimestamp}}
    schema:
      openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
"""
WIDGET_YAML = f"""
apiVersion: {WIDGET_GROUP}/v1
kind: Widget
metadata: {{name: w1, namespace: team}}
spec: {{size: 3}}
"""


@needs_kubectl
async def test_kubectl_applies_and_shows_the_printer_columns(api: SandboxAPI, tmp_path: Path) -> None:
    kubectl = Kubectl(api.url, tmp_path)
    await kubectl("create", "namespace", "team")  # sent as protobuf
    await kubectl("apply", "--validate=false", "-f", "-", stdin=WIDGET_CRD_YAML)
    await kubectl("apply", "--validate=false", "-f", "-", stdin=WIDGET_YAML)

    by_plural = await kubectl("get", "widgets", "-n", "team")
    by_short_name = await kubectl("get", "wdg", "-n", "team")
    by_category = await kubectl("get", "example", "-n", "team")
    reapplied = await kubectl("apply", "--validate=false", "-f", "-", stdin=WIDGET_YAML.replace("3", "4"))
    size = await kubectl("get", "wdg", "w1", "-n", "team", "-o", "jsonpath={.spec.size}")

    assert by_plural.split()[:5] == ["NAME", "SIZE", "AGE", "w1", "3"]
    assert re.fullmatch(r"\d+s", by_plural.split()[5])

    def without_age(table: str) -> list[list[str]]:
        return [line.split()[:-1] for line in table.splitlines()]

    assert without_age(by_short_name) == without_age(by_category) == without_age(by_plural)
    assert "configured" in reapplied
    assert size == "4"


@needs_kubectl
async def test_kubectl_describes_and_deletes(api: SandboxAPI, tmp_path: Path) -> None:
    kubectl = Kubectl(api.url, tmp_path)
    await kubectl("apply", "--validate=false", "-f", "-", stdin=WIDGET_CRD_YAML)
    await kubectl("apply", "--validate=false", "-f", "-", stdin=WIDGET_YAML.replace("team", "default"))

    described = await kubectl("describe", "widget", "w1")
    deleted = await kubectl("delete", "wdg", "w1")
    missing = await kubectl("get", "wdg", "w1", ok=False)

    assert "Name:         w1" in described
    assert "Size:  3" in described
    assert 'widget.example.trailkeeper.io "w1" deleted' in deleted
    assert 'widgets.example.trailkeeper.io "w1" not found' in missing
