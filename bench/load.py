"""Load shapes shared by the bench scripts, so a figure and its ceiling are driven the same way.

- `closed_loop`: N tasks each issuing the next call as soon as the last returns (throughput);
- `open_loop`: one call every 1/rate s whatever earlier ones take (latency at a steady rate);
- `pct`: a percentile in milliseconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

Op = Callable[[int, int], Awaitable[object]]  # (task, i) -> a call


def pct(values: list[float], p: float) -> float:
    """The p-quantile of `values` (seconds), in ms."""
    if not values:
        return 0.0
    v = sorted(values)
    return round(v[min(len(v) - 1, int(len(v) * p))] * 1000, 2)


async def closed_loop(op: Op, tasks: int, seconds: float) -> dict[str, Any]:
    """`tasks` concurrent loops of op(task, i) for `seconds`: ops, errors, per_s, p50/p99 (ms)."""
    lat: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal errors
        i = 0
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            try:
                await op(w, i)
            except Exception:
                errors += 1
            lat.append(time.perf_counter() - t)
            i += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(tasks)))
    elapsed = time.perf_counter() - start
    return {"ops": len(lat) - errors, "errors": errors, "per_s": round((len(lat) - errors) / elapsed, 1),
            "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99)}


async def open_loop(op: Op, rate: float, seconds: float) -> dict[str, Any]:
    """op(0, i) started every 1/rate s for `seconds`: achieved rate, errors, p50/p99 (ms)."""
    lat: list[float] = []
    errors = 0
    pending: set[asyncio.Task[None]] = set()

    async def one(i: int) -> None:
        nonlocal errors
        t = time.perf_counter()
        try:
            await op(0, i)
        except Exception:
            errors += 1
        lat.append(time.perf_counter() - t)

    start = time.perf_counter()
    n = int(rate * seconds)
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    achieved = n / (time.perf_counter() - start)
    return {"rate": rate, "achieved_per_s": round(achieved, 1), "errors": errors,
            "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99)}
