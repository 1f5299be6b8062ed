"""EndpointSliceController (kube-controller-manager's endpointslice controller), beside the Endpoints one.

For every Service with a selector it maintains EndpointSlices (discovery.k8s.io/v1) named `<svc>-<random5>`
(generateName), labelled `kubernetes.io/service-name: <svc>` and `endpointslice.kubernetes.io/managed-by:
endpointslice-controller.k8s.io` (plus the Service's own labels and the headless label), owned by the
Service, so the garbage collector deletes them with it. Slices of other managers are left alone.

Each selected pod with an IP that is not terminal (services.controllers.endpoints' rules, terminating pods
included) is one endpoint: its IP of the slice's address family, conditions as Kubernetes computes them
(serving = the pod is Ready, terminating = it has a deletionTimestamp, ready = publishNotReadyAddresses or
serving and not terminating), hostname when the pod's subdomain names the Service, nodeName, the node's zone,
targetRef. Endpoints are grouped by address type and resolved port list (a named targetPort may differ per
pod); each group fills slices of at most --max-endpoints-per-slice (100) endpoints: an endpoint stays in its
slice, new ones fill slices with room, then new slices; emptied slices are deleted. A Service without any
endpoint keeps one placeholder slice (no endpoints, no ports), as Kubernetes does.

Nothing is written when the computed slices equal the stored ones. Because a slice created through
generateName is unknown until the informer delivers it, the controller remembers what it wrote per Service
(`SliceWrites`) and retries the sync until the cache shows it, so a lagging cache never creates a second slice.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pybernetes import errors
from pybernetes.api import objects
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.discovery.v1 import discovery_pb2 as discovery
from pybernetes.api.endpointslices import MANAGED_BY_LABEL, SERVICE_NAME_LABEL, service_key
from pybernetes.cache import DeletedFinalStateUnknown, InformerFactory
from pybernetes.client.client import Client
from pybernetes.controller import Controller, key_of, unwrap
from pybernetes.events import EventRecorder
from services.controllers.controller_utils import new_controller_ref
from services.controllers.endpoints import (
    desired_labels,
    endpoint_hostname,
    find_port,
    pod_is_ready,
    selector_matches,
    should_pod_be_in_endpoints,
)

log = logging.getLogger("pybernetes.controllers.endpointslice")

CONTROLLER_NAME = "endpointslice-controller.k8s.io"
ZONE_LABEL = "topology.kubernetes.io/zone"
MAX_ENDPOINTS_PER_SLICE = 100

PortKey = tuple[str, int, str, str]  # name, port, protocol, appProtocol ("" when unset)
Group = tuple[str, tuple[PortKey, ...]]  # addressType, the resolved ports


class StaleCache(Exception):
    """The informer does not show this controller's last writes yet: the sync is retried."""


def address_type(ip: str) -> str:
    return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"


def _pod_ips(pod: core.Pod) -> list[str]:
    return [p.ip for p in pod.status.pod_ips if p.ip] or ([pod.status.pod_ip] if pod.status.pod_ip else [])


def service_address_types(svc: core.Service, pods: Sequence[core.Pod]) -> list[str]:
    """The families the Service's slices carry: spec.ipFamilies, else those of its pods' IPs (IPv4 if none)."""
    if svc.spec.ip_families:
        return list(svc.spec.ip_families)
    found = sorted({address_type(ip) for p in pods for ip in _pod_ips(p)})
    return found or ["IPv4"]


def endpoint_ports(svc: core.Service, pod: core.Pod) -> tuple[PortKey, ...]:
    """The pod's ports for the Service's ports, in the Service's order; ports the pod lacks are skipped."""
    out: list[PortKey] = []
    for sp in svc.spec.ports:
        num = find_port(pod, sp)
        if num is not None:
            out.append((sp.name, num, sp.protocol or "TCP", sp.app_protocol if sp.HasField("app_protocol") else ""))
    return tuple(out)


