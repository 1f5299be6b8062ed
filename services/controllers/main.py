"""pb-controller-manager: runs the cluster's controllers in one process (kube-controller-manager).

One client, one InformerFactory and one EventRecorder ("controller-manager") are shared by every enabled
controller. With --leader-elect (default) the controllers run only while this process holds the Lease
kube-system/kube-controller-manager; on losing it they are stopped and the process campaigns again.
/healthz, /readyz and /metrics are served on --health-port (ports.CONTROLLER_MANAGER) whether leading or not.

--controllers takes Kubernetes' syntax: `*` (all defaults), `foo` (enable), `-foo` (disable), e.g.
`--controllers=*,-nodeipam`. Controllers of other modules are imported lazily from a table, so one that
fails to import is reported and skipped without breaking the others.

--pod-eviction-timeout and --default-{not-ready,unreachable}-toleration-seconds are accepted for
compatibility: eviction is taint based, and the 300 s tolerations are added to pods by the apiserver's
defaulting (DefaultTolerationSeconds), not by this process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pybernetes import component, flags, logs, options, ports, secureserving
from pybernetes.cache import InformerFactory
from pybernetes.client import config as client_config
from pybernetes.client.client import Client
from pybernetes.events import EventRecorder
from pybernetes.leaderelection import run_leader_elected
from pybernetes.metrics import HealthServer
from pybernetes.options import opt
from services.controllers import statemetrics

log = logging.getLogger("pybernetes.controller-manager")

COMPONENT = "controller-manager"


# name -> (module under services.controllers, class, --concurrent-*-syncs default, extra kwargs of cfg)
Kwargs = Callable[["Config"], dict[str, Any]]


def _lifecycle_kw(c: Config) -> dict[str, Any]:
    return {"node_monitor_period": c.node_monitor_period, "node_monitor_grace_period": c.node_monitor_grace_period,
            "node_eviction_rate": c.node_eviction_rate, "secondary_node_eviction_rate": c.secondary_node_eviction_rate,
            "unhealthy_zone_threshold": c.unhealthy_zone_threshold,
            "large_cluster_size_threshold": c.large_cluster_size_threshold}


def _ipam_kw(c: Config) -> dict[str, Any]:
    return {"cluster_cidr": c.cluster_cidr, "node_cidr_mask_size": c.node_cidr_mask_size}


def _none(c: Config) -> dict[str, Any]:
    return {}


def _endpointslice_kw(c: Config) -> dict[str, Any]:
    return {"max_endpoints_per_slice": c.max_endpoints_per_slice}


def _mirroring_kw(c: Config) -> dict[str, Any]:
    return {"max_endpoints_per_subset": c.mirroring_max_endpoints_subset_size}


def _servicelb_kw(c: Config) -> dict[str, Any]:
    return {"pool": c.loadbalancer_ip_range}


def _rootca_kw(c: Config) -> dict[str, Any]:
    """The CA pods trust: --root-ca-file, else the --kubeconfig's (kube-controller-manager's fallback to its
    client's CA; only an explicit --kubeconfig, never one found by search)."""
    if c.root_ca_file is not None:
        return {"root_ca": c.root_ca_file.read_bytes()}
    return {"root_ca": client_config.load(c.config).ca_pem if c.config else b""}


