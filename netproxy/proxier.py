"""The sync loop: informers on Services, EndpointSlices or Endpoints (`endpoint_source`) and Nodes -> dirty keys
-> rate-limited sync -> apply.

Handlers only record snapshots in the ChangeTracker and wake the loop. The loop waits for a change (or the
periodic full resync), keeps at least `min_sync_period` between syncs, then renders the dirty service keys
(partial sync) or everything (first sync, every `sync_period`, after a failure), and applies the plan in a
worker thread. When `nft -f` / `iptables-restore` fails, the kernel keeps the previous rules (each script is
one transaction), the failure is logged and counted, the keys stay dirty and the next sync is a full one.
Node changes resync host-gw routes. UDP conntrack entries pointing at removed endpoints are flushed after
the rules that stop new traffic to them are in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Iterable

from netproxy import metrics
from netproxy.backend import Backend
from netproxy.model import ChangeTracker, Endpoint, ServicePortInfo, ServicePortName, Unit
from netproxy.routes import Conntrack, Routes, desired_routes
from pybernetes.api import objects
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.discovery.v1 import discovery_pb2 as discovery
from pybernetes.api.endpointslices import ENDPOINTS, ENDPOINTSLICES, SOURCES
from pybernetes.cache import DeletedFinalStateUnknown, InformerFactory
from pybernetes.controller import unwrap

log = logging.getLogger("pybernetes.netproxy")

Snapshot = tuple[ServicePortInfo, tuple[Endpoint, ...]]


class Proxier:
    def __init__(self, backend: Backend, *, hostname: str, min_sync_period: float = 1.0,
                 sync_period: float = 30.0, routes: Routes | None = None, conntrack: Conntrack | None = None,
                 nodeport_addresses: Iterable[str] = (), endpoint_source: str = ENDPOINTS) -> None:
        if endpoint_source not in SOURCES:
            raise ValueError(f"endpoint source must be one of {', '.join(SOURCES)}")
        self.backend = backend
        self.endpoint_source = endpoint_source
        self.hostname = hostname
        self.tracker = ChangeTracker(hostname)
        self.min_sync_period = min_sync_period
        self.sync_period = sync_period
        self.routes = routes
        self.conntrack = conntrack
        self.nodeport_cidrs = [ipaddress.ip_network(c, strict=False) for c in nodeport_addresses]
        self.nodes: dict[str, core.Node] = {}
        self.snapshots: dict[ServicePortName, Snapshot] = {}
        self.by_key: dict[str, set[ServicePortName]] = {}
        self.endpoint_count = 0
        self.need_full = True
        self.routes_dirty = routes is not None
        self.last_sync = 0.0  # monotonic
        self.last_full = 0.0
        self.last_success_wall = 0.0
        self.syncs = 0
        self.failures = 0
        self.last_error = ""
        self._wake = asyncio.Event()
        self._pending_since: float | None = None

    # ---- informer handlers -----------------------------------------------------------------------------------

    def register(self, factory: InformerFactory) -> None:
        factory.informer_for(core.Service).add_event_handler(
            lambda o: self.on_service(o), lambda _o, n: self.on_service(n), self.on_service_delete)
        if self.endpoint_source == ENDPOINTSLICES:
            factory.informer_for(discovery.EndpointSlice).add_event_handler(
                lambda o: self.on_endpoint_slice(o), lambda _o, n: self.on_endpoint_slice(n),
                self.on_endpoint_slice_delete)
        else:
            factory.informer_for(core.Endpoints).add_event_handler(
                lambda o: self.on_endpoints(o), lambda _o, n: self.on_endpoints(n), self.on_endpoints_delete)
        factory.informer_for(core.Node).add_event_handler(
            lambda o: self.on_node(o), lambda _o, n: self.on_node(n), self.on_node_delete)

    def _changed(self) -> None:
        if self._pending_since is None:
            self._pending_since = time.monotonic()
        metrics.LAST_QUEUED.set_to_current_time()
        self._wake.set()

    def on_service(self, svc: core.Service) -> None:
        if self.tracker.update_service(objects.key(svc), svc):
            self._changed()

    def on_service_delete(self, obj: core.Service | DeletedFinalStateUnknown[core.Service]) -> None:
        svc = unwrap(obj)
        if self.tracker.update_service(objects.key(svc), None):
            self._changed()

    def on_endpoints(self, ep: core.Endpoints) -> None:
        if self.tracker.update_endpoints(objects.key(ep), ep):
            self._changed()

    def on_endpoints_delete(self, obj: core.Endpoints | DeletedFinalStateUnknown[core.Endpoints]) -> None:
        ep = unwrap(obj)
        if self.tracker.update_endpoints(objects.key(ep), None):
            self._changed()

    def on_endpoint_slice(self, s: discovery.EndpointSlice) -> None:
        if self.tracker.update_endpoint_slice(s):
            self._changed()

    def on_endpoint_slice_delete(self, obj: discovery.EndpointSlice
                                 | DeletedFinalStateUnknown[discovery.EndpointSlice]) -> None:
        if self.tracker.update_endpoint_slice(unwrap(obj), deleted=True):
            self._changed()

    def on_node(self, node: core.Node) -> None:
        old = self.nodes.get(node.metadata.name)
        self.nodes[node.metadata.name] = node
        if old is None or old.spec != node.spec or old.status.addresses != node.status.addresses:
            self.routes_dirty = self.routes is not None
            if self.routes_dirty:
                self._changed()

    def on_node_delete(self, obj: core.Node | DeletedFinalStateUnknown[core.Node]) -> None:
        node = unwrap(obj)
        if self.nodes.pop(node.metadata.name, None) is not None and self.routes is not None:
            self.routes_dirty = True
            self._changed()

    # ---- loop ------------------------------------------------------------------------------------------------

    def request_full_sync(self) -> None:
        self.need_full = True
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        stopper = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                until_full = max(0.0, self.last_full + self.sync_period - time.monotonic())
                waker = asyncio.create_task(self._wake.wait())
                await asyncio.wait([waker, stopper], timeout=until_full, return_when=asyncio.FIRST_COMPLETED)
                waker.cancel()
                if stop.is_set():
                    break
                wait = self.last_sync + self.min_sync_period - time.monotonic()
                if wait > 0:
                    await asyncio.wait([stopper], timeout=wait)
                    if stop.is_set():
                        break
                self._wake.clear()
                try:
                    await self.sync()
                except Exception as e:  # never let the loop die; the next sync is a full one
                    metrics.SYNC_ERRORS.inc()
                    self.need_full = True
                    self.last_error = str(e)
                    log.exception("sync failed")
        finally:
            stopper.cancel()

    async def sync(self, *, full: bool | None = None) -> bool:
        """One sync. Returns True when the rules were applied."""
        start = time.monotonic()
        if full is None:
            full = self.need_full or start - self.last_full >= self.sync_period
        if self.routes is not None and (self.routes_dirty or full):
            self.routes_dirty = False
            try:
                await asyncio.to_thread(self.routes.sync, desired_routes(self.nodes.values(), self.hostname))
            except Exception as e:
                self.routes_dirty = True
                log.warning("routes sync failed err=%s", e)
        if full and self.nodeport_cidrs and self.routes is not None:
            addrs = await asyncio.to_thread(self.routes.addresses)
            self.backend.set_nodeport_ips(
                a for a in addrs if any(ipaddress.ip_address(a) in c for c in self.nodeport_cidrs))
        dirty, trigger_times = self.tracker.take_dirty()
        new_snaps: dict[ServicePortName, Snapshot | None] = {}
        if full:
            current = self.tracker.all_ports()
            for spn in self.snapshots:
                if spn not in current:
                    new_snaps[spn] = None
            new_snaps.update(current)
        else:
            for key in dirty:
                ports = self.tracker.ports(key)
                for spn in self.by_key.get(key, set()):
                    if spn not in ports:
                        new_snaps[spn] = None
                new_snaps.update(ports)
        changes: dict[ServicePortName, Unit | None] = {
            spn: (self.backend.render(*snap) if snap is not None else None) for spn, snap in new_snaps.items()}
        plan = self.backend.plan(changes, full=full)
        try:
            await asyncio.to_thread(self.backend.execute, plan)
        except Exception as e:
            metrics.RESTORE_FAILURES.inc()
            self.failures += 1
            self.last_error = str(e)
            log.error("apply failed backend=%s full=%s err=%s", self.backend.name, full, e)
            for key in dirty:  # keep them dirty, with their first trigger time
                self.tracker.dirty.add(key)
                self.tracker.trigger_times[key] = min(self.tracker.trigger_times.get(key, trigger_times.get(
                    key, time.time())), trigger_times.get(key, time.time()))
            self.need_full = True
            self.last_sync = time.monotonic()
            return False
        self.backend.commit(plan)
        old_snaps = {spn: self.snapshots[spn] for spn in new_snaps if spn in self.snapshots}
        for spn, snap in new_snaps.items():
            before = self.snapshots.pop(spn, None)
            if before is not None:
                self.endpoint_count -= len(before[1])
                keyed = self.by_key.get(spn.service_key)
                if keyed is not None:
                    keyed.discard(spn)
                    if not keyed:
                        del self.by_key[spn.service_key]
            if snap is not None:
                self.snapshots[spn] = snap
                self.endpoint_count += len(snap[1])
                self.by_key.setdefault(spn.service_key, set()).add(spn)
        if self.conntrack is not None:
            await asyncio.to_thread(self._clear_conntrack, old_snaps, new_snaps)
        end = time.monotonic()
        self.last_sync = end
        if full:
            self.last_full = end
            self.need_full = False
        self._pending_since = None if not self.tracker.dirty else self._pending_since
        self.syncs += 1
        self.last_success_wall = time.time()
        metrics.SYNC_DURATION.observe(end - start)
        (metrics.SYNC_FULL_DURATION if full else metrics.SYNC_PARTIAL_DURATION).observe(end - start)
        metrics.LAST_SYNC.set(self.last_success_wall)
        metrics.SERVICE_PORTS.set(len(self.snapshots))
        metrics.ENDPOINTS.set(self.endpoint_count)
        now = time.time()
        for key in dirty:
            if key in trigger_times:
                metrics.NETWORK_PROGRAMMING.observe(max(0.0, now - trigger_times[key]))
        log.info("synced backend=%s full=%s service_ports=%d changed=%d took=%.3fs", self.backend.name, full,
                 len(self.snapshots), plan.changed, end - start)
        return True

    def _clear_conntrack(self, old: dict[ServicePortName, Snapshot],
                         new: dict[ServicePortName, Snapshot | None]) -> None:
        assert self.conntrack is not None
        for spn, snap in new.items():
            if spn.protocol != "UDP":
                continue
            before = old.get(spn)
            old_eps = set(before[1]) if before else set()
            info = snap[0] if snap else (before[0] if before else None)
            if info is None:
                continue
            new_eps = set(snap[1]) if snap else set()
            for ep in old_eps - new_eps:
                for ip in (info.cluster_ip, *info.external_ips, *info.lb_ips):
                    self.conntrack.clear_endpoint(ip, ep.ip)
                if info.node_port:
                    self.conntrack.clear_nodeport_endpoint(info.node_port, ep.ip)
            if new_eps and not old_eps:
                self.conntrack.clear_service(info.cluster_ip)

    # ---- health ----------------------------------------------------------------------------------------------

    async def healthz(self) -> None:
        """Unhealthy when changes have waited longer than two sync periods without a successful sync."""
        if self._pending_since is not None:
            age = time.monotonic() - self._pending_since
            if age > max(2 * self.sync_period, 60.0):
                raise RuntimeError(f"rules not synced for {age:.0f}s: {self.last_error}")

    async def readyz(self) -> None:
        if not self.backend.synced_once:
            raise RuntimeError("no successful sync yet")

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self._wake.set()
