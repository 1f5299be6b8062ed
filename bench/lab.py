"""Lab figures (issue 16): `pbctl lab up` time with its dependencies present, and the idle footprint after.

- `pbctl lab up` wall time (images already built in the image cache, containerd/etcd/nft installed); a lab
  already up is taken down first (not timed). Goal <= 5 s.
- idle footprint after a settle time (5 minutes; 20 s with --quick): the summed RSS of every lab process and
  its CPU use over a sampling window, as % of one core. "Lab processes" are those recorded in the lab's
  state.json (apiserver, etcd, scheduler, controller manager, kubelets, proxies, containerd, registry...),
  their descendants, and the containerd shims with the pods' processes under them. Goals <= 500 MiB, <= 3%.
  Beside the RSS, the summed PSS (each shared page divided among the processes that map it): RSS counts a
  shared library once per process that maps it (grpc's, Python's, OpenSSL's in every Python component), PSS
  once in all, so PSS is what the lab costs the machine. The goal row is the RSS, as issue 16 words it.
There is no ceiling to measure for these rows (rows carry ceiling null). The lab uses fixed namespaces and
/var/lib/pybernetes/lab: run it only where the lab may run (the lead's machine, no other lab up).
`--no-up` measures a lab that is already up; `--down` takes the lab down at the end.
The last line printed is one JSON object (bench/report.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cli
from bench.report import emit, row
from lab.state import LabState, proc_ppid
from lab.topology import DEFAULT_DIR

CLK_TCK = os.sysconf("SC_CLK_TCK")


def pbctl(*args: str) -> list[str]:
    """argv of this environment's pbctl (the venv's, beside this interpreter, else the one on PATH)."""
    local = Path(sys.executable).parent / "pbctl"
    return [str(local) if local.exists() else "pbctl", *args]


def proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, cmdline) of every process."""
    out: dict[int, tuple[int, str]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        ppid = proc_ppid(int(d.name))
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if ppid is None:
            continue
        out[int(d.name)] = (ppid, cmd)
    return out


def lab_pids(st: LabState) -> dict[int, str]:
    """pid -> component of every lab process: the recorded ones, containerd shims, and all their descendants."""
    table = proc_table()
    roots: dict[int, str] = {rec.pid: rec.component for rec in st.processes.values() if rec.alive()}
    sockets = [info["socket"] for info in st.containerd.values() if info.get("socket")]
    for pid, (_, cmd) in table.items():
        if pid not in roots and "containerd-shim" in cmd and any(s in cmd for s in sockets):
            roots[pid] = "pods (shims and containers)"
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: dict[int, str] = {}
    stack = list(roots.items())
    while stack:
        pid, comp = stack.pop()
        if pid in found:
            continue
        found[pid] = comp
        stack.extend((c, comp) for c in children.get(pid, ()))
    return found


def _kib_field(path: str, key: str) -> float:
    """The `key:` line of a /proc file that counts in kB (status' VmRSS, smaps_rollup's Pss), in MiB."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def rss_mib(pid: int) -> float:
    return _kib_field(f"/proc/{pid}/status", "VmRSS:")


def pss_mib(pid: int) -> float:
    return _kib_field(f"/proc/{pid}/smaps_rollup", "Pss:")


def cpu_s(pids: Iterable[int]) -> dict[int, float]:
    out: dict[int, float] = {}
    for pid in pids:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(f[11]) + int(f[12])) / CLK_TCK
    return out


def footprint(st: LabState, window: float) -> dict[str, Any]:
    """Summed RSS and PSS (MiB) now, and CPU (% of one core) over `window` s, in total and per component."""
    pids = lab_pids(st)
    c0, t0 = cpu_s(pids), time.monotonic()
    time.sleep(window)
    c1, elapsed = cpu_s(pids), time.monotonic() - t0
    per: dict[str, dict[str, float]] = {}
    for pid, comp in pids.items():
        e = per.setdefault(comp, {"processes": 0, "rss_mib": 0.0, "pss_mib": 0.0, "cpu_percent": 0.0})
        e["processes"] += 1
        e["rss_mib"] += rss_mib(pid)
        e["pss_mib"] += pss_mib(pid)
        if pid in c0 and pid in c1:  # a process that exited during the window counts no CPU
            e["cpu_percent"] += (c1[pid] - c0[pid]) / elapsed * 100
    per = {k: {n: round(v, 1) for n, v in e.items()} for k, e in sorted(per.items())}
    return {"processes": len(pids), "rss_mib": round(sum(e["rss_mib"] for e in per.values()), 1),
            "pss_mib": round(sum(e["pss_mib"] for e in per.values()), 1),
            "cpu_percent": round(sum(e["cpu_percent"] for e in per.values()), 2), "per_component": per}


def main() -> None:
    ap = cli.arguments(__doc__, "settle 20 s and sample 10 s")
    ap.add_argument("--dir", type=Path, default=Path(os.environ.get("PB_LAB_DIR") or DEFAULT_DIR),
                    help="lab directory (default $PB_LAB_DIR or %(default)s)")
    ap.add_argument("--workers", type=int, default=3, help="worker nodes for `lab up` (default 3)")
    ap.add_argument("--settle", type=float, default=0, help="seconds idle before sampling (default 300; 20 quick)")
    ap.add_argument("--window", type=float, default=0, help="CPU sampling seconds (default 60; 10 quick)")
    ap.add_argument("--no-up", action="store_true", help="measure the lab already up; no `lab up` figure")
    ap.add_argument("--down", action="store_true", help="`pbctl lab down` at the end")
    args = ap.parse_args()
    settle = args.settle or (20.0 if args.quick else 300.0)
    window = args.window or (10.0 if args.quick else 60.0)
    figures: dict[str, Any] = cli.figures("lab", args, workers=args.workers)
    rows: dict[str, Any] = {}
    lab_dir = ["--dir", str(args.dir)]
    if not args.no_up:
        if LabState.load(args.dir) is not None:
            print("== a lab is up: pbctl lab down first (not timed)", flush=True)
            subprocess.run(pbctl("lab", "down", *lab_dir), check=True)
        print(f"== pbctl lab up --workers {args.workers}", flush=True)
        t = time.monotonic()
        subprocess.run(pbctl("lab", "up", "--workers", str(args.workers), *lab_dir), check=True)
        rows["lab_up_s"] = row(round(time.monotonic() - t, 2), None, "s", figure_max=5)
    st = LabState.load(args.dir)
    if st is None:
        raise SystemExit(f"no lab in {args.dir}")
    print(f"== idle footprint: settle {settle:.0f} s, then CPU over {window:.0f} s", flush=True)
    time.sleep(settle)
    fp = footprint(st, window)
    figures["footprint"] = fp
    for comp, e in fp["per_component"].items():
        print(f"   {comp}: {e['processes']} processes, {e['rss_mib']} MiB RSS ({e['pss_mib']} PSS), "
              f"{e['cpu_percent']}% of a core", flush=True)
    print(f"   all: {fp['processes']} processes, {fp['rss_mib']} MiB RSS ({fp['pss_mib']} PSS), "
          f"{fp['cpu_percent']}% of a core", flush=True)
    rows["idle_rss_mib"] = row(fp["rss_mib"], None, "MiB", figure_max=500)
    rows["idle_cpu_percent"] = row(fp["cpu_percent"], None, "% of a core", figure_max=3)
    if args.down:
        subprocess.run(pbctl("lab", "down", *lab_dir), check=True)
    figures["rows"] = rows
    emit(figures)


if __name__ == "__main__":
    main()
