"""pb-apiserver: flags, embedded etcd, storage, bootstrap objects, the HTTPS (REST), gRPC and health servers,
etcd compaction and the allocator's repair loop.

`run(cfg, ready, stop)` is the shape every component shares: the lab, systemd and tests start it the same
way. Without --etcd-servers it starts etcd as a child under --data-dir and stops it on exit (k3s' embedded
default; --restore-from restores it from a snapshot first). The API is served twice over the same request
path: Kubernetes' REST API over HTTPS on --secure-port (kubectl, client libraries) and gRPC on --grpc-port
(pbctl, the components); pybernetes.ports names their defaults. On first start it writes
<data-dir>/admin.conf (0600), a kubeconfig naming both.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

from pybernetes import component, errors, logs, options, ports, rpc, tls
from pybernetes.api import kinds, objects
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.rpc.v1 import rpc_pb2_grpc as pb_grpc
from pybernetes.api.selectors import EVERYTHING, FieldSelector
from pybernetes.client import config as client_config
from pybernetes.metrics import HealthServer
from pybernetes.options import opt

from . import metrics
from .allocator import ServiceAllocator
from .auth import TokenAuthenticator, UnionAuthenticator, ensure_admin_token
from .http.app import HttpServer
from .kubelet_proxy import KubeletProxy
from .registry import strategy
from .rest import Rest
from .server import APIServicer
from .serviceaccount import tokens as sa_tokens
from .serviceaccount.tokenrequest import TokenRequests
from .storage.embedded import EmbeddedEtcd
from .storage.etcd import EtcdClient
from .storage.restore import restore_embedded
from .storage.store import Store

log = logging.getLogger("pybernetes.apiserver")

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass
class Config:
    data_dir: Path = opt(Path("/var/lib/pybernetes/apiserver"))
    bind_address: str = opt("127.0.0.1")
    secure_port: int = opt(ports.APISERVER, help="the Kubernetes REST API over HTTPS (0: a free port)")
    grpc_port: int = opt(ports.APISERVER_GRPC, help="the API over gRPC, pbctl's protocol (0: a free port)")
    advertise_address: str = opt("", help="address written into admin.conf")
    etcd_servers: list[str] = opt([], help="comma-separated etcd URLs; empty = embedded etcd")
    # The embedded etcd's ports: 0 picks free loopback ports (logged), so standalone apiservers, tests and a lab
    # run side by side; deploy/install.sh gives Kubernetes' numbers.
    etcd_client_port: int = opt(0, help="embedded etcd's client port (0: a free one)")
    etcd_peer_port: int = opt(0, help="embedded etcd's peer port (0: a free one)")
    etcd_metrics_port: int = opt(0, help="embedded etcd's /metrics port (0: a free one)")
    token_auth_file: Path | None = opt(None)
    restore_from: Path | None = opt(None, help="an etcd snapshot (pbctl etcd snapshot save) to restore the embedded"
                                    " etcd from before starting (once: the same file again is skipped)")
    compaction_interval: float = opt(300.0, "--etcd-compaction-interval",
                                     help="seconds between compactions (0 disables)")
    watch_cache_size: int = opt(10_000)
    bookmark_interval: float = opt(5.0)
    health_port: int = opt(0, help="HTTP port for /metrics, /healthz, /readyz (0: Kubernetes' beside the default"
                                   " API port, else a free one)")
    admin_config: Path | None = opt(None, help="where to write admin.conf")
    service_cluster_ip_range: str = opt("10.96.0.0/16")
    service_node_port_range: str = opt(f"{ports.NODE_PORT_RANGE[0]}-{ports.NODE_PORT_RANGE[1]}")
    kubelet_client_token_file: Path | None = opt(None, help="token the apiserver presents to kubelets (logs, exec)")
    default_not_ready_toleration_seconds: int = opt(
        300, help="tolerationSeconds of the not-ready:NoExecute toleration added to every pod")
    default_unreachable_toleration_seconds: int = opt(
        300, help="tolerationSeconds of the unreachable:NoExecute toleration added to every pod")
    enable_metrics: bool = opt(True, help="record request and etcd metrics (false only to measure their overhead)")
    cert_dir: Path | None = opt(None, help="where the CA and serving certificate live, kubeadm's layout "
                                "(default <data-dir>/pki)")
    service_account_issuer: str = opt(sa_tokens.DEFAULT_ISSUER, help="the iss of ServiceAccount tokens issued here "
                                      "(and accepted)")
    api_audiences: list[str] = opt([], help="audiences the API accepts in ServiceAccount tokens, and the default "
                                   "of TokenRequests (default: the issuer)")
    service_account_key_file: list[str] = opt([], help="PEM files of keys verifying ServiceAccount tokens "
                                              "(default: <cert-dir>/sa.pub)")
    service_account_signing_key_file: Path | None = opt(None, help="the private key signing ServiceAccount "
                                                        "tokens (default: <cert-dir>/sa.key, created if absent)")
    verbose: bool = opt(False, "-v", "--verbose", switch=True)


def parse_args(argv: list[str] | None = None) -> Config:
    cfg = options.parse_args(Config, argv, prog="pb-apiserver",
                             description="The pybernetes API server (Kubernetes REST over HTTPS and gRPC, "
                                                         "backed by etcd).")
    logs.setup("apiserver", verbose=cfg.verbose)
    return cfg


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
    svc.spec.ports.add(name="https", port=ports.KUBERNETES_SERVICE, protocol="TCP").target_port.int_val = port
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
        ep.metadata.resource_version = objects.meta_of(cur).resource_version
        await rest.update("endpoints", "default", ep.SerializeToString())


def health_port(cfg: Config) -> int:
    """--health-port, or for 0: Kubernetes' health port beside the default API port (the two come as a pair; a
    second apiserver on this host fails on the API port first), else a free port."""
    if cfg.health_port:
        return cfg.health_port
    return ports.APISERVER_HEALTH if cfg.secure_port == ports.APISERVER else ports.free_port()


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
        embedded = EmbeddedEtcd(cfg.data_dir / "etcd", client_port=cfg.etcd_client_port or ports.free_port(),
                                peer_port=cfg.etcd_peer_port or ports.free_port(),
                                metrics_port=cfg.etcd_metrics_port or ports.free_port())
        log.info("starting embedded etcd data_dir=%s client_port=%d peer_port=%d metrics_port=%d",
                 embedded.data_dir, embedded.client_port, embedded.peer_port, embedded.metrics_port)
        if cfg.restore_from is not None:
            await restore_embedded(cfg.restore_from, embedded)
        else:
            await embedded.start()
        endpoints = [embedded.endpoint]
    elif cfg.restore_from is not None:
        raise errors.ConfigError("--restore-from restores the embedded etcd; for an etcd of your own use "
                                 "`pbctl etcd snapshot restore` (see docs/backup.md)")
    tokens_path = cfg.token_auth_file or cfg.data_dir / "tokens.csv"
    admin_token = ensure_admin_token(tokens_path) if cfg.token_auth_file is None else ""
    etcd = EtcdClient(endpoints)
    store = Store(etcd, {i.plural: strategy.fields_fn(i) for i in kinds.RESOURCES},
                  cache_capacity=cfg.watch_cache_size, bookmark_interval=cfg.bookmark_interval)
    rest = Rest(store, ServiceAllocator(store, cfg.service_cluster_ip_range, cfg.service_node_port_range),
                toleration_seconds=(cfg.default_not_ready_toleration_seconds,
                                    cfg.default_unreachable_toleration_seconds))
    # ServiceAccount tokens: signed with the SA key, checked against the live ServiceAccount and pod.
    sa_keys = sa_tokens.load_keys(cfg.cert_dir or cfg.data_dir / "pki", cfg.service_account_signing_key_file,
                                  [Path(p) for p in cfg.service_account_key_file])
    audiences = tuple(cfg.api_audiences) or (cfg.service_account_issuer,)
    lookup = sa_tokens.store_lookup(store)
    rest.token_requests = TokenRequests(sa_tokens.TokenIssuer(sa_keys.signing, cfg.service_account_issuer), lookup,
                                        audiences)
    authn = UnionAuthenticator([TokenAuthenticator.from_file(tokens_path),
                                sa_tokens.ServiceAccountAuthenticator(sa_keys.verifying, lookup,
                                                                      issuers=(cfg.service_account_issuer,),
                                                                      audiences=audiences)])
    server = rpc.server()
    kubelet_token = cfg.kubelet_client_token_file.read_text().strip() if cfg.kubelet_client_token_file else ""
    kubelets = KubeletProxy(rest, token=kubelet_token)
    pb_grpc.add_APIServicer_to_server(APIServicer(rest, authn, kubelets=kubelets), server)
    health = HealthServer(cfg.bind_address, health_port(cfg))

    async def etcd_ok() -> None:
        await etcd.status()

    health.add_ready_check("etcd", etcd_ok)
    tasks: list[asyncio.Task[None]] = []
    https: HttpServer | None = None
    try:
        store.start()
        await asyncio.wait_for(store.cache(kinds.for_class(core.Namespace)).ready.wait(), 30)
        port = rpc.bind(server, f"{cfg.bind_address}:{cfg.grpc_port}")
        cfg.grpc_port = port
        host = cfg.advertise_address or ("127.0.0.1" if cfg.bind_address in ("0.0.0.0", "") else cfg.bind_address)
        # The Kubernetes REST API over HTTPS, through the same Rest and authenticator as gRPC.
        pki = tls.ensure_apiserver_pki(cfg.cert_dir or cfg.data_dir / "pki", [host, cfg.bind_address])
        https = HttpServer(rest, authn, pki, ready_check=etcd_ok, kubelets=kubelets)
        cfg.secure_port = await https.start(cfg.bind_address, cfg.secure_port)
        await bootstrap(rest, host, cfg.secure_port)
        await server.start()
        try:
            await health.start()
        except OSError as e:
            raise errors.ConfigError(f"health port {health.port} on {cfg.bind_address}: {e.strerror}"
                                     " (--health-port; 0 picks a free one)") from e
        if cfg.compaction_interval > 0:
            tasks.append(asyncio.create_task(compactor(store, cfg.compaction_interval)))

        async def services() -> list[core.Service]:
            svc_info = kinds.for_class(core.Service)
            await store.cache(svc_info).wait_ready()
            return [c.obj for c in store.cache(svc_info).list("", EVERYTHING, FieldSelector())
                    if isinstance(c.obj, core.Service)]

        tasks.append(asyncio.create_task(rest.allocator.repair_loop(services)))
        if admin_token:
            admin = cfg.admin_config or cfg.data_dir / "admin.conf"
            # A standard kubeconfig; gRPC in its cluster's pybernetes.io/grpc extension.
            client_config.write_kubeconfig(admin, f"https://{host}:{cfg.secure_port}", f"{host}:{port}",
                                           admin_token, pki.ca_pem())
            log.info("admin config written path=%s; use: export KUBECONFIG=%s; kubectl get nodes; pbctl get nodes",
                     admin, admin)
        log.info("apiserver serving address=%s secure_port=%d grpc_port=%d etcd=%s health_port=%d",
                 cfg.bind_address, cfg.secure_port, port, ",".join(endpoints), health.port)
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
