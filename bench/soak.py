"""Soak: mixed reads, writes and watches at a fixed rate against an apiserver, each component's memory, file
descriptors and asyncio tasks sampled as it runs; growth reported per component, and the watches, fds and
tasks checked back at their baseline once the clients stop.

    python -m bench.soak [--dir LAB_DIR | --standalone] [--quick | --duration 600] [--rate 20] [--watches 10]

Against the lab (the default; `pbctl lab up` first) every recorded process is sampled; `--standalone` starts
an etcd and a pb-apiserver of its own on free ports. RSS and fds come from /proc/PID; tasks from the
`pybernetes_asyncio_tasks` gauge and open watches from `apiserver_registered_watchers` on each component's
/metrics where it serves one (others: skipped).

Memory: each component's RSS (split into anonymous memory and file-backed pages: code, mmapped files) is
reported twice, plainly labelled: from the cold start (the sample before any load) to the end, and from the
first sample after a warm-up (the first sixth of the run: 100 s of 600) to the end. The pass bound, growth at
most 10 %, is on the second: a steady-state comparison, as a leak check wants (a leak keeps growing after the
warm-up; caches, code pages and a Go runtime filling its heap up to the load's working set settle during it).
Before the clock starts, etcd's in-memory raft log is filled to its bound (FILL_WRITES, `--fill`; see there).
Leaks: once the clients stop (and up to 30 s for the servers to notice closed streams), every component's fds
and asyncio tasks and the apiserver's registered watchers must be back at or below their cold-start values in
at least one sample (each component's own: a scrape in flight at one instant is not a leak).
Then PASS, or FAIL with every reason; exit status 1 on FAIL. Last line: one JSON object of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import re
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import cli
from bench.procs import admin_config, start_apiserver, start_etcd, stop_processes
from pybernetes import errors, ports
from pybernetes.api import codec
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client import config as client_config
from pybernetes.client.client import Client
from pybernetes.tls import CertPair
from services.apiserver.storage.etcd import EtcdClient, EtcdTLS, StorageError

if TYPE_CHECKING:  # the lab is imported only when a lab is measured
    from lab.health import ClientTLS

NAMESPACE = "soak"
NAMES = 50  # writes cycle over this many ConfigMaps: the stored set stays bounded
GROWTH_BOUND_PCT = 10.0  # issue 14: memory growth at most 10 % per component
WARM_UP_FRACTION = 1 / 6  # the first sixth of the run is warm-up (see the docstring)
SETTLE_S = 30.0  # how long the leak check waits for fds, tasks and watchers to come back after the load
# etcd's warm-up: it holds its raft log in memory up to --snapshot-count entries past its last snapshot plus the
# 5,000 it keeps after one (etcd 3.4's fixed snapshot catch-up), so its memory grows with every write until that
# log is full: 15,000 entries with kubeadm's --snapshot-count (EmbeddedEtcd.SNAPSHOT_COUNT); at the soak's rate,
# some 17 minutes. Before the clock starts, this many puts fill it, straight to etcd under a prefix of their own
# (the apiserver never sees them, so its memory is not raised by a burst it would then hide growth under).
FILL_WRITES = 15000
FILL_PREFIX = b"/pb-soak-fill/"
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
    tls: ClientTLS | None = None  # the CA and client certificate of a secure /metrics


@dataclass
class Sample:
    t: float
    rss_kib: int
    fds: int
    tasks: int | None = None
    watchers: int | None = None
    anon_kib: int = 0  # RssAnon: heap, stacks
    file_kib: int = 0  # RssFile: the binary's and libraries' pages, mmapped files (etcd's bbolt db)


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon and RssFile of /proc/PID/status, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        return {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in f)
                if k in ("VmRSS", "RssAnon", "RssFile")}


def rss_kib(pid: int) -> int:
    return memory_kib(pid).get("VmRSS", 0)


def metric_sum(text: str, name: str) -> int | None:
    values = [float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)]
    return int(sum(values)) if values else None


async def scrape(t: Target) -> str:
    if not t.metrics:
        return ""
    from lab.health import http_get

    ok, body = await http_get(t.netns or None, t.metrics, timeout=2.0, tls=t.tls)
    return body if ok else ""


def open_files(pid: int) -> collections.Counter[str]:
    """What `pid`'s descriptors point at; a TCP socket as its local -> remote address (from /proc/PID/net/tcp*,
    the process's own network namespace), so an fd left over after the load says what it is."""
    tcp: dict[str, str] = {}
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                f = line.split()
                tcp[f[9]] = f"tcp {_addr(f[1])} -> {_addr(f[2])}"
    out: collections.Counter[str] = collections.Counter()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                inode = target.removeprefix("socket:[").removesuffix("]")
                out[tcp.get(inode, "socket" if target.startswith("socket:") else target)] += 1
    return out


