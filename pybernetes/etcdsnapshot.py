"""An etcd snapshot file, offline (what etcdutl does): its integrity, its status, restoring it into a data dir.

The file is etcd's backend (a bolt database) followed by the sha256 of those bytes, exactly as etcd's
Maintenance.Snapshot streams it and `etcdctl snapshot save` writes it. `verify` checks that hash as
`etcdctl snapshot restore` does (a bolt file is whole pages of 512-byte multiples, so the 32 extra bytes
show a hash is there). `status` reads the database itself through etcd's own tool (`etcdutl snapshot status`,
or etcd 3.4's `etcdctl snapshot status`), so its revision and key count are the file's, not a record of
them; `restore` runs `etcdctl snapshot restore`, which makes a new one-member cluster's data dir.

Nothing here connects to etcd: pbctl (`pbctl etcd snapshot ...`), the apiserver's `--restore-from` and the
lab use it. Taking a snapshot goes through the apiserver (pybernetes.client.Client.etcd_snapshot).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from pybernetes import errors

HASH_SIZE = hashlib.sha256().digest_size
_PAGE_MULTIPLE = 512  # bolt's size is whole pages; etcd checks `size % 512 == sha256 size` for a hash


class SnapshotError(errors.PybernetesError):
    """A snapshot file is damaged, or etcd's tools refused it."""


def split(data: bytes) -> tuple[bytes, bytes]:
    """(database, sha256) of a snapshot's bytes; SnapshotError when the hash is missing or wrong."""
    if len(data) % _PAGE_MULTIPLE != HASH_SIZE:
        raise SnapshotError(f"not an etcd snapshot with its sha256 ({len(data)} bytes: a database is whole "
                            f"{_PAGE_MULTIPLE}-byte multiples plus a {HASH_SIZE}-byte hash); truncated?")
    db, digest = data[:-HASH_SIZE], data[-HASH_SIZE:]
    if hashlib.sha256(db).digest() != digest:
        raise SnapshotError(f"sha256 mismatch: the file says {digest.hex()}, its content is "
                            f"{hashlib.sha256(db).hexdigest()}")
    return db, digest


def verify(path: Path) -> str:
    """Check a snapshot file's trailing sha256; returns it (hex)."""
    h = hashlib.sha256()
    size = path.stat().st_size
    if size % _PAGE_MULTIPLE != HASH_SIZE:
        raise SnapshotError(f"{path}: not an etcd snapshot with its sha256 ({size} bytes); truncated?")
    with path.open("rb") as f:
        left = size - HASH_SIZE
        while left:
            chunk = f.read(min(left, 1 << 20))
            if not chunk:
                raise SnapshotError(f"{path}: shorter than its size")
            h.update(chunk)
            left -= len(chunk)
        digest = f.read()
    if h.digest() != digest:
        raise SnapshotError(f"{path}: sha256 mismatch: the file says {digest.hex()}, its content is {h.hexdigest()}")
    return digest.hex()


@dataclass(frozen=True)
class Status:
    """etcdutl snapshot status's columns: etcd's crc32 hash of the keys and values, the revision, the number
    of keys (every bucket's, as etcd counts them) and the database size in bytes."""

    hash: int
    revision: int
    total_key: int
    total_size: int

    def as_json(self) -> dict[str, int]:
        d = asdict(self)
        return {"hash": d["hash"], "revision": d["revision"], "totalKey": d["total_key"],
                "totalSize": d["total_size"]}


def human_bytes(n: int) -> str:
    """Sizes as etcdutl prints them (go-humanize's SI Bytes: 20 kB, 2.1 MB)."""
    if n < 10:
        return f"{n} B"
    value, unit = float(n), "B"
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            break
        value /= 1000
    return f"{value:.0f} {unit}" if value >= 10 or unit == "B" else f"{value:.1f} {unit}"


def table(s: Status) -> str:
    """etcdutl's `-w table` layout."""
    head = ["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"]
    row = [f"{s.hash:x}", str(s.revision), str(s.total_key), human_bytes(s.total_size)]
    widths = [max(len(a), len(b)) + 2 for a, b in zip(head, row, strict=True)]
    line = "+" + "+".join("-" * w for w in widths) + "+"
    center = "|" + "|".join(h.center(w) for h, w in zip(head, widths, strict=True)) + "|"
    cells = "|" + "|".join((" " + c).ljust(w) if i == 3 else (c + " ").rjust(w)
                           for i, (c, w) in enumerate(zip(row, widths, strict=True))) + "|"
    return "\n".join([line, center, line, cells, line])


def _tool() -> list[str]:
    """etcd's offline tool: etcdutl (3.5+) or etcdctl (3.4, where it still has the snapshot commands)."""
    for name in ("etcdutl", "etcdctl"):
        path = shutil.which(name)
        if path:
            return [path]
    raise SnapshotError("neither etcdutl nor etcdctl is installed (Debian: etcd-client)")


def _run(args: list[str]) -> str:
    env = {**os.environ, "ETCDCTL_API": "3"}
    res = subprocess.run([*_tool(), *args], capture_output=True, text=True, env=env, check=False)
    if res.returncode != 0:
        raise SnapshotError(f"{' '.join(args[:2])} failed: {(res.stderr or res.stdout).strip()[-2000:]}")
    return res.stdout


def status(path: Path, *, hashed: bool = True) -> Status:
    """The file's status as etcd's tool reads it; `hashed` snapshots are verified first (a data dir's
    member/snap/db has no hash)."""
    if hashed:
        verify(path)
    data = json.loads(_run(["snapshot", "status", str(path), "-w", "json"]))
    return Status(int(data["hash"]), int(data["revision"]), int(data["totalKey"]), int(data["totalSize"]))


def restore(path: Path, data_dir: Path, *, name: str, peer_url: str, initial_cluster: str = "") -> None:
    """A new data dir for member `name` from the snapshot (the dir must not exist), as `etcdutl snapshot
    restore`; the cluster is `name=peer_url` unless `initial_cluster` lists more members."""
    verify(path)
    if data_dir.exists():
        raise SnapshotError(f"{data_dir} exists; restore makes a new data dir")
    _run(["snapshot", "restore", str(path), f"--data-dir={data_dir}", f"--name={name}",
          f"--initial-cluster={initial_cluster or f'{name}={peer_url}'}",
          f"--initial-advertise-peer-urls={peer_url}"])
