"""What the apiserver's metrics cost, measured on this machine in one run.

- `/metrics` of pb-apiserver scraped 20 times while 64 concurrent clients create pods: p50/p99/max response
  time (target <= 50 ms). The scrapes come from a separate process so the load generator's event loop does
  not delay them. As in the lab, the health port is HTTPS (`--client-ca-file`) and each scrape is a new TLS
  connection with a client certificate in system:monitoring, authorized by the apiserver's RBAC: the figure
  includes the handshake and the authorization. The same over plain HTTP (a standalone apiserver without
  --client-ca-file) follows, so the difference is what securing /metrics costs a scrape.
- pod creates/s (64 concurrent clients) with metrics on vs `--enable-metrics=false`, back to back, in the
  order on, off, off, on (each twice; the ABBA order cancels a linear drift), each phase with a fresh etcd
  so no phase inherits a bigger database: overhead = (off - on) / off (target <= 5 %). On a small shared
  machine throughput swings by 10 % between identical phases, so two steadier figures are printed too: the
  apiserver's CPU time per create (from /proc) on vs off, and the in-process cost of what one create
  records (request counter + duration histogram + etcd histogram) as a share of that CPU time.

etcd and pb-apiserver run as separate processes (as in the lab, and as in bench/apiserver.py); this process
is the client. `--quick` finishes within 60 s. The last line printed is one JSON object of figures.
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
from bench.apiserver import create_rate, pct
from bench.procs import admin_config, start_apiserver, start_etcd, stop_processes
from pybernetes import pkiutil
from pybernetes.api import kinds
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client.client import Client
from pybernetes.ports import free_port

TASKS = 64
SCRAPES = 20

# Runs in its own process: scrape URL n times, `interval` s apart, after `delay` s, over HTTPS as the
# certificate given (CA, cert, key) or plain HTTP without; print one JSON object with each scrape's seconds and
# the last body (for the series checks).
SCRAPER = r"""
import http.client, json, ssl, sys, time
host, port, n, interval, delay = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
ctx = None
if len(sys.argv) > 6:
    ctx = ssl.create_default_context(cafile=sys.argv[6])
    ctx.load_cert_chain(sys.argv[7], sys.argv[8])
time.sleep(delay)
times, body, errors = [], b"", 0
for _ in range(n):
    t = time.perf_counter()
    try:
        c = (http.client.HTTPSConnection(host, port, timeout=10, context=ctx) if ctx
             else http.client.HTTPConnection(host, port, timeout=10))
        c.request("GET", "/metrics")
        r = c.getresponse()
        body = r.read()
        c.close()
        if r.status != 200:
            errors += 1
    except OSError:
        errors += 1
    times.append(time.perf_counter() - t)
    time.sleep(interval)
