"""Framework (sampling, weights, FitError message), configuration files and the Scheduler's decisions
with a fake client (binding only through bind, status patch and events on failure, assumed pods)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pybernetes import errors
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.clock import FakeClock
from services.scheduler import config
from services.scheduler.cache import PodInfo, SchedulerCache
from services.scheduler.framework import FitError, num_feasible_nodes_to_find
from services.scheduler.scheduler import Scheduler
from services.scheduler.testing import make_node, make_pod


def test_num_feasible_nodes_to_find() -> None:
    assert num_feasible_nodes_to_find(0, 50) == 50
    assert num_feasible_nodes_to_find(0, 1000) == 420  # 50 - 1000/125 = 42%
    assert num_feasible_nodes_to_find(0, 5000) == 500  # 10%
    assert num_feasible_nodes_to_find(0, 10000) == 500  # min 5%
    assert num_feasible_nodes_to_find(0, 150) == 100  # at least 100
    assert num_feasible_nodes_to_find(100, 5000) == 5000
    assert num_feasible_nodes_to_find(20, 1000) == 200


def cache_of(*nodes: core.Node, pods: tuple[core.Pod, ...] = ()) -> SchedulerCache:
    c = SchedulerCache()
    for n in nodes:
        c.set_node(n)
    for p in pods:
        c.add_pod(p)
    return c


def test_fit_error_message_as_kubernetes() -> None:
    fwk = config.Profile().build()
    c = cache_of(make_node("n1", cpu="1"), make_node("n2", cpu="1"), make_node("n3", cpu="1"))
    with pytest.raises(FitError) as ei:
        fwk.schedule(c, PodInfo(make_pod("big", cpu="4")))
    assert ei.value.message() == "0/3 nodes are available: 3 Insufficient cpu."
    assert ei.value.plugins == {"NodeResourcesFit"}
    c.set_node(make_node("n3", cpu="8", taints=[("node.kubernetes.io/not-ready", "", "NoSchedule")]))
    with pytest.raises(FitError) as ei:
        fwk.schedule(c, PodInfo(make_pod("big", cpu="4")))
    assert ei.value.message() == ("0/3 nodes are available: 1 node(s) had untolerated taint "
                                  "{node.kubernetes.io/not-ready: }, 2 Insufficient cpu.")
    with pytest.raises(FitError) as ei:
        fwk.schedule(SchedulerCache(), PodInfo(make_pod("p")))
    assert "no nodes available" in ei.value.message()


def test_sampling_rotates_and_scores_subset() -> None:
    fwk = config.Profile().build()
    c = cache_of(*(make_node(f"n{i:04}") for i in range(1000)))
    r = fwk.schedule(c, PodInfo(make_pod("p", cpu="100m")))
    assert r.feasible == 420 and r.evaluated >= 420
    start = fwk.next_start
    fwk.schedule(c, PodInfo(make_pod("q", cpu="100m")))
    assert fwk.next_start != start


def test_weights_decide() -> None:
    # MostAllocated packs, LeastAllocated spreads
    pods = (make_pod("x", cpu="2", node_name="a"),)
    spread = config.Profile().build()
    c = cache_of(make_node("a"), make_node("b"), pods=pods)
    assert spread.schedule(c, PodInfo(make_pod("p", cpu="1", memory="1Gi"))).node == "b"
    prof = config.profile_from_dict({
        "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
        "profiles": [{"schedulerName": "default-scheduler",
                      "plugins": {"score": {"disabled": [{"name": "*"}],
                                            "enabled": [{"name": "NodeResourcesFit", "weight": 5}]}},
                      "pluginConfig": [{"name": "NodeResourcesFit",
                                        "args": {"scoringStrategy": {"type": "MostAllocated"}}}]}]})
    assert prof.scores == [("NodeResourcesFit", 5)]
    pack = prof.build()
    r = pack.schedule(cache_of(make_node("a"), make_node("b"), pods=pods), PodInfo(make_pod("p", cpu="1")))
    assert r.node == "a" and set(r.breakdown) == {"NodeResourcesFit"}


def test_config_pybernetes_form_and_errors(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("""
apiVersion: pybernetes.io/v1
kind: SchedulerConfiguration
schedulerName: my-scheduler
percentageOfNodesToScore: 30
podInitialBackoffSeconds: 2
podMaxBackoffSeconds: 20
plugins:
  score:
    enabled: [{name: ImageLocality, weight: 7}]
    disabled: [{name: SelectorSpread}]
  filter:
    disabled: [{name: NodePorts}]
