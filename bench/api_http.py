"""The REST front door beside the gRPC one, in the same run (issue 13's figures).

- Pod creates/s over HTTPS/JSON (64 concurrent requests on 4 connection pools, as kubectl or client-go would
  send them) vs the same creates through the gRPC API (pbctl's protocol), alternating in slices: goal, HTTP at
  least 0.7 of gRPC;
- `kubectl get pods` on N pods (1,000) end to end, process start to exit, vs `pbctl get pods` the same way
  (best of 3 each, alternating): goal, kubectl at most 1.5x pbctl.

Both go through the same apiserver (its one Rest, storage and watch cache); the difference is the front end
(aiohttp + JSON vs grpc.aio + protobuf) and, for the second figure, the client. `--quick` finishes within 60 s.
The last line printed is one JSON object of figures (bench/report.py).
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from bench import cli
from bench.apiserver import fill, make_pod, pod_creator
from bench.load import interleaved
from bench.procs import admin_config, start_apiserver, start_etcd, stop_processes
from bench.report import emit, row
from pybernetes.api import codec
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client.client import Client
from pybernetes.client.config import ClientConfig

SLICES = 4
BIN = Path(sys.prefix) / "bin"


def http_creator(sessions: list[aiohttp.ClientSession], base: str, prefix: str) -> Callable[[int], Awaitable[Any]]:
    """op(task): POST pod `prefix`-N as JSON through sessions[task % len(sessions)]; raises on a non-201."""
    template = codec.to_dict(make_pod("x"))
    names = itertools.count()
    url = f"{base}/api/v1/namespaces/default/pods"

    async def create(w: int) -> Any:
        body = dict(template, apiVersion="v1", kind="Pod")
        body["metadata"] = dict(template["metadata"], name=f"{prefix}-{next(names)}")
        async with sessions[w % len(sessions)].post(url, json=body) as r:
            if r.status != 201:
                raise RuntimeError(f"HTTP create: {r.status} {await r.text()}")
            return await r.read()

    return create


async def run_cli(argv: list[str]) -> float:
    """Seconds from process start to exit; an error if it fails."""
    t = time.perf_counter()
    p = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL,
                                             stderr=asyncio.subprocess.PIPE)
    _, err = await p.communicate()
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {p.returncode}: {err.decode()[-500:]}")
    return time.perf_counter() - t


def sessions_for(cfg: ClientConfig, n: int, tmp: Path) -> list[aiohttp.ClientSession]:
    """HTTPS sessions with the kubeconfig's credentials: its client certificate (admin.conf's) or token."""
    ctx = ssl.create_default_context(cadata=cfg.ca_pem.decode())
    if cfg.cert_pem:
        (tmp / "client.crt").write_bytes(cfg.cert_pem)
        (tmp / "client.key").write_bytes(cfg.key_pem)
        (tmp / "client.key").chmod(0o600)
        ctx.load_cert_chain(tmp / "client.crt", tmp / "client.key")
    headers = {"Authorization": f"Bearer {cfg.token}"} if cfg.token else {}
    return [aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=64), headers=headers)
            for _ in range(n)]


async def main() -> None:
    ap = cli.arguments(__doc__)
    ap.add_argument("--pods", type=int, default=1000, help="pods listed by kubectl and pbctl (default 1000)")
    args = ap.parse_args()
    seconds = 4.0 if args.quick else 15.0
    kubectl = BIN / "kubectl"
    if not kubectl.exists():
        raise SystemExit(f"{kubectl} missing: run deploy/get-kubectl.sh")
    figures: dict[str, Any] = cli.figures("api_http", args)
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pb-bench-") as tmp:
        etcd = await start_etcd(Path(tmp) / "etcd")
        data, log = Path(tmp) / "apiserver", Path(tmp) / "apiserver.log"
        proc = start_apiserver(data, etcd.endpoint, open(log, "w"))
        try:
            cfg = await admin_config(data, proc, log)
            clients = [Client(cfg.server, token=cfg.token, tls=cfg.tls()) for _ in range(4)]
            sessions = sessions_for(cfg, 4, Path(tmp))
            await clients[0].list(core.Pod, namespace="default")

            print("== pod creates, 64 concurrent: gRPC and HTTPS/JSON, interleaved", flush=True)
            grpc_cr, http_cr = await interleaved(
                "closed", [pod_creator(clients, "grpc"), http_creator(sessions, cfg.https_server, "http")],
                seconds, slices=SLICES, tasks=64)
            figures["grpc_creates"], figures["http_creates"] = grpc_cr, http_cr
            rows["http_creates_per_s"] = row(http_cr["per_s"], grpc_cr["per_s"], "/s", ratio_min=0.7)
            for s in sessions:
                await s.close()

            # Only the list's pods in a namespace of their own: the creates above stay in default.
            await clients[0].create(codec.from_dict({"metadata": {"name": "listed"}}, core.Namespace))
            print(f"== filling namespace listed to {args.pods} pods", flush=True)
            await fill(clients, args.pods, 0, namespace="listed")
            conf = str(data / "admin.conf")
            kube = [str(kubectl), f"--kubeconfig={conf}", f"--cache-dir={tmp}/kcache", "get", "pods", "-n", "listed"]
            pb = [str(BIN / "pbctl"), "--kubeconfig", conf, "get", "pods", "-n", "listed"]
            await run_cli(kube)  # discovery cached, as a user's second command
            k_times, p_times = [], []
            for _ in range(3):
                k_times.append(await run_cli(kube))
                p_times.append(await run_cli(pb))
            figures["kubectl_get_pods_s"], figures["pbctl_get_pods_s"] = (
                [round(t, 3) for t in k_times], [round(t, 3) for t in p_times])
            print(f"   kubectl {min(k_times):.3f} s, pbctl {min(p_times):.3f} s (best of 3)", flush=True)
            rows["kubectl_get_1k_pods_s"] = row(round(min(k_times), 3), round(min(p_times), 3), "s", ratio_max=1.5)
            for c in clients:
                await c.close()
        finally:
            stop_processes([proc])
            await etcd.stop()
    figures["rows"] = rows
    emit(figures)


if __name__ == "__main__":
    asyncio.run(main())
