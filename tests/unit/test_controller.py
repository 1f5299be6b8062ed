"""pybernetes.controller: start order, one worker per key, the worker rules, periodic tasks, clean shutdown,
and the handler helpers (keys, tombstones, controller owners)."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any, cast

import pytest

from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.cache import DeletedFinalStateUnknown, Lister, SharedInformer, Store
from pybernetes.clock import FakeClock, settle
from pybernetes.controller import Controller, key_of, owner_of, unwrap
from pybernetes.workqueue import ItemExponentialFailureRateLimiter, NoopMetrics, PermanentError

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")


class FakeInformer:
    """Records start and lets the test decide when the first list is in."""

    def __init__(self, name: str, order: list[str], *, started: bool = False) -> None:
        self.name = name
        self.order = order
        self._started = started
        self.synced = asyncio.Event()

    def started(self) -> bool:
        return self._started

    def start(self) -> None:
        self._started = True
        self.order.append(f"start {self.name}")

    async def wait_for_sync(self) -> bool:
        await self.synced.wait()
        return True


def informers(*fakes: FakeInformer) -> list[SharedInformer[Any]]:
    return cast(list[SharedInformer[Any]], list(fakes))


async def stop_and_wait(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_start_order_informers_then_cache_sync_then_workers() -> None:
    order: list[str] = []
    a, b = FakeInformer("a", order), FakeInformer("b", order, started=True)

    async def sync(key: str) -> None:
        order.append(f"sync {key}")

    ctl = Controller("t", informers=informers(a, b), on_synced=lambda: order.append("synced"),
                     metrics=NoopMetrics())
    queue = ctl.add_queue("t", sync, workers=2)
    queue.add("default/x")  # a handler enqueued before the caches are in: waits for them
    stop = asyncio.Event()
    task = asyncio.create_task(ctl.run(stop))
    await settle(10)
    assert order == ["start a"], "an informer already started is not started again; no worker yet"
    a.synced.set()
    await settle(10)
    assert order == ["start a"], "workers wait for every informer"
    b.synced.set()
    await settle(10)
    assert order == ["start a", "synced", "sync default/x"]
    await stop_and_wait(stop, task)
    assert queue.shutting_down()


async def test_stop_before_the_caches_sync_starts_no_worker() -> None:
    order: list[str] = []
    a = FakeInformer("a", order)
    calls: list[str] = []

    async def sync(key: str) -> None:
        calls.append(key)

    ctl = Controller("t", informers=informers(a), metrics=NoopMetrics())
    queue = ctl.add_queue("t", sync)
    queue.add("k")
    stop = asyncio.Event()
    task = asyncio.create_task(ctl.run(stop))
    await settle(5)
    await stop_and_wait(stop, task)
    assert calls == [] and queue.shutting_down()


async def test_a_key_is_never_in_two_workers_and_re_adds_run_once_more() -> None:
    active: Counter[str] = Counter()
    most: Counter[str] = Counter()
    runs: list[str] = []
    release = asyncio.Event()

    async def sync(key: str) -> None:
        active[key] += 1
        most[key] = max(most[key], active[key])
        runs.append(key)
        if len(runs) == 1:
            await release.wait()
        active[key] -= 1

    ctl = Controller("t", metrics=NoopMetrics())
    queue = ctl.add_queue("t", sync, workers=8)
    stop = asyncio.Event()
    task = asyncio.create_task(ctl.run(stop))
    queue.add("a")
    await settle(5)
    queue.add("b")
    for _ in range(3):
        queue.add("a")
        await settle(5)
    assert runs == ["a", "b"], "a is being processed: no second worker takes it"
    release.set()
    await settle(10)
    assert runs == ["a", "b", "a"]
    assert set(most.values()) == {1}
    await stop_and_wait(stop, task)


async def test_errors_requeue_rate_limited_and_success_forgets(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    attempts: Counter[str] = Counter()

    async def sync(key: str) -> None:
        attempts[key] += 1
        if attempts[key] < 3:
            raise RuntimeError("transient")

    ctl = Controller("t", clock=clock, metrics=NoopMetrics())
    queue = ctl.add_queue("t", sync, rate_limiter=ItemExponentialFailureRateLimiter(1.0, 100))
    stop = asyncio.Event()
    task = asyncio.create_task(ctl.run(stop))
    queue.add("flaky")
    await settle(10)
    assert attempts["flaky"] == 1 and queue.num_requeues("flaky") == 1
    await clock.run_for(0.9)
    assert attempts["flaky"] == 1
    await clock.run_for(0.1)  # first retry after 1 s
    assert attempts["flaky"] == 2
    await clock.run_for(2.0)  # second after 2 s more; it succeeds and its history is forgotten
    assert attempts["flaky"] == 3 and queue.num_requeues("flaky") == 0
    await clock.run_for(100)
    assert attempts["flaky"] == 3
    assert any("key=flaky" in r.getMessage() and "requeued" in r.getMessage() for r in caplog.records)
    await stop_and_wait(stop, task)


async def test_permanent_error_is_dropped_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    attempts: Counter[str] = Counter()

    async def sync(key: str) -> None:
        attempts[key] += 1
        raise PermanentError("invalid spec")

    ctl = Controller("t", clock=clock, metrics=NoopMetrics())
    queue = ctl.add_queue("t", sync)
    stop = asyncio.Event()
    task = asyncio.create_task(ctl.run(stop))
    with caplog.at_level(logging.ERROR):
        queue.add("bad")
        await clock.run_for(2000)
    assert attempts["bad"] == 1 and queue.num_requeues("bad") == 0 and queue.waiting() == 0
    assert any("key=bad" in r.getMessage() and "permanently" in r.getMessage() for r in caplog.records)
    await stop_and_wait(stop, task)


async def test_named_queues_each_reach_their_own_sync() -> None:
    seen: list[tuple[str, str]] = []

    async def delete(key: str) -> None:
        seen.append(("delete", key))

    async def orphan(key: str) -> None:
        seen.append(("orphan", key))

    ctl = Controller("gc", metrics=NoopMetrics())
    deletes = ctl.add_queue("gc_delete", delete, workers=3)
    orphans = ctl.add_queue("gc_orphan", orphan)
    with pytest.raises(ValueError):
        ctl.add_queue("gc_orphan", orphan)
    assert ctl.queue("gc_delete") is deletes
    stop = asyncio.Event()
    task = asyncio.create_task(ctl.run(stop))
    deletes.add("u1")
    orphans.add("u2")
    await settle(10)
    assert sorted(seen) == [("delete", "u1"), ("orphan", "u2")]
    await stop_and_wait(stop, task)
    assert deletes.shutting_down() and orphans.shutting_down()


async def test_periodic_tasks_run_every_period_and_survive_errors(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    ticks: list[float] = []
    late: list[float] = []

    async def monitor() -> None:
        ticks.append(clock.now())
        if len(ticks) == 2:
            raise RuntimeError("one bad pass")

    async def later() -> None:
        late.append(clock.now())

    ctl = Controller("t", clock=clock, metrics=NoopMetrics())
    ctl.add_periodic("monitor", monitor, 5.0)
    ctl.add_periodic("later", later, 1.0, first_after=1.0)
    stop = asyncio.Event()
    task = asyncio.create_task(ctl.run(stop))
    start = clock.now()
    await clock.run_for(12.0)
    assert [t - start for t in ticks] == [0.0, 5.0, 10.0]
    assert [t - start for t in late][:3] == [1.0, 2.0, 3.0]
    assert any("periodic task failed" in r.getMessage() for r in caplog.records)
    await stop_and_wait(stop, task)


async def test_stop_cancels_a_sync_in_progress_and_leaves_no_task() -> None:
    started = asyncio.Event()
    cancelled: list[str] = []

    async def sync(key: str) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(key)
            raise

    clock = FakeClock()
    ctl = Controller("t", clock=clock, metrics=NoopMetrics())
    queue = ctl.add_queue("t", sync, workers=3)
    ctl.add_periodic("tick", lambda: asyncio.sleep(0), 1.0)
    stop = asyncio.Event()
    task = asyncio.create_task(ctl.run(stop))
    queue.add("stuck")
    queue.add_after("later", 10.0)
    await asyncio.wait_for(started.wait(), 5)
    await stop_and_wait(stop, task)
    assert cancelled == ["stuck"]
    assert queue.shutting_down() and queue.waiting() == 0
    assert clock.pending() == 0, "no sleeper or delayed add outlives the controller"
    # the autouse fixture fails the test if any task is left running


async def test_cancelling_run_shuts_everything_down() -> None:
    ctl = Controller("t", metrics=NoopMetrics())
    queue = ctl.add_queue("t", lambda key: asyncio.sleep(0), workers=2)
    task = asyncio.create_task(ctl.run(asyncio.Event()))
    await settle(5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert queue.shutting_down()


def _rs(name: str, uid: str) -> apps.ReplicaSet:
    rs = apps.ReplicaSet()
    rs.metadata.name, rs.metadata.namespace, rs.metadata.uid = name, "default", uid
    return rs


def test_key_of_unwrap_and_owner_of() -> None:
    pod = core.Pod()
    pod.metadata.name, pod.metadata.namespace = "p", "default"
    node = core.Node()
    node.metadata.name = "n1"
    assert key_of(pod) == "default/p" and key_of(node) == "n1"
    tomb = DeletedFinalStateUnknown("default/p", pod)
    assert key_of(tomb) == "default/p" and unwrap(tomb) is pod and unwrap(pod) is pod

    store: Store[apps.ReplicaSet] = Store()
    store.add(_rs("web", "uid-1"))
    lister = Lister(store)
    assert owner_of(pod, "ReplicaSet", lister) is None  # no controller reference
    pod.metadata.owner_references.add(kind="ReplicaSet", name="web", uid="uid-1", controller=False)
    assert owner_of(pod, "ReplicaSet", lister) is None  # an owner, but not the controller
    del pod.metadata.owner_references[:]
    pod.metadata.owner_references.add(kind="ReplicaSet", name="web", uid="uid-1", controller=True)
    owner = owner_of(pod, "ReplicaSet", lister)
    assert owner is not None and owner.metadata.uid == "uid-1"
    assert owner_of(pod, "Deployment", lister) is None  # another kind
    store.add(_rs("web", "uid-2"))  # a namesake replaced the owner
    assert owner_of(pod, "ReplicaSet", lister) is None
