"""The lab's cluster DNS wiring without a lab: pb-dns's command line, the kubelets' DNS flags, its health
check and status order, and the kube-dns Service and Endpoints it publishes."""

from __future__ import annotations

from pathlib import Path

from clusterdns import kubedns
from clusterdns import main as dns_main
from lab import commands
from lab.health import health_check
from lab.state import LabState, ProcessRecord
from lab.topology import COMPONENTS, CP_IP, DNS_SERVICE_IP, Plan
from node_agent import main as kubelet_main
from pybernetes import ports


def test_dns_and_kubelet_command_lines(tmp_path: Path) -> None:
    plan = Plan(tmp_path / "lab")
    argv = commands.dns_argv(plan)
    cfg = dns_main.parse_args(argv[len(commands.program("dns")):])
    assert cfg.kubeconfig == str(plan.config_file("dns"))
    assert (cfg.port, cfg.health_port, cfg.cluster_domain, cfg.upstream) == (53, 9153, "cluster.local", [])
    kl_argv = commands.kubelet_argv(plan, plan.nodes[0])
    kl = kubelet_main.parse_args(kl_argv[len(commands.program("kubelet")):])
    assert kl.cluster_dns == [DNS_SERVICE_IP] == [kubedns.CLUSTER_IP]
    assert kl.cluster_domain == "cluster.local"
    assert "dns" in COMPONENTS


def test_dns_health_check_is_its_readyz(tmp_path: Path) -> None:
    st = LabState(dir=str(tmp_path))
    rec = ProcessRecord(name="dns", component="dns", argv=[], log="", netns="pb-control-plane")
    assert health_check(st, rec) is not None
    assert ports.DNS_METRICS == 9153


def test_kube_dns_objects() -> None:
    svc = kubedns.service()
    assert svc.metadata.namespace == "kube-system" and svc.spec.cluster_ip == "10.96.0.10"
    assert not svc.spec.selector
    assert {(p.port, p.protocol) for p in svc.spec.ports} == {(53, "UDP"), (53, "TCP"), (9153, "TCP")}
    ep = kubedns.endpoints(CP_IP)
    assert [a.ip for a in ep.subsets[0].addresses] == ["172.30.0.10"]
    assert {p.name for p in ep.subsets[0].ports} == {p.name for p in svc.spec.ports}
