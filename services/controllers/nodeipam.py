"""NodeIpamController (kube-controller-manager's node-ipam controller, range allocator).

Gives every Node a spec.podCIDR (and spec.podCIDRs) carved out of --cluster-cidr with prefix
--node-cidr-mask-size, never handing the same range to two nodes. After a restart the allocations are
re-learned from the nodes' specs before anything new is handed out; a deleted node's range is released.
A node whose podCIDR is already set keeps it (the field is immutable once set). When the range is
exhausted the node gets a CIDRNotAvailable event and is retried.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging

from pybernetes import errors
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.cache import DeletedFinalStateUnknown, InformerFactory
from pybernetes.client.client import Client
from pybernetes.controller import Controller, key_of, unwrap
from pybernetes.events import EventRecorder

log = logging.getLogger("pybernetes.controllers.nodeipam")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class CIDRExhausted(Exception):
    pass


class CidrSet:
    """The /mask subnets of one cluster CIDR, handed out round-robin (cidrset.CidrSet)."""

    def __init__(self, cluster_cidr: str, mask_size: int) -> None:
        self.cluster: Network = ipaddress.ip_network(cluster_cidr, strict=False)
        if mask_size < self.cluster.prefixlen or mask_size > self.cluster.max_prefixlen:
            raise ValueError(f"node CIDR mask size {mask_size} does not fit cluster CIDR {self.cluster}")
        if mask_size - self.cluster.prefixlen > 24:
            raise ValueError("node CIDR mask size too large for the cluster CIDR (more than 2^24 ranges)")
        self.mask_size = mask_size
        self.max = 1 << (mask_size - self.cluster.prefixlen)
        self.used: set[int] = set()
        self.next = 0

    def _index(self, cidr: str) -> int | None:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return None
        # net.subnet_of(cluster) without mixing the v4/v6 types mypy cannot relate: both ends inside.
        if net.version != self.cluster.version or net.prefixlen != self.mask_size \
                or net.network_address not in self.cluster or net.broadcast_address not in self.cluster:
            return None
        offset = int(net.network_address) - int(self.cluster.network_address)
        return offset >> (self.cluster.max_prefixlen - self.mask_size)

    def _cidr(self, index: int) -> str:
        base = int(self.cluster.network_address) + (index << (self.cluster.max_prefixlen - self.mask_size))
        return str(ipaddress.ip_network((base, self.mask_size)))

    def occupy(self, cidr: str) -> bool:
        """Mark `cidr` used (re-learning an existing allocation); False when outside this set."""
        i = self._index(cidr)
        if i is None:
            return False
        self.used.add(i)
        return True

    def release(self, cidr: str) -> None:
        i = self._index(cidr)
        if i is not None:
            self.used.discard(i)

    def allocate(self) -> str:
        if len(self.used) >= self.max:
            raise CIDRExhausted(f"no free /{self.mask_size} left in {self.cluster}")
        for k in range(self.max):
            i = (self.next + k) % self.max
            if i not in self.used:
                self.used.add(i)
                self.next = (i + 1) % self.max
                return self._cidr(i)
        raise CIDRExhausted(f"no free /{self.mask_size} left in {self.cluster}")


class NodeIpamController:
    def __init__(self, client: Client, factory: InformerFactory, recorder: EventRecorder, *,
                 workers: int = 1, cluster_cidr: str = "10.244.0.0/16", node_cidr_mask_size: int = 24) -> None:
        self.client = client
        self.recorder = recorder
        self.workers = workers
        self.cidrs = CidrSet(cluster_cidr, node_cidr_mask_size)
        self.nodes = factory.informer_for(core.Node)
        self.node_lister = self.nodes.lister()
        # re-learn every node's range before anything is handed out
        self.controller = Controller("node_ipam", informers=[self.nodes], on_synced=self._learn_all)
        self.queue = self.controller.add_queue("node_ipam", self.sync, workers=workers)
        self.allocated: dict[str, str] = {}  # node name -> cidr this process knows it holds
        self.nodes.add_event_handler(self._on_node, lambda _o, n: self._on_node(n), self._on_delete)

    def _on_node(self, node: core.Node) -> None:
        if not node.spec.pod_cidr:
            self.queue.add(node.metadata.name)
        elif node.metadata.name not in self.allocated:
            self._learn(node)

    def _on_delete(self, obj: core.Node | DeletedFinalStateUnknown[core.Node]) -> None:
        node, name = unwrap(obj), key_of(obj)
        cidrs = set(node.spec.pod_cidrs) | {node.spec.pod_cidr}
        held = self.allocated.pop(name, None)
        if held:
            cidrs.add(held)
        for c in cidrs - {""}:
            self.cidrs.release(c)
            log.info("released pod CIDR node=%s cidr=%s", name, c)

    def _learn_all(self) -> None:
        for node in self.node_lister.list():
            self._learn(node)

    def _learn(self, node: core.Node) -> None:
        for c in [node.spec.pod_cidr, *node.spec.pod_cidrs]:
            if c and self.cidrs.occupy(c):
                self.allocated[node.metadata.name] = c

    async def sync(self, name: str) -> None:
        cached = self.node_lister.get("", name)
        if cached is None:
            return
        if cached.spec.pod_cidr:
            self._learn(cached)
            return
        try:
            node = await self.client.get(core.Node, name)  # the cache may lag our own last write
        except errors.NotFound:
            return
        if node.spec.pod_cidr:
            self._learn(node)
            return
        cidr = self.allocated.get(name)
        fresh = cidr is None
        if cidr is None:
            try:
                cidr = self.cidrs.allocate()
            except CIDRExhausted as e:
                self.recorder.event(node, "Normal", "CIDRNotAvailable",
                                    f"Node {name} status is now: CIDRNotAvailable")
                raise RuntimeError(str(e)) from None
            self.allocated[name] = cidr
        new = core.Node()
        new.CopyFrom(node)
        new.spec.pod_cidr = cidr
        del new.spec.pod_cidrs[:]
        new.spec.pod_cidrs.append(cidr)
        try:
            await self.client.update(new)
        except errors.ApiError as e:
            if fresh:
                self.allocated.pop(name, None)
                self.cidrs.release(cidr)
            if not isinstance(e, errors.Conflict):
                self.recorder.event(node, "Warning", "CIDRAssignmentFailed",
                                    f"Node {name} status is now: CIDRAssignmentFailed")
            raise
        log.info("allocated pod CIDR node=%s cidr=%s", name, cidr)

    async def run(self, stop: asyncio.Event) -> None:
        await self.controller.run(stop)

