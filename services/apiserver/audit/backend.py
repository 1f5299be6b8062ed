"""Where audit events go: JSON lines in a file rotated by size (kube-apiserver's --audit-log-path,
--audit-log-maxsize, --audit-log-maxbackup, --audit-log-maxage; `-` is stdout).

Requests never wait on the disk: `process` puts the event on a bounded queue and returns; one task drains it
in batches and writes each batch in a worker thread. A full queue drops the event and counts it in
apiserver_audit_error_total{plugin="log"} (and logs once per burst), so a loss is never silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import Counter

log = logging.getLogger("pybernetes.apiserver.audit")

EVENTS = Counter("apiserver_audit_event_total", "Audit events generated and sent to the audit backend.")
ERRORS = Counter("apiserver_audit_error_total", "Audit events that failed to be audited (dropped or unwritten), "
                 "by plugin.", ["plugin"])

QUEUE_SIZE = 10_000  # kube's --audit-log-batch-buffer-size default
BATCH = 400  # kube's --audit-log-batch-max-size default for the batch mode
DEFAULT_MAX_MB = 100  # lumberjack's size when --audit-log-maxsize is 0


class LogBackend:
    def __init__(self, path: str, *, max_size_mb: int = 0, max_backups: int = 0, max_age_days: int = 0,
                 queue_size: int = QUEUE_SIZE, max_bytes: int | None = None) -> None:
        self.path = None if path == "-" else Path(path)
        self.max_bytes = max_bytes or (max_size_mb or DEFAULT_MAX_MB) * 1024 * 1024
        self.max_backups = max_backups
        self.max_age = max_age_days * 86400
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(queue_size)
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None
        self._size = 0

    def start(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._size = self.path.stat().st_size if self.path.exists() else 0
        self._task = asyncio.create_task(self._run(), name="audit-log")

    async def stop(self) -> None:
        """Write what is queued (each event counts as done once it is on disk), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), 10)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        rest = self._drain()
        if rest:
            await asyncio.to_thread(self._write, rest)
            for _ in rest:
                self.queue.task_done()

    def process(self, event: dict[str, Any]) -> None:
        """Queue one event; never blocks. The event must not change afterwards."""
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            ERRORS.labels("log").inc()
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("audit queue full: events dropped total=%d (apiserver_audit_error_total)", self.dropped)
            return
        EVENTS.inc()

    async def flush(self) -> None:
        """Wait until every queued event is written (tests, shutdown)."""
        await self.queue.join()

    def _drain(self) -> list[dict[str, Any]]:
        """Up to a batch of queued events (the caller marks them done once written)."""
        out: list[dict[str, Any]] = []
        while len(out) < BATCH:
            try:
                out.append(self.queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return out

    async def _run(self) -> None:
        while True:
            first = await self.queue.get()
            batch = [first, *self._drain()]
            try:
                await asyncio.to_thread(self._write, batch)
            except OSError as e:
                ERRORS.labels("log").inc(len(batch))
                log.error("audit log write failed path=%s events=%d: %s", self.path, len(batch), e)
            finally:
                for _ in batch:
                    self.queue.task_done()

    # -- in the worker thread ---------------------------------------------------------------------------

    def _write(self, batch: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in batch).encode()
        if self.path is None:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return
        if self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
        # 0600 as lumberjack (kube-apiserver's writer) creates it: the log names every user and object.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as f:
            f.write(data)
        self._size += len(data)

    def _rotate(self) -> None:
        """Move the log aside as <name>-<time>.<ext> (lumberjack's naming, as kube-apiserver's), then keep
        at most max_backups of those, none older than max_age."""
        assert self.path is not None
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S.%f")[:-3]
        target = self.path.with_name(f"{self.path.stem}-{stamp}{self.path.suffix}")
        n = 0
        while target.exists():  # two rotations within a millisecond: never overwrite a backup
            n += 1
            target = self.path.with_name(f"{self.path.stem}-{stamp}-{n}{self.path.suffix}")
        self.path.rename(target)
        self._size = 0
        backups = sorted(self.path.parent.glob(f"{self.path.stem}-*{self.path.suffix}"), reverse=True)
        now = time.time()
        for i, b in enumerate(backups):
            too_many = bool(self.max_backups) and i >= self.max_backups
            if too_many or (self.max_age and now - b.stat().st_mtime > self.max_age):
                b.unlink(missing_ok=True)
