"""The indexed object cache behind informers (client-go tools/cache thread-safe store + indexers).

Callers: Reflector (writes), SharedInformer (owns one), Lister (reads), controllers via
`by_index`. Keys are `objects.key`: `namespace/name` (`name` for cluster-scoped objects). One event loop owns
the store, so there are no locks. Objects are shared by every reader and must never be mutated:
copy (`CopyFrom`) before changing. The optional mutation detector (tests, or env
PYBERNETES_CACHE_MUTATION_DETECTOR=1) snapshots each object on insert and `check_mutations()`
raises if a cached object changed since.
"""

from __future__ import annotations

import builtins
import copy
import os
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from pybernetes.api import objects
from pybernetes.api.objects import KubeObject

M = TypeVar("M", bound=KubeObject)

IndexFunc = Callable[[M], list[str]]
NAMESPACE_INDEX = "namespace"


def namespace_index(obj: KubeObject) -> list[str]:
    return [obj.metadata.namespace]


class CacheMutationError(AssertionError):
    """A cached object was modified in place: some caller forgot to copy before mutating."""


def _snapshot(obj: object) -> object:
    # Protobuf messages: deterministic bytes are cheap and exact; anything else: a deep copy.
    serialize = getattr(obj, "SerializeToString", None)
    if serialize is not None:
        return serialize(deterministic=True)
    return copy.deepcopy(obj)


class Store(Generic[M]):
    def __init__(
        self,
        *,
        key_func: Callable[[M], str] = objects.key,
        indexers: dict[str, IndexFunc[M]] | None = None,
        detect_mutations: bool | None = None,
    ) -> None:
        self.key_func = key_func
        self._items: dict[str, M] = {}
        self._indexers: dict[str, IndexFunc[M]] = {NAMESPACE_INDEX: namespace_index}
        # index name -> index value -> keys
        self._indices: dict[str, dict[str, set[str]]] = {NAMESPACE_INDEX: {}}
        if detect_mutations is None:
            detect_mutations = os.environ.get("PYBERNETES_CACHE_MUTATION_DETECTOR", "") not in ("", "0")
        self.detect_mutations = detect_mutations
        self._snapshots: dict[str, tuple[M, object]] = {}
        # Replaced/deleted objects stay checked for a while: handlers receive them as `old`.
        self._retired: deque[tuple[str, M, object]] = deque(maxlen=1024)
        for name, fn in (indexers or {}).items():
            self.add_indexer(name, fn)

    # -- indexers -------------------------------------------------------------------------------

    def add_indexer(self, name: str, fn: IndexFunc[M]) -> None:
        if name in self._indexers and name != NAMESPACE_INDEX:
            raise ValueError(f"indexer {name!r} already exists")
        self._indexers[name] = fn
        index: dict[str, set[str]] = {}
        self._indices[name] = index
        for key, obj in self._items.items():
            for value in fn(obj):
                index.setdefault(value, set()).add(key)

    def has_indexer(self, name: str) -> bool:
        return name in self._indexers

    def by_index(self, index_name: str, value: str) -> list[M]:
        keys = self._index(index_name).get(value, set())
        return [self._items[k] for k in sorted(keys)]

    def index_keys(self, index_name: str, value: str) -> list[str]:
        return sorted(self._index(index_name).get(value, set()))

    def list_index_values(self, index_name: str) -> list[str]:
        return sorted(v for v, keys in self._index(index_name).items() if keys)

    def _index(self, index_name: str) -> dict[str, set[str]]:
        try:
            return self._indices[index_name]
        except KeyError:
            raise KeyError(f"no indexer named {index_name!r}") from None

    # -- reads ----------------------------------------------------------------------------------

    def get(self, obj: M) -> M | None:
        return self._items.get(self.key_func(obj))

    def get_by_key(self, key: str) -> M | None:
        return self._items.get(key)

    def list(self) -> list[M]:
        return list(self._items.values())

    def list_keys(self) -> builtins.list[str]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    # -- writes ---------------------------------------------------------------------------------

    def add(self, obj: M) -> M | None:
        """Insert or replace; returns the object previously stored under the same key."""
        key = self.key_func(obj)
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
            self._retire(key)
        self._items[key] = obj
        self._index_obj(key, obj)
        if self.detect_mutations:
            self._snapshots[key] = (obj, _snapshot(obj))
        return old

    update = add

    def delete(self, obj: M) -> M | None:
        return self.delete_key(self.key_func(obj))

    def delete_key(self, key: str) -> M | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
            self._retire(key)
        return old

    def replace(self, items: Iterable[M]) -> None:
        """Swap the whole content (no events; the Reflector computes deltas itself)."""
        for key in list(self._items):
            self.delete_key(key)
        for obj in items:
            self.add(obj)

    # -- mutation detector ----------------------------------------------------------------------

    def check_mutations(self) -> None:
        """Raise CacheMutationError if any cached (or recently replaced) object changed in place."""
        if not self.detect_mutations:
            return
        checked = [(key, obj, snap) for key, (obj, snap) in self._snapshots.items()]
        checked.extend(self._retired)
        for key, obj, snap in checked:
            if _snapshot(obj) != snap:
                raise CacheMutationError(f"cached object {key} was mutated in place; copy it before changing")

    def _retire(self, key: str) -> None:
        entry = self._snapshots.pop(key, None)
        if entry is not None:
            self._retired.append((key, entry[0], entry[1]))

    def _index_obj(self, key: str, obj: M) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            for value in fn(obj):
                index.setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: M) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            for value in fn(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]

