"""`lab restore FILE` (what `pbctl etcd snapshot restore FILE --lab` runs): the lab's etcd back to a snapshot.

Stops the apiserver (nothing writes while etcd is swapped) and etcd, restores the file into a new data dir
for the same member (name and peer URL from etcd's recorded command line), keeps the old dir beside it as
`etcd.before-restore-<time>`, starts etcd, raises its revision past the old one and compacts there (inside
the control-plane namespace, through services.apiserver.storage.restore: clients re-list instead of watching
from versions the restored history reuses), and starts the apiserver. The scheduler, the controller manager,
the kubelets and the proxies keep running: their informers re-list and they reconcile to the restored state.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

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


def _one(st: LabState, component: str) -> ProcessRecord:
    recs = st.find(component)
    if len(recs) != 1:
        raise LabError(f"expected one {component} in this lab, found {len(recs)}")
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
    apiserver, etcd = _one(st, "apiserver"), _one(st, "etcd")
    data = Path(_flag(etcd, "data-dir"))
    name, peer = _flag(etcd, "name"), _flag(etcd, "initial-advertise-peer-urls")
    endpoint = _flag(etcd, "advertise-client-urls").split(",")[0]
    out(f"restoring {snapshot} (sha256 {digest[:12]}) into {data}")
    for rec in (apiserver, etcd):
        await asyncio.to_thread(rec.stop, 10)
        out(f"stopped {rec.name}")
    try:
        past = await asyncio.to_thread(storage_restore.restore_data_dir, snapshot, data, name=name, peer_url=peer)
    except etcdsnapshot.SnapshotError as e:
        await start_recorded(st, etcd)
        await start_recorded(st, apiserver)
        raise LabError(f"restore failed; etcd and the apiserver run on the old data again: {e}") from None
    etcd = await start_recorded(st, etcd)
    out(f"started {etcd.name} on the restored data (pid {etcd.pid})")
    bump = [sys.executable, "-m", "services.apiserver.storage.restore", "--endpoint", endpoint, "--past", str(past)]
    _, rev = await run_cmd(nsenter(etcd.netns, bump) if etcd.netns else bump, timeout=300)
    out(f"raised etcd's revision past the old data's ({past}) and compacted at {rev.splitlines()[-1]}")
    apiserver = await start_recorded(st, apiserver)
    out(f"started {apiserver.name} (pid {apiserver.pid})")
    out(f"restored in {time.monotonic() - t0:.1f} s; the controllers and kubelets reconcile to it now")
    return 0
