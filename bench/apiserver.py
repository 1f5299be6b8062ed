"""apiserver figures on this machine, each with its baseline measured in the same run.

- pod creates/s through the apiserver with 64 concurrent clients, vs the same bench process writing the same
  bytes straight to etcd (the ceiling);
- mutating request latency (p50/p99) at a steady 300 requests/s;
- list of N pods (watch cache, consistent read) and the same list paginated from etcd;
- 1,000 concurrent watchers: latency from an update to each watcher receiving it (p50/p99);
- apiserver RSS with N pods stored.

etcd and pb-apiserver run as separate processes (as in the lab); this process is the client.
`--quick` finishes within 60 s. The last line printed is one JSON object of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.etcd_raw import raw_create_rate
from bench.procs import admin_config, start_apiserver, stop_processes
from pybernetes.api import codec
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client.client import Client
from pybernetes.ports import free_port
from services.apiserver.storage.embedded import EmbeddedEtcd
from services.apiserver.storage.etcd import EtcdClient


def make_pod(name: str) -> core.Pod:
    return codec.from_dict({
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "bench", "tier": "web"}},
        "spec": {"containers": [{"name": "web", "image": "localhost:5000/busybox:stable",
                                 "command": ["httpd", "-f", "-p", "8080"],
                                 "ports": [{"containerPort": 8080, "name": "http"}],
                                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]},
    }, core.Pod)


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    v = sorted(values)
    return round(v[min(len(v) - 1, int(len(v) * p))] * 1000, 2)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def create_rate(clients: list[Client], tasks: int, seconds: float, prefix: str) -> dict[str, Any]:
    lat: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    template = make_pod("x")

    async def worker(w: int) -> None:
        nonlocal errors
        c = clients[w % len(clients)]
        i = 0
        while time.perf_counter() < deadline:
            p = core.Pod()
            p.CopyFrom(template)
            p.metadata.name = f"{prefix}-{w}-{i}"
            i += 1
            t = time.perf_counter()
            try:
                await c.create(p)
            except Exception:
                errors += 1
            lat.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(tasks)))
    elapsed = time.perf_counter() - start
    return {"ops": len(lat) - errors, "errors": errors, "per_s": round((len(lat) - errors) / elapsed, 1),
            "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99)}


async def steady_latency(client: Client, rate: float, seconds: float) -> dict[str, Any]:
    """Open loop: a create every 1/rate s regardless of how long earlier ones take."""
    lat: list[float] = []
    errors = 0
    pending: set[asyncio.Task[None]] = set()
    template = make_pod("x")

    async def one(i: int) -> None:
        nonlocal errors
        p = core.Pod()
        p.CopyFrom(template)
        p.metadata.name = f"steady-{i}"
        t = time.perf_counter()
        try:
            await client.create(p)
        except Exception:
            errors += 1
        lat.append(time.perf_counter() - t)

    start = time.perf_counter()
    n = int(rate * seconds)
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        t = asyncio.create_task(one(i))
        pending.add(t)
        t.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    achieved = n / (time.perf_counter() - start)
    return {"rate": rate, "achieved_per_s": round(achieved, 1), "errors": errors,
            "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99)}


async def fill(clients: list[Client], total: int, existing: int) -> None:
    need = total - existing
    if need <= 0:
        return
    template = make_pod("x")
    q: asyncio.Queue[int] = asyncio.Queue()
    for i in range(need):
        q.put_nowait(i)

    async def worker(w: int) -> None:
        c = clients[w % len(clients)]
        while not q.empty():
            i = q.get_nowait()
            p = core.Pod()
            p.CopyFrom(template)
            p.metadata.name = f"fill-{i}"
            await c.create(p)
            if i and i % 2000 == 0:
                print(f"  ... {existing + i} pods stored", flush=True)

    await asyncio.gather(*(worker(w) for w in range(64)))


async def watch_fanout(server: str, token: str, watchers: int, channels: int) -> dict[str, Any]:
    clients = [Client(server, token=token) for _ in range(channels)]
    target = await clients[0].create(make_pod("watched"))
    rv = target.metadata.resource_version
    received: list[float] = []
    started = asyncio.Event()
    ready_count = 0
    sent_at = 0.0
    done = asyncio.Event()

    async def watch(i: int) -> None:
        nonlocal ready_count
        c = clients[i % channels]
        agen = c.watch(core.Pod, namespace="default", field_selector="metadata.name=watched",
                       resource_version=rv, allow_bookmarks=False)
        ready_count += 1
        if ready_count == watchers:
            started.set()
        async for ev in agen:
            if ev.type == "MODIFIED":
                received.append(time.perf_counter() - sent_at)
                if len(received) == watchers:
                    done.set()
                return

    tasks = [asyncio.create_task(watch(i)) for i in range(watchers)]
    await started.wait()
    await asyncio.sleep(2.0)  # let every stream reach the server
    sent_at = time.perf_counter()
    await clients[0].patch(core.Pod, "watched", {"metadata": {"labels": {"bump": "1"}}}, namespace="default")
    try:
        await asyncio.wait_for(done.wait(), 30)
    except TimeoutError:
        pass
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in clients:
        await c.close()
    return {"watchers": watchers, "received": len(received), "p50_ms": pct(received, 0.5),
            "p99_ms": pct(received, 0.99), "max_ms": pct(received, 1.0)}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="finish within 60 s")
    ap.add_argument("--pods", type=int, default=0, help="pods stored for the list/RSS figures (default 10000)")
    args = ap.parse_args()
    seconds = 5.0 if args.quick else 15.0
    n_pods = args.pods or 10_000
    steady_s = 5.0 if args.quick else 20.0
    figures: dict[str, Any] = {"bench": "apiserver", "quick": args.quick, "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="pb-bench-") as tmp:
        etcd = EmbeddedEtcd(Path(tmp) / "etcd", client_port=free_port(), peer_port=free_port())
        await etcd.start()
        data, log = Path(tmp) / "apiserver", Path(tmp) / "apiserver.log"
        proc = start_apiserver(data, etcd.endpoint, open(log, "w"))
        try:
            cfg = await admin_config(data, proc, log)
            clients = [Client(cfg.server, token=cfg.token) for _ in range(4)]
            await clients[0].list(core.Pod, namespace="default")

            print("== baseline: the same bytes straight to etcd, 64 tasks", flush=True)
            raw_client = EtcdClient([etcd.endpoint])
            value_size = len(make_pod("create-0-0").SerializeToString())
            raw = await raw_create_rate(raw_client, 64, seconds, value_size)
            await raw_client.close()
            figures["etcd_raw_creates_per_s"] = raw["creates_per_s"]
            print(f"   {raw['creates_per_s']} creates/s ({value_size} B values)", flush=True)

            print("== pod creates through the apiserver, 64 concurrent clients", flush=True)
            cr = await create_rate(clients, 64, seconds, "create")
            figures["pod_creates_per_s"] = cr["per_s"]
            figures["create_p99_ms"] = cr["p99_ms"]
            figures["create_errors"] = cr["errors"]
            figures["ratio_to_etcd_raw"] = round(cr["per_s"] / raw["creates_per_s"], 3)
            print(f"   {cr['per_s']} creates/s, p99 {cr['p99_ms']} ms, ratio to raw etcd "
                  f"{figures['ratio_to_etcd_raw']}", flush=True)

            print("== mutating latency at a steady 300 requests/s", flush=True)
            st = await steady_latency(clients[0], 300, steady_s)
            figures["steady300_p50_ms"], figures["steady300_p99_ms"] = st["p50_ms"], st["p99_ms"]
            figures["steady300_achieved_per_s"] = st["achieved_per_s"]
            print(f"   achieved {st['achieved_per_s']}/s p50 {st['p50_ms']} ms p99 {st['p99_ms']} ms", flush=True)

            existing = len((await clients[0].list(core.Pod, namespace="default")).items)
            print(f"== filling to {n_pods} pods (have {existing})", flush=True)
            await fill(clients, n_pods, existing)
            # Keep exactly n_pods for the list figure by listing what is there.
            lc = Client(cfg.server, token=cfg.token)
            times = []
            count = 0
            for _ in range(3):
                t = time.perf_counter()
                lst = await lc.list(core.Pod, namespace="default")
                times.append(time.perf_counter() - t)
                count = len(lst.items)
            figures["list_pods"] = count
            figures["list_s"] = round(min(times), 3)
            t = time.perf_counter()
            paged = await lc.list_all(core.Pod, namespace="default", page_size=500)
            figures["list_paginated_etcd_s"] = round(time.perf_counter() - t, 3)
            print(f"   list of {count} pods: {figures['list_s']} s (cache); paginated from etcd "
                  f"({len(paged.items)}): {figures['list_paginated_etcd_s']} s", flush=True)
            await lc.close()
            figures["apiserver_rss_mb"] = rss_mb(proc.pid)
            print(f"   apiserver RSS with {count} pods: {figures['apiserver_rss_mb']} MB", flush=True)

            print("== 1000 concurrent watchers, one update", flush=True)
            wf = await watch_fanout(cfg.server, cfg.token, 1000, 8)
            figures["watch1000_received"] = wf["received"]
            figures["watch1000_p50_ms"], figures["watch1000_p99_ms"] = wf["p50_ms"], wf["p99_ms"]
            print(f"   {wf['received']}/1000 received, p50 {wf['p50_ms']} ms p99 {wf['p99_ms']} ms", flush=True)
            for c in clients:
                await c.close()
        finally:
            stop_processes([proc])
            await etcd.stop()
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
