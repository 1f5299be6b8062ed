"""Cluster DNS figures on this machine (issue 15), each with its ceiling measured in the same run.

- queries/s and p50/p99 latency of pb-dns (a process watching N Services and their EndpointSlices, one
  ready endpoint each, through the apiserver; `--endpoint-source endpoints`: Endpoints objects instead) under
  a closed loop of `--concurrency` outstanding queries (pre-rendered with dnspython, one UDP socket), vs the
  same server code answering the same names from a static zone filled once with the same objects and no
  informers (the ceiling of the query path itself), the two loaded in alternating one-second slices;
- time from a Service's creation to its name resolving through pb-dns (p50/p99), polled every 2 ms, vs the
  time from the same creation to a bare watch on Services in this process seeing it (the apiserver's write
  and watch delivery, which pb-dns cannot avoid).

etcd, pb-apiserver, pb-dns and the static server run as separate processes; this process is the client.
`--quick` finishes within 60 s. Prints the figure / ceiling / ratio rows (bench/report.py), then one JSON
object of figures as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode

from bench import cli
from bench.procs import admin_config, start_apiserver, start_etcd, stop_processes
from bench.report import emit, row
from pybernetes.api import codec
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.discovery.v1 import discovery_pb2 as discovery
from pybernetes.api.endpointslices import ENDPOINTSLICES, MANAGED_BY_LABEL, SERVICE_NAME_LABEL, SOURCES
from pybernetes.client.client import Client
from pybernetes.ports import free_port

REPO = Path(__file__).resolve().parent.parent
# The static ceiling: the same Handler and DNSServer over a Zone filled once with the same objects, no API.
STATIC_SERVER = """
import asyncio, sys
from bench.cluster_dns import endpoint_object, service
from clusterdns.server import DNSServer, Handler
from clusterdns.zone import Zone
port, n, source = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
async def main():
    zone = Zone()
    for i in range(n):
        zone.set_service(service(i))
        ep = endpoint_object(i, source)
        zone.set_endpoint_slice(ep) if source == "endpointslices" else zone.set_endpoints(ep)
    server = DNSServer(Handler(zone, []), "127.0.0.1", port)
    await server.start()
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def service(i: int) -> core.Service:
    return codec.from_dict({"metadata": {"name": f"svc-{i}", "namespace": "default"},
                            "spec": {"clusterIP": f"10.96.{100 + i // 250}.{i % 250 + 1}",
                                     "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}, core.Service)


def endpoint_object(i: int, source: str) -> discovery.EndpointSlice | core.Endpoints:
    """Service svc-`i`'s one ready endpoint, as the endpointslice (or endpoints) controller would write it."""
    ip = f"10.244.{i // 250}.{i % 250 + 2}"
    if source == ENDPOINTSLICES:
        return codec.from_dict({
            "metadata": {"name": f"svc-{i}-bench", "namespace": "default",
                         "labels": {SERVICE_NAME_LABEL: f"svc-{i}",
                                    MANAGED_BY_LABEL: "endpointslice-controller.k8s.io"}},
            "addressType": "IPv4", "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}, discovery.EndpointSlice)
    return codec.from_dict({"metadata": {"name": f"svc-{i}", "namespace": "default"},
                            "subsets": [{"addresses": [{"ip": ip}],
                                         "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]},
                           core.Endpoints)


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    v = sorted(values)
    return round(v[min(len(v) - 1, int(len(v) * p))] * 1000, 3)


class _Loop(asyncio.DatagramProtocol):
    """A closed-loop load generator on one UDP socket: `inflight` queries outstanding, the next one sent as
    each answer arrives (ids match answers to send times). Pre-rendered queries keep the client cheap, so
    the server is what is measured."""

    def __init__(self, queries: list[bytes], inflight: int, deadline: float) -> None:
        self.queries, self.inflight, self.deadline = queries, inflight, deadline
        self.sent: dict[int, float] = {}
        self.lat: list[float] = []
        self.bad = 0
        self.next = 0
        self.transport: asyncio.DatagramTransport | None = None
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # a datagram endpoint's transport
        for _ in range(self.inflight):
            self._send()

    def _send(self) -> None:
        wire = self.queries[self.next % len(self.queries)]
        qid = self.next % 65536
        self.next += 1
        self.sent[qid] = time.perf_counter()
        assert self.transport is not None
        self.transport.sendto(qid.to_bytes(2, "big") + wire[2:])

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        t0 = self.sent.pop(int.from_bytes(data[:2], "big"), None)
        if t0 is not None:
            self.lat.append(time.perf_counter() - t0)
            if data[3] & 0x0F != 0:  # rcode
                self.bad += 1
        if time.monotonic() < self.deadline:
            self._send()
        elif not self.sent and not self.done.done():
            self.done.set_result(None)


async def load(port: int, names: list[str], seconds: float, concurrency: int) -> tuple[list[float], float, int]:
    """One slice of closed-loop load on 127.0.0.1:`port`: (latencies, elapsed seconds, errors)."""
    queries = [dns.message.make_query(n, "A").to_wire() for n in names]
    loop = asyncio.get_running_loop()
    t0 = time.monotonic()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _Loop(queries, concurrency, t0 + seconds), remote_addr=("127.0.0.1", port))
    try:
        await asyncio.wait_for(proto.done, seconds + 5)
    except TimeoutError:
        pass  # lost datagrams: count what came back
    finally:
        transport.close()
    return proto.lat, time.monotonic() - t0, proto.bad + len(proto.sent)


async def interleaved_load(ports: dict[str, int], names: list[str], seconds: float, concurrency: int,
                           slice_s: float = 1.0) -> dict[str, dict[str, float]]:
    """Each server loaded for `seconds` in alternating slices (A B B A A B ...) of `slice_s`, so that the load other
    processes put on the machine (bursty on a shared one) falls on each alike; per server: queries/s, p50/p99 and
    errors over its slices."""
    slices = max(1, round(seconds / slice_s))
    lat: dict[str, list[float]] = {k: [] for k in ports}
    elapsed = dict.fromkeys(ports, 0.0)
    errs = dict.fromkeys(ports, 0)
    for i in range(slices):
        for key, port in (ports.items() if i % 2 == 0 else reversed(ports.items())):
            got, took, bad = await load(port, names, slice_s, concurrency)
            lat[key] += got
            elapsed[key] += took
            errs[key] += bad
    return {k: {"qps": round(len(lat[k]) / elapsed[k], 1), "p50_ms": pct(lat[k], 0.5), "p99_ms": pct(lat[k], 0.99),
                "errors": errs[k]} for k in ports}


async def wait_ready(port: int, name: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = await dns.asyncquery.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=0.5)
            if r.answer:
                return
        except dns.exception.Timeout:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{name} not resolving on :{port}")


async def creation_to_resolution(client: Client, port: int, count: int) -> dict[str, float]:
    """Create `count` Services one at a time; for each, the time until its name resolves through pb-dns and
    (the ceiling) until a bare watch on Services in this process has seen it."""
    times: list[float] = []
    writes: list[float] = []  # of which the create call itself (the apiserver and etcd)
    seen: dict[str, float] = {}  # name -> when the bare watch delivered its ADDED
    watch_ready = asyncio.Event()

    async def watch() -> None:
        rv = (await client.list(core.Service, namespace="default", limit=1)).resource_version
        watch_ready.set()
        async for ev in client.watch(core.Service, namespace="default", resource_version=rv):
            if ev.type == "ADDED":
                seen.setdefault(ev.object.metadata.name, time.monotonic())

    watcher = asyncio.create_task(watch())
    await asyncio.wait_for(watch_ready.wait(), 30)
    watched: list[float] = []
    try:
        for i in range(count):
            svc = codec.from_dict({"metadata": {"name": f"new-{i}", "namespace": "default"},
                                   "spec": {"ports": [{"port": 80}]}}, core.Service)
            name = f"new-{i}.default.svc.cluster.local."
            t0 = time.monotonic()
            await client.create(svc)
            writes.append(time.monotonic() - t0)
            while True:
                r = await dns.asyncquery.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=1)
                if r.answer:
                    break
                await asyncio.sleep(0.002)
            times.append(time.monotonic() - t0)
            for _ in range(5000):  # the watch has long delivered it by now, bar a stalled stream
                if f"new-{i}" in seen:
                    break
                await asyncio.sleep(0.002)
            watched.append(seen.get(f"new-{i}", time.monotonic()) - t0)
    finally:
        watcher.cancel()
    return {"p50_ms": pct(times, 0.5), "p99_ms": pct(times, 0.99), "create_p50_ms": pct(writes, 0.5),
            "create_p99_ms": pct(writes, 0.99), "watch_p50_ms": pct(watched, 0.5),
            "watch_p99_ms": pct(watched, 0.99), "samples": len(times)}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    n = 200 if args.quick else 1000
    seconds = 5.0 if args.quick else 15.0
    figures: dict[str, Any] = {"services": n, "concurrency": args.concurrency, "endpoint_source": args.endpoint_source}
    names = [f"svc-{i}.default.svc.cluster.local." for i in range(n)]
    with tempfile.TemporaryDirectory(prefix="pb-bench-dns-") as tmp:
        etcd = await start_etcd(Path(tmp) / "etcd")
        data, log = Path(tmp) / "apiserver", Path(tmp) / "apiserver.log"
        api = start_apiserver(data, etcd.endpoint, open(log, "w"))
        procs: list[subprocess.Popen[bytes] | None] = [api]
        try:
            cfg = await admin_config(data, api, log)
            async with Client.from_config(cfg, timeout=30) as c:
                sem = asyncio.Semaphore(32)

                async def create(i: int) -> None:
                    async with sem:
                        await c.create(service(i))
                        await c.create(endpoint_object(i, args.endpoint_source))
                await asyncio.gather(*(create(i) for i in range(n)))
                dns_port, static_port = free_port(), free_port()
                pbdns = subprocess.Popen(
                    [sys.executable, "-m", "clusterdns.main", f"--kubeconfig={data / 'admin.conf'}",
                     "--bind-address=127.0.0.1", f"--port={dns_port}", "--health-bind-address=127.0.0.1",
                     f"--health-port={free_port()}", f"--endpoint-source={args.endpoint_source}"],
                    stdout=subprocess.DEVNULL, stderr=open(Path(tmp) / "dns.log", "w"), cwd=REPO)
                static = subprocess.Popen(
                    [sys.executable, "-c", STATIC_SERVER, str(static_port), str(n), args.endpoint_source],
                    stdout=subprocess.DEVNULL, stderr=open(Path(tmp) / "static.log", "w"), cwd=REPO)
                procs += [pbdns, static]
                await wait_ready(dns_port, names[-1])
                await wait_ready(static_port, names[-1])
                loaded = await interleaved_load({"static_zone": static_port, "pb_dns": dns_port}, names,
                                                seconds, args.concurrency)
                static_fig, dns_fig = loaded["static_zone"], loaded["pb_dns"]
                figures["static_zone"] = static_fig
                figures["pb_dns"] = dns_fig
                figures["qps_ratio_vs_static"] = round(dns_fig["qps"] / max(static_fig["qps"], 1e-9), 3)
                created = await creation_to_resolution(c, dns_port, 20 if args.quick else 100)
                figures["service_to_resolving"] = created
        finally:
            stop_processes(reversed(procs))
            await etcd.stop()
    # Issue 15 names these figures without goals: the rows carry none.
    figures["rows"] = {
        "dns_queries_per_s": row(dns_fig["qps"], static_fig["qps"], "/s"),
        "dns_query_p99_ms": row(dns_fig["p99_ms"], static_fig["p99_ms"], "ms"),
        "service_to_resolving_p99_ms": row(created["p99_ms"], created["watch_p99_ms"], "ms"),
    }
    return figures


def main() -> None:
    ap = cli.arguments(__doc__, "fewer services and shorter runs; within 60 s")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--endpoint-source", default=ENDPOINTSLICES, choices=SOURCES,
                    help="what pb-dns reads endpoints from (as its own flag)")
    args = ap.parse_args()
    emit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
