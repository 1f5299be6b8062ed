"""Cluster density (kubemark-style): Deployments of N x M pods on N hollow nodes, at growing sizes.

At each size a fresh etcd, pb-apiserver, pb-scheduler and pb-controller-manager run as their own processes
(as in the lab), and N hollow nodes (bench/hollow.py: the real kubelet over an in-memory container runtime)
run in processes of up to 250 nodes each. Each component runs as itself, as in the lab: every hollow kubelet
as system:node:<name> (its own certificate and client), the scheduler as system:kube-scheduler, the controller
manager as system:kube-controller-manager, the hollow proxies as system:kube-proxy; the apiserver authorizes
with Node,RBAC and admits with NodeRestriction on, so its in-flight limits apply to all but the bench's own
client (the admin, system:masters). The bench creates Deployments of 500 replicas (fewer for the last)
in one namespace and watches every pod; meanwhile it rewrites one probe pod (bound to a node that does not
exist, so it never runs) every 0.2 s and times each write until its event reaches the watch.

Per size: time from the first Deployment to all pods Running, the scheduler's rate (pods / first pod seen to
last bound), watch delivery p99 (probe write start to its event), list of all pods (median of 3, after),
apiserver and etcd RSS (after), the CPU seconds each component used meanwhile, and two slopes: the per-pod
time to Running, and the per-pod CPU of the cluster (apiserver, etcd, scheduler, controller manager), each
relative to the smallest size (1.0 is linear; the goal is <= 1.3 at the largest). On a shared machine the CPU
slope is the steadier of the two: the time also measures the other tenants. A line every 60 s shows progress.
Full: 100 x 10, 500 x 20, 1,000 x 30 (30,000 pods).
`--quick`: 20 x 5 and 50 x 10. The last line is one JSON object (bench/report.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cli
from bench.hollow import CLUSTER_CIDR, node_name
from bench.procs import (
    admin_config,
    component_kubeconfig,
    proc_cpu_s,
    rss_mb,
    start_apiserver,
    start_etcd,
    stop_processes,
)
from bench.report import emit, row
from bench.scheduler import wait_ready
from lab.control_plane import COMPONENT_USERS, kubelet_user
from pybernetes import errors
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client.client import Client
from pybernetes.client.config import ClientConfig
from pybernetes.ports import free_port

FULL = [(100, 10), (500, 20), (1000, 30)]
QUICK = [(20, 5), (50, 10)]
NODES_PER_PROCESS = 250
REPLICAS_PER_DEPLOYMENT = 500
NAMESPACE = "density"
LABEL = "density"
PROBE_EVERY = 0.2
HOLLOW_LOG_LEVEL = os.environ.get("DENSITY_HOLLOW_LOG", "WARNING")  # INFO: every kubelet event, timestamped
PROGRESS_EVERY = 60.0
HOLLOW_PREFIX = "hollow"  # the hollow nodes' names: hollow-00000, ...
PROBE_NODE = "density-probe-node"  # no such node: the probe pod stays Pending and is never scheduled


def deployment_sizes(total: int, per: int = REPLICAS_PER_DEPLOYMENT) -> list[int]:
    """`total` replicas in Deployments of `per`, the last one holding the rest."""
    return [min(per, total - i) for i in range(0, total, per)]


def slopes(per_pod: list[float]) -> list[float]:
    """Each size's per-pod cost relative to the first (smallest) size's: 1.0 everywhere is linear growth."""
    return [round(c / per_pod[0], 3) if per_pod[0] > 0 else 0.0 for c in per_pod]


def p99(values: list[float]) -> float:
    if not values:
        return -1.0
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * 0.99))]


@dataclass
class Observer:
    """Every pod's first sight, first binding and first Running; the probe's write-to-event times."""

    want: int
    created: dict[str, float] = field(default_factory=dict)
    bound: dict[str, float] = field(default_factory=dict)
    running: dict[str, float] = field(default_factory=dict)
    probe_sent: dict[str, float] = field(default_factory=dict)
    probe_lat: list[float] = field(default_factory=list)
    probe_failures: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def seen(self, p: core.Pod) -> None:
        now = time.perf_counter()
        name = p.metadata.name
        if p.metadata.labels.get("app") != LABEL:
            sent = self.probe_sent.pop(p.metadata.annotations.get("density/seq", ""), None)
            if sent is not None:
                self.probe_lat.append(now - sent)
            return
        self.created.setdefault(name, now)
        if p.spec.node_name:
            self.bound.setdefault(name, now)
        if p.status.phase == "Running":
            self.running.setdefault(name, now)
            if len(self.running) >= self.want:
                self.done.set()


async def observe(client: Client, obs: Observer, rv: str) -> None:
    async for ev in client.watch(core.Pod, namespace=NAMESPACE, resource_version=rv):
        if ev.type in ("ADDED", "MODIFIED"):
            obs.seen(ev.object)


async def progress(obs: Observer, t0: float, every: float = PROGRESS_EVERY) -> None:
    """A line every `every` s while the pods come up: a long run shows its rate, and a timed-out one how far it got."""
    while not obs.done.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(obs.done.wait(), every)
        print(f"   {time.perf_counter() - t0:.0f} s: {len(obs.created)} created, {len(obs.bound)} bound, "
              f"{len(obs.running)} Running", flush=True)


def log_failure(e: Exception) -> None:
    print(f"   probe write failed: {e}", flush=True)


async def probe(client: Client, obs: Observer, stop: asyncio.Event) -> None:
    """Rewrite the probe pod every PROBE_EVERY s until `stop`; obs times each write to its watch event."""
    pod = core.Pod()
    pod.metadata.name, pod.metadata.namespace = "probe", NAMESPACE
    pod.spec.node_name = PROBE_NODE
    pod.spec.containers.add(name="c", image="registry.local/pause:3.9")
    pod = await client.create(pod)
    seq = 0
    while not stop.is_set():
        seq += 1
        pod.metadata.annotations["density/seq"] = str(seq)
        obs.probe_sent[str(seq)] = time.perf_counter()
        try:
            pod = await client.update(pod)
        except errors.ApiError as e:  # an overloaded apiserver times writes out: count it, go on
            obs.probe_failures += 1
            obs.probe_sent.pop(str(seq), None)
            with contextlib.suppress(errors.ApiError):
                pod = await client.get(core.Pod, "probe", namespace=NAMESPACE)
            log_failure(e)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROBE_EVERY)


async def wait_default_service_account(client: Client, timeout: float = 60) -> None:
    """Until the controller manager has made NAMESPACE's `default` ServiceAccount: ServiceAccount admission refuses
    pods naming it before (Kubernetes' e2e framework waits for it the same way)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await client.get(core.ServiceAccount, "default", namespace=NAMESPACE)
            return
        except errors.NotFound:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no ServiceAccount {NAMESPACE}/default after {timeout} s") from None
            await asyncio.sleep(0.1)


def deployment(name: str, replicas: int) -> apps.Deployment:
    d = apps.Deployment()
    d.metadata.name, d.metadata.namespace = name, NAMESPACE
    d.spec.replicas = replicas
    d.spec.selector.match_labels.update({"app": LABEL, "deployment": name})
    d.spec.template.metadata.labels.update({"app": LABEL, "deployment": name})
    d.spec.template.spec.containers.add(name="main", image="registry.local/pause:3.9")
    return d


def cpu_seconds(components: dict[str, list[int]]) -> dict[str, float]:
    return {name: sum(proc_cpu_s(pid) for pid in pids) for name, pids in components.items()}


@dataclass
class Credentials:
    """The kubeconfigs each component runs with (written by `credentials`)."""

    scheduler: Path
    controller_manager: Path
    kubelets: str  # a template: `{node}` is each node's name (bench.hollow.node_kubeconfig)
    proxy: Path | None


def credentials(data: Path, admin: ClientConfig, n_nodes: int, proxy: bool) -> Credentials:
    """A client certificate and kubeconfig per component, as the lab issues them (lab.control_plane's identities),
    signed by the CA of the apiserver in `data`: one per hollow node (system:node:<name>), the scheduler's, the
    controller manager's and, with `proxy`, the proxies' (one, as every pb-proxy has the same identity)."""
    users = {who: (user, groups) for who, user, groups in COMPONENT_USERS}

    def issue(who: str) -> Path:
        return component_kubeconfig(data, admin, who, *users[who])

    for i in range(n_nodes):
        who, user, groups = kubelet_user(node_name(HOLLOW_PREFIX, i))
        component_kubeconfig(data, admin, who, user, groups)
    return Credentials(issue("scheduler"), issue("controller-manager"),
                       str(data / kubelet_user("{node}")[0]) + ".conf", issue("proxy") if proxy else None)


def start_hollow(creds: Credentials, root: Path, first: int, n: int, log: IO[Any]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bench.hollow", "--kubeconfig", creds.kubelets, "--root", str(root),
                             "--prefix", HOLLOW_PREFIX, "--first", str(first), "--nodes", str(n),
                             "--log-level", HOLLOW_LOG_LEVEL,
                             *(["--proxy", "--proxy-kubeconfig", str(creds.proxy)] if creds.proxy else [])],
                            stdout=subprocess.PIPE, stderr=log, cwd=Path(__file__).resolve().parent.parent)


