"""The endpointslicemirroring controller's pure parts: which Endpoints are mirrored, the endpoints each
(addressType, ports) group holds (ready and not-ready, invalid IPs and the per-subset maximum left out,
duplicates once), and the plan (one slice per group, rewritten only when it differs, extras deleted, a
slice of a group gone reused for a new one of the same address type)."""

from __future__ import annotations

from pybernetes.api import codec
from pybernetes.api.core.v1 import core_pb2 as core
from services.controllers.endpointslicemirroring import (
    CONTROLLER_NAME,
    LEADER_ANNOTATION,
    SKIP_MIRROR_LABEL,
    desired_endpoints,
    mirrored_slice,
    plan_mirror,
    should_mirror,
)

PORTS = (("db", 5432, "TCP", ""),)


def endpoints(*subsets: tuple[list[str], list[str]], labels: dict[str, str] | None = None) -> core.Endpoints:
    return codec.from_dict({
        "metadata": {"name": "db", "namespace": "default", "uid": "u1", "labels": labels or {}},
        "subsets": [{"addresses": [{"ip": ip} for ip in ready], "notReadyAddresses": [{"ip": ip} for ip in not_ready],
                     "ports": [{"name": "db", "port": 5432}]} for ready, not_ready in subsets]}, core.Endpoints)


def test_should_mirror() -> None:
    assert should_mirror(endpoints())
    assert not should_mirror(None)
    assert not should_mirror(endpoints(labels={SKIP_MIRROR_LABEL: "true"}))
    assert should_mirror(endpoints(labels={SKIP_MIRROR_LABEL: "false"}))
    ep = endpoints()
    ep.metadata.annotations[LEADER_ANNOTATION] = "{}"
    assert not should_mirror(ep)


def test_desired_endpoints_groups_and_limits() -> None:
    ep = endpoints((["10.0.0.2", "10.0.0.1", "bogus", "fd00::1"], ["10.0.0.3"]), (["10.0.0.1"], []))
    d = desired_endpoints(ep)
    assert d.invalid == 1 and d.skipped == 0
    v4 = d.groups[("IPv4", PORTS)]
    # sorted by address; 10.0.0.1 of the second subset (same ports) is not repeated
    assert [(e.addresses[0], e.conditions.ready) for e in v4] == [("10.0.0.1", True), ("10.0.0.2", True),
                                                                   ("10.0.0.3", False)]
    assert [e.addresses[0] for e in d.groups[("IPv6", PORTS)]] == ["fd00::1"]
    # at most N addresses of a subset, ready ones first; the rest counted as skipped
    small = desired_endpoints(endpoints((["10.0.0.1", "10.0.0.2"], ["10.0.0.3"])), max_per_subset=2)
    assert [e.addresses[0] for e in small.groups[("IPv4", PORTS)]] == ["10.0.0.1", "10.0.0.2"]
    assert small.skipped == 1


def test_plan_rewrites_only_what_differs() -> None:
    ep = endpoints((["10.0.0.1"], []))
    desired = desired_endpoints(ep).groups
    plan = plan_mirror(ep, desired, [])
    assert not plan.update and not plan.delete and len(plan.create) == 1
    s = plan.create[0]
    assert s.metadata.generate_name == "db-"
    assert s.metadata.labels["endpointslice.kubernetes.io/managed-by"] == CONTROLLER_NAME
    assert [(o.kind, o.name, o.controller) for o in s.metadata.owner_references] == [("Endpoints", "db", True)]
    stored = mirrored_slice(ep, ("IPv4", PORTS), desired[("IPv4", PORTS)])
    stored.metadata.name, stored.metadata.resource_version = "db-abcde", "7"
    assert not plan_mirror(ep, desired, [stored])  # the same: nothing written
    # a second slice of the group goes; a changed Endpoints rewrites the first under its name
    extra = mirrored_slice(ep, ("IPv4", PORTS), [])
    extra.metadata.name = "db-zzzzz"
    ep2 = endpoints((["10.0.0.1", "10.0.0.9"], []))
    plan = plan_mirror(ep2, desired_endpoints(ep2).groups, [stored, extra])
    assert [u.metadata.name for u in plan.update] == ["db-abcde"] and plan.delete == ["db-zzzzz"]
    assert [e.addresses[0] for e in plan.update[0].endpoints] == ["10.0.0.1", "10.0.0.9"]
    # the ports change: the old group's slice is reused for the new group (an update, not create + delete)
    ep3 = endpoints((["10.0.0.1"], []))
    ep3.subsets[0].ports[0].port = 5433
    plan = plan_mirror(ep3, desired_endpoints(ep3).groups, [stored])
    assert not plan.create and not plan.delete
    assert [(u.metadata.name, u.ports[0].port) for u in plan.update] == [("db-abcde", 5433)]
    # no addresses at all: the slice goes
    plan = plan_mirror(ep, desired_endpoints(endpoints()).groups, [stored])
    assert plan.delete == ["db-abcde"] and not plan.create and not plan.update
