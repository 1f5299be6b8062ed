"""Health checks and readiness waits for the lab's processes (used by `lab up`, `lab status` and `lab start`).

`health_check(st, rec)` says how to tell that a recorded process serves: an HTTP GET from inside its
namespace (each component's health port from pybernetes.ports; HTTPS verified against the cluster CA where
the component serves /metrics behind client certificates: health paths need none), a CRI Version call for
containerd, a TCP connect for a relay; both made in this process, their sockets opened inside the namespace.
`scraper_tls` reads a /metrics as the lab's Prometheus identity (group system:monitoring). `wait_for` polls a
check until it passes, the process exits, or time runs out.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import LabError
from lab.processes import log_tail
from lab.state import LabState, ProcessRecord
from lab.topology import CP_IP, CP_NETNS, pki_dir
from pybernetes import netns, ports

# Components whose health port is HTTPS in the lab (lab.commands gives them --client-ca-file).
HTTPS_COMPONENTS = frozenset({"apiserver", "scheduler", "controller-manager", "kubelet", "dns"})


@dataclass
class ClientTLS:
    """What the lab's HTTPS requests trust (the cluster CA) and, to read a secure /metrics, present."""

    ca: Path
    cert: Path | None = None
    key: Path | None = None
    _context: ssl.SSLContext | None = field(default=None, init=False, repr=False, compare=False)

    def context(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = ssl.create_default_context(cafile=str(self.ca))
            if self.cert is not None:
                self._context.load_cert_chain(self.cert, self.key)
        return self._context


def cluster_ca(lab_dir: Path) -> ClientTLS:
    """Trusting the lab's cluster CA (its components' serving certificates)."""
    return ClientTLS(pki_dir(lab_dir) / "ca.crt")


def scraper_tls(lab_dir: Path) -> ClientTLS:
    """The lab's Prometheus identity, to GET a secure /metrics as Prometheus does (lab.control_plane makes the
    certificate)."""
    pki = pki_dir(lab_dir)
    return ClientTLS(pki / "ca.crt", pki / "prometheus.crt", pki / "prometheus.key")


async def _connect(netns_name: str | None, host: str, port: int) -> socket.socket:
    """A TCP connection to host:port from inside `netns_name` (None: this process's own namespace)."""
    sock = netns.socket_in(netns_name) if netns_name else socket.socket()
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return sock


async def get(netns_name: str | None, url: str, *, timeout: float = 1.0,
              tls: ClientTLS | None = None) -> tuple[int, bytes]:
    """GET `url` from inside a network namespace (None: this process's own): (status, body). OSError (ssl.SSLError
    among them) or TimeoutError when nothing answered in `timeout`, ValueError when what answered is not HTTP.

    In process: the connection's socket is made inside the namespace (pybernetes.netns), so a request costs no
    nsenter and curl or python processes (11 ms of CPU each, while `lab up` starts ten components on two cores).
    HTTP/1.0, so every server answers with a plain body (never chunked) and closes."""
    u = urllib.parse.urlsplit(url)
    https = u.scheme == "https"
    host, port = u.hostname or "", u.port or (443 if https else 80)
    target = (u.path or "/") + (f"?{u.query}" if u.query else "")
    async with asyncio.timeout(timeout):
        sock = await _connect(netns_name, host, port)
        ctx = (tls.context() if tls is not None else ssl.create_default_context()) if https else None
        reader, writer = await asyncio.open_connection(sock=sock, ssl=ctx, server_hostname=host if ctx else None)
        try:
            writer.write(f"GET {target} HTTP/1.0\r\nHost: {u.netloc}\r\n\r\n".encode())
            answer = await reader.read()
        finally:
            writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    fields = head.split(b" ", 2)
    if len(fields) < 2 or not fields[1].isdigit():
        raise ValueError(f"{url}: not an HTTP answer: {head[:80]!r}")
    return int(fields[1]), body


async def http_get(netns_name: str | None, url: str, *, timeout: float = 1.0,
                   tls: ClientTLS | None = None) -> tuple[bool, str]:
    """`get`, for a check: (2xx?, body, or why it failed)."""
    try:
        status, body = await get(netns_name, url, timeout=timeout, tls=tls)
    except (OSError, TimeoutError, ValueError) as e:
        return False, f"{url}: {e or type(e).__name__}"
    return 200 <= status < 300, body.decode(errors="replace")


async def tcp_ok(host: str, port: int, netns_name: str | None = None) -> bool:
    """Whether host:port accepts a TCP connection (from inside `netns_name`, if given) within a second."""
    try:
        sock = await asyncio.wait_for(_connect(netns_name, host, port), 1.0)
    except (OSError, TimeoutError):
        return False
    sock.close()
    return True


async def wait_for(check: Callable[[], Awaitable[bool]], what: str, *, timeout: float = 30.0,
                   rec: ProcessRecord | None = None, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if rec is not None and not rec.alive():
            raise LabError(f"{what}: process exited; log {rec.log}:\n{log_tail(rec.log)}")
        if time.monotonic() > deadline:
            where = f"; log {rec.log}:\n{log_tail(rec.log)}" if rec is not None else ""
            raise LabError(f"{what}: not ready after {timeout:.0f} s{where}")
        await asyncio.sleep(interval)


def health_check(st: LabState, rec: ProcessRecord) -> Callable[[], Awaitable[bool]] | None:
    """How to tell that a recorded process is serving, or None when only liveness applies."""
    c, ns = rec.component, rec.netns
    urls = {
        "etcd": f"http://127.0.0.1:{ports.ETCD_METRICS}/health",
        "apiserver": f"http://127.0.0.1:{ports.APISERVER_HEALTH}/readyz",
        "scheduler": f"http://127.0.0.1:{ports.SCHEDULER}/healthz",
        "controller-manager": f"http://127.0.0.1:{ports.CONTROLLER_MANAGER}/healthz",
        "kubelet": f"http://127.0.0.1:{ports.KUBELET_HEALTH}/healthz",
        "proxy": f"http://127.0.0.1:{ports.PROXY_HEALTH}/healthz",
        "dns": f"http://127.0.0.1:{ports.DNS_METRICS}/readyz",
        "registry": f"http://{CP_IP}:{ports.REGISTRY}/v2/",
    }
    if c == "etcd":  # each member's own metrics port (its client port wants a client certificate), as kubeadm probes
        urls["etcd"] = next((a.split("=", 1)[1].split(",")[0] + "/health" for a in rec.argv
                             if a.startswith("--listen-metrics-urls=")), urls["etcd"])
    if c in urls:
        url, tls = urls[c], None
        if c in HTTPS_COMPONENTS:
            url, tls = url.replace("http://", "https://", 1), cluster_ca(Path(st.dir))

        async def http() -> bool:
            ok, _ = await http_get(ns, url, tls=tls)
            return ok
        return http
    if c == "containerd":
        sock = st.containerd.get(rec.node, {}).get("socket", "")

        async def cri() -> bool:
            if not sock or not Path(sock).exists():
                return False
            from node_agent.cri.client import CRIClient
            from node_agent.cri.errors import CRIError

            try:
                async with CRIClient(sock) as c:
                    await c.version(deadline=2.0)
                return True
            except CRIError:
                return False
        return cri
    if c == "prometheus":
        async def prom() -> bool:
            ok, _ = await http_get(CP_NETNS, f"http://127.0.0.1:{ports.PROMETHEUS}/-/ready")
            return ok
        return prom
    if c == "relay":
        spec = st.info.get("relays", {}).get(rec.name, {})
        port = int(st.info.get(spec.get("port_key", "relay_port"), 0))

        async def relay() -> bool:
            return await tcp_ok("127.0.0.1", port)
        return relay
    return None


async def wait_healthy(st: LabState, rec: ProcessRecord, what: str, *, timeout: float = 30.0,
                       interval: float = 0.1) -> None:
    """Wait until a just-started process passes its health check (it must have one)."""
    check = health_check(st, rec)
    assert check is not None
    await wait_for(check, what, rec=rec, timeout=timeout, interval=interval)