def _addr(hex_addr: str) -> str:
    ip, port = hex_addr.split(":")
    raw = bytes.fromhex(ip)
    if len(raw) == 4:
        return f"{socket.inet_ntop(socket.AF_INET, raw[::-1])}:{int(port, 16)}"
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return f"[{socket.inet_ntop(socket.AF_INET6, words)}]:{int(port, 16)}"


async def sample(t: Target) -> Sample | None:
    try:
        mem = memory_kib(t.pid)
        s = Sample(time.monotonic(), mem.get("VmRSS", 0), len(os.listdir(f"/proc/{t.pid}/fd")),
                   anon_kib=mem.get("RssAnon", 0), file_kib=mem.get("RssFile", 0))
    except OSError:
        return None
    text = await scrape(t)
    s.tasks = metric_sum(text, "pybernetes_asyncio_tasks")
    s.watchers = metric_sum(text, "apiserver_registered_watchers")
    return s


def lab_targets(lab_dir: Path) -> list[Target]:
    from lab.health import scraper_tls
    from lab.state import LabState

    st = LabState.load(lab_dir)
    if st is None or not st.complete:
        raise SystemExit(f"no running lab in {lab_dir}; run `pbctl lab up` first (or use --standalone)")
    out, tls = [], scraper_tls(lab_dir)
    for rec in st.processes.values():
        if rec.alive():
            port = METRICS_PORTS.get(rec.component)
            out.append(Target(rec.name, rec.pid, f"https://127.0.0.1:{port}/metrics" if port else "", rec.netns,
                              tls))
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


def growth_pct(first_kib: int, last_kib: int) -> float:
    return round(100.0 * (last_kib - first_kib) / max(first_kib, 1), 1)


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


def component_row(start: Sample | None, pts: list[Sample], end: Sample | None, settled_from: float) -> dict[str, Any]:
    """One component's figures: `start` its cold-start sample (before the load), `pts` the samples taken while the
    load ran, `end` the last sample once it stopped; samples at or after `settled_from` (monotonic seconds) are
    past the warm-up. The bound is on rss_growth_pct (warm-up to end); rss_growth_from_start_pct is shown too."""
    row: dict[str, Any] = {}
    settled = [s for s in pts if s.t >= settled_from] or pts
    if settled:
        first, last = settled[0], settled[-1]
        growth = growth_pct(first.rss_kib, last.rss_kib)
        row |= {"rss_mib_first": _mib(first.rss_kib), "rss_mib_last": _mib(last.rss_kib), "rss_growth_pct": growth,
                "flagged": growth > GROWTH_BOUND_PCT, "anon_mib_first": _mib(first.anon_kib),
                "anon_mib_last": _mib(last.anon_kib), "file_mib_first": _mib(first.file_kib),
                "file_mib_last": _mib(last.file_kib), "fds_first": first.fds, "fds_last": last.fds}
        if start is not None:
            row |= {"rss_mib_start": _mib(start.rss_kib), "anon_mib_start": _mib(start.anon_kib),
                    "file_mib_start": _mib(start.file_kib),
                    "rss_growth_from_start_pct": growth_pct(start.rss_kib, last.rss_kib)}
    if start is not None and end is not None:
        row |= {"fds_baseline": start.fds, "fds_after": end.fds}
        if start.tasks is not None and end.tasks is not None:
            row |= {"tasks_baseline": start.tasks, "tasks_peak": max((s.tasks or 0) for s in [start, *pts]),
                    "tasks_after": end.tasks}
        if start.watchers is not None and end.watchers is not None:
            row |= {"watchers_baseline": start.watchers,
                    "watchers_peak": max((s.watchers or 0) for s in [start, *pts]), "watchers_after": end.watchers}
    return row


