"""Component processes for the bench scripts: an etcd, pb-apiserver (or its ceiling, bench/api_relay.py) on it,
and stopping what was started.

Every script measures the apiserver as its own process (as it runs in the lab), so each starts one the
same way: a fresh data dir, free ports, no compaction during the run, stderr to a log file. Components that
run as themselves get a kubeconfig of their own (component_kubeconfig), as the lab issues them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from pybernetes import pkiutil
from pybernetes.client.config import ClientCert, ClientConfig, write_kubeconfig
from pybernetes.client.config import load as load_config
from pybernetes.ports import free_port
from services.apiserver.storage.embedded import EmbeddedEtcd


async def start_etcd(data: Path) -> EmbeddedEtcd:
    """An etcd of the bench's own in `data`, on free loopback ports (plain http, as in every bench), started."""
    etcd = EmbeddedEtcd(data, client_port=free_port(), peer_port=free_port())
    await etcd.start()
    return etcd


def start_apiserver(data: Path, etcd: str, log: IO[Any], *, health_port: int = 0, extra: Sequence[str] = (),
                    service_accounts: bool = False) -> subprocess.Popen[bytes]:
    """pb-apiserver against `etcd`; it writes `data`/admin.conf once it serves (see admin_config). Unless a
    controller manager runs beside it to create each namespace's `default` ServiceAccount (`service_accounts`),
    ServiceAccount admission is off (as in the integration tests); the other default admission plugins run."""
    admission = [] if service_accounts else ["--disable-admission-plugins=ServiceAccount"]
    return subprocess.Popen(
        [sys.executable, "-m", "services.apiserver.main", "--data-dir", str(data), "--grpc-port", str(free_port()),
         "--secure-port", str(free_port()), "--etcd-servers", etcd, "--health-port", str(health_port or free_port()),
         "--etcd-compaction-interval", "0", *admission, *extra],
        stdout=subprocess.DEVNULL, stderr=log)


async def admin_config(data: Path, proc: subprocess.Popen[bytes], log: Path | None = None) -> ClientConfig:
    """The admin.conf the apiserver in `data` writes at start (waits up to 30 s); an error if it exits first."""
    for _ in range(300):
        if (data / "admin.conf").exists():
            break
        if proc.poll() is not None:
            tail = log.read_text()[-2000:] if log is not None and log.exists() else ""
            raise RuntimeError(f"pb-apiserver exited ({proc.returncode}): {tail}")
        await asyncio.sleep(0.1)
    return load_config(str(data / "admin.conf"))


def component_kubeconfig(data: Path, admin: ClientConfig, who: str, user: str,
                         groups: Sequence[str] = ()) -> Path:
    """<data>/<who>.conf: the servers and CA of `admin` (the admin.conf of the apiserver in `data`), its user
    `user` in `groups` by a client certificate <data>/pki/<who>.{crt,key} signed by that apiserver's cluster CA,
    as lab.control_plane.write_credentials issues each component's (pkiutil.ensure_client_cert; named by path)."""
    pair = pkiutil.ensure_client_cert(data / "pki", who, user, groups)
    path = data / f"{who}.conf"
    write_kubeconfig(path, admin.https_server, admin.server, "", admin.ca_pem,
                     cert=ClientCert(pair.cert, pair.key, by_path=True))
    return path


def stop_processes(procs: Iterable[subprocess.Popen[bytes] | None], grace: float = 10) -> None:
    """SIGTERM each, then SIGKILL what has not exited within `grace` seconds."""
    for proc in procs:
        if proc is None:
            continue
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()


def start_relay(etcd: str, port: int, log: IO[Any]) -> subprocess.Popen[bytes]:
    """bench/api_relay.py (the apiserver's ceiling) against `etcd` on `port`; see wait_port."""
    return subprocess.Popen([sys.executable, "-m", "bench.api_relay", "--etcd", etcd, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=log, cwd=Path(__file__).resolve().parent.parent)


async def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Until 127.0.0.1:`port` accepts a connection; an error if `proc` exits first."""
    for _ in range(int(timeout * 10)):
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited ({proc.returncode})")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port} after {timeout} s")


def rss_mb(pid: int) -> float:
    """The resident set of process `pid`, in MiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
