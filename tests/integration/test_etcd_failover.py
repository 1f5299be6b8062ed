"""The apiserver across etcd failures: a real three-member etcd with TLS on free loopback ports (the lab's own
member records, no namespaces) and a pb-apiserver process given every endpoint. While a writer creates
ConfigMaps and two watchers watch them, the member the apiserver is connected to is SIGKILLed, brought back,
then the leader is SIGKILLed; and the same with SIGSTOP / SIGCONT instead (a hung member: its sockets stay open,
nothing answers). Afterwards: every create the apiserver accepted is stored exactly once and nothing
else is; each watcher saw every created object through its events or through a re-list that a 410 (Expired)
forced, never a silent gap; writes are accepted again after each kill. The recovery times are printed (`-s`):
the time from the kill to the first accepted write sent after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lab import control_plane, etcd_members, lifecycle
from lab.processes import spawn
from lab.state import LabState, ProcessRecord
from pybernetes import errors
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client import config as client_config
from pybernetes.client.client import Client
from pybernetes.ports import free_port
from services.apiserver.auth import ensure_admin_token
from tests.integration.test_lab_etcd_cluster import loopback_etcd_plan
from tests.integration.test_lab_restore import admin_kubeconfig

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("etcd") is None or shutil.which("etcdctl") is None,
                                 reason="etcd and etcdctl are needed")]

NAMESPACE = "default"
# Answers after which a create may or may not have been applied: the writer sends it again.
AMBIGUOUS = (errors.Unavailable, errors.Timeout, errors.InternalError)


@dataclass
class Cluster:
    dir: Path
    conf: Path
    apiserver: ProcessRecord
    client_ports: dict[str, int]  # member record -> client port

    def state(self) -> LabState:
        st = LabState.load(self.dir)
        assert st is not None
        return st

    def member(self, name: str) -> ProcessRecord:
        return self.state().processes[name]

    def connected_member(self) -> str:
        """The member the apiserver's etcd channel is connected to: the most established TCP connections from the
        apiserver's process to a member's client port (/proc: its socket inodes matched against net/tcp{,6})."""
        pid = self.apiserver.pid
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        counts = dict.fromkeys(self.client_ports, 0)
        by_port = {port: name for name, port in self.client_ports.items()}
        for table in ("tcp", "tcp6"):  # gRPC's sockets are dual-stack: 127.0.0.1 shows as ::ffff:127.0.0.1
            with open(f"/proc/{pid}/net/{table}") as f:
                for line in list(f)[1:]:
                    cols = line.split()
                    remote_port, state, inode = int(cols[2].rsplit(":", 1)[1], 16), cols[3], cols[9]
                    if state == "01" and inode in inodes and remote_port in by_port:
                        counts[by_port[remote_port]] += 1
        name, n = max(counts.items(), key=lambda kv: kv[1])
        assert n > 0, f"the apiserver holds no connection to any member: {counts}"
        return name

    async def leader(self) -> str:
        rows = await etcd_members.members(self.state())
        leaders = [r["member"] for r in rows if r.get("leader")]
        assert len(leaders) == 1, rows
        return str(leaders[0])

    def kill(self, name: str, sig: signal.Signals) -> float:
        rec = self.member(name)
        assert rec.signal(sig), f"{name} was not running"
        return time.monotonic()

    async def restart(self, name: str, sig: signal.Signals) -> None:
        if sig == signal.SIGSTOP:
            self.member(name).signal(signal.SIGCONT)
        else:
            await lifecycle.start_component(self.dir, name, out=lambda _: None)


@pytest.fixture
async def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    plan, members, st = loopback_etcd_plan(tmp_path, monkeypatch)
    try:
        await control_plane.start_etcd(plan, st)
        ensure_admin_token(tmp_path / "tokens.csv")
        api_port = free_port()
        conf = tmp_path / "admin.conf"
        admin_kubeconfig(conf, tmp_path / "apiserver" / "pki", api_port)
        pki = plan.pki_dir
        rec = spawn(st, "apiserver", "apiserver", [
            str(Path(sys.executable).parent / "pb-apiserver"), f"--data-dir={tmp_path / 'apiserver'}",
            f"--grpc-port={api_port}", "--secure-port=0", f"--etcd-servers={','.join(m.client_url for m in members)}",
            f"--etcd-cafile={pki / 'etcd' / 'ca.crt'}", f"--etcd-certfile={pki / 'apiserver-etcd-client.crt'}",
            f"--etcd-keyfile={pki / 'apiserver-etcd-client.key'}", f"--token-auth-file={tmp_path / 'tokens.csv'}"])
        async with Client.from_config(client_config.load(str(conf)), timeout=5) as c:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(errors.ApiError):
                    await c.get(core.Namespace, NAMESPACE)
                    break
                assert time.monotonic() < deadline and rec.alive(), Path(rec.log).read_text()[-3000:]
                await asyncio.sleep(0.2)
        yield Cluster(tmp_path, conf, rec, {m.record: m.client_port for m in members})
    finally:
        loaded = LabState.load(tmp_path)
        for r in (loaded.processes.values() if loaded else []):
            r.signal(signal.SIGCONT)  # a member a failed test left stopped
            r.stop(10)


@dataclass
class Writer:
    """Creates ConfigMaps with sequential names, one at a time, retrying an ambiguous failure with the same name
    (backoff with jitter): an AlreadyExists after an ambiguous failure means the earlier attempt landed."""

    client: Client
    accepted: dict[str, int] = field(default_factory=dict)  # name -> the resourceVersion it was stored at
    accepted_at: list[tuple[float, float]] = field(default_factory=list)  # (attempt sent, answered)
    landed_earlier: int = 0
    failed_attempts: int = 0
    anomalies: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def first_accept_sent_after(self, t: float) -> float | None:
        return next((answered for sent, answered in self.accepted_at if sent >= t), None)

    async def run(self) -> None:
        seq = 0
        while not self.stop.is_set():
            name = f"cm-{seq:05d}"
            await self._create(name, seq)
            seq += 1
            await asyncio.sleep(0.02)

    async def _create(self, name: str, seq: int) -> None:
        cm = core.ConfigMap()
        cm.metadata.name, cm.metadata.namespace = name, NAMESPACE
        cm.data["seq"] = str(seq)
        ambiguous, delay = False, 0.05
        while True:
            sent = time.monotonic()
            try:
                out = await self.client.create(cm)
            except errors.AlreadyExists:
                if not ambiguous:
                    self.anomalies.append(f"{name}: AlreadyExists on its first attempt")
                    return
                got = await self._get(name)
                if got.data.get("seq") != str(seq):
                    self.anomalies.append(f"{name}: stored {dict(got.data)}, sent seq {seq}")
                self.landed_earlier += 1
                self.accepted[name] = int(got.metadata.resource_version)
                self.accepted_at.append((sent, time.monotonic()))
                return
            except AMBIGUOUS:
                ambiguous = True
                self.failed_attempts += 1
                await asyncio.sleep(delay * (1 + random.random() / 2))
                delay = min(delay * 2, 1.0)
                continue
            self.accepted[name] = int(out.metadata.resource_version)
            self.accepted_at.append((sent, time.monotonic()))
            return

    async def _get(self, name: str) -> core.ConfigMap:
        while True:
            with contextlib.suppress(*AMBIGUOUS):
                return await self.client.get(core.ConfigMap, name, namespace=NAMESPACE)
            await asyncio.sleep(0.1)


@dataclass
class Watcher:
    """List, then watch from the list's version; an error resumes from the last version seen, a 410 (Expired)
    re-lists. `seen` holds every name an event or a forced re-list showed it."""

    client: Client
    seen: set[str] = field(default_factory=set)
    rv: int = 0
    events: int = 0
    bookmarks: int = 0
    interruptions: int = 0
    expired: int = 0
    lists: int = 0
    out_of_order: list[str] = field(default_factory=list)

    async def run(self) -> None:
        need_list, delay = True, 0.05
        while True:
            try:
                if need_list:
                    found = await self.client.list(core.ConfigMap, namespace=NAMESPACE)
                    self.seen.update(cm.metadata.name for cm in found.items)
                    self.rv, need_list = int(found.resource_version), False
                    self.lists += 1
                async for ev in self.client.watch(core.ConfigMap, namespace=NAMESPACE, resource_version=str(self.rv)):
                    rv = int(ev.object.metadata.resource_version)
                    if rv < self.rv:
                        self.out_of_order.append(f"{ev.type} {ev.object.metadata.name} at {rv} after {self.rv}")
                    self.rv = max(self.rv, rv)
                    if ev.type == "BOOKMARK":
                        self.bookmarks += 1
                    else:
                        self.events += 1
                        self.seen.add(ev.object.metadata.name)
                    delay = 0.05
            except errors.Expired:
                self.expired += 1
                need_list = True
            except errors.ApiError:
                self.interruptions += 1
                await asyncio.sleep(delay * (1 + random.random() / 2))
                delay = min(delay * 2, 1.0)


async def _recovered(writer: Writer, since: float, what: str, timeout: float = 90.0) -> float:
    """Seconds from `since` to the answer of the first write sent after it (failing after `timeout`)."""
    deadline = time.monotonic() + timeout
    while (answered := writer.first_accept_sent_after(since)) is None:
        assert time.monotonic() < deadline, f"no write accepted within {timeout:.0f} s of {what}"
        await asyncio.sleep(0.05)
    return answered - since


async def _writes(writer: Writer, n: int) -> None:
    target = len(writer.accepted) + n
    deadline = time.monotonic() + 60
    while len(writer.accepted) < target:
        assert time.monotonic() < deadline, f"fewer than {n} writes accepted in 60 s"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "hung"])
async def test_writes_and_watches_survive_losing_the_connected_member_and_the_leader(
        cluster: Cluster, sig: signal.Signals) -> None:
    cfg = client_config.load(str(cluster.conf))
    async with Client.from_config(cfg, timeout=10) as wc, Client.from_config(cfg, timeout=10) as rc:
        writer = Writer(wc)
        watchers = [Watcher(rc), Watcher(rc)]
        tasks = [asyncio.create_task(writer.run()), *(asyncio.create_task(w.run()) for w in watchers)]
        try:
            await _writes(writer, 20)
            connected = cluster.connected_member()
            lost_connected = cluster.kill(connected, sig)
            after_connected = await _recovered(writer, lost_connected, f"{sig.name} to {connected}")
            await _writes(writer, 20)
            await cluster.restart(connected, sig)
            await _writes(writer, 20)

            leader = await cluster.leader()
            lost_leader = cluster.kill(leader, sig)
            after_leader = await _recovered(writer, lost_leader, f"{sig.name} to the leader {leader}")
            await _writes(writer, 20)
            await cluster.restart(leader, sig)
            await _writes(writer, 20)
            writer.stop.set()
            await asyncio.wait_for(tasks[0], 60)

            # Every watcher catches up to the last accepted write (events or bookmarks carry it there).
            last = max(writer.accepted.values())
            deadline = time.monotonic() + 60
            while any(w.rv < last for w in watchers):
                assert time.monotonic() < deadline, [(w.rv, last) for w in watchers]
                await asyncio.sleep(0.1)
        finally:
            writer.stop.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        stored = (await rc.list(core.ConfigMap, namespace=NAMESPACE)).items

    print(f"\netcd failover ({sig.name}): the connected member {connected}, then the leader {leader}; "
          f"first write sent after each accepted {after_connected:.2f} s / {after_leader:.2f} s later; "
          f"{len(writer.accepted)} creates accepted ({writer.landed_earlier} found landed after an ambiguous "
          f"failure), {writer.failed_attempts} failed attempts, {len(stored)} stored")
    for i, w in enumerate(watchers):
        print(f"watcher {i}: {w.events} events, {w.bookmarks} bookmarks, {w.interruptions} interruptions, "
              f"{w.expired} 410s, {w.lists} lists")
    assert writer.anomalies == []
    names = [cm.metadata.name for cm in stored]
    assert len(names) == len(writer.accepted) and set(names) == set(writer.accepted)  # none lost, none twice
    for cm in stored:
        assert cm.data["seq"] == str(int(cm.metadata.name.removeprefix("cm-")))
    for w in watchers:
        assert w.out_of_order == []
        accepted = set(writer.accepted)
        assert w.seen == accepted, (sorted(accepted - w.seen), sorted(w.seen - accepted))
        # Losing the connected member ended the apiserver's etcd watch: each watcher was told (never a silent stop).
        assert w.interruptions + w.expired >= 1
