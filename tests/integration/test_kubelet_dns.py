"""The kubelet's pod DNS through real containerd: a ClusterFirst pod's /etc/resolv.conf names the cluster DNS,
its namespace's search path and ndots:5; a dnsPolicy None pod has only its dnsConfig.

Uses the fixed node namespace of fixtures_node: run under the shared netns lock."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pybernetes.api.core.v1 import core_pb2 as core
from tests.helpers import eventually
from tests.integration import fixtures_kubelet, fixtures_node
from tests.integration.conftest import ApiServer
from tests.integration.fixtures_kubelet import KubeletEnv, KubeletRunner, kubelet_config, make_pod
from tests.integration.fixtures_node import CRINode

pytestmark = pytest.mark.integration

lab_images = fixtures_node.lab_images
lab_network = fixtures_node.lab_network
cri_node = fixtures_kubelet.cri_node


@pytest.fixture
async def dns_kubelet(apiserver: ApiServer, cri_node: CRINode, tmp_path: Path) -> AsyncIterator[KubeletEnv]:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 192.0.2.53\nsearch host.example\n")
    root = tmp_path / "kubelet"
    runner = KubeletRunner(kubelet_config(apiserver, cri_node, root, cluster_dns=["10.96.0.10"],
                                          cluster_domain="cluster.local", resolv_conf=str(resolv)))
    await runner.start()
    try:
        yield KubeletEnv(apiserver, cri_node, runner, root)
    finally:
        await runner.stop()
        with contextlib.suppress(Exception):
            await cri_node.containerd.remove_all_pods()


async def resolv_conf_of(env: KubeletEnv, name: str) -> str:
    async def running() -> str:
        pod = await env.client.get(core.Pod, name, namespace="default")
        statuses = pod.status.container_statuses
        return statuses[0].container_id if statuses and statuses[0].state.HasField("running") else ""
    cid = await eventually(running, timeout=60, what=f"{name} running")
    out = await env.node.cri.exec_sync(cid.removeprefix("containerd://"), ["cat", "/etc/resolv.conf"])
    return out.stdout.decode()


async def test_cluster_first_and_none(dns_kubelet: KubeletEnv) -> None:
    env = dns_kubelet
    await env.client.create(make_pod("cf", ["sleep", "300"]))
    conf = await resolv_conf_of(env, "cf")
    assert "nameserver 10.96.0.10" in conf and "192.0.2.53" not in conf, conf
    assert "search default.svc.cluster.local svc.cluster.local cluster.local host.example" in conf, conf
    assert "ndots:5" in conf, conf

    none = make_pod("none", ["sleep", "300"])
    none.spec.dns_policy = "None"
    none.spec.dns_config.nameservers.append("192.0.2.1")
    none.spec.dns_config.searches.append("only.example")
    await env.client.create(none)
    conf = await resolv_conf_of(env, "none")
    assert "nameserver 192.0.2.1" in conf and "10.96.0.10" not in conf and "search only.example" in conf, conf
