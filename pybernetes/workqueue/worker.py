"""`run_workers`: the sample-controller worker loop over a RateLimitingQueue (the only one).

Callers: `pybernetes.controller.Controller` (every controller runs its queues through it). Rules: each
key taken is always `done()`; success forgets its failure history; an exception requeues it rate-limited;
a PermanentError is logged and dropped (retrying cannot help, so it must not spin in backoff).
Returns once the queue is shut down and drained; cancelling it cancels every worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pybernetes.workqueue.queue import K, ShutDown
from pybernetes.workqueue.rate_limiting import RateLimitingQueue

log = logging.getLogger(__name__)


class PermanentError(Exception):
    """Raised by a sync function when retrying the key cannot succeed (e.g. an invalid object)."""


async def run_workers(
    queue: RateLimitingQueue[K],
    sync: Callable[[K], Awaitable[None]],
    workers: int,
    *,
    name: str,
) -> None:
    async with asyncio.TaskGroup() as tg:
        for i in range(workers):
            tg.create_task(_worker(queue, sync, name), name=f"{name}-worker-{i}")


async def _worker(queue: RateLimitingQueue[K], sync: Callable[[K], Awaitable[None]], name: str) -> None:
    while True:
        try:
            key = await queue.get()
        except ShutDown:
            return
        try:
            await sync(key)
        except PermanentError as exc:
            queue.forget(key)
            log.error("sync failed permanently, dropping controller=%s key=%s error=%s", name, key, exc)
        except Exception as exc:
            queue.add_rate_limited(key)
            log.warning(
                "sync failed, requeued controller=%s key=%s requeues=%d error=%r",
                name, key, queue.num_requeues(key), exc,
            )
        else:
            queue.forget(key)
        finally:
            queue.done(key)