def pod_endpoint(pod: core.Pod, svc: core.Service, ip: str, zone: str = "") -> discovery.Endpoint:
    """podEndpointFromPod: one pod as an endpoint of `svc`."""
    serving = pod_is_ready(pod)
    terminating = objects.being_deleted(pod)
    ep = discovery.Endpoint(addresses=[ip])
    ep.conditions.ready = svc.spec.publish_not_ready_addresses or (serving and not terminating)
    ep.conditions.serving = serving
    ep.conditions.terminating = terminating
    hostname = endpoint_hostname(pod, svc)
    if hostname:
        ep.hostname = hostname
    if pod.spec.node_name:
        ep.node_name = pod.spec.node_name
        if zone:
            ep.zone = zone
    ref = ep.target_ref
    ref.kind, ref.namespace, ref.name, ref.uid = "Pod", pod.metadata.namespace, pod.metadata.name, pod.metadata.uid
    return ep


def desired_endpoints(svc: core.Service, pods: Sequence[core.Pod],
                      zones: dict[str, str] | None = None) -> dict[Group, list[discovery.Endpoint]]:
    """The Service's endpoints grouped by (addressType, ports), each group sorted by address and pod."""
    groups: dict[Group, list[discovery.Endpoint]] = {}
    for addr_type in service_address_types(svc, pods):
        for pod in pods:
            if not should_pod_be_in_endpoints(pod, include_terminating=True):
                continue
            ip = next((i for i in _pod_ips(pod) if address_type(i) == addr_type), None)
            if ip is None:
                continue
            zone = (zones or {}).get(pod.spec.node_name, "")
            groups.setdefault((addr_type, endpoint_ports(svc, pod)), []).append(pod_endpoint(pod, svc, ip, zone))
    for eps in groups.values():
        eps.sort(key=_endpoint_key)
    return groups


def _endpoint_key(ep: discovery.Endpoint) -> tuple[str, str]:
    return (ep.addresses[0] if ep.addresses else "", ep.target_ref.name)


def slice_group(s: discovery.EndpointSlice) -> Group:
    ports = tuple((p.name, p.port, p.protocol or "TCP", p.app_protocol if p.HasField("app_protocol") else "")
                  for p in s.ports)
    return s.address_type, ports


def slice_labels(svc: core.Service) -> dict[str, str]:
    labels = desired_labels(svc)
    labels[SERVICE_NAME_LABEL] = svc.metadata.name
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


def _serialized(eps: Iterable[discovery.Endpoint]) -> list[bytes]:
    return [e.SerializeToString(deterministic=True) for e in eps]


@dataclass
class SlicePlan:
    """What one sync writes: new slices, changed slices, names to delete."""

    create: list[discovery.EndpointSlice] = field(default_factory=list)
    update: list[discovery.EndpointSlice] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.create or self.update or self.delete)


def _new_slice(svc: core.Service, group: Group, eps: Iterable[discovery.Endpoint]) -> discovery.EndpointSlice:
    s = discovery.EndpointSlice(address_type=group[0])
    s.metadata.generate_name = f"{svc.metadata.name}-"
    s.metadata.namespace = svc.metadata.namespace
    s.metadata.labels.update(slice_labels(svc))
    s.metadata.owner_references.append(new_controller_ref(svc))
    for name, port, proto, app in group[1]:
        p = s.ports.add(name=name, port=port, protocol=proto)
        if app:
            p.app_protocol = app
    s.endpoints.extend(eps)
    return s


