"""The lab's etcd: one member as before (record `etcd`, member control-plane, Kubernetes' ports), or three
members etcd-1..3 on distinct ports with one initial cluster, every endpoint given to the apiserver."""

from __future__ import annotations

from pathlib import Path

from lab import commands
from lab.topology import Plan
from pybernetes import ports


def flags(argv: list[str]) -> dict[str, str]:
    return dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)


def test_one_member_is_the_lab_as_it_was(tmp_path: Path) -> None:
    plan = Plan(dir=tmp_path)
    [m] = plan.etcd
    assert (m.record, m.name, m.data) == ("etcd", "control-plane", tmp_path / "control-plane" / "etcd")
    f = flags(commands.etcd_argv(m, plan.etcd, plan.pki_dir))
    # TLS for clients and peers (etcd/ca), a certificate required of both; metrics and /health stay plain on
    # their own loopback port, as kubeadm has them
    assert f["listen-client-urls"] == f"https://127.0.0.1:{ports.ETCD_CLIENT}"
    assert f["initial-cluster"] == f"control-plane=https://127.0.0.1:{ports.ETCD_PEER}"
    assert f["listen-metrics-urls"] == f"http://127.0.0.1:{ports.ETCD_METRICS}"
    assert f["client-cert-auth"] == f["peer-client-cert-auth"] == "true"
    assert f["trusted-ca-file"] == f["peer-trusted-ca-file"] == str(plan.pki_dir / "etcd" / "ca.crt")
    assert f["cert-file"] == str(plan.pki_dir / "etcd" / "server.crt")
    assert f["peer-cert-file"] == str(plan.pki_dir / "etcd" / "peer.crt")
    assert "initial-cluster-state" not in f
    assert f["snapshot-count"] == "10000"  # kubeadm's, as the standalone apiserver's etcd
    assert f["election-timeout"] == "500"  # a lone member elects itself sooner
    api = flags(commands.apiserver_argv(plan))
    assert api["etcd-servers"] == f"https://127.0.0.1:{ports.ETCD_CLIENT}"
    assert (api["etcd-cafile"], api["etcd-certfile"], api["etcd-keyfile"]) == tuple(
        str(plan.pki_dir / p) for p in ("etcd/ca.crt", "apiserver-etcd-client.crt", "apiserver-etcd-client.key"))
    assert api["kubelet-client-certificate"] == str(plan.pki_dir / "apiserver-kubelet-client.crt")
    assert api["kubelet-certificate-authority"] == str(plan.pki_dir / "ca.crt")
    # kubeadm's admission on top of kube-apiserver's defaults: kubelets write only their own node's objects
    assert api["enable-admission-plugins"] == "NodeRestriction"


def test_three_members(tmp_path: Path) -> None:
    plan = Plan(dir=tmp_path, etcd_count=3)
    ms = plan.etcd
    assert [m.record for m in ms] == [m.name for m in ms] == ["etcd-1", "etcd-2", "etcd-3"]
    used = [p for m in ms for p in (m.client_port, m.peer_port, m.metrics_port)]
    assert len(set(used)) == 9 and ms[0].client_port == ports.ETCD_CLIENT
    assert all(not ports.NODE_PORT_RANGE[0] <= p <= ports.NODE_PORT_RANGE[1] for p in used)
    assert len({m.data for m in ms}) == 3
    cluster = ",".join(f"{m.name}={m.peer_url}" for m in ms)
    for m in ms:
        f = flags(commands.etcd_argv(m, ms, plan.pki_dir))
        assert f["name"] == m.name and f["data-dir"] == str(m.data)
        assert f["initial-cluster"] == cluster and f["initial-cluster-state"] == "new"
        assert "election-timeout" not in f  # etcd's default among members that can contest it
        assert f["listen-client-urls"] == f["advertise-client-urls"] == m.client_url
    assert flags(commands.apiserver_argv(plan))["etcd-servers"] == ",".join(m.client_url for m in ms)


def test_every_etcd_takes_kubeadms_snapshot_count(tmp_path: Path) -> None:
    # the raft log etcd holds in memory is bounded by it: the lab's members and a standalone apiserver's own etcd
    # (deploy/, Vagrant) alike
    from services.apiserver.storage.embedded import EmbeddedEtcd

    assert flags(EmbeddedEtcd(tmp_path)._args())["snapshot-count"] == "10000"
    assert flags(EmbeddedEtcd(tmp_path)._args())["election-timeout"] == "500"
    plan = Plan(dir=tmp_path, etcd_count=3)
    assert {flags(commands.etcd_argv(m, plan.etcd, plan.pki_dir))["snapshot-count"] for m in plan.etcd} == {"10000"}
