"""The kubelet's API (--port, ports.KUBELET): container logs, exec, attach (attach.py), port-forward
(portforward.py) and resource stats, for the apiserver only.

It serves TLS only (`credentials`: --tls-cert-file/--tls-private-key-file, else a self-signed certificate under
<root-dir>/pki, as kubelets make one). With --client-ca-file a client certificate signed by that CA is required
at the handshake, and only the apiserver's kubelet client (kube-apiserver-kubelet-client, or system:masters) is
allowed: Kubernetes asks the apiserver whether the user may use nodes/proxy, and only those two may by default.
Without a client CA, the tokens of --authentication-token-file are checked instead; with neither, nothing is
allowed.

Logs are read from the CRI log files (`<timestamp> <stream> <P|F> <line>`), with --tail, --timestamps,
--previous (the last exited instance) and --follow (until the container exits). Exec runs through
containerd's task exec (`ctr tasks exec`), with stdin and a pseudo-terminal when asked, so interactive
shells work; the exit code is the stream's last message. Stats is the summary `pbctl top` reads: node
CPU/memory from /proc/stat and /proc/meminfo, per-container usage from CRI ListContainerStats (CPU as a
rate between this kubelet's samples unless the runtime reports usage_nano_cores; memory working set).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import pty
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from pybernetes import certinfo, errors, rpc, tls
from pybernetes.api.rpc.v1 import rpc_pb2 as pb
from pybernetes.api.rpc.v1 import rpc_pb2_grpc as pb_grpc
from pybernetes.rpc import AUTH_HEADER

from . import portforward
from .cri import api_pb2 as cri
from .cri.client import CRIClient
from .pressure import meminfo
from .runtime import CONTAINER_NAME, POD_NAME, POD_NAMESPACE, POD_UID, RESTART_COUNT

log = logging.getLogger("pybernetes.kubelet.server")


def parse_cri_line(line: bytes) -> tuple[str, str, bool, bytes] | None:
    """(timestamp, stream, full, text) of one CRI log line, or None when malformed."""
    parts = line.split(b" ", 3)
    if len(parts) < 4:
        return None
    ts, stream, tag, text = parts
    return ts.decode(), stream.decode(), tag.startswith(b"F"), text


def render(lines: list[bytes], timestamps: bool) -> bytes:
    out = bytearray()
    for raw in lines:
        parsed = parse_cri_line(raw.rstrip(b"\n"))
        if parsed is None:
            continue
        ts, _, full, text = parsed
        if timestamps:
            out += ts.encode() + b" "
        out += text + (b"\n" if full else b"")
    return bytes(out)


@dataclass
class CPUSample:
    """Cumulative CPU time (ns) at a wall time (ns)."""

    time: int
    usage: int


def rate(prev: CPUSample | None, cur: CPUSample) -> int | None:
    """nanocores between two samples, or None when there is no usable earlier sample."""
    if prev is None or cur.time <= prev.time or cur.usage < prev.usage:
        return None
    return (cur.usage - prev.usage) * 1_000_000_000 // (cur.time - prev.time)


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def node_cpu_sample(stat: str | None = None) -> CPUSample:
    """Busy CPU time of the whole machine from /proc/stat (everything but idle and iowait)."""
    text = stat if stat is not None else Path("/proc/stat").read_text()
    fields = [int(x) for x in text.splitlines()[0].split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already in user/nice)
    busy = sum(fields[:8]) - fields[3] - (fields[4] if len(fields) > 4 else 0)
    return CPUSample(time.time_ns(), busy * 1_000_000_000 // _CLK_TCK)


def node_memory(text: str | None = None) -> pb.MemoryUsage:
    """Working set as the kubelet reports it for the node: total minus available."""
    kv = meminfo(text)
    total, avail = kv.get("MemTotal", 0), kv.get("MemAvailable", kv.get("MemFree", 0))
    used = max(total - avail, 0)
    return pb.MemoryUsage(time=time.time_ns(), working_set_bytes=used, usage_bytes=used, available_bytes=avail,
                          rss_bytes=max(total - kv.get("MemFree", 0) - kv.get("Buffers", 0) - kv.get("Cached", 0),
                                        0))


# The second sample when there is no earlier one: long enough for a meaningful rate, short for a CLI.
FIRST_SAMPLE_WINDOW = 0.25


# Who may use the kubelet API: kubeadm binds its apiserver's kubelet client to system:kubelet-api-admin, and
# system:masters may do anything; every other identity the cluster CA vouches for (nodes, components) may not.
API_USERS = frozenset({tls.KUBELET_CLIENT_NAME})
API_GROUPS = frozenset({tls.MASTERS_GROUP})


def server_credentials(pair: tls.CertPair, client_ca: Path | None) -> grpc.ServerCredentials:
    """TLS with the kubelet's serving certificate; with `client_ca`, a client certificate it signed is required."""
    return grpc.ssl_server_credentials([(pair.key.read_bytes(), pair.cert.read_bytes())],
                                       root_certificates=client_ca.read_bytes() if client_ca else None,
                                       require_client_auth=client_ca is not None)


