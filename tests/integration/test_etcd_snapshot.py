"""Backup and restore with the real apiserver and its embedded etcd: `pbctl etcd snapshot save` through the
apiserver, `status` of the file, `pb-apiserver --restore-from` puts every object back at the snapshot's
state, and clients' old resourceVersions answer Expired so their informers re-list."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from pbctl.main import run as pbctl
from pybernetes import errors, etcdsnapshot
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client import config as client_config
from pybernetes.client.client import Client
from pybernetes.ports import free_port
from services.apiserver.main import Config
from services.apiserver.main import run as run_apiserver
from services.apiserver.storage.embedded import EmbeddedEtcd
from services.apiserver.storage.etcd import EtcdClient


class Standalone:
    """An in-process pb-apiserver with its embedded etcd (no --etcd-servers), restartable."""

    def __init__(self, data_dir: Path) -> None:
        self.cfg = Config(data_dir=data_dir, grpc_port=free_port(), secure_port=free_port(), compaction_interval=0)
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    @property
    def admin_conf(self) -> Path:
        return self.cfg.data_dir / "admin.conf"

    async def start(self, restore_from: Path | None = None) -> None:
        self.cfg.restore_from = restore_from
        ready, self._stop = asyncio.Event(), asyncio.Event()
        self._task = asyncio.create_task(run_apiserver(self.cfg, ready, self._stop))
        waiter = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait([self._task, waiter], return_when=asyncio.FIRST_COMPLETED, timeout=60)
        waiter.cancel()
        if self._task in done:
            self._task.result()
        assert ready.is_set(), "apiserver did not become ready"

    async def stop(self) -> None:
        if self._task is not None:
            self._stop.set()
            await asyncio.wait_for(self._task, 30)
            self._task = None

    def client(self, token: str | None = None) -> Client:
        """The admin (admin.conf's client certificate), or the user of `token` over that connection."""
        cfg = client_config.load(str(self.admin_conf))
        return Client(cfg.server, token=token or "", tls=cfg.tls(), timeout=10)


def configmap(name: str, value: str) -> core.ConfigMap:
    cm = core.ConfigMap()
    cm.metadata.name, cm.metadata.namespace = name, "backup"
    cm.data["v"] = value
    return cm


async def names(c: Client) -> dict[str, str]:
    return {cm.metadata.name: cm.data["v"] for cm in (await c.list(core.ConfigMap, namespace="backup")).items}


async def test_save_status_restore_standalone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    srv = Standalone(tmp_path / "apiserver")
    snap = tmp_path / "backups" / "etcd.db"
    snap.parent.mkdir()
    await srv.start()
    try:
        async with srv.client() as c:
            ns = core.Namespace()
            ns.metadata.name = "backup"
            await c.create(ns)
            for name in ("kept", "deleted-later", "changed-later"):
                await c.create(configmap(name, "before"))
            conf = str(srv.admin_conf)
            assert await pbctl(["--config", conf, "etcd", "snapshot", "save", str(snap)]) == 0
            assert "Snapshot saved at" in capsys.readouterr().out
            assert not snap.with_name("etcd.db.part").exists()
            assert snap.stat().st_mode & 0o777 == 0o600
            snap_rev = etcdsnapshot.status(snap).revision

            await c.delete(core.ConfigMap, "deleted-later", namespace="backup")
            cur = await c.get(core.ConfigMap, "changed-later", namespace="backup")
            cur.data["v"] = "after"
            await c.update(cur)
            await c.create(configmap("created-later", "after"))
            seen = (await c.list(core.ConfigMap, namespace="backup")).resource_version
            assert int(seen) > snap_rev
            assert await names(c) == {"kept": "before", "changed-later": "after", "created-later": "after"}

        # status: the file's own revision and keys, as etcd's tool reads them
        assert await pbctl(["etcd", "snapshot", "status", str(snap), "-o", "json"]) == 0
        st = json.loads(capsys.readouterr().out)
        assert st["revision"] == snap_rev and st["totalKey"] > 0 and st["totalSize"] > 0
        assert await pbctl(["etcd", "snapshot", "status", str(snap)]) == 0
        assert "TOTAL KEYS" in capsys.readouterr().out

        await srv.stop()
        await srv.start(restore_from=snap)
        async with srv.client() as c:
            assert await names(c) == {"kept": "before", "deleted-later": "before", "changed-later": "before"}
            # A client's version from before the restore is older than the watch window: it must re-list.
            with pytest.raises(errors.Expired):
                async for _ in c.watch(core.ConfigMap, namespace="backup", resource_version=seen):
                    break
            assert int((await c.list(core.ConfigMap, namespace="backup")).resource_version) > int(seen)
            await c.create(configmap("after-restore", "x"))
        old = [p.name for p in (srv.cfg.data_dir / "etcd").iterdir() if p.name.startswith("data.before-restore-")]
        assert len(old) == 1  # the data before the restore is kept

        # The flag left on: the same snapshot is not restored twice.
        await srv.stop()
        await srv.start(restore_from=snap)
        async with srv.client() as c:
            assert "after-restore" in await names(c)
    finally:
        await srv.stop()


async def test_restore_into_a_data_dir_for_an_etcd_of_ones_own(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    srv = Standalone(tmp_path / "apiserver")
    snap = tmp_path / "etcd.db"
    await srv.start()
    try:
        async with srv.client() as c:
            ns = core.Namespace()
            ns.metadata.name = "backup"
            await c.create(ns)
            await c.create(configmap("kept", "before"))
        assert await pbctl(["--config", str(srv.admin_conf), "etcd", "snapshot", "save", str(snap)]) == 0
    finally:
        await srv.stop()
    own = EmbeddedEtcd(tmp_path / "own", name="own", client_port=free_port(), peer_port=free_port())
    assert await pbctl(["etcd", "snapshot", "restore", str(snap), "--data-dir", str(own.data_dir / "data"),
                        "--name", "own", "--initial-advertise-peer-urls", own.peer_url]) == 0
    assert "restored" in capsys.readouterr().out
    assert await pbctl(["etcd", "snapshot", "restore", str(snap), "--data-dir", str(own.data_dir / "data")]) == 1
    assert "exists" in capsys.readouterr().err  # never over an existing data dir
    await own.start()
    etcd = EtcdClient([own.endpoint])
    try:
        kv = await etcd.get(b"/registry/configmaps/backup/kept")
        assert kv is not None and b"before" in kv.value
    finally:
        await etcd.close()
        await own.stop()


async def test_snapshot_is_for_admins_only(tmp_path: Path) -> None:
    srv = Standalone(tmp_path / "apiserver")
    await srv.start()
    try:
        with (srv.cfg.data_dir / "tokens.csv").open("a") as f:
            f.write("viewer-token,viewer,viewer,\n")
        await srv.stop()
        await srv.start()
        async with srv.client("viewer-token") as c:
            with pytest.raises(errors.Forbidden):
                async for _ in c.etcd_snapshot():
                    pass
    finally:
        await srv.stop()


async def test_damaged_snapshot_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"\0" * 4096 + b"x" * 32)
    assert await pbctl(["etcd", "snapshot", "status", str(bad)]) == 1
    assert "sha256 mismatch" in capsys.readouterr().err
    cfg = Config(data_dir=tmp_path / "apiserver", grpc_port=free_port(), secure_port=free_port(), restore_from=bad)
    with pytest.raises(etcdsnapshot.SnapshotError):
        await run_apiserver(cfg)
