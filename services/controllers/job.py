"""Job controller (Kubernetes pkg/controller/job and the ttlafterfinished controller), NonIndexed completion.

Runs pods from a Job's template until `completions` pods succeeded, at most `parallelism` at once; counts
succeeded and failed pods; fails the Job (condition Failed, reason BackoffLimitExceeded) once more pods
failed than `backoffLimit` allows (for restartPolicy OnFailure: container restarts), or with
DeadlineExceeded once it ran longer than `activeDeadlineSeconds`, deleting its active pods; marks it
Complete with `completionTime`. A suspended Job has its active pods deleted and no new ones. Failed pods
are replaced after an exponential backoff (10 s doubling, 6 min at most) from the last failure. A finished
Job with `ttlSecondsAfterFinished` is deleted (foreground) when the TTL runs out; its pods carry the Job as
controller owner, so the garbage collector removes them with it.

Counting reads the pods that still exist (the pre-finalizer-tracking way): a count never goes down, so a
terminated pod removed by hand keeps its place in the status. Expectations keep a lagging cache from
creating or deleting twice; `FreshObjects` keeps a second sync from writing the same status twice.
Times come from an injectable `pybernetes.clock.Clock` (wall time for the status, the workqueue's delays).
"""

from __future__ import annotations

import asyncio
import logging

from pybernetes import errors
from pybernetes.api import jobs, objects, selectors
from pybernetes.api.batch.v1 import batch_pb2 as batch
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.objects import being_deleted, controller_ref
from pybernetes.cache import DeletedFinalStateUnknown, InformerFactory
from pybernetes.client.client import Client
from pybernetes.clock import Clock, RealClock
from pybernetes.controller import Controller, key_of
from pybernetes.events import EventRecorder

from .controller_utils import (
    BURST_REPLICAS,
    SLOW_START_INITIAL_BATCH,
    ControllerExpectations,
    FreshObjects,
    RefManager,
    SlowStartError,
    is_pod_active,
    is_pod_ready,
    pod_from_template,
    rank_pods_for_deletion,
    slow_start_batch,
)
from .podowners import PodOwnerHandlers, delete_pods

log = logging.getLogger("pybernetes.controllers.job")

FIELD_MANAGER = "job-controller"
DEFAULT_BACKOFF = 10.0
MAX_BACKOFF = 360.0
BACKOFF_LIMIT_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")
FAILURE_TARGET = "FailureTarget"
SUCCESS_CRITERIA_MET = "SuccessCriteriaMet"


def _time(t: float) -> meta.Time:
    return meta.Time(seconds=int(t))


def _seconds(t: meta.Time) -> float:
    return t.seconds + t.nanos / 1e9


def set_condition(status: batch.JobStatus, typ: str, cond_status: str, reason: str, message: str,
                  now: float) -> bool:
    """Add or change a condition (transition time only on a status change); True when something changed."""
    for c in status.conditions:
        if c.type == typ:
            if (c.status, c.reason, c.message) == (cond_status, reason, message):
                return False
            if c.status != cond_status:
                c.last_transition_time.CopyFrom(_time(now))
            c.status, c.reason, c.message = cond_status, reason, message
            c.last_probe_time.CopyFrom(_time(now))
            return True
    c = status.conditions.add(type=typ, status=cond_status, reason=reason, message=message)
    c.last_probe_time.CopyFrom(_time(now))
    c.last_transition_time.CopyFrom(_time(now))
    return True


def finish_time(job: batch.Job) -> float | None:
    """When a finished Job finished: its completionTime, else the Complete/Failed condition's transition."""
    if job.status.HasField("completion_time"):
        return _seconds(job.status.completion_time)
    for c in job.status.conditions:
        if c.type in (jobs.COMPLETE, jobs.FAILED) and c.status == "True":
            return _seconds(c.last_transition_time)
    return None


