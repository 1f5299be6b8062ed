"""pb-scheduler: flags, informers, leader election, health/metrics server, the scheduling loop.

Several replicas may run; with --leader-elect (default) only the holder of Lease kube-system/kube-scheduler
schedules, the others keep warm caches. `run(cfg, ready, stop)` as every component.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

from pybernetes import component, flags, logs
from pybernetes.cache import InformerFactory
from pybernetes.client import config as client_config
from pybernetes.client.client import Client
from pybernetes.events import EventRecorder
from pybernetes.metrics import HealthServer
from services.scheduler import config as sched_config
from services.scheduler.scheduler import Scheduler

log = logging.getLogger("pybernetes.scheduler")


@dataclass
class Config:
    kubeconfig: str | None = None
    server: str = ""
    token: str = ""
    config_file: Path | None = None
    scheduler_name: str = ""  # overrides the config file's schedulerName
    leader_elect: bool = True
    lease_name: str = "kube-scheduler"
    lease_namespace: str = "kube-system"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    identity: str = ""
    bind_address: str = "127.0.0.1"
    health_port: int = 10259
    bind_concurrency: int = 64
    verbose: bool = False


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(prog="pb-scheduler", description="The pybernetes scheduler.")
    p.add_argument("--kubeconfig", "--client-config", dest="kubeconfig", default=None,
                   help="client config (default $PBCONFIG, ~/.pybernetes/config)")
    p.add_argument("--server", "--master", dest="server", default="", help="apiserver address (overrides the config)")
    p.add_argument("--token", default="", help="bearer token (overrides the config)")
    p.add_argument("--config", dest="config_file", type=Path, default=None,
                   help="SchedulerConfiguration / KubeSchedulerConfiguration YAML")
    p.add_argument("--scheduler-name", default="", help="schedule pods with this spec.schedulerName")
    p.add_argument("--leader-elect", type=flags.boolean, nargs="?", const=True, default=True,
                   help="run leader election; only the leader schedules (default true)")
    p.add_argument("--leader-elect-resource-name", dest="lease_name", default=Config.lease_name)
    p.add_argument("--leader-elect-resource-namespace", dest="lease_namespace", default=Config.lease_namespace)
    p.add_argument("--leader-elect-lease-duration", dest="lease_duration", type=float, default=Config.lease_duration)
    p.add_argument("--leader-elect-renew-deadline", dest="renew_deadline", type=float, default=Config.renew_deadline)
    p.add_argument("--leader-elect-retry-period", dest="retry_period", type=float, default=Config.retry_period)
    p.add_argument("--identity", default="", help="leader election identity (default hostname_uuid)")
    p.add_argument("--bind-address", default=Config.bind_address, help="address of the health/metrics server")
    p.add_argument("--health-port", "--secure-port", dest="health_port", type=int, default=Config.health_port,
                   help="HTTP port for /metrics, /healthz, /readyz (0: any free port)")
    p.add_argument("--bind-concurrency", type=int, default=Config.bind_concurrency)
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)
    logs.setup("scheduler", verbose=a.verbose)
    return Config(kubeconfig=a.kubeconfig, server=a.server, token=a.token, config_file=a.config_file,
                  scheduler_name=a.scheduler_name, leader_elect=a.leader_elect, lease_name=a.lease_name,
                  lease_namespace=a.lease_namespace, lease_duration=a.lease_duration,
                  renew_deadline=a.renew_deadline, retry_period=a.retry_period, identity=a.identity,
                  bind_address=a.bind_address, health_port=a.health_port, bind_concurrency=a.bind_concurrency,
                  verbose=a.verbose)


def make_client(cfg: Config) -> Client:
    if cfg.server and (cfg.token or not cfg.kubeconfig):
        return Client(cfg.server, token=cfg.token, user_agent="pb-scheduler")
    cc = client_config.load(cfg.kubeconfig, server=cfg.server or None, token=cfg.token or None)
    return Client(cfg.server or cc.server, token=cfg.token or cc.token, user_agent="pb-scheduler")


async def run(cfg: Config, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
    profile = sched_config.load(cfg.config_file)
    if cfg.scheduler_name:
        profile.scheduler_name = cfg.scheduler_name
    framework = profile.build()
    identity = cfg.identity or f"{socket.gethostname()}_{uuid.uuid4()}"
    cfg.identity = identity
    client = make_client(cfg)
    recorder = EventRecorder(client, profile.scheduler_name, identity)
    sched = Scheduler(client, framework, recorder=recorder, initial_backoff=profile.pod_initial_backoff,
                      max_backoff=profile.pod_max_backoff, bind_concurrency=cfg.bind_concurrency,
                      profile=profile.scheduler_name)
    factory = InformerFactory(client)
    sched.register(factory)
    health = HealthServer(cfg.bind_address, cfg.health_port)
    leading = asyncio.Event()
    if not cfg.leader_elect:
        leading.set()

    async def synced() -> None:
        if not all(i.has_synced() for i in factory.informers()):
            raise RuntimeError("informers not synced")

    health.add_ready_check("informer-sync", synced)
    tasks: list[asyncio.Task[None]] = []
    stop = stop or asyncio.Event()
    try:
        cfg.health_port = await health.start()
        recorder.start()
        factory.start()
        await factory.wait_for_cache_sync()
        sched.queue.start()
        tasks.append(asyncio.create_task(sched.housekeeping(), name="scheduler-housekeeping"))
        log.info("scheduler started name=%s identity=%s leader_elect=%s health_port=%d filters=%s scores=%s",
                 profile.scheduler_name, identity, cfg.leader_elect, cfg.health_port,
                 ",".join(p.name for p in framework.filters),
                 ",".join(f"{p.name}:{w}" for p, w in framework.scorers))
        if cfg.leader_elect:
            from pybernetes.leaderelection import run_leader_elected

            def on_state(is_leader: bool) -> None:
                log.info("leader election identity=%s leading=%s", identity, is_leader)
                if is_leader:
                    leading.set()
                else:
                    leading.clear()

            work = run_leader_elected(client, name=cfg.lease_name, identity=identity, work=sched.run,
                                      namespace=cfg.lease_namespace, lease_duration=cfg.lease_duration,
                                      renew_deadline=cfg.renew_deadline, retry_period=cfg.retry_period,
                                      on_state=on_state)
            tasks.append(asyncio.create_task(work, name="scheduler-leader-election"))
        else:
            tasks.append(asyncio.create_task(sched.run(), name="scheduler-loop"))
        if ready is not None:
            ready.set()
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        for t in tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await sched.stop()
        await sched.queue.close()
        await factory.shutdown()
        with contextlib.suppress(Exception):
            await recorder.stop()
        await health.stop()
        await client.close()
        log.info("scheduler stopped identity=%s scheduled=%d unschedulable_attempts=%d", identity,
                 sched.scheduled, sched.failed)


def main(argv: list[str] | None = None) -> None:
    component.serve(run, parse_args(argv))


if __name__ == "__main__":
    main()
