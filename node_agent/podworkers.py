"""Pod workers: one asyncio task per pod UID, level-triggered.

`update(uid)` marks the pod dirty and wakes its worker (creating it if needed); the worker runs
`sync(uid)` — never two at once for one pod — and again whenever it was marked dirty meanwhile, after
the delay `sync` asked for (backoff expiry, probe timing, periodic resync), or after an error with
exponential backoff. `sync` returns None when the pod is finished with (gone from the API and cleaned
up): the worker then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

SyncFn = Callable[[str], Awaitable[float | None]]

ERROR_BACKOFF = 1.0
MAX_ERROR_BACKOFF = 30.0


class _Worker:
    def __init__(self) -> None:
        self.dirty = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.syncing = False


class PodWorkers:
    def __init__(self, sync: SyncFn, *, resync: float = 10.0, max_concurrent: int = 0) -> None:
        self.sync = sync
        self.resync = resync
        self._workers: dict[str, _Worker] = {}
        self._sem = asyncio.Semaphore(max_concurrent) if max_concurrent > 0 else None
        self._closed = False

    def update(self, uid: str) -> None:
        if self._closed:
            return
        w = self._workers.get(uid)
        if w is None:
            w = self._workers[uid] = _Worker()
            w.task = asyncio.create_task(self._run(uid, w), name=f"pod-worker-{uid}")
        w.dirty.set()

    def update_all(self) -> None:
        for uid in list(self._workers):
            self.update(uid)

    def uids(self) -> list[str]:
        return list(self._workers)

    def busy(self, uid: str) -> bool:
        w = self._workers.get(uid)
        return w is not None and w.syncing

    async def close(self) -> None:
        self._closed = True
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._workers.clear()

    async def _run(self, uid: str, w: _Worker) -> None:
        errors = 0
        try:
            while True:
                w.dirty.clear()
                w.syncing = True
                try:
                    if self._sem is not None:
                        async with self._sem:
                            delay = await self.sync(uid)
                    else:
                        delay = await self.sync(uid)
                    errors = 0
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    errors += 1
                    delay = min(ERROR_BACKOFF * 2 ** (errors - 1), MAX_ERROR_BACKOFF)
                    log.warning("pod sync failed pod_uid=%s error=%s retry_in=%.1fs", uid, e, delay)
                finally:
                    w.syncing = False
                if delay is None:
                    if not w.dirty.is_set():
                        return
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(w.dirty.wait(), min(delay, self.resync))
        finally:
            if self._workers.get(uid) is w:
                del self._workers[uid]
