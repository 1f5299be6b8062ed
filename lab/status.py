"""What a running lab looks like: `lab status` (each process alive and healthy, the etcd members (lab.etcd_members),
then the Nodes; `-o json` for all three), the summary after `lab up`, `lab shell`'s command line, `lab open` (the
dashboard's URL, then Prometheus'), and the idle CPU/memory use the benchmarks report.

Reads the lab's record (lab.state) and asks lab.health and, through the host relay, the apiserver.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from lab import etcd_members, netns
from lab.errors import LabError
from lab.health import health_check, tcp_ok
from lab.state import LabState, ProcessRecord, proc_ppid
from lab.topology import CP_NAME, CP_NETNS
from pybernetes import ports


async def node_rows(st: LabState) -> list[tuple[str, str, str, str, str]]:
    """(name, status, internal IP, pod CIDR, version) for every Node, through the relay.

    Status is Ready only when the Ready condition is True *and* the node lifecycle controller has lifted
    its not-ready/unreachable taints, i.e. the scheduler can use the node; else NotReady/Unknown/Tainted."""
    from pybernetes import errors
    from pybernetes.api.core.v1 import core_pb2 as core
    from pybernetes.client import config as client_config
    from pybernetes.client.client import Client

    cfg = client_config.load(str(Path(st.dir) / "admin.conf"))
    try:
        async with Client.from_config(cfg, timeout=5) as c:
            nodes = (await c.list(core.Node)).items
    except errors.ApiError:
        return []
    rows = []
    for nd in sorted(nodes, key=lambda x: x.metadata.name):
        ready = next((cd.status for cd in nd.status.conditions if cd.type == "Ready"), "Unknown")
        status = {"True": "Ready", "False": "NotReady"}.get(ready, "Unknown")
        if status == "Ready" and any(t.key in _HEALTH_TAINTS for t in nd.spec.taints):
            status = "Tainted"
        ip = next((a.address for a in nd.status.addresses if a.type == "InternalIP"), "")
        rows.append((nd.metadata.name, status, ip, nd.spec.pod_cidr, nd.status.node_info.kubelet_version))
    return rows


_HEALTH_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


async def print_summary(st: LabState, out: Callable[[str], None] = print) -> None:
    rows = await node_rows(st)
    out("")
    out(table([("NAME", "STATUS", "INTERNAL-IP", "POD-CIDR", "VERSION"), *rows]))
    out("")
    if st.info.get("user_kubeconfig"):
        out(f"kubeconfig: context pybernetes-lab (current) in {st.info['user_kubeconfig']}; "
            f"also {Path(st.dir) / 'admin.conf'}")
    out("")
    out("Try next:")
    out("  kubectl get pods -A                      # the Kubernetes REST API over HTTPS (.venv/bin/kubectl)")
    out("  pbctl get nodes -o wide                  # the same API over gRPC")
    out("  python -m lab.demo            # Deployment + Services, requests balanced across nodes")
    out("  pbctl lab status                        # or: python -m lab.cli status")
    out("  pbctl lab shell node-1 -- ip route")
    out("  pbctl lab stop kubelet --node node-2     # watch the node go NotReady and its pods move")
    out("  pbctl dashboard                          # the cluster drawn as its architecture, live, in a browser")
    out("  pbctl lab down")
    if st.info.get("prometheus_url"):
        out(f"  Prometheus: {st.info['prometheus_url']}")


async def status(lab_dir: Path, out: Callable[[str], None] = print, output: str = "") -> int:
    st = LabState.load(lab_dir.resolve())
    if st is None:
        out(f"no lab in {lab_dir}")
        return 1

    async def one(rec: ProcessRecord) -> tuple[str, str, str, str, str]:
        alive = rec.alive()
        check = health_check(st, rec)
        if not alive:
            health = "-"
        elif check is None:
            health = "n/a"
        else:
            health = "ok" if await check() else "FAILING"
        return (rec.name.split("/")[0], rec.node or CP_NAME, str(rec.pid), "running" if alive else "STOPPED", health)

    order = {c: i for i, c in enumerate(("etcd", "apiserver", "relay", "scheduler", "controller-manager", "dns",
                                         "registry", "prometheus", "containerd", "kubelet",
                                         "proxy"))}
    recs = sorted(st.processes.values(), key=lambda r: (r.node, order.get(r.component, 99), r.name))
    rows, etcd = await asyncio.gather(asyncio.gather(*(one(r) for r in recs)), etcd_members.members(st))
    nodes = await node_rows(st) if any(r[0] == "apiserver" and r[4] == "ok" for r in rows) else []
    bad = [r for r in rows if r[3] != "running" or r[4] == "FAILING"]
    if output == "json":
        keys = ("component", "host", "pid", "process", "health")
        out(json.dumps({"complete": st.complete, "processes": [dict(zip(keys, r, strict=True)) for r in rows],
                        "etcd": etcd, "nodes": [dict(zip(("name", "status", "internalIP", "podCIDR", "version"), n,
                                                         strict=True)) for n in nodes]}, indent=2))
        return 1 if bad else 0
    out(table([("COMPONENT", "HOST", "PID", "PROCESS", "HEALTH"), *rows]))
    if not st.complete:
        out("(lab up did not finish)")
    if etcd:
        out("")
        out(table([etcd_members.HEADER, *etcd_members.rows(etcd)]))
    if nodes:
        out("")
        out(table([("NAME", "STATUS", "INTERNAL-IP", "POD-CIDR", "VERSION"), *nodes]))
    return 1 if bad else 0


def shell_argv(lab_dir: Path, host: str, cmd: Sequence[str]) -> list[str]:
    st = LabState.load(lab_dir.resolve())
    names = {CP_NAME: CP_NETNS}
    if st is not None:
        names.update({n["name"]: n["netns"] for n in st.info.get("nodes", [])})
    ns = names.get(host) or (host if host.startswith("pb-") else "")
    if not ns or not netns.exists(ns):
        raise LabError(f"no lab host {host!r} (known: {', '.join(names)})")
    return netns.nsenter(ns, list(cmd) or [os.environ.get("SHELL", "/bin/sh")])


async def dashboard_line(st: LabState) -> str:
    """Where `pbctl dashboard` serves the live architecture page, and how to start it when nothing answers there."""
    url = f"http://127.0.0.1:{ports.DASHBOARD}/"
    if await tcp_ok("127.0.0.1", ports.DASHBOARD):
        return f"Dashboard: {url}"
    conf = st.info.get("dashboard_conf")  # its own read-only identity (lab.control_plane)
    return f"Dashboard: {url}  (start it: pbctl {f'--config {conf} ' if conf else ''}dashboard)"


async def open_dashboards(lab_dir: Path, out: Callable[[str], None] = print) -> int:
    st = LabState.load(lab_dir.resolve())
    if st is None:
        raise LabError(f"no lab in {lab_dir}")
    out(await dashboard_line(st))
    url = st.info.get("prometheus_url")
    if not url:
        out("no Prometheus in this lab (prometheus was not installed at `lab up`)")
        return 1
    out(f"Prometheus: {url}")
    return 0


def idle_usage(lab_dir: Path, seconds: float = 5.0) -> tuple[float, float]:
    """(RSS MiB, CPU % of one core) summed over the lab's processes, their children and containerd shims."""
    st = LabState.load(lab_dir.resolve())
    if st is None:
        return 0.0, 0.0
    pids = {p.pid for p in st.processes.values() if p.alive()}
    socks = [v["socket"] for v in st.containerd.values()]
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            ppid = proc_ppid(int(entry))
            if ppid is None:
                continue
            parent[int(entry)] = ppid
            if any(s.encode() in argv for s in socks):
                pids.add(int(entry))
    grew = True
    while grew:  # descendants (e.g. the prometheus binary under its wrapper, containers under shims)
        more = {p for p, pp in parent.items() if pp in pids and p not in pids}
        pids |= more
        grew = bool(more)

    def ticks() -> dict[int, int]:
        out: dict[int, int] = {}
        for pid in pids:
            with contextlib.suppress(OSError, IndexError, ValueError):
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                out[pid] = int(f[11]) + int(f[12])
        return out

    a = ticks()
    time.sleep(seconds)
    b = ticks()
    hz = os.sysconf("SC_CLK_TCK")
    cpu = sum(b[p] - a.get(p, b[p]) for p in b) / hz / seconds * 100
    rss = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
    return rss / 1024, cpu
