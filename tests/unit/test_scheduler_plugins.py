"""Each scheduler filter and score plugin on hand-built Node/Pod messages."""

from __future__ import annotations

from pybernetes.api.core.v1 import core_pb2 as core
from services.scheduler.cache import PodInfo, SchedulerCache
from services.scheduler.framework import SKIP, CycleState, Failures, FilterPlugin, ScorePlugin
from services.scheduler.plugins import REGISTRY
from services.scheduler.plugins.image_locality import ImageLocality
from services.scheduler.plugins.inter_pod_affinity import InterPodAffinity
from services.scheduler.plugins.node_affinity import NodeAffinity
from services.scheduler.plugins.node_basic import NodeName, NodePorts, NodeUnschedulable
from services.scheduler.plugins.resources import NodeResourcesBalancedAllocation, NodeResourcesFit
from services.scheduler.plugins.taints import TaintToleration
from services.scheduler.plugins.topology_spread import PodTopologySpread, SelectorSpread
from services.scheduler.testing import make_node, make_pod


def cluster(*nodes: core.Node, pods: tuple[core.Pod, ...] = ()) -> SchedulerCache:
    c = SchedulerCache()
    for n in nodes:
        c.set_node(n)
    for p in pods:
        c.add_pod(p)
    return c


def run_filter(plugin: FilterPlugin, c: SchedulerCache, pod: core.Pod) -> tuple[list[str], Failures]:
    pi = PodInfo(pod)
    state = CycleState(c, c.node_list())
    r = plugin.pre_filter(state, pi)
    if r == SKIP:
        return [n.name for n in c.node_list()], {}
    assert r is None, r
    failed: Failures = {}
    ok = plugin.filter_nodes(state, pi, list(c.node_list()), failed)
    # the per-node path agrees with the batch path
    for n in c.node_list():
        assert (plugin.filter(state, pi, n) is None) == (n in ok)
    return [n.name for n in ok], failed


def run_score(plugin: ScorePlugin, c: SchedulerCache, pod: core.Pod) -> dict[str, int] | None:
    pi = PodInfo(pod)
    nodes = list(c.node_list())
    state = CycleState(c, nodes)
    if plugin.pre_score(state, pi, nodes) == SKIP:
        return None
    raw = plugin.score_nodes(state, pi, nodes)
    norm = plugin.normalize(state, pi, raw)
    assert all(0 <= s <= 100 for s in norm), norm
    return {n.name: s for n, s in zip(nodes, norm, strict=True)}


# -- filters ----------------------------------------------------------------------------------------


def test_node_unschedulable() -> None:
    c = cluster(make_node("a", unschedulable=True), make_node("b"))
    ok, failed = run_filter(NodeUnschedulable(), c, make_pod("p"))
    assert ok == ["b"]
    assert failed["a"] == ("NodeUnschedulable", ("node(s) were unschedulable",))
    tol = make_pod("p", tolerations=[("node.kubernetes.io/unschedulable", "Exists", "", "NoSchedule")])
    assert run_filter(NodeUnschedulable(), c, tol)[0] == ["a", "b"]


def test_node_name() -> None:
    c = cluster(make_node("a"), make_node("b"))
    assert run_filter(NodeName(), c, make_pod("p", node_name="b"))[0] == ["b"]
    assert run_filter(NodeName(), c, make_pod("p"))[0] == ["a", "b"]


def test_resources_fit_cpu_memory_pods_and_bound_pods() -> None:
    c = cluster(make_node("small", cpu="1", memory="1Gi"), make_node("big", cpu="8", memory="16Gi"),
                make_node("full", cpu="8", memory="16Gi", pods="1"),
                pods=(make_pod("x", cpu="6", node_name="big"), make_pod("y", node_name="full")))
    assert run_filter(NodeResourcesFit(), c, make_pod("p", cpu="2", memory="512Mi"))[0] == ["big"]
    ok, failed = run_filter(NodeResourcesFit(), c, make_pod("p", cpu="3", memory="512Mi"))
    assert ok == []
    assert failed["small"] == ("NodeResourcesFit", ("Insufficient cpu",))
    assert failed["big"] == ("NodeResourcesFit", ("Insufficient cpu",))
    assert failed["full"] == ("NodeResourcesFit", ("Too many pods",))
    ok, failed = run_filter(NodeResourcesFit(), c, make_pod("p", cpu="500m", memory="2Gi"))
    assert ok == ["big"]
    assert failed["small"][1] == ("Insufficient memory",)
    # a pod without requests only needs a pod slot
    assert run_filter(NodeResourcesFit(), c, make_pod("p"))[0] == ["big", "small"]


