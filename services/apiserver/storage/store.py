"""Typed object storage over etcd: the apiserver's only path to its data.

Translates etcd outcomes into API errors at this boundary (KeyExists -> AlreadyExists,
RevisionMismatch -> Conflict, unreachable -> Unavailable, compacted -> Expired, too large -> TooLarge)
and owns one WatchCache per resource.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from time import perf_counter

from google.protobuf.message import Message
from prometheus_client import Histogram

from pybernetes import errors
from pybernetes.api import kinds
from pybernetes.api.kinds import ResourceInfo
from pybernetes.api.objects import meta_of

from .. import metrics
from ..options import DEFAULT_BOOKMARK_INTERVAL
from .encryption import DecryptError, Transformer
from .etcd import (
    Compacted,
    EtcdClient,
    KeyExists,
    KeyNotFound,
    RequestTooLarge,
    RevisionMismatch,
    StorageError,
    StorageUnavailable,
)
from .objects import object_key, resource_prefix, with_rv
from .watch_cache import FieldsFn, WatchCache

log = logging.getLogger("pybernetes.apiserver.storage")

# etcd's default --max-request-bytes is 1.5 MiB; refuse before etcd does, with a clear message.
MAX_OBJECT_BYTES = 1536 * 1024

_etcd_children: dict[tuple[str, str], Histogram] = {}


def observe_etcd(operation: str, info: ResourceInfo | str, start: float) -> None:
    """etcd_request_duration_seconds{operation, type}: type is the resource ("pods", "deployments.apps")."""
    if not metrics.ENABLED:
        return
    elapsed = perf_counter() - start
    key = (operation, info if isinstance(info, str) else info.plural)
    child = _etcd_children.get(key)
    if child is None:
        child = _etcd_children[key] = metrics.etcd_observer(
            operation, info if isinstance(info, str) else info.group_resource)
    child.observe(elapsed)


@contextlib.contextmanager
def translated(info: ResourceInfo, name: str = "") -> Iterator[None]:
    try:
        yield
    except KeyExists:
        raise errors.AlreadyExists(f'{info.group_resource} "{name}" already exists', kind=info.kind,
                                   name=name) from None
    except KeyNotFound:
        raise errors.NotFound(f'{info.group_resource} "{name}" not found', kind=info.kind, name=name) from None
    except RevisionMismatch:
        raise errors.Conflict(f'Operation cannot be fulfilled on {info.group_resource} "{name}": the object has '
                              "been modified; please apply your changes to the latest version and try again",
                              kind=info.kind, name=name) from None
    except RequestTooLarge as e:
        raise errors.TooLarge(f"etcdserver: request is too large ({e})") from None
    except Compacted as e:
        raise errors.Expired(f"The provided resource version is too old (compacted at {e.compact_revision}); "
                             "list again") from None
    except StorageUnavailable as e:
        raise errors.Unavailable(f"storage unavailable: {e}") from None
    except StorageError as e:
        raise errors.InternalError(f"storage error: {e}") from None


@dataclass
class Stored:
    obj: Message
    rv: int
    stale: bool = False  # read through an old encryption key or provider: the next write re-encrypts it
    current: bool = True  # False: the watch cache's copy (Store.suggested), which may be behind etcd


def encode(obj: Message) -> bytes:
    """Stored bytes: the object without its resourceVersion (the key's mod_revision is the version)."""
    md = meta_of(obj)
    rv = md.resource_version
    md.resource_version = ""
    try:
        return obj.SerializeToString()
    finally:
        md.resource_version = rv


def decode(info: ResourceInfo, value: bytes, rv: int) -> Message:
    return info.cls.FromString(with_rv(value, rv))


def encode_continue(rv: int, next_key: bytes) -> str:
    return base64.urlsafe_b64encode(json.dumps({"rv": rv, "start": next_key.decode()}).encode()).decode()


def decode_continue(token: str) -> tuple[int, bytes]:
    try:
        d = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(d["rv"]), str(d["start"]).encode()
    except (ValueError, KeyError, TypeError):
        raise errors.BadRequest("invalid continue token") from None


class Store:
    def __init__(self, etcd: EtcdClient, fields: dict[str, FieldsFn], *, cache_capacity: int = 10_000,
                 bookmark_interval: float = DEFAULT_BOOKMARK_INTERVAL,
                 transformers: dict[str, Transformer] | None = None) -> None:
        self.etcd = etcd
        # plural -> its encryption at rest (--encryption-provider-config); resources not named are stored plain.
        self.transformers = transformers or {}
        self._written: dict[str, int] = {}  # resource -> revision of the last write made through this store
        self.caches = {info.plural: WatchCache(etcd, info, fields[info.plural], capacity=cache_capacity,
                                               bookmark_interval=bookmark_interval,
                                               transformer=self.transformers.get(info.plural))
                       for info in kinds.RESOURCES if "watch" in info.verbs}

    def start(self) -> None:
        for c in self.caches.values():
            c.start()

    async def stop(self) -> None:
        for c in self.caches.values():
            await c.stop()

    def cache(self, info: ResourceInfo) -> WatchCache:
        return self.caches[info.plural]

    def written_rv(self, info: ResourceInfo) -> int:
        """The revision of this store's last write of `info`'s kind: a cache at it has seen that write."""
        return self._written.get(info.plural, 0)

    def _wrote(self, info: ResourceInfo, rv: int) -> int:
        if rv > self._written.get(info.plural, 0):
            self._written[info.plural] = rv
        return rv

    async def get(self, info: ResourceInfo, namespace: str, name: str) -> Stored:
        t = perf_counter()
        try:
            with translated(info, name):
                kv = await self.etcd.get(object_key(info, namespace, name))
        finally:
            observe_etcd("get", info, t)
        if kv is None:
            raise errors.NotFound(f'{info.group_resource} "{name}" not found', kind=info.kind, name=name)
        value, stale = self._from_storage(info, kv.key, kv.value)
        return Stored(decode(info, value, kv.mod_revision), kv.mod_revision, stale)

    def suggested(self, info: ResourceInfo, namespace: str, name: str) -> Stored | None:
        """The watch cache's copy of an object, decoded afresh (the caller may change it), or None: to update
        without reading etcd first, and to answer a GET at a resourceVersion (Rest.get).

        kube's cacher hands GuaranteedUpdate the same suggestion: the write is guarded by the copy's
        mod_revision, so a copy behind etcd fails it instead of overwriting, and the caller then reads etcd
        (Rest._guaranteed_update). An update then costs one etcd round trip instead of two."""
        cache = self.caches.get(info.plural)
        if cache is None or not cache.ready.is_set():
            return None
        c = cache.get(object_key(info, namespace, name))
        if c is None:
            return None
        return Stored(info.cls.FromString(c.raw), c.rv, current=False)  # a copy: the cache's own is shared

    async def create(self, info: ResourceInfo, obj: Message) -> int:
        md = meta_of(obj)
        key = object_key(info, md.namespace, md.name)
        value = self._to_storage(info, key, encode(obj))
        t = perf_counter()
        try:
            with translated(info, md.name):
                return self._wrote(info, await self.etcd.create(key, value))
        finally:
            observe_etcd("create", info, t)

    async def update(self, info: ResourceInfo, obj: Message, expected_rv: int) -> int:
        md = meta_of(obj)
        key = object_key(info, md.namespace, md.name)
        value = self._to_storage(info, key, encode(obj))
        t = perf_counter()
        try:
            with translated(info, md.name):
                return self._wrote(info, await self.etcd.update(key, value, expected_rv))
        finally:
            observe_etcd("update", info, t)

    async def delete(self, info: ResourceInfo, namespace: str, name: str, expected_rv: int) -> int:
        t = perf_counter()
        try:
            with translated(info, name):
                return self._wrote(info, await self.etcd.delete(object_key(info, namespace, name), expected_rv))
        finally:
            observe_etcd("delete", info, t)

    async def list_from_etcd(self, info: ResourceInfo, namespace: str, limit: int, continue_: str,
                             revision: int = 0) -> tuple[list[tuple[bytes, bytes, int]], int, str, int]:
        """(key, value, rv) triples of one page, the list's revision, the next token, remaining count.

        `revision` reads at that etcd revision (resourceVersionMatch=Exact); compacted away: Expired."""
        prefix = resource_prefix(info, namespace)
        rev, start = decode_continue(continue_) if continue_ else (revision, None)
        t = perf_counter()
        try:
            with translated(info):
                res = await self.etcd.range(prefix, prefix=True, limit=limit, revision=rev, keys_from=start)
        finally:
            observe_etcd("list", info, t)
        items = [(kv.key, self._from_storage(info, kv.key, kv.value)[0], kv.mod_revision) for kv in res.kvs]
        token = ""
        remaining = 0
        if res.more and items:
            token = encode_continue(res.revision, items[-1][0] + b"\x00")
            remaining = max(res.count - len(items), 0)
        return items, res.revision, token, remaining

    # -- raw claims (allocators): keys outside any resource's prefix ----------------------------

    async def claim(self, key: bytes, value: bytes) -> None:
        """Create `key` if absent; AlreadyExists when someone holds it."""
        t = perf_counter()
        try:
            await self.etcd.create(key, value)
        except KeyExists:
            raise errors.AlreadyExists(f"{key.decode()} is already allocated") from None
        except StorageUnavailable as e:
            raise errors.Unavailable(f"storage unavailable: {e}") from None
        finally:
            observe_etcd("create", "allocations", t)

    async def unclaim(self, key: bytes) -> None:
        t = perf_counter()
        try:
            await self.etcd.delete(key)
        except KeyNotFound:
            pass
        except StorageUnavailable as e:
            raise errors.Unavailable(f"storage unavailable: {e}") from None
        finally:
            observe_etcd("delete", "allocations", t)

    async def list_claims(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        t = perf_counter()
        try:
            res = await self.etcd.range(prefix, prefix=True)
        except StorageUnavailable as e:
            raise errors.Unavailable(f"storage unavailable: {e}") from None
        finally:
            observe_etcd("list", "allocations", t)
        return [(kv.key, kv.value) for kv in res.kvs]

    async def current_revision(self, info: ResourceInfo) -> int:
        t = perf_counter()
        try:
            with translated(info):
                return await self.etcd.current_revision()
        finally:
            observe_etcd("getCurrentResourceVersion", info, t)

    async def compact(self, revision: int) -> None:
        with contextlib.suppress(Compacted):
            await self.etcd.compact(revision)

    def _to_storage(self, info: ResourceInfo, key: bytes, value: bytes) -> bytes:
        self._check_size(value)
        t = self.transformers.get(info.plural)
        return value if t is None else t.to_storage(key, value)

    def _from_storage(self, info: ResourceInfo, key: bytes, value: bytes) -> tuple[bytes, bool]:
        t = self.transformers.get(info.plural)
        if t is None:
            return value, False
        try:
            return t.from_storage(key, value)
        except DecryptError as e:
            log.error("cannot decrypt stored object: %s", e)
            raise errors.InternalError(str(e)) from None

    @staticmethod
    def _check_size(value: bytes) -> None:
        if len(value) > MAX_OBJECT_BYTES:
            raise errors.TooLarge(f"object is {len(value)} bytes; the limit is {MAX_OBJECT_BYTES} bytes "
                                  "(etcd's request size limit)")


