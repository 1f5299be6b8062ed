"""pb-kubelet: its options parsed (declared in options.py), and `run(cfg, ready, stop)` wiring one node's
kubelet (node_agent.kubelet.Kubelet).

run connects to the apiserver and containerd (CRI), registers the Node and keeps its status and Lease
(node_agent.nodestatus), serves the kubelet API for the apiserver (logs, exec, stats: node_agent.server)
and /metrics, /healthz, /readyz (readyz fails when containerd does not answer), then starts the
Kubelet's pod source, relister and eviction loops. The kubelet talks only to the apiserver and
containerd; never to etcd.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import grpc

from node_agent import pressure
from node_agent.cri.client import DEFAULT_TIMEOUT
from node_agent.kubelet import Kubelet
from node_agent.nodestatus import NodeSpecCfg, NodeStatus
from node_agent.options import Config as Config
from node_agent.server import KubeletAPI, serve, server_credentials
from node_agent.sync import InstrumentedCRI
from pybernetes import component, errors, logs, options, secureserving, tls
from pybernetes.client import config as client_config
from pybernetes.client.client import Client
from pybernetes.metrics import HealthServer

log = logging.getLogger("pybernetes.kubelet")


def parse_args(argv: list[str] | None = None) -> Config:
    cfg = options.parse_args(Config, argv, prog="pb-kubelet", description="The pybernetes node agent (CRI kubelet).")
    logs.setup("kubelet", verbose=cfg.verbose)
    return cfg


def make_cri(socket_path: str) -> InstrumentedCRI:
    return InstrumentedCRI(socket_path, timeout=DEFAULT_TIMEOUT)


def serving_pair(cfg: Config, host_ip: str) -> tls.CertPair:
    """--tls-cert-file/--tls-private-key-file, else <root-dir>/pki/kubelet.{crt,key}, self-signed for the node's
    name and addresses (made once, re-made when they change), as a kubelet without a certificate does."""
    if cfg.client_ca_file is not None and not cfg.client_ca_file.is_file():
        raise errors.ConfigError(f"--client-ca-file: {cfg.client_ca_file}: no such file")
    if (cfg.tls_cert_file is None) != (cfg.tls_private_key_file is None):
        raise errors.ConfigError("--tls-cert-file and --tls-private-key-file go together")
    if cfg.tls_cert_file is not None and cfg.tls_private_key_file is not None:
        for flag, path in (("--tls-cert-file", cfg.tls_cert_file), ("--tls-private-key-file",
                                                                     cfg.tls_private_key_file)):
            if not path.is_file():
                raise errors.ConfigError(f"{flag}: {path}: no such file")
        return tls.CertPair(cfg.tls_cert_file, cfg.tls_private_key_file)
    from pybernetes import pkiutil  # makes certificates: imported only by a kubelet given none

    dns, ips = tls.serving_names([cfg.node_name, cfg.node_ip, host_ip], cluster_names=False)
    return pkiutil.ensure_self_signed(cfg.root_dir / "pki", "kubelet", cfg.node_name, dns, ips)


def node_status(cfg: Config, client: Client, kl: Kubelet,
                observer: Callable[[str, str | None], pressure.Observations] = pressure.observe) -> NodeStatus:
    """The Node's registration, status and Lease for `kl`, as --node-* and --eviction-* say; `observer` reads the
    eviction signals (the machine's, unless a hollow node fakes them)."""
    node = NodeStatus(client, NodeSpecCfg(
        name=cfg.node_name, ip=kl.host_ip, root_dir=cfg.root_dir, labels=cfg.node_labels, cpu=cfg.cpu,
        memory=cfg.memory, max_pods=cfg.max_pods, health_port=cfg.health_port, api_port=cfg.port,
        status_frequency=cfg.node_status_update_frequency, status_report_frequency=cfg.node_status_report_frequency,
        lease_duration=cfg.node_lease_duration,
        eviction_hard=pressure.parse_thresholds(cfg.eviction_hard),
        pressure_transition_period=cfg.eviction_pressure_transition_period),
        kl.runtime_version, kl.runtime_ready, kl.image_fs, observer)
    kl.node_pressure = node.pressure_conditions
    return node


async def start_kubelet(kl: Kubelet, node: NodeStatus, stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Start one node's kubelet (its API servers aside): events, pod statuses, the Node and its Lease, the
    CNI config, pods from checkpoints, the pod source, relister (PLEG) and eviction; each task it starts is
    appended to `tasks` at once (for stop_kubelet, even if a later step fails). The bench's hollow nodes
    (bench/hollow.py) start theirs through here too."""
    cfg = kl.cfg
    kl.recorder.start()
    kl.statuses.start()
    if cfg.register_node:
        try:
            await node.register()
        except errors.ApiError as e:
            log.warning("node not registered yet (will retry) node=%s error=%s", cfg.node_name, e)
        tasks.append(asyncio.create_task(node.run(stop), name="node-status"))
    await kl.ensure_pod_cidr(stop)
    for pod in kl.checkpoints.load():
        if pod.spec.node_name == cfg.node_name:
            kl.pods[pod.metadata.uid] = pod
    if kl.pods:
        log.info("pods restored from checkpoints count=%d", len(kl.pods))
    kl.informer.add_event_handler(kl._on_add, kl._on_update, kl._on_delete)
    kl.factory.start()
    tasks.append(asyncio.create_task(kl.relist_loop(stop), name="pleg"))
    tasks.append(asyncio.create_task(kl.eviction_loop(node, stop), name="eviction"))
    tasks.append(asyncio.create_task(kl._await_source(), name="pod-source"))
    for uid in list(kl.pods):
        kl.workers.update(uid)


async def stop_kubelet(kl: Kubelet, tasks: list[asyncio.Task[None]]) -> None:
    """Cancel start_kubelet's tasks, then close the pod workers, probes, informers, status and event writers."""
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t
    await kl.workers.close()
    await kl.probes.close()
    await kl.factory.shutdown()
    await kl.statuses.stop()
    await kl.recorder.stop()


async def run(cfg: Config, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    cfg.root_dir.mkdir(parents=True, exist_ok=True)
    if cfg.server and not cfg.config:  # --server alone: plaintext gRPC (no CA to verify the apiserver with)
        client = Client(cfg.server, token=cfg.token or "", timeout=10, user_agent="pb-kubelet")
    else:
        ccfg = client_config.load(cfg.config, server=cfg.server, token=cfg.token)
        client = Client.from_config(ccfg, timeout=10, user_agent="pb-kubelet")
    cri = make_cri(cfg.containerd_socket)
    kl = Kubelet(cfg, client, cri)
    pair = serving_pair(cfg, kl.host_ip)
    # /metrics as on kubelet's API port: its serving certificate, client certificates from --client-ca-file
    # authorized with SubjectAccessReviews (system:node may create them), answers cached as the kubelet's
    # webhook authorizer caches them (cacheAuthorizedTTL 5 min, cacheUnauthorizedTTL 30 s); plain HTTP without
    # a client CA.
    health = HealthServer(cfg.health_host, cfg.health_port, secureserving.delegated(
        client, client_ca=cfg.client_ca_file, cert_file=pair.cert, key_file=pair.key, common_name=cfg.node_name,
        address=cfg.health_host, allow_ttl=300.0, deny_ttl=30.0))

    async def containerd_ok() -> None:
        await cri.version(deadline=2)

    health.add_ready_check("containerd", containerd_ok)
    node = node_status(cfg, client, kl)
    tasks: list[asyncio.Task[None]] = []
    tokens: frozenset[str] = frozenset()
    if cfg.authentication_token_file is not None:
        tokens = frozenset(t.strip() for t in cfg.authentication_token_file.read_text().splitlines() if t.strip())
    api_server: grpc.aio.Server | None = None
    try:
        await health.start()
        cfg.health_port = health.port
        api = KubeletAPI(cri, cfg.containerd_socket, tokens=tokens, client_certs=cfg.client_ca_file is not None,
                         runtime_netns=cfg.probe_netns)
        api_server = await serve(api, f"{cfg.address or '0.0.0.0'}:{cfg.port}",
                                 server_credentials(pair, cfg.client_ca_file))
        await start_kubelet(kl, node, stop, tasks)
        log.info("kubelet running node=%s root_dir=%s containerd=%s health_port=%d", cfg.node_name,
                 cfg.root_dir, cfg.containerd_socket, health.port)
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        if api_server is not None:
            await api_server.stop(grace=1)
        await stop_kubelet(kl, tasks)
        await health.stop()
        await cri.close()
        await client.close()
        log.info("kubelet stopped node=%s", cfg.node_name)


def main(argv: list[str] | None = None) -> None:
    component.serve(run, parse_args(argv))


if __name__ == "__main__":
    main()
