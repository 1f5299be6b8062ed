"""Liveness, readiness and startup probes (exec, httpGet, tcpSocket), one task per container and kind.

exec probes go through the CRI's ExecSync. httpGet and tcpSocket connect to the pod IP, which exists only
inside the node's network namespace: in the lab the kubelet runs there, so a plain socket works. When the
kubelet runs elsewhere (the integration tests run it in the root netns), `--probe-netns PATH` makes
network probes run on a small thread pool whose threads have entered that netns with setns(2)
(namespaces are per thread on Linux, so the rest of the process is untouched).

Results follow Kubernetes: readiness starts False, liveness True, startup False; a result flips after
successThreshold/failureThreshold consecutive outcomes. A change calls `on_change(pod_uid)` so the pod
worker re-syncs (restart on liveness failure, Ready condition on readiness).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import logging
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from node_agent import grpc_probe
from node_agent.cri.client import CRIClient
from node_agent.cri.errors import CRIError
from pybernetes import netns
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta

log = logging.getLogger(__name__)

LIVENESS, READINESS, STARTUP = "Liveness", "Readiness", "Startup"
EventFn = Callable[[core.Pod, str, str, str], None]


def resolve_port(ios: meta.IntOrString, c: core.Container) -> int:
    """IntOrString port: a number, or a named containerPort."""
    if ios.type == 1:
        name = ios.str_val
        for cp in c.ports:
            if cp.name == name:
                return int(cp.container_port)
        if name.isdigit():
            return int(name)
        raise ValueError(f"port {name!r} not found in container ports")
    return int(ios.int_val)


def http_check(host: str, port: int, path: str, scheme: str, headers: dict[str, str],
               timeout: float) -> tuple[bool, str]:
    conn: http.client.HTTPConnection
    if scheme.upper() == "HTTPS":
        import ssl
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        hdrs = {"User-Agent": "kube-probe/1.31", "Accept": "*/*", **headers}
        conn.request("GET", path or "/", headers=hdrs)
        resp = conn.getresponse()
        resp.read(10240)
        if 200 <= resp.status < 400:
            return True, ""
        return False, f"HTTP probe failed with statuscode: {resp.status}"
    except (OSError, http.client.HTTPException) as e:
        return False, f'Get "{scheme.lower() or "http"}://{host}:{port}{path or "/"}": {e}'
    finally:
        conn.close()


def tcp_check(host: str, port: int, timeout: float) -> tuple[bool, str]:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, ""
    except OSError as e:
        return False, f"dial tcp {host}:{port}: {e}"


@dataclass
class _Target:
    pod: core.Pod
    container: core.Container
    cid: str
    started_at: float  # unix seconds
    pod_ip: str


class ProbeManager:
    def __init__(self, cri: CRIClient, on_change: Callable[[str], None], event: EventFn, *,
                 netns_path: str = "") -> None:
        self.cri = cri
        self.on_change = on_change
        self.event = event
        self._netns_path = netns_path

        def init() -> None:
            if netns_path:
                netns.enter(netns_path)

        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="probe", initializer=init)
        self._targets: dict[tuple[str, str], _Target] = {}
        self._tasks: dict[tuple[str, str, str], asyncio.Task[None]] = {}
        self._results: dict[tuple[str, str], bool] = {}  # (cid, kind) -> result

    # -- queries (used by sync/status) --------------------------------------------------------------

    def ready(self, c: core.Container, cid: str) -> bool:
        if not c.HasField("readiness_probe"):
            return self.started(c, cid)
        return self._results.get((cid, READINESS), False)

    def liveness_failed(self, cid: str) -> bool:
        return self._results.get((cid, LIVENESS), True) is False

    def started(self, c: core.Container, cid: str) -> bool:
        if not c.HasField("startup_probe"):
            return True
        return self._results.get((cid, STARTUP), False)

    # -- lifecycle ----------------------------------------------------------------------------------

    def update_pod(self, pod: core.Pod, running: dict[str, tuple[str, float]], pod_ip: str) -> None:
        """Probe the pod's running containers: name -> (container id, started_at unix seconds)."""
        uid = pod.metadata.uid
        for c in pod.spec.containers:
            key = (uid, c.name)
            if c.name in running:
                cid, started = running[c.name]
                self._targets[key] = _Target(pod, c, cid, started, pod_ip)
                for kind, probe, has in ((LIVENESS, c.liveness_probe, c.HasField("liveness_probe")),
                                         (READINESS, c.readiness_probe, c.HasField("readiness_probe")),
                                         (STARTUP, c.startup_probe, c.HasField("startup_probe"))):
                    tkey = (uid, c.name, kind)
                    if has and tkey not in self._tasks:
                        self._tasks[tkey] = asyncio.create_task(self._worker(tkey, probe),
                                                                name=f"probe-{uid}-{c.name}-{kind}")
                    elif not has and tkey in self._tasks:
                        self._tasks.pop(tkey).cancel()
            else:
                self._stop_container(uid, c.name)

    def _stop_container(self, uid: str, name: str) -> None:
        t = self._targets.pop((uid, name), None)
        for kind in (LIVENESS, READINESS, STARTUP):
            task = self._tasks.pop((uid, name, kind), None)
            if task is not None:
                task.cancel()
            if t is not None:
                self._results.pop((t.cid, kind), None)

    def remove_pod(self, uid: str) -> None:
        for uid_, name in [k for k in self._targets if k[0] == uid]:
            self._stop_container(uid_, name)
        for k in [k for k in self._tasks if k[0] == uid]:
            self._tasks.pop(k).cancel()

    async def close(self) -> None:
        for t in self._tasks.values():
            t.cancel()
        for t in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- the probe loop -----------------------------------------------------------------------------

    async def _worker(self, tkey: tuple[str, str, str], probe: core.Probe) -> None:
        uid, name, kind = tkey
        period = probe.period_seconds or 10
        timeout = probe.timeout_seconds or 1
        success_th = probe.success_threshold or 1
        failure_th = probe.failure_threshold or 3
        cid, ok_run, fail_run = "", 0, 0
        while True:
            t = self._targets.get((uid, name))
            if t is None:
                return
            if t.cid != cid:
                cid, ok_run, fail_run = t.cid, 0, 0
            wait = t.started_at + probe.initial_delay_seconds - time.time()
            if wait > 0:
                await asyncio.sleep(min(wait, period))
                continue
            if kind != STARTUP and not self.started(t.container, cid):
                await asyncio.sleep(min(period, 1))
                continue
            if kind == STARTUP and self._results.get((cid, STARTUP)):
                await asyncio.sleep(period)
                continue
            if kind == LIVENESS and self._results.get((cid, LIVENESS)) is False:
                await asyncio.sleep(0.5)  # waiting for the restart to replace the container
                continue
            try:
                ok, msg = await self._run(probe, t, timeout)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                ok, msg = False, str(e)
            if ok:
                ok_run, fail_run = ok_run + 1, 0
            else:
                ok_run, fail_run = 0, fail_run + 1
                self.event(t.pod, "Warning", "Unhealthy", f"{kind} probe failed: {msg}".strip())
            current = self._results.get((cid, kind))
            new: bool | None = None
            if ok and ok_run >= (1 if kind != READINESS else success_th) and current is not True:
                new = True
            elif not ok and fail_run >= failure_th and current is not False:
                new = False
            if new is not None and self._targets.get((uid, name)) is t:
                self._results[(cid, kind)] = new
                log.info("probe result pod=%s/%s container=%s probe=%s result=%s", t.pod.metadata.namespace,
                         t.pod.metadata.name, name, kind, "success" if new else "failure")
                self.on_change(uid)
            await asyncio.sleep(period)

    async def _run(self, probe: core.Probe, t: _Target, timeout: int) -> tuple[bool, str]:
        c = t.container
        if probe.HasField("exec"):
            try:
                res = await self.cri.exec_sync(t.cid, list(probe.exec.command), timeout_seconds=timeout)
            except CRIError as e:
                return False, str(e)
            out = (res.stdout + res.stderr).decode(errors="replace").strip()
            return res.exit_code == 0, f"command exited {res.exit_code}: {out}"[:512]
        loop = asyncio.get_running_loop()
        if probe.HasField("http_get"):
            hg = probe.http_get
            port = resolve_port(hg.port, c)
            headers = {h.name: h.value for h in hg.http_headers}
            return await loop.run_in_executor(
                self._pool, http_check, hg.host or t.pod_ip, port, hg.path, hg.scheme or "HTTP", headers,
                float(timeout))
        if probe.HasField("tcp_socket"):
            ts = probe.tcp_socket
            return await loop.run_in_executor(self._pool, tcp_check, ts.host or t.pod_ip,
                                              resolve_port(ts.port, c), float(timeout))
        if probe.HasField("grpc"):
            address = f"{t.pod_ip}:{probe.grpc.port}"
            service = probe.grpc.service if probe.grpc.HasField("service") else ""
            if self._netns_path:
                return await grpc_probe.check_in_netns(self._netns_path, address, service, float(timeout))
            return await grpc_probe.check(address, service, float(timeout))
        return True, ""

    async def run_handler(self, pod: core.Pod, c: core.Container, cid: str, h: core.LifecycleHandler,
                          pod_ip: str, timeout: float) -> tuple[bool, str]:
        """Run a lifecycle hook (preStop/postStart): exec, httpGet, tcpSocket or sleep."""
        if h.HasField("exec"):
            try:
                res = await self.cri.exec_sync(cid, list(h.exec.command), timeout_seconds=max(int(timeout), 1))
            except CRIError as e:
                return False, str(e)
            return res.exit_code == 0, res.stderr.decode(errors="replace")[:512]
        loop = asyncio.get_running_loop()
        if h.HasField("http_get"):
            hg = h.http_get
            return await loop.run_in_executor(
                self._pool, http_check, hg.host or pod_ip, resolve_port(hg.port, c), hg.path,
                hg.scheme or "HTTP", {x.name: x.value for x in hg.http_headers}, timeout)
        if h.HasField("sleep"):
            await asyncio.sleep(min(h.sleep.seconds, timeout))
            return True, ""
        if h.HasField("tcp_socket"):
            return await loop.run_in_executor(self._pool, tcp_check, h.tcp_socket.host or pod_ip,
                                              resolve_port(h.tcp_socket.port, c), timeout)
        return True, ""
