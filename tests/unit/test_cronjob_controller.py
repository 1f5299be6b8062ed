"""The CronJob controller's sync(key) against a fake client, its informers and a fake clock.

A Job named `<cronjob>-<minutes since the epoch>` appears when a schedule time comes (not before, and
once), with the template's labels, the scheduled-time annotation and the CronJob as controller owner;
startingDeadlineSeconds skips a time missed too long ago; Forbid waits for the running Job, Replace
deletes it; suspend starts nothing; history limits delete the oldest finished Jobs; the key is requeued
for the next schedule time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest

from pybernetes.api import jobs
from pybernetes.api.batch.v1 import batch_pb2 as batch
from pybernetes.cache import InformerFactory
from pybernetes.clock import FakeClock
from pybernetes.events import EventRecorder
from services.controllers.cronjob import CronJobController, job_name
from tests.unit.apiclient_fake import FakeClient
from tests.unit.test_garbagecollector import deliver
from tests.unit.test_job_controller import Recorder

# FakeClock's wall clock starts at 1_700_000_000 = 2023-11-14T22:13:20Z, 40 s before a minute.
START = 1_700_000_000.0
NEXT_MINUTE = 1_700_000_040.0


class Env:
    def __init__(self) -> None:
        self.client = FakeClient()
        self.clock = FakeClock(wall_start=START)
        self.recorder = Recorder()
        factory = InformerFactory(cast(Any, self.client))
        self.ctl = CronJobController(cast(Any, self.client), factory, cast(EventRecorder, self.recorder),
                                     clock=self.clock)
        self.client.watchers.append(deliver(factory))

    def cronjob(self, schedule: str = "*/1 * * * *", *, created: float = START - 10, **spec: Any) -> str:
        cj = batch.CronJob()
        cj.metadata.name, cj.metadata.namespace, cj.metadata.uid = "hello", "default", "uid-hello"
        cj.metadata.creation_timestamp.seconds = int(created)
        cj.spec.schedule = schedule
        cj.spec.concurrency_policy = "Allow"
        cj.spec.suspend = False
        cj.spec.successful_jobs_history_limit, cj.spec.failed_jobs_history_limit = 3, 1
        for k, v in spec.items():
            setattr(cj.spec, k, v)
        cj.spec.job_template.metadata.labels["app"] = "hello"
        cj.spec.job_template.spec.template.spec.restart_policy = "OnFailure"
        cj.spec.job_template.spec.template.spec.containers.add(name="main", image="busybox")
        self.client.add(cj)
        return "default/hello"

    def get(self) -> batch.CronJob:
        cj = self.client.obj(batch.CronJob, "hello", "default")
        assert cj is not None
        return cast(batch.CronJob, cj)

    def jobs(self) -> list[batch.Job]:
        return [cast(batch.Job, j) for (k, _, _), j in sorted(self.client.objects.items()) if k == "Job"]

    def finish(self, job: batch.Job, condition: str, start: float) -> None:
        new = batch.Job()
        new.CopyFrom(job)
        new.status.start_time.seconds = int(start)
        new.status.conditions.add(type=condition, status="True")
        if condition == jobs.COMPLETE:
            new.status.completion_time.seconds = int(start) + 5
        self.client._store(job, new)


@pytest.fixture
def env() -> Iterator[Env]:
    e = Env()
    yield e
    e.ctl.queue.shutdown()


async def test_creates_the_job_when_its_time_comes(env: Env) -> None:
    key = env.cronjob()
    await env.ctl.sync(key)
    assert env.jobs() == []
    assert env.ctl.queue.waiting() == 1  # requeued for the next minute
    env.clock.advance(NEXT_MINUTE - START)
    await env.ctl.sync(key)
    [job] = env.jobs()
    assert job.metadata.name == f"hello-{int(NEXT_MINUTE) // 60}" == job_name(env.get(), NEXT_MINUTE)
    assert job.metadata.labels["app"] == "hello"
    assert job.metadata.annotations[jobs.CRONJOB_SCHEDULED_TIMESTAMP_ANNOTATION] == "2023-11-14T22:14:00Z"
    ref = job.metadata.owner_references[0]
    assert (ref.kind, ref.name, ref.controller) == ("CronJob", "hello", True)
    st = env.get().status
    assert [r.name for r in st.active] == [job.metadata.name]
    assert st.last_schedule_time.seconds == int(NEXT_MINUTE)
    writes = len(env.client.actions)
    await env.ctl.sync(key)
    assert len(env.client.actions) == writes  # the same time is never run twice


async def test_finished_job_leaves_active_and_sets_last_successful_time(env: Env) -> None:
    key = env.cronjob()
    env.clock.advance(NEXT_MINUTE - START)
    await env.ctl.sync(key)
    [job] = env.jobs()
    env.finish(job, jobs.COMPLETE, NEXT_MINUTE)
    await env.ctl.sync(key)
    st = env.get().status
    assert list(st.active) == []
    assert st.last_successful_time.seconds == int(NEXT_MINUTE) + 5


async def test_starting_deadline_skips_a_late_time(env: Env) -> None:
    key = env.cronjob("0 * * * *", created=START - 7200, starting_deadline_seconds=10)
    await env.ctl.sync(key)  # 22:00 was 13 minutes ago: too late to start
    assert env.jobs() == []
    env.clock.advance(47 * 60)  # 23:00:20: the 23:00 time is 20 s late, past the 10 s deadline
    await env.ctl.sync(key)
    assert env.jobs() == []


async def test_missed_time_within_the_deadline_runs(env: Env) -> None:
    key = env.cronjob("0 * * * *", created=START - 7200, starting_deadline_seconds=900)
    await env.ctl.sync(key)  # 22:00 was 13 minutes ago, within 15
    [job] = env.jobs()
    assert job.metadata.name == f"hello-{int(START - 800) // 60}"


async def test_forbid_waits_and_replace_deletes(env: Env) -> None:
    key = env.cronjob(concurrency_policy="Forbid")
    env.clock.advance(NEXT_MINUTE - START)
    await env.ctl.sync(key)
    env.clock.advance(60)
    await env.ctl.sync(key)
    assert len(env.jobs()) == 1  # the first still runs
    cj = env.get()
    cj.spec.concurrency_policy = "Replace"
    await env.client.update(cj)
    await env.ctl.sync(key)
    assert env.client.writes("delete") == [
        ("delete", "Job", f"default/hello-{int(NEXT_MINUTE) // 60}", "Background")]
    assert [j.metadata.name for j in env.jobs()] == [f"hello-{int(NEXT_MINUTE) // 60 + 1}"]
    assert [r.name for r in env.get().status.active] == [f"hello-{int(NEXT_MINUTE) // 60 + 1}"]


async def test_suspend_starts_nothing(env: Env) -> None:
    key = env.cronjob(suspend=True)
    env.clock.advance(300)
    await env.ctl.sync(key)
    assert env.jobs() == []
    assert env.ctl.queue.waiting() == 0


async def test_history_limits_delete_the_oldest(env: Env) -> None:
    key = env.cronjob(successful_jobs_history_limit=1, failed_jobs_history_limit=0)
    env.clock.advance(NEXT_MINUTE - START)
    names = []
    for i in range(3):
        await env.ctl.sync(key)
        job = next(j for j in env.jobs() if not j.status.conditions)
        names.append(job.metadata.name)
        env.finish(job, jobs.COMPLETE if i < 2 else jobs.FAILED, NEXT_MINUTE + 60 * i)
        env.clock.advance(60)
    await env.ctl.sync(key)
    deleted = {w[2].split("/")[1] for w in env.client.writes("delete")}
    assert deleted == {names[0], names[2]}  # the older success and the failed one (limit 0)
    assert names[1] in {j.metadata.name for j in env.jobs()}


async def test_unparseable_schedule_is_reported(env: Env) -> None:
    key = env.cronjob("not a schedule")
    await env.ctl.sync(key)
    assert "UnparseableSchedule" in env.recorder.reasons
    assert env.jobs() == []
