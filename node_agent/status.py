"""Pod status from the runtime's view, and the status manager that writes it back.

`build_status` turns what the CRI reports (sandboxes, containers, container statuses) plus the kubelet's
own knowledge (why a container is waiting, probe results) into a core.PodStatus like Kubernetes':
phase, conditions, containerStatuses, podIP/podIPs, hostIP, startTime.

`StatusManager` writes it with update_status only when it changed, from a background task, so pod
workers never wait for the apiserver; while the apiserver is unreachable the latest status per pod is
kept and written when it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from node_agent import runtime
from node_agent.cri import api_pb2 as pb
from pybernetes import errors
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.objects import resource_version
from pybernetes.api.times import now
from pybernetes.client.client import Client

log = logging.getLogger(__name__)


@dataclass
class ContainerView:
    """One container as the runtime sees it (list entry + status when fetched)."""

    c: pb.Container
    status: pb.ContainerStatus | None

    @property
    def id(self) -> str:
        return self.c.id

    @property
    def state(self) -> int:
        return int(self.status.state if self.status is not None else self.c.state)

    @property
    def restart_count(self) -> int:
        try:
            return int(self.c.annotations.get(runtime.RESTART_COUNT, "0"))
        except ValueError:
            return 0


@dataclass
class PodView:
    """Everything the runtime has for one pod uid."""

    sandboxes: list[pb.PodSandbox] = field(default_factory=list)  # newest first
    containers: dict[str, list[ContainerView]] = field(default_factory=dict)  # name -> newest first
    pod_ip: str = ""

    def latest_sandbox(self) -> pb.PodSandbox | None:
        return self.sandboxes[0] if self.sandboxes else None

    def ready_sandbox(self) -> pb.PodSandbox | None:
        sb = self.latest_sandbox()
        return sb if sb is not None and sb.state == pb.SANDBOX_READY else None

    def latest(self, name: str, sandbox_id: str | None = None) -> ContainerView | None:
        for cv in self.containers.get(name, []):
            if sandbox_id is None or cv.c.pod_sandbox_id == sandbox_id:
                return cv
        return None

    def previous(self, name: str) -> ContainerView | None:
        lst = self.containers.get(name, [])
        return lst[1] if len(lst) > 1 else None

    def running(self) -> list[ContainerView]:
        return [cv for lst in self.containers.values() for cv in lst if cv.state == pb.CONTAINER_RUNNING]


@dataclass
class Waiting:
    reason: str
    message: str


def ts(ns: int) -> meta.Time:
    t = meta.Time()
    if ns > 0:
        t.seconds = ns // 1_000_000_000
    return t


def terminated(cv: ContainerView) -> core.ContainerStateTerminated:
    st = cv.status
    out = core.ContainerStateTerminated(container_id=f"containerd://{cv.id}")
    if st is None:
        out.reason = "Unknown"
        return out
    out.exit_code = st.exit_code
    out.reason = st.reason or ("Completed" if st.exit_code == 0 else "Error")
    out.message = st.message
    if st.started_at > 0:
        out.started_at.CopyFrom(ts(st.started_at))
    if st.finished_at > 0:
        out.finished_at.CopyFrom(ts(st.finished_at))
    return out


ReadyFn = Callable[[core.Container, str], bool]


def container_status(c: core.Container, view: PodView, waiting: Waiting | None, ready: ReadyFn,
                     started: ReadyFn, default_waiting: str) -> core.ContainerStatus:
    cs = core.ContainerStatus(name=c.name, image=c.image, image_id="", ready=False, restart_count=0)
    latest = view.latest(c.name)
    if latest is not None:
        cs.restart_count = latest.restart_count
        cs.container_id = f"containerd://{latest.id}"
        cs.image_id = (latest.status.image_ref if latest.status is not None else latest.c.image_ref)
    running = latest is not None and latest.state == pb.CONTAINER_RUNNING
    if running and latest is not None:
        assert latest.status is not None or True
        started_ns = latest.status.started_at if latest.status is not None else latest.c.created_at
        cs.state.running.started_at.CopyFrom(ts(started_ns))
        prev = view.previous(c.name)
        if prev is not None and prev.state == pb.CONTAINER_EXITED:
            cs.last_state.terminated.CopyFrom(terminated(prev))
        cs.ready = ready(c, latest.id)
        cs.started = started(c, latest.id)
        return cs
    cs.started = False
    if latest is not None and latest.state == pb.CONTAINER_EXITED:
        if waiting is not None:
            cs.state.waiting.reason, cs.state.waiting.message = waiting.reason, waiting.message
            cs.last_state.terminated.CopyFrom(terminated(latest))
        else:
            cs.state.terminated.CopyFrom(terminated(latest))
            prev = view.previous(c.name)
            if prev is not None and prev.state == pb.CONTAINER_EXITED:
                cs.last_state.terminated.CopyFrom(terminated(prev))
        return cs
    if waiting is not None:
        cs.state.waiting.reason, cs.state.waiting.message = waiting.reason, waiting.message
    else:
        cs.state.waiting.reason = default_waiting
    return cs


def _phase(pod: core.Pod, init: list[core.ContainerStatus], app: list[core.ContainerStatus]) -> str:
    policy = pod.spec.restart_policy or "Always"
    for s in init:
        if s.state.HasField("terminated") and s.state.terminated.exit_code == 0:
            continue
        if s.state.HasField("terminated") and policy == "Never":
            return "Failed"
        if (s.state.HasField("waiting") and s.last_state.HasField("terminated")
                and s.last_state.terminated.exit_code != 0 and policy == "Never"):
            return "Failed"
        return "Pending"
    running = waiting = stopped = succeeded = failed = 0
    for s in app:
        if s.state.HasField("running"):
            running += 1
        elif s.state.HasField("terminated"):
            stopped += 1
            if s.state.terminated.exit_code == 0:
                succeeded += 1
            else:
                failed += 1
        elif s.last_state.HasField("terminated"):
            stopped += 1
        else:
            waiting += 1
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "OnFailure":
            return "Running"
        return "Failed"
    return "Pending"


def _cond(old: core.PodStatus, type_: str, ok: bool, reason: str = "", message: str = "") -> core.PodCondition:
    status = "True" if ok else "False"
    c = core.PodCondition(type=type_, status=status, reason=reason if not ok else "",
                          message=message if not ok else "")
    for o in old.conditions:
        if o.type == type_ and o.status == status:
            c.last_transition_time.CopyFrom(o.last_transition_time)
            break
    else:
        c.last_transition_time.CopyFrom(now())
    return c


def build_status(pod: core.Pod, view: PodView, waiting: dict[str, Waiting], ready: ReadyFn, started: ReadyFn,
                 host_ip: str, start_time: meta.Time | None, rejected: Waiting | None = None,
                 old: core.PodStatus | None = None) -> core.PodStatus:
    """The pod's status; `old` (default pod.status) keeps condition transition times and startTime."""
    if old is None:
        old = pod.status
    st = core.PodStatus()
    st.qos_class = old.qos_class
    if rejected is not None:
        st.phase, st.reason, st.message = "Failed", rejected.reason, rejected.message
        st.host_ip = host_ip
        if any(view.latest(c.name) is not None for c in pod.spec.containers):  # evicted after it ran
            st.container_statuses.extend(container_status(c, view, None, ready, started, "ContainerCreating")
                                         for c in pod.spec.containers)
        return st
    init = [container_status(c, view, waiting.get(c.name), ready, started, "PodInitializing")
            for c in pod.spec.init_containers]
    init_done = all(s.state.HasField("terminated") and s.state.terminated.exit_code == 0 for s in init)
    app = [container_status(c, view, waiting.get(c.name), ready, started,
                            "ContainerCreating" if init_done else "PodInitializing")
           for c in pod.spec.containers]
    st.init_container_statuses.extend(init)
    st.container_statuses.extend(app)
    st.phase = _phase(pod, init, app)
    if old.phase in ("Succeeded", "Failed"):
        st.phase = old.phase  # terminal phases never change back
    terminal = st.phase in ("Succeeded", "Failed")
    all_ready = bool(app) and all(s.ready for s in app)
    not_ready = [s.name for s in app if not s.ready]
    st.conditions.append(_cond(old, "PodReadyToStartContainers", view.ready_sandbox() is not None or terminal))
    st.conditions.append(_cond(old, "Initialized", init_done, "ContainersNotInitialized",
                               "containers with incomplete status: "
                               f"[{' '.join(s.name for s in init if not s.state.HasField('terminated'))}]"))
    reason = "PodCompleted" if terminal else "ContainersNotReady"
    msg = f"containers with unready status: [{' '.join(not_ready)}]"
    st.conditions.append(_cond(old, "ContainersReady", all_ready and not terminal, reason, msg))
    st.conditions.append(_cond(old, "Ready", all_ready and not terminal, reason, msg))
    st.conditions.append(_cond(old, "PodScheduled", True))
    st.host_ip = host_ip
    if host_ip:
        st.host_ips.append(core.HostIP(ip=host_ip))
    ip = view.pod_ip or old.pod_ip
    if ip:
        st.pod_ip = ip
        st.pod_ips.append(core.PodIP(ip=ip))
    if old.HasField("start_time"):
        st.start_time.CopyFrom(old.start_time)
    elif start_time is not None:
        st.start_time.CopyFrom(start_time)
    return st