CONTROLLERS: dict[str, tuple[str, str, int, Kwargs]] = {
    "endpoint": ("endpoints", "EndpointsController", 5, _none),
    "endpointslice": ("endpointslice", "EndpointSliceController", 5, _endpointslice_kw),
    "endpointslicemirroring": ("endpointslicemirroring", "EndpointSliceMirroringController", 5, _mirroring_kw),
    "replicaset": ("replicaset", "ReplicaSetController", 5, _none),
    "replicationcontroller": ("replicaset", "ReplicationControllerController", 5, _none),
    "deployment": ("deployment", "DeploymentController", 5, _none),
    "daemonset": ("daemonset", "DaemonSetController", 2, _none),
    "statefulset": ("statefulset", "StatefulSetController", 5, _none),
    "garbagecollector": ("garbagecollector", "GarbageCollector", 20, _none),
    "namespace": ("namespace", "NamespaceController", 10, _none),
    "serviceaccount": ("serviceaccount", "ServiceAccountController", 1, _none),
    "resourcequota": ("resourcequota", "ResourceQuotaController", 5, _none),
    "root-ca-cert-publisher": ("rootcacertpublisher", "RootCACertPublisher", 1, _rootca_kw),
    "nodelifecycle": ("nodelifecycle", "NodeLifecycleController", 5, _lifecycle_kw),
    "nodeipam": ("nodeipam", "NodeIpamController", 1, _ipam_kw),
    "servicelb": ("servicelb", "ServiceLBController", 1, _servicelb_kw),
    "job": ("job", "JobController", 5, _none),
    "cronjob": ("cronjob", "CronJobController", 5, _none),
    "clusterrole-aggregation": ("clusterroleaggregation", "ClusterRoleAggregationController", 1, _none),
}
# --concurrent-<flag>-syncs -> controller name (Kubernetes' flag names)
CONCURRENCY_FLAGS = {
    "endpoint": "endpoint", "service-endpoint": "endpointslice", "replicaset": "replicaset",
    "rc": "replicationcontroller", "deployment": "deployment", "gc": "garbagecollector", "namespace": "namespace",
    "serviceaccount": "serviceaccount", "nodelifecycle": "nodelifecycle", "nodeipam": "nodeipam",
    "servicelb": "servicelb", "daemonset": "daemonset", "statefulset": "statefulset", "job": "job",
    "cron-job": "cronjob", "resource-quota": "resourcequota",
}


def enabled_controllers(spec: list[str]) -> list[str]:
    """Resolve `*`, `name`, `-name` (Kubernetes' --controllers) to the enabled names, in table order."""
    items = [s.strip() for part in spec for s in part.split(",") if s.strip()]
    unknown = [s.lstrip("-") for s in items if s != "*" and s.lstrip("-") not in CONTROLLERS]
    if unknown:
        raise ValueError(f"unknown controllers: {', '.join(unknown)} (known: {', '.join(CONTROLLERS)})")
    star = "*" in items
    on = {s for s in items if s != "*" and not s.startswith("-")}
    off = {s[1:] for s in items if s.startswith("-")}
    return [n for n in CONTROLLERS if n not in off and (star or n in on)]


def _controller_spec(text: str) -> str:
    """One --controllers value, checked against the table."""
    try:
        enabled_controllers([text])
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


