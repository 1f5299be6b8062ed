"""Kubelet fixtures: a real containerd in a node netns (fixtures_node), the real apiserver fixture, and an
in-process pb-kubelet (node_agent.main.run) that can be stopped and started again with its state kept.

The kubelet runs in the root netns (it reaches the apiserver on loopback and containerd on its unix
socket); httpGet/tcpSocket probes enter the node netns through --probe-netns.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.images import BUSYBOX_IMAGE
from node_agent.main import Config, run
from node_agent.pressure import LAB_EVICTION_HARD
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client.client import Client
from tests.integration import fixtures_node
from tests.integration.conftest import ApiServer, free_port
from tests.integration.fixtures_node import NODE_ADDRESS, NODE_NETNS, POD_CIDR, CRINode

NODE_NAME = "kl-node-1"
NODE_IP = NODE_ADDRESS.split("/")[0]

lab_images = fixtures_node.lab_images
lab_network = fixtures_node.lab_network
cri_node = fixtures_node.cri_node


class KubeletRunner:
    """pb-kubelet in-process; stop()/start() keep its root dir (checkpoints, volumes, logs)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None

    async def start(self) -> None:
        ready, self._stop = asyncio.Event(), asyncio.Event()
        self._task = asyncio.create_task(run(self.cfg, ready, self._stop))
        waiter = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait([self._task, waiter], return_when=asyncio.FIRST_COMPLETED, timeout=60)
        waiter.cancel()
        if self._task in done:
            self._task.result()
        assert ready.is_set(), "kubelet did not become ready"

    async def stop(self) -> None:
        if self._task is None or self._stop is None:
            return
        self._stop.set()
        await asyncio.wait_for(self._task, 60)
        self._task = None


@dataclass
class KubeletEnv:
    apiserver: ApiServer
    node: CRINode
    kubelet: KubeletRunner
    root_dir: Path

    @property
    def client(self) -> Client:
        return self.apiserver.client


def kubelet_config(apiserver: ApiServer, node: CRINode, root_dir: Path, **kw: Any) -> Config:
    # The kubelet runs in the root netns here: its API listens on loopback.
    base: dict[str, Any] = dict(node_name=NODE_NAME, config=str(apiserver.admin_conf),
                                containerd_socket=node.containerd.socket, root_dir=root_dir, pod_cidr=POD_CIDR,
                                node_ip=NODE_IP, health_port=free_port(), probe_netns=f"/run/netns/{NODE_NETNS}",
                                node_status_update_frequency=2.0, port=free_port(), address="127.0.0.1",
                                eviction_hard=LAB_EVICTION_HARD,
                                # the apiserver's CA: its apiserver-kubelet-client is the one client allowed
                                client_ca_file=apiserver.cfg.data_dir / "pki" / "ca.crt")
    base.update(kw)
    return Config(**base)


@pytest.fixture
async def kubelet_env(apiserver: ApiServer, cri_node: CRINode, tmp_path: Path) -> AsyncIterator[KubeletEnv]:
    root = tmp_path / "kubelet"
    runner = KubeletRunner(kubelet_config(apiserver, cri_node, root))
    await runner.start()
    try:
        yield KubeletEnv(apiserver, cri_node, runner, root)
    finally:
        await runner.stop()
        # The node fixture removes every sandbox; the kubelet's dirs go with tmp_path.
        with contextlib.suppress(Exception):
            await cri_node.containerd.remove_all_pods()


def make_pod(name: str, command: list[str] | None = None, *, restart_policy: str = "",
             image: str = BUSYBOX_IMAGE, grace: int | None = None) -> core.Pod:
    pod = core.Pod()
    pod.metadata.name, pod.metadata.namespace = name, "default"
    pod.metadata.labels["app"] = name
    pod.spec.node_name = NODE_NAME
    if restart_policy:
        pod.spec.restart_policy = restart_policy
    if grace is not None:
        pod.spec.termination_grace_period_seconds = grace
    c = pod.spec.containers.add()
    c.name, c.image = "main", image
    c.image_pull_policy = "IfNotPresent"
    if command:
        c.command.extend(command)
    return pod
