"""pbctl trace's timeline assembly from hand-built objects and events; top's row formatting."""

from __future__ import annotations

import json

from pbctl.timeline import assemble, descendants, ref, trace_id_for
from pbctl.verbs import top
from pbctl.verbs.trace import render
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.rpc.v1 import rpc_pb2 as pb
from pybernetes.events import _iso, _time

T0 = 1_700_000_000


def t(offset: float) -> meta.Time:
    whole = int(offset // 1)
    return meta.Time(seconds=T0 + whole, nanos=round((offset - whole) * 1e9))


def owned(obj: apps.ReplicaSet | core.Pod, owner: apps.Deployment | apps.ReplicaSet, kind: str) -> None:
    r = obj.metadata.owner_references.add()
    r.kind, r.name, r.uid, r.controller, r.api_version = kind, owner.metadata.name, owner.metadata.uid, True, "apps/v1"


def objects() -> tuple[apps.Deployment, apps.ReplicaSet, core.Pod, core.Pod]:
    d = apps.Deployment()
    d.metadata.name, d.metadata.namespace, d.metadata.uid = "web", "default", "uid-d"
    d.metadata.creation_timestamp.CopyFrom(t(0))  # whole seconds, as the apiserver stores them
    rs = apps.ReplicaSet()
    rs.metadata.name, rs.metadata.namespace, rs.metadata.uid = "web-abc", "default", "uid-rs"
    rs.metadata.creation_timestamp.CopyFrom(t(0))
    owned(rs, d, "Deployment")
    pod = core.Pod()
    pod.metadata.name, pod.metadata.namespace, pod.metadata.uid = "web-abc-x1", "default", "uid-p"
    pod.metadata.creation_timestamp.CopyFrom(t(0))
    owned(pod, rs, "ReplicaSet")
    pod.spec.node_name = "node-1"
    for ctype, at in (("PodScheduled", 0), ("Initialized", 0), ("ContainersReady", 1), ("Ready", 1)):
        c = pod.status.conditions.add(type=ctype, status="True")
        c.last_transition_time.CopyFrom(t(at))
    cs = pod.status.container_statuses.add(name="web", ready=True)
    cs.state.running.started_at.CopyFrom(t(1))
    other = core.Pod()
    other.metadata.name, other.metadata.namespace, other.metadata.uid = "other", "default", "uid-o"
    other.metadata.creation_timestamp.CopyFrom(t(0))
    return d, rs, pod, other


def event(obj: apps.Deployment | apps.ReplicaSet | core.Pod, kind: str, reason: str, message: str, at: float,
          component: str, rv: int, *, with_uid: bool = True) -> core.Event:
    ev = core.Event(reason=reason, message=message, type="Normal", reporting_component=component, count=1)
    ev.metadata.name, ev.metadata.namespace = f"{obj.metadata.name}.{rv}", "default"
    ev.metadata.resource_version = str(rv)
    io = ev.involved_object
    io.kind, io.name, io.namespace = kind, obj.metadata.name, "default"
    if with_uid:
        io.uid = obj.metadata.uid
    ev.source.component = component
    if component == "kubelet":
        ev.source.host = ev.reporting_instance = "node-1"
    ev.event_time.CopyFrom(t(at))
    ev.first_timestamp.CopyFrom(t(at))
    return ev


def events(d: apps.Deployment, rs: apps.ReplicaSet, pod: core.Pod, other: core.Pod) -> list[core.Event]:
    return [
        # deliberately out of order: assembly sorts
        event(pod, "Pod", "Started", "Started container web", 1.1, "kubelet", 18),
        event(pod, "Pod", "Scheduled", "Successfully assigned default/web-abc-x1 to node-1 (score 187: "
              "NodeResourcesFit=87, TaintToleration=100)", 0.2, "default-scheduler", 14),
        event(d, "Deployment", "ScalingReplicaSet", "Scaled up replica set web-abc to 1 from 0", 0.1,
              "controller-manager", 12),
        event(rs, "ReplicaSet", "SuccessfulCreate", "Created pod: web-abc-x1", 0.15, "controller-manager", 13),
        event(pod, "Pod", "Pulled", 'Container image "busybox" already present on machine', 0.3, "kubelet", 15,
              with_uid=False),
        event(pod, "Pod", "Created", "Created container web", 0.35, "kubelet", 16),
        event(other, "Pod", "Started", "Started container other", 0.4, "kubelet", 17),
    ]


def test_descendants_follow_owner_references() -> None:
    d, rs, pod, other = objects()
    tree = descendants(d, [pod, other, rs])
    assert [(ref(o), parent, depth) for o, parent, depth in tree] == [
        ("deployment/web", "", 0), ("replicaset/web-abc", "uid-d", 1), ("pod/web-abc-x1", "uid-rs", 2)]
    assert [ref(o) for o, _, _ in descendants(rs, [pod, other])] == ["replicaset/web-abc", "pod/web-abc-x1"]
    assert [ref(o) for o, _, _ in descendants(pod, [rs, other])] == ["pod/web-abc-x1"]


def test_timeline_orders_across_components_with_offsets() -> None:
    d, rs, pod, other = objects()
    tl = assemble(d, [rs, pod, other], events(d, rs, pod, other))
    got = [(e.object, e.reason, e.component) for e in tl.entries]
    assert got == [
        ("deployment/web", "ObjectCreated", "apiserver"),
        ("replicaset/web-abc", "ObjectCreated", "apiserver"),
        ("deployment/web", "ScalingReplicaSet", "controller-manager"),
        ("pod/web-abc-x1", "ObjectCreated", "apiserver"),
        ("replicaset/web-abc", "SuccessfulCreate", "controller-manager"),
        ("pod/web-abc-x1", "PodScheduled", "apiserver"),
        ("pod/web-abc-x1", "Scheduled", "default-scheduler"),
        ("pod/web-abc-x1", "Initialized", "kubelet"),
        ("pod/web-abc-x1", "Pulled", "kubelet"),
        ("pod/web-abc-x1", "Created", "kubelet"),
        ("pod/web-abc-x1", "ContainerStarted", "kubelet"),
        ("pod/web-abc-x1", "Started", "kubelet"),
        ("pod/web-abc-x1", "ContainersReady", "kubelet"),
        ("pod/web-abc-x1", "Ready", "kubelet"),
    ]
    # The first entry is the origin; offsets are non-decreasing and keep the events' sub-second precision.
    offsets = [round(e.offset, 3) for e in tl.entries]
    assert offsets[0] == 0.0 and offsets == sorted(offsets)
    by = {(e.object, e.reason): e for e in tl.entries}
    assert round(by[("pod/web-abc-x1", "Scheduled")].offset, 3) == 0.1
    assert round(by[("pod/web-abc-x1", "Started")].offset, 3) == 1.0
    assert not by[("deployment/web", "ObjectCreated")].precise and by[("pod/web-abc-x1", "Scheduled")].precise
    assert "score 187" in by[("pod/web-abc-x1", "Scheduled")].what
    # Nothing about the unrelated pod; one trace ID derived from the root's uid for every object.
    assert all("other" not in e.object for e in tl.entries)
    assert tl.trace_id == trace_id_for("uid-d") and len(tl.trace_id) == 32
    assert {o.trace_id for o in tl.objects} == {tl.trace_id} and len(tl.objects) == 3


def test_render_and_json() -> None:
    d, rs, pod, other = objects()
    tl = assemble(pod, [], events(d, rs, pod, other))
    text = render(tl)
    lines = text.splitlines()
    assert lines[0].startswith(f"TRACE {tl.trace_id}  pod/web-abc-x1")
    assert lines[1].split() == ["OFFSET", "COMPONENT", "OBJECT", "WHAT"]
    assert lines[2].split()[:3] == ["+0.000s~", "apiserver", "pod/web-abc-x1"]
    assert any(ln.split()[:2] == ["+0.050s", "default-scheduler"] for ln in lines)
    assert any("kubelet@node-1" in ln and "Started:" in ln for ln in lines)
    data = json.loads(json.dumps(tl.to_dict()))
    assert data["root"] == "pod/web-abc-x1" and data["traceId"] == trace_id_for("uid-p")
    reasons = [e["reason"] for e in data["entries"]]
    assert reasons.index("Scheduled") < reasons.index("Pulled") < reasons.index("Started") < reasons.index("Ready")
    sched = next(e for e in data["entries"] if e["reason"] == "Scheduled")
    assert sched["timestamp"].endswith(".200000Z") and sched["resourceVersion"] == 14


def test_event_times_have_sub_second_precision() -> None:
    ns = T0 * 1_000_000_000 + 123_456_789
    assert _time(ns) == meta.Time(seconds=T0, nanos=123_456_000)
    assert _iso(ns).endswith(".123456Z")


def test_top_rows() -> None:
    node = core.Node()
    node.metadata.name = "n1"
    node.status.allocatable["cpu"].string = "2"
    node.status.allocatable["memory"].string = "4Gi"
    gone = core.Node()
    gone.metadata.name = "n0"
    s = pb.StatsSummary()
    s.node.cpu.usage_nano_cores = 500_000_000
    s.node.memory.working_set_bytes = 1024 * 1024 * 1024
    assert top.node_rows([node, gone], {"n1": s, "n0": None}) == [
        ["n1", "500m", "25%", "1024Mi", "25%"], ["n0", "<unknown>", "<unknown>", "<unknown>", "<unknown>"]]
    p = pb.PodUsage(namespace="default", name="web")
    p.cpu.usage_nano_cores, p.memory.working_set_bytes = 3_000_000, 5 * 1024 * 1024
    c = p.containers.add(name="main")
    c.cpu.usage_nano_cores, c.memory.working_set_bytes = 3_000_000, 5 * 1024 * 1024
    assert top.pod_rows([p], all_namespaces=False, containers=False) == (
        ["NAME", "CPU(cores)", "MEMORY(bytes)"], [["web", "3m", "5Mi"]])
    assert top.pod_rows([p], all_namespaces=True, containers=True) == (
        ["NAMESPACE", "POD", "NAME", "CPU(cores)", "MEMORY(bytes)"], [["default", "web", "main", "3m", "5Mi"]])