""")
    p = config.load(f)
    assert p.scheduler_name == "my-scheduler" and p.percentage_of_nodes_to_score == 30
    assert (p.pod_initial_backoff, p.pod_max_backoff) == (2.0, 20.0)
    assert ("ImageLocality", 7) in p.scores and all(n != "SelectorSpread" for n, _ in p.scores)
    assert "NodePorts" not in p.filters
    assert config.load(None).scheduler_name == "default-scheduler"
    for bad in ({"apiVersion": "v1", "kind": "X"},
                {"apiVersion": "pybernetes.io/v1", "kind": "SchedulerConfiguration",
                 "plugins": {"score": {"enabled": [{"name": "Nope"}]}}},
                {"apiVersion": "pybernetes.io/v1", "kind": "SchedulerConfiguration",
                 "pluginConfig": [{"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "Bogus"}}}]},
                {"apiVersion": "pybernetes.io/v1", "kind": "SchedulerConfiguration",
                 "plugins": {"filter": {"enabled": [{"name": "ImageLocality"}]}}}):
        with pytest.raises(config.ConfigError):
            config.profile_from_dict(bad)


class FakeClient:
    def __init__(self) -> None:
        self.binds: list[tuple[str, str, str]] = []
        self.patches: list[tuple[str, dict[str, Any], str]] = []
        self.fail: dict[str, Exception] = {}

    async def bind(self, namespace: str, pod_name: str, node_name: str, *, uid: str = "") -> None:
        if pod_name in self.fail:
            raise self.fail[pod_name]
        self.binds.append((namespace, pod_name, node_name))

    async def patch(self, cls: type, name: str, patch: dict[str, Any], *, namespace: str = "",
                    subresource: str = "", patch_type: str = "") -> None:
        self.patches.append((name, patch, subresource))


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []

    def event(self, obj: Any, type_: str, reason: str, message: str) -> None:
        self.events.append((obj.metadata.name, type_, reason, message))


def new_scheduler() -> tuple[Scheduler, FakeClient, FakeRecorder]:
    client, rec = FakeClient(), FakeRecorder()
    s = Scheduler(client, config.Profile().build(), recorder=rec, clock=FakeClock())  # type: ignore[arg-type]
    return s, client, rec


async def drain(s: Scheduler) -> None:
    while (q := s.queue.pop_nowait()) is not None:
        s.schedule_one(q)
    for _ in range(5):
        await asyncio.sleep(0)
    await asyncio.gather(*list(s._tasks))


async def test_assumed_pods_count_before_watch_event() -> None:
    s, client, rec = new_scheduler()
    s.on_node_add(make_node("a", cpu="2"))
    s.on_node_add(make_node("b", cpu="2"))
    for i in range(4):
        s.on_pod_add(make_pod(f"p{i}", cpu="1"))
    await drain(s)  # no watch events for the bindings arrive in between
    nodes = sorted(n for _, _, n in client.binds)
    assert nodes == ["a", "a", "b", "b"]
    assert [e[2] for e in rec.events] == ["Scheduled"] * 4
    assert rec.events[0][3].startswith("Successfully assigned default/p0 to ")
    s.on_pod_add(make_pod("p4", cpu="1"))
    await drain(s)
    assert len(client.binds) == 4
    assert rec.events[-1][1:3] == ("Warning", "FailedScheduling")
    assert rec.events[-1][3] == "0/2 nodes are available: 2 Insufficient cpu."
    name, patch, sub = client.patches[-1]
    cond = patch["status"]["conditions"][0]
    assert (name, sub, cond["type"], cond["status"], cond["reason"]) == (
        "p4", "status", "PodScheduled", "False", "Unschedulable")
    assert s.queue.where("default/p4") == "unschedulable"
    # a bigger node arrives: the pod is requeued by the NodeAdd event and scheduled there
    s.on_node_add(make_node("c", cpu="4"))
    assert s.queue.where("default/p4") in ("active", "backoff")
    assert isinstance(s.clock, FakeClock)
    s.clock.advance(1.1)
    s.queue.flush_backoff_completed()
    await drain(s)
    assert client.binds[-1] == ("default", "p4", "c")


async def test_only_own_scheduler_name_and_pending_pods() -> None:
    s, client, _ = new_scheduler()
    s.on_node_add(make_node("a"))
    s.on_pod_add(make_pod("mine"))
    s.on_pod_add(make_pod("other", scheduler_name="other-scheduler"))
    s.on_pod_add(make_pod("bound", node_name="a"))
    await drain(s)
    assert client.binds == [("default", "mine", "a")]


async def test_binding_conflict_forgets_and_error_backs_off() -> None:
    s, client, _ = new_scheduler()
    s.on_node_add(make_node("a", cpu="1"))
    client.fail["taken"] = errors.Conflict('pod taken is already assigned to node "x"')
    client.fail["flaky"] = errors.Unavailable("apiserver down")
    s.on_pod_add(make_pod("taken", cpu="1"))
    await drain(s)
    assert s.cache.nodes["a"].req.cpu == 0 and not s.cache.is_assumed("default/taken")
    assert s.queue.where("default/taken") is None
    s.on_pod_add(make_pod("flaky", cpu="1"))
    await drain(s)
    assert s.cache.nodes["a"].req.cpu == 0
    assert s.queue.where("default/flaky") == "backoff"


async def test_bound_watch_event_confirms_assumed_pod() -> None:
    s, _, _ = new_scheduler()
    s.on_node_add(make_node("a", cpu="2"))
    pending = make_pod("p", cpu="1")
    s.on_pod_add(pending)
    await drain(s)
    assert s.cache.is_assumed("default/p")
    bound = make_pod("p", cpu="1", node_name="a")
    s.on_pod_update(pending, bound)
    assert not s.cache.is_assumed("default/p") and s.cache.nodes["a"].req.cpu == 1000
    s.on_pod_delete(bound)
    assert s.cache.nodes["a"].req.cpu == 0


def test_parse_args() -> None:
    from services.scheduler.main import parse_args

    cfg = parse_args(["--server", "127.0.0.1:6443", "--token", "t"])
    assert cfg.leader_elect and cfg.health_port == 10259 and cfg.lease_name == "kube-scheduler"
    assert cfg.lease_namespace == "kube-system"
    cfg = parse_args(["--leader-elect=false", "--health-port", "0", "--config", "/x.yaml", "--scheduler-name", "s2"])
    assert not cfg.leader_elect and cfg.health_port == 0 and str(cfg.config_file) == "/x.yaml"
    assert cfg.scheduler_name == "s2"
