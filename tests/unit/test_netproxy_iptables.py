"""iptables backend: golden rendering, partial-sync deltas, stale-chain removal (fake runner, no kernel)."""

from __future__ import annotations

import subprocess

from netproxy.backend import Options
from netproxy.execs import Runner
from netproxy.iptables import IptablesBackend, sep_chain, svc_chain
from netproxy.model import Endpoint, ServicePortInfo, ServicePortName

SPN = ServicePortName("ns1", "svc1", "p80", "TCP")
EP1, EP2 = Endpoint("10.180.0.1", 80, "n1", True), Endpoint("10.180.0.2", 80, "n2", False)


class FakeRunner(Runner):
    def __init__(self, outputs: dict[str, str] | None = None) -> None:
        super().__init__()
        self.calls: list[tuple[list[str], str | None]] = []
        self.outputs = outputs or {}

    def run(self, *cmd: str, input: str | None = None, check: bool = True,
            timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        self.calls.append((list(cmd), input))
        key = " ".join(cmd)
        return subprocess.CompletedProcess(list(cmd), 0, self.outputs.get(key, ""), "")

    def restores(self) -> list[str]:
        return [i for c, i in self.calls if c[0].endswith("restore") and i is not None]


def info(**kw: object) -> ServicePortInfo:
    base: dict[str, object] = {"spn": SPN, "cluster_ip": "172.30.0.41", "port": 80}
    base.update(kw)
    return ServicePortInfo(**base)  # type: ignore[arg-type]


def test_golden_cluster_ip_two_endpoints() -> None:
    b = IptablesBackend(FakeRunner())
    u = b.render(info(), (EP1, EP2))
    assert u.chains["nat/KUBE-SVC-XPGD46QRK7WJZT7O"] == (
        '-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -d 172.30.0.41/32 -m tcp -p tcp '
        "--dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ",
        '-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random '
        "--probability 0.5000000000 -j KUBE-SEP-SXIVWICOYRO3J4NJ",
        '-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.2:80" -j '
        + sep_chain(SPN, EP2),
    )
    assert u.chains["nat/KUBE-SEP-SXIVWICOYRO3J4NJ"] == (
        "-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1/32 -j KUBE-MARK-MASQ",
        "-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT "
        "--to-destination 10.180.0.1:80",
    )
    assert u.elements == {"nat/KUBE-SERVICES": (
        '-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -d 172.30.0.41/32 -m tcp -p tcp --dport 80 '
        "-j KUBE-SVC-XPGD46QRK7WJZT7O",)}


def test_probabilities_cascade_and_affinity() -> None:
    b = IptablesBackend(FakeRunner(), Options(masquerade_all=True))
    eps = tuple(Endpoint(f"10.180.0.{i}", 80) for i in range(1, 4))
    rules = b.render(info(affinity_timeout=10800), eps).chains["nat/" + svc_chain(SPN)]
    assert "! -s" not in rules[0]
    assert sum("--rcheck --seconds 10800 --reap" in r for r in rules) == 3
    probs = [r.split("--probability ")[1].split()[0] for r in rules if "--probability" in r]
    assert probs == ["0.3333333333", "0.5000000000"]
    sep = b.render(info(affinity_timeout=10800), eps).chains["nat/" + sep_chain(SPN, eps[0])]
    assert "-m recent --name " + sep_chain(SPN, eps[0]) + " --mask 255.255.255.255 --rsource --set" in sep[1]


def test_no_endpoints_rejects_and_local_policy() -> None:
    b = IptablesBackend(FakeRunner())
    u = b.render(info(node_port=30080, external_ips=("192.0.2.1",)), ())
    assert not u.chains
    assert u.elements["filter/KUBE-SERVICES"][0].endswith("-j REJECT --reject-with tcp-reset")
    ext = u.elements["filter/KUBE-EXTERNAL-SERVICES"]
    assert len(ext) == 2 and "--dst-type LOCAL" in ext[1] and "--dport 30080" in ext[1]
    u = b.render(info(node_port=30080, external_local=True), (EP1, EP2))
    ext_rules = u.chains["nat/KUBE-EXT-XPGD46QRK7WJZT7O"]
    assert ext_rules[-1] == "-A KUBE-EXT-XPGD46QRK7WJZT7O -j KUBE-SVL-XPGD46QRK7WJZT7O"
    assert u.chains["nat/KUBE-SVL-XPGD46QRK7WJZT7O"] == (
        '-A KUBE-SVL-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" '
        "-j KUBE-SEP-SXIVWICOYRO3J4NJ",)


def test_partial_sync_touches_only_changed_chains() -> None:
    r = FakeRunner()
    b = IptablesBackend(r)
    other = ServicePortName("ns1", "svc2", "", "TCP")
    units = {SPN: b.render(info(), (EP1, EP2)),
             other: b.render(ServicePortInfo(other, "172.30.0.42", 80), (Endpoint("10.180.0.9", 80),))}
    plan = b.plan(units, full=True)
    b.execute(plan)
    b.commit(plan)
    assert ":KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]" in plan.script and ":KUBE-MARK-MASQ - [0:0]" in plan.script
    # one endpoint goes away: its SEP is declared and deleted, the SVC rewritten, KUBE-SERVICES untouched
    plan = b.plan({SPN: b.render(info(), (EP1,))}, full=False)
    lines = plan.script.splitlines()
    assert lines == ["*nat", ":KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]", ":" + sep_chain(SPN, EP2) + " - [0:0]",
                     *b.render(info(), (EP1,)).chains["nat/KUBE-SVC-XPGD46QRK7WJZT7O"],
                     "-X " + sep_chain(SPN, EP2), "COMMIT"]
    b.commit(plan)
    # last endpoint gone: filter REJECT appears, nat KUBE-SERVICES rewritten without the service
    plan = b.plan({SPN: b.render(info(), ())}, full=False)
    assert "*filter\n:KUBE-SERVICES - [0:0]\n" in plan.script and "REJECT" in plan.script
    assert ":KUBE-SERVICES - [0:0]" in plan.script.split("*nat")[1]
    assert "-X KUBE-SVC-XPGD46QRK7WJZT7O" in plan.script


def test_full_sync_removes_stale_chains_from_a_previous_run() -> None:
    saved = ":KUBE-SERVICES - [0:0]\n:KUBE-SVC-OLDOLDOLDOLDOLDO - [0:0]\n:KUBE-SEP-OLDOLDOLDOLDOLDO - [0:0]\n"
    r = FakeRunner({"iptables-save -t nat": saved})
    b = IptablesBackend(r)
    plan = b.plan({SPN: b.render(info(), (EP1,))}, full=True)
    assert "-X KUBE-SVC-OLDOLDOLDOLDOLDO" in plan.script and "-X KUBE-SEP-OLDOLDOLDOLDOLDO" in plan.script
    assert "-X KUBE-SERVICES" not in plan.script
    b.execute(plan)
    assert r.restores()[0] == plan.script
    assert any(c[:5] == ["iptables", "-w", "-t", "nat", "-C"] for c, _ in r.calls)  # jumps ensured
