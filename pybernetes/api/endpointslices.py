"""EndpointSlice conventions and the per-Service view of slices their consumers keep.

The labels tie a slice to its Service (`kubernetes.io/service-name`) and to the controller that manages it
(`endpointslice.kubernetes.io/managed-by`); the conditions' unset values mean what discovery/v1 says (an unknown
`ready` is ready, an unknown `serving` is `ready`). `SliceCache` groups the slices an informer delivers by Service
key (kube-proxy's EndpointSliceCache, in part). Callers: services/controllers/endpointslice.py (the labels),
pb-proxy (netproxy.model) and pb-dns (clusterdns.zone) when they read slices instead of Endpoints.
"""

from __future__ import annotations

from pybernetes.api import objects
from pybernetes.api.discovery.v1 import discovery_pb2 as discovery

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"

# How the consumers read endpoints: --endpoint-source of pb-proxy and pb-dns.
ENDPOINTSLICES = "endpointslices"
ENDPOINTS = "endpoints"
SOURCES = (ENDPOINTSLICES, ENDPOINTS)


def service_key(s: discovery.EndpointSlice) -> str | None:
    """The key of the Service a slice belongs to (None for a slice without the label)."""
    name = s.metadata.labels.get(SERVICE_NAME_LABEL, "")
    return objects.key_for(s.metadata.namespace, name) if name else None


def is_ready(ep: discovery.Endpoint) -> bool:
    return not ep.conditions.HasField("ready") or ep.conditions.ready


def is_serving(ep: discovery.Endpoint) -> bool:
    return ep.conditions.serving if ep.conditions.HasField("serving") else is_ready(ep)


def is_terminating(ep: discovery.Endpoint) -> bool:
    return ep.conditions.HasField("terminating") and ep.conditions.terminating


class SliceCache:
    """The current slices of every Service, by Service key."""

    def __init__(self) -> None:
        self._by_service: dict[str, dict[str, discovery.EndpointSlice]] = {}
        self._service_of: dict[str, str] = {}  # slice key -> service key

    def update(self, s: discovery.EndpointSlice) -> set[str]:
        """Record a slice; returns the Service keys whose slices changed (two when its label moved)."""
        changed = self.delete(s)
        key = service_key(s)
        if key is not None:
            self._by_service.setdefault(key, {})[s.metadata.name] = s
            self._service_of[objects.key(s)] = key
            changed.add(key)
        return changed

    def delete(self, s: discovery.EndpointSlice) -> set[str]:
        key = self._service_of.pop(objects.key(s), None)
        if key is None:
            return set()
        slices = self._by_service.get(key, {})
        slices.pop(s.metadata.name, None)
        if not slices:
            self._by_service.pop(key, None)
        return {key}

    def slices(self, key: str) -> list[discovery.EndpointSlice]:
        return [s for _, s in sorted(self._by_service.get(key, {}).items())]
