"""Run a single-member etcd as a child process (for tests, benchmarks and single-node clusters).

No auto-compaction is configured: the apiserver compacts etcd itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path
from typing import IO

from pybernetes import ports
from services.apiserver.storage.etcd import EtcdClient, StorageError

log = logging.getLogger(__name__)


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
        self._proc: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

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
            f"--experimental-watch-progress-notify-interval={self.progress_notify_interval}",
            "--logger=zap",
            "--log-outputs=stderr",
            *([f"--listen-metrics-urls=http://127.0.0.1:{self.metrics_port}"] if self.metrics_port else []),
            *self.extra_args,
        ]

    async def start(self, timeout: float = 30.0) -> None:
        """Spawn etcd and wait until its client port answers Maintenance.Status."""
        if self._proc is not None and self._proc.returncode is None:
            raise RuntimeError("etcd already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)  # etcd's data is the apiserver's alone
        self._log = open(self.log_path, "ab")
        self._proc = await asyncio.create_subprocess_exec(
            *self._args(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,  # a Ctrl-C to the parent shouldn't kill etcd mid-write
        )
        log.info("etcd started", extra={"pid": self._proc.pid, "endpoint": self.endpoint})
        client = EtcdClient([self.endpoint], timeout=1.0)
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
