"""`lab restore FILE` (what `pbctl etcd snapshot restore FILE --lab` runs): the lab's etcd back to a snapshot.

Stops the apiserver (nothing writes while etcd is swapped) and every etcd member, restores the file into a
new data dir for each member (name, peer URL and cluster from its recorded command line), keeps the old dirs
beside them as `<dir>.before-restore-<time>`, starts the members together (a cluster needs its quorum),
raises the revision past the old one and compacts there (inside the control-plane namespace, through
services.apiserver.storage.restore: clients re-list instead of watching from versions the restored history
reuses), and starts the apiserver. The scheduler, the controller manager,
the kubelets and the proxies keep running: their informers re-list and they reconcile to the restored state.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lab import etcd_members
from lab.errors import LabError
from lab.lifecycle import start_recorded
from lab.netns import nsenter
from lab.processes import run_cmd
from lab.state import LabState, ProcessRecord
from pybernetes import etcdsnapshot
from services.apiserver.storage import restore as storage_restore


def _flag(rec: ProcessRecord, name: str) -> str:
    for arg in rec.argv:
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    raise LabError(f"{rec.name}'s recorded command line has no --{name}")


def _apiserver(st: LabState) -> ProcessRecord:
    recs = st.find("apiserver")
    if len(recs) != 1:
        raise LabError(f"expected one apiserver in this lab, found {len(recs)}")
    return recs[0]


async def restore(lab_dir: Path, snapshot: Path, out: Callable[[str], None] = print) -> int:
    st = LabState.load(lab_dir.resolve())
    if st is None:
        raise LabError(f"no lab in {lab_dir}")
    try:
        digest = await asyncio.to_thread(etcdsnapshot.verify, snapshot)
    except etcdsnapshot.SnapshotError as e:
        raise LabError(str(e)) from None
    t0 = time.monotonic()
    apiserver, members = _apiserver(st), sorted(st.find("etcd"), key=lambda r: r.name)
    if not members:
        raise LabError("no etcd in this lab")
    out(f"restoring {snapshot} (sha256 {digest[:12]}) into {len(members)} etcd member(s)")
    for rec in (apiserver, *members):
        await asyncio.to_thread(rec.stop, 10)
        out(f"stopped {rec.name}")
    pasts: list[int] = []
    try:
        for rec in members:  # every member from the same file, for the same cluster (as etcdutl's guide does)
            pasts.append(await asyncio.to_thread(
                storage_restore.restore_data_dir, snapshot, Path(_flag(rec, "data-dir")), name=_flag(rec, "name"),
                peer_url=_flag(rec, "initial-advertise-peer-urls"), initial_cluster=_flag(rec, "initial-cluster")))
    except etcdsnapshot.SnapshotError as e:
        await asyncio.gather(*(start_recorded(st, rec) for rec in members))
        await start_recorded(st, apiserver)
        raise LabError(f"restore failed after {len(pasts)} of {len(members)} members (each kept its old data "
                       f"beside it); etcd and the apiserver are started again: {e}") from None
    members = list(await asyncio.gather(*(start_recorded(st, rec) for rec in members)))  # a quorum at once
    out(f"started {', '.join(f'{r.name} (pid {r.pid})' for r in members)} on the restored data")
    past, first = max(pasts), members[0]
    endpoint = _flag(first, "advertise-client-urls").split(",")[0]
    bump = [sys.executable, "-m", "services.apiserver.storage.restore", "--endpoint", endpoint, "--past", str(past),
            *etcd_members.client_flags(st)]
    _, rev = await run_cmd(nsenter(first.netns, bump) if first.netns else bump, timeout=300)
    out(f"raised etcd's revision past the old data's ({past}) and compacted at {rev.splitlines()[-1]}")
    apiserver = await start_recorded(st, apiserver)
    out(f"started {apiserver.name} (pid {apiserver.pid})")
    out(f"restored in {time.monotonic() - t0:.1f} s; the controllers and kubelets reconcile to it now")
    return 0
