"""CRI against a real containerd in a lab node netns: sandboxes with CNI IPs, containers, exec, logs,
image errors, label filters, cleanup, and pulls from the lab registry through the loopback forwarder."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from pathlib import Path

import pytest

from lab import netns
from lab.image_registry import Registry, start_forwarder
from lab.images import BUSYBOX_IMAGE, INDEX_PAGE, LabImages
from node_agent.containerd import mounts_under
from node_agent.cri import api_pb2 as pb
from node_agent.cri.errors import ImagePullError, NotFound
from tests.integration import fixtures_node
from tests.integration.fixtures_node import POD_CIDR, CRINode

pytestmark = pytest.mark.integration

# The node fixtures live in their own module (conftest.py is shared); binding them here registers them.
cri_node = fixtures_node.cri_node
lab_images = fixtures_node.lab_images
lab_network = fixtures_node.lab_network
log = logging.getLogger(__name__)


def sandbox_config(node: CRINode, name: str, labels: dict[str, str] | None = None) -> pb.PodSandboxConfig:
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="default"),
        hostname=name,
        log_directory=str(node.containerd.paths.pod_logs / f"default_{name}"),
        labels=labels or {},
        annotations={"pybernetes.io/test": "cri"},
        linux=pb.LinuxPodSandboxConfig(),
    )


def container_config(
    name: str, command: list[str], labels: dict[str, str] | None = None
) -> pb.ContainerConfig:
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=name),
        image=pb.ImageSpec(image=BUSYBOX_IMAGE),
        command=command,
        labels=labels or {},
        log_path=f"{name}/0.log",
        linux=pb.LinuxContainerConfig(
            resources=pb.LinuxContainerResources(cpu_shares=256, memory_limit_in_bytes=64 * 1024 * 1024)
        ),
    )


async def run_container(
    node: CRINode, sid: str, sbc: pb.PodSandboxConfig, name: str, command: list[str],
    labels: dict[str, str] | None = None,
) -> str:
    cid = await node.cri.create_container(sid, container_config(name, command, labels), sbc)
    await node.cri.start_container(cid)
    return cid


async def wait_exited(node: CRINode, cid: str, within: float = 10.0) -> pb.ContainerStatus:
    deadline = time.monotonic() + within
    while True:
        st = await node.cri.container_status(cid)
        if st.state == pb.CONTAINER_EXITED:
            return st
        assert time.monotonic() < deadline, f"container {cid} still {pb.ContainerState.Name(st.state)}"
        await asyncio.sleep(0.05)


def curl(node: CRINode, url: str) -> str:
    # Retries cover the moment between StartContainer and httpd's listen().
    res = node.host.run("curl", "-fsS", "--max-time", "2", "--retry", "20", "--retry-connrefused",
                        "--retry-delay", "0", url, check=False)
    assert res.returncode == 0, res.stderr
    return res.stdout


async def test_pod_serves_http_and_exec(cri_node: CRINode) -> None:
    node = cri_node
    v = await node.cri.version()
    assert v.runtime_name == "containerd" and v.runtime_api_version == "v1"
    conds = {c.type: c.status for c in (await node.cri.status()).status.conditions}
    assert conds.get("RuntimeReady") and conds.get("NetworkReady"), conds

    sbc = sandbox_config(node, "web", {"app": "web"})
    t0 = time.monotonic()
    sid = await node.cri.run_pod_sandbox(sbc)
    t1 = time.monotonic()
    cid = await node.cri.create_container(
        sid, container_config("httpd", ["httpd", "-f", "-p", "8080", "-h", "/www"]), sbc
    )
    t2 = time.monotonic()
    await node.cri.start_container(cid)
    t3 = time.monotonic()
    log.warning("latency RunPodSandbox=%.3fs CreateContainer=%.3fs StartContainer=%.3fs",
                t1 - t0, t2 - t1, t3 - t2)

    status = (await node.cri.pod_sandbox_status(sid)).status
    assert status.state == pb.SANDBOX_READY
    ip = status.network.ip
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(POD_CIDR)
    assert status.annotations["pybernetes.io/test"] == "cri"

    assert curl(node, f"http://{ip}:8080/index.html") == INDEX_PAGE

    res = await node.cri.exec_sync(cid, ["echo", "hi"])
    assert (res.exit_code, res.stdout, res.stderr) == (0, b"hi\n", b"")
    res = await node.cri.exec_sync(cid, ["sh", "-c", "hostname; exit 7"])
    assert (res.exit_code, res.stdout) == (7, b"web\n")

    st = await node.cri.container_status(cid)
    assert st.state == pb.CONTAINER_RUNNING and st.started_at > 0
    stats = await node.cri.container_stats(cid)
    assert stats.attributes.id == cid
    assert stats.memory.working_set_bytes.value > 0
    assert any(s.attributes.id == cid for s in await node.cri.list_container_stats(pod_sandbox_id=sid))


async def test_exit_code_and_cri_log_format(cri_node: CRINode) -> None:
    node = cri_node
    sbc = sandbox_config(node, "job")
    sid = await node.cri.run_pod_sandbox(sbc)
    script = "echo out-line; echo err-line >&2; exit 3"
    cid = await run_container(node, sid, sbc, "task", ["sh", "-c", script])
    st = await wait_exited(node, cid)
    assert st.exit_code == 3
    assert st.reason == "Error"
    # No ordering check: for a container that exits at once containerd may record finished_at a
    # few microseconds *before* started_at (the start time is taken after the task already ran).
    assert st.started_at > 0 and st.finished_at > 0
    assert st.log_path == str(Path(sbc.log_directory) / "task/0.log")

    text = await asyncio.to_thread(Path(st.log_path).read_text)
    # CRI log format: <RFC3339Nano time> <stream> <P|F> <content>
    line = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) (stdout|stderr) [PF] (.*)$")
    parsed = [m.groups()[1:] for m in map(line.match, text.splitlines()) if m]
    assert len(parsed) == len(text.splitlines()), text
    assert ("stdout", "out-line") in parsed
    assert ("stderr", "err-line") in parsed


async def test_pull_missing_image_fails(cri_node: CRINode) -> None:
    with pytest.raises(ImagePullError) as info:
        await cri_node.cri.pull_image("localhost:5000/nope:1", deadline=30)
    assert "nope" in str(info.value)
    assert await cri_node.cri.image_status("localhost:5000/nope:1") is None
    present = await cri_node.cri.image_status(BUSYBOX_IMAGE)
    assert present is not None and BUSYBOX_IMAGE in present.repo_tags
    assert any(BUSYBOX_IMAGE in i.repo_tags for i in await cri_node.cri.list_images())


async def test_label_filters(cri_node: CRINode) -> None:
    node = cri_node
    ids: dict[str, str] = {}
    cids: dict[str, str] = {}
    for name, tier in (("a", "front"), ("b", "back")):
        sbc = sandbox_config(node, name, {"tier": tier, "suite": "cri"})
        ids[name] = await node.cri.run_pod_sandbox(sbc)
        cids[name] = await run_container(node, ids[name], sbc, "sleep", ["sleep", "300"], {"tier": tier})

    front = await node.cri.list_pod_sandbox(label_selector={"tier": "front"})
    assert [s.id for s in front] == [ids["a"]]
    assert front[0].metadata.name == "a" and front[0].labels["suite"] == "cri"
    both = await node.cri.list_pod_sandbox(label_selector={"suite": "cri"}, state=pb.SANDBOX_READY)
    assert {s.id for s in both} == set(ids.values())
    assert await node.cri.list_pod_sandbox(label_selector={"tier": "none"}) == []

    back = await node.cri.list_containers(label_selector={"tier": "back"})
    assert [c.id for c in back] == [cids["b"]]
    assert back[0].pod_sandbox_id == ids["b"] and back[0].state == pb.CONTAINER_RUNNING
    running = await node.cri.list_containers(pod_sandbox_id=ids["a"], state=pb.CONTAINER_RUNNING)
    assert [c.id for c in running] == [cids["a"]]


async def test_stop_and_remove_cleans_up(cri_node: CRINode) -> None:
    node = cri_node
    sbc = sandbox_config(node, "gone")
    sid = await node.cri.run_pod_sandbox(sbc)
    cid = await run_container(node, sid, sbc, "sleep", ["sleep", "300"])
    assert any(sid in m for m in mounts_under(node.dir))

    await node.cri.stop_container(cid, grace_seconds=1)
    assert (await node.cri.container_status(cid)).state == pb.CONTAINER_EXITED
    await node.cri.stop_pod_sandbox(sid)
    assert (await node.cri.pod_sandbox_status(sid)).status.state == pb.SANDBOX_NOTREADY
    await node.cri.stop_pod_sandbox(sid)  # idempotent
    await node.cri.remove_pod_sandbox(sid)
    await node.cri.remove_pod_sandbox(sid)  # idempotent

    assert await node.cri.list_pod_sandbox() == []
    assert await node.cri.list_containers() == []
    with pytest.raises(NotFound):
        await node.cri.container_status(cid)
    with pytest.raises(NotFound):
        await node.cri.pod_sandbox_status(sid)
    assert not [m for m in mounts_under(node.dir) if sid in m or cid in m]
    # The IP went back to host-local: no reservation file for it is left.
    ipam = node.containerd.paths.cni_data_dir / "pbnet"
    assert not [p for p in ipam.glob("10.244.*")]


async def test_pull_through_registry_forwarder(
    cri_node: CRINode, lab_images: LabImages, tmp_path: Path
) -> None:
    """Registry on a lab host; node reaches it as localhost:5000 via a forwarder in its netns."""
    node = cri_node
    reg_host = node.network.add_host("pb-crit-reg", "172.30.50.5/24")
    registry = Registry(tmp_path / "registry", address=f"{reg_host.ip}:5000", netns=reg_host.netns)
    forwarder = None
    try:
        registry.start()
        ref = registry.push(lab_images.skopeo_ref("busybox"), "pulled/busybox:1")
        forwarder = start_forwarder(node.host.netns, f"{reg_host.ip}:5000")
        image_ref = await node.cri.pull_image(ref, deadline=60)
        assert image_ref.startswith("sha256:")
        img = await node.cri.image_status(ref)
        assert img is not None and ref in img.repo_tags
        await node.cri.remove_image(ref)
        assert await node.cri.image_status(ref) is None
    finally:
        if forwarder is not None:
            forwarder.kill()
            forwarder.wait()
        registry.stop()
        netns.delete("pb-crit-reg")
