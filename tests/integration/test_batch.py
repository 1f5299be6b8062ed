"""Job and CronJob controllers against the real apiserver (etcd + in-process pb-apiserver), with the garbage
collector and a hollow kubelet that runs each pod to an end.

HollowRunner: marks a new pod Running and Ready, then, a moment later, Succeeded (or Failed when its template
says `hollow.pybernetes.io/fail: "true"`) with a terminated container, as a kubelet reports a finished
container; it finishes terminating pods at once. No containers run anywhere. The CronJob controller runs on
a FakeClock (wall time starting now), so the test moves its schedule to the next minute instead of waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pybernetes import errors
from pybernetes.api import jobs, objects
from pybernetes.api.batch.v1 import batch_pb2 as batch
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.times import micro_now
from pybernetes.cache import InformerFactory
from pybernetes.client.client import Client
from pybernetes.clock import FakeClock
from pybernetes.events import EventRecorder
from pybernetes.workqueue import RateLimitingQueue, run_workers
from services.controllers.cronjob import CronJobController
from services.controllers.garbagecollector import GarbageCollector
from services.controllers.job import JobController
from tests.helpers import eventually

pytestmark = pytest.mark.integration

FAIL = "hollow.pybernetes.io/fail"
RUN_SECONDS = 0.3


class HollowRunner:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.factory = InformerFactory(client)
        self.informer = self.factory.informer_for(core.Pod)
        self.lister = self.informer.lister()
        self.queue: RateLimitingQueue[str] = RateLimitingQueue(name="hollow-runner")
        self.informer.add_event_handler(self._enqueue, lambda _o, n: self._enqueue(n), None)
        self.max_running = 0
        self._task: asyncio.Task[None] | None = None

    def _enqueue(self, pod: core.Pod) -> None:
        self.queue.add(objects.key(pod))

    async def start(self) -> None:
        self.factory.start()
        await self.factory.wait_for_cache_sync()
        self._task = asyncio.create_task(run_workers(self.queue, self._sync, 8, name="hollow-runner"))

    async def stop(self) -> None:
        self.queue.shutdown()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.factory.shutdown()

    async def _sync(self, key: str) -> None:
        namespace, name = objects.split_key(key)
        pod = self.lister.get(namespace, name)
        if pod is None:
            return
        if objects.being_deleted(pod):
            with contextlib.suppress(errors.NotFound, errors.Conflict):
                await self.client.delete(core.Pod, name, namespace=namespace, grace_period_seconds=0,
                                         uid=pod.metadata.uid)
            return
        if pod.status.phase in ("Succeeded", "Failed"):
            return
        new = objects.copy(pod)
        st = new.status
        t = micro_now()
        if st.phase != "Running":
            st.phase = "Running"
            st.start_time.CopyFrom(t)
            st.conditions.add(type="Ready", status="True").last_transition_time.CopyFrom(t)
            cs = st.container_statuses.add(name=pod.spec.containers[0].name, ready=True, started=True)
            cs.state.running.started_at.CopyFrom(t)
            self.queue.add_after(key, RUN_SECONDS)
            self.max_running = max(self.max_running, 1 + sum(
                1 for p in self.lister.list(namespace) if p.status.phase == "Running"
                and p.metadata.labels.get(jobs.JOB_NAME_LABEL) == pod.metadata.labels.get(jobs.JOB_NAME_LABEL)))
        else:
            failed = pod.metadata.labels.get(FAIL) == "true"
            st.phase = "Failed" if failed else "Succeeded"
            del st.conditions[:]
            st.conditions.add(type="Ready", status="False", reason="PodCompleted").last_transition_time.CopyFrom(t)
            cs = st.container_statuses[0]
            cs.ready = False
            cs.state.ClearField("running")
            cs.state.terminated.exit_code = 1 if failed else 0
            cs.state.terminated.reason = "Error" if failed else "Completed"
            cs.state.terminated.finished_at.CopyFrom(t)
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            await self.client.update_status(new)


class Batch:
    def __init__(self, client: Client, clock: FakeClock) -> None:
        self.client = client
        self.clock = clock
        self.stop_event = asyncio.Event()
        self.factory = InformerFactory(client)
        self.recorder = EventRecorder(client, "controller-manager", "test")
        self.job = JobController(client, self.factory, self.recorder, backoff_base=0.2)
        self.cronjob = CronJobController(client, self.factory, self.recorder, clock=clock)
        self.gc = GarbageCollector(client, self.factory, self.recorder, workers=4,
                                   kinds=[batch.CronJob, batch.Job, core.Pod])
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.recorder.start()
        self.tasks = [asyncio.create_task(c.run(self.stop_event)) for c in (self.job, self.cronjob, self.gc)]

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 20)
        await self.factory.shutdown()
        await self.recorder.stop()


@pytest.fixture
async def env(apiserver: Any) -> AsyncIterator[tuple[Client, Batch, HollowRunner]]:
    runner_client = apiserver.new_client(timeout=10)
    ctrl_client = apiserver.new_client(timeout=10)
    runner = HollowRunner(runner_client)
    await runner.start()
    ctl = Batch(ctrl_client, FakeClock(start=time.monotonic(), wall_start=time.time()))
    await ctl.start()
    try:
        yield apiserver.client, ctl, runner
    finally:
        await ctl.stop()
        await runner.stop()
        await runner_client.close()
        await ctrl_client.close()


def job_doc(name: str, *, completions: int, parallelism: int, backoff: int = 6, fail: bool = False) -> batch.Job:
    j = batch.Job()
    j.metadata.name, j.metadata.namespace = name, "default"
    j.spec.completions, j.spec.parallelism, j.spec.backoff_limit = completions, parallelism, backoff
    t = j.spec.template
    if fail:
        t.metadata.labels[FAIL] = "true"
    t.spec.restart_policy = "Never"
    t.spec.containers.add(name="main", image="busybox", command=["sh", "-c", "exit 1" if fail else "true"])
    return j


async def finished(client: Client, name: str) -> batch.Job | None:
    j = await client.get(batch.Job, name, namespace="default")
    return j if jobs.finished_condition(j) else None


async def test_job_with_parallelism_completes(env: tuple[Client, Batch, HollowRunner]) -> None:
    client, _, runner = env
    created = await client.create(job_doc("pi", completions=3, parallelism=2))
    assert created.spec.selector.match_labels[jobs.CONTROLLER_UID_LABEL] == created.metadata.uid
    j = await eventually(lambda: finished(client, "pi"), 30, what="job finished")
    assert jobs.finished_condition(j) == jobs.COMPLETE
    assert (j.status.succeeded, j.status.failed, j.status.active) == (3, 0, 0)
    assert j.status.completion_time.seconds >= j.status.start_time.seconds > 0
    pods = (await client.list(core.Pod, namespace="default", label_selector=f"{jobs.JOB_NAME_LABEL}=pi")).items
    assert len(pods) == 3 and all(p.status.phase == "Succeeded" for p in pods)
    assert 1 <= runner.max_running <= 2  # never more than parallelism at once

    await client.delete(batch.Job, "pi", namespace="default", propagation_policy="Background")

    async def pods_gone() -> bool:
        left = await client.list(core.Pod, namespace="default", label_selector=f"{jobs.JOB_NAME_LABEL}=pi")
        return not left.items

    await eventually(pods_gone, 30, what="the garbage collector removes the job's pods")


async def test_failing_job_fails_after_backoff_limit(env: tuple[Client, Batch, HollowRunner]) -> None:
    client, _, _ = env
    await client.create(job_doc("fails", completions=1, parallelism=1, backoff=2, fail=True))
    j = await eventually(lambda: finished(client, "fails"), 30, what="job finished")
    assert jobs.finished_condition(j) == jobs.FAILED
    [cond] = [c for c in j.status.conditions if c.type == jobs.FAILED]
    assert (cond.reason, cond.message) == ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    assert (j.status.failed, j.status.succeeded) == (3, 0)  # backoffLimit 2: the third failure ends it


async def test_job_ttl_after_finished(env: tuple[Client, Batch, HollowRunner]) -> None:
    client, _, _ = env
    j = job_doc("short", completions=1, parallelism=1)
    j.spec.ttl_seconds_after_finished = 1
    await client.create(j)

    async def job_gone() -> bool:
        try:
            await client.get(batch.Job, "short", namespace="default")
        except errors.NotFound:
            return True
        return False

    await eventually(job_gone, 30, what="job deleted after its ttl")


def cronjob_doc(**spec: Any) -> batch.CronJob:
    cj = batch.CronJob()
    cj.metadata.name, cj.metadata.namespace = "tick", "default"
    cj.spec.schedule = "*/1 * * * *"
    for k, v in spec.items():
        setattr(cj.spec, k, v)
    t = cj.spec.job_template.spec.template
    t.spec.restart_policy = "OnFailure"
    t.spec.containers.add(name="main", image="busybox", command=["date"])
    return cj


async def cron_jobs(client: Client) -> list[batch.Job]:
    items = (await client.list(batch.Job, namespace="default")).items
    return sorted((j for j in items if j.metadata.name.startswith("tick-")), key=lambda j: j.metadata.name)


async def next_minute(ctl: Batch) -> None:
    """Move the CronJob controller's clock just past the next whole minute (its requeue timer fires)."""
    wall = ctl.clock.wall()
    ctl.clock.advance(60 - wall % 60 + 0.5)
    await asyncio.sleep(0)


