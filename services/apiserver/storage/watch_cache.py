"""One resource's watch cache: a single etcd watch fanned out to every client watcher.

Holds the current objects (served to `resourceVersion=0` lists and to the initial ADDED events of a
watch) and a window of recent events, so a client can resume from a version it saw. The window keeps the
changes of the last EVENT_FRESH_SECONDS (at least MIN_WINDOW of them, at most `capacity`), as kube-apiserver's
watch cache keeps at least its eventFreshDuration: memory follows the write rate, not a fixed count that a
quiet resource would take hours to fill. A version older than the window answers Expired (HTTP 410 in
Kubernetes): the client re-lists. When the etcd watch
breaks, every client watcher gets an error (never a silent stop), the cache re-lists and resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import weakref
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from time import monotonic, perf_counter
from typing import Any, TypeVar, cast

from google.protobuf.message import Message

from pybernetes.api.kinds import ResourceInfo
from pybernetes.api.selectors import FieldSelector, LabelSelector
from pybernetes.errors import Expired, Unavailable

from .. import metrics
from ..options import DEFAULT_BOOKMARK_INTERVAL
from .encryption import Transformer
from .etcd import Compacted, EtcdClient, StorageError, StorageUnavailable
from .objects import Cached, resource_prefix, rv_suffix, with_rv

log = logging.getLogger("pybernetes.apiserver.watchcache")

FieldsFn = Callable[[Message], dict[str, str]]
T = TypeVar("T")

# Kubernetes' cacher triggers (registry/core/pod: NodeNameTriggerFunc): per resource, the field whose '='
# selectors index the watchers, so a change goes to the watchers of its object's value (new and old) and to the
# unindexed ones instead of to every watcher. Each kubelet watches spec.nodeName=<its node>: without the index
# every pod change was matched against every node's watcher, a cost per change growing with the cluster.
TRIGGER_FIELDS: dict[str, str] = {"pods": "spec.nodeName"}


@dataclass(slots=True)
class Event:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
    raw: bytes
    rv: int
    error: Exception | None = None
    # A frontend's encodings of this event, made once for all the watchers it goes to (kube's cachingObject).
    _encoded: dict[Hashable, Any] | None = None

    def encoded(self, key: Hashable, make: Callable[[Event], T]) -> T:
        """make(self), made once per key: watchers that share this event share its encoding."""
        if self._encoded is None:
            self._encoded = {}
        elif key in self._encoded:
            return cast(T, self._encoded[key])
        out = self._encoded[key] = make(self)
        return out


# kube-apiserver's DefaultEventFreshDuration (bookmark frequency + 15 s) and its smallest window
# (defaultLowerBoundCapacity): a watch resumed within 75 s of its last event or bookmark never needs a re-list.
EVENT_FRESH_SECONDS = DEFAULT_BOOKMARK_INTERVAL + 15.0
MIN_WINDOW = 100


@dataclass(slots=True)
class _Change:
    rv: int
    cur: Cached | None
    prev: Cached | None
    at: float = 0.0  # when the cache recorded it (the cache's clock)


class Scope:
    """What a watcher sees: a namespace (or all) and two selectors. Watchers that ask for the same view share one
    Scope (WatchCache.watch), so a change is matched, and its event made, once for all of them: a thousand
    informers on the same resource cost one decision per change, not a thousand."""

    __slots__ = ("__weakref__", "fields", "labels", "namespace")

    def __init__(self, namespace: str, labels: LabelSelector, fields: FieldSelector) -> None:
        self.namespace = namespace
        self.labels = labels
        self.fields = fields

    def matches(self, c: Cached | None) -> bool:
        if c is None:
            return False
        if self.namespace and c.namespace != self.namespace:
            return False
        return self.labels.matches(c.labels) and self.fields.matches(c.fields)

    def event(self, ch: _Change) -> Event | None:
        """The event `ch` makes in this view: ADDED or MODIFIED when the object is (still) in it, DELETED when it
        left it (deleted, or no longer matching: its last state at the new version), None when it was never in it."""
        cur_ok, prev_ok = self.matches(ch.cur), self.matches(ch.prev)
        if cur_ok:
            assert ch.cur is not None
            return Event("MODIFIED" if prev_ok else "ADDED", ch.cur.raw, ch.rv)
        if prev_ok:
            assert ch.prev is not None
            raw = ch.cur.raw if ch.cur is not None else with_rv(_value(ch.prev), ch.rv)
            return Event("DELETED", raw, ch.rv)
        return None


class Watcher:
    """One client's view: a scope and a bounded queue of events for it."""

    MAX_PENDING = 100_000

    def __init__(self, scope: Scope, bookmarks: bool, after: int = 0) -> None:
        self.scope = scope
        # Changes at or before this version were already seen by the client (the cache may still be
        # catching up to the version it asked for).
        self.after = after
        self.bookmarks = bookmarks
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.closed = False
        self.trigger_value: str | None = None  # where WatchCache indexed it (None: with the unindexed)

    def send(self, ev: Event) -> None:
        if self.closed:
            return
        if self.queue.qsize() >= self.MAX_PENDING:
            # A consumer this far behind is dropped with an error; it resumes from its last version.
            self.close(Unavailable("watcher fell too far behind; watch again from the last resourceVersion"))
            return
        self.queue.put_nowait(ev)

    def close(self, error: Exception | None = None) -> None:
        if not self.closed:
            self.queue.put_nowait(Event("ERROR", b"", 0, error or Unavailable("watch closed")))
            self.closed = True


