"""Listers: read-only views of an informer's Store, what controllers read instead of the apiserver.

Callers: controllers and the scheduler (via SharedInformer.lister() / InformerFactory.lister_for).
Returned objects are the shared cached instances: never mutate them, copy first.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Generic

from pybernetes.api.objects import key_for
from pybernetes.cache.store import NAMESPACE_INDEX, M, Store


class Lister(Generic[M]):
    def __init__(self, store: Store[M]) -> None:
        self._store = store

    def get(self, namespace: str, name: str) -> M | None:
        return self._store.get_by_key(key_for(namespace, name))

    def list(
        self, namespace: str | None = None, selector: Callable[[M], bool] | None = None
    ) -> builtins.list[M]:
        """Objects in `namespace` (all namespaces if None) that `selector` accepts, in key order."""
        if namespace is None:
            pairs = zip(self._store.list_keys(), self._store.list(), strict=True)
            objs = [obj for _, obj in sorted(pairs, key=lambda kv: kv[0])]
        else:
            objs = self._store.by_index(NAMESPACE_INDEX, namespace)
        return objs if selector is None else [o for o in objs if selector(o)]

    def by_index(self, index_name: str, value: str) -> builtins.list[M]:
        return self._store.by_index(index_name, value)
