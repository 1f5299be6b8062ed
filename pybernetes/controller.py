"""The one controller loop (client-go sample-controller's `Run`/`runWorker`), shared by every reconciler.

Callers: every controller in services/controllers (and anything else that reconciles keys). A component
registers its informer handlers, then builds a `Controller` naming the informers it waits for and adds one
or more named rate-limited queues, each with its sync function and worker count, and optional periodic
tasks (resyncs, monitor passes). `run(stop)` keeps the sample-controller start order:
  informers (built by the caller) -> handlers (registered by the caller) -> start the informers not
  started yet -> wait for their first lists -> `on_synced` -> workers and periodic tasks -> `stop`.
Workers follow `pybernetes.workqueue.run_workers`' rules (always done; success forgets; an error requeues
rate-limited; a PermanentError is logged and dropped), so a key is never in two workers at once. Queues
report workqueue_* metrics under their names. On `stop` the queues shut down and every task is cancelled
and awaited: nothing is left running. A task that dies on its own stops the controller and its error is
raised from `run`.

Handler helpers: `key_of` (the object key, tombstones included), `unwrap` (a tombstone's last state),
`owner_of` (an owned object's controller owner, from a lister, uid checked).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf.message import Message

from pybernetes.api import objects
from pybernetes.api.objects import KubeObject
from pybernetes.cache import DeletedFinalStateUnknown, Lister, SharedInformer
from pybernetes.clock import Clock, RealClock
from pybernetes.workqueue import QueueMetrics, RateLimiter, RateLimitingQueue, run_workers

log = logging.getLogger(__name__)

T = TypeVar("T", bound=KubeObject)
OwnerT = TypeVar("OwnerT", bound=KubeObject)

Sync = Callable[[str], Awaitable[None]]


def key_of(obj: Message | KubeObject | DeletedFinalStateUnknown[Any]) -> str:
    """The workqueue key of an object, or of a tombstone (its own key)."""
    if isinstance(obj, DeletedFinalStateUnknown):
        return obj.key
    return objects.key(obj)


def unwrap(obj: T | DeletedFinalStateUnknown[T]) -> T:
    """The object itself, or a tombstone's last known state."""
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


def owner_of(obj: Message | KubeObject, kind: str, lister: Lister[OwnerT]) -> OwnerT | None:
    """The cached controller owner of `obj` when it is a `kind` with the referenced uid (not a namesake)."""
    ref = objects.controller_ref(obj)
    if ref is None or ref.kind != kind:
        return None
    owner = lister.get(objects.meta_of(obj).namespace, ref.name)
    if owner is None or objects.meta_of(owner).uid != ref.uid:
        return None
    return owner


@dataclass
class _Queue:
    queue: RateLimitingQueue[str]
    sync: Sync
    workers: int


@dataclass
class _Periodic:
    name: str
    fn: Callable[[], Awaitable[None]]
    period: float
    first_after: float


class Controller:
    def __init__(
        self,
        name: str,
        *,
        informers: Sequence[SharedInformer[Any]] = (),
        on_synced: Callable[[], None] | None = None,
        clock: Clock | None = None,
        metrics: QueueMetrics | None = None,
    ) -> None:
        self.name = name
        self.informers = list(informers)
        self.on_synced = on_synced
        self.clock: Clock = clock or RealClock()
        self.metrics = metrics
        self._queues: dict[str, _Queue] = {}
        self._periodic: list[_Periodic] = []

    def add_queue(self, name: str, sync: Sync, *, workers: int = 1,
                  rate_limiter: RateLimiter[str] | None = None) -> RateLimitingQueue[str]:
        """A named rate-limited queue whose keys `workers` workers hand to `sync`; returned for handlers."""
        if name in self._queues:
            raise ValueError(f"controller {self.name} already has a queue named {name}")
        queue: RateLimitingQueue[str] = RateLimitingQueue(rate_limiter, name=name, clock=self.clock,
                                                          metrics=self.metrics)
        self._queues[name] = _Queue(queue, sync, workers)
        return queue

    def queue(self, name: str) -> RateLimitingQueue[str]:
        return self._queues[name].queue

    def add_periodic(self, name: str, fn: Callable[[], Awaitable[None]], period: float, *,
                     first_after: float = 0.0) -> None:
        """Call `fn` every `period` seconds once workers run (first after `first_after`); errors are logged."""
        self._periodic.append(_Periodic(name, fn, period, first_after))

    async def run(self, stop: asyncio.Event) -> None:
        """Start, wait for the caches, run workers and periodic tasks until `stop`; then shut everything down."""
        try:
            if not await self._wait_synced(stop):
                return
            if self.on_synced is not None:
                self.on_synced()
            await self._run_tasks(stop)
        finally:
            for q in self._queues.values():
                q.queue.shutdown()

    async def _wait_synced(self, stop: asyncio.Event) -> bool:
        for informer in self.informers:
            if not informer.started():
                informer.start()
        synced: asyncio.Future[Any] = asyncio.ensure_future(
            asyncio.gather(*(i.wait_for_sync() for i in self.informers)))
        stopped: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait([synced, stopped], return_when=asyncio.FIRST_COMPLETED)
        finally:
            synced.cancel()
            stopped.cancel()
            await asyncio.gather(synced, stopped, return_exceptions=True)
        return not stop.is_set() and not synced.cancelled() and synced.exception() is None and all(synced.result())

    async def _run_tasks(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(run_workers(q.queue, q.sync, q.workers, name=name), name=f"{name}-workers")
                 for name, q in self._queues.items()]
        tasks += [asyncio.create_task(self._every(p), name=f"{self.name}-{p.name}") for p in self._periodic]
        stopped = asyncio.create_task(stop.wait(), name=f"{self.name}-stop")
        log.info("controller started controller=%s queues=%s", self.name,
                 ",".join(f"{n}:{q.workers}" for n, q in self._queues.items()) or "-")
        try:
            await asyncio.wait([*tasks, stopped], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for q in self._queues.values():
                q.queue.shutdown()
            for t in (*tasks, stopped):
                t.cancel()
            results = await asyncio.gather(*tasks, stopped, return_exceptions=True)
            log.info("controller stopped controller=%s", self.name)
        failed = [r for r in results if isinstance(r, Exception)]
        if failed and not stop.is_set():
            raise failed[0]

    async def _every(self, p: _Periodic) -> None:
        if p.first_after > 0:
            await self.clock.sleep(p.first_after)
        while True:
            try:
                await p.fn()
            except Exception:
                log.exception("periodic task failed controller=%s task=%s", self.name, p.name)
            await self.clock.sleep(p.period)
