"""EndpointSliceMirroringController (kube-controller-manager's endpointslicemirroring controller).

A Service without a selector gets no endpoints from the endpoint controllers: its user writes the Endpoints
object. This controller mirrors such user-managed Endpoints into EndpointSlices, so every consumer of slices
(pb-proxy and pb-dns with --endpoint-source=endpointslices) sees them as Kubernetes' do.

An Endpoints object is mirrored when a Service of its name exists without a selector, the Endpoints does not
carry the label `endpointslice.kubernetes.io/skip-mirror: "true"` and is not a leader-election record (the
annotation `control-plane.alpha.kubernetes.io/leader`). Its subsets' addresses (ready) and notReadyAddresses
(not ready) become endpoints (address, ready condition, hostname, nodeName, targetRef), grouped by address
type and port list, one slice per group, at most --mirroring-max-endpoints-subset-size (1000) addresses per
subset; invalid IPs are skipped with an InvalidIPAddress event and the excess with TooManyAddressesToMirror.
Each slice is named `<endpoints>-<random5>` (generateName), carries the Endpoints' labels plus
`kubernetes.io/service-name: <name>` and `endpointslice.kubernetes.io/managed-by:
endpointslicemirroring-controller.k8s.io`, its annotations but `endpoints.kubernetes.io/last-change-trigger-time`
and kubectl's last-applied-configuration, and is owned by the Endpoints (the garbage collector deletes it with
it). Once the Endpoints, or the Service goes, the Service gains a selector or the Endpoints stops being
mirrored, the mirrored slices are deleted. Only slices labelled managed-by this controller are touched.
A slice is rewritten only when what it would hold differs; writes not yet in the cache make the sync retry
(the endpointslice controller's SliceWrites), so a lagging cache never creates a second slice.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from pybernetes.api import objects
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.discovery.v1 import discovery_pb2 as discovery
from pybernetes.api.endpointslices import MANAGED_BY_LABEL, SERVICE_NAME_LABEL, service_key
from pybernetes.cache import DeletedFinalStateUnknown, InformerFactory
from pybernetes.client.client import Client
from pybernetes.controller import Controller, key_of, unwrap
from pybernetes.events import EventRecorder
from services.controllers.controller_utils import new_controller_ref
from services.controllers.endpointslice import Group, SlicePlan, SliceWrites, StaleCache, slice_group

log = logging.getLogger("pybernetes.controllers.endpointslicemirroring")

CONTROLLER_NAME = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
# Annotations a mirrored slice does not copy (Kubernetes' list).
UNMIRRORED_ANNOTATIONS = ("endpoints.kubernetes.io/last-change-trigger-time",
                          "kubectl.kubernetes.io/last-applied-configuration")
MAX_ENDPOINTS_PER_SUBSET = 1000


def should_mirror(ep: core.Endpoints | None) -> bool:
    """Not skipped by label and not a leader-election record (whether the Service fits is checked apart)."""
    return ep is not None and ep.metadata.labels.get(SKIP_MIRROR_LABEL) != "true" \
        and LEADER_ANNOTATION not in ep.metadata.annotations


def _address_endpoint(a: core.EndpointAddress, ready: bool) -> tuple[str, discovery.Endpoint] | None:
    """(addressType, endpoint) of one Endpoints address; None for an invalid IP."""
    try:
        ip = ipaddress.ip_address(a.ip.strip())
    except ValueError:
        return None
    e = discovery.Endpoint(addresses=[str(ip)])
    e.conditions.ready = ready
    if a.hostname:
        e.hostname = a.hostname
    if a.HasField("node_name"):
        e.node_name = a.node_name
    if a.HasField("target_ref"):
        e.target_ref.CopyFrom(a.target_ref)
    return ("IPv6" if ip.version == 6 else "IPv4"), e


@dataclass
class Desired:
    """The endpoints each (addressType, ports) group should hold, and what was left out."""

    groups: dict[Group, list[discovery.Endpoint]] = field(default_factory=dict)
    invalid: int = 0
    skipped: int = 0  # beyond the per-subset maximum


def desired_endpoints(ep: core.Endpoints, max_per_subset: int = MAX_ENDPOINTS_PER_SUBSET) -> Desired:
    """Every subset's addresses by group, ready ones first, an address once per group (the first wins)."""
    out = Desired()
    seen: dict[Group, set[str]] = {}
    for subset in ep.subsets:
        ports = tuple((p.name, p.port, p.protocol or "TCP", p.app_protocol if p.HasField("app_protocol") else "")
                      for p in subset.ports)
        added = 0
        for a, ready in [(a, True) for a in subset.addresses] + [(a, False) for a in subset.not_ready_addresses]:
            if added >= max_per_subset:
                out.skipped += 1
                continue
            found = _address_endpoint(a, ready)
            if found is None:
                out.invalid += 1
                continue
            added += 1
            group = (found[0], ports)
            if found[1].addresses[0] in seen.setdefault(group, set()):
                continue
            seen[group].add(found[1].addresses[0])
            out.groups.setdefault(group, []).append(found[1])
    for eps in out.groups.values():
        eps.sort(key=lambda e: e.addresses[0])
        del eps[max_per_subset:]
    return out


