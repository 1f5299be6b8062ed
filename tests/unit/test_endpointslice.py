"""EndpointSlice computation and sync: conditions, hostname, grouping by ports, 100 per slice, idempotence,
the placeholder, a lagging cache, slices of other managers."""

from __future__ import annotations

import itertools
from typing import Any, cast

import pytest

from pbctl.printers import headers_for, row_for
from pybernetes.api import kinds
from pybernetes.api.discovery.v1 import discovery_pb2 as discovery
from pybernetes.api.endpointslices import MANAGED_BY_LABEL, SERVICE_NAME_LABEL
from pybernetes.cache import InformerFactory
from pybernetes.events import EventRecorder
from services.controllers.endpointslice import (
    CONTROLLER_NAME,
    EndpointSliceController,
    StaleCache,
    desired_endpoints,
)
from tests.unit.test_endpoints import FakeRecorder, pod, svc


class FakeClient:
    """Writes go straight into the informer's store (or nowhere, to play a lagging cache)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.store: Any = None
        self.lagging = False
        self._rv = itertools.count(1)
        self._suffix = itertools.count(1)
        self.written: list[Any] = []

    def _stored(self, obj: Any) -> Any:
        obj.metadata.resource_version = str(next(self._rv))
        self.written.append(obj)
        if not self.lagging:
            self.store.add(obj)
        return obj

    async def create(self, obj: Any) -> Any:
        new = type(obj)()
        new.CopyFrom(obj)
        if not new.metadata.name:
            new.metadata.name = f"{obj.metadata.generate_name}{next(self._suffix):05d}"
        self.calls.append(f"create {new.metadata.name}")
        return self._stored(new)

    async def update(self, obj: Any) -> Any:
        self.calls.append(f"update {obj.metadata.name}")
        return self._stored(obj)

    async def delete(self, cls: type[Any], name: str, *, namespace: str = "") -> Any:
        self.calls.append(f"delete {name}")
        self.store.delete_key(f"{namespace}/{name}")
        return None, True


def controller(max_per_slice: int = 100) -> tuple[EndpointSliceController, FakeClient]:
    client = FakeClient()
    ctl = EndpointSliceController(cast(Any, client), InformerFactory(cast(Any, client)),
                                  cast(EventRecorder, FakeRecorder()), max_endpoints_per_slice=max_per_slice)
    client.store = ctl.slices.store
    s = svc([("http", 80, "http")])
    s.metadata.uid = "svc-uid"
    ctl.services.store.add(s)
    return ctl, client


def slices(ctl: EndpointSliceController) -> list[discovery.EndpointSlice]:
    return sorted(ctl.slice_lister.list("default"), key=lambda s: s.metadata.name)


def conditions(ep: discovery.Endpoint) -> tuple[bool, bool, bool]:
    c = ep.conditions
    return c.ready, c.serving, c.terminating


def test_conditions_as_kubernetes_computes_them() -> None:
    pods = [pod("a", "10.0.0.1"), pod("b", "10.0.0.2", ready=False), pod("c", "10.0.0.3", terminating=True),
            pod("noip", ""), pod("done", "10.0.0.9", phase="Succeeded")]
    [(group, eps)] = desired_endpoints(svc([("http", 80, "http")]), pods).items()
    assert group == ("IPv4", (("http", 8080, "TCP", ""),))
    assert [(e.addresses[0], conditions(e)) for e in eps] == [
        ("10.0.0.1", (True, True, False)), ("10.0.0.2", (False, False, False)), ("10.0.0.3", (False, True, True))]
    for e in eps:
        assert e.conditions.HasField("ready") and e.conditions.HasField("serving")
    [eps] = desired_endpoints(svc([("http", 80, "http")], publish=True), pods).values()
    assert [e.conditions.ready for e in eps] == [True, True, True]


def test_hostname_node_zone_and_target_ref() -> None:
    a = pod("web-0", "10.0.0.1")
    a.spec.hostname, a.spec.subdomain = "web-0", "web"
    b = pod("other", "10.0.0.2")
    b.spec.hostname, b.spec.subdomain = "other", "elsewhere"
    [eps] = desired_endpoints(svc([], headless=True), [a, b], {"node-1": "zone-a"}).values()
    assert [(e.hostname if e.HasField("hostname") else None) for e in eps] == ["web-0", None]
    e = eps[0]
    assert e.node_name == "node-1" and e.zone == "zone-a"
    assert (e.target_ref.kind, e.target_ref.namespace, e.target_ref.name, e.target_ref.uid) == \
        ("Pod", "default", "web-0", "uid-web-0")


def test_named_ports_resolving_differently_split_slices() -> None:
    groups = desired_endpoints(svc([("web", 80, "http")]), [pod("a", "10.0.0.1", http=8080),
                                                           pod("b", "10.0.0.2", http=9090)])
    assert sorted(g[1][0][1] for g in groups) == [8080, 9090]


async def test_sync_is_idempotent_and_follows_readiness() -> None:
    ctl, client = controller()
    ctl.pods.store.add(pod("a", "10.0.0.1"))
    ctl.pods.store.add(pod("b", "10.0.0.2", ready=False))
    ctl.pods.store.add(pod("other", "10.0.0.7", labels={"app": "db"}))
    await ctl.sync("default/web")
    await ctl.sync("default/web")
    assert client.calls == ["create web-00001"]
    [s] = slices(ctl)
    assert s.address_type == "IPv4" and s.metadata.generate_name == "web-"
    assert dict(s.metadata.labels) == {"app": "web", SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: CONTROLLER_NAME}
    [owner] = s.metadata.owner_references
    assert (owner.api_version, owner.kind, owner.name, owner.uid, owner.controller, owner.block_owner_deletion) \
        == ("v1", "Service", "web", "svc-uid", True, True)
    assert [(p.name, p.port, p.protocol) for p in s.ports] == [("http", 8080, "TCP")]
    assert [(e.addresses[0], e.conditions.ready) for e in s.endpoints] == [("10.0.0.1", True), ("10.0.0.2", False)]
    # b turns ready: the pod handler maps it to the service, the same slice is updated once
    old = ctl.pod_lister.get("default", "b")
    assert old is not None
    new = pod("b", "10.0.0.2")
    new.metadata.resource_version = "2"
    ctl.pods.store.add(new)
    ctl._on_pod_update(old, new)
    assert len(ctl.queue) == 1
    await ctl.sync("default/web")
    await ctl.sync("default/web")
    assert client.calls == ["create web-00001", "update web-00001"]
    assert [e.conditions.ready for e in slices(ctl)[0].endpoints] == [True, True]


async def test_placeholder_when_no_endpoints() -> None:
    ctl, client = controller()
    await ctl.sync("default/web")
    await ctl.sync("default/web")
    [s] = slices(ctl)
    assert client.calls == ["create web-00001"] and not s.endpoints and not s.ports
    ctl.pods.store.add(pod("a", "10.0.0.1"))
    await ctl.sync("default/web")
    [s] = slices(ctl)
    assert [e.addresses[0] for e in s.endpoints] == ["10.0.0.1"] and len(s.ports) == 1
    assert client.calls[1:] == ["create web-00002", "delete web-00001"]
    ctl.pods.store.delete_key("default/a")
    await ctl.sync("default/web")
    await ctl.sync("default/web")
    [s] = slices(ctl)
    assert not s.endpoints and client.calls[3:] == ["create web-00003", "delete web-00002"]


async def test_at_most_max_endpoints_per_slice_and_stable_placement() -> None:
    ctl, client = controller()
    for i in range(250):
        ctl.pods.store.add(pod(f"p{i:03d}", f"10.0.{i // 200}.{i % 200 + 1}"))
    await ctl.sync("default/web")
    assert sorted(len(s.endpoints) for s in slices(ctl)) == [50, 100, 100]
    assert len(client.calls) == 3
    await ctl.sync("default/web")
    assert len(client.calls) == 3
    # one pod goes: only its slice is rewritten; a new pod fills the room it left
    ctl.pods.store.delete_key("default/p000")
    await ctl.sync("default/web")
    assert client.calls[3:] == ["update web-00001"]
    ctl.pods.store.add(pod("new", "10.0.9.9"))
    await ctl.sync("default/web")
    assert len(client.calls) == 5 and client.calls[4].startswith("update ")
    assert sum(len(s.endpoints) for s in slices(ctl)) == 250
    assert all(len(s.endpoints) <= 100 for s in slices(ctl))


async def test_lagging_cache_never_creates_a_second_slice() -> None:
    ctl, client = controller()
    ctl.pods.store.add(pod("a", "10.0.0.1"))
    client.lagging = True
    await ctl.sync("default/web")
    with pytest.raises(StaleCache):
        await ctl.sync("default/web")
    assert client.calls == ["create web-00001"]
    # the informer delivers the slice: the next sync writes nothing
    ctl.slices.store.add(client.written[0])
    await ctl.sync("default/web")
    assert client.calls == ["create web-00001"]
    # a write the cache never confirms (deleted by someone else meanwhile) does not block the Service forever
    ctl.written.wrote("default/web", "web-gone", 99)
    ctl.written.max_age = 0.0
    await ctl.sync("default/web")


async def test_slices_of_other_managers_and_selectorless_services_are_left_alone() -> None:
    ctl, client = controller()
    mine = discovery.EndpointSlice(address_type="IPv4")
    mine.metadata.name, mine.metadata.namespace = "web-custom", "default"
    mine.metadata.labels[SERVICE_NAME_LABEL] = "web"
    mine.metadata.labels[MANAGED_BY_LABEL] = "someone-else"
    ctl.slices.store.add(mine)
    ctl.pods.store.add(pod("a", "10.0.0.1"))
    await ctl.sync("default/web")
    assert client.calls == ["create web-00001"]
    assert ctl.slice_lister.get("default", "web-custom") is not None
    manual = svc([("", 80, 80)])
    manual.metadata.name = "manual"
    manual.spec.selector.clear()
    ctl.services.store.add(manual)
    await ctl.sync("default/manual")
    # a deleted Service: nothing to do here, its slices go through their owner reference
    ctl.services.store.delete_key("default/web")
    await ctl.sync("default/web")
    assert client.calls == ["create web-00001"]


def test_pbctl_get_columns() -> None:
    info = kinds.lookup("endpointslices")
    assert info is not None and info.group == "discovery.k8s.io" and not info.short_names
    assert headers_for(info) == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    s = discovery.EndpointSlice(address_type="IPv4")
    s.metadata.name = "web-abcde"
    for i in range(5):
        s.endpoints.add(addresses=[f"10.0.0.{i + 1}"])
    s.ports.add(name="http", port=8080, protocol="TCP")
    s.ports.add(name="all", protocol="TCP")
    row = row_for(info, s, 0.0)
    assert row[:4] == ["web-abcde", "IPv4", "8080,all", "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more..."]
    assert row_for(info, discovery.EndpointSlice(address_type="IPv4"), 0.0)[1:4] == ["IPv4", "<unset>", "<unset>"]
