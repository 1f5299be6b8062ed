"""Store, Reflector, SharedInformer, Lister and InformerFactory against an in-memory fake server."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from pybernetes.api.meta.v1.meta_pb2 import ObjectMeta
from pybernetes.cache import (
    ADDED,
    BOOKMARK,
    DELETED,
    MODIFIED,
    CacheMutationError,
    DeletedFinalStateUnknown,
    InformerFactory,
    ListResult,
    Reflector,
    SharedInformer,
    Store,
    WatchEvent,
    split_key,
)
from pybernetes.clock import FakeClock, settle
from pybernetes.errors import Expired

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")


@dataclass
class Thing:
    """A stand-in kind: protobuf metadata plus a payload, serialisable like a message."""

    metadata: ObjectMeta
    value: str = ""
    tags: list[str] = field(default_factory=list)

    def SerializeToString(self, deterministic: bool = False) -> bytes:
        body = "\0".join([self.value, *self.tags]).encode()
        return self.metadata.SerializeToString(deterministic=deterministic) + b"|" + body


def rv_of(obj: Thing) -> str:
    return obj.metadata.resource_version


_END = object()


class FakeServer:
    """An in-memory collection with a resourceVersion counter, watch history and compaction."""

    def __init__(self) -> None:
        self.rv = 0
        self.objects: dict[str, Thing] = {}
        self.history: list[tuple[int, WatchEvent[Thing]]] = []
        self.compacted = 0
        self.watchers: list[asyncio.Queue[object]] = []
        self.list_calls = 0
        self.watch_calls: list[str] = []
        self.fail_lists = False

    def _emit(self, type_: str, obj: Thing) -> None:
        ev = WatchEvent(type_, copy.deepcopy(obj))
        self.history.append((self.rv, ev))
        for q in self.watchers:
            q.put_nowait(ev)

    def create(self, ns: str, name: str, value: str = "") -> None:
        self.rv += 1
        obj = Thing(ObjectMeta(namespace=ns, name=name, resource_version=str(self.rv)), value)
        self.objects[f"{ns}/{name}" if ns else name] = obj
        self._emit(ADDED, obj)

    def update(self, ns: str, name: str, value: str) -> None:
        self.rv += 1
        obj = copy.deepcopy(self.objects[f"{ns}/{name}" if ns else name])
        obj.value = value
        obj.metadata.resource_version = str(self.rv)
        self.objects[f"{ns}/{name}" if ns else name] = obj
        self._emit(MODIFIED, obj)

    def delete(self, ns: str, name: str) -> None:
        self.rv += 1
        obj = copy.deepcopy(self.objects.pop(f"{ns}/{name}" if ns else name))
        obj.metadata.resource_version = str(self.rv)
        self._emit(DELETED, obj)

    def other_traffic(self, n: int) -> None:
        """Versions consumed by objects this watch does not see (other namespaces, selectors)."""
        self.rv += n

    def bookmark(self) -> None:
        ev = WatchEvent(BOOKMARK, Thing(ObjectMeta(resource_version=str(self.rv))))
        for q in self.watchers:
            q.put_nowait(ev)

    def compact(self) -> None:
        self.compacted = self.rv
        self.history.clear()

    def break_watches(self, exc: BaseException | None = None) -> None:
        for q in self.watchers:
            q.put_nowait(exc if exc is not None else _END)

    async def list(self, *, resource_version: str) -> ListResult[Thing]:
        await asyncio.sleep(0)
        self.list_calls += 1
        if self.fail_lists:
            raise ConnectionError("apiserver down")
        return ListResult([copy.deepcopy(o) for o in self.objects.values()], str(self.rv))

    async def watch(self, *, resource_version: str) -> AsyncIterator[WatchEvent[Thing]]:
        self.watch_calls.append(resource_version)
        start = int(resource_version or 0)
        if start < self.compacted:
            raise Expired(f"resourceVersion {start} is too old")
        q: asyncio.Queue[object] = asyncio.Queue()
        for ev_rv, ev in self.history:
            if ev_rv > start:
                q.put_nowait(ev)
        self.watchers.append(q)
        try:
            while True:
                item = await q.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, WatchEvent)
                yield item
        finally:
            self.watchers.remove(q)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []
        self.tombstones: list[DeletedFinalStateUnknown[Thing]] = []

    def on_add(self, obj: Thing) -> None:
        self.events.append(("add", obj.metadata.name, rv_of(obj)))

    def on_update(self, old: Thing, new: Thing) -> None:
        self.events.append(("update", new.metadata.name, f"{rv_of(old)}->{rv_of(new)}"))

    def on_delete(self, obj: Thing | DeletedFinalStateUnknown[Thing]) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            self.tombstones.append(obj)
            self.events.append(("tombstone", obj.obj.metadata.name, rv_of(obj.obj)))
        else:
            self.events.append(("delete", obj.metadata.name, rv_of(obj)))

    def register(self, informer: SharedInformer[Thing]) -> None:
        informer.add_event_handler(self.on_add, self.on_update, self.on_delete)


async def started(server: FakeServer, clock: FakeClock, **kw: Any) -> tuple[SharedInformer[Thing], Recorder]:
    informer: SharedInformer[Thing] = SharedInformer(server, name="things", clock=clock, **kw)
    rec = Recorder()
    rec.register(informer)
    informer.start()
    assert await asyncio.wait_for(informer.wait_for_sync(), 1)
    await settle()
    return informer, rec


# -- Store ---------------------------------------------------------------------------------------


def test_store_keys_indexes_and_replace() -> None:
    store: Store[Thing] = Store(indexers={"by_value": lambda o: [o.value]})
    a = Thing(ObjectMeta(namespace="ns1", name="a"), "red")
    b = Thing(ObjectMeta(namespace="ns2", name="b"), "red")
    node = Thing(ObjectMeta(name="n1"), "blue")
    for o in (a, b, node):
        store.add(o)
    assert sorted(store.list_keys()) == ["n1", "ns1/a", "ns2/b"]
    assert split_key("ns1/a") == ("ns1", "a") and split_key("n1") == ("", "n1")
    assert store.by_index("namespace", "ns1") == [a]
    assert store.by_index("by_value", "red") == [a, b]
    a2 = Thing(ObjectMeta(namespace="ns1", name="a"), "blue")
    assert store.update(a2) is a
    assert store.by_index("by_value", "red") == [b]
    assert store.index_keys("by_value", "blue") == ["n1", "ns1/a"]
    store.add_indexer("by_len", lambda o: [str(len(o.metadata.name))])
    assert len(store.by_index("by_len", "1")) == 2
    assert store.delete(b) is b and store.by_index("by_value", "red") == []
    store.replace([node])
    assert store.list() == [node] and store.by_index("namespace", "ns1") == []
    with pytest.raises(KeyError):
        store.by_index("nope", "x")


def test_mutation_detector_catches_in_place_changes() -> None:
    store: Store[Thing] = Store(detect_mutations=True)
    a = Thing(ObjectMeta(namespace="ns", name="a", resource_version="1"), "v")
    store.add(a)
    store.check_mutations()
    a.metadata.labels["sneaky"] = "yes"
    with pytest.raises(CacheMutationError, match="ns/a"):
        store.check_mutations()

    store2: Store[Thing] = Store(detect_mutations=True)
    old = Thing(ObjectMeta(namespace="ns", name="b", resource_version="1"), "v")
    store2.add(old)
    store2.add(Thing(ObjectMeta(namespace="ns", name="b", resource_version="2"), "w"))
    old.tags.append("changed after being replaced")  # handlers get `old` too: still checked
    with pytest.raises(CacheMutationError):
        store2.check_mutations()


# -- Reflector / SharedInformer ------------------------------------------------------------------


async def test_list_then_watch_delivers_events_in_order() -> None:
    server, clock = FakeServer(), FakeClock()
    server.create("ns1", "a", "1")
    server.create("ns2", "b", "1")
    informer, rec = await started(server, clock, detect_mutations=True)
    assert rec.events == [("add", "a", "1"), ("add", "b", "2")]
    assert server.watch_calls == ["2"]

    server.create("ns1", "c")
    server.update("ns1", "a", "2")
    server.delete("ns2", "b")
    server.update("ns1", "a", "3")
    await settle()
    assert rec.events[2:] == [
        ("add", "c", "3"),
        ("update", "a", "1->4"),
        ("delete", "b", "5"),
        ("update", "a", "4->6"),
    ]
    lister = informer.lister()
    got = lister.get("ns1", "a")
    assert got is not None and got.value == "3"
    assert lister.get("ns2", "b") is None
    assert [o.metadata.name for o in lister.list()] == ["a", "c"]
    assert [o.metadata.name for o in lister.list("ns1", lambda o: o.value == "3")] == ["a"]
    assert informer.last_sync_resource_version == "6"
    informer.store.check_mutations()
    await informer.stop()


async def test_expired_relists_and_tombstones_deletes_seen_only_by_relist() -> None:
    server, clock = FakeServer(), FakeClock()
    server.create("ns", "a", "1")
    server.create("ns", "b", "1")
    server.create("ns", "keep", "1")
    informer, rec = await started(server, clock)
    rec.events.clear()

    server.break_watches()  # stream ends; the reflector backs off before re-watching
    await settle()
    server.update("ns", "a", "2")
    server.delete("ns", "b")
    server.create("ns", "c")
    server.compact()  # history before now is gone: watching from rv 3 is Expired
    await clock.run_for(31)
    assert server.watch_calls == ["3", "3", "6"]
    assert server.list_calls == 2
    assert sorted(rec.events) == [("add", "c", "6"), ("tombstone", "b", "2"), ("update", "a", "1->4")]
    assert rec.tombstones[0].key == "ns/b"
    assert [o.metadata.name for o in informer.lister().list()] == ["a", "c", "keep"]
    await informer.stop()


async def test_stream_error_rewatches_from_last_rv_without_duplicates() -> None:
    server, clock = FakeServer(), FakeClock()
    server.create("ns", "a")
    informer, rec = await started(server, clock)
    server.create("ns", "b")
    await settle()
    server.break_watches(ConnectionResetError("connection reset"))
    await settle()
    server.create("ns", "c")  # happens while we are disconnected
    assert clock.pending() >= 1  # the reflector is sleeping its backoff
    await clock.run_for(2)  # initial backoff is 0.8 s plus at most 50 % jitter
    assert server.watch_calls == ["1", "2"]
    assert server.list_calls == 1
    server.update("ns", "a", "x")
    await settle()
    assert rec.events == [("add", "a", "1"), ("add", "b", "2"), ("add", "c", "3"), ("update", "a", "1->4")]
    await informer.stop()


async def test_bookmarks_advance_resource_version() -> None:
    server, clock = FakeServer(), FakeClock()
    server.create("ns", "a")
    informer, rec = await started(server, clock)
    server.other_traffic(10)
    server.bookmark()
    await settle()
    assert informer.last_sync_resource_version == "11"
    assert rec.events == [("add", "a", "1")], "bookmarks are not events"
    server.compact()  # versions up to 11 compacted: re-watching from the bookmark is still fine
    server.break_watches()
    await clock.run_for(2)
    assert server.watch_calls == ["1", "11"]
    assert server.list_calls == 1
    await informer.stop()


async def test_resync_calls_update_with_the_same_object() -> None:
    server, clock = FakeServer(), FakeClock()
    server.create("ns", "a")
    server.create("ns", "b")
    informer, _ = await started(server, clock, resync_period=30)
    seen: list[tuple[str, bool]] = []
    informer.add_event_handler(on_update=lambda old, new: seen.append((new.metadata.name, old is new)))
    await clock.run_for(29)
    assert seen == []
    await clock.run_for(1)
    assert sorted(seen) == [("a", True), ("b", True)]
    await clock.run_for(30)
    assert len(seen) == 4
    await informer.stop()


async def test_late_handler_gets_synthetic_adds_and_bad_handler_is_isolated() -> None:
    server, clock = FakeServer(), FakeClock()
    server.create("ns", "a")
    informer, rec = await started(server, clock)

    def broken(obj: Thing) -> None:
        raise RuntimeError("handler bug")

    informer.add_event_handler(on_add=broken)
    late = Recorder()
    late.register(informer)
    assert late.events == [("add", "a", "1")]
    server.create("ns", "b")
    await settle()
    assert late.events[-1] == ("add", "b", "2") and rec.events[-1] == ("add", "b", "2")
    await informer.stop()


async def test_informer_mutation_detector_catches_a_handler_mutating_cache() -> None:
    server, clock = FakeServer(), FakeClock()
    server.create("ns", "a")
    informer, _ = await started(server, clock, detect_mutations=True)
    obj = informer.lister().get("ns", "a")
    assert obj is not None
    obj.metadata.annotations["oops"] = "mutated the shared copy"
    with pytest.raises(CacheMutationError):
        informer.store.check_mutations()
    await informer.stop()


async def test_wait_for_sync_false_when_stopped_before_sync() -> None:
    server, clock = FakeServer(), FakeClock()
    server.fail_lists = True
    informer: SharedInformer[Thing] = SharedInformer(server, clock=clock)
    informer.start()
    waiter = asyncio.create_task(informer.wait_for_sync())
    await clock.run_for(100)
    assert server.list_calls > 2 and not waiter.done()
    await informer.stop()
    assert await waiter is False


def test_reflector_backoff_is_exponential_jittered_and_capped() -> None:
    r: Reflector[Thing] = Reflector(FakeServer(), Store(), rand=lambda: 1.0)
    assert [r.backoff(n) for n in (1, 2, 3)] == [pytest.approx(1.2), pytest.approx(2.4), pytest.approx(4.8)]
    assert r.backoff(10) == 30.0 and r.backoff(1000) == 30.0
    r0: Reflector[Thing] = Reflector(FakeServer(), Store(), rand=lambda: 0.0)
    assert r0.backoff(1) == pytest.approx(0.8)


# -- InformerFactory -----------------------------------------------------------------------------


@dataclass
class ClientList:
    items: list[Thing]
    resource_version: str


@dataclass
class ClientEvent:
    type: str
    object: Thing


class FakeClient:
    """The real client's shape: list/watch take the message class and selector keywords."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def list(self, cls: type[Any], *, namespace: str, label_selector: str, field_selector: str,
                   resource_version: str, limit: int) -> ClientList:
        self.calls.append(("list", {"cls": cls, "namespace": namespace, "label_selector": label_selector}))
        result = await self.server.list(resource_version=resource_version)
        return ClientList(result.items, result.resource_version)

    async def watch(self, cls: type[Any], *, namespace: str, label_selector: str, field_selector: str,
                    resource_version: str, allow_bookmarks: bool = True,
                    timeout_seconds: int = 0) -> AsyncIterator[ClientEvent]:
        self.calls.append(("watch", {"allow_bookmarks": allow_bookmarks, "timeout_seconds": timeout_seconds}))
        async for ev in self.server.watch(resource_version=resource_version):
            yield ClientEvent(ev.type, ev.object)


async def test_factory_shares_informers_and_adapts_the_client() -> None:
    server, clock = FakeServer(), FakeClock()
    server.create("ns", "a")
    client = FakeClient(server)
    factory = InformerFactory(client, clock=clock)
    inf = factory.informer_for(Thing, namespace="ns")
    assert factory.informer_for(Thing, namespace="ns") is inf
    assert factory.informer_for(Thing, namespace="ns", label_selector="app=x") is not inf
    lister = factory.lister_for(Thing, namespace="ns")
    factory.start()
    synced = await asyncio.wait_for(factory.wait_for_cache_sync(), 1)
    assert synced == {"Thing/ns": True, "Thing/ns/app=x": True}
    got = lister.get("ns", "a")
    assert got is not None and rv_of(got) == "1"
    server.update("ns", "a", "new")
    await settle()
    got = lister.get("ns", "a")
    assert got is not None and got.value == "new"
    list_call = next(kw for op, kw in client.calls if op == "list")
    assert list_call == {"cls": Thing, "namespace": "ns", "label_selector": ""}
    watch_call = next(kw for op, kw in client.calls if op == "watch")
    assert watch_call["allow_bookmarks"] is True and 300 <= watch_call["timeout_seconds"] <= 600
    await factory.shutdown()
