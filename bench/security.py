"""What security costs the API (issue 18's figures), each beside the same work with security off, in the same run.

- Pod creates/s, 64 concurrent clients, over mTLS as a non-admin user (`bench-creator`, a client certificate
  with no groups, bound to the `edit` ClusterRole in `default` by a RoleBinding: Node then RBAC decide each
  request; system:masters would skip both) vs the same creates with security off, alternating in slices; on
  gRPC (goal: ratio >= 0.8) and on REST (HTTPS vs plain HTTP, same goal);
- the cost of a new connection: from opening it to the first answer (a new gRPC channel and one Get; a new
  HTTPS connection presenting the client certificate and one GET) vs the same over plaintext, the two
  alternating connection by connection; median and p99 over N connections, and the difference in ms.

"Security off" is TLS, authentication and authorization off: a second pb-apiserver started with the
bench/test-only plaintext listeners on loopback (--insecure-grpc-port, --insecure-port; see
services/apiserver/insecure.py) and `--anonymous-auth=true --authorization-mode=AlwaysAllow` (the requests are
system:anonymous, allowed by AlwaysAllow). Everything else is the same on both: the same flags otherwise
(admission: the default plugins but ServiceAccount, as every bench; audit: off, its default, so neither pays
it), an etcd of its own each (plain http on loopback, as in every bench: the apiserver-to-etcd link is not
what this compares), the same pod, the same client code. The idle apiserver of each pair does nothing while
the other is measured. `--quick` finishes within 60 s. The last line printed is one JSON object of figures
(bench/report.py).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from bench import cli
from bench.api_http import http_creator
from bench.apiserver import make_pod, pod_creator
from bench.load import interleaved, pct
from bench.procs import admin_config, start_apiserver, stop_processes, wait_port
from bench.report import emit, row
from pybernetes import errors, pkiutil, tls
from pybernetes.api import codec
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.rbac.v1 import rbac_pb2 as rbac
from pybernetes.client.client import Client
from pybernetes.ports import free_port
from pybernetes.rpc import ChannelTLS
from services.apiserver.storage.embedded import EmbeddedEtcd

SLICES = 4
USER = "bench-creator"  # no groups: authorized by RBAC through its RoleBinding, not by system:masters
SECURITY_OFF = ["--anonymous-auth=true", "--authorization-mode=AlwaysAllow"]


async def bind_creator(admin: Client, creator: Client) -> None:
    """RoleBinding default/bench-creator -> ClusterRole edit; returns once the creator's create is allowed (the
    authorizer learns bindings through a watch) and its pod `probe` exists (the connection figures get it)."""
    await admin.create(codec.from_dict({
        "metadata": {"name": USER, "namespace": "default"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": USER}]}, rbac.RoleBinding))
    for _ in range(100):
        try:
            await creator.create(make_pod("probe"))
            return
        except errors.Forbidden:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{USER} is still forbidden to create pods 10 s after its RoleBinding")


async def first_answers(ops: list[Callable[[], Awaitable[object]]], n: int) -> list[list[float]]:
    """Each op `n` times, alternating op by op (A B A B ...), sequentially; the seconds each took."""
    times: list[list[float]] = [[] for _ in ops]
    for _ in range(n):
        for op, ts in zip(ops, times, strict=True):
            t = time.perf_counter()
            await op()
            ts.append(time.perf_counter() - t)
    return times


def summary(times: list[float]) -> dict[str, Any]:
    return {"n": len(times), "p50_ms": pct(times, 0.5), "p99_ms": pct(times, 0.99)}


async def main() -> None:
    ap = cli.arguments(__doc__)
    ap.add_argument("--connections", type=int, default=0, help="new connections per kind (default 500; 100 quick)")
    args = ap.parse_args()
    seconds = 4.0 if args.quick else 15.0
    n_conn = args.connections or (100 if args.quick else 500)
    figures: dict[str, Any] = cli.figures("security", args,
                                                loadavg_start=[round(x, 2) for x in os.getloadavg()])
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pb-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        etcds = [EmbeddedEtcd(tmp / f"etcd-{s}", client_port=free_port(), peer_port=free_port())
                 for s in ("secure", "plain")]
        await asyncio.gather(*(e.start() for e in etcds))
        grpc_port, http_port = free_port(), free_port()
        data = [tmp / "secure", tmp / "plain"]
        logs = [tmp / "secure.log", tmp / "plain.log"]
        procs = [start_apiserver(data[0], etcds[0].endpoint, open(logs[0], "w")),
                 start_apiserver(data[1], etcds[1].endpoint, open(logs[1], "w"), extra=[
                     f"--insecure-grpc-port={grpc_port}", f"--insecure-port={http_port}", *SECURITY_OFF])]
        sessions: list[aiohttp.ClientSession] = []
        try:
            cfg, _ = await asyncio.gather(admin_config(data[0], procs[0], logs[0]),
                                          admin_config(data[1], procs[1], logs[1]))
            await wait_port(grpc_port, procs[1])
            await wait_port(http_port, procs[1])
            pair = pkiutil.ensure_client_cert(data[0] / "pki", USER, USER)
            creator_tls = ChannelTLS(cfg.ca_pem, pair.cert.read_bytes(), pair.key.read_bytes())
            plain_grpc, plain_http = f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{http_port}"
            secure = [Client(cfg.server, tls=creator_tls) for _ in range(4)]
            plain = [Client(plain_grpc) for _ in range(4)]
            async with Client(cfg.server, token=cfg.token, tls=cfg.tls()) as admin:
                await bind_creator(admin, secure[0])
            await plain[0].create(make_pod("probe"))
            figures["user"] = USER

            print("== pod creates, 64 concurrent, gRPC: plaintext/anonymous/AlwaysAllow and mTLS/x509/RBAC, "
                  "interleaved", flush=True)
            off, on = await interleaved("closed", [pod_creator(plain, "plain"), pod_creator(secure, "secure")],
                                        seconds, slices=SLICES, tasks=64)
            figures["grpc_plain_creates"], figures["grpc_secure_creates"] = off, on
            rows["grpc_creates_per_s"] = row(on["per_s"], off["per_s"], "/s", ratio_min=0.8)

            print("== pod creates, 64 concurrent, REST: HTTP/anonymous/AlwaysAllow and HTTPS/x509/RBAC, "
                  "interleaved", flush=True)
            ssl_ctx = tls.client_context(cfg.ca_pem, pair)
            sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) for _ in range(4)]
            sessions += [aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_ctx, limit=64))
                         for _ in range(4)]
            off, on = await interleaved(
                "closed", [http_creator(sessions[:4], plain_http, "http-plain"),
                           http_creator(sessions[4:], cfg.https_server, "http-secure")],
                seconds, slices=SLICES, tasks=64)
            figures["http_plain_creates"], figures["http_secure_creates"] = off, on
            rows["http_creates_per_s"] = row(on["per_s"], off["per_s"], "/s", ratio_min=0.8)

            print(f"== new connection to first answer, {n_conn} each: gRPC channel + Get, HTTP(S) connection + "
                  "GET, plaintext and TLS alternating", flush=True)

            def grpc_get(target: str, ctls: ChannelTLS | None) -> Callable[[], Awaitable[object]]:
                async def op() -> None:
                    async with Client(target, tls=ctls) as c:
                        await c.get(core.Pod, "probe", namespace="default")
                return op

            # force_close: every request opens (and closes) a connection of its own; no TLS session resumption.
            one_shot = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)),
                        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_ctx, force_close=True))]
            sessions += one_shot

            def http_get(session: aiohttp.ClientSession, base: str) -> Callable[[], Awaitable[object]]:
                url = f"{base}/api/v1/namespaces/default/pods/probe"

                async def op() -> bytes:
                    async with session.get(url) as r:
                        if r.status != 200:
                            raise RuntimeError(f"GET {url}: {r.status} {await r.text()}")
                        return await r.read()
                return op

            g_off, g_on = await first_answers([grpc_get(plain_grpc, None), grpc_get(cfg.server, creator_tls)],
                                              n_conn)
            h_off, h_on = await first_answers([http_get(one_shot[0], plain_http),
                                               http_get(one_shot[1], cfg.https_server)], n_conn)
            for front, off_t, on_t in (("grpc", g_off, g_on), ("https", h_off, h_on)):
                s_off, s_on = summary(off_t), summary(on_t)
                figures[f"{front}_new_connection"] = {
                    "plain": s_off, "tls": s_on, "cost_p50_ms": round(s_on["p50_ms"] - s_off["p50_ms"], 2),
                    "cost_p99_ms": round(s_on["p99_ms"] - s_off["p99_ms"], 2)}
                rows[f"{front}_new_connection_p50_ms"] = row(s_on["p50_ms"], s_off["p50_ms"], "ms")
                rows[f"{front}_new_connection_p99_ms"] = row(s_on["p99_ms"], s_off["p99_ms"], "ms")
                print(f"   {front}: TLS p50 {s_on['p50_ms']} ms, p99 {s_on['p99_ms']} ms; plaintext p50 "
                      f"{s_off['p50_ms']} ms, p99 {s_off['p99_ms']} ms; cost per new connection "
                      f"{figures[f'{front}_new_connection']['cost_p50_ms']} ms (p50)", flush=True)
            for c in (*secure, *plain):
                await c.close()
        finally:
            for s in sessions:
                await s.close()
            stop_processes(procs)
            await asyncio.gather(*(e.stop() for e in etcds))
    figures["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    figures["rows"] = rows
    emit(figures)


if __name__ == "__main__":
    asyncio.run(main())
