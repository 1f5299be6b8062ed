"""services.apiserver.server.etcd_status_response: etcd's members as EtcdStatus answers them (leader marked, ids
in hex as etcdctl prints them, a member that does not answer or has not started keeps its row with the reason)."""

from __future__ import annotations

from services.apiserver.server import etcd_status_response
from services.apiserver.storage.etcd import EtcdStatus, Member


def status(member: int, leader: int, errors: list[str] | None = None) -> EtcdStatus:
    return EtcdStatus(version="3.5.16", db_size=4096, leader=leader, member_id=member, raft_index=42, raft_term=3,
                      revision=17, errors=errors or [], db_size_in_use=2048)


def test_members_leader_and_errors() -> None:
    out = etcd_status_response([
        Member(0xB, "etcd-2", ["http://127.0.0.1:22379"], False, None, "etcd UNAVAILABLE: connection refused"),
        Member(0xA, "etcd-1", ["http://127.0.0.1:2379"], False, status(0xA, 0xC)),
        Member(0xC, "etcd-3", ["http://127.0.0.1:32379"], False, status(0xC, 0xC, ["NOSPACE"])),
        Member(0xD, "", [], True, None, "not started"),
    ])
    assert out.leader == "c"
    assert [(m.name, m.id, m.leader) for m in out.members] == [("etcd-1", "a", False), ("etcd-2", "b", False),
                                                                ("etcd-3", "c", True), ("", "d", False)]
    one, two, three, new = out.members
    assert (one.raft_index, one.raft_term, one.db_size, one.db_size_in_use, one.version, one.error) == \
        (42, 3, 4096, 2048, "3.5.16", "")
    assert two.error.startswith("etcd UNAVAILABLE") and two.db_size == 0
    assert three.error == "NOSPACE"
    assert new.is_learner and new.error == "not started"


def test_no_member_answers() -> None:
    out = etcd_status_response([Member(0xA, "etcd-1", ["http://127.0.0.1:2379"], False, None, "down")])
    assert out.leader == "" and not out.members[0].leader
