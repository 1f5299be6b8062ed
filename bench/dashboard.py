"""pbctl dashboard: event-to-screen latency and the page server's idle CPU.

etcd and pb-apiserver run as separate processes, and so does `pbctl dashboard` (as a user runs it); headless
Chromium opens the page (tests/browser.py, DevTools protocol). Three Nodes and 30 running pods are written first
(no kubelet: the bench sets their status), then ~50 changes one at a time, alternately creating a pod and deleting
it; each change's latency runs from just before the client's write to the moment the page changed the DOM
for it (the page records Date.now() per key; same machine, same clock), so it covers the apiserver, the watch,
the dashboard's informers and the event stream. Then the dashboard process's CPU is read from /proc over a few
idle seconds with the page open. `--quick` finishes within 60 s. The last line is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cli
from bench.procs import admin_config, start_apiserver, start_etcd, stop_processes
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client.client import Client
from pybernetes.ports import free_port
from tests.browser import Browser, chromium
from tests.integration.test_dashboard import cluster, make_pod


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))] if s else 0.0


def cpu_seconds(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


async def changes(client: Client, page: Browser, n: int) -> list[float]:
    """Latency (ms) of n changes, alternately a pod created (unscheduled) and deleted."""
    out: list[float] = []
    for i in range(n):
        name = f"lat-{i // 2}"
        op = "upsert" if i % 2 == 0 else "delete"
        t0 = time.time() * 1000
        if op == "upsert":
            await make_pod(client, name)
        else:
            await client.delete(core.Pod, name, namespace="default", grace_period_seconds=0)
        seen = await page.wait_for(
            f"(s => s && s.op === '{op}' && s.at >= {t0} && s.at)(window.pbDashboard.seen['pods/default/{name}'])",
            timeout=10, interval=0.01)
        out.append(float(seen) - t0)
    return out


async def main() -> None:
    ap = cli.arguments(__doc__)
    ap.add_argument("--changes", type=int, default=0, help="changes to time (default 50, or 200 without --quick)")
    args = ap.parse_args()
    n = args.changes or (50 if args.quick else 200)
    figures: dict[str, Any] = cli.figures("dashboard", args, nodes=3, pods=30, changes=n)
    if chromium() is None:
        figures["error"] = "chromium not installed"
        print(json.dumps(figures))
        return
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="pb-bench-dash-") as tmp:
        etcd = await start_etcd(Path(tmp) / "etcd")
        try:
            data, health = Path(tmp) / "apiserver", free_port()
            log = Path(tmp) / "apiserver.log"
            procs.append(start_apiserver(data, etcd.endpoint, open(log, "w"), health_port=health))
            cfg = await admin_config(data, procs[-1], log)
            client = Client(cfg.server, token=cfg.token, tls=cfg.tls(), timeout=30)
            await cluster(client, nodes=3, per_node=10, pending=0)
            dash = subprocess.Popen(
                [sys.executable, "-m", "pbctl.main", "--kubeconfig", cfg.path, "dashboard",
                 "--port", str(free_port()), "--readyz", f"http://127.0.0.1:{health}/readyz"],
                stdout=subprocess.PIPE, stderr=open(Path(tmp) / "dashboard.log", "w"))
            procs.append(dash)
            assert dash.stdout is not None
            line = (await asyncio.get_running_loop().run_in_executor(None, dash.stdout.readline)).decode()
            url = line.split()[1]
            async with await Browser.launch(Path(tmp)) as page:
                t = time.perf_counter()
                await page.goto(url)
                await page.wait_for("document.querySelectorAll('.pod').length === 30", timeout=20)
                figures["first_paint_s"] = round(time.perf_counter() - t, 3)
                lat = await changes(client, page, n)
                figures.update(p50_ms=round(percentile(lat, 50), 1), p99_ms=round(percentile(lat, 99), 1),
                               max_ms=round(max(lat), 1))
                server = await page.eval("window.pbDashboard.latencies")
                figures["server_to_dom_p99_ms"] = round(percentile([float(x) for x in server], 99), 1)
                idle = 3.0 if args.quick else 10.0
                c0 = cpu_seconds(dash.pid)
                await asyncio.sleep(idle)
                figures["idle_cpu_percent"] = round((cpu_seconds(dash.pid) - c0) / idle * 100, 2)
                figures["js_errors"] = len(page.errors)
            await client.close()
        finally:
            stop_processes(procs)
            await etcd.kill()
    figures["p99_within_500ms"] = figures.get("p99_ms", 1e9) <= 500
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
