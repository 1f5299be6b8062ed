"""The scheduler proper: informer handlers feeding the cache and the queue, the scheduling loop (one pod at
a time, synchronous decision), and binding in the background through pods/binding only.

Decision flow per pod: pop -> framework.schedule (filters, scores) -> assume in the cache -> bind task.
On failure: PodScheduled=False (reason Unschedulable) status patch, a FailedScheduling Warning event, and
the pod waits in the queue for a cluster event that could help. Callers: services.scheduler.main.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from prometheus_client import Counter, Histogram

from pybernetes import errors
from pybernetes.api import objects
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.cache import InformerFactory
from pybernetes.cache.reflector import DeletedFinalStateUnknown
from pybernetes.client.client import Client
from pybernetes.clock import Clock, RealClock
from pybernetes.controller import unwrap
from pybernetes.events import EventRecorder
from services.scheduler import framework as fw
from services.scheduler.cache import PodInfo, SchedulerCache
from services.scheduler.framework import FitError, Framework, ScheduleResult
from services.scheduler.queue import QueueClosed, QueuedPodInfo, SchedulingQueue

log = logging.getLogger("pybernetes.scheduler")

SCHEDULE_ATTEMPTS = Counter("scheduler_schedule_attempts_total",
                            "Number of attempts to schedule pods, by the result.", ["result", "profile"])
ATTEMPT_DURATION = Histogram("scheduler_scheduling_attempt_duration_seconds",
                             "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
                             ["result", "profile"],
                             buckets=(0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256,
                                      0.512, 1.024, 2.048, 4.096, 8.192, 16.384))
SCORES_ANNOTATION = "scheduler.pybernetes.io/scores"


def _relevant_pod_change(old: core.Pod, new: core.Pod) -> bool:
    """A pending pod's change that could make it schedulable (not status or resourceVersion)."""
    return (old.spec != new.spec or old.metadata.labels != new.metadata.labels
            or old.metadata.annotations != new.metadata.annotations)


def _finished(pod: core.Pod) -> bool:
    return pod.status.phase in ("Succeeded", "Failed")


