"""pbctl top (kubelet stats through the apiserver) and pbctl trace (one timeline across components), against
a real apiserver, a real kubelet with containerd, and (for the Deployment) the controller manager and
scheduler in-process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from lab.images import BUSYBOX_IMAGE
from pbctl.main import run as pbctl
from pybernetes.api import codec
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from services.controllers.main import ControllerManager
from services.scheduler import main as scheduler_main
from tests.helpers import eventually
from tests.integration import fixtures_kubelet
from tests.integration.conftest import ApiServer
from tests.integration.fixtures_kubelet import NODE_NAME, KubeletRunner, kubelet_config, make_pod
from tests.integration.fixtures_node import CRINode
from tests.integration.test_controller_manager import manager_config

pytestmark = pytest.mark.integration

lab_images = fixtures_kubelet.lab_images
lab_network = fixtures_kubelet.lab_network
cri_node = fixtures_kubelet.cri_node


@pytest.fixture
async def node(apiserver: ApiServer, cri_node: CRINode, tmp_path: Path) -> AsyncIterator[ApiServer]:
    # The node's InternalIP is loopback so the in-process apiserver can reach this kubelet's API.
    runner = KubeletRunner(kubelet_config(apiserver, cri_node, tmp_path / "kubelet", node_ip="127.0.0.1",
                                          cpu="2", memory="4Gi"))
    await runner.start()
    try:
        yield apiserver
    finally:
        await runner.stop()
        await cri_node.containerd.remove_all_pods()


@pytest.fixture
def cfg(node: ApiServer, tmp_path: Path) -> str:
    path = tmp_path / "pbconfig"
    return str(node.write_kubeconfig(path))


async def ready(api: ApiServer, name: str) -> core.Pod:
    async def check() -> core.Pod | None:
        p = await api.client.get(core.Pod, name, namespace="default")
        ok = any(c.type == "Ready" and c.status == "True" for c in p.status.conditions)
        return p if p.status.phase == "Running" and ok else None

    return await eventually(check, timeout=60, what=f"pod {name} Running and Ready")


async def output(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    code = await pbctl(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


async def test_top_pods_and_nodes(node: ApiServer, cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    api = node
    # The shell holds an 8 MiB string (and outlives sleep, so it is not exec'd away): a working set in Mi.
    hold = "x=$(yes abcdefgh | head -c 8388608); sleep 3600; echo ${#x}"
    await api.client.create(make_pod("hog", ["sh", "-c", hold]))
    await ready(api, "hog")

    async def hog_usage() -> int | None:
        summary = await api.client.node_stats(NODE_NAME)
        pod = next((p for p in summary.pods if p.name == "hog"), None)
        ws = pod.memory.working_set_bytes if pod is not None else 0
        return ws if ws >= 8 * 1024 * 1024 else None

    await eventually(hog_usage, timeout=30, what="hog's working set >= 8Mi in the kubelet's stats")
    summary = await api.client.node_stats(NODE_NAME)
    assert summary.node.node_name == NODE_NAME
    assert summary.node.memory.working_set_bytes > 0 and summary.node.cpu.usage_core_nano_seconds > 0
    hog = next(p for p in summary.pods if p.name == "hog")
    assert hog.namespace == "default" and hog.uid and [c.name for c in hog.containers] == ["main"]
    assert hog.cpu.usage_core_nano_seconds > 0

    text = await output(capsys, ["--config", cfg, "top", "pods"])
    lines = text.splitlines()
    assert lines[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    row = next(ln.split() for ln in lines[1:] if ln.split()[0] == "hog")
    assert row[1].endswith("m") and row[2].endswith("Mi") and int(row[2][:-2]) >= 8

    text = await output(capsys, ["--config", cfg, "top", "pods", "-A", "--containers"])
    lines = text.splitlines()
    assert lines[0].split() == ["NAMESPACE", "POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert any(ln.split()[:3] == ["default", "hog", "main"] for ln in lines[1:])

    text = await output(capsys, ["--config", cfg, "top", "pods", "-n", "kube-system"])
    assert text == ""

    text = await output(capsys, ["--config", cfg, "top", "nodes"])
    lines = text.splitlines()
    assert lines[0].split() == ["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%"]
    name, cpu, cpu_pct, mem, mem_pct = lines[1].split()
    assert name == NODE_NAME and cpu.endswith("m") and cpu_pct.endswith("%")
    assert mem.endswith("Mi") and int(mem[:-2]) > 0 and mem_pct.endswith("%")


def _order(reasons: list[tuple[str, str]], *wanted: tuple[str, str]) -> list[int]:
    return [reasons.index(w) for w in wanted]


@pytest.fixture
async def control_plane(node: ApiServer) -> AsyncIterator[ApiServer]:
    cm = ControllerManager(manager_config(["*"], config=str(node.admin_conf)))
    sched_cfg = scheduler_main.Config(kubeconfig=str(node.admin_conf), leader_elect=False, health_port=0)
    stop = asyncio.Event()
    cm_ready, sched_ready = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(cm.run(cm_ready, stop)),
             asyncio.create_task(scheduler_main.run(sched_cfg, sched_ready, stop))]
    await asyncio.wait_for(asyncio.gather(cm_ready.wait(), sched_ready.wait()), 20)
    try:
        yield node
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)


async def test_trace_deployment_to_running_pod(control_plane: ApiServer, cfg: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    api = control_plane
    d = codec.from_dict({
        "metadata": {"name": "traced", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "traced"}},
                 "template": {"metadata": {"labels": {"app": "traced"}}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": BUSYBOX_IMAGE, "imagePullPolicy": "IfNotPresent",
                                     "command": ["sleep", "3600"]}]}}},
    }, apps.Deployment)
    created = await api.client.create(d)

    async def the_pod() -> core.Pod | None:
        pods = (await api.client.list(core.Pod, namespace="default", label_selector="app=traced")).items
        return pods[0] if len(pods) == 1 and pods[0].spec.node_name == NODE_NAME else None

    pod = await eventually(the_pod, timeout=60, what="the deployment's pod scheduled on the kubelet's node")
    await ready(api, pod.metadata.name)
    pod_ref = f"pod/{pod.metadata.name}"

    async def traced() -> dict[str, Any] | None:
        capsys.readouterr()
        assert await pbctl(["--config", cfg, "trace", "deployment/traced", "-o", "json"]) == 0
        data: dict[str, Any] = json.loads(capsys.readouterr().out)
        reasons = [(e["object"], e["reason"]) for e in data["entries"]]
        return data if (pod_ref, "Started") in reasons and (pod_ref, "Ready") in reasons else None

    found = await eventually(traced, timeout=30, what="the trace to reach the pod's Started event")
    assert found is not None
    data = found
    entries: list[dict[str, Any]] = data["entries"]
    reasons = [(str(e["object"]), str(e["reason"])) for e in entries]
    rs_ref = next(r for r, _ in reasons if r.startswith("replicaset/"))
    idx = _order(reasons, ("deployment/traced", "ObjectCreated"), ("deployment/traced", "ScalingReplicaSet"),
                 (rs_ref, "SuccessfulCreate"), (pod_ref, "Scheduled"), (pod_ref, "Pulled"), (pod_ref, "Created"),
                 (pod_ref, "Started"), (pod_ref, "Ready"))
    assert idx == sorted(idx), reasons
    assert reasons.index((pod_ref, "ObjectCreated")) < reasons.index((rs_ref, "SuccessfulCreate"))
    offsets = [float(e["offsetSeconds"]) for e in entries]
    assert offsets[0] == 0.0 and offsets == sorted(offsets)
    assert data["traceId"] and data["root"] == "deployment/traced"
    assert {o["traceId"] for o in data["objects"]} == {data["traceId"]}
    assert [o["kind"] for o in data["objects"]] == ["Deployment", "ReplicaSet", "Pod"]
    assert data["objects"][0]["uid"] == created.metadata.uid
    by = {(str(e["object"]), str(e["reason"])): e for e in entries}
    sched = by[(pod_ref, "Scheduled")]
    assert sched["component"] == "default-scheduler" and f"to {NODE_NAME}" in str(sched["what"])
    # (With one feasible node the scheduler skips scoring, so the message carries no scores here.)
    assert by[(pod_ref, "Started")]["component"] == "kubelet" and by[(pod_ref, "Started")]["precise"]
    assert by[("deployment/traced", "ScalingReplicaSet")]["component"] == "controller-manager"

    # The pod's own trace, as a table: created -> Scheduled -> Pulled/Created/Started -> Ready.
    text = await output(capsys, ["--config", cfg, "trace", pod_ref])
    lines = text.splitlines()
    assert lines[0].startswith("TRACE ") and pod_ref in lines[0]
    assert lines[1].split() == ["OFFSET", "COMPONENT", "OBJECT", "WHAT"]
    assert lines[2].split()[0].startswith("+0.000s")

    def line_of(needle: str) -> int:
        return next(i for i, ln in enumerate(lines) if needle in ln)

    seq = [line_of("created"), line_of("Scheduled:"), line_of("Pulled:"), line_of("Created: Created container"),
           line_of("Started:"), line_of("condition Ready=True")]
    assert seq == sorted(seq), text
    assert "kubelet@" + NODE_NAME in lines[line_of("Started:")]

    # get events -w prints the recorded events, then stops at the request timeout.
    text = await output(capsys, ["--config", cfg, "get", "events", "-w", "--request-timeout", "2s"])
    assert "Scheduled" in text and "Started" in text and "ScalingReplicaSet" in text
