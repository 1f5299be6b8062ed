"""CronJob controller (Kubernetes pkg/controller/cronjob, the v2 controller).

At each schedule time (cron syntax in `spec.timeZone`, UTC by default; pybernetes.api.cron) a CronJob gets a
Job named `<cronjob>-<scheduled time in minutes since the epoch>`, so a time is never run twice, from its
jobTemplate with itself as controller owner (the GC removes the Jobs with it). `status.active` lists its
unfinished Jobs and `lastScheduleTime`/`lastSuccessfulTime` the latest start and success. A time missed for
longer than `startingDeadlineSeconds` is skipped; `concurrencyPolicy` Forbid skips a time while a Job still
runs, Replace deletes the running ones first; `suspend` starts nothing. Finished Jobs beyond
`successfulJobsHistoryLimit`/`failedJobsHistoryLimit` are deleted, oldest first. After each sync the key
is requeued (the workqueue's `add_after`) for the next schedule time, measured on the injectable clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from pybernetes import errors
from pybernetes.api import cron, jobs, objects
from pybernetes.api.batch.v1 import batch_pb2 as batch
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.objects import being_deleted, controller_ref
from pybernetes.cache import DeletedFinalStateUnknown, InformerFactory
from pybernetes.client.client import Client
from pybernetes.clock import Clock, RealClock
from pybernetes.controller import Controller, key_of, owner_of, unwrap
from pybernetes.events import EventRecorder

from .controller_utils import FreshObjects, new_controller_ref

log = logging.getLogger("pybernetes.controllers.cronjob")

FIELD_MANAGER = "cronjob-controller"
# Kubernetes requeues 100 ms past the schedule time so the time has surely come.
NEXT_SCHEDULE_DELTA = 0.1
TOO_MANY_MISSED = 100


def job_name(cj: batch.CronJob, scheduled: float) -> str:
    """getJobName: the CronJob's name and the scheduled time in minutes since the epoch."""
    return f"{cj.metadata.name}-{int(scheduled) // 60}"


def _seconds(t: meta.Time) -> float:
    return t.seconds + t.nanos / 1e9


def job_from_template(cj: batch.CronJob, scheduled: float, tz: dt.tzinfo) -> batch.Job:
    """getJobFromTemplate2: the template's labels, annotations and spec, the scheduled-time annotation."""
    job = batch.Job()
    tmd = cj.spec.job_template.metadata
    job.metadata.labels.update(tmd.labels)
    job.metadata.annotations.update(tmd.annotations)
    when = dt.datetime.fromtimestamp(scheduled, tz).isoformat().replace("+00:00", "Z")
    job.metadata.annotations[jobs.CRONJOB_SCHEDULED_TIMESTAMP_ANNOTATION] = when
    job.metadata.name = job_name(cj, scheduled)
    job.metadata.namespace = cj.metadata.namespace
    job.metadata.owner_references.append(new_controller_ref(cj))
    job.spec.CopyFrom(cj.spec.job_template.spec)
    return job


def job_ref(job: batch.Job) -> core.ObjectReference:
    md = job.metadata
    return core.ObjectReference(kind="Job", namespace=md.namespace, name=md.name, uid=md.uid,
                                api_version="batch/v1", resource_version=md.resource_version)


def _start_order(job: batch.Job) -> tuple[int, float, str]:
    """byJobStartTime: started jobs oldest first, then those never started, ties by name."""
    if not job.status.HasField("start_time"):
        return (1, 0.0, job.metadata.name)
    return (0, _seconds(job.status.start_time), job.metadata.name)