def test_resources_fit_extended_resource() -> None:
    c = cluster(make_node("gpu", extra={"example.com/gpu": "2"}), make_node("plain"))
    ok, failed = run_filter(NodeResourcesFit(), c, make_pod("p", extra={"example.com/gpu": "1"}))
    assert ok == ["gpu"]
    assert failed["plain"][1] == ("Insufficient example.com/gpu",)


def test_node_affinity_and_selector() -> None:
    c = cluster(make_node("a", labels={"disk": "ssd", "gen": "5"}), make_node("b", labels={"disk": "hdd"}))
    ok, failed = run_filter(NodeAffinity(), c, make_pod("p", node_selector={"disk": "ssd"}))
    assert ok == ["a"]
    assert failed["b"][1] == ("node(s) didn't match Pod's node affinity/selector",)
    pod = make_pod("p")
    required = pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    term = required.node_selector_terms.add()
    term.match_expressions.add(key="gen", operator="Gt", values=["4"])
    assert run_filter(NodeAffinity(), c, pod)[0] == ["a"]
    term2 = required.node_selector_terms.add()
    term2.match_fields.add(key="metadata.name", operator="In", values=["b"])
    assert run_filter(NodeAffinity(), c, pod)[0] == ["a", "b"]  # terms are ORed
    assert run_filter(NodeAffinity(), c, make_pod("q"))[0] == ["a", "b"]


def test_node_affinity_preferred_score() -> None:
    c = cluster(make_node("a", labels={"zone": "z1"}), make_node("b", labels={"zone": "z2"}))
    pod = make_pod("p")
    pref = pod.spec.affinity.node_affinity.preferred_during_scheduling_ignored_during_execution.add(weight=10)
    pref.preference.match_expressions.add(key="zone", operator="In", values=["z2"])
    assert run_score(NodeAffinity(), c, pod) == {"a": 0, "b": 100}
    assert run_score(NodeAffinity(), c, make_pod("q")) is None


def test_taint_toleration_filter() -> None:
    c = cluster(make_node("a", taints=[("node.kubernetes.io/not-ready", "", "NoSchedule")]),
                make_node("b", taints=[("dedicated", "gpu", "NoExecute")]), make_node("c"),
                make_node("d", taints=[("soft", "x", "PreferNoSchedule")]))
    ok, failed = run_filter(TaintToleration(), c, make_pod("p"))
    assert ok == ["c", "d"]
    assert failed["a"][1] == ("node(s) had untolerated taint {node.kubernetes.io/not-ready: }",)
    assert failed["b"][1] == ("node(s) had untolerated taint {dedicated: gpu}",)
    tol = make_pod("p", tolerations=[("dedicated", "Equal", "gpu", ""), ("", "Exists", "", "NoSchedule")])
    assert run_filter(TaintToleration(), c, tol)[0] == ["a", "b", "c", "d"]
    wrong = make_pod("p", tolerations=[("dedicated", "Equal", "cpu", "NoExecute")])
    assert "b" not in run_filter(TaintToleration(), c, wrong)[0]


def test_taint_toleration_score() -> None:
    c = cluster(make_node("a", taints=[("s1", "", "PreferNoSchedule"), ("s2", "", "PreferNoSchedule")]),
                make_node("b", taints=[("s1", "", "PreferNoSchedule")]), make_node("c"))
    assert run_score(TaintToleration(), c, make_pod("p")) == {"a": 0, "b": 50, "c": 100}
    tol = make_pod("p", tolerations=[("s1", "Exists", "", "PreferNoSchedule")])
    assert run_score(TaintToleration(), c, tol) == {"a": 0, "b": 100, "c": 100}
    assert run_score(TaintToleration(), cluster(make_node("x")), make_pod("p")) is None


