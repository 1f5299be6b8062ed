"""The Job controller's sync(key) against a fake client, its informers and a fake clock.

Pods are created up to parallelism while completions remain, succeeded and failed pods are counted, the
backoff limit and the active deadline fail the Job (its active pods deleted), completions complete it, a
suspended Job runs nothing, a finished Job with a TTL is deleted when the TTL runs out, and a second sync
with nothing new writes nothing.
"""

from __future__ import annotations

from typing import Any, cast

import pytest

from pybernetes.api import jobs
from pybernetes.api.batch.v1 import batch_pb2 as batch
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.cache import InformerFactory
from pybernetes.clock import FakeClock
from pybernetes.events import EventRecorder
from services.controllers.job import JobController
from tests.unit.apiclient_fake import FakeClient
from tests.unit.test_garbagecollector import deliver


class Recorder:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def event(self, obj: Any, type_: str, reason: str, message: str) -> None:
        self.reasons.append(reason)


class Env:
    def __init__(self) -> None:
        self.client = FakeClient()
        self.clock = FakeClock()
        self.recorder = Recorder()
        factory = InformerFactory(cast(Any, self.client))
        self.ctl = JobController(cast(Any, self.client), factory, cast(EventRecorder, self.recorder),
                                 clock=self.clock)
        self.client.watchers.append(deliver(factory))

    def job(self, name: str = "pi", *, completions: int | None = 1, parallelism: int = 1, backoff: int = 6,
            restart: str = "Never", **spec: Any) -> str:
        j = batch.Job()
        j.metadata.name, j.metadata.namespace, j.metadata.uid = name, "default", f"uid-{name}"
        j.spec.parallelism, j.spec.backoff_limit = parallelism, backoff
        if completions is not None:
            j.spec.completions = completions
        for k, v in spec.items():
            setattr(j.spec, k, v)
        j.spec.selector.match_labels[jobs.CONTROLLER_UID_LABEL] = j.metadata.uid
        j.spec.template.metadata.labels[jobs.CONTROLLER_UID_LABEL] = j.metadata.uid
        j.spec.template.metadata.labels[jobs.JOB_NAME_LABEL] = name
        j.spec.template.spec.restart_policy = restart
        j.spec.template.spec.containers.add(name="main", image="busybox")
        self.client.add(j)
        return f"default/{name}"

    def get(self, name: str = "pi") -> batch.Job:
        j = self.client.obj(batch.Job, name, "default")
        assert j is not None
        return cast(batch.Job, j)

    def pods(self, phase: str | None = None) -> list[core.Pod]:
        out = [cast(core.Pod, p) for (k, _, _), p in sorted(self.client.objects.items()) if k == "Pod"]
        return [p for p in out if phase is None or p.status.phase == phase]

    def finish(self, pod: core.Pod, phase: str) -> None:
        new = core.Pod()
        new.CopyFrom(pod)
        new.status.phase = phase
        cs = new.status.container_statuses.add(name="main")
        cs.state.terminated.exit_code = 0 if phase == "Succeeded" else 1
        cs.state.terminated.finished_at.seconds = int(self.clock.wall())
        self.client._store(pod, new)

    def conditions(self, name: str = "pi") -> dict[str, tuple[str, str]]:
        return {c.type: (c.status, c.reason) for c in self.get(name).status.conditions}


@pytest.fixture
def env() -> Env:
    return Env()


async def test_completions_with_parallelism(env: Env) -> None:
    key = env.job(completions=3, parallelism=2)
    await env.ctl.sync(key)
    assert len(env.pods()) == 2
    st = env.get().status
    assert (st.active, st.succeeded, st.failed) == (2, 0, 0)
    assert st.start_time.seconds == int(env.clock.wall())
    pod = env.pods()[0]
    assert pod.metadata.owner_references[0].kind == "Job" and pod.metadata.owner_references[0].controller
    assert pod.metadata.generate_name == "pi-"

    env.finish(env.pods()[0], "Succeeded")
    await env.ctl.sync(key)
    assert len(env.pods("")) == 2  # one more started: 2 remaining completions, parallelism 2
    assert (env.get().status.active, env.get().status.succeeded) == (2, 1)

    for p in env.pods(""):
        env.finish(p, "Succeeded")
    env.clock.advance(7)
    await env.ctl.sync(key)
    job = env.get()
    assert (job.status.active, job.status.succeeded) == (0, 3)
    assert env.conditions()[jobs.COMPLETE] == ("True", "CompletionsReached")
    assert job.status.completion_time.seconds == job.status.start_time.seconds + 7
    assert len(env.pods()) == 3  # finished pods stay (the GC removes them with the job)
    assert "Completed" in env.recorder.reasons


