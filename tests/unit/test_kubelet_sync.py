"""The kubelet's pod sync (node_agent.sync.Syncer) against an in-memory CRI runtime and a fake clock.

Drives one pod through its states as the pod worker would: sandbox, init containers, app containers,
restarts per restartPolicy with the CrashLoopBackOff backoff, deletion in the middle of a start, and
graceful termination. The real ImageManager and StatusManager (never started: it only holds statuses)
are used; probes are faked (no network).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import pytest

from node_agent import runtime
from node_agent.cri import api_pb2 as pb
from node_agent.cri.fake import FakeCRI
from node_agent.images import ImageManager
from node_agent.podworkers import PodWorkers
from node_agent.status import StatusManager
from node_agent.sync import CRASH_BACKOFF, Syncer
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.clock import FakeClock


class FakeProbes:
    """ProbeManager's surface for the syncer: everything ready, liveness failures set by the test."""

    def __init__(self, clock: FakeClock, hook_seconds: float = 0.0) -> None:
        self.clock = clock
        self.hook_seconds = hook_seconds  # how long a lifecycle hook "runs" on the fake clock
        self.liveness_failures: set[str] = set()
        self.hooks: list[tuple[str, str]] = []  # (container name, post_start|pre_stop)
        self.removed: list[str] = []

    def ready(self, c: core.Container, cid: str) -> bool:
        return True

    def started(self, c: core.Container, cid: str) -> bool:
        return True

    def liveness_failed(self, cid: str) -> bool:
        return cid in self.liveness_failures

    def update_pod(self, pod: core.Pod, running: dict[str, tuple[str, float]], pod_ip: str) -> None:
        pass

    def remove_pod(self, uid: str) -> None:
        self.removed.append(uid)

    async def run_handler(self, pod: core.Pod, c: core.Container, cid: str, h: core.LifecycleHandler,
                          pod_ip: str, timeout: float) -> tuple[bool, str]:
        self.hooks.append((c.name, "pre_stop" if h is c.lifecycle.pre_stop else "post_start"))
        self.clock.advance(self.hook_seconds)
        return True, ""


class Harness:
    def __init__(self, root: Path, hook_seconds: float = 0.0) -> None:
        self.clock = FakeClock()
        self.cri = FakeCRI(self.clock)
        self.probes = FakeProbes(self.clock, hook_seconds)
        self.events: list[tuple[str, str]] = []
        self.statuses = StatusManager(cast(Any, None), lambda uid: None)  # never started: holds statuses only
        self.root = root
        images = ImageManager(cast(Any, self.cri), self.event)
        self.syncer = Syncer(cast(Any, self.cri), images, cast(Any, self.probes), self.statuses, self.event,
                             root_dir=root, host_ip="192.0.2.10", get_object=_no_objects, clock=self.clock,
                             resync=3600.0)  # a returned delay below this is a backoff

    def event(self, pod: core.Pod, type_: str, reason: str, message: str) -> None:
        self.events.append((reason, message))

    def reasons(self) -> list[str]:
        return [r for r, _ in self.events]

    def status(self, pod: core.Pod) -> core.PodStatus:
        st = self.statuses.latest(pod.metadata.uid)
        assert st is not None
        return st

    def waiting(self, pod: core.Pod, name: str) -> str:
        cs = next(s for s in self.status(pod).container_statuses if s.name == name)
        return cs.state.waiting.reason


async def _no_objects(kind: str, namespace: str, name: str) -> dict[str, bytes] | None:
    return None


def make_pod(containers: tuple[str, ...] = ("app",), init: tuple[str, ...] = (), restart_policy: str = "Always",
             uid: str = "uid-1") -> core.Pod:
    pod = core.Pod()
    pod.metadata.name, pod.metadata.namespace, pod.metadata.uid = "web", "default", uid
    pod.spec.node_name = "node-1"
    pod.spec.restart_policy = restart_policy
    for name in init:
        pod.spec.init_containers.add(name=name, image="busybox")
    for name in containers:
        pod.spec.containers.add(name=name, image="nginx")
    pod.status.phase = "Pending"
    return pod


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


# -- start ----------------------------------------------------------------------------------------------


