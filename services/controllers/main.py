"""pb-controller-manager: runs the cluster's controllers in one process (kube-controller-manager).

One client, one InformerFactory and one EventRecorder ("controller-manager") are shared by every enabled
controller. With --leader-elect (default) the controllers run only while this process holds the Lease
kube-system/kube-controller-manager; on losing it they are stopped and the process campaigns again.
/healthz, /readyz and /metrics are served on --health-port (ports.CONTROLLER_MANAGER) whether leading or not.

--controllers takes Kubernetes' syntax: `*` (all defaults), `foo` (enable), `-foo` (disable), e.g.
`--controllers=*,-nodeipam`. Controllers are imported lazily from the table in options.py (beside the flags),
so one that fails to import is reported and skipped without breaking the others.

--pod-eviction-timeout and --default-{not-ready,unreachable}-toleration-seconds are accepted for
compatibility: eviction is taint based, and the 300 s tolerations are added to pods by the apiserver's
defaulting (DefaultTolerationSeconds), not by this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import socket
import uuid
from typing import Any

from pybernetes import component, logs, options, secureserving
from pybernetes.cache import InformerFactory
from pybernetes.client import config as client_config
from pybernetes.client.client import Client
from pybernetes.events import EventRecorder
from pybernetes.leaderelection import run_leader_elected
from pybernetes.metrics import HealthServer
from services.controllers import statemetrics
from services.controllers.options import CONTROLLERS, enabled_controllers
from services.controllers.options import Config as Config

log = logging.getLogger("pybernetes.controller-manager")

COMPONENT = "controller-manager"


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
