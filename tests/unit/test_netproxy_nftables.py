"""nftables backend: golden rendering, partial-sync deltas with shared elements, full-sync stale removal."""

from __future__ import annotations

from netproxy.model import Endpoint, ServicePortInfo, ServicePortName
from netproxy.nftables import NftBackend, chain_names
from tests.unit.test_netproxy_iptables import FakeRunner

SPN = ServicePortName("ns1", "svc1", "p80", "TCP")
EP1, EP2 = Endpoint("10.180.0.1", 80, "n1", True), Endpoint("10.180.0.2", 80, "n2", False)
SVC, EXT, FW = chain_names(SPN)


def info(**kw: object) -> ServicePortInfo:
    base: dict[str, object] = {"spn": SPN, "cluster_ip": "172.30.0.41", "port": 80}
    base.update(kw)
    return ServicePortInfo(**base)  # type: ignore[arg-type]


def test_chain_names_are_stable() -> None:
    assert SVC == "service-XPGD46QR-ns1/svc1/tcp/p80"
    assert EXT == "external-XPGD46QR-ns1/svc1/tcp/p80"


def test_golden_cluster_ip_and_nodeport() -> None:
    b = NftBackend(FakeRunner())
    u = b.render(info(node_port=30080), (EP1, EP2))
    assert u.chains[SVC] == (
        "ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade",
        "numgen random mod 2 == 0 meta l4proto tcp dnat to 10.180.0.1:80",
        "meta l4proto tcp dnat to 10.180.0.2:80",
    )
    assert u.chains[EXT] == ("jump mark-for-masquerade", f"goto {SVC}")
    assert dict(u.elements) == {
        "cluster-ips": ("172.30.0.41",),
        "service-ips": (f"172.30.0.41 . tcp . 80 : goto {SVC}",),
        "hairpin": ("10.180.0.1 . 10.180.0.1", "10.180.0.2 . 10.180.0.2"),
        "service-nodeports": (f"tcp . 30080 : goto {EXT}",),
    }
    assert not u.sets


def test_no_endpoints_and_local_policy_and_firewall() -> None:
    b = NftBackend(FakeRunner())
    u = b.render(info(node_port=30080), ())
    assert u.elements["no-endpoint-services"] == ("172.30.0.41 . tcp . 80 : goto reject-chain",)
    assert u.elements["no-endpoint-nodeports"] == ("tcp . 30080 : goto reject-chain",)
    assert not u.chains
    u = b.render(info(lb_ips=("192.0.2.10",), lb_source_ranges=("198.51.100.0/24",), external_local=True),
                 (EP2,))  # only a remote endpoint: external traffic is dropped, pods still reach it
    assert u.chains[EXT] == (f"ip saddr 10.244.0.0/16 goto {SVC}", "fib saddr type local jump mark-for-masquerade",
                             f"fib saddr type local goto {SVC}", "drop")
    assert u.chains[FW] == ("ip saddr != { 198.51.100.0/24 } drop", f"goto {EXT}")
    assert f"192.0.2.10 . tcp . 80 : goto {FW}" in u.elements["service-ips"]


def test_affinity_uses_dynamic_sets() -> None:
    b = NftBackend(FakeRunner())
    u = b.render(info(affinity_timeout=10800), (EP1, EP2))
    assert len(u.sets) == 2
    assert all(d == "type ipv4_addr; flags dynamic,timeout; timeout 10800s;" for d in u.sets.values())
    rules = u.chains[SVC]
    assert rules[1].startswith("ip saddr @affinity-") and " goto endpoint-" in rules[1]
    ep_chains = [c for c in u.chains if c.startswith("endpoint-")]
    assert len(ep_chains) == 2
    assert u.chains[ep_chains[0]][0].startswith("update @affinity-")


def test_partial_sync_delta_and_shared_elements() -> None:
    b = NftBackend(FakeRunner())
    other = ServicePortName("ns1", "svc2", "", "TCP")
    o_info = ServicePortInfo(other, "172.30.0.42", 80)
    units = {SPN: b.render(info(), (EP1, EP2)), other: b.render(o_info, (EP2,))}
    plan = b.plan(units, full=True)
    b.commit(plan)
    assert plan.script.startswith("add table ip pybernetes\n")
    # EP2 leaves svc1 but svc2 still uses it: its hairpin element stays
    plan = b.plan({SPN: b.render(info(), (EP1,))}, full=False)
    assert plan.script.splitlines() == [
        f"add chain ip pybernetes {SVC}",
        f"flush chain ip pybernetes {SVC}",
        f"add rule ip pybernetes {SVC} ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.244.0.0/16 "
        "jump mark-for-masquerade",
        f"add rule ip pybernetes {SVC} meta l4proto tcp dnat to 10.180.0.1:80",
    ]
    b.commit(plan)
    # svc2 deleted: its chain goes, its elements go (EP2's hairpin now unreferenced)
    plan = b.plan({other: None}, full=False)
    lines = plan.script.splitlines()
    assert "delete element ip pybernetes hairpin { 10.180.0.2 . 10.180.0.2 }" in lines
    assert "delete element ip pybernetes cluster-ips { 172.30.0.42 }" in lines
    svc2 = chain_names(other)[0]
    assert lines.index(f"flush chain ip pybernetes {svc2}") < lines.index(f"delete chain ip pybernetes {svc2}")
    b.commit(plan)
    assert ("hairpin", "10.180.0.2 . 10.180.0.2") not in b.refs
    assert b.refs[("hairpin", "10.180.0.1 . 10.180.0.1")] == 1


def test_full_sync_replaces_previous_run_without_flushing_table() -> None:
    listing = ("table ip pybernetes {\n\tset affinity-OLD-x {\n\tchain service-OLDOLDOL-ns/old/tcp/ {\n"
               "\tchain services {\n")
    b = NftBackend(FakeRunner({"nft -t list table ip pybernetes": listing}))
    plan = b.plan({SPN: b.render(info(affinity_timeout=60), (EP1,))}, full=True)
    lines = plan.script.splitlines()
    assert "delete table ip pybernetes" not in plan.script and "flush table" not in plan.script
    assert "delete chain ip pybernetes service-OLDOLDOL-ns/old/tcp/" in lines
    assert "delete set ip pybernetes affinity-OLD-x" in lines
    assert "delete chain ip pybernetes services" not in lines
    assert not any(line.startswith("flush set ip pybernetes affinity-") for line in lines)  # affinity kept
    assert "flush map ip pybernetes service-ips" in lines
