"""A pod's DNS settings, as the kubelet computes them (Kubernetes pkg/kubelet/network/dns): the CRI
DNSConfig of its sandbox, from which containerd writes the pod's /etc/resolv.conf.

dnsPolicy:
- ClusterFirst (the default): `nameserver <--cluster-dns>`, `search <ns>.svc.<domain> svc.<domain> <domain>`
  followed by the node's search domains, `options ndots:5`. A hostNetwork pod with ClusterFirst gets Default.
  Without --cluster-dns the kubelet falls back to Default and says so (a MissingClusterDNS warning).
- ClusterFirstWithHostNet: ClusterFirst, also for hostNetwork pods.
- Default: the node's resolv.conf (--resolv-conf; empty: nameserver 127.0.0.1 and search ".").
- None: nothing but the pod's dnsConfig.
Then spec.dnsConfig is merged in (nameservers and searches appended without duplicates, options by name,
the pod's winning) and the result cut to Kubernetes' limits: 3 nameservers, 32 search domains of at most
2048 characters together. node_agent.sync calls `PodDNS.config` when it creates a sandbox.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from node_agent.cri import api_pb2 as pb
from pybernetes.api.core.v1 import core_pb2 as core

log = logging.getLogger("pybernetes.kubelet.dns")

MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048
DEFAULT_OPTIONS = ("ndots:5",)

# (pod, event type, reason, message): the kubelet's event recorder
Warn = Callable[[core.Pod, str, str, str], None]


@dataclass(frozen=True)
class HostDNS:
    """The nameservers, search domains and options of a resolv.conf."""

    servers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


def parse_resolv_conf(text: str) -> HostDNS:
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            servers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            searches = [s.rstrip(".") or "." for s in fields[1:]]  # the last search/domain line wins, as in libc
        elif fields[0] == "options":
            options.extend(fields[1:])
    return HostDNS(tuple(servers), tuple(searches), tuple(options))


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _merge_options(base: Iterable[str], pod: Iterable[core.PodDNSConfigOption]) -> list[str]:
    """Options by name; the pod's override the base's (Kubernetes' mergeDNSOptions)."""
    merged: dict[str, str] = {}
    for o in base:
        name, _, value = o.partition(":")
        merged[name] = value
    for po in pod:
        merged[po.name] = po.value if po.HasField("value") else ""
    return [f"{k}:{v}" if v else k for k, v in merged.items()]


@dataclass
class PodDNS:
    """The kubelet's DNS settings (--cluster-dns, --cluster-domain, --resolv-conf) applied to pods."""

    cluster_dns: list[str] = field(default_factory=list)
    cluster_domain: str = ""
    resolv_conf: str = "/etc/resolv.conf"

    def host(self) -> HostDNS:
        if not self.resolv_conf:
            return HostDNS()
        try:
            return parse_resolv_conf(Path(self.resolv_conf).read_text())
        except OSError as e:
            log.warning("cannot read resolv.conf path=%s error=%s", self.resolv_conf, e)
            return HostDNS()

    def config(self, pod: core.Pod, warn: Warn | None = None) -> pb.DNSConfig:
        policy = pod.spec.dns_policy or "ClusterFirst"
        host = self.host()
        servers: list[str]
        searches: list[str]
        options: list[str]
        cluster = policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not pod.spec.host_network)
        if policy == "None":
            servers, searches, options = [], [], []
        elif cluster and self.cluster_dns:
            servers = list(self.cluster_dns)
            searches = list(host.searches)
            if self.cluster_domain:
                d = self.cluster_domain
                searches = _unique([f"{pod.metadata.namespace}.svc.{d}", f"svc.{d}", d, *host.searches])
            options = list(DEFAULT_OPTIONS)
        else:
            if cluster:
                msg = (f"kubelet does not have ClusterDNS IP configured and cannot create Pod using "
                       f'"{policy}" policy. Falling back to "Default" policy.')
                log.warning("missing cluster DNS pod=%s/%s policy=%s", pod.metadata.namespace, pod.metadata.name,
                            policy)
                if warn is not None:
                    warn(pod, "Warning", "MissingClusterDNS", msg)
            servers, searches, options = list(host.servers), list(host.searches), list(host.options)
            if not self.resolv_conf:  # no resolv.conf: the local machine's resolver, no search
                servers, searches = ["127.0.0.1"], ["."]
        if pod.spec.HasField("dns_config"):
            pc = pod.spec.dns_config
            servers = _unique([*servers, *pc.nameservers])
            searches = _unique([*searches, *pc.searches])
            options = _merge_options(options, pc.options)
        return self._fit(pod, servers, searches, options, warn)

    @staticmethod
    def _fit(pod: core.Pod, servers: list[str], searches: list[str], options: list[str],
             warn: Warn | None) -> pb.DNSConfig:
        """Kubernetes' limits: extra nameservers and search domains are dropped, with a warning."""
        if len(servers) > MAX_NAMESERVERS:
            servers = servers[:MAX_NAMESERVERS]
            if warn is not None:
                warn(pod, "Warning", "DNSConfigForming", "Nameserver limits were exceeded, some nameservers have "
                     f"been omitted, the applied nameserver line is: {' '.join(servers)}")
        kept: list[str] = []
        chars = 0
        for s in searches:
            if len(kept) == MAX_SEARCHES or chars + len(s) + (1 if kept else 0) > MAX_SEARCH_CHARS:
                if warn is not None:
                    warn(pod, "Warning", "DNSConfigForming", "Search Line limits were exceeded, some search paths "
                         f"have been omitted, the applied search line is: {' '.join(kept)}")
                break
            chars += len(s) + (1 if kept else 0)
            kept.append(s)
        return pb.DNSConfig(servers=servers, searches=kept, options=options)


def resolv_conf(cfg: pb.DNSConfig) -> str:
    """The resolv.conf a DNSConfig stands for (what containerd writes; for logs and tests)."""
    lines = []
    if cfg.searches:
        lines.append("search " + " ".join(cfg.searches))
    lines += [f"nameserver {s}" for s in cfg.servers]
    if cfg.options:
        lines.append("options " + " ".join(cfg.options))
    return "\n".join(lines) + "\n"
