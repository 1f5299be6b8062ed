"""nftables backend (default): one `table ip pybernetes`, verdict maps for dispatch, atomic `nft -f`.

Layout (kube-proxy's nftables mode, made cheaper for nft's userspace):
- `services`: `ip daddr . meta l4proto . th dport vmap @service-ips` (cluster, external and LB IPs) and
  `fib daddr type local ... vmap @service-nodeports`; jumped from the nat prerouting/output hooks.
- per service port a `service-<hash>-ns/name/proto/port` chain: masquerade mark for traffic from outside
  the cluster CIDR, then the endpoints as a cascade `numgen random mod (n-i) == 0 dnat to ip:port`, the
  same distribution as iptables' `statistic` cascade but without per-endpoint chains or anonymous maps,
  which make `nft` superlinear (5,000 services: 1.8 s vs 15 s with endpoint chains).
- sessionAffinity ClientIP: per endpoint an `endpoint-...` chain that records the client in a dynamic
  `affinity-...` set with the affinity timeout, and the service chain first sends known clients back there.
- `external-...` chains for NodePort/externalIPs/LB (masquerade; externalTrafficPolicy Local: pods and the
  node itself go cluster-wide, others only to local endpoints or are dropped), `firewall-...` for
  loadBalancerSourceRanges.
- services without endpoints are in `no-endpoint-services` / `no-endpoint-nodeports` whose verdict goes to
  `reject-chain` (TCP reset, ICMP port unreachable otherwise) from filter hooks on prerouting (after DNAT)
  and output, so a client gets "connection refused" at once; traffic to a cluster IP on an unknown port
  is rejected too (`cluster-ips`).
- hairpin (a pod reaching itself through its service) is masqueraded by `ip saddr . ip daddr @hairpin`.

A partial sync flushes and refills only the changed chains and adds/deletes only the changed elements
(elements are reference-counted: two services may share an endpoint IP in `hairpin`). A full sync
re-declares everything in one transaction and deletes chains and sets we own but no longer want; the
dynamic affinity sets are declared, never flushed, so affinity survives resyncs and restarts.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import cast

from netproxy.backend import Backend, Options, Plan
from netproxy.execs import CommandError, Runner
from netproxy.model import Endpoint, ServicePortInfo, ServicePortName, Unit, endpoint_hash, port_proto_hash

TABLE = "pybernetes"
FAMILY = "ip"
T = f"{FAMILY} {TABLE}"
MASQ_MARK = "0x4000"

SHARED_SETS: dict[str, str] = {
    "cluster-ips": "type ipv4_addr;",
    "nodeport-ips": "type ipv4_addr;",
    "hairpin": "type ipv4_addr . ipv4_addr;",
    "service-ips": "type ipv4_addr . inet_proto . inet_service : verdict;",
    "service-nodeports": "type inet_proto . inet_service : verdict;",
    "no-endpoint-services": "type ipv4_addr . inet_proto . inet_service : verdict;",
    "no-endpoint-nodeports": "type inet_proto . inet_service : verdict;",
}
MAPS = {"service-ips", "service-nodeports", "no-endpoint-services", "no-endpoint-nodeports"}


def static_chains(options: Options) -> dict[str, tuple[str | None, tuple[str, ...]]]:
    """name -> (base chain spec or None, rules)."""
    if options.nodeport_addresses:
        nodeport_match = "ip daddr @nodeport-ips"
    else:
        nodeport_match = "fib daddr type local ip daddr != 127.0.0.0/8"
    return {
        "nat-prerouting": ("type nat hook prerouting priority dstnat; policy accept;", ("jump services",)),
        "nat-output": ("type nat hook output priority -100; policy accept;", ("jump services",)),
        "nat-postrouting": ("type nat hook postrouting priority srcnat; policy accept;", ("jump masquerading",)),
        "filter-prerouting": ("type filter hook prerouting priority -90; policy accept;",
                              ("ct state new jump service-endpoints-check",
                               "ct state new jump nodeport-endpoints-check",
                               "ct state new jump cluster-ips-check")),
        "filter-output": ("type filter hook output priority -90; policy accept;",
                          ("ct state new jump service-endpoints-check",
                           "ct state new jump nodeport-endpoints-check",
                           "ct state new jump cluster-ips-check")),
        "services": (None, ("ip daddr . meta l4proto . th dport vmap @service-ips",
                            f"{nodeport_match} meta l4proto . th dport vmap @service-nodeports")),
        "service-endpoints-check": (None, ("ip daddr . meta l4proto . th dport vmap @no-endpoint-services",)),
        "nodeport-endpoints-check": (None, (f"{nodeport_match} meta l4proto . th dport vmap @no-endpoint-nodeports",)),
        "cluster-ips-check": (None, ("ip daddr @cluster-ips reject",)),
        "reject-chain": (None, ("meta l4proto tcp reject with tcp reset", "reject")),
        "mark-for-masquerade": (None, (f"meta mark set meta mark or {MASQ_MARK}",)),
        "masquerading": (None, ("ct status dnat ip saddr . ip daddr @hairpin masquerade",
                                f"meta mark & {MASQ_MARK} == 0 return",
                                f"meta mark set meta mark xor {MASQ_MARK}",
                                "masquerade fully-random")),
    }


def _label(spn: ServicePortName) -> str:
    return f"{spn.namespace}/{spn.name}/{spn.proto}/{spn.port}"


def chain_names(spn: ServicePortName) -> tuple[str, str, str]:
    h, label = port_proto_hash(spn, 8), _label(spn)
    return f"service-{h}-{label}", f"external-{h}-{label}", f"firewall-{h}-{label}"


class NftBackend(Backend):
    name = "nftables"

    def __init__(self, runner: Runner | None = None, options: Options | None = None, *, nft: str = "nft") -> None:
        super().__init__(runner, options)
        self.nft = nft
        self.refs: Counter[tuple[str, str]] = Counter()
        self.kernel_chains: set[str] | None = None  # what the kernel holds (None: not read yet)
        self.kernel_sets: set[str] | None = None
        self.nodeport_ips: tuple[str, ...] = ()

    # ---- rendering -------------------------------------------------------------------------------------------

    def _cascade(self, spn: ServicePortName, eps: tuple[Endpoint, ...], affinity: bool) -> list[str]:
        rules: list[str] = []
        n = len(eps)
        for i, ep in enumerate(eps):
            k = n - i
            prefix = f"numgen random mod {k} == 0 " if k > 1 else ""
            if affinity:
                rules.append(f"{prefix}goto {self._ep_chain(spn, ep)}")
            else:
                rules.append(f"{prefix}meta l4proto {spn.proto} dnat to {ep.ip}:{ep.port}")
        return rules

    def _ep_chain(self, spn: ServicePortName, ep: Endpoint) -> str:
        return f"endpoint-{endpoint_hash(spn, str(ep), 8)}-{_label(spn)}__{ep.ip}/{ep.port}"

    def _aff_set(self, spn: ServicePortName, ep: Endpoint, timeout: int) -> str:
        return f"affinity-{endpoint_hash(spn, f'{ep}/{timeout}', 8)}-{_label(spn)}__{ep.ip}/{ep.port}"

    def render(self, info: ServicePortInfo, endpoints: tuple[Endpoint, ...]) -> Unit:
        spn, o = info.spn, self.options
        proto = spn.proto
        svc_chain, ext_chain, fw_chain = chain_names(spn)
        chains: dict[str, tuple[str, ...]] = {}
        elements: dict[str, list[str]] = {"cluster-ips": [info.cluster_ip]}
        sets: dict[str, str] = {}
        affinity = info.affinity_timeout > 0
        cluster_eps = tuple(e for e in endpoints if e.is_local) if info.internal_local else endpoints
        local_eps = tuple(e for e in endpoints if e.is_local)

        def ep_chains(eps: Iterable[Endpoint]) -> None:
            for ep in eps:
                aset = self._aff_set(spn, ep, info.affinity_timeout)
                sets[aset] = f"type ipv4_addr; flags dynamic,timeout; timeout {info.affinity_timeout}s;"
                chains[self._ep_chain(spn, ep)] = (f"update @{aset} {{ ip saddr }}",
                                                   f"meta l4proto {proto} dnat to {ep.ip}:{ep.port}")

        def affinity_rules(eps: Iterable[Endpoint]) -> list[str]:
            return [f"ip saddr @{self._aff_set(spn, ep, info.affinity_timeout)} goto {self._ep_chain(spn, ep)}"
                    for ep in eps] if affinity else []

        key = f"{info.cluster_ip} . {proto} . {info.port}"
        if cluster_eps:
            masq = f"ip daddr {info.cluster_ip} {proto} dport {info.port}"
            if not o.masquerade_all:
                masq += f" ip saddr != {o.cluster_cidr}"
            rules = [f"{masq} jump mark-for-masquerade", *affinity_rules(cluster_eps),
                     *self._cascade(spn, cluster_eps, affinity)]
            chains[svc_chain] = tuple(rules)
            elements["service-ips"] = [f"{key} : goto {svc_chain}"]
            if affinity:
                ep_chains(endpoints)
        else:
            elements["no-endpoint-services"] = [f"{key} : goto reject-chain"]
        for ep in endpoints:
            elements.setdefault("hairpin", []).append(f"{ep.ip} . {ep.ip}")
        if info.has_external:
            if not endpoints:
                ext_target: str | None = None
            else:
                if info.external_local:
                    ext_rules = [f"ip saddr {o.cluster_cidr} goto {svc_chain}" if cluster_eps else "",
                                 "fib saddr type local jump mark-for-masquerade",
                                 f"fib saddr type local goto {svc_chain}" if cluster_eps else ""]
                    ext_rules = [r for r in ext_rules if r]
                    if local_eps:
                        ext_rules += [*affinity_rules(local_eps), *self._cascade(spn, local_eps, affinity)]
                        if affinity:
                            ep_chains(local_eps)
                    else:
                        ext_rules.append("drop")
                    chains[ext_chain] = tuple(ext_rules)
                elif cluster_eps:
                    chains[ext_chain] = ("jump mark-for-masquerade", f"goto {svc_chain}")
                else:
                    chains[ext_chain] = ("drop",)
                ext_target = ext_chain
            if info.lb_source_ranges and ext_target:
                chains[fw_chain] = (f"ip saddr != {{ {', '.join(info.lb_source_ranges)} }} drop",
                                    f"goto {ext_target}")
            for ip in info.external_ips:
                self._ext_element(elements, f"{ip} . {proto} . {info.port}", ext_target, "services")
            for ip in info.lb_ips:
                self._ext_element(elements, f"{ip} . {proto} . {info.port}",
                                  fw_chain if info.lb_source_ranges and ext_target else ext_target, "services")
            if info.node_port:
                self._ext_element(elements, f"{proto} . {info.node_port}", ext_target, "nodeports")
        return Unit(chains=chains, elements={k: tuple(v) for k, v in elements.items()}, sets=sets)

    @staticmethod
    def _ext_element(elements: dict[str, list[str]], key: str, target: str | None, kind: str) -> None:
        if target is None:
            name = "no-endpoint-services" if kind == "services" else "no-endpoint-nodeports"
            elements.setdefault(name, []).append(f"{key} : goto reject-chain")
        else:
            name = "service-ips" if kind == "services" else "service-nodeports"
            elements.setdefault(name, []).append(f"{key} : goto {target}")

    # ---- scripts ---------------------------------------------------------------------------------------------

    def _read_kernel(self) -> None:
        res = self.runner.run(self.nft, "-t", "list", "table", FAMILY, TABLE, check=False)
        chains: set[str] = set()
        sets: set[str] = set()
        if res.returncode == 0:
            for line in res.stdout.splitlines():
                m = re.match(r"\s*(chain|set|map)\s+(\S+)\s*\{", line)
                if m:
                    (chains if m.group(1) == "chain" else sets).add(m.group(2).strip('"'))
        self.kernel_chains, self.kernel_sets = chains, sets

    @staticmethod
    def _refs(units: Iterable[Unit]) -> Counter[tuple[str, str]]:
        c: Counter[tuple[str, str]] = Counter()
        for u in units:
            for s, elems in u.elements.items():
                for e in elems:
                    c[(s, e)] += 1
        return c

    @staticmethod
    def _elem_lines(verb: str, keys: Iterable[tuple[str, str]], chunk: int = 2000) -> list[str]:
        by_set: dict[str, list[str]] = {}
        for s, e in keys:
            by_set.setdefault(s, []).append(e)
        out = []
        for s in sorted(by_set):
            elems = sorted(by_set[s])
            for i in range(0, len(elems), chunk):
                out.append(f"{verb} element {T} {s} {{ {', '.join(elems[i:i + chunk])} }}")
        return out

    def _static_lines(self) -> list[str]:
        out = [f"add table {T}"]
        for name, spec in SHARED_SETS.items():
            kind = "map" if name in MAPS else "set"
            out.append(f"add {kind} {T} {name} {{ {spec} }}")
        for name, (base, _rules) in static_chains(self.options).items():
            out.append(f"add chain {T} {name}" + (f" {{ {base} }}" if base else ""))
        for name, (_, rules) in static_chains(self.options).items():
            out.append(f"flush chain {T} {name}")
            out += [f"add rule {T} {name} {r}" for r in rules]
        return out

    def set_nodeport_ips(self, ips: Iterable[str]) -> bool:
        new = tuple(sorted(set(ips)))
        changed = new != self.nodeport_ips
        self.nodeport_ips = new
        return changed

    def plan(self, changes: Mapping[ServicePortName, Unit | None], *, full: bool) -> Plan:
        units = self.next_units(changes, full)
        if full or not self.synced_once:
            return self._plan_full(units)
        old_units = {k: self.applied[k] for k in changes if k in self.applied}
        new_units = {k: units[k] for k in changes if k in units}
        delta = self._refs(new_units.values())
        delta.subtract(self._refs(old_units.values()))
        delta = Counter({k: v for k, v in delta.items() if v})
        added = [k for k, v in delta.items() if self.refs.get(k, 0) <= 0 < self.refs.get(k, 0) + v]
        removed = [k for k, v in delta.items() if self.refs.get(k, 0) > 0 >= self.refs.get(k, 0) + v]
        old_chains = {c: r for u in old_units.values() for c, r in u.chains.items()}
        new_chains = {c: r for u in new_units.values() for c, r in u.chains.items()}
        old_sets = {s: d for u in old_units.values() for s, d in u.sets.items()}
        new_sets = {s: d for u in new_units.values() for s, d in u.sets.items()}
        del_chains = sorted(set(old_chains) - set(new_chains))
        write_chains = sorted(c for c, r in new_chains.items() if old_chains.get(c) != r)
        lines = self._elem_lines("delete", removed)
        lines += [f"flush chain {T} {c}" for c in del_chains]
        lines += [f"add set {T} {s} {{ {d} }}" for s, d in sorted(new_sets.items()) if s not in old_sets]
        lines += [f"add chain {T} {c}" for c in write_chains]
        for c in write_chains:
            lines.append(f"flush chain {T} {c}")
            lines += [f"add rule {T} {c} {r}" for r in new_chains[c]]
        lines += self._elem_lines("add", added)
        lines += [f"delete chain {T} {c}" for c in del_chains]
        lines += [f"delete set {T} {s}" for s in sorted(set(old_sets) - set(new_sets))]
        return Plan(full=False, script="\n".join(lines) + "\n", units=units,
                    extra={"delta": delta, "chains": (set(del_chains), set(new_chains)),
                           "sets": (set(old_sets) - set(new_sets), set(new_sets))},
                    changed=len(changes))

    def _plan_full(self, units: dict[ServicePortName, Unit]) -> Plan:
        if self.kernel_chains is None or self.kernel_sets is None:
            self._read_kernel()
        assert self.kernel_chains is not None and self.kernel_sets is not None
        refs = self._refs(units.values())
        if self.options.nodeport_addresses:
            for ip in self.nodeport_ips:
                refs[("nodeport-ips", ip)] += 1
        chains = {c: r for u in units.values() for c, r in u.chains.items()}
        sets = {s: d for u in units.values() for s, d in u.sets.items()}
        static = static_chains(self.options)
        stale_chains = sorted(self.kernel_chains - set(chains) - set(static))
        stale_sets = sorted(self.kernel_sets - set(sets) - set(SHARED_SETS))
        lines = self._static_lines()
        lines += [f"flush {'map' if s in MAPS else 'set'} {T} {s}" for s in SHARED_SETS]
        lines += [f"flush chain {T} {c}" for c in stale_chains]
        lines += [f"add set {T} {s} {{ {d} }}" for s, d in sorted(sets.items())]
        lines += [f"add chain {T} {c}" for c in sorted(chains)]
        for c in sorted(chains):
            lines.append(f"flush chain {T} {c}")
            lines += [f"add rule {T} {c} {r}" for r in chains[c]]
        lines += self._elem_lines("add", refs)
        lines += [f"delete chain {T} {c}" for c in stale_chains]
        lines += [f"delete set {T} {s}" for s in stale_sets]
        return Plan(full=True, script="\n".join(lines) + "\n", units=units,
                    extra={"refs": refs, "chains": set(chains) | set(static), "sets": set(sets) | set(SHARED_SETS)},
                    changed=len(units))

    def execute(self, plan: Plan) -> None:
        self.runner.run(self.nft, "-f", "-", input=plan.script)

    def commit(self, plan: Plan) -> None:
        super().commit(plan)
        if plan.full:
            refs = plan.extra["refs"]
            assert isinstance(refs, Counter)
            self.refs = refs
        else:
            delta = plan.extra["delta"]
            assert isinstance(delta, Counter)
            for k, v in delta.items():
                n = self.refs.get(k, 0) + v
                if n > 0:
                    self.refs[k] = n
                else:
                    self.refs.pop(k, None)
        if plan.full:
            chains, sets = plan.extra["chains"], plan.extra["sets"]
            assert isinstance(chains, set) and isinstance(sets, set)
            self.kernel_chains, self.kernel_sets = chains, sets
        elif self.kernel_chains is not None and self.kernel_sets is not None:
            dc, nc = cast(tuple[set[str], set[str]], plan.extra["chains"])
            ds, ns = cast(tuple[set[str], set[str]], plan.extra["sets"])
            self.kernel_chains = (self.kernel_chains - dc) | nc
            self.kernel_sets = (self.kernel_sets - ds) | ns

    def cleanup(self) -> None:
        try:
            self.runner.run(self.nft, "delete", "table", FAMILY, TABLE)
        except CommandError as e:
            if "No such file" not in e.stderr:
                raise
        self.applied, self.refs, self.synced_once = {}, Counter(), False
        self.kernel_chains = self.kernel_sets = None

    def dump(self) -> str:
        return self.runner.run(self.nft, "list", "ruleset").stdout
