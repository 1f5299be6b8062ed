"""Leader election on coordination.v1 Leases (client-go tools/leaderelection, LeaseLock).

Callers: pb-controller-manager and pb-scheduler (`--leader-elect`), so that of several replicas exactly one
runs its controllers. Semantics, as client-go:

- The lease `namespace/name` records holderIdentity, leaseDurationSeconds, acquireTime, renewTime and
  leaseTransitions. A candidate takes it when it is absent, unheld, or expired.
- Expiry is judged by *local observation*: the time this process last saw the lease record change, plus the
  record's leaseDurationSeconds. Remote timestamps are never compared with the local clock (no clock-skew
  assumptions); a holder that keeps renewing keeps changing renewTime, so observers keep seeing changes.
- Every write carries the resourceVersion that was read, so of two candidates racing for an expired lease
  one gets a Conflict: two candidates never both believe they lead.
- The leader renews every `retry_period`, writing the record it last observed without reading it first (a
  Conflict sends it to read the lease and decide again: client-go's fast path, one request per renewal instead
  of two); if no renewal succeeds for `renew_deadline` it stops leading:
  `work` is cancelled (a leader that cannot reach the apiserver must assume someone else took over after
  `lease_duration`, which is why lease_duration > renew_deadline).
- When the caller cancels (or `work` returns) the lease is released (holder cleared, duration 1 s) so a
  successor need not wait for expiry (client-go's ReleaseOnCancel).

`run_leader_elected` campaigns again after losing the lease, calling `work` afresh each term, until it is
cancelled or `work` returns. `leader_election_master_status{name}` is 1 while this process leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Awaitable, Callable
from typing import Protocol

from prometheus_client import Gauge

from pybernetes import errors
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.clock import Clock, RealClock

log = logging.getLogger("pybernetes.leaderelection")

JITTER_FACTOR = 1.2

MASTER_STATUS = Gauge("leader_election_master_status",
                      "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, "
                      "1 indicates master. 'name' is the string used to identify the lease.", ["name"])


class LeaseClient(Protocol):
    """The subset of pybernetes.client.client.Client leader election uses (fakes implement it in tests)."""

    async def get(self, cls: type[coordination.Lease], name: str, *,
                  namespace: str = "") -> coordination.Lease: ...

    async def create(self, obj: coordination.Lease) -> coordination.Lease: ...

    async def update(self, obj: coordination.Lease) -> coordination.Lease: ...


def _spec_key(spec: coordination.LeaseSpec) -> bytes:
    return spec.SerializeToString(deterministic=True)


class LeaderElector:
    """One candidate for one lease. `try_acquire_or_renew` is a single attempt; `run_term` is one
    leadership term (campaign, lead while renewing, stop)."""

    def __init__(self, client: LeaseClient, *, name: str, identity: str, namespace: str = "kube-system",
                 lease_duration: float = 15.0, renew_deadline: float = 10.0, retry_period: float = 2.0,
                 clock: Clock | None = None, release_on_cancel: bool = True) -> None:
        if not identity:
            raise ValueError("leader election requires a non-empty identity")
        if lease_duration <= renew_deadline:
            raise ValueError("lease_duration must be greater than renew_deadline")
        if renew_deadline <= JITTER_FACTOR * retry_period:
            raise ValueError(f"renew_deadline must be greater than retry_period*{JITTER_FACTOR}")
        if retry_period <= 0:
            raise ValueError("retry_period must be positive")
        self.client = client
        self.name = name
        self.identity = identity
        self.namespace = namespace
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.clock: Clock = clock or RealClock()
        self.release_on_cancel = release_on_cancel
        self.observed: coordination.Lease | None = None
        self.observed_time = 0.0
        self._observed_key = b""
        MASTER_STATUS.labels(name=name).set(0)

    # -- state --------------------------------------------------------------------------------

    def get_leader(self) -> str:
        return self.observed.spec.holder_identity if self.observed is not None else ""

    def is_leader(self) -> bool:
        return self.get_leader() == self.identity

    def _observe(self, lease: coordination.Lease) -> None:
        key = _spec_key(lease.spec)
        if self.observed is None or key != self._observed_key:
            self.observed_time = self.clock.now()
            self._observed_key = key
        self.observed = lease

    def _duration_of(self, spec: coordination.LeaseSpec) -> float:
        if spec.HasField("lease_duration_seconds") and spec.lease_duration_seconds > 0:
            return float(spec.lease_duration_seconds)
        return self.lease_duration

    def _fill(self, lease: coordination.Lease, old: coordination.LeaseSpec | None) -> None:
        wall = self.clock.wall()
        secs, nanos = int(wall), int((wall - int(wall)) * 1e9)
        spec = lease.spec
        spec.holder_identity = self.identity
        spec.lease_duration_seconds = max(1, math.ceil(self.lease_duration))
        spec.renew_time.seconds, spec.renew_time.nanos = secs, nanos
        if old is not None and old.holder_identity == self.identity:
            spec.acquire_time.CopyFrom(old.acquire_time)
            spec.lease_transitions = old.lease_transitions
        else:
            spec.acquire_time.seconds, spec.acquire_time.nanos = secs, nanos
            transitions = old.lease_transitions if old is not None else 0
            taken_over = old is not None and bool(old.holder_identity)
            spec.lease_transitions = transitions + 1 if taken_over else transitions

    # -- one attempt --------------------------------------------------------------------------

    async def try_acquire_or_renew(self) -> bool:
        """Create, take over or renew the lease once; True when this candidate holds it afterwards."""
        if await self._renew_observed():
            return True
        try:
            current = await self.client.get(coordination.Lease, self.name, namespace=self.namespace)
        except errors.NotFound:
            lease = coordination.Lease()
            lease.metadata.name, lease.metadata.namespace = self.name, self.namespace
            self._fill(lease, None)
            try:
                created = await self.client.create(lease)
            except errors.ApiError as e:
                log.info("lease create failed lease=%s/%s error=%s", self.namespace, self.name, e)
                return False
            self._observe(created)
            return True
        except (errors.ApiError, OSError) as e:
            log.warning("error retrieving lease lease=%s/%s error=%s", self.namespace, self.name, e)
            return False

        self._observe(current)
        holder = current.spec.holder_identity
        now = self.clock.now()
        if holder and holder != self.identity and self.observed_time + self._duration_of(current.spec) > now:
            log.debug("lease held by another candidate lease=%s/%s holder=%s", self.namespace, self.name,
                      holder)
            return False

        lease = coordination.Lease()
        lease.CopyFrom(current)  # keeps metadata.resourceVersion: the write is conditional
        self._fill(lease, current.spec)
        try:
            updated = await self.client.update(lease)
        except errors.Conflict:
            log.info("lease changed meanwhile, not acquired lease=%s/%s", self.namespace, self.name)
            return False
        except (errors.ApiError, OSError) as e:
            log.warning("lease update failed lease=%s/%s error=%s", self.namespace, self.name, e)
            return False
        self._observe(updated)
        if holder != self.identity:
            log.info("successfully acquired lease lease=%s/%s identity=%s", self.namespace, self.name,
                     self.identity)
        return True

    async def _renew_observed(self) -> bool:
        """The leader's renewal of the lease as last observed, without reading it first (client-go's fast
        path): conditional on that resourceVersion, so a lease changed meanwhile is a Conflict and the caller
        reads it and decides again."""
        observed = self.observed
        if observed is None or not self.is_leader() or \
                self.observed_time + self._duration_of(observed.spec) <= self.clock.now():
            return False
        lease = coordination.Lease()
        lease.CopyFrom(observed)
        self._fill(lease, observed.spec)
        try:
            updated = await self.client.update(lease)
        except (errors.ApiError, OSError) as e:
            log.info("lease renewal from the observed record failed, reading it lease=%s/%s error=%s",
                     self.namespace, self.name, e)
            return False
        self._observe(updated)
        return True

    async def release(self) -> bool:
        """Give the lease up (if still ours) so a successor takes it without waiting for expiry."""
        if not self.is_leader() or self.observed is None:
            return True
        lease = coordination.Lease()
        lease.CopyFrom(self.observed)
        lease.spec.holder_identity = ""
        lease.spec.lease_duration_seconds = 1
        wall = self.clock.wall()
        lease.spec.renew_time.seconds, lease.spec.renew_time.nanos = int(wall), 0
        lease.spec.acquire_time.seconds, lease.spec.acquire_time.nanos = int(wall), 0
        try:
            updated = await self.client.update(lease)
        except (errors.ApiError, OSError) as e:
            log.warning("failed to release lease lease=%s/%s error=%s", self.namespace, self.name, e)
            return False
        self._observe(updated)
        log.info("released lease lease=%s/%s identity=%s", self.namespace, self.name, self.identity)
        return True

    # -- loops --------------------------------------------------------------------------------

    async def _attempt(self, budget: float) -> bool:
        try:
            return await asyncio.wait_for(self.try_acquire_or_renew(), max(budget, 0.001))
        except TimeoutError:
            return False

    async def acquire(self) -> None:
        """Return once the lease is ours (retrying every retry_period, jittered)."""
        log.info("attempting to acquire leader lease lease=%s/%s identity=%s", self.namespace, self.name,
                 self.identity)
        while True:
            if await self._attempt(self.renew_deadline):
                return
            await self.clock.sleep(self.retry_period * (1 + random.random() * JITTER_FACTOR))

    async def renew(self) -> None:
        """Renew every retry_period; return when no renewal succeeded within renew_deadline (lost)."""
        while True:
            deadline = self.clock.now() + self.renew_deadline
            while True:
                if await self._attempt(deadline - self.clock.now()):
                    break
                if self.clock.now() + self.retry_period >= deadline:
                    log.warning("failed to renew lease within the deadline lease=%s/%s identity=%s",
                                self.namespace, self.name, self.identity)
                    return
                await self.clock.sleep(self.retry_period)
            await self.clock.sleep(self.retry_period)

    async def run_term(self, work: Callable[[], Awaitable[None]],
                       on_state: Callable[[bool], None] | None = None) -> bool:
        """Campaign, then run `work` while renewing. True when work returned (lease released); False
        when leadership was lost (work cancelled). Cancellation cancels work and releases the lease."""
        await self.acquire()
        MASTER_STATUS.labels(name=self.name).set(1)
        log.info("became leader lease=%s/%s identity=%s", self.namespace, self.name, self.identity)
        if on_state is not None:
            on_state(True)
        work_task = asyncio.ensure_future(work())
        renew_task = asyncio.ensure_future(self.renew())
        lost = False
        try:
            await asyncio.wait([work_task, renew_task], return_when=asyncio.FIRST_COMPLETED)
            lost = renew_task.done() and not work_task.done()
            if work_task.done():
                work_task.result()  # propagate the error of work
            return not lost
        finally:
            for t in (work_task, renew_task):
                t.cancel()
            for t in (work_task, renew_task):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            MASTER_STATUS.labels(name=self.name).set(0)
            if lost:
                log.error("leader election lost lease=%s/%s identity=%s", self.namespace, self.name,
                          self.identity)
                self.observed = None
            elif self.release_on_cancel:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.release(), self.renew_deadline)
            if on_state is not None:
                on_state(False)


async def run_leader_elected(
    client: LeaseClient,
    *,
    name: str,
    identity: str,
    work: Callable[[], Awaitable[None]],
    namespace: str = "kube-system",
    lease_duration: float = 15.0,
    renew_deadline: float = 10.0,
    retry_period: float = 2.0,
    on_state: Callable[[bool], None] | None = None,
    clock: Clock | None = None,
    release_on_cancel: bool = True,
) -> None:
    """Run `work` only while holding the lease `namespace/name`; campaign again after losing it.

    Returns when `work` returns (after releasing the lease); cancel the task to stop (work is cancelled
    and the lease released). `on_state(True/False)` reports each start and end of leadership."""
    elector = LeaderElector(client, name=name, identity=identity, namespace=namespace,
                            lease_duration=lease_duration, renew_deadline=renew_deadline,
                            retry_period=retry_period, clock=clock, release_on_cancel=release_on_cancel)
    while True:
        if await elector.run_term(work, on_state):
            return
