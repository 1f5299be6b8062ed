"""Run a single-member etcd as a child process (for tests, benchmarks and single-node clusters).

No auto-compaction is configured: the apiserver compacts etcd itself. Given a `pki_dir` (the apiserver's,
kubeadm's layout) it serves https with etcd/server, peers over https with etcd/peer, and accepts only clients
presenting a certificate signed by etcd/ca (--client-cert-auth): the apiserver's apiserver-etcd-client
(`client_tls`). Without one it is plaintext (tests' and benchmarks' own etcd).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path
from typing import IO

from pybernetes import pkiutil, ports
from services.apiserver.storage.etcd import EtcdClient, EtcdTLS, StorageError

log = logging.getLogger(__name__)

# kubeadm's --snapshot-count for its etcd (etcd 3.4's default: 100,000). etcd holds the raft log since its last
# snapshot in memory, and 5,000 entries more after one (for slow followers): this bounds that log, and the
# memory it takes, at 15,000 entries instead of 105,000. Every etcd pybernetes starts uses it: this one
# (standalone apiserver, deploy/, Vagrant) and the lab's members (lab.commands).
SNAPSHOT_COUNT = 10000
# A lone member's --election-timeout (ms; etcd's default 1000, its floor 5x the 100 ms heartbeat). Nobody
# contests a one-member cluster's leadership: the timeout only delays its first election, which etcd holds until
# a random 1-2 timeouts after start less the ticks it fast-forwards (0.6-0.7 s on average here, 0.3 s with this).
# Members of a real cluster keep etcd's default. Used here and by the lab's single etcd (lab.commands).
SINGLE_MEMBER_ELECTION_TIMEOUT_MS = 500


class EmbeddedEtcd:
    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        client_port: int = ports.ETCD_CLIENT,
        peer_port: int = ports.ETCD_PEER,
        name: str = "pybernetes",
        binary: str = "etcd",
        quota_backend_bytes: int = 0,
        progress_notify_interval: str = "5s",
        metrics_port: int = 0,
        extra_args: list[str] | None = None,
        pki_dir: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.client_port = client_port
        self.peer_port = peer_port
        self.name = name
        self.binary = binary
        self.quota_backend_bytes = quota_backend_bytes  # 0 = etcd's default (2 GiB)
        # etcd 3.4 defaults to 10 min; informers want bookmarks much sooner.
        self.progress_notify_interval = progress_notify_interval
        # etcd's /metrics on a port of its own (as kubeadm does), so scrapers never touch the client port.
        self.metrics_port = metrics_port
        self.extra_args = extra_args or []
        self.pki_dir = pki_dir
        self._proc: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def scheme(self) -> str:
        return "http" if self.pki_dir is None else "https"

    @property
    def endpoint(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.peer_port}"

    @property
    def pki(self) -> pkiutil.EtcdPKI | None:
        """etcd's certificates (created when missing), or None for a plaintext etcd."""
        return None if self.pki_dir is None else pkiutil.ensure_etcd_pki(self.pki_dir, name=self.name)

    @property
    def client_tls(self) -> EtcdTLS | None:
        """What a client needs to reach this etcd: its CA and the apiserver's client certificate."""
        pki = self.pki
        return None if pki is None else EtcdTLS(pki.ca, pki.client)

    def _tls_args(self) -> list[str]:
        pki = self.pki
        if pki is None:
            return []
        return [f"--cert-file={pki.server.cert}", f"--key-file={pki.server.key}", "--client-cert-auth=true",
                f"--trusted-ca-file={pki.ca}", f"--peer-cert-file={pki.peer.cert}", f"--peer-key-file={pki.peer.key}",
                "--peer-client-cert-auth=true", f"--peer-trusted-ca-file={pki.ca}"]

    @property
    def log_path(self) -> Path:
        return self.data_dir / "etcd.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _args(self) -> list[str]:
        client = self.endpoint
        peer = self.peer_url
        return [
            self.binary,
            f"--name={self.name}",
            f"--data-dir={self.data_dir / 'data'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster={self.name}={peer}",
            f"--quota-backend-bytes={self.quota_backend_bytes}",
            f"--snapshot-count={SNAPSHOT_COUNT}",
            f"--election-timeout={SINGLE_MEMBER_ELECTION_TIMEOUT_MS}",
            f"--experimental-watch-progress-notify-interval={self.progress_notify_interval}",
            "--logger=zap",
            "--log-outputs=stderr",
            *([f"--listen-metrics-urls=http://127.0.0.1:{self.metrics_port}"] if self.metrics_port else []),
            *self._tls_args(),
            *self.extra_args,
        ]

    async def start(self, timeout: float = 30.0) -> None:
        """Spawn etcd and wait until its client port answers Maintenance.Status."""
        if self._proc is not None and self._proc.returncode is None:
            raise RuntimeError("etcd already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)  # etcd's data is the apiserver's alone
        client_tls = self.client_tls  # creates etcd's certificates before etcd reads them
        self._log = open(self.log_path, "ab")
        self._proc = await asyncio.create_subprocess_exec(
            *self._args(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,  # a Ctrl-C to the parent shouldn't kill etcd mid-write
        )
        log.info("etcd started", extra={"pid": self._proc.pid, "endpoint": self.endpoint})
        client = EtcdClient([self.endpoint], timeout=1.0, tls=client_tls)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self._proc.returncode is not None:
                    raise RuntimeError(f"etcd exited with {self._proc.returncode}; see {self.log_path}")
                try:
                    # Ready means a leader exists, so the first write doesn't stall on an election.
                    if (await client.status()).leader:
                        return
                except StorageError:
                    pass
                if time.monotonic() > deadline:
                    await self.stop()
                    raise TimeoutError(f"etcd not ready after {timeout}s; see {self.log_path}")
                await asyncio.sleep(0.05)
        finally:
            await client.close()

    async def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                log.warning("etcd ignored SIGTERM, killing", extra={"pid": proc.pid})
                proc.kill()
                await proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    async def kill(self) -> None:
        """SIGKILL at once (crash simulation)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