@dataclass
class Config:
    config: str | None = opt(None, "--config", "--kubeconfig",
                             help=client_config.SEARCH_HELP)
    server: str | None = opt(None, help="apiserver address, overrides the config file")
    token: str | None = opt(None, help="bearer token, overrides the config file")
    controllers: list[str] = opt(["*"], append=True, parse=_controller_spec,
                                 help="controllers to run: '*' for all, 'foo' to enable, '-foo' to disable "
                                      f"(known: {', '.join(CONTROLLERS)})")
    leader_elect: bool = opt(True)
    leader_elect_lease_duration: float = opt(15.0, parse=flags.duration)
    leader_elect_renew_deadline: float = opt(10.0, parse=flags.duration)
    leader_elect_retry_period: float = opt(2.0, parse=flags.duration)
    leader_elect_resource_name: str = opt("kube-controller-manager")
    leader_elect_resource_namespace: str = opt("kube-system")
    identity: str = opt("", help="leader election identity (default hostname_uuid)")
    node_monitor_grace_period: float = opt(40.0, parse=flags.duration)
    node_monitor_period: float = opt(5.0, parse=flags.duration)
    pod_eviction_timeout: float = opt(300.0, parse=flags.duration,
                                      help="accepted for compatibility; eviction is taint based (tolerationSeconds)")
    default_not_ready_toleration_seconds: int = opt(
        300, help="accepted for compatibility; the apiserver adds this toleration to pods")
    default_unreachable_toleration_seconds: int = opt(
        300, help="accepted for compatibility; the apiserver adds this toleration to pods")
    node_eviction_rate: float = opt(0.1)
    secondary_node_eviction_rate: float = opt(0.01)
    unhealthy_zone_threshold: float = opt(0.55)
    large_cluster_size_threshold: int = opt(50)
    cluster_cidr: str = opt("10.244.0.0/16")
    node_cidr_mask_size: int = opt(24)
    allocate_node_cidrs: bool = opt(True)
    # controller name -> workers, one --concurrent-<flag>-syncs flag each (Kubernetes' names)
    concurrency: dict[str, int] = opt({name: CONTROLLERS[name][2] for name in CONCURRENCY_FLAGS.values()},
                                      keyed={name: f"--concurrent-{flag}-syncs"
                                             for flag, name in CONCURRENCY_FLAGS.items()})
    max_endpoints_per_slice: int = opt(100, help="the most endpoints one EndpointSlice holds")
    mirroring_max_endpoints_subset_size: int = opt(1000, help="the most addresses of one Endpoints subset mirrored "
                                                              "into an EndpointSlice (selector-less Services)")
    bind_address: str = opt("127.0.0.1")
    health_port: int = opt(ports.CONTROLLER_MANAGER, "--health-port", "--secure-port",
                           help="HTTP(S) port for /metrics, /healthz, /readyz")
    client_ca_file: Path | None = opt(None, help=secureserving.CLIENT_CA_HELP)
    tls_cert_file: Path | None = opt(None, help=secureserving.TLS_CERT_HELP)
    tls_private_key_file: Path | None = opt(None)
    loadbalancer_ip_range: str = opt("", help="pool for type=LoadBalancer Services, e.g. 172.30.0.200-172.30.0.250 "
                                              "or a CIDR (empty: they stay pending, as without a cloud provider)")
    root_ca_file: Path | None = opt(None, help="the CA published to every namespace as ConfigMap kube-root-ca.crt "
                                   "(default: the kubeconfig's certificate authority)")
    verbose: bool = opt(False, "-v", "--verbose", switch=True)


def parse_args(argv: list[str] | None = None) -> Config:
    cfg = options.parse_args(Config, argv, prog="pb-controller-manager",
                             description="The pybernetes controller manager.")
    logs.setup(COMPONENT, verbose=cfg.verbose)
    return cfg


def load_controller_class(name: str) -> type[Any]:
    module, cls, _, _ = CONTROLLERS[name]
    mod = importlib.import_module(f"{__package__ or 'services.controllers'}.{module}")
    controller: type[Any] = getattr(mod, cls)
    return controller