print(json.dumps({"times": times, "errors": errors, "bytes": len(body), "body": body.decode(errors="replace")}))
"""


class Apiserver:
    """One pb-apiserver process against an external etcd, in its own data dir."""

    def __init__(self, tmp: Path, name: str, etcd: str, metrics: bool, secure: bool = False) -> None:
        self.data = tmp / name
        self.hport = free_port()  # /metrics, scraped by the bench
        self.log = tmp / f"{name}.log"
        self.etcd = etcd
        self.extra = [f"--enable-metrics={'true' if metrics else 'false'}"]
        if secure:  # the CA it makes under its pki dir at start, as the lab passes its own
            self.extra.append(f"--client-ca-file={self.data / 'pki' / 'ca.crt'}")
        self.proc: subprocess.Popen[bytes] | None = None
        self.clients: list[Client] = []

    async def start(self) -> None:
        self.proc = start_apiserver(self.data, self.etcd, open(self.log, "w"), health_port=self.hport,
                                    extra=self.extra)
        cfg = await admin_config(self.data, self.proc, self.log)
        self.clients = [Client(cfg.server, token=cfg.token, tls=cfg.tls()) for _ in range(4)]
        for c in self.clients:
            await c.list(core.Pod, namespace="kube-system")  # connect every channel before measuring

    async def stop(self) -> None:
        for c in self.clients:
            await c.close()
        await asyncio.to_thread(stop_processes, [self.proc])


def series_value(body: str, name: str) -> float | None:
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            try:
                return float(line.rsplit(" ", 1)[1])
            except ValueError:
                return None
    return None


async def scrape_under_load(tmp: Path, etcd: str, seconds: float, secure: bool = True) -> dict[str, Any]:
    api = Apiserver(tmp, "scrape-https" if secure else "scrape-http", etcd, metrics=True, secure=secure)
    await api.start()
    try:
        pki = api.data / "pki"
        prom = pkiutil.ensure_client_cert(pki, "prometheus", "prometheus", ["system:monitoring"])
        as_prometheus = [str(pki / "ca.crt"), str(prom.cert), str(prom.key)] if secure else []
        interval = max((seconds - 1.5) / SCRAPES - 0.01, 0.02)
        scraper = await asyncio.create_subprocess_exec(
            sys.executable, "-c", SCRAPER, "127.0.0.1", str(api.hport), str(SCRAPES), str(interval), "1.0",
            *as_prometheus, stdout=subprocess.PIPE)
        load = await create_rate(api.clients, TASKS, seconds, "scrape")
        out, _ = await scraper.communicate()
        res = json.loads(out)
    finally:
        await api.stop()
    times: list[float] = res["times"]
    body: str = res["body"]
    return {"scrapes": len(times), "errors": res["errors"], "bytes": res["bytes"],
            "p50_ms": pct(times, 0.5), "p99_ms": pct(times, 0.99), "max_ms": pct(times, 1.0),
            "creates_per_s": load["per_s"],
            "storage_objects_pods": series_value(body, 'apiserver_storage_objects{resource="pods"}'),
            "etcd_create_pods_count": series_value(
                body, 'etcd_request_duration_seconds_count{operation="create",type="pods"}'),
            "series": sum(1 for line in body.splitlines() if line and not line.startswith("#"))}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def phase(tmp: Path, i: int, metrics: bool, warmup: float, seconds: float) -> dict[str, Any]:
    etcd = await start_etcd(tmp / f"etcd{i}")
    api = Apiserver(tmp, f"phase{i}", etcd.endpoint, metrics=metrics)
    try:
        await api.start()
        assert api.proc is not None
        await create_rate(api.clients, TASKS, warmup, f"warm{i}")
        cpu0 = cpu_seconds(api.proc.pid)
        r = await create_rate(api.clients, TASKS, seconds, f"phase{i}")
        r["cpu_us_per_create"] = round((cpu_seconds(api.proc.pid) - cpu0) / max(r["ops"], 1) * 1e6, 1)
        return r
    finally:
        await api.stop()
        await etcd.stop()


def recording_cost_us(n: int = 200_000) -> float:
    """What one create records, in-process: apiserver_request_total + _duration_seconds + one etcd histogram."""
    from services.apiserver import metrics
    from services.apiserver.storage.store import observe_etcd
    info = kinds.for_class(core.Pod)
    metrics.set_enabled(True)
    t = time.perf_counter()
    for _ in range(n):
        s = time.perf_counter()
        observe_etcd("create", info, s)
        metrics.record_request("create", "pods", 201, time.perf_counter() - s)
    return round((time.perf_counter() - t) / n * 1e6, 2)


async def main() -> None:
    ap = cli.arguments(__doc__)
    args = ap.parse_args()
    seconds = 5.0 if args.quick else 15.0
    warmup = 1.0 if args.quick else 3.0
    figures: dict[str, Any] = cli.figures("metrics", args)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pb-bench-metrics-") as tmp_s:
        tmp = Path(tmp_s)
        etcd = await start_etcd(tmp / "etcd")
        try:
            print(f"== /metrics scraped {SCRAPES} times under {TASKS} concurrent pod creates (HTTPS, a new "
                  "connection with a system:monitoring certificate each)", flush=True)
            sc = await scrape_under_load(tmp, etcd.endpoint, seconds + 1.5)
            figures.update({f"scrape_{k}": sc[k] for k in ("p50_ms", "p99_ms", "max_ms", "errors", "bytes",
                                                             "series")})
            figures["scrape_load_creates_per_s"] = sc["creates_per_s"]
            figures["scrape_ok"] = sc["max_ms"] <= 50.0 and sc["errors"] == 0
            figures["storage_objects_pods"] = sc["storage_objects_pods"]
            figures["etcd_create_pods_count"] = sc["etcd_create_pods_count"]
            print(f"   {sc['scrapes']} scrapes ({sc['bytes']} B, {sc['series']} samples): p50 {sc['p50_ms']} ms "
                  f"p99 {sc['p99_ms']} ms max {sc['max_ms']} ms, errors {sc['errors']} "
                  f"(load: {sc['creates_per_s']} creates/s)", flush=True)
            print(f"   apiserver_storage_objects{{resource=\"pods\"}} {sc['storage_objects_pods']}, "
                  f"etcd_request_duration_seconds_count{{operation=\"create\",type=\"pods\"}} "
                  f"{sc['etcd_create_pods_count']}", flush=True)
            plain = await scrape_under_load(tmp, etcd.endpoint, seconds + 1.5, secure=False)
            figures.update({f"scrape_http_{k}": plain[k] for k in ("p50_ms", "p99_ms", "max_ms", "errors")})
            print(f"   the same over plain HTTP: p50 {plain['p50_ms']} ms p99 {plain['p99_ms']} ms max "
                  f"{plain['max_ms']} ms, errors {plain['errors']} (load: {plain['creates_per_s']} creates/s)",
                  flush=True)

        finally:
            await etcd.stop()

        print(f"== pod creates/s, {TASKS} concurrent clients, metrics on/off (ABBA: on, off, off, on), "
              "a fresh etcd per phase", flush=True)
        rates: dict[bool, list[float]] = {True: [], False: []}
        cpu: dict[bool, list[float]] = {True: [], False: []}
        order = (True, False, False, True) * (1 if args.quick else 2)
        for i, on in enumerate(order):
            r = await phase(tmp, i, on, warmup, seconds)
            rates[on].append(r["per_s"])
            cpu[on].append(r["cpu_us_per_create"])
            print(f"   metrics {'on ' if on else 'off'}: {r['per_s']} creates/s p99 {r['p99_ms']} ms "
                  f"errors {r['errors']}, apiserver CPU {r['cpu_us_per_create']} us/create", flush=True)

        def mean(v: list[float]) -> float:
            return sum(v) / len(v)

        on_rate, off_rate = mean(rates[True]), mean(rates[False])
        overhead = round((off_rate - on_rate) / off_rate * 100, 2) if off_rate else 0.0
        on_cpu, off_cpu = mean(cpu[True]), mean(cpu[False])
        cpu_overhead = round((on_cpu - off_cpu) / off_cpu * 100, 2) if off_cpu else 0.0
        rec = recording_cost_us()
        figures["creates_per_s_metrics_on"] = round(on_rate, 1)
        figures["creates_per_s_metrics_off"] = round(off_rate, 1)
        figures["runs_on"], figures["runs_off"] = rates[True], rates[False]
        figures["metrics_overhead_pct"] = overhead
        figures["overhead_ok"] = overhead <= 5.0
        figures["cpu_us_per_create_on"], figures["cpu_us_per_create_off"] = round(on_cpu, 1), round(off_cpu, 1)
        figures["cpu_overhead_pct"] = cpu_overhead
        figures["recording_us_per_create"] = rec
        figures["recording_pct_of_cpu"] = round(rec / off_cpu * 100, 2) if off_cpu else 0.0
        print(f"   creates/s on {on_rate:.1f}, off {off_rate:.1f}: overhead {overhead} % (negative = noise)",
              flush=True)
        print(f"   apiserver CPU/create on {on_cpu:.1f} us, off {off_cpu:.1f} us: {cpu_overhead} %", flush=True)
        print(f"   recording one create's metrics in-process: {rec} us = {figures['recording_pct_of_cpu']} % of "
              "the apiserver's CPU per create", flush=True)
    figures["elapsed_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