def plan_slices(svc: core.Service, desired: dict[Group, list[discovery.Endpoint]],
                existing: Sequence[discovery.EndpointSlice], max_per_slice: int = MAX_ENDPOINTS_PER_SLICE,
                ) -> SlicePlan:
    """Place the desired endpoints into the existing slices (an endpoint stays where it is), then new ones."""
    plan = SlicePlan()
    labels = slice_labels(svc)
    owner = new_controller_ref(svc)
    if not any(desired.values()):
        # The placeholder: one slice without endpoints or ports, so the Service visibly has none.
        desired = {(service_address_types(svc, [])[0], ()): []}
    by_group: dict[Group, list[discovery.EndpointSlice]] = {}
    for s in sorted(existing, key=lambda x: x.metadata.name):
        by_group.setdefault(slice_group(s), []).append(s)
    for group, eps in desired.items():
        slices = by_group.pop(group, [])
        remaining = {_endpoint_key(e): e for e in eps}
        placed: list[tuple[discovery.EndpointSlice, list[discovery.Endpoint]]] = []
        for s in slices:
            keys = [k for k in (_endpoint_key(e) for e in s.endpoints) if k in remaining][:max_per_slice]
            placed.append((s, [remaining.pop(k) for k in keys]))
        rest = sorted(remaining.values(), key=_endpoint_key)
        for _s, kept in placed:
            room = max_per_slice - len(kept)
            if room > 0 and rest:
                kept.extend(rest[:room])
                rest = rest[room:]
        for s, kept in placed:
            kept.sort(key=_endpoint_key)
            # Emptied slices go; the placeholder group keeps its first slice.
            if not kept and (eps or s is not placed[0][0]):
                plan.delete.append(s.metadata.name)
                continue
            if _serialized(s.endpoints) == _serialized(kept) and dict(s.metadata.labels) == labels \
                    and list(s.metadata.owner_references) == [owner]:
                continue
            new = objects.copy(s)
            new.metadata.labels.clear()
            new.metadata.labels.update(labels)
            del new.metadata.owner_references[:]
            new.metadata.owner_references.append(owner)
            del new.endpoints[:]
            new.endpoints.extend(kept)
            plan.update.append(new)
        if not placed and not rest:
            plan.create.append(_new_slice(svc, group, []))  # the placeholder
        for i in range(0, len(rest), max_per_slice):
            plan.create.append(_new_slice(svc, group, rest[i:i + max_per_slice]))
    for slices in by_group.values():  # groups no endpoint belongs to any more
        plan.delete.extend(s.metadata.name for s in slices)
    return plan


class SliceWrites:
    """Per Service, the slices this controller last wrote (name -> resourceVersion, 0 for deleted), until the
    informer shows them: Kubernetes' endpointSliceTracker. An entry the cache never confirms (the slice deleted
    by someone else before we recorded our write) is dropped after `max_age` seconds."""

    def __init__(self, max_age: float = 60.0) -> None:
        self._by_service: dict[str, dict[str, int]] = {}
        self._since: dict[str, float] = {}  # service key -> when its oldest pending write was recorded
        self.max_age = max_age

    def wrote(self, service_key: str, name: str, rv: int) -> None:
        self._by_service.setdefault(service_key, {})[name] = rv
        self._since.setdefault(service_key, time.monotonic())

    def seen(self, service_key: str, name: str) -> None:
        """A delete event: the slice is gone whatever we expected."""
        self._by_service.get(service_key, {}).pop(name, None)

    def stale(self, service_key: str, cached: dict[str, discovery.EndpointSlice]) -> bool:
        pending = self._by_service.get(service_key)
        if not pending:
            return False
        for name, rv in list(pending.items()):
            cur = cached.get(name)
            if (rv == 0 and cur is None) or (rv and cur is not None and objects.resource_version(cur) >= rv):
                del pending[name]
        if pending and time.monotonic() - self._since.get(service_key, 0.0) > self.max_age:
            log.warning("endpoint slice writes never seen in the cache, forgotten service=%s slices=%s",
                        service_key, ",".join(sorted(pending)))
            pending.clear()
        if not pending:
            self.forget(service_key)
        return bool(pending)

    def forget(self, service_key: str) -> None:
        self._by_service.pop(service_key, None)
        self._since.pop(service_key, None)

    async def apply(self, client: Client, service_key: str, plan: SlicePlan) -> None:
        """Write `plan` for the Service (or mirrored Endpoints) `service_key`, recording each write."""
        namespace = objects.split_key(service_key)[0]
        for s in plan.update:
            out = await client.update(s)
            self.wrote(service_key, out.metadata.name, objects.resource_version(out))
        for s in plan.create:
            out = await client.create(s)
            self.wrote(service_key, out.metadata.name, objects.resource_version(out))
        for name in plan.delete:
            try:
                await client.delete(discovery.EndpointSlice, name, namespace=namespace)
            except errors.NotFound:
                pass
            self.wrote(service_key, name, 0)


