"""Scheduler cache: node infos from Node objects, bound pods, assumed pods (confirm, forget, expire)."""

from __future__ import annotations

from services.scheduler.cache import PodInfo, SchedulerCache, normalize_image, pod_requests
from services.scheduler.testing import make_node, make_pod


def test_node_info_precomputed() -> None:
    c = SchedulerCache()
    assert c.set_node(make_node("a", cpu="1500m", memory="2Gi", taints=[("k", "v", "NoSchedule")]))
    ni = c.nodes["a"]
    assert (ni.alloc.cpu, ni.alloc.mem, ni.alloc.pods) == (1500, 2 * 1024**3, 110)
    assert ni.hard_taints == (("k", "v", "NoSchedule"),)
    # a heartbeat-only update is not a scheduling-relevant change
    n = make_node("a", cpu="1500m", memory="2Gi", taints=[("k", "v", "NoSchedule")])
    n.status.conditions[0].reason = "still ready"
    assert not c.set_node(n)
    assert c.set_node(make_node("a", cpu="2", memory="2Gi"))


def test_bound_pods_counted_and_removed() -> None:
    c = SchedulerCache()
    c.set_node(make_node("a"))
    c.add_pod(make_pod("p", cpu="500m", memory="1Gi", node_name="a", host_ports=[80], owner_uid="rs"))
    ni = c.nodes["a"]
    assert (ni.req.cpu, ni.req.mem, len(ni.pods)) == (500, 1024**3, 1)
    assert ni.ports == {("TCP", 80): {""}} and ni.owner_counts == {"rs": 1}
    c.remove_pod("default/p")
    assert (ni.req.cpu, ni.req.mem, len(ni.pods), ni.ports, ni.owner_counts) == (0, 0, 0, {}, {})


def test_assumed_pod_counts_until_confirmed_or_forgotten() -> None:
    c = SchedulerCache()
    c.set_node(make_node("a"))
    pod = make_pod("p", cpu="1")
    c.assume_pod(PodInfo(pod).with_node("a"))
    assert c.is_assumed("default/p") and c.nodes["a"].req.cpu == 1000
    # the watch event of the binding confirms it (no double counting)
    bound = make_pod("p", cpu="1", node_name="a")
    c.add_pod(bound)
    assert not c.is_assumed("default/p") and c.nodes["a"].req.cpu == 1000
    # a failed binding forgets it
    c.assume_pod(PodInfo(make_pod("q", cpu="2")).with_node("a"))
    assert c.nodes["a"].req.cpu == 3000
    c.forget_pod("default/q")
    assert c.nodes["a"].req.cpu == 1000


def test_assumed_pod_expires_after_binding_without_event() -> None:
    c = SchedulerCache(assumed_ttl=30)
    c.set_node(make_node("a"))
    c.assume_pod(PodInfo(make_pod("q", cpu="2")).with_node("a"))
    assert c.cleanup_assumed(1e9) == []  # binding not finished yet: never expires
    c.finish_binding("default/q", 100.0)
    assert c.cleanup_assumed(120.0) == []
    assert c.cleanup_assumed(131.0) == ["default/q"]
    assert c.nodes["a"].req.cpu == 0


def test_node_removed_with_pods_left_is_not_listed() -> None:
    c = SchedulerCache()
    c.set_node(make_node("a"))
    c.set_node(make_node("b"))
    c.add_pod(make_pod("p", node_name="a"))
    c.remove_node("a")
    assert [n.name for n in c.node_list()] == ["b"]
    c.remove_pod("default/p")
    assert "a" not in c.nodes


def test_pod_requests_with_init_and_overhead() -> None:
    pod = make_pod("p", cpu="200m", memory="100Mi")
    init = pod.spec.init_containers.add(name="init", image="busybox")
    init.resources.requests["cpu"].string = "1"
    pod.spec.overhead["cpu"].string = "50m"
    req, _ = pod_requests(pod)
    assert (req.cpu, req.mem) == (1050, 100 * 1024**2)
    empty, nz2 = pod_requests(make_pod("e"))
    assert (empty.cpu, empty.mem) == (0, 0) and (nz2.cpu, nz2.mem) == (100, 200 * 1024**2)


def test_normalize_image() -> None:
    assert normalize_image("nginx") == "nginx:latest"
    assert normalize_image("docker.io/library/nginx:1.27") == "nginx:1.27"
    assert normalize_image("registry:5000/app") == "registry:5000/app:latest"


def test_binding_event_confirms_the_assumed_info_without_rebuilding_it() -> None:
    c = SchedulerCache()
    c.set_node(make_node("a"))
    c.set_node(make_node("b"))
    pending = make_pod("q", cpu="2")
    assumed = PodInfo(pending).with_node("a")
    c.assume_pod(assumed)
    bound = make_pod("q", cpu="2", node_name="a")
    elsewhere = make_pod("q", cpu="2", node_name="b")
    assert not c.confirm_binding(make_pod("q", cpu="2"), bound)  # not the object the info was built from
    assert not c.confirm_binding(pending, elsewhere)  # bound to another node than assumed
    assert c.is_assumed("default/q")
    assert c.confirm_binding(pending, bound)
    assert not c.is_assumed("default/q")
    assert c.pods["default/q"] is assumed and assumed.pod is bound
    assert c.nodes["a"].req.cpu == 2000 and "default/q" in c.nodes["a"].pods
    assert not c.confirm_binding(pending, bound)  # confirmed once: a later event updates as usual
