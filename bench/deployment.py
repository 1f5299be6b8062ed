"""Deployment of 1,000 replicas on 100 hollow nodes: time until every pod is created, bound and Ready.

etcd and pb-apiserver run as separate processes (as in the lab); the hollow kubelet (Node objects, marks
bound pods Running + Ready, no containers) runs in its own process, and so does the real scheduler
(services.scheduler, falling back to the hollow kubelet's round-robin binder with --binder roundrobin or
when the scheduler cannot start). The ReplicaSet and Deployment controllers run in this process, which
also observes the pods through a watch. `--quick` finishes within 60 s. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cli
from bench.procs import admin_config, start_apiserver, start_etcd, stop_processes
from pybernetes import errors
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.cache import InformerFactory
from pybernetes.client import config as client_config
from pybernetes.client.client import Client
from pybernetes.events import EventRecorder


def _is_ready(p: core.Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in p.status.conditions)


async def kubelet_role(kubeconfig: str, nodes: int, bind: bool) -> None:
    from tests.integration.test_controllers import HollowKubelet

    client = Client.from_config(client_config.load(kubeconfig), timeout=30)
    kubelet = HollowKubelet(client, nodes=nodes, workers=64, prefix="bench-node", bind=bind)
    await kubelet.start()
    print("kubelet ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await kubelet.stop()
    await client.close()


class Observer:
    def __init__(self, client: Client, want: int) -> None:
        self.want = want
        self.factory = InformerFactory(client)
        self.informer = self.factory.informer_for(core.Pod, namespace="default", label_selector="app=bench")
        self.created: dict[str, float] = {}
        self.bound: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.done = asyncio.Event()
        self.informer.add_event_handler(self._seen, lambda _o, n: self._seen(n), None)

    def _seen(self, p: core.Pod) -> None:
        now = time.perf_counter()
        name = p.metadata.name
        self.created.setdefault(name, now)
        if p.spec.node_name:
            self.bound.setdefault(name, now)
        if _is_ready(p):
            self.ready.setdefault(name, now)
        if len(self.ready) >= self.want:
            self.done.set()


def _phase(d: dict[str, float], n: int, t0: float) -> float:
    times = sorted(d.values())
    return round(times[n - 1] - t0, 3) if len(times) >= n else -1.0


async def main() -> None:
    ap = cli.arguments(__doc__)
    ap.add_argument("--replicas", type=int, default=1000)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--binder", choices=("scheduler", "roundrobin"), default="scheduler")
    ap.add_argument("--role", default="", help=argparse.SUPPRESS)
    ap.add_argument("--kubeconfig", default="", help=argparse.SUPPRESS)
    ap.add_argument("--bind", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "kubelet":
        await kubelet_role(args.kubeconfig, args.nodes, bool(args.bind))
        return
    timeout = 50.0 if args.quick else 600.0
    figures: dict[str, Any] = cli.figures("deployment", args, replicas=args.replicas, nodes=args.nodes)
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="pb-bench-") as tmp:
        etcd = await start_etcd(Path(tmp) / "etcd")
        data = Path(tmp) / "apiserver"
        try:
            log = Path(tmp) / "apiserver.log"
            procs.append(start_apiserver(data, etcd.endpoint, open(log, "w")))
            cfg = await admin_config(data, procs[-1], log)
            client = Client(cfg.server, token=cfg.token, tls=cfg.tls(), timeout=30)
            await client.list(core.Pod, namespace="default")

            binder = args.binder
            if binder == "scheduler":
                try:
                    import services.scheduler.main  # noqa: F401
                except ImportError:
                    binder = "roundrobin"
            figures["binder"] = binder
            kubelet = subprocess.Popen(
                [sys.executable, "-m", "bench.deployment", "--role", "kubelet", "--kubeconfig", cfg.path,
                 "--nodes", str(args.nodes), "--bind", str(int(binder == "roundrobin"))],
                stdout=subprocess.PIPE, stderr=open(Path(tmp) / "kubelet.log", "w"))
            procs.append(kubelet)
            assert kubelet.stdout is not None
            await asyncio.get_running_loop().run_in_executor(None, kubelet.stdout.readline)
            if binder == "scheduler":
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "services.scheduler.main", "--kubeconfig", cfg.path,
                     "--leader-elect", "false", "--health-port", "0"],
                    stdout=subprocess.DEVNULL, stderr=open(Path(tmp) / "scheduler.log", "w")))
                probe = core.Pod()
                probe.metadata.name, probe.metadata.namespace = "probe", "default"
                probe.spec.containers.add(name="c", image="registry.local/pause:3.9")
                await client.create(probe)
                for _ in range(300):
                    if (await client.get(core.Pod, "probe", namespace="default")).spec.node_name:
                        break
                    await asyncio.sleep(0.1)
                await client.delete(core.Pod, "probe", namespace="default", grace_period_seconds=0)
            print(f"== cluster up: {args.nodes} hollow nodes, binder={binder}", flush=True)

            from services.controllers.deployment import DeploymentController
            from services.controllers.replicaset import ReplicaSetController

            ctrl_client = Client(cfg.server, token=cfg.token, tls=cfg.tls(), timeout=30)
            factory = InformerFactory(ctrl_client)
            recorder = EventRecorder(ctrl_client, "controller-manager", "bench")
            recorder.start()
            stop = asyncio.Event()
            rs_ctrl = ReplicaSetController(ctrl_client, factory, recorder, workers=5)
            d_ctrl = DeploymentController(ctrl_client, factory, recorder, workers=5)
            tasks = [asyncio.create_task(c.run(stop)) for c in (rs_ctrl, d_ctrl)]
            obs_client = Client(cfg.server, token=cfg.token, tls=cfg.tls(), timeout=30)
            obs = Observer(obs_client, args.replicas)
            obs.factory.start()
            await obs.factory.wait_for_cache_sync()
            await asyncio.gather(*(i.wait_for_sync() for i in factory.informers()))

            d = apps.Deployment()
            d.metadata.name, d.metadata.namespace = "bench", "default"
            d.spec.replicas = args.replicas
            d.spec.selector.match_labels["app"] = "bench"
            d.spec.template.metadata.labels["app"] = "bench"
            d.spec.template.spec.containers.add(name="main", image="registry.local/nginx:1.25")
            print(f"== deployment of {args.replicas} replicas", flush=True)
            t0 = time.perf_counter()
            await client.create(d)
            try:
                await asyncio.wait_for(obs.done.wait(), timeout)
            except TimeoutError:
                figures["timed_out"] = True
            t_ready = time.perf_counter() - t0
            available_s = -1.0
            deadline = time.perf_counter() + (10 if args.quick else 60)
            while time.perf_counter() < deadline:
                got = await client.get(apps.Deployment, "bench", namespace="default")
                if got.status.available_replicas == args.replicas and got.status.updated_replicas == args.replicas:
                    available_s = round(time.perf_counter() - t0, 3)
                    break
                await asyncio.sleep(0.05)
            n = args.replicas
            figures["all_created_s"] = _phase(obs.created, n, t0)
            figures["all_bound_s"] = _phase(obs.bound, n, t0)
            figures["all_ready_s"] = _phase(obs.ready, n, t0) if not figures.get("timed_out") else -1.0
            figures["deployment_available_s"] = available_s
            figures["pods_ready_per_s"] = round(len(obs.ready) / t_ready, 1) if t_ready > 0 else 0.0
            figures["pods_seen"] = len(obs.created)
            pods = (await client.list(core.Pod, namespace="default", label_selector="app=bench")).items
            figures["pods_total"] = len(pods)
            figures["duplicates"] = max(0, len(pods) - n)
            per_node: dict[str, int] = {}
            for p in pods:
                per_node[p.spec.node_name] = per_node.get(p.spec.node_name, 0) + 1
            figures["max_pods_per_node"] = max(per_node.values(), default=0)
            print(f"   created {figures['all_created_s']} s, bound {figures['all_bound_s']} s, ready "
                  f"{figures['all_ready_s']} s, deployment available {available_s} s "
                  f"({figures['pods_ready_per_s']} pods/s); {figures['pods_total']} pods, max "
                  f"{figures['max_pods_per_node']} per node", flush=True)
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await factory.shutdown()
            await obs.factory.shutdown()
            await recorder.stop()
            for c in (client, ctrl_client, obs_client):
                try:
                    await c.close()
                except errors.ApiError:
                    pass
        finally:
            stop_processes(reversed(procs))
            await etcd.stop()
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
