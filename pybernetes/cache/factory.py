"""InformerFactory: builds and shares one SharedInformer per (kind, namespace, selectors).

Callers: every component that watches the API creates one factory over the real `pybernetes.client` and
hands informers/listers to its controllers (the controller-manager's and scheduler's main(), the kubelet,
pb-proxy, the lab's Prometheus file_sd sync).
`ClientListerWatcher` adapts the client's list/watch to the Reflector's ListerWatcher protocol.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Generic, Protocol, cast

from pybernetes.cache.informer import SharedInformer
from pybernetes.cache.lister import Lister
from pybernetes.cache.reflector import ListResult, WatchEvent
from pybernetes.cache.store import M
from pybernetes.clock import Clock

log = logging.getLogger(__name__)

# Watches are closed by the server after a random 5..10 minutes so that load spreads out and
# connections through proxies never go stale (client-go's minWatchTimeout).
MIN_WATCH_TIMEOUT = 300


class ListWatchClient(Protocol):
    """What the factory needs from `pybernetes.client`: list returns `.items`/`.resource_version`;
    watch returns (or resolves to) an async iterator of events with `.type` and `.object`."""

    def list(
        self, cls: type[Any], /, *, namespace: str, label_selector: str, field_selector: str,
        resource_version: str, limit: int,
    ) -> Awaitable[Any]: ...

    def watch(
        self, cls: type[Any], /, *, namespace: str, label_selector: str, field_selector: str,
        resource_version: str, allow_bookmarks: bool, timeout_seconds: int,
    ) -> Any: ...


class ClientListerWatcher(Generic[M]):
    def __init__(
        self, client: ListWatchClient, cls: type[M], *, namespace: str = "", label_selector: str = "",
        field_selector: str = "",
    ) -> None:
        self.client = client
        self.cls = cls
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector

    async def list(self, *, resource_version: str) -> ListResult[M]:
        result = await self.client.list(
            self.cls, namespace=self.namespace, label_selector=self.label_selector,
            field_selector=self.field_selector, resource_version=resource_version, limit=0,
        )
        rv = getattr(result, "resource_version", None)
        if rv is None:
            rv = result.metadata.resource_version
        return ListResult(items=list(result.items), resource_version=str(rv))

    async def watch(self, *, resource_version: str) -> AsyncIterator[WatchEvent[M]]:
        stream = self.client.watch(
            self.cls, namespace=self.namespace, label_selector=self.label_selector,
            field_selector=self.field_selector, resource_version=resource_version, allow_bookmarks=True,
            timeout_seconds=int(MIN_WATCH_TIMEOUT * (1 + random.random())),
        )
        if inspect.isawaitable(stream):
            stream = await stream
        try:
            async for event in stream:
                yield WatchEvent(type=_event_type(event.type), object=cast(M, event.object))
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()


def _event_type(t: object) -> str:
    if isinstance(t, str):
        return t.upper()
    name = getattr(t, "name", None)
    return str(name if isinstance(name, str) else t).upper()


InformerKey = tuple[type[Any], str, str, str]


class InformerFactory:
    def __init__(
        self,
        client: ListWatchClient,
        *,
        namespace: str = "",
        resync_period: float = 0.0,
        clock: Clock | None = None,
        detect_mutations: bool | None = None,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.resync_period = resync_period
        self.clock = clock
        self.detect_mutations = detect_mutations
        self._informers: dict[InformerKey, SharedInformer[Any]] = {}

    def informer_for(
        self,
        cls: type[M],
        *,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        resync_period: float | None = None,
    ) -> SharedInformer[M]:
        """The shared informer for this kind and filter, created on first request (not started)."""
        ns = self.namespace if namespace is None else namespace
        key: InformerKey = (cls, ns, label_selector, field_selector)
        informer = self._informers.get(key)
        if informer is None:
            lw = ClientListerWatcher(self.client, cls, namespace=ns, label_selector=label_selector,
                                     field_selector=field_selector)
            name = "/".join(p for p in (cls.__name__, ns, label_selector, field_selector) if p)
            informer = SharedInformer(
                lw, name=name, clock=self.clock, detect_mutations=self.detect_mutations,
                resync_period=self.resync_period if resync_period is None else resync_period,
            )
            self._informers[key] = informer
        return cast(SharedInformer[M], informer)

    def lister_for(
        self, cls: type[M], *, namespace: str | None = None, label_selector: str = "",
        field_selector: str = "",
    ) -> Lister[M]:
        return self.informer_for(cls, namespace=namespace, label_selector=label_selector,
                                 field_selector=field_selector).lister()

    def informers(self) -> list[SharedInformer[Any]]:
        return list(self._informers.values())

    def start(self) -> None:
        """Start every informer requested so far that is not running yet (call again after adding)."""
        for informer in self._informers.values():
            if not informer.started():
                informer.start()

    async def wait_for_cache_sync(self) -> dict[str, bool]:
        """Wait for every started informer's first list; informer name -> synced."""
        started = [i for i in self._informers.values() if i.started()]
        results = await asyncio.gather(*(i.wait_for_sync() for i in started))
        return {i.name: ok for i, ok in zip(started, results, strict=True)}

    async def shutdown(self) -> None:
        await asyncio.gather(*(i.stop() for i in self._informers.values()))
