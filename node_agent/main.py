"""pb-kubelet: runs the pods bound to this node on containerd through the CRI.

Pieces: the pod source (an informer on pods with spec.nodeName=<node>, backed by local checkpoints so
pods keep running and restarting while the apiserver is unreachable), one pod worker per pod UID
(node_agent.podworkers) running node_agent.sync, a relister (PLEG) that lists containers every second
and wakes the workers of pods whose containers changed state (and those of orphans), the status
manager, probers, node status + Lease, and /metrics, /healthz, /readyz (readyz fails when containerd
does not answer). The kubelet talks only to the apiserver and containerd; never to etcd.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from node_agent import eviction, pressure, runtime
from node_agent.checkpoint import Checkpoints
from node_agent.containerd import render_cni_conflist
from node_agent.cri import api_pb2 as pb
from node_agent.cri.client import DEFAULT_TIMEOUT
from node_agent.cri.errors import CRIError
from node_agent.images import ImageManager
from node_agent.nodestatus import NodeSpecCfg, NodeStatus
from node_agent.podworkers import PodWorkers
from node_agent.probes import ProbeManager
from node_agent.server import KubeletAPI, serve
from node_agent.status import StatusManager, Waiting
from node_agent.sync import RUNNING_CONTAINERS, RUNNING_PODS, InstrumentedCRI, Syncer, port_conflict
from pybernetes import component, errors, flags, logs
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.cache import DeletedFinalStateUnknown, InformerFactory
from pybernetes.client import config as client_config
from pybernetes.client.client import Client
from pybernetes.events import EventRecorder
from pybernetes.metrics import HealthServer

log = logging.getLogger("pybernetes.kubelet")


@dataclass
class Config:
    node_name: str = ""
    config: str | None = None
    server: str | None = None
    token: str | None = None
    containerd_socket: str = "/run/containerd/containerd.sock"
    root_dir: Path = Path("/var/lib/pybernetes/kubelet")
    pod_cidr: str = ""
    cni_conf_dir: str = ""
    cni_data_dir: str = ""
    node_ip: str = ""
    cpu: str = ""
    memory: str = ""
    max_pods: int = 110
    node_status_update_frequency: float = 10.0
    node_lease_duration: int = 40
    health_host: str = "127.0.0.1"
    health_port: int = 10248
    port: int = 10250
    address: str = ""
    authentication_token_file: Path | None = None
    register_node: bool = True
    node_labels: dict[str, str] = field(default_factory=dict)
    probe_netns: str = ""
    sync_frequency: float = 10.0
    pleg_period: float = 1.0
    crash_backoff: float = 10.0
    image_backoff: float = 10.0
    eviction_hard: str = pressure.DEFAULT_EVICTION_HARD
    eviction_pressure_transition_period: float = 300.0
    eviction_monitoring_period: float = 10.0  # Kubernetes' fixed evictionMonitoringPeriod


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(prog="pb-kubelet", description="The pybernetes node agent (CRI kubelet).")
    p.add_argument("--config", default=None, help="client config (admin.conf); PBCONFIG otherwise")
    p.add_argument("--server", default=None)
    p.add_argument("--token", default=None)
    p.add_argument("--node-name", default=socket.gethostname())
    p.add_argument("--containerd-socket", "--container-runtime-endpoint", dest="containerd_socket",
                   default=Config.containerd_socket)
    p.add_argument("--root-dir", type=Path, default=Config.root_dir)
    p.add_argument("--pod-cidr", default="", help="else Node.spec.podCIDR (set by the controller manager)")
    p.add_argument("--cni-conf-dir", default="", help="where to (re)write the CNI conflist for the pod CIDR")
    p.add_argument("--cni-data-dir", default="", help="host-local IPAM data dir (default <cni-conf-dir>/../ipam)")
    p.add_argument("--node-ip", default="")
    p.add_argument("--cpu", default="")
    p.add_argument("--memory", default="")
    p.add_argument("--max-pods", type=int, default=110)
    p.add_argument("--node-status-update-frequency", type=flags.duration, default="10s")
    p.add_argument("--node-lease-duration", type=int, default=40)
    p.add_argument("--health-host", default="127.0.0.1")
    p.add_argument("--health-port", "--healthz-port", dest="health_port", type=int, default=10248)
    p.add_argument("--port", type=int, default=10250, help="the kubelet API (logs, exec) for the apiserver")
    p.add_argument("--address", default="", help="bind address of the kubelet API (default 0.0.0.0, as Kubernetes)")
    p.add_argument("--authentication-token-file", type=Path, default=None,
                   help="tokens (one per line) accepted on the kubelet API; the apiserver's kubelet client token")
    p.add_argument("--register-node", default="true", choices=["true", "false"])
    p.add_argument("--node-labels", type=flags.key_values, default="")
    p.add_argument("--probe-netns", default="",
                   help="netns path (e.g. /run/netns/pb-node1) for httpGet/tcpSocket probes when the kubelet "
                        "itself is not in the node's network namespace")
    p.add_argument("--sync-frequency", type=flags.duration, default="10s")
    p.add_argument("--eviction-hard", default=pressure.DEFAULT_EVICTION_HARD,
                   help="pressure thresholds, SIGNAL<QUANTITY|PERCENT%%,... (Kubernetes' defaults)")
    p.add_argument("--eviction-pressure-transition-period", type=flags.duration, default="5m",
                   help="how long a pressure condition stays True after its signals recover")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)
    try:
        pressure.parse_thresholds(a.eviction_hard)
    except ValueError as e:
        p.error(f"--eviction-hard: {e}")
    logs.setup("kubelet", verbose=a.verbose)
    return Config(node_name=a.node_name, config=a.config, server=a.server, token=a.token,
                  containerd_socket=a.containerd_socket, root_dir=a.root_dir, pod_cidr=a.pod_cidr,
                  cni_conf_dir=a.cni_conf_dir, cni_data_dir=a.cni_data_dir, node_ip=a.node_ip, cpu=a.cpu,
                  memory=a.memory, max_pods=a.max_pods,
                  node_status_update_frequency=a.node_status_update_frequency,
                  node_lease_duration=a.node_lease_duration, health_host=a.health_host,
                  health_port=a.health_port, register_node=a.register_node == "true",
                  node_labels=a.node_labels, probe_netns=a.probe_netns,
                  sync_frequency=a.sync_frequency, port=a.port, address=a.address,
                  authentication_token_file=a.authentication_token_file, eviction_hard=a.eviction_hard,
                  eviction_pressure_transition_period=a.eviction_pressure_transition_period)


def _default_ip() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def _spec_key(pod: core.Pod) -> bytes:
    p = core.Pod()
    p.metadata.CopyFrom(pod.metadata)
    p.metadata.ClearField("resource_version")
    p.metadata.ClearField("managed_fields")
    p.spec.CopyFrom(pod.spec)
    return p.SerializeToString(deterministic=True)


class Kubelet:
    def __init__(self, cfg: Config, client: Client, cri: InstrumentedCRI) -> None:
        self.cfg = cfg
        self.client = client
        self.cri = cri
        self.host_ip = cfg.node_ip or _default_ip()
        self.recorder = EventRecorder(client, "kubelet", cfg.node_name)
        self.pods: dict[str, core.Pod] = {}
        self.source_ready = False
        self.checkpoints = Checkpoints(cfg.root_dir)
        self.workers = PodWorkers(self._sync, resync=cfg.sync_frequency)
        self.probes = ProbeManager(cri, self.workers.update, self.event, netns_path=cfg.probe_netns)
        self.images = ImageManager(cri, self.event, initial_backoff=cfg.image_backoff)
        self.statuses = StatusManager(client, self.pods.get)
        self.syncer = Syncer(cri, self.images, self.probes, self.statuses, self.event, root_dir=cfg.root_dir,
                             host_ip=self.host_ip, get_object=self.get_object, crash_backoff=cfg.crash_backoff,
                             resync=cfg.sync_frequency)
        self.factory = InformerFactory(client)
        self.informer = self.factory.informer_for(core.Pod, field_selector=f"spec.nodeName={cfg.node_name}")
        self._object_cache: dict[tuple[str, str, str], dict[str, bytes]] = {}
        self._admitted: set[str] = set()
        self.node_pressure: Callable[[], list[str]] = list  # the node's pressure conditions now (NodeStatus)
        self._pleg: dict[str, frozenset[tuple[str, int]]] = {}
        self.runtime_ok = False

    def event(self, pod: core.Pod, type_: str, reason: str, message: str) -> None:
        self.recorder.event(pod, type_, reason, message)

    async def get_object(self, kind: str, namespace: str, name: str) -> dict[str, bytes] | None:
        """configMap/secret data for env and volumes; the last copy is used while the apiserver is away."""
        key = (kind, namespace, name)
        try:
            if kind == "configmaps":
                data = runtime.configmap_data(await self.client.get(core.ConfigMap, name, namespace=namespace))
            else:
                data = runtime.secret_data(await self.client.get(core.Secret, name, namespace=namespace))
        except errors.NotFound:
            self._object_cache.pop(key, None)
            return None
        except errors.Unavailable:
            if key in self._object_cache:
                return self._object_cache[key]
            raise
        self._object_cache[key] = data
        return data

    # -- pod source ------------------------------------------------------------------------------

    def _upsert(self, pod: core.Pod) -> None:
        if pod.spec.node_name != self.cfg.node_name:
            return
        uid = pod.metadata.uid
        old = self.pods.get(uid)
        self.pods[uid] = pod
        if old is None or _spec_key(old) != _spec_key(pod):
            try:
                self.checkpoints.save(pod)
            except OSError as e:
                log.warning("checkpoint not written pod=%s/%s error=%s", pod.metadata.namespace,
                            pod.metadata.name, e)
            self.workers.update(uid)

    def _on_add(self, pod: core.Pod) -> None:
        self._upsert(pod)

    def _on_update(self, old: core.Pod, new: core.Pod) -> None:
        self._upsert(new)

    def _on_delete(self, obj: core.Pod | DeletedFinalStateUnknown[core.Pod]) -> None:
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        uid = pod.metadata.uid
        if self.pods.pop(uid, None) is not None:
            self.workers.update(uid)

    async def _await_source(self) -> None:
        await self.informer.wait_for_sync()
        listed = {p.metadata.uid for p in self.informer.store.list()}
        for uid in [u for u in self.pods if u not in listed]:
            log.info("checkpointed pod no longer bound here, removing pod_uid=%s", uid)
            del self.pods[uid]
            self.workers.update(uid)
        self.source_ready = True
        log.info("pod source synced pods=%d", len(self.pods))
        for uid in self._pleg:
            if uid not in self.pods:
                self.workers.update(uid)

    # -- pod worker sync -------------------------------------------------------------------------

    async def _sync(self, uid: str) -> float | None:
        pod = self.pods.get(uid)
        if pod is None:
            if not self.source_ready:
                return 5.0
            await self.syncer.kill_pod(uid, None)
            self._forget(uid)
            return None
        if pod.metadata.HasField("deletion_timestamp"):
            await self.syncer.kill_pod(uid, pod)
            try:
                await self.client.delete(core.Pod, pod.metadata.name, namespace=pod.metadata.namespace,
                                         grace_period_seconds=0, uid=uid)
            except (errors.NotFound, errors.Conflict):
                pass
            log.info("pod finalized pod=%s/%s", pod.metadata.namespace, pod.metadata.name)
            self.pods.pop(uid, None)
            self._forget(uid)
            return None
        if uid not in self._admitted:
            others = [self.pods[u] for u in self._admitted if u in self.pods
                      and self.pods[u].status.phase not in ("Succeeded", "Failed")]
            conflict = port_conflict(pod, others)
            st = self.syncer.state(uid)
            why: Waiting | None = None
            if conflict:
                why = Waiting("NodePorts",
                              f"Pod was rejected: node didn't have free ports for the requested pod ports: {conflict}")
            elif msg := eviction.pressure_rejection(pod, self.node_pressure()):
                why = Waiting("Evicted", msg)
            new = pod.status.phase in ("", "Pending") and not pod.status.container_statuses
            # A pod with a sandbox here was admitted by an earlier run of this kubelet (after a restart its
            # object may be a checkpoint without status): never reject what already runs. Asked of the
            # runtime only when there is a reason to reject, to keep pod start-up to one listing.
            if why is not None and new and not (await self.syncer.view(uid, st)).sandboxes:
                st.rejected = why
                self.event(pod, "Warning", why.reason, why.message)
            self._admitted.add(uid)
        return await self.syncer.sync_pod(pod)

    def _forget(self, uid: str) -> None:
        self.syncer.forget(uid)
        self.statuses.forget(uid)
        self.checkpoints.remove(uid)
        self._admitted.discard(uid)

    # -- relist (PLEG) ---------------------------------------------------------------------------

    async def relist(self) -> None:
        sandboxes, containers = await asyncio.gather(self.cri.list_pod_sandbox(), self.cri.list_containers())
        fp: dict[str, set[tuple[str, int]]] = {}
        running_pods = 0
        for sb in sandboxes:
            uid = sb.labels.get(runtime.POD_UID)
            if uid:
                fp.setdefault(uid, set()).add((sb.id, int(sb.state)))
                running_pods += sb.state == pb.SANDBOX_READY
        running = 0
        for c in containers:
            uid = c.labels.get(runtime.POD_UID)
            if uid:
                fp.setdefault(uid, set()).add((c.id, int(c.state)))
                running += c.state == pb.CONTAINER_RUNNING
        RUNNING_PODS.set(running_pods)
        RUNNING_CONTAINERS.set(running)
        new = {u: frozenset(s) for u, s in fp.items()}
        for uid in set(new) | set(self._pleg):
            if new.get(uid) != self._pleg.get(uid):
                if uid in self.pods or self.source_ready:
                    self.workers.update(uid)
        self._pleg = new

    async def relist_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.relist()
                if not self.runtime_ok:
                    log.info("container runtime reachable")
                    self.runtime_ok = True
                    self.workers.update_all()
            except CRIError as e:
                if self.runtime_ok:
                    log.warning("container runtime unreachable error=%s", e)
                self.runtime_ok = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.cfg.pleg_period)

    # -- eviction --------------------------------------------------------------------------------

    async def evict_once(self, crossed: list[tuple[pressure.Threshold, int, int]]) -> None:
        """End the pod Kubernetes would end first for the first crossed threshold."""
        if not crossed:
            return
        threshold, available, capacity = crossed[0]
        def not_ending(p: core.Pod) -> bool:  # not already rejected or evicted
            st = self.syncer.states.get(p.metadata.uid)
            return st is None or st.rejected is None

        pods = [p for p in self.pods.values() if eviction.evictable(p) and not_ending(p)]
        if not pods:
            log.warning("node under pressure, nothing to evict node=%s threshold=%s", self.cfg.node_name, threshold)
            return
        usage: dict[str, int] = {}
        with contextlib.suppress(CRIError):
            for cs in await self.cri.list_container_stats():
                uid = cs.attributes.labels.get(runtime.POD_UID, "")
                usage[uid] = usage.get(uid, 0) + cs.memory.working_set_bytes.value
        victim = eviction.rank([eviction.Candidate(p, usage.get(p.metadata.uid, 0)) for p in pods])[0].pod
        msg = eviction.message(threshold, available, capacity)
        self.syncer.state(victim.metadata.uid).rejected = Waiting("Evicted", msg)
        self.event(victim, "Warning", "Evicted", msg)
        log.warning("pod evicted pod=%s/%s threshold=%s available=%d", victim.metadata.namespace,
                    victim.metadata.name, threshold, available)
        self.workers.update(victim.metadata.uid)

    async def eviction_loop(self, node: NodeStatus, stop: asyncio.Event) -> None:
        """One eviction per monitoring period while a hard threshold is crossed (Kubernetes: every 10 s)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.cfg.eviction_monitoring_period)
            if stop.is_set() or not self.source_ready:
                continue
            try:
                await self.evict_once(await node.crossed_now())
            except Exception as e:
                log.warning("eviction pass failed node=%s error=%s", self.cfg.node_name, e)

    # -- node ------------------------------------------------------------------------------------

    async def runtime_version(self) -> str:
        v = await self.cri.version(deadline=5)
        return f"{v.runtime_name}://{v.runtime_version}"

    async def runtime_ready(self) -> tuple[bool, str]:
        try:
            st = await self.cri.status()
        except CRIError as e:
            return False, f"container runtime is down: {e}"
        bad = [f"{c.type}={c.reason or c.message}" for c in st.status.conditions if not c.status]
        return (not bad), ("container runtime not ready: " + ", ".join(bad)) if bad else ""

    async def image_fs(self) -> str:
        """Where the runtime keeps images (the imagefs signals); "" when it does not say."""
        for fs in await self.cri.image_fs_info():
            if fs.fs_id.mountpoint:
                return fs.fs_id.mountpoint
        return ""

    async def ensure_pod_cidr(self, stop: asyncio.Event) -> None:
        """Write the CNI conflist for the node's pod CIDR before the first sandbox."""
        if not self.cfg.cni_conf_dir:
            return
        conf_dir = Path(self.cfg.cni_conf_dir)
        path = conf_dir / "10-pbnet.conflist"
        cidr = self.cfg.pod_cidr
        while not cidr and not stop.is_set():
            try:
                node = await self.client.get(core.Node, self.cfg.node_name)
                cidr = node.spec.pod_cidr
            except errors.ApiError as e:
                if path.exists():
                    log.warning("pod CIDR unknown (apiserver: %s); keeping the existing CNI config", e)
                    return
            if not cidr:
                log.info("waiting for Node.spec.podCIDR node=%s", self.cfg.node_name)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
        if not cidr:
            return
        data_dir = Path(self.cfg.cni_data_dir) if self.cfg.cni_data_dir else conf_dir.parent / "ipam"
        text = render_cni_conflist(cidr, data_dir)
        if not path.exists() or path.read_text() != text:
            conf_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)
            log.info("CNI config written path=%s pod_cidr=%s", path, cidr)


