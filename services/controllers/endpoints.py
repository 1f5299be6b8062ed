"""EndpointsController (kube-controller-manager's endpoint controller).

For every Service with a selector it maintains an Endpoints object of the same name whose subsets list
the matching pods: `addresses` (Ready) and `notReadyAddresses`, with the ports resolved per pod:
a numeric targetPort as is, a named targetPort through each pod's container ports (pods whose named
port maps to different numbers land in different subsets, as Kubernetes' RepackSubsets does), an unset
targetPort as the service port. Pods without an IP, in a terminal phase, or terminating
(deletionTimestamp) are left out; `publishNotReadyAddresses` lists every pod as ready, terminating ones
included.

Services without a selector have their Endpoints managed by users: left alone. The Endpoints object is
deleted with its Service. Pod events map to services by selector, so a readiness change is reflected
within one sync. Nothing is written when the computed object equals the stored one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from pybernetes import errors
from pybernetes.api import objects
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.objects import split_key
from pybernetes.cache import DeletedFinalStateUnknown, InformerFactory
from pybernetes.client.client import Client
from pybernetes.controller import Controller, key_of, unwrap
from pybernetes.events import EventRecorder

log = logging.getLogger("pybernetes.controllers.endpoints")

HEADLESS_LABEL = "service.kubernetes.io/headless"


def selector_matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def pod_is_ready(pod: core.Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)


def should_pod_be_in_endpoints(pod: core.Pod, include_terminating: bool) -> bool:
    if not pod.status.pod_ip:
        return False
    if pod.status.phase in ("Succeeded", "Failed"):
        return False
    return include_terminating or not pod.metadata.HasField("deletion_timestamp")


def find_port(pod: core.Pod, sp: core.ServicePort) -> int | None:
    """The pod's port number for a service port (podutil.FindPort); None when a named port is absent."""
    tp = sp.target_port
    if tp.type == 1 and tp.str_val:
        proto = sp.protocol or "TCP"
        for c in pod.spec.containers:
            for cp in c.ports:
                if cp.name == tp.str_val and (cp.protocol or "TCP") == proto:
                    return cp.container_port
        return None
    if tp.type == 1 and not tp.str_val:
        return sp.port
    return tp.int_val or sp.port


def endpoint_hostname(pod: core.Pod, svc: core.Service) -> str:
    """The hostname a pod publishes through `svc` ("" for none): a pod whose subdomain names the Service gets
    its hostname in DNS (`web-0.nginx.<ns>.svc.<domain>`), as Kubernetes' ShouldSetHostname says. Endpoints
    and EndpointSlices both use it."""
    if pod.spec.hostname and pod.spec.subdomain == svc.metadata.name \
            and pod.metadata.namespace == svc.metadata.namespace:
        return pod.spec.hostname
    return ""


def _address(pod: core.Pod, svc: core.Service) -> core.EndpointAddress:
    a = core.EndpointAddress(ip=pod.status.pod_ip, hostname=endpoint_hostname(pod, svc))
    if pod.spec.node_name:
        a.node_name = pod.spec.node_name
    ref = a.target_ref
    ref.kind, ref.namespace, ref.name, ref.uid = "Pod", pod.metadata.namespace, pod.metadata.name, pod.metadata.uid
    return a


PortKey = tuple[str, int, str, str]  # name, port, protocol, appProtocol


def compute_subsets(svc: core.Service, pods: Iterable[core.Pod]) -> list[core.EndpointSubset]:
    """The Endpoints subsets for `svc` given its selected pods, repacked and sorted canonically."""
    publish = svc.spec.publish_not_ready_addresses
    # (ready, ip, pod name) -> (address, ports)
    entries: dict[tuple[bool, str, str], tuple[core.EndpointAddress, set[PortKey]]] = {}
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, publish):
            continue
        ready = publish or pod_is_ready(pod)
        ports: set[PortKey] = set()
        if not svc.spec.ports:
            if svc.spec.cluster_ip != "None":
                continue
        else:
            found = False
            for sp in svc.spec.ports:
                num = find_port(pod, sp)
                if num is None:
                    log.debug("pod has no port for service port pod=%s/%s port=%s", pod.metadata.namespace,
                              pod.metadata.name, sp.name or sp.port)
                    continue
                found = True
                ports.add((sp.name, num, sp.protocol or "TCP", sp.app_protocol if sp.HasField("app_protocol")
                           else ""))
            if not found:
                continue
        entries[(ready, pod.status.pod_ip, pod.metadata.name)] = (_address(pod, svc), ports)

    groups: dict[tuple[PortKey, ...], tuple[list[core.EndpointAddress], list[core.EndpointAddress]]] = {}
    for (ready, _ip, _name), (addr, ports) in entries.items():
        key = tuple(sorted(ports))
        ready_list, not_ready_list = groups.setdefault(key, ([], []))
        (ready_list if ready else not_ready_list).append(addr)

    subsets: list[core.EndpointSubset] = []
    for key in sorted(groups):
        ready_list, not_ready_list = groups[key]
        s = core.EndpointSubset()
        s.addresses.extend(sorted(ready_list, key=lambda a: (a.ip, a.target_ref.name)))
        s.not_ready_addresses.extend(sorted(not_ready_list, key=lambda a: (a.ip, a.target_ref.name)))
        for name, port, proto, app in key:
            ep = s.ports.add(name=name, port=port, protocol=proto)
            if app:
                ep.app_protocol = app
        subsets.append(s)
    return subsets


