"""The dashboard's state: the views the page draws, kept from informer events, and the messages that tell
the page what changed.

Callers: `pbctl.dashboard.server` (attach to an InformerFactory, `subscribe` one queue per open page, `snapshot`
for a page that connects, `tick` every few seconds for lease expiry, `set_health` from the /readyz probe,
`set_etcd_members` from the apiserver's EtcdStatus).
Messages are JSON-able dicts:
  {"type": "upsert", "kind": "pods"|"nodes"|"services"|"control", "key": K, "view": {...}, "t": ms}
  {"type": "delete", "kind": ..., "key": K, "t": ms}
  {"type": "timeline", "entry": {"at": s, "component": C, "object": O, "what": W, "warning": bool}}
A change that leaves a view as it was sends nothing. Object changes become timeline entries only once the
first lists are in (`live`), so opening the page does not replay the cluster's whole state as news; Events
are history already and always enter it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from pbctl.dashboard import views
from pbctl.dashboard.views import View
from pybernetes.api import objects
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.cache import DeletedFinalStateUnknown, InformerFactory

Message_ = dict[str, Any]
M = TypeVar("M", bound=objects.KubeObject)
KINDS = ("control", "nodes", "pods", "services")
LEADERS = ("scheduler", "controller-manager")  # their leader Leases: kube-system/kube-NAME
NODE_LEASES = "kube-node-lease"
PROXY_LEASE_PREFIX = "kube-proxy-"  # kube-node-lease/kube-proxy-NODE: pb-proxy's (netproxy.heartbeat)
TIMELINE_LENGTH = 300


def _unwrap(obj: M | DeletedFinalStateUnknown[M]) -> M:
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


class Model:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.state: dict[str, dict[str, View]] = {k: {} for k in KINDS}
        self.timeline: deque[View] = deque(maxlen=TIMELINE_LENGTH)
        self.live = False
        self._listeners: list[Callable[[Message_], None]] = []
        self._nodes: dict[str, core.Node] = {}
        self._node_leases: dict[str, coordination.Lease] = {}
        self._proxy_leases: dict[str, coordination.Lease] = {}
        self._leader_leases: dict[str, coordination.Lease] = {}
        self._services: dict[str, core.Service] = {}
        self._endpoints: dict[str, core.Endpoints] = {}
        for name in ("apiserver", "etcd"):
            self.state["control"][name] = {"key": name, "name": name, "health": "unknown", "leader": "",
                                           "detail": "not checked yet"}
        self.state["control"]["etcd"]["members"] = []
        for name in LEADERS:
            self.state["control"][name] = views.leader_view(name, None, clock())

    # -- the page's side ---------------------------------------------------------------------------

    def subscribe(self, fn: Callable[[Message_], None]) -> Callable[[], None]:
        """Call `fn` with every message from now on; returns the unsubscribe function."""
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn) if fn in self._listeners else None

    def snapshot(self) -> Message_:
        return {"type": "snapshot", **{k: dict(v) for k, v in self.state.items()},
                "timeline": sorted(self.timeline, key=lambda e: e["at"])}

    def _emit(self, msg: Message_) -> None:
        for fn in list(self._listeners):
            fn(msg)

    def _put(self, kind: str, key: str, view: View) -> None:
        if self.state[kind].get(key) == view:
            return
        self.state[kind][key] = view
        self._emit({"type": "upsert", "kind": kind, "key": key, "view": view, "t": self.clock() * 1000})

    def _drop(self, kind: str, key: str) -> None:
        if self.state[kind].pop(key, None) is not None:
            self._emit({"type": "delete", "kind": kind, "key": key, "t": self.clock() * 1000})

    def note(self, component: str, obj: str, what: str, *, warning: bool = False, at: float | None = None,
             always: bool = False) -> None:
        """A timeline entry (object changes only once live; `always` for Events)."""
        if not (self.live or always):
            return
        entry = {"at": self.clock() if at is None else at, "component": component, "object": obj, "what": what,
                 "warning": warning}
        self.timeline.append(entry)
        self._emit({"type": "timeline", "entry": entry})

    # -- informer events -----------------------------------------------------------------------------

    def pod(self, old: core.Pod | None, new: core.Pod | None) -> None:
        if new is None:
            if old is not None:
                self._drop("pods", objects.key(old))
                self.note("kubelet", f"pod/{old.metadata.name}", "deleted")
            return
        view = views.pod_view(new)
        before = self.state["pods"].get(view["key"])
        self._put("pods", view["key"], view)
        name = f"pod/{new.metadata.name}"
        if before is None:
            where = f"on {view['node']}" if view["node"] else "pending (unscheduled)"
            self.note("controller-manager" if view["owner"] else "api", name, f"created, {where}")
            return
        if view["node"] and not before["node"]:
            self.note("scheduler", name, f"bound to {view['node']}")
        if view["status"] != before["status"]:
            self.note("kubelet", name, view["status"], warning=view["status"] not in ("Running", "Succeeded",
                                                                                      "Pending", "Terminating"))
        if view["ready"] != before["ready"]:
            self.note("kubelet", name, "ready" if view["ready"] else "not ready")
        if view["restarts"] > before["restarts"]:
            self.note("kubelet", name, f"restarted (restarts: {view['restarts']})", warning=True)

    def node(self, old: core.Node | None, new: core.Node | None) -> None:
        if new is None:
            if old is not None:
                self._nodes.pop(old.metadata.name, None)
                self._drop("nodes", old.metadata.name)
                self.note("api", f"node/{old.metadata.name}", "deleted")
            return
        self._nodes[new.metadata.name] = new
        self._refresh_node(new.metadata.name)

    def _refresh_node(self, name: str) -> None:
        node = self._nodes.get(name)
        if node is None:
            return
        view = views.node_view(node, self._node_leases.get(name), self.clock(), self._proxy_leases.get(name))
        before = self.state["nodes"].get(name)
        self._put("nodes", name, view)
        if before is None:
            self.note("kubelet", f"node/{name}", f"registered, {view['status']}")
        elif before["status"] != view["status"]:
            self.note("kubelet" if view["status"] != "Unknown" else "node-lifecycle", f"node/{name}",
                      f"{view['status']}: {view['message']}", warning=view["status"] != "Ready")
        if before is not None and before["proxy"] != view["proxy"]:
            self.note("kube-proxy", f"node/{name}", f"kube-proxy {view['proxy']}", warning=view["proxy"] != "ok")

    def lease(self, old: coordination.Lease | None, new: coordination.Lease | None) -> None:
        lease = new if new is not None else old
        if lease is None:
            return
        ns, name = lease.metadata.namespace, lease.metadata.name
        if ns == NODE_LEASES and name.startswith(PROXY_LEASE_PREFIX):
            node = name.removeprefix(PROXY_LEASE_PREFIX)
            if new is None:
                self._proxy_leases.pop(node, None)
            else:
                self._proxy_leases[node] = new
            self._refresh_node(node)
        elif ns == NODE_LEASES:
            if new is None:
                self._node_leases.pop(name, None)
            else:
                self._node_leases[name] = new
            self._refresh_node(name)
        elif ns == "kube-system" and name.removeprefix("kube-") in LEADERS:
            component = name.removeprefix("kube-")
            if new is None:
                self._leader_leases.pop(component, None)
            else:
                self._leader_leases[component] = new
            self._refresh_leader(component)

    def _refresh_leader(self, component: str) -> None:
        view = views.leader_view(component, self._leader_leases.get(component), self.clock())
        before = self.state["control"].get(component)
        self._put("control", component, view)
        if before is not None and before["leader"] != view["leader"] and view["leader"]:
            self.note(component, f"lease/kube-{component}", f"leader is {view['leader']}")
        elif before is not None and before["health"] != view["health"]:
            self.note(component, f"lease/kube-{component}", view["detail"], warning=view["health"] != "ok")

    def service(self, old: core.Service | None, new: core.Service | None) -> None:
        if new is None:
            if old is not None:
                self._services.pop(objects.key(old), None)
                self._drop("services", objects.key(old))
            return
        self._services[objects.key(new)] = new
        self._refresh_service(objects.key(new))

    def endpoints(self, old: core.Endpoints | None, new: core.Endpoints | None) -> None:
        eps = new if new is not None else old
        if eps is None:
            return
        key = objects.key(eps)
        if new is None:
            self._endpoints.pop(key, None)
        else:
            self._endpoints[key] = new
        before = self.state["services"].get(key)
        self._refresh_service(key)
        after = self.state["services"].get(key)
        if before is not None and after is not None:
            obj = f"endpoints/{eps.metadata.name}"
            for ip in sorted(set(after["endpoints"]) - set(before["endpoints"])):
                self.note("controller-manager", obj, f"gained the address {ip}")
            for ip in sorted(set(before["endpoints"]) - set(after["endpoints"])):
                self.note("controller-manager", obj, f"lost the address {ip}")

    def _refresh_service(self, key: str) -> None:
        svc = self._services.get(key)
        if svc is not None:
            self._put("services", key, views.service_view(svc, self._endpoints.get(key)))

    def deployment(self, old: apps.Deployment | None, new: apps.Deployment | None) -> None:
        if new is None:
            if old is not None:
                self.note("api", f"deployment/{old.metadata.name}", "deleted")
        elif old is None:
            self.note("api", f"deployment/{new.metadata.name}", f"written (replicas {new.spec.replicas})")
        elif new.metadata.generation != old.metadata.generation:
            self.note("api", f"deployment/{new.metadata.name}", f"changed (replicas {new.spec.replicas})")

    def replicaset(self, old: apps.ReplicaSet | None, new: apps.ReplicaSet | None) -> None:
        if new is None:
            if old is not None:
                self.note("controller-manager", f"replicaset/{old.metadata.name}", "deleted")
            return
        name = f"replicaset/{new.metadata.name}"
        if old is None:
            owner = objects.controller_ref(new)
            by = f" by {owner.kind.lower()}/{owner.name}" if owner is not None else ""
            self.note("controller-manager", name, f"created{by} (replicas {new.spec.replicas})")
        elif new.spec.replicas != old.spec.replicas:
            self.note("controller-manager", name, f"scaled to {new.spec.replicas}")

    def event(self, old: core.Event | None, new: core.Event | None) -> None:
        if new is None or (old is not None and old.count == new.count):
            return
        e = views.event_entry(new)
        self.note(e["component"], e["object"], e["what"], warning=e["warning"], at=e["at"] or None, always=True)

    # -- health --------------------------------------------------------------------------------------

    def set_health(self, name: str, health: str, detail: str) -> None:
        """apiserver / etcd, from the /readyz probe (or the API answering); etcd keeps its members."""
        before = self.state["control"].get(name)
        view: View = {"key": name, "name": name, "health": health, "leader": "", "detail": detail}
        if name == "etcd" and before is not None:
            view |= {"leader": before["leader"], "members": before["members"]}
        self._put("control", name, view)
        if before is not None and before["health"] != health and before["health"] != "unknown":
            self.note(name, name, f"{health}: {detail}", warning=health != "ok")

    def set_etcd_members(self, members: list[View], error: str = "") -> None:
        """etcd's members (views.etcd_member_view) and the leader's name; `error` when EtcdStatus failed."""
        before = self.state["control"]["etcd"]
        leader = next((m["name"] for m in members if m["leader"]), "")
        self._put("control", "etcd", {**before, "members": members, "leader": leader, "membersError": error})
        if before["members"] and leader != before["leader"]:
            self.note("etcd", "etcd", f"leader is {leader}" if leader else "no leader", warning=not leader)
        was = {m["name"]: m["error"] for m in before["members"]}
        for m in members:
            if m["name"] in was and bool(m["error"]) != bool(was[m["name"]]):
                self.note("etcd", f"member/{m['name']}", m["error"] or "answers again", warning=bool(m["error"]))

    def tick(self) -> None:
        """Re-judge what time alone changes: expired node and leader Leases."""
        for name in list(self._nodes):
            self._refresh_node(name)
        for component in LEADERS:
            self._refresh_leader(component)


def _handlers(fn: Callable[[M | None, M | None], None]) -> tuple[Callable[[M], None], Callable[[M, M], None],
                                                                  Callable[[M | DeletedFinalStateUnknown[M]], None]]:
    return (lambda o: fn(None, o)), (lambda a, b: fn(a, b)), (lambda o: fn(_unwrap(o), None))


def attach(model: Model, factory: InformerFactory) -> None:
    """Feed the model from one informer per kind it draws (all namespaces)."""
    pairs: list[tuple[type[Any], Callable[[Any, Any], None]]] = [
        (core.Node, model.node), (coordination.Lease, model.lease), (core.Pod, model.pod),
        (core.Service, model.service), (core.Endpoints, model.endpoints), (apps.Deployment, model.deployment),
        (apps.ReplicaSet, model.replicaset), (core.Event, model.event),
    ]
    for cls, fn in pairs:
        factory.informer_for(cls, namespace="").add_event_handler(*_handlers(fn))