def mirrored_labels(ep: core.Endpoints) -> dict[str, str]:
    labels = dict(ep.metadata.labels)
    labels[SERVICE_NAME_LABEL] = ep.metadata.name
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


def mirrored_annotations(ep: core.Endpoints) -> dict[str, str]:
    return {k: v for k, v in ep.metadata.annotations.items() if k not in UNMIRRORED_ANNOTATIONS}


def mirrored_slice(ep: core.Endpoints, group: Group, eps: Sequence[discovery.Endpoint],
                   base: discovery.EndpointSlice | None = None) -> discovery.EndpointSlice:
    """The slice holding `eps`: a new one (generateName) or `base` rewritten under its name."""
    s = discovery.EndpointSlice()
    if base is not None:
        s.metadata.CopyFrom(base.metadata)
    else:
        s.metadata.generate_name = f"{ep.metadata.name}-"
        s.metadata.namespace = ep.metadata.namespace
    s.metadata.labels.clear()
    s.metadata.labels.update(mirrored_labels(ep))
    s.metadata.annotations.clear()
    s.metadata.annotations.update(mirrored_annotations(ep))
    del s.metadata.owner_references[:]
    s.metadata.owner_references.append(new_controller_ref(ep))
    s.address_type = group[0]
    for name, port, proto, app in group[1]:
        p = s.ports.add(name=name, port=port, protocol=proto)
        if app:
            p.app_protocol = app
    s.endpoints.extend(eps)
    return s


def _content(s: discovery.EndpointSlice) -> tuple[object, ...]:
    """What mirroring decides about a slice (not its name, resourceVersion or other metadata)."""
    return (dict(s.metadata.labels), dict(s.metadata.annotations), list(s.metadata.owner_references),
            slice_group(s), sorted(e.SerializeToString(deterministic=True) for e in s.endpoints))


def plan_mirror(ep: core.Endpoints, desired: dict[Group, list[discovery.Endpoint]],
                existing: Sequence[discovery.EndpointSlice]) -> SlicePlan:
    """One slice per group: the first existing slice of the group is kept (rewritten when it differs), the
    others and those of groups no longer desired are deleted; a deleted slice is reused for a new group of
    the same address type instead (Kubernetes' recycleSlices)."""
    plan = SlicePlan()
    by_group: dict[Group, list[discovery.EndpointSlice]] = {}
    for s in sorted(existing, key=lambda x: x.metadata.name):
        by_group.setdefault(slice_group(s), []).append(s)
    spare: list[discovery.EndpointSlice] = []
    new_groups: list[Group] = []
    for group, eps in sorted(desired.items()):
        slices = by_group.pop(group, [])
        if not eps:
            spare.extend(slices)
            continue
        if not slices:
            new_groups.append(group)
            continue
        spare.extend(slices[1:])
        want = mirrored_slice(ep, group, eps, slices[0])
        if _content(want) != _content(slices[0]):
            plan.update.append(want)
    for slices in by_group.values():
        spare.extend(slices)
    for group in new_groups:
        reuse = next((s for s in spare if s.address_type == group[0]), None)
        if reuse is not None:
            spare.remove(reuse)
            plan.update.append(mirrored_slice(ep, group, desired[group], reuse))
        else:
            plan.create.append(mirrored_slice(ep, group, desired[group]))
    plan.delete.extend(s.metadata.name for s in spare)
    return plan


