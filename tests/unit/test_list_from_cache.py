"""Lists served from the apiserver's watch cache (Rest.list), as Kubernetes 1.31+ serves them (ConsistentListFromCache).

A list with no resourceVersion is a consistent read: it must hold every write acknowledged before it. It is
answered from the cache once the cache holds this apiserver's last write of the kind, without a range on etcd;
a page of it continues from etcd at the cache's revision (a snapshot: later writes stay out of later pages); a
cache that cannot catch up leaves the read to etcd. resourceVersion=0 ("any version") is always the cache's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from pybernetes import errors
from pybernetes.api import kinds
from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver.admission.chain import Chain
from services.apiserver.registry import strategy
from services.apiserver.rest import ListResult, Rest
from services.apiserver.storage.store import Store
from tests.unit.etcd_fake import FakeEtcd, until


class CountingEtcd(FakeEtcd):
    """FakeEtcd that counts the ranges on ConfigMaps (the reads a list from the cache must not make)."""

    def __init__(self) -> None:
        super().__init__()
        self.configmap_ranges = 0

    async def range(self, prefix_or_key: bytes, **kw: Any) -> Any:
        if prefix_or_key.startswith(b"/registry/configmaps/"):
            self.configmap_ranges += 1
        return await super().range(prefix_or_key, **kw)


@pytest.fixture
async def api() -> AsyncIterator[tuple[Rest, CountingEtcd]]:
    etcd = CountingEtcd()
    store = Store(etcd, {i.plural: strategy.fields_fn(i) for i in kinds.RESOURCES}, bookmark_interval=3600)
    store.start()
    await until(store.cache(kinds.for_class(core.ConfigMap)).ready.is_set)
    etcd.configmap_ranges = 0  # the cache's own first list
    yield Rest(store, admission=Chain([])), etcd
    await store.stop()


async def create(rest: Rest, name: str) -> None:
    c = core.ConfigMap()
    c.metadata.name = name
    await rest.create("configmaps", "default", c.SerializeToString())


def names(result: ListResult) -> list[str]:
    return [core.ConfigMap.FromString(raw).metadata.name for raw in result.items]


async def list_cms(rest: Rest, resource_version: str = "", limit: int = 0, continue_: str = "") -> ListResult:
    return await rest.list("configmaps", "default", "", "", limit, continue_, resource_version)


async def test_a_consistent_list_holds_the_write_just_acknowledged_without_reading_etcd(
        api: tuple[Rest, CountingEtcd]) -> None:
    rest, etcd = api
    for name in ("b", "a", "c"):
        await create(rest, name)
        # Right after the write's answer: the cache may not have seen it yet, and the list waits for it.
        assert name in names(await list_cms(rest))
    out = await list_cms(rest)
    assert names(out) == ["a", "b", "c"]  # etcd's key order
    assert etcd.configmap_ranges == 0
    assert int(out.resource_version) >= rest.store.written_rv(kinds.for_class(core.ConfigMap))
    assert names(await list_cms(rest, "0")) == ["a", "b", "c"]
    assert etcd.configmap_ranges == 0


async def test_a_page_from_the_cache_continues_from_etcd_at_the_same_revision(api: tuple[Rest, CountingEtcd]) -> None:
    rest, etcd = api
    for i in range(5):
        await create(rest, f"cm-{i}")
    first = await list_cms(rest, limit=2)
    assert names(first) == ["cm-0", "cm-1"]
    assert first.continue_ and first.remaining == 3
    assert etcd.configmap_ranges == 0
    await create(rest, "cm-2a")  # after the first page: a snapshot leaves it out of the next ones
    second = await list_cms(rest, limit=2, continue_=first.continue_)
    third = await list_cms(rest, limit=2, continue_=second.continue_)
    assert names(second) + names(third) == ["cm-2", "cm-3", "cm-4"]
    assert not third.continue_
    assert etcd.configmap_ranges == 2
    assert "cm-2a" in names(await list_cms(rest))


async def test_any_version_ignores_the_limits_continue_token(api: tuple[Rest, CountingEtcd]) -> None:
    rest, _ = api
    for i in range(3):
        await create(rest, f"cm-{i}")
    await list_cms(rest)  # once the cache holds them: "any version" does not wait for it
    out = await list_cms(rest, "0", limit=2)
    assert names(out) == ["cm-0", "cm-1"]
    assert out.continue_ == ""


async def test_a_cache_that_cannot_catch_up_leaves_the_consistent_read_to_etcd(
        api: tuple[Rest, CountingEtcd], monkeypatch: pytest.MonkeyPatch) -> None:
    rest, etcd = api
    await create(rest, "a")
    cache = rest.store.cache(kinds.for_class(core.ConfigMap))

    async def behind(rv: int, timeout: float = 3.0) -> None:
        raise errors.Unavailable(f"watch cache for configmaps is behind (want {rv})")

    monkeypatch.setattr(cache, "wait_for_rv", behind)
    assert names(await list_cms(rest)) == ["a"]
    assert etcd.configmap_ranges == 1
