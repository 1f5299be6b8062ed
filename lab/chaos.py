"""Chaos in the lab: components killed (SIGKILL) and restarted on a seeded random schedule while
lab.chaos_load writes at a fixed rate and a client polls the demo's `hello` Service from node-1; then the
cluster converges and the stored objects are checked against every accepted write.

    python -m bench.chaos [--dir LAB_DIR] [--quick | --duration 600] [--seed N] [--rate 10]

The lab must be up (`pbctl lab up --profile fast`, `--etcd-members 3` to measure losing the etcd leader); the
demo is applied if missing. Prints the schedule, one line per kill, a report, and as its last line one JSON
object of figures. tests/e2e/test_chaos.py runs `--quick` with a fixed seed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab import demo, etcd_members
from lab.chaos_load import NAMESPACE, LoadGenerator, Verdict, converge
from lab.errors import LabError
from lab.lifecycle import start_recorded
from lab.netns import nsenter
from lab.state import LabState, ProcessRecord
from lab.topology import DEFAULT_DIR
from pybernetes.client import config as client_config
from pybernetes.client.client import Client

TARGETS = ("etcd", "apiserver", "scheduler", "controller-manager", "kubelet", "proxy", "containerd")
PROBE_FROM = "node-1"
# Polls the Service from inside a node's namespace: one line per probe, "<unix time> 1|0".
PROBER = """
import sys, time, urllib.request
url, period = sys.argv[1], float(sys.argv[2])
while True:
    t = time.time()
    try:
        ok = urllib.request.urlopen(url, timeout=1).status == 200
    except Exception:
        ok = False
    print(f"{t:.3f} {int(ok)}", flush=True)
    time.sleep(max(0.0, period - (time.time() - t)))
"""


@dataclass
class Kill:
    component: str
    node: str
    downtime: float
    gap: float
    name: str = ""
    leader: bool = False
    killed_at: float = 0.0  # unix time
    healthy_at: float = 0.0


def schedule(seed: int, duration: float, quick: bool) -> list[Kill]:
    """Kills spread over `duration`: every target once in a shuffled order, then random ones."""
    rng = random.Random(seed)
    gap = (4.0, 8.0) if quick else (10.0, 30.0)
    plan: list[Kill] = []
    order = list(TARGETS)
    rng.shuffle(order)
    spent = 0.0
    while spent < duration:
        comp = order.pop(0) if order else rng.choice(TARGETS)
        node = f"node-{rng.randint(1, 3)}" if comp in ("kubelet", "proxy", "containerd") else ""
        k = Kill(comp, node, round(rng.uniform(1.0, 4.0), 1), round(rng.uniform(*gap), 1))
        plan.append(k)
        spent += k.downtime + k.gap + 3.0  # ~3 s to restart
    return plan


async def pick(st: LabState, k: Kill, nodes: list[str]) -> ProcessRecord:
    """The process to kill; for etcd the leader of a cluster (its loss is what the figure measures)."""
    if k.component == "etcd":
        recs = sorted(st.find("etcd"), key=lambda r: r.name)
        if len(recs) > 1:
            rows = await etcd_members.members(st)
            leader = next((r["member"] for r in rows if r.get("leader")), recs[0].name)
            k.leader = True
            return st.processes[leader]
        k.leader = True  # the only member
        return recs[0]
    node = k.node if k.node in nodes else (nodes[0] if k.node else "")
    k.node = node
    recs = st.find(k.component, node)
    if not recs:
        raise LabError(f"no {k.component} {node} in the lab")
    return recs[0]


def reap(pid: int) -> None:
    """Collect a killed process that is our child (an earlier kill restarted it from here)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


async def kill_and_restart(lab_dir: Path, k: Kill, nodes: list[str], say: Callable[[str], None]) -> None:
    st = LabState.load(lab_dir)
    if st is None:
        raise LabError(f"no lab in {lab_dir}")
    rec = await pick(st, k, nodes)
    k.name = rec.name
    k.killed_at = time.time()
    rec.signal(signal.SIGKILL)
    for _ in range(100):
        reap(rec.pid)
        if not rec.alive():
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(k.downtime)
    await start_recorded(st, rec, timeout=120)  # returns once its health check passes
    k.healthy_at = time.time()
    say(f"   killed {k.name}{' (etcd leader)' if k.leader and k.component == 'etcd' else ''} for {k.downtime} s: "
        f"healthy again {k.healthy_at - k.killed_at:.1f} s after the kill")


