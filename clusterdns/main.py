"""pb-dns: the cluster DNS (CoreDNS' kubernetes plugin, kube-dns): its flags parsed (options.py), informers
feeding the zone, the DNS listeners and the health/metrics server.

Start order: informers for Services and EndpointSlices (or Endpoints: --endpoint-source) -> handlers that
update the zone (clusterdns.zone) -> start -> wait for cache sync -> the DNS listeners (UDP and TCP,
clusterdns.server) -> ready. Nothing is answered before the caches synced, so a Service's name is never
NXDOMAIN only because the zone is still empty (a client meanwhile gets "connection refused" and tries its next
nameserver); /readyz says the same.
Names outside `--cluster-domain` go to `--upstream` nameservers, or get SERVFAIL at once when none are
given (the lab has no upstream). In the lab it runs in pb-control-plane behind the kube-dns Service
(kube-system/kube-dns, 10.96.0.10, lab.dns).
"""

from __future__ import annotations

import asyncio
import logging

from clusterdns.options import Config as Config
from clusterdns.server import DNSServer, Handler
from clusterdns.zone import Zone
from pybernetes import component, logs, options, secureserving
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.discovery.v1 import discovery_pb2 as discovery
from pybernetes.api.endpointslices import ENDPOINTSLICES
from pybernetes.cache import DeletedFinalStateUnknown, InformerFactory
from pybernetes.client import config as client_config
from pybernetes.client.client import Client
from pybernetes.controller import key_of, unwrap
from pybernetes.metrics import HealthServer

log = logging.getLogger("pybernetes.clusterdns")


def parse_args(argv: list[str] | None = None) -> Config:
    cfg = options.parse_args(Config, argv, prog="pb-dns", description="The pybernetes cluster DNS.")
    logs.setup("dns", verbose=cfg.verbose)
    return cfg


def make_client(cfg: Config) -> Client:
    if cfg.server and (cfg.token or not cfg.kubeconfig):
        return Client(cfg.server, token=cfg.token, user_agent="pb-dns")
    cc = client_config.load(cfg.kubeconfig, server=cfg.server or None, token=cfg.token or None)
    return Client(cfg.server or cc.server, token=cfg.token or cc.token, user_agent="pb-dns", tls=cc.tls())


def register(factory: InformerFactory, zone: Zone, endpoint_source: str = ENDPOINTSLICES) -> None:
    """Informers for Services and EndpointSlices or Endpoints whose handlers keep `zone` current."""
    def on_service_delete(obj: core.Service | DeletedFinalStateUnknown[core.Service]) -> None:
        zone.delete_service(key_of(obj))

    def on_endpoints_delete(obj: core.Endpoints | DeletedFinalStateUnknown[core.Endpoints]) -> None:
        zone.delete_endpoints(key_of(obj))

    def on_slice_delete(obj: discovery.EndpointSlice | DeletedFinalStateUnknown[discovery.EndpointSlice]) -> None:
        zone.delete_endpoint_slice(unwrap(obj))

    factory.informer_for(core.Service).add_event_handler(
        zone.set_service, lambda _old, new: zone.set_service(new), on_service_delete)
    if endpoint_source == ENDPOINTSLICES:
        factory.informer_for(discovery.EndpointSlice).add_event_handler(
            zone.set_endpoint_slice, lambda _old, new: zone.set_endpoint_slice(new), on_slice_delete)
    else:
        factory.informer_for(core.Endpoints).add_event_handler(
            zone.set_endpoints, lambda _old, new: zone.set_endpoints(new), on_endpoints_delete)


async def run(cfg: Config, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    zone = Zone(cfg.cluster_domain)
    client = make_client(cfg)
    factory = InformerFactory(client)
    register(factory, zone, cfg.endpoint_source)
    handler = Handler(zone, cfg.upstream, server=f"dns://:{cfg.port}")
    dns_server = DNSServer(handler, cfg.bind_address, cfg.port)
    health = HealthServer(cfg.health_bind_address, cfg.health_port, secureserving.delegated(
        client, client_ca=cfg.client_ca_file, cert_file=cfg.tls_cert_file, key_file=cfg.tls_private_key_file,
        common_name="coredns", address=cfg.health_bind_address))
    synced = asyncio.Event()

    async def caches_synced() -> None:
        if not synced.is_set():
            raise RuntimeError("Service and endpoint caches not synced yet")

    health.add_ready_check("informer-sync", caches_synced)
    try:
        cfg.health_port = await health.start()
        factory.start()
        if not cfg.upstream:
            log.info("no upstream nameservers: names outside %s get SERVFAIL", cfg.cluster_domain)
        await factory.wait_for_cache_sync()
        synced.set()
        cfg.port = await dns_server.start()
        handler.server = f"dns://:{cfg.port}"
        log.info("dns started domain=%s address=%s:%d health_port=%d services=%d upstream=%s", cfg.cluster_domain,
                 cfg.bind_address, cfg.port, cfg.health_port, len(zone.services), ",".join(cfg.upstream) or "-")
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        await dns_server.stop()
        await factory.shutdown()
        await health.stop()
        await client.close()
        log.info("dns stopped domain=%s", cfg.cluster_domain)


def main(argv: list[str] | None = None) -> None:
    component.serve(run, parse_args(argv))


if __name__ == "__main__":
    main()
