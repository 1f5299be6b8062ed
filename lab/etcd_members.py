"""`lab status`'s etcd part: every member with its id, whether it leads, its raft term and index, its revision
and DB size, as `etcdctl endpoint status` reports them, asked inside the control-plane namespace (etcd's
client ports are on its loopback only) with the apiserver's etcd client certificate (etcd accepts no other
client: `client_flags`). lab.status prints the table (`-o json`: the rows).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab import topology
from lab.netns import nsenter
from lab.processes import run_cmd
from lab.state import LabState, ProcessRecord
from pybernetes import etcdsnapshot

HEADER = ("MEMBER", "ENDPOINT", "ID", "LEADER", "RAFT TERM", "RAFT INDEX", "REVISION", "DB SIZE")


def client_url(rec: ProcessRecord) -> str:
    return next((a.split("=", 1)[1].split(",")[0] for a in rec.argv if a.startswith("--advertise-client-urls=")), "")


def client_flags(st: LabState) -> list[str]:
    """etcdctl's --cacert/--cert/--key: etcd's CA and the apiserver's etcd client certificate in the lab's PKI
    (none when the lab has no etcd CA: a plaintext etcd)."""
    pki = topology.pki_dir(Path(st.dir))
    if not (pki / "etcd" / "ca.crt").exists():
        return []
    return [f"--cacert={pki / 'etcd' / 'ca.crt'}", f"--cert={pki / 'apiserver-etcd-client.crt'}",
            f"--key={pki / 'apiserver-etcd-client.key'}"]


async def member_status(rec: ProcessRecord, tls_flags: Sequence[str] = ()) -> dict[str, Any]:
    """One member's status; {"member", "endpoint", "error"} when it does not answer."""
    url = client_url(rec)
    row: dict[str, Any] = {"member": rec.name, "endpoint": url}
    if not rec.alive():
        return {**row, "error": "stopped"}
    cmd = ["env", "ETCDCTL_API=3", "etcdctl", f"--endpoints={url}", *tls_flags, "--command-timeout=2s", "endpoint",
           "status", "-w", "json"]
    code, out = await run_cmd(nsenter(rec.netns, cmd) if rec.netns else cmd, check=False, timeout=10)
    try:
        st = json.loads(out[out.index("["):])[0]["Status"] if code == 0 else None
    except (ValueError, LookupError):
        st = None
    if st is None:
        return {**row, "error": out.strip().splitlines()[-1] if out.strip() else f"etcdctl exited {code}"}
    member_id = int(st["header"]["member_id"])
    return {**row, "id": f"{member_id:x}", "leader": member_id == int(st.get("leader", 0)),
            "raftTerm": int(st.get("raftTerm", 0)), "raftIndex": int(st.get("raftIndex", 0)),
            "revision": int(st["header"].get("revision", 0)), "dbSize": int(st.get("dbSize", 0)),
            "version": st.get("version", "")}


async def members(st: LabState) -> list[dict[str, Any]]:
    recs = sorted(st.find("etcd"), key=lambda r: r.name)
    flags = client_flags(st)
    return list(await asyncio.gather(*(member_status(r, flags) for r in recs)))


def rows(found: Sequence[dict[str, Any]]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for m in found:
        if "error" in m:
            out.append((m["member"], m["endpoint"], "-", "-", "-", "-", "-", m["error"][:60]))
        else:
            out.append((m["member"], m["endpoint"], m["id"], "yes" if m["leader"] else "no", str(m["raftTerm"]),
                        str(m["raftIndex"]), str(m["revision"]), etcdsnapshot.human_bytes(m["dbSize"])))
    return out
