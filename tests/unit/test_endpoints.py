"""Endpoints computation: ready / not-ready, named ports, terminating pods, repacking; sync writes."""

from __future__ import annotations

from typing import Any, cast

from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.cache import InformerFactory
from pybernetes.events import EventRecorder
from services.controllers.endpoints import EndpointsController, compute_subsets, find_port


def svc(ports: list[tuple[str, int, int | str]], *, publish: bool = False, headless: bool = False) -> core.Service:
    s = core.Service()
    s.metadata.name, s.metadata.namespace = "web", "default"
    s.metadata.labels["app"] = "web"
    s.spec.selector["app"] = "web"
    s.spec.publish_not_ready_addresses = publish
    if headless:
        s.spec.cluster_ip = "None"
    for name, port, target in ports:
        sp = s.spec.ports.add(name=name, port=port, protocol="TCP")
        if isinstance(target, str):
            sp.target_port.type, sp.target_port.str_val = 1, target
        else:
            sp.target_port.int_val = target
    return s


def pod(name: str, ip: str, *, ready: bool = True, http: int = 8080, terminating: bool = False,
        labels: dict[str, str] | None = None, phase: str = "Running") -> core.Pod:
    p = core.Pod()
    p.metadata.name, p.metadata.namespace, p.metadata.uid = name, "default", f"uid-{name}"
    p.metadata.labels.update(labels if labels is not None else {"app": "web"})
    if terminating:
        p.metadata.deletion_timestamp.seconds = 1
    p.spec.node_name = "node-1"
    c = p.spec.containers.add(name="c", image="x")
    c.ports.add(name="http", container_port=http, protocol="TCP")
    p.status.phase = phase
    p.status.pod_ip = ip
    p.status.conditions.add(type="Ready", status="True" if ready else "False")
    return p


def addrs(s: core.EndpointSubset) -> tuple[list[str], list[str]]:
    return [a.ip for a in s.addresses], [a.ip for a in s.not_ready_addresses]


def test_ready_and_not_ready_with_numeric_port() -> None:
    subsets = compute_subsets(svc([("", 80, 8080)]), [
        pod("b", "10.0.0.2"), pod("a", "10.0.0.1"), pod("c", "10.0.0.3", ready=False),
        pod("noip", ""), pod("gone", "10.0.0.9", terminating=True), pod("done", "10.0.0.8", phase="Succeeded"),
    ])
    assert len(subsets) == 1
    assert addrs(subsets[0]) == (["10.0.0.1", "10.0.0.2"], ["10.0.0.3"])
    assert [(p.name, p.port, p.protocol) for p in subsets[0].ports] == [("", 8080, "TCP")]
    a = subsets[0].addresses[0]
    assert a.node_name == "node-1" and a.target_ref.kind == "Pod" and a.target_ref.name == "a"
    assert a.target_ref.uid == "uid-a"


def test_named_port_splits_subsets_by_number() -> None:
    subsets = compute_subsets(svc([("web", 80, "http")]), [
        pod("a", "10.0.0.1", http=8080), pod("b", "10.0.0.2", http=9090), pod("c", "10.0.0.3", http=8080),
    ])
    assert [(addrs(s), [p.port for p in s.ports]) for s in subsets] == [
        ((["10.0.0.1", "10.0.0.3"], []), [8080]), ((["10.0.0.2"], []), [9090])]
    assert subsets[0].ports[0].name == "web"


def test_missing_named_port_excludes_pod_and_multiple_ports() -> None:
    s = svc([("web", 80, "http"), ("metrics", 9100, "metrics")])
    p = pod("a", "10.0.0.1")
    assert find_port(p, s.spec.ports[1]) is None
    subsets = compute_subsets(s, [p])
    assert [(x.name, x.port) for x in subsets[0].ports] == [("web", 8080)]
    subsets = compute_subsets(svc([("a", 80, 8080), ("b", 81, 0)]), [p])
    assert sorted((x.name, x.port) for x in subsets[0].ports) == [("a", 8080), ("b", 81)]


def test_publish_not_ready_includes_terminating_as_ready() -> None:
    subsets = compute_subsets(svc([("", 80, 8080)], publish=True), [
        pod("a", "10.0.0.1", ready=False), pod("b", "10.0.0.2", terminating=True)])
    assert addrs(subsets[0]) == (["10.0.0.1", "10.0.0.2"], [])


