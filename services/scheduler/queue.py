"""The scheduling queue: activeQ (priority, then arrival), backoffQ (1 s doubling to 10 s) and the
unschedulable pods, moved back when a cluster event that could help them happens.

As Kubernetes' PriorityQueue: a pod that failed gets backoff after its attempts; an event that arrives
while a pod is being scheduled (move request cycle >= its scheduling cycle) sends it to backoff instead
of unschedulable, so the event is never missed; pods wait at most 5 minutes in unschedulable.
Callers: services.scheduler.scheduler (informer handlers add/update/delete/move, the loop pops).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client import Gauge

from pybernetes.clock import Clock, RealClock
from services.scheduler.cache import PodInfo

log = logging.getLogger("pybernetes.scheduler.queue")

PENDING_PODS = Gauge("scheduler_pending_pods", "Number of pending pods, by the queue type.", ["queue"])
MAX_IN_UNSCHEDULABLE = 300.0


class QueueClosed(Exception):
    pass


@dataclass(eq=False)
class QueuedPodInfo:
    pod_info: PodInfo
    timestamp: float  # when it (re-)entered the queue; orders pods of equal priority
    attempts: int = 0
    initial_attempt: float | None = None
    last_failure: float = 0.0
    unschedulable_plugins: set[str] = field(default_factory=set)
    updated_in_flight: bool = False
    cycle: int = 0
    seq: int = 0  # heap entry version

    @property
    def key(self) -> str:
        return self.pod_info.key


class SchedulingQueue:
    def __init__(self, *, clock: Clock | None = None, initial_backoff: float = 1.0, max_backoff: float = 10.0,
                 plugin_events: Mapping[str, frozenset[str]] | None = None,
                 max_in_unschedulable: float = MAX_IN_UNSCHEDULABLE) -> None:
        self.clock: Clock = clock or RealClock()
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.plugin_events = dict(plugin_events or {})
        self.max_in_unschedulable = max_in_unschedulable
        self._active: list[tuple[int, float, int, str]] = []
        self._active_items: dict[str, QueuedPodInfo] = {}
        self._backoff: list[tuple[float, int, str]] = []
        self._backoff_items: dict[str, QueuedPodInfo] = {}
        self.unschedulable: dict[str, QueuedPodInfo] = {}
        self.gated: dict[str, QueuedPodInfo] = {}
        self.in_flight: dict[str, QueuedPodInfo] = {}
        self._seq = itertools.count(1)
        self.scheduling_cycle = 0
        self.move_request_cycle = -1
        self._wakeup = asyncio.Event()
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._export_metrics()

    # -- bookkeeping -----------------------------------------------------------------------------

    def _export_metrics(self) -> None:
        """The pending gauges read this queue's sizes when scraped (not set on every add and pop)."""
        for name, items in (("active", self._active_items), ("backoff", self._backoff_items),
                            ("unschedulable", self.unschedulable), ("gated", self.gated)):
            PENDING_PODS.labels(name).set_function(items.__len__)

    def _push_active(self, q: QueuedPodInfo) -> None:
        q.seq = next(self._seq)
        self._active_items[q.key] = q
        heapq.heappush(self._active, (-q.pod_info.priority, q.timestamp, q.seq, q.key))
        self._wakeup.set()

    def _push_backoff(self, q: QueuedPodInfo) -> None:
        q.seq = next(self._seq)
        self._backoff_items[q.key] = q
        heapq.heappush(self._backoff, (self.backoff_expiry(q), q.seq, q.key))

    def backoff_duration(self, q: QueuedPodInfo) -> float:
        if q.attempts <= 0:
            return 0.0
        d: float = self.initial_backoff * (2.0 ** (q.attempts - 1))
        return min(d, self.max_backoff)

    def backoff_expiry(self, q: QueuedPodInfo) -> float:
        return q.last_failure + self.backoff_duration(q)

    def is_backing_off(self, q: QueuedPodInfo) -> bool:
        return q.attempts > 0 and self.backoff_expiry(q) > self.clock.now()

    def _remove(self, key: str) -> QueuedPodInfo | None:
        """Take a pod out of whichever queue holds it (heap entries die lazily)."""
        for d in (self._active_items, self._backoff_items, self.unschedulable, self.gated):
            q = d.pop(key, None)
            if q is not None:
                return q
        return None

    def contains(self, key: str) -> bool:
        return any(key in d for d in (self._active_items, self._backoff_items, self.unschedulable, self.gated))

    def where(self, key: str) -> str | None:
        for name, d in (("active", self._active_items), ("backoff", self._backoff_items),
                        ("unschedulable", self.unschedulable), ("gated", self.gated),
                        ("in_flight", self.in_flight)):
            if key in d:
                return name
        return None

    def pending(self) -> dict[str, int]:
        return {"active": len(self._active_items), "backoff": len(self._backoff_items),
                "unschedulable": len(self.unschedulable), "gated": len(self.gated)}

    # -- informer side ---------------------------------------------------------------------------

    def add(self, p: PodInfo) -> None:
        """A new pending pod."""
        key = p.key
        if key in self.in_flight:
            self.in_flight[key].pod_info = p
            self.in_flight[key].updated_in_flight = True
            return
        old = self._remove(key)
        q = old or QueuedPodInfo(p, self.clock.now())
        q.pod_info = p
        self._admit(q)

    def _admit(self, q: QueuedPodInfo) -> None:
        if q.pod_info.pod.spec.scheduling_gates:
            self.gated[q.key] = q
        else:
            self._push_active(q)

    def update(self, p: PodInfo, relevant: bool = True) -> None:
        """A pending pod changed; `relevant` when its spec/labels changed (may now fit)."""
        key = p.key
        if key in self.in_flight:
            self.in_flight[key].pod_info = p
            self.in_flight[key].updated_in_flight = self.in_flight[key].updated_in_flight or relevant
            return
        if key in self._active_items:
            q = self._active_items[key]
            if q.pod_info.priority != p.priority:
                del self._active_items[key]
                q.pod_info = p
                self._push_active(q)
            q.pod_info = p
            return
        if key in self._backoff_items:
            self._backoff_items[key].pod_info = p
            return
        if key in self.unschedulable or key in self.gated:
            q = self.unschedulable.get(key) or self.gated[key]
            q.pod_info = p
            if relevant:
                self._remove(key)
                if q.pod_info.pod.spec.scheduling_gates:
                    self.gated[key] = q
                elif self.is_backing_off(q):
                    self._push_backoff(q)
                else:
                    self._push_active(q)
            return
        self.add(p)

    def delete(self, key: str) -> None:
        self._remove(key)
        self.in_flight.pop(key, None)

    def move_all(self, event: str) -> int:
        """A cluster event: unschedulable pods rejected by a plugin that cares move to active/backoff."""
        self.move_request_cycle = self.scheduling_cycle
        moved = 0
        for key, q in list(self.unschedulable.items()):
            if q.unschedulable_plugins and not any(
                    event in self.plugin_events.get(pl, frozenset([event])) for pl in q.unschedulable_plugins):
                continue
            del self.unschedulable[key]
            if self.is_backing_off(q):
                self._push_backoff(q)
            else:
                self._push_active(q)
            moved += 1
        if moved:
            log.debug("moved unschedulable pods event=%s count=%d", event, moved)
        return moved

    # -- scheduler side --------------------------------------------------------------------------

    async def pop(self) -> QueuedPodInfo:
        while True:
            if self._closed:
                raise QueueClosed()
            q = self._pop_active()
            if q is not None:
                return q
            self._wakeup.clear()
            await self._wakeup.wait()

    def pop_nowait(self) -> QueuedPodInfo | None:
        return self._pop_active()

    def _pop_active(self) -> QueuedPodInfo | None:
        while self._active:
            _, _, seq, key = heapq.heappop(self._active)
            q = self._active_items.get(key)
            if q is None or q.seq != seq:
                continue
            del self._active_items[key]
            self.scheduling_cycle += 1
            q.cycle = self.scheduling_cycle
            q.attempts += 1
            q.updated_in_flight = False
            if q.initial_attempt is None:
                q.initial_attempt = self.clock.now()
            self.in_flight[key] = q
            return q
        return None

    def done(self, key: str) -> None:
        """The pod left the scheduling cycle for good (bound or assumed)."""
        self.in_flight.pop(key, None)

    def add_unschedulable(self, q: QueuedPodInfo, plugins: set[str]) -> None:
        """After a failed attempt: unschedulable (waits for an event) or backoff (an event came meanwhile)."""
        if self.in_flight.pop(q.key, None) is None:
            return  # deleted while being scheduled
        q.last_failure = self.clock.now()
        q.unschedulable_plugins = set(plugins)
        if self.contains(q.key):
            return
        if q.updated_in_flight or self.move_request_cycle >= q.cycle:
            self._push_backoff(q)
        else:
            self.unschedulable[q.key] = q

    def add_backoff(self, q: QueuedPodInfo) -> None:
        """After an error (binding failed, apiserver unavailable): retry after backoff."""
        self.in_flight.pop(q.key, None)
        q.last_failure = self.clock.now()
        q.unschedulable_plugins = set()
        if self.contains(q.key):
            return
        self._push_backoff(q)

    # -- periodic flushes ------------------------------------------------------------------------

    def flush_backoff_completed(self) -> int:
        now = self.clock.now()
        moved = 0
        while self._backoff:
            expiry, seq, key = self._backoff[0]
            q = self._backoff_items.get(key)
            if q is None or q.seq != seq:
                heapq.heappop(self._backoff)
                continue
            if expiry > now:
                break
            heapq.heappop(self._backoff)
            del self._backoff_items[key]
            self._push_active(q)
            moved += 1
        return moved

    def flush_unschedulable_left_over(self) -> int:
        now = self.clock.now()
        stale = [q for q in self.unschedulable.values() if now - q.last_failure > self.max_in_unschedulable]
        for q in stale:
            del self.unschedulable[q.key]
            if self.is_backing_off(q):
                self._push_backoff(q)
            else:
                self._push_active(q)
        return len(stale)

    async def _flush_loop(self) -> None:
        tick = 0
        while not self._closed:
            await self.clock.sleep(0.2)
            self.flush_backoff_completed()
            tick += 1
            if tick % 150 == 0:
                self.flush_unschedulable_left_over()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._flush_loop(), name="scheduler-queue-flush")

    async def close(self) -> None:
        self._closed = True
        self._wakeup.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
