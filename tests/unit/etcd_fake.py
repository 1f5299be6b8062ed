"""An in-memory etcd with the EtcdClient surface the apiserver's storage uses (unit tests only).

Keeps every revision (so reads at a revision and watches from one work), compaction, guarded
create/update/delete, and watch streams the test can feed progress notifications or break; `put` stores an
API object at its key as the apiserver's store would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from google.protobuf.message import Message

from pybernetes.api import kinds
from pybernetes.api.objects import meta_of
from services.apiserver.storage.etcd import (
    KV,
    Compacted,
    KeyExists,
    KeyNotFound,
    RangeResult,
    RevisionMismatch,
    WatchBatch,
    WatchEvent,
    prefix_end,
)
from services.apiserver.storage.objects import object_key
from services.apiserver.storage.store import encode


@dataclass
class _Change:
    rev: int
    key: bytes
    kv: KV | None  # None: deleted
    prev: KV | None


class FakeEtcd:
    def __init__(self) -> None:
        self.rev = 1  # etcd starts at revision 1
        self.compact_rev = 0
        self.kvs: dict[bytes, KV] = {}
        self.history: list[_Change] = []
        self.streams: list[asyncio.Queue[WatchBatch | Exception]] = []
        self.watch_starts: list[int] = []  # start revision of every watch opened

    # -- reads ----------------------------------------------------------------------------------

    def _state_at(self, revision: int) -> dict[bytes, KV]:
        if not revision or revision >= self.rev:
            return dict(self.kvs)
        if revision < self.compact_rev:
            raise Compacted(self.compact_rev)
        state: dict[bytes, KV] = {}
        for ch in self.history:
            if ch.rev > revision:
                break
            if ch.kv is None:
                state.pop(ch.key, None)
            else:
                state[ch.key] = ch.kv
        return state

    async def get(self, key: bytes) -> KV | None:
        return self.kvs.get(key)

    async def range(self, prefix_or_key: bytes, *, prefix: bool, limit: int = 0, revision: int = 0,
                    keys_from: bytes | None = None) -> RangeResult:
        state = self._state_at(revision)
        end = prefix_end(prefix_or_key) if prefix else prefix_or_key + b"\x00"
        start = keys_from if keys_from is not None else prefix_or_key
        keys = sorted(k for k in state if start <= k < end)
        page = keys[:limit] if limit else keys
        return RangeResult([state[k] for k in page], len(page) < len(keys), len(keys), revision or self.rev)

    async def current_revision(self) -> int:
        return self.rev

    # -- writes ---------------------------------------------------------------------------------

    def _commit(self, key: bytes, value: bytes | None) -> int:
        self.rev += 1
        prev = self.kvs.get(key)
        if value is None:
            del self.kvs[key]
            kv = None
            event_kv = KV(key, b"", 0, self.rev, 0)
        else:
            kv = KV(key, value, prev.create_revision if prev else self.rev, self.rev, (prev.version if prev else 0) + 1)
            self.kvs[key] = kv
            event_kv = kv
        self.history.append(_Change(self.rev, key, kv, prev))
        ev = WatchEvent("PUT" if kv is not None else "DELETE", event_kv, prev)
        for q in self.streams:
            q.put_nowait(WatchBatch([ev], self.rev))
        return self.rev

    async def create(self, key: bytes, value: bytes) -> int:
        if key in self.kvs:
            raise KeyExists(key.decode())
        return self._commit(key, value)

    async def update(self, key: bytes, value: bytes, expected_mod_revision: int) -> int:
        cur = self.kvs.get(key)
        if cur is None or cur.mod_revision != expected_mod_revision:
            raise RevisionMismatch(cur)
        return self._commit(key, value)

    async def delete(self, key: bytes, expected_mod_revision: int | None = None) -> int:
        cur = self.kvs.get(key)
        if cur is None:
            raise KeyNotFound(key.decode())
        if expected_mod_revision is not None and cur.mod_revision != expected_mod_revision:
            raise RevisionMismatch(cur)
        return self._commit(key, None)

    async def compact(self, revision: int, *, physical: bool = False) -> None:
        if revision <= self.compact_rev:
            raise Compacted(self.compact_rev)
        self.compact_rev = revision

    # -- watch ----------------------------------------------------------------------------------

    async def watch(self, prefix: bytes, start_revision: int, *, prefix_mode: bool = True,
                    progress_notify: bool = True) -> AsyncIterator[WatchBatch]:
        self.watch_starts.append(start_revision)
        if start_revision and start_revision < self.compact_rev:
            raise Compacted(self.compact_rev)
        end = prefix_end(prefix)
        q: asyncio.Queue[WatchBatch | Exception] = asyncio.Queue()
        for ch in self.history:  # what happened since start_revision first, as etcd replays it
            if ch.rev >= start_revision:
                kv = ch.kv if ch.kv is not None else KV(ch.key, b"", 0, ch.rev, 0)
                q.put_nowait(WatchBatch([WatchEvent("PUT" if ch.kv is not None else "DELETE", kv, ch.prev)],
                                        ch.rev))
        self.streams.append(q)
        try:
            while True:
                item = await q.get()
                if isinstance(item, Exception):
                    raise item
                events = [e for e in item.events if prefix <= e.kv.key < end]
                if events or not item.events:
                    yield WatchBatch(events, item.revision)
        finally:
            self.streams.remove(q)

    def progress(self) -> None:
        """A progress notification on every open watch: nothing happened up to the current revision."""
        for q in self.streams:
            q.put_nowait(WatchBatch([], self.rev))

    def break_watches(self, err: Exception) -> None:
        """Every open watch stream fails with `err` (e.g. Compacted after a compaction overtook it)."""
        for q in self.streams:
            q.put_nowait(err)


async def until(pred: Callable[[], bool], rounds: int = 1100) -> None:
    """Let the event loop run until `pred()` holds (fail if it never does); only after 100 idle rounds
    does it yield with short sleeps, for code that backs off on the real clock (the cache's re-list)."""
    for i in range(rounds):
        if pred():
            return
        await asyncio.sleep(0 if i < 100 else 0.005)
    raise AssertionError("condition never became true")


async def put(etcd: FakeEtcd, obj: Message) -> int:
    """Store `obj` at its kind's key: created, or updated over the current revision; the new revision."""
    md = meta_of(obj)
    key = object_key(kinds.for_class(type(obj)), md.namespace, md.name)
    cur = await etcd.get(key)
    if cur is None:
        return await etcd.create(key, encode(obj))
    return await etcd.update(key, encode(obj), cur.mod_revision)