def leaks(start: Sample, end: Sample) -> list[str]:
    """What `end` holds beyond `start`: fds or asyncio tasks above it, or registered watchers not back at it."""
    out = []
    if end.fds > start.fds:
        out.append(f"fds {start.fds} -> {end.fds}")
    if start.tasks is not None and end.tasks is not None and end.tasks > start.tasks:
        out.append(f"asyncio tasks {start.tasks} -> {end.tasks}")
    if start.watchers is not None and end.watchers is not None and end.watchers != start.watchers:
        out.append(f"registered watchers {start.watchers} -> {end.watchers}")
    return out


def settle(start: dict[str, Sample], kept: dict[str, Sample], new: dict[str, Sample]) -> dict[str, Sample]:
    """Each component's end sample while the leak check waits: one already back at its cold start (no `leaks`)
    is kept, the others take `new`'s, so a transient (a scrape in flight: a task, a connection) in one component
    at one instant is not counted as a leak; a component missing from `new` is gone."""
    return {n: kept[n] if n in kept and n in start and not leaks(start[n], kept[n]) else s for n, s in new.items()}


def failures(components: dict[str, dict[str, Any]], requests_failed: int, expected: list[str]) -> list[str]:
    """Every reason the soak fails (empty: it passes): a component's RSS grown more than the bound after the
    warm-up, fds or tasks above their cold start or watchers not back at it once the load stopped, a component
    gone before the end (`expected`: every one sampled at the start), a failed request."""
    out = []
    for name in expected:
        row = components.get(name, {})
        if "fds_after" not in row:
            out.append(f"{name}: not running at the end")
            continue
        if row.get("flagged"):
            out.append(f"{name}: RSS {row['rss_mib_first']} -> {row['rss_mib_last']} MiB after the warm-up "
                       f"({row['rss_growth_pct']:+} %, bound {GROWTH_BOUND_PCT:g} %)")
        if row["fds_after"] > row["fds_baseline"]:
            out.append(f"{name}: fds {row['fds_baseline']} -> {row['fds_after']} after the load")
        if "tasks_after" in row and row["tasks_after"] > row["tasks_baseline"]:
            out.append(f"{name}: asyncio tasks {row['tasks_baseline']} -> {row['tasks_after']} after the load")
        if "watchers_after" in row and row["watchers_after"] != row["watchers_baseline"]:
            out.append(f"{name}: registered watchers {row['watchers_baseline']} -> {row['watchers_after']} "
                       "after the load")
    if requests_failed:
        out.append(f"{requests_failed} requests failed")
    return out


