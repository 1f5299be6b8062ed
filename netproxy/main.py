"""pb-proxy: flags, informers, the sync loop, health/metrics servers, its Lease (netproxy.heartbeat), --cleanup.

Backends: `--backend nftables` (default) programs one `table ip pybernetes` with `nft -f`; it meets the
targets (5,000 services x 10 endpoints fully synced in ~2 s, one endpoint change in tens of ms).
`--backend iptables` writes kube-proxy's KUBE-* chains with `iptables-restore --noflush`; compatible with
tools that expect those names, but iptables-nft's --noflush restore grows super-linearly (~8 s for 1,000
services), so it is for small clusters. Runs in the node's network namespace (or `--netns NAME` to drive
another namespace from outside, as the tests do). Starting over existing rules replaces them in one
transaction; nothing is flushed first, so traffic keeps flowing across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from netproxy.backend import Backend, Options
from netproxy.execs import Runner, nsenter_prefix
from netproxy.heartbeat import ProxyLease
from netproxy.iptables import IptablesBackend
from netproxy.nftables import NftBackend
from netproxy.proxier import Proxier
from netproxy.routes import Conntrack, Routes, ensure_forwarding
from pybernetes import component, flags, logs, options, ports, secureserving
from pybernetes.api.endpointslices import ENDPOINTS, SOURCES
from pybernetes.cache import InformerFactory
from pybernetes.client import config as client_config
from pybernetes.client.client import Client
from pybernetes.metrics import HealthServer
from pybernetes.options import opt

log = logging.getLogger("pybernetes.netproxy")

BACKENDS = ("nftables", "iptables")


def _from_file(path: Path) -> dict[str, Any]:
    """A KubeProxyConfiguration-style YAML file: the fields pb-proxy knows."""
    doc = yaml.safe_load(path.read_text()) or {}
    out: dict[str, Any] = {}
    if "mode" in doc:
        out["backend"] = doc["mode"]
    if "clusterCIDR" in doc:
        out["cluster_cidr"] = doc["clusterCIDR"]
    if "hostnameOverride" in doc:
        out["hostname_override"] = doc["hostnameOverride"]
    ipt = doc.get("iptables") or doc.get("nftables") or {}
    if "minSyncPeriod" in ipt:
        out["min_sync_period"] = flags.duration(ipt["minSyncPeriod"])
    if "syncPeriod" in ipt:
        out["sync_period"] = flags.duration(ipt["syncPeriod"])
    if "masqueradeAll" in ipt:
        out["masquerade_all"] = bool(ipt["masqueradeAll"])
    if "nodePortAddresses" in doc:
        out["nodeport_addresses"] = list(doc["nodePortAddresses"] or [])
    if "healthzBindAddress" in doc:
        out["health_port"] = int(str(doc["healthzBindAddress"]).rsplit(":", 1)[-1])
    if "metricsBindAddress" in doc:
        host, _, port = str(doc["metricsBindAddress"]).rpartition(":")
        out["metrics_port"] = int(port)
        if host:
            out["metrics_bind_address"] = host
    kc = (doc.get("clientConnection") or {}).get("kubeconfig")
    if kc:
        out["kubeconfig"] = kc
    return out


@dataclass
class Config:
    config_file: Path | None = opt(None, "--config", file=_from_file,
                                   help="KubeProxyConfiguration-style YAML (mode, clusterCIDR, "
                                        "iptables.minSyncPeriod, ...); flags given explicitly win")
    kubeconfig: str | None = opt(None, "--kubeconfig", "--client-config",
                                 help=client_config.SEARCH_HELP)
    server: str = opt("", "--server", "--master", help="apiserver address")
    token: str = opt("", help="bearer token")
    hostname_override: str = opt("", help="this node's name (default: hostname)")
    backend: str = opt("nftables", "--backend", "--proxy-mode", choices=BACKENDS,
                       help="nftables (meets the 5,000-service targets) or iptables (KUBE-* chains)")
    cluster_cidr: str = opt("10.244.0.0/16", help="pod CIDR; traffic from outside it is masqueraded")
    service_cidr: str = opt("10.96.0.0/16", "--service-cidr", "--service-cluster-ip-range",
                            help="routed into a sink device inside the node so unmatched service "
                                 "traffic dies locally")
    min_sync_period: float = opt(1.0, parse=flags.duration)
    sync_period: float = opt(30.0, parse=flags.duration)
    bind_address: str = opt("0.0.0.0", help="address of the health server (/healthz, /livez, /readyz)")
    health_port: int = opt(ports.PROXY_HEALTH, "--health-port", "--healthz-port")
    metrics_bind_address: str = opt("127.0.0.1", help="address of the metrics server (kube-proxy's default: "
                                                      "loopback; another address wants --client-ca-file)")
    metrics_port: int = opt(ports.PROXY_METRICS)
    client_ca_file: Path | None = opt(None, help=secureserving.CLIENT_CA_HELP)
    tls_cert_file: Path | None = opt(None, help=secureserving.TLS_CERT_HELP)
    tls_private_key_file: Path | None = opt(None)
    cleanup: bool = opt(False, switch=True, help="remove every rule, chain, table and route we made; exit")
    masquerade_all: bool = opt(False)
    nodeport_addresses: list[str] = opt([], help="comma-separated CIDRs; NodePorts answer only on local "
                                                 "addresses inside them")
    netns: str = opt("", help="program this named network namespace (/run/netns/NAME) from outside "
                              "(nsenter + pyroute2 netns)")
    manage_routes: bool = opt(True, help="host-gw routes to other nodes' podCIDRs and the service-CIDR sink")
    conntrack: bool = opt(True, help="flush stale UDP conntrack entries")
    endpoint_source: str = opt(ENDPOINTS, choices=SOURCES,
                               help="read endpoints from EndpointSlices (as kube-proxy does) or Endpoints (the "
                                    "default until selectorless Services' Endpoints are mirrored into slices)")
    verbose: bool = opt(False, "-v", "--verbose", switch=True)


def _check(cfg: Config) -> None:
    if cfg.backend not in BACKENDS:  # a config file's mode (the flag's value argparse checks)
        raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}")


def parse_args(argv: list[str] | None = None) -> Config:
    cfg = options.parse_args(Config, argv, prog="pb-proxy", description="The pybernetes service proxy (kube-proxy).",
                             check=_check)
    logs.setup("proxy", verbose=cfg.verbose)
    return cfg


def make_client(cfg: Config) -> Client:
    if cfg.server and (cfg.token or not cfg.kubeconfig):
        return Client(cfg.server, token=cfg.token, user_agent="pb-proxy")
    cc = client_config.load(cfg.kubeconfig, server=cfg.server or None, token=cfg.token or None)
    return Client(cfg.server or cc.server, token=cfg.token or cc.token, user_agent="pb-proxy", tls=cc.tls())


def make_backend(cfg: Config, runner: Runner) -> Backend:
    opts = Options(cluster_cidr=cfg.cluster_cidr, masquerade_all=cfg.masquerade_all,
                   nodeport_addresses=tuple(cfg.nodeport_addresses))
    if cfg.backend == "iptables":
        return IptablesBackend(runner, opts)
    return NftBackend(runner, opts)


def cleanup(cfg: Config) -> None:
    """Remove what either backend and the route manager made (kube-proxy --cleanup)."""
    runner = Runner(nsenter_prefix(cfg.netns) if cfg.netns else ())
    errors = []
    for backend in (NftBackend(runner), IptablesBackend(runner)):
        try:
            backend.cleanup()
        except Exception as e:
            errors.append(f"{backend.name}: {e}")
    if cfg.manage_routes:
        try:
            Routes(cfg.netns or None, service_cidr=cfg.service_cidr).cleanup()
        except Exception as e:
            errors.append(f"routes: {e}")
    if errors:
        raise RuntimeError("cleanup incomplete: " + "; ".join(errors))
    log.info("cleanup done netns=%s", cfg.netns or "-")


async def run(cfg: Config, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
    if cfg.cleanup:
        await asyncio.to_thread(cleanup, cfg)
        if ready is not None:
            ready.set()
        return
    hostname = cfg.hostname_override or socket.gethostname()
    runner = Runner(nsenter_prefix(cfg.netns) if cfg.netns else ())
    backend = make_backend(cfg, runner)
    routes = Routes(cfg.netns or None, service_cidr=cfg.service_cidr) if cfg.manage_routes else None
    if routes is not None:
        await asyncio.to_thread(ensure_forwarding, runner)
    proxier = Proxier(backend, hostname=hostname, min_sync_period=cfg.min_sync_period,
                      sync_period=cfg.sync_period, routes=routes,
                      conntrack=Conntrack(runner) if cfg.conntrack else None,
                      nodeport_addresses=cfg.nodeport_addresses, endpoint_source=cfg.endpoint_source)
    client = make_client(cfg)
    factory = InformerFactory(client)
    proxier.register(factory)
    health = HealthServer(cfg.bind_address, cfg.health_port, metrics=False)  # kube-proxy's healthz server
    metrics_srv = HealthServer(cfg.metrics_bind_address, cfg.metrics_port, secureserving.delegated(
        client, client_ca=cfg.client_ca_file, cert_file=cfg.tls_cert_file, key_file=cfg.tls_private_key_file,
        common_name="kube-proxy", address=cfg.metrics_bind_address), name="metrics")
    for srv in (health, metrics_srv):
        srv.live_checks["proxier"] = proxier.healthz
        srv.add_ready_check("synced", proxier.readyz)
    stop = stop or asyncio.Event()
    loop_task: asyncio.Task[None] | None = None
    heartbeat = ProxyLease(client, hostname, proxier.healthz)
    beat: asyncio.Task[None] | None = None
    try:
        cfg.health_port = await health.start()
        cfg.metrics_port = await metrics_srv.start()
        factory.start()
        await factory.wait_for_cache_sync()
        await proxier.sync(full=True)
        loop_task = asyncio.create_task(proxier.run(stop), name="proxy-sync-loop")
        beat = asyncio.create_task(heartbeat.run(stop), name="proxy-lease")
        log.info("proxy started node=%s backend=%s cluster_cidr=%s health_port=%d metrics_port=%d netns=%s",
                 hostname, backend.name, cfg.cluster_cidr, cfg.health_port, cfg.metrics_port, cfg.netns or "-")
        if ready is not None:
            ready.set()
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([stopper, loop_task], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if loop_task.done() and not loop_task.cancelled() and (exc := loop_task.exception()) is not None:
            raise exc
    finally:
        if beat is not None:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await beat
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(heartbeat.release(), 3)
        if loop_task is not None:
            loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await loop_task
        await proxier.close()
        await factory.shutdown()
        await health.stop()
        await metrics_srv.stop()
        await client.close()
        log.info("proxy stopped node=%s syncs=%d failures=%d", hostname, proxier.syncs, proxier.failures)


def main(argv: list[str] | None = None) -> None:
    component.serve(run, parse_args(argv))


if __name__ == "__main__":
    main()