def test_headless_without_ports() -> None:
    assert compute_subsets(svc([]), [pod("a", "10.0.0.1")]) == []
    subsets = compute_subsets(svc([], headless=True), [pod("a", "10.0.0.1")])
    assert addrs(subsets[0]) == (["10.0.0.1"], []) and not subsets[0].ports


def test_hostname_only_for_pods_whose_subdomain_is_the_service() -> None:
    a, b = pod("web-0", "10.0.0.1"), pod("other", "10.0.0.2")
    a.spec.hostname, a.spec.subdomain = "web-0", "web"
    b.spec.hostname, b.spec.subdomain = "other", "elsewhere"
    subsets = compute_subsets(svc([], headless=True), [a, b])
    assert [(x.ip, x.hostname) for x in subsets[0].addresses] == [("10.0.0.1", "web-0"), ("10.0.0.2", "")]


class FakeClient:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.store: Any = None

    async def create(self, obj: Any) -> Any:
        self.calls.append(f"create {obj.metadata.name}")
        new = type(obj)()
        new.CopyFrom(obj)
        new.metadata.resource_version = "1"
        self.store.add(new)
        return new

    async def update(self, obj: Any) -> Any:
        self.calls.append(f"update {obj.metadata.name}")
        self.store.add(obj)
        return obj

    async def delete(self, cls: type[Any], name: str, *, namespace: str = "") -> Any:
        self.calls.append(f"delete {name}")
        self.store.delete_key(f"{namespace}/{name}")
        return None, True


class FakeRecorder:
    def event(self, *a: Any) -> None:
        pass


async def test_sync_creates_updates_only_on_change_and_deletes() -> None:
    client = FakeClient()
    ctl = EndpointsController(cast(Any, client), InformerFactory(cast(Any, client)),
                              cast(EventRecorder, FakeRecorder()))
    client.store = ctl.endpoints.store
    ctl.services.store.add(svc([("", 80, 8080)]))
    ctl.pods.store.add(pod("a", "10.0.0.1"))
    ctl.pods.store.add(pod("other", "10.0.0.7", labels={"app": "db"}))
    await ctl.sync("default/web")
    await ctl.sync("default/web")
    assert client.calls == ["create web"]
    ep = ctl.endpoints_lister.get("default", "web")
    assert ep is not None and addrs(ep.subsets[0]) == (["10.0.0.1"], [])
    assert dict(ep.metadata.labels) == {"app": "web"}
    # readiness change -> pod handler maps the pod to the service
    old = ctl.pod_lister.get("default", "a")
    assert old is not None
    new = pod("a", "10.0.0.1", ready=False)
    new.metadata.resource_version = "2"
    ctl.pods.store.add(new)
    ctl._on_pod_update(old, new)
    assert len(ctl.queue) == 1
    await ctl.sync("default/web")
    ep = ctl.endpoints_lister.get("default", "web")
    assert ep is not None and addrs(ep.subsets[0]) == ([], ["10.0.0.1"])
    assert client.calls == ["create web", "update web"]
    # service without selector: its endpoints are left alone
    manual = svc([("", 80, 80)])
    manual.metadata.name = "manual"
    manual.spec.selector.clear()
    ctl.services.store.add(manual)
    await ctl.sync("default/manual")
    assert client.calls == ["create web", "update web"]
    # service deleted -> endpoints deleted
    ctl.services.store.delete_key("default/web")
    await ctl.sync("default/web")
    assert client.calls[-1] == "delete web"


def test_statefulset_pods_are_published_by_hostname() -> None:
    """A pod whose subdomain names the service (a StatefulSet's) carries its hostname, for DNS."""
    web0, other = pod("web-0", "10.244.1.2"), pod("web-1", "10.244.1.3")
    web0.spec.hostname, web0.spec.subdomain = "web-0", "web"
    other.spec.hostname, other.spec.subdomain = "web-1", "elsewhere"
    [subset] = compute_subsets(svc([("http", 80, "http")], headless=True), [web0, other])
    assert [(a.ip, a.hostname) for a in subset.addresses] == [("10.244.1.2", "web-0"), ("10.244.1.3", "")]