def report_line(name: str, row: dict[str, Any]) -> str:
    """One component's figures as a line of the human report."""
    if "rss_mib_last" not in row:
        return f"  {name:<28} no samples"
    start = (f"{row['rss_mib_start']} MiB at the start, " if "rss_mib_start" in row else "")
    cold = (f"; from the start {row['rss_growth_from_start_pct']:+} % (anon {row['anon_mib_start']} -> "
            f"{row['anon_mib_last']}, file {row['file_mib_start']} -> {row['file_mib_last']} MiB)"
            if "rss_mib_start" in row else "")
    return (f"  {name:<28} RSS {start}{row['rss_mib_first']} after the warm-up -> {row['rss_mib_last']} MiB: "
            f"{row['rss_growth_pct']:+} % after the warm-up{'  FLAGGED' if row['flagged'] else ''}{cold}; "
            f"fds {row.get('fds_baseline', '?')} -> {row.get('fds_after', '?')}"
            + (f"; tasks {row['tasks_baseline']} -> peak {row['tasks_peak']} -> {row['tasks_after']}"
               if "tasks_after" in row else "")
            + (f"; watchers {row['watchers_baseline']} -> peak {row['watchers_peak']} -> {row['watchers_after']}"
               if "watchers_after" in row else ""))


async def fill_etcd(endpoint: str, writes: int, tls: EtcdTLS | None = None, concurrency: int = 16) -> int:
    """etcd's warm-up (FILL_WRITES): `writes` puts of ConfigMap-sized values under FILL_PREFIX, `concurrency` keys
    at a time, straight to etcd; the keys are deleted after. Returns the puts that failed."""
    client = EtcdClient([endpoint], timeout=10.0, tls=tls)
    value = b"v" * 300
    failed = 0

    async def worker(w: int) -> None:
        nonlocal failed
        key = FILL_PREFIX + str(w).encode()
        rev = 0
        for _ in range(writes // concurrency):
            try:
                if not rev:
                    kv = await client.get(key)
                    rev = kv.mod_revision if kv is not None else 0
                rev = await (client.update(key, value, rev) if rev else client.create(key, value))
            except StorageError:
                failed += 1
                rev = 0
        with contextlib.suppress(StorageError):
            await client.delete(key)

    try:
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    finally:
        await client.close()
    return failed


async def lab_fill(lab_dir: Path, writes: int) -> int:
    """fill_etcd against the lab's etcd, from inside the control plane's network namespace (where it listens), with
    the apiserver's etcd client certificate (this script run again there: --fill-etcd)."""
    from lab.netns import nsenter
    from lab.state import LabState

    st = LabState.load(lab_dir)
    rec = st.processes["apiserver"] if st is not None else None
    if rec is None:
        raise SystemExit(f"no apiserver recorded in {lab_dir}")
    flag = {k: v for k, _, v in (a[2:].partition("=") for a in rec.argv if a.startswith("--etcd-"))}
    cmd = [sys.executable, "-m", "bench.soak", "--fill-etcd", flag["etcd-servers"].split(",")[0], "--fill", str(writes),
           "--etcd-cafile", flag["etcd-cafile"], "--etcd-certfile", flag["etcd-certfile"],
           "--etcd-keyfile", flag["etcd-keyfile"]]
    proc = await asyncio.create_subprocess_exec(*nsenter(rec.netns, cmd), stdout=asyncio.subprocess.PIPE,
                                                cwd=Path(__file__).resolve().parents[1])
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"filling the lab's etcd failed ({proc.returncode}): {out.decode()[-2000:]}")
    return int(json.loads(out.decode().strip().splitlines()[-1])["failed"])