class KubeletAPI(pb_grpc.KubeletServicer):
    def __init__(self, cri_client: CRIClient, containerd_socket: str, *, tokens: frozenset[str] = frozenset(),
                 client_certs: bool = False, node_name: str = "", runtime_netns: str = "") -> None:
        self.cri = cri_client
        self.runtime_netns = runtime_netns  # where the runtime's streaming server listens, if not here
        self.socket = containerd_socket
        self.tokens = tokens
        self.client_certs = client_certs  # the handshake verified one; _check authorizes its identity
        self.node_name = node_name
        self._node_cpu: CPUSample | None = None
        self._cpu: dict[str, CPUSample] = {}
        self._stats_lock = asyncio.Lock()

    def _check(self, context: Any) -> None:
        if self.client_certs:
            pems = (context.auth_context() or {}).get("x509_pem_cert") or []
            if not pems:
                raise errors.Unauthorized("Unauthorized: the kubelet API needs a client certificate")
            user, groups = tls.identity(certinfo.pem_to_der(pems[0]))
            if user in API_USERS or API_GROUPS & set(groups):
                return
            raise errors.Forbidden(f'Forbidden (user={user}, resource=nodes, subresource=proxy): '
                                   f'only the apiserver may use the kubelet API')
        if not self.tokens:
            raise errors.Unauthorized("Unauthorized: this kubelet has neither --client-ca-file nor "
                                      "--authentication-token-file, so its API accepts no one")
        for key, value in context.invocation_metadata() or ():
            if key == AUTH_HEADER and str(value).removeprefix("Bearer ").strip() in self.tokens:
                return
        raise errors.Unauthorized("Unauthorized: the kubelet serves the apiserver only")

    async def _find(self, namespace: str, name: str, container: str, previous: bool) -> cri.Container:
        found = await self.cri.list_containers(label_selector={POD_NAMESPACE: namespace, POD_NAME: name,
                                                               CONTAINER_NAME: container})
        if not found:
            raise errors.NotFound(f'container "{container}" in pod "{name}" is not available')
        found.sort(key=lambda c: (int(c.labels.get(RESTART_COUNT, c.annotations.get(RESTART_COUNT, "0")) or 0),
                                  c.created_at))
        if previous:
            if len(found) < 2:
                raise errors.BadRequest(f'previous terminated container "{container}" in pod "{name}" not found')
            return found[-2]
        return found[-1]

    async def ContainerLogs(self, request: pb.PodLogsRequest, context: Any) -> AsyncIterator[pb.LogChunk]:
        try:
            self._check(context)
            c = await self._find(request.namespace, request.name, request.container, request.previous)
            status = await self.cri.container_status(c.id)
        except errors.ApiError as e:
            await rpc.abort(context, e)
        path = Path(status.log_path)
        since = 0.0
        if request.since_seconds > 0:
            since = dt.datetime.now(dt.UTC).timestamp() - request.since_seconds
        lines = path.read_bytes().splitlines(keepends=True) if path.exists() else []
        if since:
            lines = [ln for ln in lines if _ts(ln) >= since]
        if request.tail_lines >= 0:
            lines = lines[-request.tail_lines:] if request.tail_lines else []
        if lines:
            yield pb.LogChunk(data=render(lines, request.timestamps))
        if not request.follow or request.previous:
            return
        offset = path.stat().st_size if path.exists() else 0
        pending = b""
        while True:
            await asyncio.sleep(0.2)
            size = path.stat().st_size if path.exists() else 0
            if size > offset:
                with path.open("rb") as f:
                    f.seek(offset)
                    data = pending + f.read(size - offset)
                offset = size
                complete, _, pending = data.rpartition(b"\n")
                if complete:
                    yield pb.LogChunk(data=render((complete + b"\n").splitlines(keepends=True), request.timestamps))
                continue
            st = await self.cri.container_status(c.id)
            if st.state in (cri.CONTAINER_EXITED, cri.CONTAINER_UNKNOWN):
                return

    async def Stats(self, request: pb.StatsRequest, context: Any) -> pb.StatsSummary:
        try:
            self._check(context)
            async with self._stats_lock:
                return await self.summary()
        except errors.ApiError as e:
            await rpc.abort(context, e)
        except Exception as e:  # CRI errors, unreadable /proc
            err = errors.InternalError(f"stats: {e}")
            await rpc.abort(context, err)

    async def _sample(self) -> tuple[CPUSample, list[cri.ContainerStats]]:
        return node_cpu_sample(), await self.cri.list_container_stats()

    async def summary(self) -> pb.StatsSummary:
        """Node and per-pod usage; CPU rates need an earlier sample, so the first call takes two."""
        node_cpu, stats = await self._sample()
        running = {c.id for c in await self.cri.list_containers(state=cri.CONTAINER_RUNNING)}
        stats = [s for s in stats if s.attributes.id in running]
        need_second = self._node_cpu is None or any(
            s.attributes.id not in self._cpu and not s.cpu.usage_nano_cores.value for s in stats)
        if need_second:
            self._remember(node_cpu, stats)
            await asyncio.sleep(FIRST_SAMPLE_WINDOW)
            node_cpu, stats = await self._sample()
            stats = [s for s in stats if s.attributes.id in running]
        out = pb.StatsSummary()
        out.node.node_name = self.node_name
        out.node.cpu.time, out.node.cpu.usage_core_nano_seconds = node_cpu.time, node_cpu.usage
        out.node.cpu.usage_nano_cores = rate(self._node_cpu, node_cpu) or 0
        out.node.memory.CopyFrom(node_memory())
        pods: dict[tuple[str, str], pb.PodUsage] = {}
        for s in sorted(stats, key=lambda x: x.attributes.labels.get(CONTAINER_NAME, "")):
            labels = s.attributes.labels
            key = (labels.get(POD_NAMESPACE, ""), labels.get(POD_NAME, ""))
            if not key[1]:
                continue
            pod = pods.get(key)
            if pod is None:
                pod = pods[key] = pb.PodUsage(namespace=key[0], name=key[1], uid=labels.get(POD_UID, ""))
            c = pod.containers.add(name=labels.get(CONTAINER_NAME, s.attributes.metadata.name))
            ts = s.cpu.timestamp or time.time_ns()
            cur = CPUSample(ts, s.cpu.usage_core_nano_seconds.value)
            nano = s.cpu.usage_nano_cores.value or rate(self._cpu.get(s.attributes.id), cur) or 0
            c.cpu.time, c.cpu.usage_core_nano_seconds, c.cpu.usage_nano_cores = ts, cur.usage, nano
            m = s.memory
            c.memory.time = m.timestamp or ts
            c.memory.working_set_bytes, c.memory.usage_bytes = m.working_set_bytes.value, m.usage_bytes.value
            c.memory.available_bytes, c.memory.rss_bytes = m.available_bytes.value, m.rss_bytes.value
            pod.cpu.time = max(pod.cpu.time, c.cpu.time)
            pod.cpu.usage_nano_cores += nano
            pod.cpu.usage_core_nano_seconds += cur.usage
            pod.memory.time = max(pod.memory.time, c.memory.time)
            pod.memory.working_set_bytes += c.memory.working_set_bytes
            pod.memory.usage_bytes += c.memory.usage_bytes
            pod.memory.rss_bytes += c.memory.rss_bytes
        out.pods.extend(pods[k] for k in sorted(pods))
        self._remember(node_cpu, stats)
        return out

    def _remember(self, node_cpu: CPUSample, stats: list[cri.ContainerStats]) -> None:
        self._node_cpu = node_cpu
        self._cpu = {s.attributes.id: CPUSample(s.cpu.timestamp or time.time_ns(), s.cpu.usage_core_nano_seconds.value)
                     for s in stats}

    async def Exec(self, request_iterator: AsyncIterator[pb.ExecInput], context: Any) -> AsyncIterator[pb.ExecOutput]:
        try:
            self._check(context)
            first = await anext(request_iterator, None)
            if first is None or not first.HasField("start"):
                raise errors.BadRequest("exec: the first message must say what to run")
            start = first.start
            c = await self._find(start.namespace, start.name, start.container, False)
            if c.state != cri.CONTAINER_RUNNING:
                raise errors.BadRequest(f"container {start.container} is not running")
        except errors.ApiError as e:
            await rpc.abort(context, e)
        if start.attach:
            # aiohttp's WebSocket client (attach's only user) costs every kubelet 135 ms and 8 MiB at start
            from . import attach

            try:
                async for out in attach.attach(self.cri, c.id, start, request_iterator, self.runtime_netns):
                    yield out
            except errors.ApiError as e:
                await rpc.abort(context, e)
            return
        async for out in self._exec(c.id, list(start.command), start.stdin, start.tty, request_iterator):
            yield out

    async def PortForward(self, request_iterator: AsyncIterator[pb.PortForwardInput],
                          context: Any) -> AsyncIterator[pb.PortForwardOutput]:
        try:
            self._check(context)
            first = await anext(request_iterator, None)
            if first is None or not first.HasField("start"):
                raise errors.BadRequest("port-forward: the first message must name the pod and the port")
            async for out in portforward.forward(self.cri, first.start, request_iterator):
                yield out
        except errors.ApiError as e:
            await rpc.abort(context, e)

    async def _exec(self, container_id: str, command: list[str], stdin: bool, tty: bool,
                    inputs: AsyncIterator[pb.ExecInput]) -> AsyncIterator[pb.ExecOutput]:
        argv = ["ctr", "--address", self.socket, "-n", "k8s.io", "tasks", "exec",
                "--exec-id", f"pb-exec-{secrets.token_hex(6)}"]
        if tty:
            argv.append("--tty")
        argv += [container_id, *command]
        queue: asyncio.Queue[pb.ExecOutput | None] = asyncio.Queue()
        master = -1
        if tty:
            master, slave = pty.openpty()
            proc = await asyncio.create_subprocess_exec(*argv, stdin=slave, stdout=slave, stderr=slave,
                                                        start_new_session=True)
            os.close(slave)
        else:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        loop = asyncio.get_running_loop()

        async def pump(reader: asyncio.StreamReader, field: str) -> None:
            while data := await reader.read(65536):
                await queue.put(pb.ExecOutput(stdout=data) if field == "stdout" else pb.ExecOutput(stderr=data))

        async def pump_pty() -> None:
            while True:
                try:
                    data = await loop.run_in_executor(None, os.read, master, 65536)
                except OSError:
                    return
                if not data:
                    return
                await queue.put(pb.ExecOutput(stdout=data))

        async def feed() -> None:
            async for msg in inputs:
                which = msg.WhichOneof("input")
                if which == "stdin":
                    if tty:
                        os.write(master, msg.stdin)
                    elif proc.stdin is not None:
                        proc.stdin.write(msg.stdin)
                        await proc.stdin.drain()
                elif which == "close_stdin":
                    if not tty and proc.stdin is not None:
                        proc.stdin.close()
                    if tty:
                        os.write(master, b"\x04")

        if tty:
            readers = [asyncio.create_task(pump_pty())]
        else:
            assert proc.stdout is not None and proc.stderr is not None  # both are PIPEs
            readers = [asyncio.create_task(pump(proc.stdout, "stdout")),
                       asyncio.create_task(pump(proc.stderr, "stderr"))]
        feeder = asyncio.create_task(feed())

        async def finish() -> None:
            code = await proc.wait()
            if not tty:
                await asyncio.gather(*readers, return_exceptions=True)
            else:
                await asyncio.sleep(0.05)  # let the pty drain
            await queue.put(pb.ExecOutput(exit_code=code))
            await queue.put(None)

        waiter = asyncio.create_task(finish())
        try:
            while (item := await queue.get()) is not None:
                yield item
        finally:
            for t in (feeder, waiter, *readers):
                t.cancel()
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            if master >= 0:
                with contextlib.suppress(OSError):
                    os.close(master)


def _ts(line: bytes) -> float:
    try:
        return dt.datetime.fromisoformat(line.split(b" ", 1)[0].decode()[:26] + "+00:00").timestamp()
    except ValueError:
        return 0.0


async def serve(api: KubeletAPI, address: str, credentials: grpc.ServerCredentials) -> grpc.aio.Server:
    srv = rpc.server()
    pb_grpc.add_KubeletServicer_to_server(api, srv)
    if srv.add_secure_port(address, credentials) == 0:
        raise OSError(f"cannot listen on {address}")
    await srv.start()
    log.info("kubelet API serving address=%s tls=true client_certificates=%s", address, api.client_certs)
    return srv