class EndpointSliceMirroringController:
    def __init__(self, client: Client, factory: InformerFactory, recorder: EventRecorder, *, workers: int = 5,
                 max_endpoints_per_subset: int = MAX_ENDPOINTS_PER_SUBSET) -> None:
        self.client = client
        self.recorder = recorder
        self.max_endpoints_per_subset = max_endpoints_per_subset
        self.services = factory.informer_for(core.Service)
        self.endpoints = factory.informer_for(core.Endpoints)
        self.slices = factory.informer_for(discovery.EndpointSlice)
        self.service_lister = self.services.lister()
        self.endpoints_lister = self.endpoints.lister()
        self.slice_lister = self.slices.lister()
        self.written = SliceWrites()
        self.controller = Controller("endpointslicemirroring", informers=[self.services, self.endpoints, self.slices])
        self.queue = self.controller.add_queue("endpointslicemirroring", self.sync, workers=workers)
        self.services.add_event_handler(self._on_service, self._on_service_update, self._on_service)
        self.endpoints.add_event_handler(self._on_endpoints, self._on_endpoints_update, self._on_endpoints)
        self.slices.add_event_handler(self._on_slice, self._on_slice_update, self._on_slice_delete)

    async def run(self, stop: asyncio.Event) -> None:
        await self.controller.run(stop)

    # -- handlers ---------------------------------------------------------------------------------

    def _on_service(self, obj: core.Service | DeletedFinalStateUnknown[core.Service]) -> None:
        svc = unwrap(obj)
        if not svc.spec.selector:
            self.queue.add(key_of(svc))

    def _on_service_update(self, old: core.Service, new: core.Service) -> None:
        if bool(old.spec.selector) != bool(new.spec.selector):
            self.queue.add(key_of(new))

    def _on_endpoints(self, obj: core.Endpoints | DeletedFinalStateUnknown[core.Endpoints]) -> None:
        ep = unwrap(obj)
        if should_mirror(ep):
            self.queue.add(key_of(ep))

    def _on_endpoints_update(self, old: core.Endpoints, new: core.Endpoints) -> None:
        if should_mirror(old) or should_mirror(new):
            self.queue.add(key_of(new))

    @staticmethod
    def _mirrored_key(s: discovery.EndpointSlice) -> str | None:
        return service_key(s) if s.metadata.labels.get(MANAGED_BY_LABEL) == CONTROLLER_NAME else None

    def _on_slice(self, s: discovery.EndpointSlice) -> None:
        key = self._mirrored_key(s)
        if key is not None:
            self.queue.add(key)

    def _on_slice_update(self, old: discovery.EndpointSlice, new: discovery.EndpointSlice) -> None:
        # a slice that changed Service or manager (users may relabel) concerns both sides
        for key in {self._mirrored_key(old), self._mirrored_key(new)} - {None}:
            self.queue.add(str(key))

    def _on_slice_delete(self, obj: discovery.EndpointSlice
                         | DeletedFinalStateUnknown[discovery.EndpointSlice]) -> None:
        s = unwrap(obj)
        key = self._mirrored_key(s)
        if key is not None:
            self.written.seen(key, s.metadata.name)
            self.queue.add(key)

    # -- sync -------------------------------------------------------------------------------------

    def _mirrored_slices(self, namespace: str, name: str) -> list[discovery.EndpointSlice]:
        return self.slice_lister.list(namespace, lambda s: s.metadata.labels.get(SERVICE_NAME_LABEL) == name
                                      and s.metadata.labels.get(MANAGED_BY_LABEL) == CONTROLLER_NAME)

    async def sync(self, key: str) -> None:
        namespace, name = objects.split_key(key)
        ep = self.endpoints_lister.get(namespace, name)
        svc = self.service_lister.get(namespace, name)
        existing = self._mirrored_slices(namespace, name)
        if ep is None or not should_mirror(ep) or svc is None or svc.spec.selector:
            self.written.forget(key)
            if existing:
                log.info("mirrored endpoint slices removed endpoints=%s slices=%d", key, len(existing))
                await self.written.apply(self.client, key, SlicePlan(delete=[s.metadata.name for s in existing]))
            return
        if self.written.stale(key, {s.metadata.name: s for s in existing}):
            raise StaleCache(f"mirrored endpoint slices of {key} not yet in the cache")
        desired = desired_endpoints(ep, self.max_endpoints_per_subset)
        if desired.invalid:
            self.recorder.event(ep, "Warning", "InvalidIPAddress",
                                f"Skipped {desired.invalid} invalid IP addresses when mirroring to EndpointSlices")
        if desired.skipped:
            self.recorder.event(ep, "Warning", "TooManyAddressesToMirror",
                                f"A max of {self.max_endpoints_per_subset} addresses can be mirrored to "
                                f"EndpointSlices per Endpoints subset. {desired.skipped} addresses were skipped")
        plan = plan_mirror(ep, desired.groups, existing)
        if objects.being_deleted(ep):
            plan.create.clear()  # no new slices for an Endpoints on its way out
        if not plan:
            return
        await self.written.apply(self.client, key, plan)
        log.info("endpoint slices mirrored endpoints=%s created=%d updated=%d deleted=%d endpoints=%d", key,
                 len(plan.create), len(plan.update), len(plan.delete), sum(len(v) for v in desired.groups.values()))