async def test_new_pod_gets_sandbox_then_init_containers_in_order_then_app_containers(h: Harness) -> None:
    pod = make_pod(containers=("app", "sidecar"), init=("init-a", "init-b"))
    await h.syncer.sync_pod(pod)
    assert h.cri.names("RunPodSandbox") == ["web"]
    assert h.cri.names("CreateContainer") == ["init-a"]  # one init container at a time
    assert h.status(pod).phase == "Pending"
    assert h.waiting(pod, "app") == "PodInitializing"

    await h.syncer.sync_pod(pod)  # init-a still running: nothing else starts
    assert h.cri.names("CreateContainer") == ["init-a"]

    h.cri.exit(h.cri.running("init-a"), 0)
    await h.syncer.sync_pod(pod)
    assert h.cri.names("CreateContainer") == ["init-a", "init-b"]

    h.cri.exit(h.cri.running("init-b"), 0)
    await h.syncer.sync_pod(pod)
    assert h.cri.names("CreateContainer") == ["init-a", "init-b", "app", "sidecar"]
    assert h.cri.names("RunPodSandbox") == ["web"]  # the same sandbox throughout
    status = h.status(pod)
    assert status.phase == "Running"
    assert status.pod_ip == "10.244.0.7" and status.host_ip == "192.0.2.10"
    assert all(cs.state.HasField("running") and cs.ready for cs in status.container_statuses)
    assert {c.type: c.status for c in status.conditions}["Ready"] == "True"
    assert h.reasons().count("Started") == 4


async def test_failed_init_container_blocks_app_containers_and_backs_off(h: Harness) -> None:
    pod = make_pod(init=("init",))
    await h.syncer.sync_pod(pod)
    h.cri.exit(h.cri.running("init"), 1)
    await h.syncer.sync_pod(pod)  # first failure: restarted at once
    assert h.cri.names("CreateContainer") == ["init", "init"]
    h.cri.exit(h.cri.running("init"), 1)
    delay = await h.syncer.sync_pod(pod)
    assert delay == pytest.approx(CRASH_BACKOFF)
    assert h.cri.names("CreateContainer") == ["init", "init"]  # app never started
    init_status = h.status(pod).init_container_statuses[0]
    assert init_status.state.waiting.reason == "CrashLoopBackOff"


async def test_sync_twice_is_idempotent(h: Harness) -> None:
    pod = make_pod(containers=("a", "b"))
    await h.syncer.sync_pod(pod)
    calls = list(h.cri.calls)
    status = h.status(pod)
    await h.syncer.sync_pod(pod)
    await h.syncer.sync_pod(pod)
    writes = {"RunPodSandbox", "CreateContainer", "StartContainer", "StopContainer", "RemoveContainer",
              "StopPodSandbox", "RemovePodSandbox"}
    assert [c for c in h.cri.calls if c[0] in writes] == [c for c in calls if c[0] in writes]
    assert h.status(pod) == status


