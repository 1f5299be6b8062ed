"""Pod sync: Kubernetes' kuberuntime SyncPod/KillPod against the CRI.

One `sync_pod(pod)` looks at what the runtime has for the pod (sandboxes and containers found by the
io.kubernetes.pod.uid label, so a restarted kubelet adopts what it started before), then:
  1. creates the sandbox if there is no ready one (and the pod is not finished);
  2. runs init containers one at a time, in order, each to successful completion;
  3. starts app containers that are missing, restarts exited ones per restartPolicy with the
     CrashLoopBackOff backoff (10 s doubling to 300 s; reset once a container ran 10 minutes), and
     kills/restarts containers whose liveness probe failed or whose spec changed;
  4. hands the resulting status to the status manager and the running containers to the probers.
`kill_pod` runs preStop hooks, stops containers with the grace period (SIGTERM, then SIGKILL by the
runtime), stops and removes the sandboxes and the pod's directories.
Every outcome that keeps a container from running leaves a waiting reason in the status and an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from google.protobuf.message import Message
from prometheus_client import Counter, Gauge, Histogram

from node_agent import runtime
from node_agent.cri import api_pb2 as pb
from node_agent.cri.client import CRIClient
from node_agent.cri.errors import CRIError, NotFound
from node_agent.dns import PodDNS
from node_agent.images import ImageError, ImageManager
from node_agent.probes import ProbeManager
from node_agent.status import ContainerView, PodView, StatusManager, Waiting, build_status
from node_agent.tokens import TokenManager
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.times import now
from pybernetes.clock import Clock, RealClock

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Message)

RUNNING_PODS = Gauge("kubelet_running_pods", "Number of pods that have a running pod sandbox")
RUNNING_CONTAINERS = Gauge("kubelet_running_containers", "Number of containers currently running")
POD_START = Histogram("kubelet_pod_start_duration_seconds",
                      "Seconds from the kubelet seeing a pod to all its containers running",
                      buckets=(0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 300))
RUNTIME_OPS = Histogram("kubelet_runtime_operations_duration_seconds", "Duration of runtime operations",
                        ["operation_type"],
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
RUNTIME_ERRORS = Counter("kubelet_runtime_operations_errors_total", "Runtime operation errors",
                         ["operation_type"])

CRASH_BACKOFF = 10.0
MAX_CRASH_BACKOFF = 300.0
BACKOFF_RESET = 600.0  # a container that ran this long restarts without backoff

EventFn = Callable[[core.Pod, str, str, str], None]
ServiceEnv = Callable[[], Awaitable[dict[str, str]]]  # the service variables every container gets

_OPS = {"RunPodSandbox": "run_podsandbox", "StopPodSandbox": "stop_podsandbox",
        "RemovePodSandbox": "remove_podsandbox", "PodSandboxStatus": "podsandbox_status",
        "ListPodSandbox": "list_podsandbox", "CreateContainer": "create_container",
        "StartContainer": "start_container", "StopContainer": "stop_container",
        "RemoveContainer": "remove_container", "ListContainers": "list_containers",
        "ContainerStatus": "container_status", "ExecSync": "exec_sync", "PullImage": "pull_image",
        "ImageStatus": "image_status", "ImageFsInfo": "image_fs_info", "Version": "version", "Status": "status"}


class InstrumentedCRI(CRIClient):
    """CRIClient that records kubelet_runtime_operations_* for every call."""

    async def _call(self, service: str, method: str, request: Message, resp_type: type[R],
                    deadline: float | None = None) -> R:
        op = _OPS.get(method, method.lower())
        t0 = time.monotonic()
        try:
            return await super()._call(service, method, request, resp_type, deadline)
        except CRIError:
            RUNTIME_ERRORS.labels(op).inc()
            raise
        finally:
            RUNTIME_OPS.labels(op).observe(time.monotonic() - t0)


@dataclass
class PodState:
    """What the kubelet remembers about one pod between syncs (not persisted)."""

    first_seen: float = field(default_factory=time.monotonic)
    start_time: meta.Time = field(default_factory=now)
    waiting: dict[str, Waiting] = field(default_factory=dict)
    backoff: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (delay, last restart)
    exited: dict[str, pb.ContainerStatus] = field(default_factory=dict)  # cid -> final status
    sandbox_ips: dict[str, str] = field(default_factory=dict)
    rejected: Waiting | None = None
    start_observed: bool = False
    killing: bool = False


class Syncer:
    def __init__(self, cri: CRIClient, images: ImageManager, probes: ProbeManager, statuses: StatusManager,
                 event: EventFn, *, root_dir: Path, host_ip: str, get_object: runtime.ObjectGetter,
                 crash_backoff: float = CRASH_BACKOFF, max_crash_backoff: float = MAX_CRASH_BACKOFF,
                 resync: float = 10.0, clock: Clock | None = None, dns: PodDNS | None = None,
                 tokens: TokenManager | None = None, service_env: ServiceEnv | None = None) -> None:
        self.cri = cri
        self.images = images
        self.probes = probes
        self.statuses = statuses
        self.event = event
        self.root_dir = root_dir
        self.host_ip = host_ip
        self.get_object = get_object
        self.crash_backoff = crash_backoff
        self.max_crash_backoff = max_crash_backoff
        self.resync = resync
        self.clock: Clock = clock or RealClock()  # CrashLoopBackOff and preStop grace time (FakeClock in tests)
        self.states: dict[str, PodState] = {}
        self.runtime_writes = 0  # containers started or killed, by any pod's sync: a view taken before may be old
        self.dns = dns or PodDNS()  # the pod's resolv.conf (--cluster-dns, --cluster-domain, --resolv-conf)
        self.tokens = tokens  # ServiceAccount tokens of serviceAccountToken projections, refreshed when due
        self.service_env = service_env  # KUBERNETES_SERVICE_HOST/PORT and friends, for every container

    def state(self, uid: str) -> PodState:
        st = self.states.get(uid)
        if st is None:
            st = self.states[uid] = PodState()
        return st

    # -- the runtime's view of a pod --------------------------------------------------------------

    async def view(self, uid: str, st: PodState | None = None) -> PodView:
        sel = {runtime.POD_UID: uid}
        sandboxes, containers = await asyncio.gather(self.cri.list_pod_sandbox(label_selector=sel),
                                                     self.cri.list_containers(label_selector=sel))
        v = PodView(sandboxes=sorted(sandboxes, key=lambda s: (s.metadata.attempt, s.created_at), reverse=True))
        by_name: dict[str, list[pb.Container]] = {}
        for c in containers:
            by_name.setdefault(c.labels.get(runtime.CONTAINER_NAME, c.metadata.name), []).append(c)

        async def status_of(c: pb.Container) -> pb.ContainerStatus | None:
            if st is not None and c.id in st.exited:
                return st.exited[c.id]
            try:
                s = await self.cri.container_status(c.id)
            except NotFound:
                return None
            if st is not None and s.state == pb.CONTAINER_EXITED:
                st.exited[c.id] = s
            return s

        for name, lst in by_name.items():
            lst.sort(key=lambda c: (_restart_count(c), c.created_at), reverse=True)
            stats = await asyncio.gather(*(status_of(c) for c in lst[:2]))
            v.containers[name] = [ContainerView(c, stats[i] if i < 2 else None) for i, c in enumerate(lst)]
        sb = v.ready_sandbox()
        if sb is not None:
            ip = st.sandbox_ips.get(sb.id) if st is not None else None
            if not ip:
                try:
                    ip = (await self.cri.pod_sandbox_status(sb.id)).status.network.ip
                except NotFound:
                    ip = ""
                if st is not None and ip:
                    st.sandbox_ips[sb.id] = ip
            v.pod_ip = ip or ""
        return v

    # -- sync -------------------------------------------------------------------------------------

    def _should_restart(self, pod: core.Pod, cv: ContainerView) -> bool:
        policy = pod.spec.restart_policy or "Always"
        if policy == "Always":
            return True
        if policy == "Never":
            return False
        code = cv.status.exit_code if cv.status is not None else 1
        return code != 0

    def _backoff(self, pod: core.Pod, st: PodState, name: str, cv: ContainerView) -> float:
        """0 when the container may restart now (and the backoff advances), else seconds to wait."""
        bo = st.backoff.get(name)
        s = cv.status
        if bo is not None and s is not None and s.finished_at and s.started_at:
            if (s.finished_at - s.started_at) / 1e9 > BACKOFF_RESET:
                bo = None
        t = self.clock.now()
        if bo is None:
            st.backoff[name] = (self.crash_backoff, t)
            return 0.0
        delay, last = bo
        if t < last + delay:
            return last + delay - t
        st.backoff[name] = (min(delay * 2, self.max_crash_backoff), t)
        return 0.0

    def _crash_waiting(self, pod: core.Pod, st: PodState, name: str, wait: float) -> None:
        delay = st.backoff[name][0]
        md = pod.metadata
        msg = (f"back-off {int(delay)}s restarting failed container={name} "
               f"pod={md.name}_{md.namespace}({md.uid})")
        prev = st.waiting.get(name)
        if prev is None or prev.reason != "CrashLoopBackOff":
            self.event(pod, "Warning", "BackOff", f"Back-off restarting failed container {name} in pod "
                                                  f"{md.name}_{md.namespace}({md.uid})")
        st.waiting[name] = Waiting("CrashLoopBackOff", msg)

    def should_create_sandbox(self, pod: core.Pod, view: PodView) -> bool:
        if not view.sandboxes:
            return True
        if pod.status.phase in ("Succeeded", "Failed"):
            return False
        policy = pod.spec.restart_policy or "Always"
        latest = [view.latest(c.name) for c in pod.spec.containers]
        if policy == "Never" and any(cv is not None for cv in latest):
            return False
        if policy == "OnFailure" and all(
                cv is not None and cv.state == pb.CONTAINER_EXITED and cv.status is not None
                and cv.status.exit_code == 0 for cv in latest):
            return False
        return True

    async def sync_pod(self, pod: core.Pod) -> float:
        uid = pod.metadata.uid
        st = self.state(uid)
        if st.rejected is not None:
            view = await self.view(uid, st)
            if view.running() or view.ready_sandbox() is not None:  # evicted while running: end it now
                await self.stop_pod(pod, view, grace=0)
                view = await self.view(uid, st)
            self._set_status(pod, st, view)
            return 60.0
        view = await self.view(uid, st)
        delays: list[float] = [self.resync]
        sb = view.ready_sandbox()
        terminal = pod.status.phase in ("Succeeded", "Failed")
        if sb is None and not terminal and self.should_create_sandbox(pod, view):
            for dead in view.running():  # containers of a dead sandbox
                await self._stop(dead.id, 0)
            attempt = (view.sandboxes[0].metadata.attempt + 1) if view.sandboxes else 0
            cfg = runtime.sandbox_config(pod, self.root_dir, attempt, self.dns.config(pod, self.event))
            try:
                sid = await self.cri.run_pod_sandbox(cfg)
            except CRIError as e:
                self.event(pod, "Warning", "FailedCreatePodSandBox",
                           f"Failed to create pod sandbox: {e.message}")
                for c in pod.spec.containers:
                    st.waiting[c.name] = Waiting("ContainerCreating", f"Failed to create pod sandbox: {e.message}")
                self._set_status(pod, st, view)
                raise
            log.info("sandbox created pod=%s/%s sandbox=%s attempt=%d", pod.metadata.namespace,
                     pod.metadata.name, sid[:12], attempt)
            view = await self.view(uid, st)
            sb = view.ready_sandbox()
        if sb is not None and not terminal:
            await self._refresh_tokens(pod, view)
            sbcfg = runtime.sandbox_config(pod, self.root_dir, sb.metadata.attempt)
            writes = self.runtime_writes
            delay = await self._sync_containers(pod, st, view, sb, sbcfg)
            if delay is not None:
                delays.append(delay)
            if self.runtime_writes != writes:  # else (a steady pod's periodic sync) the view is still the runtime's
                view = await self.view(uid, st)
        status = self._set_status(pod, st, view)
        if status.phase in ("Succeeded", "Failed"):
            await self._finish(pod, view)
        running = {}
        for c in pod.spec.containers:
            rv = view.latest(c.name)
            if rv is not None and rv.state == pb.CONTAINER_RUNNING:
                started = (rv.status.started_at if rv.status is not None else rv.c.created_at) / 1e9
                running[c.name] = (rv.id, started)
        self.probes.update_pod(pod, running, view.pod_ip)
        if not st.start_observed and pod.spec.containers and len(running) == len(pod.spec.containers):
            st.start_observed = True
            POD_START.observe(time.monotonic() - st.first_seen)
        await self._gc(view)
        return max(min(delays), 0.05)

    def _token_getter(self) -> runtime.TokenGetter | None:
        return self.tokens.token if self.tokens is not None else None

    async def _refresh_tokens(self, pod: core.Pod, view: PodView) -> None:
        """Rewrite the running pod's volumes when a projected token is due (80 % of its lifetime)."""
        if (self.tokens is None or not view.running() or not runtime.has_token_projection(pod)
                or not self.tokens.due(pod.metadata.uid)):
            return
        try:
            await runtime.prepare_volumes(pod, self.root_dir, self.get_object, self.tokens.token)
        except runtime.ConfigError as e:
            log.warning("token refresh failed pod=%s/%s error=%s", pod.metadata.namespace, pod.metadata.name,
                        e.message)

    def _set_status(self, pod: core.Pod, st: PodState, view: PodView) -> core.PodStatus:
        uid = pod.metadata.uid
        status = build_status(pod, view, st.waiting, self.probes.ready, self.probes.started, self.host_ip,
                              st.start_time, st.rejected, old=self.statuses.latest(uid) or pod.status)
        self.statuses.set(pod, status)
        return status

    async def _finish(self, pod: core.Pod, view: PodView) -> None:
        """A finished pod keeps its status but gives back its sandbox (and IP)."""
        sb = view.ready_sandbox()
        if sb is not None and not view.running():
            with contextlib.suppress(CRIError):
                await self.cri.stop_pod_sandbox(sb.id)

    async def _sync_containers(self, pod: core.Pod, st: PodState, view: PodView, sb: pb.PodSandbox,
                               sbcfg: pb.PodSandboxConfig) -> float | None:
        delays: list[float] = []
        volumes: dict[str, str] | None = None

        async def start(c: core.Container, init: bool) -> None:
            nonlocal volumes
            latest = view.latest(c.name)
            rc = latest.restart_count + 1 if latest is not None else 0
            if volumes is None:
                try:
                    volumes = await runtime.prepare_volumes(pod, self.root_dir, self.get_object, self._token_getter())
                except runtime.ConfigError as e:
                    self._config_error(pod, st, c, e)
                    delays.append(5.0)
                    return
            d = await self.start_container(pod, st, c, sb, sbcfg, rc, view.pod_ip, volumes, init)
            if d is not None:
                delays.append(d)

        # Init containers: one at a time, in order.
        for c in pod.spec.init_containers:
            cv = view.latest(c.name, sb.id)
            if cv is None:
                await start(c, True)
                return min(delays, default=None)
            if cv.state == pb.CONTAINER_RUNNING:
                return None
            if cv.state == pb.CONTAINER_EXITED and cv.status is not None and cv.status.exit_code == 0:
                st.waiting.pop(c.name, None)
                continue
            if (pod.spec.restart_policy or "Always") == "Never":
                st.waiting.pop(c.name, None)
                return None
            wait = self._backoff(pod, st, c.name, cv)
            if wait > 0:
                self._crash_waiting(pod, st, c.name, wait)
                return wait
            await start(c, True)
            return min(delays, default=None)

        for c in pod.spec.containers:
            found = view.latest(c.name, sb.id)
            if found is None:
                await start(c, False)
                continue
            cv = found
            if cv.state == pb.CONTAINER_RUNNING:
                reason = ""
                if cv.c.annotations.get(runtime.CONTAINER_HASH) != runtime.container_hash(c):
                    reason = f"Container {c.name} definition changed, will be restarted"
                elif self.probes.liveness_failed(cv.id):
                    reason = f"Container {c.name} failed liveness probe, will be restarted"
                if not reason:
                    continue
                self.event(pod, "Normal", "Killing", reason)
                await self.kill_container(pod, c, cv.id, runtime.grace_seconds(pod), view.pod_ip)
                cv = ContainerView(cv.c, await self._status(cv.id, st))
                if not self._should_restart(pod, cv):
                    continue
                await start(c, False)
                continue
            # exited (or created but never started: a failed start)
            if not self._should_restart(pod, cv):
                st.waiting.pop(c.name, None)
                continue
            wait = self._backoff(pod, st, c.name, cv)
            if wait > 0:
                self._crash_waiting(pod, st, c.name, wait)
                delays.append(wait)
                continue
            await start(c, False)
        return min(delays, default=None)

    async def _status(self, cid: str, st: PodState) -> pb.ContainerStatus | None:
        try:
            s = await self.cri.container_status(cid)
        except NotFound:
            return None
        if s.state == pb.CONTAINER_EXITED:
            st.exited[cid] = s
        return s

    def _config_error(self, pod: core.Pod, st: PodState, c: core.Container, e: runtime.ConfigError) -> None:
        st.waiting[c.name] = Waiting(e.reason, e.message)
        self.event(pod, "Warning", "Failed", f"Error: {e.message}")

    async def start_container(self, pod: core.Pod, st: PodState, c: core.Container, sb: pb.PodSandbox,
                              sbcfg: pb.PodSandboxConfig, restart_count: int, pod_ip: str,
                              volumes: dict[str, str], init: bool) -> float | None:
        """Pull, create and start one container; None on success, else seconds until a retry makes sense."""
        self.runtime_writes += 1
        try:
            image = await self.images.ensure(pod, c)
        except ImageError as e:
            st.waiting[c.name] = Waiting(e.reason, e.message)
            return max(e.retry_at - time.monotonic(), 0.5) if e.retry_at else 10.0
        try:
            base_env = await self.service_env() if self.service_env is not None else None
            cfg = await runtime.container_config(pod, c, restart_count=restart_count, image=image, pod_ip=pod_ip,
                                                 host_ip=self.host_ip, volumes=volumes, get=self.get_object,
                                                 init=init, base_env=base_env)
        except runtime.ConfigError as e:
            self._config_error(pod, st, c, e)
            return 5.0
        try:
            cid = await self.cri.create_container(sb.id, cfg, sbcfg)
        except CRIError as e:
            st.waiting[c.name] = Waiting("CreateContainerError", e.message)
            self.event(pod, "Warning", "Failed", f"Error: {e.message}")
            return 5.0
        self.event(pod, "Normal", "Created", f"Created container {c.name}")
        try:
            await self.cri.start_container(cid)
        except CRIError as e:
            st.waiting[c.name] = Waiting("RunContainerError", e.message)
            self.event(pod, "Warning", "Failed", f"Error: {e.message}")
            st.backoff.setdefault(c.name, (self.crash_backoff, self.clock.now()))
            return 1.0
        self.event(pod, "Normal", "Started", f"Started container {c.name}")
        st.waiting.pop(c.name, None)
        log.info("container started pod=%s/%s container=%s id=%s restart=%d", pod.metadata.namespace,
                 pod.metadata.name, c.name, cid[:12], restart_count)
        if c.lifecycle.HasField("post_start"):
            ok, msg = await self.probes.run_handler(pod, c, cid, c.lifecycle.post_start, pod_ip, 30.0)
            if not ok:
                self.event(pod, "Warning", "FailedPostStartHook", f"PostStartHook failed: {msg}")
                await self._stop(cid, runtime.grace_seconds(pod))
        return None

    # -- killing ----------------------------------------------------------------------------------

    async def _stop(self, cid: str, grace: int) -> None:
        try:
            await self.cri.stop_container(cid, grace_seconds=grace)
        except NotFound:
            pass

    async def kill_container(self, pod: core.Pod | None, c: core.Container | None, cid: str, grace: int,
                             pod_ip: str) -> None:
        self.runtime_writes += 1
        t0 = self.clock.now()
        if pod is not None and c is not None and c.lifecycle.HasField("pre_stop") and grace > 0:
            try:
                ok, msg = await asyncio.wait_for(
                    self.probes.run_handler(pod, c, cid, c.lifecycle.pre_stop, pod_ip, float(grace)), grace)
            except TimeoutError:
                ok, msg = False, f"timed out after {grace}s"
            if not ok:
                self.event(pod, "Warning", "FailedPreStopHook", f"PreStopHook failed: {msg}")
        remaining = max(int(grace - (self.clock.now() - t0)), 2 if grace > 0 else 0)
        await self._stop(cid, remaining)

    async def kill_pod(self, uid: str, pod: core.Pod | None) -> None:
        """Stop every container (preStop, grace), stop and remove the sandboxes, remove pod dirs."""
        st = self.state(uid)
        view = await self.view(uid, st)
        grace = runtime.grace_seconds(pod) if pod is not None else _annotated_grace(view)
        running = await self._stop_all(pod, view, grace)
        for sb in view.sandboxes:
            with contextlib.suppress(NotFound):
                await self.cri.remove_pod_sandbox(sb.id)
        # Containers whose sandbox was already gone.
        for lst in view.containers.values():
            for cv in lst:
                with contextlib.suppress(NotFound):
                    await self.cri.remove_container(cv.id)
        self.probes.remove_pod(uid)
        self.images.forget_pod(uid)
        await asyncio.to_thread(runtime.remove_pod_dirs, self.root_dir, uid)
        if running or view.sandboxes:
            log.info("pod killed pod_uid=%s containers=%d sandboxes=%d", uid, len(running), len(view.sandboxes))

    async def stop_pod(self, pod: core.Pod, view: PodView, grace: int) -> None:
        """Stop the containers and the sandbox (its network) but keep them, with their logs, as the kubelet
        keeps an evicted pod's until the pod is deleted."""
        running = await self._stop_all(pod, view, grace)
        self.probes.remove_pod(pod.metadata.uid)
        log.info("pod stopped pod=%s/%s containers=%d", pod.metadata.namespace, pod.metadata.name, len(running))

    async def _stop_all(self, pod: core.Pod | None, view: PodView, grace: int) -> list[ContainerView]:
        """Kill the running containers (preStop, grace) and stop the sandboxes; the running ones killed."""
        specs = {c.name: c for c in pod.spec.containers} if pod is not None else {}
        running = view.running()
        if pod is not None:
            for cv in running:
                self.event(pod, "Normal", "Killing", f"Stopping container {cv.c.metadata.name}")
        await asyncio.gather(*(self.kill_container(pod, specs.get(cv.c.metadata.name), cv.id, grace, view.pod_ip)
                               for cv in running))
        for sb in view.sandboxes:
            with contextlib.suppress(NotFound):
                await self.cri.stop_pod_sandbox(sb.id)
        return running

    def forget(self, uid: str) -> None:
        if self.tokens is not None:
            self.tokens.forget(uid)
        self.states.pop(uid, None)

    async def _gc(self, view: PodView) -> None:
        """Keep the newest two containers per name (current + the one lastState reports)."""
        for lst in view.containers.values():
            for cv in lst[2:]:
                if cv.state == pb.CONTAINER_EXITED:
                    with contextlib.suppress(CRIError):
                        await self.cri.remove_container(cv.id)


def _restart_count(c: pb.Container) -> int:
    try:
        return int(c.annotations.get(runtime.RESTART_COUNT, "0"))
    except ValueError:
        return 0


def _annotated_grace(view: PodView) -> int:
    for sb in view.sandboxes:
        try:
            return int(sb.annotations.get(runtime.GRACE_PERIOD, runtime.DEFAULT_GRACE))
        except ValueError:
            pass
    return runtime.DEFAULT_GRACE


def host_ports(pod: core.Pod) -> set[tuple[str, int, str]]:
    return {(p.protocol or "TCP", p.host_port, p.host_ip or "0.0.0.0")
            for c in list(pod.spec.init_containers) + list(pod.spec.containers) for p in c.ports if p.host_port}


def port_conflict(pod: core.Pod, others: list[core.Pod]) -> str:
    """A hostPort of `pod` already used by an admitted pod on this node ("" when none)."""
    mine = host_ports(pod)
    if not mine:
        return ""
    for o in others:
        for proto, port, ip in host_ports(o) & mine:
            return f"{proto} port {port} on {ip} is used by pod {o.metadata.namespace}/{o.metadata.name}"
    return ""