def _value(c: Cached) -> bytes:
    return c.raw[: len(c.raw) - len(rv_suffix(c.rv))]


def dispatch(w: Watcher, ch: _Change) -> None:
    if ch.rv > w.after and (ev := w.scope.event(ch)) is not None:
        w.send(ev)


class WatchCache:
    def __init__(self, etcd: EtcdClient, info: ResourceInfo, fields: FieldsFn, *, capacity: int = 10_000,
                 bookmark_interval: float = DEFAULT_BOOKMARK_INTERVAL, transformer: Transformer | None = None,
                 clock: Callable[[], float] = monotonic) -> None:
        self.etcd = etcd
        self.clock = clock
        self.info = info
        self.transformer = transformer  # encryption at rest: the cache holds decrypted objects
        self.fields = fields
        self.capacity = capacity
        self.bookmark_interval = bookmark_interval
        self.prefix = resource_prefix(info)
        self.state: dict[bytes, Cached] = {}
        self.window: deque[_Change] = deque()
        self.rv = 0  # every change up to here is reflected
        self.window_start = 0  # the window holds every change after this version
        self.watchers: set[Watcher] = set()  # all of them; indexed by TRIGGER_FIELDS below
        self.trigger = TRIGGER_FIELDS.get(info.plural)
        self._by_trigger: dict[str, set[Watcher]] = {}  # the trigger field's value -> watchers pinning it
        self._unindexed: set[Watcher] = set()
        # The scopes of the live watchers, by view; a scope goes when its last watcher does.
        self._scopes: weakref.WeakValueDictionary[tuple[str, LabelSelector, FieldSelector], Scope] = \
            weakref.WeakValueDictionary()
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._rv_waiters: list[tuple[int, asyncio.Future[None]]] = []
        # apiserver_storage_objects{resource}: kept equal to len(self.state) as it changes.
        self._objects = metrics.storage_objects(info.group_resource)
        # apiserver_registered_watchers{resource}: read at scrape (bench/soak.py checks watches end).
        metrics.REGISTERED_WATCHERS.labels(info.group_resource).set_function(lambda: len(self.watchers))
        self._list_duration = metrics.etcd_observer("list", info.group_resource)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"watchcache-{self.info.plural}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for w in list(self.watchers):
            w.close(Unavailable("apiserver shutting down"))

    async def _run(self) -> None:
        delay = 0.2
        while True:
            try:
                await self._list()
                delay = 0.2
                await self._watch()
            except asyncio.CancelledError:
                raise
            except (StorageUnavailable, Compacted, StorageError) as e:
                log.warning("watch cache broken resource=%s error=%s; re-listing", self.info.plural, e)
            except Exception:
                log.exception("watch cache failed resource=%s", self.info.plural)
            self._fail_all(Unavailable(f"storage watch for {self.info.plural} restarted; re-list"))
            await asyncio.sleep(delay * (1 + random.random() / 2))
            delay = min(delay * 2, 5.0)

    def _fail_all(self, err: Exception) -> None:
        self.ready.clear()
        for w in list(self.watchers):
            w.close(err)
        self.watchers.clear()
        self._by_trigger.clear()
        self._unindexed.clear()

    async def _list(self) -> None:
        t = perf_counter()
        try:
            res = await self.etcd.range(self.prefix, prefix=True)
        finally:
            if metrics.ENABLED:
                self._list_duration.observe(perf_counter() - t)
        state = {}
        for kv in res.kvs:
            state[kv.key] = Cached.from_value(self.info, kv.key, self._plain(kv.key, kv.value), kv.mod_revision,
                                              self.fields)
        self.state = state
        self._objects.set(len(state))
        self.rv = self.window_start = res.revision
        self.window.clear()
        self.ready.set()
        self._wake_rv_waiters()
        log.info("watch cache listed resource=%s objects=%d rv=%d", self.info.plural, len(state), self.rv)

    async def _watch(self) -> None:
        bookmark_at = asyncio.get_running_loop().time() + self.bookmark_interval
        async for batch in self.etcd.watch(self.prefix, self.rv + 1):
            for ev in batch.events:
                self._apply(ev.type, ev.kv.key, ev.kv.value, ev.kv.mod_revision)
            if batch.revision > self.rv and not batch.events:
                self.rv = batch.revision  # a progress notification: nothing missed up to here
            self._wake_rv_waiters()
            now = asyncio.get_running_loop().time()
            if now >= bookmark_at:
                bookmark_at = now + self.bookmark_interval
                self.send_bookmarks()

    def _apply(self, typ: str, key: bytes, value: bytes, mod_rev: int) -> None:
        prev = self.state.get(key)
        cur: Cached | None
        if typ == "PUT":
            cur = self.state[key] = Cached.from_value(self.info, key, self._plain(key, value), mod_rev, self.fields)
            rv = mod_rev
        else:
            cur = None
            self.state.pop(key, None)
            rv = mod_rev  # etcd sets the delete event's kv.mod_revision to the deletion revision
        if prev is None or cur is None:  # the count changed (modifications leave it as it was)
            self._objects.set(len(self.state))
        now = self.clock()
        ch = _Change(rv, cur, prev, now)
        self.window.append(ch)
        stale = now - EVENT_FRESH_SECONDS
        while len(self.window) > self.capacity or (len(self.window) > MIN_WINDOW and self.window[0].at < stale):
            self.window_start = self.window.popleft().rv
        self.rv = max(self.rv, rv)
        made: dict[Scope, Event | None] = {}  # one decision per scope, whatever the number of its watchers
        for w in self._targets(ch):
            if ch.rv > w.after:
                scope = w.scope
                if scope in made:
                    ev = made[scope]
                else:
                    ev = made[scope] = scope.event(ch)
                if ev is not None:
                    w.send(ev)
            if w.closed:
                self.unwatch(w)

    def _targets(self, ch: _Change) -> list[Watcher]:
        """The watchers `ch` may concern: the unindexed ones and those of its object's trigger value, old and new."""
        if self.trigger is None:
            return list(self.watchers)
        out = list(self._unindexed)
        for v in {c.fields.get(self.trigger, "") for c in (ch.cur, ch.prev) if c is not None}:
            out.extend(self._by_trigger.get(v, ()))
        return out

    def _plain(self, key: bytes, value: bytes) -> bytes:
        """The stored value decrypted; a DecryptError (a StorageError) re-lists after a delay, logged, as
        kube's reflector keeps retrying an undecryptable list."""
        return value if self.transformer is None else self.transformer.from_storage(key, value)[0]

    def send_bookmarks(self) -> None:
        if not self.rv:
            return
        ev = Event("BOOKMARK", rv_suffix(self.rv), self.rv)  # one event, and one encoding, for all of them
        for w in self.watchers:
            if w.bookmarks:
                w.send(ev)

    # -- reads -----------------------------------------------------------------------------------

    async def wait_ready(self, timeout: float = 3.0) -> None:
        if self.ready.is_set():
            return
        try:
            await asyncio.wait_for(self.ready.wait(), timeout)
        except TimeoutError:
            raise Unavailable(f"storage is not ready for {self.info.plural}: etcd unreachable?") from None

    async def wait_for_rv(self, rv: int, timeout: float = 3.0) -> None:
        if self.rv >= rv:
            return
        fut = asyncio.get_running_loop().create_future()
        self._rv_waiters.append((rv, fut))
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise Unavailable(f"watch cache for {self.info.plural} is behind (at {self.rv}, want {rv})") from None

    def _wake_rv_waiters(self) -> None:
        if not self._rv_waiters:
            return
        keep = []
        for rv, fut in self._rv_waiters:
            if fut.done():
                continue
            if self.rv >= rv:
                fut.set_result(None)
            else:
                keep.append((rv, fut))
        self._rv_waiters = keep

    def list(self, namespace: str, labels: LabelSelector, fields: FieldSelector) -> list[Cached]:
        """The objects (of `namespace`, unless empty) the selectors match, in etcd's key order."""
        state = self.state
        keys = sorted(state)
        if namespace and self.info.namespaced:
            prefix = self.prefix + namespace.encode() + b"/"
            keys = [k for k in keys if k.startswith(prefix)]
        if labels.empty() and fields.empty():  # the common list of everything: no match call per object
            return [state[k] for k in keys]
        return [c for c in map(state.__getitem__, keys) if labels.matches(c.labels) and fields.matches(c.fields)]

    def get(self, key: bytes) -> Cached | None:
        return self.state.get(key)

    def watch(self, rv: int | None, namespace: str, labels: LabelSelector, fields: FieldSelector,
              bookmarks: bool) -> Watcher:
        """Register a watcher; rv None means "current state as ADDED, then changes"."""
        if not self.ready.is_set():
            raise Unavailable(f"storage is not ready for {self.info.plural}: etcd unreachable?")
        view = (namespace, labels, fields)
        scope = self._scopes.get(view)
        if scope is None:
            scope = self._scopes[view] = Scope(namespace, labels, fields)
        w = Watcher(scope, bookmarks, after=rv or 0)
        if rv is None:
            for c in self.list(namespace, labels, fields):
                w.send(Event("ADDED", c.raw, c.rv))
        elif rv < self.window_start:
            raise Expired(f"too old resource version: {rv} ({self.window_start})")
        else:
            # Only the changes after rv, found from the newest end: a watch resumed at a recent version (every
            # informer re-watches when its watch times out) costs what it missed, not the whole window.
            newer: list[_Change] = []
            for ch in reversed(self.window):
                if ch.rv <= rv:
                    break
                newer.append(ch)
            for ch in reversed(newer):
                dispatch(w, ch)
        self.watchers.add(w)
        w.trigger_value = fields.value_of(self.trigger) if self.trigger is not None else None
        if w.trigger_value is None:
            self._unindexed.add(w)
        else:
            self._by_trigger.setdefault(w.trigger_value, set()).add(w)
        return w

    def unwatch(self, w: Watcher) -> None:
        self.watchers.discard(w)
        if w.trigger_value is None:
            self._unindexed.discard(w)
        elif (same := self._by_trigger.get(w.trigger_value)) is not None:
            same.discard(w)
            if not same:
                del self._by_trigger[w.trigger_value]
        w.closed = True