async def test_cronjob_creates_jobs_and_keeps_history(env: tuple[Client, Batch, HollowRunner]) -> None:
    client, ctl, _ = env
    await client.create(cronjob_doc(successful_jobs_history_limit=2))
    await asyncio.sleep(0.5)
    assert await cron_jobs(client) == []  # its time has not come
    names: list[str] = []
    for _ in range(4):
        await next_minute(ctl)
        minute = int(ctl.clock.wall()) // 60
        names.append(f"tick-{minute}")

        async def ran(name: str = names[-1]) -> bool:
            return any(j.metadata.name == name and jobs.finished_condition(j) == jobs.COMPLETE
                       for j in await cron_jobs(client))

        await eventually(ran, 30, what=f"job {names[-1]} created and completed")
        j = await client.get(batch.Job, names[-1], namespace="default")
        assert j.metadata.owner_references[0].kind == "CronJob"
        assert j.metadata.annotations[jobs.CRONJOB_SCHEDULED_TIMESTAMP_ANNOTATION].endswith("Z")

    async def history_kept() -> bool:
        return [j.metadata.name for j in await cron_jobs(client)
                if not j.metadata.HasField("deletion_timestamp")] == names[-2:]

    await eventually(history_kept, 30, what="only the two newest successful jobs kept")
    cj = await client.get(batch.CronJob, "tick", namespace="default")
    assert cj.status.last_schedule_time.seconds == (int(ctl.clock.wall()) // 60) * 60
    assert cj.status.HasField("last_successful_time")

    # Suspended: the next minute starts nothing.
    cj.spec.suspend = True
    await client.update(cj)
    await asyncio.sleep(0.5)
    await next_minute(ctl)
    await asyncio.sleep(1.0)
    assert [j.metadata.name for j in await cron_jobs(client)
            if not j.metadata.HasField("deletion_timestamp")] == names[-2:]