async def test_a_steady_pods_sync_reads_the_runtime_once(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """The view is taken again after a sync only when it started or killed something (the periodic sync of a
    running pod changes nothing: the second look cost as much again)."""
    pod = make_pod(containers=("a", "b"))
    await h.syncer.sync_pod(pod)
    lists: list[str] = []
    real = h.cri.list_containers

    async def counted(**kw: Any) -> list[pb.Container]:
        lists.append(kw.get("label_selector", {}).get(runtime.POD_UID, ""))
        return await real(**kw)
    monkeypatch.setattr(h.cri, "list_containers", counted)
    await h.syncer.sync_pod(pod)
    assert lists == ["uid-1"]
    h.cri.exit(h.cri.running("b"), 1)
    lists.clear()
    await h.syncer.sync_pod(pod)  # restarts b: the status is built from a view taken after the start
    assert lists == ["uid-1", "uid-1"]
    assert [cs.restart_count for cs in h.status(pod).container_statuses] == [0, 1]
    assert all(cs.state.HasField("running") for cs in h.status(pod).container_statuses)


async def test_runtime_lists_are_snapshots_and_select_by_pod(h: Harness) -> None:
    """What a list returned does not change when the runtime does (as a decoded reply would not)."""
    one, two = make_pod(uid="uid-1"), make_pod(uid="uid-2")
    await h.syncer.sync_pod(one)
    await h.syncer.sync_pod(two)
    before = await h.cri.list_containers()
    sandboxes = await h.cri.list_pod_sandbox()
    h.cri.exit(h.cri.containers[before[0].id].id, 2)
    await h.cri.stop_pod_sandbox(sandboxes[1].id)
    assert [c.state for c in before] == [pb.CONTAINER_RUNNING] * 2
    assert [s.state for s in sandboxes] == [pb.SANDBOX_READY] * 2
    after = await h.cri.list_containers()
    assert [c.state for c in after] == [pb.CONTAINER_EXITED] * 2  # the first exited, the second's sandbox stopped
    assert [s.state for s in await h.cri.list_pod_sandbox()] == [pb.SANDBOX_READY, pb.SANDBOX_NOTREADY]
    mine = await h.cri.list_containers(label_selector={runtime.POD_UID: "uid-2"})
    assert [c.id for c in mine] == [after[1].id]
    assert await h.cri.list_pod_sandbox(label_selector={runtime.POD_UID: "uid-3"}) == []
    await h.cri.remove_pod_sandbox(sandboxes[1].id)
    assert await h.cri.list_containers(label_selector={runtime.POD_UID: "uid-2"}) == []
    assert [c.id for c in await h.cri.list_containers()] == [after[0].id]


async def test_a_restarted_kubelet_adopts_what_the_runtime_has(h: Harness, tmp_path: Path) -> None:
    pod = make_pod()
    await h.syncer.sync_pod(pod)
    # A new Syncer (kubelet restarted) over the same runtime: no new sandbox, no new container.
    again = Syncer(cast(Any, h.cri), ImageManager(cast(Any, h.cri), h.event), cast(Any, h.probes), h.statuses,
                   h.event, root_dir=tmp_path, host_ip="192.0.2.10", get_object=_no_objects, clock=h.clock)
    await again.sync_pod(pod)
    assert h.cri.names("RunPodSandbox") == ["web"] and h.cri.names("CreateContainer") == ["app"]


async def test_dead_sandbox_is_recreated_with_the_next_attempt(h: Harness) -> None:
    pod = make_pod()
    await h.syncer.sync_pod(pod)
    (sid,) = h.cri.sandboxes
    await h.cri.stop_pod_sandbox(sid)  # the sandbox died (and took its container with it)
    await h.syncer.sync_pod(pod)
    ready = [s for s in h.cri.sandboxes.values() if s.state == pb.SANDBOX_READY]
    assert len(ready) == 1 and ready[0].metadata.attempt == 1
    cid = h.cri.running("app")
    assert h.cri.containers[cid].pod_sandbox_id == ready[0].id


async def test_spec_change_restarts_the_container(h: Harness) -> None:
    pod = make_pod()
    await h.syncer.sync_pod(pod)
    old = h.cri.running("app")
    pod.spec.containers[0].image = "nginx:2"
    await h.syncer.sync_pod(pod)
    assert h.cri.statuses[old].state == pb.CONTAINER_EXITED
    new = h.cri.running("app")
    assert new != old and h.cri.containers[new].annotations[runtime.RESTART_COUNT] == "1"
    assert any("definition changed" in m for r, m in h.events if r == "Killing")


async def test_failed_liveness_probe_kills_and_restarts(h: Harness) -> None:
    pod = make_pod()
    await h.syncer.sync_pod(pod)
    old = h.cri.running("app")
    h.probes.liveness_failures.add(old)
    await h.syncer.sync_pod(pod)
    assert h.cri.stop_grace[old] == runtime.DEFAULT_GRACE
    assert h.cri.running("app") != old


# -- restarts -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("policy", "code", "restarted", "phase"), [
    ("Always", 0, True, "Running"),
    ("Always", 1, True, "Running"),
    ("OnFailure", 1, True, "Running"),
    ("OnFailure", 0, False, "Succeeded"),
    ("Never", 1, False, "Failed"),
    ("Never", 0, False, "Succeeded"),
])
async def test_exited_container_restarts_per_restart_policy(h: Harness, policy: str, code: int, restarted: bool,
                                                           phase: str) -> None:
    pod = make_pod(restart_policy=policy)
    await h.syncer.sync_pod(pod)
    h.cri.exit(h.cri.running("app"), code)
    await h.syncer.sync_pod(pod)
    assert len(h.cri.names("CreateContainer")) == (2 if restarted else 1)
    status = h.status(pod)
    assert status.phase == phase
    if not restarted:
        # A finished pod gives back its sandbox (and IP) but keeps the container and its status.
        assert all(s.state == pb.SANDBOX_NOTREADY for s in h.cri.sandboxes.values())
        assert status.container_statuses[0].state.terminated.exit_code == code
        pod.status.CopyFrom(status)
        await h.syncer.sync_pod(pod)  # and is never started again
        assert len(h.cri.names("CreateContainer")) == 1 and len(h.cri.names("RunPodSandbox")) == 1


