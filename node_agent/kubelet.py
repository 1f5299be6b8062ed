"""The kubelet: the pods bound to one node, run on containerd through the CRI (node_agent.main wires it).

Pieces: the pod source (an informer on pods with spec.nodeName=<node>, backed by local checkpoints so
pods keep running and restarting while the apiserver is unreachable), admission (host port conflicts,
node pressure), one pod worker per pod UID (node_agent.podworkers) running node_agent.sync, a relister
(PLEG) that lists containers every second and wakes the workers of pods whose containers changed state
(and those of orphans), eviction under hard thresholds, and the CNI conflist for the node's pod CIDR.
Node status, the Lease, the kubelet API and the health server are wired by node_agent.main.run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from pathlib import Path

from node_agent import eviction, pressure, runtime
from node_agent.checkpoint import Checkpoints
from node_agent.containerd import render_cni_conflist
from node_agent.cri import api_pb2 as pb
from node_agent.cri.errors import CRIError
from node_agent.dns import PodDNS
from node_agent.images import ImageManager
from node_agent.nodestatus import NodeStatus
from node_agent.options import Config
from node_agent.podworkers import PodWorkers
from node_agent.probes import ProbeManager
from node_agent.status import StatusManager, Waiting
from node_agent.sync import RUNNING_CONTAINERS, RUNNING_PODS, InstrumentedCRI, Syncer, port_conflict
from node_agent.tokens import TokenManager
from pybernetes import errors
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.cache import DeletedFinalStateUnknown, InformerFactory
from pybernetes.client.client import Client
from pybernetes.events import EventRecorder

log = logging.getLogger("pybernetes.kubelet")


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
    """One node's pods: admitted, synced by their workers, relisted, evicted under pressure (see the module)."""

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
                             resync=cfg.sync_frequency,
                             dns=PodDNS(cfg.cluster_dns, cfg.cluster_domain, cfg.resolv_conf),
                             tokens=TokenManager(client), service_env=self.kubernetes_env)
        self.factory = InformerFactory(client)
        self.informer = self.factory.informer_for(core.Pod, field_selector=f"spec.nodeName={cfg.node_name}")
        self._object_cache: dict[tuple[str, str, str], dict[str, bytes]] = {}
        self._kubernetes_env: dict[str, str] = {}
        self._admitted: set[str] = set()
        self.node_pressure: Callable[[], list[str]] = list  # the node's pressure conditions now (NodeStatus)
        self._pleg: dict[str, frozenset[tuple[str, int]]] = {}
        self._relisted: tuple[frozenset[tuple[str, int]], ...] = ()  # every (id, state) the last relist saw
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

    async def kubernetes_env(self) -> dict[str, str]:
        """KUBERNETES_SERVICE_HOST/PORT (and the link variables) of Service default/kubernetes, which
        Kubernetes gives every container (in-cluster clients find the API by them); the last copy while the
        apiserver is away."""
        try:
            svc = await self.client.get(core.Service, "kubernetes", namespace="default")
        except errors.NotFound:
            self._kubernetes_env = {}
        except errors.ApiError as e:
            log.warning("kubernetes service env from cache error=%s", e)
        else:
            self._kubernetes_env = runtime.service_env(svc)
        return dict(self._kubernetes_env)

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
        # Most relists find what the last one found: then no pod changed, and comparing every (id, state) at once
        # is a fraction of grouping them by pod (ids never move between pods).
        seen = (frozenset((sb.id, sb.state) for sb in sandboxes), frozenset((c.id, c.state) for c in containers))
        if seen == self._relisted:
            return
        self._relisted = seen
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
