"""Node fixtures for CRI tests: lab images, a node netns with its own containerd, and thorough cleanup.

A test module registers them by binding module-level names (`cri_node = fixtures_node.cri_node`);
tests/integration/conftest.py belongs to the shared fixtures.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab import netns
from lab.images import LabImages, build_lab_images
from node_agent.containerd import Containerd, mounts_under
from node_agent.cri.client import CRIClient

NETWORK = "pb-crit"
NODE_NETNS = "pb-crit-node"
NODE_ADDRESS = "172.30.50.2/24"
POD_CIDR = "10.244.50.0/24"
IMAGE_CACHE = os.environ.get("PB_IMAGE_CACHE", "/var/tmp/pybernetes-lab-images")


@dataclass
class CRINode:
    """A running node: its netns host, containerd and an open CRI client."""

    host: netns.Host
    containerd: Containerd
    cri: CRIClient
    network: netns.Network

    @property
    def dir(self) -> Path:
        return self.containerd.paths.base


@pytest.fixture(scope="session")
def lab_images() -> LabImages:
    return build_lab_images(IMAGE_CACHE)


@pytest.fixture
def lab_network() -> Iterator[netns.Network]:
    net = netns.Network(NETWORK)
    # A previous crashed run may have left the namespaces behind.
    net.destroy([NODE_NETNS])
    net.create()
    try:
        yield net
    finally:
        net.destroy([NODE_NETNS])


@pytest.fixture
async def cri_node(
    tmp_path: Path, lab_images: LabImages, lab_network: netns.Network
) -> AsyncIterator[CRINode]:
    """containerd for node netns pb-crit-node (172.30.50.2, pods in 10.244.50.0/24) with images imported."""
    host = lab_network.add_host(NODE_NETNS, NODE_ADDRESS)
    node_dir = tmp_path / "node"
    cd = Containerd(node_dir, netns=NODE_NETNS, pod_cidr=POD_CIDR)
    cri: CRIClient | None = None
    try:
        await cd.start()
        await cd.import_image(lab_images.archive)
        cri = cd.client()
        yield CRINode(host=host, containerd=cd, cri=cri, network=lab_network)
    finally:
        if cri is not None:
            await cri.close()
        leftover = await cd.destroy()
        assert leftover == [], f"mounts left under {node_dir}: {leftover}"
        assert mounts_under(node_dir) == []
        assert not node_dir.exists()
