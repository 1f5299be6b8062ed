"""The apiserver's watch cache (services.apiserver.storage.watch_cache) fed by an in-memory etcd.

List/get at the cache's resourceVersion, watches from inside the window and from before it (Expired,
HTTP 410), bookmarks and progress notifications, selectors, slow watchers, and the etcd watch breaking
(compacted or unreachable): every client watch ends with an error and the cache re-lists.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pybernetes.api import kinds, selectors
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.errors import Expired, Unavailable
from services.apiserver.registry import strategy
from services.apiserver.storage import watch_cache
from services.apiserver.storage.etcd import Compacted, StorageUnavailable
from services.apiserver.storage.objects import object_key
from services.apiserver.storage.watch_cache import Event, WatchCache, Watcher
from tests.unit.etcd_fake import FakeEtcd, put, until

INFO = kinds.for_class(core.ConfigMap)
EVERYTHING = selectors.parse_label_selector("")
NO_FIELDS = selectors.parse_field_selector("", strategy.selectable_fields(INFO))


def cm(name: str, ns: str = "default", value: str = "v", labels: dict[str, str] | None = None) -> core.ConfigMap:
    c = core.ConfigMap()
    c.metadata.name, c.metadata.namespace = name, ns
    c.metadata.labels.update(labels or {})
    c.data["k"] = value
    return c


async def remove(etcd: FakeEtcd, name: str, ns: str = "default") -> int:
    return await etcd.delete(object_key(INFO, ns, name))


@pytest.fixture
async def etcd() -> FakeEtcd:
    return FakeEtcd()


@pytest.fixture
async def cache(etcd: FakeEtcd) -> AsyncIterator[WatchCache]:
    await put(etcd, cm("a"))
    await put(etcd, cm("b", ns="other"))
    c = WatchCache(etcd, INFO, strategy.fields_fn(INFO), capacity=4, bookmark_interval=3600)
    c.start()
    await until(c.ready.is_set)
    yield c
    await c.stop()


async def caught_up(cache: WatchCache, etcd: FakeEtcd) -> None:
    await until(lambda: cache.rv >= etcd.rev)


def drain(w: Watcher) -> list[Event]:
    out = []
    while not w.queue.empty():
        out.append(w.queue.get_nowait())
    return out


def summary(events: list[Event]) -> list[tuple[str, str, int]]:
    """(type, name, rv) per event; the name decoded from the bytes the client gets."""
    out = []
    for e in events:
        name = core.ConfigMap.FromString(e.raw).metadata.name if e.type not in ("BOOKMARK", "ERROR") else ""
        out.append((e.type, name, e.rv))
    return out


def watch(cache: WatchCache, rv: int | None, *, ns: str = "", labels: str = "", bookmarks: bool = False) -> Watcher:
    return cache.watch(rv, ns, selectors.parse_label_selector(labels), NO_FIELDS, bookmarks)


# -- list and get ---------------------------------------------------------------------------------------


async def test_list_and_get_reflect_etcd_at_the_cache_version(cache: WatchCache, etcd: FakeEtcd) -> None:
    assert cache.rv == etcd.rev
    assert [c.obj.metadata.name for c in cache.list("", EVERYTHING, NO_FIELDS)] == ["a", "b"]
    assert [c.obj.metadata.name for c in cache.list("other", EVERYTHING, NO_FIELDS)] == ["b"]
    rv = await put(etcd, cm("a", value="new"))
    await caught_up(cache, etcd)
    got = cache.get(object_key(INFO, "default", "a"))
    assert got is not None and got.rv == rv
    # the bytes served carry the version as resourceVersion
    served = core.ConfigMap.FromString(got.raw)
    assert served.metadata.resource_version == str(rv) and served.data["k"] == "new"
    await remove(etcd, "a")
    await caught_up(cache, etcd)
    assert cache.get(object_key(INFO, "default", "a")) is None
    assert cache.rv == etcd.rev


async def test_wait_for_rv_wakes_when_the_watch_reaches_it(cache: WatchCache, etcd: FakeEtcd) -> None:
    await cache.wait_for_rv(cache.rv)  # already there: returns at once
    rv = await put(etcd, cm("c"))
    await cache.wait_for_rv(rv)
    assert cache.get(object_key(INFO, "default", "c")) is not None


# -- watch ----------------------------------------------------------------------------------------------


async def test_watch_without_version_sends_current_state_then_changes(cache: WatchCache, etcd: FakeEtcd) -> None:
    start = cache.rv
    w = watch(cache, None)
    rv = await put(etcd, cm("c"))
    await caught_up(cache, etcd)
    assert summary(drain(w)) == [("ADDED", "a", start - 1), ("ADDED", "b", start), ("ADDED", "c", rv)]


async def test_watch_from_a_version_in_the_window_resumes_after_it(cache: WatchCache, etcd: FakeEtcd) -> None:
    r1 = await put(etcd, cm("a", value="1"))
    r2 = await put(etcd, cm("c"))
    r3 = await remove(etcd, "a")
    await caught_up(cache, etcd)
    w = watch(cache, r1)  # the client saw r1: it gets what came after
    assert summary(drain(w)) == [("ADDED", "c", r2), ("DELETED", "a", r3)]
    # a DELETED event carries the object's last state with the deletion's version
    deleted = core.ConfigMap.FromString(watch(cache, r2).queue.get_nowait().raw)
    assert deleted.data["k"] == "1" and deleted.metadata.resource_version == str(r3)
    r4 = await put(etcd, cm("d"))
    await caught_up(cache, etcd)
    assert summary(drain(w)) == [("ADDED", "d", r4)]


async def test_watch_from_before_the_window_is_expired(cache: WatchCache, etcd: FakeEtcd) -> None:
    first = cache.rv
    for i in range(6):  # capacity 4: the oldest changes leave the window
        await put(etcd, cm(f"x{i}"))
    await caught_up(cache, etcd)
    assert cache.window_start > first
    with pytest.raises(Expired):
        watch(cache, first)
    w = watch(cache, cache.window_start)  # the oldest version still covered
    assert len(drain(w)) == 4


async def test_the_window_keeps_the_last_75_seconds_not_a_fixed_count(etcd: FakeEtcd) -> None:
    """As kube-apiserver's eventFreshDuration: changes older than 75 s leave the window once more than
    MIN_WINDOW newer ones exist, so its memory follows the write rate; a watch resumed within 75 s is served."""
    now = [1000.0]
    c = WatchCache(etcd, INFO, strategy.fields_fn(INFO), capacity=10_000, bookmark_interval=3600,
                   clock=lambda: now[0])
    c.start()
    try:
        await until(c.ready.is_set)
        old = await put(etcd, cm("old"))
        for i in range(watch_cache.MIN_WINDOW):
            await put(etcd, cm(f"busy{i}"))
        await caught_up(c, etcd)
        assert c.window_start < old  # younger than 75 s: every change kept
        now[0] += watch_cache.EVENT_FRESH_SECONDS - 1
        recent = await put(etcd, cm("recent"))
        now[0] += 2  # the first 101 changes are now 76 s old
        for i in range(3):
            await put(etcd, cm(f"late{i}"))
        await caught_up(c, etcd)
        assert len(c.window) == watch_cache.MIN_WINDOW  # the newest 100: 'recent' and the late ones, 96 busy
        with pytest.raises(Expired):
            watch(c, old)
        assert summary(drain(watch(c, recent)))[0][1] == "late0"
    finally:
        await c.stop()


async def test_watch_filters_by_namespace_and_labels(cache: WatchCache, etcd: FakeEtcd) -> None:
    w = watch(cache, cache.rv, ns="default", labels="app=web")
    r1 = await put(etcd, cm("web", labels={"app": "web"}))
    await put(etcd, cm("db", labels={"app": "db"}))
    await put(etcd, cm("web", ns="other", labels={"app": "web"}))
    r2 = await put(etcd, cm("web", labels={"app": "web", "tier": "front"}))
    r3 = await put(etcd, cm("web", labels={"app": "gone"}))  # leaves the selection: DELETED for this watcher
    r4 = await put(etcd, cm("db", labels={"app": "web"}))  # enters it: ADDED
    await caught_up(cache, etcd)
    assert summary(drain(w)) == [("ADDED", "web", r1), ("MODIFIED", "web", r2), ("DELETED", "web", r3),
                                 ("ADDED", "db", r4)]


async def test_watchers_of_one_view_share_each_event_and_its_encoding(cache: WatchCache, etcd: FakeEtcd) -> None:
    # A thousand informers of one resource cost one decision and one encoding per change (kube's cachingObject).
    same = [watch(cache, cache.rv, ns="default", labels="app=web") for _ in range(3)]
    other = watch(cache, cache.rv, ns="default")  # another view: its own scope, its own event
    assert same[0].scope is same[1].scope is same[2].scope
    assert other.scope is not same[0].scope
    r1 = await put(etcd, cm("web", labels={"app": "web"}))
    await caught_up(cache, etcd)
    got = [drain(w) for w in same]
    assert [summary(g) for g in got] == [[("ADDED", "web", r1)]] * 3
    assert got[0][0] is got[1][0] is got[2][0]
    (mine,) = drain(other)
    assert summary([mine]) == [("ADDED", "web", r1)] and mine is not got[0][0]
    made: list[str] = []

    def encode(ev: Event) -> str:
        made.append(ev.type)
        return f"{ev.type}:{ev.rv}"

    assert [g[0].encoded("json", encode) for g in got] == [f"ADDED:{r1}"] * 3
    assert made == ["ADDED"]  # made once for the three watchers
    assert got[0][0].encoded("other", encode) == f"ADDED:{r1}" and made == ["ADDED", "ADDED"]
    # a scope goes with its last watcher
    view = ("default", selectors.parse_label_selector("app=web"), NO_FIELDS)
    for w in same:
        cache.unwatch(w)
    assert view in cache._scopes
    del w, same, got
    assert view not in cache._scopes


async def test_bookmarks_only_for_watchers_that_ask(cache: WatchCache, etcd: FakeEtcd) -> None:
    with_bm = watch(cache, cache.rv, bookmarks=True)
    without = watch(cache, cache.rv)
    etcd.rev += 5  # writes elsewhere in etcd (other resources) move the revision
    etcd.progress()  # etcd's progress notification: nothing of ours up to there
    await caught_up(cache, etcd)
    cache.send_bookmarks()
    assert [(e.type, e.rv) for e in drain(with_bm)] == [("BOOKMARK", etcd.rev)]
    assert drain(without) == []
    # a client resuming from the bookmark's version misses nothing
    rv = await put(etcd, cm("c"))
    await caught_up(cache, etcd)
    assert summary(drain(watch(cache, etcd.rev - 1))) == [("ADDED", "c", rv)]


async def test_a_watcher_too_far_behind_is_closed_with_an_error(cache: WatchCache, etcd: FakeEtcd,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Watcher, "MAX_PENDING", 2)
    slow = watch(cache, cache.rv)
    for i in range(3):
        await put(etcd, cm(f"x{i}"))
    await caught_up(cache, etcd)
    events = drain(slow)
    assert [e.type for e in events] == ["ADDED", "ADDED", "ERROR"]
    assert isinstance(events[-1].error, Unavailable)
    assert slow not in cache.watchers


# -- the etcd watch breaking ----------------------------------------------------------------------------


@pytest.mark.parametrize("failure", [Compacted(0), StorageUnavailable("stream broke")],
                         ids=["compacted", "unavailable"])
async def test_broken_etcd_watch_fails_client_watches_and_relists(cache: WatchCache, etcd: FakeEtcd,
                                                                  failure: Exception) -> None:
    w = watch(cache, cache.rv)
    before = cache.rv
    etcd.break_watches(failure)
    await until(lambda: w.closed)
    events = drain(w)
    assert [e.type for e in events] == ["ERROR"]  # never a silent stop
    assert isinstance(events[0].error, Unavailable)
    # While the cache is down, etcd moves on and compacts the history the cache had.
    await remove(etcd, "a")
    rv = await put(etcd, cm("c"))
    await etcd.compact(etcd.rev)
    await until(lambda: cache.ready.is_set() and cache.rv == etcd.rev)  # re-listed (after its short backoff)
    assert sorted(c.obj.metadata.name for c in cache.list("", EVERYTHING, NO_FIELDS)) == ["b", "c"]  # "a" is gone
    assert cache.get(object_key(INFO, "default", "c")).rv == rv
    assert etcd.watch_starts[-1] == rv + 1  # the new etcd watch starts after the list
    # Clients resuming from before the re-list cannot be served the gap: they must re-list too.
    with pytest.raises(Expired):
        watch(cache, before)
    w2 = watch(cache, cache.rv)
    r2 = await put(etcd, cm("d"))
    await caught_up(cache, etcd)
    assert summary(drain(w2)) == [("ADDED", "d", r2)]


async def test_stop_closes_every_watcher(etcd: FakeEtcd) -> None:
    c = WatchCache(etcd, INFO, strategy.fields_fn(INFO), bookmark_interval=3600)
    with pytest.raises(Unavailable):
        watch(c, None)  # not listed yet
    c.start()
    await until(c.ready.is_set)
    w = watch(c, None)
    await c.stop()
    assert [e.type for e in drain(w)] == ["ERROR"] and etcd.streams == []


PODS = kinds.for_class(core.Pod)


def pod(name: str, node: str) -> core.Pod:
    p = core.Pod()
    p.metadata.name, p.metadata.namespace = name, "default"
    p.spec.node_name = node
    return p


async def remove_pod(etcd: FakeEtcd, name: str) -> None:
    await etcd.delete(object_key(PODS, "default", name))


def pod_events(w: Watcher) -> list[tuple[str, str, str]]:
    """(type, name, node) per event."""
    out = []
    for e in drain(w):
        p = core.Pod.FromString(e.raw)
        out.append((e.type, p.metadata.name, p.spec.node_name))
    return out


async def test_pod_watchers_pinned_to_a_node_get_that_nodes_pods_only(etcd: FakeEtcd) -> None:
    """The spec.nodeName trigger index: a pod change reaches the watchers of its old and new node and the unindexed
    ones (no field selector, a != selector, another field), as the same watches without the index would."""
    c = WatchCache(etcd, PODS, strategy.fields_fn(PODS), bookmark_interval=3600)
    c.start()
    await until(c.ready.is_set)
    allowed = strategy.selectable_fields(PODS)

    def watch(fs: str) -> Watcher:
        return c.watch(c.rv, "", EVERYTHING, selectors.parse_field_selector(fs, allowed), False)

    try:
        a, b, unbound = watch("spec.nodeName=a"), watch("spec.nodeName=b"), watch("spec.nodeName=")
        everyone, not_a, by_ns = watch(""), watch("spec.nodeName!=a"), watch("metadata.namespace=default")
        await put(etcd, pod("p", ""))  # created unscheduled
        await put(etcd, pod("p", "a"))  # bound to a
        await put(etcd, pod("q", "b"))
        await remove_pod(etcd, "p")
        await until(lambda: c.rv >= etcd.rev)
        assert pod_events(a) == [("ADDED", "p", "a"), ("DELETED", "p", "a")]
        assert pod_events(b) == [("ADDED", "q", "b")]
        assert pod_events(unbound) == [("ADDED", "p", ""), ("DELETED", "p", "a")]  # it left the view when bound
        full = [("ADDED", "p", ""), ("MODIFIED", "p", "a"), ("ADDED", "q", "b"), ("DELETED", "p", "a")]
        assert pod_events(everyone) == full
        assert pod_events(by_ns) == full
        assert pod_events(not_a) == [("ADDED", "p", ""), ("DELETED", "p", "a"), ("ADDED", "q", "b")]
        c.unwatch(a)
        await put(etcd, pod("r", "a"))
        await until(lambda: c.rv >= etcd.rev)
        assert pod_events(a) == []
        assert c._by_trigger.keys() == {"b", ""}  # a's entry went with its last watcher
    finally:
        await c.stop()