def _pod_finished_at(pod: core.Pod) -> float:
    """The last time one of the pod's containers terminated (its creation when none says so)."""
    times = [_seconds(cs.state.terminated.finished_at) for cs in pod.status.container_statuses
             if cs.state.HasField("terminated") and cs.state.terminated.HasField("finished_at")]
    if times:
        return max(times)
    return _seconds(pod.metadata.creation_timestamp)


def _restarts(pods: list[core.Pod]) -> int:
    return sum(cs.restart_count for p in pods for cs in list(p.status.init_container_statuses)
               + list(p.status.container_statuses))


class _JobPodHandlers(PodOwnerHandlers):
    """A pod update enqueues both its old and its new Job, and an orphan enqueues the Jobs matching it on any
    change (Jobs have no minReadySeconds); additions and deletions are every pod owner's."""

    def updated(self, old: core.Pod, new: core.Pod) -> None:
        if old.metadata.resource_version == new.metadata.resource_version:
            return
        if being_deleted(new) and not being_deleted(old):
            self.deleted(new)
            return
        for pod in (old, new):
            job = self.owner(pod)
            if job is not None:
                self.queue.add(key_of(job))
        if controller_ref(new) is None:
            self.enqueue_matching(new)


class JobController:
    name = "job"

    def __init__(self, client: Client, factory: InformerFactory, recorder: EventRecorder, *, workers: int = 5,
                 clock: Clock | None = None, backoff_base: float = DEFAULT_BACKOFF,
                 backoff_max: float = MAX_BACKOFF) -> None:
        self.client = client
        self.recorder = recorder
        self.clock: Clock = clock or RealClock()
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.expectations = ControllerExpectations(clock=self.clock.now)
        self.fresh: FreshObjects[batch.Job] = FreshObjects()
        self.fresh_pods: FreshObjects[core.Pod] = FreshObjects()
        self.informer = factory.informer_for(batch.Job)
        self.pod_informer = factory.informer_for(core.Pod)
        self.lister = self.informer.lister()
        self.pod_lister = self.pod_informer.lister()
        self.controller = Controller(self.name, informers=[self.informer, self.pod_informer], clock=self.clock)
        self.queue = self.controller.add_queue(self.name, self.sync, workers=workers)
        self.pods = _JobPodHandlers("Job", self.lister, self.queue, self.expectations)
        self.informer.add_event_handler(self._job_added, self._job_updated, self.pods.owner_deleted)
        self.pod_informer.add_event_handler(self.pods.added, self.pods.updated, self.pods.deleted)

    async def run(self, stop: asyncio.Event) -> None:
        await self.controller.run(stop)

    # -- event handlers: only keys are queued ---------------------------------------------------

    def _job_added(self, job: batch.Job) -> None:
        self.queue.add(key_of(job))

    def _job_updated(self, old: batch.Job, new: batch.Job) -> None:
        if old.metadata.uid != new.metadata.uid:
            self.pods.owner_deleted(DeletedFinalStateUnknown(key_of(old), old))
        self.queue.add(key_of(new))

    @staticmethod
    def _selector(job: batch.Job) -> selectors.LabelSelector:
        try:
            return selectors.from_message(job.spec.selector)
        except errors.BadRequest:
            return selectors.NOTHING

    def _event(self, job: batch.Job, type_: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event(job, type_, reason, message)

    # -- sync -----------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        job = self.fresh.current(self.lister, key)
        if job is None:
            self.expectations.delete(key)
            return
        if jobs.finished_condition(job):
            await self._expire(key, job)
            return
        if being_deleted(job):
            return
        now = self.clock.wall()
        sel = self._selector(job)
        satisfied = self.expectations.satisfied(key)
        manager = RefManager(self.client, job, lambda p: sel.matches(objects.labels(p)),
                             field_manager=FIELD_MANAGER, fresh=self.fresh_pods)
        pods = await manager.claim(self.fresh_pods.resolve(p) for p in self.pod_lister.list(job.metadata.namespace))
        active = [p for p in pods if is_pod_active(p)]
        failed_pods = [p for p in pods if p.status.phase == "Failed"]
        status = objects.copy(job.status)
        status.uncounted_terminated_pods.SetInParent()
        status.succeeded = max(status.succeeded, sum(1 for p in pods if p.status.phase == "Succeeded"))
        status.failed = max(status.failed, len(failed_pods))
        spec = job.spec
        suspended = spec.suspend
        if not suspended and not status.HasField("start_time"):
            status.start_time.CopyFrom(_time(now))

        manage_err: Exception | None = None
        failure = self._failure(job, status, active, now)
        if failure is not None:
            await self._delete_pods(key, job, active)
            status.failed += len(active)
            active = []
            reason, message = failure
            set_condition(status, FAILURE_TARGET, "True", reason, message, now)
            set_condition(status, jobs.FAILED, "True", reason, message, now)
            self._event(job, "Warning", reason, message)
        elif self._complete(spec, status.succeeded, active):
            await self._delete_pods(key, job, active)
            active = []
            set_condition(status, SUCCESS_CRITERIA_MET, "True", "CompletionsReached", "Reached expected number "
                          "of succeeded pods", now)
            set_condition(status, jobs.COMPLETE, "True", "CompletionsReached", "Reached expected number of "
                          "succeeded pods", now)
            status.completion_time.CopyFrom(_time(now))
            self._event(job, "Normal", "Completed", "Job completed")
        elif suspended:
            await self._delete_pods(key, job, active)
            active = []
            if set_condition(status, jobs.SUSPENDED, "True", "JobSuspended", "Job suspended", now):
                self._event(job, "Normal", "Suspended", "Job suspended")
        else:
            if jobs.condition_true(job, jobs.SUSPENDED):
                set_condition(status, jobs.SUSPENDED, "False", "JobResumed", "Job resumed", now)
                status.start_time.CopyFrom(_time(now))  # the deadline counts from the resume
                self._event(job, "Normal", "Resumed", "Job resumed")
            if satisfied:
                active, manage_err = await self._manage(key, job, status, active, failed_pods, now)
        status.active = len(active)
        status.ready = sum(1 for p in active if is_pod_ready(p))
        await self._update_status(job, status)
        if manage_err is not None:
            raise manage_err
        if not jobs.finished_condition(job) and spec.HasField("active_deadline_seconds") \
                and status.HasField("start_time") and not suspended:
            remaining = _seconds(status.start_time) + spec.active_deadline_seconds - now
            self.queue.add_after(key, max(remaining, 0.0) + 0.1)

    def _failure(self, job: batch.Job, status: batch.JobStatus, active: list[core.Pod],
                 now: float) -> tuple[str, str] | None:
        spec = job.spec
        limit = spec.backoff_limit if spec.HasField("backoff_limit") else 6
        if status.failed > limit:
            return BACKOFF_LIMIT_EXCEEDED
        if spec.template.spec.restart_policy == "OnFailure" and active:
            restarts = _restarts(active)
            if (limit == 0 and restarts > 0) or (limit > 0 and restarts >= limit):
                return BACKOFF_LIMIT_EXCEEDED
        if spec.HasField("active_deadline_seconds") and status.HasField("start_time") and not spec.suspend \
                and now - _seconds(status.start_time) >= spec.active_deadline_seconds:
            return DEADLINE_EXCEEDED
        return None

    @staticmethod
    def _complete(spec: batch.JobSpec, succeeded: int, active: list[core.Pod]) -> bool:
        if spec.HasField("completions"):
            return succeeded >= spec.completions
        # Without completions, one success completes the job once the other pods are done too.
        return succeeded > 0 and not active

    @staticmethod
    def _wanted_active(spec: batch.JobSpec, succeeded: int, active: int) -> int:
        parallelism = spec.parallelism if spec.HasField("parallelism") else 1
        if spec.HasField("completions"):
            return max(0, min(parallelism, spec.completions - succeeded))
        # A work queue: after one success, leave whatever is running, running; start nothing new.
        return min(active, parallelism) if succeeded > 0 else parallelism

    def _backoff_remaining(self, failed: int, failed_pods: list[core.Pod], now: float) -> float:
        if failed <= 0 or not failed_pods:
            return 0.0
        delay = min(self.backoff_base * float(2 ** (failed - 1)), self.backoff_max)
        last = max(_pod_finished_at(p) for p in failed_pods)
        return max(0.0, last + delay - now)

    async def _manage(self, key: str, job: batch.Job, status: batch.JobStatus, active: list[core.Pod],
                      failed_pods: list[core.Pod], now: float) -> tuple[list[core.Pod], Exception | None]:
        """manageJob: create or delete pods towards the wanted number of active ones. Returns the active pods
        the status counts (created ones included) and the error to retry with once the status is written."""
        diff = self._wanted_active(job.spec, status.succeeded, len(active)) - len(active)
        if diff < 0:
            victims = rank_pods_for_deletion(active)[:-diff]
            try:
                await self._delete_pods(key, job, victims)
            except Exception as e:
                return active, e
            return [p for p in active if p not in victims], None
        if diff == 0:
            return active, None
        wait = self._backoff_remaining(status.failed, failed_pods, now)
        if wait > 0:
            self.queue.add_after(key, wait)
            return active, None
        n = min(diff, BURST_REPLICAS)
        self.expectations.expect_creations(key, n)
        created: list[core.Pod] = []

        async def create() -> None:
            pod = pod_from_template(job.spec.template, job, f"{job.metadata.name}-")
            try:
                out = await self.client.create(pod, field_manager=FIELD_MANAGER)
            except errors.ApiError as e:
                self._event(job, "Warning", "FailedCreate", f"Error creating: {e}")
                raise
            created.append(out)
            self._event(job, "Normal", "SuccessfulCreate", f"Created pod: {out.metadata.name}")

        log.info("creating pods job=%s active=%d creating=%d", key, len(active), n)
        try:
            await slow_start_batch(n, SLOW_START_INITIAL_BATCH, create)
        except SlowStartError as e:
            for _ in range(n - e.successes):
                self.expectations.creation_observed(key)
            return active + created, e.first
        return active + created, None

    async def _delete_pods(self, key: str, job: batch.Job, pods: list[core.Pod]) -> None:
        await delete_pods(self.client, self.recorder, self.expectations, key, job, pods)

    async def _update_status(self, job: batch.Job, status: batch.JobStatus) -> None:
        out = await self.fresh.write_status(self.client, job, status, FIELD_MANAGER)
        if out is None:
            return
        log.debug("status updated job=%s active=%d succeeded=%d failed=%d", objects.key(job), status.active,
                  status.succeeded, status.failed)
        if jobs.finished_condition(out) and out.spec.HasField("ttl_seconds_after_finished"):
            self.queue.add_after(objects.key(out), float(out.spec.ttl_seconds_after_finished))

    async def _expire(self, key: str, job: batch.Job) -> None:
        """ttlafterfinished: delete a finished Job (and, foreground, its pods) once its TTL ran out."""
        if not job.spec.HasField("ttl_seconds_after_finished") or being_deleted(job):
            return
        finished = finish_time(job)
        if finished is None:
            return
        remaining = finished + job.spec.ttl_seconds_after_finished - self.clock.wall()
        if remaining > 0:
            self.queue.add_after(key, remaining)
            return
        log.info("deleting finished job after its ttl job=%s", key)
        try:
            await self.client.delete(batch.Job, job.metadata.name, namespace=job.metadata.namespace,
                                     uid=job.metadata.uid, propagation_policy="Foreground")
        except (errors.NotFound, errors.Conflict):
            return