class CronJobController:
    name = "cronjob"

    def __init__(self, client: Client, factory: InformerFactory, recorder: EventRecorder, *, workers: int = 5,
                 clock: Clock | None = None) -> None:
        self.client = client
        self.recorder = recorder
        self.clock: Clock = clock or RealClock()
        self.fresh: FreshObjects[batch.CronJob] = FreshObjects()
        self.informer = factory.informer_for(batch.CronJob)
        self.job_informer = factory.informer_for(batch.Job)
        self.lister = self.informer.lister()
        self.job_lister = self.job_informer.lister()
        self.controller = Controller(self.name, informers=[self.informer, self.job_informer], clock=self.clock)
        self.queue = self.controller.add_queue(self.name, self.sync, workers=workers)
        self.informer.add_event_handler(self._enqueue, lambda _old, new: self._enqueue(new), self._enqueue)
        self.job_informer.add_event_handler(self._job_changed, self._job_updated, self._job_changed)

    async def run(self, stop: asyncio.Event) -> None:
        await self.controller.run(stop)

    # -- event handlers: only keys are queued ---------------------------------------------------

    def _enqueue(self, obj: batch.CronJob | DeletedFinalStateUnknown[batch.CronJob]) -> None:
        self.queue.add(key_of(obj))

    def _job_changed(self, obj: batch.Job | DeletedFinalStateUnknown[batch.Job]) -> None:
        cj = owner_of(unwrap(obj), "CronJob", self.lister)
        if cj is not None:
            self.queue.add(key_of(cj))

    def _job_updated(self, old: batch.Job, new: batch.Job) -> None:
        if old.metadata.resource_version == new.metadata.resource_version:
            return
        self._job_changed(old)
        self._job_changed(new)

    def _event(self, cj: batch.CronJob, type_: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event(cj, type_, reason, message)

    # -- sync -----------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cj = self.fresh.current(self.lister, key)
        if cj is None:
            return
        owned = [j for j in self.job_lister.list(cj.metadata.namespace)
                 if (ref := controller_ref(j)) is not None and ref.uid == cj.metadata.uid]
        status = objects.copy(cj.status)
        await self._reconcile_active(cj, status, owned)
        next_time: float | None = None
        try:
            if not being_deleted(cj):
                await self._cleanup_history(cj, owned)
                next_time = await self._maybe_start(key, cj, status)
        finally:
            await self._update_status(cj, status)
        if next_time is not None:
            self.queue.add_after(key, max(0.0, next_time - self.clock.wall()) + NEXT_SCHEDULE_DELTA)

    async def _reconcile_active(self, cj: batch.CronJob, status: batch.CronJobStatus,
                                owned: list[batch.Job]) -> None:
        """syncCronJob's first half: status.active holds exactly the unfinished Jobs this CronJob owns."""
        active = {ref.uid: ref for ref in status.active}
        for j in owned:
            finished = jobs.finished_condition(j)
            if not finished and j.metadata.uid not in active:
                active[j.metadata.uid] = job_ref(j)
            elif finished and j.metadata.uid in active:
                del active[j.metadata.uid]
                self._event(cj, "Normal", "SawCompletedJob", f"Saw completed job: {j.metadata.name}, "
                            f"condition: {finished}")
            if finished == jobs.COMPLETE and j.status.HasField("completion_time") and (
                    not status.HasField("last_successful_time")
                    or j.status.completion_time.seconds > status.last_successful_time.seconds):
                status.last_successful_time.CopyFrom(j.status.completion_time)
        owned_uids = {j.metadata.uid for j in owned}
        for uid, ref in list(active.items()):
            if uid in owned_uids:
                continue
            # The cache may lag behind a Job just created: only a live read says it is gone.
            try:
                live = await self.client.get(batch.Job, ref.name, namespace=cj.metadata.namespace)
                gone = live.metadata.uid != uid
            except errors.NotFound:
                gone = True
            if gone:
                del active[uid]
                self._event(cj, "Normal", "MissingJob", f"Active job went missing: {ref.name}")
        if [r.uid for r in status.active] != list(active):
            del status.active[:]
            status.active.extend(active.values())

    async def _maybe_start(self, key: str, cj: batch.CronJob, status: batch.CronJobStatus) -> float | None:
        """syncCronJob's second half: start the Job of the most recent schedule time if it is due. Returns the
        next schedule time to requeue at (None: nothing to wait for)."""
        spec = cj.spec
        if spec.suspend:
            return None
        try:
            sched = cron.Schedule(spec.schedule, spec.time_zone if spec.HasField("time_zone") else "")
        except (ValueError, KeyError) as e:
            self._event(cj, "Warning", "UnparseableSchedule", f"unparseable schedule: {spec.schedule!r}: {e}")
            return None
        now = self.clock.wall()
        earliest = _seconds(status.last_schedule_time) if status.HasField("last_schedule_time") \
            else _seconds(cj.metadata.creation_timestamp)
        if spec.HasField("starting_deadline_seconds"):
            earliest = max(earliest, now - spec.starting_deadline_seconds)
        scheduled, missed = sched.most_recent(earliest, now, TOO_MANY_MISSED)
        if missed > TOO_MANY_MISSED:
            self._event(cj, "Warning", "TooManyMissedTimes", "too many missed start times. Set or decrease "
                        ".spec.startingDeadlineSeconds or check clock skew")
        next_time = sched.next_after(now)
        if scheduled is None:
            return next_time
        if spec.HasField("starting_deadline_seconds") and scheduled + spec.starting_deadline_seconds < now:
            when = dt.datetime.fromtimestamp(scheduled, sched.tz).strftime("%a, %d %b %Y %H:%M:%S %z")
            self._event(cj, "Warning", "MissSchedule", f"Missed scheduled time to start a job: {when}")
            return next_time
        name = job_name(cj, scheduled)
        if any(ref.name == name for ref in status.active) or (
                status.HasField("last_schedule_time") and status.last_schedule_time.seconds >= int(scheduled)):
            return next_time  # this time was handled already
        if spec.concurrency_policy == "Forbid" and status.active:
            log.info("not starting job: a prior one is still running and concurrency policy is Forbid "
                     "cronjob=%s", key)
            return next_time
        if spec.concurrency_policy == "Replace":
            for ref in list(status.active):
                await self._delete_job(cj, ref.name, ref.uid)
            del status.active[:]
        job = job_from_template(cj, scheduled, sched.tz)
        try:
            created = await self.client.create(job, field_manager=FIELD_MANAGER)
            self._event(cj, "Normal", "SuccessfulCreate", f"Created job {created.metadata.name}")
            log.info("created job cronjob=%s job=%s", key, created.metadata.name)
        except errors.AlreadyExists:
            # Created by an earlier sync whose status write was lost: adopt its place if it is ours.
            created = await self.client.get(batch.Job, name, namespace=cj.metadata.namespace)
            owner = controller_ref(created)
            if owner is None or owner.uid != cj.metadata.uid:
                self._event(cj, "Warning", "FailedCreate", f"Error creating job: {name} exists and is not ours")
                return next_time
        except errors.ApiError as e:
            self._event(cj, "Warning", "FailedCreate", f"Error creating job: {e}")
            raise
        if not jobs.finished_condition(created) and all(r.uid != created.metadata.uid for r in status.active):
            status.active.append(job_ref(created))
        status.last_schedule_time.CopyFrom(meta.Time(seconds=int(scheduled)))
        return next_time

    async def _delete_job(self, cj: batch.CronJob, name: str, uid: str) -> None:
        try:
            await self.client.delete(batch.Job, name, namespace=cj.metadata.namespace, uid=uid or None,
                                     propagation_policy="Background")
        except (errors.NotFound, errors.Conflict):
            return
        self._event(cj, "Normal", "SuccessfulDelete", f"Deleted job {name}")

    async def _cleanup_history(self, cj: batch.CronJob, owned: list[batch.Job]) -> None:
        """cleanupFinishedJobs: keep the newest successfulJobsHistoryLimit/failedJobsHistoryLimit finished Jobs."""
        spec = cj.spec
        for condition, present, limit in ((jobs.COMPLETE, spec.HasField("successful_jobs_history_limit"),
                                           spec.successful_jobs_history_limit),
                                          (jobs.FAILED, spec.HasField("failed_jobs_history_limit"),
                                           spec.failed_jobs_history_limit)):
            if not present:
                continue
            finished = sorted((j for j in owned if jobs.finished_condition(j) == condition
                               and not being_deleted(j)), key=_start_order)
            for j in finished[:max(0, len(finished) - limit)]:
                await self._delete_job(cj, j.metadata.name, j.metadata.uid)

    async def _update_status(self, cj: batch.CronJob, status: batch.CronJobStatus) -> None:
        try:
            await self.fresh.write_status(self.client, cj, status, FIELD_MANAGER)
        except errors.NotFound:
            return
