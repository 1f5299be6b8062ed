"""pb-scheduler throughput: N hollow nodes (API objects with capacity and Ready, no kubelet), M pods created,
time from the first create to all bound.

etcd, pb-apiserver and pb-scheduler run as separate processes (as in the lab); this process creates the
objects and watches the pods. The ceiling of each case, measured in the same run, is the scheduling algorithm
alone on the same snapshot (the same nodes and pods in memory, no API), so what the ratio leaves out is the
scheduler's own overhead around it (issue 16: >= 0.7 of it, and >= 700 pods/s at 1000 nodes).
Two figures per case: `pods_per_s`, from the first create to all bound with the scheduler running (bounded by
the rate at which this process can create pods through the apiserver), and `backlog_pods_per_s`, a second
scheduler started over M more pods already pending, from its readiness (informers synced) to all of them
bound (the scheduler's own rate, as scheduler_perf's throughput measures it).
`--quick` (<= 60 s): 1000 nodes / 2000 pods. Full: 1000 nodes / 5000 pods and 5000 nodes / 5000 pods.
Last line: one JSON object of figures (bench/report.py).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cli
from bench.procs import admin_config, start_apiserver, start_etcd, stop_processes
from bench.report import emit, row
from lab.images import BUSYBOX_IMAGE
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client.client import Client
from pybernetes.ports import free_port
from services.scheduler.cache import PodInfo, SchedulerCache
from services.scheduler.config import Profile
from services.scheduler.testing import make_node, make_pod

ZONES = 3
PODS_PER_RS = 50


def hollow_node(i: int) -> core.Node:
    return make_node(f"hollow-{i:05}", cpu="32", memory="128Gi", pods="110",
                     labels={"topology.kubernetes.io/zone": f"zone-{i % ZONES}"},
                     images=[(BUSYBOX_IMAGE, 5 * 1024 * 1024)])


def bench_pod(i: int) -> core.Pod:
    rs = f"rs-{i // PODS_PER_RS}"
    return make_pod(f"pod-{i:05}", cpu="100m", memory="128Mi", labels={"app": rs},
                    image=BUSYBOX_IMAGE, owner_uid=f"uid-{rs}")


def algorithm_rate(n_nodes: int, n_pods: int) -> tuple[float, float]:
    """Decisions per second of the default profile alone (assume each decision, no API), and its CPU ms per
    decision (steadier than the rate on a shared machine)."""
    cache = SchedulerCache()
    for i in range(n_nodes):
        cache.set_node(hollow_node(i))
    fwk = Profile().build()
    pods = [PodInfo(bench_pod(i)) for i in range(n_pods)]
    t, cpu = time.perf_counter(), time.process_time()
    for p in pods:
        r = fwk.schedule(cache, p)
        cache.assume_pod(p.with_node(r.node))
    return n_pods / (time.perf_counter() - t), (time.process_time() - cpu) * 1000 / n_pods


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (/proc/PID/stat utime, stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def gather_limited(n: int, limit: int, fn: Any) -> None:
    sem = asyncio.Semaphore(limit)

    async def one(i: int) -> None:
        async with sem:
            await fn(i)

    await asyncio.gather(*(one(i) for i in range(n)))


def wait_ready(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("scheduler did not become ready")


def scrape(port: int, prefix: str) -> dict[str, float]:
    out: dict[str, float] = {}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(prefix):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
    return out


def start_scheduler(kubeconfig: str, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.scheduler.main", "--kubeconfig", kubeconfig,
         "--leader-elect=false", "--health-port", str(port)],
        stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))


async def watch_bound(client: Client, names: set[str], resource_version: str, done: asyncio.Event,
                      last_bound: list[float]) -> None:
    """Until every pod in `names` is seen bound: the time of the last binding in last_bound[0]."""
    bound: set[str] = set()
    async for ev in client.watch(core.Pod, namespace="default", resource_version=resource_version):
        name = ev.object.metadata.name
        if ev.object.spec.node_name and name in names and name not in bound:
            bound.add(name)
            last_bound[0] = time.perf_counter()
            if len(bound) >= len(names):
                done.set()
                return


async def run_case(tmp: Path, n_nodes: int, n_pods: int) -> dict[str, Any]:
    fig: dict[str, Any] = {"nodes": n_nodes, "pods": n_pods}
    rate, cpu_ms = algorithm_rate(n_nodes, min(n_pods, 2000))
    fig["algorithm_pods_per_s"], fig["algorithm_cpu_ms_per_pod"] = round(rate, 1), round(cpu_ms, 2)
    print(f"   ceiling, the algorithm alone (in memory): {fig['algorithm_pods_per_s']} pods/s", flush=True)
    case = tmp / f"case-{n_nodes}-{n_pods}"
    etcd = await start_etcd(case / "etcd")
    sport = free_port()
    data = case / "apiserver"
    api = start_apiserver(data, etcd.endpoint, open(case / "apiserver.log", "w"))
    sched: subprocess.Popen[bytes] | None = None
    try:
        cfg = await admin_config(data, api, case / "apiserver.log")
        clients = [Client(cfg.server, token=cfg.token, tls=cfg.tls(), timeout=60) for _ in range(4)]
        await clients[0].list(core.Pod, namespace="default")

        t = time.perf_counter()
        await gather_limited(n_nodes, 64, lambda i: clients[i % 4].create(hollow_node(i)))
        fig["node_create_s"] = round(time.perf_counter() - t, 2)
        print(f"   {n_nodes} nodes created in {fig['node_create_s']} s", flush=True)

        sched = start_scheduler(cfg.path, sport, case / "scheduler.log")
        await asyncio.to_thread(wait_ready, sport, 120)

        lst = await clients[0].list(core.Pod, namespace="default")
        done = asyncio.Event()
        last_bound = [0.0]
        names = {f"pod-{i:05}" for i in range(n_pods)}
        watcher = asyncio.create_task(watch_bound(clients[3], names, lst.resource_version, done, last_bound))
        await asyncio.sleep(0.2)
        t0 = time.perf_counter()

        async def create(i: int) -> None:
            p = bench_pod(i)
            p.metadata.uid = ""
            await clients[i % 3].create(p)

        await gather_limited(n_pods, 64, create)
        t_created = time.perf_counter()
        try:
            await asyncio.wait_for(done.wait(), timeout=max(120.0, n_pods / 20))
        finally:
            watcher.cancel()
        t_end = last_bound[0]
        fig["create_s"] = round(t_created - t0, 2)
        fig["create_per_s"] = round(n_pods / (t_created - t0), 1)
        fig["first_create_to_all_bound_s"] = round(t_end - t0, 2)
        fig["pods_per_s"] = round(n_pods / (t_end - t0), 1)
        metrics = scrape(sport, "scheduler_schedule_attempts_total")
        fig["attempts"] = {k.split("{", 1)[1].rstrip("}"): v for k, v in metrics.items()}
        print(f"   {n_pods} pods created in {fig['create_s']} s ({fig['create_per_s']}/s); all bound after "
              f"{fig['first_create_to_all_bound_s']} s -> {fig['pods_per_s']} pods/s", flush=True)

        # The backlog: M more pods pending before a fresh scheduler starts.
        stop_processes([sched])
        sched = None
        await gather_limited(n_pods, 64, lambda i: create(n_pods + i))
        lst = await clients[0].list(core.Pod, namespace="default")
        done = asyncio.Event()
        names = {f"pod-{n_pods + i:05}" for i in range(n_pods)}
        watcher = asyncio.create_task(watch_bound(clients[3], names, lst.resource_version, done, last_bound))
        sched = start_scheduler(cfg.path, sport, case / "scheduler-backlog.log")
        await asyncio.to_thread(wait_ready, sport, 120)
        t_ready, cpu0 = time.perf_counter(), cpu_seconds(sched.pid)
        try:
            await asyncio.wait_for(done.wait(), timeout=max(120.0, n_pods / 20))
        finally:
            watcher.cancel()
        # The scheduler's CPU per pod against the algorithm's: its own overhead, whatever the load.
        fig["backlog_cpu_ms_per_pod"] = round((cpu_seconds(sched.pid) - cpu0) * 1000 / n_pods, 2)
        fig["backlog_s"] = round(last_bound[0] - t_ready, 2)
        fig["backlog_pods_per_s"] = round(n_pods / (last_bound[0] - t_ready), 1)
        print(f"   backlog: {n_pods} pending pods bound {fig['backlog_s']} s after the scheduler was ready -> "
              f"{fig['backlog_pods_per_s']} pods/s; {fig['backlog_cpu_ms_per_pod']} CPU ms/pod "
              f"(the algorithm alone: {fig['algorithm_cpu_ms_per_pod']})", flush=True)
        nodes_used: dict[str, int] = {}
        for p in (await clients[0].list(core.Pod, namespace="default")).items:
            nodes_used[p.spec.node_name] = nodes_used.get(p.spec.node_name, 0) + 1
        fig["nodes_used"] = len(nodes_used)
        fig["max_pods_per_node"] = max(nodes_used.values())
        print(f"   {fig['nodes_used']} nodes used, max {fig['max_pods_per_node']} pods/node", flush=True)
        for c in clients:
            await c.close()
    finally:
        stop_processes([sched, api])
        await etcd.stop()
    return fig


async def main() -> None:
    ap = cli.arguments(__doc__, "1000 nodes / 2000 pods, within 60 s")
    ap.add_argument("--nodes", type=int, default=0, help="one custom case: nodes")
    ap.add_argument("--pods", type=int, default=0, help="one custom case: pods")
    args = ap.parse_args()
    if args.nodes and args.pods:
        cases = [(args.nodes, args.pods)]
    elif args.quick:
        cases = [(1000, 2000)]
    else:
        cases = [(1000, 5000), (5000, 5000)]
    figures: dict[str, Any] = cli.figures("scheduler", args, cases=[])
    with tempfile.TemporaryDirectory(prefix="pb-bench-sched-") as tmp:
        for n, m in cases:
            print(f"== {n} nodes, {m} pods", flush=True)
            figures["cases"].append(await run_case(Path(tmp), n, m))
    figures["rows"] = {}
    for c in figures["cases"]:
        for name in ("pods_per_s", "backlog_pods_per_s"):
            figures["rows"][f"{name}_{c['nodes']}n_{c['pods']}p"] = row(
                c[name], c["algorithm_pods_per_s"], "/s", ratio_min=0.7, figure_min=700 if c["nodes"] <= 1000 else None)
        # Pods per CPU second, the scheduler process over the backlog against the algorithm alone.
        figures["rows"][f"backlog_pods_per_cpu_s_{c['nodes']}n_{c['pods']}p"] = row(
            round(1000 / c["backlog_cpu_ms_per_pod"], 1), round(1000 / c["algorithm_cpu_ms_per_pod"], 1), "/CPU-s",
            ratio_min=0.7)
    emit(figures)


if __name__ == "__main__":
    asyncio.run(main())
