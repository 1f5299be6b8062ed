"""The lab's three-member etcd on real processes, recorded as `lab up --etcd-members 3` records them but
without network namespaces (free ports on loopback): started together, `lab status`'s member rows (one
leader), `lab stop etcd-2` / `lab start etcd-2`, `lab stop etcd` / `lab start etcd`, and `lab restore`
rebuilding all three members from one snapshot under a running apiserver.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from lab import backup, commands, control_plane, etcd_members, lifecycle
from lab.health import tcp_ok, wait_for
from lab.processes import spawn
from lab.state import LabState, ProcessRecord
from lab.topology import EtcdMember, Plan
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client import config as client_config
from pybernetes.client.client import Client
from pybernetes.ports import free_port
from services.apiserver.auth import ensure_admin_token
from tests.integration.test_lab_restore import admin_kubeconfig, snapshot_between

pytestmark = pytest.mark.skipif(shutil.which("etcdctl") is None or shutil.which("curl") is None,
                                reason="etcdctl and curl are needed")


def loopback_etcd_plan(lab_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Plan, list[EtcdMember], LabState]:
    """A lab plan of three etcd members on free loopback ports, spawned in this network namespace, and its saved
    (empty) state: `control_plane.start_etcd(plan, state)` starts them as `lab up --etcd-members 3` would."""
    members = [EtcdMember(f"etcd-{i}", f"etcd-{i}", lab_dir / "control-plane" / f"etcd-{i}", free_port(), free_port(),
                          free_port()) for i in (1, 2, 3)]
    monkeypatch.setattr(Plan, "etcd", property(lambda self: members))
    monkeypatch.setattr(control_plane, "CP_NETNS", "")  # no namespaces: spawn in this one
    st = LabState(dir=str(lab_dir))
    st.save()
    return Plan(dir=lab_dir, etcd_count=3), members, st


async def test_three_members_status_stop_start_restore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    plan, members, st = loopback_etcd_plan(tmp_path, monkeypatch)
    api_port = free_port()
    real_start = lifecycle.start_recorded

    async def start(st: LabState, rec: ProcessRecord, *, timeout: float = 30.0) -> ProcessRecord:
        if rec.component != "apiserver":  # its lab health check is on the fixed health port
            return await real_start(st, rec, timeout=timeout)
        new = spawn(st, rec.name, rec.component, rec.argv)
        await wait_for(lambda: tcp_ok("127.0.0.1", api_port), rec.name, timeout=timeout, rec=new)
        return new

    monkeypatch.setattr(backup, "start_recorded", start)
    try:
        note = await control_plane.start_etcd(plan, st)
        assert all(f"127.0.0.1:{m.client_port}" in note for m in members)
        assert commands.initial_cluster(members) in " ".join(st.processes["etcd-2"].argv)
        rows = await etcd_members.members(st)
        assert [r["member"] for r in rows] == ["etcd-1", "etcd-2", "etcd-3"]
        assert sum(r["leader"] for r in rows) == 1 and len({r["id"] for r in rows}) == 3
        assert all(r["raftIndex"] > 0 and r["dbSize"] > 0 for r in rows)
        assert etcd_members.rows(rows)[0][:2] == ("etcd-1", members[0].client_url)
        # TLS with client certificates: etcdctl without the apiserver's certificate gets no answer.
        assert members[0].client_url.startswith("https://")
        no_cert = await etcd_members.member_status(st.processes["etcd-1"], [f"--cacert={plan.pki_dir}/etcd/ca.crt"])
        assert "error" in no_cert and "id" not in no_cert

        # One member down: the others keep a leader; `lab status` shows it stopped.
        await lifecycle.stop_component(tmp_path, "etcd-2", out=lambda _: None)
        after = LabState.load(tmp_path)
        assert after is not None
        rows = await etcd_members.members(after)
        assert rows[1]["error"] == "stopped" and sum(r.get("leader", False) for r in rows) == 1
        await lifecycle.start_component(tmp_path, "etcd-2", out=lambda _: None)
        # `lab stop etcd` / `lab start etcd`: every member, started together (none is healthy alone).
        await lifecycle.stop_component(tmp_path, "etcd", out=lambda _: None)
        await lifecycle.start_component(tmp_path, "etcd", out=lambda _: None)
        after = LabState.load(tmp_path)
        assert after is not None
        assert all("error" not in r for r in await etcd_members.members(after))

        # The apiserver on every endpoint; a snapshot; a change; restore all three members.
        ensure_admin_token(tmp_path / "tokens.csv")  # the file --token-auth-file names
        servers = ",".join(m.client_url for m in members)
        conf = tmp_path / "admin.conf"
        admin_kubeconfig(conf, tmp_path / "apiserver" / "pki", api_port)  # before it starts: it reuses them
        spawn(after, "apiserver", "apiserver", [str(Path(sys.executable).parent / "pb-apiserver"),
                                                f"--data-dir={tmp_path / 'apiserver'}", f"--grpc-port={api_port}",
                                                "--secure-port=0",
                                                f"--etcd-servers={servers}", "--etcd-compaction-interval=0",
                                                f"--etcd-cafile={plan.pki_dir / 'etcd' / 'ca.crt'}",
                                                f"--etcd-certfile={plan.pki_dir / 'apiserver-etcd-client.crt'}",
                                                f"--etcd-keyfile={plan.pki_dir / 'apiserver-etcd-client.key'}",
                                                f"--token-auth-file={tmp_path / 'tokens.csv'}"])
        await wait_for(lambda: tcp_ok("127.0.0.1", api_port), "apiserver", timeout=30)
        snap = tmp_path / "etcd.db"
        async with Client.from_config(client_config.load(str(conf)), timeout=10) as c:
            await snapshot_between(c, conf, snap)
        assert await backup.restore(tmp_path, snap, out=lambda _: None) == 0
        for _ in range(100):
            try:
                async with Client.from_config(client_config.load(str(conf)), timeout=5) as c:
                    names = {m.metadata.name for m in (await c.list(core.ConfigMap, namespace="default")).items}
                break
            except Exception:
                await asyncio.sleep(0.2)
        assert names == {"in-snapshot"}
        final = LabState.load(tmp_path)
        assert final is not None
        rows = await etcd_members.members(final)
        assert all("error" not in r for r in rows) and sum(r["leader"] for r in rows) == 1
        assert len({r["revision"] for r in rows}) == 1  # one cluster, one history
        for m in members:
            assert [p for p in m.data.parent.iterdir() if p.name.startswith(f"{m.data.name}.before-restore-")]
    finally:
        capsys.readouterr()
        loaded = LabState.load(tmp_path)
        for rec in (loaded.processes.values() if loaded else []):
            rec.stop(10)
