"""ClusterIP and NodePort allocation for Services, unique across concurrent creates and restarts.

Each allocated value is an etcd key (`/registry/ranges/serviceips/<ip>`, `/registry/ranges/servicenodeports/<port>`)
created with a create-if-absent transaction, so two apiservers (or two concurrent requests) can never hand out
the same one — the same idea as Kubernetes' IPAddress objects. Values are claimed before the Service is written
and released if that write fails; a repair pass frees claims that no Service references (after a crash between
the two writes), as kube-apiserver's repair controllers do.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pybernetes import errors
from pybernetes.api import objects
from pybernetes.api.core.v1 import core_pb2 as core

from .storage.store import Store

log = logging.getLogger("pybernetes.apiserver.allocator")

IP_PREFIX = b"/registry/ranges/serviceips/"
PORT_PREFIX = b"/registry/ranges/servicenodeports/"
REPAIR_GRACE = 60.0  # a claim younger than this may belong to a create still in flight


@dataclass
class Claims:
    """What one request claimed, to release if the object write fails."""

    keys: list[bytes]


class ServiceAllocator:
    def __init__(self, store: Store, ip_range: str = "10.96.0.0/16", port_range: str = "30000-32767") -> None:
        self.store = store
        self.network = ipaddress.ip_network(ip_range)
        lo, _, hi = port_range.partition("-")
        self.port_lo, self.port_hi = int(lo), int(hi or lo)

    # -- helpers ---------------------------------------------------------------------------------

    @property
    def kubernetes_ip(self) -> str:
        """The first address of the range is the `kubernetes` Service's, as in Kubernetes."""
        return str(self.network.network_address + 1)

    async def _claim(self, key: bytes, owner: str) -> bool:
        value = json.dumps({"owner": owner, "at": time.time()}).encode()
        try:
            await self.store.claim(key, value)
            return True
        except errors.AlreadyExists:
            return False

    async def _claim_ip(self, ip: str, owner: str, claims: Claims) -> bool:
        key = IP_PREFIX + ip.encode()
        if await self._claim(key, owner):
            claims.keys.append(key)
            return True
        return False

    async def _claim_port(self, port: int, owner: str, claims: Claims) -> bool:
        key = PORT_PREFIX + str(port).encode()
        if await self._claim(key, owner):
            claims.keys.append(key)
            return True
        return False

    async def _random_ip(self, owner: str, claims: Claims) -> str:
        first = int(self.network.network_address) + 2  # .0 is the network, .1 is `kubernetes`
        last = int(self.network.broadcast_address) - 1
        size = last - first + 1
        start = random.randrange(size)
        for i in range(min(size, 4096)):
            ip = str(ipaddress.ip_address(first + (start + i * 7919) % size))
            if await self._claim_ip(ip, owner, claims):
                return ip
        raise errors.InternalError(f"failed to allocate a service IP: range {self.network} is full")

    async def _random_port(self, owner: str, claims: Claims) -> int:
        size = self.port_hi - self.port_lo + 1
        start = random.randrange(size)
        for i in range(size):
            port = self.port_lo + (start + i) % size
            if await self._claim_port(port, owner, claims):
                return port
        raise errors.InternalError(f"failed to allocate a node port: range {self.port_lo}-{self.port_hi} is full")

    # -- service lifecycle -------------------------------------------------------------------------

    async def allocate(self, svc: core.Service, old: core.Service | None = None) -> Claims:
        """Fill in clusterIP and nodePorts (claiming them); keep what `old` already holds."""
        claims = Claims([])
        owner = objects.key(svc)
        spec = svc.spec
        try:
            if spec.type != "ExternalName":
                if old is not None and old.spec.cluster_ip and not spec.cluster_ip:
                    spec.cluster_ip = old.spec.cluster_ip  # an update that omits it keeps it
                    del spec.cluster_ips[:]
                    spec.cluster_ips.extend(old.spec.cluster_ips or [old.spec.cluster_ip])
                if not spec.cluster_ip:
                    ip = await self._random_ip(owner, claims)
                    spec.cluster_ip = ip
                    del spec.cluster_ips[:]
                    spec.cluster_ips.append(ip)
                elif spec.cluster_ip != "None" and (old is None or old.spec.cluster_ip != spec.cluster_ip):
                    self._check_ip(spec.cluster_ip)
                    if not await self._claim_ip(spec.cluster_ip, owner, claims):
                        raise errors.Invalid(
                            f'Service "{svc.metadata.name}" is invalid: spec.clusterIPs: Invalid value: '
                            f'[]string{{"{spec.cluster_ip}"}}: failed to allocate IP {spec.cluster_ip}: provided IP '
                            "is already allocated",
                            causes=[errors.FieldError("spec.clusterIPs", f"failed to allocate IP {spec.cluster_ip}: "
                                                      "provided IP is already allocated")])
            needs_ports = spec.type == "NodePort" or (
                spec.type == "LoadBalancer" and (not spec.HasField("allocate_load_balancer_node_ports")
                                                 or spec.allocate_load_balancer_node_ports))
            old_ports = {(p.port, p.protocol): p.node_port for p in (old.spec.ports if old else []) if p.node_port}
            if needs_ports:
                for i, p in enumerate(spec.ports):
                    kept = old_ports.get((p.port, p.protocol))
                    if not p.node_port and kept:
                        p.node_port = kept
                    elif not p.node_port:
                        p.node_port = await self._random_port(owner, claims)
                    elif p.node_port != kept:
                        if not self.port_lo <= p.node_port <= self.port_hi:
                            msg = f"provided port is not in the valid range. The range of valid ports is " \
                                  f"{self.port_lo}-{self.port_hi}"
                            raise errors.Invalid(f'Service "{svc.metadata.name}" is invalid: spec.ports[{i}].nodePort: '
                                                 f"Invalid value: {p.node_port}: {msg}",
                                                 causes=[errors.FieldError(f"spec.ports[{i}].nodePort", msg)])
                        if not await self._claim_port(p.node_port, owner, claims):
                            msg = "provided port is already allocated"
                            raise errors.Invalid(f'Service "{svc.metadata.name}" is invalid: spec.ports[{i}].nodePort: '
                                                 f"Invalid value: {p.node_port}: {msg}",
                                                 causes=[errors.FieldError(f"spec.ports[{i}].nodePort", msg)])
            else:
                for p in spec.ports:
                    p.node_port = 0
        except BaseException:
            await self.release_claims(claims)
            raise
        return claims

    def _check_ip(self, ip: str) -> None:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return  # validation reports the syntax
        if addr not in self.network:
            msg = f"failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of " \
                  f"valid IPs is {self.network}"
            raise errors.Invalid(f"spec.clusterIPs: Invalid value: {ip}: {msg}",
                                 causes=[errors.FieldError("spec.clusterIPs", msg)])

    async def release_claims(self, claims: Claims) -> None:
        for key in claims.keys:
            with contextlib.suppress(errors.ApiError):
                await self.store.unclaim(key)

    def released_by(self, old: core.Service, new: core.Service | None) -> list[bytes]:
        """Claims `old` holds that `new` (None: the service is gone) no longer uses."""
        keys: list[bytes] = []
        keep_ip = new.spec.cluster_ip if new is not None and new.spec.type != "ExternalName" else ""
        if old.spec.cluster_ip and old.spec.cluster_ip != "None" and old.spec.cluster_ip != keep_ip:
            keys.append(IP_PREFIX + old.spec.cluster_ip.encode())
        keep_ports = {p.node_port for p in new.spec.ports} if new is not None else set()
        for p in old.spec.ports:
            if p.node_port and p.node_port not in keep_ports:
                keys.append(PORT_PREFIX + str(p.node_port).encode())
        return keys

    async def release(self, keys: list[bytes]) -> None:
        await self.release_claims(Claims(keys))

    # -- repair ----------------------------------------------------------------------------------

    async def repair(self, services: list[core.Service]) -> int:
        """Free claims no Service holds (older than the grace period); returns how many were freed."""
        used = {IP_PREFIX + s.spec.cluster_ip.encode() for s in services if s.spec.cluster_ip}
        used |= {PORT_PREFIX + str(p.node_port).encode() for s in services for p in s.spec.ports if p.node_port}
        freed = 0
        for prefix in (IP_PREFIX, PORT_PREFIX):
            for key, value in await self.store.list_claims(prefix):
                if key in used:
                    continue
                try:
                    at = float(json.loads(value).get("at", 0))
                except ValueError:
                    at = 0.0
                if time.time() - at < REPAIR_GRACE:
                    continue
                with contextlib.suppress(errors.ApiError):
                    await self.store.unclaim(key)
                    freed += 1
                    log.info("repair released orphaned claim key=%s", key.decode())
        return freed

    async def repair_loop(self, list_services: Callable[[], Awaitable[list[core.Service]]],
                          interval: float = 60.0) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                services = await list_services()
                await self.repair(services)
            except Exception as e:
                log.warning("allocation repair failed: %s", e)