def make_cri(socket_path: str) -> InstrumentedCRI:
    return InstrumentedCRI(socket_path, timeout=DEFAULT_TIMEOUT)


async def run(cfg: Config, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    cfg.root_dir.mkdir(parents=True, exist_ok=True)
    if cfg.server:
        client = Client(cfg.server, token=cfg.token or "", timeout=10, user_agent="pb-kubelet")
    else:
        ccfg = client_config.load(cfg.config, server=cfg.server, token=cfg.token)
        client = Client.from_config(ccfg, timeout=10, user_agent="pb-kubelet")
    cri = make_cri(cfg.containerd_socket)
    kl = Kubelet(cfg, client, cri)
    health = HealthServer(cfg.health_host, cfg.health_port)

    async def containerd_ok() -> None:
        await cri.version(deadline=2)

    health.add_ready_check("containerd", containerd_ok)
    node = NodeStatus(client, NodeSpecCfg(
        name=cfg.node_name, ip=kl.host_ip, root_dir=cfg.root_dir, labels=cfg.node_labels, cpu=cfg.cpu,
        memory=cfg.memory, max_pods=cfg.max_pods, health_port=cfg.health_port, api_port=cfg.port,
        status_frequency=cfg.node_status_update_frequency, lease_duration=cfg.node_lease_duration,
        eviction_hard=pressure.parse_thresholds(cfg.eviction_hard),
        pressure_transition_period=cfg.eviction_pressure_transition_period),
        kl.runtime_version, kl.runtime_ready, kl.image_fs)
    kl.node_pressure = node.pressure_conditions
    tasks: list[asyncio.Task[None]] = []
    tokens: frozenset[str] = frozenset()
    if cfg.authentication_token_file is not None:
        tokens = frozenset(t.strip() for t in cfg.authentication_token_file.read_text().splitlines() if t.strip())
    api_server: grpc.aio.Server | None = None
    try:
        await health.start()
        cfg.health_port = health.port
        api_server = await serve(KubeletAPI(cri, cfg.containerd_socket, tokens=tokens),
                                 f"{cfg.address or '0.0.0.0'}:{cfg.port}")
        kl.recorder.start()
        kl.statuses.start()
        if cfg.register_node:
            try:
                await node.register()
            except errors.ApiError as e:
                log.warning("node not registered yet (will retry) node=%s error=%s", cfg.node_name, e)
            tasks.append(asyncio.create_task(node.run(stop), name="node-status"))
        await kl.ensure_pod_cidr(stop)
        for pod in kl.checkpoints.load():
            if pod.spec.node_name == cfg.node_name:
                kl.pods[pod.metadata.uid] = pod
        if kl.pods:
            log.info("pods restored from checkpoints count=%d", len(kl.pods))
        kl.informer.add_event_handler(kl._on_add, kl._on_update, kl._on_delete)
        kl.factory.start()
        tasks.append(asyncio.create_task(kl.relist_loop(stop), name="pleg"))
        tasks.append(asyncio.create_task(kl.eviction_loop(node, stop), name="eviction"))
        tasks.append(asyncio.create_task(kl._await_source(), name="pod-source"))
        for uid in list(kl.pods):
            kl.workers.update(uid)
        log.info("kubelet running node=%s root_dir=%s containerd=%s health_port=%d", cfg.node_name,
                 cfg.root_dir, cfg.containerd_socket, health.port)
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if api_server is not None:
            await api_server.stop(grace=1)
        await kl.workers.close()
        await kl.probes.close()
        await kl.factory.shutdown()
        await kl.statuses.stop()
        await kl.recorder.stop()
        await health.stop()
        await cri.close()
        await client.close()
        log.info("kubelet stopped node=%s", cfg.node_name)


def main(argv: list[str] | None = None) -> None:
    component.serve(run, parse_args(argv))


if __name__ == "__main__":
    main()