class Scheduler:
    def __init__(self, client: Client, framework: Framework, *, recorder: EventRecorder | None = None,
                 clock: Clock | None = None, initial_backoff: float = 1.0, max_backoff: float = 10.0,
                 bind_concurrency: int = 64, profile: str = "default-scheduler") -> None:
        self.client = client
        self.framework = framework
        self.recorder = recorder
        self.clock: Clock = clock or RealClock()
        self.cache = SchedulerCache()
        self.queue = SchedulingQueue(clock=self.clock, initial_backoff=initial_backoff, max_backoff=max_backoff,
                                     plugin_events=framework.plugin_events())
        self.scheduler_name = framework.scheduler_name
        self.profile = profile
        self._bind_sem = asyncio.Semaphore(bind_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self.scheduled = 0
        self.failed = 0

    # -- informers -------------------------------------------------------------------------------

    def register(self, factory: InformerFactory) -> None:
        nodes = factory.informer_for(core.Node, namespace="")
        pods = factory.informer_for(core.Pod, namespace="")
        nodes.add_event_handler(self.on_node_add, self.on_node_update, self.on_node_delete)
        pods.add_event_handler(self.on_pod_add, self.on_pod_update, self.on_pod_delete)

    def responsible(self, pod: core.Pod) -> bool:
        return (pod.spec.scheduler_name or "default-scheduler") == self.scheduler_name

    def on_node_add(self, node: core.Node) -> None:
        self.cache.set_node(node)
        self.queue.move_all(fw.NODE_ADD)

    def on_node_update(self, old: core.Node, new: core.Node) -> None:
        if self.cache.set_node(new):
            self.queue.move_all(fw.NODE_UPDATE)

    def on_node_delete(self, obj: core.Node | DeletedFinalStateUnknown[core.Node]) -> None:
        self.cache.remove_node(unwrap(obj).metadata.name)
        self.queue.move_all(fw.NODE_DELETE)

    def on_pod_add(self, pod: core.Pod) -> None:
        if pod.spec.node_name:
            if not _finished(pod):
                self.cache.add_pod(pod)
                self.queue.move_all(fw.POD_ADD)
        elif self.responsible(pod) and not pod.metadata.HasField("deletion_timestamp") and not _finished(pod):
            self.queue.add(PodInfo(pod))

    def on_pod_update(self, old: core.Pod, new: core.Pod) -> None:
        key = objects.key(new)
        if new.spec.node_name:
            if _finished(new):
                if self.cache.remove_pod(key) is not None:
                    self.queue.move_all(fw.POD_DELETE)
                return
            self.queue.delete(key)  # bound (by us or another scheduler)
            newly = not old.spec.node_name
            if not (newly and self.cache.confirm_binding(old, new)):
                self.cache.update_pod(new)
            if newly:
                self.queue.move_all(fw.POD_ADD)
            elif old.metadata.labels != new.metadata.labels:
                self.queue.move_all(fw.POD_UPDATE)
            return
        if self.cache.is_assumed(key) or not self.responsible(new):
            return
        if new.metadata.HasField("deletion_timestamp") or _finished(new):
            self.queue.delete(key)
            return
        self.queue.update(PodInfo(new), _relevant_pod_change(old, new))

    def on_pod_delete(self, obj: core.Pod | DeletedFinalStateUnknown[core.Pod]) -> None:
        key = objects.key(unwrap(obj))
        self.queue.delete(key)
        if self.cache.remove_pod(key) is not None:
            self.queue.move_all(fw.POD_DELETE)

    # -- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Schedule until cancelled (leader election cancels this on loss of the lease)."""
        log.info("scheduling loop started scheduler=%s", self.scheduler_name)
        q: QueuedPodInfo | None = None
        try:
            while True:
                q = await self.queue.pop()
                self.schedule_one(q)
                q = None
                await asyncio.sleep(0)  # let informer events in between decisions
        except QueueClosed:
            pass
        finally:
            if q is not None:  # cancelled with a pod in hand: give it back
                self.queue.add_backoff(q)
            log.info("scheduling loop stopped scheduler=%s", self.scheduler_name)

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def schedule_one(self, q: QueuedPodInfo) -> ScheduleResult | None:
        pi = q.pod_info
        if pi.terminating:
            self.queue.done(pi.key)
            return None
        start = time.perf_counter()
        try:
            result = self.framework.schedule(self.cache, pi)
        except FitError as e:
            self._record_failure(q, e, time.perf_counter() - start)
            return None
        except Exception as e:  # a plugin bug must not stop the scheduler
            log.exception("scheduling failed pod=%s", pi.key)
            SCHEDULE_ATTEMPTS.labels("error", self.profile).inc()
            self.queue.add_backoff(q)
            self._event(pi.pod, "Warning", "FailedScheduling", f"running the scheduling algorithm: {e}")
            return None
        assumed = pi.with_node(result.node)
        self.cache.assume_pod(assumed)
        self.queue.done(pi.key)
        self._spawn(self._bind(q, result, start))
        return result

    def _spawn(self, coro: Any) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _bind(self, q: QueuedPodInfo, result: ScheduleResult, start: float) -> None:
        pi = q.pod_info
        async with self._bind_sem:
            try:
                await self.client.bind(pi.namespace, pi.name, result.node, uid=pi.uid)
            except (errors.NotFound, errors.Conflict) as e:
                # gone, being deleted, or bound by someone else: nothing left to do for this pod
                self.cache.forget_pod(pi.key)
                log.info("binding rejected pod=%s node=%s error=%s", pi.key, result.node, e)
                SCHEDULE_ATTEMPTS.labels("error", self.profile).inc()
                if isinstance(e, errors.Conflict) and "already assigned" not in str(e) \
                        and "being deleted" not in str(e):
                    self.queue.add_backoff(q)
                return
            except asyncio.CancelledError:
                self.cache.forget_pod(pi.key)
                raise
            except Exception as e:
                self.cache.forget_pod(pi.key)
                log.warning("binding failed pod=%s node=%s error=%s", pi.key, result.node, e)
                SCHEDULE_ATTEMPTS.labels("error", self.profile).inc()
                self.queue.add_backoff(q)
                return
        self.cache.finish_binding(pi.key, self.clock.now())
        elapsed = time.perf_counter() - start
        SCHEDULE_ATTEMPTS.labels("scheduled", self.profile).inc()
        ATTEMPT_DURATION.labels("scheduled", self.profile).observe(elapsed)
        self.scheduled += 1
        scores = ", ".join(f"{k}={v}" for k, v in sorted(result.breakdown.items()))
        top = " ".join(f"{n}:{s}" for n, s in result.top)
        log.info("scheduled pod=%s node=%s score=%d evaluated=%d feasible=%d scores=[%s] top=[%s] attempts=%d",
                 pi.key, result.node, result.total, result.evaluated, result.feasible, scores, top, q.attempts)
        msg = f"Successfully assigned {pi.key} to {result.node}"
        if result.breakdown:
            msg += f" (score {result.total}: {scores})"
        self._event(pi.pod, "Normal", "Scheduled", msg)

    def _record_failure(self, q: QueuedPodInfo, e: FitError, elapsed: float) -> None:
        pi = q.pod_info
        msg = e.message()
        self.failed += 1
        SCHEDULE_ATTEMPTS.labels("unschedulable", self.profile).inc()
        ATTEMPT_DURATION.labels("unschedulable", self.profile).observe(elapsed)
        log.info("unschedulable pod=%s attempts=%d reason=%r", pi.key, q.attempts, msg)
        self.queue.add_unschedulable(q, e.plugins)
        self._event(pi.pod, "Warning", "FailedScheduling", msg)
        cur = objects.condition(pi.pod.status.conditions, "PodScheduled")
        if cur is not None and cur.status == "False" and cur.reason == "Unschedulable" and cur.message == msg:
            return
        self._spawn(self._set_unschedulable(pi, msg))

    async def _set_unschedulable(self, pi: PodInfo, msg: str) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock.wall()))
        patch = {"status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                            "message": msg, "lastProbeTime": None,
                                            "lastTransitionTime": now}]}}
        try:
            await self.client.patch(core.Pod, pi.name, patch, namespace=pi.namespace, subresource="status",
                                    patch_type="strategic")
        except errors.NotFound:
            pass
        except Exception as e:
            log.warning("updating PodScheduled condition failed pod=%s error=%s", pi.key, e)

    def _event(self, pod: core.Pod, type_: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            with contextlib.suppress(Exception):
                self.recorder.event(pod, type_, reason, message)

    async def housekeeping(self) -> None:
        """Expire assumed pods whose binding was never observed."""
        while True:
            await self.clock.sleep(1.0)
            self.cache.cleanup_assumed(self.clock.now())
