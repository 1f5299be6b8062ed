"""The servicelb allocator with a cache that lags behind its own writes (pure, no apiserver)."""

from __future__ import annotations

from typing import Any

from pybernetes.api.core.v1 import core_pb2 as core
from services.controllers.servicelb import ServiceLBController, ingress_ips


def lb(name: str, rv: int) -> core.Service:
    s = core.Service()
    s.metadata.name, s.metadata.namespace, s.metadata.resource_version = name, "default", str(rv)
    s.spec.type = "LoadBalancer"
    return s


class LaggingCache:
    """Informer + lister whose contents change only when the test says so."""

    def __init__(self) -> None:
        self.items: dict[str, core.Service] = {}

    def lister(self) -> LaggingCache:
        return self

    def add_event_handler(self, *handlers: Any) -> None:
        pass

    def get(self, namespace: str, name: str) -> core.Service | None:
        return self.items.get(f"{namespace}/{name}")

    def list(self) -> list[core.Service]:
        return list(self.items.values())


class Factory:
    def __init__(self, cache: LaggingCache) -> None:
        self.cache = cache

    def informer_for(self, cls: type) -> LaggingCache:
        return self.cache


class Client:
    def __init__(self) -> None:
        self.rv = 100
        self.written: list[core.Service] = []

    async def update_status(self, obj: core.Service) -> core.Service:
        self.rv += 1
        out = core.Service()
        out.CopyFrom(obj)
        out.metadata.resource_version = str(self.rv)
        self.written.append(out)
        return out


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def event(self, obj: Any, type_: str, reason: str, message: str) -> None:
        self.events.append((reason, message))


async def test_back_to_back_syncs_never_share_an_address_while_the_cache_lags() -> None:
    cache, client, rec = LaggingCache(), Client(), Recorder()
    ctl = ServiceLBController(client, Factory(cache), rec, pool="10.0.0.1-10.0.0.2")  # type: ignore[arg-type]
    cache.items = {"default/a": lb("a", 1), "default/b": lb("b", 2), "default/c": lb("c", 3)}
    for key in ("default/a", "default/b", "default/c"):
        await ctl.sync(key)  # the cache never shows the writes in between
    assert [ingress_ips(s) for s in client.written] == [["10.0.0.1"], ["10.0.0.2"]]
    assert rec.events[-1][0] == "AllocationFailed"  # c: the pool is exhausted, not handed out twice
    # a is synced again before its write shows: nothing new is written.
    await ctl.sync("default/a")
    assert len(client.written) == 2

    # The cache catches up with a's write, then a is deleted: its address goes to c.
    cache.items["default/a"] = client.written[0]
    assert ctl.ips_of(cache.items["default/a"]) == ["10.0.0.1"]
    del cache.items["default/a"]
    ctl._on_delete(client.written[0])
    await ctl.sync("default/c")
    assert ingress_ips(client.written[-1]) == ["10.0.0.1"]
    assert client.written[-1].metadata.name == "c"


async def test_a_newer_cache_wins_over_what_was_written() -> None:
    cache, client = LaggingCache(), Client()
    ctl = ServiceLBController(client, Factory(cache), Recorder(), pool="10.0.0.1-10.0.0.2")  # type: ignore[arg-type]
    cache.items = {"default/a": lb("a", 1)}
    await ctl.sync("default/a")
    newer = lb("a", client.rv + 5)  # someone changed the Service after our write; its status has no address
    cache.items["default/a"] = newer
    assert ctl.ips_of(newer) == []