def test_node_ports() -> None:
    c = cluster(make_node("a"), make_node("b"), pods=(make_pod("web", host_ports=[8080], node_name="a"),))
    ok, failed = run_filter(NodePorts(), c, make_pod("p", host_ports=[8080]))
    assert ok == ["b"]
    assert failed["a"][1] == ("node(s) didn't have free ports for the requested pod ports",)
    assert run_filter(NodePorts(), c, make_pod("p", host_ports=[9090]))[0] == ["a", "b"]


def test_least_and_most_allocated() -> None:
    c = cluster(make_node("a", cpu="4", memory="4Gi"), make_node("b", cpu="4", memory="4Gi"),
                pods=(make_pod("x", cpu="2", memory="2Gi", node_name="a"),))
    pod = make_pod("p", cpu="1", memory="1Gi")
    least = run_score(NodeResourcesFit(), c, pod)
    assert least == {"a": 25, "b": 75}
    most = run_score(NodeResourcesFit({"scoringStrategy": {"type": "MostAllocated"}}), c, pod)
    assert most == {"a": 75, "b": 25}
    cpu_only = NodeResourcesFit({"scoringStrategy": {"type": "LeastAllocated",
                                                     "resources": [{"name": "cpu", "weight": 1}]}})
    assert run_score(cpu_only, c, pod) == {"a": 25, "b": 75}


def test_least_allocated_uses_non_zero_requests() -> None:
    c = cluster(make_node("a", cpu="1", memory="1000Mi"), make_node("b", cpu="1", memory="1000Mi"),
                pods=(make_pod("x", node_name="a"),))  # counted as 100m / 200Mi
    s = run_score(NodeResourcesFit(), c, make_pod("p"))
    assert s is not None and s["b"] > s["a"]


def test_balanced_allocation() -> None:
    c = cluster(make_node("a", cpu="4", memory="4Gi"), make_node("b", cpu="4", memory="4Gi"),
                pods=(make_pod("x", cpu="3", node_name="a"),))
    s = run_score(NodeResourcesBalancedAllocation(), c, make_pod("p", cpu="1", memory="1Gi"))
    # a: cpu 1.0, mem .25 -> 100 - 37; b: .25/.25 -> 100
    assert s == {"a": 62, "b": 100}
    assert run_score(NodeResourcesBalancedAllocation(), c, make_pod("q")) is None


def test_image_locality() -> None:
    mb = 1024 * 1024
    c = cluster(make_node("a", images=[("docker.io/library/nginx:1.27", 500 * mb)]), make_node("b"))
    s = run_score(ImageLocality(), c, make_pod("p", image="nginx:1.27"))
    assert s is not None and s["a"] > 0 and s["b"] == 0
    assert run_score(ImageLocality(), c, make_pod("p", image="redis")) is None


def spread_pod(name: str, skew: int, key: str, hard: bool = True, node: str = "") -> core.Pod:
    p = make_pod(name, labels={"app": "web"}, node_name=node)
    tsc = p.spec.topology_spread_constraints.add(max_skew=skew, topology_key=key,
                                                 when_unsatisfiable="DoNotSchedule" if hard else "ScheduleAnyway")
    tsc.label_selector.match_labels["app"] = "web"
    return p


def test_pod_topology_spread_filter() -> None:
    z = "topology.kubernetes.io/zone"
    c = cluster(make_node("a", labels={z: "z1"}), make_node("b", labels={z: "z1"}),
                make_node("c", labels={z: "z2"}), make_node("nolabel"),
                pods=(make_pod("w1", labels={"app": "web"}, node_name="a"),
                      make_pod("w2", labels={"app": "web"}, node_name="b")))
    ok, failed = run_filter(PodTopologySpread(), c, spread_pod("p", 1, z))
    assert ok == ["c"]
    assert failed["a"][1] == ("node(s) didn't match pod topology spread constraints",)
    assert failed["nolabel"][1] == ("node(s) didn't match pod topology spread constraints (missing required label)",)
    ok, _ = run_filter(PodTopologySpread(), c, spread_pod("p", 3, z))
    assert ok == ["a", "b", "c"]
    assert run_filter(PodTopologySpread(), c, make_pod("q"))[0] == ["a", "b", "c", "nolabel"]


