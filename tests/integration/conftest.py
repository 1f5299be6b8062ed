"""Shared integration fixtures: real processes (etcd, ...) on loopback, random ports, tmp dirs."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pybernetes.client.client import Client
from pybernetes.ports import free_port
from pybernetes.rpc import ChannelTLS
from services.apiserver.storage.embedded import EmbeddedEtcd

__all__ = ["COMPONENT_USERS", "ApiServer", "apiserver", "etcd", "free_port", "https_apiserver"]

# Each component's own identity (user -> groups), authorized by its bootstrap RBAC role; pb-dns runs as the
# kube-system/coredns ServiceAccount, as CoreDNS does in kubeadm's clusters (and pb-dns in the lab).
COMPONENT_USERS: dict[str, tuple[str, ...]] = {
    "system:kube-scheduler": (), "system:kube-controller-manager": (), "system:kube-proxy": (),
    "system:serviceaccount:kube-system:coredns": ("system:serviceaccounts", "system:serviceaccounts:kube-system"),
}


@pytest.fixture
async def etcd(tmp_path: Path) -> AsyncIterator[EmbeddedEtcd]:
    """A fresh single-member etcd (use .endpoint; .kill()/.start() for outages), killed at teardown."""
    server = EmbeddedEtcd(
        tmp_path / "etcd",
        client_port=free_port(),
        peer_port=free_port(),
        progress_notify_interval="1s",  # so bookmark/progress paths are exercised within a test's time
        extra_args=["--heartbeat-interval=20", "--election-timeout=200"],  # single member: elect at once
    )
    await server.start()
    try:
        yield server
    finally:
        await server.kill()


class ApiServer:
    """An in-process pb-apiserver on a real etcd; restartable with its state intact."""

    def __init__(self, etcd: EmbeddedEtcd, data_dir: Path, *, disable_admission: tuple[str, ...] = ("ServiceAccount",),
                 enable_admission: tuple[str, ...] = ()) -> None:
        from services.apiserver.main import Config

        self.etcd = etcd
        # No controller-manager creates `default` ServiceAccounts here, so ServiceAccount admission is off unless a
        # test asks for it (Kubernetes' own integration tests start their apiservers the same way).
        self.cfg = Config(data_dir=data_dir, grpc_port=free_port(), secure_port=free_port(),
                          etcd_servers=[etcd.endpoint],
                          compaction_interval=0, bookmark_interval=1.0, health_port=free_port(),
                          disable_admission_plugins=list(disable_admission),
                          enable_admission_plugins=list(enable_admission))
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self.token = ""
        self.tokens: dict[str, str] = {}  # user -> bearer token (see add_user)
        self.client: Client

    @property
    def address(self) -> str:
        """The gRPC address."""
        return f"127.0.0.1:{self.cfg.grpc_port}"

    @property
    def https_server(self) -> str:
        return f"https://127.0.0.1:{self.cfg.secure_port}"

    @property
    def admin_conf(self) -> Path:
        """The kubeconfig the apiserver wrote for its admin user (REST server, CA, gRPC extension)."""
        return self.cfg.data_dir / "admin.conf"

    @property
    def pki(self) -> Path:
        return self.cfg.data_dir / "pki"

    @property
    def tls(self) -> ChannelTLS:
        """The gRPC channel's TLS: the cluster CA and the admin's client certificate (gRPC requires one)."""
        return ChannelTLS((self.pki / "ca.crt").read_bytes(), (self.pki / "admin.crt").read_bytes(),
                          (self.pki / "admin.key").read_bytes())

    def write_kubeconfig(self, path: Path, token: str | None = None) -> Path:
        """A kubeconfig for this apiserver at `path`: the admin's client certificate, plus `token` when given
        (over gRPC a token names the caller, the certificate then only opens the connection)."""
        from pybernetes.client import config as client_config

        ca = (self.pki / "ca.crt").read_bytes()
        client_config.write_kubeconfig(path, self.https_server, self.address, token or "", ca,
                                       cert=client_config.ClientCert(self.pki / "admin.crt", self.pki / "admin.key"))
        return path

    def add_user(self, name: str, groups: tuple[str, ...] = ()) -> str:
        """A bearer token for `name` in the apiserver's token file (read at start: add users before start or
        restart), the same token again for a user already there."""
        from services.apiserver.auth import TokenAuthenticator

        path = self.cfg.data_dir / "tokens.csv"
        if path.exists():
            for tok, user in TokenAuthenticator.from_file(path).tokens.items():
                if user.name == name:
                    self.tokens[name] = tok
                    return tok
        path.parent.mkdir(parents=True, exist_ok=True)
        tok = secrets.token_hex(16)
        with path.open("a") as f:
            f.write(f'{tok},{name},{name},"{",".join(groups)}"\n')
        self.tokens[name] = tok
        return tok

    async def start(self) -> None:
        from services.apiserver.auth import ensure_admin_token
        from services.apiserver.main import run

        self.token = ensure_admin_token(self.cfg.data_dir / "tokens.csv")
        for user, groups in COMPONENT_USERS.items():
            self.add_user(user, groups)
        ready, self._stop = asyncio.Event(), asyncio.Event()
        self._task = asyncio.create_task(run(self.cfg, ready, self._stop))
        done, _ = await asyncio.wait([self._task, asyncio.create_task(ready.wait())],
                                     return_when=asyncio.FIRST_COMPLETED, timeout=30)
        if self._task in done:
            self._task.result()  # raises the startup error
        assert ready.is_set(), "apiserver did not become ready"
        self.client = Client(self.address, token=self.token, timeout=10, tls=self.tls)

    def new_client(self, user: str = "", **kw: Any) -> Client:
        """A gRPC client as the admin, or as `user` (one of COMPONENT_USERS or added with add_user)."""
        return Client(self.address, **{"token": self.tokens[user] if user else self.token, "tls": self.tls, **kw})

    def kubeconfig_for(self, user: str) -> Path:
        """A kubeconfig naming `user` (one of COMPONENT_USERS or added with add_user) by its token, for a
        component run as itself."""
        return self.write_kubeconfig(self.cfg.data_dir / "users" / f"{user.replace(':', '_')}.conf",
                                     token=self.tokens[user])

    async def stop(self) -> None:
        if self._task is None:
            return
        await self.client.close()
        assert self._stop is not None
        self._stop.set()
        await asyncio.wait_for(self._task, 30)
        self._task = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()


@pytest.fixture
async def apiserver(etcd: EmbeddedEtcd, tmp_path: Path) -> AsyncIterator[ApiServer]:
    srv = ApiServer(etcd, tmp_path / "apiserver")
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def https_apiserver(apiserver: ApiServer) -> ApiServer:
    """The `apiserver` fixture, named for the tests of its Kubernetes REST API (HTTPS is always on:
    cfg.secure_port)."""
    return apiserver
