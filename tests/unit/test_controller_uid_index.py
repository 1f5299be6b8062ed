"""The pod index by controller UID (controller_utils.CONTROLLER_UID_INDEX): an owner's sync reads its own pods and
its namespace's orphans, never another owner's pods or another namespace's orphans, and the index follows a
pod that is adopted or released."""

from __future__ import annotations

from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.cache import Lister
from pybernetes.cache.store import Store
from services.controllers.controller_utils import (
    CONTROLLER_UID_INDEX,
    controller_uid_index,
    orphan_index_key,
    owned_or_orphaned,
)


def _rs(name: str, uid: str, namespace: str = "ns") -> apps.ReplicaSet:
    rs = apps.ReplicaSet()
    rs.metadata.name, rs.metadata.namespace, rs.metadata.uid = name, namespace, uid
    return rs


def _pod(name: str, owner_uid: str = "", namespace: str = "ns", controller: bool = True) -> core.Pod:
    p = core.Pod()
    p.metadata.name, p.metadata.namespace, p.metadata.uid = name, namespace, f"uid-{name}"
    if owner_uid:
        p.metadata.owner_references.add(api_version="apps/v1", kind="ReplicaSet", name="x", uid=owner_uid,
                                        controller=controller)
    return p


def _store(*pods: core.Pod) -> Store[core.Pod]:
    store: Store[core.Pod] = Store(indexers={CONTROLLER_UID_INDEX: controller_uid_index})
    for p in pods:
        store.add(p)
    return store


def test_an_owner_reads_its_pods_and_its_namespaces_orphans_only() -> None:
    store = _store(_pod("a1", "uid-a"), _pod("a2", "uid-a"), _pod("b1", "uid-b"), _pod("orphan"),
                   _pod("not-controller", "uid-a", controller=False), _pod("elsewhere", namespace="other"),
                   _pod("a-elsewhere", "uid-a", namespace="other"))
    names = sorted(p.metadata.name for p in owned_or_orphaned(Lister(store), _rs("a", "uid-a")))
    # a pod whose only reference is not a controller reference is an orphan (it may be adopted)
    assert names == ["a-elsewhere", "a1", "a2", "not-controller", "orphan"]
    assert [p.metadata.name for p in owned_or_orphaned(Lister(store), _rs("b", "uid-b"))] == \
        ["b1", "not-controller", "orphan"]
    assert [p.metadata.name for p in owned_or_orphaned(Lister(store), _rs("c", "uid-c", "other"))] == ["elsewhere"]


def test_the_index_follows_adoption_and_release() -> None:
    store = _store(_pod("p"))
    assert store.index_keys(CONTROLLER_UID_INDEX, orphan_index_key("ns")) == ["ns/p"]
    store.add(_pod("p", "uid-a"))  # adopted
    assert store.index_keys(CONTROLLER_UID_INDEX, "uid-a") == ["ns/p"]
    assert store.index_keys(CONTROLLER_UID_INDEX, orphan_index_key("ns")) == []
    store.add(_pod("p"))  # released
    assert store.index_keys(CONTROLLER_UID_INDEX, "uid-a") == []
    assert store.index_keys(CONTROLLER_UID_INDEX, orphan_index_key("ns")) == ["ns/p"]
    store.delete(_pod("p"))
    assert store.index_keys(CONTROLLER_UID_INDEX, orphan_index_key("ns")) == []