class ControllerManager:
    """One process's controllers; `run` serves health and runs them (under leader election)."""

    def __init__(self, cfg: Config, client: Client | None = None) -> None:
        self.cfg = cfg
        self.identity = cfg.identity or f"{socket.gethostname()}_{uuid.uuid4()}"
        self._client = client
        self.enabled = enabled_controllers(cfg.controllers)
        if not cfg.allocate_node_cidrs and "nodeipam" in self.enabled:
            self.enabled.remove("nodeipam")
        self.running: list[str] = []  # controllers currently running (empty while not leading)
        self.failed: dict[str, str] = {}  # controllers that could not be started, with the reason
        self.leading = False
        self.terms = 0
        self.health: HealthServer | None = None

    def _make_client(self) -> Client:
        if self._client is not None:
            return self._client
        cc = client_config.load(self.cfg.config, server=self.cfg.server, token=self.cfg.token)
        server = self.cfg.server or cc.server
        token = self.cfg.token if self.cfg.token is not None else cc.token
        return Client(server, token=token, user_agent=COMPONENT, tls=cc.tls())

    def build(self, client: Client, factory: InformerFactory, recorder: EventRecorder) -> dict[str, Any]:
        """Instantiate every enabled controller; one failing (e.g. its module missing) is skipped."""
        controllers: dict[str, Any] = {}
        for name in self.enabled:
            try:
                cls = load_controller_class(name)
                kw = CONTROLLERS[name][3](self.cfg)
                workers = self.cfg.concurrency.get(name, CONTROLLERS[name][2])
                controllers[name] = cls(client, factory, recorder, workers=workers, **kw)
                self.failed.pop(name, None)
            except Exception as e:
                self.failed[name] = repr(e)
                log.error("controller not started controller=%s error=%r", name, e)
        return controllers

    async def run_controllers(self, client: Client) -> None:
        """Build, sync and run the controllers until cancelled (one leadership term)."""
        self.terms += 1
        factory = InformerFactory(client)
        recorder = EventRecorder(client, COMPONENT, socket.gethostname())
        recorder.start()
        inner_stop = asyncio.Event()
        tasks: dict[str, asyncio.Task[None]] = {}
        state: statemetrics.StateMetrics | None = None
        try:
            controllers = self.build(client, factory, recorder)
            state = statemetrics.register(factory)
            factory.start()
            synced = await factory.wait_for_cache_sync()
            log.info("caches synced informers=%d ok=%s", len(synced), all(synced.values()))
            for name, ctl in controllers.items():
                tasks[name] = asyncio.create_task(ctl.run(inner_stop), name=f"controller-{name}")
                log.info("started controller controller=%s", name)
            self.running = list(tasks)
            if not tasks:
                await asyncio.Event().wait()
            # a controller's run returning or raising is logged; the others keep running
            pending = set(tasks.values())
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    name = t.get_name().removeprefix("controller-")
                    exc = None if t.cancelled() else t.exception()
                    log.error("controller exited controller=%s error=%r", name, exc)
                    self.failed[name] = repr(exc)
                    if name in self.running:
                        self.running.remove(name)
            await asyncio.Event().wait()
        finally:
            inner_stop.set()
            self.running = []
            if tasks:
                _, slow = await asyncio.wait(tasks.values(), timeout=10)
                for t in slow:
                    t.cancel()
                for t in tasks.values():
                    with contextlib.suppress(BaseException):
                        await t
            if state is not None:
                statemetrics.unregister(state)
            await factory.shutdown()
            await recorder.stop()
            log.info("controllers stopped")

    def _on_state(self, leading: bool) -> None:
        self.leading = leading
        log.info("leadership changed leading=%s identity=%s", leading, self.identity)

    async def run(self, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
        cfg = self.cfg
        client = self._make_client()
        own_client = self._client is None
        health = self.health = HealthServer(cfg.bind_address, cfg.health_port, secureserving.delegated(
            client, client_ca=cfg.client_ca_file, cert_file=cfg.tls_cert_file, key_file=cfg.tls_private_key_file,
            common_name="kube-controller-manager", address=cfg.bind_address))

        async def leader_ok() -> None:  # readiness: always ready (standby included) once serving
            return None

        health.add_ready_check("controller-manager", leader_ok)
        await health.start()
        cfg.health_port = health.port
        if cfg.leader_elect:
            work = asyncio.create_task(run_leader_elected(
                client, name=cfg.leader_elect_resource_name, namespace=cfg.leader_elect_resource_namespace,
                identity=self.identity, work=lambda: self.run_controllers(client),
                lease_duration=cfg.leader_elect_lease_duration, renew_deadline=cfg.leader_elect_renew_deadline,
                retry_period=cfg.leader_elect_retry_period, on_state=self._on_state))
        else:
            self.leading = True
            work = asyncio.create_task(self.run_controllers(client))
        log.info("controller-manager started identity=%s controllers=%s leader_elect=%s health_port=%d",
                 self.identity, ",".join(self.enabled), cfg.leader_elect, health.port)
        if ready is not None:
            ready.set()
        stopper = asyncio.ensure_future(stop.wait() if stop is not None else asyncio.Event().wait())
        try:
            await asyncio.wait([work, stopper], return_when=asyncio.FIRST_COMPLETED)
            if work.done():
                work.result()
        finally:
            stopper.cancel()
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            self.leading = False
            await health.stop()
            if own_client:
                await client.close()
            log.info("controller-manager stopped")


async def run(cfg: Config, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
    await ControllerManager(cfg).run(ready, stop)


def main(argv: list[str] | None = None) -> None:
    component.serve(run, parse_args(argv))


if __name__ == "__main__":
    main()
