"""A node agent's heartbeat Lease (the kubelet's kube-node-lease/<node>, pb-proxy's kube-proxy-<node>): created
owned by the Node, then renewed from the copy the last write returned, as Kubernetes' node lease controller
renews (latestLease): one write per renewal, read again only when that copy is missing or stale (a Conflict or
NotFound). Callers: node_agent.nodestatus, netproxy.heartbeat."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pybernetes import errors
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.times import micro_now
from pybernetes.client.client import Client

NodeUid = Callable[[], Awaitable[str]]  # the Node's uid for the owner reference ("": no owner)


class HeartbeatLease:
    """The Lease `namespace`/`name` of the agent on `node`, held by the node's name."""

    def __init__(self, client: Client, name: str, namespace: str, node: str, duration: int,
                 node_uid: NodeUid) -> None:
        self.client = client
        self.name, self.namespace, self.node, self.duration = name, namespace, node, duration
        self.node_uid = node_uid
        self.last: coordination.Lease | None = None  # the copy the last write returned

    async def renew(self) -> None:
        lease = self.last
        if lease is None:
            try:
                lease = await self.client.get(coordination.Lease, self.name, namespace=self.namespace)
            except errors.NotFound:
                lease = coordination.Lease()
                lease.metadata.name, lease.metadata.namespace = self.name, self.namespace
                if uid := await self.node_uid():  # owned by the Node, so it goes when the Node goes
                    lease.metadata.owner_references.add(api_version="v1", kind="Node", name=self.node, uid=uid)
                self._fill(lease)
                self.last = await self.client.create(lease)
                return
        self._fill(lease)
        try:
            self.last = await self.client.update(lease)
        except (errors.Conflict, errors.NotFound):
            self.last = None  # someone else wrote or removed it: read (or create) it on the next try, soon
            raise

    def _fill(self, lease: coordination.Lease) -> None:
        lease.spec.holder_identity = self.node
        lease.spec.lease_duration_seconds = self.duration
        lease.spec.renew_time.CopyFrom(micro_now())
