"""After restoring etcd from a snapshot: move its revision past every version a client has seen.

A restored etcd is back at the snapshot's revision, lower than the resourceVersions the scheduler, the
controllers and the kubelets hold. Watching again from those versions would silently skip the changes
that reuse the numbers. So, as `etcdutl snapshot restore --bump-revision --mark-compacted` does (etcd 3.5;
3.4's etcdctl has neither), the revision is raised past the old data dir's and compacted there: every old
version is then older than the apiserver's watch window, clients get Expired (410) and re-list, and their
informers turn the difference into deletes and adds, which the controllers and kubelets reconcile.

The apiserver's `--restore-from` (embedded etcd) calls `restore_embedded`; the lab (lab.backup) restores with
`restore_data_dir` and runs `python -m
services.apiserver.storage.restore --endpoint URL --past REV` inside its control-plane namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import time
from pathlib import Path

from pybernetes import etcdsnapshot
from pybernetes.tls import CertPair

from .embedded import EmbeddedEtcd
from .etcd import EtcdClient, EtcdTLS, KeyNotFound, StorageUnavailable

log = logging.getLogger("pybernetes.apiserver.restore")

BUMP_PREFIX = b"/pybernetes/restore-bump/"
# Revisions a killed etcd may have in its WAL but not yet in its database file, and then some.
MARGIN = 1000
_PARALLEL = 64


def db_revision(data_dir: Path) -> int:
    """The revision in an etcd data dir's database (0 when there is none). Read offline: etcd must be stopped."""
    db = data_dir / "member" / "snap" / "db"
    if not db.exists():
        return 0
    return etcdsnapshot.status(db, hashed=False).revision


async def bump_revision(etcd: EtcdClient, past: int) -> int:
    """Write throwaway keys until etcd's revision is above `past` + MARGIN, then compact there; returns it."""
    target = past + MARGIN
    deadline = time.monotonic() + 30
    while True:  # a just-started etcd may not serve yet (or still elect itself)
        try:
            rev = await etcd.current_revision()
            break
        except StorageUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    n = 0
    while rev <= target:
        batch = min(_PARALLEL, (target - rev) // 2 + 1)
        keys = [BUMP_PREFIX + str(n + i).encode() for i in range(batch)]
        n += batch
        await asyncio.gather(*(etcd.create(k, b"") for k in keys))
        revs = await asyncio.gather(*(_delete(etcd, k) for k in keys))
        rev = max(revs)
    await etcd.compact(rev)
    log.info("etcd revision raised past the old data's and compacted old=%d revision=%d", past, rev)
    return rev


async def _delete(etcd: EtcdClient, key: bytes) -> int:
    try:
        return await etcd.delete(key)
    except KeyNotFound:
        return await etcd.current_revision()


def restore_data_dir(snapshot: Path, data_dir: Path, *, name: str, peer_url: str, initial_cluster: str = "") -> int:
    """Replace an (idle) etcd member's data dir with the snapshot's (for a cluster, `initial_cluster` lists every
    member: each one is restored from the same file); the old dir is kept beside it as
    `<dir>.before-restore-<unix time>`. Returns the old dir's revision (0 without one)."""
    past = db_revision(data_dir)
    fresh = data_dir.with_name(data_dir.name + ".restoring")
    shutil.rmtree(fresh, ignore_errors=True)
    etcdsnapshot.restore(snapshot, fresh, name=name, peer_url=peer_url, initial_cluster=initial_cluster)
    if data_dir.exists():
        old = data_dir.with_name(f"{data_dir.name}.before-restore-{int(time.time())}")
        data_dir.rename(old)
        log.info("kept the data dir before the restore path=%s", old)
    fresh.rename(data_dir)
    data_dir.chmod(0o700)  # etcd's data is the apiserver's alone
    log.info("etcd data restored from snapshot path=%s data_dir=%s old_revision=%d", snapshot, data_dir, past)
    return past


async def restore_embedded(snapshot: Path, embedded: EmbeddedEtcd) -> None:
    """`pb-apiserver --restore-from`: restore the (stopped) embedded etcd's data dir from the snapshot, start it
    and raise its revision. A snapshot already restored here (its sha256 is in `restored-from.sha256`) is
    skipped, so a restart with the flag still set does not roll the cluster back again."""
    digest = etcdsnapshot.verify(snapshot)
    marker = embedded.data_dir / "restored-from.sha256"
    if marker.exists() and marker.read_text().strip() == digest:
        log.info("snapshot already restored, starting on the current data path=%s sha256=%s", snapshot, digest)
        await embedded.start()
        return
    embedded.data_dir.mkdir(parents=True, exist_ok=True)
    past = await asyncio.to_thread(restore_data_dir, snapshot, embedded.data_dir / "data", name=embedded.name,
                                   peer_url=embedded.peer_url)
    await embedded.start()
    etcd = EtcdClient([embedded.endpoint], timeout=10, tls=embedded.client_tls)
    try:
        await bump_revision(etcd, past)
    finally:
        await etcd.close()
    marker.write_text(digest + "\n")


async def _bump_main(endpoint: str, past: int, etcd_tls: EtcdTLS | None) -> None:
    etcd = EtcdClient([endpoint], timeout=10, tls=etcd_tls)
    try:
        print(await bump_revision(etcd, past))
    finally:
        await etcd.close()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m services.apiserver.storage.restore",
                                description="Raise a restored etcd's revision past the old one's and compact it.")
    p.add_argument("--endpoint", required=True, help="etcd client URL")
    p.add_argument("--past", type=int, required=True, help="the old data dir's revision")
    # etcdctl's names for an https etcd's CA and the client certificate it asks for
    p.add_argument("--cacert", type=Path, help="etcd's CA (https endpoints)")
    p.add_argument("--cert", type=Path, help="client certificate")
    p.add_argument("--key", type=Path, help="its key")
    args = p.parse_args()
    if (args.cert is None) != (args.key is None):
        p.error("--cert and --key go together")
    pair = CertPair(args.cert, args.key) if args.cert and args.key else None
    asyncio.run(_bump_main(args.endpoint, args.past, EtcdTLS(args.cacert, pair) if args.cacert else None))


if __name__ == "__main__":
    main()
