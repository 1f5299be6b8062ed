"""Health checks and readiness waits for the lab's processes (used by `lab up`, `lab status` and `lab start`).

`health_check(st, rec)` says how to tell that a recorded process serves: an HTTP GET from inside its
namespace (each component's health port from pybernetes.ports; HTTPS verified against the cluster CA where
the component serves /metrics behind client certificates: health paths need none), a CRI Version call for
containerd, a TCP connect for a relay. `scrape_args` are curl's arguments to read a /metrics as the lab's
Prometheus identity (group system:monitoring). `wait_for` polls a check until it passes, the process exits,
or time runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from lab import netns
from lab.errors import LabError
from lab.processes import log_tail, run_cmd
from lab.state import LabState, ProcessRecord
from lab.topology import CP_IP, CP_NETNS, pki_dir
from pybernetes import ports

# Components whose health port is HTTPS in the lab (lab.commands gives them --client-ca-file).
HTTPS_COMPONENTS = frozenset({"apiserver", "scheduler", "controller-manager", "kubelet", "dns"})


def ca_args(lab_dir: Path) -> list[str]:
    """curl's arguments trusting the lab's cluster CA."""
    return ["--cacert", str(pki_dir(lab_dir) / "ca.crt")]  # curl takes no --flag=value


def scrape_args(lab_dir: Path) -> list[str]:
    """curl's arguments to GET a secure /metrics as Prometheus does (lab.control_plane makes the certificate)."""
    pki = pki_dir(lab_dir)
    return [*ca_args(lab_dir), "--cert", str(pki / "prometheus.crt"), "--key", str(pki / "prometheus.key")]


async def http_get(netns_name: str | None, url: str, *, timeout: float = 1.0,
                   curl_args: Sequence[str] = ()) -> tuple[bool, str]:
    """GET `url` from inside a network namespace (curl through nsenter, with `curl_args`); (2xx?, body)."""
    cmd = ["curl", "-sS", "--max-time", str(timeout), *curl_args, "-w", "\n%{http_code}", url]
    code, out = await run_cmd(netns.nsenter(netns_name, cmd) if netns_name else cmd, check=False,
                              timeout=timeout + 5)
    if code != 0:
        return False, out
    body, _, status = out.rpartition("\n")
    return status.startswith("2"), body


async def tcp_ok(host: str, port: int) -> bool:
    try:
        _, w = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError):
        return False
    w.close()
    with contextlib.suppress(OSError):
        await w.wait_closed()
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
        "registry-forwarder": f"http://127.0.0.1:{ports.REGISTRY}/v2/",
    }
    if c == "etcd":  # each member's own metrics port (its client port wants a client certificate), as kubeadm probes
        urls["etcd"] = next((a.split("=", 1)[1].split(",")[0] + "/health" for a in rec.argv
                             if a.startswith("--listen-metrics-urls=")), urls["etcd"])
    if c in urls:
        url, args = urls[c], []
        if c in HTTPS_COMPONENTS:
            url, args = url.replace("http://", "https://", 1), ca_args(Path(st.dir))

        async def http() -> bool:
            ok, _ = await http_get(ns, url, curl_args=args)
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
