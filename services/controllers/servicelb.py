"""ServiceLBController: `type: LoadBalancer` Services get an address from a pool (--loadbalancer-ip-range).

Kubernetes leaves such Services `<pending>` until a cloud provider answers; a lab has none, so this
controller plays that part, as k3s' servicelb or MetalLB do: it writes status.loadBalancer.ingress[].ip and
pb-proxy answers on that address on every node. One leader allocates from one worker, so the in-use set is
authoritative: its cache, corrected by what this controller wrote and the cache has not shown yet (the same
idea as a scheduler's assumed pods), so two Services synced back to back never get one address. After a
restart it is re-learned from the Services' status before anything new is given.
An exhausted or unset pool leaves the Service pending with an event saying why.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging

from pybernetes import errors
from pybernetes.api import objects
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.objects import split_key
from pybernetes.cache import DeletedFinalStateUnknown, InformerFactory
from pybernetes.client.client import Client
from pybernetes.controller import Controller, unwrap
from pybernetes.events import EventRecorder

log = logging.getLogger("pybernetes.controllers.servicelb")


def parse_pool(spec: str) -> list[str]:
    """'172.30.0.200-172.30.0.250' or '172.30.0.192/27' (network and broadcast excluded) or ''."""
    spec = spec.strip()
    if not spec:
        return []
    if "-" in spec:
        lo, hi = (ipaddress.ip_address(x.strip()) for x in spec.split("-", 1))
        if int(hi) < int(lo):
            raise ValueError(f"empty load balancer range {spec!r}")
        return [str(ipaddress.ip_address(i)) for i in range(int(lo), int(hi) + 1)]
    net = ipaddress.ip_network(spec, strict=False)
    return [str(ip) for ip in net.hosts()]


def ingress_ips(svc: core.Service) -> list[str]:
    return [i.ip for i in svc.status.load_balancer.ingress if i.ip]


class ServiceLBController:
    def __init__(self, client: Client, factory: InformerFactory, recorder: EventRecorder, *, workers: int = 1,
                 pool: str = "") -> None:
        self.client = client
        self.recorder = recorder
        self.workers = 1  # one worker: allocation decisions are serialized, never two for one address
        self.pool = parse_pool(pool)
        self.pool_set = set(self.pool)
        self.services = factory.informer_for(core.Service)
        self.lister = self.services.lister()
        self.controller = Controller("servicelb", informers=[self.services])
        self.queue = self.controller.add_queue("servicelb", self.sync, workers=self.workers)
        # key -> (resourceVersion, ingress addresses) last written, until the cache reaches that version
        self._written: dict[str, tuple[int, list[str]]] = {}
        self.services.add_event_handler(self._enqueue, lambda _o, n: self._enqueue(n), self._on_delete)

    def _enqueue(self, svc: core.Service) -> None:
        self.queue.add(objects.key(svc))

    def _on_delete(self, obj: core.Service | DeletedFinalStateUnknown[core.Service]) -> None:
        svc = unwrap(obj)
        self._written.pop(objects.key(svc), None)
        # A freed address may be what a pending Service waits for.
        for s in self.lister.list():
            if s.spec.type == "LoadBalancer" and not ingress_ips(s):
                self._enqueue(s)

    def ips_of(self, svc: core.Service) -> list[str]:
        """The Service's addresses: what this controller last wrote, until the cache shows it, else the cache's."""
        key = objects.key(svc)
        written = self._written.get(key)
        if written is None:
            return ingress_ips(svc)
        if int(svc.metadata.resource_version or 0) >= written[0]:
            del self._written[key]  # the cache caught up (or moved on): it is authoritative again
            return ingress_ips(svc)
        return written[1]

    def in_use(self, exclude: str = "") -> set[str]:
        used: set[str] = set()
        for s in self.lister.list():
            if objects.key(s) == exclude or s.spec.type != "LoadBalancer":
                continue
            used.update(self.ips_of(s))
        return used

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        svc = self.lister.get(namespace, name)
        if svc is None:
            return
        have = self.ips_of(svc)
        if svc.spec.type != "LoadBalancer":
            if have:
                await self._write(svc, None)  # no longer a LoadBalancer: give the address back
            return
        if have and all(ip in self.pool_set for ip in have):
            return
        used = self.in_use(exclude=key)
        wanted = svc.spec.load_balancer_ip
        if wanted:
            if wanted not in self.pool_set or wanted in used:
                why = "is not in the pool" if wanted not in self.pool_set else "is already in use"
                self.recorder.event(svc, "Warning", "AllocationFailed",
                                    f"Failed to allocate IP for \"{key}\": requested {wanted} {why}")
                return
            ip = wanted
        else:
            ip = next((a for a in self.pool if a not in used), "")
        if not ip:
            msg = ("no --loadbalancer-ip-range configured" if not self.pool
                   else f"no available IPs in the pool ({len(self.pool)} addresses, all in use)")
            self.recorder.event(svc, "Warning", "AllocationFailed", f"Failed to allocate IP for \"{key}\": {msg}")
            return
        await self._write(svc, ip)
        self.recorder.event(svc, "Normal", "IPAllocated", f"Assigned IP [\"{ip}\"]")
        log.info("load balancer address service=%s ip=%s", key, ip)

    async def _write(self, svc: core.Service, ip: str | None) -> None:
        new = core.Service()
        new.CopyFrom(svc)
        new.status.load_balancer.ClearField("ingress")
        if ip:
            new.status.load_balancer.ingress.add(ip=ip)
        try:
            out = await self.client.update_status(new)
        except errors.NotFound:
            return
        self._written[objects.key(svc)] = (int(out.metadata.resource_version), ingress_ips(out))

    async def run(self, stop: asyncio.Event) -> None:
        await self.controller.run(stop)
