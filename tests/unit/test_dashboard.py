"""pbctl.dashboard: informer events -> the messages the page applies (upserts, deletes, timeline entries); the
readyz default and `lab open` printing the dashboard first."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from pbctl.dashboard import views
from pbctl.dashboard.model import Model, _handlers
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.cache import DeletedFinalStateUnknown


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def model() -> tuple[Model, list[dict[str, Any]], Clock]:
    clock = Clock()
    m = Model(clock=clock)
    got: list[dict[str, Any]] = []
    m.subscribe(got.append)
    return m, got, clock


def pod(name: str, node: str = "", phase: str = "", ready: bool = False, restarts: int = 0) -> core.Pod:
    p = core.Pod()
    p.metadata.name, p.metadata.namespace = name, "default"
    p.spec.node_name = node
    p.spec.containers.add(name="c", image="i")
    p.status.phase = phase
    if phase == "Running":
        p.status.container_statuses.add(name="c", ready=ready, restart_count=restarts)
        p.status.conditions.add(type="Ready", status="True" if ready else "False")
    return p


def node(name: str, ready: str = "True", message: str = "kubelet is posting ready status") -> core.Node:
    n = core.Node()
    n.metadata.name = name
    n.status.conditions.add(type="Ready", status=ready, message=message)
    n.status.addresses.add(type="InternalIP", address="172.30.0.11")
    return n


def lease(ns: str, name: str, holder: str, renewed: float) -> coordination.Lease:
    le = coordination.Lease()
    le.metadata.name, le.metadata.namespace = name, ns
    le.spec.holder_identity = holder
    le.spec.lease_duration_seconds = 40
    le.spec.renew_time.seconds = int(renewed)
    return le


def whats(got: list[dict[str, Any]]) -> list[str]:
    return [f"{m['entry']['object']} {m['entry']['what']}" for m in got if m["type"] == "timeline"]


def test_initial_list_fills_views_without_news() -> None:
    m, got, _ = model()
    m.pod(None, pod("a", "node-1", "Running", ready=True))
    assert [g["type"] for g in got] == ["upsert"]
    assert got[0]["kind"] == "pods" and got[0]["key"] == "default/a"
    assert got[0]["view"]["status"] == "Running" and got[0]["view"]["ready"] is True
    assert whats(got) == []


def test_a_pod_story_as_messages() -> None:
    m, got, _ = model()
    m.live = True
    p0 = pod("web-1")
    m.pod(None, p0)
    p1 = pod("web-1", "node-2")
    m.pod(p0, p1)
    p2 = pod("web-1", "node-2", "Running", ready=True)
    m.pod(p1, p2)
    assert whats(got) == ["pod/web-1 created, pending (unscheduled)", "pod/web-1 bound to node-2",
                          "pod/web-1 Running", "pod/web-1 ready"]
    assert m.state["pods"]["default/web-1"]["node"] == "node-2"
    got.clear()
    m.pod(p2, pod("web-1", "node-2", "Running", ready=True))  # nothing the page shows changed
    assert got == []
    m.pod(p2, pod("web-1", "node-2", "Running", ready=True, restarts=2))
    assert whats(got) == ["pod/web-1 restarted (restarts: 2)"]
    got.clear()
    m.pod(p2, None)
    assert got[0] == {"type": "delete", "kind": "pods", "key": "default/web-1", "t": got[0]["t"]}
    assert whats(got) == ["pod/web-1 deleted"]
    assert "default/web-1" not in m.state["pods"]


def test_pod_status_words() -> None:
    p = pod("a", "n", "Pending")
    p.status.container_statuses.add(name="c").state.waiting.reason = "CrashLoopBackOff"
    assert views.pod_status(p) == "CrashLoopBackOff"
    p.metadata.deletion_timestamp.seconds = 1
    assert views.pod_status(p) == "Terminating"


def test_node_health_from_conditions_and_lease_expiry() -> None:
    m, got, clock = model()
    m.live = True
    m.node(None, node("node-1"))
    assert m.state["nodes"]["node-1"]["kubelet"] == "unknown"  # no lease seen yet
    m.lease(None, lease("kube-node-lease", "node-1", "node-1", clock.t))
    v = m.state["nodes"]["node-1"]
    assert (v["status"], v["kubelet"], v["runtime"], v["proxy"]) == ("Ready", "ok", "ok", "not reported")
    got.clear()
    m.tick()
    assert got == []  # nothing expired
    clock.t += 41
    m.tick()
    v = m.state["nodes"]["node-1"]
    assert (v["status"], v["kubelet"]) == ("Unknown", "stale")
    assert whats(got) == ["node/node-1 Unknown: kubelet is posting ready status"]
    got.clear()
    m.node(None, node("node-1", "False", "container runtime is down"))
    assert m.state["nodes"]["node-1"]["status"] == "NotReady"
    assert got[-1]["entry"]["warning"] is True


def test_runtime_failing_while_the_kubelet_reports() -> None:
    v = views.node_view(node("n", "False", "container runtime is down"), lease("kube-node-lease", "n", "n", 100), 110)
    assert (v["status"], v["kubelet"], v["runtime"], v["message"]) == ("NotReady", "ok", "failing",
                                                                        "container runtime is down")


def test_proxy_health_from_its_lease() -> None:
    """pb-proxy's Lease kube-node-lease/kube-proxy-NODE: ok while renewed, stale once expired, stopped once
    released (holder cleared on a clean stop); it is not mistaken for a node of its own."""
    m, got, clock = model()
    m.live = True
    m.node(None, node("node-2"))
    m.lease(None, lease("kube-node-lease", "node-2", "node-2", clock.t))
    m.lease(None, lease("kube-node-lease", "kube-proxy-node-2", "node-2", clock.t))
    assert m.state["nodes"]["node-2"]["proxy"] == "ok" and set(m.state["nodes"]) == {"node-2"}
    got.clear()
    m.lease(None, lease("kube-node-lease", "kube-proxy-node-2", "", clock.t))
    assert m.state["nodes"]["node-2"]["proxy"] == "stopped"
    assert whats(got) == ["node/node-2 kube-proxy stopped"]
    m.lease(None, lease("kube-node-lease", "kube-proxy-node-2", "node-2", clock.t))
    clock.t += 41
    m.lease(None, lease("kube-node-lease", "node-2", "node-2", clock.t))
    assert m.state["nodes"]["node-2"]["proxy"] == "stale"


def test_etcd_members() -> None:
    from pybernetes.api.rpc.v1 import rpc_pb2 as rpc

    m, got, _ = model()
    m.live = True

    def member(name: str, leader: bool = False, error: str = "") -> dict[str, Any]:
        return views.etcd_member_view(rpc.EtcdMember(name=name, id=f"{len(name):x}", leader=leader, error=error,
                                                     raft_index=7, db_size=2048, client_urls=["http://e:2379"]))

    m.set_etcd_members([member("etcd-1", leader=True), member("etcd-2")])
    etcd = m.state["control"]["etcd"]
    assert etcd["leader"] == "etcd-1" and [x["dbSize"] for x in etcd["members"]] == [2048, 2048]
    m.set_health("etcd", "ok", "the apiserver's etcd check passes")  # the probe keeps the members
    assert m.state["control"]["etcd"]["members"] == etcd["members"]
    got.clear()
    m.set_etcd_members([member("etcd-1", error="etcd UNAVAILABLE"), member("etcd-2", leader=True)])
    assert m.state["control"]["etcd"]["leader"] == "etcd-2"
    assert whats(got) == ["etcd leader is etcd-2", "member/etcd-1 etcd UNAVAILABLE"]


def test_leaders_from_their_leases() -> None:
    m, got, clock = model()
    m.live = True
    assert m.state["control"]["scheduler"]["health"] == "unknown"
    m.lease(None, lease("kube-system", "kube-scheduler", "cp_1", clock.t))
    assert m.state["control"]["scheduler"]["leader"] == "cp_1"
    assert m.state["control"]["scheduler"]["health"] == "ok"
    m.lease(None, lease("kube-system", "kube-controller-manager", "cp_2", clock.t))
    assert whats(got) == ["lease/kube-scheduler leader is cp_1", "lease/kube-controller-manager leader is cp_2"]
    clock.t += 60
    m.tick()
    assert m.state["control"]["scheduler"]["health"] == "stale"
    m.lease(None, lease("kube-system", "some-other-lock", "x", clock.t))  # not drawn
    assert set(m.state["control"]) == {"apiserver", "etcd", "scheduler", "controller-manager"}


def test_services_with_their_endpoints() -> None:
    m, got, _ = model()
    m.live = True
    svc = core.Service()
    svc.metadata.name, svc.metadata.namespace = "web", "default"
    svc.spec.cluster_ip = "10.96.0.10"
    svc.spec.ports.add(port=80, protocol="TCP")
    m.service(None, svc)
    assert m.state["services"]["default/web"]["endpoints"] == []
    eps = core.Endpoints()
    eps.metadata.name, eps.metadata.namespace = "web", "default"
    sub = eps.subsets.add()
    sub.addresses.add(ip="10.244.1.5")
    sub.not_ready_addresses.add(ip="10.244.2.6")
    m.endpoints(None, eps)
    v = m.state["services"]["default/web"]
    assert (v["clusterIP"], v["ports"], v["endpoints"], v["notReady"]) == ("10.96.0.10", ["80/TCP"], ["10.244.1.5"],
                                                                           ["10.244.2.6"])
    assert whats(got) == ["endpoints/web gained the address 10.244.1.5"]
    m.endpoints(eps, None)
    assert whats(got)[-1] == "endpoints/web lost the address 10.244.1.5"
    m.service(svc, None)
    assert got[-1]["type"] == "delete" and got[-1]["key"] == "default/web"


def test_deployment_and_replicaset_news() -> None:
    m, got, _ = model()
    m.live = True
    d = apps.Deployment()
    d.metadata.name, d.spec.replicas, d.metadata.generation = "web", 3, 1
    m.deployment(None, d)
    rs = apps.ReplicaSet()
    rs.metadata.name, rs.spec.replicas = "web-7d9f", 3
    rs.metadata.owner_references.add(kind="Deployment", name="web", controller=True)
    m.replicaset(None, rs)
    rs2 = apps.ReplicaSet()
    rs2.CopyFrom(rs)
    rs2.spec.replicas = 6
    m.replicaset(rs, rs2)
    assert whats(got) == ["deployment/web written (replicas 3)",
                          "replicaset/web-7d9f created by deployment/web (replicas 3)",
                          "replicaset/web-7d9f scaled to 6"]


def test_events_are_history_even_before_live() -> None:
    m, got, _ = model()
    ev = core.Event()
    ev.metadata.name, ev.metadata.namespace = "e1", "default"
    ev.involved_object.kind, ev.involved_object.name = "Pod", "web-1"
    ev.reason, ev.message, ev.type, ev.count = "Scheduled", "Successfully assigned default/web-1 to node-1", "Normal", 1
    ev.source.component = "default-scheduler"
    ev.event_time.seconds = 500
    m.event(None, ev)
    assert got[-1]["entry"] == {"at": 500.0, "component": "default-scheduler", "object": "pod/web-1",
                                "what": "Scheduled: Successfully assigned default/web-1 to node-1", "warning": False}
    n = len(got)
    m.event(ev, ev)  # a resync: no repeat
    assert len(got) == n


def test_snapshot_and_health() -> None:
    m, got, clock = model()
    m.set_health("apiserver", "ok", "/readyz ok")
    m.live = True
    m.set_health("apiserver", "failing", "etcd failed")
    assert whats(got) == ["apiserver failing: etcd failed"]
    m.note("x", "pod/b", "later", at=clock.t + 5)
    m.note("x", "pod/a", "earlier", at=clock.t - 5)
    snap = m.snapshot()
    assert snap["type"] == "snapshot"
    assert set(snap) >= {"control", "nodes", "pods", "services", "timeline"}
    assert [e["what"] for e in snap["timeline"]] == ["earlier", "failing: etcd failed", "later"]


def test_deleted_final_state_unknown_is_unwrapped() -> None:
    m, got, _ = model()
    add, _update, delete = _handlers(m.pod)
    p = pod("gone")
    add(p)
    delete(DeletedFinalStateUnknown("default/gone", p))
    assert "default/gone" not in m.state["pods"]
    assert got[-1]["type"] == "delete"


def test_unsubscribe() -> None:
    m = Model()
    got: list[dict[str, Any]] = []
    stop = m.subscribe(got.append)
    stop()
    m.pod(None, pod("a"))
    assert got == []


async def test_lab_open_prints_the_dashboard_first(tmp_path: Any) -> None:
    from lab.state import LabState
    from lab.status import open_dashboards

    st = LabState(dir=str(tmp_path), info={"prometheus_url": "http://127.0.0.1:9999"})
    st.save()
    lines: list[str] = []
    assert await open_dashboards(tmp_path, lines.append) == 0
    assert lines[0].startswith("Dashboard: http://127.0.0.1:8001/")
    assert lines[1] == "Prometheus: http://127.0.0.1:9999"


def test_readyz_beside_a_standard_apiserver(tmp_path: Path) -> None:
    from pbctl.verbs.dashboard import readyz_tls, readyz_url
    from pybernetes import pkiutil
    from pybernetes.client.config import ClientConfig

    # HTTPS, as the apiserver serves its health port with a client CA (the lab's); plain for a CA-less kubeconfig
    assert readyz_url("127.0.0.1:6442") == "https://127.0.0.1:6444/readyz"
    assert readyz_url("127.0.0.1:6442", https=False) == "http://127.0.0.1:6444/readyz"
    assert readyz_url("10.0.0.5:24001") == ""  # a relay or a test server: no known health port
    pkiutil.ensure_ca(tmp_path)
    ctx = readyz_tls(ClientConfig("127.0.0.1:6442", ca_pem=(tmp_path / "ca.crt").read_bytes()))
    assert ctx is not None and ctx.check_hostname
    assert ((("commonName", "kubernetes"),),) in [c["subject"] for c in ctx.get_ca_certs()]  # the cluster CA
    assert readyz_tls(ClientConfig("127.0.0.1:6442")) is None and readyz_tls(None) is None


class FakeClient:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    async def get(self, cls: Any, name: str) -> Any:
        if self.error is not None:
            raise self.error
        return core.Namespace()


async def check(client: FakeClient, answer: tuple[int, str] | None = None, monkeypatch: Any = None) -> Model:
    from pbctl.dashboard import health

    async def fake_readyz(session: Any, url: str) -> tuple[int, str] | None:
        return answer

    monkeypatch.setattr(health, "readyz", fake_readyz)
    m = Model()
    await health.check_once(m, cast(Any, client), cast(Any, None), "http://x/readyz")
    return m


async def test_health_from_readyz_then_from_the_api(monkeypatch: Any) -> None:
    from pybernetes import errors

    m = await check(FakeClient(), (200, "[+]ping ok\n[+]etcd ok\nok\n"), monkeypatch)
    assert (m.state["control"]["apiserver"]["health"], m.state["control"]["etcd"]["health"]) == ("ok", "ok")
    m = await check(FakeClient(), (500, "[+]ping ok\n[-]etcd failed: deadline exceeded\n"), monkeypatch)
    assert m.state["control"]["apiserver"]["health"] == "failing"
    assert m.state["control"]["etcd"]["detail"] == "etcd failed: deadline exceeded"
    m = await check(FakeClient(), None, monkeypatch)  # /readyz unreachable: the API answering tells
    assert m.state["control"]["apiserver"]["detail"].startswith("the API answers")
    m = await check(FakeClient(errors.Unavailable("the apiserver is unreachable: refused")), None, monkeypatch)
    assert (m.state["control"]["apiserver"]["health"], m.state["control"]["etcd"]["health"]) == ("failing",
                                                                                                 "unknown")
    m = await check(FakeClient(errors.InternalError("etcd UNAVAILABLE: no leader")), None, monkeypatch)
    assert (m.state["control"]["apiserver"]["health"], m.state["control"]["etcd"]["health"]) == ("ok", "failing")
