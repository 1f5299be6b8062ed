"""Builders of Node and Pod messages for scheduler tests and the benchmark (hollow nodes as API objects)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pybernetes.api.core.v1 import core_pb2 as core


def make_node(name: str, *, cpu: str = "4", memory: str = "8Gi", pods: str = "110",
              labels: Mapping[str, str] | None = None, taints: Iterable[tuple[str, str, str]] = (),
              unschedulable: bool = False, images: Iterable[tuple[str, int]] = (),
              ready: bool = True, extra: Mapping[str, str] | None = None) -> core.Node:
    n = core.Node()
    n.metadata.name = name
    n.metadata.labels["kubernetes.io/hostname"] = name
    n.metadata.labels.update(labels or {})
    for k, v, e in taints:
        n.spec.taints.add(key=k, value=v, effect=e)
    n.spec.unschedulable = unschedulable
    for res, val in {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}.items():
        n.status.capacity[res].string = val
        n.status.allocatable[res].string = val
    for img, size in images:
        n.status.images.add(names=[img], size_bytes=size)
    n.status.conditions.add(type="Ready", status="True" if ready else "False", reason="KubeletReady")
    return n


def make_pod(name: str, *, namespace: str = "default", cpu: str = "", memory: str = "",
             labels: Mapping[str, str] | None = None, node_selector: Mapping[str, str] | None = None,
             tolerations: Iterable[tuple[str, str, str, str]] = (), host_ports: Iterable[int] = (),
             image: str = "nginx:1.27", node_name: str = "", owner_uid: str = "", priority: int | None = None,
             scheduler_name: str = "", uid: str = "", extra: Mapping[str, str] | None = None) -> core.Pod:
    p = core.Pod()
    p.metadata.name, p.metadata.namespace = name, namespace
    p.metadata.uid = uid or f"uid-{namespace}-{name}"
    p.metadata.labels.update(labels or {})
    if owner_uid:
        p.metadata.owner_references.add(api_version="apps/v1", kind="ReplicaSet", name=f"rs-{owner_uid}",
                                         uid=owner_uid, controller=True)
    c = p.spec.containers.add(name="c", image=image)
    if cpu:
        c.resources.requests["cpu"].string = cpu
    if memory:
        c.resources.requests["memory"].string = memory
    for res, val in (extra or {}).items():
        c.resources.requests[res].string = val
    for hp in host_ports:
        c.ports.add(container_port=hp, host_port=hp, protocol="TCP")
    p.spec.node_selector.update(node_selector or {})
    for k, op, v, e in tolerations:
        p.spec.tolerations.add(key=k, operator=op, value=v, effect=e)
    p.spec.node_name = node_name
    if priority is not None:
        p.spec.priority = priority
    p.spec.scheduler_name = scheduler_name or "default-scheduler"
    return p
