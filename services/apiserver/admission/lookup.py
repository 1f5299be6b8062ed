"""Reads for admission plugins: an object from the watch cache, with a quorum read from etcd when the cache does
not have it yet (it may lag a write made just before); a namespace's policy objects (LimitRanges,
ResourceQuotas) from the watch cache once it has seen this apiserver's last write of their kind (one made just
before, by the same script as the pods they govern, counts), or from etcd itself (`list_live`).
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
    """The object (the cache's own: read it, never change it), or None; `live`: ask etcd when the cache has none."""
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


async def list_live(store: Store, cls: type[M], namespace: str) -> list[Stored]:
    """Every object of `cls` in `namespace` as etcd has it now, with its resourceVersion, in name order."""
    info = kinds.for_class(cls)
    kvs, _, _, _ = await store.list_from_etcd(info, namespace, 0, "")
    return [Stored(decode(info, value, rv), rv) for _, value, rv in kvs]


async def list_fresh(store: Store, cls: type[M], namespace: str) -> list[Stored]:
    """Copies of every object of `cls` in `namespace` from the watch cache, once the cache has caught up with the
    last write of the kind made through this apiserver, in name order."""
    info = kinds.for_class(cls)
    cache = store.cache(info)
    await cache.wait_ready()
    await cache.wait_for_rv(store.written_rv(info))
    out = []
    for c in cache.list(namespace, EVERYTHING, FieldSelector()):
        if isinstance(c.obj, cls):
            obj = cls()
            obj.CopyFrom(c.obj)  # the cache's objects are shared: never handed out to be changed
            out.append(Stored(obj, c.rv))
    return out