class EndpointSliceController:
    def __init__(self, client: Client, factory: InformerFactory, recorder: EventRecorder, *,
                 workers: int = 5, max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> None:
        self.client = client
        self.recorder = recorder
        self.max_endpoints_per_slice = max_endpoints_per_slice
        self.services = factory.informer_for(core.Service)
        self.pods = factory.informer_for(core.Pod)
        self.slices = factory.informer_for(discovery.EndpointSlice)
        self.nodes = factory.informer_for(core.Node)
        self.service_lister = self.services.lister()
        self.pod_lister = self.pods.lister()
        self.slice_lister = self.slices.lister()
        self.node_lister = self.nodes.lister()
        self.written = SliceWrites()
        self.controller = Controller("endpointslice",
                                     informers=[self.services, self.pods, self.slices, self.nodes])
        self.queue = self.controller.add_queue("endpointslice", self.sync, workers=workers)
        self.services.add_event_handler(self._enqueue_obj, lambda _o, n: self._enqueue_obj(n), self._enqueue_obj)
        self.pods.add_event_handler(self._on_pod, self._on_pod_update, self._on_pod)
        self.slices.add_event_handler(self._on_slice, lambda _o, n: self._on_slice(n), self._on_slice_delete)

    # -- handlers ---------------------------------------------------------------------------------

    def _enqueue_obj(self, obj: Any) -> None:
        self.queue.add(key_of(obj))

    def _services_for(self, pod: core.Pod) -> list[str]:
        return [objects.key(s) for s in self.service_lister.list(pod.metadata.namespace)
                if selector_matches(s.spec.selector, pod.metadata.labels)]

    def _on_pod(self, obj: core.Pod | DeletedFinalStateUnknown[core.Pod]) -> None:
        for key in self._services_for(unwrap(obj)):
            self.queue.add(key)

    def _on_pod_update(self, old: core.Pod, new: core.Pod) -> None:
        if old.metadata.resource_version == new.metadata.resource_version:
            return
        for key in set(self._services_for(old)) | set(self._services_for(new)):
            self.queue.add(key)

    @staticmethod
    def _service_key(s: discovery.EndpointSlice) -> str | None:
        return service_key(s) if s.metadata.labels.get(MANAGED_BY_LABEL) == CONTROLLER_NAME else None

    def _on_slice(self, s: discovery.EndpointSlice) -> None:
        key = self._service_key(s)
        if key is not None:
            self.queue.add(key)

    def _on_slice_delete(self, obj: discovery.EndpointSlice
                         | DeletedFinalStateUnknown[discovery.EndpointSlice]) -> None:
        s = unwrap(obj)
        key = self._service_key(s)
        if key is not None:
            self.written.seen(key, s.metadata.name)
            self.queue.add(key)

    # -- sync -------------------------------------------------------------------------------------

    def _owned_slices(self, svc: core.Service) -> list[discovery.EndpointSlice]:
        name = svc.metadata.name
        return self.slice_lister.list(
            svc.metadata.namespace,
            lambda s: s.metadata.labels.get(SERVICE_NAME_LABEL) == name
            and s.metadata.labels.get(MANAGED_BY_LABEL) == CONTROLLER_NAME)

    def _zones(self) -> dict[str, str]:
        return {n.metadata.name: n.metadata.labels[ZONE_LABEL]
                for n in self.node_lister.list() if ZONE_LABEL in n.metadata.labels}

    async def sync(self, key: str) -> None:
        namespace, name = objects.split_key(key)
        svc = self.service_lister.get(namespace, name)
        if svc is None:
            self.written.forget(key)  # its slices go with it through their owner reference (GC)
            return
        if not svc.spec.selector or objects.being_deleted(svc):
            return
        existing = self._owned_slices(svc)
        if self.written.stale(key, {s.metadata.name: s for s in existing}):
            raise StaleCache(f"endpoint slices of {key} not yet in the cache")
        pods = self.pod_lister.list(namespace, lambda p: selector_matches(svc.spec.selector, p.metadata.labels))
        desired = desired_endpoints(svc, pods, self._zones())
        plan = plan_slices(svc, desired, existing, self.max_endpoints_per_slice)
        if not plan:
            return
        try:
            await self.written.apply(self.client, key, plan)
        except errors.ApiError as e:
            if not isinstance(e, errors.Conflict | errors.AlreadyExists | errors.NotFound):
                self.recorder.event(svc, "Warning", "FailedToUpdateEndpointSlices",
                                    f"Error updating Endpoint Slices for Service {key}: {e}")
            raise
        log.info("endpoint slices synced service=%s created=%d updated=%d deleted=%d endpoints=%d", key,
                 len(plan.create), len(plan.update), len(plan.delete), sum(len(v) for v in desired.values()))

    async def run(self, stop: asyncio.Event) -> None:
        await self.controller.run(stop)