async def soak(client: Client, targets: list[Target], *, duration: float, interval: float, rate: float,
               watches: int, say: Callable[[str], None], fill: Callable[[int], Awaitable[int]] | None = None,
               fill_writes: int = FILL_WRITES) -> dict[str, Any]:
    ns = codec.parse_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    with contextlib.suppress(errors.AlreadyExists):
        await client.create(ns)

    async def take() -> dict[str, Sample]:
        got = await asyncio.gather(*(sample(t) for t in targets))
        return {t.name: s for t, s in zip(targets, got, strict=True) if s is not None}

    baseline = await take()
    files_at_start = {t.name: open_files(t.pid) for t in targets}
    filled: dict[str, Any] = {"writes": 0, "errors": 0, "seconds": 0.0}
    if fill is not None and fill_writes:
        say(f"  etcd's warm-up: {fill_writes} puts straight to etcd as fast as they go, so that its in-memory raft "
            "log reaches its bound (--snapshot-count + 5,000 entries) before the clock starts; from then on etcd's "
            "memory follows that log's cycle (up to --snapshot-count entries more, released at each snapshot: "
            "~11 minutes at 20 requests/s), so a 10-minute figure for etcd depends on where in it the run starts")
        fill_start = time.monotonic()
        filled = {"writes": fill_writes, "errors": await fill(fill_writes),
                  "seconds": round(time.monotonic() - fill_start, 1)}
        say(f"  etcd's warm-up done in {filled['seconds']} s ({filled['errors']} puts failed)")
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
    # The servers notice closed streams: wait for every fd, task and watcher to come back, SETTLE_S at most.
    settle_end = time.monotonic() + SETTLE_S
    after: dict[str, Sample] = {}
    while True:
        await asyncio.sleep(5.0)
        after = settle(baseline, after, await take())
        if time.monotonic() >= settle_end or not any(
                leaks(b, after[n]) for n, b in baseline.items() if n in after):
            break
    for t in targets:
        if t.name in baseline and t.name in after and after[t.name].fds > baseline[t.name].fds:
            extra = open_files(t.pid) - files_at_start[t.name]
            say(f"  {t.name}: descriptors beyond its start: " + (", ".join(f"{k} x{n}" for k, n in extra.items())
                                                               or "none by target (the same kinds, more of them)"))
    settled_from = t0 + duration * WARM_UP_FRACTION
    per = {t.name: component_row(baseline.get(t.name), [s[t.name] for s in series if t.name in s],
                                 after.get(t.name), settled_from) for t in targets}
    with contextlib.suppress(errors.ApiError):
        await client.delete(core.Namespace, NAMESPACE)
    api_row = per.get("apiserver", {})
    fails = failures(per, load.errors + int(filled["errors"]), sorted(baseline))
    return {"bench": "soak", "duration_s": duration, "warm_up_s": round(duration * WARM_UP_FRACTION),
            "warm_up_writes": filled, "rate": rate, "ops": sum(load.ops.values()), "ops_by_kind": load.ops,
            "errors": load.errors,
            "watch_events": load.events, "components": per,
            "max_rss_growth_pct": max((r["rss_growth_pct"] for r in per.values() if "rss_growth_pct" in r),
                                      default=0.0),
            "max_rss_growth_from_start_pct": max((r["rss_growth_from_start_pct"] for r in per.values()
                                                  if "rss_growth_from_start_pct" in r), default=0.0),
            "flagged": sorted(n for n, r in per.items() if r.get("flagged")),
            "watchers_back_to_baseline": api_row.get("watchers_after") == api_row.get("watchers_baseline"),
            "apiserver_fds_leaked": api_row.get("fds_after", 0) - api_row.get("fds_baseline", 0),
            "apiserver_tasks_leaked": api_row.get("tasks_after", 0) - api_row.get("tasks_baseline", 0),
            "failures": fails, "passed": not fails}


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
                                  watches=args.watches, say=say, fill_writes=args.fill,
                                  fill=lambda n: fill_etcd(etcd.endpoint, n))
        finally:
            stop_processes([proc])
            await etcd.stop()


def unscraped_targets(answer: dict[str, Any]) -> list[str]:
    """From Prometheus's /api/v1/targets answer: each active target not scraped yet (its job/instance); a
    Prometheus just started lists none yet, which is not "all scraped"."""
    active = answer.get("data", {}).get("activeTargets", [])
    if not active:
        return ["(no targets loaded yet)"]
    return [f"{t['labels'].get('job', '?')}/{t['labels'].get('instance', '?')}" for t in active
            if t.get("lastScrape", "").startswith("0001-") or not t.get("lastScrape")]


