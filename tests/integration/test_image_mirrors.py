"""Unmodified image names offline: a real containerd in a node netns pulls `nginx:1.15.4`, `busybox`,
`python:3` and `registry.k8s.io/pause:3.9` through its docker.io / registry.k8s.io mirrors (hosts.toml,
node_agent.containerd) from a lab registry holding lab.images.CATALOG, and runs them; names that are
not mirrored, or tags the registry lacks, fail with the reason the registry (or the network) gives.

Run under the shared netns lock: `flock /tmp/pb-netns.lock .venv/bin/python -m pytest <this file>`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lab import netns
from lab.image_registry import Registry, start_forwarder
from lab.image_supply import push_images
from lab.images import LabImages
from node_agent.cri import api_pb2 as pb
from node_agent.cri.errors import ImagePullError
from tests.integration import fixtures_node
from tests.integration.fixtures_node import CRINode

pytestmark = pytest.mark.integration

cri_node = fixtures_node.cri_node
lab_images = fixtures_node.lab_images
lab_network = fixtures_node.lab_network

REG_NETNS = "pb-crit-mirror"
REG_ADDRESS = "172.30.50.6/24"


@pytest.fixture
async def mirror_node(cri_node: CRINode, lab_images: LabImages, tmp_path: Path) -> AsyncIterator[CRINode]:
    """cri_node with the lab registry (every CATALOG name pushed) at localhost:5000 through a forwarder."""
    reg_host = cri_node.network.add_host(REG_NETNS, REG_ADDRESS)
    registry = Registry(tmp_path / "registry", address=f"{reg_host.ip}:5000", netns=reg_host.netns)
    forwarder = None
    try:
        registry.start()
        t0 = time.monotonic()
        pushed = await push_images(registry, lab_images)
        print(f"pushed {pushed} in {time.monotonic() - t0:.1f} s")
        forwarder = start_forwarder(cri_node.host.netns, f"{reg_host.ip}:5000")
        yield cri_node
    finally:
        if forwarder is not None:
            forwarder.kill()
            forwarder.wait()
        registry.stop()
        netns.delete(REG_NETNS)


def sandbox(node: CRINode, name: str) -> pb.PodSandboxConfig:
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="default"),
        hostname=name, log_directory=str(node.containerd.paths.pod_logs / f"default_{name}"),
        linux=pb.LinuxPodSandboxConfig(),
    )


async def start(node: CRINode, sid: str, sbc: pb.PodSandboxConfig, name: str, image: str,
                command: list[str] | None = None) -> str:
    """A container as the kubelet makes one from a manifest: the image's own Cmd unless told otherwise."""
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=image),
                             command=command or [], log_path=f"{name}/0.log")
    cid = await node.cri.create_container(sid, cfg, sbc)
    await node.cri.start_container(cid)
    return cid


async def wait_exited(node: CRINode, cid: str, within: float = 20.0) -> pb.ContainerStatus:
    deadline = time.monotonic() + within
    while (st := await node.cri.container_status(cid)).state != pb.CONTAINER_EXITED:
        assert time.monotonic() < deadline, f"container {cid} still {pb.ContainerState.Name(st.state)}"
        await asyncio.sleep(0.05)
    return st


def log_lines(st: pb.ContainerStatus) -> list[str]:
    """The content of each CRI log line ("<time> <stream> <P|F> <content>")."""
    return [line.split(" ", 3)[3] for line in Path(st.log_path).read_text().splitlines()]


async def test_upstream_names_pull_through_the_mirrors(mirror_node: CRINode) -> None:
    node = mirror_node
    expected = {"nginx:1.15.4": "docker.io/library/nginx:1.15.4", "busybox": "docker.io/library/busybox:latest",
                "python:3": "docker.io/library/python:3", "registry.k8s.io/pause:3.9": "registry.k8s.io/pause:3.9",
                "k8s.gcr.io/pause:3.10": "k8s.gcr.io/pause:3.10", "docker.io/library/nginx:1.14.2":
                "docker.io/library/nginx:1.14.2"}
    for name, normalized in expected.items():
        t0 = time.monotonic()
        ref = await node.cri.pull_image(name, deadline=120)
        print(f"pulled {name} in {time.monotonic() - t0:.2f} s")
        assert ref.startswith("sha256:")
        img = await node.cri.image_status(name)
        assert img is not None and normalized in img.repo_tags, (name, img)


