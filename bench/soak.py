"""Soak: mixed reads, writes and watches at a fixed rate against an apiserver, each component's memory, file
descriptors and asyncio tasks sampled as it runs; growth reported per component, and the watches, fds and
tasks checked back at their baseline once the clients stop.

    python -m bench.soak [--dir LAB_DIR | --standalone] [--quick | --duration 600] [--rate 20] [--watches 10]

Against the lab (the default; `pbctl lab up` first) every recorded process is sampled; `--standalone` starts
an etcd and a pb-apiserver of its own on free ports. RSS and fds come from /proc/PID; tasks from the
`pybernetes_asyncio_tasks` gauge and open watches from `apiserver_registered_watchers` on each component's
/metrics where it serves one (others: skipped). Growth is first settled sample (after a warm-up of a sixth of
the run) to last; more than 10 % of RSS is flagged. Last line: one JSON object of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import cli
from bench.procs import admin_config, start_apiserver, start_etcd, stop_processes
from pybernetes import errors, ports
from pybernetes.api import codec
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client import config as client_config
from pybernetes.client.client import Client

NAMESPACE = "soak"
NAMES = 50  # writes cycle over this many ConfigMaps: the stored set stays bounded
# Each Python component's /metrics (lab: inside its namespace, over HTTPS as the lab's Prometheus identity).
METRICS_PORTS = {"apiserver": ports.APISERVER_HEALTH, "scheduler": ports.SCHEDULER,
                 "controller-manager": ports.CONTROLLER_MANAGER, "proxy": ports.PROXY_METRICS}


@dataclass
class Target:
    """One sampled process: its pid and, where it serves one, its /metrics (url, network namespace)."""
    name: str
    pid: int
    metrics: str = ""
    netns: str = ""
    curl_args: tuple[str, ...] = ()  # the CA and client certificate of a secure /metrics


@dataclass
class Sample:
    t: float
    rss_kib: int
    fds: int
    tasks: int | None = None
    watchers: int | None = None


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def metric_sum(text: str, name: str) -> int | None:
    values = [float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)]
    return int(sum(values)) if values else None


async def scrape(t: Target) -> str:
    if not t.metrics:
        return ""
    from lab.health import http_get

    ok, body = await http_get(t.netns or None, t.metrics, timeout=2.0, curl_args=t.curl_args)
    return body if ok else ""


async def sample(t: Target) -> Sample | None:
    try:
        s = Sample(time.monotonic(), rss_kib(t.pid), len(os.listdir(f"/proc/{t.pid}/fd")))
    except OSError:
        return None
    text = await scrape(t)
    s.tasks = metric_sum(text, "pybernetes_asyncio_tasks")
    s.watchers = metric_sum(text, "apiserver_registered_watchers")
    return s


def lab_targets(lab_dir: Path) -> list[Target]:
    from lab.health import scrape_args
    from lab.state import LabState

    st = LabState.load(lab_dir)
    if st is None or not st.complete:
        raise SystemExit(f"no running lab in {lab_dir}; run `pbctl lab up` first (or use --standalone)")
    out = []
    for rec in st.processes.values():
        if rec.alive():
            port = METRICS_PORTS.get(rec.component)
            out.append(Target(rec.name, rec.pid, f"https://127.0.0.1:{port}/metrics" if port else "", rec.netns,
                              tuple(scrape_args(lab_dir))))
    return out


@dataclass
class Load:
    """The clients: one writer/reader loop at a fixed rate, and watches opened and closed as it goes."""
    client: Client
    rate: float
    max_watches: int
    rng: random.Random = field(default_factory=lambda: random.Random(14))
    ops: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    watches: set[asyncio.Task[None]] = field(default_factory=set)
    events: int = 0

    async def watch(self, seconds: float) -> None:
        with contextlib.suppress(errors.ApiError, TimeoutError):
            async with asyncio.timeout(seconds):
                async for _ev in self.client.watch(core.ConfigMap, namespace=NAMESPACE):
                    self.events += 1

    async def one(self) -> None:
        r = self.rng.random()
        name = f"cm-{self.rng.randrange(NAMES)}"
        verb = "get"
        try:
            if r < 0.25:
                verb = "list"
                await self.client.list(core.ConfigMap, namespace=NAMESPACE)
            elif r < 0.45:
                with contextlib.suppress(errors.NotFound):
                    await self.client.get(core.ConfigMap, name, namespace=NAMESPACE)
            elif r < 0.85:
                verb = "write"
                cm = codec.parse_object({"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": {"name": name, "namespace": NAMESPACE},
                                         "data": {"v": str(self.rng.random())}})
                try:
                    await self.client.create(cm)
                except errors.AlreadyExists:
                    if self.rng.random() < 0.2:
                        verb = "delete"
                        await self.client.delete(core.ConfigMap, name, namespace=NAMESPACE)
                    else:
                        await self.client.patch(core.ConfigMap, name, {"data": {"v": str(self.rng.random())}},
                                                namespace=NAMESPACE, patch_type="merge")
            else:
                verb = "watch"
                self.watches = {w for w in self.watches if not w.done()}
                if len(self.watches) < self.max_watches:
                    self.watches.add(asyncio.create_task(self.watch(self.rng.uniform(2, 20))))
        except errors.ApiError:
            self.errors += 1
        self.ops[verb] = self.ops.get(verb, 0) + 1

    async def run(self, stop: asyncio.Event) -> None:
        next_at = time.monotonic()
        while not stop.is_set():
            await self.one()
            next_at = max(next_at + 1.0 / self.rate, time.monotonic() - 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
        for w in self.watches:
            w.cancel()
        await asyncio.gather(*self.watches, return_exceptions=True)


async def soak(client: Client, targets: list[Target], *, duration: float, interval: float, rate: float,
               watches: int, say: Callable[[str], None]) -> dict[str, Any]:
    ns = codec.parse_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    with contextlib.suppress(errors.AlreadyExists):
        await client.create(ns)

    async def take() -> dict[str, Sample]:
        got = await asyncio.gather(*(sample(t) for t in targets))
        return {t.name: s for t, s in zip(targets, got, strict=True) if s is not None}

    baseline = await take()
    load = Load(client, rate, watches)
    stop = asyncio.Event()
    t0 = time.monotonic()
    task = asyncio.create_task(load.run(stop))
    series: list[dict[str, Sample]] = []
    while time.monotonic() - t0 < duration:
        await asyncio.sleep(min(interval, max(0.0, duration - (time.monotonic() - t0))))
        series.append(await take())
        api = series[-1].get("apiserver")
        say(f"  {time.monotonic() - t0:5.0f} s  {sum(load.ops.values())} ops, {len(load.watches)} watches; "
            + ", ".join(f"{n} {s.rss_kib // 1024} MiB/{s.fds} fds" for n, s in sorted(series[-1].items())
                        if n in ("apiserver", "etcd", "etcd-1", "scheduler", "controller-manager"))
            + (f", apiserver watchers {api.watchers}, tasks {api.tasks}" if api is not None else ""))
    stop.set()
    await task
    await asyncio.sleep(max(5.0, interval))  # the server notices closed streams
    after = await take()
    settled_from = duration / 6
    per: dict[str, dict[str, Any]] = {}
    for t in targets:
        pts = [s[t.name] for s in series if t.name in s]
        settled = [s for s in pts if s.t - t0 >= settled_from] or pts
        if not settled:
            continue
        first, last = settled[0], settled[-1]
        growth = round(100.0 * (last.rss_kib - first.rss_kib) / max(first.rss_kib, 1), 1)
        row: dict[str, Any] = {"rss_mib_first": round(first.rss_kib / 1024, 1),
                               "rss_mib_last": round(last.rss_kib / 1024, 1), "rss_growth_pct": growth,
                               "flagged": growth > 10.0, "fds_first": first.fds, "fds_last": last.fds}
        base, end = baseline.get(t.name), after.get(t.name)
        if base is not None and end is not None:
            row |= {"fds_baseline": base.fds, "fds_after": end.fds}
            if base.tasks is not None and end.tasks is not None:
                row |= {"tasks_baseline": base.tasks, "tasks_peak": max((s.tasks or 0) for s in pts),
                        "tasks_after": end.tasks}
            if base.watchers is not None and end.watchers is not None:
                row |= {"watchers_baseline": base.watchers, "watchers_peak": max((s.watchers or 0) for s in pts),
                        "watchers_after": end.watchers}
        per[t.name] = row
    with contextlib.suppress(errors.ApiError):
        await client.delete(core.Namespace, NAMESPACE)
    api_row = per.get("apiserver", {})
    return {"bench": "soak", "duration_s": duration, "rate": rate, "ops": sum(load.ops.values()),
            "ops_by_kind": load.ops, "errors": load.errors, "watch_events": load.events, "components": per,
            "max_rss_growth_pct": max((r["rss_growth_pct"] for r in per.values()), default=0.0),
            "flagged": sorted(n for n, r in per.items() if r["flagged"]),
            "watchers_back_to_baseline": api_row.get("watchers_after") == api_row.get("watchers_baseline"),
            "apiserver_fds_leaked": api_row.get("fds_after", 0) - api_row.get("fds_baseline", 0),
            "apiserver_tasks_leaked": api_row.get("tasks_after", 0) - api_row.get("tasks_baseline", 0)}


async def standalone(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:

    with tempfile.TemporaryDirectory() as tmp:
        etcd = await start_etcd(Path(tmp) / "etcd")
        data, log = Path(tmp) / "apiserver", Path(tmp) / "apiserver.log"
        health = ports.free_port()
        proc = start_apiserver(data, etcd.endpoint, open(log, "w"), health_port=health)
        try:
            cfg = await admin_config(data, proc, log)
            targets = [Target("apiserver", proc.pid, f"http://127.0.0.1:{health}/metrics"),
                       Target("etcd", etcd.pid or 0)]
            async with Client(cfg.server, token=cfg.token, tls=cfg.tls(), timeout=10) as client:
                return await soak(client, targets, duration=args.duration, interval=args.interval, rate=args.rate,
                                  watches=args.watches, say=say)
        finally:
            stop_processes([proc])
            await etcd.stop()


async def in_lab(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    lab_dir = args.dir.resolve()
    targets = lab_targets(lab_dir)
    async with Client.from_config(client_config.load(str(lab_dir / "admin.conf")), timeout=10) as client:
        return await soak(client, targets, duration=args.duration, interval=args.interval, rate=args.rate,
                          watches=args.watches, say=say)


def main() -> None:
    from lab.topology import DEFAULT_DIR

    p = cli.arguments(__doc__, "90 s, a sample every 5 s", whole_doc=True, prog="python -m bench.soak")
    p.add_argument("--dir", type=Path, default=Path(os.environ.get("PB_LAB_DIR") or DEFAULT_DIR))
    p.add_argument("--standalone", action="store_true", help="an etcd and apiserver of its own instead of the lab")
    p.add_argument("--duration", type=float, default=600.0)
    p.add_argument("--interval", type=float, default=0.0, help="seconds between samples (default 15; 5 quick)")
    p.add_argument("--rate", type=float, default=20.0, help="requests per second")
    p.add_argument("--watches", type=int, default=10, help="watches open at most at once")
    args = p.parse_args()
    if args.quick:
        args.duration = 90.0
    args.interval = args.interval or (5.0 if args.quick else 15.0)
    print(f"soak: {args.duration:.0f} s at {args.rate} requests/s, up to {args.watches} watches, "
          f"{'standalone apiserver' if args.standalone else 'lab ' + str(args.dir)}", flush=True)
    figures = asyncio.run((standalone if args.standalone else in_lab)(args, lambda m: print(m, flush=True)))
    for name, row in sorted(figures["components"].items()):
        print(f"  {name:<28} RSS {row['rss_mib_first']} -> {row['rss_mib_last']} MiB ({row['rss_growth_pct']:+} %)"
              f"{'  FLAGGED' if row['flagged'] else ''}; fds {row.get('fds_baseline', '?')} -> "
              f"{row.get('fds_after', '?')}"
              + (f"; tasks {row['tasks_baseline']} -> peak {row['tasks_peak']} -> {row['tasks_after']}"
                 if "tasks_after" in row else "")
              + (f"; watchers {row['watchers_baseline']} -> peak {row['watchers_peak']} -> {row['watchers_after']}"
                 if "watchers_after" in row else ""))
    print(json.dumps(figures))
    sys.exit(1 if figures["flagged"] or not figures["watchers_back_to_baseline"] else 0)


if __name__ == "__main__":
    main()
