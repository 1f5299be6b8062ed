"""EtcdClient against a real etcd: guarded writes, pagination, compaction, watch, outages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pybernetes.ports import free_port
from services.apiserver.storage.embedded import EmbeddedEtcd
from services.apiserver.storage.etcd import (
    Compacted,
    EtcdClient,
    KeyExists,
    KeyNotFound,
    RevisionMismatch,
    StorageUnavailable,
    WatchBatch,
    WatchEvent,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(etcd: EmbeddedEtcd) -> AsyncIterator[EtcdClient]:
    c = EtcdClient([etcd.endpoint], timeout=2.0)
    yield c
    await c.close()


async def next_batch(it: AsyncIterator[WatchBatch], *, skip_progress: bool = True) -> WatchBatch:
    while True:
        b = await asyncio.wait_for(anext(it), 10)
        if b.events or not skip_progress:
            return b


async def test_create_and_conflict(client: EtcdClient) -> None:
    rev = await client.create(b"/r/a", b"v1")
    kv = await client.get(b"/r/a")
    assert kv is not None
    assert (kv.value, kv.create_revision, kv.mod_revision, kv.version) == (b"v1", rev, rev, 1)
    with pytest.raises(KeyExists):
        await client.create(b"/r/a", b"v2")
    kv2 = await client.get(b"/r/a")
    assert kv2 == kv
    assert await client.get(b"/r/missing") is None


async def test_update_with_stale_revision_changes_nothing(client: EtcdClient) -> None:
    rev1 = await client.create(b"/r/u", b"v1")
    rev2 = await client.update(b"/r/u", b"v2", rev1)
    assert rev2 > rev1
    with pytest.raises(RevisionMismatch) as ei:
        await client.update(b"/r/u", b"v3", rev1)
    assert ei.value.current is not None
    assert (ei.value.current.value, ei.value.current.mod_revision) == (b"v2", rev2)
    kv = await client.get(b"/r/u")
    assert kv is not None and (kv.value, kv.mod_revision, kv.version) == (b"v2", rev2, 2)
    assert await client.current_revision() == rev2
    with pytest.raises(RevisionMismatch) as ei2:
        await client.update(b"/r/nope", b"x", 5)
    assert ei2.value.current is None
    assert await client.get(b"/r/nope") is None


async def test_delete_with_precondition(client: EtcdClient) -> None:
    rev1 = await client.create(b"/r/d", b"v1")
    rev2 = await client.update(b"/r/d", b"v2", rev1)
    with pytest.raises(RevisionMismatch) as ei:
        await client.delete(b"/r/d", expected_mod_revision=rev1)
    assert ei.value.current is not None and ei.value.current.mod_revision == rev2
    assert await client.get(b"/r/d") is not None
    rev3 = await client.delete(b"/r/d", expected_mod_revision=rev2)
    assert rev3 == rev2 + 1
    assert await client.get(b"/r/d") is None
    with pytest.raises(KeyNotFound):
        await client.delete(b"/r/d", expected_mod_revision=rev2)
    with pytest.raises(KeyNotFound):
        await client.delete(b"/r/d")
    await client.create(b"/r/d2", b"x")
    await client.delete(b"/r/d2")
    assert await client.get(b"/r/d2") is None


async def test_prefix_range_pagination(client: EtcdClient) -> None:
    keys = [f"/p/item-{i:02d}".encode() for i in range(7)]
    for k in keys:
        await client.create(k, b"v-" + k)
    await client.create(b"/pz/outside", b"x")  # shares the text prefix "/p" but not "/p/"
    first = await client.range(b"/p/", prefix=True, limit=3)
    assert [kv.key for kv in first.kvs] == keys[:3]
    assert first.more and first.count == 7
    # A write after the first page must not leak into later pages read at first.revision.
    await client.create(b"/p/item-99", b"late")
    seen = [kv.key for kv in first.kvs]
    page = first
    while page.more:
        page = await client.range(
            b"/p/", prefix=True, limit=3, revision=first.revision, keys_from=page.kvs[-1].key + b"\x00"
        )
        assert page.revision == first.revision
        seen += [kv.key for kv in page.kvs]
    assert seen == keys
    everything = await client.range(b"/p/", prefix=True)
    assert [kv.key for kv in everything.kvs] == [*keys, b"/p/item-99"]
    assert not everything.more
    single = await client.range(keys[2], prefix=False)
    assert [kv.value for kv in single.kvs] == [b"v-" + keys[2]]


async def test_range_at_compacted_revision(client: EtcdClient) -> None:
    rev1 = await client.create(b"/c/a", b"1")
    rev2 = await client.update(b"/c/a", b"2", rev1)
    old = await client.range(b"/c/", prefix=True, revision=rev1)
    assert [kv.value for kv in old.kvs] == [b"1"]
    await client.compact(rev2)
    with pytest.raises(Compacted) as ei:
        await client.range(b"/c/", prefix=True, revision=rev1)
    assert ei.value.compact_revision == rev2
    now = await client.range(b"/c/", prefix=True, revision=rev2)
    assert [kv.value for kv in now.kvs] == [b"2"]
    with pytest.raises(Compacted):
        await client.compact(rev1)


async def test_watch_from_revision_sees_ordered_events_with_prev_kv(client: EtcdClient) -> None:
    rev1 = await client.create(b"/w/a", b"1")
    rev2 = await client.update(b"/w/a", b"2", rev1)
    await client.create(b"/other/x", b"ignored")
    rev3 = await client.delete(b"/w/a", expected_mod_revision=rev2)
    it = client.watch(b"/w/", rev1).__aiter__()
    try:
        events: list[WatchEvent] = []
        while len(events) < 3:
            events += (await next_batch(it)).events
        assert [(e.type, e.kv.key, e.kv.mod_revision) for e in events] == [
            ("PUT", b"/w/a", rev1),
            ("PUT", b"/w/a", rev2),
            ("DELETE", b"/w/a", rev3),
        ]
        assert events[0].prev_kv is None
        assert events[1].prev_kv is not None and events[1].prev_kv.value == b"1"
        assert events[2].prev_kv is not None and events[2].prev_kv.value == b"2"
        # Live events after catch-up.
        rev4 = await client.create(b"/w/b", b"live")
        live = await next_batch(it)
        assert [(e.type, e.kv.key, e.kv.value, e.kv.mod_revision) for e in live.events] == [
            ("PUT", b"/w/b", b"live", rev4)
        ]
        assert live.revision >= rev4
    finally:
        await it.aclose()  # type: ignore[attr-defined]


async def test_watch_progress_notification_carries_revision(etcd: EmbeddedEtcd) -> None:
    # The fixture's etcd sends progress notifications every second to synced watchers.
    c = EtcdClient([etcd.endpoint])
    try:
        rev = await c.create(b"/pn/a", b"x")
        it = c.watch(b"/pn-quiet/", rev + 1).__aiter__()
        try:
            b = await next_batch(it, skip_progress=False)
            assert b.events == [] and b.revision >= rev
        finally:
            await it.aclose()  # type: ignore[attr-defined]
    finally:
        await c.close()


async def test_watch_from_compacted_revision(client: EtcdClient) -> None:
    rev1 = await client.create(b"/wc/a", b"1")
    rev2 = await client.update(b"/wc/a", b"2", rev1)
    await client.compact(rev2)
    with pytest.raises(Compacted) as ei:
        async for _ in client.watch(b"/wc/", rev1):
            pass
    assert ei.value.compact_revision == rev2


async def test_outage_fails_fast_and_restart_keeps_state(etcd: EmbeddedEtcd, client: EtcdClient) -> None:
    rev = await client.create(b"/o/a", b"kept")
    it = client.watch(b"/o/", rev + 1).__aiter__()
    pending = asyncio.ensure_future(anext(it))
    await client.create(b"/o/b", b"seen")
    first = await asyncio.wait_for(pending, 10)
    assert [e.kv.key for e in first.events] == [b"/o/b"]

    pending = asyncio.ensure_future(next_batch(it))
    await etcd.kill()
    with pytest.raises(StorageUnavailable):
        await asyncio.wait_for(pending, 10)  # the generous bound only turns a hang into a failure
    with pytest.raises(StorageUnavailable):
        await client.get(b"/o/a")
    with pytest.raises(StorageUnavailable):
        await client.create(b"/o/c", b"lost")
    with pytest.raises(StorageUnavailable):
        async for _ in client.watch(b"/o/", 0):
            pass

    await etcd.start()
    fresh = EtcdClient([etcd.endpoint])
    try:
        kv = await fresh.get(b"/o/a")
        assert kv is not None and kv.value == b"kept"
        page = await fresh.range(b"/o/", prefix=True)
        assert [k.key for k in page.kvs] == [b"/o/a", b"/o/b"]
    finally:
        await fresh.close()
    # The old client's channel reconnects on its own as well.
    for _ in range(100):
        try:
            assert (await client.get(b"/o/b")) is not None
            break
        except StorageUnavailable:
            await asyncio.sleep(0.1)
    else:
        pytest.fail("old client never reconnected")


async def test_multiple_endpoints_tries_in_order(etcd: EmbeddedEtcd) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    c = EtcdClient([dead, etcd.endpoint])
    try:
        await c.create(b"/m/a", b"1")
        st = await c.status()
        assert st.version.startswith("3.") and st.revision >= 2 and st.leader != 0
    finally:
        await c.close()
