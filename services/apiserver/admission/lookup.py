"""Reads for admission plugins: an object from the watch cache, with a quorum read from etcd when the cache does
not have it yet (it may lag a write made just before); a namespace's policy objects (LimitRanges,
ResourceQuotas: few, and just created by the same script as the pods they govern) from etcd itself.
"""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import Message

from pybernetes import errors
from pybernetes.api import kinds
from pybernetes.api.selectors import EVERYTHING, FieldSelector

from ..storage.objects import object_key
from ..storage.store import Store, Stored, decode

M = TypeVar("M", bound=Message)


async def get(store: Store, cls: type[M], namespace: str, name: str, *, live: bool = True) -> M | None:
    """The object, or None; `live`: ask etcd when the cache has none."""
    info = kinds.for_class(cls)
    cache = store.cache(info)
    await cache.wait_ready()
    c = cache.get(object_key(info, namespace, name))
    if c is not None and isinstance(c.obj, cls):
        return c.obj
    if not live:
        return None
    try:
        obj = (await store.get(info, namespace, name)).obj
    except errors.NotFound:
        return None
    return obj if isinstance(obj, cls) else None


async def list_in(store: Store, cls: type[M], namespace: str) -> list[M]:
    """Every cached object of `cls` in `namespace`."""
    info = kinds.for_class(cls)
    cache = store.cache(info)
    await cache.wait_ready()
    return [c.obj for c in cache.list(namespace, EVERYTHING, FieldSelector()) if isinstance(c.obj, cls)]


async def list_live(store: Store, cls: type[M], namespace: str) -> list[Stored]:
    """Every object of `cls` in `namespace` as etcd has it now, with its resourceVersion, in name order."""
    info = kinds.for_class(cls)
    kvs, _, _, _ = await store.list_from_etcd(info, namespace, 0, "")
    return [Stored(decode(info, value, rv), rv) for _, value, rv in kvs]
