"""pb-apiserver: its flags parsed (declared in options.py), embedded etcd, storage, bootstrap objects, the HTTPS
(REST), gRPC and health servers, etcd compaction and the allocator's repair loop.

`run(cfg, ready, stop)` is the shape every component shares: the lab, systemd and tests start it the same
way. Without --etcd-servers it starts etcd as a child under --data-dir and stops it on exit (k3s' embedded
default; --restore-from restores it from a snapshot first). The API is served twice over the same request
path: Kubernetes' REST API over HTTPS on --secure-port (kubectl, client libraries) and gRPC on --grpc-port
(pbctl, the components); pybernetes.ports names their defaults. Both serve the same certificate from
<cert-dir> (kubeadm's layout, pybernetes.tls) and verify client certificates against its CA: optional over
REST, required over gRPC (see pybernetes.rpc). On start it writes <data-dir>/admin.conf (0600), a kubeconfig
naming both, whose user is a client certificate for kubernetes-admin in system:masters (kubeadm's admin.conf);
the tokens file keeps an admin token (system:admin) for scripts.

Both front ends share one in-flight limiter (inflight.py: --max-requests-inflight, --max-mutating-requests-inflight;
over budget a request gets 429 TooManyRequests).

The embedded etcd serves TLS to this apiserver's client certificate only (storage.embedded); client_tls reads
the flags for an etcd and kubelets of your own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from pathlib import Path

from pybernetes import component, errors, logs, options, pkiutil, ports, rpc, tls
from pybernetes.api import kinds, objects
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.rpc.v1 import rpc_pb2_grpc as pb_grpc
from pybernetes.api.selectors import EVERYTHING, FieldSelector
from pybernetes.client import config as client_config
from pybernetes.metrics import HealthServer
from pybernetes.secureserving import Authorize, Caller, secure_serving
from pybernetes.secureserving import Decision as ServingDecision

from . import admission, inflight, insecure, metrics
from .allocator import ServiceAllocator
from .audit import frontends as audit_frontends
from .audit.auditor import Auditor
from .auth import TokenAuthenticator, User, ensure_admin_token, grpc_authenticator, rest_authenticator
from .authz import Attributes, Authorizer, Decision
from .authz_node import new_node_authorizer
from .client_tls import etcd_client_tls, kubelet_client_tls
from .http.app import HttpServer
from .kubelet_proxy import KubeletProxy
from .options import Config as Config
from .options import check
from .rbac import modes
from .registry import strategy
from .rest import Rest
from .server import APIServicer
from .serviceaccount import tokens as sa_tokens
from .serviceaccount.tokenrequest import TokenRequests
from .storage import encryption
from .storage.embedded import EmbeddedEtcd
from .storage.etcd import EtcdClient
from .storage.restore import restore_embedded
from .storage.store import Store

log = logging.getLogger("pybernetes.apiserver")

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def parse_args(argv: list[str] | None = None) -> Config:
    cfg = options.parse_args(Config, argv, prog="pb-apiserver",
                             description="The pybernetes API server (Kubernetes REST over HTTPS and gRPC, "
                                                         "backed by etcd).", check=check)
    logs.setup("apiserver", verbose=cfg.verbose)
    return cfg


def local_authorizer(authz: Authorizer) -> Authorize:
    """The health port's /metrics authorized in process by the apiserver's own authorizer (no review needed)."""
    async def authorize(caller: Caller, verb: str, path: str) -> ServingDecision:
        r = authz.authorize(Attributes(user=User(caller.user, "", caller.groups), verb=verb, path=path))
        return ServingDecision(r.decision is Decision.ALLOW, r.reason)
    return authorize


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


def write_admin_conf(path: Path, pki_dir: Path, https_server: str, grpc_address: str) -> None:
    """kubeadm's admin.conf: the cluster CA and an embedded client certificate for kubernetes-admin in
    system:masters (<pki-dir>/admin.crt, re-issued by `pbctl certs renew admin.conf`; rewritten at each start)."""
    pair = pkiutil.ensure_client_cert(pki_dir, "admin", tls.ADMIN_USER, [tls.MASTERS_GROUP])
    # A standard kubeconfig; gRPC in its cluster's pybernetes.io/grpc extension.
    client_config.write_kubeconfig(path, https_server, grpc_address, "", (pki_dir / "ca.crt").read_bytes(),
                                   cert=client_config.ClientCert(pair.cert, pair.key))


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
    insecure.check_bind_address(cfg.insecure_bind_address, cfg.insecure_grpc_port, cfg.insecure_port)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    metrics.set_enabled(cfg.enable_metrics)
    embedded: EmbeddedEtcd | None = None
    endpoints = cfg.etcd_servers
    pki_dir = cfg.cert_dir or cfg.data_dir / "pki"
    etcd_tls = etcd_client_tls(cfg.etcd_servers, cfg.etcd_cafile, cfg.etcd_certfile, cfg.etcd_keyfile)
    kubelet_tls = kubelet_client_tls(pki_dir, cfg.kubelet_client_certificate, cfg.kubelet_client_key,
                                     cfg.kubelet_certificate_authority)
    if not endpoints:
        embedded = EmbeddedEtcd(cfg.data_dir / "etcd", client_port=cfg.etcd_client_port or ports.free_port(),
                                peer_port=cfg.etcd_peer_port or ports.free_port(),
                                metrics_port=cfg.etcd_metrics_port or ports.free_port(), pki_dir=pki_dir)
        log.info("starting embedded etcd data_dir=%s client_port=%d peer_port=%d metrics_port=%d",
                 embedded.data_dir, embedded.client_port, embedded.peer_port, embedded.metrics_port)
        if cfg.restore_from is not None:
            await restore_embedded(cfg.restore_from, embedded)
        else:
            await embedded.start()
        endpoints, etcd_tls = [embedded.endpoint], embedded.client_tls
    elif cfg.restore_from is not None:
        raise errors.ConfigError("--restore-from restores the embedded etcd; for an etcd of your own use "
                                 "`pbctl etcd snapshot restore` (see docs/backup.md)")
    tokens_path = cfg.token_auth_file or cfg.data_dir / "tokens.csv"
    if cfg.token_auth_file is None:
        ensure_admin_token(tokens_path)
    tokens = TokenAuthenticator.from_file(tokens_path)
    auditor = Auditor.from_flags(cfg.audit_log_path, cfg.audit_policy_file, cfg.audit_log_maxsize,
                                 cfg.audit_log_maxbackup, cfg.audit_log_maxage)
    transformers = encryption.load(cfg.encryption_provider_config) if cfg.encryption_provider_config else None
    etcd = EtcdClient(endpoints, tls=etcd_tls)
    store = Store(etcd, {i.plural: strategy.fields_fn(i) for i in kinds.RESOURCES},
                  cache_capacity=cfg.watch_cache_size, bookmark_interval=cfg.bookmark_interval,
                  transformers=transformers)
    try:
        chain = admission.new_chain(store, cfg.enable_admission_plugins, cfg.disable_admission_plugins,
                                    toleration_seconds=(cfg.default_not_ready_toleration_seconds,
                                                        cfg.default_unreachable_toleration_seconds))
    except ValueError as e:
        raise errors.ConfigError(f"--enable-admission-plugins/--disable-admission-plugins: {e}") from None
    log.info("admission plugins enabled=%s", ",".join(chain.names))
    rest = Rest(store, ServiceAllocator(store, cfg.service_cluster_ip_range, cfg.service_node_port_range),
                admission=chain)
    # ServiceAccount tokens: signed with the SA key, checked against the live ServiceAccount and pod.
    sa_keys = sa_tokens.load_keys(cfg.cert_dir or cfg.data_dir / "pki", cfg.service_account_signing_key_file,
                                  [Path(p) for p in cfg.service_account_key_file])
    audiences = tuple(cfg.api_audiences) or (cfg.service_account_issuer,)
    lookup = sa_tokens.store_lookup(store)
    rest.token_requests = TokenRequests(sa_tokens.TokenIssuer(sa_keys.signing, cfg.service_account_issuer), lookup,
                                        audiences)
    sa_authn = sa_tokens.ServiceAccountAuthenticator(sa_keys.verifying, lookup, issuers=(cfg.service_account_issuer,),
                                                     audiences=audiences)
    server = rpc.server(interceptors=[audit_frontends.interceptor(auditor)] if auditor is not None else [])
    kubelet_token = cfg.kubelet_client_token_file.read_text().strip() if cfg.kubelet_client_token_file else ""
    kubelets = KubeletProxy(rest, token=kubelet_token, tls=kubelet_tls)
    node, node_graph = new_node_authorizer(store.cache(kinds.for_class(core.Pod)))
    authz: Authorizer = modes.build(cfg.authorization_mode, store, rest, node=node)
    grpc_authn = grpc_authenticator([tokens, sa_authn], anonymous=cfg.anonymous_auth)
    rest_authn = rest_authenticator([tokens, sa_authn], anonymous=cfg.anonymous_auth)
    metrics_authz = local_authorizer(authz)  # before the audit's wrapper: scrapes are not audited
    if auditor is not None:  # the user and decision of each request, as the front ends find them
        grpc_authn, rest_authn = auditor.authenticator(grpc_authn), auditor.authenticator(rest_authn)
        authz = auditor.authorizer(authz)
    limiter = inflight.InflightLimiter(cfg.max_requests_inflight, cfg.max_mutating_requests_inflight)  # both front ends
    pb_grpc.add_APIServicer_to_server(APIServicer(rest, grpc_authn, authz, kubelets=kubelets, inflight=limiter),
                                      server)
    health = HealthServer(cfg.bind_address, health_port(cfg))

    async def etcd_ok() -> None:
        await etcd.status()

    health.add_ready_check("etcd", etcd_ok)
    tasks: list[asyncio.Task[None]] = []
    https: HttpServer | None = None
    try:
        if auditor is not None:
            auditor.start()
            log.info("audit log path=%s policy=%s", cfg.audit_log_path, cfg.audit_policy_file or "(all at Metadata)")
        if transformers:
            log.info("encryption at rest config=%s resources=%s", cfg.encryption_provider_config,
                     ",".join(sorted(transformers)))
        store.start()
        await asyncio.wait_for(store.cache(kinds.for_class(core.Namespace)).ready.wait(), 30)
        node_graph.start()
        await asyncio.wait_for(node_graph.synced.wait(), 30)  # the Node mode answers from a synced graph
        host = cfg.advertise_address or ("127.0.0.1" if cfg.bind_address in ("0.0.0.0", "") else cfg.bind_address)
        pki_dir = cfg.cert_dir or cfg.data_dir / "pki"
        pki = pkiutil.ensure_apiserver_pki(pki_dir, [host, cfg.bind_address])
        # gRPC: the same serving certificate; client certificates signed by the cluster CA, required.
        port = rpc.bind(server, f"{cfg.bind_address}:{cfg.grpc_port}", tls=rpc.ServerTLS(
            pki.cert.read_bytes(), pki.key.read_bytes(), pki.ca_pem()))
        cfg.grpc_port = port
        if cfg.insecure_grpc_port:
            insecure.bind_grpc(server, cfg.insecure_bind_address, cfg.insecure_grpc_port)
        health.serving = secure_serving(client_ca=cfg.client_ca_file, authorize=metrics_authz, cert_file=pki.cert,
                                        key_file=pki.key, common_name=tls.APISERVER_NAME)
        # The Kubernetes REST API over HTTPS, through the same Rest; client certificates optional.
        https = HttpServer(rest, rest_authn, pki, authz=authz, ready_check=etcd_ok, kubelets=kubelets,
                           client_ca=pki.ca_cert, inflight=limiter)
        if auditor is not None:
            audit_frontends.instrument(https.app, auditor)
        cfg.secure_port = await https.start(cfg.bind_address, cfg.secure_port)
        if cfg.insecure_port:
            await insecure.start_http(https, cfg.insecure_bind_address, cfg.insecure_port)
        await bootstrap(rest, host, cfg.secure_port)
        await modes.bootstrap_policy(cfg.authorization_mode, store, rest)
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
        admin = cfg.admin_config or cfg.data_dir / "admin.conf"
        write_admin_conf(admin, pki_dir, f"https://{host}:{cfg.secure_port}", f"{host}:{port}")
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
        await node_graph.stop()
        await store.stop()
        await etcd.close()
        if auditor is not None:
            await auditor.stop()
        if embedded is not None:
            await embedded.stop()
        log.info("apiserver stopped")


def main(argv: list[str] | None = None) -> None:
    component.serve(run, parse_args(argv))


if __name__ == "__main__":
    main()