async def test_crash_loop_backoff_doubles_on_the_fake_clock(h: Harness) -> None:
    pod = make_pod()
    await h.syncer.sync_pod(pod)
    h.cri.exit(h.cri.running("app"), 1)
    await h.syncer.sync_pod(pod)  # the first restart is immediate
    assert len(h.cri.names("CreateContainer")) == 2

    h.cri.exit(h.cri.running("app"), 1)
    delay = await h.syncer.sync_pod(pod)
    assert delay == pytest.approx(10.0)
    assert len(h.cri.names("CreateContainer")) == 2
    assert h.waiting(pod, "app") == "CrashLoopBackOff"
    assert h.reasons().count("BackOff") == 1
    status = h.status(pod).container_statuses[0]
    assert status.last_state.terminated.exit_code == 1 and status.restart_count == 1

    h.clock.advance(9)
    assert await h.syncer.sync_pod(pod) == pytest.approx(1.0)
    assert len(h.cri.names("CreateContainer")) == 2
    assert h.reasons().count("BackOff") == 1  # one event per back-off episode, not per sync
    h.clock.advance(1)
    await h.syncer.sync_pod(pod)
    assert len(h.cri.names("CreateContainer")) == 3
    assert h.cri.containers[h.cri.running("app")].annotations[runtime.RESTART_COUNT] == "2"

    h.cri.exit(h.cri.running("app"), 1)
    assert await h.syncer.sync_pod(pod) == pytest.approx(20.0)  # doubled
    h.clock.advance(19.5)
    await h.syncer.sync_pod(pod)
    assert len(h.cri.names("CreateContainer")) == 3
    h.clock.advance(0.5)
    await h.syncer.sync_pod(pod)
    assert len(h.cri.names("CreateContainer")) == 4