def canonical(subsets: Iterable[core.EndpointSubset]) -> list[bytes]:
    return [s.SerializeToString(deterministic=True) for s in subsets]


def desired_labels(svc: core.Service) -> dict[str, str]:
    labels = dict(svc.metadata.labels)
    if svc.spec.cluster_ip == "None":
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    return labels


class EndpointsController:
    def __init__(self, client: Client, factory: InformerFactory, recorder: EventRecorder, *,
                 workers: int = 5) -> None:
        self.client = client
        self.recorder = recorder
        self.workers = workers
        self.services = factory.informer_for(core.Service)
        self.pods = factory.informer_for(core.Pod)
        self.endpoints = factory.informer_for(core.Endpoints)
        self.service_lister = self.services.lister()
        self.pod_lister = self.pods.lister()
        self.endpoints_lister = self.endpoints.lister()
        self.controller = Controller("endpoint", informers=[self.services, self.pods, self.endpoints])
        self.queue = self.controller.add_queue("endpoint", self.sync, workers=workers)
        self.services.add_event_handler(self._enqueue_obj, lambda _o, n: self._enqueue_obj(n),
                                        self._enqueue_obj)
        self.pods.add_event_handler(self._on_pod, self._on_pod_update, self._on_pod)
        self.endpoints.add_event_handler(None, None, self._enqueue_obj)

    # -- handlers ---------------------------------------------------------------------------

    def _enqueue_obj(self, obj: Any) -> None:
        self.queue.add(key_of(obj))

    def _services_for(self, pod: core.Pod) -> list[str]:
        return [objects.key(s)
                for s in self.service_lister.list(pod.metadata.namespace)
                if selector_matches(s.spec.selector, pod.metadata.labels)]

    def _on_pod(self, obj: core.Pod | DeletedFinalStateUnknown[core.Pod]) -> None:
        pod = unwrap(obj)
        for key in self._services_for(pod):
            self.queue.add(key)

    def _on_pod_update(self, old: core.Pod, new: core.Pod) -> None:
        if old.metadata.resource_version == new.metadata.resource_version:
            return
        for key in set(self._services_for(old)) | set(self._services_for(new)):
            self.queue.add(key)

    # -- sync ---------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        svc = self.service_lister.get(namespace, name)
        if svc is None:
            if self.endpoints_lister.get(namespace, name) is not None:
                try:
                    await self.client.delete(core.Endpoints, name, namespace=namespace)
                    log.info("deleted endpoints of deleted service endpoints=%s", key)
                except errors.NotFound:
                    pass
            return
        if not svc.spec.selector:
            return  # user-managed Endpoints
        if svc.metadata.HasField("deletion_timestamp"):
            return
        pods = self.pod_lister.list(namespace, lambda p: selector_matches(svc.spec.selector, p.metadata.labels))
        subsets = compute_subsets(svc, pods)
        labels = desired_labels(svc)
        current = self.endpoints_lister.get(namespace, name)
        if current is not None and canonical(current.subsets) == canonical(subsets) \
                and dict(current.metadata.labels) == labels:
            return
        if current is None:
            ep = core.Endpoints()
            ep.metadata.name, ep.metadata.namespace = name, namespace
            ep.metadata.labels.update(labels)
            ep.subsets.extend(subsets)
            try:
                await self.client.create(ep)
            except errors.AlreadyExists:
                raise  # the cache lags: retried through the queue
            except errors.ApiError as e:
                self.recorder.event(svc, "Warning", "FailedToCreateEndpoint",
                                    f"Failed to create endpoint for service {key}: {e}")
                raise
        else:
            ep = core.Endpoints()
            ep.CopyFrom(current)
            ep.metadata.labels.clear()
            ep.metadata.labels.update(labels)
            del ep.subsets[:]
            ep.subsets.extend(subsets)
            try:
                await self.client.update(ep)
            except errors.Conflict:
                raise
            except errors.ApiError as e:
                self.recorder.event(svc, "Warning", "FailedToUpdateEndpoint",
                                    f"Failed to update endpoint {key}: {e}")
                raise
        ready = sum(len(s.addresses) for s in subsets)
        not_ready = sum(len(s.not_ready_addresses) for s in subsets)
        log.info("endpoints synced endpoints=%s ready=%d not_ready=%d", key, ready, not_ready)

    async def run(self, stop: asyncio.Event) -> None:
        await self.controller.run(stop)
