"""pb-apiserver: flags, embedded etcd, storage, bootstrap objects, gRPC and health servers.

`run(config, ready)` is the shape every component shares: the lab, systemd and tests start it the same
way. Without --etcd-servers it starts etcd as a child under --data-dir and stops it on exit (k3s'
embedded default). On first start it writes <data-dir>/admin.conf (0600) and says how to use it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
from dataclasses import dataclass, field
from pathlib import Path

from pybernetes import component, errors, flags, logs, rpc, tls
from pybernetes.api import registry
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.rpc.v1 import rpc_pb2_grpc as pb_grpc
from pybernetes.api.selectors import EVERYTHING, FieldSelector
from pybernetes.client import config as client_config
from pybernetes.metrics import HealthServer

from . import metrics
from .allocator import ServiceAllocator
from .auth import TokenAuthenticator, ensure_admin_token
from .http.app import HttpServer
from .kubelet_proxy import KubeletProxy
from .registry import strategy
from .rest import Rest
from .server import APIServicer
from .storage.embedded import EmbeddedEtcd
from .storage.etcd import EtcdClient
from .storage.store import Store

log = logging.getLogger("pybernetes.apiserver")

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass
class Config:
    data_dir: Path = Path("/var/lib/pybernetes/apiserver")
    bind_address: str = "127.0.0.1"
    port: int = 6443
    advertise_address: str = ""
    etcd_servers: list[str] = field(default_factory=list)
    etcd_client_port: int = 2379
    etcd_peer_port: int = 2380
    etcd_metrics_port: int = 2381
    token_auth_file: Path | None = None
    compaction_interval: float = 300.0
    watch_cache_size: int = 10_000
    bookmark_interval: float = 5.0
    health_port: int = 6444
    admin_config: Path | None = None
    service_cluster_ip_range: str = "10.96.0.0/16"
    service_node_port_range: str = "30000-32767"
    kubelet_client_token_file: Path | None = None
    default_not_ready_toleration_seconds: int = 300
    default_unreachable_toleration_seconds: int = 300
    enable_metrics: bool = True
    # issue 13: the Kubernetes REST API over HTTPS. None: off (the default until the lead flips it);
    # 0: a free port. cert_dir None: <data-dir>/pki.
    https_port: int | None = None
    cert_dir: Path | None = None


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(prog="pb-apiserver", description="The pybernetes API server (gRPC, backed by etcd).")
    p.add_argument("--data-dir", type=Path, default=Config.data_dir)
    p.add_argument("--bind-address", default=Config.bind_address)
    p.add_argument("--secure-port", "--port", dest="port", type=int, default=Config.port)
    p.add_argument("--advertise-address", default="", help="address written into admin.conf")
    p.add_argument("--etcd-servers", default="", help="comma-separated etcd URLs; empty = embedded etcd")
    p.add_argument("--etcd-client-port", type=int, default=Config.etcd_client_port)
    p.add_argument("--etcd-peer-port", type=int, default=Config.etcd_peer_port)
    p.add_argument("--etcd-metrics-port", type=int, default=Config.etcd_metrics_port,
                   help="embedded etcd's /metrics port (0: only on the client port)")
    p.add_argument("--token-auth-file", type=Path, default=None)
    p.add_argument("--etcd-compaction-interval", dest="compaction_interval", type=float,
                   default=Config.compaction_interval, help="seconds between compactions (0 disables)")
    p.add_argument("--watch-cache-size", type=int, default=Config.watch_cache_size)
    p.add_argument("--bookmark-interval", type=float, default=Config.bookmark_interval)
    p.add_argument("--health-port", type=int, default=Config.health_port,
                   help="HTTP port for /metrics, /healthz, /readyz")
    p.add_argument("--admin-config", type=Path, default=None, help="where to write admin.conf")
    p.add_argument("--service-cluster-ip-range", default=Config.service_cluster_ip_range)
    p.add_argument("--service-node-port-range", default=Config.service_node_port_range)
    p.add_argument("--default-not-ready-toleration-seconds", type=int, default=300,
                   help="tolerationSeconds of the not-ready:NoExecute toleration added to every pod")
    p.add_argument("--default-unreachable-toleration-seconds", type=int, default=300,
                   help="tolerationSeconds of the unreachable:NoExecute toleration added to every pod")
    p.add_argument("--kubelet-client-token-file", type=Path, default=None,
                   help="token the apiserver presents to kubelets (logs, exec)")
    p.add_argument("--enable-metrics", type=flags.boolean, nargs="?", const=True, default=True, metavar="BOOL",
                   help="record request and etcd metrics (default true; false only to measure their overhead)")
    # issue 13: the Kubernetes REST API (kubectl, client libraries) over HTTPS beside the gRPC API.
    p.add_argument("--https-port", type=int, default=None,
                   help="port of the Kubernetes REST API over HTTPS (0: a free port; default: off)")
    p.add_argument("--cert-dir", type=Path, default=None,
                   help="where the CA and serving certificate live, kubeadm's layout (default <data-dir>/pki)")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)
    logs.setup("apiserver", verbose=a.verbose)
    return Config(data_dir=a.data_dir, bind_address=a.bind_address, port=a.port,
                  advertise_address=a.advertise_address,
                  etcd_servers=[s for s in a.etcd_servers.split(",") if s], etcd_client_port=a.etcd_client_port,
                  etcd_peer_port=a.etcd_peer_port, etcd_metrics_port=a.etcd_metrics_port,
                  token_auth_file=a.token_auth_file,
                  compaction_interval=a.compaction_interval, watch_cache_size=a.watch_cache_size,
                  bookmark_interval=a.bookmark_interval, health_port=a.health_port, admin_config=a.admin_config,
                  service_cluster_ip_range=a.service_cluster_ip_range,
                  service_node_port_range=a.service_node_port_range,
                  kubelet_client_token_file=a.kubelet_client_token_file,
                  default_not_ready_toleration_seconds=a.default_not_ready_toleration_seconds,
                  default_unreachable_toleration_seconds=a.default_unreachable_toleration_seconds,
                  enable_metrics=a.enable_metrics, https_port=a.https_port, cert_dir=a.cert_dir)


async def bootstrap(rest: Rest, advertise: str, port: int) -> None:
    """Objects every cluster has: the system namespaces and the `kubernetes` Service with its Endpoints."""
    for name in SYSTEM_NAMESPACES:
        ns = core.Namespace()
        ns.metadata.name = name
        with contextlib.suppress(errors.AlreadyExists):
            await rest.create("namespaces", "", ns.SerializeToString())
    svc = core.Service()
    svc.metadata.name, svc.metadata.namespace = "kubernetes", "default"
    svc.metadata.labels.update({"component": "apiserver", "provider": "kubernetes"})
    svc.spec.cluster_ip = rest.allocator.kubernetes_ip
    svc.spec.ports.add(name="https", port=443, protocol="TCP").target_port.int_val = port
    try:
        await rest.get("services", "default", "kubernetes")
    except errors.NotFound:
        with contextlib.suppress(errors.AlreadyExists):
            await rest.create("services", "default", svc.SerializeToString())
    if ipaddress.ip_address(advertise).is_loopback:
        return  # Endpoints may not point at loopback (as in Kubernetes); a lab apiserver advertises its own IP
    ep = core.Endpoints()
    ep.metadata.name, ep.metadata.namespace = "kubernetes", "default"
    subset = ep.subsets.add()
    subset.addresses.add(ip=advertise)
    subset.ports.add(name="https", port=port, protocol="TCP")
    try:
        await rest.create("endpoints", "default", ep.SerializeToString())
    except errors.AlreadyExists:
        cur = await rest.get("endpoints", "default", "kubernetes")
        ep.metadata.resource_version = cur.metadata.resource_version  # type: ignore[attr-defined]
        await rest.update("endpoints", "default", ep.SerializeToString())


async def compactor(store: Store, interval: float) -> None:
    """Compact etcd to the revision seen one interval ago, as kube-apiserver does (default 5 min)."""
    last = 0
    while True:
        await asyncio.sleep(interval)
        try:
            rev = await store.etcd.current_revision()
            if last:
                await store.compact(last)
                log.info("compacted etcd revision=%d", last)
            last = rev
        except Exception as e:
            log.warning("compaction failed: %s", e)


async def run(cfg: Config, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    metrics.set_enabled(cfg.enable_metrics)
    embedded: EmbeddedEtcd | None = None
    endpoints = cfg.etcd_servers
    if not endpoints:
        embedded = EmbeddedEtcd(cfg.data_dir / "etcd", client_port=cfg.etcd_client_port,
                                peer_port=cfg.etcd_peer_port, metrics_port=cfg.etcd_metrics_port)
        log.info("starting embedded etcd data_dir=%s port=%d", cfg.data_dir / "etcd", cfg.etcd_client_port)
        await embedded.start()
        endpoints = [embedded.endpoint]
    tokens_path = cfg.token_auth_file or cfg.data_dir / "tokens.csv"
    admin_token = ensure_admin_token(tokens_path) if cfg.token_auth_file is None else ""
    authn = TokenAuthenticator.from_file(tokens_path)
    etcd = EtcdClient(endpoints)
    store = Store(etcd, {i.plural: strategy.fields_fn(i) for i in registry.RESOURCES},
                  cache_capacity=cfg.watch_cache_size, bookmark_interval=cfg.bookmark_interval)
    rest = Rest(store, ServiceAllocator(store, cfg.service_cluster_ip_range, cfg.service_node_port_range),
                toleration_seconds=(cfg.default_not_ready_toleration_seconds,
                                    cfg.default_unreachable_toleration_seconds))
    server = rpc.server()
    kubelet_token = cfg.kubelet_client_token_file.read_text().strip() if cfg.kubelet_client_token_file else ""
    kubelets = KubeletProxy(rest, token=kubelet_token)
    pb_grpc.add_APIServicer_to_server(APIServicer(rest, authn, kubelets=kubelets), server)
    health = HealthServer(cfg.bind_address, cfg.health_port)

    async def etcd_ok() -> None:
        await etcd.status()

    health.add_ready_check("etcd", etcd_ok)
    tasks: list[asyncio.Task[None]] = []
    https: HttpServer | None = None  # issue 13
    try:
        store.start()
        await asyncio.wait_for(store.cache(registry.for_class(core.Namespace)).ready.wait(), 30)
        port = rpc.bind(server, f"{cfg.bind_address}:{cfg.port}")
        cfg.port = port
        host = cfg.advertise_address or ("127.0.0.1" if cfg.bind_address in ("0.0.0.0", "") else cfg.bind_address)
        await bootstrap(rest, host, port)
        await server.start()
        # -- issue 13: the Kubernetes REST API over HTTPS, through the same Rest and authenticator ----------
        if cfg.https_port is not None:
            pki = tls.ensure_apiserver_pki(cfg.cert_dir or cfg.data_dir / "pki", [host, cfg.bind_address])
            https = HttpServer(rest, authn, pki, ready_check=etcd_ok)
            cfg.https_port = await https.start(cfg.bind_address, cfg.https_port)
        # -- end issue 13 ----------------------------------------------------------------------------------
        await health.start()
        if cfg.compaction_interval > 0:
            tasks.append(asyncio.create_task(compactor(store, cfg.compaction_interval)))

        async def services() -> list[core.Service]:
            svc_info = registry.for_class(core.Service)
            await store.cache(svc_info).wait_ready()
            return [c.obj for c in store.cache(svc_info).list("", EVERYTHING, FieldSelector())]  # type: ignore[misc]

        tasks.append(asyncio.create_task(rest.allocator.repair_loop(services)))
        if admin_token:
            admin = cfg.admin_config or cfg.data_dir / "admin.conf"
            if https is not None:  # issue 13: a standard kubeconfig, gRPC in its pybernetes.io/grpc extension
                client_config.write_kubeconfig(admin, f"https://{host}:{cfg.https_port}", f"{host}:{port}",
                                               admin_token, https.pki.ca_pem())
            else:
                client_config.write(admin, f"{host}:{port}", admin_token)
            log.info("admin config written path=%s; use: export PBCONFIG=%s; pbctl get nodes", admin, admin)
        log.info("apiserver serving address=%s:%d etcd=%s health_port=%d", cfg.bind_address, port,
                 ",".join(endpoints), health.port)
        if ready is not None:
            ready.set()
        await (stop.wait() if stop is not None else asyncio.Event().wait())
    finally:
        for t in tasks:
            t.cancel()
        if https is not None:
            await https.stop()
        await server.stop(grace=1)
        await kubelets.close()
        await health.stop()
        await store.stop()
        await etcd.close()
        if embedded is not None:
            await embedded.stop()
        log.info("apiserver stopped")


def main(argv: list[str] | None = None) -> None:
    component.serve(run, parse_args(argv))


if __name__ == "__main__":
    main()