async def wait_line(proc: subprocess.Popen[bytes], what: str) -> None:
    assert proc.stdout is not None
    line = await asyncio.to_thread(proc.stdout.readline)
    if line.strip() != b"ready":
        raise RuntimeError(f"{what} exited ({proc.poll()}) before it was ready")


async def run_case(tmp: Path, n_nodes: int, per_node: int, timeout: float, proxy: bool) -> dict[str, Any]:
    total = n_nodes * per_node
    fig: dict[str, Any] = {"nodes": n_nodes, "pods_per_node": per_node, "pods": total, "hollow_proxy": proxy}
    case = tmp / f"case-{n_nodes}x{per_node}"
    etcd = await start_etcd(case / "etcd")
    data = case / "apiserver"
    # Node,RBAC is the apiserver's default authorization mode; NodeRestriction is turned on, as the lab does, and
    # ServiceAccount admission stays on (the controller manager makes `default`; pods then name it, and the Node
    # authorizer gives a kubelet their tokens through that reference)
    procs: list[subprocess.Popen[bytes]] = [start_apiserver(data, etcd.endpoint, open(case / "apiserver.log", "w"),
                                                            extra=["--enable-admission-plugins=NodeRestriction"],
                                                            service_accounts=True)]
    api = procs[0]
    try:
        cfg = await admin_config(data, api, case / "apiserver.log")
        client = Client(cfg.server, token=cfg.token, tls=cfg.tls(), timeout=120)
        watch_client = Client(cfg.server, token=cfg.token, tls=cfg.tls(), timeout=120)
        t = time.perf_counter()
        creds = await asyncio.to_thread(credentials, data, cfg, n_nodes, proxy)
        fig["credentials_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        hollow = [start_hollow(creds, case / "nodes", first, min(NODES_PER_PROCESS, n_nodes - first),
                               open(case / f"hollow-{first}.log", "w"))
                  for first in range(0, n_nodes, NODES_PER_PROCESS)]
        procs += hollow
        await asyncio.gather(*(wait_line(p, "hollow nodes") for p in hollow))
        fig["nodes_up_s"] = round(time.perf_counter() - t, 2)
        sport, cport = free_port(), free_port()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "services.scheduler.main", "--kubeconfig", str(creds.scheduler),
             "--leader-elect=false",
             "--health-port", str(sport)], stdout=subprocess.DEVNULL, stderr=open(case / "scheduler.log", "w")))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "services.controllers.main", "--kubeconfig", str(creds.controller_manager),
             "--leader-elect=false",
             "--health-port", str(cport), "--cluster-cidr", CLUSTER_CIDR],
            stdout=subprocess.DEVNULL, stderr=open(case / "controller-manager.log", "w")))
        await asyncio.gather(asyncio.to_thread(wait_ready, sport, 120), asyncio.to_thread(wait_ready, cport, 120))
        print(f"   {n_nodes} hollow nodes up in {fig['nodes_up_s']} s (their credentials issued in "
              f"{fig['credentials_s']} s); scheduler and controller manager ready", flush=True)

        ns = core.Namespace()
        ns.metadata.name = NAMESPACE
        await client.create(ns)
        await wait_default_service_account(client)
        obs = Observer(total)
        rv = (await client.list(core.Pod, namespace=NAMESPACE)).resource_version
        watcher = asyncio.create_task(observe(watch_client, obs, rv))
        stop_probe = asyncio.Event()
        prober = asyncio.create_task(probe(client, obs, stop_probe))
        sizes = deployment_sizes(total)
        components = {"apiserver": [api.pid], "etcd": [etcd.pid or 0], "scheduler": [procs[-2].pid],
                      "controller_manager": [procs[-1].pid], "hollow_nodes": [p.pid for p in hollow]}
        cpu0 = cpu_seconds(components)
        t0 = time.perf_counter()
        await asyncio.gather(*(client.create(deployment(f"d{i}", r)) for i, r in enumerate(sizes)))
        reporter = asyncio.create_task(progress(obs, t0))
        try:
            await asyncio.wait_for(obs.done.wait(), timeout)
        except TimeoutError:
            fig["timed_out"] = True
        cpu = {k: round(v - cpu0[k], 1) for k, v in cpu_seconds(components).items()}
        stop_probe.set()
        await prober
        reporter.cancel()
        fig["cpu_s"] = cpu
        running = max(len(obs.running), 1)
        fig["cluster_cpu_ms_per_pod"] = round(sum(v for k, v in cpu.items() if k != "hollow_nodes") / running * 1000, 2)
        fig["hollow_cpu_ms_per_pod"] = round(cpu["hollow_nodes"] / running * 1000, 2)
        fig["deployments"] = len(sizes)
        fig["running"] = len(obs.running)
        fig["all_created_s"] = round(max(obs.created.values(), default=t0) - t0, 2)
        fig["all_bound_s"] = round(max(obs.bound.values(), default=t0) - t0, 2)
        fig["all_running_s"] = round(max(obs.running.values(), default=t0) - t0, 2)
        first_seen = min(obs.created.values(), default=t0)
        fig["scheduler_pods_per_s"] = round(len(obs.bound) / max(max(obs.bound.values(), default=t0) - first_seen,
                                                                 1e-9), 1)
        fig["watch_p99_ms"] = round(p99(obs.probe_lat) * 1000, 1)
        fig["watch_p50_ms"] = round(statistics.median(obs.probe_lat) * 1000, 1) if obs.probe_lat else -1.0
        fig["probes"] = len(obs.probe_lat)
        fig["probe_failures"] = obs.probe_failures
        fig["apiserver_rss_mb"] = rss_mb(api.pid)
        fig["etcd_rss_mb"] = rss_mb(etcd.pid) if etcd.pid else 0.0
        fig["hollow_rss_mb"] = round(sum(rss_mb(p.pid) for p in hollow), 1)
        lists = []
        for _ in range(3):
            t = time.perf_counter()
            got = await client.list(core.Pod)
            lists.append(time.perf_counter() - t)
        fig["list_all_pods_s"] = round(statistics.median(lists), 3)
        fig["listed"] = len(got.items)
        # per pod Running (all of them unless timed out: then the rate so far, the CPU spent on pods not yet
        # Running counted against those that are)
        fig["per_pod_ms"] = round(fig["all_running_s"] / max(len(obs.running), 1) * 1000, 3)
        print(f"   CPU seconds from the first Deployment to all Running: {cpu}; cluster (all but the hollow nodes) "
              f"{fig['cluster_cpu_ms_per_pod']} ms/pod, hollow nodes {fig['hollow_cpu_ms_per_pod']} ms/pod", flush=True)
        print(f"   all created after {fig['all_created_s']} s, bound after {fig['all_bound_s']} s", flush=True)
        print(f"   {fig['running']}/{total} Running after {fig['all_running_s']} s ({fig['per_pod_ms']} ms/pod); "
              f"scheduler {fig['scheduler_pods_per_s']} pods/s; watch p99 {fig['watch_p99_ms']} ms "
              f"({fig['probes']} probes); list {fig['listed']} pods {fig['list_all_pods_s']} s; RSS apiserver "
              f"{fig['apiserver_rss_mb']} MB, etcd {fig['etcd_rss_mb']} MB, hollow nodes {fig['hollow_rss_mb']} MB",
              flush=True)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
        for c in (client, watch_client):
            with contextlib.suppress(Exception):
                await c.close()
    finally:
        stop_processes(reversed(procs), grace=20)
        await etcd.stop()
    return fig


