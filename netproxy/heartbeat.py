"""pb-proxy's heartbeat: the Lease kube-node-lease/kube-proxy-<node>, renewed as the kubelet renews its node
Lease (every quarter of its 40 s duration) while the proxier is healthy, i.e. while its /healthz
(ports.PROXY_HEALTH) would answer ok; released (holder cleared, as client-go's leader election releases)
on a clean stop.

pybernetes' own: upstream kube-proxy reports its health only on its /healthz port, which nothing outside the node
sees. A Lease is the Kubernetes-shaped way a node agent says "alive" through the API, and readers watch it
(`pbctl dashboard` greys the node's proxy when it expires or is released). Callers: `netproxy.main.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from pybernetes import errors
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client.client import Client
from pybernetes.heartbeat import HeartbeatLease

log = logging.getLogger("pybernetes.netproxy")

NAMESPACE = "kube-node-lease"
PREFIX = "kube-proxy-"
DURATION = 40


def lease_name(node: str) -> str:
    return PREFIX + node


class ProxyLease:
    def __init__(self, client: Client, node: str, healthz: Callable[[], Awaitable[None]],
                 duration: int = DURATION) -> None:
        self.client = client
        self.node = node
        self.healthz = healthz
        self.duration = duration
        self.lease = HeartbeatLease(client, lease_name(node), NAMESPACE, node, duration, self._node_uid)

    async def renew(self) -> None:
        """One write per renewal, from the copy the last one returned (pybernetes.heartbeat)."""
        await self.lease.renew()

    async def _node_uid(self) -> str:
        try:
            return (await self.client.get(core.Node, self.node)).metadata.uid
        except errors.NotFound:
            return ""

    async def run(self, stop: asyncio.Event) -> None:
        """Renew every duration/4 while healthy; an unhealthy proxier lets the Lease expire."""
        every = max(self.duration / 4, 1.0)
        while not stop.is_set():
            wait = every
            try:
                await self.healthz()
            except Exception as e:
                log.warning("proxy unhealthy, lease not renewed node=%s error=%s", self.node, e)
            else:
                try:
                    await self.renew()
                except Exception as e:
                    log.warning("proxy lease not renewed node=%s error=%s", self.node, e)
                    wait = 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)

    async def release(self) -> None:
        """Clear the holder so readers see the proxy stopped at once, not after the Lease expires."""
        try:
            lease = await self.client.get(coordination.Lease, lease_name(self.node), namespace=NAMESPACE)
            lease.spec.holder_identity = ""
            await self.client.update(lease)
        except errors.ApiError as e:
            log.info("proxy lease not released node=%s error=%s", self.node, e)
