"""Load shapes shared by the bench scripts, so a figure and its ceiling are driven the same way.

- `closed_loop`: N tasks each issuing the next call as soon as the last returns (throughput);
- `open_loop`: one call every 1/rate s whatever earlier ones take (latency at a steady rate);
- `interleaved`: several ops (a figure and its ceiling) under one of those shapes in alternating slices
  (A B A B ...), so that the load other processes put on the machine falls on each alike;
- `pct`: a percentile in milliseconds.
An op is called with its task's number (to pick a channel); ops name their objects themselves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

Op = Callable[[int], Awaitable[object]]


def pct(values: list[float], p: float) -> float:
    """The p-quantile of `values` (seconds), in ms."""
    if not values:
        return 0.0
    v = sorted(values)
    return round(v[min(len(v) - 1, int(len(v) * p))] * 1000, 2)


class _Tally:
    """Latencies, errors and busy time of one op over one or more slices."""

    def __init__(self) -> None:
        self.lat: list[float] = []
        self.errors = 0
        self.elapsed = 0.0

    async def call(self, op: Op, task: int) -> None:
        t = time.perf_counter()
        try:
            await op(task)
        except Exception:
            self.errors += 1
        self.lat.append(time.perf_counter() - t)

    def summary(self) -> dict[str, Any]:
        ok = len(self.lat) - self.errors
        return {"ops": ok, "errors": self.errors, "per_s": round(ok / self.elapsed, 1) if self.elapsed else 0.0,
                "p50_ms": pct(self.lat, 0.5), "p99_ms": pct(self.lat, 0.99)}


async def _closed(op: Op, tasks: int, seconds: float, tally: _Tally) -> None:
    deadline = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        while time.perf_counter() < deadline:
            await tally.call(op, w)

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(tasks)))
    tally.elapsed += time.perf_counter() - start


async def _open(op: Op, rate: float, seconds: float, tally: _Tally) -> None:
    pending: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(tally.call(op, 0))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    tally.elapsed += time.perf_counter() - start


async def closed_loop(op: Op, tasks: int, seconds: float) -> dict[str, Any]:
    """`tasks` concurrent loops of op for `seconds`: ops, errors, per_s, p50/p99 (ms)."""
    tally = _Tally()
    await _closed(op, tasks, seconds, tally)
    return tally.summary()


async def open_loop(op: Op, rate: float, seconds: float) -> dict[str, Any]:
    """op started every 1/rate s for `seconds`: ops, errors, per_s (achieved), p50/p99 (ms)."""
    tally = _Tally()
    await _open(op, rate, seconds, tally)
    return tally.summary()


async def interleaved(shape: Literal["closed", "open"], ops: Sequence[Op], seconds: float, *, slices: int,
                      tasks: int = 64, rate: float = 300) -> list[dict[str, Any]]:
    """Each op for `seconds` in all, as `slices` slices alternating between the ops; one summary per op."""
    tallies = [_Tally() for _ in ops]
    for _ in range(slices):
        for op, tally in zip(ops, tallies, strict=True):
            if shape == "closed":
                await _closed(op, tasks, seconds / slices, tally)
            else:
                await _open(op, rate, seconds / slices, tally)
    return [t.summary() for t in tallies]
