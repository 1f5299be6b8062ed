"""Leader election on Leases with a fake client and a FakeClock."""

from __future__ import annotations

import asyncio

import pytest

from pybernetes import errors
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.clock import FakeClock, settle
from pybernetes.leaderelection import MASTER_STATUS, LeaderElector, run_leader_elected


class FakeLeases:
    """An in-memory lease store with resourceVersion preconditions, as the apiserver's."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], coordination.Lease] = {}
        self.rv = 0
        self.down = False
        self.writes = 0
        self.gets = 0

    def _check(self) -> None:
        if self.down:
            raise errors.Unavailable("apiserver unreachable")

    async def get(self, cls: type[coordination.Lease], name: str, *,
                  namespace: str = "") -> coordination.Lease:
        self._check()
        self.gets += 1
        obj = self.items.get((namespace, name))
        if obj is None:
            raise errors.NotFound(f"leases {name} not found")
        out = coordination.Lease()
        out.CopyFrom(obj)
        return out

    async def create(self, obj: coordination.Lease) -> coordination.Lease:
        self._check()
        key = (obj.metadata.namespace, obj.metadata.name)
        if key in self.items:
            raise errors.AlreadyExists("exists")
        return self._store(key, obj)

    async def update(self, obj: coordination.Lease) -> coordination.Lease:
        self._check()
        key = (obj.metadata.namespace, obj.metadata.name)
        cur = self.items.get(key)
        if cur is None:
            raise errors.NotFound("gone")
        if obj.metadata.resource_version != cur.metadata.resource_version:
            raise errors.Conflict("the object has been modified")
        return self._store(key, obj)

    def _store(self, key: tuple[str, str], obj: coordination.Lease) -> coordination.Lease:
        self.rv += 1
        self.writes += 1
        new = coordination.Lease()
        new.CopyFrom(obj)
        new.metadata.resource_version = str(self.rv)
        self.items[key] = new
        out = coordination.Lease()
        out.CopyFrom(new)
        return out

    def holder(self) -> str:
        lease = self.items.get(("kube-system", "lock"))
        return lease.spec.holder_identity if lease else ""


def elector(c: FakeLeases, identity: str, clock: FakeClock) -> LeaderElector:
    return LeaderElector(c, name="lock", identity=identity, lease_duration=15, renew_deadline=10,
                         retry_period=2, clock=clock)


async def test_acquire_absent_then_other_waits_for_expiry_by_local_observation() -> None:
    clock, c = FakeClock(), FakeLeases()
    a, b = elector(c, "a", clock), elector(c, "b", clock)
    assert await a.try_acquire_or_renew()
    lease = c.items[("kube-system", "lock")]
    assert lease.spec.holder_identity == "a" and lease.spec.lease_duration_seconds == 15
    assert lease.spec.lease_transitions == 0 and lease.spec.acquire_time.seconds > 0
    assert not await b.try_acquire_or_renew()
    clock.advance(14)
    assert not await b.try_acquire_or_renew()
    # a renews: b observes a change and restarts its expiry window from now
    clock.advance(0.5)
    assert await a.try_acquire_or_renew()
    clock.advance(1)
    assert not await b.try_acquire_or_renew()
    clock.advance(14.5)
    assert not await b.try_acquire_or_renew()  # 14.5 s since b observed the renewal
    clock.advance(1)
    assert await b.try_acquire_or_renew()
    lease = c.items[("kube-system", "lock")]
    assert lease.spec.holder_identity == "b" and lease.spec.lease_transitions == 1
    assert not await a.try_acquire_or_renew()


async def test_remote_timestamps_are_not_trusted() -> None:
    """A lease whose renewTime is far in the past is still valid for lease_duration after we first see it."""
    clock, c = FakeClock(), FakeLeases()
    old = coordination.Lease()
    old.metadata.name, old.metadata.namespace = "lock", "kube-system"
    old.spec.holder_identity, old.spec.lease_duration_seconds = "x", 15
    old.spec.renew_time.seconds = 1
    await c.create(old)
    b = elector(c, "b", clock)
    assert not await b.try_acquire_or_renew()
    clock.advance(16)
    assert await b.try_acquire_or_renew()


async def test_conflict_means_only_one_wins() -> None:
    clock, c = FakeClock(), FakeLeases()
    a, b = elector(c, "a", clock), elector(c, "b", clock)
    x = elector(c, "x", clock)
    assert await x.try_acquire_or_renew()
    assert not await a.try_acquire_or_renew() and not await b.try_acquire_or_renew()
    clock.advance(20)
    results = await asyncio.gather(a.try_acquire_or_renew(), b.try_acquire_or_renew())
    assert sorted(results) == [False, True]


async def test_renew_failure_past_deadline_cancels_work_then_recampaigns() -> None:
    clock, c = FakeClock(), FakeLeases()
    started: list[int] = []
    cancelled: list[int] = []
    states: list[bool] = []

    async def work() -> None:
        started.append(1)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(1)
            raise

    task = asyncio.create_task(run_leader_elected(
        c, name="lock", identity="a", work=work, lease_duration=15, renew_deadline=10, retry_period=2,
        on_state=states.append, clock=clock))
    await settle()
    assert started == [1] and states == [True]
    assert MASTER_STATUS.labels(name="lock")._value.get() == 1
    await clock.run_for(30)
    assert not cancelled and c.holder() == "a"
    c.down = True
    await clock.run_for(7)
    assert not cancelled  # still within renew_deadline
    await clock.run_for(6)
    assert cancelled == [1] and states == [True, False]
    assert MASTER_STATUS.labels(name="lock")._value.get() == 0
    c.down = False
    await clock.run_for(5)
    assert started == [1, 1] and states == [True, False, True]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled == [1, 1] and c.holder() == ""  # released on cancel


async def test_release_lets_successor_take_over_at_once() -> None:
    clock, c = FakeClock(), FakeLeases()
    ran: list[str] = []

    def work_of(who: str) -> object:
        async def work() -> None:
            ran.append(who)
            await asyncio.Event().wait()
        return work

    ta = asyncio.create_task(run_leader_elected(c, name="lock", identity="a", work=work_of("a"),  # type: ignore[arg-type]
                                                clock=clock))
    await settle()
    tb = asyncio.create_task(run_leader_elected(c, name="lock", identity="b", work=work_of("b"),  # type: ignore[arg-type]
                                                clock=clock))
    await clock.run_for(40)
    assert ran == ["a"]
    ta.cancel()
    with pytest.raises(asyncio.CancelledError):
        await ta
    await clock.run_for(5)  # b's next retry; lease released with 1 s duration
    assert ran == ["a", "b"] and c.holder() == "b"
    tb.cancel()
    with pytest.raises(asyncio.CancelledError):
        await tb


async def test_work_returning_ends_election() -> None:
    clock, c = FakeClock(), FakeLeases()

    async def work() -> None:
        return None

    await asyncio.wait_for(run_leader_elected(c, name="lock", identity="a", work=work, clock=clock), 5)
    assert c.holder() == ""


def test_invalid_timings() -> None:
    with pytest.raises(ValueError):
        LeaderElector(FakeLeases(), name="l", identity="a", lease_duration=5, renew_deadline=10)
    with pytest.raises(ValueError):
        LeaderElector(FakeLeases(), name="l", identity="a", renew_deadline=2, retry_period=2)


async def test_the_leader_renews_without_reading_the_lease_and_rereads_on_conflict() -> None:
    clock, c = FakeClock(), FakeLeases()
    a = elector(c, "a", clock)
    assert await a.try_acquire_or_renew()
    gets = c.gets
    for _ in range(3):
        clock.advance(2)
        assert await a.try_acquire_or_renew()
    assert c.gets == gets and c.holder() == "a"  # one update per renewal, as client-go's fast path
    # someone took the lease meanwhile (a's record is stale): the renewal conflicts, a reads it, and stands down
    taken = c.items[("kube-system", "lock")]
    taken.spec.holder_identity = "b"
    c.rv += 1
    taken.metadata.resource_version = str(c.rv)
    clock.advance(2)
    assert not await a.try_acquire_or_renew()
    assert c.gets == gets + 1 and c.holder() == "b" and not a.is_leader()
    # a leader whose last renewal is older than the lease's duration by its own clock reads before writing
    b = elector(c, "b", clock)
    assert await b.try_acquire_or_renew() and c.gets == gets + 2  # nothing observed yet: read, then renew
    clock.advance(16)
    assert await b.try_acquire_or_renew() and c.gets == gets + 3
