"""iptables backend: kube-proxy's chains, applied with `iptables-restore --noflush` on our own chains.

nat table:
  PREROUTING/OUTPUT -> KUBE-SERVICES: per service port `-d CLUSTERIP --dport P -j KUBE-SVC-<h>`, external
  and LB IPs -> KUBE-EXT-<h> (KUBE-FW-<h> with loadBalancerSourceRanges), last `--dst-type LOCAL ->
  KUBE-NODEPORTS` (`--dport NODEPORT -j KUBE-EXT-<h>`).
  KUBE-SVC-<h>: masquerade mark for sources outside the cluster CIDR, ClientIP affinity (`-m recent
  --rcheck --seconds T --reap`), endpoints by `-m statistic --mode random --probability 1/(n-i)`.
  KUBE-SEP-<h>: hairpin masquerade mark (`-s EP`), `-m recent --set` with affinity, DNAT.
  KUBE-EXT-<h>: mark + KUBE-SVC (Cluster), or pods/local sources to KUBE-SVC and others to KUBE-SVL-<h>
  (local endpoints only) for externalTrafficPolicy Local.
  POSTROUTING -> KUBE-POSTROUTING: MASQUERADE what carries mark 0x4000.
filter table: KUBE-SERVICES (cluster IPs without endpoints: REJECT) from FORWARD/OUTPUT/INPUT,
  KUBE-EXTERNAL-SERVICES (external IPs/NodePorts without endpoints: REJECT; Local without local ones:
  DROP) from INPUT/FORWARD, KUBE-FIREWALL drops the 0x8000 mark set by KUBE-FW chains.

Chain names hash exactly as kube-proxy's (`KUBE-SVC-` + base32(sha256("ns/name:port" + "tcp"))[:16]).
A partial sync rewrites only changed KUBE-SVC/SEP/EXT/FW/SVL chains (declaring a chain in a --noflush
restore flushes it; a removed chain is declared then `-X`ed) and a top-level chain only when its lines
changed (a service added or removed, or switching between "has endpoints" and REJECT).

Measured with iptables-nft 1.8.9 (nf_tables): a full --noflush load grows super-linearly (1,000 services
x 10 endpoints: ~8 s), so this backend does not meet the 5,000-service targets; nftables is the default.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from netproxy.backend import Backend, Options, Plan
from netproxy.execs import CommandError, Runner
from netproxy.model import Endpoint, ServicePortInfo, ServicePortName, Unit, endpoint_hash, port_proto_hash

MASQ_MARK = "0x4000"
DROP_MARK = "0x8000"

# top-level chains (lines contributed by every unit) per table
TOP = {
    "nat": ("KUBE-SERVICES", "KUBE-NODEPORTS"),
    "filter": ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES"),
}
STATIC = {
    "nat": ("KUBE-POSTROUTING", "KUBE-MARK-MASQ", "KUBE-MARK-DROP"),
    "filter": ("KUBE-FIREWALL",),
}
# (table, builtin chain, rule spec) jumps into our chains; inserted at the top once
JUMPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("nat", "PREROUTING", ("-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES")),
    ("nat", "OUTPUT", ("-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES")),
    ("nat", "POSTROUTING", ("-m", "comment", "--comment", "kubernetes postrouting rules", "-j", "KUBE-POSTROUTING")),
    ("filter", "INPUT", ("-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                         "kubernetes externally-visible service portals", "-j", "KUBE-EXTERNAL-SERVICES")),
    ("filter", "FORWARD", ("-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                           "kubernetes externally-visible service portals", "-j", "KUBE-EXTERNAL-SERVICES")),
    ("filter", "INPUT", ("-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                         "kubernetes service portals", "-j", "KUBE-SERVICES")),
    ("filter", "FORWARD", ("-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                           "kubernetes service portals", "-j", "KUBE-SERVICES")),
    ("filter", "OUTPUT", ("-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                          "kubernetes service portals", "-j", "KUBE-SERVICES")),
    ("filter", "INPUT", ("-j", "KUBE-FIREWALL")),
    ("filter", "FORWARD", ("-j", "KUBE-FIREWALL")),
    ("filter", "OUTPUT", ("-j", "KUBE-FIREWALL")),
)


def svc_chain(spn: ServicePortName) -> str:
    return "KUBE-SVC-" + port_proto_hash(spn)


def svl_chain(spn: ServicePortName) -> str:
    return "KUBE-SVL-" + port_proto_hash(spn)


def ext_chain(spn: ServicePortName) -> str:
    return "KUBE-EXT-" + port_proto_hash(spn)


def fw_chain(spn: ServicePortName) -> str:
    return "KUBE-FW-" + port_proto_hash(spn)


def sep_chain(spn: ServicePortName, ep: Endpoint) -> str:
    return "KUBE-SEP-" + endpoint_hash(spn, str(ep))


def _q(text: str) -> str:
    return f'"{text}"' if " " in text else text


def static_rules(options: Options) -> dict[str, dict[str, tuple[str, ...]]]:
    if options.nodeport_addresses:
        tail = tuple(f"-A KUBE-SERVICES -d {cidr} -m comment --comment \"kubernetes service nodeports\" "
                     "-j KUBE-NODEPORTS" for cidr in options.nodeport_addresses)
    else:
        tail = ("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the "
                "last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS",)
    return {
        "nat": {
            "KUBE-SERVICES/tail": tail,
            "KUBE-POSTROUTING": (f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
                                 f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK}",
                                 "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring "
                                 "SNAT\" -j MASQUERADE --random-fully"),
            "KUBE-MARK-MASQ": (f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK}",),
            "KUBE-MARK-DROP": (f"-A KUBE-MARK-DROP -j MARK --or-mark {DROP_MARK}",),
        },
        "filter": {
            "KUBE-FIREWALL": (f"-A KUBE-FIREWALL -m comment --comment \"kubernetes firewall for dropping marked "
                              f"packets\" -m mark --mark {DROP_MARK}/{DROP_MARK} -j DROP",),
        },
    }


class IptablesBackend(Backend):
    name = "iptables"

    def __init__(self, runner: Runner | None = None, options: Options | None = None, *, iptables: str = "iptables",
                 restore: str = "iptables-restore", save: str = "iptables-save") -> None:
        super().__init__(runner, options)
        self.iptables, self.restore, self.save = iptables, restore, save
        self.kernel_chains: dict[str, set[str]] | None = None
        self.top_lines: dict[str, tuple[str, ...]] = {}

    # ---- rendering -------------------------------------------------------------------------------------------

    def _balance(self, chain: str, spn: ServicePortName, eps: tuple[Endpoint, ...], timeout: int) -> list[str]:
        rules: list[str] = []
        if timeout:
            for ep in eps:
                sep = sep_chain(spn, ep)
                rules.append(f"-A {chain} -m comment --comment \"{spn} -> {ep}\" -m recent --name {sep} "
                             f"--mask 255.255.255.255 --rsource --rcheck --seconds {timeout} --reap -j {sep}")
        n = len(eps)
        for i, ep in enumerate(eps):
            prob = f"-m statistic --mode random --probability {1.0 / (n - i):0.10f} " if n - i > 1 else ""
            rules.append(f"-A {chain} -m comment --comment \"{spn} -> {ep}\" {prob}-j {sep_chain(spn, ep)}")
        return rules

    def render(self, info: ServicePortInfo, endpoints: tuple[Endpoint, ...]) -> Unit:
        spn, o = info.spn, self.options
        p = spn.proto
        svc, svl, ext, fw = svc_chain(spn), svl_chain(spn), ext_chain(spn), fw_chain(spn)
        chains: dict[str, tuple[str, ...]] = {}
        top: dict[str, list[str]] = {}
        cluster_eps = tuple(e for e in endpoints if e.is_local) if info.internal_local else endpoints
        local_eps = tuple(e for e in endpoints if e.is_local)
        match = f"-m {p} -p {p}"
        reject = "-j REJECT --reject-with tcp-reset" if p == "tcp" else "-j REJECT"

        def add_top(key: str, line: str) -> None:
            top.setdefault(key, []).append(line)

        for ep in endpoints:
            sep = sep_chain(spn, ep)
            rec = f"-m recent --name {sep} --mask 255.255.255.255 --rsource --set " if info.affinity_timeout else ""
            chains[f"nat/{sep}"] = (
                f"-A {sep} -m comment --comment {_q(str(spn))} -s {ep.ip}/32 -j KUBE-MARK-MASQ",
                f"-A {sep} -m comment --comment {_q(str(spn))} {rec}{match} -j DNAT --to-destination {ep}",
            )
        comment = f"-m comment --comment \"{spn} cluster IP\""
        dst = f"-d {info.cluster_ip}/32 {match} --dport {info.port}"
        if cluster_eps:
            masq = "" if o.masquerade_all else f" ! -s {o.cluster_cidr}"
            chains[f"nat/{svc}"] = (f"-A {svc} {comment} {dst}{masq} -j KUBE-MARK-MASQ",
                                    *self._balance(svc, spn, cluster_eps, info.affinity_timeout))
            add_top("nat/KUBE-SERVICES", f"-A KUBE-SERVICES {comment} {dst} -j {svc}")
        else:
            add_top("filter/KUBE-SERVICES", f"-A KUBE-SERVICES -m comment --comment \"{spn} has no endpoints\" "
                                            f"{dst} {reject}")
        if info.has_external:
            ext_dests = [f"-d {ip}/32 {match} --dport {info.port}" for ip in info.external_ips]
            lb_dests = [f"-d {ip}/32 {match} --dport {info.port}" for ip in info.lb_ips]
            np_dest = f"-m addrtype --dst-type LOCAL {match} --dport {info.node_port}" if info.node_port else ""
            if not endpoints or (info.external_local and not local_eps and not cluster_eps):
                verdict = reject if not endpoints else "-j DROP"
                why = "has no endpoints" if not endpoints else "has no local endpoints"
                for d in [*ext_dests, *lb_dests, *([np_dest] if np_dest else [])]:
                    add_top("filter/KUBE-EXTERNAL-SERVICES",
                            f"-A KUBE-EXTERNAL-SERVICES -m comment --comment \"{spn} {why}\" {d} {verdict}")
            else:
                if info.external_local:
                    rules = []
                    if cluster_eps:
                        rules += [f"-A {ext} -s {o.cluster_cidr} -m comment --comment \"pod traffic for {spn} "
                                  f"external destinations\" -j {svc}",
                                  f"-A {ext} -m comment --comment \"masquerade LOCAL traffic for {spn} external "
                                  "destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
                                  f"-A {ext} -m comment --comment \"route LOCAL traffic for {spn} external "
                                  f"destinations\" -m addrtype --src-type LOCAL -j {svc}"]
                    if local_eps:
                        rules.append(f"-A {ext} -j {svl}")
                        chains[f"nat/{svl}"] = tuple(self._balance(svl, spn, local_eps, info.affinity_timeout))
                    else:
                        rules.append(f"-A {ext} -j KUBE-MARK-DROP")
                    chains[f"nat/{ext}"] = tuple(rules)
                else:
                    chains[f"nat/{ext}"] = (f"-A {ext} -m comment --comment \"masquerade traffic for {spn} external "
                                            "destinations\" -j KUBE-MARK-MASQ", f"-A {ext} -j {svc}")
                for d in ext_dests:
                    add_top("nat/KUBE-SERVICES", f"-A KUBE-SERVICES -m comment --comment \"{spn} external IP\" "
                                                 f"{d} -j {ext}")
                lb_target = ext
                if info.lb_source_ranges and lb_dests:
                    lb_target = fw
                    chains[f"nat/{fw}"] = (
                        *(f"-A {fw} -m comment --comment \"{spn} loadbalancer IP\" -s {r} -j {ext}"
                          for r in info.lb_source_ranges),
                        f"-A {fw} -m comment --comment \"{spn} loadbalancer IP\" -j KUBE-MARK-DROP")
                for d in lb_dests:
                    add_top("nat/KUBE-SERVICES", f"-A KUBE-SERVICES -m comment --comment \"{spn} loadbalancer IP\" "
                                                 f"{d} -j {lb_target}")
                if info.node_port:
                    add_top("nat/KUBE-NODEPORTS", f"-A KUBE-NODEPORTS -m comment --comment {_q(str(spn))} "
                                                  f"{match} --dport {info.node_port} -j {ext}")
        return Unit(chains=chains, elements={k: tuple(v) for k, v in top.items()})

    # ---- scripts ---------------------------------------------------------------------------------------------

    def _read_kernel(self) -> None:
        chains: dict[str, set[str]] = {"nat": set(), "filter": set()}
        for table in chains:
            res = self.runner.run(self.save, "-t", table, check=False)
            for line in res.stdout.splitlines():
                m = re.match(r":(KUBE-\S+) ", line)
                if m:
                    chains[table].add(m.group(1))
        self.kernel_chains = chains

    def _top(self, units: Mapping[ServicePortName, Unit], key: str) -> tuple[str, ...]:
        lines: list[str] = []
        for spn in sorted(units):
            lines += units[spn].elements.get(key, ())
        if key == "nat/KUBE-SERVICES":
            lines += static_rules(self.options)["nat"]["KUBE-SERVICES/tail"]
        return tuple(lines)

    def _script(self, decl: dict[str, list[str]], rules: dict[str, list[str]], delete: dict[str, list[str]]) -> str:
        out: list[str] = []
        for table in ("filter", "nat"):
            if not (decl[table] or delete[table]):
                continue
            out.append(f"*{table}")
            out += [f":{c} - [0:0]" for c in decl[table]]
            out += [f":{c} - [0:0]" for c in delete[table] if c not in decl[table]]
            out += rules[table]
            out += [f"-X {c}" for c in delete[table]]
            out.append("COMMIT")
        return "\n".join(out) + "\n"

    def plan(self, changes: Mapping[ServicePortName, Unit | None], *, full: bool) -> Plan:
        units = self.next_units(changes, full)
        decl: dict[str, list[str]] = {"nat": [], "filter": []}
        rules: dict[str, list[str]] = {"nat": [], "filter": []}
        delete: dict[str, list[str]] = {"nat": [], "filter": []}

        def write(table: str, chain: str, lines: Iterable[str]) -> None:
            decl[table].append(chain)
            rules[table].extend(lines)

        full = full or not self.synced_once
        top_lines: dict[str, tuple[str, ...]] = dict(self.top_lines)
        if full:
            if self.kernel_chains is None:
                self._read_kernel()
            assert self.kernel_chains is not None
            wanted: dict[str, set[str]] = {"nat": set(), "filter": set()}
            for table, chains in TOP.items():
                for c in chains:
                    key = f"{table}/{c}"
                    top_lines[key] = self._top(units, key)
                    write(table, c, top_lines[key])
                    wanted[table].add(c)
            for table, statics in static_rules(self.options).items():
                for c, lines in statics.items():
                    if "/" not in c:
                        write(table, c, lines)
                        wanted[table].add(c)
            for spn in sorted(units):
                for key, lines in units[spn].chains.items():
                    table, c = key.split("/", 1)
                    write(table, c, lines)
                    wanted[table].add(c)
            for table in ("nat", "filter"):
                delete[table] = sorted(self.kernel_chains[table] - wanted[table])
            kernel = wanted
        else:
            old = {k: self.applied[k] for k in changes if k in self.applied}
            new = {k: units[k] for k in changes if k in units}
            old_chains = {c: r for u in old.values() for c, r in u.chains.items()}
            new_chains = {c: r for u in new.values() for c, r in u.chains.items()}
            touched_tops = {k for u in (*old.values(), *new.values()) for k in u.elements}
            for key in sorted(touched_tops):
                lines = self._top(units, key)
                if lines != top_lines.get(key):
                    top_lines[key] = lines
                    table, c = key.split("/", 1)
                    write(table, c, lines)
            for key in sorted(new_chains):
                if old_chains.get(key) != new_chains[key]:
                    table, c = key.split("/", 1)
                    write(table, c, new_chains[key])
            for key in sorted(set(old_chains) - set(new_chains)):
                table, c = key.split("/", 1)
                delete[table].append(c)
            kernel = None
            if self.kernel_chains is not None:
                kernel = {t: set(cs) for t, cs in self.kernel_chains.items()}
                for t in kernel:
                    kernel[t] = (kernel[t] - set(delete[t])) | set(decl[t])
        script = self._script(decl, rules, delete)
        return Plan(full=full, script=script, units=units, extra={"top": top_lines, "kernel": kernel},
                    changed=len(units) if full else len(changes))

    def ensure_jumps(self) -> None:
        for table, chain, spec in JUMPS:
            if self.runner.run(self.iptables, "-w", "-t", table, "-C", chain, *spec, check=False).returncode != 0:
                self.runner.run(self.iptables, "-w", "-t", table, "-I", chain, "1", *spec)

    def execute(self, plan: Plan) -> None:
        if plan.script.strip():
            self.runner.run(self.restore, "-w", "--noflush", input=plan.script)
        if plan.full:
            self.ensure_jumps()

    def commit(self, plan: Plan) -> None:
        super().commit(plan)
        top, kernel = plan.extra["top"], plan.extra["kernel"]
        assert isinstance(top, dict)
        self.top_lines = top
        self.kernel_chains = kernel if isinstance(kernel, dict) else None

    def cleanup(self) -> None:
        for table, chain, spec in JUMPS:
            while self.runner.run(self.iptables, "-w", "-t", table, "-D", chain, *spec, check=False).returncode == 0:
                pass
        self._read_kernel()
        assert self.kernel_chains is not None
        empty: dict[str, list[str]] = {"nat": [], "filter": []}
        delete = {t: sorted(cs) for t, cs in self.kernel_chains.items()}
        script = self._script({"nat": [], "filter": []}, empty, delete)
        if script.strip():
            try:
                self.runner.run(self.restore, "-w", "--noflush", input=script)
            except CommandError:
                raise
        self.applied, self.top_lines, self.synced_once, self.kernel_chains = {}, {}, False, None

    def dump(self) -> str:
        return self.runner.run(self.save).stdout
