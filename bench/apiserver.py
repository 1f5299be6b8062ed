"""apiserver figures on this machine, each beside its ceiling measured in the same run (issue 16).

- Pod creates/s, 64 concurrent clients vs the same creates through bench/api_relay.py (same protos, same
  etcd client, create -> etcd put, nothing else);
- mutating p99 at a steady 300/s vs raw etcd put (EtcdClient.create) p99 at a steady 300/s;
- list of 10,000 pods (watch cache) vs one in-process serialization of the same pods as a ListResponse;
- 1,000 watchers, one write, p99 delivery vs the same fan-out through the relay's bare server-stream (the
  median of 3 writes' p99, each to all 1,000 streams).
Also: the same list paginated from etcd, and apiserver RSS with the pods stored.

etcd, pb-apiserver and the relay run as separate processes (as in the lab); this process is the client.
`--quick` finishes within 60 s. The last line printed is one JSON object of figures (bench/report.py).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cli
from bench.load import closed_loop, interleaved, pct
from bench.procs import admin_config, rss_mb, start_apiserver, start_etcd, start_relay, stop_processes, wait_port
from bench.report import emit, row
from lab.images import BUSYBOX_IMAGE
from pybernetes.api import codec
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.rpc.v1 import rpc_pb2 as pb
from pybernetes.client.client import Client
from pybernetes.ports import free_port
from pybernetes.rpc import ChannelTLS
from services.apiserver.storage.etcd import EtcdClient

__all__ = ["create_rate", "pct"]  # bench/metrics.py drives its load with these
SLICES = 4  # a figure and its ceiling alternate in this many slices each (bench/load.py interleaved)


def make_pod(name: str) -> core.Pod:
    return codec.from_dict({
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "bench", "tier": "web"}},
        "spec": {"containers": [{"name": "web", "image": BUSYBOX_IMAGE,
                                 "command": ["httpd", "-f", "-p", "8080"],
                                 "ports": [{"containerPort": 8080, "name": "http"}],
                                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]},
    }, core.Pod)


def pod_creator(clients: list[Client], prefix: str) -> Callable[[int], Awaitable[core.Pod]]:
    """op(task): create pod `prefix`-N (N counts up) through clients[task % len(clients)]."""
    template = make_pod("x")
    names = itertools.count()

    def create(w: int) -> Awaitable[core.Pod]:
        p = core.Pod()
        p.CopyFrom(template)
        p.metadata.name = f"{prefix}-{next(names)}"
        return clients[w % len(clients)].create(p)

    return create


async def create_rate(clients: list[Client], tasks: int, seconds: float, prefix: str) -> dict[str, Any]:
    return await closed_loop(pod_creator(clients, prefix), tasks, seconds)


async def fill(clients: list[Client], total: int, existing: int, namespace: str = "default") -> None:
    """Create pods fill-N in `namespace` until it holds `total` (it holds `existing`), 64 at a time."""
    need = total - existing
    if need <= 0:
        return
    template = make_pod("x")
    template.metadata.namespace = namespace
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


def codec_s(pods: list[core.Pod]) -> tuple[float, float]:
    """Seconds of one in-process serialization of `pods` as the List reply carries them (the ceiling), and of
    parsing it back as pybernetes.client does (a cost the list figure also pays, shown beside it)."""
    t = time.perf_counter()
    data = pb.ListResponse(api_version="v1", kind="PodList",
                           items=[pb.Object(api_version="v1", kind="Pod", raw=p.SerializeToString())
                                  for p in pods]).SerializeToString()
    t1 = time.perf_counter()
    for o in pb.ListResponse.FromString(data).items:
        core.Pod.FromString(o.raw)
    return t1 - t, time.perf_counter() - t1


async def watch_fanout(server: str, token: str, watchers: int, channels: int,
                       write: Callable[[Client, int], Awaitable[object]], *, rounds: int = 3,
                       field_selector: str = "", resource_version: str = "",
                       tls: ChannelTLS | None = None) -> dict[str, Any]:
    """`watchers` streams over `channels` channels; `rounds` times, the time from write(client, round) to each
    stream's MODIFIED event. The figure is the median of the rounds' p99 (one round swings 2x on a busy box)."""
    clients = [Client(server, token=token, tls=tls) for _ in range(channels)]
    received: list[list[float]] = [[] for _ in range(rounds)]
    round_done = [asyncio.Event() for _ in range(rounds)]
    current = 0
    sent_at = 0.0
    opened = 0
    all_opened = asyncio.Event()

    async def watch(i: int) -> None:
        nonlocal opened
        c = clients[i % channels]
        agen = c.watch(core.Pod, namespace="default", field_selector=field_selector,
                       resource_version=resource_version, allow_bookmarks=False)
        opened += 1
        if opened == watchers:
            all_opened.set()
        async for ev in agen:
            if ev.type == "MODIFIED":
                got = received[current]
                got.append(time.perf_counter() - sent_at)
                if len(got) == watchers:
                    round_done[current].set()

    tasks = [asyncio.create_task(watch(i)) for i in range(watchers)]
    await all_opened.wait()
    await asyncio.sleep(2.0)  # let every stream reach the server
    for r in range(rounds):
        current = r
        sent_at = time.perf_counter()
        await write(clients[0], r)
        try:
            await asyncio.wait_for(round_done[r].wait(), 30)
        except TimeoutError:
            pass
        await asyncio.sleep(0.3)  # stragglers of this round stay out of the next
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in clients:
        await c.close()
    p99s = [pct(got, 0.99) for got in received]
    return {"watchers": watchers, "received": [len(got) for got in received],
            "p50_ms": sorted(pct(got, 0.5) for got in received)[rounds // 2], "round_p99_ms": p99s,
            "p99_ms": sorted(p99s)[rounds // 2]}


async def main() -> None:
    ap = cli.arguments(__doc__)
    ap.add_argument("--pods", type=int, default=0, help="pods stored for the list/RSS figures (default 10000)")
    args = ap.parse_args()
    seconds = 4.0 if args.quick else 15.0
    n_pods = args.pods or 10_000
    steady_s = 4.0 if args.quick else 20.0
    figures: dict[str, Any] = cli.figures("apiserver", args)
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pb-bench-") as tmp:
        etcd = await start_etcd(Path(tmp) / "etcd")
        data, log = Path(tmp) / "apiserver", Path(tmp) / "apiserver.log"
        proc = start_apiserver(data, etcd.endpoint, open(log, "w"))
        relay_port = free_port()
        relay_log = open(Path(tmp) / "relay.log", "w")
        relay = start_relay(etcd.endpoint, relay_port, relay_log)
        try:
            cfg = await admin_config(data, proc, log)
            await wait_port(relay_port, relay)
            clients = [Client(cfg.server, token=cfg.token, tls=cfg.tls()) for _ in range(4)]
            await clients[0].list(core.Pod, namespace="default")
            relay_url = f"127.0.0.1:{relay_port}"
            relay_clients = [Client(relay_url) for _ in range(4)]

            print("== pod creates, 64 concurrent clients: the relay and the apiserver, interleaved", flush=True)
            ceil, cr = await interleaved(
                "closed", [pod_creator(relay_clients, "relay"), pod_creator(clients, "create")], seconds,
                slices=SLICES, tasks=64)
            figures["relay_creates"], figures["apiserver_creates"] = ceil, cr
            rows["pod_creates_per_s"] = row(cr["per_s"], ceil["per_s"], "/s", ratio_min=0.7)
            for c in relay_clients:
                await c.close()

            print("== mutating latency at a steady 300/s: raw etcd put and the apiserver, interleaved", flush=True)
            raw = EtcdClient([etcd.endpoint])
            value = make_pod("steady-0").SerializeToString()
            keys = (f"/bench/raw/{os.urandom(4).hex()}/{i}".encode() for i in itertools.count())
            raw_st, st = await interleaved("open", [lambda _w: raw.create(next(keys), value),
                                                    pod_creator(clients[:1], "steady")],
                                           steady_s, slices=SLICES, rate=300)
            await raw.close()
            figures["etcd_put_steady300"], figures["apiserver_steady300"] = raw_st, st
            rows["steady300_p99_ms"] = row(st["p99_ms"], raw_st["p99_ms"], "ms", ratio_max=2)

            print("== 1000 watchers, one write: the relay's bare server-stream", flush=True)
            relay_wf = await watch_fanout(relay_url, "", 1000, 8, lambda c, r: c.create(make_pod(f"watched-{r}")))
            stop_processes([relay])  # idle from here; stopping it twice is harmless

            existing = len((await clients[0].list(core.Pod, namespace="default")).items)
            print(f"== filling to {n_pods} pods (have {existing})", flush=True)
            await fill(clients, n_pods, existing)
            lc = Client(cfg.server, token=cfg.token, tls=cfg.tls())
            times, ser, parse = [], [], []
            for _ in range(3):  # each list beside a serialization, best of 3 each
                t = time.perf_counter()
                lst = await lc.list(core.Pod, namespace="default")
                times.append(time.perf_counter() - t)
                ser_s, parse_s = codec_s(lst.items)
                ser.append(ser_s)
                parse.append(parse_s)
            figures["list_pods"] = len(lst.items)
            figures["serialize_s"], figures["parse_s"] = round(min(ser), 3), round(min(parse), 3)
            rows["list_10k_s"] = row(round(min(times), 3), figures["serialize_s"], "s", ratio_max=2, figure_max=0.1)
            t = time.perf_counter()
            paged = await lc.list_all(core.Pod, namespace="default", page_size=500)
            figures["list_paginated_etcd_s"] = round(time.perf_counter() - t, 3)
            print(f"   list of {len(lst.items)} pods: {min(times):.3f} s (cache), serialized in process "
                  f"{figures['serialize_s']} s, parsed {figures['parse_s']} s; paginated from etcd "
                  f"({len(paged.items)}): {figures['list_paginated_etcd_s']} s", flush=True)
            await lc.close()
            figures["apiserver_rss_mb"] = rss_mb(proc.pid)

            print("== 1000 watchers, one write: the apiserver", flush=True)
            target = await clients[0].create(make_pod("watched"))
            wf = await watch_fanout(
                cfg.server, cfg.token, 1000, 8,
                lambda c, r: c.patch(core.Pod, "watched", {"metadata": {"labels": {"bump": str(r)}}},
                                     namespace="default"),
                field_selector="metadata.name=watched", resource_version=target.metadata.resource_version,
                tls=cfg.tls())
            figures["relay_watch1000"], figures["apiserver_watch1000"] = relay_wf, wf
            rows["watch1000_p99_ms"] = row(wf["p99_ms"], relay_wf["p99_ms"], "ms", ratio_max=1.5, figure_max=100)
            for c in clients:
                await c.close()
        finally:
            stop_processes([relay, proc])
            await etcd.stop()
    figures["rows"] = rows
    emit(figures)


if __name__ == "__main__":
    asyncio.run(main())
