"""`lab restore`'s steps (lab.backup) on real etcd and pb-apiserver processes recorded as the lab records them,
without network namespaces (free ports on loopback): the data dir swapped, the revision raised, both
processes running again on the snapshot's objects. The whole round trip in the lab is tests/e2e/test_backup.py.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from lab import backup
from lab.health import tcp_ok, wait_for
from lab.processes import spawn
from lab.state import LabState, ProcessRecord
from pbctl.main import run as pbctl
from pybernetes import etcdsnapshot, pkiutil, tls
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client import config as client_config
from pybernetes.client.client import Client
from pybernetes.ports import free_port
from services.apiserver.auth import ensure_admin_token

pytestmark = pytest.mark.skipif(shutil.which("etcdctl") is None, reason="etcdctl not installed")


def admin_kubeconfig(path: Path, pki: Path, grpc_port: int) -> None:
    """An admin kubeconfig for an apiserver on 127.0.0.1:`grpc_port` whose pki dir is `pki`: the CA and an admin
    certificate made before it starts (it reuses them; its gRPC port requires a client certificate)."""
    pkiutil.ensure_apiserver_pki(pki, ["127.0.0.1"])
    pair = pkiutil.ensure_client_cert(pki, "admin", tls.ADMIN_USER, [tls.MASTERS_GROUP])
    client_config.write_kubeconfig(path, "https://127.0.0.1:1", f"127.0.0.1:{grpc_port}", "",
                                   (pki / "ca.crt").read_bytes(), cert=client_config.ClientCert(pair.cert, pair.key))


async def snapshot_between(c: Client, conf: Path, snap: Path) -> None:
    """ConfigMap `in-snapshot`, then `pbctl etcd snapshot save snap`, then ConfigMap `after-snapshot` (in default,
    waited for: the apiserver's port opens before its bootstrap namespaces exist)."""
    for _ in range(100):
        if "default" in {n.metadata.name for n in (await c.list(core.Namespace)).items}:
            break
        await asyncio.sleep(0.1)
    cm = core.ConfigMap()
    cm.metadata.name, cm.metadata.namespace = "in-snapshot", "default"
    await c.create(cm)
    assert await pbctl(["--config", str(conf), "etcd", "snapshot", "save", str(snap)]) == 0
    cm.metadata.name = "after-snapshot"
    await c.create(cm)


async def test_lab_restore_swaps_etcd_data_and_restarts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client_port, peer_port, api_port = free_port(), free_port(), free_port()
    client, peer = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
    data = tmp_path / "control-plane" / "etcd"
    data.mkdir(parents=True)
    data.chmod(0o700)
    st = LabState(dir=str(tmp_path))
    st.save()
    ports_of = {"etcd": client_port, "apiserver": api_port}

    async def start(st: LabState, rec: ProcessRecord, *, timeout: float = 30.0) -> ProcessRecord:
        new = spawn(st, rec.name, rec.component, rec.argv)
        await wait_for(lambda: tcp_ok("127.0.0.1", ports_of[rec.component]), rec.name, timeout=timeout, rec=new)
        return new

    monkeypatch.setattr(backup, "start_recorded", start)
    etcd_argv = ["etcd", "--name=control-plane", f"--data-dir={data}", f"--listen-client-urls={client}",
                 f"--advertise-client-urls={client}", f"--listen-peer-urls={peer}",
                 f"--initial-advertise-peer-urls={peer}", f"--initial-cluster=control-plane={peer}"]
    ensure_admin_token(tmp_path / "tokens.csv")  # the file --token-auth-file names
    api_argv = [str(Path(sys.executable).parent / "pb-apiserver"), f"--data-dir={tmp_path / 'apiserver'}",
                f"--grpc-port={api_port}", "--secure-port=0", f"--etcd-servers={client}",
                f"--token-auth-file={tmp_path / 'tokens.csv'}",
                "--etcd-compaction-interval=0"]
    try:
        await start(st, ProcessRecord("etcd", "etcd", etcd_argv, ""))
        conf = tmp_path / "admin.conf"
        admin_kubeconfig(conf, tmp_path / "apiserver" / "pki", api_port)  # before it starts: it reuses them
        await start(st, ProcessRecord("apiserver", "apiserver", api_argv, ""))

        async def configmaps() -> set[str]:
            for _ in range(100):
                try:
                    async with Client.from_config(client_config.load(str(conf)), timeout=5) as c:
                        return {m.metadata.name for m in (await c.list(core.ConfigMap, namespace="default")).items}
                except Exception:
                    await asyncio.sleep(0.2)
            raise AssertionError("apiserver not answering")

        snap = tmp_path / "etcd.db"
        async with Client.from_config(client_config.load(str(conf)), timeout=10) as c:
            await snapshot_between(c, conf, snap)
            seen = int((await c.list(core.ConfigMap, namespace="default")).resource_version)

        lines: list[str] = []
        assert await backup.restore(tmp_path, snap, lines.append) == 0
        assert "raised etcd's revision" in "\n".join(lines), lines
        assert await configmaps() == {"in-snapshot"}
        async with Client.from_config(client_config.load(str(conf)), timeout=10) as c:
            assert int((await c.list(core.ConfigMap, namespace="default")).resource_version) > seen
        assert [p.name for p in data.parent.iterdir() if p.name.startswith("etcd.before-restore-")]
        assert etcdsnapshot.verify(snap)
        after = LabState.load(tmp_path)
        assert after is not None
        assert {r.component for r in after.processes.values() if r.alive()} == {"etcd", "apiserver"}
    finally:
        loaded = LabState.load(tmp_path)
        for rec in (loaded.processes.values() if loaded else []):
            rec.stop(10)
