"""pb-proxy figures on this machine, inside a `pb-npbench` network namespace this script creates, each beside
its ceiling measured in the same run (issue 16).

The ceiling is `nft -f FILE` of the very scripts the proxier applied, loaded directly, in the same order, in a
second namespace `pb-npbench-raw` (so each one meets the same kernel state as in the first): what is left of
the ratio is the proxier's own work (tracking, rendering, planning), not the kernel's.
- full sync of 1,000 and 5,000 services x 10 endpoints (goals: ratio <= 1.5; <= 0.3 s and <= 1.5 s);
- one endpoint change with 5,000 services present: partial sync, median of several (ratio <= 1.5; <= 30 ms);
- also: a full resync over existing rules, and the proxy's memory with 5,000 services (RSS of this process,
  which also keeps the Service/Endpoints objects as an informer cache would).
`--backend iptables` measures the kube-proxy-compatible backend instead, without ceilings (slow at this
scale; see docs/networking.md). `--quick` finishes within 60 s. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cli
from bench.report import emit, row
from lab import netns
from netproxy.backend import Backend, Plan
from netproxy.execs import Runner, nsenter_prefix
from netproxy.iptables import IptablesBackend
from netproxy.nftables import NftBackend
from netproxy.proxier import Proxier
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta

NETNS = "pb-npbench"
RAW_NETNS = "pb-npbench-raw"
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


class RecordingNft(NftBackend):
    """NftBackend that keeps every script it applies, for the ceiling to load the same text."""

    scripts: list[str] = []  # class-wide: every backend the bench makes records into one list, in order

    def execute(self, plan: Plan) -> None:
        super().execute(plan)
        self.scripts.append(plan.script)


class RawNft:
    """The ceiling: `nft -f FILE` of the scripts the proxier applied, in order, in RAW_NETNS."""

    def __init__(self, tmp: Path) -> None:
        self.runner = Runner(nsenter_prefix(RAW_NETNS))
        self.file = tmp / "ruleset.nft"
        self.loaded = 0  # how many of RecordingNft.scripts RAW_NETNS has had

    def reset(self) -> None:
        NftBackend(self.runner).cleanup()

    def load_new(self) -> float:
        """Load the scripts applied since the last call; the seconds `nft -f` took (file writes excluded)."""
        took = 0.0
        for script in RecordingNft.scripts[self.loaded:]:
            self.file.write_text(script)
            t0 = time.perf_counter()
            self.runner.run("nft", "-f", str(self.file))
            took += time.perf_counter() - t0
        self.loaded = len(RecordingNft.scripts)
        return took


def make_backend(name: str) -> Backend:
    runner = Runner(nsenter_prefix(NETNS))
    return IptablesBackend(runner) if name == "iptables" else RecordingNft(runner)


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


async def main_async(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    for ns in (NETNS, RAW_NETNS):
        netns.delete(ns)
        netns.run(["ip", "netns", "add", ns])
        netns.run(netns.nsenter(ns, ["ip", "link", "set", "lo", "up"]))
    raw = RawNft(tmp) if args.backend == "nftables" else None
    out: dict[str, Any] = cli.figures("netproxy", args, backend=args.backend)
    rows: dict[str, Any] = {}
    try:
        sizes = [1000, 5000] if args.backend == "nftables" or not args.quick else [1000]
        if args.backend == "iptables" and not args.quick:
            sizes = [1000, 2000]
        proxier: Proxier | None = None
        for n in sizes:
            cache: dict[str, Any] = {}
            proxier, took = await full_sync(args.backend, n, cache)
            ceiling = None
            if raw is not None:
                raw.reset()
                ceiling = round(raw.load_new(), 3)
            rows[f"full_sync_{n}_s"] = row(round(took, 3), ceiling, "s", ratio_max=1.5,
                                           figure_max={1000: 0.3, 5000: 1.5}.get(n))
            print(f"full sync {n} services x 10 endpoints: {took:.3f}s (nft -f of the same: {ceiling} s)",
                  flush=True)
            if n == sizes[-1]:
                # a second full sync over the same rules (the periodic resync / a restarted proxy)
                t0 = time.perf_counter()
                assert await proxier.sync(full=True)
                out[f"full_resync_{n}_s"] = round(time.perf_counter() - t0, 3)
                out[f"full_resync_{n}_ceiling_s"] = round(raw.load_new(), 3) if raw is not None else None
                print(f"full resync over existing rules {n}: {out[f'full_resync_{n}_s']}s "
                      f"(nft -f of the same: {out[f'full_resync_{n}_ceiling_s']} s)", flush=True)
                deltas, raw_deltas = [], []
                for r in range(5 if args.quick else 15):
                    i = (r * 37) % n
                    proxier.on_endpoints(endpoints(i, 10, shift=7 + r))  # endpoints move
                    t0 = time.perf_counter()
                    assert await proxier.sync(full=False), proxier.last_error
                    deltas.append(time.perf_counter() - t0)
                    if raw is not None:
                        raw_deltas.append(raw.load_new())
                med = statistics.median(deltas)
                raw_med = round(statistics.median(raw_deltas) * 1000, 1) if raw_deltas else None
                rows[f"endpoint_change_{n}_ms"] = row(round(med * 1000, 1), raw_med, "ms", ratio_max=1.5,
                                                      figure_max=30 if n == 5000 else None)
                out[f"endpoint_change_{n}_max_ms"] = round(max(deltas) * 1000, 1)
                out["partial_to_full_ratio"] = round(med / took, 4)
                print(f"one endpoint change with {n} services: median {med * 1000:.1f} ms "
                      f"(max {max(deltas) * 1000:.1f} ms; nft -f of the same delta: {raw_med} ms)", flush=True)
                rows[f"rss_{n}_mb"] = row(round(rss_mb(), 1), None, "MB", figure_max=200)  # no ceiling: memory
                print(f"proxy RSS with {n} services (objects cached): {rows[f'rss_{n}_mb']['figure']} MB",
                      flush=True)
            if n != sizes[-1]:
                del cache, proxier
    finally:
        make_backend(args.backend).cleanup()
        if raw is not None:
            raw.reset()
        netns.delete(NETNS)
        netns.delete(RAW_NETNS)
    out["rows"] = rows
    return out


def main() -> None:
    ap = cli.arguments(__doc__, "fewer repetitions; finishes within 60 s")
    ap.add_argument("--backend", choices=("nftables", "iptables"), default="nftables")
    args = ap.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pb-bench-netproxy-") as tmp:
        out = asyncio.run(main_async(args, Path(tmp)))
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    emit(out)


if __name__ == "__main__":
    main()
