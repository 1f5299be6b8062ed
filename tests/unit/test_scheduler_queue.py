"""Scheduling queue: priority order, backoff 1 s doubling to 10 s, requeue on relevant cluster events."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from pybernetes.clock import FakeClock
from services.scheduler import framework as fw
from services.scheduler.cache import PodInfo
from services.scheduler.queue import QueueClosed, SchedulingQueue
from services.scheduler.testing import make_pod

EVENTS = {"NodeResourcesFit": frozenset({fw.NODE_ADD, fw.NODE_UPDATE, fw.POD_DELETE}),
          "InterPodAffinity": frozenset({fw.POD_ADD})}


def new_queue() -> tuple[SchedulingQueue, FakeClock]:
    clock = FakeClock()
    return SchedulingQueue(clock=clock, initial_backoff=1.0, max_backoff=10.0, plugin_events=EVENTS), clock


def pi(name: str, **kw: object) -> PodInfo:
    return PodInfo(make_pod(name, **kw))  # type: ignore[arg-type]


async def test_priority_then_fifo() -> None:
    q, clock = new_queue()
    q.add(pi("a"))
    clock.advance(1)
    q.add(pi("b", priority=10))
    clock.advance(1)
    q.add(pi("c"))
    assert [(await q.pop()).key for _ in range(3)] == ["default/b", "default/a", "default/c"]


async def test_pop_waits_and_close() -> None:
    q, _ = new_queue()
    t = asyncio.create_task(q.pop())
    await asyncio.sleep(0)
    assert not t.done()
    q.add(pi("a"))
    assert (await asyncio.wait_for(t, 1)).key == "default/a"
    t2 = asyncio.create_task(q.pop())
    await asyncio.sleep(0)
    await q.close()
    with pytest.raises(QueueClosed):
        await asyncio.wait_for(t2, 1)


def test_backoff_durations() -> None:
    q, _ = new_queue()
    q.add(pi("a"))
    item = q.pop_nowait()
    assert item is not None
    durations = []
    for attempts in range(1, 7):
        item.attempts = attempts
        durations.append(q.backoff_duration(item))
    assert durations == [1, 2, 4, 8, 10, 10]


def test_unschedulable_requeued_only_on_relevant_event_after_backoff() -> None:
    q, clock = new_queue()
    q.add(pi("a"))
    item = q.pop_nowait()
    assert item is not None
    q.add_unschedulable(item, {"NodeResourcesFit"})
    assert q.where("default/a") == "unschedulable"
    assert q.move_all(fw.POD_ADD) == 0  # NodeResourcesFit does not care
    assert q.where("default/a") == "unschedulable"
    assert q.move_all(fw.NODE_ADD) == 1
    assert q.where("default/a") == "backoff"  # still within its 1 s backoff
    clock.advance(0.5)
    assert q.flush_backoff_completed() == 0
    clock.advance(0.6)
    assert q.flush_backoff_completed() == 1
    assert q.where("default/a") == "active"
    again = q.pop_nowait()
    assert again is not None and again.attempts == 2
    q.add_unschedulable(again, {"NodeResourcesFit"})
    clock.advance(5)  # past the 2 s backoff: an event moves it straight to active
    q.move_all(fw.NODE_UPDATE)
    assert q.where("default/a") == "active"


def test_event_during_scheduling_cycle_goes_to_backoff() -> None:
    q, _ = new_queue()
    q.add(pi("a"))
    item = q.pop_nowait()
    assert item is not None
    q.move_all(fw.NODE_ADD)  # a node arrived while "a" was being scheduled
    q.add_unschedulable(item, {"NodeResourcesFit"})
    assert q.where("default/a") == "backoff"


def test_leftover_unschedulable_flushed_after_max_duration() -> None:
    q, clock = new_queue()
    q.add(pi("a"))
    item = q.pop_nowait()
    assert item is not None
    q.add_unschedulable(item, {"NodeResourcesFit"})
    clock.advance(100)
    assert q.flush_unschedulable_left_over() == 0
    clock.advance(250)
    assert q.flush_unschedulable_left_over() == 1
    assert q.where("default/a") == "active"


def test_update_and_delete() -> None:
    q, _ = new_queue()
    q.add(pi("a"))
    item = q.pop_nowait()
    assert item is not None
    q.add_unschedulable(item, {"NodeResourcesFit"})
    q.update(pi("a"), relevant=False)
    assert q.where("default/a") == "unschedulable"
    q.update(pi("a", cpu="1"), relevant=True)
    assert q.where("default/a") == "backoff"
    q.delete("default/a")
    assert q.where("default/a") is None
    # deleted while in flight: not re-added after the failed attempt
    q.add(pi("b"))
    b = q.pop_nowait()
    assert b is not None
    q.delete("default/b")
    q.add_unschedulable(b, {"NodeResourcesFit"})
    assert q.where("default/b") is None


def test_error_goes_to_backoff_and_gated_pods_wait() -> None:
    q, clock = new_queue()
    q.add(pi("a"))
    item = q.pop_nowait()
    assert item is not None
    q.add_backoff(item)
    assert q.where("default/a") == "backoff"
    clock.advance(1.1)
    q.flush_backoff_completed()
    assert q.where("default/a") == "active"
    gated = make_pod("g")
    gated.spec.scheduling_gates.add(name="wait")
    q.add(PodInfo(gated))
    assert q.where("default/g") == "gated"
    q.update(pi("g"), relevant=True)
    assert q.where("default/g") == "active"
    assert q.pending() == {"active": 2, "backoff": 0, "unschedulable": 0, "gated": 0}


async def test_pending_gauges_follow_the_queue() -> None:
    def pending(name: str) -> float | None:
        return REGISTRY.get_sample_value("scheduler_pending_pods", {"queue": name})

    q, _ = new_queue()
    q.add(pi("a"))
    q.add(pi("b"))
    assert (pending("active"), pending("unschedulable")) == (2, 0)
    p = await q.pop()
    q.add_unschedulable(p, {"NodeResourcesFit"})
    assert (pending("active"), pending("unschedulable")) == (1, 1)
    q.delete("default/b")
    assert pending("active") == 0
