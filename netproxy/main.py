"""pb-proxy: its flags parsed (declared in options.py), informers, the sync loop, health/metrics servers, its
Lease (netproxy.heartbeat), --cleanup.

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

from netproxy.backend import Backend, Options
from netproxy.execs import Runner, nsenter_prefix
from netproxy.heartbeat import ProxyLease
from netproxy.iptables import IptablesBackend
from netproxy.nftables import NftBackend
from netproxy.options import Config as Config
from netproxy.options import check
from netproxy.proxier import Proxier
from netproxy.routes import Conntrack, Routes, ensure_forwarding
from pybernetes import component, logs, options, secureserving
from pybernetes.cache import InformerFactory
from pybernetes.client import config as client_config
from pybernetes.client.client import Client
from pybernetes.metrics import HealthServer

log = logging.getLogger("pybernetes.netproxy")

def parse_args(argv: list[str] | None = None) -> Config:
    cfg = options.parse_args(Config, argv, prog="pb-proxy", description="The pybernetes service proxy (kube-proxy).",
                             check=check)
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
