"""Client-side caches (client-go tools/cache): Store + indexers, Reflector, SharedInformer, Lister,
InformerFactory. Cached objects are shared: never mutate them, copy first."""

from pybernetes.api.objects import split_key
from pybernetes.cache.factory import ClientListerWatcher, InformerFactory, ListWatchClient
from pybernetes.cache.informer import HandlerRegistration, SharedInformer
from pybernetes.cache.lister import Lister
from pybernetes.cache.reflector import (
    ADDED,
    BOOKMARK,
    DELETED,
    MODIFIED,
    DeletedFinalStateUnknown,
    EventSink,
    ListerWatcher,
    ListResult,
    Reflector,
    WatchEvent,
)
from pybernetes.cache.store import (
    NAMESPACE_INDEX,
    CacheMutationError,
    IndexFunc,
    Store,
)

__all__ = [
    "ADDED",
    "BOOKMARK",
    "DELETED",
    "MODIFIED",
    "NAMESPACE_INDEX",
    "CacheMutationError",
    "ClientListerWatcher",
    "DeletedFinalStateUnknown",
    "EventSink",
    "HandlerRegistration",
    "IndexFunc",
    "InformerFactory",
    "ListResult",
    "ListWatchClient",
    "Lister",
    "ListerWatcher",
    "Reflector",
    "SharedInformer",
    "Store",
    "WatchEvent",
    "split_key",
]