async def main() -> None:
    ap = cli.arguments(__doc__, f"sizes {QUICK} (nodes, pods per node), about 90 s")
    ap.add_argument("--proxy", action="store_true", help="a hollow proxy beside each hollow kubelet")
    ap.add_argument("--timeout", type=float, default=0.0,
                    help="seconds to wait for all pods Running at each size (default 120 + pods/10); on expiry the "
                         "figures are those of the pods Running by then")
    ap.add_argument("--keep", type=Path, help="keep the logs and data under this directory")
    ap.add_argument("--size", action="append", default=[], metavar="NODESxPODS",
                    help="a size to run instead (repeatable), e.g. 100x10")
    args = ap.parse_args()
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)  # the finally blocks stop the cluster
    try:
        sizes = [(int(a), int(b)) for a, b in (s.split("x", 1) for s in args.size)] or (QUICK if args.quick else FULL)
    except ValueError:
        ap.error(f"--size: want NODESxPODS (e.g. 100x10), got {args.size}")
    figures: dict[str, Any] = cli.figures("density", args, cases=[])
    with contextlib.ExitStack() as stack:
        tmp = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pb-bench-density-")))
        for n, m in sizes:
            print(f"== {n} hollow nodes x {m} pods = {n * m} pods", flush=True)
            timeout = args.timeout or 120 + n * m / 10
            figures["cases"].append(await run_case(tmp, n, m, timeout=timeout, proxy=args.proxy))
    cases = figures["cases"]
    slope = slopes([c["per_pod_ms"] for c in cases])
    cpu_slope = slopes([c["cluster_cpu_ms_per_pod"] for c in cases])
    figures["rows"] = {}
    for c, s, cs in zip(cases, slope, cpu_slope, strict=True):
        c["slope"], c["cpu_slope"] = s, cs
        size = f"{c['nodes']}x{c['pods_per_node']}"
        figures["rows"][f"per_pod_ms_{size}"] = row(c["per_pod_ms"], cases[0]["per_pod_ms"], "ms",
                                                    ratio_max=1.3 if c is cases[-1] else None)
        figures["rows"][f"cluster_cpu_ms_per_pod_{size}"] = row(c["cluster_cpu_ms_per_pod"],
                                                                cases[0]["cluster_cpu_ms_per_pod"], "ms",
                                                                ratio_max=1.3 if c is cases[-1] else None)
        figures["rows"][f"all_running_s_{size}"] = row(c["all_running_s"], None, "s")
    print("== slope (per-pod time to Running relative to the smallest size): "
          + ", ".join(f"{c['nodes']}x{c['pods_per_node']} {c['slope']}" for c in cases), flush=True)
    print("== slope of the cluster's CPU per pod (apiserver, etcd, scheduler, controller manager): "
          + ", ".join(f"{c['nodes']}x{c['pods_per_node']} {c['cpu_slope']}" for c in cases), flush=True)
    figures["all_running"] = all(c["running"] == c["pods"] for c in cases)
    emit(figures)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except asyncio.CancelledError:  # SIGTERM: the finally blocks stopped the cluster
        sys.exit(143)