async def test_upstream_images_run(mirror_node: CRINode) -> None:
    node = mirror_node
    for name in ("nginx:1.15.4", "busybox", "python:3"):
        await node.cri.pull_image(name, deadline=120)

    sbc = sandbox(node, "web")
    sid = await node.cri.run_pod_sandbox(sbc)
    web = await start(node, sid, sbc, "nginx", "nginx:1.15.4")
    ip = (await node.cri.pod_sandbox_status(sid)).status.network.ip
    # Retries cover the moment between StartContainer and nginx's listen().
    res = node.host.run("curl", "-fsS", "--max-time", "2", "--retry", "30", "--retry-connrefused",
                        "--retry-delay", "0", f"http://{ip}/", check=False)
    assert res.returncode == 0, res.stderr
    assert "Welcome to nginx!" in res.stdout
    # Workers run as the image's nginx user; the access log is the container's stdout.
    ps = await node.cri.exec_sync(web, ["sh", "-c", "ps -o user,args | grep 'nginx: worker' | grep -v grep"])
    assert ps.exit_code == 0 and ps.stdout.split()[0] == b"nginx", ps
    st = await node.cri.container_status(web)
    deadline = time.monotonic() + 5
    while not any('"GET / HTTP/1.1" 200' in line for line in log_lines(st)):
        assert time.monotonic() < deadline, log_lines(st)
        await asyncio.sleep(0.1)

    job = sandbox(node, "jobs")
    jid = await node.cri.run_pod_sandbox(job)
    bb = await start(node, jid, job, "busybox", "busybox", command=["sh", "-c", "echo ok"])
    py = await start(node, jid, job, "python", "python:3", command=["python", "-c", "print(1+1)"])
    py3 = await start(node, jid, job, "python3", "python:3",
                      command=["python3", "-c", "import json, ssl, sqlite3, asyncio; print('py3')"])
    for cid, out in ((bb, "ok"), (py, "2"), (py3, "py3")):
        st = await wait_exited(node, cid)
        assert (st.exit_code, log_lines(st)) == (0, [out]), (st, Path(st.log_path).read_text())


async def test_full_archive_import_names_every_image(cri_node: CRINode, lab_images: LabImages) -> None:
    """What Vagrant nodes do (deploy/install.sh --images): one import, every catalog name present."""
    t0 = time.monotonic()
    await cri_node.containerd.import_image(lab_images.full_archive)
    print(f"imported {lab_images.full_archive} in {time.monotonic() - t0:.1f} s")
    for name in ("nginx:1.15.4", "nginx:1.14.2", "busybox", "busybox:1.28", "python:3", "python:3.12",
                 "registry.k8s.io/pause:3.9", "k8s.gcr.io/pause:3.10", "localhost:5000/busybox:stable",
                 "localhost:5000/pause:3.9"):
        assert await cri_node.cri.image_status(name) is not None, name
    assert await cri_node.cri.image_status("nginx:0.0.1-missing") is None


async def test_names_not_served_fail_with_the_registrys_reason(mirror_node: CRINode) -> None:
    node = mirror_node
    # A tag the lab registry does not hold: its not-found, not a silent fallback to the internet.
    with pytest.raises(ImagePullError) as missing:
        await node.cri.pull_image("nginx:0.0.1-missing", deadline=60)
    assert "docker.io/library/nginx:0.0.1-missing" in str(missing.value)
    assert "not found" in str(missing.value)
    # A registry that is not mirrored is contacted itself (and, offline, is unreachable).
    with pytest.raises(ImagePullError) as unmirrored:
        await node.cri.pull_image("quay.io/foo/bar:1", deadline=60)
    assert "quay.io/foo/bar:1" in str(unmirrored.value)
    assert await node.cri.image_status("quay.io/foo/bar:1") is None
