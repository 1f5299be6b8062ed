"""pb-scheduler: its flags parsed (declared in options.py), informers, leader election, health/metrics server,
the scheduling loop.

Several replicas may run; with --leader-elect (default) only the holder of Lease kube-system/kube-scheduler
schedules, the others keep warm caches. `run(cfg, ready, stop)` as every component.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid

from pybernetes import component, logs, options, secureserving
from pybernetes.cache import InformerFactory
from pybernetes.client import config as client_config
from pybernetes.client.client import Client
from pybernetes.events import EventRecorder
from pybernetes.metrics import HealthServer
from services.scheduler import config as sched_config
from services.scheduler.options import Config as Config
from services.scheduler.scheduler import Scheduler

log = logging.getLogger("pybernetes.scheduler")


def parse_args(argv: list[str] | None = None) -> Config:
    cfg = options.parse_args(Config, argv, prog="pb-scheduler", description="The pybernetes scheduler.")
    logs.setup("scheduler", verbose=cfg.verbose)
    return cfg


def make_client(cfg: Config) -> Client:
    if cfg.server and (cfg.token or not cfg.kubeconfig):
        return Client(cfg.server, token=cfg.token, user_agent="pb-scheduler")
    cc = client_config.load(cfg.kubeconfig, server=cfg.server or None, token=cfg.token or None)
    return Client(cfg.server or cc.server, token=cfg.token or cc.token, user_agent="pb-scheduler", tls=cc.tls())


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
    health = HealthServer(cfg.bind_address, cfg.health_port, secureserving.delegated(
        client, client_ca=cfg.client_ca_file, cert_file=cfg.tls_cert_file, key_file=cfg.tls_private_key_file,
        common_name="kube-scheduler", address=cfg.bind_address))
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
            if t.done() and not t.cancelled() and (exc := t.exception()) is not None:
                raise exc
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
