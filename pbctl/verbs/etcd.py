"""etcd snapshot save / status / restore: backups of the cluster's state (etcdctl's and etcdutl's commands).

`save` asks the apiserver (the only process that reaches etcd) for etcd's snapshot, writes it to FILE.part,
checks etcd's trailing sha256 and renames it into place, so FILE is only ever a whole snapshot. `status`
and `restore --data-dir` work on the file alone (pybernetes.etcdsnapshot, through etcd's own tool).
`restore --lab` hands the file to the lab plugin (`pbctl lab restore`), which stops the lab's apiserver and
etcd, swaps the data dir and starts them again; a standalone apiserver restores its embedded etcd with
`pb-apiserver --restore-from FILE`. docs/backup.md has the procedures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

from pbctl import plugins, verb
from pbctl.common import CliError, Ctx, err, out
from pybernetes import etcdsnapshot, ports


def arguments(p: argparse.ArgumentParser) -> None:
    sub = verb.subcommands(p, "etcd_cmd")
    snap = verb.subcommand(sub, "snapshot", "Save, inspect and restore etcd snapshots")
    ssub = verb.subcommands(snap, "snapshot_cmd")
    save = verb.subcommand(ssub, "save", "Save etcd's snapshot (through the apiserver; admins only) to FILE")
    save.add_argument("file", metavar="FILE")
    st = verb.subcommand(ssub, "status", "Print a snapshot's hash, revision, total keys and size")
    st.add_argument("file", metavar="FILE")
    st.add_argument("-o", "-w", "--output", choices=("table", "json"), default="table")
    rs = verb.subcommand(ssub, "restore", "Restore a snapshot: into the lab (--lab) or a new data dir (--data-dir)")
    rs.add_argument("file", metavar="FILE")
    where = rs.add_mutually_exclusive_group(required=True)
    where.add_argument("--lab", action="store_true",
                       help="restore the local lab's etcd (stops and restarts its apiserver and etcd)")
    where.add_argument("--data-dir", type=Path, help="a new etcd data dir for an etcd you run yourself")
    rs.add_argument("--dir", type=Path, default=None, help="with --lab: the lab directory")
    rs.add_argument("--name", default="default", help="with --data-dir: the member's name")
    rs.add_argument("--initial-advertise-peer-urls", default=f"http://localhost:{ports.ETCD_PEER}",
                    help="with --data-dir: the member's peer URL")


async def save(ctx: Ctx, path: Path) -> int:
    part = path.with_name(path.name + ".part")
    revision = size = 0
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the whole cluster's secrets
        with os.fdopen(fd, "wb") as f:
            async for chunk in ctx.client.etcd_snapshot():
                f.write(chunk.data)
                size += len(chunk.data)
                revision = chunk.revision
            f.flush()
            os.fsync(f.fileno())
        digest = await asyncio.to_thread(etcdsnapshot.verify, part)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, path)
    out(f"Snapshot saved at {path} (revision {revision}, {etcdsnapshot.human_bytes(size)}, sha256 {digest})")
    return 0


async def run_etcd(ctx: Ctx, args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        if args.snapshot_cmd == "save":
            return await save(ctx, path)
        if not path.exists():
            raise CliError(f"{path}: no such file")
        if args.snapshot_cmd == "status":
            s = await asyncio.to_thread(etcdsnapshot.status, path)
            out(json.dumps(s.as_json()) if args.output == "json" else etcdsnapshot.table(s))
            return 0
        if args.lab:
            plugin = plugins.find(["lab"])
            if plugin is None:
                raise CliError("the lab plugin (pbctl-lab) is not installed")
            argv = [plugin, "restore", str(path.resolve()), *(["--dir", str(args.dir)] if args.dir else [])]
            proc = await asyncio.create_subprocess_exec(*argv)
            return await proc.wait()
        await asyncio.to_thread(etcdsnapshot.restore, path, args.data_dir, name=args.name,
                                peer_url=args.initial_advertise_peer_urls)
        out(f"restored {path} into {args.data_dir}: start etcd with --data-dir={args.data_dir} --name={args.name}")
        err("warning: the restored revision is the snapshot's; restart every client (or use pb-apiserver "
            "--restore-from / pbctl etcd snapshot restore --lab, which raise it past the old one)")
        return 0
    except etcdsnapshot.SnapshotError as e:
        raise CliError(str(e)) from None


VERB = verb.Verb("etcd", "Back up and restore etcd (snapshot save, status, restore)", arguments, run_etcd,
                 rank=175)
