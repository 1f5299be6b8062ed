"""pb-proxy figures on this machine, inside a `pb-npbench` network namespace this script creates.

- full sync of 1,000 services x 10 endpoints (target <= 1 s) and of 5,000 (target <= 5 s), rules applied
  to the kernel (render + `nft -f` / `iptables-restore`), measured through the Proxier as pb-proxy runs it;
- one endpoint change with 5,000 services present: partial sync (target <= 100 ms), median of several,
  with the ratio to a full sync;
- proxy memory with 5,000 services (RSS of this process, which also keeps the Service/Endpoints objects
  as an informer cache would; target <= 200 MB).
`--backend iptables` measures the kube-proxy-compatible backend instead (slow at this scale; see
docs/networking.md). `--quick` finishes within 60 s. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab import netns
from netproxy.backend import Backend
from netproxy.execs import Runner, nsenter_prefix
from netproxy.iptables import IptablesBackend
from netproxy.nftables import NftBackend
from netproxy.proxier import Proxier
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta

NETNS = "pb-npbench"
NODE = "bench-node"


def service(i: int) -> core.Service:
    svc = core.Service(metadata=meta.ObjectMeta(name=f"svc-{i:05d}", namespace="bench"))
    svc.spec.type = "NodePort" if i % 10 == 0 else "ClusterIP"
    svc.spec.cluster_ip = f"10.96.{i // 250}.{i % 250 + 1}"
    p = svc.spec.ports.add(name="http", port=80, protocol="TCP")
    p.target_port.int_val = 8080
    if i % 10 == 0:
        p.node_port = 30000 + i // 10
    return svc


def endpoints(i: int, n: int = 10, shift: int = 0) -> core.Endpoints:
    ep = core.Endpoints(metadata=meta.ObjectMeta(name=f"svc-{i:05d}", namespace="bench"))
    sub = ep.subsets.add()
    for e in range(n):
        k = i * n + e + shift
        sub.addresses.add(ip=f"10.244.{(k // 250) % 250}.{k % 250 + 1}", node_name=NODE if e % 3 == 0 else "other")
    sub.ports.add(name="http", port=8080, protocol="TCP")
    return ep


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def make_backend(name: str) -> Backend:
    runner = Runner(nsenter_prefix(NETNS))
    return IptablesBackend(runner) if name == "iptables" else NftBackend(runner)


async def full_sync(backend_name: str, n: int, cache: dict[str, Any]) -> tuple[Proxier, float]:
    backend = make_backend(backend_name)
    backend.cleanup()
    proxier = Proxier(backend, hostname=NODE, min_sync_period=0, sync_period=3600)
    for i in range(n):
        s, e = service(i), endpoints(i)
        cache[f"s{i}"], cache[f"e{i}"] = s, e
        proxier.on_service(s)
        proxier.on_endpoints(e)
    t0 = time.perf_counter()
    ok = await proxier.sync(full=True)
    took = time.perf_counter() - t0
    assert ok, proxier.last_error
    return proxier, took


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    netns.delete(NETNS)
    netns.run(["ip", "netns", "add", NETNS])
    netns.run(netns.nsenter(NETNS, ["ip", "link", "set", "lo", "up"]))
    out: dict[str, Any] = {"backend": args.backend}
    try:
        sizes = [1000, 5000] if args.backend == "nftables" or not args.quick else [1000]
        if args.backend == "iptables" and not args.quick:
            sizes = [1000, 2000]
        proxier: Proxier | None = None
        for n in sizes:
            cache: dict[str, Any] = {}
            proxier, took = await full_sync(args.backend, n, cache)
            out[f"full_sync_{n}_s"] = round(took, 3)
            print(f"full sync {n} services x 10 endpoints: {took:.3f}s", flush=True)
            if n == sizes[-1]:
                # a second full sync over the same rules (the periodic resync / a restarted proxy)
                t0 = time.perf_counter()
                assert await proxier.sync(full=True)
                out[f"full_resync_{n}_s"] = round(time.perf_counter() - t0, 3)
                print(f"full resync over existing rules {n}: {out[f'full_resync_{n}_s']}s", flush=True)
                deltas = []
                for r in range(5 if args.quick else 15):
                    i = (r * 37) % n
                    proxier.on_endpoints(endpoints(i, 10, shift=7 + r))  # endpoints move
                    t0 = time.perf_counter()
                    assert await proxier.sync(full=False), proxier.last_error
                    deltas.append(time.perf_counter() - t0)
                med = statistics.median(deltas)
                out[f"endpoint_change_{n}_ms"] = round(med * 1000, 1)
                out[f"endpoint_change_{n}_max_ms"] = round(max(deltas) * 1000, 1)
                out["partial_to_full_ratio"] = round(med / took, 4)
                print(f"one endpoint change with {n} services: median {med * 1000:.1f} ms "
                      f"(max {max(deltas) * 1000:.1f} ms), {med / took:.4f} of a full sync", flush=True)
                out[f"rss_{n}_mb"] = round(rss_mb(), 1)
                print(f"proxy RSS with {n} services (objects cached): {out[f'rss_{n}_mb']} MB", flush=True)
            if n != sizes[-1]:
                del cache, proxier
        targets = {"full_sync_1000_s": 1.0, "full_sync_5000_s": 5.0, "endpoint_change_5000_ms": 100.0,
                   "rss_5000_mb": 200.0}
        out["targets_met"] = all(out[k] <= v for k, v in targets.items() if k in out)
    finally:
        make_backend(args.backend).cleanup()
        netns.delete(NETNS)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions; finishes within 60 s")
    ap.add_argument("--backend", choices=("nftables", "iptables"), default="nftables")
    args = ap.parse_args()
    t0 = time.perf_counter()
    out = asyncio.run(main_async(args))
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
