"""An in-memory API client for controller unit tests: the Client calls controllers make, with the
apiserver's deletion semantics (finalizers hold a deleted object; Orphan/Foreground add theirs; the last
finalizer removed lets it go), recording every write as sample-controller's fake clientset does.

`watchers` get (old, new) for every change, with new None for a deletion, as an informer would deliver
them; tests wire them to a controller's event handlers, or with `deliver` to an InformerFactory's informers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from pybernetes import errors
from pybernetes.api import kinds
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.cache import InformerFactory

Key = tuple[str, str, str]  # kind, namespace, name
Watch = Callable[[Any, Any], None]  # (old or None, new or None)


@dataclass
class Listed:
    items: list[Any]


def _copy(obj: Any) -> Any:
    out = type(obj)()
    out.CopyFrom(obj)
    return out


def key_of(obj: Any) -> Key:
    return type(obj).__name__, obj.metadata.namespace, obj.metadata.name


def _held(obj: Any) -> bool:
    """Something still keeps a deleted object: metadata finalizers (or a namespace's spec.finalizers)."""
    if obj.metadata.finalizers:
        return True
    return isinstance(obj, core.Namespace) and bool(obj.spec.finalizers)


class FakeClient:
    def __init__(self) -> None:
        self.objects: dict[Key, Any] = {}
        self.actions: list[tuple[str, ...]] = []  # writes: (verb, kind, namespace/name[, detail])
        self.watchers: list[Watch] = []
        self.list_errors: dict[str, errors.ApiError] = {}  # kind -> error raised by list_all
        self._rv = 0
        self._uid = 0

    # -- test helpers ---------------------------------------------------------------------------

    def add(self, obj: Any) -> Any:
        """Create `obj` (uid given or generated) and tell the watchers."""
        obj = _copy(obj)
        if not obj.metadata.uid:
            self._uid += 1
            obj.metadata.uid = f"uid-{obj.metadata.name}-{self._uid}"
        self._store(None, obj)
        return _copy(obj)

    def obj(self, cls: type[Any], name: str, namespace: str = "") -> Any | None:
        o = self.objects.get((cls.__name__, namespace if kinds.for_class(cls).namespaced else "", name))
        return _copy(o) if o is not None else None

    def writes(self, verb: str = "") -> list[tuple[str, ...]]:
        return [a for a in self.actions if not verb or a[0] == verb]

    def _store(self, old: Any, new: Any) -> None:
        self._rv += 1
        new.metadata.resource_version = str(self._rv)
        self.objects[key_of(new)] = new
        for w in self.watchers:
            w(_copy(old) if old is not None else None, _copy(new))

    def _remove(self, old: Any) -> None:
        del self.objects[key_of(old)]
        for w in self.watchers:
            w(_copy(old), None)

    def _current(self, cls: type[Any], name: str, namespace: str) -> Any:
        ns = namespace if kinds.for_class(cls).namespaced else ""
        cur = self.objects.get((cls.__name__, ns, name))
        if cur is None:
            raise errors.NotFound(f'{cls.__name__} "{name}" not found')
        return cur

    # -- the Client surface ---------------------------------------------------------------------

    async def create(self, obj: Any, *, field_manager: str = "", **_: Any) -> Any:
        """Create as the apiserver does: generateName, uid, creationTimestamp (the write counter)."""
        obj = _copy(obj)
        md = obj.metadata
        if not md.name and md.generate_name:
            self._uid += 1
            md.name = f"{md.generate_name}{self._uid:05d}"
        if key_of(obj) in self.objects:
            raise errors.AlreadyExists(f'{type(obj).__name__} "{md.name}" already exists')
        self._uid += 1
        md.uid = md.uid or f"uid-{md.name}-{self._uid}"
        md.creation_timestamp.seconds = md.creation_timestamp.seconds or self._rv + 1
        self.actions.append(("create", type(obj).__name__, f"{md.namespace}/{md.name}"))
        self._store(None, obj)
        return _copy(obj)

    async def get(self, cls: type[Any], name: str, *, namespace: str = "") -> Any:
        return _copy(self._current(cls, name, namespace))

    async def list_all(self, cls: type[Any], *, namespace: str = "", **_: Any) -> Listed:
        err = self.list_errors.get(cls.__name__)
        if err is not None:
            raise err
        return Listed([_copy(o) for (k, ns, _n), o in sorted(self.objects.items())
                       if k == cls.__name__ and (not namespace or ns == namespace)])

    async def update(self, obj: Any, *, field_manager: str = "", dry_run: bool = False) -> Any:
        return self._update(obj, status=False)

    async def update_status(self, obj: Any, *, field_manager: str = "") -> Any:
        return self._update(obj, status=True)

    def _update(self, obj: Message, *, status: bool) -> Any:
        cur = self._current(type(obj), obj.metadata.name, obj.metadata.namespace)
        md = obj.metadata
        if md.resource_version and md.resource_version != cur.metadata.resource_version:
            raise errors.Conflict(f"{md.name}: the object has been modified")
        k = key_of(cur)
        self.actions.append(("update_status" if status else "update", k[0], f"{k[1]}/{k[2]}"))
        new = _copy(cur)
        if status:
            new.status.CopyFrom(obj.status)
        else:
            new.CopyFrom(obj)
            new.metadata.deletion_timestamp.CopyFrom(cur.metadata.deletion_timestamp)
            if not cur.metadata.HasField("deletion_timestamp"):
                new.metadata.ClearField("deletion_timestamp")
            if new.metadata.HasField("deletion_timestamp") and not _held(new):
                self._remove(cur)  # the last finalizer went: the object goes
                return _copy(new)
        self._store(cur, new)
        return _copy(new)

    async def delete(self, cls: type[Any], name: str, *, namespace: str = "", uid: str | None = None,
                     propagation_policy: str | None = None, grace_period_seconds: int | None = None,
                     **_: Any) -> tuple[Any, bool]:
        cur = self._current(cls, name, namespace)
        if uid and cur.metadata.uid != uid:
            raise errors.Conflict(f"Precondition failed: UID in precondition: {uid}")
        k = key_of(cur)
        self.actions.append(("delete", k[0], f"{k[1]}/{k[2]}", propagation_policy or ""))
        new = _copy(cur)
        if not new.metadata.HasField("deletion_timestamp"):
            finalizer = {"Orphan": "orphan", "Foreground": "foregroundDeletion"}.get(propagation_policy or "")
            if finalizer and finalizer not in new.metadata.finalizers:
                new.metadata.finalizers.append(finalizer)
        if _held(new):
            if not new.metadata.HasField("deletion_timestamp"):
                new.metadata.deletion_timestamp.seconds = 1
                if isinstance(new, core.Namespace):
                    new.status.phase = "Terminating"
                self._store(cur, new)
            return _copy(new), False
        self._remove(cur)
        return _copy(new), True


def deliver(factory: InformerFactory, only: tuple[type[Message], ...] = ()) -> Watch:
    """A FakeClient watcher that feeds each change (of the `only` kinds; every kind when empty) to the kind's
    informer, as its reflector would."""
    def on_change(old: Any, new: Any) -> None:
        obj = new if new is not None else old
        if only and not isinstance(obj, only):
            return
        inf = factory.informer_for(type(obj))
        if new is None:
            inf.store.delete(old)
            inf.on_delete(old)
        elif old is None:
            inf.store.add(new)
            inf.on_add(new)
        else:
            inf.store.add(new)
            inf.on_update(old, new)
    return on_change