def _key(st: core.PodStatus) -> bytes:
    return st.SerializeToString(deterministic=True)


class StatusManager:
    """Writes pod statuses in the background; only changed ones; survives apiserver outages."""

    def __init__(self, client: Client, get_pod: Callable[[str], core.Pod | None]) -> None:
        self.client = client
        self.get_pod = get_pod
        self._pending: dict[str, core.PodStatus] = {}
        self._written: dict[str, bytes] = {}
        self._stored: dict[str, bytes] = {}  # uid -> the status as the apiserver returned our last write
        self._written_rv: dict[str, int] = {}  # uid -> the resourceVersion of our last write
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.on_written: Callable[[core.Pod], None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="status-manager")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def set(self, pod: core.Pod, status: core.PodStatus) -> None:
        """Queue `status` unless the API (`pod`, from the informer) already has it. A status we wrote counts as
        there while the cache has not caught up with our write; once it has, a difference means someone else
        changed the status (the node lifecycle controller's Ready=False while the node was NotReady), and the
        kubelet writes its own again, as Kubernetes' status manager reconciles with the API."""
        uid = pod.metadata.uid
        k = _key(status)
        cur = _key(pod.status)
        ours = self._written.get(uid) == k and (cur == self._stored.get(uid)
                                                or resource_version(pod) <= self._written_rv.get(uid, 0))
        if cur == k or ours:
            self._pending.pop(uid, None)
            return
        self._pending[uid] = status
        self._wake.set()

    def forget(self, uid: str) -> None:
        self._pending.pop(uid, None)
        self._written.pop(uid, None)
        self._stored.pop(uid, None)
        self._written_rv.pop(uid, None)

    def latest(self, uid: str) -> core.PodStatus | None:
        """The newest status handed to the manager for `uid` (pending or written)."""
        if uid in self._pending:
            return self._pending[uid]
        raw = self._written.get(uid)
        return core.PodStatus.FromString(raw) if raw is not None else None

    def pending(self) -> int:
        return len(self._pending)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            failed = False
            for uid in list(self._pending):
                st = self._pending.get(uid)
                if st is None:
                    continue
                try:
                    await self._write(uid, st)
                except errors.Unavailable as e:
                    log.warning("status not written (apiserver unreachable) pod_uid=%s error=%s", uid, e)
                    failed = True
                    break
                except Exception as e:
                    log.warning("status not written pod_uid=%s error=%r", uid, e)
                    failed = True
            if failed:
                await asyncio.sleep(1.0)
                self._wake.set()

    async def _write(self, uid: str, st: core.PodStatus) -> None:
        cached = self.get_pod(uid)
        if cached is None:
            self._pending.pop(uid, None)
            return
        pod = core.Pod()
        pod.CopyFrom(cached)
        for attempt in range(3):
            pod.status.CopyFrom(st)
            try:
                out = await self.client.update_status(pod)
            except errors.Conflict:
                if attempt == 2:
                    raise
                pod = await self.client.get(core.Pod, cached.metadata.name, namespace=cached.metadata.namespace)
                if pod.metadata.uid != uid:
                    self._pending.pop(uid, None)
                    return
                continue
            except errors.NotFound:
                self._pending.pop(uid, None)
                return
            if self._pending.get(uid) is st:
                del self._pending[uid]
            self._written[uid] = _key(st)
            self._stored[uid] = _key(out.status)
            self._written_rv[uid] = resource_version(out)
            log.info("status written pod=%s/%s phase=%s", pod.metadata.namespace, pod.metadata.name, st.phase)
            if self.on_written is not None:
                self.on_written(out)
            return
