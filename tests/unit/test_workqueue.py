"""Work queue semantics: dedupe, one worker per key, delays, rate limiting, the worker rules."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from pybernetes.clock import FakeClock, settle
from pybernetes.workqueue import (
    BucketRateLimiter,
    DelayingQueue,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    PermanentError,
    Queue,
    RateLimitingQueue,
    ShutDown,
    default_controller_rate_limiter,
    run_workers,
)

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")


class RecordingMetrics:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.last_depth = 0

    def add(self, queue: str) -> None:
        self.calls["add"] += 1

    def get(self, queue: str, queued_seconds: float) -> None:
        self.calls["get"] += 1

    def done(self, queue: str, work_seconds: float) -> None:
        self.calls["done"] += 1

    def retry(self, queue: str) -> None:
        self.calls["retry"] += 1

    def depth(self, queue: str, depth: int) -> None:
        self.last_depth = depth


async def test_add_dedupes_and_keeps_fifo_order() -> None:
    q: Queue[str] = Queue(name="t")
    for k in ["a", "b", "a", "c", "b"]:
        q.add(k)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]
    for k in "abc":
        q.done(k)
    assert len(q) == 0


async def test_readd_while_processing_runs_once_more_after_done() -> None:
    q: Queue[str] = Queue()
    q.add("k")
    assert await q.get() == "k"
    q.add("k")
    q.add("k")
    assert len(q) == 0, "a key being processed must not be handed out again"
    q.done("k")
    assert len(q) == 1
    assert await q.get() == "k"
    q.done("k")
    assert len(q) == 0


async def test_get_blocks_until_add_and_shutdown_wakes_waiters() -> None:
    q: Queue[str] = Queue()
    getter = asyncio.create_task(q.get())
    await settle(3)
    assert not getter.done()
    q.add("x")
    assert await getter == "x"
    q.done("x")

    waiters = [asyncio.create_task(q.get()) for _ in range(3)]
    await settle(3)
    q.shutdown()
    for w in waiters:
        with pytest.raises(ShutDown):
            await w
    q.add("ignored")
    assert len(q) == 0 and q.shutting_down()


async def test_shutdown_still_hands_out_queued_keys() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    q.shutdown()
    assert await q.get() == "a"
    with pytest.raises(ShutDown):
        await q.get()


async def test_cancelled_getter_passes_wakeup_on() -> None:
    q: Queue[str] = Queue()
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await settle(3)
    q.add("k")  # wakes `first`...
    first.cancel()  # ...which is cancelled before it can take the key
    await asyncio.gather(first, return_exceptions=True)
    assert await asyncio.wait_for(second, 1) == "k"
    q.done("k")


async def test_metrics_hooks() -> None:
    m = RecordingMetrics()
    clock = FakeClock()
    q: RateLimitingQueue[str] = RateLimitingQueue(name="m", clock=clock, metrics=m)
    q.add("a")
    q.add("a")
    assert m.last_depth == 1
    k = await q.get()
    assert m.last_depth == 0
    q.add_rate_limited(k)
    q.done(k)
    assert m.calls == Counter({"add": 1, "get": 1, "done": 1, "retry": 1})
    q.shutdown()


async def test_delaying_queue_add_after_with_fake_clock() -> None:
    clock = FakeClock()
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.add_after("late", 10)
    q.add_after("soon", 1)
    q.add_after("late", 5)  # an earlier deadline replaces the later one
    q.add_after("soon", 3)  # a later one is ignored
    q.add_after("now", 0)
    assert len(q) == 1 and q.waiting() == 2
    clock.advance(1)
    assert len(q) == 2
    clock.advance(3.9)
    assert len(q) == 2
    clock.advance(0.1)
    assert [await q.get() for _ in range(3)] == ["now", "soon", "late"]
    q.add_after("x", 1)
    q.shutdown()
    assert q.waiting() == 0 and clock.pending() == 0


def test_item_exponential_limiter_arithmetic() -> None:
    rl: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(0.005, 1000)
    assert [rl.when("a") for _ in range(4)] == [0.005, 0.01, 0.02, 0.04]
    assert rl.when("b") == 0.005
    assert rl.num_requeues("a") == 4
    for _ in range(40):
        rl.when("a")
    assert rl.when("a") == 1000
    for _ in range(100):
        rl.when("a")
    assert rl.when("a") == 1000
    rl.forget("a")
    assert rl.num_requeues("a") == 0 and rl.when("a") == 0.005


def test_bucket_limiter_arithmetic() -> None:
    clock = FakeClock()
    rl: BucketRateLimiter[str] = BucketRateLimiter(10, 100, clock=clock)
    assert all(rl.when(str(i)) == 0 for i in range(100))
    assert rl.when("x") == pytest.approx(0.1)
    assert rl.when("y") == pytest.approx(0.2)
    clock.advance(1.0)  # refills 10 tokens: the bucket is at 8
    assert all(rl.when(str(i)) == 0 for i in range(8))
    assert rl.when("z") == pytest.approx(0.1)
    clock.advance(1000)
    assert rl.when("z") == 0  # refill is capped at burst
    assert rl.num_requeues("z") == 0


def test_max_of_and_default_controller_limiter() -> None:
    clock = FakeClock()
    rl: MaxOfRateLimiter[str] = default_controller_rate_limiter(clock)
    assert isinstance(rl, MaxOfRateLimiter)
    # per-item exponential dominates for one failing key while the bucket has tokens
    assert [rl.when("a") for _ in range(3)] == [0.005, 0.01, 0.02]
    assert rl.num_requeues("a") == 3
    # a storm of distinct keys drains the bucket: 97 more free tokens, then 0.1 s steps
    for i in range(97):
        assert rl.when(f"k{i}") == 0.005
    assert rl.when("new") == pytest.approx(0.1)
    rl.forget("a")
    assert rl.num_requeues("a") == 0


async def test_rate_limiting_queue_backoff_and_forget() -> None:
    clock = FakeClock()
    q: RateLimitingQueue[str] = RateLimitingQueue(ItemExponentialFailureRateLimiter(1.0, 60), clock=clock)
    q.add_rate_limited("k")
    q.add_rate_limited("k")
    assert q.num_requeues("k") == 2
    clock.advance(0.99)
    assert len(q) == 0
    clock.advance(0.01)
    assert len(q) == 1
    q.forget("k")
    assert q.num_requeues("k") == 0
    q.shutdown()


async def test_one_key_never_in_two_workers_and_readd_runs_exactly_once_more() -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue(name="stress")
    rng = random.Random(7)
    keys = [f"k{i}" for i in range(5)]
    active: Counter[str] = Counter()
    max_active: Counter[str] = Counter()
    runs: Counter[str] = Counter()

    async def sync(key: str) -> None:
        active[key] += 1
        max_active[key] = max(max_active[key], active[key])
        runs[key] += 1
        for _ in range(rng.randint(0, 3)):
            await asyncio.sleep(0)
            if runs[key] < 20 and rng.random() < 0.5:
                q.add(key)
                q.add(rng.choice(keys))
        active[key] -= 1

    workers = asyncio.create_task(run_workers(q, sync, 8, name="stress"))
    for _ in range(3):
        for k in keys:
            q.add(k)
        await settle(20)
    for _ in range(200):
        await asyncio.sleep(0)
    q.shutdown()
    await asyncio.wait_for(workers, 5)
    assert set(max_active.values()) == {1}
    assert all(runs[k] >= 1 for k in keys)

    # The exact rule: three re-adds during one run cause exactly one more run.
    q2: RateLimitingQueue[str] = RateLimitingQueue(name="exact")
    runs2: list[str] = []
    release = asyncio.Event()

    async def sync2(key: str) -> None:
        runs2.append(key)
        if len(runs2) == 1:
            await release.wait()

    workers2 = asyncio.create_task(run_workers(q2, sync2, 4, name="exact"))
    q2.add("a")
    await settle(5)
    assert runs2 == ["a"]
    for _ in range(3):
        q2.add("a")
        await settle(5)
    assert runs2 == ["a"], "no second worker may start the key while it is processing"
    release.set()
    await settle(10)
    assert runs2 == ["a", "a"]
    await settle(10)
    assert runs2 == ["a", "a"]
    q2.shutdown()
    await asyncio.wait_for(workers2, 5)


async def test_run_workers_rules(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    q: RateLimitingQueue[str] = RateLimitingQueue(ItemExponentialFailureRateLimiter(1.0, 100), clock=clock)
    attempts: Counter[str] = Counter()

    async def sync(key: str) -> None:
        attempts[key] += 1
        if key == "flaky" and attempts[key] < 3:
            raise RuntimeError("transient")
        if key == "bad":
            raise PermanentError("invalid spec")

    workers = asyncio.create_task(run_workers(q, sync, 2, name="ctl"))
    for k in ["ok", "flaky", "bad"]:
        q.add(k)
    await settle(20)
    assert attempts == Counter({"ok": 1, "flaky": 1, "bad": 1})
    assert q.num_requeues("flaky") == 1 and q.num_requeues("bad") == 0 and q.num_requeues("ok") == 0
    assert q.processing() == frozenset()
    await clock.run_for(1.0)  # first retry after 1 s
    assert attempts["flaky"] == 2 and q.num_requeues("flaky") == 2
    await clock.run_for(1.9)
    assert attempts["flaky"] == 2
    await clock.run_for(0.1)  # second retry after 2 s more; succeeds and is forgotten
    assert attempts["flaky"] == 3 and q.num_requeues("flaky") == 0
    await clock.run_for(100)
    assert attempts == Counter({"ok": 1, "flaky": 3, "bad": 1})
    assert any("key=flaky" in r.getMessage() for r in caplog.records)
    assert any("key=bad" in r.getMessage() and "permanently" in r.getMessage() for r in caplog.records)
    q.shutdown()
    await asyncio.wait_for(workers, 5)