def test_pod_topology_spread_score() -> None:
    h = "kubernetes.io/hostname"
    c = cluster(make_node("a"), make_node("b"),
                pods=(make_pod("w1", labels={"app": "web"}, node_name="a"),
                      make_pod("w2", labels={"app": "web"}, node_name="a")))
    s = run_score(PodTopologySpread(), c, spread_pod("p", 1, h, hard=False))
    assert s is not None and s["b"] > s["a"]


def test_selector_spread_by_controller() -> None:
    c = cluster(make_node("a"), make_node("b"), make_node("c"),
                pods=(make_pod("r1", owner_uid="rs1", node_name="a"), make_pod("r2", owner_uid="rs1", node_name="a"),
                      make_pod("r3", owner_uid="rs1", node_name="b"), make_pod("o", owner_uid="rs2", node_name="c")))
    assert run_score(SelectorSpread(), c, make_pod("p", owner_uid="rs1")) == {"a": 0, "b": 50, "c": 100}
    assert run_score(SelectorSpread(), c, make_pod("p")) is None


def affinity_pod(name: str, *, anti: bool, key: str = "kubernetes.io/hostname", node: str = "",
                 labels: dict[str, str] | None = None, target: str = "db", weight: int = 0) -> core.Pod:
    p = make_pod(name, labels=labels or {}, node_name=node)
    aff = p.spec.affinity.pod_anti_affinity if anti else p.spec.affinity.pod_affinity
    if weight:
        term = aff.preferred_during_scheduling_ignored_during_execution.add(weight=weight).pod_affinity_term
    else:
        term = aff.required_during_scheduling_ignored_during_execution.add()
    term.topology_key = key
    term.label_selector.match_labels["app"] = target
    return p


def test_inter_pod_affinity_required() -> None:
    c = cluster(make_node("a"), make_node("b"), pods=(make_pod("db", labels={"app": "db"}, node_name="a"),))
    ok, failed = run_filter(InterPodAffinity(), c, affinity_pod("p", anti=False))
    assert ok == ["a"]
    assert failed["b"][1] == ("node(s) didn't match pod affinity rules",)
    ok, failed = run_filter(InterPodAffinity(), c, affinity_pod("p", anti=True))
    assert ok == ["b"]
    assert failed["a"][1] == ("node(s) didn't match pod anti-affinity rules",)
    # first pod of a self-affine group may go anywhere
    ok, _ = run_filter(InterPodAffinity(), cluster(make_node("a"), make_node("b")),
                       affinity_pod("p", anti=False, labels={"app": "db"}))
    assert ok == ["a", "b"]
    assert run_filter(InterPodAffinity(), c, make_pod("plain"))[0] == ["a", "b"]


def test_inter_pod_affinity_existing_anti_affinity() -> None:
    c = cluster(make_node("a"), make_node("b"),
                pods=(affinity_pod("guard", anti=True, node="a", target="web"),))
    ok, failed = run_filter(InterPodAffinity(), c, make_pod("p", labels={"app": "web"}))
    assert ok == ["b"]
    assert failed["a"][1] == ("node(s) didn't satisfy existing pods anti-affinity rules",)


def test_inter_pod_affinity_preferred_score() -> None:
    c = cluster(make_node("a"), make_node("b"), pods=(make_pod("db", labels={"app": "db"}, node_name="a"),))
    assert run_score(InterPodAffinity(), c, affinity_pod("p", anti=False, weight=5)) == {"a": 100, "b": 0}
    assert run_score(InterPodAffinity(), c, affinity_pod("p", anti=True, weight=5)) == {"a": 0, "b": 100}
    assert run_score(InterPodAffinity(), c, make_pod("plain")) is None


def test_registry_has_kubernetes_names() -> None:
    for n in ("NodeUnschedulable", "NodeName", "NodeResourcesFit", "NodeAffinity", "TaintToleration", "NodePorts",
              "PodTopologySpread", "InterPodAffinity", "NodeResourcesBalancedAllocation", "ImageLocality",
              "SelectorSpread"):
        assert n in REGISTRY