async def lab_scraped(lab_dir: Path, say: Callable[[str], None], timeout: float = 60.0) -> None:
    """Wait until the lab's Prometheus has scraped every target once. It keeps one connection per target open
    between scrapes (etcd's metrics port among them); opened after the cold-start sample, it was counted as a
    leaked descriptor of that component. After this, those connections are part of each baseline."""
    import urllib.request

    from lab.state import LabState

    st = LabState.load(lab_dir)
    url = st.info.get("prometheus_url", "") if st is not None else ""
    if not url:
        return
    deadline, left = time.monotonic() + timeout, ["?"]
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            body = await asyncio.to_thread(lambda: urllib.request.urlopen(f"{url}/api/v1/targets?state=active",
                                                                          timeout=5).read())
            left = unscraped_targets(json.loads(body))
            if not left:
                return
        await asyncio.sleep(1.0)
    say(f"  the lab's Prometheus had not scraped {', '.join(left)} within {timeout:.0f} s; sampling anyway")


async def in_lab(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    lab_dir = args.dir.resolve()
    await lab_scraped(lab_dir, say)
    targets = lab_targets(lab_dir)
    async with Client.from_config(client_config.load(str(lab_dir / "admin.conf")), timeout=10) as client:
        return await soak(client, targets, duration=args.duration, interval=args.interval, rate=args.rate,
                          watches=args.watches, say=say, fill_writes=args.fill, fill=lambda n: lab_fill(lab_dir, n))


def main() -> None:
    from lab.topology import DEFAULT_DIR

    p = cli.arguments(__doc__, "90 s, a sample every 5 s", whole_doc=True, prog="python -m bench.soak")
    p.add_argument("--dir", type=Path, default=Path(os.environ.get("PB_LAB_DIR") or DEFAULT_DIR))
    p.add_argument("--standalone", action="store_true", help="an etcd and apiserver of its own instead of the lab")
    p.add_argument("--duration", type=float, default=600.0)
    p.add_argument("--interval", type=float, default=0.0, help="seconds between samples (default 15; 5 quick)")
    p.add_argument("--rate", type=float, default=20.0, help="requests per second")
    p.add_argument("--watches", type=int, default=10, help="watches open at most at once")
    p.add_argument("--fill", type=int, default=FILL_WRITES,
                   help=f"etcd's warm-up puts before the clock (default {FILL_WRITES}: its raft log full; 0 none)")
    p.add_argument("--fill-etcd", metavar="URL", help=argparse.SUPPRESS)  # lab_fill's own run, in the lab's netns
    for f in ("--etcd-cafile", "--etcd-certfile", "--etcd-keyfile"):
        p.add_argument(f, type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.fill_etcd:
        tls = EtcdTLS(args.etcd_cafile, CertPair(args.etcd_certfile, args.etcd_keyfile)) if args.etcd_cafile else None
        print(json.dumps({"failed": asyncio.run(fill_etcd(args.fill_etcd, args.fill, tls))}))
        return
    if args.quick:
        args.duration = 90.0
    args.interval = args.interval or (5.0 if args.quick else 15.0)
    print(f"soak: {args.duration:.0f} s at {args.rate} requests/s, up to {args.watches} watches, "
          f"{'standalone apiserver' if args.standalone else 'lab ' + str(args.dir)}", flush=True)
    figures = asyncio.run((standalone if args.standalone else in_lab)(args, lambda m: print(m, flush=True)))
    print(f"{figures['ops']} requests ({figures['errors']} failed), {figures['watch_events']} watch events; memory "
          f"growth bound {GROWTH_BOUND_PCT:g} % per component from the end of the {figures['warm_up_s']} s warm-up; "
          "growth from the cold start shown beside it")
    for name, row in sorted(figures["components"].items()):
        print(report_line(name, row))
    print("PASS" if figures["passed"] else "FAIL: " + "; ".join(figures["failures"]), flush=True)
    print(json.dumps(figures))
    sys.exit(0 if figures["passed"] else 1)


if __name__ == "__main__":
    main()