async def test_second_sync_writes_nothing(env: Env) -> None:
    key = env.job(completions=2, parallelism=2)
    await env.ctl.sync(key)
    before = len(env.client.actions)
    await env.ctl.sync(key)
    assert len(env.client.actions) == before


async def test_backoff_limit_fails_the_job(env: Env) -> None:
    env.ctl.backoff_base = 10.0
    key = env.job(completions=1, backoff=1)
    await env.ctl.sync(key)
    env.finish(env.pods()[0], "Failed")
    await env.ctl.sync(key)
    assert len(env.pods()) == 1 and env.get().status.failed == 1  # waiting out the 10 s backoff
    env.clock.advance(10)
    await env.ctl.sync(key)
    assert len(env.pods("")) == 1
    env.finish(env.pods("")[0], "Failed")
    await env.ctl.sync(key)
    job = env.get()
    assert job.status.failed == 2
    assert env.conditions()[jobs.FAILED] == ("True", "BackoffLimitExceeded")
    assert jobs.finished_condition(job) == jobs.FAILED
    assert not job.status.HasField("completion_time")
    creates = len(env.client.writes("create"))
    env.clock.advance(1000)
    await env.ctl.sync(key)
    assert len(env.client.writes("create")) == creates  # a failed job starts nothing


async def test_on_failure_counts_restarts(env: Env) -> None:
    key = env.job(backoff=2, restart="OnFailure")
    await env.ctl.sync(key)
    pod = env.pods()[0]
    new = core.Pod()
    new.CopyFrom(pod)
    new.status.phase = "Running"
    new.status.container_statuses.add(name="main", restart_count=2)
    env.client._store(pod, new)
    await env.ctl.sync(key)
    assert env.conditions()[jobs.FAILED] == ("True", "BackoffLimitExceeded")
    assert env.client.writes("delete")  # the active pod goes


async def test_active_deadline(env: Env) -> None:
    key = env.job(completions=2, active_deadline_seconds=30)
    await env.ctl.sync(key)
    env.clock.advance(31)
    await env.ctl.sync(key)
    job = env.get()
    assert env.conditions()[jobs.FAILED] == ("True", "DeadlineExceeded")
    assert (job.status.active, job.status.failed) == (0, 1)
    assert [w[1] for w in env.client.writes("delete")] == ["Pod"]


async def test_without_completions_one_success_completes(env: Env) -> None:
    key = env.job(completions=None, parallelism=2)
    await env.ctl.sync(key)
    first, second = env.pods()
    env.finish(first, "Succeeded")
    await env.ctl.sync(key)
    assert jobs.COMPLETE not in env.conditions()  # the other pod still runs
    assert len(env.pods()) == 2
    env.finish(second, "Succeeded")
    await env.ctl.sync(key)
    assert env.conditions()[jobs.COMPLETE][0] == "True"


async def test_suspended_job_runs_nothing(env: Env) -> None:
    key = env.job(suspend=True)
    await env.ctl.sync(key)
    assert env.pods() == []
    assert env.conditions()[jobs.SUSPENDED] == ("True", "JobSuspended")
    assert not env.get().status.HasField("start_time")
    job = env.get()
    job.spec.suspend = False
    await env.client.update(job)
    await env.ctl.sync(key)
    assert len(env.pods()) == 1
    assert env.conditions()[jobs.SUSPENDED] == ("False", "JobResumed")


async def test_ttl_after_finished_deletes_the_job(env: Env) -> None:
    key = env.job(ttl_seconds_after_finished=5)
    await env.ctl.sync(key)
    env.finish(env.pods()[0], "Succeeded")
    await env.ctl.sync(key)
    assert jobs.finished_condition(env.get()) == jobs.COMPLETE
    await env.ctl.sync(key)
    assert not [w for w in env.client.writes("delete") if w[1] == "Job"]
    env.clock.advance(6)
    await env.ctl.sync(key)
    assert [w for w in env.client.writes("delete") if w[1] == "Job"] == [
        ("delete", "Job", "default/pi", "Foreground")]
    env.ctl.queue.shutdown()


def test_controller_manager_runs_both() -> None:
    from services.controllers.cronjob import CronJobController
    from services.controllers.main import enabled_controllers, load_controller_class, parse_args

    assert load_controller_class("job") is JobController
    assert load_controller_class("cronjob") is CronJobController
    assert {"job", "cronjob"} <= set(enabled_controllers(["*"]))
    cfg = parse_args(["--concurrent-job-syncs=2", "--concurrent-cron-job-syncs=3"])
    assert (cfg.concurrency["job"], cfg.concurrency["cronjob"]) == (2, 3)