class Prober:
    """The Service poll: a process in a node's namespace; error windows from its lines."""

    def __init__(self, netns: str, url: str, period: float = 0.2) -> None:
        self.argv = nsenter(netns, [sys.executable, "-c", PROBER, url, str(period)])
        self.samples: list[tuple[float, bool]] = []
        self.proc: asyncio.subprocess.Process | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(*self.argv, stdout=asyncio.subprocess.PIPE)
        self.task = asyncio.create_task(self.read())

    async def read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            t, ok = line.decode().split()
            self.samples.append((float(t), ok == "1"))

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self.task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.task, 5)

    def windows(self) -> list[tuple[float, float]]:
        """(start, end) of each run of failed probes: first failure to the next success."""
        out: list[tuple[float, float]] = []
        start: float | None = None
        for t, ok in self.samples:
            if not ok and start is None:
                start = t
            elif ok and start is not None:
                out.append((start, t))
                start = None
        if start is not None and self.samples:
            out.append((start, self.samples[-1][0]))
        return out


def report(kills: Sequence[Kill], windows: Sequence[tuple[float, float]], verdict: Verdict, gen: LoadGenerator,
           t0_wall: float, t0_mono: float, seed: int, duration: float, probes: int) -> dict[str, Any]:
    longest = max((e - s for s, e in windows), default=0.0)
    per: dict[str, float] = {}
    recovery: dict[str, float] = {}
    for k in kills:
        if not k.healthy_at:
            continue
        recovery[k.component] = max(recovery.get(k.component, 0.0), round(k.healthy_at - k.killed_at, 2))
        # a window belongs to a kill when it starts between the kill and 10 s after its recovery
        worst = max((e - s for s, e in windows if k.killed_at <= s <= k.healthy_at + 10), default=0.0)
        per[k.component] = round(max(per.get(k.component, 0.0), worst), 2)
    leader_to_write = []
    for k in kills:
        if k.component == "etcd" and k.leader and k.killed_at:
            after = [w.accepted for w in gen.ledger.writes if w.accepted - t0_mono + t0_wall > k.killed_at]
            if after:
                leader_to_write.append(round(min(after) - t0_mono + t0_wall - k.killed_at, 2))
    verbs: dict[str, int] = {}
    for w in gen.ledger.writes:
        verbs[w.verb] = verbs.get(w.verb, 0) + 1
    return {"bench": "chaos", "seed": seed, "duration_s": duration, "kills": len([k for k in kills if k.killed_at]),
            "writes_accepted": verdict.accepted, "writes_by_verb": verbs,
            "writes_retried": sum(w.attempts > 1 for w in gen.ledger.writes),
            "failed_attempts": gen.ledger.failed_attempts, "uncertain": len(gen.ledger.uncertain),
            "anomalies": len(gen.ledger.anomalies),
            "lost": len(verdict.lost), "duplicated": len(verdict.duplicated), "resurrected": len(verdict.resurrected),
            "converged": verdict.converged, "converge_s": verdict.converge_s,
            "service_probes": probes, "service_error_windows": len(windows),
            "service_longest_error_s": round(longest, 2), "service_longest_error_by_component_s": per,
            "recovery_s": recovery, "etcd_leader_loss_to_write_s": max(leader_to_write, default=None),
            "etcd_members": 0}


