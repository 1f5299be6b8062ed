"""The kubelet's pod DNS (node_agent.dns): dnsPolicy, dnsConfig merged as Kubernetes does, the limits, and the
fallback when no cluster DNS is configured."""

from __future__ import annotations

from pathlib import Path

from node_agent import runtime
from node_agent.dns import PodDNS, parse_resolv_conf, resolv_conf
from pybernetes.api.core.v1 import core_pb2 as core

HOST = "# generated\nnameserver 192.168.1.1\nnameserver 192.168.1.2\nsearch corp.example lab.example.\noptions edns0\n"


def pod(policy: str = "", ns: str = "default", host_network: bool = False) -> core.Pod:
    p = core.Pod()
    p.metadata.name, p.metadata.namespace, p.metadata.uid = "web", ns, "u1"
    p.spec.dns_policy = policy
    p.spec.host_network = host_network
    return p


def dns(tmp_path: Path, cluster: list[str] | None = None, domain: str = "cluster.local") -> PodDNS:
    conf = tmp_path / "resolv.conf"
    conf.write_text(HOST)
    return PodDNS(["10.96.0.10"] if cluster is None else cluster, domain, str(conf))


def test_parse_resolv_conf() -> None:
    h = parse_resolv_conf(HOST + "domain only.example\n; comment\n")
    assert h.servers == ("192.168.1.1", "192.168.1.2")
    assert h.searches == ("only.example",)  # the last search/domain line wins
    assert h.options == ("edns0",)


def test_cluster_first(tmp_path: Path) -> None:
    cfg = dns(tmp_path).config(pod("ClusterFirst", ns="shop"))
    assert list(cfg.servers) == ["10.96.0.10"]
    assert list(cfg.searches) == ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example",
                                  "lab.example"]
    assert list(cfg.options) == ["ndots:5"]
    assert resolv_conf(cfg) == ("search shop.svc.cluster.local svc.cluster.local cluster.local corp.example "
                                "lab.example\nnameserver 10.96.0.10\noptions ndots:5\n")
    assert dns(tmp_path).config(pod("")) == dns(tmp_path).config(pod("ClusterFirst"))  # the default policy


def test_default_and_host_network(tmp_path: Path) -> None:
    d = dns(tmp_path)
    for p in (pod("Default"), pod("ClusterFirst", host_network=True)):
        cfg = d.config(p)
        assert list(cfg.servers) == ["192.168.1.1", "192.168.1.2"]
        assert list(cfg.searches) == ["corp.example", "lab.example"]
        assert list(cfg.options) == ["edns0"]
    assert list(d.config(pod("ClusterFirstWithHostNet", host_network=True)).servers) == ["10.96.0.10"]


def test_none_takes_only_dns_config(tmp_path: Path) -> None:
    p = pod("None")
    p.spec.dns_config.nameservers.append("1.1.1.1")
    p.spec.dns_config.searches.append("x.example")
    p.spec.dns_config.options.add(name="ndots", value="2")
    cfg = dns(tmp_path).config(p)
    assert (list(cfg.servers), list(cfg.searches), list(cfg.options)) == (["1.1.1.1"], ["x.example"], ["ndots:2"])


def test_dns_config_merges_with_cluster_first(tmp_path: Path) -> None:
    p = pod("ClusterFirst")
    p.spec.dns_config.nameservers.extend(["10.96.0.10", "1.1.1.1"])
    p.spec.dns_config.searches.extend(["svc.cluster.local", "extra.example"])
    p.spec.dns_config.options.add(name="ndots", value="2")
    p.spec.dns_config.options.add(name="edns0")
    cfg = dns(tmp_path).config(p)
    assert list(cfg.servers) == ["10.96.0.10", "1.1.1.1"]  # no duplicates
    assert list(cfg.searches)[-1] == "extra.example" and list(cfg.searches).count("svc.cluster.local") == 1
    assert list(cfg.options) == ["ndots:2", "edns0"]  # the pod's option wins


def test_limits(tmp_path: Path) -> None:
    events: list[str] = []
    p = pod("ClusterFirst")
    p.spec.dns_config.nameservers.extend(["1.1.1.1", "1.0.0.1", "8.8.8.8"])
    p.spec.dns_config.searches.extend(f"d{i}.example" for i in range(40))
    cfg = dns(tmp_path).config(p, lambda _p, _t, reason, _m: events.append(reason))
    assert list(cfg.servers) == ["10.96.0.10", "1.1.1.1", "1.0.0.1"]
    assert len(cfg.searches) == 32
    assert events == ["DNSConfigForming", "DNSConfigForming"]


def test_no_cluster_dns_falls_back_to_default_with_a_warning(tmp_path: Path) -> None:
    events: list[str] = []
    cfg = dns(tmp_path, cluster=[]).config(pod("ClusterFirst"), lambda _p, _t, reason, _m: events.append(reason))
    assert list(cfg.servers) == ["192.168.1.1", "192.168.1.2"]
    assert events == ["MissingClusterDNS"]


def test_no_resolv_conf_means_localhost(tmp_path: Path) -> None:
    cfg = PodDNS([], "", "").config(pod("Default"))
    assert (list(cfg.servers), list(cfg.searches)) == (["127.0.0.1"], ["."])


def test_sandbox_config_carries_the_dns_config(tmp_path: Path) -> None:
    p = pod("ClusterFirst")
    sb = runtime.sandbox_config(p, tmp_path, 0, dns(tmp_path).config(p))
    assert list(sb.dns_config.servers) == ["10.96.0.10"]
    assert list(runtime.sandbox_config(p, tmp_path, 0).dns_config.servers) == []
