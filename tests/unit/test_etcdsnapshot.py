"""pybernetes.etcdsnapshot: the trailing sha256 check (as etcdutl's restore does it) and `status` output."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pbctl.main import run as pbctl
from pybernetes import etcdsnapshot
from pybernetes.etcdsnapshot import SnapshotError, Status

DB = bytes(range(256)) * 32  # 8 KiB: two bolt pages


def snapshot_bytes(db: bytes = DB) -> bytes:
    return db + hashlib.sha256(db).digest()


def test_a_whole_snapshot_verifies(tmp_path: Path) -> None:
    p = tmp_path / "s.db"
    p.write_bytes(snapshot_bytes())
    assert etcdsnapshot.verify(p) == hashlib.sha256(DB).hexdigest()
    assert etcdsnapshot.split(snapshot_bytes()) == (DB, hashlib.sha256(DB).digest())


@pytest.mark.parametrize("damage", ["truncated", "flipped", "no-hash", "hash-of-other"])
def test_a_damaged_snapshot_is_refused(tmp_path: Path, damage: str) -> None:
    data = bytearray(snapshot_bytes())
    if damage == "truncated":
        data = data[:-1]
    elif damage == "flipped":
        data[100] ^= 1
    elif damage == "no-hash":
        data = data[:-32]  # a data dir's member/snap/db copied as it is
    else:
        data[-32:] = hashlib.sha256(b"other").digest()
    p = tmp_path / "s.db"
    p.write_bytes(bytes(data))
    with pytest.raises(SnapshotError):
        etcdsnapshot.verify(p)
    with pytest.raises(SnapshotError):
        etcdsnapshot.split(bytes(data))


@pytest.mark.parametrize(("n", "text"), [(5, "5 B"), (512, "512 B"), (20480, "20 kB"), (2_100_000, "2.1 MB"),
                                         (1_000_000_000, "1.0 GB")])
def test_sizes_print_as_etcdutl_does(n: int, text: str) -> None:
    assert etcdsnapshot.human_bytes(n) == text


def test_status_table_has_etcdutls_columns() -> None:
    assert etcdsnapshot.table(Status(0xFE01CF57, 10, 7, 2_100_000)).splitlines() == [
        "+----------+----------+------------+------------+",
        "|   HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |",
        "+----------+----------+------------+------------+",
        "| fe01cf57 |       10 |          7 | 2.1 MB     |",
        "+----------+----------+------------+------------+",
    ]


def test_status_reads_the_file_through_etcds_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_run(args: list[str]) -> str:
        calls.append(args)
        return json.dumps({"hash": 4261531479, "revision": 10, "totalKey": 7, "totalSize": 20480})

    monkeypatch.setattr(etcdsnapshot, "_run", fake_run)
    p = tmp_path / "s.db"
    p.write_bytes(snapshot_bytes())
    s = etcdsnapshot.status(p)
    assert s == Status(4261531479, 10, 7, 20480)
    assert s.as_json() == {"hash": 4261531479, "revision": 10, "totalKey": 7, "totalSize": 20480}
    assert calls == [["snapshot", "status", str(p), "-w", "json"]]
    p.write_bytes(snapshot_bytes()[:-1])
    with pytest.raises(SnapshotError):  # verified before the tool is asked
        etcdsnapshot.status(p)
    assert len(calls) == 1


async def test_pbctl_status_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(etcdsnapshot, "_run", lambda args: json.dumps(
        {"hash": 1, "revision": 2, "totalKey": 3, "totalSize": 4096}))
    p = tmp_path / "s.db"
    p.write_bytes(snapshot_bytes())
    assert await pbctl(["etcd", "snapshot", "status", str(p), "-w", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"hash": 1, "revision": 2, "totalKey": 3, "totalSize": 4096}
    assert await pbctl(["etcd", "snapshot", "status", str(p)]) == 0
    assert "|    1 |        2 |          3 | 4.1 kB     |" in capsys.readouterr().out
    p.write_bytes(b"junk")
    assert await pbctl(["etcd", "snapshot", "status", str(p)]) == 1
    assert "not an etcd snapshot" in capsys.readouterr().err
    assert await pbctl(["etcd", "snapshot", "status", str(tmp_path / "missing.db")]) == 1