async def test_crash_backoff_is_capped(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.syncer.max_crash_backoff = 40.0
    pod = make_pod()
    await h.syncer.sync_pod(pod)
    delays = []
    for _ in range(6):
        h.cri.exit(h.cri.running("app"), 1)
        delay = await h.syncer.sync_pod(pod)
        if delay < h.syncer.resync:  # backing off: wait it out, then the restart
            delays.append(delay)
            h.clock.advance(delay)
            await h.syncer.sync_pod(pod)
    assert delays == [pytest.approx(10), pytest.approx(20), pytest.approx(40), pytest.approx(40),
                      pytest.approx(40)]


async def test_a_container_that_ran_ten_minutes_resets_its_backoff(h: Harness) -> None:
    pod = make_pod()
    await h.syncer.sync_pod(pod)
    h.cri.exit(h.cri.running("app"), 1)
    await h.syncer.sync_pod(pod)  # restart 1, at once (backoff armed at 10 s)
    h.cri.exit(h.cri.running("app"), 1)
    h.clock.advance(await h.syncer.sync_pod(pod))
    await h.syncer.sync_pod(pod)  # restart 2 after 10 s (next backoff 20 s)
    h.clock.advance(601)  # this one runs longer than BACKOFF_RESET before crashing
    h.cri.exit(h.cri.running("app"), 1)
    await h.syncer.sync_pod(pod)
    assert len(h.cri.names("CreateContainer")) == 4  # restarted at once
    h.cri.exit(h.cri.running("app"), 1)
    assert await h.syncer.sync_pod(pod) == pytest.approx(CRASH_BACKOFF)  # back to the first step, not 40 s


# -- deletion -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gate", ["CreateContainer", "StartContainer"])
async def test_pod_deleted_during_start_leaves_nothing_behind(h: Harness, gate: str) -> None:
    """The pod worker's race: the pod is deleted after its sandbox was created, while a container
    is being created/started. The in-flight sync finishes; the next one (the pod is gone) kills
    everything, and the worker exits."""
    pod = make_pod(containers=("a", "b"))
    pods = {pod.metadata.uid: pod}
    finished = asyncio.Event()

    async def sync(uid: str) -> float | None:  # what the kubelet's pod worker sync does
        current = pods.get(uid)
        if current is None:
            await h.syncer.kill_pod(uid, None)
            h.syncer.forget(uid)
            finished.set()
            return None
        return await h.syncer.sync_pod(current)

    h.cri.gates[gate] = asyncio.Event()
    workers = PodWorkers(sync, resync=3600)
    try:
        workers.update(pod.metadata.uid)
        await asyncio.wait_for(h.cri.entered.setdefault(gate, asyncio.Event()).wait(), 5)
        assert len(h.cri.sandboxes) == 1  # between sandbox and container start
        del pods[pod.metadata.uid]
        workers.update(pod.metadata.uid)
        h.cri.gates[gate].set()
        await asyncio.wait_for(finished.wait(), 5)
        for _ in range(10):
            if not workers.uids():
                break
            await asyncio.sleep(0)
        assert workers.uids() == []  # the worker exited
    finally:
        await workers.close()
    assert h.cri.sandboxes == {} and h.cri.containers == {}
    assert h.cri.names("CreateContainer") == ["a", "b"]
    started = h.cri.names("StartContainer")
    assert started and set(started) <= set(h.cri.stop_grace)  # every started container was stopped first
    assert pod.metadata.uid not in h.syncer.states and h.probes.removed == [pod.metadata.uid]


async def test_graceful_termination_runs_pre_stop_within_the_grace_period(tmp_path: Path) -> None:
    h = Harness(tmp_path, hook_seconds=3)
    pod = make_pod(containers=("app", "plain"))
    pod.spec.containers[0].lifecycle.pre_stop.exec.command.append("drain")
    await h.syncer.sync_pod(pod)
    app, plain = h.cri.running("app"), h.cri.running("plain")
    volumes = runtime.pod_volume_dir(tmp_path, pod.metadata.uid)
    volumes.mkdir(parents=True)

    pod.metadata.deletion_timestamp.seconds = 1
    pod.metadata.deletion_grace_period_seconds = 10
    await h.syncer.kill_pod(pod.metadata.uid, pod)

    assert h.probes.hooks == [("app", "pre_stop")]
    assert h.cri.stop_grace[app] == 7  # 10 s less the 3 s the preStop hook took
    assert h.cri.stop_grace[plain] == 10
    assert h.cri.sandboxes == {} and h.cri.containers == {}
    assert not volumes.exists()
    assert h.reasons().count("Killing") == 2


async def test_kill_of_an_unknown_pod_uses_the_grace_recorded_on_the_sandbox(h: Harness) -> None:
    pod = make_pod()
    pod.spec.termination_grace_period_seconds = 45
    await h.syncer.sync_pod(pod)
    cid = h.cri.running("app")
    await h.syncer.kill_pod(pod.metadata.uid, None)  # deleted while the kubelet was away: no pod object
    assert h.cri.stop_grace[cid] == 45
    assert h.cri.sandboxes == {} and h.cri.containers == {}


async def test_kill_pod_twice_is_harmless(h: Harness) -> None:
    pod = make_pod()
    await h.syncer.sync_pod(pod)
    await h.syncer.kill_pod(pod.metadata.uid, pod)
    n = len(h.cri.calls)
    await h.syncer.kill_pod(pod.metadata.uid, pod)
    assert [m for m, _ in h.cri.calls[n:]] == []  # nothing left to stop or remove