async def run(lab_dir: Path, *, seed: int, duration: float, rate: float, quick: bool,
              say: Callable[[str], None] = print) -> dict[str, Any]:
    st = LabState.load(lab_dir)
    if st is None or not st.complete:
        raise LabError(f"no running lab in {lab_dir}; run `pbctl lab up` first")
    nodes = [n["name"] for n in st.info.get("nodes", [])]
    admin = lab_dir / "admin.conf"
    kills = schedule(seed, duration, quick)
    say(f"chaos seed {seed}: {len(kills)} kills over ~{duration:.0f} s, {rate} writes/s")
    for i, k in enumerate(kills, 1):
        say(f"  {i:2d}. {k.component}{' on ' + k.node if k.node else ''}: down {k.downtime} s, then {k.gap} s")
    await cleanup(lab_dir)
    say("applying the demo and waiting for its Service")
    await demo.run_demo(lab_dir, requests=1, say=lambda _m: None)
    vip = await demo.cluster_ip(admin)
    prober = Prober(f"pb-{PROBE_FROM}", f"http://{vip}:80/")
    async with Client.from_config(client_config.load(str(admin)), timeout=5) as client:
        gen = LoadGenerator(client, rate, seed, say=say)
        await gen.ensure_namespace()
        await prober.start()
        stop = asyncio.Event()
        t0_wall, t0_mono = time.time(), time.monotonic()
        load = asyncio.create_task(gen.run(stop))
        try:
            for k in kills:
                await kill_and_restart(lab_dir, k, nodes, say)
                if time.monotonic() - t0_mono > duration:
                    break
                await asyncio.sleep(k.gap)
            rest = duration - (time.monotonic() - t0_mono)
            if rest > 0:
                await asyncio.sleep(rest)
        finally:
            stop.set()
            await load
        say(f"load stopped after {time.monotonic() - t0_mono:.0f} s: {len(gen.ledger.writes)} writes accepted; "
            "waiting for convergence")
        verdict = await converge(client, gen.ledger, timeout=180 if quick else 300)
        await asyncio.sleep(2)  # the Service's last probes after convergence
        await prober.stop()
    figures = report(kills, prober.windows(), verdict, gen, t0_wall, t0_mono, seed, duration, len(prober.samples))
    figures["etcd_members"] = len(st.find("etcd"))
    for what, items in (("lost", verdict.lost), ("duplicated", verdict.duplicated),
                        ("resurrected", verdict.resurrected), ("not converged", verdict.unconverged),
                        ("anomalies", gen.ledger.anomalies)):
        for item in items[:20]:
            say(f"   {what}: {item}")
    say(f"writes accepted {figures['writes_accepted']} ({figures['writes_retried']} after retries), lost "
        f"{figures['lost']}, duplicated {figures['duplicated']}, resurrected {figures['resurrected']}; converged "
        f"{figures['converged']} in {figures['converge_s']} s")
    say(f"Service: longest error window {figures['service_longest_error_s']} s "
        f"({figures['service_error_windows']} windows in {figures['service_probes']} probes); by component "
        f"{figures['service_longest_error_by_component_s']}")
    say(f"recovery (kill to healthy), s: {figures['recovery_s']}; etcd leader loss to next accepted write: "
        f"{figures['etcd_leader_loss_to_write_s']} s")
    return figures


async def cleanup(lab_dir: Path, timeout: float = 180.0) -> None:
    """Delete the chaos namespace and wait until it is gone: a run starts with none (its names are
    deterministic), and the e2e test leaves the shared lab as it found it."""
    from pybernetes import errors
    from pybernetes.api.core.v1 import core_pb2 as core

    deadline = time.monotonic() + timeout
    async with Client.from_config(client_config.load(str(lab_dir / "admin.conf")), timeout=10) as c:
        with contextlib.suppress(errors.NotFound):
            await c.delete(core.Namespace, NAMESPACE)
            while time.monotonic() < deadline:
                await c.get(core.Namespace, NAMESPACE)
                await asyncio.sleep(1.0)
            raise LabError(f"namespace {NAMESPACE} still there after {timeout:.0f} s")


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", type=Path, default=Path(os.environ.get("PB_LAB_DIR") or DEFAULT_DIR))
    p.add_argument("--quick", action="store_true", help="CI-sized: 90 s of chaos, 5 writes/s")
    p.add_argument("--duration", type=float, default=600.0, help="seconds of chaos (default 600)")
    p.add_argument("--rate", type=float, default=0.0, help="writes per second (default 10; 5 with --quick)")
    p.add_argument("--seed", type=int, default=None, help="the schedule's seed (default: random, printed)")
    p.add_argument("--cleanup", action="store_true", help="delete the chaos namespace afterwards")
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    seed = a.seed if a.seed is not None else random.randrange(1 << 31)
    duration = 90.0 if a.quick else a.duration
    rate = a.rate or (5.0 if a.quick else 10.0)
    lab_dir = a.dir.resolve()
    try:
        figures = asyncio.run(run(lab_dir, seed=seed, duration=duration, rate=rate, quick=a.quick))
        if a.cleanup:
            asyncio.run(cleanup(lab_dir))
    except LabError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(figures))
    ok = figures["lost"] == 0 and figures["duplicated"] == 0 and figures["resurrected"] == 0 and figures["converged"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
