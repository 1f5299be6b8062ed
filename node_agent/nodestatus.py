"""Node registration, node status (checked every --node-status-update-frequency, written when it changed or
every --node-status-report-frequency) and the node Lease heartbeat.

The Node gets capacity/allocatable (cpu, memory, pods, ephemeral-storage), addresses (InternalIP,
Hostname), the kubernetes.io/hostname and kubernetes.io/os labels plus --node-labels, nodeInfo, and the
Ready/MemoryPressure/DiskPressure/PIDPressure conditions with heartbeats (the pressure ones from
--eviction-hard, see node_agent.pressure). The Lease
kube-node-lease/<node> is renewed every 10 s (a quarter of its 40 s duration).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import platform
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from node_agent import pressure
from pybernetes import errors, ports
from pybernetes.api import quantity
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.times import micro_now
from pybernetes.client.client import Client
from pybernetes.heartbeat import HeartbeatLease

log = logging.getLogger(__name__)

LEASE_NAMESPACE = "kube-node-lease"
KUBELET_VERSION = "v1.31.0-pybernetes"


@dataclass
class NodeSpecCfg:
    name: str
    ip: str
    root_dir: Path
    labels: dict[str, str] = field(default_factory=dict)
    cpu: str = ""
    memory: str = ""
    max_pods: int = 110
    health_port: int = 0
    api_port: int = ports.KUBELET
    status_frequency: float = 10.0
    status_report_frequency: float = 300.0
    lease_duration: int = 40
    eviction_hard: list[pressure.Threshold] = field(
        default_factory=lambda: pressure.parse_thresholds(pressure.DEFAULT_EVICTION_HARD))
    pressure_transition_period: float = 300.0


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


def _arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


@dataclass(frozen=True)
class _Machine:
    machine_id: str
    system_uuid: str
    boot_id: str
    kernel_version: str
    os_image: str
    architecture: str


@functools.cache
def _machine() -> _Machine:
    """What the machine is, read once per process (Kubernetes' kubelet reads cadvisor's MachineInfo at start): a
    reboot, the one thing that changes the boot id, restarts the kubelet too."""
    machine_id = _read("/etc/machine-id")
    return _Machine(machine_id, _read("/sys/class/dmi/id/product_uuid", machine_id),
                    _read("/proc/sys/kernel/random/boot_id"), os.uname().release, _os_image(), _arch())


# condition -> (reason, message) when False, and when True: Kubernetes' words.
_PRESSURE_WORDS = (
    ("MemoryPressure", ("KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
     ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available")),
    ("DiskPressure", ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
     ("KubeletHasDiskPressure", "kubelet has disk pressure")),
    ("PIDPressure", ("KubeletHasSufficientPID", "kubelet has sufficient PID available"),
     ("KubeletHasInsufficientPID", "kubelet has insufficient PID available")),
)


class NodeStatus:
    def __init__(self, client: Client, cfg: NodeSpecCfg, runtime_version: Callable[[], Awaitable[str]],
                 runtime_ready: Callable[[], Awaitable[tuple[bool, str]]],
                 image_fs: Callable[[], Awaitable[str]] | None = None,
                 observer: Callable[[str, str | None], pressure.Observations] = pressure.observe) -> None:
        self.client = client
        self.cfg = cfg
        self.runtime_version = runtime_version
        self.runtime_ready = runtime_ready
        self.image_fs = image_fs
        self.observer = observer  # reads the eviction signals of (nodefs, imagefs); the bench's hollow nodes fake it
        self.pressure = pressure.PressureTracker(cfg.eviction_hard, cfg.pressure_transition_period)
        self.node: core.Node | None = None
        self._pressure_was: dict[str, bool] = {}
        self._reported: float | None = None  # time.monotonic() of the last status written
        self.lease = HeartbeatLease(client, cfg.name, LEASE_NAMESPACE, cfg.name, cfg.lease_duration, self._node_uid)

    def capacity(self) -> dict[str, str]:
        cpu = self.cfg.cpu or str(os.cpu_count() or 1)
        mem = self.cfg.memory or quantity.format_bytes(pressure.meminfo().get("MemTotal", 0) // 1024 * 1024)
        try:
            st = os.statvfs(self.cfg.root_dir)
            storage = str(st.f_blocks * st.f_frsize)
        except OSError:
            storage = "0"
        return {"cpu": cpu, "memory": mem, "pods": str(self.cfg.max_pods), "ephemeral-storage": storage}

    def labels(self) -> dict[str, str]:
        return {"kubernetes.io/hostname": self.cfg.name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": _arch(), **self.cfg.labels}

    async def register(self) -> core.Node:
        node = core.Node()
        node.metadata.name = self.cfg.name
        node.metadata.labels.update(self.labels())
        await self._fill_status(node)
        try:
            created = await self.client.create(node)
            log.info("node registered node=%s", self.cfg.name)
        except errors.AlreadyExists:
            created = await self.client.get(core.Node, self.cfg.name)
            want = self.labels()
            if any(created.metadata.labels.get(k) != v for k, v in want.items()):
                created.metadata.labels.update(want)
                created = await self.client.update(created)
            log.info("node already registered node=%s", self.cfg.name)
        self.node = created
        await self.update_status()
        return self.node

    async def _fill_status(self, node: core.Node) -> None:
        st = node.status
        cap = self.capacity()
        st.ClearField("capacity")
        st.ClearField("allocatable")
        for k, v in cap.items():
            st.capacity[k].string = v
            st.allocatable[k].string = v
        del st.addresses[:]
        st.addresses.append(core.NodeAddress(type="InternalIP", address=self.cfg.ip))
        st.addresses.append(core.NodeAddress(type="Hostname", address=self.cfg.name))
        # Where the apiserver reaches this kubelet's API (logs, exec).
        st.daemon_endpoints.kubelet_endpoint.port = self.cfg.api_port
        ni = st.node_info
        m = _machine()
        ni.machine_id, ni.system_uuid, ni.boot_id = m.machine_id, m.system_uuid, m.boot_id
        ni.kernel_version, ni.os_image, ni.architecture = m.kernel_version, m.os_image, m.architecture
        ni.operating_system = "linux"
        ni.kubelet_version = KUBELET_VERSION
        try:
            ni.container_runtime_version = await self.runtime_version()
        except Exception:
            ni.container_runtime_version = "containerd://unknown"
        ready, msg = await self.runtime_ready()
        t = micro_now()
        conds = [*await self._pressure_conditions(),
                 ("Ready", "True" if ready else "False", "KubeletReady" if ready else "KubeletNotReady",
                  "kubelet is posting ready status" if ready else msg)]
        old = {c.type: c for c in st.conditions}
        del st.conditions[:]
        for type_, status, reason, message in conds:
            c = core.NodeCondition(type=type_, status=status, reason=reason, message=message)
            c.last_heartbeat_time.seconds = t.seconds
            prev = old.get(type_)
            if prev is not None and prev.status == status and prev.HasField("last_transition_time"):
                c.last_transition_time.CopyFrom(prev.last_transition_time)
            else:
                c.last_transition_time.seconds = t.seconds
            st.conditions.append(c)

    async def observe(self) -> pressure.Observations:
        """The eviction signals now (the image filesystem from the runtime, else the root dir's)."""
        imagefs = None
        if self.image_fs is not None:
            try:
                imagefs = await self.image_fs() or None
            except Exception as e:  # the runtime being down is the Ready condition's business
                log.debug("image filesystem unknown node=%s error=%s", self.cfg.name, e)
        return self.observer(str(self.cfg.root_dir), imagefs)

    async def crossed_now(self) -> list[tuple[pressure.Threshold, int, int]]:
        """The thresholds crossed now, with (available, capacity) of their signals, memory first."""
        out = pressure.crossed(self.cfg.eviction_hard, await self.observe())
        return sorted(out, key=lambda x: pressure.SIGNALS.index(x[0].signal))

    async def _pressure_conditions(self) -> list[tuple[str, str, str, str]]:
        held = self.pressure.update(await self.observe())
        out = []
        for type_, (no_reason, no_msg), (yes_reason, yes_msg) in _PRESSURE_WORDS:
            if held[type_]:
                crossed = self.pressure.crossed.get(type_)
                if crossed:
                    yes_msg += f" ({', '.join(crossed)})"
                out.append((type_, "True", yes_reason, yes_msg))
            else:
                out.append((type_, "False", no_reason, no_msg))
            if held[type_] != self._pressure_was.get(type_, False):
                log.warning("node condition changed node=%s condition=%s status=%s thresholds=%s", self.cfg.name,
                            type_, held[type_], ",".join(self.pressure.crossed.get(type_, [])) or "-")
            self._pressure_was[type_] = held[type_]
        return out

    def pressure_conditions(self) -> list[str]:
        """The pressure conditions True at the last status update, in Kubernetes' order."""
        return [t for t, *_ in _PRESSURE_WORDS if self._pressure_was.get(t)]

    async def update_status(self) -> None:
        """Write the Node's status if it differs from the apiserver's copy (heartbeat times aside) or
        status_report_frequency has passed since the last write. The Lease is the heartbeat: as Kubernetes' kubelet
        (tryUpdateNodeStatus with nodeStatusReportFrequency, 5 min), an unchanged status is not rewritten every
        status_frequency; it is compared with the Node as the apiserver has it, so what another writer changed
        (the node lifecycle controller's Ready=Unknown while the kubelet could not reach the API) is put right at
        the next check, not 5 minutes later."""
        for attempt in range(3):
            try:
                # The first read from the apiserver's cache, as Kubernetes' kubelet (FromApiserverCache): a
                # copy behind etcd shows as a Conflict (or NotFound) and the next tries read etcd.
                node = await self.client.get(core.Node, self.cfg.name, resource_version="0" if attempt == 0 else "")
            except errors.NotFound:
                if attempt == 0:
                    continue  # perhaps not in the cache yet: etcd decides
                await self.register()
                return
            stored = core.NodeStatus()
            stored.CopyFrom(node.status)
            await self._fill_status(node)
            recent = self._reported is not None and \
                time.monotonic() - self._reported < self.cfg.status_report_frequency
            if recent and not status_changed(stored, node.status):
                self.node = node
                return
            try:
                self.node = await self.client.update_status(node)
                self._reported = time.monotonic()
                return
            except errors.Conflict:
                if attempt == 2:
                    raise

    async def renew_lease(self) -> None:
        """Renew the node's Lease from the copy the last renewal returned (pybernetes.heartbeat)."""
        await self.lease.renew()

    async def _node_uid(self) -> str:
        return self.node.metadata.uid if self.node is not None else ""

    async def run(self, stop: asyncio.Event) -> None:
        """Status every status_frequency, lease every lease_duration/4 (10 s for 40 s); errors logged."""
        lease_every = max(self.cfg.lease_duration / 4, 1.0)
        next_status = next_lease = 0.0
        while not stop.is_set():
            t = time.monotonic()
            if t >= next_lease:
                try:
                    await self.renew_lease()
                    next_lease = t + lease_every
                except Exception as e:
                    log.warning("lease not renewed node=%s error=%s", self.cfg.name, e)
                    next_lease = t + 1.0
            if t >= next_status:
                try:
                    if self.node is None:
                        await self.register()
                    else:
                        await self.update_status()
                    next_status = t + self.cfg.status_frequency
                except Exception as e:
                    log.warning("node status not updated node=%s error=%s", self.cfg.name, e)
                    next_status = t + 1.0
            wait = max(min(next_lease, next_status) - time.monotonic(), 0.05)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)


def status_changed(old: core.NodeStatus, new: core.NodeStatus) -> bool:
    """Whether `new` says something `old` does not, the conditions' heartbeat times aside (Kubernetes'
    nodeStatusHasChanged)."""
    def key(st: core.NodeStatus) -> bytes:
        c = core.NodeStatus()
        c.CopyFrom(st)
        for cond in c.conditions:
            cond.ClearField("last_heartbeat_time")
        return c.SerializeToString(deterministic=True)

    return key(old) != key(new)
