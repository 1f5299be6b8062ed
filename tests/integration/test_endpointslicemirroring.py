"""The endpointslicemirroring controller against a real apiserver and etcd, run by the controller manager.

A Service without a selector and the Endpoints its user writes get a mirrored EndpointSlice (labels, annotations
but the unmirrored ones, ports, ready and not-ready addresses, owner); it follows the Endpoints' changes in
place; a Service with a selector, or an Endpoints labelled skip-mirror, gets none; the slices go when the
Endpoints is deleted or the Service gains a selector. (Invalid IPs, which the apiserver refuses, are
tests/unit/test_endpointslicemirroring.py's.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from pybernetes.api import codec
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.discovery.v1 import discovery_pb2 as discovery
from pybernetes.client.client import Client
from services.controllers.main import ControllerManager
from tests.helpers import eventually
from tests.integration.conftest import ApiServer
from tests.integration.test_controller_manager import manager_config, running

MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
MIRRORING = "endpointslicemirroring-controller.k8s.io"


def service(name: str, selector: dict[str, str] | None = None) -> core.Service:
    spec: dict[str, Any] = {"ports": [{"name": "db", "port": 5432}]}
    if selector:
        spec["selector"] = selector
    return codec.from_dict({"metadata": {"name": name, "namespace": "default"}, "spec": spec}, core.Service)


def endpoints(name: str, ready: list[str], not_ready: list[str] = (), *, labels: dict[str, str] | None = None,
              annotations: dict[str, str] | None = None) -> core.Endpoints:
    return codec.from_dict({
        "metadata": {"name": name, "namespace": "default", "labels": labels or {}, "annotations": annotations or {}},
        "subsets": [{"addresses": [{"ip": ip, "nodeName": "n1"} for ip in ready],
                     "notReadyAddresses": [{"ip": ip} for ip in not_ready],
                     "ports": [{"name": "db", "port": 5432, "protocol": "TCP"}]}]}, core.Endpoints)


async def slices_of(c: Client, name: str) -> list[discovery.EndpointSlice]:
    out = await c.list(discovery.EndpointSlice, namespace="default",
                       label_selector=f"kubernetes.io/service-name={name}")
    return list(out.items)


def addresses(s: discovery.EndpointSlice) -> list[tuple[str, bool]]:
    return sorted((e.addresses[0], e.conditions.ready) for e in s.endpoints)


async def test_user_managed_endpoints_are_mirrored(apiserver: ApiServer) -> None:
    c = apiserver.client
    await c.create(service("db"))
    ep = await c.create(endpoints("db", ["192.0.2.10", "192.0.2.11"], ["192.0.2.12"],
                                  labels={"team": "data"},
                                  annotations={"note": "external",
                                               "endpoints.kubernetes.io/last-change-trigger-time": "x"}))
    # a Service with a selector: its slices are the endpointslice controller's (not running here), never mirrored
    await c.create(service("web", {"app": "web"}))
    await c.create(endpoints("web", ["192.0.2.20"]))
    # skip-mirror: left alone
    await c.create(service("skipped"))
    await c.create(endpoints("skipped", ["192.0.2.30"], labels={"endpointslice.kubernetes.io/skip-mirror": "true"}))
    cm = ControllerManager(manager_config(["endpointslicemirroring", "garbagecollector"]),
                           client=apiserver.new_client())

    async def mirrored(want: list[tuple[str, bool]]) -> discovery.EndpointSlice | None:
        got = await slices_of(c, "db")
        return got[0] if len(got) == 1 and addresses(got[0]) == want else None

    async with running(cm):
        s = await eventually(lambda: mirrored([("192.0.2.10", True), ("192.0.2.11", True), ("192.0.2.12", False)]),
                             10, what="db's Endpoints mirrored")
        assert s.metadata.name.startswith("db-") and len(s.metadata.name) == len("db-") + 5
        assert s.metadata.labels[MANAGED_BY] == MIRRORING
        assert (s.metadata.labels["kubernetes.io/service-name"], s.metadata.labels["team"]) == ("db", "data")
        assert dict(s.metadata.annotations) == {"note": "external"}
        assert s.address_type == "IPv4"
        assert [(p.name, p.port, p.protocol) for p in s.ports] == [("db", 5432, "TCP")]
        assert {e.addresses[0]: e.node_name for e in s.endpoints}["192.0.2.10"] == "n1"
        assert [(o.kind, o.name, o.uid, o.controller) for o in s.metadata.owner_references] == \
            [("Endpoints", "db", ep.metadata.uid, True)]

        # the user changes the Endpoints (one address goes, another comes): the same slice follows
        cur = await c.get(core.Endpoints, "db", namespace="default")
        del cur.subsets[0].addresses[1]
        cur.subsets[0].addresses.add(ip="192.0.2.13")
        await c.update(cur)
        again = await eventually(lambda: mirrored([("192.0.2.10", True), ("192.0.2.12", False), ("192.0.2.13", True)]),
                                 10, what="the mirror following the Endpoints")
        assert again.metadata.name == s.metadata.name

        # nothing is written while nothing changes
        rv = again.metadata.resource_version
        await asyncio.sleep(1)
        [still] = await slices_of(c, "db")
        assert still.metadata.resource_version == rv

        assert await slices_of(c, "web") == [] and await slices_of(c, "skipped") == []

        # the Service gains a selector: the mirror goes
        svc = await c.get(core.Service, "db", namespace="default")
        svc.spec.selector["app"] = "db"
        await c.update(svc)

        async def none_left(name: str) -> bool:
            return not [s for s in await slices_of(c, name) if s.metadata.labels.get(MANAGED_BY) == MIRRORING]
        await eventually(lambda: none_left("db"), 10, what="the mirror of a Service with a selector removed")

        # another selector-less Service: its mirror goes when the Endpoints is deleted
        await c.create(service("ext"))
        await c.create(endpoints("ext", ["2001:db8::1"]))
        [v6] = await eventually(lambda: slices_of(c, "ext"), 10, what="ext mirrored")
        assert (v6.address_type, addresses(v6)) == ("IPv6", [("2001:db8::1", True)])
        await c.delete(core.Endpoints, "ext", namespace="default")
        await eventually(lambda: none_left("ext"), 10, what="the mirror of a deleted Endpoints removed")
