"""pb-kubelet figures on this machine, each beside its ceiling measured in the same run on the same node (issue 16).

- pod startup latency: binding -> Running visible through the API (watch), one pod at a time, p50/p99, vs
  the raw CRI sequence (RunPodSandbox, CreateContainer, StartContainer) for the same container (goal <= 1.2x);
- N pods bound at once (50; 20 with --quick): time until all are Running, vs the raw CRI sequence for N pods
  at the same parallelism (the kubelet starts every pod at once) (goal <= 1.2x);
- idle kubelet with those pods: CPU (% of one core) and RSS.

The raw CRI runs first, before the kubelet starts (so the kubelet never sees pods it did not make), and its
pods are removed before the kubelet runs. etcd, pb-apiserver and pb-kubelet run as separate processes;
containerd runs in a `pb-bench-node` netns (pods get 10.244.60.0/24 there). `--quick` finishes within 60 s.
The last line is one JSON object (bench/report.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cli
from bench.procs import admin_config, proc_cpu_s, rss_mb, start_apiserver, stop_processes
from bench.report import emit, row
from lab import netns
from lab.images import BUSYBOX_IMAGE, build_lab_images
from node_agent.containerd import Containerd
from node_agent.cri import api_pb2 as cri
from node_agent.cri.client import CRIClient
from node_agent.pressure import LAB_EVICTION_HARD
from pybernetes.api import codec
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client.client import Client
from pybernetes.ports import free_port
from services.apiserver.storage.embedded import EmbeddedEtcd

NETWORK = "pb-bench"
NODE_NETNS = "pb-bench-node"
NODE_ADDRESS = "172.30.60.2/24"
POD_CIDR = "10.244.60.0/24"
NODE = "bench-node"
IMAGE_CACHE = os.environ.get("PB_IMAGE_CACHE", "/var/tmp/pybernetes-lab-images")


COMMAND = ["httpd", "-f", "-p", "8080", "-h", "/www"]


def make_pod(name: str) -> core.Pod:
    return codec.from_dict({
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "bench"}},
        "spec": {"terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "web", "image": BUSYBOX_IMAGE, "imagePullPolicy": "IfNotPresent",
                                 "command": COMMAND,
                                 "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
    }, core.Pod)


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    v = sorted(values)
    return round(v[min(len(v) - 1, int(len(v) * p))], 3)


async def raw_cri_start(client: CRIClient, cd: Containerd, name: str) -> float:
    """The ceiling of one pod start: RunPodSandbox, CreateContainer, StartContainer; the seconds they took."""
    sbc = cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="default"), hostname=name,
        log_directory=str(cd.paths.pod_logs / f"default_{name}"), linux=cri.LinuxPodSandboxConfig())
    cc = cri.ContainerConfig(
        metadata=cri.ContainerMetadata(name="web"), image=cri.ImageSpec(image=BUSYBOX_IMAGE), command=COMMAND,
        log_path="web/0.log", linux=cri.LinuxContainerConfig(resources=cri.LinuxContainerResources(
            cpu_shares=10, memory_limit_in_bytes=16 * 1024 * 1024)))
    t = time.monotonic()
    sid = await client.run_pod_sandbox(sbc)
    await client.start_container(await client.create_container(sid, cc, sbc))
    return time.monotonic() - t


async def raw_cri(cd: Containerd, serial_n: int, burst_n: int) -> dict[str, Any]:
    """The raw CRI ceilings: `serial_n` pods one at a time (p50/p99), then `burst_n` at once (wall s)."""
    async with cd.client() as client:
        lat = [await raw_cri_start(client, cd, f"raw-serial-{i}") for i in range(serial_n)]
        await cd.remove_all_pods()
        t = time.monotonic()
        await asyncio.gather(*(raw_cri_start(client, cd, f"raw-burst-{i}") for i in range(burst_n)))
        burst_s = time.monotonic() - t
        await cd.remove_all_pods()
    return {"startup_p50_s": pct(lat, 0.5), "startup_p99_s": pct(lat, 0.99), "burst_all_running_s": round(burst_s, 2)}


class RunningWatch:
    """Records when each pod is first seen Running through a watch."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.running: dict[str, float] = {}
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            try:
                async for ev in self.client.watch(core.Pod, namespace="default"):
                    p = ev.object
                    if p.status.phase == "Running" and p.metadata.name not in self.running:
                        self.running[p.metadata.name] = time.monotonic()
                        self.changed.set()
            except Exception:
                await asyncio.sleep(0.2)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def wait(self, names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(n in self.running for n in names):
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                missing = [n for n in names if n not in self.running]
                raise TimeoutError(f"not Running within {timeout}s: {missing[:5]}...")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def bind_and_wait(client: Client, watch: RunningWatch, names: list[str], timeout: float) -> dict[str, float]:
    for n in names:
        await client.create(make_pod(n))
    t0: dict[str, float] = {}

    async def bind(n: str) -> None:
        t0[n] = time.monotonic()
        await client.bind("default", n, NODE)
    await asyncio.gather(*(bind(n) for n in names))
    await watch.wait(names, timeout)
    return {n: watch.running[n] - t0[n] for n in names}


async def main() -> None:
    ap = cli.arguments(__doc__)
    args = ap.parse_args()
    serial_n = 10 if args.quick else 30
    burst_n = 20 if args.quick else 50
    idle_s = 5.0 if args.quick else 15.0
    figures: dict[str, Any] = cli.figures("kubelet", args)
    rows: dict[str, Any] = {}
    images = build_lab_images(IMAGE_CACHE)
    net = netns.Network(NETWORK)
    net.destroy([NODE_NETNS])
    net.create()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="pb-bench-kubelet-") as tmp:
        base = Path(tmp)
        etcd = EmbeddedEtcd(base / "etcd", client_port=free_port(), peer_port=free_port())
        cd = Containerd(base / "node", netns=NODE_NETNS, pod_cidr=POD_CIDR)
        logs = [open(base / "apiserver.log", "w"), open(base / "kubelet.log", "w")]
        try:
            net.add_host(NODE_NETNS, NODE_ADDRESS)
            await etcd.start()
            await cd.start()
            await cd.import_image(images.archive)
            print(f"== ceiling: raw CRI, {serial_n} pods one at a time, then {burst_n} at once", flush=True)
            ceiling = await raw_cri(cd, serial_n, burst_n)
            figures["raw_cri"] = ceiling
            print(f"   p50 {ceiling['startup_p50_s']} s, p99 {ceiling['startup_p99_s']} s; {burst_n} at once: "
                  f"{ceiling['burst_all_running_s']} s", flush=True)
            data = base / "apiserver"
            procs.append(start_apiserver(data, etcd.endpoint, logs[0]))
            cfg = await admin_config(data, procs[-1], base / "apiserver.log")
            client = Client(cfg.server, token=cfg.token, tls=cfg.tls(), timeout=30)
            await client.list(core.Pod, namespace="default")
            kubelet = subprocess.Popen(
                [sys.executable, "-m", "node_agent.main", "--config", str(data / "admin.conf"),
                 "--node-name", NODE, "--containerd-socket", cd.socket, "--root-dir", str(base / "kubelet"),
                 "--pod-cidr", POD_CIDR, "--node-ip", NODE_ADDRESS.split("/")[0],
                 "--health-port", str(free_port()), "--port", str(free_port()),
                 "--probe-netns", f"/run/netns/{NODE_NETNS}", f"--eviction-hard={LAB_EVICTION_HARD}"],
                stdout=subprocess.DEVNULL, stderr=logs[1])
            procs.append(kubelet)
            for _ in range(300):
                with contextlib.suppress(Exception):
                    await client.get(core.Node, NODE)
                    break
                await asyncio.sleep(0.1)
            watch = RunningWatch(client)
            watch.start()

            print(f"== startup latency, {serial_n} pods one at a time (binding -> Running via the API)", flush=True)
            lat: list[float] = []
            for i in range(serial_n):
                lat.extend((await bind_and_wait(client, watch, [f"serial-{i}"], 60)).values())
            figures["startup_p50_s"], figures["startup_p99_s"] = pct(lat, 0.5), pct(lat, 0.99)
            print(f"   p50 {figures['startup_p50_s']} s, p99 {figures['startup_p99_s']} s", flush=True)
            for q in ("p50", "p99"):
                rows[f"startup_{q}_s"] = row(figures[f"startup_{q}_s"], ceiling[f"startup_{q}_s"], "s", ratio_max=1.2)
            # Free the serial pods so the burst starts from a quiet node.
            for i in range(serial_n):
                await client.delete(core.Pod, f"serial-{i}", namespace="default")
            for _ in range(600):
                if not (await client.list(core.Pod, namespace="default")).items:
                    break
                await asyncio.sleep(0.1)

            print(f"== {burst_n} pods bound at once", flush=True)
            names = [f"burst-{i}" for i in range(burst_n)]
            t = time.monotonic()
            burst = await bind_and_wait(client, watch, names, 180)
            figures["burst_pods"] = burst_n
            figures["burst_all_running_s"] = round(time.monotonic() - t, 2)
            rows[f"burst{burst_n}_all_running_s"] = row(figures["burst_all_running_s"],
                                                        ceiling["burst_all_running_s"], "s", ratio_max=1.2)
            figures["burst_p50_s"], figures["burst_p99_s"] = pct(list(burst.values()), 0.5), pct(
                list(burst.values()), 0.99)
            print(f"   all Running after {figures['burst_all_running_s']} s (per pod p50 {figures['burst_p50_s']} s,"
                  f" p99 {figures['burst_p99_s']} s)", flush=True)

            await asyncio.sleep(3)
            print(f"== idle kubelet with {burst_n} pods, {idle_s:.0f} s", flush=True)
            c0, t0 = proc_cpu_s(kubelet.pid), time.monotonic()
            await asyncio.sleep(idle_s)
            cpu = (proc_cpu_s(kubelet.pid) - c0) / (time.monotonic() - t0) * 100
            figures["idle_cpu_percent"] = round(cpu, 2)
            figures["idle_rss_mb"] = rss_mb(kubelet.pid)
            print(f"   cpu {figures['idle_cpu_percent']}% of one core, rss {figures['idle_rss_mb']} MB", flush=True)
            await watch.stop()
            await client.close()
        finally:
            stop_processes(reversed(procs), grace=15)
            for f in logs:
                f.close()
            await cd.destroy()
            await etcd.kill()
            net.destroy([NODE_NETNS])
    figures["rows"] = rows
    emit(figures)


if __name__ == "__main__":
    asyncio.run(main())
